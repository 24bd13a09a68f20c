--! Previous: sha1:25045115348291aab0522cd30915561ffcdea1c0
--! Hash: sha1:21598977ff33417717fb7bff657b7efdbc97b3e9
--! Message: Pool ledger: execution tokens, pool events and balances

-- Pool ledger (issue 4, specs/pool-allocate.md): execution tokens, job tickets
-- and pinned product revisions (schema execution), and the component pool
-- ledger: append-only events, balances, rejected allocations (schema pool).
-- Behaviour (functions, triggers, grants, smart tags) is in sql/execution.sql
-- and sql/pool.sql.

create schema execution;
create schema pool;
comment on schema execution is 'Execution: job tickets, tokens and work sessions. The token is the source of truth for execution (LAW-01).';
comment on schema pool is 'The component pool: an availability ledger (LAW-02), append-only events and their balances.';

create table execution.product_revisions (
  id bigint generated always as identity primary key,
  product_model_id bigint not null,
  snapshot_json jsonb not null default '{}' check (jsonb_typeof(snapshot_json) = 'object'),
  created_at timestamptz not null default now()
);
comment on column execution.product_revisions.snapshot_json is
  'The pinned snapshot; structure.component_requirements[] holds {component_code, default_qty, is_required}.';

create table execution.job_tickets (
  id bigint generated always as identity primary key,
  id_product bigint not null,
  bom_version_id bigint,
  product_revision_id bigint references execution.product_revisions (id),
  created_at timestamptz not null default now()
);
create index job_tickets_product_revision_idx on execution.job_tickets (product_revision_id);

create table execution.tokens (
  id bigint generated always as identity primary key,
  job_ticket_id bigint not null references execution.job_tickets (id),
  status text not null default 'ready' check (status in ('ready', 'active', 'paused', 'completed')),
  current_behavior_code text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index tokens_job_ticket_idx on execution.tokens (job_ticket_id);

create table execution.work_sessions (
  id bigint generated always as identity primary key,
  token_id bigint not null references execution.tokens (id),
  worker_id bigint not null,
  behavior_code text not null check (behavior_code ~ '^[A-Z][A-Z0-9_]{0,62}$'),
  started_at timestamptz not null default now(),
  ended_at timestamptz,
  check (ended_at is null or ended_at >= started_at)
);
-- A token is worked in at most one open session at a time.
create unique index work_sessions_one_open_idx on execution.work_sessions (token_id) where ended_at is null;
create index work_sessions_token_idx on execution.work_sessions (token_id, started_at);

create table pool.events (
  id bigint generated always as identity primary key,
  event_type text not null,
  pool_mode text not null,
  product_model_id bigint not null,
  bom_version_id bigint not null,
  component_code text not null check (component_code ~ '^\S(.{0,98}\S)?$'),
  state text not null default 'cut_ready',
  delta_qty numeric(18,6) not null,
  balance_after numeric(18,6) not null check (balance_after >= 0),
  token_id bigint references execution.tokens (id),
  reason_code text not null check (reason_code ~ '^[A-Z][A-Z0-9_]{0,62}$'),
  actor_id bigint,
  recorded_by text not null,
  occurred_at timestamptz not null default now(),
  idempotency_key text not null check (length(idempotency_key) between 1 and 200),
  content_hash bytea not null,
  constraint events_idempotency_key_key unique (idempotency_key),
  -- LAW-03/04: one pool state only.
  constraint events_state_cut_ready check (state = 'cut_ready'),
  constraint events_type_mode check (
    (event_type = 'POOL_RECEIVE' and pool_mode = 'receive' and delta_qty > 0)
    or (event_type = 'POOL_ALLOCATE' and pool_mode = 'allocate' and delta_qty < 0 and token_id is not null))
);
create index events_balance_idx on pool.events (product_model_id, bom_version_id, component_code, state, id);
create index events_token_idx on pool.events (token_id) where token_id is not null;

create table pool.balances (
  product_model_id bigint not null,
  bom_version_id bigint not null,
  component_code text not null,
  state text not null default 'cut_ready',
  quantity numeric(18,6) not null default 0,
  last_event_id bigint references pool.events (id),
  updated_at timestamptz not null default now(),
  primary key (product_model_id, bom_version_id, component_code, state),
  constraint balances_quantity_not_negative check (quantity >= 0),
  constraint balances_state_cut_ready check (state = 'cut_ready')
);

-- Allocations refused because the balance would go negative: nothing was
-- booked and the key was not consumed; the shortage view reads these.
create table pool.rejections (
  id bigint generated always as identity primary key,
  code text not null default 'POOL_409_NEGATIVE',
  event_type text not null,
  pool_mode text not null,
  product_model_id bigint not null,
  bom_version_id bigint not null,
  component_code text not null,
  state text not null check (state = 'cut_ready'),
  delta_qty numeric(18,6) not null,
  balance_at_rejection numeric(18,6) not null,
  token_id bigint references execution.tokens (id),
  reason_code text not null,
  actor_id bigint,
  recorded_by text not null,
  idempotency_key text not null,
  rejected_at timestamptz not null default now()
);
create index rejections_key_idx on pool.rejections (idempotency_key);
create index rejections_balance_idx on pool.rejections (product_model_id, bom_version_id, component_code, state);

--! Previous: sha1:edd1545c78273793c070507a38a3a1b95ea99934
--! Hash: sha1:bd8460eca1cb7b3cffa50b80e26fba91e9c27725
--! Message: Nesting: Grundner exchange survives a real plant (types per job, exchange state, drift)

-- Grundner exchange hardening (issue 11).

-- The board type a job resolves to: pinned by a supervisor, and the type its
-- order was placed with while it is locked (so lock, release and grid agree).
alter table nesting.jobs add column if not exists pinned_type integer check (pinned_type between 1 and 4095);
alter table nesting.jobs add column if not exists locked_type integer check (locked_type between 1 and 4095);

-- One row: the exchange's health and the time the storage's stock figures were taken.
create table if not exists nesting.exchange_state (
  id boolean primary key default true check (id),
  -- Locks acknowledged after this are not yet in Grundner's stock_available.
  stock_figure_at timestamptz,
  last_pass_at timestamptz,
  share_failing_since timestamptz,
  share_error text
);
insert into nesting.exchange_state (id) values (true) on conflict do nothing;

-- Drift between the storage's reserved stock (field 15) and the jobs we hold
-- locked on the type: one row per type while they differ.
create table if not exists nesting.stock_drift (
  type_data integer primary key,
  reserved_stock integer not null,
  locked_count integer not null,
  jobs text[] not null default '{}',
  since timestamptz not null default now(),
  checked_at timestamptz not null default now()
);

insert into ops.settings (key, value, description) values
  ('nesting.release_confirmation', '"answer_file"',
   'How the Grundner gateway confirms a release: answer_file (productionLIST_del.csv, the manual) or erl_only (get_production.erl only; cannot see partial releases).'),
  ('nesting.exchange_stale_after', '"30 seconds"', 'After this long without a completed Grundner pass, /healthz reports the exchange unhealthy.')
on conflict (key) do nothing;

-- Jobs locked before this migration: the type their material resolved to then.
update nesting.jobs j
   set locked_type = coalesce(
         (select g.type_data from nesting.grundner g where j.material ~ '^\d{1,4}$' and g.type_data = j.material::int),
         (select min(g.type_data) from nesting.grundner g where g.customer_id <> '' and g.customer_id = j.material))
 where j.is_locked and j.locked_type is null;

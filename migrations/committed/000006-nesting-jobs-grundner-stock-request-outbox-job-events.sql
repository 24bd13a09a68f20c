--! Previous: sha1:1943d0b35c1184d7b4a3279ea8629700c49bb35a
--! Hash: sha1:b69d0dbc80cc37cb672f3cae1cfb5cdeb015e8c0
--! Message: Nesting: jobs, Grundner stock, request outbox, job events

-- Nesting: NC jobs, Grundner stock, the outbox of file requests, job timelines.
create schema nesting;
comment on schema nesting is 'Nesting allocation: NC jobs reserve, lock and release boards in the Grundner sheet store.';

create sequence nesting.grundner_job_no_seq;

create table nesting.jobs (
  key text primary key check (key <> '' and key !~ '^/'),
  folder text not null default '',
  ncfile text not null,
  material text,
  parts integer check (parts >= 0),
  length_mm numeric check (length_mm > 0),
  width_mm numeric check (width_mm > 0),
  thickness_mm numeric check (thickness_mm > 0),
  status text not null default 'PENDING' check (status in ('PENDING', 'STAGED', 'LOAD_FINISH', 'LABEL_FINISH',
    'CNC_FINISH', 'FORWARDED_TO_NESTPICK', 'NESTPICK_COMPLETE', 'RUNNING')),
  pre_reserved boolean not null default false,
  is_locked boolean not null default false,
  allocated_at timestamptz,
  locked_by text,
  -- What Grundner knows the job as: printable ASCII, no separator, at most 8 characters.
  grundner_job_no text not null unique check (grundner_job_no ~ '^[!-:<-~]{1,8}$'),
  problem text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint jobs_reserved_or_locked check (not (pre_reserved and is_locked)),
  constraint jobs_reserved_only_pending check (not pre_reserved or status = 'PENDING')
);
create index jobs_material_idx on nesting.jobs (material);

-- One row per board type, the 19 fields of stock.csv.
create table nesting.grundner (
  type_data integer primary key check (type_data between 1 and 4095),
  material_name text not null default '',
  length_mm numeric,
  width_mm numeric,
  thickness_mm numeric,
  material_no text not null default '',
  stock integer not null default 0,
  stock_available integer not null default 0,
  reserve_1 integer not null default 0,
  reserve_2 integer not null default 0,
  reserve_3 integer not null default 0,
  reserve_4 integer not null default 0,
  reserve_5 integer not null default 0,
  reserve_6 integer not null default 0,
  reserved_stock integer not null default 0,
  customer_id text not null default '',
  manual_rest integer not null default 0,
  block_storage integer not null default 0,
  density numeric,
  synced_at timestamptz not null default now()
);
create index grundner_customer_id_idx on nesting.grundner (customer_id) where customer_id <> '';

-- The outbox: every file request, its exact lines, and what became of it.
create table nesting.grundner_requests (
  id bigint generated always as identity primary key,
  kind text not null check (kind in ('lock', 'release', 'stock')),
  file_name text not null check (file_name in ('order_saw', 'get_production', 'stock_request')),
  status text not null default 'queued' check (status in ('queued', 'sending', 'sent', 'acknowledged', 'answered',
    'partial', 'failed', 'timed_out', 'cancelled')),
  lines text[] not null,
  -- The jobs the request is about: [{key, job_no, type}] (type: the board type expected back).
  items jsonb not null default '[]' check (jsonb_typeof(items) = 'array'),
  source text not null default 'user',
  reason text not null default '',
  requested_by text not null default current_user,
  created_at timestamptz not null default now(),
  sent_at timestamptz,
  deadline timestamptz,
  finished_at timestamptz,
  answer jsonb,
  error text
);
-- At most one request of a file name in flight (sending or sent) at a time.
create unique index grundner_requests_one_in_flight on nesting.grundner_requests (file_name)
  where status in ('sending', 'sent');
create index grundner_requests_queued_idx on nesting.grundner_requests (file_name, id) where status = 'queued';

create table nesting.job_events (
  id bigint generated always as identity primary key,
  job_key text not null,
  at timestamptz not null default now(),
  event text not null,
  details jsonb not null default '{}',
  actor text not null default current_user
);
create index job_events_job_idx on nesting.job_events (job_key, at);

insert into ops.settings (key, value, description) values
  ('nesting.request_timeout', '"60 seconds"', 'How long a request file may wait in the Grundner share before it is taken back.'),
  ('nesting.stock_sync_interval', '"5 minutes"', 'How often stock_request.csv asks Grundner for the stock.'),
  ('nesting.saw_machine', '1', 'Machine number (1-4) written in order_saw.csv and get_production.csv.')
on conflict (key) do nothing;

--! Previous: sha1:52ee4310d553e4fd1e58573f38a28405c2546e7d
--! Hash: sha1:26835058ec12351b5f88ff7df77307094121c8df
--! Message: Nesting part 2: machines, Ready-to-Run files, ingest scan state

-- Nesting part 2: machines and their Ready-to-Run folders, what the ingest
-- scan knows of each NC file, staging, and the Ready page.
create table nesting.machines (
  id bigint generated always as identity primary key,
  name text not null unique check (name <> ''),
  ready_dir text not null unique check (ready_dir <> ''),
  grundner_machine integer not null default 1 check (grundner_machine between 1 and 4)
);

alter table nesting.jobs
  add column nc_mtime timestamptz,
  add column nc_size bigint,
  add column seen_at timestamptz,
  add column removed_at timestamptz,
  add column staged_machine_id bigint references nesting.machines (id),
  add column staged_at timestamptz;
create index jobs_present_idx on nesting.jobs (key) where removed_at is null;
create index jobs_staged_machine_idx on nesting.jobs (staged_machine_id) where staged_machine_id is not null;

-- The Ready page: what is in each machine's Ready-to-Run folder.
create table nesting.ready_files (
  machine_id bigint not null references nesting.machines (id) on delete cascade,
  name text not null,
  size bigint not null default 0,
  mtime timestamptz,
  seen_at timestamptz not null default now(),
  primary key (machine_id, name)
);

insert into ops.settings (key, value, description) values
  ('nesting.ingest_interval', '"5 seconds"', 'How often the processed jobs root is scanned.'),
  ('nesting.stable_after', '"2 seconds"', 'A file is read only once its size and time have not changed for this long.'),
  ('nesting.stage_sanity_interval', '"10 seconds"', 'How often locked jobs are checked against the Ready-to-Run folders.')
on conflict (key) do nothing;

-- What each periodic scan last saw, so an outage is reported once and healthz can tell.
create table nesting.scan_state (
  scanner text primary key,
  last_complete_at timestamptz,
  failing_since timestamptz,
  last_error text
);

--! Previous: sha1:deed08cbc5d1c80765eb73d15f96e6fd156c62b9
--! Hash: sha1:edd1545c78273793c070507a38a3a1b95ea99934
--! Message: Nesting ingest: prune holds, ignored names, sentinel file

-- Nesting ingest: a prune guard for shares that go away (an unmounted share
-- is an empty folder), and settings for the folder rules.

-- A scan that would prune a mass of the known jobs holds instead: one row per
-- hold, open until a supervisor confirms it (then the next scan prunes) or the
-- files come back.
create table if not exists nesting.prune_holds (
  id bigint generated always as identity primary key,
  held_at timestamptz not null default now(),
  last_scan_at timestamptz not null default now(),
  scans integer not null default 1 check (scans > 0),
  known integer not null check (known >= 0),
  keys text[] not null,
  confirmed_at timestamptz,
  confirmed_by text,
  ended_at timestamptz,
  outcome text check (outcome in ('pruned', 'lifted')),
  constraint prune_holds_confirmed_together check ((confirmed_at is null) = (confirmed_by is null)),
  constraint prune_holds_ended_together check ((ended_at is null) = (outcome is null))
);
-- At most one open hold.
create unique index if not exists prune_holds_one_open on nesting.prune_holds ((true)) where ended_at is null;

insert into ops.settings (key, value, description) values
  ('nesting.prune_hold_above_jobs', '10',
   'A scan of the processed jobs root that would prune more than this many jobs, and more than nesting.prune_hold_above_share of them, prunes nothing until a supervisor confirms (nesting.confirm_prune).'),
  ('nesting.prune_hold_above_share', '0.5',
   'Share (0 to 1) of the known PENDING/STAGED jobs above which a prune is held (together with nesting.prune_hold_above_jobs).'),
  ('nesting.ingest_sentinel_file', '""',
   'Optional file name in the processed jobs root; when set and the file is missing, the root counts as not mounted and nothing is pruned. Empty: off.'),
  ('nesting.ignored_names', '["$RECYCLE.BIN", "RECYCLER", "System Volume Information", "#recycle", "@Recycle", "@eaDir", "~$*", "*.tmp", "*.part", "*.crdownload", ".*", "Thumbs.db", "desktop.ini"]',
   'Folder and file names (globs: * and ?, any case) that are never jobs, in the processed jobs root and in Ready-to-Run folders; an ignored folder is not entered.')
on conflict (key) do nothing;

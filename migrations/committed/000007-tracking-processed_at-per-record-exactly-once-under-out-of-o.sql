--! Previous: sha1:b69d0dbc80cc37cb672f3cae1cfb5cdeb015e8c0
--! Hash: sha1:52ee4310d553e4fd1e58573f38a28405c2546e7d
--! Message: Tracking: processed_at per record (exactly once under out-of-order commits), malformed_record issue kind

-- Tracking (issue 5 review): exactly once under out-of-order commits.
-- A high-water marker skips a record whose transaction commits after a run
-- already processed a higher marker / scan_id. Each record now carries
-- processed_at, set in the same transaction as its effects; processing takes
-- the records where it is null. processing_markers stays (the highest
-- marker / scan_id processed) for compatibility and monitoring.
alter table tracking."print OS" add column if not exists processed_at timestamptz;
alter table tracking.scanned_codes add column if not exists processed_at timestamptz;

-- Records already behind the markers were processed.
update tracking."print OS" p set processed_at = m.last_processed_at
  from tracking.processing_markers m
 where m.marker_type = 'print_os' and p.marker <= m.last_processed_id and p.processed_at is null;
update tracking.scanned_codes s set processed_at = m.last_processed_at
  from tracking.processing_markers m
 where m.marker_type = 'scanned_codes' and s.scan_id <= m.last_processed_id and s.processed_at is null;

-- Pending records only: the index stays as small as the backlog.
create index if not exists print_os_unprocessed_idx on tracking."print OS" (marker) where processed_at is null;
create index if not exists scanned_codes_unprocessed_idx on tracking.scanned_codes (scan_id) where processed_at is null;

-- A scan whose operations field names no operation (not an array, object or
-- string of names) is reported too.
alter table tracking.processing_issues drop constraint if exists processing_issues_kind_check;
alter table tracking.processing_issues add constraint processing_issues_kind_check check (kind in
  ('unknown_imposition', 'unparseable_file_id', 'unknown_job', 'unknown_operation', 'unknown_code', 'malformed_record'));

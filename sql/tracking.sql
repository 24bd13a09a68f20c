-- tracking: print OS and scanner records drive job status (issue 5).
-- Re-applied after every migrate: everything is create or replace.
--
-- Processing is set-based: each run takes every unprocessed record (queued
-- in tracking_private.pending_records by the insert triggers, whatever its
-- marker or scan_id: a feeder may commit a lower marker after a higher one was
-- processed) plus records with open issues (up to the retry limit), works on
-- them as sets in temp tables, and empties their queue rows, sets
-- processed_at and the marker in the same transaction as the effects.
-- The marker row is locked FOR UPDATE first, so two runners queue behind each
-- other and never process a record twice.
--
-- Errors: SF404 unknown job (job_status), SF409 duplicate print OS marker,
-- SF422 invalid input (bad source, unparseable file id, bad pattern setting).

------------------------------------------------------------------------------
-- File ids
------------------------------------------------------------------------------

-- The setting tracking.file_id_pattern is a regex with named groups
-- (?<version>...) and (?<job_id>...). PostgreSQL regexes have no named
-- groups, so the pattern is translated: the names are removed and their
-- capture-group numbers remembered.
create or replace function tracking.file_id_regex(
  out pattern text, out version_group int, out job_group int)
language plpgsql stable
set search_path = pg_catalog, public
as $$
declare
  p text := ops.setting_text('tracking.file_id_pattern');  -- seeded by the tracking migrations
  i int := 1;
  j int;
  n int := 0;
  c text;
  gname text;
begin
  if p is null then
    raise exception 'Setting tracking.file_id_pattern is not set' using errcode = 'SF422',
      hint = 'Set it with ops.set_setting (docs/tracking.md, Settings).';
  end if;
  pattern := '';
  while i <= length(p) loop
    c := substr(p, i, 1);
    if c = '\' then
      pattern := pattern || substr(p, i, 2);
      i := i + 2;
      continue;
    elsif c = '[' then
      j := i + 1;
      if substr(p, j, 1) = '^' then j := j + 1; end if;
      if substr(p, j, 1) = ']' then j := j + 1; end if;
      while j <= length(p) and substr(p, j, 1) <> ']' loop j := j + 1; end loop;
      pattern := pattern || substr(p, i, j - i + 1);
      i := j + 1;
      continue;
    elsif c = '(' then
      if substr(p, i + 1, 2) = '?<' and substr(p, i + 3, 1) not in ('=', '!') then
        gname := substring(substr(p, i + 3) from '^([A-Za-z_][A-Za-z0-9_]*)>');
        if gname is null then
          raise exception 'tracking.file_id_pattern: bad group name at position %', i using errcode = 'SF422';
        end if;
        n := n + 1;
        if gname = 'version' then version_group := n; elsif gname = 'job_id' then job_group := n; end if;
        pattern := pattern || '(';
        i := i + 4 + length(gname);
        continue;
      elsif substr(p, i + 1, 1) <> '?' then
        n := n + 1;
      end if;
    end if;
    pattern := pattern || c;
    i := i + 1;
  end loop;
  if job_group is null then
    raise exception 'tracking.file_id_pattern has no (?<job_id>...) group' using errcode = 'SF422', detail = p;
  end if;
  begin
    perform regexp_match('', pattern);
  exception when invalid_regular_expression then
    raise exception 'tracking.file_id_pattern is not a valid regex' using errcode = 'SF422', detail = p;
  end;
end
$$;
comment on function tracking.file_id_regex() is E'@behavior -queryField\nThe file-id pattern setting translated to a PostgreSQL regex and its group numbers.';

-- Parses a file id. A file id that does not match is reported (SF422), never guessed.
create or replace function tracking.parse_file_id(file_id text, out version text, out job_id text)
language plpgsql stable
set search_path = pg_catalog, public
as $$
declare
  r record := tracking.file_id_regex();
  m text[] := regexp_match(file_id, r.pattern);
begin
  if m is null or m[r.job_group] is null or m[r.job_group] = '' then
    raise exception 'File id % does not match the file id pattern', coalesce(file_id, '(null)') using errcode = 'SF422',
      hint = 'Check the setting tracking.file_id_pattern.';
  end if;
  job_id := m[r.job_group];
  version := case when r.version_group is null then null else m[r.version_group] end;
end
$$;
comment on function tracking.parse_file_id(text) is 'Version and job id of a file id (FILE_1_Labex_4604_5889_80 → 1, 4604_5889; Labex_4604_5889_80 → null, 4604_5889), by the pattern in the setting tracking.file_id_pattern. SF422 when it does not match.';

-- Fills version/job_id of mapping rows (statement-level, one translation of the pattern).
create or replace function tracking.reparse_file_ids() returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  n int;
begin
  with r as (select * from tracking.file_id_regex()),
  parsed as (
    select m.imposition_id, m.file_id, x[r.version_group] as version, nullif(x[r.job_group], '') as job_id
      from tracking.imposition_file_mapping m, r, lateral (select regexp_match(m.file_id, r.pattern) as x) mm
  ), changed as (
    update tracking.imposition_file_mapping m set version = p.version, job_id = p.job_id
      from parsed p
     where (m.imposition_id, m.file_id) = (p.imposition_id, p.file_id)
       and (m.version, m.job_id) is distinct from (p.version, p.job_id)
    returning 1
  )
  select count(*)::int into n from changed;
  perform ops.audit('reparse_file_ids', 'setting', 'tracking.file_id_pattern', jsonb_build_object('changed', n));
  return n;
end
$$;
comment on function tracking.reparse_file_ids() is 'Re-parses every file id in imposition_file_mapping after tracking.file_id_pattern changed (admin). Returns how many rows changed.';

create or replace function tracking_private.tg_imposition_file_mapping__parse_file_ids() returns trigger
language plpgsql security definer
set search_path = pg_catalog, public
as $$
begin
  if pg_trigger_depth() > 1 then
    return null; -- our own update below
  end if;
  with r as (select * from tracking.file_id_regex())
  update tracking.imposition_file_mapping m
     set version = x[r.version_group], job_id = nullif(x[r.job_group], '')
    from new_rows n, r, lateral (select regexp_match(n.file_id, r.pattern) as x) mm
   where (m.imposition_id, m.file_id) = (n.imposition_id, n.file_id)
     and (m.version, m.job_id) is distinct from (x[r.version_group], nullif(x[r.job_group], ''));
  return null;
end
$$;

create or replace trigger mapping_parse_inserted
  after insert on tracking.imposition_file_mapping
  referencing new table as new_rows
  for each statement execute function tracking_private.tg_imposition_file_mapping__parse_file_ids();
create or replace trigger mapping_parse_updated
  after update on tracking.imposition_file_mapping
  referencing new table as new_rows
  for each statement execute function tracking_private.tg_imposition_file_mapping__parse_file_ids();
drop function if exists tracking.mapping_parse_new();  -- its former name, no trigger uses it now

-- What a scanner or feed sends around a code is not part of it: a
-- keyboard-wedge scanner ends each code with Enter (CR, LF or CRLF), a feeder
-- may pad it. The records keep what was sent; processing reads the code
-- trimmed of whitespace at both ends. No `set search_path`: this one-line SQL
-- function is inlined into the processing statements.
create or replace function tracking_private.sent_code(p_text text) returns text
language sql immutable parallel safe
as $$ select pg_catalog.btrim(p_text, E' \t\r\n\f\v') $$;

-- A record's event time, or the fallback when it has none or it is not a
-- time (`infinity` is accepted by timestamptz: stored in operation_times, it
-- would win over every later record for good). Inlined like sent_code.
create or replace function tracking_private.event_time(p_at timestamptz, p_fallback timestamptz) returns timestamptz
language sql immutable parallel safe
as $$ select case when pg_catalog.isfinite(p_at) then p_at else p_fallback end $$;

-- The parts of a code before each `_` (`4604_5889_v2_final`: `4604`,
-- `4604_5889`, `4604_5889_v2`): the job ids a job_id_version_tag code may
-- hold, its version tag being free to hold `_` too. Inlined like sent_code.
create or replace function tracking_private.code_prefixes(p_code text) returns table (prefix text)
language sql immutable parallel safe
as $$ select left(p_code, g - 1) from generate_series(2, length(p_code) - 1) g where substr(p_code, g, 1) = '_' $$;

------------------------------------------------------------------------------
-- Lookups
------------------------------------------------------------------------------

create or replace function tracking.jobs_from_imposition(imposition_id text) returns setof text
language sql stable
set search_path = pg_catalog, public
as $$
  select distinct m.job_id from tracking.imposition_file_mapping m
   where m.imposition_id = jobs_from_imposition.imposition_id and m.job_id is not null
   order by 1
$$;
comment on function tracking.jobs_from_imposition(text) is 'The job ids whose files are on an imposition (parsed from its file ids).';

create or replace function tracking.job_status(p_job_id text) returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, public
as $$
declare
  j tracking.jobs;
begin
  select * into j from tracking.jobs where job_id = p_job_id;
  if not found then
    raise exception 'Job % does not exist', p_job_id using errcode = 'SF404';
  end if;
  return jsonb_build_object(
    'job_id', j.job_id,
    'version_tag', j.version_tag,
    'current_status', (select coalesce(jsonb_object_agg(c.name, coalesce((j.operations ->> c.name)::boolean, false)), '{}')
                         from tracking.operation_catalogue c) || j.operations,
    'update_history', coalesce((
      select jsonb_agg(jsonb_build_object(
               'update_id', u.update_id, 'operation_type', u.operation, 'status', u.status,
               'source_type', u.source_type, 'source_id', u.source_id, 'event_at', u.event_at,
               'updated_at', u.created_at, 'notes', u.notes) order by u.event_at, u.update_id)
        from tracking.job_status_updates u where u.job_id = j.job_id), '[]'));
end
$$;
comment on function tracking.job_status(text) is 'A job''s operations (current_status) and its status update history. SF404 for an unknown job.';

------------------------------------------------------------------------------
-- Issues: records that could not be (fully) applied
------------------------------------------------------------------------------

-- Upserts the issues found in this run (temp table _issues) for the records
-- of this run (ids), resolves the ones that are gone, posts one message.
-- Subjects are cut to 200 characters and reasons to 500: a subject is in the
-- issues' unique index, and a scanned code or operation name can be of any
-- length (a wedge scanner reading a 2D code); a too long index entry would
-- fail the whole run, again on every run.
drop function if exists tracking.record_issues(text, bigint[]);
create or replace function tracking_private.record_issues(p_source_type text, p_ids bigint[]) returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  new_count int;
begin
  with up as (
    insert into tracking.processing_issues as i (source_type, source_id, kind, subject, reason)
    select distinct on (source_id, kind, left(subject, 200)) p_source_type, source_id, kind, left(subject, 200), left(reason, 500)
      from _issues
    on conflict (source_type, source_id, kind, subject) do update
      set attempts = i.attempts + 1, last_seen_at = now(), resolved_at = null, reason = excluded.reason
    returning (xmax = 0) as inserted
  )
  select count(*) filter (where inserted)::int into new_count from up;
  update tracking.processing_issues i set resolved_at = now()
   where i.source_type = p_source_type and i.resolved_at is null and i.source_id = any (p_ids)
     and not exists (select 1 from _issues x where x.source_id = i.source_id and x.kind = i.kind and left(x.subject, 200) = i.subject);
  if new_count > 0 then
    perform ops.post_message('tracking', 'warning',
      format('%s %s record(s) could not be fully applied', new_count, p_source_type),
      'See tracking.processing_issues; they are retried on later runs.',
      jsonb_build_object('source_type', p_source_type));
  end if;
  return new_count;
end
$$;

------------------------------------------------------------------------------
-- Temp tables
------------------------------------------------------------------------------

-- Processing works on temp tables. Each session makes them once (on commit
-- delete rows) and later runs reuse them: creating and dropping a dozen
-- tables per run wrote the catalogs every time, which was most of a
-- one-record run's time on a loaded server. A second run in the same
-- transaction empties them first. No `if not exists` / `if exists`: their
-- NOTICEs would reach psql users.
drop function if exists tracking.use_temp_table(text, text);
create or replace function tracking_private.use_temp_table(p_name text, p_columns text) returns void
language plpgsql volatile
set search_path = pg_catalog, public
as $$
begin
  if not ops_private.own_temp_table(p_name) then
    execute format('create temp table %I (%s) on commit delete rows', p_name, p_columns);
  else
    execute format('delete from pg_temp.%I', p_name);
  end if;
end
$$;
comment on function tracking_private.use_temp_table(text, text) is 'Makes the named temp table of this session (kept, emptied at commit), or empties it.';

-- The history rows (job_status_updates) that the records of this run already
-- have, in the temp table _logged: processing inserts the others. Looked up
-- before the insert, not with `on conflict do nothing`, whose speculative
-- insertion made a backlog's insert ~40% slower; only processing writes the
-- history, a source's rows behind its marker lock.
create or replace function tracking_private.find_logged(p_source_type text, p_ids bigint[]) returns void
language plpgsql volatile
set search_path = pg_catalog, public
as $$
begin
  perform tracking_private.use_temp_table('_logged', 'source_id bigint, job_id text, operation text');
  insert into _logged
    select u.source_id, u.job_id, u.operation from tracking.job_status_updates u
     where u.source_type = p_source_type and u.source_id = any (p_ids);
  analyze _logged;
end
$$;

-- Moves a source's marker forward to the highest marker / scan_id processed
-- (never back: a run that took only lower, late-committed records).
create or replace function tracking_private.move_marker(p_marker_type text, p_max bigint) returns void
language sql volatile
set search_path = pg_catalog, public
as $$
  update tracking.processing_markers
     set last_processed_id = p_max, last_processed_at = now(), updated_at = now()
   where marker_type = p_marker_type and last_processed_id < p_max;
$$;

-- The file-id pattern for processing: null when the setting is broken, so
-- that records which need no parsing still get through (parse_file_id and
-- reparse_file_ids report the broken setting).
drop function if exists tracking.file_id_pattern_or_null();
create or replace function tracking_private.file_id_pattern_or_null(out pattern text, out job_group int)
language plpgsql stable
set search_path = pg_catalog, public
as $$
begin
  select r.pattern, r.job_group into pattern, job_group from tracking.file_id_regex() r;
exception when sqlstate 'SF422' then
  pattern := null;
  job_group := null;
end
$$;
comment on function tracking_private.file_id_pattern_or_null() is 'The translated file-id pattern, or nulls when the setting is missing or not a valid pattern.';

-- Print OS and scanner runs go side by side (each source has its worker
-- task), so the rows both may write are taken in one order by both: first
-- the print operation's rows (job and imposition operations), behind this
-- lock, then the jobs, locked in job_id order. Print OS runs write the print
-- operation's rows in every run; scanner runs only when a scan names the
-- print operation, and only then take the lock. Every other operation's rows
-- are written by scans alone. The lock is held to the end of the transaction.
create or replace function tracking_private.lock_print_operation_rows() returns void
language sql volatile
set search_path = pg_catalog, public
as $$
  select pg_advisory_xact_lock(hashtext('shopfloor.tracking.print_operation_rows'));
$$;
comment on function tracking_private.lock_print_operation_rows() is 'Taken before writing the print operation''s job or imposition operation rows (print OS runs, and scanner runs whose scans name print); see the comment above it.';

------------------------------------------------------------------------------
-- Print OS
------------------------------------------------------------------------------

create or replace function tracking.process_print_os(p_force boolean default false) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, public
-- Temp-table statistics from a small sample (analyze of 300,000 rows: 70 ms
-- instead of 600 ms); JIT off: see docs/tracking.md, "Latency"; sorts and
-- hashes of a big backlog in memory, not in temp files.
set default_statistics_target = 10
set jit = off
set work_mem = '64MB'
as $$
declare
  v_last bigint;
  v_max bigint;
  -- Seeded by the tracking migrations; without it records with issues are not retried.
  v_limit int := ops.setting_numeric('tracking.issue_retry_limit')::int;
  v_op text;
  v_count int;
  v_retried int;
  v_jobs int;
  v_ids bigint[];
  v_pattern text;
  v_job_group int;
begin
  select last_processed_id into v_last from tracking.processing_markers where marker_type = 'print_os' for update;
  -- Nothing pending: answer before any temp table is made (the common wake-up of the other source).
  if not coalesce(p_force, false)
     and not exists (select 1 from tracking_private.pending_records q where q.source_type = 'print_os')
     and not exists (select 1 from tracking.processing_issues i
                      where i.source_type = 'print_os' and i.resolved_at is null and i.attempts < v_limit) then
    return jsonb_build_object('processed_count', 0, 'retried_count', 0, 'jobs_updated', 0, 'last_marker', v_last);
  end if;
  select pattern, job_group into v_pattern, v_job_group from tracking_private.file_id_pattern_or_null();
  select operation_id into v_op from tracking.operation_catalogue where name = 'print';

  perform tracking_private.use_temp_table('_pos', 'id bigint, imposition_id text, status text, marker bigint, event_at timestamptz, fresh boolean');
  perform tracking_private.use_temp_table('_pos_files', 'id bigint, imposition_id text, status text, event_at timestamptz, file_id text, job_id text, job_known boolean, single_file boolean');
  perform tracking_private.use_temp_table('_issues', 'source_id bigint, kind text, subject text, reason text');
  perform tracking_private.use_temp_table('_pos_jobs', 'id bigint, job_id text, imposition_id text, status text, event_at timestamptz, single_file boolean');
  perform tracking_private.use_temp_table('_pjob_touched', 'job_id text, event_at timestamptz, source_id bigint, printed_now boolean');
  perform tracking_private.use_temp_table('_pjob_state', 'job_id text, event_at timestamptz, source_id bigint, total int, printed int, aborted int, keep boolean, status text, note text');
  -- The queued records (with force, every unprocessed one): their queue rows
  -- deleted and the records marked processed here, in the same transaction
  -- as the effects below (exactly once, whatever the commit order); plus
  -- processed ones with open issues (with force, all processed ones).
  -- The ids go through an array: an index scan for one record or 100,000,
  -- whatever the queue's statistics say (they lag behind a drained backlog).
  if coalesce(p_force, false) then
    insert into tracking_private.pending_records (source_type, record_id)
      select 'print_os', id from tracking."print OS" where processed_at is null
      on conflict do nothing;
  end if;
  with queued as (
    delete from tracking_private.pending_records q where q.source_type = 'print_os' returning q.record_id
  ), marked as (
    update tracking."print OS" p set processed_at = now()
     where p.id = any (array(select record_id from queued)) and p.processed_at is null
    returning p.id, p.name, p.status, p.marker, tracking_private.event_time(p.job_complete_time, p.created_at) as event_at
  )
  insert into _pos
    select m.id, tracking_private.sent_code(m.name) as imposition_id, m.status, m.marker, m.event_at, true as fresh from marked m
    union all
    select p.id, tracking_private.sent_code(p.name), p.status, p.marker, tracking_private.event_time(p.job_complete_time, p.created_at), false
      from tracking."print OS" p
     where coalesce(p_force, false) and p.processed_at is not null
    union all
    -- (a branch of its own: an `or` with the force flag would scan the whole table in every run)
    select p.id, tracking_private.sent_code(p.name), p.status, p.marker, tracking_private.event_time(p.job_complete_time, p.created_at), false
      from tracking."print OS" p
     where not coalesce(p_force, false) and p.processed_at is not null
       and p.id in (select source_id from tracking.processing_issues
                     where source_type = 'print_os' and resolved_at is null and attempts < v_limit);
  select count(*) filter (where coalesce(p_force, false) or fresh)::int, count(*)::int, max(marker) filter (where fresh), array_agg(id)
    into v_count, v_retried, v_max, v_ids from _pos;
  v_retried := v_retried - v_count;
  if v_count + v_retried = 0 then
    return jsonb_build_object('processed_count', 0, 'retried_count', 0, 'jobs_updated', 0, 'last_marker', v_last);
  end if;
  -- Statistics on every temp table, also for one record: without them the
  -- planner guesses hundreds of rows and hashes whole tables (or, with a
  -- correlated sub-plan, costs millions and JIT-compiles).
  analyze _pos;

  -- The files of each record: those mapped to its imposition, or, when its
  -- name is no imposition but a file id, that one file (printed outside an
  -- imposition; the name then stands for the imposition in file_print_status).
  -- One join: the name is matched against the pattern only when it is no
  -- imposition (the `or` stops at a mapped row).
  insert into _pos_files
    select f.*, (j.job_id is not null) as job_known, f.file_id = f.imposition_id as single_file
      from (
        select r.id, r.imposition_id, r.status, r.event_at,
               coalesce(m.file_id, r.imposition_id) as file_id,
               case when m.imposition_id is null then nullif((regexp_match(r.imposition_id, v_pattern))[v_job_group], '')
                    else m.job_id end as job_id
          from _pos r left join tracking.imposition_file_mapping m on m.imposition_id = r.imposition_id
         where m.imposition_id is not null or r.imposition_id ~ v_pattern
      ) f
      left join tracking.jobs j on j.job_id = f.job_id;
  analyze _pos_files;

  insert into _issues
    select r.id as source_id, 'unknown_imposition'::text as kind, r.imposition_id as subject,
           format('imposition %s has no file mapping and is not a file id', r.imposition_id) as reason
      from _pos r where not exists (select 1 from _pos_files f where f.id = r.id)
    union all
    select f.id, 'unparseable_file_id', f.file_id, format('file id %s does not match tracking.file_id_pattern', f.file_id)
      from _pos_files f where f.job_id is null
    union all
    select f.id, 'unknown_job', f.job_id, format('job %s (file %s) is not in tracking.jobs', f.job_id, f.file_id)
      from _pos_files f where f.job_id is not null and not f.job_known;

  -- Per file: printed once stays printed (spec 8.3: an abort keeps the
  -- current status); otherwise the latest outcome by event time.
  -- Known files are updated, new ones inserted without `on conflict`: its
  -- speculative insertion made a backlog's inserts ~40% slower, and only
  -- this function writes file_print_status and print_os history, behind the
  -- marker lock. Which rows exist is looked up first (`known`, in the
  -- statement's own snapshot): an anti-join in the insert itself may be
  -- planned as a nested loop over the table it fills.
  with latest as (
    select l.*, (s.imposition_id is not null) as known
      from (select distinct on (imposition_id, file_id) imposition_id, file_id, job_id, lower(status) as status, id, event_at
              from _pos_files
             order by imposition_id, file_id, (status = 'PRINTED') desc, event_at desc, id desc) l
      left join tracking.file_print_status s on (s.imposition_id, s.file_id) = (l.imposition_id, l.file_id)
  ), updated as (
    update tracking.file_print_status s
       set status = l.status, source_id = l.id, event_at = l.event_at, job_id = l.job_id
      from latest l
     where l.known and (s.imposition_id, s.file_id) = (l.imposition_id, l.file_id)
       and (l.status = 'printed', l.event_at, l.id) > (s.status = 'printed', s.event_at, s.source_id)
  )
  insert into tracking.file_print_status (imposition_id, file_id, job_id, status, source_id, event_at)
    select imposition_id, file_id, job_id, status, id, event_at from latest where not known;

  -- One row per record and job (a record has a row per file), sorted by job:
  -- the history below is inserted in this order, and its job index fills in
  -- order, far cheaper than in a hash's order.
  insert into _pos_jobs
    select distinct on (job_id, id) id, job_id, imposition_id, status, event_at, single_file
      from _pos_files where job_known order by job_id, id, single_file desc;
  analyze _pos_jobs;

  -- Per job: all of its distinct file ids (mapped, or printed on their own).
  -- A run that brings the job only aborts which do not settle it (not all
  -- of its files aborted) keeps the job's status: `keep`.
  insert into _pjob_touched
    select job_id,
           (array_agg(event_at order by (status = 'PRINTED') desc, event_at desc, id desc))[1] as event_at,
           (array_agg(id order by (status = 'PRINTED') desc, event_at desc, id desc))[1] as source_id,
           bool_or(status = 'PRINTED') as printed_now
      from _pos_jobs group by job_id;
  analyze _pjob_touched;
  -- The state's time is the job's latest file outcome, not only this run's
  -- records: a press that reports late (an earlier event time than a file
  -- already printed) completes the job all the same.
  insert into _pjob_state
    with files as (
      -- One row per distinct file id: printed (any outcome printed), aborted, or null (no outcome yet).
      select job_id, file_id, bool_or(printed) as printed, max(event_at) as event_at
        from (select m.job_id, m.file_id, null::boolean as printed, null::timestamptz as event_at
                from tracking.imposition_file_mapping m join _pjob_touched t using (job_id)
              union all
              select s.job_id, s.file_id, s.status = 'printed', s.event_at
                from tracking.file_print_status s join _pjob_touched t using (job_id)) f
       group by job_id, file_id
    ), counts as (
      select job_id, count(*)::int as total,
             count(*) filter (where printed)::int as printed,
             count(*) filter (where not printed)::int as aborted,
             max(event_at) as latest
        from files group by job_id
    )
    select t.job_id, greatest(t.event_at, c.latest), t.source_id, c.total, c.printed, c.aborted,
           not t.printed_now and c.aborted < c.total as keep,
           case when c.printed = c.total then 'completed'
                when c.printed > 0 then 'partial'
                else 'aborted' end as status,
           case when c.printed = c.total then format('all %s file(s) printed', c.total)
                when c.aborted = c.total then format('all %s file(s) aborted', c.total)
                else format('%s of %s file(s) printed, %s aborted', c.printed, c.total, c.aborted) end as note
      from _pjob_touched t join counts c using (job_id);
  analyze _pjob_state;

  -- History: the job's print state after the record (as in job_operations
  -- and jobs.operations), and what the record itself said in the note.
  -- Rows these records already have (a retry, a forced run) are skipped:
  -- looked up first, not `on conflict` (see file_print_status above).
  perform tracking_private.find_logged('print_os', v_ids);
  with ins as (
    insert into tracking.job_status_updates (job_id, operation, status, source_type, source_id, event_at, notes)
    select f.job_id, 'print', s.status, 'print_os', f.id, f.event_at,
           format('%s %s %s; job: %s%s',
                  case when f.single_file then 'file' else 'imposition' end, f.imposition_id, lower(f.status), s.note,
                  case when f.status = 'ABORTED' and s.keep then ', status kept' else '' end)
      from _pos_jobs f join _pjob_state s on s.job_id = f.job_id
     where not exists (select 1 from _logged l where (l.source_id, l.job_id, l.operation) = (f.id, f.job_id, 'print'))
    returning job_id
  )
  select count(*)::int into v_jobs from (select distinct job_id from ins) d;

  perform tracking_private.record_issues('print_os', v_ids);

  v_max := greatest(v_last, v_max);
  perform tracking_private.move_marker('print_os', v_max);

  -- Last, the rows a scanner run may also write, in the order both take
  -- them (see lock_print_operation_rows): the print operation's rows, then
  -- the jobs. Taken this late, the locks are held for the shortest time.
  perform tracking_private.lock_print_operation_rows();
  update tracking.job_operations o
     set completed_at = s.event_at, completed_by = 'print_os', source_id = s.source_id, status = s.status, notes = s.note
    from _pjob_state s join tracking.jobs j on j.job_id = s.job_id
   where o.job_id = s.job_id and o.version_tag is not distinct from j.version_tag and o.operation_id = v_op
     and not s.keep
     and (o.completed_at is null or o.completed_at <= s.event_at)
     and (o.completed_at, o.completed_by, o.source_id, o.status, o.notes)
         is distinct from (s.event_at, 'print_os', s.source_id, s.status, s.note);

  update tracking.imposition_operations o
     set completed_at = r.event_at, completed_by = 'print_os', source_id = r.id,
         status = case r.status when 'PRINTED' then 'completed' else 'aborted' end, notes = null
    from (select distinct on (imposition_id) imposition_id, id, status, event_at from _pos
           order by imposition_id, event_at desc, id desc) r
   where o.imposition_id = r.imposition_id and o.operation_id = v_op
     and (o.completed_at is null or o.completed_at <= r.event_at)
     and (o.completed_at, o.completed_by, o.source_id, o.status)
         is distinct from (r.event_at, 'print_os', r.id, case r.status when 'PRINTED' then 'completed' else 'aborted' end);

  perform 1 from tracking.jobs j join _pjob_state s using (job_id) order by j.job_id for update of j;
  update tracking.jobs j
     set operations = j.operations || jsonb_build_object('print', s.status = 'completed'),
         operation_times = j.operation_times || jsonb_build_object('print', s.event_at),
         updated_at = now()
    from _pjob_state s
   where j.job_id = s.job_id and not s.keep
     and coalesce((j.operation_times ->> 'print')::timestamptz, '-infinity') <= s.event_at
     and ((j.operations -> 'print') is distinct from to_jsonb(s.status = 'completed')
          or (j.operation_times ->> 'print')::timestamptz is distinct from s.event_at);

  return jsonb_build_object('processed_count', v_count, 'retried_count', v_retried, 'jobs_updated', v_jobs, 'last_marker', v_max);
end
$$;
comment on function tracking.process_print_os(boolean) is 'Applies pending print OS records (processed_at is null, whatever their marker; all with force) to file, job and imposition print status. Returns {processed_count, retried_count, jobs_updated, last_marker}. Safe to run twice or concurrently.';

------------------------------------------------------------------------------
-- Scanner
------------------------------------------------------------------------------

create or replace function tracking.process_scanned_codes() returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, public
-- Temp-table statistics from a small sample (analyze of 300,000 rows: 70 ms
-- instead of 600 ms); JIT off: see docs/tracking.md, "Latency"; sorts and
-- hashes of a big backlog in memory, not in temp files.
set default_statistics_target = 10
set jit = off
set work_mem = '64MB'
as $$
declare
  v_last bigint;
  v_max bigint;
  -- Seeded by the tracking migrations; without it records with issues are not retried.
  v_limit int := ops.setting_numeric('tracking.issue_retry_limit')::int;
  v_count int;
  v_retried int;
  v_jobs int;
  v_ids bigint[];
  v_pattern text;
  v_job_group int;
begin
  select last_processed_id into v_last from tracking.processing_markers where marker_type = 'scanned_codes' for update;
  if not exists (select 1 from tracking_private.pending_records q where q.source_type = 'scanner')
     and not exists (select 1 from tracking.processing_issues i
                      where i.source_type = 'scanner' and i.resolved_at is null and i.attempts < v_limit) then
    return jsonb_build_object('processed_count', 0, 'retried_count', 0, 'jobs_updated', 0, 'last_marker', v_last);
  end if;
  select pattern, job_group into v_pattern, v_job_group from tracking_private.file_id_pattern_or_null();

  perform tracking_private.use_temp_table('_scans', 'scan_id bigint, code_text text, event_at timestamptz, operations jsonb, machine_id text, fresh boolean');
  perform tracking_private.use_temp_table('_scan_ops', 'scan_id bigint, name text, operation_id text');
  perform tracking_private.use_temp_table('_scan_job', 'scan_id bigint, code_text text, file_job text, job_id text, is_runlist boolean');
  perform tracking_private.use_temp_table('_scan_imps', 'scan_id bigint, runlist_id text, imposition_id text');
  perform tracking_private.use_temp_table('_imp_files', 'imposition_id text, file_id text, job_id text, job_known boolean');
  perform tracking_private.use_temp_table('_scan_jobs', 'scan_id bigint, job_id text, via text');
  perform tracking_private.use_temp_table('_issues', 'source_id bigint, kind text, subject text, reason text');
  perform tracking_private.use_temp_table('_eff', 'scan_id bigint, job_id text, via text, name text, operation_id text, event_at timestamptz, code_text text, machine_id text');
  perform tracking_private.use_temp_table('_scan_latest', 'job_id text, name text, operation_id text, event_at timestamptz, scan_id bigint, code_text text, machine_id text');
  -- The queued scans, their queue rows deleted and the scans marked processed
  -- here, in the same transaction as the effects below; plus processed ones
  -- with open issues.
  with queued as (
    delete from tracking_private.pending_records q where q.source_type = 'scanner' returning q.record_id
  ), marked as (
    update tracking.scanned_codes s set processed_at = now()
     where s.scan_id = any (array(select record_id from queued)) and s.processed_at is null  -- see process_print_os
    returning s.scan_id, s.code_text, s.scanned_at, s.operations, s.machine_id
  )
  insert into _scans
    select m.scan_id, tracking_private.sent_code(m.code_text) as code_text, tracking_private.event_time(m.scanned_at, now()) as event_at, m.operations, m.machine_id, true as fresh from marked m
    union all
    select s.scan_id, tracking_private.sent_code(s.code_text), tracking_private.event_time(s.scanned_at, now()), s.operations, s.machine_id, false
      from tracking.scanned_codes s
     where s.processed_at is not null
       and s.scan_id in (select source_id from tracking.processing_issues
                          where source_type = 'scanner' and resolved_at is null and attempts < v_limit);
  select count(*) filter (where fresh)::int, count(*)::int, max(scan_id) filter (where fresh), array_agg(scan_id)
    into v_count, v_retried, v_max, v_ids from _scans;
  v_retried := v_retried - v_count;
  if v_count + v_retried = 0 then
    return jsonb_build_object('processed_count', 0, 'retried_count', 0, 'jobs_updated', 0, 'last_marker', v_last);
  end if;
  analyze _scans;  -- statistics on every temp table: see process_print_os

  -- Operations: ["coating", ...] or ["op003", ...] (names or operation ids),
  -- {"coating": true, ...} (false = not done) or "coating".
  -- Each distinct operations value is unpacked once (a backlog repeats a few).
  insert into _scan_ops
    with unpacked as (
      select v.operations, coalesce(c.name, op.name) as name, c.operation_id
        from (select distinct operations from _scans) v
        cross join lateral (
          select e #>> '{}' as name from jsonb_array_elements(case jsonb_typeof(v.operations) when 'array' then v.operations else '[]' end) e
           where jsonb_typeof(e) = 'string'
          union all
          select k from jsonb_each(case jsonb_typeof(v.operations) when 'object' then v.operations else '{}' end) kv(k, val) where val = 'true'::jsonb
          union all
          select v.operations #>> '{}' where jsonb_typeof(v.operations) = 'string'
        ) op
        left join (select name as key, name, operation_id from tracking.operation_catalogue
                   union all
                   select lower(operation_id), name, operation_id from tracking.operation_catalogue) c
          on c.key = lower(btrim(op.name))
    )
    select distinct s.scan_id, u.name, u.operation_id
      from _scans s join unpacked u on u.operations = s.operations;
  analyze _scan_ops;

  -- What the code names, unless it is a runlist: a job id, a file id (its
  -- job, by tracking.file_id_pattern), or job_id_version_tag.
  insert into _scan_job
    select s.scan_id, s.code_text, k.file_job, coalesce(by_code.job_id, by_file.job_id, by_tag.job_id) as job_id,
           runlist.runlist_id is not null as is_runlist
      from _scans s
      cross join lateral (select nullif((regexp_match(s.code_text, v_pattern))[v_job_group], '') as file_job,
                                 substring(s.code_text from '^(.*)_[^_]*$') as tagged_job) k
      -- joins, not sub-selects per scan: a backlog hashes jobs and the
      -- scanned runlists once; one scan looks them up by index
      left join (select distinct p.runlist_id from tracking.production_planner_paths p
                  where p.runlist_id in (select code_text from _scans)) runlist on runlist.runlist_id = s.code_text
      left join tracking.jobs by_code on by_code.job_id = s.code_text
      left join tracking.jobs by_file on by_file.job_id = k.file_job
      left join tracking.jobs by_tag on by_tag.job_id = k.tagged_job;
  -- A version tag may hold `_` too (`4604_5889_v2_final`): a code still
  -- unresolved is a job's id and version tag joined by `_`, split at any `_`
  -- (the longest such job id). Only unresolved codes get here, so a backlog
  -- pays nothing for it.
  update _scan_job sj set job_id = c.job_id
    from (select distinct on (u.scan_id) u.scan_id, j.job_id
            from _scan_job u
            cross join lateral tracking_private.code_prefixes(u.code_text) p
            join tracking.jobs j on j.job_id = p.prefix
           where u.job_id is null and not u.is_runlist and u.file_job is null
             and j.job_id || '_' || j.version_tag = u.code_text
           order by u.scan_id, length(p.prefix) desc) c
   where sj.scan_id = c.scan_id;
  analyze _scan_job;

  -- Impositions of the runlist: scanned directly, or the runlists holding a
  -- scanned job (joins, not a correlated IN: see docs/tracking.md, latency).
  insert into _scan_imps
    select sj.scan_id, p.runlist_id, p.imposition_id
      from _scan_job sj join tracking.production_planner_paths p on p.runlist_id = sj.code_text
     where sj.is_runlist
    union
    select sj.scan_id, p.runlist_id, p.imposition_id
      from _scan_job sj
      -- each of the job's impositions once, not once per file
      join (select distinct m.job_id, m.imposition_id from tracking.imposition_file_mapping m
             where m.job_id in (select job_id from _scan_job where not is_runlist)) m on m.job_id = sj.job_id
      join tracking.production_planner_paths held on held.imposition_id = m.imposition_id
      join tracking.production_planner_paths p on p.runlist_id = held.runlist_id
     where not sj.is_runlist;
  analyze _scan_imps;

  -- The files of the scanned impositions, once per imposition: a backlog
  -- scans the same runlists again and again (per scan and file it was three
  -- times the rows).
  insert into _imp_files
    select m.imposition_id, m.file_id, m.job_id, (j.job_id is not null) as job_known
      from (select distinct imposition_id from _scan_imps) i
      join tracking.imposition_file_mapping m on m.imposition_id = i.imposition_id
      left join tracking.jobs j on j.job_id = m.job_id;
  analyze _imp_files;

  insert into _scan_jobs
    select i.scan_id, f.job_id, 'runlist'::text as via
      from _scan_imps i join (select distinct imposition_id, job_id from _imp_files where job_known) f using (imposition_id)
    union
    select sj.scan_id, sj.job_id, 'job' from _scan_job sj
     where not sj.is_runlist and sj.job_id is not null
       and not exists (select 1 from _scan_imps i where i.scan_id = sj.scan_id);
  analyze _scan_jobs;

  insert into _issues
    select sj.scan_id as source_id, 'unknown_code'::text as kind, sj.code_text as subject,
           format('code %s is neither a runlist, a known job nor a file id', sj.code_text) as reason
      from _scan_job sj where not sj.is_runlist and sj.job_id is null and sj.file_job is null
    union all
    select sj.scan_id, 'unknown_job', sj.file_job, format('job %s (scanned file %s) is not in tracking.jobs', sj.file_job, sj.code_text)
      from _scan_job sj where not sj.is_runlist and sj.job_id is null and sj.file_job is not null
    union all
    select o.scan_id, 'unknown_operation', o.name, format('operation %s is not in tracking.operation_catalogue', o.name)
      from _scan_ops o where o.operation_id is null
    union all
    select s.scan_id, 'malformed_record', left(coalesce(s.operations::text, 'null'), 200),
           'operations must be ["name" or "id", ...], {"name": true|false, ...} or "name", not empty'
      from _scans s
     where case jsonb_typeof(s.operations)
             when 'array' then jsonb_array_length(s.operations) = 0
                            or exists (select 1 from jsonb_array_elements(s.operations) e where jsonb_typeof(e) <> 'string')
             when 'object' then s.operations = '{}'::jsonb
                            or exists (select 1 from jsonb_each(s.operations) kv where jsonb_typeof(kv.value) <> 'boolean')
             when 'string' then s.operations #>> '{}' = ''
             else true end
    union all
    select i.scan_id, 'unknown_imposition', i.imposition_id, format('imposition %s (runlist %s) has no file mapping', i.imposition_id, i.runlist_id)
      from _scan_imps i where not exists (select 1 from _imp_files f where f.imposition_id = i.imposition_id)
    union all
    select i.scan_id, 'unparseable_file_id', f.file_id, format('file id %s does not match tracking.file_id_pattern', f.file_id)
      from _scan_imps i join _imp_files f using (imposition_id) where f.job_id is null
    union all
    select i.scan_id, 'unknown_job', f.job_id, format('job %s (file %s) is not in tracking.jobs', f.job_id, f.file_id)
      from _scan_imps i join _imp_files f using (imposition_id) where f.job_id is not null and not f.job_known;

  insert into _eff
    select sj.scan_id, sj.job_id, sj.via, o.name, o.operation_id, s.event_at, s.code_text, s.machine_id
      from _scan_jobs sj join _scans s using (scan_id) join _scan_ops o using (scan_id)
     where o.operation_id is not null;
  analyze _eff;
  -- The latest scan per job and operation (for the job, its operations),
  -- with statistics: as a sub-query its row count was unknown, and the jobs
  -- update grouped it in a hash planned for 200 jobs (46,000 in a backlog:
  -- spilled to disk).
  insert into _scan_latest
    select distinct on (e.job_id, e.name) e.job_id, e.name, e.operation_id, e.event_at, e.scan_id, e.code_text, e.machine_id
      from _eff e order by e.job_id, e.name, e.event_at desc, e.scan_id desc;
  analyze _scan_latest;

  -- History rows these scans already have are skipped: see process_print_os.
  perform tracking_private.find_logged('scanner', v_ids);
  with ins as (
    insert into tracking.job_status_updates (job_id, operation, status, source_type, source_id, event_at, notes)
    select e.job_id, e.name, 'completed', 'scanner', e.scan_id, e.event_at,
           format('%s scan %s on %s', e.via, e.code_text, coalesce(e.machine_id, 'unknown machine'))
      from (select distinct on (scan_id, job_id, name) * from _eff order by scan_id, job_id, name) e
     where not exists (select 1 from _logged l where (l.source_id, l.job_id, l.operation) = (e.scan_id, e.job_id, e.name))
    returning job_id
  )
  select count(*)::int into v_jobs from (select distinct job_id from ins) d;

  perform tracking_private.record_issues('scanner', v_ids);

  v_max := greatest(v_last, v_max);
  perform tracking_private.move_marker('scanned_codes', v_max);

  -- Last, the operations and the jobs, in the order a print OS run takes
  -- them (see tracking_private.lock_print_operation_rows): a scan that names
  -- the print operation writes rows a print OS run writes too.
  if exists (select 1 from _scan_ops o join tracking.operation_catalogue c using (operation_id) where c.name = 'print') then
    perform tracking_private.lock_print_operation_rows();
  end if;
  update tracking.job_operations o
     set completed_at = e.event_at, completed_by = 'scanner', source_id = e.scan_id, status = 'completed',
         notes = format('scan %s on %s', e.code_text, coalesce(e.machine_id, 'unknown machine'))
    from _scan_latest e join tracking.jobs j on j.job_id = e.job_id
   where o.job_id = e.job_id and o.version_tag is not distinct from j.version_tag and o.operation_id = e.operation_id
     and (o.completed_at is null or o.completed_at <= e.event_at)
     and (o.completed_at, o.completed_by, o.source_id, o.status) is distinct from (e.event_at, 'scanner', e.scan_id, 'completed');

  update tracking.imposition_operations o
     set completed_at = e.event_at, completed_by = 'scanner', source_id = e.scan_id, status = 'completed',
         notes = format('runlist %s', e.runlist_id)
    from (select distinct on (i.imposition_id, op.operation_id) i.imposition_id, i.runlist_id, op.operation_id, s.scan_id, s.event_at
            from _scan_imps i join _scans s using (scan_id) join _scan_ops op using (scan_id)
           where op.operation_id is not null
           order by i.imposition_id, op.operation_id, s.event_at desc, s.scan_id desc) e
   where o.imposition_id = e.imposition_id and o.operation_id = e.operation_id
     and (o.completed_at is null or o.completed_at <= e.event_at)
     and (o.completed_at, o.completed_by, o.source_id, o.status) is distinct from (e.event_at, 'scanner', e.scan_id, 'completed');

  perform 1 from tracking.jobs j where j.job_id in (select job_id from _eff) order by j.job_id for update;
  with applicable as (
    select l.job_id, l.name, l.event_at from _scan_latest l join tracking.jobs j on j.job_id = l.job_id
     where coalesce((j.operation_times ->> l.name)::timestamptz, '-infinity') <= l.event_at
       and ((j.operations -> l.name) is distinct from 'true'::jsonb
            or (j.operation_times ->> l.name)::timestamptz is distinct from l.event_at)
  ), agg as (
    select job_id, jsonb_object_agg(name, true) as ops, jsonb_object_agg(name, event_at) as times
      from applicable group by job_id
  )
  update tracking.jobs j
     set operations = j.operations || agg.ops, operation_times = j.operation_times || agg.times, updated_at = now()
    from agg where j.job_id = agg.job_id;

  return jsonb_build_object('processed_count', v_count, 'retried_count', v_retried, 'jobs_updated', v_jobs, 'last_marker', v_max);
end
$$;
comment on function tracking.process_scanned_codes() is 'Applies pending scans (processed_at is null, whatever their scan_id) to job and imposition operations. Returns {processed_count, retried_count, jobs_updated, last_marker}. Safe to run twice or concurrently.';

create or replace function tracking.process_status_updates(p_source text default 'both') returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  p jsonb := '{}';
  s jsonb := '{}';
begin
  if p_source is null or p_source not in ('both', 'print_os', 'scanner') then
    raise exception 'source must be both, print_os or scanner, not %', coalesce(p_source, '(null)') using errcode = 'SF422';
  end if;
  -- Both marker rows are locked before any job row, print OS first: a 'both'
  -- run would otherwise hold jobs from its print OS part while waiting for the
  -- scanner marker that a scanner-only run holds while it waits for those jobs.
  if p_source = 'both' then
    perform 1 from tracking.processing_markers where marker_type in ('print_os', 'scanned_codes')
      order by marker_type for update;
  end if;
  if p_source in ('both', 'print_os') then p := tracking.process_print_os(false); end if;
  if p_source in ('both', 'scanner') then s := tracking.process_scanned_codes(); end if;
  return jsonb_build_object(
    'print_os_processed', coalesce((p ->> 'processed_count')::int, 0),
    'scanner_processed', coalesce((s ->> 'processed_count')::int, 0),
    'jobs_updated', coalesce((p ->> 'jobs_updated')::int, 0) + coalesce((s ->> 'jobs_updated')::int, 0));
end
$$;
comment on function tracking.process_status_updates(text) is 'Runs print OS and/or scanner processing (source: both, print_os, scanner). Returns {print_os_processed, scanner_processed, jobs_updated}.';

------------------------------------------------------------------------------
-- The printer feed
------------------------------------------------------------------------------

create or replace function tracking.record_print_os(
  p_name text, p_status text, p_marker bigint,
  p_job_name text default null, p_item_id text default null, p_job_complete_time timestamptz default null,
  p_copies integer default null, p_payload jsonb default '{}'
) returns tracking."print OS"
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  result tracking."print OS";
begin
  if coalesce(tracking_private.sent_code(p_name), '') = '' then
    raise exception 'name (the imposition id) is required and must not be blank' using errcode = 'SF422';
  end if;
  if length(p_name) > 500 then
    raise exception 'name (the imposition id) may have at most 500 characters, not %', length(p_name) using errcode = 'SF422';
  end if;
  if p_status is null or upper(tracking_private.sent_code(p_status)) not in ('PRINTED', 'ABORTED') then
    raise exception 'status must be PRINTED or ABORTED' using errcode = 'SF422';
  end if;
  if p_marker is null then
    raise exception 'marker is required' using errcode = 'SF422';
  end if;
  begin
    insert into tracking."print OS" (name, status, marker, job_name, item_id, job_complete_time, copies, payload)
    values (p_name, upper(tracking_private.sent_code(p_status)), p_marker, p_job_name, p_item_id, p_job_complete_time, p_copies, coalesce(p_payload, '{}'))
    returning * into result;
  exception when unique_violation then
    raise exception 'A print OS record with marker % already exists', p_marker using errcode = 'SF409';
  end;
  return result;
end
$$;
comment on function tracking.record_print_os(text, text, bigint, text, text, timestamptz, integer, jsonb) is 'Records one print OS record from the printer feed. SF409 when its marker is already recorded.';

------------------------------------------------------------------------------
-- Triggers: new records → the queue and one debounced worker job per source
------------------------------------------------------------------------------

-- A statement's new records are queued for processing
-- (tracking_private.pending_records) and their source's task is woken
-- (ops_private.wake: a job still waiting serves a whole burst). Each source
-- has its own task, so the worker runs print OS and scanner processing side
-- by side. Arguments: the source type, the column holding the record id, the
-- task. EXECUTE names that column (transition tables are visible to it).
create or replace function tracking_private.tg__queue_records() returns trigger
language plpgsql security definer
set search_path = pg_catalog, public
as $$
declare
  queued int;
begin
  execute format('insert into tracking_private.pending_records (source_type, record_id)
                  select %L, %I from new_rows where processed_at is null
                  on conflict do nothing', tg_argv[0], tg_argv[1]);
  get diagnostics queued = row_count;
  if queued > 0 then
    perform ops_private.wake(tg_argv[2]);
  end if;
  return null;
end
$$;

-- A processed record whose processed_at a DBA sets back to null (to apply it
-- again) is queued again. A row trigger: its condition keeps processing's own
-- updates of processed_at free of trigger calls. Arguments as above.
create or replace function tracking_private.tg__requeue_record() returns trigger
language plpgsql security definer
set search_path = pg_catalog, public
as $$
begin
  insert into tracking_private.pending_records (source_type, record_id)
    values (tg_argv[0], (to_jsonb(new) ->> tg_argv[1])::bigint)
    on conflict do nothing;
  return null;
end
$$;

drop trigger if exists print_os_queued on tracking."print OS";        -- folded into *_added
drop trigger if exists scanned_codes_queued on tracking.scanned_codes;
create or replace trigger print_os_added
  after insert on tracking."print OS"
  referencing new table as new_rows
  for each statement execute function tracking_private.tg__queue_records('print_os', 'id', 'tracking_process_print_os');
create or replace trigger scanned_codes_added
  after insert on tracking.scanned_codes
  referencing new table as new_rows
  for each statement execute function tracking_private.tg__queue_records('scanner', 'scan_id', 'tracking_process_scans');
create or replace trigger print_os_requeued
  after update of processed_at on tracking."print OS"
  for each row when (new.processed_at is null and old.processed_at is not null)
  execute function tracking_private.tg__requeue_record('print_os', 'id');
create or replace trigger scanned_codes_requeued
  after update of processed_at on tracking.scanned_codes
  for each row when (new.processed_at is null and old.processed_at is not null)
  execute function tracking_private.tg__requeue_record('scanner', 'scan_id');
-- Missing data that arrives gives back their retries to the records it held
-- back: open issues about a new imposition, job or runlist get attempts = 0
-- (they are retried on the next run, up to tracking.issue_retry_limit again)
-- and their source's task is woken. Without this, a record that came before
-- its mapping used up its retries on the runs of other records (every insert
-- wakes a run) and was never applied. A code matches a new job when it is
-- the job id or starts with it and `_` (job_id_version_tag).
create or replace function tracking_private.retry_issues_about(p_kinds text[], p_subjects text[]) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_sources text[];
begin
  -- Joins, not `= any` per issue: a bulk import brings 300,000 subjects, and
  -- a plant may hold thousands of open issues. What an open issue may be
  -- about: its subject, and for a code each part before a `_`.
  with subjects as (
    select distinct x as subject from unnest(p_subjects) x
  ), about as (
    select i.issue_id, i.subject as key from tracking.processing_issues i
     where i.resolved_at is null and i.kind = any (p_kinds)
    union all
    select i.issue_id, p.prefix from tracking.processing_issues i
     cross join lateral tracking_private.code_prefixes(i.subject) p
     where i.resolved_at is null and i.kind = 'unknown_code' and 'unknown_code' = any (p_kinds)
  ), retried as (
    update tracking.processing_issues i set attempts = 0
     where i.issue_id in (select a.issue_id from about a join subjects s on s.subject = a.key)
    returning i.source_type
  )
  select array_agg(distinct source_type) into v_sources from retried;
  if 'print_os' = any (v_sources) then perform ops_private.wake('tracking_process_print_os'); end if;
  if 'scanner' = any (v_sources) then perform ops_private.wake('tracking_process_scans'); end if;
end
$$;

-- Statement trigger on the tables missing data arrives in. Arguments: the
-- issue kinds (an array literal) and the column holding their subject.
-- Nothing to do, and nothing read, while no issue is open.
create or replace function tracking_private.tg__retry_issues() returns trigger
language plpgsql security definer
set search_path = pg_catalog, public
as $$
declare
  v_subjects text[];
begin
  if exists (select 1 from tracking.processing_issues where resolved_at is null) then
    execute format('select array_agg(%I::text) from new_rows', tg_argv[1]) into v_subjects;  -- retry_issues_about takes each once
    perform tracking_private.retry_issues_about(tg_argv[0]::text[], v_subjects);
  end if;
  return null;
end
$$;

create or replace trigger imposition_file_mapping_retry_issues
  after insert on tracking.imposition_file_mapping
  referencing new table as new_rows
  for each statement execute function tracking_private.tg__retry_issues('{unknown_imposition}', 'imposition_id');
create or replace trigger jobs_retry_issues
  after insert on tracking.jobs
  referencing new table as new_rows
  for each statement execute function tracking_private.tg__retry_issues('{unknown_job,unknown_code}', 'job_id');
create or replace trigger production_planner_paths_retry_issues
  after insert on tracking.production_planner_paths
  referencing new table as new_rows
  for each statement execute function tracking_private.tg__retry_issues('{unknown_code}', 'runlist_id');

drop function if exists tracking_private.tg__wake_processing();  -- the wake is part of queueing now
drop function if exists tracking.records_added();  -- its former name

------------------------------------------------------------------------------
-- GraphQL shape and grants
------------------------------------------------------------------------------

comment on table tracking."print OS" is E'@name PrintOsRecord\n@behavior -update -delete\nThe printer feed: one row per imposition printed or aborted.';
comment on column tracking."print OS".processed_at is E'@behavior -insert -update\nWhen processing applied this record (null: pending). Set in the same transaction as the effects.';
comment on column tracking.scanned_codes.processed_at is E'@behavior -insert -update\nWhen processing applied this scan (null: pending). Set in the same transaction as the effects.';
comment on table tracking.scanned_codes is E'@name ScannedCode\n@behavior -update -delete\nScans from the overhead scanners on the machines.';
comment on table tracking.processing_markers is E'@name TrackingMarker\n@behavior -insert -update -delete\nHow far processing has come, per source.';
comment on table tracking.operation_catalogue is E'@name TrackingOperation\nOperation names to operation ids (admins edit).';
comment on table tracking.jobs is E'@name PrintJob\nJobs and their operations status.';
comment on column tracking.jobs.operations is E'@behavior -insert -update\nEach operation done (true) or not (false), as processing applied the records.';
comment on column tracking.jobs.operation_times is E'@behavior -insert -update\nThe event time of the record that last set each operation.';
comment on table tracking.job_operations is E'@name PrintJobOperation';
comment on table tracking.imposition_operations is E'@name ImpositionOperation';
comment on table tracking.imposition_file_mapping is E'@name ImpositionFile\nFiles on each imposition; version and job_id are parsed from file_id.';
comment on table tracking.production_planner_paths is E'@name ProductionPlannerPath\nImpositions of each runlist.';
comment on table tracking.file_print_status is E'@name FilePrintStatus\n@behavior -insert -update -delete\nThe latest print outcome per file and imposition.';
comment on table tracking.job_status_updates is E'@name JobStatusUpdate\n@behavior -insert -update -delete\nOne row per job, operation and source record.';
comment on table tracking.processing_issues is E'@name TrackingIssue\n@behavior -insert -update -delete\nRecords that could not be fully applied, with the reason; retried up to tracking.issue_retry_limit.';

grant usage on schema tracking to shopfloor_operator, shopfloor_integration;
grant select on all tables in schema tracking to shopfloor_operator, shopfloor_integration;
-- Feeds insert every column but processed_at (set by processing only).
revoke insert on tracking."print OS", tracking.scanned_codes from shopfloor_integration;
grant insert (id, name, status, marker, job_name, item_id, job_complete_time, copies, payload, created_at, updated_at)
  on tracking."print OS" to shopfloor_integration;
grant insert (scan_id, code_text, scanned_at, machine_id, user_id, operations, metadata)
  on tracking.scanned_codes to shopfloor_integration;
grant insert, update, delete on tracking.job_operations, tracking.imposition_operations,
  tracking.imposition_file_mapping, tracking.production_planner_paths to shopfloor_planner, shopfloor_integration;
-- A job's operations and their times are what processing made of the
-- records: planners and feeds write the job itself, not those (a value of
-- another shape, e.g. "print": "partial" or a time that is no time, failed
-- every later run that touched the job).
revoke insert, update on tracking.jobs from shopfloor_planner, shopfloor_integration;
grant insert (job_id, version_tag, created_at, updated_at), update (job_id, version_tag, created_at, updated_at), delete
  on tracking.jobs to shopfloor_planner, shopfloor_integration;
grant insert, update, delete on tracking.operation_catalogue to shopfloor_admin;

grant execute on function tracking.file_id_regex(), tracking.parse_file_id(text), tracking.jobs_from_imposition(text),
  tracking.job_status(text) to shopfloor_operator, shopfloor_integration;
grant execute on function tracking.process_print_os(boolean), tracking.process_scanned_codes(),
  tracking.process_status_updates(text) to shopfloor_supervisor, shopfloor_integration;
grant execute on function tracking.record_print_os(text, text, bigint, text, text, timestamptz, integer, jsonb) to shopfloor_integration;
grant execute on function tracking.reparse_file_ids() to shopfloor_admin;

------------------------------------------------------------------------------
-- Live events (issues 16 and 19): Subscription.jobStatusChanged
------------------------------------------------------------------------------
-- One NOTIFY per statement that changes a job's status: its operations on
-- tracking.jobs, or an operation's status, completion or notes on
-- job_operations. Statements that change no status send nothing. The payload
-- stays small: how many jobs changed and the first of their ids (at most 100,
-- and at most ~6,000 bytes of them: a NOTIFY payload must stay under 8,000).
create or replace function tracking_private.tg__notify_job_status_changed() returns trigger
language plpgsql security definer
set search_path = pg_catalog, public
as $$
declare
  changed text[];
  ids text[];
begin
  if tg_op = 'INSERT' then
    select array_agg(distinct job_id) into changed from new_rows;
  elsif tg_op = 'DELETE' then
    select array_agg(distinct job_id) into changed from old_rows;
  -- Updates: old and new rows joined on the key (full join: a changed key
  -- counts as changed), the jobs of the pairs whose status differs (an
  -- operation moved to another job names both). EXECUTE, so that each
  -- statement is planned for its own row counts: a hash join for a backlog's
  -- 100,000 rows, where a plan cached for a one-row statement would loop.
  -- (Grouping old and new rows together instead cost a backlog twice as much.)
  elsif tg_table_name = 'jobs' then
    execute $q$
      select array_agg(coalesce(n.job_id, o.job_id))
        from new_rows n full join old_rows o on o.job_id = n.job_id
       where (n.operations, n.version_tag) is distinct from (o.operations, o.version_tag)
    $q$ into changed;
  else
    execute $q$
      select array_agg(distinct id)
        from new_rows n full join old_rows o on o.job_operation_id = n.job_operation_id
             cross join lateral unnest(array[n.job_id, o.job_id]) id
       where (n.job_id, n.status, n.completed_at, n.completed_by, n.notes)
             is distinct from (o.job_id, o.status, o.completed_at, o.completed_by, o.notes)
         and id is not null
    $q$ into changed;
  end if;
  if changed is null then
    return null;
  end if;
  select coalesce(array_agg(job_id order by job_id), '{}') into ids
    from (select job_id, sum(octet_length(job_id) + 3) over (order by job_id) as upto
            from unnest(changed) job_id
           order by job_id limit 100) firsts
   where upto <= 6000;
  perform pg_notify('tracking_job_status_changed',
    json_build_object('table', tg_table_name, 'op', lower(tg_op), 'count', cardinality(changed), 'jobIds', ids)::text);
  return null;
end
$$;

select ops_private.create_transition_triggers('tracking.jobs', 'jobs_status', 'tracking_private.tg__notify_job_status_changed');
select ops_private.create_transition_triggers('tracking.job_operations', 'job_operations_status', 'tracking_private.tg__notify_job_status_changed');
drop function if exists tracking.notify_job_status_changed();  -- its former name

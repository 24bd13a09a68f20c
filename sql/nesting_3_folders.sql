-- nesting, the folders: machines and their Ready-to-Run folders, the
-- processed jobs root (ingest and its prune guard), staging, the Ready page
-- and the stage sanity check.

-- A machine per Ready-to-Run folder. At start-up every READY_DIRS folder
-- without a machine gets one named after the folder (rename it later).
create or replace function nesting_private.ensure_machine(p_ready_dir text) returns nesting.machines
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  m nesting.machines;
begin
  select * into m from nesting.machines where ready_dir = p_ready_dir;
  if not found then
    insert into nesting.machines (name, ready_dir)
    values (coalesce(nullif(regexp_replace(p_ready_dir, '^.*[/\\]', ''), ''), p_ready_dir), p_ready_dir)
    on conflict do nothing
    returning * into m;
  end if;
  return m;
end
$$;

create or replace function nesting.upsert_machine(p_name text, p_ready_dir text, p_grundner_machine integer default 1)
returns nesting.machines
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  m nesting.machines;
begin
  insert into nesting.machines as x (name, ready_dir, grundner_machine) values (p_name, p_ready_dir, p_grundner_machine)
  on conflict (ready_dir) do update set name = excluded.name, grundner_machine = excluded.grundner_machine
  returning * into m;
  perform ops.audit('upsert_machine', 'nesting_machine', m.id::text, to_jsonb(m));
  return m;
end
$$;

-- Records the outcome of a periodic scan; posts one message when a scan starts
-- failing and one when it recovers. Returns the scanner's state.
create or replace function nesting_private.note_scan(p_scanner text, p_source text, p_error text) returns nesting.scan_state
language plpgsql volatile
as $$
declare
  s nesting.scan_state;
begin
  insert into nesting.scan_state (scanner) values (p_scanner) on conflict do nothing;
  select * into s from nesting.scan_state where scanner = p_scanner for update;
  if p_error is null then
    if s.failing_since is not null then
      perform ops.post_message(p_source, 'info', format('%s can be read again', p_scanner), '', jsonb_build_object('scanner', p_scanner));
    end if;
    update nesting.scan_state set last_complete_at = now(), failing_since = null, last_error = null
     where scanner = p_scanner returning * into s;
  else
    if s.failing_since is null then
      perform ops.post_message(p_source, 'error', format('%s could not be read completely; nothing is pruned or released until it can', p_scanner),
        p_error, jsonb_build_object('scanner', p_scanner));
    end if;
    update nesting.scan_state set failing_since = coalesce(failing_since, now()), last_error = p_error
     where scanner = p_scanner returning * into s;
  end if;
  return s;
end
$$;

-- Locks the jobs (key order) and releases the locked ones that no release is
-- already under way for, with one get_production.csv. Used wherever jobs go
-- away (pruned, unstaged, deleted from Ready-to-Run).
create or replace function nesting_private.release_locked(p_keys text[], p_source text, p_reason text,
                                                  out released text[], out request_id bigint)
language plpgsql volatile
as $$
begin
  perform 1 from nesting.jobs where key = any(p_keys) order by key for update;
  select array_agg(key order by key) into released from nesting.jobs
   where key = any(p_keys) and is_locked and nesting_private.open_request_for(key, 'release') is null;
  if released is not null then
    request_id := nesting.unlock_jobs(released, p_source, p_reason);
  end if;
end
$$;

-- The setting nesting.ignored_names (globs: * and ?, any case) as one
-- anchored regular expression that PostgreSQL (~*) and JavaScript
-- (new RegExp(p, "i")) read alike: literals escaped, * -> .*, ? -> .
create or replace function nesting.ignored_name_pattern() returns text
language sql stable
as $$
  select coalesce('^(' || string_agg(
           replace(replace(regexp_replace(g, '([.+^$(){}|\[\]\\])', '\\\1', 'g'), '*', '.*'), '?', '.'), '|') || ')$',
         '^$')
    from jsonb_array_elements_text(coalesce(ops.setting_checked('nesting.ignored_names', 'array', 'a list of names'), '[]')) g
   where g <> ''
$$;

create or replace function nesting_private.is_ignored_name(p_name text) returns boolean
language sql stable
as $$
  select p_name ~* nesting.ignored_name_pattern()
$$;

-- What the ingest poller needs to know for its next scan.
create or replace function nesting_private.ingest_settings() returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'next_scan_ms', (extract(epoch from ops.setting_interval('nesting.ingest_interval')) * 1000)::int,
    'stable_ms', (extract(epoch from ops.setting_interval('nesting.stable_after')) * 1000)::int,
    'ignored_pattern', nesting.ignored_name_pattern(),
    'sentinel_file', coalesce(ops.setting_text('nesting.ingest_sentinel_file'), ''))
$$;

-- Marks the jobs removed (never deleted), releases the locked ones with one
-- get_production.csv, and posts one message.
create or replace function nesting_private.prune_jobs(p_keys text[], out released text[], out request_id bigint)
language plpgsql volatile
as $$
begin
  select r.released, r.request_id into released, request_id
    from nesting_private.release_locked(p_keys, 'jobs-ingest', 'job deleted') r;
  update nesting.jobs set removed_at = now(), pre_reserved = false where key = any(p_keys);
  insert into nesting.job_events (job_key, event, details)
  select k, 'pruned', jsonb_build_object('reason', 'NC file gone from the processed jobs root') from unnest(p_keys) k;
  perform ops.post_message('jobs-ingest', case when released is null then 'info' else 'warning' end,
    format('Removed %s job(s) whose NC files are gone%s', cardinality(p_keys),
           case when released is null then '' else format('; releasing %s from Grundner', nesting_private.list_summary(released, 10)) end),
    array_to_string(p_keys, E'\n'),
    jsonb_build_object('jobs', to_jsonb(p_keys), 'released', to_jsonb(released), 'request_id', request_id));
end
$$;

-- The prune guard. p_missing: the PENDING/STAGED jobs a complete scan did not
-- find. Returns the keys that may be pruned now. A mass removal (more than
-- nesting.prune_hold_above_jobs jobs and more than
-- nesting.prune_hold_above_share of the known ones) is what an unmounted share
-- looks like: it is held (one open row in nesting.prune_holds, one message)
-- until a supervisor confirms it (nesting.confirm_prune) or the files come back.
create or replace function nesting_private.guard_prune(p_missing text[]) returns text[]
language plpgsql volatile
as $$
declare
  h nesting.prune_holds;
  missing text[] := coalesce(p_missing, '{}');
  n int := coalesce(cardinality(p_missing), 0);
  known_jobs int;
  confirmed text[];
  rest text[];
begin
  select * into h from nesting.prune_holds where ended_at is null for update;
  if h.id is not null and h.confirmed_at is not null and n > 0 then
    -- Confirmed: prune what the supervisor saw and is still gone; anything
    -- gone since is judged on its own.
    select coalesce(array_agg(k order by k), '{}') into confirmed from (select unnest(missing) intersect select unnest(h.keys)) x(k);
    select coalesce(array_agg(k order by k), '{}') into rest from (select unnest(missing) except select unnest(h.keys)) x(k);
    update nesting.prune_holds set ended_at = now(), outcome = 'pruned', last_scan_at = now(), scans = scans + 1 where id = h.id;
    return confirmed || nesting_private.guard_prune(rest);
  end if;
  if n > 0 then
    select count(*)::int into known_jobs from nesting.jobs where removed_at is null and status in ('PENDING', 'STAGED');
  end if;
  if n = 0 or not (n > ops.setting_numeric('nesting.prune_hold_above_jobs')
                   and n > ops.setting_numeric('nesting.prune_hold_above_share') * known_jobs) then
    if h.id is not null then
      update nesting.prune_holds set ended_at = now(), outcome = 'lifted', last_scan_at = now(), scans = scans + 1 where id = h.id;
      perform ops.post_message('jobs-ingest', 'info',
        format('Pruning is no longer held: the NC files are back (%s of the %s held job(s) still gone)', n, cardinality(h.keys)),
        '', jsonb_build_object('hold_id', h.id, 'still_gone', n));
    end if;
    return missing;
  end if;
  if h.id is null then
    insert into nesting.prune_holds (known, keys) values (known_jobs, missing) returning * into h;
    perform ops.post_message('jobs-ingest', 'error',
      format('Pruning held: %s of %s jobs'' NC files are gone from the processed jobs root at once; nothing is pruned or released', n, known_jobs),
      format(E'Is the share mounted? An unmounted share looks like an empty folder.\n'
             'If the files come back, the hold ends by itself. If they were really removed, a supervisor confirms with\n'
             '  select nesting.confirm_prune(%s);\n(GraphQL nestingConfirmPrune) and the next scan prunes them.\n\n%s',
             h.id, nesting_private.list_summary(missing, 200)),
      jsonb_build_object('hold_id', h.id, 'missing', n, 'known', known_jobs));
  else
    update nesting.prune_holds
       set scans = scans + 1, last_scan_at = now(), known = known_jobs,
           keys = case when keys is distinct from missing then missing else keys end
     where id = h.id;
  end if;
  return '{}';
end
$$;

-- A supervisor confirms a held prune: the next complete scan prunes the held
-- jobs that are still gone (and releases the locked ones). Idempotent.
create or replace function nesting.confirm_prune(p_hold_id bigint) returns nesting.prune_holds
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  h nesting.prune_holds;
begin
  select * into h from nesting.prune_holds where id = p_hold_id for update;
  if not found then
    raise exception 'Unknown prune hold %', p_hold_id using errcode = 'SF404',
      hint = 'The open hold: select id, keys from nesting.prune_holds where ended_at is null';
  end if;
  if h.ended_at is not null then
    raise exception 'Prune hold % has already ended (%)', p_hold_id, h.outcome using errcode = 'SF409';
  end if;
  if h.confirmed_at is null then
    update nesting.prune_holds set confirmed_at = now(), confirmed_by = ops.current_actor() where id = h.id returning * into h;
    perform ops.audit('confirm_prune', 'nesting_prune_hold', h.id::text, jsonb_build_object('jobs', cardinality(h.keys)));
    perform ops.post_message('jobs-ingest', 'warning',
      format('%s confirmed pruning %s job(s) whose NC files are gone; the next scan prunes them', h.confirmed_by, cardinality(h.keys)),
      '', jsonb_build_object('hold_id', h.id));
  end if;
  return h;
end
$$;

-- One scan of the processed jobs root, in one call. p_present: the key of
-- every NC program seen; p_changed: the programs new or changed since the
-- caller last applied them (with parsed fields); p_error: set when the walk
-- could not read everything, and then nothing is pruned.
create or replace function nesting_private.apply_ingest_scan(p_present text[], p_changed jsonb, p_error text default null)
returns jsonb
language plpgsql volatile
as $$
declare
  added int := 0;
  updated int := 0;
  missing text[];
  pruned text[];
  to_release text[];
  release_id bigint;
begin
  perform pg_advisory_xact_lock(hashtext('nesting.apply_ingest_scan'));
  with incoming as (
    select * from jsonb_to_recordset(coalesce(p_changed, '[]')) as x(key text, folder text, ncfile text, material text,
      parts int, length_mm numeric, width_mm numeric, thickness_mm numeric, nc_mtime timestamptz, nc_size bigint, problem text)
  ), written as (
    insert into nesting.jobs as j (key, folder, ncfile, material, parts, length_mm, width_mm, thickness_mm, nc_mtime, nc_size, problem, seen_at)
    select key, folder, ncfile, material, parts, length_mm, width_mm, thickness_mm, nc_mtime, nc_size, problem, now() from incoming
    on conflict (key) do update set
      folder = excluded.folder, ncfile = excluded.ncfile, material = excluded.material, parts = excluded.parts,
      length_mm = excluded.length_mm, width_mm = excluded.width_mm, thickness_mm = excluded.thickness_mm,
      nc_mtime = excluded.nc_mtime, nc_size = excluded.nc_size, problem = excluded.problem, seen_at = excluded.seen_at,
      removed_at = null
    where (j.folder, j.ncfile, j.material, j.parts, j.length_mm, j.width_mm, j.thickness_mm, j.nc_mtime, j.nc_size, j.problem)
          is distinct from
          (excluded.folder, excluded.ncfile, excluded.material, excluded.parts, excluded.length_mm, excluded.width_mm,
           excluded.thickness_mm, excluded.nc_mtime, excluded.nc_size, excluded.problem)
       or j.removed_at is not null
    returning (xmax = 0) as inserted, key
  )
  select count(*) filter (where inserted), count(*) filter (where not inserted) into added, updated from written;
  insert into nesting.job_events (job_key, event, details)
  select x ->> 'key', 'scanned', jsonb_build_object('problem', x ->> 'problem') from jsonb_array_elements(coalesce(p_changed, '[]')) x
   where x ->> 'problem' is not null;

  perform nesting_private.note_scan('Processed jobs root', 'jobs-ingest', p_error);
  if p_error is null then
    -- Programs gone from disk. Only jobs not yet on their way to being cut
    -- (PENDING, STAGED) are pruned; a cut job is history and stays. A mass
    -- removal waits for a supervisor (guard_prune).
    select array_agg(j.key order by j.key) into missing
      from nesting.jobs j
     where j.removed_at is null and j.status in ('PENDING', 'STAGED')
       and not exists (select 1 from unnest(p_present) k where k = j.key);
    pruned := nullif(nesting_private.guard_prune(missing), '{}');
  end if;

  if pruned is not null then
    select r.released, r.request_id into to_release, release_id from nesting_private.prune_jobs(pruned) r;
  end if;

  return jsonb_build_object('added', added, 'updated', updated, 'pruned', coalesce(to_jsonb(pruned), '[]'),
    'release_request_id', release_id,
    'held', (select jsonb_build_object('id', h.id, 'since', h.held_at, 'jobs', cardinality(h.keys), 'known', h.known,
                                       'confirmed_by', h.confirmed_by)
               from nesting.prune_holds h where h.ended_at is null))
    || nesting_private.ingest_settings();
end
$$;

-- NC file names that would be staged twice on the machine: the jobs of
-- p_keys and those already STAGED there, grouped by NC file name in any case
-- (a Windows share does not tell Sheet1.nc from SHEET1.NC), where a group
-- holds two jobs and one of p_keys. Both programs would be copied to the one
-- Ready-to-Run/Sheet1.nc, the last silently replacing the first. Each clash
-- as "Sheet1.nc (K1/Sheet1, K2/Sheet1)"; null when there is none.
create or replace function nesting_private.stage_name_clashes(p_keys text[], p_machine_id bigint) returns text[]
language sql stable
as $$
  with involved as (
    select j.key, j.ncfile from nesting.jobs j where j.key = any(p_keys)
    union
    select j.key, j.ncfile from nesting.jobs j
     where j.staged_machine_id = p_machine_id and j.status = 'STAGED' and j.removed_at is null
  ), clash as (
    select min(ncfile) as ncfile, array_agg(key order by key) as keys
      from involved group by lower(ncfile)
    having count(*) > 1 and bool_or(key = any(p_keys))
  )
  select array_agg(format('%s (%s)', ncfile, nesting_private.list_summary(keys)) order by lower(ncfile)) from clash
$$;

-- Staging: a worker task copies each job's NC and part files into the
-- machine's Ready-to-Run folder; the job becomes STAGED when the copy is done.
-- All or nothing: a refusal stages none of the jobs.
create or replace function nesting.stage_jobs(p_keys text[], p_machine text) returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  m nesting.machines;
  keys text[] := (select array_agg(distinct k order by k) from unnest(p_keys) k where k is not null);
  bad text;
  clashes text[];
begin
  select * into m from nesting.machines where name = p_machine;
  if not found then
    raise exception 'Unknown machine %', p_machine using errcode = 'SF404';
  end if;
  if keys is null then
    raise exception 'No jobs to stage' using errcode = 'SF422';
  end if;
  select string_agg(format('%s (%s)', j.key, case when j.removed_at is not null then 'its NC file is gone' else 'status ' || j.status end), ', ' order by j.key)
    into bad
    from nesting_private.lock_job_rows(keys) j
   where j.removed_at is not null or j.status not in ('PENDING', 'STAGED');
  if bad is not null then
    raise exception 'Cannot stage: %', bad using errcode = 'SF409';
  end if;
  clashes := nesting_private.stage_name_clashes(keys, m.id);
  if clashes is not null then
    raise exception 'Cannot stage on %: two jobs with the same NC file name would overwrite each other in its Ready-to-Run folder: %',
      m.name, nesting_private.list_summary(clashes) using errcode = 'SF409';
  end if;
  perform ops_private.enqueue('nesting_stage_jobs', jsonb_build_object('keys', to_jsonb(keys), 'machine_id', m.id));
  insert into nesting.job_events (job_key, event, details, actor)
  select k, 'stage_requested', jsonb_build_object('machine', m.name), ops.current_actor() from unnest(keys) k;
  perform ops.audit('stage_jobs', 'nesting_machine', m.id::text, jsonb_build_object('jobs', keys));
  return cardinality(keys);
end
$$;

create or replace function nesting_private.mark_staged(p_keys text[], p_machine_id bigint) returns void
language sql volatile
as $$
  with staged as (
    update nesting.jobs set status = 'STAGED', staged_machine_id = p_machine_id, staged_at = now()
     where key = any(p_keys) and removed_at is null and status in ('PENDING', 'STAGED')
    returning key
  )
  insert into nesting.job_events (job_key, event, details)
  select key, 'staged', jsonb_build_object('machine', (select name from nesting.machines where id = p_machine_id)) from staged
$$;

create or replace function nesting_private.stage_failed(p_keys text[], p_machine_id bigint, p_error text) returns void
language plpgsql volatile
as $$
begin
  insert into nesting.job_events (job_key, event, details)
  select k, 'stage_failed', jsonb_build_object('error', p_error) from unnest(p_keys) k;
  perform ops.post_message('staging', 'error',
    format('Could not stage %s on %s', array_to_string(p_keys, ', '), (select name from nesting.machines where id = p_machine_id)),
    p_error || E'\nThe jobs were left as they were.', jsonb_build_object('jobs', to_jsonb(p_keys), 'machine_id', p_machine_id));
end
$$;

-- The Ready page, kept in step by the Ready-to-Run folder watchers.
create or replace function nesting_private.ready_file_seen(p_dir text, p_name text, p_size bigint, p_mtime timestamptz) returns void
language sql volatile
as $$
  insert into nesting.ready_files (machine_id, name, size, mtime)
  select id, p_name, coalesce(p_size, 0), p_mtime from nesting.machines
   where ready_dir = p_dir and not nesting_private.is_ignored_name(p_name) -- recycle bins, lock files, temporary copies
  on conflict (machine_id, name) do update set size = excluded.size, mtime = excluded.mtime, seen_at = now()
$$;

create or replace function nesting_private.ready_file_gone(p_dir text, p_name text) returns void
language sql volatile
as $$
  delete from nesting.ready_files f using nesting.machines m
   where m.ready_dir = p_dir and f.machine_id = m.id and f.name = p_name
$$;

create or replace view nesting.ready_page as
select m.name as machine, f.name as file_name, f.size, f.mtime, f.seen_at,
       (select j.key from nesting.jobs j
         where j.removed_at is null and j.ncfile = f.name
         order by (j.staged_machine_id = m.id) desc nulls last, j.key limit 1) as job_key
  from nesting.ready_files f join nesting.machines m on m.id = f.machine_id;

-- Jobs whose NC file left a machine's Ready-to-Run folder go back to PENDING;
-- the locked ones are released with one request. Returns the released keys.
create or replace function nesting_private.unstage(p_machine_id bigint, p_keys text[], p_source text, p_reason text) returns text[]
language plpgsql volatile
as $$
declare
  released text[] := (select r.released from nesting_private.release_locked(p_keys, p_source, p_reason) r);
begin
  update nesting.jobs set status = 'PENDING', staged_machine_id = null, staged_at = null where key = any(p_keys);
  insert into nesting.job_events (job_key, event, details)
  select k, 'unstaged', jsonb_build_object('source', p_source, 'reason', p_reason) from unnest(p_keys) k;
  return released;
end
$$;

-- The stage sanity check, after a complete look at one machine's folder.
-- p_listed_at: database time taken before the folder was listed; a job staged
-- after it may have had its file copied after the listing, so it is left for
-- the next look.
create or replace function nesting_private.stage_sanity(p_machine_id bigint, p_present text[], p_listed_at timestamptz default null) returns jsonb
language plpgsql volatile
as $$
declare
  m nesting.machines;
  gone text[];
  released text[];
begin
  select * into m from nesting.machines where id = p_machine_id;
  perform nesting_private.note_scan(format('Ready-to-Run folder of %s', m.name), 'stage-sanity', null);
  -- The Ready page forgets files that went while nobody watched.
  delete from nesting.ready_files f where f.machine_id = p_machine_id and not (f.name = any(p_present));
  select array_agg(j.key order by j.key) into gone from nesting.jobs j
   where j.staged_machine_id = p_machine_id and j.status = 'STAGED' and j.removed_at is null
     and (p_listed_at is null or j.staged_at < p_listed_at)
     and not exists (select 1 from unnest(p_present) n where n = j.ncfile);
  if gone is null then
    return jsonb_build_object('unstaged', '[]'::jsonb, 'released', '[]'::jsonb);
  end if;
  released := nesting_private.unstage(p_machine_id, gone, 'stage-sanity', 'NC file left Ready-to-Run');
  perform ops.post_message('stage-sanity', 'warning',
    format('%s job(s) left Ready-to-Run on %s and went back to PENDING%s', cardinality(gone), m.name,
           case when released is null then '' else format('; releasing %s from Grundner', array_to_string(released, ', ')) end),
    array_to_string(gone, E'\n'), jsonb_build_object('machine', m.name, 'jobs', to_jsonb(gone), 'released', to_jsonb(released)));
  return jsonb_build_object('unstaged', to_jsonb(gone), 'released', coalesce(to_jsonb(released), '[]'));
end
$$;

-- Ready delete: the operator picks files on the Ready page. The jobs staged
-- with them go back to PENDING and are released with one request right away
-- (so the stage sanity check never races the deletion); a worker task then
-- deletes the files and reports any it could not.
drop function if exists nesting.ready_files_deleted(bigint, text[]);
drop function if exists nesting.delete_ready_files(text, text[]);
create or replace function nesting.delete_ready_files(p_machine text, p_names text[]) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  m nesting.machines;
  unknown text;
  affected text[];
  released text[];
begin
  select * into m from nesting.machines where name = p_machine;
  if not found then
    raise exception 'Unknown machine %', p_machine using errcode = 'SF404';
  end if;
  if coalesce(cardinality(p_names), 0) = 0 then
    raise exception 'No files to delete' using errcode = 'SF422';
  end if;
  select string_agg(n, ', ' order by n) into unknown from unnest(p_names) n
   where not exists (select 1 from nesting.ready_files f where f.machine_id = m.id and f.name = n);
  if unknown is not null then
    raise exception 'Not in Ready-to-Run on %: %', m.name, unknown using errcode = 'SF404';
  end if;
  select array_agg(key order by key) into affected from nesting.jobs
   where staged_machine_id = m.id and removed_at is null and ncfile = any(p_names);
  if affected is not null then
    released := nesting_private.unstage(m.id, affected, 'ready-delete', 'deleted from Ready-to-Run');
  end if;
  perform ops_private.enqueue('nesting_delete_ready_files', jsonb_build_object('machine_id', m.id, 'names', to_jsonb(p_names)));
  perform ops.post_message('ready-delete', 'info',
    format('Deleted %s file(s) from Ready-to-Run on %s%s', cardinality(p_names), m.name,
           case when released is null then '' else format('; releasing %s from Grundner', array_to_string(released, ', ')) end),
    array_to_string(p_names, E'\n'), jsonb_build_object('machine', m.name, 'files', to_jsonb(p_names), 'jobs', to_jsonb(affected)));
  perform ops.audit('delete_ready_files', 'nesting_machine', m.id::text, jsonb_build_object('files', p_names, 'jobs', affected));
  return jsonb_build_object('jobs', coalesce(to_jsonb(affected), '[]'), 'released', coalesce(to_jsonb(released), '[]'));
end
$$;

-- The worker deleted p_names: the Ready page forgets them. p_failed: the files
-- it could not delete ([{name, reason}], reason not_a_file_name or the
-- system's error code), in one message.
drop function if exists nesting_private.ready_files_removed(bigint, text[]);
create or replace function nesting_private.ready_files_removed(p_machine_id bigint, p_names text[], p_failed jsonb default '[]')
returns void
language plpgsql volatile
as $$
begin
  delete from nesting.ready_files where machine_id = p_machine_id and name = any(p_names);
  if coalesce(jsonb_array_length(p_failed), 0) > 0 then
    perform ops.post_message('ready-delete', 'error',
      format('Could not delete %s file(s) from Ready-to-Run on %s', jsonb_array_length(p_failed),
             (select m.name from nesting.machines m where m.id = p_machine_id)),
      (select string_agg(format('%s: %s', f ->> 'name', case f ->> 'reason' when 'not_a_file_name' then 'not a file name' else f ->> 'reason' end),
                         E'\n' order by n)
         from jsonb_array_elements(p_failed) with ordinality x(f, n)),
      jsonb_build_object('machine_id', p_machine_id));
  end if;
end
$$;

comment on table nesting.machines is E'@name NestingMachine\n@behavior -insert -update -delete\nMachines and their Ready-to-Run folders.';
comment on table nesting.ready_files is E'@name ReadyFile\n@behavior -insert -update -delete\nFiles in each Ready-to-Run folder.';
comment on table nesting.scan_state is E'@name NestingScanState\n@behavior -insert -update -delete\nThe last outcome of each periodic scan.';
comment on view nesting.ready_page is E'@name ReadyPageFile\nThe Ready page: each file in a Ready-to-Run folder, linked to its job when one matches.';
comment on function nesting.stage_jobs(text[], text) is E'@name stage_jobs\nCopies the jobs'' NC and part files into the machine''s Ready-to-Run folder (a worker task); they become STAGED when done.';
comment on function nesting.delete_ready_files(text, text[]) is E'@name delete_ready_files\nDeletes files from a machine''s Ready-to-Run folder (a worker task); affected jobs go back to PENDING and locked ones are released once.';
comment on function nesting.upsert_machine(text, text, integer) is E'@name upsert_nesting_machine\nCreates or renames the machine of a Ready-to-Run folder (admin).';
comment on function nesting.ignored_name_pattern() is E'@behavior -queryField -mutationField';
comment on table nesting.prune_holds is E'@name NestingPruneHold\n@behavior -insert -update -delete\nPrunes of the processed jobs root held because too many jobs vanished at once (an unmounted share); open while ended_at is null.';
comment on function nesting.confirm_prune(bigint) is E'Confirms a held prune (supervisor): the next scan prunes the held jobs that are still gone and releases the locked ones.';

grant select on nesting.machines, nesting.ready_files, nesting.scan_state, nesting.ready_page to shopfloor_operator, shopfloor_integration;
grant execute on function nesting.stage_jobs(text[], text), nesting.delete_ready_files(text, text[]) to shopfloor_operator;
grant execute on function nesting.upsert_machine(text, text, integer) to shopfloor_admin;
grant select on nesting.prune_holds to shopfloor_operator, shopfloor_integration;
grant execute on function nesting.confirm_prune(bigint) to shopfloor_supervisor;

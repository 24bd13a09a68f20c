-- nesting: NC jobs reserve, lock and release boards in the Grundner sheet
-- store. The database decides every outcome; the worker (src/grundner/) only
-- moves files: it sends what the outbox says and hands each parsed reply to
-- one apply_* function here.
--
-- Request life: queued -> sending -> sent -> acknowledged (lock) | answered |
-- partial (release) | answered (stock); or failed, timed_out, cancelled.
-- One request per file name is in flight (sending/sent) at a time, enforced
-- by a unique index; the next waits as queued.

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------

create or replace function nesting.to_base36(p_n bigint) returns text
language plpgsql immutable strict
as $$
declare
  digits constant text := '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  result text := '';
  n bigint := p_n;
begin
  loop
    result := substr(digits, (n % 36)::int + 1, 1) || result;
    n := n / 36;
    exit when n = 0;
  end loop;
  return result;
end
$$;

-- The Grundner job number: the NC base name when it fits the gateway's
-- 8 printable ASCII characters and is free, a generated J0000001 otherwise.
create or replace function nesting.assign_grundner_job_no() returns trigger
language plpgsql
as $$
declare
  base text := regexp_replace(new.ncfile, '\.[^.]*$', '');
  code text;
begin
  if new.grundner_job_no is null then
    -- Printable ASCII without the gateway's separators ; and ,.
    if base ~ '^[!-~]{1,8}$' and base !~ '[;,]' and not exists (select 1 from nesting.jobs where grundner_job_no = base) then
      new.grundner_job_no := base;
    else
      -- A program may itself be called J0000042: skip codes already taken.
      loop
        code := 'J' || lpad(nesting.to_base36(nextval('nesting.grundner_job_no_seq')), 7, '0');
        exit when not exists (select 1 from nesting.jobs where grundner_job_no = code);
      end loop;
      new.grundner_job_no := code;
    end if;
  end if;
  new.updated_at := now();
  return new;
end
$$;

create or replace trigger jobs_assign_grundner_job_no
  before insert or update on nesting.jobs
  for each row execute function nesting.assign_grundner_job_no();

create or replace function nesting.job_event(p_key text, p_event text, p_details jsonb default '{}') returns void
language sql volatile
as $$
  insert into nesting.job_events (job_key, event, details, actor) values (p_key, p_event, p_details, ops.current_actor())
$$;

-- The Grundner board type of a job's material token: a type number, or else
-- a customer ID from the stock. A customer ID on several types resolves to
-- the lowest type number (documented in docs/nesting.md; a supervisor pins
-- another with pin_job_type, and operators see the ambiguity in the grid).
create or replace function nesting.material_type(p_material text) returns integer
language sql stable
as $$
  select coalesce(
    (select type_data from nesting.grundner where p_material ~ '^\d{1,4}$' and type_data = p_material::int),
    (select min(type_data) from nesting.grundner where customer_id <> '' and customer_id = p_material))
$$;

-- The one type a job stands for, everywhere (lock, release, grid): the type
-- its order was placed with while locked, else the supervisor's pin, else its
-- material token.
create or replace function nesting.job_type(p_material text, p_pinned integer, p_locked integer) returns integer
language sql stable
as $$
  select coalesce(p_locked, p_pinned, nesting.material_type(p_material))
$$;

-- A list for a title: the first few items and how many more ("A, B, C and 445
-- more"). Titles summarise; the full list goes to the body or related data.
create or replace function nesting.list_summary(p_items text[], p_max integer default 5) returns text
language sql immutable
as $$
  select case when coalesce(cardinality(p_items), 0) <= p_max then array_to_string(p_items, ', ')
              else array_to_string(p_items[1:p_max], ', ') || format(' and %s more', cardinality(p_items) - p_max) end
$$;

-- Free text shortened for a title.
create or replace function nesting.short_text(p_text text, p_max integer default 80) returns text
language sql immutable
as $$
  select case when length(p_text) <= p_max then p_text else left(p_text, p_max - 1) || '…' end
$$;

-- Refuses a value the gateway cannot take: a separator or line break inside a
-- field, or a character outside Windows-1252.
create or replace function nesting.check_field(p_value text, p_what text) returns text
language plpgsql immutable
as $$
begin
  if p_value ~ '[;,\t\r\n]' then
    raise exception '% "%" contains a separator or line break, which the Grundner gateway cannot take', p_what, p_value
      using errcode = 'SF422';
  end if;
  begin
    perform convert_to(p_value, 'WIN1252');
  exception when untranslatable_character or character_not_in_repertoire then
    raise exception '% "%" has characters outside Windows-1252', p_what, p_value using errcode = 'SF422';
  end;
  return p_value;
end
$$;

-- Lock requests not yet finished hold boards Grundner does not count yet.
create or replace function nesting.pending_lock_count(p_type integer) returns integer
language sql stable
as $$
  select count(*)::int
    from nesting.grundner_requests r, jsonb_array_elements(r.items) i
   where r.kind = 'lock' and r.status in ('queued', 'sending', 'sent') and (i ->> 'type')::int = p_type
$$;

-- Locks acknowledged after the storage took its stock figures: Grundner's
-- stock_available does not count them yet.
create or replace function nesting.locked_since_figure(p_type integer) returns integer
language sql stable
as $$
  select count(*)::int from nesting.jobs j
   where j.is_locked and j.locked_type = p_type
     and j.allocated_at > coalesce((select stock_figure_at from nesting.exchange_state), '-infinity')
$$;

-- What can still be locked of a type: the storage's figure less our locks it
-- does not count yet (pending, and acknowledged since the figure was taken).
create or replace function nesting.available_to_lock(p_type integer) returns integer
language sql stable
as $$
  select g.stock_available - nesting.pending_lock_count(p_type) - nesting.locked_since_figure(p_type)
    from nesting.grundner g where g.type_data = p_type
$$;

create or replace function nesting.open_request_for(p_key text, p_kind text) returns bigint
language sql stable
as $$
  select r.id from nesting.grundner_requests r
   where r.kind = p_kind and r.status in ('queued', 'sending', 'sent')
     and r.items @> jsonb_build_array(jsonb_build_object('key', p_key))
   limit 1
$$;

-- Locks the named jobs in key order (the fixed order keeps two callers from
-- deadlocking) and refuses, naming them, any key that does not exist.
create or replace function nesting.lock_job_rows(p_keys text[]) returns setof nesting.jobs
language plpgsql volatile
as $$
declare
  missing text[];
begin
  return query select * from nesting.jobs where key = any(p_keys) order by key for update;
  select array_agg(k order by k) into missing
    from unnest(p_keys) k where not exists (select 1 from nesting.jobs j where j.key = k);
  if missing is not null then
    raise exception 'Unknown job(s): %', array_to_string(missing, ', ') using errcode = 'SF404';
  end if;
end
$$;

------------------------------------------------------------------------------
-- Reserve
------------------------------------------------------------------------------

create or replace function nesting.reserve_job(p_key text) returns nesting.jobs
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  j nesting.jobs;
begin
  select * into j from nesting.lock_job_rows(array[p_key]);
  if j.removed_at is not null then
    raise exception 'Job % cannot be reserved: its NC file is gone', p_key using errcode = 'SF409';
  elsif j.is_locked then
    raise exception 'Job % is locked at Grundner already', p_key using errcode = 'SF409';
  elsif j.status <> 'PENDING' then
    raise exception 'Job % is %, only PENDING jobs can be reserved', p_key, j.status using errcode = 'SF409';
  elsif j.pre_reserved then
    return j; -- reserving twice changes nothing
  end if;
  update nesting.jobs set pre_reserved = true where key = p_key returning * into j;
  perform nesting.job_event(p_key, 'reserved');
  perform ops.audit('reserve_job', 'nesting_job', p_key);
  return j;
end
$$;

create or replace function nesting.unreserve_job(p_key text) returns nesting.jobs
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  j nesting.jobs;
begin
  select * into j from nesting.lock_job_rows(array[p_key]);
  if not j.pre_reserved then
    return j;
  end if;
  update nesting.jobs set pre_reserved = false where key = p_key returning * into j;
  perform nesting.job_event(p_key, 'unreserved');
  perform ops.audit('unreserve_job', 'nesting_job', p_key);
  return j;
end
$$;

------------------------------------------------------------------------------
-- Lock: one order_saw.csv for the whole batch
------------------------------------------------------------------------------

create or replace function nesting.lock_jobs(p_keys text[]) returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  keys text[] := (select array_agg(distinct k order by k) from unnest(p_keys) k where k is not null);
  default_machine int := ops.setting_numeric('nesting.saw_machine', 1)::int;
  bad text;
  short text;
  request_id bigint;
begin
  if keys is null then
    raise exception 'No jobs to lock' using errcode = 'SF422';
  end if;
  drop table if exists pg_temp.lock_batch;
  create temp table lock_batch (key text, job_no text, material text, type int, machine int, problem text) on commit drop;
  insert into lock_batch
  -- The saw: the Grundner number of the machine the job is staged on, else the setting.
  select j.key, j.grundner_job_no, j.material, nesting.job_type(j.material, j.pinned_type, j.locked_type),
         coalesce((select m.grundner_machine from nesting.machines m where m.id = j.staged_machine_id), default_machine),
         case
           when j.removed_at is not null then 'its NC file is gone'
           when j.is_locked then 'already locked'
           when j.status not in ('PENDING', 'STAGED') then 'status ' || j.status
           when nesting.open_request_for(j.key, 'lock') is not null then 'a lock is already under way'
           when nesting.open_request_for(j.key, 'release') is not null then 'a release is under way'
         end
    from nesting.lock_job_rows(keys) j;

  update lock_batch set problem = coalesce(problem, format('material %s is unknown to Grundner', coalesce(material, '(none)')))
   where type is null;
  select nesting.list_summary(array_agg(format('%s (%s)', key, problem) order by key), 20) into bad
    from lock_batch where problem is not null;
  if bad is not null then
    raise exception 'Cannot lock: %', bad using errcode = 'SF409';
  end if;

  -- Boards: lock the stock rows in type order, then compare what the batch
  -- needs with what Grundner has available less our locks it does not count
  -- yet (under way, or acknowledged since its figures were taken).
  perform 1 from nesting.grundner g where g.type_data in (select type from lock_batch) order by g.type_data for update;
  select string_agg(format('type %s needs %s, %s available (%s)', t.type, t.needed, t.available, t.jobs), '; ' order by t.type)
    into short
    from (select b.type, count(*) as needed, string_agg(b.key, ', ' order by b.key) as jobs,
                 nesting.available_to_lock(b.type) as available
            from lock_batch b join nesting.grundner g on g.type_data = b.type
           group by b.type, g.stock_available) t
   where t.needed > t.available;
  if short is not null then
    raise exception 'Not enough boards: %', short using errcode = 'SF409';
  end if;

  insert into nesting.grundner_requests (kind, file_name, lines, items, requested_by)
  select 'lock', 'order_saw',
         -- job-no;type;quantity;rotation;machine;priority;info;label;JobAddition;RunInfo
         array_agg(format('%s;%s;1;0;%s;0;0;0;;', nesting.check_field(job_no, 'Job number'), type, machine) order by key),
         jsonb_agg(jsonb_build_object('key', key, 'job_no', job_no, 'type', type, 'machine', machine) order by key),
         ops.current_actor()
    from lock_batch
  returning id into request_id;

  insert into nesting.job_events (job_key, event, details, actor)
  select key, 'lock_requested', jsonb_build_object('request_id', request_id), ops.current_actor() from lock_batch;
  perform ops.audit('lock_jobs', 'grundner_request', request_id::text, jsonb_build_object('jobs', keys));
  return request_id;
end
$$;

------------------------------------------------------------------------------
-- Release: one get_production.csv for all of them
------------------------------------------------------------------------------

-- The sources a release may name (they are message sources too).
create or replace function nesting.release_sources() returns text[]
language sql immutable
as $$
  select array['user', 'jobs-ingest', 'stage-sanity', 'ready-delete']
$$;

create or replace function nesting.unlock_jobs(p_keys text[], p_source text default 'user', p_reason text default '')
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  keys text[] := (select array_agg(distinct k order by k) from unnest(p_keys) k where k is not null);
  default_machine int := ops.setting_numeric('nesting.saw_machine', 1)::int;
  bad text;
  request_id bigint;
begin
  if keys is null then
    raise exception 'No jobs to release' using errcode = 'SF422';
  end if;
  -- The source names the Messages page's source column: checked at the door.
  -- Free text belongs in p_reason.
  if coalesce(nullif(p_source, ''), 'user') not in (select unnest(nesting.release_sources())) then
    raise exception 'source must be one of %, not "%"', array_to_string(nesting.release_sources(), ', '),
      nesting.short_text(p_source, 40) using errcode = 'SF422', hint = 'Put free text in reason.';
  end if;
  select nesting.list_summary(array_agg(format('%s (%s)', j.key, case when not j.is_locked then 'not locked' else 'a release is already under way' end)
                    order by j.key), 20)
    into bad
    from nesting.lock_job_rows(keys) j
   where not j.is_locked or nesting.open_request_for(j.key, 'release') is not null;
  if bad is not null then
    raise exception 'Cannot release: %', bad using errcode = 'SF409';
  end if;

  -- The machine the order went to (jobs locked before it was recorded: the
  -- machine they are staged on, else the setting).
  insert into nesting.grundner_requests (kind, file_name, lines, items, source, reason, requested_by)
  select 'release', 'get_production',
         array_agg(format('%s;%s', j.job_no, j.machine) order by j.key),
         jsonb_agg(jsonb_build_object('key', j.key, 'job_no', j.job_no, 'type', j.type, 'machine', j.machine) order by j.key),
         coalesce(nullif(p_source, ''), 'user'), coalesce(p_reason, ''), ops.current_actor()
    from (select x.key, x.grundner_job_no as job_no, nesting.job_type(x.material, x.pinned_type, x.locked_type) as type,
                 coalesce(x.grundner_machine, (select m.grundner_machine from nesting.machines m where m.id = x.staged_machine_id),
                          default_machine) as machine
            from nesting.jobs x where x.key = any(keys)) j
  returning id into request_id;

  insert into nesting.job_events (job_key, event, details, actor)
  select k, 'release_requested', jsonb_build_object('request_id', request_id, 'source', coalesce(nullif(p_source, ''), 'user'), 'reason', p_reason),
         ops.current_actor()
    from unnest(keys) k;
  perform ops.audit('unlock_jobs', 'grundner_request', request_id::text, jsonb_build_object('jobs', keys, 'source', p_source));
  return request_id;
end
$$;

------------------------------------------------------------------------------
-- Stock sync
------------------------------------------------------------------------------

-- Queues a stock request unless one is already waiting or under way.
create or replace function nesting.request_stock(p_source text default 'user') returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  request_id bigint;
begin
  perform pg_advisory_xact_lock(hashtext('nesting.request_stock'));
  select id into request_id from nesting.grundner_requests
   where kind = 'stock' and status in ('queued', 'sending', 'sent') order by id limit 1;
  if request_id is null then
    insert into nesting.grundner_requests (kind, file_name, lines, source, requested_by)
    values ('stock', 'stock_request', array['0', '!E'], p_source, ops.current_actor())
    returning id into request_id;
  end if;
  return request_id;
end
$$;

-- The periodic sync: a stock request when the last one is older than the
-- setting (counting failed ones too, so a storage that is off is asked once
-- per interval, not on every pass).
create or replace function nesting.request_stock_if_due() returns bigint
language sql volatile security definer
set search_path = pg_catalog, public
as $$
  select nesting.request_stock('schedule')
   where coalesce((select max(created_at) from nesting.grundner_requests where kind = 'stock'), '-infinity')
         < now() - ops.setting_interval('nesting.stock_sync_interval', interval '5 minutes')
$$;

------------------------------------------------------------------------------
-- What the worker calls: sending, timeouts, and applying replies
------------------------------------------------------------------------------

-- The requests to write now: for each file name with nothing in flight, the
-- oldest queued one, marked 'sending' (so a crash mid-write is recovered by
-- looking at the share, never by writing twice).
create or replace function nesting.claim_requests_to_send() returns setof nesting.grundner_requests
language sql volatile
as $$
  update nesting.grundner_requests r set status = 'sending'
   where r.id in (
     select distinct on (q.file_name) q.id from nesting.grundner_requests q
      where q.status = 'queued'
        and not exists (select 1 from nesting.grundner_requests f
                         where f.file_name = q.file_name and f.status in ('sending', 'sent'))
      order by q.file_name, q.id)
  returning r.*
$$;

create or replace function nesting.requests_in_flight() returns setof nesting.grundner_requests
language sql stable
as $$
  select * from nesting.grundner_requests where status in ('sending', 'sent') order by id
$$;

create or replace function nesting.mark_request_sent(p_request_id bigint) returns nesting.grundner_requests
language plpgsql volatile
as $$
declare
  r nesting.grundner_requests;
begin
  update nesting.grundner_requests
     set status = 'sent', sent_at = coalesce(sent_at, now()),
         deadline = coalesce(deadline, now() + ops.setting_interval('nesting.request_timeout', interval '60 seconds'))
   where id = p_request_id and status in ('sending', 'sent')
  returning * into r;
  if not found then
    raise exception 'Request % is not being sent', p_request_id using errcode = 'SF409';
  end if;
  -- Look again when the deadline passes.
  -- No named queue: a queue locked by a killed worker would block every pass
  -- for hours; passes are kept apart by an advisory lock instead (pump.ts).
  perform ops_private.enqueue('nesting_grundner', '{}', null, r.deadline + interval '1 second');
  return r;
end
$$;

create or replace function nesting.finish_request(p_request_id bigint, p_status text, p_answer jsonb default null, p_error text default null)
returns void
language sql volatile
as $$
  update nesting.grundner_requests
     set status = p_status, finished_at = now(), answer = coalesce(p_answer, answer), error = p_error
   where id = p_request_id
$$;

create or replace function nesting.request_label(r nesting.grundner_requests) returns text
language sql immutable
as $$
  select format('%s.csv (request %s)', r.file_name, r.id)
$$;

-- The deadline passed. p_withdrawn: the worker took the request file back
-- (so the storage never saw it); otherwise the storage had already taken it
-- and its acknowledgement is still awaited.
create or replace function nesting.time_out_request(p_request_id bigint, p_withdrawn boolean) returns text
language plpgsql volatile
as $$
declare
  r nesting.grundner_requests;
begin
  select * into r from nesting.grundner_requests where id = p_request_id for update;
  if r.status is distinct from 'sent' then
    return 'already';
  end if;
  if p_withdrawn then
    perform nesting.finish_request(r.id, 'timed_out', null, 'Grundner did not take the file before the deadline; it was taken back');
    insert into nesting.job_events (job_key, event, details)
    select i ->> 'key', r.kind || '_timed_out', jsonb_build_object('request_id', r.id) from jsonb_array_elements(r.items) i;
    perform ops.post_message('grundner', 'error',
      format('Grundner did not take %s in time; it was taken back and nothing changed', nesting.request_label(r)),
      case r.kind when 'lock' then 'The jobs stay unlocked. Check the storage system, then lock them again.'
                  when 'release' then 'The jobs stay locked. Check the storage system, then release them again.'
                  else 'The stock was not refreshed; the next sync will try again.' end,
      jsonb_build_object('request_id', r.id, 'jobs', (select jsonb_agg(i -> 'key') from jsonb_array_elements(r.items) i)));
    return 'timed_out';
  elsif r.kind = 'release' and ops.setting_text('nesting.release_confirmation', 'answer_file') = 'answer_file' then
    -- The storage took get_production.csv but wrote no productionLIST_del.csv
    -- by the deadline (a gateway that confirms with .erl only?). The safe
    -- side: the jobs stay locked, the next release may go out, and an answer
    -- arriving later is still applied.
    perform nesting.finish_request(r.id, 'timed_out', jsonb_build_object('awaiting_answer', true),
      'Grundner took the release but did not answer by the deadline; the jobs stay locked');
    insert into nesting.job_events (job_key, event, details)
    select i ->> 'key', 'release_timed_out', jsonb_build_object('request_id', r.id) from jsonb_array_elements(r.items) i;
    perform ops.post_message('grundner', 'error',
      format('Grundner took %s but sent no productionLIST_del.csv in time; %s job(s) stay locked', nesting.request_label(r),
             jsonb_array_length(r.items)),
      format('Jobs: %s. If this gateway confirms releases with get_production.erl only, set nesting.release_confirmation to erl_only. '
             'A late answer is still applied. Otherwise release the jobs again.',
             (select string_agg(i ->> 'key', ', ') from jsonb_array_elements(r.items) i)),
      jsonb_build_object('request_id', r.id, 'jobs', (select jsonb_agg(i -> 'key') from jsonb_array_elements(r.items) i)));
    return 'timed_out';
  elsif r.error is null then
    update nesting.grundner_requests set error = 'Taken by the storage; waiting for its acknowledgement' where id = r.id;
    perform ops.post_message('grundner', 'warning',
      format('Grundner took %s but has not answered yet', nesting.request_label(r)),
      'The answer will still be applied when it arrives. Requests of the same file wait until then.',
      jsonb_build_object('request_id', r.id));
  end if;
  return 'waiting';
end
$$;

-- Lines compared as the gateway means them: trailing separators and blanks
-- (some gateways drop or add them) do not count.
create or replace function nesting.erl_lines(p_lines text[]) returns text[]
language sql immutable
as $$
  select coalesce(array_agg(x.l order by x.n), '{}')
    from (select regexp_replace(l, '[;\s]+$', '') as l, n from unnest(p_lines) with ordinality u(l, n)) x
   where x.l <> ''
$$;

-- order_saw.erl: the storage's copy of what it took. The same lines lock the
-- jobs; different lines fail the request and lock nothing.
create or replace function nesting.apply_order_saw_ack(p_request_id bigint, p_lines text[]) returns jsonb
language plpgsql volatile
as $$
declare
  r nesting.grundner_requests;
  keys text[];
begin
  select * into r from nesting.grundner_requests where id = p_request_id for update;
  if not found or r.kind <> 'lock' then
    raise exception 'Request % is not a lock request', p_request_id using errcode = 'SF404';
  elsif r.status not in ('sending', 'sent') then
    return jsonb_build_object('outcome', 'already', 'status', r.status);
  end if;
  select array_agg(i ->> 'key' order by i ->> 'key') into keys from jsonb_array_elements(r.items) i;

  if nesting.erl_lines(p_lines) is distinct from nesting.erl_lines(r.lines) then
    perform nesting.finish_request(r.id, 'failed', jsonb_build_object('erl', p_lines),
      'order_saw.erl does not match the request');
    perform ops.post_message('grundner', 'error',
      format('Grundner acknowledged %s with different content; no job was locked', nesting.request_label(r)),
      format('Sent: %s. Acknowledged: %s. The .erl file was quarantined.',
             array_to_string(r.lines, ' | '), array_to_string(p_lines, ' | ')),
      jsonb_build_object('request_id', r.id, 'jobs', to_jsonb(keys)));
    insert into nesting.job_events (job_key, event, details)
    select k, 'lock_failed', jsonb_build_object('request_id', r.id) from unnest(keys) k;
    return jsonb_build_object('outcome', 'mismatch');
  end if;

  perform 1 from nesting.jobs where key = any(keys) order by key for update;
  update nesting.jobs j
     set is_locked = true, pre_reserved = false, allocated_at = now(), locked_by = r.requested_by,
         grundner_machine = (i.item ->> 'machine')::int, locked_type = (i.item ->> 'type')::int
    from jsonb_array_elements(r.items) i(item)
   where j.key = i.item ->> 'key';
  perform nesting.finish_request(r.id, 'acknowledged');
  insert into nesting.job_events (job_key, event, details)
  select k, 'locked', jsonb_build_object('request_id', r.id) from unnest(keys) k;
  return jsonb_build_object('outcome', 'acknowledged', 'jobs', to_jsonb(keys));
end
$$;

-- order_saw.erl with no lock request in flight: most likely the storage took
-- a request after it had timed out (it was taken back, or cancelled). Nothing
-- is locked: the jobs may have been locked again since. The operator is told
-- which jobs the storage may now hold orders for. Returns the message text,
-- or null for the .erl of the last request, applied already (a process died
-- between applying and archiving it): the worker archives it.
create or replace function nesting.unexpected_order_saw_ack(p_lines text[]) returns text
language plpgsql volatile
as $$
declare
  r nesting.grundner_requests;
  keys text[];
  title text;
begin
  select * into r from nesting.grundner_requests
   where kind = 'lock' and nesting.erl_lines(lines) = nesting.erl_lines(p_lines)
     and status in ('acknowledged', 'timed_out', 'failed', 'cancelled')
   order by id desc limit 1;
  if found and r.status = 'acknowledged' then
    -- Applied already; the process that applied it died before archiving it.
    return null;
  elsif not found then
    title := 'order_saw.erl arrived but no lock request is waiting for it; nothing was locked';
    perform ops.post_message('grundner', 'error', title,
      format('Acknowledged: %s. The file was quarantined. Check the storage''s production list.', array_to_string(p_lines, ' | ')),
      jsonb_build_object('erl', to_jsonb(p_lines)));
    return title;
  end if;
  select array_agg(i ->> 'key' order by i ->> 'key') into keys from jsonb_array_elements(r.items) i;
  title := format('Grundner acknowledged %s after it was %s; nothing was locked', nesting.request_label(r),
                  replace(r.status, '_', ' '));
  perform ops.post_message('grundner', 'error', title,
    format('The storage may now hold orders for %s. Delete them at the storage, or lock the jobs again. The .erl file was quarantined.',
           array_to_string(keys, ', ')),
    jsonb_build_object('request_id', r.id, 'jobs', to_jsonb(keys)));
  insert into nesting.job_events (job_key, event, details)
  select k, 'late_lock_ack_ignored', jsonb_build_object('request_id', r.id) from unnest(keys) k;
  return title;
end
$$;

-- productionLIST_del.csv: the orders the storage deleted. p_rows:
-- [{job_no, type, quantity, ...}]. A job missing from it stays locked (its
-- board is on the way to the saw); a job answered with another type or
-- quantity is released with a warning; orders we did not ask for are
-- reported, never applied.
create or replace function nesting.apply_release_answer(p_request_id bigint, p_rows jsonb) returns jsonb
language plpgsql volatile
as $$
declare
  r nesting.grundner_requests;
  by_removal boolean;
  released text[];
  mismatched text[];
  missing text[];
  unrequested text[];
  result jsonb;
begin
  select * into r from nesting.grundner_requests where id = p_request_id for update;
  if not found or r.kind <> 'release' then
    raise exception 'Request % is not a release request', p_request_id using errcode = 'SF404';
  elsif r.status not in ('sending', 'sent') and not (r.status = 'timed_out' and r.answer ? 'awaiting_answer') then
    return jsonb_build_object('outcome', 'already', 'status', r.status);
  end if;
  -- A release caused by the job going away also drops its reservation.
  by_removal := r.source in ('jobs-ingest', 'stage-sanity', 'ready-delete');

  with asked as (
    select i ->> 'key' as key, i ->> 'job_no' as job_no, (i ->> 'type')::int as type from jsonb_array_elements(r.items) i
  ), answered as (
    select a ->> 'job_no' as job_no, (a ->> 'type')::int as type, (a ->> 'quantity')::int as quantity
      from jsonb_array_elements(p_rows) a
  )
  select array_agg(asked.key order by asked.key) filter (where answered.job_no is not null),
         array_agg(asked.key order by asked.key) filter (where answered.job_no is not null
                                                          and (answered.type is distinct from asked.type or answered.quantity is distinct from 1)),
         array_agg(asked.key order by asked.key) filter (where answered.job_no is null)
    into released, mismatched, missing
    from asked left join answered on answered.job_no = asked.job_no;
  select array_agg(distinct a ->> 'job_no') into unrequested
    from jsonb_array_elements(p_rows) a
   where not exists (select 1 from jsonb_array_elements(r.items) i where i ->> 'job_no' = a ->> 'job_no');

  perform 1 from nesting.jobs where key = any(released) order by key for update;
  update nesting.jobs
     set is_locked = false, allocated_at = null, locked_by = null, grundner_machine = null, locked_type = null,
         pre_reserved = case when by_removal then false else pre_reserved end
   where key = any(released);
  insert into nesting.job_events (job_key, event, details)
  select k, 'released', jsonb_build_object('request_id', r.id, 'source', r.source, 'reason', r.reason) from unnest(released) k;
  insert into nesting.job_events (job_key, event, details)
  select k, 'release_refused', jsonb_build_object('request_id', r.id) from unnest(missing) k;

  result := jsonb_build_object('outcome', case when missing is null then 'answered' else 'partial' end,
    'released', coalesce(to_jsonb(released), '[]'), 'mismatched', coalesce(to_jsonb(mismatched), '[]'),
    'still_locked', coalesce(to_jsonb(missing), '[]'), 'unrequested', coalesce(to_jsonb(unrequested), '[]'));
  perform nesting.finish_request(r.id, case when missing is null then 'answered' else 'partial' end,
    result || jsonb_build_object('rows', p_rows));

  if released is not null and r.source <> 'user' then
    -- Operators know the NC files: the title names them, the body the jobs.
    -- (A source stored before it was checked at the door posts as grundner.)
    perform ops.post_message(case when r.source = any(nesting.release_sources()) then r.source else 'grundner' end, 'info',
      format('Released %s from Grundner%s',
             nesting.list_summary((select array_agg(j.ncfile order by j.key) from nesting.jobs j where j.key = any(released))),
             case when r.reason <> '' then ' (' || nesting.short_text(r.reason) || ')' else '' end),
      'Jobs: ' || array_to_string(released, ', ') || case when r.reason <> '' then E'\nReason: ' || r.reason else '' end,
      jsonb_build_object('request_id', r.id, 'jobs', to_jsonb(released),
        'nc_files', (select jsonb_agg(j.ncfile order by j.key) from nesting.jobs j where j.key = any(released))));
  end if;
  if mismatched is not null then
    perform ops.post_message('grundner', 'warning',
      format('Released %s although Grundner answered with another board type or quantity', nesting.list_summary(mismatched)),
      'Check the storage''s production list for these orders: ' || array_to_string(mismatched, ', '), jsonb_build_object('request_id', r.id, 'jobs', to_jsonb(mismatched)));
  end if;
  if missing is not null then
    perform ops.post_message('grundner', 'warning',
      format('Grundner kept %s: the board is already on its way to the saw', nesting.list_summary(missing)),
      'These jobs stay locked. Release them again once the board has been cut or returned: ' || array_to_string(missing, ', '),
      jsonb_build_object('request_id', r.id, 'jobs', to_jsonb(missing)));
  end if;
  if unrequested is not null then
    perform ops.post_message('grundner', 'warning',
      format('Grundner deleted orders we did not ask for: %s', nesting.list_summary(unrequested)),
      'Nothing was changed for them here. Orders: ' || array_to_string(unrequested, ', '), jsonb_build_object('request_id', r.id, 'orders', to_jsonb(unrequested)));
  end if;
  return result;
end
$$;

-- A productionLIST_del.csv with no release in flight: the answer to a release
-- that timed out waiting for it, when it names that release's orders.
create or replace function nesting.timed_out_release_for(p_rows jsonb) returns bigint
language sql stable
as $$
  select r.id from nesting.grundner_requests r
   where r.kind = 'release' and r.status = 'timed_out' and r.answer ? 'awaiting_answer'
     and exists (select 1 from jsonb_array_elements(r.items) i, jsonb_array_elements(p_rows) a where i ->> 'job_no' = a ->> 'job_no')
   order by r.id desc limit 1
$$;

-- get_production.erl on a gateway set to confirm releases with it only
-- (nesting.release_confirmation = erl_only): every order asked for counts as
-- deleted. Such a gateway cannot report a partial release.
create or replace function nesting.apply_release_erl(p_request_id bigint) returns jsonb
language sql volatile
as $$
  select nesting.apply_release_answer(p_request_id,
    (select coalesce(jsonb_agg(jsonb_build_object('job_no', i ->> 'job_no', 'type', (i ->> 'type')::int, 'quantity', 1)), '[]')
       from nesting.grundner_requests r, jsonb_array_elements(r.items) i where r.id = p_request_id))
$$;

-- stock.csv replaces the stock table. p_rows: one object per board type with
-- the 19 fields; p_problems: lines the worker could not read. When lines were
-- skipped, types missing from the file are kept (they may be the broken
-- lines) instead of being removed.
create or replace function nesting.apply_stock(p_request_id bigint, p_rows jsonb, p_problems jsonb default '[]')
returns jsonb
language plpgsql volatile
as $$
declare
  appeared int[];
  vanished int[];
  changed int;
  ambiguous_before text[];
begin
  if p_request_id is not null then
    perform 1 from nesting.grundner_requests where id = p_request_id and kind = 'stock' for update;
  end if;
  perform pg_advisory_xact_lock(hashtext('nesting.apply_stock'));
  -- Customer IDs on several types before this sync (a new one is reported once).
  select coalesce(array_agg(customer_id), '{}') into ambiguous_before from nesting.ambiguous_customer_ids();
  -- The stock rows in type order, the order lock_jobs takes them in, so the
  -- two never deadlock.
  perform 1 from nesting.grundner order by type_data for update;

  create temp table if not exists stock_in (like nesting.grundner) on commit drop;
  truncate stock_in;
  insert into stock_in
  select * from jsonb_populate_recordset(null::nesting.grundner,
    (select coalesce(jsonb_agg(r || jsonb_build_object('synced_at', now())), '[]') from jsonb_array_elements(p_rows) r));

  select array_agg(s.type_data order by s.type_data) into appeared
    from stock_in s where not exists (select 1 from nesting.grundner g where g.type_data = s.type_data);
  if coalesce(jsonb_array_length(p_problems), 0) = 0 then
    select array_agg(g.type_data order by g.type_data) into vanished
      from nesting.grundner g where not exists (select 1 from stock_in s where s.type_data = g.type_data);
    delete from nesting.grundner where type_data = any(vanished);
  end if;

  -- Only rows that differ are written, so an unchanged sync notifies nobody.
  insert into nesting.grundner as g
  select * from stock_in
  on conflict (type_data) do update set
    material_name = excluded.material_name, length_mm = excluded.length_mm, width_mm = excluded.width_mm,
    thickness_mm = excluded.thickness_mm, material_no = excluded.material_no, stock = excluded.stock,
    stock_available = excluded.stock_available, reserve_1 = excluded.reserve_1, reserve_2 = excluded.reserve_2,
    reserve_3 = excluded.reserve_3, reserve_4 = excluded.reserve_4, reserve_5 = excluded.reserve_5,
    reserve_6 = excluded.reserve_6, reserved_stock = excluded.reserved_stock, customer_id = excluded.customer_id,
    manual_rest = excluded.manual_rest, block_storage = excluded.block_storage, density = excluded.density,
    synced_at = excluded.synced_at
  where (g.material_name, g.length_mm, g.width_mm, g.thickness_mm, g.material_no, g.stock, g.stock_available,
         g.reserve_1, g.reserve_2, g.reserve_3, g.reserve_4, g.reserve_5, g.reserve_6, g.reserved_stock,
         g.customer_id, g.manual_rest, g.block_storage, g.density)
        is distinct from
        (excluded.material_name, excluded.length_mm, excluded.width_mm, excluded.thickness_mm, excluded.material_no,
         excluded.stock, excluded.stock_available, excluded.reserve_1, excluded.reserve_2, excluded.reserve_3,
         excluded.reserve_4, excluded.reserve_5, excluded.reserve_6, excluded.reserved_stock, excluded.customer_id,
         excluded.manual_rest, excluded.block_storage, excluded.density);
  get diagnostics changed = row_count;

  -- The storage's figures were taken after our stock request went out: locks
  -- acknowledged since then are not in them (lock_jobs counts those).
  update nesting.exchange_state set stock_figure_at = coalesce(
    (select sent_at from nesting.grundner_requests where id = p_request_id),
    (select max(sent_at) from nesting.grundner_requests where kind = 'stock'),
    now());

  if p_request_id is not null then
    perform nesting.finish_request(p_request_id, 'answered',
      jsonb_build_object('types', jsonb_array_length(p_rows), 'changed', changed, 'problems', p_problems));
  end if;
  if appeared is not null then
    perform ops.post_message('grundner', 'info', format('%s new board type(s) in Grundner stock', cardinality(appeared)),
      'Types: ' || array_to_string(appeared, ', '), jsonb_build_object('types', to_jsonb(appeared)));
  end if;
  if vanished is not null then
    perform ops.post_message('grundner', 'warning', format('%s board type(s) gone from Grundner stock: %s', cardinality(vanished),
             nesting.list_summary(vanished::text[])),
      'Jobs on these materials cannot be locked until the type is back. Types: ' || array_to_string(vanished, ', '),
      jsonb_build_object('types', to_jsonb(vanished)));
  end if;
  if coalesce(jsonb_array_length(p_problems), 0) > 0 then
    perform ops.post_message('grundner', 'warning',
      format('stock.csv had %s line(s) that could not be read; they were skipped', jsonb_array_length(p_problems)),
      (select string_agg(format('line %s: %s', p ->> 'line', p ->> 'error'), E'\n') from jsonb_array_elements(p_problems) p),
      jsonb_build_object('request_id', p_request_id, 'problems', p_problems));
  end if;
  -- One message per customer ID that has just come to name several types.
  perform ops.post_message('grundner', 'warning',
      format('Customer ID %s names %s board types; jobs with it use type %s', a.customer_id, cardinality(a.types), a.types[1]),
      format('Types %s share customer ID %s. A job whose material is this ID resolves to the lowest type (%s). '
             'A supervisor can pin a job to another type (pin_job_type).', array_to_string(a.types, ', '), a.customer_id, a.types[1]),
      jsonb_build_object('customer_id', a.customer_id, 'types', to_jsonb(a.types)))
    from nesting.ambiguous_customer_ids() a
   where not (a.customer_id = any(ambiguous_before));
  perform nesting.check_drift();
  return jsonb_build_object('types', jsonb_array_length(p_rows), 'changed', changed,
    'appeared', coalesce(to_jsonb(appeared), '[]'), 'vanished', coalesce(to_jsonb(vanished), '[]'));
end
$$;

-- A request that could not be written (the worker found a value the gateway
-- cannot take, or the share refused the file).
create or replace function nesting.fail_request(p_request_id bigint, p_error text) returns void
language plpgsql volatile
as $$
declare
  r nesting.grundner_requests;
begin
  select * into r from nesting.grundner_requests where id = p_request_id for update;
  if r.status not in ('queued', 'sending', 'sent') then
    return;
  end if;
  perform nesting.finish_request(r.id, 'failed', null, p_error);
  perform ops.post_message('grundner', 'error', format('Could not send %s', nesting.request_label(r)), p_error,
    jsonb_build_object('request_id', r.id, 'jobs', (select jsonb_agg(i -> 'key') from jsonb_array_elements(r.items) i)));
end
$$;

-- An administrator gives up on a request (queued, or taken but never answered).
create or replace function nesting.cancel_request(p_request_id bigint, p_reason text default '') returns nesting.grundner_requests
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  r nesting.grundner_requests;
begin
  select * into r from nesting.grundner_requests where id = p_request_id for update;
  if not found then
    raise exception 'Request % does not exist', p_request_id using errcode = 'SF404';
  elsif r.status not in ('queued', 'sent') then
    raise exception 'Request % is %, it cannot be cancelled', p_request_id, r.status using errcode = 'SF409';
  end if;
  update nesting.grundner_requests set status = 'cancelled', finished_at = now(),
         error = coalesce(nullif(p_reason, ''), 'cancelled by ' || ops.current_actor())
   where id = r.id returning * into r;
  perform ops.audit('cancel_request', 'grundner_request', r.id::text, jsonb_build_object('reason', p_reason));
  return r;
end
$$;

------------------------------------------------------------------------------
-- Ambiguous customer IDs, drift, pins and the exchange's own health
------------------------------------------------------------------------------

-- Customer IDs that name more than one board type, with the types (lowest first).
create or replace function nesting.ambiguous_customer_ids() returns table (customer_id text, types integer[])
language sql stable
as $$
  select g.customer_id, array_agg(g.type_data order by g.type_data)
    from nesting.grundner g where g.customer_id <> ''
   group by g.customer_id having count(*) > 1
$$;

-- After each stock sync: per type, the storage's reserved stock (field 15)
-- against the jobs we hold locked on it. A type with a lock or release in
-- flight, or finished since the figures were taken, is left for the next sync
-- (the two sides cannot agree yet). One message per type and episode; the
-- row goes when they agree again.
create or replace function nesting.check_drift() returns void
language plpgsql volatile
as $$
declare
  figure_at timestamptz := (select stock_figure_at from nesting.exchange_state);
begin
  create temp table if not exists drift_now (type_data int, reserved_stock int, locked_count int, jobs text[], settled boolean)
    on commit drop;
  truncate drift_now;
  insert into drift_now
  select g.type_data, g.reserved_stock, coalesce(l.n, 0), coalesce(l.jobs, '{}'),
         not exists (select 1 from nesting.grundner_requests r, jsonb_array_elements(r.items) i
                      where r.kind in ('lock', 'release') and (i ->> 'type')::int = g.type_data
                        and (r.status in ('sending', 'sent') or r.finished_at > figure_at))
    from nesting.grundner g
    left join (select j.locked_type, count(*)::int as n, array_agg(j.key order by j.key) as jobs
                 from nesting.jobs j where j.is_locked group by j.locked_type) l on l.locked_type = g.type_data;
  analyze drift_now;

  -- Agree again (or the type is gone): the episode ends.
  perform ops.post_message('grundner', 'info',
      format('Type %s: Grundner''s reserved stock agrees with our locks again (%s)', d.type_data, coalesce(n.locked_count, 0)),
      '', jsonb_build_object('type', d.type_data))
    from nesting.stock_drift d left join drift_now n on n.type_data = d.type_data
   where n.type_data is null or (n.settled and n.reserved_stock = n.locked_count);
  delete from nesting.stock_drift d
   where not exists (select 1 from drift_now n where n.type_data = d.type_data and not (n.settled and n.reserved_stock = n.locked_count));

  -- A new difference: one message naming the type, both numbers and the jobs.
  perform ops.post_message('grundner', 'warning',
      format('Type %s: Grundner reserves %s board(s), we hold %s locked', n.type_data, n.reserved_stock, n.locked_count),
      format('Jobs locked on type %s: %s. Compare the storage''s production list with these jobs.', n.type_data,
             coalesce(nullif(array_to_string(n.jobs, ', '), ''), 'none')),
      jsonb_build_object('type', n.type_data, 'reserved_stock', n.reserved_stock, 'locked', n.locked_count, 'jobs', to_jsonb(n.jobs)))
    from drift_now n
   where n.settled and n.reserved_stock <> n.locked_count
     and not exists (select 1 from nesting.stock_drift d where d.type_data = n.type_data);
  insert into nesting.stock_drift as d (type_data, reserved_stock, locked_count, jobs)
  select n.type_data, n.reserved_stock, n.locked_count, n.jobs from drift_now n
   where n.settled and n.reserved_stock <> n.locked_count
  on conflict (type_data) do update set reserved_stock = excluded.reserved_stock, locked_count = excluded.locked_count,
    jobs = excluded.jobs, checked_at = now();
end
$$;

create or replace view nesting.stock_drift_view as
select d.type_data, g.material_name, g.customer_id, d.reserved_stock, d.locked_count, d.jobs, d.since, d.checked_at
  from nesting.stock_drift d left join nesting.grundner g on g.type_data = d.type_data;

-- A supervisor pins a job's material to one board type (null: unpin). Not
-- while its board is locked or a lock is under way: the order names a type.
create or replace function nesting.pin_job_type(p_key text, p_type integer) returns nesting.jobs
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  j nesting.jobs;
begin
  select * into j from nesting.lock_job_rows(array[p_key]);
  if p_type is not null and not exists (select 1 from nesting.grundner where type_data = p_type) then
    raise exception 'Type % is not in Grundner stock', p_type using errcode = 'SF422';
  elsif j.is_locked or nesting.open_request_for(p_key, 'lock') is not null then
    raise exception 'Job % is locked or being locked; release it before pinning another type', p_key using errcode = 'SF409';
  end if;
  update nesting.jobs set pinned_type = p_type where key = p_key returning * into j;
  perform nesting.job_event(p_key, 'type_pinned', jsonb_build_object('type', p_type));
  perform ops.audit('pin_job_type', 'nesting_job', p_key, jsonb_build_object('type', p_type));
  return j;
end
$$;

-- The worker's report after each pass: when it completed, and whether the
-- share took our files. One message when the share starts failing, one when
-- it works again.
create or replace function nesting.note_exchange_pass(p_share_error text) returns void
language plpgsql volatile
as $$
declare
  s nesting.exchange_state;
begin
  select * into s from nesting.exchange_state for update;
  if p_share_error is not null and s.share_failing_since is null then
    perform ops.post_message('grundner', 'error', 'Requests cannot be written to the Grundner share',
      p_share_error || E'\nRequests wait in the database and go out once the share takes files again.', '{}');
  elsif p_share_error is null and s.share_failing_since is not null then
    perform ops.post_message('grundner', 'info', 'The Grundner share takes requests again',
      format('It failed from %s: %s', s.share_failing_since, s.share_error), '{}');
  end if;
  update nesting.exchange_state
     set last_pass_at = now(),
         share_failing_since = case when p_share_error is null then null else coalesce(share_failing_since, now()) end,
         share_error = p_share_error;
end
$$;

-- For /healthz: has a pass completed lately, does the share take files.
create or replace function nesting.exchange_health() returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'ok', s.last_pass_at > now() - ops.setting_interval('nesting.exchange_stale_after', interval '30 seconds')
          and s.share_failing_since is null,
    'lastPassSecondsAgo', extract(epoch from now() - s.last_pass_at)::int,
    'shareFailingSince', s.share_failing_since,
    'shareError', s.share_error,
    'driftTypes', (select count(*) from nesting.stock_drift))
    from nesting.exchange_state s
$$;

------------------------------------------------------------------------------
-- The allocation grid, and its live refresh
------------------------------------------------------------------------------

-- Each job counts on exactly one type: nesting.job_type, as in lock and release.
drop view if exists nesting.allocated_material_view;
create view nesting.allocated_material_view as
with held as (
  select j.*, nesting.job_type(j.material, j.pinned_type, j.locked_type) as type
    from nesting.jobs j where j.pre_reserved or j.is_locked
), per_type as (
  select h.type,
         count(*) filter (where h.pre_reserved)::int as pre_reserved_count,
         count(*) filter (where h.is_locked)::int as locked_count,
         jsonb_agg(jsonb_build_object('key', h.key, 'grundner_job_no', h.grundner_job_no,
                                      'pre_reserved', h.pre_reserved, 'is_locked', h.is_locked,
                                      'allocated_at', h.allocated_at, 'pinned_type', h.pinned_type) order by h.key) as jobs
    from held h group by h.type
)
select g.type_data,
       g.material_name,
       g.customer_id,
       g.thickness_mm,
       g.stock,
       g.stock_available,
       g.reserved_stock,
       coalesce(p.pre_reserved_count, 0) as pre_reserved_count,
       coalesce(p.locked_count, 0) as locked_count,
       nesting.pending_lock_count(g.type_data) as pending_lock_count,
       nesting.locked_since_figure(g.type_data) as locked_since_sync,
       nesting.available_to_lock(g.type_data) as available_to_lock,
       nesting.available_to_lock(g.type_data) - coalesce(p.pre_reserved_count, 0) as available_after_reservations,
       coalesce(p.jobs, '[]') as jobs,
       a.types as customer_id_types,
       d.type_data is not null as drifting,
       g.synced_at
  from nesting.grundner g
  left join per_type p on p.type = g.type_data
  left join nesting.ambiguous_customer_ids() a on a.customer_id = g.customer_id
  left join nesting.stock_drift d on d.type_data = g.type_data;

-- One NOTIFY per statement that changed reservations, locks, materials, job
-- status or stock. Statement triggers fire even when nothing changed (every
-- ingest scan and unchanged stock sync): the transition tables say whether
-- anything did.
create or replace function nesting.notify_allocated_material_changed() returns trigger
language plpgsql security definer
set search_path = pg_catalog, public
as $$
declare
  changed boolean;
begin
  if tg_table_name = 'jobs' and tg_op = 'UPDATE' then
    -- A set difference, not a join of the transition tables (see tracking's live trigger).
    select exists (select key, pre_reserved, is_locked, material, status, pinned_type, locked_type, removed_at from new_rows
                   except
                   select key, pre_reserved, is_locked, material, status, pinned_type, locked_type, removed_at from old_rows)
      into changed;
  elsif tg_op = 'DELETE' then
    select exists (select 1 from old_rows) into changed;
  else
    select exists (select 1 from new_rows) into changed;
  end if;
  if changed then
    perform pg_notify('allocated_material_changed', json_build_object('table', tg_table_name, 'op', lower(tg_op))::text);
  end if;
  return null;
end
$$;

drop trigger if exists jobs_allocation_changed on nesting.jobs;
drop trigger if exists grundner_allocation_changed on nesting.grundner;
create or replace trigger jobs_allocation_inserted after insert on nesting.jobs
  referencing new table as new_rows for each statement execute function nesting.notify_allocated_material_changed();
create or replace trigger jobs_allocation_updated after update on nesting.jobs
  referencing old table as old_rows new table as new_rows for each statement execute function nesting.notify_allocated_material_changed();
create or replace trigger jobs_allocation_deleted after delete on nesting.jobs
  referencing old table as old_rows for each statement execute function nesting.notify_allocated_material_changed();
create or replace trigger grundner_allocation_inserted after insert on nesting.grundner
  referencing new table as new_rows for each statement execute function nesting.notify_allocated_material_changed();
create or replace trigger grundner_allocation_updated after update on nesting.grundner
  referencing new table as new_rows for each statement execute function nesting.notify_allocated_material_changed();
create or replace trigger grundner_allocation_deleted after delete on nesting.grundner
  referencing old table as old_rows for each statement execute function nesting.notify_allocated_material_changed();

-- New requests wake the Grundner worker (one job; passes never overlap: an
-- advisory lock in pump.ts, not a named queue, keeps them apart).
create or replace function nesting.wake_grundner_worker() returns trigger
language plpgsql security definer
set search_path = pg_catalog, public
as $$
begin
  perform ops_private.wake('nesting_grundner');
  return null;
end
$$;

create or replace trigger grundner_requests_wake_worker
  after insert on nesting.grundner_requests
  for each statement execute function nesting.wake_grundner_worker();

------------------------------------------------------------------------------
-- GraphQL shape and grants
------------------------------------------------------------------------------

comment on table nesting.jobs is E'@name NestingJob\n@behavior -insert -update -delete\nNC programs from the processed jobs root.';
comment on table nesting.grundner is E'@name GrundnerStock\n@behavior -insert -update -delete\nGrundner board types and their stock (from stock.csv).';
comment on table nesting.grundner_requests is E'@name GrundnerRequest\n@behavior -insert -update -delete\nThe outbox of file requests to the Grundner share.';
comment on table nesting.job_events is E'@name NestingJobEvent\n@behavior -insert -update -delete\nEach job''s timeline.';
comment on view nesting.allocated_material_view is E'@name AllocatedMaterial\nPer board type: stock, available, Grundner''s reserved count, our reservations and locks (each job on exactly one type), what can still be locked, the other types sharing its customer ID, drift, and the jobs behind them.';
comment on view nesting.stock_drift_view is E'@name GrundnerStockDrift\nBoard types whose reserved stock at Grundner differs from the jobs we hold locked on them.';
comment on table nesting.stock_drift is E'@name GrundnerStockDriftRow\n@behavior -insert -update -delete';
comment on table nesting.exchange_state is E'@name GrundnerExchangeState\n@behavior -insert -update -delete\nThe Grundner exchange: last completed pass, share outage, when the stock figures were taken.';

-- Internal helpers: not part of the API.
comment on function nesting.to_base36(bigint) is E'@behavior -queryField -mutationField';
comment on function nesting.job_event(text, text, jsonb) is E'@behavior -queryField -mutationField';
comment on function nesting.material_type(text) is E'@behavior -queryField -mutationField';
comment on function nesting.job_type(text, integer, integer) is E'@behavior -queryField -mutationField';
comment on function nesting.list_summary(text[], integer) is E'@behavior -queryField -mutationField';
comment on function nesting.short_text(text, integer) is E'@behavior -queryField -mutationField';
comment on function nesting.locked_since_figure(integer) is E'@behavior -queryField -mutationField';
comment on function nesting.available_to_lock(integer) is E'@behavior -queryField -mutationField';
comment on function nesting.release_sources() is E'@behavior -queryField -mutationField';
comment on function nesting.erl_lines(text[]) is E'@behavior -queryField -mutationField';
comment on function nesting.timed_out_release_for(jsonb) is E'@behavior -queryField -mutationField';
comment on function nesting.apply_release_erl(bigint) is E'@behavior -queryField -mutationField';
comment on function nesting.ambiguous_customer_ids() is E'@behavior -queryField -mutationField';
comment on function nesting.check_drift() is E'@behavior -queryField -mutationField';
comment on function nesting.note_exchange_pass(text) is E'@behavior -queryField -mutationField';
comment on function nesting.exchange_health() is E'@behavior -queryField -mutationField';
comment on function nesting.check_field(text, text) is E'@behavior -queryField -mutationField';
comment on function nesting.pending_lock_count(integer) is E'@behavior -queryField -mutationField';
comment on function nesting.open_request_for(text, text) is E'@behavior -queryField -mutationField';
comment on function nesting.lock_job_rows(text[]) is E'@behavior -queryField -mutationField';
comment on function nesting.claim_requests_to_send() is E'@behavior -queryField -mutationField';
comment on function nesting.requests_in_flight() is E'@behavior -queryField -mutationField';
comment on function nesting.mark_request_sent(bigint) is E'@behavior -queryField -mutationField';
comment on function nesting.finish_request(bigint, text, jsonb, text) is E'@behavior -queryField -mutationField';
comment on function nesting.request_label(nesting.grundner_requests) is E'@behavior -typeField -queryField';
comment on function nesting.time_out_request(bigint, boolean) is E'@behavior -queryField -mutationField';
comment on function nesting.apply_order_saw_ack(bigint, text[]) is E'@behavior -queryField -mutationField';
comment on function nesting.apply_release_answer(bigint, jsonb) is E'@behavior -queryField -mutationField';
comment on function nesting.unexpected_order_saw_ack(text[]) is E'@behavior -queryField -mutationField';
comment on function nesting.apply_stock(bigint, jsonb, jsonb) is E'@behavior -queryField -mutationField';
comment on function nesting.fail_request(bigint, text) is E'@behavior -queryField -mutationField';
comment on function nesting.request_stock_if_due() is E'@behavior -queryField -mutationField';

grant usage on schema nesting to shopfloor_operator, shopfloor_integration;
grant select on nesting.jobs, nesting.grundner, nesting.grundner_requests, nesting.job_events,
  nesting.allocated_material_view, nesting.stock_drift, nesting.stock_drift_view, nesting.exchange_state
  to shopfloor_operator, shopfloor_integration;
grant execute on function nesting.pin_job_type(text, integer) to shopfloor_supervisor;
-- The grid's view calls these for its readers.
grant execute on function nesting.material_type(text), nesting.job_type(text, integer, integer), nesting.pending_lock_count(integer),
  nesting.locked_since_figure(integer), nesting.available_to_lock(integer), nesting.ambiguous_customer_ids()
  to shopfloor_operator, shopfloor_integration;
grant execute on function nesting.reserve_job(text), nesting.unreserve_job(text), nesting.lock_jobs(text[]),
  nesting.unlock_jobs(text[], text, text), nesting.request_stock(text) to shopfloor_operator;
grant execute on function nesting.cancel_request(bigint, text) to shopfloor_admin;

-- Clean GraphQL names (nesting is not the first exposed schema, so its
-- functions would otherwise carry a "nesting" prefix).
comment on function nesting.reserve_job(text) is E'@name reserve_job\nReserves a PENDING job''s board (pre_reserved). Idempotent.';
comment on function nesting.unreserve_job(text) is E'@name unreserve_job\nDrops a job''s reservation. Idempotent.';
comment on function nesting.lock_jobs(text[]) is E'@name lock_jobs\nQueues one order_saw.csv for the whole batch; returns the request id. The jobs lock when Grundner acknowledges.';
comment on function nesting.unlock_jobs(text[], text, text) is E'@name unlock_jobs\nQueues one get_production.csv for all the jobs; returns the request id. Jobs release when Grundner answers.';
comment on function nesting.request_stock(text) is E'@name request_grundner_stock\nQueues a stock request (or returns the one already waiting).';
comment on function nesting.pin_job_type(text, integer) is E'Pins a job''s material to one Grundner board type, or unpins it with null (supervisor). Not while locked.';
comment on function nesting.cancel_request(bigint, text) is E'@name cancel_grundner_request\nGives up on a queued request, or one the storage took but never answered (admin).';

------------------------------------------------------------------------------
-- Part 2: machines, the processed jobs root, staging, Ready-to-Run
------------------------------------------------------------------------------

-- A machine per Ready-to-Run folder. At start-up every READY_DIRS folder
-- without a machine gets one named after the folder (rename it later).
create or replace function nesting.ensure_machine(p_ready_dir text) returns nesting.machines
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
create or replace function nesting.note_scan(p_scanner text, p_source text, p_error text) returns nesting.scan_state
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
create or replace function nesting.release_locked(p_keys text[], p_source text, p_reason text,
                                                  out released text[], out request_id bigint)
language plpgsql volatile
as $$
begin
  perform 1 from nesting.jobs where key = any(p_keys) order by key for update;
  select array_agg(key order by key) into released from nesting.jobs
   where key = any(p_keys) and is_locked and nesting.open_request_for(key, 'release') is null;
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

create or replace function nesting.is_ignored_name(p_name text) returns boolean
language sql stable
as $$
  select p_name ~* nesting.ignored_name_pattern()
$$;

-- What the ingest poller needs to know for its next scan.
create or replace function nesting.ingest_settings() returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'next_scan_ms', (extract(epoch from ops.setting_interval('nesting.ingest_interval', interval '5 seconds')) * 1000)::int,
    'stable_ms', (extract(epoch from ops.setting_interval('nesting.stable_after', interval '2 seconds')) * 1000)::int,
    'ignored_pattern', nesting.ignored_name_pattern(),
    'sentinel_file', coalesce(ops.setting_text('nesting.ingest_sentinel_file'), ''))
$$;

-- Marks the jobs removed (never deleted), releases the locked ones with one
-- get_production.csv, and posts one message.
create or replace function nesting.prune_jobs(p_keys text[], out released text[], out request_id bigint)
language plpgsql volatile
as $$
begin
  select r.released, r.request_id into released, request_id
    from nesting.release_locked(p_keys, 'jobs-ingest', 'job deleted') r;
  update nesting.jobs set removed_at = now(), pre_reserved = false where key = any(p_keys);
  insert into nesting.job_events (job_key, event, details)
  select k, 'pruned', jsonb_build_object('reason', 'NC file gone from the processed jobs root') from unnest(p_keys) k;
  perform ops.post_message('jobs-ingest', case when released is null then 'info' else 'warning' end,
    format('Removed %s job(s) whose NC files are gone%s', cardinality(p_keys),
           case when released is null then '' else format('; releasing %s from Grundner', nesting.bounded_list(released, 10)) end),
    array_to_string(p_keys, E'\n'),
    jsonb_build_object('jobs', to_jsonb(p_keys), 'released', to_jsonb(released), 'request_id', request_id));
end
$$;

-- "A, B, C and 7 more": a list that fits in a title.
create or replace function nesting.bounded_list(p_items text[], p_max integer) returns text
language sql immutable
as $$
  select array_to_string(p_items[1:p_max], ', ')
         || case when cardinality(p_items) > p_max then format(' and %s more', cardinality(p_items) - p_max) else '' end
$$;

-- The prune guard. p_missing: the PENDING/STAGED jobs a complete scan did not
-- find. Returns the keys that may be pruned now. A mass removal (more than
-- nesting.prune_hold_above_jobs jobs and more than
-- nesting.prune_hold_above_share of the known ones) is what an unmounted share
-- looks like: it is held (one open row in nesting.prune_holds, one message)
-- until a supervisor confirms it (nesting.confirm_prune) or the files come back.
create or replace function nesting.guard_prune(p_missing text[]) returns text[]
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
    return confirmed || nesting.guard_prune(rest);
  end if;
  if n > 0 then
    select count(*)::int into known_jobs from nesting.jobs where removed_at is null and status in ('PENDING', 'STAGED');
  end if;
  if n = 0 or not (n > ops.setting_numeric('nesting.prune_hold_above_jobs', 10)
                   and n > ops.setting_numeric('nesting.prune_hold_above_share', 0.5) * known_jobs) then
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
             h.id, nesting.bounded_list(missing, 200)),
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
create or replace function nesting.apply_ingest_scan(p_present text[], p_changed jsonb, p_error text default null)
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

  perform nesting.note_scan('Processed jobs root', 'jobs-ingest', p_error);
  if p_error is null then
    -- Programs gone from disk. Only jobs not yet on their way to being cut
    -- (PENDING, STAGED) are pruned; a cut job is history and stays. A mass
    -- removal waits for a supervisor (guard_prune).
    select array_agg(j.key order by j.key) into missing
      from nesting.jobs j
     where j.removed_at is null and j.status in ('PENDING', 'STAGED')
       and not exists (select 1 from unnest(p_present) k where k = j.key);
    pruned := nullif(nesting.guard_prune(missing), '{}');
  end if;

  if pruned is not null then
    select r.released, r.request_id into to_release, release_id from nesting.prune_jobs(pruned) r;
  end if;

  return jsonb_build_object('added', added, 'updated', updated, 'pruned', coalesce(to_jsonb(pruned), '[]'),
    'release_request_id', release_id,
    'held', (select jsonb_build_object('id', h.id, 'since', h.held_at, 'jobs', cardinality(h.keys), 'known', h.known,
                                       'confirmed_by', h.confirmed_by)
               from nesting.prune_holds h where h.ended_at is null))
    || nesting.ingest_settings();
end
$$;

-- Staging: a worker task copies each job's NC and part files into the
-- machine's Ready-to-Run folder; the job becomes STAGED when the copy is done.
create or replace function nesting.stage_jobs(p_keys text[], p_machine text) returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  m nesting.machines;
  keys text[] := (select array_agg(distinct k order by k) from unnest(p_keys) k where k is not null);
  bad text;
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
    from nesting.lock_job_rows(keys) j
   where j.removed_at is not null or j.status not in ('PENDING', 'STAGED');
  if bad is not null then
    raise exception 'Cannot stage: %', bad using errcode = 'SF409';
  end if;
  perform ops_private.enqueue('nesting_stage_jobs', jsonb_build_object('keys', to_jsonb(keys), 'machine_id', m.id));
  insert into nesting.job_events (job_key, event, details, actor)
  select k, 'stage_requested', jsonb_build_object('machine', m.name), ops.current_actor() from unnest(keys) k;
  perform ops.audit('stage_jobs', 'nesting_machine', m.id::text, jsonb_build_object('jobs', keys));
  return cardinality(keys);
end
$$;

create or replace function nesting.mark_staged(p_keys text[], p_machine_id bigint) returns void
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

create or replace function nesting.stage_failed(p_keys text[], p_machine_id bigint, p_error text) returns void
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
create or replace function nesting.ready_file_seen(p_dir text, p_name text, p_size bigint, p_mtime timestamptz) returns void
language sql volatile
as $$
  insert into nesting.ready_files (machine_id, name, size, mtime)
  select id, p_name, coalesce(p_size, 0), p_mtime from nesting.machines
   where ready_dir = p_dir and not nesting.is_ignored_name(p_name) -- recycle bins, lock files, temporary copies
  on conflict (machine_id, name) do update set size = excluded.size, mtime = excluded.mtime, seen_at = now()
$$;

create or replace function nesting.ready_file_gone(p_dir text, p_name text) returns void
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
create or replace function nesting.unstage(p_machine_id bigint, p_keys text[], p_source text, p_reason text) returns text[]
language plpgsql volatile
as $$
declare
  released text[] := (select r.released from nesting.release_locked(p_keys, p_source, p_reason) r);
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
drop function if exists nesting.stage_sanity(bigint, text[]);
create or replace function nesting.stage_sanity(p_machine_id bigint, p_present text[], p_listed_at timestamptz default null) returns jsonb
language plpgsql volatile
as $$
declare
  m nesting.machines;
  gone text[];
  released text[];
begin
  select * into m from nesting.machines where id = p_machine_id;
  perform nesting.note_scan(format('Ready-to-Run folder of %s', m.name), 'stage-sanity', null);
  -- The Ready page forgets files that went while nobody watched.
  delete from nesting.ready_files f where f.machine_id = p_machine_id and not (f.name = any(p_present));
  select array_agg(j.key order by j.key) into gone from nesting.jobs j
   where j.staged_machine_id = p_machine_id and j.status = 'STAGED' and j.removed_at is null
     and (p_listed_at is null or j.staged_at < p_listed_at)
     and not exists (select 1 from unnest(p_present) n where n = j.ncfile);
  if gone is null then
    return jsonb_build_object('unstaged', '[]'::jsonb, 'released', '[]'::jsonb);
  end if;
  released := nesting.unstage(p_machine_id, gone, 'stage-sanity', 'NC file left Ready-to-Run');
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
    released := nesting.unstage(m.id, affected, 'ready-delete', 'deleted from Ready-to-Run');
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

-- The worker deleted these files: the Ready page forgets them.
create or replace function nesting.ready_files_removed(p_machine_id bigint, p_names text[]) returns void
language sql volatile
as $$
  delete from nesting.ready_files where machine_id = p_machine_id and name = any(p_names)
$$;

comment on table nesting.machines is E'@name NestingMachine\n@behavior -insert -update -delete\nMachines and their Ready-to-Run folders.';
comment on table nesting.ready_files is E'@name ReadyFile\n@behavior -insert -update -delete\nFiles in each Ready-to-Run folder.';
comment on table nesting.scan_state is E'@name NestingScanState\n@behavior -insert -update -delete\nThe last outcome of each periodic scan.';
comment on view nesting.ready_page is E'@name ReadyPageFile\nThe Ready page: each file in a Ready-to-Run folder, linked to its job when one matches.';
comment on function nesting.stage_jobs(text[], text) is E'@name stage_jobs\nCopies the jobs'' NC and part files into the machine''s Ready-to-Run folder (a worker task); they become STAGED when done.';
comment on function nesting.delete_ready_files(text, text[]) is E'@name delete_ready_files\nDeletes files from a machine''s Ready-to-Run folder (a worker task); affected jobs go back to PENDING and locked ones are released once.';
comment on function nesting.upsert_machine(text, text, integer) is E'@name upsert_nesting_machine\nCreates or renames the machine of a Ready-to-Run folder (admin).';
comment on function nesting.ensure_machine(text) is E'@behavior -queryField -mutationField';
comment on function nesting.note_scan(text, text, text) is E'@behavior -queryField -mutationField';
comment on function nesting.apply_ingest_scan(text[], jsonb, text) is E'@behavior -queryField -mutationField';
comment on function nesting.mark_staged(text[], bigint) is E'@behavior -queryField -mutationField';
comment on function nesting.stage_failed(text[], bigint, text) is E'@behavior -queryField -mutationField';
comment on function nesting.ready_file_seen(text, text, bigint, timestamptz) is E'@behavior -queryField -mutationField';
comment on function nesting.ready_file_gone(text, text) is E'@behavior -queryField -mutationField';
comment on function nesting.unstage(bigint, text[], text, text) is E'@behavior -queryField -mutationField';
comment on function nesting.release_locked(text[], text, text) is E'@behavior -queryField -mutationField';
comment on function nesting.stage_sanity(bigint, text[], timestamptz) is E'@behavior -queryField -mutationField';
comment on function nesting.ready_files_removed(bigint, text[]) is E'@behavior -queryField -mutationField';
comment on function nesting.ignored_name_pattern() is E'@behavior -queryField -mutationField';
comment on function nesting.is_ignored_name(text) is E'@behavior -queryField -mutationField';
comment on function nesting.ingest_settings() is E'@behavior -queryField -mutationField';
comment on function nesting.prune_jobs(text[]) is E'@behavior -queryField -mutationField';
comment on function nesting.bounded_list(text[], integer) is E'@behavior -queryField -mutationField';
comment on function nesting.guard_prune(text[]) is E'@behavior -queryField -mutationField';
comment on table nesting.prune_holds is E'@name NestingPruneHold\n@behavior -insert -update -delete\nPrunes of the processed jobs root held because too many jobs vanished at once (an unmounted share); open while ended_at is null.';
comment on function nesting.confirm_prune(bigint) is E'Confirms a held prune (supervisor): the next scan prunes the held jobs that are still gone and releases the locked ones.';

grant select on nesting.machines, nesting.ready_files, nesting.scan_state, nesting.ready_page to shopfloor_operator, shopfloor_integration;
grant execute on function nesting.stage_jobs(text[], text), nesting.delete_ready_files(text, text[]) to shopfloor_operator;
grant execute on function nesting.upsert_machine(text, text, integer) to shopfloor_admin;
grant select on nesting.prune_holds to shopfloor_operator, shopfloor_integration;
grant execute on function nesting.confirm_prune(bigint) to shopfloor_supervisor;

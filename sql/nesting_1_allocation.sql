-- nesting, allocation: NC jobs reserve, lock and release boards in the
-- Grundner sheet store. The database decides every outcome: reserve_job,
-- lock_jobs and unlock_jobs queue requests in the Grundner outbox
-- (nesting_2_grundner.sql), whose apply_* functions change the jobs when the
-- storage answers. Also here: pins, drift, the allocation grid and its live
-- refresh.

-- Worker-only functions and internal helpers live in nesting_private (issue
-- 18); the old names go. The helpers the grid's view calls for its readers
-- stay in nesting (a view's reader must be able to execute them), hidden from
-- GraphQL; the view is rebuilt below.
drop view if exists nesting.allocated_material_view;
drop function if exists nesting_private.request_open(text);
drop function if exists nesting.to_base36(bigint);
drop function if exists nesting.job_event(text, text, jsonb);
drop function if exists nesting_private.material_type(text);
drop function if exists nesting_private.job_type(text, integer, integer);
drop function if exists nesting.list_summary(text[], integer);
drop function if exists nesting.short_text(text, integer);
drop function if exists nesting_private.locked_since_figure(integer);
drop function if exists nesting_private.available_to_lock(integer);
drop function if exists nesting.release_sources();
drop function if exists nesting_private.ambiguous_customer_ids();
drop function if exists nesting.check_field(text, text);
drop function if exists nesting_private.pending_lock_count(integer);
drop function if exists nesting.open_request_for(text, text);
drop function if exists nesting.lock_job_rows(text[]);
drop function if exists nesting.erl_lines(text[]);
drop function if exists nesting.timed_out_release_for(jsonb);
drop function if exists nesting.apply_release_erl(bigint);
drop function if exists nesting.check_drift();
drop function if exists nesting.note_exchange_pass(text);
drop function if exists nesting.claim_requests_to_send();
drop function if exists nesting.requests_in_flight();
drop function if exists nesting.mark_request_sent(bigint);
drop function if exists nesting.finish_request(bigint, text, jsonb, text);
drop function if exists nesting.request_label(nesting.grundner_requests);
drop function if exists nesting.time_out_request(bigint, boolean);
drop function if exists nesting.apply_order_saw_ack(bigint, text[]);
drop function if exists nesting.apply_release_answer(bigint, jsonb);
drop function if exists nesting.unexpected_order_saw_ack(text[]);
drop function if exists nesting.apply_stock(bigint, jsonb, jsonb);
drop function if exists nesting.fail_request(bigint, text);
drop function if exists nesting.request_stock_if_due();
drop function if exists nesting.ensure_machine(text);
drop function if exists nesting.note_scan(text, text, text);
drop function if exists nesting.apply_ingest_scan(text[], jsonb, text);
drop function if exists nesting.mark_staged(text[], bigint);
drop function if exists nesting.stage_failed(text[], bigint, text);
drop function if exists nesting.ready_file_seen(text, text, bigint, timestamptz);
drop function if exists nesting.ready_file_gone(text, text);
drop function if exists nesting.unstage(bigint, text[], text, text);
drop function if exists nesting.release_locked(text[], text, text);
drop function if exists nesting.stage_sanity(bigint, text[], timestamptz);
drop function if exists nesting.ready_files_removed(bigint, text[]);
drop function if exists nesting.is_ignored_name(text);
drop function if exists nesting.ingest_settings();
drop function if exists nesting.prune_jobs(text[]);
drop function if exists nesting.bounded_list(text[], integer);
drop function if exists nesting_private.bounded_list(text[], integer); -- list_summary says the same
drop function if exists nesting.guard_prune(text[]);
drop function if exists nesting.stage_sanity(bigint, text[]);

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------

create or replace function nesting_private.to_base36(p_n bigint) returns text
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
create or replace function nesting_private.tg_jobs__assign_grundner_job_no() returns trigger
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
        code := 'J' || lpad(nesting_private.to_base36(nextval('nesting.grundner_job_no_seq')), 7, '0');
        exit when not exists (select 1 from nesting.jobs where grundner_job_no = code);
      end loop;
      new.grundner_job_no := code;
    end if;
  end if;
  return new;
end
$$;

create or replace trigger jobs_assign_grundner_job_no
  before insert or update on nesting.jobs
  for each row execute function nesting_private.tg_jobs__assign_grundner_job_no();
create or replace trigger jobs_updated_at
  before update on nesting.jobs
  for each row execute function ops_private.tg__updated_at();
drop function if exists nesting.assign_grundner_job_no();

create or replace function nesting_private.job_event(p_key text, p_event text, p_details jsonb default '{}') returns void
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
create or replace function nesting_private.list_summary(p_items text[], p_max integer default 5) returns text
language sql immutable
as $$
  select case when coalesce(cardinality(p_items), 0) <= p_max then array_to_string(p_items, ', ')
              else array_to_string(p_items[1:p_max], ', ') || format(' and %s more', cardinality(p_items) - p_max) end
$$;

-- Free text shortened for a title.
create or replace function nesting_private.short_text(p_text text, p_max integer default 80) returns text
language sql immutable
as $$
  select case when length(p_text) <= p_max then p_text else left(p_text, p_max - 1) || '…' end
$$;

-- Lines a parser could not read ([{line, error}]), one per line of text.
-- The problems of a reply as kept with its request and message: the first
-- 100, each line's text cut to 300 characters (a file of 100,000 broken lines
-- stored them all, twice). Counts are taken from the whole list.
create or replace function nesting_private.first_problems(p_problems jsonb) returns jsonb
language sql immutable
as $$
  select coalesce(jsonb_agg(case when p ? 'text' then jsonb_set(p, '{text}', to_jsonb(left(p ->> 'text', 300))) else p end order by n), '[]')
    from jsonb_array_elements(coalesce(p_problems, '[]')) with ordinality x(p, n)
   where n <= 100
$$;

create or replace function nesting_private.problem_lines(p_problems jsonb) returns text
language sql immutable
as $$
  select string_agg(format('line %s: %s', p ->> 'line', left(p ->> 'error', 300)), E'\n' order by n)
         || case when jsonb_array_length(p_problems) > 100
                 then format(E'\n... and %s more', jsonb_array_length(p_problems) - 100) else '' end
    from jsonb_array_elements(nesting_private.first_problems(p_problems)) with ordinality x(p, n)
$$;

-- Refuses a value the gateway cannot take: a separator or line break inside a
-- field, or a character outside Windows-1252.
create or replace function nesting_private.check_field(p_value text, p_what text) returns text
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

-- A request is open until it finishes (queued, being written, or taken by the
-- storage), and in flight while its file is on the share (sending, sent; one
-- per file name, see the unique index grundner_requests_one_in_flight).
create or replace function nesting.request_open(p_status text) returns boolean
language sql immutable
as $$
  select p_status in ('queued', 'sending', 'sent')
$$;

create or replace function nesting_private.request_in_flight(p_status text) returns boolean
language sql immutable
as $$
  select p_status in ('sending', 'sent')
$$;

-- Lock requests not yet finished hold boards Grundner does not count yet.
create or replace function nesting.pending_lock_count(p_type integer) returns integer
language sql stable
as $$
  select count(*)::int
    from nesting.grundner_request_items i join nesting.grundner_requests r on r.id = i.request_id
   where i.type = p_type and r.kind = 'lock' and nesting.request_open(r.status)
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

create or replace function nesting_private.open_request_for(p_key text, p_kind text) returns bigint
language sql stable
as $$
  select r.id from nesting.grundner_request_items i join nesting.grundner_requests r on r.id = i.request_id
   where i.job_key = p_key and r.kind = p_kind and nesting.request_open(r.status)
   limit 1
$$;

-- The machine number for a job staged on no machine: the setting
-- nesting.saw_machine, which the gateway takes only as 1..4 for saw orders.
-- Read only when a job needs it (coalesce evaluates it lazily), so a bad
-- setting does not stop jobs staged on a machine.
create or replace function nesting_private.saw_machine() returns integer
language plpgsql stable
as $$
declare
  v numeric := ops.setting_numeric('nesting.saw_machine');
begin
  if v is null or v not in (1, 2, 3, 4) then
    raise exception 'Setting nesting.saw_machine is %, but the Grundner gateway takes machine numbers 1 to 4 for saw orders', coalesce(v::text, 'empty')
      using errcode = 'SF422', hint = 'An admin sets it with ops.set_setting(''nesting.saw_machine'', ''1'').';
  end if;
  return v::int;
end
$$;

-- Locks the named jobs in key order (the fixed order keeps two callers from
-- deadlocking) and refuses, naming them, any key that does not exist.
create or replace function nesting_private.lock_job_rows(p_keys text[]) returns setof nesting.jobs
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
  select * into j from nesting_private.lock_job_rows(array[p_key]);
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
  perform nesting_private.job_event(p_key, 'reserved');
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
  select * into j from nesting_private.lock_job_rows(array[p_key]);
  if not j.pre_reserved then
    return j;
  end if;
  update nesting.jobs set pre_reserved = false where key = p_key returning * into j;
  perform nesting_private.job_event(p_key, 'unreserved');
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
  bad text;
  short text;
  request_id bigint;
begin
  if keys is null then
    raise exception 'No jobs to lock' using errcode = 'SF422';
  end if;
  -- Row locks first, in a statement of their own: the checks below then run
  -- in a snapshot taken after any competing caller committed (a stable
  -- function in the same statement as the wait would see the old state, and
  -- two callers could both order the same job).
  perform nesting_private.lock_job_rows(keys);
  drop table if exists pg_temp.lock_batch;
  create temp table lock_batch (key text, job_no text, material text, type int, machine int, problem text) on commit drop;
  insert into lock_batch
  -- The saw: the Grundner number of the machine the job is staged on, else the setting.
  select j.key, j.grundner_job_no, j.material, nesting.job_type(j.material, j.pinned_type, j.locked_type),
         coalesce((select m.grundner_machine from nesting.machines m where m.id = j.staged_machine_id), nesting_private.saw_machine()),
         case
           when j.removed_at is not null then 'its NC file is gone'
           when j.is_locked then 'already locked'
           when j.status not in ('PENDING', 'STAGED') then 'status ' || j.status
           when nesting_private.open_request_for(j.key, 'lock') is not null then 'a lock is already under way'
           when nesting_private.open_request_for(j.key, 'release') is not null then 'a release is under way'
         end
    from nesting_private.lock_job_rows(keys) j;

  update lock_batch set problem = coalesce(problem, format('material %s is unknown to Grundner', coalesce(material, '(none)')))
   where type is null;
  select nesting_private.list_summary(array_agg(format('%s (%s)', key, problem) order by key), 20) into bad
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
         array_agg(format('%s;%s;1;0;%s;0;0;0;;', nesting_private.check_field(job_no, 'Job number'), type, machine) order by key),
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
create or replace function nesting_private.release_sources() returns text[]
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
  bad text;
  request_id bigint;
begin
  if keys is null then
    raise exception 'No jobs to release' using errcode = 'SF422';
  end if;
  -- The source names the Messages page's source column: checked at the door.
  -- Free text belongs in p_reason.
  if coalesce(nullif(p_source, ''), 'user') not in (select unnest(nesting_private.release_sources())) then
    raise exception 'source must be one of %, not "%"', array_to_string(nesting_private.release_sources(), ', '),
      nesting_private.short_text(p_source, 40) using errcode = 'SF422', hint = 'Put free text in reason.';
  end if;
  -- Row locks first, in a statement of their own (see lock_jobs).
  perform nesting_private.lock_job_rows(keys);
  select nesting_private.list_summary(array_agg(format('%s (%s)', j.key, case when not j.is_locked then 'not locked' else 'a release is already under way' end)
                    order by j.key), 20)
    into bad
    from nesting_private.lock_job_rows(keys) j
   where not j.is_locked or nesting_private.open_request_for(j.key, 'release') is not null;
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
                          nesting_private.saw_machine()) as machine
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
-- Pins, ambiguous customer IDs, and drift from the storage's reserved stock
------------------------------------------------------------------------------

-- Customer IDs that name more than one board type, with the types (lowest first).
create or replace function nesting.ambiguous_customer_ids() returns table (customer_id text, types integer[])
language sql stable
as $$
  select g.customer_id, array_agg(g.type_data order by g.type_data)
    from nesting.grundner g where g.customer_id <> ''
   group by g.customer_id having count(*) > 1
$$;

-- A supervisor pins a job's material to one board type (null: unpin). Not
-- while its board is locked or a lock is under way: the order names a type.
create or replace function nesting.pin_job_type(p_key text, p_type integer) returns nesting.jobs
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  j nesting.jobs;
begin
  select * into j from nesting_private.lock_job_rows(array[p_key]);
  if p_type is not null and not exists (select 1 from nesting.grundner where type_data = p_type) then
    raise exception 'Type % is not in Grundner stock', p_type using errcode = 'SF422';
  elsif j.is_locked or nesting_private.open_request_for(p_key, 'lock') is not null then
    raise exception 'Job % is locked or being locked; release it before pinning another type', p_key using errcode = 'SF409';
  end if;
  update nesting.jobs set pinned_type = p_type where key = p_key returning * into j;
  perform nesting_private.job_event(p_key, 'type_pinned', jsonb_build_object('type', p_type));
  perform ops.audit('pin_job_type', 'nesting_job', p_key, jsonb_build_object('type', p_type));
  return j;
end
$$;

-- After each stock sync: per type, the storage's reserved stock (field 15)
-- against the jobs we hold locked on it. A type with a lock or release in
-- flight, or finished since the figures were taken, is left for the next sync
-- (the two sides cannot agree yet). One message per type and episode; the
-- row goes when they agree again.
create or replace function nesting_private.check_drift() returns void
language plpgsql volatile
as $$
declare
  figure_at timestamptz := (select stock_figure_at from nesting.exchange_state);
begin
  if not ops_private.own_temp_table('drift_now') then
    create temp table drift_now (type_data int, reserved_stock int, locked_count int, jobs text[], settled boolean)
      on commit drop;
  end if;
  truncate drift_now;
  insert into drift_now
  select g.type_data, g.reserved_stock, coalesce(l.n, 0), coalesce(l.jobs, '{}'),
         not exists (select 1 from nesting.grundner_request_items i join nesting.grundner_requests r on r.id = i.request_id
                      where i.type = g.type_data and r.kind in ('lock', 'release')
                        and (nesting_private.request_in_flight(r.status) or r.finished_at > figure_at))
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
create or replace function nesting_private.tg__notify_allocated_material_changed() returns trigger
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
select ops_private.create_transition_triggers('nesting.jobs', 'jobs_allocation', 'nesting_private.tg__notify_allocated_material_changed');
select ops_private.create_transition_triggers('nesting.grundner', 'grundner_allocation', 'nesting_private.tg__notify_allocated_material_changed');
drop function if exists nesting.notify_allocated_material_changed();

------------------------------------------------------------------------------
-- GraphQL shape and grants
------------------------------------------------------------------------------

comment on table nesting.jobs is E'@name NestingJob\n@behavior -insert -update -delete\nNC programs from the processed jobs root.';
comment on table nesting.grundner is E'@name GrundnerStock\n@behavior -insert -update -delete\nGrundner board types and their stock (from stock.csv).';
comment on table nesting.job_events is E'@name NestingJobEvent\n@behavior -insert -update -delete\nEach job''s timeline.';
comment on view nesting.allocated_material_view is E'@name AllocatedMaterial\nPer board type: stock, available, Grundner''s reserved count, our reservations and locks (each job on exactly one type), what can still be locked, the other types sharing its customer ID, drift, and the jobs behind them.';
comment on view nesting.stock_drift_view is E'@name GrundnerStockDrift\nBoard types whose reserved stock at Grundner differs from the jobs we hold locked on them.';
comment on table nesting.stock_drift is E'@name GrundnerStockDriftRow\n@behavior -insert -update -delete';


grant usage on schema nesting to shopfloor_operator, shopfloor_integration;
grant select on nesting.jobs, nesting.grundner, nesting.job_events, nesting.allocated_material_view,
  nesting.stock_drift, nesting.stock_drift_view
  to shopfloor_operator, shopfloor_integration;
-- The grid counts the boards of open lock requests (pending_lock_count).
grant select on nesting.grundner_request_items to shopfloor_operator, shopfloor_integration;
grant execute on function nesting.pin_job_type(text, integer) to shopfloor_supervisor;
-- The grid's view calls these for its readers, so they live in nesting (no
-- API role may use nesting_private), hidden from GraphQL.
grant execute on function nesting.material_type(text), nesting.job_type(text, integer, integer), nesting.pending_lock_count(integer),
  nesting.request_open(text), nesting.locked_since_figure(integer), nesting.available_to_lock(integer), nesting.ambiguous_customer_ids()
  to shopfloor_operator, shopfloor_integration;
comment on function nesting.material_type(text) is E'@behavior -queryField -mutationField';
comment on function nesting.job_type(text, integer, integer) is E'@behavior -queryField -mutationField';
comment on function nesting.pending_lock_count(integer) is E'@behavior -queryField -mutationField';
comment on function nesting.request_open(text) is E'@behavior -queryField -mutationField';
comment on function nesting.locked_since_figure(integer) is E'@behavior -queryField -mutationField';
comment on function nesting.available_to_lock(integer) is E'@behavior -queryField -mutationField';
comment on function nesting.ambiguous_customer_ids() is E'@behavior -queryField -mutationField';
grant execute on function nesting.reserve_job(text), nesting.unreserve_job(text), nesting.lock_jobs(text[]),
  nesting.unlock_jobs(text[], text, text) to shopfloor_operator;

-- Clean GraphQL names (nesting is not the first exposed schema, so its
-- functions would otherwise carry a "nesting" prefix).
comment on function nesting.reserve_job(text) is E'@name reserve_job\nReserves a PENDING job''s board (pre_reserved). Idempotent.';
comment on function nesting.unreserve_job(text) is E'@name unreserve_job\nDrops a job''s reservation. Idempotent.';
comment on function nesting.lock_jobs(text[]) is E'@name lock_jobs\nQueues one order_saw.csv for the whole batch; returns the request id. The jobs lock when Grundner acknowledges.';
comment on function nesting.unlock_jobs(text[], text, text) is E'@name unlock_jobs\nQueues one get_production.csv for all the jobs; returns the request id. Jobs release when Grundner answers.';
comment on function nesting.pin_job_type(text, integer) is E'Pins a job''s material to one Grundner board type, or unpins it with null (supervisor). Not while locked.';

-- nesting, the Grundner outbox: the worker (src/grundner/) only moves files:
-- it sends what the outbox says and hands each parsed reply to one apply_*
-- function here.
--
-- Request life: queued -> sending -> sent -> acknowledged (lock) | answered |
-- partial (release) | answered (stock); or failed, timed_out, cancelled.
-- One request per file name is in flight (sending/sent) at a time, enforced
-- by a unique index; the next waits as queued.

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
   where kind = 'stock' and nesting.request_open(status) order by id limit 1;
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
create or replace function nesting_private.request_stock_if_due() returns bigint
language sql volatile security definer
set search_path = pg_catalog, public
as $$
  select nesting.request_stock('schedule')
   where coalesce((select max(created_at) from nesting.grundner_requests where kind = 'stock'), '-infinity')
         < now() - ops.setting_interval('nesting.stock_sync_interval')
$$;

------------------------------------------------------------------------------
-- What the worker calls: sending, timeouts, and applying replies
------------------------------------------------------------------------------

-- The jobs a request is about, in key order (null for a stock request).
create or replace function nesting_private.request_keys(p_request_id bigint) returns text[]
language sql stable
as $$
  select array_agg(i.job_key order by i.job_key) from nesting.grundner_request_items i where i.request_id = p_request_id
$$;

-- A request cancelled after it was sent: its file may still be in the share.
create or replace function nesting_private.file_to_withdraw(r nesting.grundner_requests) returns boolean
language sql immutable
as $$
  select r.status = 'cancelled' and coalesce(r.answer ? 'withdraw_file', false)
$$;

-- The requests to write now: for each file name with nothing in flight, the
-- oldest queued one, marked 'sending' (so a crash mid-write is recovered by
-- looking at the share, never by writing twice). A cancelled request whose
-- file may still be in the share holds its file name too, until the worker
-- has taken the file back (cancelled_file_settled).
create or replace function nesting_private.claim_requests_to_send() returns setof nesting.grundner_requests
language sql volatile
as $$
  update nesting.grundner_requests r set status = 'sending'
   where r.id in (
     select distinct on (q.file_name) q.id from nesting.grundner_requests q
      where q.status = 'queued'
        and not exists (select 1 from nesting.grundner_requests f
                         where f.file_name = q.file_name
                           and (nesting_private.request_in_flight(f.status) or nesting_private.file_to_withdraw(f)))
      order by q.file_name, q.id)
  returning r.*
$$;

create or replace function nesting_private.cancelled_requests_to_withdraw() returns setof nesting.grundner_requests
language sql stable
as $$
  select * from nesting.grundner_requests r where r.status = 'cancelled' and nesting_private.file_to_withdraw(r) order by r.id
$$;

-- The worker looked for a cancelled request's file. p_withdrawn: it moved the
-- .csv to the archive (the storage never saw it). p_taken: the storage had
-- taken it (the .erl is in the share): the reply step quarantines that .erl as
-- an acknowledgement after the cancel, and the file name stays held until it
-- is gone, so the next request is never taken for this one. Neither: the file
-- is gone; the file name is free.
create or replace function nesting_private.cancelled_file_settled(p_request_id bigint, p_withdrawn boolean, p_taken boolean)
returns text
language plpgsql volatile
as $$
declare
  r nesting.grundner_requests;
begin
  select * into r from nesting.grundner_requests where id = p_request_id for update;
  if not found or not nesting_private.file_to_withdraw(r) then
    return 'already';
  elsif p_taken and not p_withdrawn then
    return 'taken';
  end if;
  update nesting.grundner_requests
     set answer = (answer - 'withdraw_file') || jsonb_build_object('file_withdrawn', p_withdrawn)
   where id = r.id;
  if p_withdrawn then
    perform ops.post_message('grundner', 'info',
      format('Cancelled %s was taken back from the share', nesting_private.request_label(r)),
      format('The storage never saw it. Jobs: %s', coalesce(nesting_private.list_summary(nesting_private.request_keys(r.id), 20), 'none')),
      jsonb_build_object('request_id', r.id, 'jobs', to_jsonb(nesting_private.request_keys(r.id))));
  end if;
  return case when p_withdrawn then 'withdrawn' else 'gone' end;
end
$$;

-- A request caught 'sending' (the process stopped while writing it) whose
-- file name is in the share: p_lines is what that file holds. Only its own
-- lines make it sent; another request's file (one cancelled but never taken
-- back, or put there by hand) would otherwise be acknowledged for it. Then it
-- stays 'sending' and the operator is told once.
create or replace function nesting_private.recover_request(p_request_id bigint, p_file text, p_lines text[]) returns text
language plpgsql volatile
as $$
declare
  r nesting.grundner_requests;
  note text;
begin
  select * into r from nesting.grundner_requests where id = p_request_id for update;
  if not found or r.status <> 'sending' then
    return 'already';
  elsif nesting_private.erl_lines(p_lines) = nesting_private.erl_lines(r.lines) then
    perform nesting_private.mark_request_sent(r.id);
    return 'sent';
  end if;
  note := format('%s in the share holds another request''s lines; this request was not sent', p_file);
  if r.error is distinct from note then
    update nesting.grundner_requests set error = note where id = r.id;
    perform ops.post_message('grundner', 'error',
      format('%s waits: the Grundner share holds another %s', nesting_private.request_label(r), p_file),
      format(E'The share''s %s holds: %s.\nRequest %s would send: %s (jobs: %s).\n'
             'If the storage has not taken that file, move it out of the share; the request then goes out on the next pass. '
             'Nothing was marked sent.',
             p_file, nesting_private.list_summary(p_lines, 20), r.id, nesting_private.list_summary(r.lines, 20),
             coalesce(nesting_private.list_summary(nesting_private.request_keys(r.id), 20), 'none')),
      jsonb_build_object('request_id', r.id, 'file', p_file, 'jobs', to_jsonb(nesting_private.request_keys(r.id))));
  end if;
  return 'foreign';
end
$$;

create or replace function nesting_private.requests_in_flight() returns setof nesting.grundner_requests
language sql stable
as $$
  select * from nesting.grundner_requests where nesting_private.request_in_flight(status) order by id
$$;

create or replace function nesting_private.mark_request_sent(p_request_id bigint) returns nesting.grundner_requests
language plpgsql volatile
as $$
declare
  r nesting.grundner_requests;
begin
  update nesting.grundner_requests
     set status = 'sent', sent_at = coalesce(sent_at, now()),
         error = case when status = 'sending' then null else error end, -- a note from recover_request
         deadline = coalesce(deadline, now() + ops.setting_interval('nesting.request_timeout'))
   where id = p_request_id and nesting_private.request_in_flight(status)
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

create or replace function nesting_private.finish_request(p_request_id bigint, p_status text, p_answer jsonb default null, p_error text default null)
returns void
language sql volatile
as $$
  update nesting.grundner_requests
     set status = p_status, finished_at = now(), answer = coalesce(p_answer, answer), error = p_error
   where id = p_request_id
$$;

create or replace function nesting_private.request_label(r nesting.grundner_requests) returns text
language sql immutable
as $$
  select format('%s.csv (request %s)', r.file_name, r.id)
$$;

-- The deadline passed. p_withdrawn: the worker took the request file back
-- (so the storage never saw it); otherwise the storage had already taken it
-- and its acknowledgement is still awaited.
create or replace function nesting_private.time_out_request(p_request_id bigint, p_withdrawn boolean) returns text
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
    perform nesting_private.finish_request(r.id, 'timed_out', null, 'Grundner did not take the file before the deadline; it was taken back');
    insert into nesting.job_events (job_key, event, details)
    select k, r.kind || '_timed_out', jsonb_build_object('request_id', r.id) from unnest(nesting_private.request_keys(r.id)) k;
    perform ops.post_message('grundner', 'error',
      format('Grundner did not take %s in time; it was taken back and nothing changed', nesting_private.request_label(r)),
      case r.kind when 'lock' then 'The jobs stay unlocked. Check the storage system, then lock them again.'
                  when 'release' then 'The jobs stay locked. Check the storage system, then release them again.'
                  else 'The stock was not refreshed; the next sync will try again.' end,
      jsonb_build_object('request_id', r.id, 'jobs', to_jsonb(nesting_private.request_keys(r.id))));
    return 'timed_out';
  elsif r.kind = 'release' and ops.setting_text('nesting.release_confirmation') = 'answer_file' then
    -- The storage took get_production.csv but wrote no productionLIST_del.csv
    -- by the deadline (a gateway that confirms with .erl only?). The safe
    -- side: the jobs stay locked, the next release may go out, and an answer
    -- arriving later is still applied.
    perform nesting_private.finish_request(r.id, 'timed_out', jsonb_build_object('awaiting_answer', true),
      'Grundner took the release but did not answer by the deadline; the jobs stay locked');
    insert into nesting.job_events (job_key, event, details)
    select k, 'release_timed_out', jsonb_build_object('request_id', r.id) from unnest(nesting_private.request_keys(r.id)) k;
    perform ops.post_message('grundner', 'error',
      format('Grundner took %s but sent no productionLIST_del.csv in time; %s job(s) stay locked', nesting_private.request_label(r),
             cardinality(nesting_private.request_keys(r.id))),
      format('Jobs: %s. If this gateway confirms releases with get_production.erl only, set nesting.release_confirmation to erl_only. '
             'A late answer is still applied. Otherwise release the jobs again.',
             array_to_string(nesting_private.request_keys(r.id), ', ')),
      jsonb_build_object('request_id', r.id, 'jobs', to_jsonb(nesting_private.request_keys(r.id))));
    return 'timed_out';
  elsif r.error is null then
    update nesting.grundner_requests set error = 'Taken by the storage; waiting for its acknowledgement' where id = r.id;
    perform ops.post_message('grundner', 'warning',
      format('Grundner took %s but has not answered yet', nesting_private.request_label(r)),
      'The answer will still be applied when it arrives. Requests of the same file wait until then.',
      jsonb_build_object('request_id', r.id));
  end if;
  return 'waiting';
end
$$;

-- Lines compared as the gateway means them: trailing separators and blanks
-- (some gateways drop or add them) do not count.
create or replace function nesting_private.erl_lines(p_lines text[]) returns text[]
language sql immutable
as $$
  select coalesce(array_agg(x.l order by x.n), '{}')
    from (select regexp_replace(l, '[;\s]+$', '') as l, n from unnest(p_lines) with ordinality u(l, n)) x
   where x.l <> ''
$$;

-- order_saw.erl: the storage's copy of what it took. The same lines lock the
-- jobs; different lines fail the request and lock nothing.
create or replace function nesting_private.apply_order_saw_ack(p_request_id bigint, p_lines text[]) returns jsonb
language plpgsql volatile
as $$
declare
  r nesting.grundner_requests;
  keys text[];
begin
  select * into r from nesting.grundner_requests where id = p_request_id for update;
  if not found or r.kind <> 'lock' then
    raise exception 'Request % is not a lock request', p_request_id using errcode = 'SF404';
  elsif not nesting_private.request_in_flight(r.status) then
    return jsonb_build_object('outcome', 'already', 'status', r.status);
  end if;
  keys := nesting_private.request_keys(r.id);

  if nesting_private.erl_lines(p_lines) is distinct from nesting_private.erl_lines(r.lines) then
    perform nesting_private.finish_request(r.id, 'failed', jsonb_build_object('erl', p_lines),
      'order_saw.erl does not match the request');
    perform ops.post_message('grundner', 'error',
      format('Grundner acknowledged %s with different content; no job was locked', nesting_private.request_label(r)),
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
         grundner_machine = i.machine, locked_type = i.type
    from nesting.grundner_request_items i
   where i.request_id = r.id and j.key = i.job_key;
  perform nesting_private.finish_request(r.id, 'acknowledged');
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
create or replace function nesting_private.unexpected_order_saw_ack(p_lines text[]) returns text
language plpgsql volatile
as $$
declare
  r nesting.grundner_requests;
  keys text[];
  title text;
begin
  select * into r from nesting.grundner_requests
   where kind = 'lock' and nesting_private.erl_lines(lines) = nesting_private.erl_lines(p_lines)
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
  keys := nesting_private.request_keys(r.id);
  title := format('Grundner acknowledged %s after it was %s; nothing was locked', nesting_private.request_label(r),
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
-- p_problems: lines of p_file the worker could not read; their jobs count as
-- not deleted (they stay locked, the safe side).
drop function if exists nesting_private.apply_release_answer(bigint, jsonb);
create or replace function nesting_private.apply_release_answer(p_request_id bigint, p_rows jsonb, p_problems jsonb default '[]',
                                                                p_file text default 'productionLIST_del.csv') returns jsonb
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
  end if;
  if coalesce(jsonb_array_length(p_problems), 0) > 0 then
    perform ops.post_message('grundner', 'warning', format('%s: %s line(s) could not be read', p_file, jsonb_array_length(p_problems)),
      nesting_private.problem_lines(p_problems), jsonb_build_object('request_id', r.id, 'problems', nesting_private.first_problems(p_problems), 'problem_count', jsonb_array_length(p_problems)));
  end if;
  if not nesting_private.request_in_flight(r.status) and not (r.status = 'timed_out' and r.answer ? 'awaiting_answer') then
    return jsonb_build_object('outcome', 'already', 'status', r.status);
  end if;
  -- A release caused by the job going away also drops its reservation.
  by_removal := r.source in ('jobs-ingest', 'stage-sanity', 'ready-delete');

  with asked as (
    select i.job_key as key, i.job_no, i.type from nesting.grundner_request_items i where i.request_id = r.id
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
   where not exists (select 1 from nesting.grundner_request_items i where i.request_id = r.id and i.job_no = a ->> 'job_no');

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
  perform nesting_private.finish_request(r.id, case when missing is null then 'answered' else 'partial' end,
    result || jsonb_build_object('rows', p_rows));

  if released is not null and r.source <> 'user' then
    -- Operators know the NC files: the title names them, the body the jobs.
    -- (A source stored before it was checked at the door posts as grundner.)
    perform ops.post_message(case when r.source = any(nesting_private.release_sources()) then r.source else 'grundner' end, 'info',
      format('Released %s from Grundner%s',
             nesting_private.list_summary((select array_agg(j.ncfile order by j.key) from nesting.jobs j where j.key = any(released))),
             case when r.reason <> '' then ' (' || nesting_private.short_text(r.reason) || ')' else '' end),
      'Jobs: ' || array_to_string(released, ', ') || case when r.reason <> '' then E'\nReason: ' || r.reason else '' end,
      jsonb_build_object('request_id', r.id, 'jobs', to_jsonb(released),
        'nc_files', (select jsonb_agg(j.ncfile order by j.key) from nesting.jobs j where j.key = any(released))));
  end if;
  if mismatched is not null then
    perform ops.post_message('grundner', 'warning',
      format('Released %s although Grundner answered with another board type or quantity', nesting_private.list_summary(mismatched)),
      'Check the storage''s production list for these orders: ' || array_to_string(mismatched, ', '), jsonb_build_object('request_id', r.id, 'jobs', to_jsonb(mismatched)));
  end if;
  if missing is not null then
    perform ops.post_message('grundner', 'warning',
      format('Grundner kept %s: the board is already on its way to the saw', nesting_private.list_summary(missing)),
      'These jobs stay locked. Release them again once the board has been cut or returned: ' || array_to_string(missing, ', '),
      jsonb_build_object('request_id', r.id, 'jobs', to_jsonb(missing)));
  end if;
  if unrequested is not null then
    perform ops.post_message('grundner', 'warning',
      format('Grundner deleted orders we did not ask for: %s', nesting_private.list_summary(unrequested)),
      'Nothing was changed for them here. Orders: ' || array_to_string(unrequested, ', '), jsonb_build_object('request_id', r.id, 'orders', to_jsonb(unrequested)));
  end if;
  return result;
end
$$;

-- The release a productionLIST_del.csv answers: a release waiting for an
-- answer (in flight, or timed out awaiting it) whose orders the answer names;
-- the one in flight first. A late answer to a timed-out release must not be
-- taken for the answer of the release in flight meanwhile (its jobs would
-- count as kept). An answer naming no order (nothing was deleted) answers the
-- release in flight. Null: no release is waiting for this answer.
drop function if exists nesting_private.timed_out_release_for(jsonb);
create or replace function nesting_private.release_for_answer(p_rows jsonb) returns bigint
language sql stable
as $$
  select r.id from nesting.grundner_requests r
   where r.kind = 'release'
     and (nesting_private.request_in_flight(r.status) or (r.status = 'timed_out' and r.answer ? 'awaiting_answer'))
     and (exists (select 1 from nesting.grundner_request_items i, jsonb_array_elements(p_rows) a
                   where i.request_id = r.id and i.job_no = a ->> 'job_no')
          or (jsonb_array_length(p_rows) = 0 and nesting_private.request_in_flight(r.status)))
   order by nesting_private.request_in_flight(r.status) desc, r.id desc
   limit 1
$$;

-- get_production.erl on a gateway set to confirm releases with it only
-- (nesting.release_confirmation = erl_only): every order asked for counts as
-- deleted. Such a gateway cannot report a partial release.
create or replace function nesting_private.apply_release_erl(p_request_id bigint) returns jsonb
language sql volatile
as $$
  select nesting_private.apply_release_answer(p_request_id,
    (select coalesce(jsonb_agg(jsonb_build_object('job_no', i.job_no, 'type', i.type, 'quantity', 1)), '[]')
       from nesting.grundner_request_items i where i.request_id = p_request_id))
$$;

-- stock.csv replaces the stock table. p_rows: one object per board type with
-- the 19 fields; p_problems: lines the worker could not read. When lines were
-- skipped, types missing from the file are kept (they may be the broken
-- lines) instead of being removed.
create or replace function nesting_private.apply_stock(p_request_id bigint, p_rows jsonb, p_problems jsonb default '[]')
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

  if not ops_private.own_temp_table('stock_in') then
    create temp table stock_in (like nesting.grundner) on commit drop;
  end if;
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
    perform nesting_private.finish_request(p_request_id, 'answered',
      jsonb_build_object('types', jsonb_array_length(p_rows), 'changed', changed, 'problems', nesting_private.first_problems(p_problems), 'problem_count', jsonb_array_length(p_problems)));
  end if;
  if appeared is not null then
    perform ops.post_message('grundner', 'info', format('%s new board type(s) in Grundner stock', cardinality(appeared)),
      'Types: ' || array_to_string(appeared, ', '), jsonb_build_object('types', to_jsonb(appeared)));
  end if;
  if vanished is not null then
    perform ops.post_message('grundner', 'warning', format('%s board type(s) gone from Grundner stock: %s', cardinality(vanished),
             nesting_private.list_summary(vanished::text[])),
      'Jobs on these materials cannot be locked until the type is back. Types: ' || array_to_string(vanished, ', '),
      jsonb_build_object('types', to_jsonb(vanished)));
  end if;
  if coalesce(jsonb_array_length(p_problems), 0) > 0 then
    perform ops.post_message('grundner', 'warning',
      format('stock.csv had %s line(s) that could not be read; they were skipped', jsonb_array_length(p_problems)),
      nesting_private.problem_lines(p_problems),
      jsonb_build_object('request_id', p_request_id, 'problems', nesting_private.first_problems(p_problems), 'problem_count', jsonb_array_length(p_problems)));
  end if;
  -- One message per customer ID that has just come to name several types.
  perform ops.post_message('grundner', 'warning',
      format('Customer ID %s names %s board types; jobs with it use type %s', a.customer_id, cardinality(a.types), a.types[1]),
      format('Types %s share customer ID %s. A job whose material is this ID resolves to the lowest type (%s). '
             'A supervisor can pin a job to another type (pin_job_type).', array_to_string(a.types, ', '), a.customer_id, a.types[1]),
      jsonb_build_object('customer_id', a.customer_id, 'types', to_jsonb(a.types)))
    from nesting.ambiguous_customer_ids() a
   where not (a.customer_id = any(ambiguous_before));
  perform nesting_private.check_drift();
  return jsonb_build_object('types', jsonb_array_length(p_rows), 'changed', changed,
    'appeared', coalesce(to_jsonb(appeared), '[]'), 'vanished', coalesce(to_jsonb(vanished), '[]'));
end
$$;

-- Ends an open request as failed and tells the operators. The message says
-- by default that the request could not be sent; p_title and p_body give
-- another (a reply that could not be applied), p_related more data for it.
drop function if exists nesting_private.fail_request(bigint, text);
create or replace function nesting_private.fail_request(p_request_id bigint, p_error text,
                                                        p_title text default null, p_body text default null,
                                                        p_related jsonb default '{}') returns void
language plpgsql volatile
as $$
declare
  r nesting.grundner_requests;
begin
  select * into r from nesting.grundner_requests where id = p_request_id for update;
  if not found or not nesting.request_open(r.status) then
    return;
  end if;
  perform nesting_private.finish_request(r.id, 'failed', null, p_error);
  perform ops.post_message('grundner', 'error', coalesce(p_title, format('Could not send %s', nesting_private.request_label(r))),
    coalesce(p_body, p_error),
    jsonb_build_object('request_id', r.id, 'jobs', to_jsonb(nesting_private.request_keys(r.id))) || coalesce(p_related, '{}'));
end
$$;

-- A reply to the request could not be applied (the database refused it): the
-- request fails, so it no longer blocks the next request of its file name (a
-- stock request left 'sent' would be returned by every request_stock() for
-- good). Nothing of the reply was applied; the worker quarantines the file.
create or replace function nesting_private.reply_not_applied(p_request_id bigint, p_file text, p_error text) returns void
language plpgsql volatile
as $$
declare
  r nesting.grundner_requests;
  keys text[];
begin
  select * into r from nesting.grundner_requests where id = p_request_id for update;
  if not found or not nesting.request_open(r.status) then
    return;
  end if;
  keys := nesting_private.request_keys(r.id);
  insert into nesting.job_events (job_key, event, details)
  select k, r.kind || '_failed', jsonb_build_object('request_id', r.id, 'file', p_file) from unnest(keys) k;
  perform nesting_private.fail_request(r.id, format('%s could not be applied: %s', p_file, p_error),
    format('Grundner''s %s for %s could not be applied; %s', p_file, nesting_private.request_label(r),
           case r.kind when 'lock' then 'no job was locked' when 'release' then 'the jobs stay locked'
                       else 'the stock was left as it was' end),
    format('Error: %s.', p_error) || case r.kind
      when 'lock' then format(' The storage may now hold orders for %s. Delete them at the storage, or lock the jobs again.', nesting_private.list_summary(keys, 20))
      when 'release' then format(' Check the storage''s production list, then release %s again.', nesting_private.list_summary(keys, 20))
      else ' The next sync asks again.' end,
    jsonb_build_object('file', p_file));
end
$$;

-- A reply the worker could not use, in words: for the .reason.txt beside it
-- in quarantine and for the operator's message. p_reason: not_a_file
-- (p_details: {kind}), not_applied ({error}), no_release_waiting,
-- no_stock_line ({problems: [{line, error}]}), or erl_mismatch ({request_id};
-- apply_order_saw_ack has told the operator).
create or replace function nesting_private.quarantine_reason(p_file text, p_reason text, p_details jsonb default '{}') returns text
language plpgsql immutable
as $$
begin
  case p_reason
    when 'not_a_file' then
      return format('%s is a %s, not a file; it was not read.', p_file, p_details ->> 'kind');
    when 'not_applied' then
      return 'It could not be applied: ' || coalesce(p_details ->> 'error', 'unknown error');
    when 'erl_mismatch' then
      return format('order_saw.erl does not match request %s', p_details ->> 'request_id');
    when 'no_release_waiting' then
      return 'No release request waiting for an answer names the orders in it; nothing was released.';
    when 'no_stock_line' then
      return E'No readable stock line; the stock table was left as it was.\n'
             || coalesce(nesting_private.problem_lines(p_details -> 'problems'), 'The file is empty.');
    else
      raise exception 'Unknown quarantine reason %', p_reason using errcode = 'SF422';
  end case;
end
$$;

-- The worker moved a reply to quarantine (p_to): one message says so.
create or replace function nesting_private.reply_quarantined(p_file text, p_reason text, p_to text) returns void
language sql volatile
as $$
  select ops.post_message('grundner', 'error', format('%s from Grundner could not be used and was quarantined', p_file), p_reason,
    jsonb_build_object('file', p_to))
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
  -- A sent request's file may still be in the share: the worker takes it back
  -- before the next request of its name goes out (cancelled_file_settled).
  update nesting.grundner_requests set status = 'cancelled', finished_at = now(),
         error = coalesce(nullif(p_reason, ''), 'cancelled by ' || ops.current_actor()),
         answer = case when r.status = 'sent' then coalesce(answer, '{}') || '{"withdraw_file": true}' else answer end
   where id = r.id returning * into r;
  perform ops.audit('cancel_request', 'grundner_request', r.id::text, jsonb_build_object('reason', p_reason));
  return r;
end
$$;

------------------------------------------------------------------------------
-- The exchange's own health
------------------------------------------------------------------------------

-- The worker's report after each pass: when it completed, and whether the
-- share took our files. One message when the share starts failing, one when
-- it works again.
create or replace function nesting_private.note_exchange_pass(p_share_error text) returns void
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
    'ok', s.last_pass_at > now() - ops.setting_interval('nesting.exchange_stale_after')
          and s.share_failing_since is null,
    'lastPassSecondsAgo', extract(epoch from now() - s.last_pass_at)::int,
    'shareFailingSince', s.share_failing_since,
    'shareError', s.share_error,
    'driftTypes', (select count(*) from nesting.stock_drift))
    from nesting.exchange_state s
$$;

------------------------------------------------------------------------------
-- The worker wakes on new requests
------------------------------------------------------------------------------

-- A request's jobs as rows (nesting.grundner_request_items), unpacked once
-- from items, the record of what was asked that GraphQL shows.
create or replace function nesting_private.tg_grundner_requests__unpack_items() returns trigger
language plpgsql
as $$
begin
  insert into nesting.grundner_request_items (request_id, job_key, job_no, type, machine)
  select r.id, i ->> 'key', i ->> 'job_no', (i ->> 'type')::int, (i ->> 'machine')::int
    from new_rows r, jsonb_array_elements(r.items) i;
  return null;
end
$$;

create or replace trigger grundner_requests_unpack_items
  after insert on nesting.grundner_requests
  referencing new table as new_rows for each statement execute function nesting_private.tg_grundner_requests__unpack_items();

-- New requests wake the Grundner worker (one job; passes never overlap: an
-- advisory lock in pump.ts, not a named queue, keeps them apart).
create or replace function nesting_private.tg_grundner_requests__wake_worker() returns trigger
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
  for each statement execute function nesting_private.tg_grundner_requests__wake_worker();
drop function if exists nesting.wake_grundner_worker();

------------------------------------------------------------------------------
-- GraphQL shape and grants
------------------------------------------------------------------------------

comment on table nesting.grundner_request_items is E'@behavior -*\nThe jobs of each Grundner request, one row each (from grundner_requests.items).';
comment on table nesting.grundner_requests is E'@name GrundnerRequest\n@behavior -insert -update -delete\nThe outbox of file requests to the Grundner share.';
comment on table nesting.exchange_state is E'@name GrundnerExchangeState\n@behavior -insert -update -delete\nThe Grundner exchange: last completed pass, share outage, when the stock figures were taken.';

comment on function nesting.exchange_health() is E'@behavior -queryField -mutationField';

grant select on nesting.grundner_requests, nesting.exchange_state
  to shopfloor_operator, shopfloor_integration;
grant execute on function nesting.request_stock(text) to shopfloor_operator;
grant execute on function nesting.cancel_request(bigint, text) to shopfloor_admin;

-- Clean GraphQL names (nesting is not the first exposed schema, so its
-- functions would otherwise carry a "nesting" prefix).
comment on function nesting.request_stock(text) is E'@name request_grundner_stock\nQueues a stock request (or returns the one already waiting).';
comment on function nesting.cancel_request(bigint, text) is E'@name cancel_grundner_request\nGives up on a queued request, or one the storage took but never answered (admin).';

-- execution: job tickets, tokens and work sessions (specs/pool-allocate.md,
-- issue 4). The token is the source of truth for execution (LAW-01); the pool
-- is told about an assembly start and never decides whether it happens (LAW-02).
--
-- SQLSTATEs raised here: SF422 invalid input, SF404 unknown token, SF409 the
-- token is completed or already worked in another open session. Pool problems
-- are never raised: they come back as warnings in the response.
--
-- pool.post_event is defined in sql/pool.sql, applied after this file: the
-- functions here that call it are plpgsql, which binds at run time.

------------------------------------------------------------------------------
-- Allocation at assembly start (LAW-05)
------------------------------------------------------------------------------

-- A component code: 1 to 100 characters, no blank at either end (also no
-- no-break or other wide space, which ERP exports carry and a screen cannot
-- show), no control or zero-width character anywhere: `BODY` and `BODY` with
-- a no-break space would be two balances that look the same. Used by the
-- snapshots here and by pool.post_event (sql/pool.sql, applied after this file).
create or replace function execution_private.is_component_code(p_code text) returns boolean
language sql immutable parallel safe
as $$
  select p_code ~ '^\S(.{0,98}\S)?$'
     and p_code !~ '^[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]|[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]$'
     and p_code !~ '[[:cntrl:]\u200b-\u200f\u2028\u2029\u2060\ufeff]'
$$;

-- Emits one POOL_ALLOCATE per required component of the token's pinned
-- snapshot. Never raises: whatever goes wrong in the pool is reported in the
-- returned fields, and its partial bookings are rolled back.
drop function if exists execution.allocate_for_assembly(bigint, bigint);
create or replace function execution_private.allocate_for_assembly(p_token_id bigint, p_worker_id bigint) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_ticket execution.job_tickets;
  v_snapshot jsonb;
  v_reqs jsonb;
  v_item jsonb;
  v_i int := 0;
  v_code text;
  v_qty numeric;
  v_codes text[] := '{}';
  v_qtys numeric[] := '{}';
  v_line record;
  v_key text;
  v_res jsonb;
  v_lines jsonb := '[]';
  v_ok boolean := true;
  v_problem text;
  v_state text;
  v_message text;
begin
  select jt.* into v_ticket
    from execution.tokens t join execution.job_tickets jt on jt.id = t.job_ticket_id
   where t.id = p_token_id;
  if v_ticket.bom_version_id is null then
    return jsonb_build_object('allocation_ok', false, 'allocation_skipped', true, 'reason', 'BOM_VERSION_MISSING',
                              'warnings', '[]'::jsonb, 'allocations', '[]'::jsonb);
  end if;
  select snapshot_json into v_snapshot from execution.product_revisions where id = v_ticket.product_revision_id;
  if not found then
    return jsonb_build_object('allocation_ok', false, 'allocation_skipped', true, 'reason', 'SNAPSHOT_MISSING',
                              'detail', 'The job ticket has no pinned product revision.',
                              'warnings', '["SNAPSHOT_MISSING"]'::jsonb, 'allocations', '[]'::jsonb);
  end if;

  -- Check the whole snapshot before booking anything.
  v_reqs := v_snapshot #> '{structure,component_requirements}';
  if v_reqs is null or jsonb_typeof(v_reqs) <> 'array' then
    v_problem := 'structure.component_requirements is not an array';
  else
    for v_item in select value from jsonb_array_elements(v_reqs) loop
      if jsonb_typeof(v_item) <> 'object' then
        v_problem := format('component_requirements[%s] is not an object', v_i);
        exit;
      end if;
      if v_item -> 'is_required' = 'true'::jsonb then   -- is_required === true
        v_code := case when jsonb_typeof(v_item -> 'component_code') = 'string' then v_item ->> 'component_code' end;
        if v_code is null or not execution_private.is_component_code(v_code) then
          v_problem := format('component_requirements[%s] has no valid component_code', v_i);
          exit;
        end if;
        if jsonb_typeof(v_item -> 'default_qty') is distinct from 'number' then
          v_problem := format('component_requirements[%s] (%s): default_qty is not a number', v_i, v_code);
          exit;
        end if;
        v_qty := (v_item -> 'default_qty')::numeric;
        if v_qty <= 0 or v_qty >= 1e12 or round(v_qty, 6) <> v_qty then
          v_problem := format('component_requirements[%s] (%s): default_qty %s is not a positive quantity with at most 6 decimals', v_i, v_code, v_qty);
          exit;
        end if;
        if v_code = any (v_codes) then
          v_problem := format('component %s is required twice', v_code);
          exit;
        end if;
        v_codes := v_codes || v_code;
        v_qtys := v_qtys || v_qty;
      end if;
      v_i := v_i + 1;
    end loop;
  end if;
  if v_problem is not null then
    return jsonb_build_object('allocation_ok', false, 'allocation_skipped', true, 'reason', 'SNAPSHOT_INVALID',
                              'detail', v_problem, 'warnings', '["SNAPSHOT_INVALID"]'::jsonb, 'allocations', '[]'::jsonb);
  end if;

  -- One POOL_ALLOCATE per required component, in component-code order, so
  -- that concurrent starts lock their balances in the same order.
  begin
    for v_line in
      select c.code, c.qty from unnest(v_codes, v_qtys) as c(code, qty)
       order by c.code collate "C"
    loop
      v_key := format('pa:asm:%s:%s', p_token_id, v_line.code);
      v_res := pool.post_event('POOL_ALLOCATE', v_ticket.id_product, v_ticket.bom_version_id, v_line.code,
                               -v_line.qty, v_key, 'ASSEMBLY_ALLOCATE', p_token_id, p_worker_id, 'cut_ready');
      v_lines := v_lines || jsonb_build_array(jsonb_build_object('component_code', v_line.code) || v_res);
      if v_res ->> 'status' = 'rejected' then
        v_ok := false;
      end if;
    end loop;
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
    perform ops.post_message('pool', 'error', format('Pool allocation failed for token %s', p_token_id),
                             format('%s (%s). The token started; nothing was allocated.', v_message, v_state),
                             jsonb_build_object('token_id', p_token_id, 'sqlstate', v_state));
    return jsonb_build_object('allocation_ok', false, 'allocation_skipped', true,
                              'reason', case when v_state = 'SFK09' then 'POOL_IDEMPOTENCY_CONFLICT' else 'POOL_ERROR' end,
                              'detail', v_message,
                              'warnings', jsonb_build_array(case when v_state = 'SFK09' then 'POOL_IDEMPOTENCY_CONFLICT' else 'POOL_ERROR' end),
                              'allocations', '[]'::jsonb);
  end;

  return jsonb_build_object('allocation_ok', v_ok, 'allocation_skipped', false, 'reason', null,
                            'warnings', case when v_ok then '[]'::jsonb else '["POOL_INSUFFICIENT"]'::jsonb end,
                            'allocations', v_lines);
end
$$;

------------------------------------------------------------------------------
-- Starting a token
------------------------------------------------------------------------------

create or replace function execution.handle_single_piece_start(p_token_id bigint, p_worker_id bigint, p_behavior_code text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_token execution.tokens;
  v_open execution.work_sessions;
  v_session_id bigint;
  v_already boolean := false;
  v_alloc jsonb;
begin
  if p_token_id is null or p_worker_id is null then
    raise exception 'A start needs a token and a worker' using errcode = 'SF422';
  end if;
  if p_behavior_code is null or p_behavior_code !~ '^[A-Z][A-Z0-9_]{0,62}$' then
    raise exception 'Invalid behavior code %', coalesce(p_behavior_code, 'null')
      using errcode = 'SF422', hint = 'Upper-case, such as ASSEMBLY.';
  end if;

  select * into v_token from execution.tokens where id = p_token_id for update;
  if not found then
    raise exception 'Token % does not exist', p_token_id using errcode = 'SF404';
  end if;
  if v_token.status = 'completed' then
    raise exception 'Token % is completed and cannot be started', p_token_id using errcode = 'SF409';
  end if;

  select * into v_open from execution.work_sessions where token_id = p_token_id and ended_at is null;
  if found then
    if v_open.worker_id = p_worker_id and v_open.behavior_code = p_behavior_code then
      -- The same start again (a retry): nothing new starts.
      v_already := true;
      v_session_id := v_open.id;
    else
      raise exception 'Token % is already being worked (worker %, %)', p_token_id, v_open.worker_id, v_open.behavior_code
        using errcode = 'SF409', hint = 'The worker of the open session pauses it (pauseToken) or completes it (completeToken) first.';
    end if;
  end if;

  if not v_already then
    update execution.tokens
       set status = 'active', current_behavior_code = p_behavior_code, updated_at = now()
     where id = p_token_id;
    insert into execution.work_sessions (token_id, worker_id, behavior_code)
    values (p_token_id, p_worker_id, p_behavior_code)
    returning id into v_session_id;
  end if;

  if p_behavior_code = 'ASSEMBLY' then
    v_alloc := execution_private.allocate_for_assembly(p_token_id, p_worker_id);
  else
    v_alloc := jsonb_build_object('allocation_ok', null, 'allocation_skipped', true, 'reason', 'NOT_ASSEMBLY',
                                  'warnings', '[]'::jsonb, 'allocations', '[]'::jsonb);
  end if;

  perform ops.audit('handle_single_piece_start', 'token', p_token_id::text,
                    jsonb_build_object('worker_id', p_worker_id, 'behavior_code', p_behavior_code,
                                       'work_session_id', v_session_id, 'already_active', v_already,
                                       'allocation_ok', v_alloc -> 'allocation_ok', 'warnings', v_alloc -> 'warnings'));

  return jsonb_build_object('ok', true, 'token_id', p_token_id, 'status', 'active', 'behavior_code', p_behavior_code,
                            'work_session_id', v_session_id, 'already_active', v_already) || v_alloc;
end
$$;
comment on function execution.handle_single_piece_start(bigint, bigint, text) is
  E'@name handle_single_piece_start\nStarts a token for a worker (status active, an open work session). For behavior ASSEMBLY it also books one POOL_ALLOCATE per required component of the pinned snapshot; pool problems never stop the start (LAW-02) and come back as allocation_ok, allocation_skipped, reason and warnings.';

------------------------------------------------------------------------------
-- GraphQL shape and grants
------------------------------------------------------------------------------

comment on table execution.product_revisions is E'@name ProductRevision\n@behavior -insert -update -delete\nPinned product revisions; snapshot_json.structure.component_requirements drives assembly allocation.';
comment on table execution.job_tickets is E'@name JobTicket\n@behavior -insert -update -delete\nJob tickets: the product (id_product), its BOM version and pinned revision.';
comment on table execution.tokens is E'@name ExecutionToken\n@behavior -insert -update -delete\nTokens: the source of truth for execution (LAW-01).';
comment on table execution.work_sessions is E'@name WorkSession\n@behavior -insert -update -delete\nWho worked a token, in which behavior, when.';

grant usage on schema execution to shopfloor_operator, shopfloor_integration;
grant select on execution.product_revisions, execution.job_tickets, execution.tokens, execution.work_sessions
  to shopfloor_operator;
grant execute on function execution.handle_single_piece_start(bigint, bigint, text) to shopfloor_operator;

------------------------------------------------------------------------------
-- Token lifecycle: pause, resume, complete (issue 16)
------------------------------------------------------------------------------
-- One function each, one transaction: lock the token, check its state, close
-- or open the work session, audit. A retry of the same step is not an error
-- (already_* true). Only the worker of the open session pauses or completes
-- it; resume continues the token's current behavior and never allocates
-- (LAW-05: allocation happens only at an assembly start).

drop function if exists execution.lock_token_for(bigint, bigint, text);
create or replace function execution_private.lock_token_for(p_token_id bigint, p_worker_id bigint, p_step text)
returns execution.tokens
language plpgsql volatile
set search_path = pg_catalog, public
as $$
declare
  v_token execution.tokens;
begin
  if p_token_id is null then
    raise exception '% needs tokenId', p_step using errcode = 'SF422';
  end if;
  if p_worker_id is null then
    raise exception '% needs workerId', p_step using errcode = 'SF422';
  end if;
  select * into v_token from execution.tokens where id = p_token_id for update;
  if not found then
    raise exception 'Token % does not exist', p_token_id using errcode = 'SF404';
  end if;
  return v_token;
end
$$;

create or replace function execution.pause_token(p_token_id bigint, p_worker_id bigint) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_token execution.tokens := execution_private.lock_token_for(p_token_id, p_worker_id, 'A pause');
  v_open execution.work_sessions;
begin
  select * into v_open from execution.work_sessions where token_id = p_token_id and ended_at is null;
  if not found then
    if v_token.status = 'paused' then
      return jsonb_build_object('ok', true, 'token_id', p_token_id, 'status', 'paused', 'work_session_id', null, 'already_paused', true);
    end if;
    raise exception 'Token % is % and has no open work session to pause', p_token_id, v_token.status
      using errcode = 'SF409',
            hint = case v_token.status when 'ready' then 'Start it first (handleSinglePieceStart).' else 'A completed token cannot change.' end;
  end if;
  if v_open.worker_id <> p_worker_id then
    raise exception 'Token % is being worked by worker %, not %', p_token_id, v_open.worker_id, p_worker_id
      using errcode = 'SF409', hint = 'Only the worker of the open work session pauses it.';
  end if;
  update execution.work_sessions set ended_at = greatest(now(), started_at) where id = v_open.id;
  update execution.tokens set status = 'paused', updated_at = now() where id = p_token_id;
  perform ops.audit('pause_token', 'token', p_token_id::text,
                    jsonb_build_object('worker_id', p_worker_id, 'work_session_id', v_open.id, 'behavior_code', v_open.behavior_code));
  return jsonb_build_object('ok', true, 'token_id', p_token_id, 'status', 'paused', 'work_session_id', v_open.id, 'already_paused', false);
end
$$;
comment on function execution.pause_token(bigint, bigint) is
  E'Pauses a token: closes its open work session (the worker must be the one working it) and sets status paused. Pausing a paused token again returns already_paused true.';

create or replace function execution.resume_token(p_token_id bigint, p_worker_id bigint) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_token execution.tokens := execution_private.lock_token_for(p_token_id, p_worker_id, 'A resume');
  v_open execution.work_sessions;
  v_session_id bigint;
begin
  select * into v_open from execution.work_sessions where token_id = p_token_id and ended_at is null;
  if found then
    if v_open.worker_id = p_worker_id then
      return jsonb_build_object('ok', true, 'token_id', p_token_id, 'status', v_token.status, 'behavior_code', v_open.behavior_code,
                                'work_session_id', v_open.id, 'already_active', true);
    end if;
    raise exception 'Token % is already being worked by worker %', p_token_id, v_open.worker_id
      using errcode = 'SF409', hint = 'That worker pauses it (pauseToken) first.';
  end if;
  if v_token.status <> 'paused' or v_token.current_behavior_code is null then
    raise exception 'Token % is %, not paused', p_token_id, v_token.status
      using errcode = 'SF409',
            hint = case v_token.status when 'ready' then 'Start it first (handleSinglePieceStart).' else 'A completed token cannot change.' end;
  end if;
  update execution.tokens set status = 'active', updated_at = now() where id = p_token_id;
  insert into execution.work_sessions (token_id, worker_id, behavior_code)
  values (p_token_id, p_worker_id, v_token.current_behavior_code)
  returning id into v_session_id;
  perform ops.audit('resume_token', 'token', p_token_id::text,
                    jsonb_build_object('worker_id', p_worker_id, 'work_session_id', v_session_id, 'behavior_code', v_token.current_behavior_code));
  return jsonb_build_object('ok', true, 'token_id', p_token_id, 'status', 'active', 'behavior_code', v_token.current_behavior_code,
                            'work_session_id', v_session_id, 'already_active', false);
end
$$;
comment on function execution.resume_token(bigint, bigint) is
  E'Resumes a paused token in its current behavior: opens a new work session for the worker, status active. Never allocates (only an assembly start does). Resuming a token the same worker already works returns already_active true.';

create or replace function execution.complete_token(p_token_id bigint, p_worker_id bigint) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_token execution.tokens := execution_private.lock_token_for(p_token_id, p_worker_id, 'A completion');
  v_open execution.work_sessions;
begin
  if v_token.status = 'completed' then
    return jsonb_build_object('ok', true, 'token_id', p_token_id, 'status', 'completed', 'work_session_id', null, 'already_completed', true);
  end if;
  if v_token.status = 'ready' then
    raise exception 'Token % was never started and cannot be completed', p_token_id
      using errcode = 'SF409', hint = 'Start it first (handleSinglePieceStart).';
  end if;
  select * into v_open from execution.work_sessions where token_id = p_token_id and ended_at is null;
  if found then
    if v_open.worker_id <> p_worker_id then
      raise exception 'Token % is being worked by worker %, not %', p_token_id, v_open.worker_id, p_worker_id
        using errcode = 'SF409', hint = 'Only the worker of the open work session completes it.';
    end if;
    update execution.work_sessions set ended_at = greatest(now(), started_at) where id = v_open.id;
  end if;
  update execution.tokens set status = 'completed', updated_at = now() where id = p_token_id;
  perform ops.audit('complete_token', 'token', p_token_id::text,
                    jsonb_build_object('worker_id', p_worker_id, 'work_session_id', v_open.id, 'from_status', v_token.status));
  return jsonb_build_object('ok', true, 'token_id', p_token_id, 'status', 'completed', 'work_session_id', v_open.id, 'already_completed', false);
end
$$;
comment on function execution.complete_token(bigint, bigint) is
  E'Completes a token that is active (its worker closes the open work session) or paused. Completed is final. Completing a completed token again returns already_completed true.';

grant execute on function execution.pause_token(bigint, bigint), execution.resume_token(bigint, bigint),
  execution.complete_token(bigint, bigint) to shopfloor_operator;

------------------------------------------------------------------------------
-- Creating revisions, job tickets and tokens (issue 16)
------------------------------------------------------------------------------
-- What a plant's ERP or MES integration calls: a pinned product revision (the
-- snapshot is checked the way an assembly start reads it, so a bad one is
-- refused here instead of showing up later as SNAPSHOT_INVALID), a job ticket
-- over it, and its tokens. None of them touches the pool (LAW-06).

-- The first problem of a snapshot as a sentence naming the path, or null.
drop function if exists execution.snapshot_problem(jsonb);
create or replace function execution_private.snapshot_problem(p_snapshot jsonb) returns text
language sql immutable
set search_path = pg_catalog, public
as $$
  select case
    when p_snapshot is null or jsonb_typeof(p_snapshot) <> 'object' then 'snapshotJson must be a JSON object'
    when jsonb_typeof(p_snapshot #> '{structure,component_requirements}') is distinct from 'array'
      then 'snapshotJson.structure.component_requirements must be an array'
    else (
      select format('snapshotJson.structure.component_requirements[%s]: %s', i - 1, problem)
        from jsonb_array_elements(p_snapshot #> '{structure,component_requirements}') with ordinality e(item, i)
        cross join lateral (select case
          when jsonb_typeof(item) <> 'object' then 'not an object'
          when item -> 'is_required' is distinct from 'true'::jsonb then null
          when jsonb_typeof(item -> 'component_code') is distinct from 'string'
            or not execution_private.is_component_code(item ->> 'component_code')
            then 'component_code must be a text of 1 to 100 characters, no blank at either end, no control character'
          when jsonb_typeof(item -> 'default_qty') is distinct from 'number' then 'default_qty must be a number'
          when (item ->> 'default_qty')::numeric <= 0 or (item ->> 'default_qty')::numeric >= 1e12
            or round((item ->> 'default_qty')::numeric, 6) <> (item ->> 'default_qty')::numeric
            then 'default_qty must be positive with at most 6 decimals'
          end as problem) p
       where problem is not null
       order by i limit 1)
  end
$$;

create or replace function execution.create_product_revision(p_product_model_id bigint, p_snapshot_json jsonb)
returns execution.product_revisions
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_problem text;
  v_dupe text;
  v_row execution.product_revisions;
begin
  if p_product_model_id is null or p_product_model_id <= 0 then
    raise exception 'productModelId must be a positive id' using errcode = 'SF422';
  end if;
  v_problem := execution_private.snapshot_problem(p_snapshot_json);
  if v_problem is null then
    select c into v_dupe
      from (select e ->> 'component_code' as c
              from jsonb_array_elements(p_snapshot_json #> '{structure,component_requirements}') e
             where e -> 'is_required' = 'true'::jsonb) r
     group by c having count(*) > 1 limit 1;
    if v_dupe is not null then
      v_problem := format('snapshotJson.structure.component_requirements: component %s is required twice', v_dupe);
    end if;
  end if;
  if v_problem is not null then
    raise exception '%', v_problem using errcode = 'SF422';
  end if;
  insert into execution.product_revisions (product_model_id, snapshot_json) values (p_product_model_id, p_snapshot_json)
  returning * into v_row;
  perform ops.audit('create_product_revision', 'product_revision', v_row.id::text,
                    jsonb_build_object('product_model_id', p_product_model_id));
  return v_row;
end
$$;
comment on function execution.create_product_revision(bigint, jsonb) is
  'Pins a product revision: snapshotJson.structure.component_requirements[] = {component_code, default_qty, is_required}, checked as an assembly start reads it (SF422 naming the line).';

create or replace function execution.create_job_ticket(p_id_product bigint, p_product_revision_id bigint, p_bom_version_id bigint default null)
returns execution.job_tickets
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_rev execution.product_revisions;
  v_row execution.job_tickets;
begin
  if p_id_product is null or p_id_product <= 0 then
    raise exception 'idProduct must be a positive id' using errcode = 'SF422';
  end if;
  if p_bom_version_id <= 0 then
    raise exception 'bomVersionId must be a positive id' using errcode = 'SF422';
  end if;
  if p_product_revision_id is null then
    raise exception 'productRevisionId is required (the pinned revision)' using errcode = 'SF422';
  end if;
  select * into v_rev from execution.product_revisions where id = p_product_revision_id;
  if not found then
    raise exception 'productRevisionId % does not exist', p_product_revision_id using errcode = 'SF404';
  end if;
  if v_rev.product_model_id <> p_id_product then
    raise exception 'productRevisionId % pins product %, not idProduct %', p_product_revision_id, v_rev.product_model_id, p_id_product
      using errcode = 'SF422';
  end if;
  insert into execution.job_tickets (id_product, bom_version_id, product_revision_id)
  values (p_id_product, p_bom_version_id, p_product_revision_id)
  returning * into v_row;
  perform ops.audit('create_job_ticket', 'job_ticket', v_row.id::text,
                    jsonb_build_object('id_product', p_id_product, 'bom_version_id', p_bom_version_id,
                                       'product_revision_id', p_product_revision_id));
  return v_row;
end
$$;
comment on function execution.create_job_ticket(bigint, bigint, bigint) is
  'Creates a job ticket over a pinned revision of the same product. Without bomVersionId an assembly start allocates nothing (BOM_VERSION_MISSING).';

create or replace function execution.create_tokens(p_job_ticket_id bigint, p_count integer default 1)
returns setof execution.tokens
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
begin
  if p_job_ticket_id is null then
    raise exception 'jobTicketId is required' using errcode = 'SF422';
  end if;
  if p_count is null or p_count not between 1 and 1000 then
    raise exception 'count must be between 1 and 1000' using errcode = 'SF422';
  end if;
  if not exists (select 1 from execution.job_tickets where id = p_job_ticket_id) then
    raise exception 'jobTicketId % does not exist', p_job_ticket_id using errcode = 'SF404';
  end if;
  perform ops.audit('create_tokens', 'job_ticket', p_job_ticket_id::text, jsonb_build_object('count', p_count));
  return query
    insert into execution.tokens (job_ticket_id) select p_job_ticket_id from generate_series(1, p_count)
    returning *;
end
$$;
comment on function execution.create_tokens(bigint, integer) is 'Creates count (1 to 1000) ready tokens for a job ticket.';

grant execute on function execution.create_product_revision(bigint, jsonb), execution.create_job_ticket(bigint, bigint, bigint),
  execution.create_tokens(bigint, integer) to shopfloor_integration, shopfloor_planner;
grant select on execution.product_revisions, execution.job_tickets, execution.tokens to shopfloor_integration;

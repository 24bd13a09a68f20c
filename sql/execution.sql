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

-- Emits one POOL_ALLOCATE per required component of the token's pinned
-- snapshot. Never raises: whatever goes wrong in the pool is reported in the
-- returned fields, and its partial bookings are rolled back.
create or replace function execution.allocate_for_assembly(p_token_id bigint, p_worker_id bigint) returns jsonb
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
        if v_code is null or v_code !~ '^\S(.{0,98}\S)?$' then
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
comment on function execution.allocate_for_assembly(bigint, bigint) is E'@behavior -queryField -mutationField\nInternal to handle_single_piece_start.';

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
        using errcode = 'SF409', hint = 'Pause or finish the open work session first.';
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
    v_alloc := execution.allocate_for_assembly(p_token_id, p_worker_id);
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

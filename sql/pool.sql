-- pool: the component pool ledger (specs/pool-allocate.md, issue 4).
-- The pool is an availability ledger, never an execution gate (LAW-01/02).
-- Every change is an append-only event in pool.events, booked together with
-- its balance in pool.balances under a row lock on that balance.
--
-- SQLSTATEs raised here:
--   SF422 invalid input (unknown event type, a state other than cut_ready,
--         zero or wrongly signed quantity, more than 6 decimals, missing fields)
--   SF404 the token named by an event does not exist
--   SFK09 the idempotency key was already used for an event with different
--         content (a silent no-op would hide a bug in the caller)
--   SF409 UPDATE, DELETE or TRUNCATE on pool.events (append-only)
-- A balance that would go negative is not an error: the result is
-- {status: 'rejected', code: 'POOL_409_NEGATIVE'}, nothing is booked, the key
-- stays free, and the refusal is kept in pool.rejections.

------------------------------------------------------------------------------
-- Results
------------------------------------------------------------------------------

-- The answer for a key that already has an event: the original when the
-- content matches, an SFK09 error when it does not.
-- (It stays in pool: as a function of a pool.events row PostGraphile lists it
-- as the computed field PoolEvent.replayResult, which no role may execute;
-- moving it would change the GraphQL schema.)
create or replace function pool.replay_result(p_event pool.events, p_content_hash bytea) returns jsonb
language plpgsql stable
set search_path = pg_catalog, public
as $$
begin
  if p_event.content_hash is distinct from p_content_hash then
    raise exception 'Idempotency key % was already used for a different pool event (event %)',
      p_event.idempotency_key, p_event.id
      using errcode = 'SFK09',
        detail = format('The original: %s %s %s of %s/%s/%s for token %s, reason %s.',
          p_event.event_type, p_event.delta_qty, p_event.state, p_event.product_model_id,
          p_event.bom_version_id, p_event.component_code, coalesce(p_event.token_id::text, '-'), p_event.reason_code),
        hint = 'A retry must repeat the same event; a new event needs a new key.';
  end if;
  return jsonb_build_object(
    'status', 'duplicate',
    'code', 'POOL_200_DUPLICATE',
    'event_id', p_event.id,
    'idempotency_key', p_event.idempotency_key,
    'delta_qty', p_event.delta_qty::text,
    'balance_after', p_event.balance_after::text,
    'balance', (select b.quantity::text from pool.balances b
                 where (b.product_model_id, b.bom_version_id, b.component_code, b.state)
                     = (p_event.product_model_id, p_event.bom_version_id, p_event.component_code, p_event.state)));
end
$$;
comment on function pool.replay_result(pool.events, bytea) is E'@behavior -queryField -mutationField\nInternal to pool.post_event.';

------------------------------------------------------------------------------
-- Posting an event
------------------------------------------------------------------------------

create or replace function pool.post_event(
  p_event_type text,
  p_product_model_id bigint,
  p_bom_version_id bigint,
  p_component_code text,
  p_delta_qty numeric,
  p_idempotency_key text,
  p_reason_code text,
  p_token_id bigint default null,
  p_actor_id bigint default null,
  p_state text default 'cut_ready'
) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_mode text := case p_event_type when 'POOL_RECEIVE' then 'receive' when 'POOL_ALLOCATE' then 'allocate' end;
  v_delta numeric(18,6);
  v_hash bytea;
  v_existing pool.events;
  v_qty numeric(18,6);
  v_event_id bigint;
begin
  if v_mode is null then
    raise exception 'Unknown pool event type %', coalesce(p_event_type, 'null')
      using errcode = 'SF422', hint = 'Use POOL_RECEIVE or POOL_ALLOCATE.';
  end if;
  if p_state is distinct from 'cut_ready' then
    raise exception 'The pool has one state, cut_ready; % is not a pool state', coalesce(p_state, 'null')
      using errcode = 'SF422', detail = 'LAW-03/LAW-04: stage states such as skived_ready are not modelled by the pool.';
  end if;
  if p_product_model_id is null or p_bom_version_id is null then
    raise exception 'A pool event needs a product model and a BOM version' using errcode = 'SF422';
  end if;
  if p_component_code is null or not execution_private.is_component_code(p_component_code) then
    raise exception 'Invalid component code %', coalesce(quote_literal(left(p_component_code, 120)), 'null')
      using errcode = 'SF422', hint = '1 to 100 characters, no leading or trailing blanks (no-break spaces included), no control or zero-width characters.';
  end if;
  if p_idempotency_key is null or length(p_idempotency_key) not between 1 and 200 then
    raise exception 'A pool event needs an idempotency key (1 to 200 characters)' using errcode = 'SF422';
  end if;
  -- pa:asm:{token}:{component} are the assembly allocations' keys
  -- (execution_private.allocate_for_assembly): a receive that took one first
  -- would void that token's allocation, on every retry.
  if v_mode = 'receive' and p_idempotency_key like 'pa:%' then
    raise exception 'The idempotency key % starts with pa:, which is kept for the assembly allocations', left(p_idempotency_key, 120)
      using errcode = 'SF422', hint = 'Use another prefix for receives.';
  end if;
  if p_reason_code is null or p_reason_code !~ '^[A-Z][A-Z0-9_]{0,62}$' then
    raise exception 'Invalid reason code %', coalesce(p_reason_code, 'null')
      using errcode = 'SF422', hint = 'Upper-case letters, digits and underscores, such as ASSEMBLY_ALLOCATE.';
  end if;
  if p_delta_qty is null or p_delta_qty = 0 or abs(p_delta_qty) >= 1e12 or round(p_delta_qty, 6) <> p_delta_qty then
    raise exception 'Invalid quantity %', coalesce(p_delta_qty::text, 'null')
      using errcode = 'SF422', hint = 'A non-zero number below 10^12 with at most 6 decimals.';
  end if;
  if v_mode = 'receive' and p_delta_qty < 0 then
    raise exception 'A receive adds stock: its quantity must be positive' using errcode = 'SF422';
  end if;
  if v_mode = 'allocate' and p_delta_qty > 0 then
    raise exception 'An allocation takes stock: its quantity must be negative' using errcode = 'SF422';
  end if;
  if v_mode = 'allocate' and p_token_id is null then
    raise exception 'An allocation names the token it is for' using errcode = 'SF422',
      detail = 'LAW-05: the pool is decremented only by POOL_ALLOCATE at assembly start.';
  end if;
  if p_token_id is not null and not exists (select 1 from execution.tokens where id = p_token_id) then
    raise exception 'Token % does not exist', p_token_id using errcode = 'SF404';
  end if;

  v_delta := p_delta_qty;
  -- The content an idempotency key stands for (not who posted it or when).
  v_hash := sha256(convert_to(jsonb_build_array(p_event_type, v_mode, p_product_model_id, p_bom_version_id,
                    p_component_code, p_state, v_delta::text, p_token_id, p_reason_code)::text, 'UTF8'));

  -- A replay of a committed event changes nothing.
  select * into v_existing from pool.events where idempotency_key = p_idempotency_key;
  if found then
    return pool.replay_result(v_existing, v_hash);
  end if;

  -- Lock the balance (create it at zero first if it is new).
  select quantity into v_qty from pool.balances
   where (product_model_id, bom_version_id, component_code, state) = (p_product_model_id, p_bom_version_id, p_component_code, p_state)
   for update;
  if not found then
    insert into pool.balances (product_model_id, bom_version_id, component_code, state, quantity)
    values (p_product_model_id, p_bom_version_id, p_component_code, p_state, 0)
    on conflict do nothing;
    select quantity into v_qty from pool.balances
     where (product_model_id, bom_version_id, component_code, state) = (p_product_model_id, p_bom_version_id, p_component_code, p_state)
     for update;
  end if;

  -- The same key may have been booked while this call waited for the lock.
  select * into v_existing from pool.events where idempotency_key = p_idempotency_key;
  if found then
    return pool.replay_result(v_existing, v_hash);
  end if;

  if v_qty + v_delta < 0 then
    insert into pool.rejections (code, event_type, pool_mode, product_model_id, bom_version_id, component_code, state,
                                 delta_qty, balance_at_rejection, token_id, reason_code, actor_id, recorded_by, idempotency_key)
    values ('POOL_409_NEGATIVE', p_event_type, v_mode, p_product_model_id, p_bom_version_id, p_component_code, p_state,
            v_delta, v_qty, p_token_id, p_reason_code, p_actor_id, ops.current_actor(), p_idempotency_key);
    return jsonb_build_object(
      'status', 'rejected',
      'code', 'POOL_409_NEGATIVE',
      'event_id', null,
      'idempotency_key', p_idempotency_key,
      'delta_qty', v_delta::text,
      'balance', v_qty::text);
  end if;

  -- A concurrent post of the same key against another balance: the unique
  -- key makes this insert wait for it, then it is a replay.
  insert into pool.events (event_type, pool_mode, product_model_id, bom_version_id, component_code, state, delta_qty,
                           balance_after, token_id, reason_code, actor_id, recorded_by, idempotency_key, content_hash)
  values (p_event_type, v_mode, p_product_model_id, p_bom_version_id, p_component_code, p_state, v_delta,
          v_qty + v_delta, p_token_id, p_reason_code, p_actor_id, ops.current_actor(), p_idempotency_key, v_hash)
  on conflict (idempotency_key) do nothing
  returning id into v_event_id;
  if v_event_id is null then
    select * into v_existing from pool.events where idempotency_key = p_idempotency_key;
    return pool.replay_result(v_existing, v_hash);
  end if;

  update pool.balances
     set quantity = v_qty + v_delta, last_event_id = v_event_id, updated_at = now()
   where (product_model_id, bom_version_id, component_code, state) = (p_product_model_id, p_bom_version_id, p_component_code, p_state);

  return jsonb_build_object(
    'status', 'applied',
    'code', 'POOL_201_APPLIED',
    'event_id', v_event_id,
    'idempotency_key', p_idempotency_key,
    'delta_qty', v_delta::text,
    'balance', (v_qty + v_delta)::text);
end
$$;
comment on function pool.post_event(text, bigint, bigint, text, numeric, text, text, bigint, bigint, text) is
  E'@behavior -queryField -mutationField\nPosts one pool event (POOL_RECEIVE or POOL_ALLOCATE) under a lock on its balance. Returns {status: applied | duplicate | rejected, code, event_id, balance}. Same key and content: duplicate; same key, other content: SFK09; balance would go negative: rejected POOL_409_NEGATIVE, nothing booked, key not consumed.';

-- Stock entering the pool (cut pieces ready), for integrations and DBAs.
create or replace function pool.receive(
  p_product_model_id bigint,
  p_bom_version_id bigint,
  p_component_code text,
  p_qty numeric,
  p_idempotency_key text,
  p_reason_code text default 'CUT_RECEIVE',
  p_actor_id bigint default null
) returns jsonb
language sql volatile security definer
set search_path = pg_catalog, public
as $$
  select pool.post_event('POOL_RECEIVE', p_product_model_id, p_bom_version_id, p_component_code, p_qty,
                         p_idempotency_key, coalesce(p_reason_code, 'CUT_RECEIVE'), null, p_actor_id, 'cut_ready')
$$;
comment on function pool.receive(bigint, bigint, text, numeric, text, text, bigint) is
  'Books cut pieces entering the pool (POOL_RECEIVE, state cut_ready). Idempotent by key. Returns {status, code, event_id, balance}.';

------------------------------------------------------------------------------
-- The ledger is append-only
------------------------------------------------------------------------------

create or replace function pool_private.tg_events__append_only() returns trigger
language plpgsql
as $$
begin
  raise exception 'pool.events is append-only: % is not allowed', tg_op
    using errcode = 'SF409', hint = 'Correct a booking with a new event.';
end
$$;

create or replace trigger events_append_only
  before update or delete on pool.events
  for each row execute function pool_private.tg_events__append_only();
create or replace trigger events_no_truncate
  before truncate on pool.events
  for each statement execute function pool_private.tg_events__append_only();
drop function if exists pool.refuse_event_change();

------------------------------------------------------------------------------
-- Shortages: rejected allocations no later event has satisfied
------------------------------------------------------------------------------

create or replace view pool.shortages as
with open_rejections as (
  select distinct on (r.idempotency_key) r.*
    from pool.rejections r
   where not exists (select 1 from pool.events e where e.idempotency_key = r.idempotency_key)
   order by r.idempotency_key, r.rejected_at desc, r.id desc
)
select o.product_model_id,
       o.bom_version_id,
       o.component_code,
       o.state,
       count(*)::int as open_allocations,
       array_agg(o.token_id order by o.token_id) as token_ids,
       sum(-o.delta_qty)::numeric(18,6) as qty_needed,
       coalesce(b.quantity, 0)::numeric(18,6) as qty_available,
       greatest(sum(-o.delta_qty) - coalesce(b.quantity, 0), 0)::numeric(18,6) as qty_short,
       min(o.rejected_at) as first_rejected_at,
       max(o.rejected_at) as last_rejected_at
  from open_rejections o
  left join pool.balances b using (product_model_id, bom_version_id, component_code, state)
 group by o.product_model_id, o.bom_version_id, o.component_code, o.state, b.quantity;

------------------------------------------------------------------------------
-- GraphQL shape and grants
------------------------------------------------------------------------------

comment on table pool.events is E'@name PoolEvent\n@behavior -insert -update -delete\nThe pool ledger: append-only events (POOL_RECEIVE, POOL_ALLOCATE), one per idempotency key.';
comment on column pool.events.content_hash is E'@behavior -*\nsha256 of the event''s content; a replayed key must match it.';
comment on table pool.balances is E'@name PoolBalance\n@behavior -insert -update -delete\nAvailable quantity per product model, BOM version, component and state (cut_ready), booked with each event.';
comment on table pool.rejections is E'@name PoolRejection\n@behavior -insert -update -delete\nAllocations refused with POOL_409_NEGATIVE: nothing was booked and the key stayed free.';
comment on view pool.shortages is E'@name PoolShortage\n@primaryKey product_model_id,bom_version_id,component_code,state\nRejected allocations not yet satisfied by a later booking, per component: what supervisors must find.';

grant usage on schema pool to shopfloor_operator, shopfloor_integration;
grant select on pool.events, pool.balances to shopfloor_operator, shopfloor_integration;
grant select on pool.rejections, pool.shortages to shopfloor_supervisor;
revoke insert, update, delete, truncate on pool.events, pool.balances, pool.rejections from public;
grant execute on function pool.receive(bigint, bigint, text, numeric, text, text, bigint) to shopfloor_integration;

-- approval: job approval with the inventory guardrail
-- (specs/job-approval-guardrail.md, issue 3). Tables are in
-- migrations/committed/000002-*.sql; this file is re-applied after every
-- migrate, so everything here is CREATE OR REPLACE.
--
-- Error codes raised here (SQLSTATE class SF, passed through by the API):
--   SF404  the job (or item) does not exist
--   SF409  'Inventory changed during job approval': the job was fulfillable when
--          the editor opened (p_was_fulfillable) and is not now. DETAIL is the
--          sentence for users, HINT the per-item shortages as a JSON array.
--          Also: a BOM change on a job that is no longer a draft.
--   SF412  the job is not in a status the action starts from (approving a job
--          that is already approved, cancelled...). Distinct from SF409 so a
--          client can tell "someone else already did it" from "inventory moved".
--   SF422  invalid input (null arguments, bad BOM, negative stock)
--
-- Reserved quantity: approval.inventory_items.reserved is the sum of
-- qty_planned over the BOM lines of jobs that are approved or in_progress. It
-- is maintained in the transaction that changes a job's status: by approve_job
-- itself (it holds the items' locks already, so it updates them once and the
-- status trigger skips that job), and by the triggers below for every other
-- change (the functions or a plain UPDATE/DELETE by a DBA). So an approval
-- reads one column per item instead of summing every approved BOM line.
-- approval.recompute_reserved() rebuilds it.

------------------------------------------------------------------------------
-- Triggers that keep inventory_items.reserved right
------------------------------------------------------------------------------

create or replace function approval_private.is_reserving(p_status text) returns boolean
language sql immutable
as $$
  select p_status in ('approved', 'in_progress')
$$;

-- Adds (p_sign = 1) or releases (p_sign = -1) a job's BOM on its items. Locks
-- the items in id order first, as approve_job does, so that two status
-- changes over the same items cannot deadlock. Item locks are FOR NO KEY
-- UPDATE everywhere: reserved and on_hand are no key, so a BOM line being
-- added to a draft (its foreign key takes FOR KEY SHARE on the item, in the
-- BOM's order) neither waits for a status change nor deadlocks with one.
create or replace function approval_private.apply_reservation(p_job_id bigint, p_sign integer) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
begin
  perform 1 from approval.inventory_items i
   where i.id in (select b.item_id from approval.job_bom b where b.job_id = p_job_id)
   order by i.id
   for no key update;
  update approval.inventory_items i
     set reserved = i.reserved + p_sign * b.qty_planned
    from approval.job_bom b
   where b.job_id = p_job_id and i.id = b.item_id;
end
$$;

create or replace function approval_private.tg_jobs__status_changed() returns trigger
language plpgsql security definer
set search_path = pg_catalog, public
as $$
declare
  was boolean := approval_private.is_reserving(old.status);
  now_reserving boolean := approval_private.is_reserving(new.status);
begin
  if new.id <> old.id then
    raise exception 'A job''s id cannot change' using errcode = 'SF422';
  end if;
  if was and not now_reserving then
    perform approval_private.apply_reservation(new.id, -1);
  elsif now_reserving and not was then
    perform approval_private.apply_reservation(new.id, 1);
  end if;
  return null;
end
$$;

-- approve_job reserves its job's BOM itself (its items are locked already, so
-- it updates them once, set-based) and marks the job in the transaction-local
-- setting approval.reserving_job around its status UPDATE: the trigger skips
-- that one row. Any other status change (the functions below, a DBA's UPDATE)
-- goes through the trigger.
create or replace trigger job_status_changed
  after update of status, id on approval.jobs
  for each row when ((old.status is distinct from new.status or old.id is distinct from new.id)
                     and new.id::text is distinct from current_setting('approval.reserving_job', true))
  execute function approval_private.tg_jobs__status_changed();
drop function if exists approval_private.job_status_changed();

-- Deleting an approved job releases its reservation (its BOM lines still
-- exist before the delete; the cascade removes them afterwards).
create or replace function approval_private.tg_jobs__deleted() returns trigger
language plpgsql security definer
set search_path = pg_catalog, public
as $$
begin
  if approval_private.is_reserving(old.status) then
    perform approval_private.apply_reservation(old.id, -1);
  end if;
  return old;
end
$$;

create or replace trigger job_deleted
  before delete on approval.jobs
  for each row execute function approval_private.tg_jobs__deleted();
drop function if exists approval_private.job_deleted();

-- A BOM can change only while its job is a draft: the reservation of an
-- approved job is what was checked at approval. One check per statement.
-- (Lines removed by the cascade of a job delete find no job and pass.)
create or replace function approval_private.tg_job_bom__changed() returns trigger
language plpgsql security definer
set search_path = pg_catalog, public
as $$
declare
  v_job record;
begin
  -- Lock the jobs of the changed lines FOR SHARE first, and only then look at
  -- their status: a status change in flight (approve_job, a DBA's UPDATE) is
  -- waited for, and the status read is the committed one. (Filtering on
  -- status in the same query would skip a job whose approval has not
  -- committed yet, and the new line would escape the reservation.)
  if tg_op = 'UPDATE' then
    perform 1 from approval.jobs j
     where j.id in (select job_id from changed union select job_id from old_rows)
     order by j.id for share;
    select j.id, j.status into v_job
      from approval.jobs j
     where j.id in (select job_id from changed union select job_id from old_rows) and j.status <> 'draft'
     order by j.id limit 1;
  else
    perform 1 from approval.jobs j where j.id in (select job_id from changed) order by j.id for share;
    select j.id, j.status into v_job
      from approval.jobs j
     where j.id in (select job_id from changed) and j.status <> 'draft'
     order by j.id limit 1;
  end if;
  if found then
    raise exception 'The BOM of job % cannot change: the job is %', v_job.id, v_job.status
      using errcode = 'SF409', detail = 'Only a draft job''s BOM can be edited.';
  end if;
  return null;
end
$$;

create or replace trigger bom_inserted
  after insert on approval.job_bom
  referencing new table as changed
  for each statement execute function approval_private.tg_job_bom__changed();
create or replace trigger bom_updated
  after update on approval.job_bom
  referencing old table as old_rows new table as changed
  for each statement execute function approval_private.tg_job_bom__changed();
create or replace trigger bom_deleted
  after delete on approval.job_bom
  referencing old table as changed
  for each statement execute function approval_private.tg_job_bom__changed();
drop function if exists approval_private.bom_changed();

-- Repair tool (admin, psql): rebuilds reserved from the BOM lines. Returns how
-- many items changed. Takes the items' locks in id order.
create or replace function approval.recompute_reserved() returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  n integer;
begin
  perform 1 from approval.inventory_items order by id for no key update;
  with sums as (
    select b.item_id, sum(b.qty_planned) as reserved
      from approval.job_bom b join approval.jobs j on j.id = b.job_id
     where j.status in ('approved', 'in_progress')
     group by b.item_id
  ), fixed as (
    update approval.inventory_items i
       set reserved = coalesce(s.reserved, 0)
      from approval.inventory_items i2 left join sums s on s.item_id = i2.id
     where i2.id = i.id and i.reserved is distinct from coalesce(s.reserved, 0)
    returning 1
  )
  select count(*)::int into n from fixed;
  perform ops.audit('recompute_reserved', 'approval_inventory', null, jsonb_build_object('items_changed', n));
  return n;
end
$$;

------------------------------------------------------------------------------
-- Reading: shortfall and fulfillability
------------------------------------------------------------------------------

-- One row per BOM line, in item-id order. reserved is what OTHER jobs hold:
-- for a job that is itself approved, its own lines are left out.
create or replace function approval.job_shortfall(p_job_id bigint)
returns table (item_id bigint, sku text, qty_needed numeric, on_hand numeric, reserved numeric, available numeric, shortfall numeric)
language plpgsql stable security definer
set search_path = pg_catalog, public
as $$
#variable_conflict use_column
declare
  v_status text;
begin
  select j.status into v_status from approval.jobs j where j.id = p_job_id;
  if not found then
    raise exception 'Job % does not exist', p_job_id using errcode = 'SF404';
  end if;
  return query
    select b.item_id, i.sku, b.qty_planned, i.on_hand, r.other, i.on_hand - r.other,
           greatest(0, b.qty_planned - (i.on_hand - r.other))
      from approval.job_bom b
      join approval.inventory_items i on i.id = b.item_id
      cross join lateral (
        select i.reserved - case when approval_private.is_reserving(v_status) then b.qty_planned else 0 end as other
      ) r
     where b.job_id = p_job_id
     order by b.item_id;
end
$$;

create or replace function approval.job_is_fulfillable(p_job_id bigint) returns boolean
language sql stable security definer
set search_path = pg_catalog, public
as $$
  select coalesce(sum(s.shortfall), 0) = 0 from approval.job_shortfall(p_job_id) s
$$;

------------------------------------------------------------------------------
-- approve_job: the guardrail
------------------------------------------------------------------------------

create or replace function approval.approve_job(p_job_id bigint, p_was_fulfillable boolean) returns approval.jobs
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_job approval.jobs;
  v_status text;
  v_lines integer;
  v_total numeric;
  v_short_lines integer;
  v_shortages jsonb;
begin
  if p_job_id is null or p_was_fulfillable is null then
    raise exception 'approve_job needs a job id and was_fulfillable (true or false)' using errcode = 'SF422';
  end if;

  -- 1. The job row FOR UPDATE (the strongest row lock: it also holds off the
  --    key-share lock of a BOM line being added to this job), then approve it
  --    if it is a draft. approve_job reserves the BOM itself (step 4), so it
  --    tells the status trigger to skip this one row. Nobody sees the new
  --    status before commit, and a refusal below raises, which undoes it.
  select j.status into v_status from approval.jobs j where j.id = p_job_id for update;
  if not found then
    raise exception 'Job % does not exist', p_job_id using errcode = 'SF404';
  end if;
  if v_status <> 'draft' then
    raise exception 'Job % is % and cannot be approved', p_job_id, v_status
      using errcode = 'SF412', detail = 'Only a draft job can be approved.';
  end if;
  perform set_config('approval.reserving_job', p_job_id::text, true);
  update approval.jobs
     set status = 'approved', approved_at = now(), approved_by = ops.current_actor(), status_changed_at = now()
   where id = p_job_id
  returning * into v_job;
  perform set_config('approval.reserving_job', '', true);

  -- 2. Its items FOR UPDATE in item-id order (never the unordered lock of the
  --    spec's sketch: two BOMs overlapping in opposite orders deadlock), and
  --    the shortfall computed from the rows as locked, in the same statement.
  --    A draft holds no reservation, so reserved on the item is all other jobs'.
  with locked as materialized (
    select i.id, i.sku, i.on_hand - i.reserved as available, b.qty_planned
      from approval.inventory_items i
      join approval.job_bom b on b.item_id = i.id and b.job_id = p_job_id
     order by i.id
       for no key update of i
  ), short as (
    select l.*, row_number() over (order by l.id) as n from locked l where l.qty_planned > l.available
  )
  --    The shortage list is bounded: the first 50 short lines by item id.
  select (select count(*)::int from locked),
         coalesce((select sum(s.qty_planned - s.available) from short s), 0),
         (select count(*)::int from short),
         coalesce((select jsonb_agg(jsonb_build_object(
                    'item_id', s.id, 'sku', s.sku, 'needed', s.qty_planned,
                    'available', s.available,
                    'shortfall', s.qty_planned - s.available,
                    'reason', 'Insufficient inventory') order by s.id)
                     from short s where s.n <= 50), '[]')
    into v_lines, v_total, v_short_lines, v_shortages;

  -- 3. Block only a regression from fulfillable to not fulfillable.
  if p_was_fulfillable and v_total > 0 then
    raise exception 'Inventory changed during job approval'
      using errcode = 'SF409',
            detail = 'Inventory was reduced or reserved by another operation while you were editing this job, and it can no longer be fulfilled.'
                     || case when v_short_lines > 50 then format(' %s BOM lines are short; the first 50 are listed.', v_short_lines) else '' end,
            hint = v_shortages::text;
  end if;

  -- 4. Reserve the BOM on its items, already locked: one set-based UPDATE.
  if v_lines > 0 then
    update approval.inventory_items i
       set reserved = i.reserved + b.qty_planned
      from approval.job_bom b
     where b.job_id = p_job_id and i.id = b.item_id;
  end if;
  perform ops.audit('approve_job', 'approval_job', p_job_id::text,
    jsonb_build_object('was_fulfillable', p_was_fulfillable, 'is_fulfillable', v_total = 0, 'shortages', v_shortages));
  return v_job;
end
$$;
comment on function approval.approve_job(bigint, boolean) is
  E'@name approve_job\nApproves a draft job and reserves its BOM. Blocked (SF409) only when the job was fulfillable when the editor opened (wasFulfillable) and is not now; the shortages are in the error''s hint as JSON.';

------------------------------------------------------------------------------
-- Other status changes (they release or keep the reservation via the trigger)
------------------------------------------------------------------------------

create or replace function approval_private.change_status(p_job_id bigint, p_to text, p_from text[], p_action text)
returns approval.jobs
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_job approval.jobs;
begin
  if p_job_id is null then
    raise exception '% needs a job id', p_action using errcode = 'SF422';
  end if;
  select * into v_job from approval.jobs where id = p_job_id for update;
  if not found then
    raise exception 'Job % does not exist', p_job_id using errcode = 'SF404';
  end if;
  if not (v_job.status = any (p_from)) then
    raise exception 'Job % is % and cannot become %', p_job_id, v_job.status, p_to
      using errcode = 'SF412', detail = format('Only a job that is %s can become %s.', array_to_string(p_from, ' or '), p_to);
  end if;
  update approval.jobs set status = p_to, status_changed_at = now() where id = p_job_id returning * into v_job;
  perform ops.audit(p_action, 'approval_job', p_job_id::text, jsonb_build_object('to', p_to));
  return v_job;
end
$$;

create or replace function approval.start_job(p_job_id bigint) returns approval.jobs
language sql volatile security definer
set search_path = pg_catalog, public
as $$
  select * from approval_private.change_status(p_job_id, 'in_progress', array['approved'], 'start_job')
$$;
comment on function approval.start_job(bigint) is 'Starts an approved job (in_progress); it keeps its reservation.';

create or replace function approval.complete_job(p_job_id bigint) returns approval.jobs
language sql volatile security definer
set search_path = pg_catalog, public
as $$
  select * from approval_private.change_status(p_job_id, 'completed', array['approved', 'in_progress'], 'complete_job')
$$;
comment on function approval.complete_job(bigint) is 'Completes an approved or started job and releases its reservation. It does not change on_hand: record consumption with set_on_hand.';

create or replace function approval.cancel_job(p_job_id bigint) returns approval.jobs
language sql volatile security definer
set search_path = pg_catalog, public
as $$
  select * from approval_private.change_status(p_job_id, 'cancelled', array['draft', 'approved', 'in_progress'], 'cancel_job')
$$;
comment on function approval.cancel_job(bigint) is 'Cancels a job that is not completed and releases its reservation.';

------------------------------------------------------------------------------
-- Inventory and jobs
------------------------------------------------------------------------------

-- A stock count: zero or more and below 10^12. NaN passes `>= 0` (it sorts
-- above every number) and would make reserved and every shortfall NaN.
create or replace function approval_private.check_on_hand(p_on_hand numeric) returns void
language plpgsql immutable
as $$
begin
  if p_on_hand is null or not (p_on_hand >= 0 and p_on_hand < 1e12) then
    raise exception 'on_hand must be zero or more: a number from 0 to below 1,000,000,000,000, not %', coalesce(p_on_hand::text, 'null')
      using errcode = 'SF422';
  end if;
end
$$;

-- The first problem of a BOM (a JSON array of {item_id or sku, qty_planned}),
-- naming the line and the field; null when every line is well formed.
create or replace function approval_private.bom_problem(p_bom jsonb) returns text
language sql immutable
as $$
  select format('bom[%s]: %s', l.n - 1, p.problem)
    from jsonb_array_elements(p_bom) with ordinality l(line, n)
    cross join lateral (select case
      when jsonb_typeof(l.line) <> 'object' then 'a BOM line is an object {item_id or sku, qty_planned}'
      -- (an item_id of JSON null counts as absent: clients serialize unset fields so)
      when coalesce(jsonb_typeof(l.line -> 'item_id'), 'null') <> 'null'
           and not (jsonb_typeof(l.line -> 'item_id') in ('number', 'string') and l.line ->> 'item_id' ~ '^[1-9][0-9]{0,17}$')
        then 'item_id must be a positive whole number'
      when coalesce(jsonb_typeof(l.line -> 'item_id'), 'null') = 'null' and coalesce(jsonb_typeof(l.line -> 'sku'), '') <> 'string'
        then 'item_id or sku is needed'
      -- (the inner case casts only what looks like a number)
      when not coalesce(case when coalesce(jsonb_typeof(l.line -> 'qty_planned'), '') in ('number', 'string')
                                  and l.line ->> 'qty_planned' ~ '^[0-9]*\.?[0-9]+([eE][-+]?[0-9]{1,3})?$'
                             then (l.line ->> 'qty_planned')::numeric > 0 and (l.line ->> 'qty_planned')::numeric < 1e12 end, false)
        then 'qty_planned must be a number above 0 and below 1,000,000,000,000'
    end as problem) p
   where p.problem is not null
   order by l.n
   limit 1
$$;

create or replace function approval.create_item(p_sku text, p_name text default '', p_unit text default 'pcs', p_on_hand numeric default 0)
returns approval.inventory_items
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_item approval.inventory_items;
begin
  perform approval_private.check_on_hand(coalesce(p_on_hand, 0));
  begin
    insert into approval.inventory_items (sku, name, unit, on_hand)
    values (p_sku, coalesce(p_name, ''), coalesce(p_unit, 'pcs'), coalesce(p_on_hand, 0))
    returning * into v_item;
  exception
    when unique_violation then
      raise exception 'Item % already exists', p_sku using errcode = 'SF409';
    when check_violation or not_null_violation then
      raise exception 'Invalid item: a SKU is needed and on_hand cannot be negative' using errcode = 'SF422';
  end;
  perform ops.audit('create_item', 'approval_item', v_item.id::text, jsonb_build_object('sku', p_sku, 'on_hand', v_item.on_hand));
  return v_item;
end
$$;

-- Sets the stock on hand (a count, a reseed or a reduction). Reducing it below
-- what is reserved is allowed (the stock is what it is); jobs approved later
-- see the shortfall.
create or replace function approval.set_on_hand(p_item_id bigint, p_on_hand numeric) returns approval.inventory_items
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_item approval.inventory_items;
  v_before numeric;
begin
  if p_item_id is null then
    raise exception 'set_on_hand needs an item id' using errcode = 'SF422';
  end if;
  perform approval_private.check_on_hand(p_on_hand);
  select on_hand into v_before from approval.inventory_items where id = p_item_id for no key update;
  if not found then
    raise exception 'Item % does not exist', p_item_id using errcode = 'SF404';
  end if;
  update approval.inventory_items set on_hand = p_on_hand, updated_at = now() where id = p_item_id returning * into v_item;
  perform ops.audit('set_on_hand', 'approval_item', p_item_id::text, jsonb_build_object('before', v_before, 'after', p_on_hand));
  return v_item;
end
$$;

-- Creates a draft job with its BOM: p_bom is a JSON array of
-- {"item_id": 1, "qty_planned": 4} (or "sku" instead of "item_id").
create or replace function approval.create_job(p_name text, p_bom jsonb default '[]') returns approval.jobs
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_job approval.jobs;
  v_problem text;
begin
  if p_bom is null or jsonb_typeof(p_bom) <> 'array' then
    raise exception 'The BOM must be a JSON array of {item_id, qty_planned}' using errcode = 'SF422';
  end if;
  v_problem := approval_private.bom_problem(p_bom);
  if v_problem is not null then
    raise exception '%', v_problem using errcode = 'SF422';
  end if;
  insert into approval.jobs (name) values (coalesce(p_name, '')) returning * into v_job;
  begin
    insert into approval.job_bom (job_id, item_id, qty_planned)
    select v_job.id, coalesce((l->>'item_id')::bigint, (select i.id from approval.inventory_items i where i.sku = l->>'sku')),
           (l->>'qty_planned')::numeric
      from jsonb_array_elements(p_bom) l;
  exception
    when not_null_violation or foreign_key_violation then
      raise exception 'The BOM names an item that does not exist' using errcode = 'SF422';
    when unique_violation then
      raise exception 'The BOM names an item twice: one line per item' using errcode = 'SF422';
    when check_violation or invalid_text_representation then
      raise exception 'Every BOM line needs a qty_planned above zero' using errcode = 'SF422';
  end;
  perform ops.audit('create_job', 'approval_job', v_job.id::text, jsonb_build_object('bom', p_bom));
  return v_job;
end
$$;

------------------------------------------------------------------------------
-- GraphQL shape and grants
------------------------------------------------------------------------------

comment on table approval.inventory_items is E'@name ApprovalInventoryItem\n@behavior -insert -update -delete\nStock items; reserved is maintained from approved and in-progress jobs.';
comment on table approval.jobs is E'@name ApprovalJob\n@behavior -insert -update -delete\nJobs that need approval against inventory.';
comment on table approval.job_bom is E'@name ApprovalJobBomLine\n@behavior -insert -update -delete\nA job''s bill of materials: one line per item.';
comment on function approval.recompute_reserved() is E'@behavior -queryField -mutationField\nRebuilds inventory_items.reserved from the BOM lines (admin repair tool).';
-- The contract's GraphQL names (approveJob, jobShortfall, jobIsFulfillable)
-- need @name: functions outside the first exposed schema get a schema prefix
-- (approvalStartJob...), which the other functions keep.
comment on function approval.job_shortfall(bigint) is E'@name job_shortfall\nOne row per BOM line of the job: needed, on hand, reserved by other jobs, available and shortfall.';
comment on function approval.job_is_fulfillable(bigint) is E'@name job_is_fulfillable\nTrue when the job''s total shortfall is zero.';

grant usage on schema approval to shopfloor_operator, shopfloor_integration;
grant select on approval.inventory_items, approval.jobs, approval.job_bom to shopfloor_operator, shopfloor_integration;
grant execute on function approval.job_shortfall(bigint), approval.job_is_fulfillable(bigint)
  to shopfloor_operator, shopfloor_integration;
grant execute on function approval.approve_job(bigint, boolean), approval.start_job(bigint),
  approval.complete_job(bigint), approval.cancel_job(bigint) to shopfloor_supervisor;
grant execute on function approval.create_job(text, jsonb) to shopfloor_planner, shopfloor_supervisor;
grant execute on function approval.create_item(text, text, text, numeric), approval.set_on_hand(bigint, numeric)
  to shopfloor_supervisor, shopfloor_integration;
grant execute on function approval.recompute_reserved() to shopfloor_admin;

-- planning master data through the API (issue 16): machines, shifts, items
-- with changeovers, holidays and operations can be created, changed and
-- retired by the roles that own them. Machines, items and operations carry the
-- ERP's key (external_id, unique): save_* with an external_id upserts by it,
-- so an ERP can sync every few minutes without keeping our ids.
--
-- One rule for every save_*: with the row's id it changes that row (SF404 when
-- it does not exist); else with an external_id it upserts by it; else it
-- creates. Arguments left null keep the stored value on a change.
--
-- Refusals name the GraphQL argument: SF422 invalid input, SF404 unknown id,
-- SF409 a duplicate key, or retiring/changing something the plan uses (the
-- message says what uses it). Every change is audited (ops.audit).
-- Applied after sql/planning.sql (file-name order).

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------

-- SF422 naming the field unless p_value is a trimmed text of 1..p_max chars.
drop function if exists planning.check_text(text, text, int);
create or replace function planning_private.check_text(p_field text, p_value text, p_max int) returns text
language plpgsql immutable
set search_path = pg_catalog, public
as $$
begin
  if p_value is null or p_value !~ '^\S(.*\S)?$' or length(p_value) > p_max then
    raise exception '% must be 1 to % characters without leading or trailing blanks', p_field, p_max
      using errcode = 'SF422', detail = format('%s: %s', p_field, coalesce(left(p_value, 120), 'null'));
  end if;
  return p_value;
end
$$;

-- A unique violation as SF409 naming the field behind the constraint.
drop function if exists planning.raise_duplicate(text, text, text);
create or replace function planning_private.raise_duplicate(p_constraint text, p_field text, p_value text) returns void
language plpgsql immutable as $$
begin
  raise exception '% % is already used', p_field, p_value
    using errcode = 'SF409', detail = format('constraint %s', p_constraint),
          hint = case when p_field = 'externalId' then 'Save with that externalId to change the existing row.'
                      else 'Change the existing row (its id), or use another value.' end;
end
$$;

------------------------------------------------------------------------------
-- Machines
------------------------------------------------------------------------------

create or replace function planning.save_machine(
  p_machine_code text, p_machine_name text default null, p_external_id text default null,
  p_machine_id bigint default null, p_active boolean default null)
returns planning.machines
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_row planning.machines;
  v_created boolean := false;
  v_try int;
  v_constraint text;
begin
  perform planning_private.check_text('machineCode', p_machine_code, 60);
  if p_external_id is not null then perform planning_private.check_text('externalId', p_external_id, 100); end if;
  if length(p_machine_name) > 200 then
    raise exception 'machineName must be at most 200 characters' using errcode = 'SF422';
  end if;
  for v_try in 1..2 loop
    v_row := null;
    begin
      if p_machine_id is not null then
        select * into v_row from planning.machines where machine_id = p_machine_id for update;
        if not found then
          raise exception 'machineId % does not exist', p_machine_id using errcode = 'SF404';
        end if;
      elsif p_external_id is not null then
        select * into v_row from planning.machines where external_id = p_external_id for update;
      end if;
      if v_row.machine_id is null then
        insert into planning.machines (machine_code, machine_name, external_id, active)
        values (p_machine_code, coalesce(p_machine_name, ''), p_external_id, coalesce(p_active, true))
        returning * into v_row;
        v_created := true;
      else
        if p_active is false and v_row.active then
          perform planning_private.refuse_if_planned(format('Machine %s', v_row.machine_id), v_row.machine_id, null, null);
        end if;
        update planning.machines
           set machine_code = p_machine_code, machine_name = coalesce(p_machine_name, machine_name),
               external_id = coalesce(p_external_id, external_id), active = coalesce(p_active, active)
         where machine_id = v_row.machine_id
        returning * into v_row;
      end if;
      exit;
    exception when unique_violation then
      get stacked diagnostics v_constraint = constraint_name;
      -- Two syncs created the same externalId at once: the later one updates the row.
      continue when v_try = 1 and v_row.machine_id is null and p_machine_id is null and v_constraint like '%external_id%';
      perform planning_private.raise_duplicate(v_constraint,
        case when v_constraint like '%external_id%' then 'externalId' else 'machineCode' end,
        case when v_constraint like '%external_id%' then p_external_id else p_machine_code end);
    end;
  end loop;
  perform ops.audit('save_machine', 'planning_machine', v_row.machine_id::text,
                    jsonb_build_object('created', v_created, 'row', to_jsonb(v_row)));
  return v_row;
end
$$;

-- SF409 when plan rows use the machine, shift or operation given (exactly
-- one of them): retiring something the plan uses is refused with the reason.
drop function if exists planning.refuse_if_planned(text, bigint, bigint, bigint);
create or replace function planning_private.refuse_if_planned(p_what text, p_machine_id bigint, p_shift_id bigint, p_op_id bigint)
returns void
language plpgsql stable
set search_path = pg_catalog, public
as $$
declare
  v_rows bigint;
  v_first date;
begin
  select count(*), min(mp_op_proddate) into v_rows, v_first
    from planning.mach_planning
   where mp_machine_id = p_machine_id or mp_shift_id = p_shift_id or mp_op_id = p_op_id;
  if v_rows > 0 then
    raise exception '% is in use: % plan row(s) from % on', p_what, v_rows, v_first
      using errcode = 'SF409', hint = 'Move or remove its planned operations first (saveSequence, or resolveCarryover for a past date).';
  end if;
end
$$;

create or replace function planning.retire_machine(p_machine_id bigint) returns planning.machines
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_row planning.machines;
begin
  if p_machine_id is null then raise exception 'retireMachine needs machineId' using errcode = 'SF422'; end if;
  select * into v_row from planning.machines where machine_id = p_machine_id for update;
  if not found then raise exception 'machineId % does not exist', p_machine_id using errcode = 'SF404'; end if;
  perform planning_private.refuse_if_planned(format('Machine %s', p_machine_id), p_machine_id, null, null);
  update planning.machines set active = false where machine_id = p_machine_id returning * into v_row;
  perform ops.audit('retire_machine', 'planning_machine', p_machine_id::text, '{}');
  return v_row;
end
$$;

------------------------------------------------------------------------------
-- Shifts
------------------------------------------------------------------------------

create or replace function planning.save_shift(
  p_shift_code text, p_start_time time, p_end_time time, p_machine_id bigint default null, p_shift_id bigint default null)
returns planning.shifts
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_row planning.shifts;
  v_created boolean := false;
  v_constraint text;
  v_used bigint;
begin
  perform planning_private.check_text('shiftCode', p_shift_code, 30);
  if p_start_time is null then raise exception 'startTime is required' using errcode = 'SF422'; end if;
  if p_end_time is null then raise exception 'endTime is required' using errcode = 'SF422'; end if;
  if p_start_time = p_end_time then
    raise exception 'endTime must differ from startTime (an end before the start crosses midnight)' using errcode = 'SF422';
  end if;
  if p_machine_id is not null and not exists (select 1 from planning.machines where machine_id = p_machine_id) then
    raise exception 'machineId % does not exist', p_machine_id using errcode = 'SF404';
  end if;
  begin
    if p_shift_id is null then
      insert into planning.shifts (shift_code, machine_id, start_time, end_time)
      values (p_shift_code, p_machine_id, p_start_time, p_end_time)
      returning * into v_row;
      v_created := true;
    else
      select * into v_row from planning.shifts where shift_id = p_shift_id for update;
      if not found then raise exception 'shiftId % does not exist', p_shift_id using errcode = 'SF404'; end if;
      if v_row.machine_id is distinct from p_machine_id then
        select count(*) into v_used from planning.mach_planning where mp_shift_id = p_shift_id;
        if v_used > 0 then
          raise exception 'machineId of shift % cannot change: % plan row(s) use the shift', p_shift_id, v_used
            using errcode = 'SF409', hint = 'Create a new shift for the other machine.';
        end if;
      end if;
      update planning.shifts
         set shift_code = p_shift_code, machine_id = p_machine_id, start_time = p_start_time, end_time = p_end_time
       where shift_id = p_shift_id
      returning * into v_row;
    end if;
  exception when unique_violation then
    get stacked diagnostics v_constraint = constraint_name;
    perform planning_private.raise_duplicate(v_constraint, 'shiftCode', p_shift_code);
  end;
  perform ops.audit('save_shift', 'planning_shift', v_row.shift_id::text,
                    jsonb_build_object('created', v_created, 'row', to_jsonb(v_row)));
  return v_row;
end
$$;

-- Shifts have no retired state: an unused shift is deleted.
create or replace function planning.retire_shift(p_shift_id bigint) returns planning.shifts
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_row planning.shifts;
begin
  if p_shift_id is null then raise exception 'retireShift needs shiftId' using errcode = 'SF422'; end if;
  select * into v_row from planning.shifts where shift_id = p_shift_id for update;
  if not found then raise exception 'shiftId % does not exist', p_shift_id using errcode = 'SF404'; end if;
  perform planning_private.refuse_if_planned(format('Shift %s', p_shift_id), null, p_shift_id, null);
  delete from planning.shifts where shift_id = p_shift_id;
  perform ops.audit('retire_shift', 'planning_shift', p_shift_id::text, jsonb_build_object('row', to_jsonb(v_row)));
  return v_row;
end
$$;

------------------------------------------------------------------------------
-- Items and changeovers
------------------------------------------------------------------------------

create or replace function planning.save_item(
  p_item_name text, p_external_id text default null, p_item_id bigint default null, p_active boolean default null)
returns planning.wip_items
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_row planning.wip_items;
  v_created boolean := false;
  v_try int;
  v_constraint text;
begin
  perform planning_private.check_text('itemName', p_item_name, 200);
  if p_external_id is not null then perform planning_private.check_text('externalId', p_external_id, 100); end if;
  for v_try in 1..2 loop
    v_row := null;
    begin
      if p_item_id is not null then
        select * into v_row from planning.wip_items where item_id = p_item_id for update;
        if not found then raise exception 'itemId % does not exist', p_item_id using errcode = 'SF404'; end if;
      elsif p_external_id is not null then
        select * into v_row from planning.wip_items where external_id = p_external_id for update;
      end if;
      if v_row.item_id is null then
        insert into planning.wip_items (item_name, external_id, active)
        values (p_item_name, p_external_id, coalesce(p_active, true))
        returning * into v_row;
        v_created := true;
      else
        if p_active is false and v_row.active then
          perform planning_private.refuse_if_item_used(v_row.item_id);
        end if;
        update planning.wip_items
           set item_name = p_item_name, external_id = coalesce(p_external_id, external_id), active = coalesce(p_active, active)
         where item_id = v_row.item_id
        returning * into v_row;
      end if;
      exit;
    exception when unique_violation then
      get stacked diagnostics v_constraint = constraint_name;
      continue when v_try = 1 and v_row.item_id is null and p_item_id is null and v_constraint like '%external_id%';
      perform planning_private.raise_duplicate(v_constraint,
        case when v_constraint like '%external_id%' then 'externalId' else 'itemName' end,
        case when v_constraint like '%external_id%' then p_external_id else p_item_name end);
    end;
  end loop;
  perform ops.audit('save_item', 'planning_item', v_row.item_id::text,
                    jsonb_build_object('created', v_created, 'row', to_jsonb(v_row)));
  return v_row;
end
$$;

-- An item is in use while an operation that is not finished (terminal) makes it.
drop function if exists planning.refuse_if_item_used(bigint);
create or replace function planning_private.refuse_if_item_used(p_item_id bigint) returns void
language plpgsql stable
set search_path = pg_catalog, public
as $$
declare
  v_ops bigint;
begin
  select count(*) into v_ops
    from planning.operations o join planning.op_statuses s on s.code = o.op_status
   where o.op_item_id = p_item_id and not s.is_terminal;
  if v_ops > 0 then
    raise exception 'Item % is in use: % open operation(s) make it', p_item_id, v_ops
      using errcode = 'SF409', hint = 'Complete or retire those operations first.';
  end if;
end
$$;

create or replace function planning.retire_item(p_item_id bigint) returns planning.wip_items
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_row planning.wip_items;
begin
  if p_item_id is null then raise exception 'retireItem needs itemId' using errcode = 'SF422'; end if;
  select * into v_row from planning.wip_items where item_id = p_item_id for update;
  if not found then raise exception 'itemId % does not exist', p_item_id using errcode = 'SF404'; end if;
  perform planning_private.refuse_if_item_used(p_item_id);
  update planning.wip_items set active = false where item_id = p_item_id returning * into v_row;
  perform ops.audit('retire_item', 'planning_item', p_item_id::text, '{}');
  return v_row;
end
$$;

-- Sets the changeover minutes from one item to another; null minutes removes
-- the pair (the planning.default_changeover_minutes setting applies again).
create or replace function planning.set_changeover(p_from_item_id bigint, p_to_item_id bigint, p_minutes numeric)
returns planning.changeovers
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_row planning.changeovers;
begin
  if p_from_item_id is null then raise exception 'fromItemId is required' using errcode = 'SF422'; end if;
  if p_to_item_id is null then raise exception 'toItemId is required' using errcode = 'SF422'; end if;
  if p_from_item_id = p_to_item_id then
    raise exception 'toItemId must differ from fromItemId (the same item needs no changeover)' using errcode = 'SF422';
  end if;
  if p_minutes < 0 or p_minutes > 100000 then
    raise exception 'minutes must be between 0 and 100000' using errcode = 'SF422';
  end if;
  if not exists (select 1 from planning.wip_items where item_id = p_from_item_id) then
    raise exception 'fromItemId % does not exist', p_from_item_id using errcode = 'SF404';
  end if;
  if not exists (select 1 from planning.wip_items where item_id = p_to_item_id) then
    raise exception 'toItemId % does not exist', p_to_item_id using errcode = 'SF404';
  end if;
  if p_minutes is null then
    delete from planning.changeovers where from_item_id = p_from_item_id and to_item_id = p_to_item_id returning * into v_row;
  else
    insert into planning.changeovers (from_item_id, to_item_id, minutes) values (p_from_item_id, p_to_item_id, p_minutes)
    on conflict (from_item_id, to_item_id) do update set minutes = excluded.minutes
    returning * into v_row;
  end if;
  perform ops.audit('set_changeover', 'planning_changeover', format('%s>%s', p_from_item_id, p_to_item_id),
                    jsonb_build_object('minutes', p_minutes));
  return v_row;
end
$$;

------------------------------------------------------------------------------
-- Holidays
------------------------------------------------------------------------------

create or replace function planning.set_holiday(p_holiday_date date, p_description text default '')
returns planning.holiday
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_row planning.holiday;
  v_rows bigint;
begin
  if p_holiday_date is null then raise exception 'holidayDate is required' using errcode = 'SF422'; end if;
  if length(p_description) > 200 then
    raise exception 'description must be at most 200 characters' using errcode = 'SF422';
  end if;
  select count(*) into v_rows from planning.mach_planning where mp_op_proddate = p_holiday_date;
  if v_rows > 0 then
    raise exception 'holidayDate % has % plan row(s)', p_holiday_date, v_rows
      using errcode = 'SF409', hint = 'Move the planned operations to another date first.';
  end if;
  insert into planning.holiday (holiday_date, description) values (p_holiday_date, coalesce(p_description, ''))
  on conflict (holiday_date) do update set description = excluded.description
  returning * into v_row;
  perform ops.audit('set_holiday', 'planning_holiday', p_holiday_date::text, jsonb_build_object('description', v_row.description));
  return v_row;
end
$$;

create or replace function planning.remove_holiday(p_holiday_date date) returns planning.holiday
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_row planning.holiday;
begin
  if p_holiday_date is null then raise exception 'holidayDate is required' using errcode = 'SF422'; end if;
  delete from planning.holiday where holiday_date = p_holiday_date returning * into v_row;
  if not found then raise exception 'holidayDate % is not a holiday', p_holiday_date using errcode = 'SF404'; end if;
  perform ops.audit('remove_holiday', 'planning_holiday', p_holiday_date::text, '{}');
  return v_row;
end
$$;

------------------------------------------------------------------------------
-- Operations
------------------------------------------------------------------------------

-- The item is given by our id or by the ERP's (itemExternalId).
create or replace function planning.save_operation(
  p_op_lot_number text, p_op_qty numeric,
  p_op_item_id bigint default null, p_item_external_id text default null,
  p_op_run_min_per_unit numeric default null, p_op_run_min_total numeric default null,
  p_external_id text default null, p_op_id bigint default null)
returns planning.operations
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_row planning.operations;
  v_item planning.wip_items;
  v_created boolean := false;
  v_try int;
  v_constraint text;
begin
  perform planning_private.check_text('opLotNumber', p_op_lot_number, 100);
  if p_external_id is not null then perform planning_private.check_text('externalId', p_external_id, 100); end if;
  -- Bounded above: NaN and Infinity pass `> 0` (NaN sorts above every
  -- number), and the timeline adds the run time to a shift's start.
  if p_op_qty is null or p_op_qty <= 0 or p_op_qty > 1e9 then
    raise exception 'opQty must be a positive quantity of at most 1,000,000,000' using errcode = 'SF422', detail = format('opQty: %s', p_op_qty);
  end if;
  if p_op_run_min_per_unit < 0 or p_op_run_min_per_unit > 1e6 then
    raise exception 'opRunMinPerUnit must be a number of minutes from 0 to 1,000,000' using errcode = 'SF422', detail = format('opRunMinPerUnit: %s', p_op_run_min_per_unit);
  end if;
  if p_op_run_min_total < 0 or p_op_run_min_total > 1e6 then
    raise exception 'opRunMinTotal must be a number of minutes from 0 to 1,000,000' using errcode = 'SF422', detail = format('opRunMinTotal: %s', p_op_run_min_total);
  end if;
  if p_op_item_id is not null then
    select * into v_item from planning.wip_items where item_id = p_op_item_id;
    if not found then raise exception 'opItemId % does not exist', p_op_item_id using errcode = 'SF404'; end if;
  elsif p_item_external_id is not null then
    select * into v_item from planning.wip_items where external_id = p_item_external_id;
    if not found then
      raise exception 'itemExternalId % does not exist', p_item_external_id
        using errcode = 'SF404', hint = 'Save the item first (saveItem).';
    end if;
  else
    raise exception 'opItemId or itemExternalId is required' using errcode = 'SF422';
  end if;
  if not v_item.active then
    raise exception 'Item % (%) is retired', v_item.item_id, v_item.item_name using errcode = 'SF409';
  end if;

  for v_try in 1..2 loop
    v_row := null;
    begin
      if p_op_id is not null then
        select * into v_row from planning.operations where op_id = p_op_id for update;
        if not found then raise exception 'opId % does not exist', p_op_id using errcode = 'SF404'; end if;
      elsif p_external_id is not null then
        select * into v_row from planning.operations where external_id = p_external_id for update;
      end if;
      if v_row.op_id is null then
        if p_op_run_min_per_unit is null and p_op_run_min_total is null then
          raise exception 'opRunMinPerUnit or opRunMinTotal is required' using errcode = 'SF422';
        end if;
        insert into planning.operations (op_lot_number, op_item_id, op_qty, op_run_min_per_unit, op_run_min_total, external_id)
        values (p_op_lot_number, v_item.item_id, p_op_qty, p_op_run_min_per_unit, p_op_run_min_total, p_external_id)
        returning * into v_row;
        v_created := true;
      else
        if (select is_terminal from planning.op_statuses where code = v_row.op_status) then
          raise exception 'Operation % has the terminal status % and cannot change', v_row.op_id, v_row.op_status
            using errcode = 'SF409', hint = 'Create a new operation for more work.';
        end if;
        update planning.operations
           set op_lot_number = p_op_lot_number, op_item_id = v_item.item_id, op_qty = p_op_qty,
               op_run_min_per_unit = coalesce(p_op_run_min_per_unit, op_run_min_per_unit),
               op_run_min_total = coalesce(p_op_run_min_total, op_run_min_total),
               external_id = coalesce(p_external_id, external_id)
         where op_id = v_row.op_id
        returning * into v_row;
      end if;
      exit;
    exception when unique_violation then
      get stacked diagnostics v_constraint = constraint_name;
      continue when v_try = 1 and v_row.op_id is null and p_op_id is null;
      perform planning_private.raise_duplicate(v_constraint, 'externalId', p_external_id);
    end;
  end loop;
  if coalesce(v_row.op_run_min_total, v_row.op_qty * v_row.op_run_min_per_unit) > 1e6 then
    raise exception 'The run time, opQty × opRunMinPerUnit = % minutes, may be at most 1,000,000 minutes',
      v_row.op_qty * v_row.op_run_min_per_unit using errcode = 'SF422', hint = 'Give opRunMinTotal, or split the lot.';
  end if;
  perform ops.audit('save_operation', 'planning_operation', v_row.op_id::text,
                    jsonb_build_object('created', v_created, 'row', to_jsonb(v_row)));
  return v_row;
end
$$;

-- Retiring sets the terminal status 11 Cancelled: the operation stays in the
-- permanent record. Refused while it is in the plan.
create or replace function planning.retire_operation(p_op_id bigint) returns planning.operations
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_row planning.operations;
begin
  if p_op_id is null then raise exception 'retireOperation needs opId' using errcode = 'SF422'; end if;
  select * into v_row from planning.operations where op_id = p_op_id for update;
  if not found then raise exception 'opId % does not exist', p_op_id using errcode = 'SF404'; end if;
  if v_row.op_status = 11 then
    return v_row;
  end if;
  if (select is_terminal from planning.op_statuses where code = v_row.op_status) then
    raise exception 'Operation % is finished (status %) and cannot be retired', p_op_id, v_row.op_status using errcode = 'SF409';
  end if;
  perform planning_private.refuse_if_planned(format('Operation %s', p_op_id), null, null, p_op_id);
  update planning.operations set op_status = 11 where op_id = p_op_id returning * into v_row;
  perform ops.audit('retire_operation', 'planning_operation', p_op_id::text, jsonb_build_object('from_status', v_row.op_status));
  return v_row;
end
$$;

------------------------------------------------------------------------------
-- Demo and test door: yesterday's plan without superuser settings
------------------------------------------------------------------------------

-- Stages plan rows on the previous working date (before p_today, default the
-- plant's today), as if they had been planned then and not yet decided: the
-- carryover shows at the next supervisor check. Only past dates are accepted
-- here; the usual triggers check everything else. p_rows is a JSON array of
-- {op_id, machine_id, shift_id, sequence}. Admin only.
create or replace function planning.stage_past_plan(p_rows jsonb, p_date date default null) returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_date date := coalesce(p_date, planning.previous_working_date(ops.plant_today()));
  v_count int;
begin
  if p_rows is null or jsonb_typeof(p_rows) <> 'array' or jsonb_array_length(p_rows) = 0 then
    raise exception 'rows must be a non-empty JSON array of {op_id, machine_id, shift_id, sequence}' using errcode = 'SF422';
  end if;
  if jsonb_array_length(p_rows) > 1000 then
    raise exception 'rows: at most 1000 rows per call' using errcode = 'SF422';
  end if;
  if v_date >= ops.plant_today() then
    raise exception 'date % is not in the past; plan today and later with saveSequence', v_date using errcode = 'SF422';
  end if;
  if exists (select 1 from jsonb_array_elements(p_rows) r
              where jsonb_typeof(r) <> 'object' or not (r ?& array['op_id', 'machine_id', 'shift_id', 'sequence'])
                 or exists (select 1 from jsonb_each(r) f
                             where f.key in ('op_id', 'machine_id', 'shift_id', 'sequence')
                               and (jsonb_typeof(f.value) <> 'number' or f.value::text !~ '^[1-9][0-9]{0,17}$'))) then
    raise exception 'rows: every row needs op_id, machine_id, shift_id and sequence as positive whole numbers' using errcode = 'SF422';
  end if;
  -- The guard's door (planning.past_allowed): a temp table made by the
  -- schema owner, which this function runs as; dropped below, and at commit.
  if not ops_private.own_temp_table('planning_past_door') then
    create temp table planning_past_door () on commit drop;
  end if;
  perform set_config('planning.reason', 'stage_past_plan', true);
  begin
  insert into planning.mach_planning (mp_op_id, mp_machine_id, mp_shift_id, mp_op_proddate, mp_sequence, mp_op_status)
  select (r ->> 'op_id')::bigint, (r ->> 'machine_id')::bigint, (r ->> 'shift_id')::bigint, v_date,
         (r ->> 'sequence')::int, o.op_status
    from jsonb_array_elements(p_rows) r
    join planning.operations o on o.op_id = (r ->> 'op_id')::bigint
  on conflict (mp_op_id, mp_op_proddate) do nothing;  -- staged again: a no-op
  get diagnostics v_count = row_count;
  exception when unique_violation then
    raise exception 'rows: two operations in one slot (machine, shift, % and sequence)', v_date using errcode = 'SF409';
  end;
  drop table pg_temp.planning_past_door;
  perform set_config('planning.reason', '', true);
  if v_count < jsonb_array_length(p_rows) and exists (
       select 1 from jsonb_array_elements(p_rows) r
        where not exists (select 1 from planning.operations where op_id = (r ->> 'op_id')::bigint)) then
    raise exception 'rows: an op_id does not exist' using errcode = 'SF404';
  end if;
  perform ops.audit('stage_past_plan', 'planning_plan', v_date::text, jsonb_build_object('rows', v_count));
  return v_count;
end
$$;

------------------------------------------------------------------------------
-- GraphQL names, grants
------------------------------------------------------------------------------

comment on function planning.save_machine(text, text, text, bigint, boolean) is
  'Creates a machine, changes it (machineId), or upserts it by the ERP key (externalId). active false retires it (refused while planned).';
comment on function planning.retire_machine(bigint) is 'Retires a machine (active false). Refused while it has plan rows.';
comment on function planning.save_shift(text, time, time, bigint, bigint) is
  'Creates a shift (of a machine, or of the plant when machineId is null) or changes it (shiftId). An end before the start crosses midnight.';
comment on function planning.retire_shift(bigint) is 'Deletes a shift no plan row uses; refused with the plan rows that use it.';
comment on function planning.save_item(text, text, bigint, boolean) is
  'Creates an item, changes it (itemId), or upserts it by the ERP key (externalId).';
comment on function planning.retire_item(bigint) is 'Retires an item (active false). Refused while an open operation makes it.';
comment on function planning.set_changeover(bigint, bigint, numeric) is
  'Sets the changeover minutes from one item to another; null minutes removes the pair (the default setting applies).';
comment on function planning.set_holiday(date, text) is 'Makes a date a holiday (or changes its description). Refused while the date has plan rows.';
comment on function planning.remove_holiday(date) is 'Makes a holiday a working date again.';
comment on function planning.save_operation(text, numeric, bigint, text, numeric, numeric, text, bigint) is
  'Creates an operation, changes it (opId), or upserts it by the ERP key (externalId). The item by opItemId or itemExternalId. Finished operations cannot change.';
comment on function planning.retire_operation(bigint) is
  'Retires an operation: the terminal status 11 Cancelled; it stays in the permanent record. Refused while it is in the plan.';
comment on function planning.stage_past_plan(jsonb, date) is
  'Demo and test door: stages plan rows on a past date (default the previous working date) so the carryover shows. Admin only; audited.';

grant execute on function planning.save_machine(text, text, text, bigint, boolean), planning.retire_machine(bigint)
  to shopfloor_integration, shopfloor_admin;
grant execute on function planning.save_item(text, text, bigint, boolean), planning.retire_item(bigint),
  planning.save_operation(text, numeric, bigint, text, numeric, numeric, text, bigint), planning.retire_operation(bigint),
  planning.set_changeover(bigint, bigint, numeric)
  to shopfloor_integration, shopfloor_planner;
grant execute on function planning.save_shift(text, time, time, bigint, bigint), planning.retire_shift(bigint),
  planning.set_holiday(date, text), planning.remove_holiday(date)
  to shopfloor_planner, shopfloor_admin;
grant execute on function planning.stage_past_plan(jsonb, date) to shopfloor_admin;

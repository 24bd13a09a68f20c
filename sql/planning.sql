-- planning: the machine plan (machine-planning.md, issue 6). Re-applied after
-- every migrate: everything is CREATE OR REPLACE.
--
-- Refusals (SQLSTATE class SF):
--   SF404 unknown machine, shift or operation
--   SF409 conflict: completed/unplannable operation, operation planned elsewhere that date
--   SF422 invalid input: past date, bad decisions list, duplicate operations, future "today"
--   SF428 carryover pending: the previous working date's plan has not been fully decided
--         (save_sequence for today, and resolve_carryover called without a decision for
--         every pending row)
--
-- Lock order (so that two actions cannot deadlock): advisory lock
-- 'planning.carryover', then advisory sequence locks (machine, shift, date) in
-- sorted order, then operations by op_id, then mach_planning rows by mp_id.

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------

-- The status the cleanup and a carryover rejection set ("was planned but not
-- executed"), and the one save_sequence turns back into Planned.
create or replace function planning.paused_status() returns smallint
language sql immutable as $$ select 6::smallint $$;
create or replace function planning.planned_status() returns smallint
language sql immutable as $$ select 0::smallint $$;
comment on function planning.paused_status() is E'@behavior -queryField';
comment on function planning.planned_status() is E'@behavior -queryField';

-- Test and repair hatch: a superuser session may set planning.allow_past = on
-- to write past rows (tests of the cleanup and the carryover). The one other
-- door is planning.stage_past_plan's: while it writes, its transaction holds
-- the temp table planning_past_door, made by the schema owner. Anyone can set
-- the setting, and every SECURITY DEFINER function runs as the owner, so
-- neither of those alone opens anything (a supervisor who set it could make
-- resolve_carryover write past rows).
create or replace function planning.past_allowed() returns boolean
language sql stable as $$
  select (coalesce(current_setting('planning.allow_past', true), '') = 'on'
          and coalesce((select rolsuper from pg_catalog.pg_roles where rolname = session_user), false)
          and coalesce((select rolsuper from pg_catalog.pg_roles where rolname = current_user), false))
      or exists (select 1 from pg_catalog.pg_class c
                  where c.oid = pg_catalog.to_regclass('pg_temp.planning_past_door')
                    and c.relowner = (select nspowner from pg_catalog.pg_namespace where nspname = 'planning'))
$$;
comment on function planning.past_allowed() is E'@behavior -queryField';

drop function if exists planning.lock_sequence(bigint, bigint, date);
create or replace function planning_private.lock_sequence(p_machine bigint, p_shift bigint, p_date date) returns void
language sql volatile as $$
  select pg_advisory_xact_lock(hashtextextended(format('planning.seq:%s:%s:%s', p_machine, p_shift, p_date), 0))
$$;

-- The machine a caller names: unknown SF404; inactive SF409 (named by code
-- and id) when the caller is to plan it.
drop function if exists planning.check_machine(bigint, boolean);
create or replace function planning_private.check_machine(p_machine bigint, p_to_plan boolean)
returns void
language plpgsql stable
set search_path = pg_catalog, public
as $$
declare
  v_machine planning.machines;
begin
  select * into v_machine from planning.machines where machine_id = p_machine;
  if not found then
    raise exception 'Machine % does not exist', p_machine using errcode = 'SF404';
  elsif p_to_plan and not v_machine.active then
    raise exception 'Machine % (id %) is inactive: it cannot be planned', v_machine.machine_code, p_machine
      using errcode = 'SF409', hint = 'Plan an active machine, or an admin sets this one active again.';
  end if;
end
$$;

------------------------------------------------------------------------------
-- Triggers: the rules the database enforces
------------------------------------------------------------------------------

-- No past dates, only plannable operations, no inactive machine, the shift
-- must be the machine's or the plant's, and the status column mirrors the
-- operation's status. It runs once per row, so it is lean: no SET clause (its
-- names are schema-qualified) and no clock or setting lookup for a date that
-- is surely not past.
create or replace function planning_private.tg_mach_planning__guard() returns trigger
language plpgsql
as $$
declare
  v_status smallint;
  v_plannable boolean;
  v_shift_machine bigint;
  v_shift_found boolean;
  v_machine_found boolean;
  v_machine text;
  v_active boolean;
  v_today date;
begin
  -- the plant's date is at most the UTC date + 1 (zones are under 14 h ahead)
  if new.mp_op_proddate <= (pg_catalog.now() at time zone 'UTC')::date + 1 then
    v_today := ops.plant_today();
    if new.mp_op_proddate < v_today and not planning.past_allowed() then
      -- A past row waiting for the carryover decision may still follow its
      -- operation's status; nothing else about it may change.
      if tg_op = 'INSERT'
         or (new.mp_op_id, new.mp_machine_id, new.mp_shift_id, new.mp_op_proddate, new.mp_sequence)
            is distinct from (old.mp_op_id, old.mp_machine_id, old.mp_shift_id, old.mp_op_proddate, old.mp_sequence) then
        raise exception 'The plan holds no past dates: % is before today (%)', new.mp_op_proddate, v_today
          using errcode = 'SF422', hint = 'Plan today or a later date.';
      end if;
    end if;
  end if;

  -- one lookup for the operation, the machine and the shift
  select o.op_status, s.may_be_planned, m.machine_id is not null, m.machine_code, m.active,
         sh.shift_id is not null, sh.machine_id
    into v_status, v_plannable, v_machine_found, v_machine, v_active, v_shift_found, v_shift_machine
    from planning.operations o
    join planning.op_statuses s on s.code = o.op_status
    left join planning.machines m on m.machine_id = new.mp_machine_id
    left join planning.shifts sh on sh.shift_id = new.mp_shift_id
   where o.op_id = new.mp_op_id;
  if not found then
    raise exception 'Operation % does not exist', new.mp_op_id using errcode = 'SF404';
  end if;
  if not v_plannable then
    raise exception 'Operation % has status % and may not be in the plan', new.mp_op_id, v_status
      using errcode = 'SF409';
  end if;
  new.mp_op_status := v_status;

  -- nothing is planned onto an inactive machine: a new row, or one moved or carried
  if tg_op = 'INSERT' or new.mp_machine_id <> old.mp_machine_id or new.mp_op_proddate <> old.mp_op_proddate then
    if not v_machine_found then
      raise exception 'Machine % does not exist', new.mp_machine_id using errcode = 'SF404';
    elsif not v_active then
      raise exception 'Machine % (id %) is inactive: it cannot be planned', v_machine, new.mp_machine_id
        using errcode = 'SF409', hint = 'Plan an active machine, or an admin sets this one active again.';
    end if;
  end if;
  if tg_op = 'INSERT' or new.mp_shift_id <> old.mp_shift_id or new.mp_machine_id <> old.mp_machine_id then
    if not v_shift_found then
      raise exception 'Shift % does not exist', new.mp_shift_id using errcode = 'SF404';
    end if;
    if v_shift_machine is not null and v_shift_machine <> new.mp_machine_id then
      raise exception 'Shift % belongs to another machine', new.mp_shift_id using errcode = 'SF422';
    end if;
  end if;
  return new;
end
$$;

create or replace trigger mach_planning_guard
  before insert or update on planning.mach_planning
  for each row execute function planning_private.tg_mach_planning__guard();
drop function if exists planning.mach_planning_guard();

-- Every change of the plan is logged, whoever makes it, once per statement
-- (transition tables: one insert into the log per statement, not per row).
-- Functions name the reason in the transaction-local setting planning.reason.
create or replace function planning_private.tg_mach_planning__log() returns trigger
language plpgsql security definer
set search_path = pg_catalog, public
as $$
declare
  v_reason text := coalesce(nullif(current_setting('planning.reason', true), ''), 'direct');
  v_actor text := ops.current_actor();
begin
  if tg_op = 'DELETE' then
    insert into planning.planning_log (actor, reason, operation, mp_id, op_id, before, after)
    select v_actor, v_reason, 'delete', o.mp_id, o.mp_op_id, to_jsonb(o), null
      from old_rows o order by o.mp_id;
  elsif tg_op = 'UPDATE' then
    insert into planning.planning_log (actor, reason, operation, mp_id, op_id, before, after)
    select v_actor, v_reason, 'update', n.mp_id, n.mp_op_id, to_jsonb(o), to_jsonb(n)
      from old_rows o join new_rows n on n.mp_id = o.mp_id
     where to_jsonb(o) <> to_jsonb(n)
     order by n.mp_id;
  else
    insert into planning.planning_log (actor, reason, operation, mp_id, op_id, before, after)
    select v_actor, v_reason, 'insert', n.mp_id, n.mp_op_id, null, to_jsonb(n)
      from new_rows n order by n.mp_id;
  end if;
  return null;
end
$$;

-- (Transition tables need one trigger per event.)
create or replace trigger mach_planning_log_insert
  after insert on planning.mach_planning referencing new table as new_rows
  for each statement execute function planning_private.tg_mach_planning__log();
create or replace trigger mach_planning_log_update
  after update on planning.mach_planning referencing old table as old_rows new table as new_rows
  for each statement execute function planning_private.tg_mach_planning__log();
create or replace trigger mach_planning_log_delete
  after delete on planning.mach_planning referencing old table as old_rows
  for each statement execute function planning_private.tg_mach_planning__log();
drop function if exists planning.mach_planning_log();

-- updated_at on every update (the shared helper), status_changed_at when the status changes.
create or replace trigger operations_updated_at
  before update on planning.operations
  for each row execute function ops_private.tg__updated_at();

create or replace function planning_private.tg_operations__status_changed_at() returns trigger
language plpgsql as $$
begin
  new.status_changed_at := now();
  return new;
end
$$;

create or replace trigger operations_status_changed_at
  before update of op_status on planning.operations
  for each row when (old.op_status is distinct from new.op_status)
  execute function planning_private.tg_operations__status_changed_at();
drop trigger if exists operations_touch on planning.operations;
drop function if exists planning.operations_touch();

-- When an operation's status becomes one that may not be planned (6 paused,
-- 10 complete, or any code so flagged) its plan rows go, in the same
-- transaction, logged; otherwise the plan rows mirror the new status.
create or replace function planning_private.tg_operations__status_changed() returns trigger
language plpgsql security definer
set search_path = pg_catalog, public
as $$
declare
  v_plannable boolean;
  v_prev text := current_setting('planning.reason', true);
begin
  select may_be_planned into v_plannable from planning.op_statuses where code = new.op_status;
  perform set_config('planning.reason',
                     coalesce(nullif(v_prev, ''), 'status_change') || ':status ' || new.op_status, true);
  if v_plannable then
    update planning.mach_planning set mp_op_status = new.op_status
     where mp_op_id = new.op_id and mp_op_status <> new.op_status;
  else
    delete from planning.mach_planning where mp_op_id = new.op_id;
  end if;
  perform set_config('planning.reason', coalesce(v_prev, ''), true);
  return null;
end
$$;

create or replace trigger operations_status_changed
  after update of op_status on planning.operations
  for each row when (old.op_status is distinct from new.op_status)
  execute function planning_private.tg_operations__status_changed();
drop function if exists planning.operations_status_changed();

------------------------------------------------------------------------------
-- Working dates and the carryover
------------------------------------------------------------------------------

-- The working date before p_date: skips weekdays not in the
-- planning.working_weekdays setting (ISO weekdays, seeded Monday..Saturday) and
-- holidays; null when none of the 30 days before p_date is a working date.
create or replace function planning.previous_working_date(p_date date) returns date
language sql stable strict
set search_path = pg_catalog, public
as $$
  select d::date
    from generate_series(p_date - 1, p_date - 30, interval '-1 day') d
   where extract(isodow from d)::int in (
           select jsonb_array_elements_text(ops.setting_checked('planning.working_weekdays', 'array', 'a list of ISO weekdays', true))::int)
     and not exists (select 1 from planning.holiday h where h.holiday_date = d::date)
   order by d desc
   limit 1
$$;
comment on function planning.previous_working_date(date) is
  'The working date before p_date (skips non-working weekdays and holidays); null if none within 30 days.';

-- Past rows on or after this date wait for the supervisor; older ones are cleaned up.
create or replace function planning.carryover_from(p_today date) returns date
language sql stable strict
as $$ select coalesce(planning.previous_working_date(p_today), p_today) $$;
comment on function planning.carryover_from(date) is E'@behavior -queryField';

create or replace function planning.check_today(p_today date) returns date
language plpgsql stable
as $$
begin
  if p_today is null then
    return ops.plant_today();
  elsif p_today > ops.plant_today() then
    raise exception 'Today (%) cannot be after the plant''s date (%)', p_today, ops.plant_today()
      using errcode = 'SF422';
  end if;
  return p_today;
end
$$;
comment on function planning.check_today(date) is E'@behavior -queryField';

-- The plan rows that need a decision: those of the previous working date (and
-- of any non-working day since) whose operations are incomplete.
create or replace function planning.pending_carryover(p_today date default null)
returns setof planning.mach_planning
language sql stable security definer
set search_path = pg_catalog, public
as $$
  select mp.*
    from planning.mach_planning mp
    join planning.operations o on o.op_id = mp.mp_op_id
    join planning.op_statuses s on s.code = o.op_status
   where mp.mp_op_proddate >= planning.carryover_from(coalesce(p_today, ops.plant_today()))
     and mp.mp_op_proddate < coalesce(p_today, ops.plant_today())
     and not s.is_terminal
   order by mp.mp_op_proddate, mp.mp_machine_id, mp.mp_shift_id, mp.mp_sequence
$$;
comment on function planning.pending_carryover(date) is
  'Plan rows of the previous working date whose operations are incomplete: the supervisor must carry or reject each.';

-- The daily cleanup: past rows older than the previous working date go, and
-- their operations become paused (6) unless they are still planned on another
-- date or already terminal. Returns how many plan rows were removed.
create or replace function planning.cleanup(p_today date default null) returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_today date := planning.check_today(p_today);
  v_cutoff date := planning.carryover_from(v_today);
  v_ops bigint[];
  v_removed int;
begin
  perform set_config('planning.reason', 'cleanup', true);
  select array_agg(op_id order by op_id) into v_ops from (
    select o.op_id from planning.operations o
     where o.op_id in (select mp_op_id from planning.mach_planning where mp_op_proddate < v_cutoff)
     order by o.op_id
     for update of o) locked;
  if v_ops is null then
    return 0;
  end if;
  perform 1 from planning.mach_planning where mp_op_proddate < v_cutoff order by mp_id for update;
  with gone as (
    delete from planning.mach_planning where mp_op_proddate < v_cutoff returning mp_op_id
  ) select count(*) into v_removed from gone;

  update planning.operations o set op_status = planning.paused_status()
   where o.op_id = any (v_ops)
     and o.op_status <> planning.paused_status()
     and not exists (select 1 from planning.op_statuses s where s.code = o.op_status and s.is_terminal)
     and not exists (select 1 from planning.mach_planning mp where mp.mp_op_id = o.op_id);

  perform ops.audit('planning_cleanup', 'plan', v_today::text,
                    jsonb_build_object('before', v_cutoff, 'removed', v_removed, 'operations', to_jsonb(v_ops)));
  return v_removed;
end
$$;
comment on function planning.cleanup(date) is E'@name planningCleanup\nRemoves plan rows older than the previous working date and pauses their operations (status 6) unless planned elsewhere. Returns how many rows it removed.';

-- For the supervisor's login screen: runs the cleanup due, then returns what
-- needs a decision (the blocking modal).
create or replace function planning.supervisor_login(p_today date default null)
returns setof planning.mach_planning
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_today date := planning.check_today(p_today);
begin
  perform planning.cleanup(v_today);
  return query select * from planning.pending_carryover(v_today);
end
$$;
comment on function planning.supervisor_login(date) is
  'Runs the cleanup due and returns the plan rows awaiting a carryover decision (carry or reject each with resolveCarryover).';

-- Decides every pending row at once: carry (to today, after today's sequence of
-- the same machine and shift) or reject (operation paused, row deleted).
create or replace function planning.resolve_carryover(p_today date, p_decisions jsonb)
returns setof planning.planning_log
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_today date := planning.check_today(p_today);
  v_first_log bigint;
  v_missing bigint[];
  v_unknown bigint[];
  v_bad bigint[];
  v_machines text;
  d record;
  r planning.mach_planning;
  v_next int;
begin
  if p_decisions is null or jsonb_typeof(p_decisions) <> 'array' then
    raise exception 'Decisions must be a JSON array of {mp_id, decision}' using errcode = 'SF422';
  end if;
  if not ops_private.own_temp_table('planning_decisions') then
    create temp table pg_temp.planning_decisions (mp_id bigint primary key, decision text not null) on commit drop;
  end if;
  truncate pg_temp.planning_decisions;
  begin
    insert into pg_temp.planning_decisions (mp_id, decision)
    select (e ->> 'mp_id')::bigint, e ->> 'decision' from jsonb_array_elements(p_decisions) e;
  exception
    when unique_violation then
      raise exception 'A plan row is decided twice' using errcode = 'SF422';
    when not_null_violation or invalid_text_representation or numeric_value_out_of_range then
      raise exception 'Every decision needs an mp_id and a decision' using errcode = 'SF422';
  end;
  if exists (select 1 from pg_temp.planning_decisions where decision not in ('carry', 'reject')) then
    raise exception 'A decision is carry or reject' using errcode = 'SF422';
  end if;

  perform pg_advisory_xact_lock(hashtextextended('planning.carryover', 0));
  -- the sequences rows are carried into, in a fixed order
  for d in select distinct mp_machine_id, mp_shift_id from planning.pending_carryover(v_today)
            order by 1, 2 loop
    perform planning_private.lock_sequence(d.mp_machine_id, d.mp_shift_id, v_today);
  end loop;
  perform 1 from planning.operations o
   where o.op_id in (select mp_op_id from planning.pending_carryover(v_today))
   order by o.op_id for update;
  perform 1 from planning.mach_planning mp
   where mp.mp_id in (select mp_id from planning.pending_carryover(v_today))
   order by mp.mp_id for update;

  select array_agg(mp_id order by mp_id) into v_unknown
    from pg_temp.planning_decisions where mp_id not in (select mp_id from planning.pending_carryover(v_today));
  if v_unknown is not null then
    raise exception 'Not pending a carryover decision: plan rows %', v_unknown using errcode = 'SF422',
      hint = 'Call pending_carryover for the rows that need a decision.';
  end if;
  select array_agg(mp_id order by mp_id) into v_missing
    from planning.pending_carryover(v_today) where mp_id not in (select mp_id from pg_temp.planning_decisions);
  if v_missing is not null then
    raise exception 'Every pending carryover needs a decision; missing plan rows %', v_missing
      using errcode = 'SF428', hint = 'Decide carry or reject for each row; nothing was changed.';
  end if;

  -- a rejected operation leaves the plan completely, so it cannot also be carried
  select array_agg(op_id order by op_id) into v_bad from (
    select mp.mp_op_id as op_id from pg_temp.planning_decisions pd join planning.mach_planning mp using (mp_id)
     group by mp.mp_op_id having count(distinct pd.decision) > 1) both_ways;
  if v_bad is not null then
    raise exception 'Operations % are both carried and rejected', v_bad[1:20] using errcode = 'SF422',
      hint = 'Reject pauses the operation and removes all its plan rows: decide its rows the same way.';
  end if;
  select array_agg(pd.mp_id order by pd.mp_id), string_agg(distinct m.machine_code, ', ')
    into v_bad, v_machines
    from pg_temp.planning_decisions pd
    join planning.mach_planning mp using (mp_id)
    join planning.machines m on m.machine_id = mp.mp_machine_id
   where pd.decision = 'carry' and not m.active;
  if v_bad is not null then
    raise exception 'Plan rows % cannot be carried: machine(s) % inactive', v_bad[1:20], left(v_machines, 200)
      using errcode = 'SF409', hint = 'Reject them: the operations are paused and can be planned on an active machine.';
  end if;

  select coalesce(max(log_id), 0) into v_first_log from planning.planning_log;
  -- in the running order the rows had (day, machine, shift, sequence): carried
  -- rows join today's sequence in that order
  for d in select pd.mp_id, pd.decision from pg_temp.planning_decisions pd join planning.mach_planning mp using (mp_id)
            order by mp.mp_op_proddate, mp.mp_machine_id, mp.mp_shift_id, mp.mp_sequence, pd.mp_id loop
    select * into r from planning.mach_planning where mp_id = d.mp_id;
    if d.decision = 'carry' then
      if exists (select 1 from planning.mach_planning where mp_op_id = r.mp_op_id and mp_op_proddate = v_today) then
        -- already in today's plan: the past row is merely removed
        perform set_config('planning.reason', 'carryover:carry (already planned today)', true);
        delete from planning.mach_planning where mp_id = r.mp_id;
      else
        perform set_config('planning.reason', 'carryover:carry', true);
        select coalesce(max(mp_sequence), 0) + 1 into v_next from planning.mach_planning
         where mp_machine_id = r.mp_machine_id and mp_shift_id = r.mp_shift_id and mp_op_proddate = v_today;
        update planning.mach_planning
           set mp_op_proddate = v_today, mp_sequence = v_next,
               planned_by = ops.current_actor(), planned_at = now()
         where mp_id = r.mp_id;
      end if;
    else
      -- the spec: reject pauses the job and deletes it from the plan
      -- completely; the status change removes its later rows (logged as
      -- carryover:reject:status 6)
      perform set_config('planning.reason', 'carryover:reject', true);
      delete from planning.mach_planning where mp_id = r.mp_id;
      update planning.operations set op_status = planning.paused_status()
       where op_id = r.mp_op_id and op_status <> planning.paused_status();
    end if;
  end loop;
  perform set_config('planning.reason', '', true);
  perform ops.audit('resolve_carryover', 'plan', v_today::text, jsonb_build_object('decisions', p_decisions));
  return query select * from planning.planning_log where log_id > v_first_log order by log_id;
end
$$;
comment on function planning.resolve_carryover(date, jsonb) is
  'Decides every pending carryover row at once: [{"mp_id": 1, "decision": "carry"|"reject"}]. All or nothing; refuses with SF428 when a pending row has no decision. Returns the log rows written.';

------------------------------------------------------------------------------
-- Planning a sequence
------------------------------------------------------------------------------

create or replace function planning.save_sequence(p_machine bigint, p_shift bigint, p_date date, p_op_ids bigint[])
returns setof planning.mach_planning
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_today date := ops.plant_today();
  v_bad bigint[];
  v_new bigint[];     -- operations new to this sequence, in sequence order
  v_new_seq int[];    -- their places
  v_new_mp bigint[];  -- their plan rows' ids, drawn before the insert
  v_shift_machine bigint;
begin
  if p_machine is null or p_shift is null or p_date is null or p_op_ids is null then
    raise exception 'save_sequence needs a machine, a shift, a date and a list of operations' using errcode = 'SF422';
  end if;
  if p_date < v_today then
    raise exception 'The plan holds no past dates: % is before today (%)', p_date, v_today
      using errcode = 'SF422', hint = 'Plan today or a later date.';
  end if;
  if array_position(p_op_ids, null) is not null then
    raise exception 'The list of operations contains a null' using errcode = 'SF422';
  end if;
  select array_agg(x order by x) into v_bad from (select x from unnest(p_op_ids) x group by x having count(*) > 1) d;
  if v_bad is not null then
    raise exception 'An operation appears twice in the sequence: %', array_to_string(v_bad[1:20], ', ')
      using errcode = 'SF422', hint = 'Each operation has one place in a sequence.';
  end if;
  -- an inactive machine's sequence may still be cleared (an empty list)
  perform planning_private.check_machine(p_machine, cardinality(p_op_ids) > 0);
  select machine_id into v_shift_machine from planning.shifts where shift_id = p_shift;
  if not found then
    raise exception 'Shift % does not exist', p_shift using errcode = 'SF404';
  elsif v_shift_machine is not null and v_shift_machine <> p_machine then
    raise exception 'Shift % belongs to another machine', p_shift using errcode = 'SF422';
  end if;

  perform planning_private.lock_sequence(p_machine, p_shift, p_date);
  if p_date = v_today and exists (select 1 from planning.pending_carryover(v_today)) then
    raise exception 'A carryover from % is pending: today''s plan cannot change until a supervisor decides it',
      planning.previous_working_date(v_today) using errcode = 'SF428',
      hint = 'A supervisor resolves it with resolve_carryover.';
  end if;

  -- lock the operations of the old and the new sequence, by id (one array:
  -- an OR of the two lists would walk every operation)
  perform 1 from planning.operations o
   where o.op_id = any (array(
           select unnest(p_op_ids)
           union
           select mp_op_id from planning.mach_planning
            where mp_machine_id = p_machine and mp_shift_id = p_shift and mp_op_proddate = p_date))
   order by o.op_id for update;

  select array_agg(x order by x) into v_bad from unnest(p_op_ids) x
   where not exists (select 1 from planning.operations where op_id = x);
  if v_bad is not null then
    raise exception 'Operations % do not exist', v_bad using errcode = 'SF404';
  end if;
  select array_agg(o.op_id order by o.op_id) into v_bad
    from planning.operations o join planning.op_statuses s on s.code = o.op_status
   where o.op_id = any (p_op_ids) and (s.is_terminal or (not s.may_be_planned and o.op_status <> planning.paused_status()));
  if v_bad is not null then
    raise exception 'Operations % are complete or may not be planned', v_bad using errcode = 'SF409';
  end if;
  select array_agg(distinct mp.mp_op_id order by mp.mp_op_id) into v_bad
    from unnest(p_op_ids) x(op_id)
    join planning.mach_planning mp on mp.mp_op_id = x.op_id and mp.mp_op_proddate = p_date
   where (mp.mp_machine_id, mp.mp_shift_id) <> (p_machine, p_shift);
  if v_bad is not null then
    raise exception 'Operations % are already planned elsewhere on %', v_bad, p_date using errcode = 'SF409';
  end if;

  perform 1 from planning.mach_planning
   where mp_machine_id = p_machine and mp_shift_id = p_shift and mp_op_proddate = p_date
   order by mp_id for update;

  perform set_config('planning.reason', 'save_sequence', true);
  delete from planning.mach_planning
   where mp_machine_id = p_machine and mp_shift_id = p_shift and mp_op_proddate = p_date
     and mp_op_id <> all (p_op_ids);
  set constraints planning.mach_planning_slot_key deferred;
  update planning.mach_planning mp
     set mp_sequence = x.ord, planned_by = ops.current_actor(), planned_at = now()
    from unnest(p_op_ids) with ordinality x(op_id, ord)
   where mp.mp_op_id = x.op_id and mp.mp_machine_id = p_machine and mp.mp_shift_id = p_shift
     and mp.mp_op_proddate = p_date and mp.mp_sequence <> x.ord;

  -- The new rows' ids are drawn first, so that a re-planned paused operation's
  -- status entry can name its plan row and come before the row's insert in the log.
  select coalesce(array_agg(x.op_id order by x.ord), '{}'), coalesce(array_agg(x.ord order by x.ord), '{}')
    into v_new, v_new_seq
    from unnest(p_op_ids) with ordinality x(op_id, ord)
   where not exists (select 1 from planning.mach_planning mp
                      where mp.mp_op_id = x.op_id and mp.mp_machine_id = p_machine
                        and mp.mp_shift_id = p_shift and mp.mp_op_proddate = p_date);
  v_new_mp := array(select nextval(pg_get_serial_sequence('planning.mach_planning', 'mp_id'))
                      from generate_series(1, cardinality(v_new)));
  -- paused operations come back as planned (6 -> 0): a status entry of their
  -- own in the log (a paused operation has no plan row, so it is always new here)
  with replanned as (
    update planning.operations set op_status = planning.planned_status()
     where op_id = any (p_op_ids) and op_status = planning.paused_status()
    returning op_id
  )
  insert into planning.planning_log (actor, reason, operation, mp_id, op_id, before, after)
  select ops.current_actor(), 'save_sequence:status ' || planning.planned_status(), 'status', n.mp_id, r.op_id,
         jsonb_build_object('op_status', planning.paused_status()), jsonb_build_object('op_status', planning.planned_status())
    from replanned r join unnest(v_new, v_new_mp) n(op_id, mp_id) on n.op_id = r.op_id
   order by n.mp_id;
  insert into planning.mach_planning (mp_id, mp_op_id, mp_machine_id, mp_shift_id, mp_op_proddate, mp_sequence, mp_op_status, planned_by)
  overriding system value
  select n.mp_id, n.op_id, p_machine, p_shift, p_date, n.seq, o.op_status, ops.current_actor()
    from unnest(v_new, v_new_mp, v_new_seq) n(op_id, mp_id, seq)
    join planning.operations o on o.op_id = n.op_id
   order by n.mp_id;
  set constraints planning.mach_planning_slot_key immediate;
  perform set_config('planning.reason', '', true);
  perform ops.audit('save_sequence', 'plan', format('%s/%s/%s', p_machine, p_shift, p_date),
                    jsonb_build_object('machine', p_machine, 'shift', p_shift, 'date', p_date, 'op_ids', to_jsonb(p_op_ids)));

  return query select * from planning.mach_planning
   where mp_machine_id = p_machine and mp_shift_id = p_shift and mp_op_proddate = p_date
   order by mp_sequence;
end
$$;
comment on function planning.save_sequence(bigint, bigint, date, bigint[]) is
  'Replaces the sequence of one machine, shift and date with the given operations, in order. Paused operations become planned (0), logged as a status entry of their own. Refused for past dates, inactive machines (SF409; an empty list may still clear their sequence), complete operations, operations planned elsewhere that date, and today while a carryover is pending (SF428).';

-- Every pending operation (not terminal; paused included) that is not in that
-- date's plan, filtered by item name and lot number (case-insensitive, contains),
-- in op_id order, a page at a time when the board asks for one (p_limit rows
-- after p_after_op_id, the last op_id of the previous page).
-- p_machine and p_shift name the sequence being edited: they are checked
-- (unknown machine or shift SF404, an inactive machine SF409, a shift of
-- another machine SF422) but do not narrow the list, because the data model
-- has no item-to-machine routing: any pending operation may be planned on any
-- machine. An operation planned on any machine or shift that date is left
-- out, since saving it would be refused.
drop function if exists planning.available_jobs(date, bigint, bigint, text, text);
create or replace function planning.available_jobs(
  p_date date, p_machine bigint default null, p_shift bigint default null,
  p_item text default null, p_lot text default null,
  p_after_op_id bigint default null, p_limit integer default null)
returns setof planning.operations
language plpgsql stable security definer
set search_path = pg_catalog, public
as $$
declare
  v_excluded smallint[];
  v_items bigint[];
  v_shift_machine bigint;
begin
  if p_date is null then
    raise exception 'available_jobs needs a date' using errcode = 'SF422';
  end if;
  if p_limit is not null and p_limit < 1 then
    raise exception 'available_jobs: limit must be at least 1 (or null for every row), not %', p_limit
      using errcode = 'SF422';
  end if;
  if p_machine is not null then
    perform planning_private.check_machine(p_machine, true);
  end if;
  if p_shift is not null then
    select machine_id into v_shift_machine from planning.shifts where shift_id = p_shift;
    if not found then
      raise exception 'Shift % does not exist', p_shift using errcode = 'SF404';
    elsif p_machine is not null and v_shift_machine is not null and v_shift_machine <> p_machine then
      raise exception 'Shift % belongs to machine %, not to machine %', p_shift, v_shift_machine, p_machine
        using errcode = 'SF422';
    end if;
  end if;
  -- the codes that are not pending: terminal, or unplannable and not paused
  v_excluded := array(select code from planning.op_statuses
                       where is_terminal or (not may_be_planned and code <> planning.paused_status()));
  if coalesce(p_item, '') <> '' then
    v_items := array(select item_id from planning.wip_items where item_name ilike '%' || p_item || '%');
  end if;
  -- Built with only the filters given and planned with their values, so that
  -- the planner sees what it is asked: an item filter reads that item's open
  -- operations, no item filter walks the open operations in op_id order and
  -- stops at the page's end. The excluded codes as a constant include
  -- Complete (10), which lets the plan use the partial indexes of the
  -- operations that are not complete (operations_open_idx, _open_item_idx).
  return query execute
    'select o.* from planning.operations o
      where o.op_status <> all ($1)
        and not exists (select 1 from planning.mach_planning mp
                         where mp.mp_op_id = o.op_id and mp.mp_op_proddate = $2)'
    || case when p_after_op_id is not null then ' and o.op_id > $3' else '' end
    || case when v_items is not null then ' and o.op_item_id = any ($4)' else '' end
    || case when coalesce(p_lot, '') <> '' then ' and o.op_lot_number ilike ''%'' || $5 || ''%''' else '' end
    || ' order by o.op_id limit $6'
    using v_excluded, p_date, p_after_op_id, v_items, p_lot, p_limit;
end
$$;
comment on function planning.available_jobs(date, bigint, bigint, text, text, bigint, integer) is
  'Operations that may be planned on p_date: not complete (paused included) and not yet in that date''s plan on any machine or shift, in op_id order. Filters: item name and lot number (contains, case-insensitive). Paging: limit rows (null: all) after afterOpId (the last opId of the previous page). machine and shift are validated (SF404 unknown, SF409 an inactive machine, SF422 a shift of another machine) but do not narrow the list: there is no item-to-machine routing data.';

-- The machines the planning board offers: active ones only (an inactive
-- machine cannot be planned), by code.
create or replace function planning.plannable_machines()
returns setof planning.machines
language sql stable security definer
set search_path = pg_catalog, public
as $$
  select * from planning.machines where active order by machine_code, machine_id
$$;
comment on function planning.plannable_machines() is
  'The machines a planner may plan: active ones, by code. Inactive machines are left out (save_sequence refuses them with SF409).';

------------------------------------------------------------------------------
-- Changing an operation's status
------------------------------------------------------------------------------

-- The one function for a status change (integration, supervisors, admins):
-- the status triggers then remove the plan rows (6, 10, any unplannable code)
-- or mirror the status, in this transaction, logged with this function's name.
-- Lock order: the operation, then (in the trigger) its plan rows.
create or replace function planning.set_operation_status(p_op_id bigint, p_status integer)
returns planning.operations
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_op planning.operations;
  v_old smallint;
  v_from planning.op_statuses;
  v_to planning.op_statuses;
begin
  if p_op_id is null or p_status is null then
    raise exception 'set_operation_status needs an operation and a status' using errcode = 'SF422';
  end if;
  select * into v_to from planning.op_statuses where code = p_status;
  if not found then
    raise exception 'Status % does not exist', p_status using errcode = 'SF422',
      hint = 'The codes are the rows of planning.op_statuses.';
  end if;
  select * into v_op from planning.operations where op_id = p_op_id for update;
  if not found then
    raise exception 'Operation % does not exist', p_op_id using errcode = 'SF404';
  end if;
  v_old := v_op.op_status;
  if v_old = p_status then
    return v_op;
  end if;
  select * into v_from from planning.op_statuses where code = v_old;
  if v_from.is_terminal then
    raise exception 'Operation % is % (%), a terminal status: it cannot become %', p_op_id, v_old, v_from.name, p_status
      using errcode = 'SF409', hint = 'A finished operation stays finished; create a new operation for more work.';
  end if;

  perform set_config('planning.reason', 'set_operation_status', true);
  update planning.operations set op_status = p_status where op_id = p_op_id returning * into v_op;
  perform set_config('planning.reason', '', true);
  perform ops.audit('set_operation_status', 'planning_operation', p_op_id::text,
                    jsonb_build_object('from', v_old, 'to', p_status, 'may_be_planned', v_to.may_be_planned));
  return v_op;
end
$$;
comment on function planning.set_operation_status(bigint, integer) is
  'Sets an operation''s status. A status that may not be planned (6 paused, 10 complete, plant codes so flagged) removes its plan rows in the same transaction; others are mirrored in the plan. Refused: unknown status (SF422), unknown operation (SF404), leaving a terminal status (SF409). Audited; plan changes logged with reason set_operation_status.';

-- One sequence with start and end times from the shift start, run time and
-- changeovers (planning.changeovers, else 0 for the same item, else the
-- planning.default_changeover_minutes setting).
create or replace function planning.sequence_timeline(p_machine bigint, p_shift bigint, p_date date)
returns table (
  mp_id bigint, op_id bigint, mp_sequence integer, op_lot_number text, item_name text, op_status smallint,
  changeover_minutes numeric, run_minutes numeric, starts_at timestamp, ends_at timestamp, beyond_shift boolean)
language sql stable security definer
set search_path = pg_catalog, public
as $$
  with shift as (
    select p_date + s.start_time as starts,
           p_date + s.end_time + case when s.end_time <= s.start_time then interval '1 day' else interval '0' end as ends
      from planning.shifts s where s.shift_id = p_shift
  ), dflt as materialized (  -- read once, not once per row
    select ops.setting_numeric('planning.default_changeover_minutes') as minutes
  ), seq as (
    select mp.mp_id, o.op_id, mp.mp_sequence, o.op_lot_number, i.item_name, o.op_status, o.op_item_id,
           lag(o.op_item_id) over (order by mp.mp_sequence) as prev_item,
           coalesce(o.op_run_min_total, o.op_run_min_per_unit * o.op_qty) as run_minutes
      from planning.mach_planning mp
      join planning.operations o on o.op_id = mp.mp_op_id
      join planning.wip_items i on i.item_id = o.op_item_id
     where mp.mp_machine_id = p_machine and mp.mp_shift_id = p_shift and mp.mp_op_proddate = p_date
  ), costed as (
    select seq.*,
           case when prev_item is null then 0
                else coalesce((select c.minutes from planning.changeovers c
                                where c.from_item_id = prev_item and c.to_item_id = op_item_id),
                              case when prev_item = op_item_id then 0 else dflt.minutes end)
           end as changeover_minutes
      from seq cross join dflt
  ), timed as (
    select costed.*, sum(changeover_minutes + run_minutes) over (order by mp_sequence) as cum
      from costed
  )
  select t.mp_id, t.op_id, t.mp_sequence, t.op_lot_number, t.item_name, t.op_status,
         t.changeover_minutes, t.run_minutes,
         shift.starts + make_interval(secs => ((t.cum - t.run_minutes) * 60)::double precision),
         shift.starts + make_interval(secs => (t.cum * 60)::double precision),
         shift.starts + make_interval(secs => (t.cum * 60)::double precision) > shift.ends
    from timed t cross join shift
   order by t.mp_sequence
$$;
comment on function planning.sequence_timeline(bigint, bigint, date) is
  'The planned operations of one machine, shift and date with start and end times from the shift start (changeover, then run time). beyond_shift marks operations that end after the shift.';

------------------------------------------------------------------------------
-- GraphQL shape and grants
------------------------------------------------------------------------------

comment on table planning.operations is E'@name PlanningOperation\n@behavior -insert -update -delete\nThe permanent record of operations; nothing ever leaves it.';
comment on table planning.op_statuses is E'@name PlanningOpStatus\n@behavior -insert -update -delete\nOperation status codes: may such an operation be in the plan, is it terminal.';
comment on table planning.wip_items is E'@name PlanningWipItem\n@behavior -insert -update -delete\nItem names.';
comment on table planning.machines is E'@name PlanningMachine\n@behavior -insert -update -delete\nMachines that can be planned.';
comment on table planning.shifts is E'@name PlanningShift\n@behavior -insert -update -delete\nShifts of a machine, or of the plant (machine_id null); may cross midnight.';
comment on table planning.holiday is E'@name PlanningHoliday\n@behavior -insert -update -delete\nNon-working dates.';
comment on table planning.changeovers is E'@name PlanningChangeover\n@behavior -insert -update -delete\nChangeover minutes from one item to another.';
comment on table planning.mach_planning is E'@name PlanningPlanRow\n@behavior -insert -update -delete\nThe plan: today and later only, plannable operations only. Change it with saveSequence and resolveCarryover.';
comment on table planning.planning_log is E'@name PlanningLogEntry\n@behavior -insert -update -delete\nEvery change of the plan: who, why, before, after, when.';

grant usage on schema planning to shopfloor_operator, shopfloor_integration;
grant select on all tables in schema planning to shopfloor_operator;
grant select, insert, update on planning.operations, planning.wip_items to shopfloor_integration;
grant select on planning.op_statuses, planning.machines to shopfloor_integration;
grant insert, update, delete on planning.machines, planning.shifts, planning.holiday, planning.changeovers,
  planning.op_statuses, planning.wip_items to shopfloor_admin;
grant insert, update on planning.operations to shopfloor_admin;

grant execute on function planning.paused_status(), planning.planned_status(), planning.past_allowed(),
  planning.carryover_from(date), planning.check_today(date),
  planning.previous_working_date(date), planning.pending_carryover(date),
  planning.available_jobs(date, bigint, bigint, text, text, bigint, integer), planning.sequence_timeline(bigint, bigint, date),
  planning.plannable_machines()
  to shopfloor_operator, shopfloor_integration;
grant execute on function planning.save_sequence(bigint, bigint, date, bigint[]) to shopfloor_planner;
grant execute on function planning.resolve_carryover(date, jsonb), planning.supervisor_login(date),
  planning.cleanup(date) to shopfloor_supervisor;
grant execute on function planning.set_operation_status(bigint, integer) to shopfloor_supervisor, shopfloor_integration;

------------------------------------------------------------------------------
-- Live events (issues 16 and 19): Subscription.planChanged
------------------------------------------------------------------------------
-- One NOTIFY per statement that changes the plan (mach_planning rows added,
-- removed, or changed in operation, machine, shift, date, sequence or status);
-- statements that change nothing send nothing. The payload says how many rows
-- changed and which machines and dates they touch, before and after (at most
-- 100 of each), so a board re-queries only what it shows.
create or replace function planning_private.tg_mach_planning__notify_changed() returns trigger
language plpgsql security definer
set search_path = pg_catalog, public
as $$
declare
  n int;
  machine_ids bigint[];
  prod_dates date[];
begin
  if tg_op = 'INSERT' then
    select count(*), array_agg(mp_machine_id), array_agg(mp_op_proddate) into n, machine_ids, prod_dates from new_rows;
  elsif tg_op = 'DELETE' then
    select count(*), array_agg(mp_machine_id), array_agg(mp_op_proddate) into n, machine_ids, prod_dates from old_rows;
  else -- mp_id is an identity column: an update keeps it
    select count(*), array_agg(nw.mp_machine_id) || array_agg(od.mp_machine_id),
           array_agg(nw.mp_op_proddate) || array_agg(od.mp_op_proddate)
      into n, machine_ids, prod_dates
      from new_rows nw join old_rows od on od.mp_id = nw.mp_id
     where (nw.mp_op_id, nw.mp_machine_id, nw.mp_shift_id, nw.mp_op_proddate, nw.mp_sequence, nw.mp_op_status)
           is distinct from (od.mp_op_id, od.mp_machine_id, od.mp_shift_id, od.mp_op_proddate, od.mp_sequence, od.mp_op_status);
  end if;
  if n > 0 then
    perform pg_notify('planning_plan_changed', json_build_object(
      'op', lower(tg_op),
      'count', n,
      'machineIds', (select array_agg(m::text order by m) from (select distinct m from unnest(machine_ids) m order by m limit 100) f),
      'dates', (select array_agg(d::text order by d) from (select distinct d from unnest(prod_dates) d order by d limit 100) f))::text);
  end if;
  return null;
end
$$;

select ops_private.create_transition_triggers('planning.mach_planning', 'mach_planning', 'planning_private.tg_mach_planning__notify_changed');
drop function if exists planning.notify_plan_changed();

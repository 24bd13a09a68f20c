--! Previous: sha1:3392fdc6038c95a213cb056aafa42e415b394203
--! Hash: sha1:1943d0b35c1184d7b4a3279ea8629700c49bb35a
--! Message: Planning: operations, machines, shifts, plan

-- Planning (machine-planning.md, issue 6): operations (the permanent record),
-- machines, shifts, holidays, changeovers, the status table, the plan
-- (mach_planning, future-only) and its log. Behaviour is in sql/planning.sql.

create schema if not exists planning;
comment on schema planning is 'Machine planning: operations, machines, shifts, holidays and the future-only plan (mach_planning).';

create table planning.op_statuses (
  code smallint primary key check (code >= 0),
  name text not null unique check (length(name) between 1 and 60),
  description text not null default '',
  may_be_planned boolean not null,
  is_terminal boolean not null default false,
  constraint op_statuses_terminal_not_planned check (not (is_terminal and may_be_planned))
);
insert into planning.op_statuses (code, name, description, may_be_planned, is_terminal) values
  (0, 'Planned', 'In a machine plan', true, false),
  (1, 'New', 'Released, not yet started', true, false),
  (2, 'Assigned', 'Assigned to an operator', true, false),
  (3, 'Setup', 'Machine being set up', true, false),
  (4, 'FPQC', 'First-piece quality check', true, false),
  (5, 'In Process', 'Running', true, false),
  (6, 'Paused', 'Was planned but not executed; may be planned again', false, false),
  (7, 'Breakdown', 'Machine breakdown', true, false),
  (8, 'On Hold', 'On hold', true, false),
  (9, 'LPQC', 'Last-piece quality check', true, false),
  (10, 'Complete', 'Finished; never planned again', false, true);

create table planning.wip_items (
  item_id bigint generated always as identity primary key,
  item_name text not null unique check (length(item_name) between 1 and 200)
);

create table planning.machines (
  machine_id bigint generated always as identity primary key,
  machine_code text not null unique check (length(machine_code) between 1 and 60),
  machine_name text not null default '',
  active boolean not null default true
);

-- A shift belongs to one machine, or to the whole plant when machine_id is null.
-- end_time <= start_time means the shift crosses midnight.
create table planning.shifts (
  shift_id bigint generated always as identity primary key,
  shift_code text not null check (length(shift_code) between 1 and 30),
  machine_id bigint references planning.machines on delete cascade,
  start_time time not null,
  end_time time not null,
  constraint shifts_not_empty check (start_time <> end_time),
  constraint shifts_code_key unique nulls not distinct (machine_id, shift_code)
);

create table planning.holiday (
  holiday_date date primary key,
  description text not null default ''
);

create table planning.changeovers (
  from_item_id bigint not null references planning.wip_items on delete cascade,
  to_item_id bigint not null references planning.wip_items on delete cascade,
  minutes numeric not null check (minutes >= 0),
  primary key (from_item_id, to_item_id)
);

create table planning.operations (
  op_id bigint generated always as identity primary key,
  op_lot_number text not null check (length(op_lot_number) between 1 and 100),
  op_item_id bigint not null references planning.wip_items,
  op_qty numeric not null check (op_qty > 0),
  op_run_min_per_unit numeric check (op_run_min_per_unit >= 0),
  op_run_min_total numeric check (op_run_min_total >= 0),
  op_status smallint not null default 1 references planning.op_statuses,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  status_changed_at timestamptz not null default now(),
  constraint operations_run_time check (op_run_min_per_unit is not null or op_run_min_total is not null)
);
create index operations_status_idx on planning.operations (op_status, op_id);
create index operations_item_idx on planning.operations (op_item_id);
create index operations_lot_idx on planning.operations (op_lot_number text_pattern_ops);

-- The plan: only today and later (guarded by a trigger in sql/planning.sql),
-- only plannable operations, every row's operation exists.
create table planning.mach_planning (
  mp_id bigint generated always as identity primary key,
  mp_op_id bigint not null references planning.operations on delete cascade,
  mp_machine_id bigint not null references planning.machines,
  mp_shift_id bigint not null references planning.shifts,
  mp_op_proddate date not null,
  mp_sequence integer not null check (mp_sequence > 0),
  mp_op_status smallint not null references planning.op_statuses,
  planned_by text not null default current_user,
  planned_at timestamptz not null default now(),
  -- deferrable so that save_sequence can renumber a sequence in place
  constraint mach_planning_slot_key unique (mp_machine_id, mp_shift_id, mp_op_proddate, mp_sequence)
    deferrable initially immediate,
  constraint mach_planning_op_date_key unique (mp_op_id, mp_op_proddate)
);
create index mach_planning_date_idx on planning.mach_planning (mp_op_proddate);
create index mach_planning_shift_idx on planning.mach_planning (mp_shift_id);

create table planning.planning_log (
  log_id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  actor text not null,
  reason text not null,
  operation text not null check (operation in ('insert', 'update', 'delete')),
  mp_id bigint not null,
  op_id bigint not null,
  before jsonb,
  after jsonb
);
create index planning_log_op_idx on planning.planning_log (op_id, at);
create index planning_log_mp_idx on planning.planning_log (mp_id);

insert into ops.settings (key, value, description) values
  ('planning.working_weekdays', '[1,2,3,4,5,6]', 'ISO weekdays (1 Monday .. 7 Sunday) the plant works; previous_working_date skips the others and holidays.'),
  ('planning.default_changeover_minutes', '15', 'Changeover minutes between two different items when planning.changeovers has no row for the pair.')
on conflict (key) do nothing;

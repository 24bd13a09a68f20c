--! Previous: sha1:1f65b97ead2620e9bc30381e8d7cbf654471b327
--! Hash: sha1:745358d2affe9661cec9638b63027e608aafc2ad
--! Message: Planning: status entries in the plan log, open-operation indexes for available_jobs

-- Planning, issue 14: a status entry in the plan's log, and an index for the
-- planning board's first page of available jobs.

-- A re-planned paused operation (6 -> 0) is logged as a status change of its
-- own ('status'), naming the plan row it leads to.
alter table planning.planning_log drop constraint if exists planning_log_operation_check;
alter table planning.planning_log add constraint planning_log_operation_check
  check (operation in ('insert', 'update', 'delete', 'status'));

-- available_jobs pages in op_id order over the operations that are not
-- complete. Complete (10) is the status that grows without end (nothing ever
-- leaves operations), so the board's first page must not walk past them.
create index if not exists operations_open_idx on planning.operations (op_id) where op_status <> 10;
create index if not exists operations_open_item_idx on planning.operations (op_item_id, op_id) where op_status <> 10;

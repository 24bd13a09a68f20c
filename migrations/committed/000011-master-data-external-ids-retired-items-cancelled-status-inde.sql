--! Previous: sha1:745358d2affe9661cec9638b63027e608aafc2ad
--! Hash: sha1:576cd1f748508d1e3f09fff10075258208ceef5d
--! Message: Master data: external ids, retired items, Cancelled status; indexes for list filters

-- Issue 16: master data through the API. The ERP's keys (external_id, unique)
-- on machines, items and operations so an ERP can upsert without our ids;
-- items can be retired; a terminal status for retired operations.
-- Behaviour is in sql/planning_master_data.sql.

alter table planning.machines add column if not exists external_id text;
alter table planning.wip_items add column if not exists external_id text;
alter table planning.operations add column if not exists external_id text;
alter table planning.wip_items add column if not exists active boolean not null default true;

do $$
declare
  t text;
begin
  foreach t in array array['machines', 'wip_items', 'operations'] loop
    if not exists (select 1 from pg_constraint where conname = t || '_external_id_key' and conrelid = ('planning.' || t)::regclass) then
      execute format('alter table planning.%I add constraint %I unique (external_id)', t, t || '_external_id_key');
      execute format('alter table planning.%I add constraint %I check (external_id is null or length(external_id) between 1 and 100)',
                     t, t || '_external_id_length');
    end if;
  end loop;
end
$$;

insert into planning.op_statuses (code, name, description, may_be_planned, is_terminal)
values (11, 'Cancelled', 'Retired through the API; never planned again', false, true)
on conflict (code) do nothing;

-- Filtering (issue 16): the lists screens filter on get an index, so the
-- connection filter only offers columns a query can find cheaply.
create index if not exists print_os_created_at_idx on tracking."print OS" (created_at);
create index if not exists scanned_codes_scanned_at_idx on tracking.scanned_codes (scanned_at);
create index if not exists jobs_locked_status_idx on nesting.jobs (is_locked, status);
create index if not exists messages_acknowledged_at_idx on ops.messages (acknowledged_at);
create index if not exists tokens_status_idx on execution.tokens (status);

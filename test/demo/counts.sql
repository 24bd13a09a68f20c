-- What the demo test counts after each run.
select (select count(*) from ops_private.users)::int as users, (select count(*) from planning.machines)::int as machines,
       (select count(*) from planning.shifts)::int as shifts, (select count(*) from planning.holiday)::int as holidays,
       (select count(*) from planning.wip_items)::int as items, (select count(*) from planning.changeovers)::int as changeovers,
       (select count(*) from planning.operations)::int as ops, (select count(*) from planning.mach_planning)::int as plan,
       (select count(*) from nesting.jobs)::int as nc, (select count(*) from nesting.grundner)::int as stock,
       (select count(*) from tracking."print OS")::int as printos, (select count(*) from tracking.scanned_codes)::int as scans,
       (select count(*) from approval.jobs)::int as ajobs, (select count(*) from approval.inventory_items)::int as aitems,
       (select count(*) from execution.tokens)::int as tokens, (select count(*) from execution.product_revisions)::int as revs,
       (select count(*) from pool.events)::int as events, (select count(*) from nesting.jobs where pre_reserved)::int as reserved,
       (select count(*) from planning.pending_carryover())::int as pending, (select count(*) from tracking.jobs where operations <> '{}')::int as tracked,
       (select count(*) from ops.audit_log)::int - (select count(*) from ops.audit_log where action in ('set_user_password', 'save_machine', 'save_shift', 'save_item', 'set_changeover', 'save_operation', 'set_holiday', 'save_sequence', 'stage_past_plan'))::int as other_audit

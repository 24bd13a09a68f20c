--! Previous: sha1:538f92c02dfd626b80454efc42d7f2c94406f7b8
--! Hash: sha1:40a04a0edb22f6d9aa6651e12b02dd76699f627d
--! Message: Private schemas for execution, pool and planning

-- Worker-only functions, internal helpers and trigger functions of these
-- modules live in <module>_private (sql/execution.sql, pool.sql, planning.sql,
-- planning_master_data.sql), like ops_private and approval_private: never
-- exposed through GraphQL, no API role may use them (only the module's
-- SECURITY DEFINER functions and triggers call them).
create schema if not exists execution_private;
create schema if not exists pool_private;
create schema if not exists planning_private;
comment on schema execution_private is 'Internal to the execution module (helpers of the token functions), never exposed through GraphQL.';
comment on schema pool_private is 'Internal to the pool module (helpers, trigger functions), never exposed through GraphQL.';
comment on schema planning_private is 'Internal to the planning module (helpers, trigger functions), never exposed through GraphQL.';

-- The plan log was once one trigger; sql/planning.sql no longer names it.
drop trigger if exists mach_planning_log on planning.mach_planning;

--! Previous: sha1:aa6ea7ab33014f10fe4572797d03f790c35f0a09
--! Hash: sha1:2ddab49e83d6176277d104b77752adf1b8d0c5fa
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

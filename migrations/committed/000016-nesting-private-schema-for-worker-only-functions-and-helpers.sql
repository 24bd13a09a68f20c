--! Previous: sha1:aa6ea7ab33014f10fe4572797d03f790c35f0a09
--! Hash: sha1:96aed4106ddbe5597936784f07fa5b0a49397f25
--! Message: Nesting: nesting_private schema for worker-only functions and helpers

-- Nesting (issue 18): worker-only functions and internal helpers move out of
-- the exposed schema. The functions themselves are in sql/nesting_*.sql.
create schema if not exists nesting_private;
comment on schema nesting_private is 'Internal to the nesting module (worker calls, helpers, triggers), never exposed through GraphQL.';

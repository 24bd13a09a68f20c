--! Previous: sha1:aa6ea7ab33014f10fe4572797d03f790c35f0a09
--! Hash: sha1:db9a01fcd9cb43f8d20d0ce4552924a0281acc78
--! Message: Tracking: private schema for processing helpers and trigger functions

-- Tracking (issue 18): worker-only helpers and trigger functions live in
-- tracking_private (sql/tracking.sql moves them there and drops the old
-- names). As ops_private: no grants; only the tracking functions (security
-- definer) and triggers use it, and PostGraphile does not expose it.
create schema if not exists tracking_private;
comment on schema tracking_private is 'Internal to the tracking module (processing helpers, trigger functions), never exposed through GraphQL.';

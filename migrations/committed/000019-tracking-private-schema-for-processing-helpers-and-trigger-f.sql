--! Previous: sha1:40a04a0edb22f6d9aa6651e12b02dd76699f627d
--! Hash: sha1:92af2ede31f12c8415d3d4bc6ed81c47885c3314
--! Message: Tracking: private schema for processing helpers and trigger functions

-- Tracking (issue 18): worker-only helpers and trigger functions live in
-- tracking_private (sql/tracking.sql moves them there and drops the old
-- names). As ops_private: no grants; only the tracking functions (security
-- definer) and triggers use it, and PostGraphile does not expose it.
create schema if not exists tracking_private;
comment on schema tracking_private is 'Internal to the tracking module (processing helpers, trigger functions), never exposed through GraphQL.';

--! Previous: -
--! Hash: sha1:3f03805d3dfca4cccc3a33b2b35a857f6483bb38
--! Message: Foundation: roles, ops schema, users

-- Foundation: roles, the ops schema (messages, watcher events, audit log,
-- settings) and users. Behaviour (functions, triggers, grants) is in sql/.

-- Roles are cluster-wide, so creating them must tolerate a second database
-- (tests, shadow) on the same server. The connecting user is made a member of
-- each so that the API can SET ROLE to the role named in a token.
do $$
declare
  r text;
begin
  foreach r in array array['shopfloor_anonymous', 'shopfloor_operator', 'shopfloor_supervisor',
                           'shopfloor_planner', 'shopfloor_integration', 'shopfloor_admin'] loop
    if not exists (select 1 from pg_roles where rolname = r) then
      execute format('create role %I nologin', r);
    end if;
    if not pg_has_role(current_user, r, 'member') then
      execute format('grant %I to %I', r, current_user);
    end if;
  end loop;
end
$$;

-- A supervisor and a planner can do what an operator can; an admin can do everything.
do $$
declare
  g record;
begin
  for g in select * from (values
      ('shopfloor_operator', 'shopfloor_supervisor'),
      ('shopfloor_operator', 'shopfloor_planner'),
      ('shopfloor_supervisor', 'shopfloor_admin'),
      ('shopfloor_planner', 'shopfloor_admin'),
      ('shopfloor_integration', 'shopfloor_admin')) as t(member_of, grantee)
  loop
    if not pg_has_role(g.grantee, g.member_of, 'member') then
      execute format('grant %I to %I', g.member_of, g.grantee);
    end if;
  end loop;
end
$$;

-- Functions are not executable by everyone unless a module grants them.
alter default privileges revoke execute on functions from public;

create extension if not exists pgcrypto;

create schema ops;
create schema ops_private;
comment on schema ops is 'Operations: operator messages, watcher diagnostics, audit log, settings, login.';
comment on schema ops_private is 'Internal to Shopfloor: users and helpers, never exposed through GraphQL.';

create table ops.messages (
  id bigint generated always as identity primary key,
  created_at timestamptz not null default now(),
  source text not null check (source ~ '^[a-z][a-z0-9_-]{0,62}$'),
  severity text not null default 'info' check (severity in ('info', 'warning', 'error', 'critical')),
  title text not null check (length(title) between 1 and 500),
  body text not null default '',
  related jsonb not null default '{}' check (jsonb_typeof(related) = 'object'),
  acknowledged_at timestamptz,
  acknowledged_by text,
  logged_at timestamptz,
  constraint messages_acknowledged_together check ((acknowledged_at is null) = (acknowledged_by is null))
);
create index messages_created_at_idx on ops.messages (created_at desc);
create index messages_source_created_at_idx on ops.messages (source, created_at desc);
create index messages_unacknowledged_idx on ops.messages (id) where acknowledged_at is null;
create index messages_unlogged_idx on ops.messages (id) where logged_at is null;

create table ops.watcher_events (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  watcher text not null,
  event text not null,
  path text,
  details jsonb not null default '{}'
);
create index watcher_events_watcher_at_idx on ops.watcher_events (watcher, at desc);
create index watcher_events_at_idx on ops.watcher_events (at);

create table ops.audit_log (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  actor text not null,
  action text not null,
  entity_type text not null,
  entity_id text,
  details jsonb not null default '{}'
);
create index audit_log_entity_idx on ops.audit_log (entity_type, entity_id, at desc);
create index audit_log_at_idx on ops.audit_log (at);

create table ops.settings (
  key text primary key check (key ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$'),
  value jsonb not null,
  description text not null default '',
  updated_at timestamptz not null default now(),
  updated_by text not null default current_user
);

insert into ops.settings (key, value, description) values
  ('plant.timezone', '"UTC"', 'IANA time zone of the plant; "today" and working days are computed in it. Kept in step with PLANT_TIMEZONE at start-up.'),
  ('auth.token_lifetime', '"12 hours"', 'How long a token issued by login stays valid (a PostgreSQL interval).'),
  ('ops.watcher_events_keep', '"30 days"', 'Watcher events older than this are pruned by the nightly housekeeping task.');

create table ops_private.users (
  id bigint generated always as identity primary key,
  username text not null unique check (username ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  role text not null check (role in ('shopfloor_operator', 'shopfloor_supervisor', 'shopfloor_planner',
                                     'shopfloor_integration', 'shopfloor_admin')),
  display_name text not null default '',
  password_hash text,
  created_at timestamptz not null default now(),
  disabled_at timestamptz
);
comment on column ops_private.users.password_hash is 'bcrypt hash (pgcrypto crypt); null means the user cannot log in with a password (tokens only, see `shopfloor token`).';

-- The first administrator; `npm run token` issues a token for it.
insert into ops_private.users (username, role, display_name) values ('admin', 'shopfloor_admin', 'Administrator');

-- What login returns; PostGraphile signs it as a JWT (HS256, JWT_SECRET).
create type ops.jwt_token as (
  role text,
  user_id bigint,
  username text,
  exp bigint
);

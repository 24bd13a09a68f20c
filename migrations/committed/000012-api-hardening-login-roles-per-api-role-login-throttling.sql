--! Previous: sha1:576cd1f748508d1e3f09fff10075258208ceef5d
--! Hash: sha1:deed08cbc5d1c80765eb73d15f96e6fd156c62b9
--! Message: API hardening: login roles per API role, login throttling

-- API hardening: the API's login roles, login throttling.

-- One login role per API role (PostGraphile's authenticator pattern, split so
-- that a session may only switch to the one role it serves). NOINHERIT: no
-- privileges of their own; not superuser, not owner. The API sets their
-- password at start-up (API_DB_PASSWORD). Roles are cluster-wide: tolerate a
-- second database on the same server.
do $$
declare
  r text;
begin
  foreach r in array array['anonymous', 'operator', 'supervisor', 'planner', 'integration', 'admin'] loop
    if not exists (select 1 from pg_roles where rolname = 'shopfloor_api_' || r) then
      execute format('create role %I login noinherit nosuperuser nocreatedb nocreaterole noreplication', 'shopfloor_api_' || r);
    end if;
    if not pg_has_role('shopfloor_api_' || r, 'shopfloor_' || r, 'member') then
      execute format('grant %I to %I', 'shopfloor_' || r, 'shopfloor_api_' || r);
    end if;
  end loop;
end
$$;

-- Failed logins per username and per source address (login throttling).
create table if not exists ops_private.login_failures (
  kind text not null check (kind in ('user', 'address')),
  key text not null check (length(key) between 1 and 200),
  failures int not null default 0,
  first_failure_at timestamptz,
  last_failure_at timestamptz,
  primary key (kind, key)
);
create index if not exists login_failures_last_idx on ops_private.login_failures (last_failure_at);

insert into ops.settings (key, value, description) values
  ('auth.login_max_failures', '5', 'Failed logins for one username, within auth.login_failure_window, before further attempts wait auth.login_cooldown.'),
  ('auth.login_max_failures_per_address', '30', 'Failed logins from one source address, within auth.login_failure_window, before further attempts from it wait auth.login_cooldown.'),
  ('auth.login_failure_window', '"15 minutes"', 'How long failed logins are counted.'),
  ('auth.login_cooldown', '"5 minutes"', 'How long logins wait after too many failures (the real password does not work meanwhile).'),
  ('auth.bcrypt_cost', '10', 'bcrypt cost of new password hashes (10 or more); older hashes are upgraded at the next successful login.')
on conflict (key) do nothing;

-- ops: the foundation every module uses. Operator messages, the audit log,
-- settings, job queueing, login and users. Re-applied after every migrate, so
-- everything here is CREATE OR REPLACE (or dropped and recreated).
--
-- Errors raised by Shopfloor functions use SQLSTATE class SF:
--   SF401 not authenticated / bad credentials   SF403 not allowed
--   SF404 not found                              SF409 conflict with current state
--   SF422 invalid input                          SF429 too many failed logins, wait
-- (every code with its HTTP status: docs/ops.md, "Error codes")
-- The API passes these codes and messages through to clients.

------------------------------------------------------------------------------
-- Who is calling
------------------------------------------------------------------------------

-- The user behind the call: the username from the API's verified token, or
-- the database user for a DBA in psql.
create or replace function ops.current_actor() returns text
language sql stable
as $$
  select coalesce(nullif(current_setting('jwt.claims.username', true), ''), session_user::text)
$$;
comment on function ops.current_actor() is E'@behavior -queryField\nThe caller: the token''s username, or the database user.';

------------------------------------------------------------------------------
-- Settings: key/value (jsonb) with typed readers
------------------------------------------------------------------------------

create or replace function ops.setting(p_key text) returns jsonb
language sql stable
as $$
  select value from ops.settings where key = p_key
$$;

-- The setting's value when it has the expected JSON type; null when it holds
-- JSON null. The migrations seed every setting a module reads, with its
-- default: a missing row is an error when p_required (a reader that gives no
-- default of its own), else null.
drop function if exists ops.setting_checked(text, text, text);
create or replace function ops.setting_checked(p_key text, p_json_type text, p_what text, p_required boolean default false)
returns jsonb
language plpgsql stable
as $$
declare
  v jsonb := ops.setting(p_key);
begin
  if v is null and p_required then
    raise exception 'Setting % is missing', p_key using errcode = 'P0002',
      hint = 'The migrations seed every setting; restore it with ops.set_setting (docs/ops.md, "Settings").';
  elsif v is null or v = 'null'::jsonb then
    return null;
  elsif jsonb_typeof(v) <> p_json_type then
    raise exception 'Setting % is not %: %', p_key, p_what, v using errcode = 'SF422';
  end if;
  return v;
end
$$;

create or replace function ops.setting_text(p_key text, p_default text default null) returns text
language sql stable
as $$
  select coalesce(ops.setting_checked(p_key, 'string', 'text', p_default is null) #>> '{}', p_default)
$$;

create or replace function ops.setting_numeric(p_key text, p_default numeric default null) returns numeric
language sql stable
as $$
  select coalesce(ops.setting_checked(p_key, 'number', 'a number', p_default is null)::numeric, p_default)
$$;

create or replace function ops.setting_boolean(p_key text, p_default boolean default null) returns boolean
language sql stable
as $$
  select coalesce(ops.setting_checked(p_key, 'boolean', 'true or false', p_default is null)::boolean, p_default)
$$;

create or replace function ops.setting_interval(p_key text, p_default interval default null) returns interval
language plpgsql stable
as $$
declare
  v text := ops.setting_checked(p_key, 'string', 'an interval', p_default is null) #>> '{}';
begin
  return coalesce(v::interval, p_default);
exception when invalid_datetime_format or datetime_field_overflow or interval_field_overflow then
  raise exception 'Setting % is not an interval: %', p_key, v using errcode = 'SF422',
    hint = 'Use a PostgreSQL interval such as "30 days" or "5 minutes".';
end
$$;

comment on function ops.setting(text) is E'@behavior -queryField';
comment on function ops.setting_checked(text, text, text, boolean) is E'@behavior -queryField';
comment on function ops.setting_text(text, text) is E'@behavior -queryField';
comment on function ops.setting_numeric(text, numeric) is E'@behavior -queryField';
comment on function ops.setting_boolean(text, boolean) is E'@behavior -queryField';
comment on function ops.setting_interval(text, interval) is E'@behavior -queryField';

create or replace function ops.set_setting(p_key text, p_value jsonb, p_description text default null)
returns ops.settings
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  result ops.settings;
begin
  if p_value is null then
    raise exception 'A setting needs a value (use JSON null explicitly to clear it)' using errcode = 'SF422';
  end if;
  if p_key = 'plant.timezone' and not exists (select 1 from pg_timezone_names where name = p_value #>> '{}') then
    raise exception 'Unknown time zone %', p_value using errcode = 'SF422', hint = 'Use an IANA name such as Europe/Berlin.';
  end if;
  -- Every plan check reads it (previous_working_date): a value it cannot read, or no working
  -- day at all (every past row would be cleaned up without a decision), is refused here.
  if p_key = 'planning.working_weekdays' and not (
       jsonb_typeof(p_value) = 'array' and jsonb_array_length(p_value) between 1 and 7
       and not exists (select 1 from jsonb_array_elements(p_value) e where e::text !~ '^[1-7]$')) then
    raise exception 'planning.working_weekdays must be a list of ISO weekdays, 1 (Monday) to 7 (Sunday), at least one: %', left(p_value::text, 100)
      using errcode = 'SF422';
  end if;
  -- Written into every order_saw.csv for a job on no machine: the gateway takes 1..4 there.
  if p_key = 'nesting.saw_machine' and not (jsonb_typeof(p_value) = 'number' and p_value::text ~ '^[1-4]$') then
    raise exception 'nesting.saw_machine must be a Grundner saw number, 1 to 4: %', left(p_value::text, 100)
      using errcode = 'SF422';
  end if;
  insert into ops.settings as s (key, value, description, updated_at, updated_by)
  values (p_key, p_value, coalesce(p_description, ''), now(), ops.current_actor())
  on conflict (key) do update
    set value = excluded.value,
        description = coalesce(p_description, s.description),
        updated_at = excluded.updated_at,
        updated_by = excluded.updated_by
  returning * into result;
  perform ops.audit('set_setting', 'setting', p_key, jsonb_build_object('value', p_value));
  return result;
end
$$;
comment on function ops.set_setting(text, jsonb, text) is 'Sets a setting (admin). Audited.';

-- The plant's clock: "today" is the plant's date, not the server's.
create or replace function ops.plant_now() returns timestamp
language sql stable
as $$
  select now() at time zone ops.setting_text('plant.timezone')
$$;

create or replace function ops.plant_today() returns date
language sql stable
as $$
  select ops.plant_now()::date
$$;

------------------------------------------------------------------------------
-- Audit log
------------------------------------------------------------------------------

create or replace function ops.audit(p_action text, p_entity_type text, p_entity_id text, p_details jsonb default '{}')
returns void
language sql volatile security definer
set search_path = pg_catalog, public
as $$
  insert into ops.audit_log (actor, action, entity_type, entity_id, details)
  values (ops.current_actor(), p_action, p_entity_type, p_entity_id, coalesce(p_details, '{}'))
$$;
comment on function ops.audit(text, text, text, jsonb) is E'@behavior -mutationField\nAppends an audit row as the current actor.';

------------------------------------------------------------------------------
-- Background jobs: the one door to graphile-worker
------------------------------------------------------------------------------

-- add_job needs the worker schema owner's rights, so it is wrapped here.
-- Payloads carry ids, not rows. A job_key collapses a burst into one job
-- (job_key_mode: replace debounces, preserve_run_at throttles,
-- unsafe_dedupe only de-duplicates). Jobs of one named queue run one at a time.
-- Earlier signatures, dropped so that calls stay unambiguous.
drop function if exists ops_private.enqueue(text, jsonb, text, timestamptz, int);
drop function if exists ops_private.enqueue(text, jsonb, text, timestamptz, int, text);
create or replace function ops_private.enqueue(
  p_task text,
  p_payload jsonb default '{}',
  p_job_key text default null,
  p_run_at timestamptz default null,
  p_max_attempts int default null,
  p_job_key_mode text default 'replace',
  p_queue_name text default null
) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
begin
  perform graphile_worker.add_job(
    identifier := p_task,
    payload := coalesce(p_payload, '{}')::json,
    run_at := p_run_at,
    job_key := p_job_key,
    max_attempts := p_max_attempts,
    job_key_mode := p_job_key_mode,
    queue_name := p_queue_name
  );
end
$$;

-- SECURITY DEFINER functions keep their working sets in temp tables. The
-- caller's session could hold a temp table of the same name, made by the
-- caller with a trigger of its own, which would then run as the function's
-- owner. So a function reuses a temp table only when it is the current
-- (owning) role's own: true when this session has one, false when it has
-- none (make it), SF403 when another role made it.
create or replace function ops_private.own_temp_table(p_name text) returns boolean
language plpgsql stable
set search_path = pg_catalog, public
as $$
declare
  v_owner oid;
begin
  select c.relowner into v_owner from pg_class c where c.oid = to_regclass('pg_temp.' || quote_ident(p_name));
  if v_owner is null then
    return false;
  elsif v_owner <> (select oid from pg_roles where rolname = current_user) then
    raise exception 'A temp table % made by another role is in this session; it is not used', p_name
      using errcode = 'SF403', hint = 'Drop it, or call the function from another session.';
  end if;
  return true;
end
$$;

-- Wakes a set-based, idempotent task (one that processes whatever is pending)
-- for data this transaction is writing, through graphile-worker's public
-- surface only: add_job with a job_key, and its jobs view to read.
--
-- add_job on the key of a waiting job touches that job's row: a row lock until
-- this transaction ends (workers take jobs with FOR UPDATE SKIP LOCKED, so it
-- cannot start before our data is visible); on no waiting job it adds one.
-- But one key shared by every writer would make every writer queue behind
-- the slowest open transaction (the key's unique index waits for it). So each
-- open writer takes a numbered slot of the task (a transaction advisory lock,
-- tried, never awaited) and uses that slot's key: no writer waits for another,
-- even one that stays open for long, and a task has at most one waiting job
-- per writer open at once.
-- A slot whose job runs is passed over: touching it would make the worker
-- finishing it wait for this transaction (the look is the jobs view; add_job's
-- answer covers a job taken in between). The waiting job is touched in
-- 'unsafe_dedupe' mode, which only bumps its revision (no index changes);
-- a failed or retry-delayed job of the slot is replaced ('replace').
create or replace function ops_private.wake(p_task text, p_queue_name text default null) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_slot int := -1;
  v_key text;
  v_job record;
begin
  loop
    v_slot := v_slot + 1;
    v_key := format('wake:%s:%s', p_task, v_slot);
    continue when not pg_try_advisory_xact_lock(hashtext('shopfloor.wake:' || p_task), v_slot)
               or exists (select 1 from graphile_worker.jobs j where j.key = v_key and j.locked_at is not null);
    select * into v_job from graphile_worker.add_job(p_task, queue_name := p_queue_name, job_key := v_key,
                                                     job_key_mode := 'unsafe_dedupe');
    continue when v_job.locked_at is not null;
    if v_job.revision = 0 then
      return; -- a new job: it becomes visible with our data
    elsif v_job.attempts < v_job.max_attempts and v_job.run_at <= now() then
      -- A worker that skipped the job while we held it looks again at our
      -- commit (add_job notifies only for new jobs).
      perform pg_notify('jobs:insert', '{"r":' || random()::text || ',"count":1}');
      return;
    end if;
    select * into v_job from graphile_worker.add_job(p_task, queue_name := p_queue_name, job_key := v_key,
                                                     job_key_mode := 'replace');
    exit when v_job.locked_at is null;
  end loop;
end
$$;

------------------------------------------------------------------------------
-- Operator messages (the Messages page)
------------------------------------------------------------------------------

-- Never raises because of the length of its text: a title longer than the
-- column allows is shortened with an ellipsis (callers summarise; this is the
-- last guard), and a body is capped. Source and severity are still checked.
create or replace function ops.post_message(
  p_source text,
  p_severity text,
  p_title text,
  p_body text default '',
  p_related jsonb default '{}'
) returns ops.messages
language sql volatile security definer
set search_path = pg_catalog, public
as $$
  insert into ops.messages (source, severity, title, body, related)
  select p_source, coalesce(p_severity, 'info'),
         case when length(t.title) > 500 then left(t.title, 499) || '…' else t.title end,
         case when length(coalesce(p_body, '')) > 20000 then left(p_body, 19999) || '…' else coalesce(p_body, '') end,
         coalesce(p_related, '{}')
    from (select coalesce(nullif(btrim(p_title), ''), '(no title)') as title) t
  returning *
$$;
comment on function ops.post_message(text, text, text, text, jsonb) is
  'Adds a message to the operators'' Messages page. Subscribers of messageAdded hear of it at once.';

create or replace function ops.acknowledge_message(p_message_id bigint) returns ops.messages
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  result ops.messages;
begin
  update ops.messages
     set acknowledged_at = now(), acknowledged_by = ops.current_actor()
   where id = p_message_id and acknowledged_at is null
  returning * into result;
  if not found then
    select * into result from ops.messages where id = p_message_id;
    if not found then
      raise exception 'Message % does not exist', p_message_id using errcode = 'SF404';
    end if;
  end if;
  return result; -- acknowledging twice keeps the first acknowledgement
end
$$;

create or replace function ops.acknowledge_messages(p_source text default null) returns integer
language sql volatile security definer
set search_path = pg_catalog, public
as $$
  with acked as (
    update ops.messages
       set acknowledged_at = now(), acknowledged_by = ops.current_actor()
     where acknowledged_at is null and (p_source is null or source = p_source)
    returning 1
  )
  select count(*)::int from acked
$$;
comment on function ops.acknowledge_messages(text) is 'Acknowledges every unread message, or those of one source. Returns how many.';

create or replace function ops.unread_message_count(p_source text default null) returns integer
language sql stable
as $$
  select count(*)::int from ops.messages
   where acknowledged_at is null and (p_source is null or source = p_source)
$$;

------------------------------------------------------------------------------
-- Trigger helpers shared by every module (graphile/starter's convention):
-- `ops_private.tg__<purpose>()`, attached as `create or replace trigger
-- <table>_<purpose>`.
------------------------------------------------------------------------------

-- Keeps `updated_at` current on every update of a row.
create or replace function ops_private.tg__updated_at() returns trigger
language plpgsql as $$
begin
  new.updated_at := now();
  return new;
end
$$;

-- Statement triggers that read transition tables need one trigger per event
-- (PostgreSQL allows no "insert or update or delete ... referencing"): this
-- makes the three, <prefix>_inserted, <prefix>_updated and <prefix>_deleted,
-- each giving the function new_rows and/or old_rows.
create or replace function ops_private.create_transition_triggers(p_table regclass, p_prefix text, p_function regproc)
returns void
language plpgsql as $$
begin
  execute format('create or replace trigger %I after insert on %s referencing new table as new_rows
                  for each statement execute function %s()', p_prefix || '_inserted', p_table, p_function);
  execute format('create or replace trigger %I after update on %s referencing old table as old_rows new table as new_rows
                  for each statement execute function %s()', p_prefix || '_updated', p_table, p_function);
  execute format('create or replace trigger %I after delete on %s referencing old table as old_rows
                  for each statement execute function %s()', p_prefix || '_deleted', p_table, p_function);
end
$$;

-- One NOTIFY per statement (not per row), for live screens and for the worker
-- process, which hears it after the commit and asks for the job that copies
-- new messages into the process log (src/message-log-listener.ts: no job row
-- written in the writer's transaction).
create or replace function ops_private.tg_messages__added() returns trigger
language plpgsql security definer
set search_path = pg_catalog, public
as $$
declare
  ids bigint[];
  n int;
begin
  -- The payload stays small: the first 100 ids and how many there were.
  select count(*) into n from new_rows;
  select array_agg(id order by id) into ids from (select id from new_rows order by id limit 100) firsts;
  if n = 0 then
    return null;
  end if;
  perform pg_notify('ops_message_added', json_build_object('ids', ids, 'count', n)::text);
  return null;
end
$$;

create or replace trigger messages_added
  after insert on ops.messages
  referencing new table as new_rows
  for each statement execute function ops_private.tg_messages__added();
drop function if exists ops_private.messages_added();

------------------------------------------------------------------------------
-- Users and login
------------------------------------------------------------------------------

create or replace function ops_private.token_for(p_user ops_private.users) returns ops.jwt_token
language sql stable
as $$
  select row(
    p_user.role,
    p_user.id,
    p_user.username,
    extract(epoch from now() + ops.setting_interval('auth.token_lifetime'))::bigint
  )::ops.jwt_token
$$;

-- New passwords: at least 12 characters, not only blanks, at most 72 bytes
-- (bcrypt ignores the rest, so a longer one would be cut without a word).
create or replace function ops_private.check_new_password(p_password text) returns void
language plpgsql immutable
set search_path = pg_catalog, public
as $$
begin
  if p_password is null or p_password ~ '^\s*$' then
    raise exception 'password: a password must not be empty or only blanks' using errcode = 'SF422';
  elsif char_length(p_password) < 12 then
    raise exception 'password: at least 12 characters are needed (got %)', char_length(p_password) using errcode = 'SF422';
  elsif octet_length(p_password) > 72 then
    raise exception 'password: at most 72 bytes are allowed (got %); bcrypt would ignore the rest', octet_length(p_password)
      using errcode = 'SF422', hint = 'Letters beyond ASCII take 2 to 4 bytes each.';
  end if;
end
$$;

-- bcrypt cost for new hashes: the auth.bcrypt_cost setting, never below 10.
create or replace function ops_private.bcrypt_cost() returns int
language sql stable
set search_path = pg_catalog, public
as $$
  select least(greatest(ops.setting_numeric('auth.bcrypt_cost'), 10), 16)::int
$$;

create or replace function ops_private.hash_password(p_password text) returns text
language sql volatile
set search_path = pg_catalog, public
as $$
  select public.crypt(p_password, public.gen_salt('bf', ops_private.bcrypt_cost()))
$$;

-- When a username or an address may try again: after auth.login_cooldown
-- from the last failure, once it has max failures inside the window.
create or replace function ops_private.login_blocked_until(f ops_private.login_failures, p_max int, p_window interval, p_cooldown interval)
returns timestamptz
language sql stable
set search_path = pg_catalog, public
as $$
  select case when f.failures >= p_max and f.first_failure_at >= now() - p_window
              then f.last_failure_at + p_cooldown end
$$;

-- Counts a failure for (kind, key); the count restarts when the window has passed.
create or replace function ops_private.count_login_failure(p_kind text, p_key text, p_window interval) returns void
language sql volatile
set search_path = pg_catalog, public
as $$
  insert into ops_private.login_failures as f (kind, key, failures, first_failure_at, last_failure_at)
  values (p_kind, p_key, 1, now(), now())
  on conflict (kind, key) do update
    set failures = case when f.first_failure_at is null or f.first_failure_at < now() - p_window then 1 else f.failures + 1 end,
        first_failure_at = case when f.first_failure_at is null or f.first_failure_at < now() - p_window then now() else f.first_failure_at end,
        last_failure_at = now()
$$;

-- Login never raises for bad credentials: it returns its verdict, so that the
-- failure it counted and audited is committed with the answer (the API turns
-- a refusal into an SF401/SF429 error). Returns {"token": {...claims}} or
-- {"code": "SF401"|"SF429", "message": ..., "retry_after": ...}.
-- The caller's address comes from the API (setting shopfloor.client_address).
drop function if exists ops.login(text, text);
create function ops.login(username text, password text) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  v_name text := coalesce(nullif(lower(left(coalesce(login.username, ''), 200)), ''), '(empty)');
  v_addr text := nullif(left(current_setting('shopfloor.client_address', true), 200), '');
  v_window interval := ops.setting_interval('auth.login_failure_window');
  v_cooldown interval := ops.setting_interval('auth.login_cooldown');
  f_user ops_private.login_failures;
  f_addr ops_private.login_failures;
  v_until timestamptz;
  u ops_private.users;
  v_ok boolean := false;
begin
  delete from ops_private.login_failures where last_failure_at < now() - greatest(v_window, v_cooldown);
  -- One attempt at a time per username: parallel guesses queue on this row
  -- instead of all passing the check before any failure is counted.
  insert into ops_private.login_failures (kind, key) values ('user', v_name) on conflict do nothing;
  select * into f_user from ops_private.login_failures f where f.kind = 'user' and f.key = v_name for update;
  select * into f_addr from ops_private.login_failures f where f.kind = 'address' and f.key = v_addr;
  v_until := greatest(
    ops_private.login_blocked_until(f_user, ops.setting_numeric('auth.login_max_failures')::int, v_window, v_cooldown),
    ops_private.login_blocked_until(f_addr, ops.setting_numeric('auth.login_max_failures_per_address')::int, v_window, v_cooldown));
  if v_until > now() then
    -- Refused attempts do not extend the cooldown: an attacker cannot keep the real user out for good.
    perform ops.audit('login_refused', 'user', v_name, jsonb_build_object('address', v_addr, 'retry_after', v_until));
    return jsonb_build_object(
      'code', 'SF429',
      'message', format('Too many failed logins: try again in %s seconds (after %s)',
                        ceil(extract(epoch from v_until - now()))::int,
                        to_char(v_until at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
      'retry_after', v_until);
  end if;

  select * into u from ops_private.users where users.username = v_name and disabled_at is null;
  -- Unknown, disabled and password-less users cost one bcrypt at the same
  -- cost too, so the answer takes as long either way.
  if u.password_hash is not null and octet_length(coalesce(password, '')) <= 72 then
    v_ok := public.crypt(coalesce(password, ''), u.password_hash) = u.password_hash;
  else
    perform public.crypt(coalesce(password, ''), public.gen_salt('bf', ops_private.bcrypt_cost()));
  end if;

  if not v_ok then
    perform ops_private.count_login_failure('user', v_name, v_window);
    if v_addr is not null then
      perform ops_private.count_login_failure('address', v_addr, v_window);
    end if;
    perform ops.audit('login_failed', 'user', v_name, jsonb_build_object('address', v_addr, 'reason',
      case when u.id is null then 'unknown or disabled user' when u.password_hash is null then 'user has no password'
           when octet_length(password) > 72 then 'password longer than 72 bytes' else 'wrong password' end));
    return jsonb_build_object('code', 'SF401', 'message', 'Invalid username or password');
  end if;

  delete from ops_private.login_failures f where f.kind = 'user' and f.key = v_name;
  -- Hashes made at a lower cost are upgraded while the password is at hand.
  if split_part(u.password_hash, '$', 3) ~ '^\d+$' and split_part(u.password_hash, '$', 3)::int < ops_private.bcrypt_cost() then
    update ops_private.users set password_hash = ops_private.hash_password(password) where id = u.id;
  end if;
  perform ops.audit('login', 'user', u.username, jsonb_build_object('address', v_addr));
  return jsonb_build_object('token', to_jsonb(ops_private.token_for(u)));
end
$$;
comment on function ops.login(text, text) is E'@behavior -queryField -mutationField\nChecks a username and password. Returns {"token": claims} (the API signs them as a JWT), or {"code": "SF401"|"SF429", "message", "retry_after"}. Failures are counted per username and per source address and audited; too many wait auth.login_cooldown.';

-- Tokens end with their user: the API re-checks live websocket sessions when users change.
create or replace function ops_private.tg_users__changed() returns trigger
language plpgsql
set search_path = pg_catalog, public
as $$
begin
  perform pg_notify('ops_users_changed', '');
  return null;
end
$$;
create or replace trigger users_changed
  after update or delete on ops_private.users
  for each statement execute function ops_private.tg_users__changed();
drop function if exists ops_private.users_changed();

create or replace function ops.create_user(username text, role text, password text default null, display_name text default '')
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, public
as $$
declare
  new_id bigint;
  full_role text := case when role like 'shopfloor\_%' then role else 'shopfloor_' || role end;
begin
  if password is not null then
    perform ops_private.check_new_password(password);
  end if;
  begin
    insert into ops_private.users (username, role, password_hash, display_name)
    values (lower(username), full_role,
            case when password is null then null else ops_private.hash_password(password) end,
            coalesce(display_name, ''))
    returning id into new_id;
  exception
    when unique_violation then
      raise exception 'User % already exists', lower(username) using errcode = 'SF409';
    when check_violation then
      raise exception 'Invalid user: username must be lower-case letters, digits, dot, dash or underscore; role one of operator, supervisor, planner, integration, admin'
        using errcode = 'SF422';
  end;
  perform ops.audit('create_user', 'user', lower(username), jsonb_build_object('role', full_role));
  return new_id;
end
$$;
comment on function ops.create_user(text, text, text, text) is 'Creates a user (admin). role: operator, supervisor, planner, integration or admin. Returns its id.';

create or replace function ops.set_user_password(username text, password text) returns void
language plpgsql volatile strict security definer
set search_path = pg_catalog, public
as $$
begin
  perform ops_private.check_new_password(password);
  update ops_private.users u set password_hash = ops_private.hash_password(password)
   where u.username = lower(set_user_password.username);
  if not found then
    raise exception 'User % does not exist', lower(username) using errcode = 'SF404';
  end if;
  perform ops.audit('set_user_password', 'user', lower(username));
end
$$;

create or replace function ops.disable_user(username text) returns void
language plpgsql volatile strict security definer
set search_path = pg_catalog, public
as $$
begin
  update ops_private.users u set disabled_at = coalesce(u.disabled_at, now())
   where u.username = lower(disable_user.username);
  if not found then
    raise exception 'User % does not exist', lower(username) using errcode = 'SF404';
  end if;
  perform ops.audit('disable_user', 'user', lower(username));
end
$$;

------------------------------------------------------------------------------
-- GraphQL shape and grants
------------------------------------------------------------------------------

comment on table ops.messages is E'@behavior -insert -update -delete\nMessages for operators (the Messages page). Written by modules through ops.post_message.';
comment on table ops.watcher_events is E'@behavior -insert -update -delete\nWhat the folder watchers saw (diagnostics).';
comment on table ops.audit_log is E'@behavior -insert -update -delete\nWho did what, when, to what.';
comment on table ops.settings is E'@behavior -insert -update -delete\nPlant settings; change them with setSetting (admin).';

grant usage on schema ops to shopfloor_anonymous, shopfloor_operator, shopfloor_integration;
grant execute on function ops.login(text, text) to shopfloor_anonymous, shopfloor_operator, shopfloor_integration;
grant execute on function ops.current_actor(), ops.plant_now(), ops.plant_today(),
  ops.setting(text), ops.setting_checked(text, text, text, boolean), ops.setting_text(text, text), ops.setting_numeric(text, numeric),
  ops.setting_boolean(text, boolean), ops.setting_interval(text, interval)
  to shopfloor_operator, shopfloor_integration;

grant select on ops.messages, ops.settings to shopfloor_operator, shopfloor_integration;
grant execute on function ops.acknowledge_message(bigint), ops.acknowledge_messages(text),
  ops.unread_message_count(text) to shopfloor_operator;
grant execute on function ops.post_message(text, text, text, text, jsonb) to shopfloor_integration, shopfloor_supervisor;

grant select on ops.audit_log to shopfloor_supervisor;
grant select on ops.watcher_events to shopfloor_supervisor;

grant execute on function ops.set_setting(text, jsonb, text), ops.create_user(text, text, text, text),
  ops.set_user_password(text, text), ops.disable_user(text) to shopfloor_admin;

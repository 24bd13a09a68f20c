// Configuration: defaults, a JSON file under the environment, and errors that
// name the variable and what it expects.
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { resolveJwtSecret } from "../../src/auth/jwt.ts";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { resolveApiDbPassword } from "../../src/db/api-roles.ts";

const cwd = "/srv/shopfloor";

test("defaults: port 5678, embedded database, folders under DATA_DIR", (t) => {
  const c = loadConfig({}, cwd);
  t.is(c.port, 5678);
  t.is(c.databaseUrl, undefined);
  t.is(c.dataDir, "/srv/shopfloor/.data");
  t.is(c.grundnerDir, "/srv/shopfloor/.data/grundner");
  t.deepEqual(c.readyDirs, ["/srv/shopfloor/.data/ready"]);
  t.is(c.processedRoot, "/srv/shopfloor/.data/processed");
  t.is(c.plantTimezone, "UTC");
  t.is(c.watchPolling, false);
});

test("environment values are parsed and typed", (t) => {
  const c = loadConfig(
    {
      PORT: "8080",
      DATABASE_URL: "postgres://u:p@db:5432/shopfloor",
      PLANT_TIMEZONE: "Europe/Berlin",
      READY_DIRS: "/mnt/ready1, /mnt/ready2",
      WATCH_POLLING: "yes",
      GRUNDNER_DIR: "//nas/grundner",
    },
    cwd,
  );
  t.is(c.port, 8080);
  t.is(c.databaseUrl, "postgres://u:p@db:5432/shopfloor");
  t.is(c.plantTimezone, "Europe/Berlin");
  t.deepEqual(c.readyDirs, ["/mnt/ready1", "/mnt/ready2"]);
  t.true(c.watchPolling);
});

test("a bad value names the variable and what it expects", (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ PORT: "http" }, /PORT: expected a port number \(1-65535\) \(got "http"\)/],
    [{ PORT: "70000" }, /PORT: expected a port number/],
    [{ PLANT_TIMEZONE: "Europe/Atlantis" }, /PLANT_TIMEZONE: expected an IANA time zone name/],
    [{ JWT_SECRET: "short" }, /JWT_SECRET: expected at least 32 characters/],
    [{ DATABASE_URL: "mysql://x" }, /DATABASE_URL: expected a postgres:\/\/ connection URL/],
    [{ LOG_LEVEL: "loud" }, /LOG_LEVEL: /],
    [{ WATCH_POLLING: "perhaps" }, /WATCH_POLLING: /],
  ];
  for (const [env, message] of cases) {
    const err = t.throws(() => loadConfig(env, cwd), { instanceOf: ConfigError });
    t.regex(err!.message, message);
  }
});

test("several bad values are all reported, and secrets are never echoed", (t) => {
  const err = t.throws(() => loadConfig({ PORT: "x", JWT_SECRET: "tiny-secret" }, cwd), { instanceOf: ConfigError });
  t.is((err as ConfigError).problems.length, 2);
  t.notRegex(err!.message, /tiny-secret/);
});

test("CONFIG_FILE supplies settings; the environment wins", (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "config-"));
  const file = path.join(dir, "shopfloor.json");
  writeFileSync(file, JSON.stringify({ PORT: 7000, HOST: "127.0.0.1", READY_DIRS: ["/a", "/b"] }));
  const c = loadConfig({ CONFIG_FILE: file, PORT: "7001" }, cwd);
  t.is(c.port, 7001);
  t.is(c.host, "127.0.0.1");
  t.deepEqual(c.readyDirs, ["/a", "/b"]);

  writeFileSync(file, JSON.stringify({ PROT: 7000 }));
  t.throws(() => loadConfig({ CONFIG_FILE: file }, cwd), { message: /PROT \(in .*\): unknown setting/ });
  writeFileSync(file, "{ not json");
  t.throws(() => loadConfig({ CONFIG_FILE: file }, cwd), { message: /CONFIG_FILE: .* is not valid JSON/ });
  t.throws(() => loadConfig({ CONFIG_FILE: path.join(dir, "missing.json") }, cwd), { message: /does not exist/ });
});

test("without JWT_SECRET a development secret is generated once and kept private", (t) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "secret-"));
  const config = loadConfig({ DATA_DIR: dataDir }, cwd);
  const first = resolveJwtSecret(config);
  const second = resolveJwtSecret(config);
  t.is(first, second);
  t.true(first.length >= 32);
  t.is(readFileSync(path.join(dataDir, "jwt-secret"), "utf8").trim(), first);
  t.is(statSync(path.join(dataDir, "jwt-secret")).mode & 0o777, 0o600);
});

test("production refuses to start without JWT_SECRET", (t) => {
  const config = loadConfig({ NODE_ENV: "production" }, cwd);
  t.throws(() => resolveJwtSecret(config), { message: /JWT_SECRET: required when NODE_ENV=production/ });
});

test("production turns Ruru and introspection off unless a setting turns them on; development keeps them", (t) => {
  const dev = loadConfig({}, cwd);
  t.deepEqual([dev.graphiql, dev.graphqlIntrospection], [true, true]);
  const prod = loadConfig({ NODE_ENV: "production" }, cwd);
  t.deepEqual([prod.graphiql, prod.graphqlIntrospection], [false, false]);
  const opened = loadConfig({ NODE_ENV: "production", GRAPHIQL: "true", GRAPHQL_INTROSPECTION: "on" }, cwd);
  t.deepEqual([opened.graphiql, opened.graphqlIntrospection], [true, true]);
  t.deepEqual(
    [prod.graphqlMaxRequestBytes, prod.graphqlMaxDepth, prod.graphqlMaxFields, prod.graphqlMaxPageSize],
    [100_000, 15, 1000, 1000],
  );
  const e = t.throws(() => loadConfig({ GRAPHQL_MAX_DEPTH: "deep" }, cwd), { instanceOf: ConfigError });
  t.regex(e!.message, /GRAPHQL_MAX_DEPTH: expected a positive whole number/);
});

test("API_DB_PASSWORD: required in production with DATABASE_URL, else generated once with mode 0600, never shown", (t) => {
  const e = t.throws(
    () => resolveApiDbPassword(loadConfig({ NODE_ENV: "production", DATABASE_URL: "postgres://a@b/c" }, cwd)),
    { instanceOf: ConfigError },
  );
  t.regex(e!.message, /API_DB_PASSWORD: required when NODE_ENV=production/);
  const dir = mkdtempSync(path.join(os.tmpdir(), "shopfloor-config-"));
  const first = resolveApiDbPassword(loadConfig({ DATA_DIR: dir }, cwd));
  t.is(resolveApiDbPassword(loadConfig({ DATA_DIR: dir }, cwd)), first);
  t.is(statSync(path.join(dir, "api-db-password")).mode & 0o777, 0o600);
  const short = t.throws(() => loadConfig({ API_DB_PASSWORD: "short-secret" }, cwd), { instanceOf: ConfigError });
  t.notRegex(short!.message, /short-secret/);
});

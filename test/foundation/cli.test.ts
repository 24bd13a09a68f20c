// The commands a new user types, as real processes: start on the embedded
// database, healthz, a token, Ctrl-C/SIGTERM exiting 0 with no postgres left,
// data kept across restarts; DATABASE_URL; a bad setting.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { freePort } from "../../src/db/embedded.ts";
import { TEST_API_DB_PASSWORD } from "../helpers/api.ts";
import { createTestDatabase, waitBudget, type TestDb } from "../helpers/db.ts";
import { alive } from "../helpers/process.ts";

const CLI = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));

function baseEnv(extra: Record<string, string>) {
  const env: Record<string, string> = { ...(process.env as Record<string, string>), LOG_PRETTY: "false", NODE_ENV: "development" };
  delete env.DATABASE_URL;
  delete env.CONFIG_FILE;
  return { ...env, ...extra };
}

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; ms: number }>;
  signalAt: number;
}

function run(args: string[], env: Record<string, string>): Running {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const r: Running = {
    child,
    output: () => out,
    signalAt: 0,
    exited: new Promise((resolve) => child.on("exit", (code) => resolve({ code, ms: Date.now() - r.signalAt }))),
  };
  return r;
}

async function waitFor(r: Running, text: string, timeoutMs: number) {
  const deadline = Date.now() + waitBudget(timeoutMs);
  while (!r.output().includes(text)) {
    if (Date.now() > deadline) throw new Error(`"${text}" not seen within ${timeoutMs} ms:\n${r.output()}`);
    if (r.child.exitCode !== null) throw new Error(`exited early (${r.child.exitCode}):\n${r.output()}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

function postgresPid(dataDir: string): number {
  return Number(readFileSync(path.join(dataDir, "pg", "postmaster.pid"), "utf8").split("\n")[0]);
}

async function gql(port: number, query: string, token?: string) {
  const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query }),
  });
  return res.json();
}

function tempDataDir() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "shopfloor-cli-"));
  chmodSync(dir, 0o755);
  return dir;
}

test.serial("start on the embedded database: up, healthy, token works, SIGTERM/SIGINT exit 0, data kept", async (t) => {
  const dataDir = tempDataDir();
  const port = await freePort();
  // debug: the secrets must stay out of even the chattiest log a plant would turn on.
  const env = baseEnv({ DATA_DIR: dataDir, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "debug" });

  const started = Date.now();
  const first = run(["start"], env);
  t.teardown(() => first.child.kill("SIGKILL"));
  await waitFor(first, "Shopfloor is up", 90_000);
  t.log(`first start (initdb + migrate) up in ${Date.now() - started} ms`);
  t.regex(first.output(), new RegExp(`API listening on http://127.0.0.1:${port}`));

  const ruru = await fetch(`http://127.0.0.1:${port}/graphiql`, { headers: { accept: "text/html" } });
  t.is(ruru.status, 200);

  // `npm run token` while the server runs: it reuses the running embedded PostgreSQL.
  const tokenRun = run(["token"], env);
  const tokenExit = await tokenRun.exited;
  t.is(tokenExit.code, 0, tokenRun.output());
  const token = tokenRun.output().split("\n")[0].trim();
  // The details of /healthz need a token.
  const health = await (await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { authorization: `Bearer ${token}` } })).json();
  t.true(health.ok);
  t.deepEqual([health.database.ok, health.worker.status, health.watchers.ok], [true, "running", true]);
  const posted = await gql(port, `mutation { postMessage(input: { source: "cli-test", severity: "info", title: "kept across restarts" }) { result { rowId } } }`, token);
  t.falsy(posted.errors, JSON.stringify(posted.errors));

  const pgPid = postgresPid(dataDir);
  t.true(alive(pgPid));
  first.signalAt = Date.now();
  first.child.kill("SIGTERM");
  const stop1 = await first.exited;
  t.is(stop1.code, 0, first.output());
  t.true(stop1.ms < 10_000, `stopped in ${stop1.ms} ms`);
  t.false(alive(pgPid), "no postgres left behind");
  t.false(existsSync(path.join(dataDir, "pg", "postmaster.pid")));
  // Neither the generated JWT secret nor the embedded server's password is ever logged.
  const jwtSecret = readFileSync(path.join(dataDir, "jwt-secret"), "utf8").trim();
  const pgPassword = JSON.parse(readFileSync(path.join(dataDir, "embedded-pg.json"), "utf8")).password as string;
  const apiPassword = readFileSync(path.join(dataDir, "api-db-password"), "utf8").trim();
  t.true(jwtSecret.length >= 32 && pgPassword.length >= 16 && apiPassword.length >= 16);
  for (const output of [first.output(), tokenRun.output().split("\n").slice(1).join("\n")]) {
    t.false(output.includes(jwtSecret), "JWT secret logged");
    t.false(output.includes(apiPassword), "API login password logged");
    t.false(output.includes(pgPassword) || output.includes(encodeURIComponent(pgPassword)), "database password logged");
  }

  const second = run(["start"], env);
  t.teardown(() => second.child.kill("SIGKILL"));
  await waitFor(second, "Shopfloor is up", 90_000);
  const found = await gql(port, `{ allMessages(condition: { source: "cli-test" }) { nodes { title } } }`, token);
  t.deepEqual(found.data?.allMessages.nodes, [{ title: "kept across restarts" }]);
  const pgPid2 = postgresPid(dataDir);
  second.signalAt = Date.now();
  second.child.kill("SIGINT");
  const stop2 = await second.exited;
  t.is(stop2.code, 0, second.output());
  t.true(stop2.ms < 10_000);
  t.false(alive(pgPid2));
});

let db: TestDb;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(() => db?.drop());

test.serial("with DATABASE_URL the same command uses that server and starts no embedded one", async (t) => {
  const dataDir = tempDataDir();
  const port = await freePort();
  // The API login roles are cluster-wide: use the test suite's password, not a new one.
  const r = run(["serve"], baseEnv({ DATA_DIR: dataDir, PORT: String(port), HOST: "127.0.0.1", DATABASE_URL: db.url, API_DB_PASSWORD: TEST_API_DB_PASSWORD }));
  t.teardown(() => r.child.kill("SIGKILL"));
  await waitFor(r, "Shopfloor is up", 90_000);
  t.regex(r.output(), /using the database from DATABASE_URL/);
  t.false(existsSync(path.join(dataDir, "pg")), "no embedded cluster created");
  t.notRegex(r.output(), new RegExp(new URL(db.url).password || "(no password)"), "the password is not logged");
  t.deepEqual(await (await fetch(`http://127.0.0.1:${port}/healthz`)).json(), { ok: true }, "anonymous: ok or not only");
  r.signalAt = Date.now();
  r.child.kill("SIGTERM");
  t.is((await r.exited).code, 0);
});

test("a bad setting stops start-up with a message naming the variable", async (t) => {
  const r = run(["start"], baseEnv({ PORT: "eighty", PLANT_TIMEZONE: "Mars/Base" }));
  const { code } = await r.exited;
  t.is(code, 78);
  t.regex(r.output(), /PORT: expected a port number/);
  t.regex(r.output(), /PLANT_TIMEZONE: expected an IANA time zone name/);
});

test("an unknown command prints the usage and fails", async (t) => {
  const r = run(["frobnicate"], baseEnv({}));
  t.is((await r.exited).code, 2);
  t.regex(r.output(), /Unknown command: frobnicate/);
  t.regex(r.output(), /Usage: shopfloor/);
});

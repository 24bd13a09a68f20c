// DATABASE_URL through a transaction-mode pooler (a real pgbouncer) is refused
// at start-up with a sentence; through pgbouncer in session mode it starts.
import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import test from "ava";
import { freePort } from "../../src/db/embedded.ts";
import { PoolerError, refuseTransactionPooler } from "../../src/db/pooler.ts";
import { createTestDatabase, type TestDb } from "../helpers/db.ts";
import { cliEnv, runCli, tempDir } from "../helpers/process.ts";

const pgbouncer = ["/usr/sbin/pgbouncer", "pgbouncer"].find((p) => spawnSync(p, ["--version"]).status === 0);

let db: TestDb;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(() => db?.drop());

/** A pgbouncer in `mode` in front of the test database; returns the URL through it. */
async function startPgbouncer(t: import("ava").ExecutionContext, mode: "transaction" | "session") {
  const upstream = new URL(db.url);
  const dir = tempDir("shopfloor-pgbouncer-");
  const port = await freePort();
  const ini = path.join(dir, "pgbouncer.ini");
  writeFileSync(
    ini,
    [
      "[databases]",
      `* = host=${upstream.hostname} port=${upstream.port} user=${decodeURIComponent(upstream.username)} password=${decodeURIComponent(upstream.password)}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = any",
      `pool_mode = ${mode}`,
      "default_pool_size = 5",
      "ignore_startup_parameters = extra_float_digits,options,application_name",
    ].join("\n") + "\n",
    { mode: 0o644 },
  );
  const args = process.getuid?.() === 0 ? ["-u", "postgres", ini] : [ini];
  const child = spawn(pgbouncer!, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  t.teardown(() => child.kill("SIGTERM"));
  await new Promise<void>((resolve, reject) => {
    const check = () => (out.includes("process up") ? resolve() : undefined);
    child.stdout!.on("data", check);
    child.stderr!.on("data", check);
    child.once("exit", (code) => reject(new Error(`pgbouncer exited (${code}): ${out}`)));
  });
  const through = new URL(db.url);
  through.port = String(port);
  through.hostname = "127.0.0.1";
  return through.toString();
}

test("a DATABASE_URL through pgbouncer in transaction mode is refused at start-up with a sentence", async (t) => {
  if (!pgbouncer) {
    t.log("pgbouncer is not installed (apt-get install pgbouncer; .ci/run installs it): not tested here");
    return t.pass();
  }
  const url = await startPgbouncer(t, "transaction");
  const err = await t.throwsAsync(refuseTransactionPooler(url), { instanceOf: PoolerError });
  t.regex(err!.message, /transaction mode|transaction-mode/);
  const r = runCli(["serve"], cliEnv({ DATABASE_URL: url, DATA_DIR: tempDir("shopfloor-pooler-"), PORT: String(await freePort()) }));
  t.is(await r.exited, 1);
  t.regex(r.output(), /shopfloor: DATABASE_URL goes through a pooler in transaction mode.*pool_mode = session/);
});

test("pgbouncer in session mode and a direct connection pass the check", async (t) => {
  await t.notThrowsAsync(refuseTransactionPooler(db.url));
  if (!pgbouncer) return t.log("pgbouncer is not installed: only the direct connection was checked");
  const url = await startPgbouncer(t, "session");
  await t.notThrowsAsync(refuseTransactionPooler(url));
});

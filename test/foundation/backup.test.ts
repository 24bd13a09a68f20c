// npm run backup / restore on the embedded default: a backup taken while the
// plant runs and writes, restored into a fresh data directory; the app starts
// on it, users log in, and every table holds what it held at one moment of the
// backup (whole transactions only).
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import test from "ava";
import pg from "pg";
import { embeddedRootUrl, freePort, startEmbedded, withDatabase } from "../../src/db/embedded.ts";
import { testLog } from "../helpers/db.ts";
import { cliEnv, runCli, tempDir } from "../helpers/process.ts";

function appUrl(dataDir: string) {
  const state = JSON.parse(readFileSync(path.join(dataDir, "embedded-pg.json"), "utf8"));
  return withDatabase(embeddedRootUrl(state), "shopfloor");
}

/** Row counts of every table of ours (the modules' schemas and the worker's). */
async function rowCounts(client: pg.Client): Promise<Record<string, number>> {
  const { rows: tables } = await client.query<{ t: string }>(
    `select format('%I.%I', n.nspname, c.relname) as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%' order by 1`,
  );
  const counts: Record<string, number> = {};
  for (const { t } of tables) counts[t] = Number((await client.query(`select count(*) as n from ${t}`)).rows[0].n);
  return counts;
}

async function login(port: number, username: string, password: string) {
  const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: `mutation { login(input: { username: "${username}", password: "${password}" }) { result } }` }),
  });
  return res.json();
}

test("a backup taken while the plant runs restores into a fresh data directory; the app starts, users log in, counts match", async (t) => {
  t.timeout(15 * 60_000); // two cold starts, a backup and a restore on a busy machine
  const started = Date.now();
  const step = (what: string) => t.log(`${what}: ${Date.now() - started} ms`);
  const source = tempDir("shopfloor-backup-src-");
  const port = await freePort();
  const app = runCli(["start"], cliEnv({ DATA_DIR: source, PORT: String(port), HOST: "127.0.0.1" }));
  t.teardown(() => app.child.kill("SIGTERM")); // SIGTERM: the app stops its PostgreSQL too
  await app.waitFor("Shopfloor is up");
  step("source up");

  const db = new pg.Client({ connectionString: appUrl(source) });
  db.on("error", () => {});
  await db.connect();
  t.teardown(() => db.end().catch(() => {}));
  await db.query("select ops.create_user('olga', 'operator', 'a long password', 'Olga K.')");
  await db.query("select ops.post_message('backup-test', 'warning', 'before the backup ' || i) from generate_series(1, 300) i");

  // A writer that keeps committing pairs of messages (one transaction each) while the backup runs.
  const writer = new pg.Client({ connectionString: appUrl(source) });
  writer.on("error", () => {});
  await writer.connect();
  let writing = true;
  let pairs = 0;
  const writes = (async () => {
    while (writing) {
      await writer.query(
        "with a as (select ops.post_message('backup-pair', 'info', 'first of a pair')) select ops.post_message('backup-pair', 'info', 'second of a pair') from a",
      );
      pairs++;
    }
  })();

  const before = await rowCounts(db);
  const file = path.join(tempDir("shopfloor-backup-file-"), "plant.tar.gz");
  const backupStarted = Date.now();
  const backup = runCli(["backup", file], cliEnv({ DATA_DIR: source }));
  t.is(await backup.exited, 0, backup.output());
  const backupMs = Date.now() - backupStarted;
  const after = await rowCounts(db);
  writing = false;
  await writes;
  await writer.end();
  t.log(`backup: ${backupMs} ms; pairs committed while it ran: ${pairs}`);
  t.regex(backup.output(), /using the embedded PostgreSQL another Shopfloor process runs/, "the backup used the running server");
  t.true(existsSync(file) && !existsSync(`${file}.partial`));

  await db.end();
  app.child.kill("SIGTERM");
  t.is(await app.exited, 0, app.output());

  step("source stopped");
  // Restore into a fresh data directory; a second restore onto it is refused.
  const target = tempDir("shopfloor-backup-dst-");
  const restore = runCli(["restore", file], cliEnv({ DATA_DIR: target }));
  t.is(await restore.exited, 0, restore.output());
  const again = runCli(["restore", file], cliEnv({ DATA_DIR: target }));
  t.is(await again.exited, 1);
  t.regex(again.output(), /is not empty: restore refuses to overwrite a database; .*--force/);
  t.notRegex(again.output(), /\n\s+at /, "a sentence, not a stack trace");

  step("restored");
  // First look at the restored cluster on its own (its first start replays the WAL), before the app writes to it.
  const server = await startEmbedded({ dataDir: target, port: 0, log: testLog });
  const check = new pg.Client({ connectionString: appUrl(target) });
  check.on("error", () => {});
  await check.connect();
  const got = await rowCounts(check);
  const { rows } = await check.query("select count(*)::int as n from ops.messages where source = 'backup-pair'");
  const { rows: early } = await check.query("select count(*)::int as n from ops.messages where source = 'backup-test'");
  await check.end();
  await server.stop();
  t.deepEqual(Object.keys(got).sort(), Object.keys(before).sort(), "the same tables");
  for (const [table, n] of Object.entries(got)) {
    // The job queue churns (jobs run and are deleted, new ones added): its count says nothing.
    if (table.startsWith("graphile_worker.")) continue;
    // Each table holds its rows as of one moment between the backup's start and end.
    const low = Math.min(before[table], after[table]);
    const high = Math.max(before[table], after[table]);
    t.true(n >= low && n <= high, `${table}: ${before[table]} before, ${n} restored, ${after[table]} after`);
  }
  t.is(rows[0].n % 2, 0, "whole transactions only: no half pair");
  t.is(early[0].n, 300);

  step("restored cluster counted");
  const port2 = await freePort();
  const restored = runCli(["start"], cliEnv({ DATA_DIR: target, PORT: String(port2), HOST: "127.0.0.1" }));
  t.teardown(() => restored.child.kill("SIGTERM"));
  await restored.waitFor("Shopfloor is up");
  step("restored app up");
  const logged = await login(port2, "olga", "a long password");
  t.falsy(logged.errors, JSON.stringify(logged.errors));
  t.regex(logged.data.login.result, /^ey/, "olga gets a token from the restored database");

  restored.child.kill("SIGTERM");
  t.is(await restored.exited, 0);
});

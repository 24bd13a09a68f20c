// The nesting duties (Grundner share, ingest poller, stage sanity, Ready-to-Run
// folders) run in one process of the plant at a time; another takes over
// when it stops.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { loadConfig } from "../../src/config.ts";
import { createPool } from "../../src/db/pool.ts";
import { startWatchers } from "../../src/watchers/index.ts";
import { folderWatches } from "../../src/watchers/registry.ts";
import { createTestDatabase, eventually, testLog, type TestDb } from "../helpers/db.ts";

let db: TestDb;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(() => db?.drop());

test("a second process stands by for every nesting duty and takes over when the first stops", async (t) => {
  const base = mkdtempSync(path.join(os.tmpdir(), "takeover-"));
  const config = loadConfig({ DATA_DIR: base, READY_DIRS: path.join(base, "ready", "saw1") });
  for (const d of [config.processedRoot, ...config.readyDirs]) mkdirSync(d, { recursive: true });
  await db.query("select nesting_private.ensure_machine(d) from unnest($1::text[]) d", [config.readyDirs]);
  await db.query(`select ops.set_setting('nesting.ingest_interval', '"200 milliseconds"'), ops.set_setting('nesting.stable_after', '"0 seconds"')`);
  const pool = createPool(db.url, { max: 4, log: testLog, name: "takeover" });
  const first = startWatchers(folderWatches(config, pool), { url: db.url, log: testLog, lockRetryMs: 300 });
  const names = Object.keys(first.states());
  t.deepEqual(names.sort(), ["grundner", "jobs-ingest", `ready:${config.readyDirs[0]}`, "stage-sanity"].sort());
  await eventually(async () => names.every((n) => first.states()[n] === "watching"));
  const second = startWatchers(folderWatches(config, pool), { url: db.url, log: testLog, lockRetryMs: 300 });
  try {
    await eventually(async () => names.every((n) => second.states()[n] === "standby"));

    await first.stop();
    const stoppedAt = Date.now();
    await eventually(async () => names.every((n) => second.states()[n] === "watching"), 10_000);
    t.log(`took over in ${Date.now() - stoppedAt} ms`);
    mkdirSync(path.join(config.processedRoot, "After"), { recursive: true });
    writeFileSync(path.join(config.processedRoot, "After", "P1.nc"), "(ID=101)\r\nG100 X1 Y1 Z1\r\n");
    await eventually(async () => (await db.query(`select 1 from nesting.jobs where key = 'After/P1'`)).rowCount === 1, 10_000);
    t.pass();
  } finally {
    await first.stop().catch(() => {});
    await second.stop();
    await pool.end();
  }
});

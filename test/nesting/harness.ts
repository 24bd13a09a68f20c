// The nesting module end to end: a real worker and watcher on a temp share,
// the Grundner simulator playing the storage on the same folder.
import { mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { TestFn } from "ava";
import { loadConfig, type Config } from "../../src/config.ts";
import { createPool } from "../../src/db/pool.ts";
import { GrundnerSimulator, type SimBoard, type SimFaults } from "../../src/grundner/simulator.ts";
import { startWatchers, type Watchers } from "../../src/watchers/index.ts";
import { folderWatches } from "../../src/watchers/registry.ts";
import { startWorker, type Worker } from "../../src/worker.ts";
import { startTestApi, type TestApi } from "../helpers/api.ts";
import { eventually, testLog, withServiceOnTestDatabase, type TestDb } from "../helpers/db.ts";

export const STOCK: SimBoard[] = [
  { type: 101, material_name: "Spanplatte weiß 19", length: 2800, width: 2070, thickness: 19, stock: 10, customer_id: "SP19W" },
  { type: 102, material_name: "Eiche geölt 19", length: 2800, width: 2070, thickness: 19, stock: 3, customer_id: "EI19" },
  { type: 103, material_name: "Bøg massiv", length: 3050, width: 1250, thickness: 22, stock: 5 },
  { type: 104, material_name: "Hêtre étuvé", length: 2500, width: 1250, thickness: 18.5, stock: 4 },
];

export interface Nesting {
  config: Config;
  share: string;
  sim: GrundnerSimulator;
  worker: Worker;
  watchers: Watchers;
  files(): string[];
  archived(): string[];
  quarantined(): string[];
  stop(): Promise<void>;
  /** Stops the worker only (a crash of the worker process). */
  restartWorker(): Promise<void>;
}

export type NestingOptions = { delayMs?: number; faults?: SimFaults; syncStock?: boolean; folders?: boolean; prepare?: (config: Config) => void };

export async function startNesting(db: TestDb, opts: NestingOptions = {}): Promise<Nesting> {
  const base = mkdtempSync(path.join(os.tmpdir(), "nesting-"));
  const config = loadConfig({
    DATA_DIR: base,
    GRUNDNER_DIR: path.join(base, "share"),
    GRUNDNER_ARCHIVE_DIR: path.join(base, "archive"),
    GRUNDNER_QUARANTINE_DIR: path.join(base, "quarantine"),
    PROCESSED_ROOT: path.join(base, "processed"),
    READY_DIRS: `${path.join(base, "ready", "saw1")},${path.join(base, "ready", "saw2")}`,
  });
  for (const d of [config.processedRoot, ...config.readyDirs]) mkdirSync(d, { recursive: true });
  opts.prepare?.(config);
  await db.query("select nesting_private.ensure_machine(d) from unnest($1::text[]) d", [config.readyDirs]);
  const pool = createPool(db.url, { max: 6, log: testLog, name: "nesting-test" });
  const start = () => startWorker({ pool, config, concurrency: 2, pollInterval: 500, log: testLog });
  let worker = await start();
  // Tests without folders create jobs by SQL: with the folder duties, the ingest
  // poller would prune them (their NC files are not on disk).
  const duties = folderWatches(config, pool).filter((w) => opts.folders || w.name === "grundner");
  const watchers = startWatchers(duties, { url: db.url, log: testLog, lockRetryMs: 200 });
  await eventually(async () => watchers.states().grundner === "watching");
  const sim = new GrundnerSimulator({ folder: config.grundnerDir, stock: STOCK, delayMs: opts.delayMs, faults: opts.faults }).start();
  const list = (d: string) => {
    try {
      return readdirSync(d).sort();
    } catch {
      return [];
    }
  };
  const n: Nesting = {
    config,
    share: config.grundnerDir,
    sim,
    get worker() {
      return worker;
    },
    watchers,
    files: () => list(config.grundnerDir),
    archived: () => list(config.grundnerArchiveDir),
    quarantined: () => list(config.grundnerQuarantineDir),
    async restartWorker() {
      await worker.stop();
      worker = await start();
    },
    async stop() {
      await sim.stop();
      await watchers.stop();
      await worker.stop();
      // A job's completion may still wait for a connection after the worker
      // stopped; pool.end() would leave it waiting until it times out.
      await eventually(async () => pool.waitingCount === 0 && pool.idleCount === pool.totalCount, 10_000).catch(() => {});
      await pool.end();
    },
  };
  if (opts.syncStock !== false) {
    const { rows } = await db.query(`select nesting.request_stock('test') as id`);
    await waitForRequest(db, rows[0].id, ["answered"]);
  }
  return n;
}

/** `before` runs on the new database before the module starts (settings its duties read when they start). */
export type WithNestingOptions = NestingOptions & { before?: (db: TestDb) => Promise<unknown> };

/** The hooks of a nesting test file: its own database with the module running on it (startNesting); see withServiceOnTestDatabase. */
export function withNesting(test: TestFn, ready: (made: { db: TestDb; n: Nesting }) => unknown, opts: WithNestingOptions = {}) {
  withServiceOnTestDatabase(
    test,
    async (db) => {
      await opts.before?.(db);
      return startNesting(db, opts);
    },
    (db, n) => ready({ db, n }),
  );
}

/** withNesting with the API too: started after the module, stopped before it. */
export function withNestingApi(test: TestFn, ready: (made: { db: TestDb; n: Nesting; api: TestApi }) => unknown, opts: WithNestingOptions = {}) {
  withServiceOnTestDatabase(
    test,
    async (db) => {
      await opts.before?.(db);
      const n = await startNesting(db, opts);
      const api = await startTestApi(db).catch(async (e) => {
        await n.stop();
        throw e;
      });
      return {
        n,
        api,
        async stop() {
          await api.stop();
          await n.stop();
        },
      };
    },
    (db, { n, api }) => ready({ db, n, api }),
  );
}

export async function waitForRequest(db: TestDb, id: string | number, statuses: string[], timeoutMs = 15_000) {
  return eventually(async () => {
    const { rows } = await db.query(`select * from nesting.grundner_requests where id = $1`, [id]);
    return statuses.includes(rows[0]?.status) ? rows[0] : undefined;
  }, timeoutMs, 20);
}

export async function addJob(db: TestDb, key: string, material: string, extra: Record<string, unknown> = {}) {
  const folder = key.includes("/") ? key.slice(0, key.lastIndexOf("/")) : "";
  const ncfile = `${key.slice(key.lastIndexOf("/") + 1)}.nc`;
  const { rows } = await db.query(
    `insert into nesting.jobs (key, folder, ncfile, material, status) values ($1, $2, $3, $4, $5) returning *`,
    [key, folder, ncfile, material, extra.status ?? "PENDING"],
  );
  return rows[0];
}

export async function job(db: TestDb, key: string) {
  const { rows } = await db.query(`select * from nesting.jobs where key = $1`, [key]);
  return rows[0];
}

export async function messages(db: TestDb, source = "grundner") {
  const { rows } = await db.query(`select severity, title, body from ops.messages where source = $1 order by id`, [source]);
  return rows as { severity: string; title: string; body: string }[];
}

// A real graphile-worker on a test database, with its own pool; stop() ends both.
import type { TestFn } from "ava";
import { loadConfig, type Config } from "../../src/config.ts";
import { createPool } from "../../src/db/pool.ts";
import { startWorker, type Worker } from "../../src/worker.ts";
import { testLog, withServiceOnTestDatabase, type TestDb } from "./db.ts";

export type TestWorkerOptions = { concurrency?: number; pollInterval?: number; config?: Config };

export async function startTestWorker(db: TestDb, opts: TestWorkerOptions = {}): Promise<Worker> {
  const pool = createPool(db.url, { max: (opts.concurrency ?? 2) + 3, log: testLog, name: "test-worker" });
  const worker = await startWorker({
    pool,
    config: opts.config ?? loadConfig({}),
    concurrency: opts.concurrency ?? 2,
    pollInterval: opts.pollInterval ?? 1000,
    log: testLog,
    grundnerPasses: false, // no Grundner share here
  });
  let stopping: Promise<void> | undefined;
  return {
    health: () => worker.health(),
    stop: () => (stopping ??= worker.stop().then(() => pool.end())),
  };
}

/** The hooks of a test file that runs the worker: see withServiceOnTestDatabase. */
export function withTestWorker(test: TestFn, ready: (made: { db: TestDb; worker: Worker }) => unknown, opts: TestWorkerOptions = {}) {
  withServiceOnTestDatabase(test, (db) => startTestWorker(db, opts), (db, worker) => ready({ db, worker }));
}

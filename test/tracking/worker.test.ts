// Trigger → worker → status: a record inserted by plain SQL updates its job
// within 2 seconds; a burst is one debounced job.
import test from "ava";
import { loadConfig } from "../../src/config.ts";
import { createPool } from "../../src/db/pool.ts";
import { startWorker, type Worker } from "../../src/worker.ts";
import { createTestDatabase, eventually, testLog, type TestDb } from "../helpers/db.ts";

let db: TestDb;
let worker: Worker;
test.before(async () => {
  db = await createTestDatabase();
  await db.query(`insert into tracking.jobs (job_id) select 'w_' || g from generate_series(1, 50) g`);
  await db.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id) select 'WIMP' || g, 'FILE_1_Labex_w_' || g || '_x' from generate_series(1, 50) g`);
  const pool = createPool(db.url, { max: 4, log: testLog, name: "test-tracking-worker" });
  worker = await startWorker({ pool, config: loadConfig({}), concurrency: 2, pollInterval: 1000, log: testLog });
  const stop = worker.stop;
  worker.stop = async () => {
    await stop();
    await pool.end();
  };
});
test.after.always(async () => {
  await worker?.stop();
  await db?.drop();
});

test.serial("a print OS record inserted by plain SQL updates its job within 2 seconds", async (t) => {
  await eventually(async () => worker.health().listening);
  const started = Date.now();
  await db.query(`insert into tracking."print OS" (name, status, marker) values ('WIMP1', 'PRINTED', 1)`);
  await eventually(async () => {
    const r = await db.query<{ p: boolean | null }>(`select (operations->>'print')::boolean as p from tracking.jobs where job_id = 'w_1'`);
    return r.rows[0].p === true;
  }, 2000, 10);
  const ms = Date.now() - started;
  t.true(ms < 2000, `took ${ms} ms`);
  t.log(`insert → trigger → worker → job status in ${ms} ms`);
});

test.serial("a scan inserted by plain SQL updates its job; a burst is one job, each record once", async (t) => {
  await db.query(`insert into tracking.scanned_codes (code_text, operations) values ('w_2', '["coating"]')`);
  await eventually(async () => {
    const r = await db.query<{ c: boolean | null }>(`select (operations->>'coating')::boolean as c from tracking.jobs where job_id = 'w_2'`);
    return r.rows[0].c === true;
  }, 2000, 10);
  for (let g = 3; g <= 50; g++) {
    await db.query(`insert into tracking."print OS" (name, status, marker) values ($1, 'PRINTED', $2)`, [`WIMP${g}`, g]);
  }
  await eventually(async () => {
    const r = await db.query<{ n: number }>(`select count(*)::int as n from tracking.jobs where operations->>'print' = 'true'`);
    return r.rows[0].n === 49;
  }, 5000);
  const u = await db.query<{ n: number; d: number }>(
    `select count(*)::int as n, count(distinct (source_id, job_id))::int as d from tracking.job_status_updates where source_type = 'print_os'`,
  );
  t.is(u.rows[0].n, 49);
  t.is(u.rows[0].d, 49, "no record processed twice");
  const m = await db.query<{ last_processed_id: string }>(`select last_processed_id from tracking.processing_markers where marker_type = 'print_os'`);
  t.is(m.rows[0].last_processed_id, "50");
  t.true(worker.health().ok);
});

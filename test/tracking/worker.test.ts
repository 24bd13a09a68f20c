// Trigger → worker → status: a record inserted by plain SQL updates its job
// within 2 seconds; a burst is one debounced job.
import test from "ava";
import { readFileSync } from "node:fs";
import { parseCrontab } from "graphile-worker";
import pg from "pg";
import { CRONTAB_FILE, type Worker } from "../../src/worker.ts";
import { createTestDatabase, eventually, type TestDb } from "../helpers/db.ts";
import { startTestWorker } from "../helpers/worker.ts";

let db: TestDb;
let worker: Worker;
test.before(async () => {
  db = await createTestDatabase();
  await db.query(`insert into tracking.jobs (job_id) select 'w_' || g from generate_series(1, 50) g`);
  await db.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id) select 'WIMP' || g, 'FILE_1_Labex_w_' || g || '_x' from generate_series(1, 50) g`);
  worker = await startTestWorker(db, { concurrency: 2, pollInterval: 1000 });
});
test.after.always(async () => {
  await worker?.stop();
  await db?.drop();
});

/** Whether the job's operation is done (operations.<op> is true). */
async function done(jobId: string, op: string) {
  const r = await db.query(`select 1 from tracking.jobs where job_id = $1 and operations ->> $2 = 'true'`, [jobId, op]);
  return r.rowCount === 1;
}

test.serial("a print OS record inserted by plain SQL updates its job within 2 seconds", async (t) => {
  await eventually(async () => worker.health().listening);
  const started = Date.now();
  await db.query(`insert into tracking."print OS" (name, status, marker) values ('WIMP1', 'PRINTED', 1)`);
  await eventually(() => done("w_1", "print"), 2000, 10);
  const ms = Date.now() - started;
  t.true(ms < 2000, `took ${ms} ms`);
  t.log(`insert → trigger → worker → job status in ${ms} ms`);
});

test.serial("a scan inserted by plain SQL updates its job; a burst is one job, each record once", async (t) => {
  await db.query(`insert into tracking.scanned_codes (code_text, operations) values ('w_2', '["coating"]')`);
  await eventually(() => done("w_2", "coating"), 2000, 10);
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

test.serial("a lower marker committed after a run took a higher one reaches its job through the worker", async (t) => {
  await db.query(`insert into tracking.jobs (job_id) values ('w_late1'), ('w_late2')`);
  await db.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id) values ('WLATE1', 'FILE_1_Labex_w_late1_x'), ('WLATE2', 'FILE_1_Labex_w_late2_x')`);
  const high = new pg.Client({ connectionString: db.url });
  const low = new pg.Client({ connectionString: db.url });
  await Promise.all([high.connect(), low.connect()]);
  try {
    await high.query("begin");
    await high.query(`insert into tracking."print OS" (name, status, marker) values ('WLATE2', 'PRINTED', 1002)`);
    await low.query("begin");
    const lowInsert = low.query(`insert into tracking."print OS" (name, status, marker) values ('WLATE1', 'PRINTED', 1001)`);
    await high.query("commit");
    await lowInsert;
    // The worker's run may still be busy or waiting, so a DBA runs processing meanwhile (or the worker did).
    await eventually(async () => {
      await db.query(`select tracking.process_status_updates('print_os')`);
      return done("w_late2", "print");
    }, 2000, 10);
    const m = await db.query(`select last_processed_id from tracking.processing_markers where marker_type = 'print_os'`);
    t.is(m.rows[0].last_processed_id, "1002", "the marker is past the uncommitted lower record");
    const started = Date.now();
    await low.query("commit");
    // Its own trigger's job runs once it commits: about 50 ms alone; 5 s allowed for a loaded
    // test machine (the full suite on 2 cores), which is still far inside the spec's 1-5 minutes.
    await eventually(() => done("w_late1", "print"), 5000, 10);
    t.log(`late lower marker → job status in ${Date.now() - started} ms`);
    const u = await db.query(`select count(*)::int as n from tracking.job_status_updates where job_id in ('w_late1', 'w_late2')`);
    t.is(u.rows[0].n, 2, "each record once");
  } finally {
    await low.query("rollback").catch(() => {});
    await Promise.all([high.end(), low.end()]);
  }
});

test.serial("a writer that stays open delays nobody: ops_private.wake gives another writer's record its own job", async (t) => {
  await db.query(`insert into tracking.jobs (job_id) values ('w_open'), ('w_quick')`);
  await db.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id) values ('WOPEN', 'FILE_1_Labex_w_open_x'), ('WQUICK', 'FILE_1_Labex_w_quick_x')`);
  const open = new pg.Client({ connectionString: db.url });
  await open.connect();
  try {
    await open.query("begin");
    await open.query(`insert into tracking."print OS" (name, status, marker) values ('WOPEN', 'PRINTED', 2001)`);
    const started = Date.now();
    await db.query(`insert into tracking."print OS" (name, status, marker) values ('WQUICK', 'PRINTED', 2002)`);
    await eventually(() => done("w_quick", "print"), 5000, 10);
    t.log(`job status in ${Date.now() - started} ms while the other writer stayed open`);
    await open.query("commit");
    await eventually(() => done("w_open", "print"), 5000, 10);
    t.pass();
  } finally {
    await open.end();
  }
});

test.serial("the two sources run side by side: a scan is applied while a print OS run is busy", async (t) => {
  await db.query(`insert into tracking.jobs (job_id) values ('w_sidep'), ('w_sides')`);
  await db.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id) values ('WSIDE', 'FILE_1_Labex_w_sidep_x')`);
  // A long print OS run, as a backlog would be: its marker row stays locked.
  const busy = new pg.Client({ connectionString: db.url });
  await busy.connect();
  try {
    await busy.query("begin");
    await busy.query(`select 1 from tracking.processing_markers where marker_type = 'print_os' for update`);
    await db.query(`insert into tracking."print OS" (name, status, marker) values ('WSIDE', 'PRINTED', 3001)`);
    const started = Date.now();
    await db.query(`insert into tracking.scanned_codes (code_text, operations) values ('w_sides', '["coating"]')`);
    await eventually(() => done("w_sides", "coating"), 5000, 10);
    t.log(`scan → job status in ${Date.now() - started} ms while print OS processing waited`);
    const p = await db.query(`select processed_at from tracking."print OS" where marker = 3001`);
    t.is(p.rows[0].processed_at, null, "the print OS record is still waiting for its run");
    await busy.query("commit");
    await eventually(() => done("w_sidep", "print"), 5000, 10);
  } finally {
    await busy.query("rollback").catch(() => {});
    await busy.end();
  }
});

test.serial("a record held back by a missing mapping reaches its job when the mapping arrives, its retries spent", async (t) => {
  await db.query(`select ops.set_setting('tracking.issue_retry_limit', '1')`);
  try {
    await db.query(`insert into tracking.jobs (job_id) values ('w_late')`);
    await db.query(`insert into tracking."print OS" (name, status, marker) values ('WLATEIMP', 'PRINTED', 4001)`);
    await eventually(async () => {
      const r = await db.query(`select attempts from tracking.processing_issues where subject = 'WLATEIMP' and resolved_at is null`);
      return r.rows[0]?.attempts === 1;
    }, 5000, 10);
    // Its one attempt is spent: other records' runs no longer retry it.
    await db.query(`insert into tracking."print OS" (name, status, marker) values ('WIMP2', 'PRINTED', 4002)`);
    await eventually(async () => (await db.query(`select 1 from tracking."print OS" where marker = 4002 and processed_at is not null`)).rowCount === 1, 5000, 10);
    const started = Date.now();
    await db.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id) values ('WLATEIMP', 'FILE_1_Labex_w_late_x')`);
    await eventually(() => done("w_late", "print"), 5000, 10);
    t.log(`mapping insert → job status in ${Date.now() - started} ms`);
    const open = await db.query(`select 1 from tracking.processing_issues where subject = 'WLATEIMP' and resolved_at is null`);
    t.is(open.rowCount, 0, "its issue is resolved");
  } finally {
    await db.query(`select ops.set_setting('tracking.issue_retry_limit', '5')`);
  }
});

test("the crontab runs each source's task every minute as a backstop, under a job key of its own", (t) => {
  const items = parseCrontab(readFileSync(CRONTAB_FILE, "utf8"));
  for (const task of ["tracking_process_print_os", "tracking_process_scans"]) {
    const item = items.find((i) => i.task === task);
    t.truthy(item, `crontab entry for ${task}`);
    t.is(item!.options.jobKey, task);
    const parsed = (item!.match as unknown as { parsedCronMatch: { minutes: number[]; hours: number[] } }).parsedCronMatch;
    t.is(parsed.minutes.length, 60, "every minute");
    t.is(parsed.hours.length, 24, "of every hour");
  }
});

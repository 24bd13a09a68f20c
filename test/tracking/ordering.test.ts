// Exactly once when feeders commit out of order: a record whose transaction
// commits after a processing run already took a record with a higher marker
// (or scan_id) must still be processed, once. Real connections, real commits.
import test from "ava";
import pg from "pg";
import { createTestDatabase, type TestDb } from "../helpers/db.ts";

let db: TestDb;
test.before(async () => {
  db = await createTestDatabase();
  await db.query(`insert into tracking.jobs (job_id) select 'o_' || g from generate_series(1, 6) g`);
  await db.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id) select 'OIMP' || g, 'FILE_1_Labex_o_' || g || '_x' from generate_series(1, 6) g`);
});
test.after.always(() => db?.drop());

async function client() {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  return c;
}
async function run(source: string) {
  const { rows } = await db.query<{ r: any }>(`select tracking.process_status_updates($1) as r`, [source]);
  return rows[0].r;
}
async function updates(sourceType: string) {
  const { rows } = await db.query<{ job_id: string; n: number }>(
    `select job_id, count(*)::int as n from tracking.job_status_updates where source_type = $1 group by job_id order by job_id`,
    [sourceType],
  );
  return rows;
}

test.serial("print OS: a lower marker committed after a run took a higher one is processed, once", async (t) => {
  const high = await client();
  const low = await client();
  try {
    // Markers beyond int4: the spec's INTEGER marker column would overflow.
    await high.query("begin");
    await high.query(`insert into tracking."print OS" (name, status, marker) values ('OIMP2', 'PRINTED', 5000000011)`);
    await low.query("begin");
    // The lower marker's insert waits for the worker job_key row the first feeder holds: do not await yet.
    const lowInsert = low.query(`insert into tracking."print OS" (name, status, marker) values ('OIMP1', 'PRINTED', 5000000010)`);
    await high.query("commit");
    await lowInsert; // inserted, not committed
    const r1 = await run("print_os");
    t.is(r1.print_os_processed, 1, "only the committed record");
    t.deepEqual(await updates("print_os"), [{ job_id: "o_2", n: 1 }]);
    const m1 = await db.query(`select last_processed_id from tracking.processing_markers where marker_type = 'print_os'`);
    t.is(m1.rows[0].last_processed_id, "5000000011", "the marker moved past the uncommitted lower one");

    await low.query("commit");
    const r2 = await run("print_os");
    t.is(r2.print_os_processed, 1, "the late lower marker is processed");
    t.deepEqual(await updates("print_os"), [{ job_id: "o_1", n: 1 }, { job_id: "o_2", n: 1 }]);
    const r3 = await run("print_os");
    t.is(r3.print_os_processed, 0, "and not again");
    const jobs = await db.query(`select job_id, operations->>'print' as p from tracking.jobs where job_id in ('o_1', 'o_2') order by 1`);
    t.deepEqual(jobs.rows, [{ job_id: "o_1", p: "true" }, { job_id: "o_2", p: "true" }]);
    const m2 = await db.query(`select last_processed_id from tracking.processing_markers where marker_type = 'print_os'`);
    t.is(m2.rows[0].last_processed_id, "5000000011", "the marker stays the highest processed");
  } finally {
    await low.query("rollback").catch(() => {});
    await Promise.all([high.end(), low.end()]);
  }
});

test.serial("scans: a lower scan_id committed after a run took a higher one is processed, once", async (t) => {
  const low = await client();
  const high = await client();
  try {
    // The lower feeder has its scan_id (identity) assigned, but commits last.
    await low.query("begin");
    const { rows } = await low.query<{ id: string }>(`select nextval(pg_get_serial_sequence('tracking.scanned_codes', 'scan_id')) as id`);
    await high.query(`insert into tracking.scanned_codes (code_text, operations) values ('o_4', '["coating"]')`);
    const r1 = await run("scanner");
    t.is(r1.scanner_processed, 1);
    t.true(Number(r1.scanner_processed) === 1 && (await updates("scanner")).length === 1);
    await low.query(`insert into tracking.scanned_codes (scan_id, code_text, operations) values ($1, 'o_3', '["coating"]')`, [rows[0].id]);
    await low.query("commit");
    const r2 = await run("scanner");
    t.is(r2.scanner_processed, 1, "the late lower scan_id is processed");
    t.is((await run("scanner")).scanner_processed, 0, "and not again");
    t.deepEqual(await updates("scanner"), [{ job_id: "o_3", n: 1 }, { job_id: "o_4", n: 1 }]);
  } finally {
    await low.query("rollback").catch(() => {});
    await Promise.all([high.end(), low.end()]);
  }
});

test.serial("a runner racing a late commit: every record processed exactly once overall", async (t) => {
  // Feeders commit in random order while runners loop; at the end each record has one update.
  const feeders = await Promise.all([client(), client(), client()]);
  const runners = await Promise.all([client(), client()]);
  let stop = false;
  const processed = { print: 0 };
  const loops = runners.map(async (c) => {
    while (!stop) {
      const { rows } = await c.query<{ r: any }>(`select tracking.process_status_updates('print_os') as r`);
      processed.print += rows[0].r.print_os_processed;
    }
  });
  try {
    let marker = 6000000000;
    for (let round = 0; round < 10; round++) {
      await Promise.all(
        feeders.map(async (f, i) => {
          await f.query("begin");
          await f.query(`insert into tracking."print OS" (name, status, marker) values ('OIMP' || $1, 'PRINTED', $2)`, [5 + (i % 2), ++marker]);
          await new Promise((r) => setTimeout(r, Math.random() * 10));
          await f.query("commit");
        }),
      );
    }
  } finally {
    stop = true;
    await Promise.all(loops);
  }
  processed.print += (await run("print_os")).print_os_processed;
  t.is(processed.print, 30, "30 records, each processed by exactly one run");
  const u = await db.query<{ n: number; d: number }>(
    `select count(*)::int as n, count(distinct source_id)::int as d from tracking.job_status_updates u join tracking."print OS" p on p.id = u.source_id where p.marker > 6000000000`,
  );
  t.deepEqual(u.rows[0], { n: 30, d: 30 });
  await Promise.all([...feeders, ...runners].map((c) => c.end()));
});

test.serial("runners for both sources and for one source at once do not deadlock", async (t) => {
  await db.query(`insert into tracking.jobs (job_id) select 'd_' || g from generate_series(1, 300) g`);
  await db.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id) select 'DIMP' || g, 'FILE_1_Labex_d_' || g || '_x' from generate_series(1, 300) g`);
  // Runlists of ten impositions, and the print operation on every imposition: scans of a
  // runlist that name "print" write the same job and imposition operations as print OS runs.
  await db.query(`insert into tracking.production_planner_paths (runlist_id, imposition_id) select 'DRL' || (g / 10), 'DIMP' || g from generate_series(1, 300) g`);
  await db.query(
    `insert into tracking.imposition_operations (imposition_operation_id, imposition_id, operation_id)
     select 'DIMP' || g || '-' || c.operation_id, 'DIMP' || g, c.operation_id from generate_series(1, 300) g, tracking.operation_catalogue c where c.name in ('print', 'coating')`,
  );
  const runners = await Promise.all(
    Array.from({ length: 3 }, async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      return c;
    }),
  );
  let marker = 7000000000;
  const errors: string[] = [];
  try {
    for (let round = 0; round < 6; round++) {
      await db.query(
        `insert into tracking."print OS" (name, status, marker, job_complete_time) select 'DIMP' || g, 'PRINTED', $1::bigint + g, now() from generate_series(1, 300) g`,
        [marker],
      );
      marker += 1000;
      await db.query(
        `insert into tracking.scanned_codes (code_text, operations)
         select case when g % 3 = 0 then 'DRL' || (g / 10) else 'd_' || g end,
                case when g % 2 = 0 then '["print", "coating"]' else '["coating"]' end::jsonb
           from generate_series(1, 300) g`,
      );
      const sources = ["both", "scanner", "print_os"];
      const results = await Promise.allSettled(runners.map((c, i) => c.query(`select tracking.process_status_updates($1) as r`, [sources[i]])));
      for (const r of results) if (r.status === "rejected") errors.push(String((r.reason as Error).message));
    }
  } finally {
    await Promise.all(runners.map((c) => c.end()));
  }
  t.deepEqual(errors, []);
  const pending = await db.query(`select (select count(*) from tracking."print OS" where processed_at is null)::int + (select count(*) from tracking.scanned_codes where processed_at is null)::int as n`);
  t.is(pending.rows[0].n, 0);
});

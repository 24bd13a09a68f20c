// Tracking: print OS and scans drive job status: the spec's rules, idempotency,
// missing data, and two runners racing on real connections.
import test from "ava";
import pg from "pg";
import { rejectsWith } from "../helpers/assert.ts";
import { createTestDatabase, type TestDb } from "../helpers/db.ts";
import { insertPrintOs, insertScan } from "./helpers.ts";

let db: TestDb;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(() => db?.drop());

/** Each test uses its own prefix so that tests can share the database. */
async function fixture(p: string) {
  // jobs A (2 files on imp1, 1 on imp2), B (1 file on imp1), C (1 file on imp3, not in a runlist)
  await db.query(
    `insert into tracking.jobs (job_id, version_tag) values ($1 || '1_1', 'v1'), ($1 || '2_2', 'v1'), ($1 || '3_3', 'v1')`,
    [p],
  );
  await db.query(
    `insert into tracking.imposition_file_mapping (imposition_id, file_id) values
       ($1 || 'imp1', 'FILE_1_Labex_' || $1 || '1_1_a'), ($1 || 'imp1', 'FILE_1_Labex_' || $1 || '1_1_b'),
       ($1 || 'imp2', 'FILE_1_Labex_' || $1 || '1_1_c'), ($1 || 'imp1', 'FILE_2_Labex_' || $1 || '2_2_80'),
       ($1 || 'imp3', 'FILE_1_Labex_' || $1 || '3_3_80')`,
    [p],
  );
  await db.query(
    `insert into tracking.production_planner_paths (runlist_id, imposition_id) values ($1 || 'RL', $1 || 'imp1'), ($1 || 'RL', $1 || 'imp2')`,
    [p],
  );
  await db.query(
    `insert into tracking.job_operations (job_operation_id, job_id, version_tag, operation_id, sequence_order)
     select j || '-' || o, j, 'v1', o, 1 from unnest(array[$1 || '1_1', $1 || '2_2', $1 || '3_3']) j, unnest(array['op001', 'op003', 'op006']) o`,
    [p],
  );
  await db.query(
    `insert into tracking.imposition_operations (imposition_operation_id, imposition_id, operation_id)
     select i || '-' || o, i, o from unnest(array[$1 || 'imp1', $1 || 'imp2', $1 || 'imp3']) i, unnest(array['op001', 'op003']) o`,
    [p],
  );
}

const printOs = (imposition: string, status: "PRINTED" | "ABORTED", at = "2026-11-20T10:00:00Z") => insertPrintOs(db, imposition, status, at);
const scan = (code: string, operations: unknown, at = "2026-11-20T11:00:00Z") => insertScan(db, code, operations, at);
async function ops(jobId: string) {
  const { rows } = await db.query<{ operations: Record<string, boolean | undefined> }>(`select operations from tracking.jobs where job_id = $1`, [jobId]);
  return rows[0].operations;
}
async function process(source = "both") {
  const { rows } = await db.query<{ r: any }>(`select tracking.process_status_updates($1) as r`, [source]);
  return rows[0].r;
}
async function jobOp(jobId: string, op: string) {
  const { rows } = await db.query<{ status: string; completed_by: string; source_id: string; notes: string }>(`select status, completed_by, source_id, notes from tracking.job_operations where job_id = $1 and operation_id = $2`, [jobId, op]);
  return rows[0];
}

// The tests run serially: processing takes every pending record of every test.
test.serial("parse_file_id follows the pattern setting; a non-matching id is refused", async (t) => {
  const { rows } = await db.query(`select * from tracking.parse_file_id('FILE_1_Labex_4604_5889_80')`);
  t.deepEqual(rows[0], { version: "1", job_id: "4604_5889" });
  await rejectsWith(t, db.query(`select * from tracking.parse_file_id('scan-0001.pdf')`), "SF422", /does not match the file id pattern/);
});

test.serial("all files printed → print true; partial → false with a note; multi-imposition job", async (t) => {
  await fixture("p");
  await printOs("pimp1", "PRINTED");
  const r1 = await process("print_os");
  t.is(r1.print_os_processed, 1);
  t.is(r1.jobs_updated, 2, "jobs p1_1 and p2_2");
  t.is((await ops("p2_2")).print, true, "the job's only file is printed");
  t.is((await ops("p1_1")).print, false, "2 of 3 files: imp2 not printed yet");
  const partial = await jobOp("p1_1", "op001");
  t.is(partial.status, "partial");
  t.regex(partial.notes, /2 of 3 file\(s\) printed/);
  const imp = await db.query(`select status, completed_by from tracking.imposition_operations where imposition_id = 'pimp1' and operation_id = 'op001'`);
  t.deepEqual(imp.rows[0], { status: "completed", completed_by: "print_os" });

  await printOs("pimp2", "PRINTED", "2026-11-20T10:05:00Z");
  await process("print_os");
  t.is((await ops("p1_1")).print, true, "all files across both impositions printed");
  t.is((await jobOp("p1_1", "op001")).status, "completed");
  const st = await db.query<{ s: any }>(`select tracking.job_status('p1_1') as s`);
  t.is(st.rows[0].s.current_status.print, true);
  t.is(st.rows[0].s.current_status.coating, false);
  t.is(st.rows[0].s.update_history.length, 2);
  t.is(st.rows[0].s.update_history[0].source_type, "print_os");
});

test.serial("all aborted → print false with an abort note", async (t) => {
  await fixture("a");
  await printOs("aimp3", "ABORTED");
  await process("print_os");
  t.is((await ops("a3_3")).print, false);
  const op = await jobOp("a3_3", "op001");
  t.is(op.status, "aborted");
  t.regex(op.notes, /all 1 file\(s\) aborted/);
  const u = await db.query(`select status from tracking.job_status_updates where job_id = 'a3_3'`);
  t.deepEqual(u.rows, [{ status: "aborted" }]);
});

test.serial("a runlist scan updates every job of the runlist and its impositions", async (t) => {
  await fixture("r");
  const id = await scan("rRL", ["coating", "kiss_cut"]);
  const r = await process("scanner");
  t.is(r.scanner_processed, 1);
  t.is(r.jobs_updated, 2);
  t.like(await ops("r1_1"), { coating: true, kiss_cut: true });
  t.like(await ops("r2_2"), { coating: true, kiss_cut: true });
  t.deepEqual(await ops("r3_3"), {}, "job outside the runlist untouched");
  t.like(await jobOp("r2_2", "op006"), { status: "completed", completed_by: "scanner", source_id: String(id) });
  const imps = await db.query(`select imposition_id from tracking.imposition_operations where operation_id = 'op003' and source_id = $1 order by 1`, [id]);
  t.deepEqual(imps.rows.map((x) => x.imposition_id), ["rimp1", "rimp2"]);
});

test.serial("a job scan resolves to its runlist; a job outside any runlist updates alone", async (t) => {
  await fixture("j");
  await scan("j2_2_v1", { coating: true, backscore: false });
  await scan("j3_3_v1", ["slitter"]);
  await process("scanner");
  t.like(await ops("j1_1"), { coating: true }, "same runlist as j2_2");
  t.is((await ops("j1_1")).backscore, undefined, "false in an object means not done");
  t.deepEqual(await ops("j3_3"), { slitter: true });
  const imp3 = await db.query(`select completed_at from tracking.imposition_operations where imposition_id = 'jimp3'`);
  t.true(imp3.rows.every((x) => x.completed_at === null), "a single-job scan touches no imposition");
});

test.serial("when print OS and a scan speak of the same operation, the later event time wins", async (t) => {
  await fixture("c");
  // The scanner says printed at 12:00; a print OS abort from 11:00 arrives later: the scan stays.
  await scan("c3_3", ["print"], "2026-11-20T12:00:00Z");
  await process("scanner");
  await printOs("cimp3", "ABORTED", "2026-11-20T11:00:00Z");
  await process("print_os");
  t.is((await ops("c3_3")).print, true, "older print OS event does not override");
  // A newer abort wins.
  await printOs("cimp3", "ABORTED", "2026-11-20T13:00:00Z");
  await process("print_os");
  t.is((await ops("c3_3")).print, false);
});

test.serial("processing twice, or forced reprocessing, changes nothing", async (t) => {
  await fixture("i");
  await printOs("iimp1", "PRINTED");
  await scan("iRL", ["coating"]);
  await process();
  const snapshot = async () =>
    (await db.query(`select
       (select jsonb_agg(j order by job_id) from tracking.jobs j) as jobs,
       (select jsonb_agg(o order by job_operation_id) from tracking.job_operations o) as jops,
       (select jsonb_agg(o order by imposition_operation_id) from tracking.imposition_operations o) as iops,
       (select count(*) from tracking.job_status_updates) as updates,
       (select jsonb_agg(m order by marker_id) from tracking.processing_markers m) as markers`)).rows[0];
  const before = await snapshot();
  const again = await process();
  t.deepEqual(again, { print_os_processed: 0, scanner_processed: 0, jobs_updated: 0 });
  const forced = await db.query<{ r: any }>(`select tracking.process_print_os(true) as r`);
  t.true(forced.rows[0].r.processed_count > 0, "force takes every record again");
  t.is(forced.rows[0].r.jobs_updated, 0, "no duplicate updates");
  t.deepEqual(await snapshot(), before);
});

test.serial("missing data is reported, never stops the stream, and is retried up to the limit", async (t) => {
  await fixture("m");
  await db.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id) values ('mimp9', 'weird-file.pdf'), ('mimp9', 'FILE_1_Labex_m9_9_1')`);
  const unknownImp = await printOs("mnowhere", "PRINTED");
  const badFiles = await printOs("mimp9", "PRINTED");
  const good = await printOs("mimp3", "PRINTED");
  const unknownCode = await scan("mnosuchcode", ["coating"]);
  const unknownOp = await scan("m3_3", ["laminate", "coating"]);
  const r = await process();
  t.is(r.print_os_processed, 3);
  t.is(r.scanner_processed, 2);
  t.like(await ops("m3_3"), { print: true, coating: true }, "good records applied despite bad ones");
  const issues = await db.query<{ source_type: string; source_id: number }>(
    `select source_type, source_id::int, kind, subject, attempts from tracking.processing_issues where (source_type = 'print_os' and source_id = any($1::bigint[])) or (source_type = 'scanner' and source_id = any($2::bigint[])) order by source_type, source_id, kind`,
    [[unknownImp, badFiles, good], [unknownCode, unknownOp]],
  );
  t.deepEqual(issues.rows, [
    { source_type: "print_os", source_id: unknownImp, kind: "unknown_imposition", subject: "mnowhere", attempts: 1 },
    { source_type: "print_os", source_id: badFiles, kind: "unknown_job", subject: "m9_9", attempts: 1 },
    { source_type: "print_os", source_id: badFiles, kind: "unparseable_file_id", subject: "weird-file.pdf", attempts: 1 },
    { source_type: "scanner", source_id: unknownCode, kind: "unknown_code", subject: "mnosuchcode", attempts: 1 },
    { source_type: "scanner", source_id: unknownOp, kind: "unknown_operation", subject: "laminate", attempts: 1 },
  ]);
  t.false(issues.rows.some((x) => x.source_id === good && x.source_type === "print_os"));
  const msg = await db.query<{ n: number }>(`select count(*)::int as n from ops.messages where source = 'tracking'`);
  t.true(msg.rows[0].n >= 1, "operators are told");

  // The missing job arrives: the retry applies it and resolves the issue.
  await db.query(`insert into tracking.jobs (job_id) values ('m9_9')`);
  await process();
  t.is((await ops("m9_9")).print, true);
  const resolved = await db.query(`select resolved_at from tracking.processing_issues where kind = 'unknown_job' and subject = 'm9_9'`);
  t.truthy(resolved.rows[0].resolved_at);

  // Retries stop at the limit.
  await db.query(`select ops.set_setting('tracking.issue_retry_limit', '3')`);
  for (let i = 0; i < 4; i++) await process();
  const capped = await db.query(`select attempts from tracking.processing_issues where kind = 'unknown_imposition' and subject = 'mnowhere'`);
  t.is(capped.rows[0].attempts, 3);
  await db.query(`select ops.set_setting('tracking.issue_retry_limit', '5')`);
});

test.serial("process_status_updates refuses an unknown source; job_status an unknown job", async (t) => {
  await rejectsWith(t, db.query(`select tracking.process_status_updates('fax')`), "SF422");
  await rejectsWith(t, db.query(`select tracking.job_status('no-such-job')`), "SF404");
});

test.serial("two runners racing on real connections never process a record twice", async (t) => {
  await fixture("x");
  await db.query(`insert into tracking.jobs (job_id) select 'x9_' || g from generate_series(1, 200) g`);
  await db.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id) select 'xbatch' || g, 'FILE_1_Labex_x9_' || g || '_1' from generate_series(1, 200) g`);
  await db.query(`insert into tracking."print OS" (name, status, marker) select 'xbatch' || g, 'PRINTED', 100000 + g from generate_series(1, 200) g`);
  await db.query(`insert into tracking.scanned_codes (code_text, operations) select 'x9_' || g, '["coating"]' from generate_series(1, 200) g`);
  const clients = await Promise.all(
    Array.from({ length: 4 }, async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      return c;
    }),
  );
  try {
    const results = await Promise.all(
      clients.map((c, i) => c.query<{ r: any }>(i % 2 ? `select tracking.process_status_updates('both') as r` : `select tracking.process_status_updates('print_os') as r`)),
    );
    const printTotal = results.reduce((s, x) => s + x.rows[0].r.print_os_processed, 0);
    const scanTotal = results.reduce((s, x) => s + x.rows[0].r.scanner_processed, 0);
    t.is(printTotal, 200, "each print OS record processed by exactly one runner");
    t.is(scanTotal, 200, "each scan processed by exactly one runner");
    const dup = await db.query(`select count(*)::int as n from tracking.job_status_updates where job_id like 'x9\\_%'`);
    t.is(dup.rows[0].n, 400, "one update per job and operation");
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
});

test.serial("malformed scan operations are reported; the well-formed part still applies", async (t) => {
  await fixture("f");
  const notAList = await scan("f3_3", 42);
  const empty = await scan("f3_3", []);
  const mixed = await scan("f3_3", ["coating", 7]);
  const badObject = await scan("f3_3", { kiss_cut: "yes" });
  const r = await process("scanner");
  t.true(r.scanner_processed >= 4);
  t.deepEqual(await ops("f3_3"), { coating: true }, "only the well-formed operation name");
  const issues = await db.query<{ source_id: number; kind: string }>(
    `select source_id::int, kind from tracking.processing_issues where source_type = 'scanner' and source_id = any($1::bigint[]) order by source_id, kind`,
    [[notAList, empty, mixed, badObject]],
  );
  t.deepEqual(issues.rows, [
    { source_id: notAList, kind: "malformed_record" },
    { source_id: empty, kind: "malformed_record" },
    { source_id: mixed, kind: "malformed_record" },
    { source_id: badObject, kind: "malformed_record" },
  ]);
});

test.serial("a runlist scan over an imposition without file mapping reports it and updates the rest", async (t) => {
  await fixture("u");
  await db.query(`insert into tracking.production_planner_paths (runlist_id, imposition_id) values ('uRL', 'uimp-missing')`);
  const id = await scan("uRL", ["coating"]);
  await process("scanner");
  t.like(await ops("u1_1"), { coating: true });
  const issues = await db.query(`select kind, subject from tracking.processing_issues where source_type = 'scanner' and source_id = $1`, [id]);
  t.deepEqual(issues.rows, [{ kind: "unknown_imposition", subject: "uimp-missing" }]);
});

test.serial("jobs_from_imposition; another plant's file id pattern with reparse_file_ids; a bad pattern is refused", async (t) => {
  await fixture("g");
  const jobs = await db.query(`select tracking.jobs_from_imposition('gimp1') as j`);
  t.deepEqual(jobs.rows.map((x) => x.j), ["g1_1", "g2_2"]);
  await db.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id) values ('gimpX', '77_88-v3.pdf')`);
  const before = await db.query(`select job_id from tracking.imposition_file_mapping where file_id = '77_88-v3.pdf'`);
  t.is(before.rows[0].job_id, null, "not guessed under the default pattern");
  const saved = (await db.query(`select value from ops.settings where key = 'tracking.file_id_pattern'`)).rows[0].value;
  try {
    await db.query(`select ops.set_setting('tracking.file_id_pattern', to_jsonb('^(?<job_id>\\d+_\\d+)-v(?<version>\\d+)\\.pdf$'::text))`);
    const p = await db.query(`select * from tracking.parse_file_id('77_88-v3.pdf')`);
    t.deepEqual(p.rows[0], { version: "3", job_id: "77_88" });
    const changed = await db.query<{ n: number }>(`select tracking.reparse_file_ids() as n`);
    t.true(changed.rows[0].n >= 1);
    const after = await db.query(`select version, job_id from tracking.imposition_file_mapping where file_id = '77_88-v3.pdf'`);
    t.deepEqual(after.rows[0], { version: "3", job_id: "77_88" });
    await db.query(`select ops.set_setting('tracking.file_id_pattern', to_jsonb('^FILE_(?<version>[^_]+)_(?<oops>.*)$'::text))`);
    await rejectsWith(t, db.query(`select * from tracking.parse_file_id('FILE_1_x')`), "SF422", /has no \(\?<job_id>\.\.\.\) group/);
    // The migrations seed the setting and the reader repeats no default: cleared, it is named.
    await db.query(`select ops.set_setting('tracking.file_id_pattern', 'null')`);
    await rejectsWith(t, db.query(`select * from tracking.parse_file_id('FILE_1_Labex_1_2')`), "SF422", /tracking\.file_id_pattern is not set/);
  } finally {
    await db.query(`select ops.set_setting('tracking.file_id_pattern', $1::jsonb)`, [JSON.stringify(saved)]);
    await db.query(`select tracking.reparse_file_ids()`);
  }
});

test.serial("feeds cannot mark their own records processed", async (t) => {
  await rejectsWith(
    t,
    db.asRole("shopfloor_integration", (c) =>
      c.query(`insert into tracking."print OS" (name, status, marker, processed_at) values ('zz', 'PRINTED', 990001, now())`),
    ),
    "42501",
  );
  await db.asRole("shopfloor_integration", (c) =>
    c.query(`insert into tracking.scanned_codes (code_text, operations) values ('zz-code', '["coating"]')`),
  );
  const pending = await db.query(`select count(*)::int as n from tracking.scanned_codes where code_text = 'zz-code' and processed_at is null`);
  t.is(pending.rows[0].n, 1, "a feed may insert without processed_at");
  await process("scanner");
  const done = await db.query(`select processed_at is not null as done from tracking.scanned_codes where code_text = 'zz-code'`);
  t.true(done.rows[0].done);
});

test.serial("a record set back to processed_at null is queued again and applied once more, nothing duplicated", async (t) => {
  await fixture("q");
  const id = await printOs("qimp3", "PRINTED");
  const sid = await scan("q3_3", ["coating"]);
  await process();
  const history = async () => (await db.query<{ n: number }>(`select count(*)::int as n from tracking.job_status_updates where job_id = 'q3_3'`)).rows[0].n;
  const before = await history();
  // What docs/tracking.md tells a DBA to do to apply a record again.
  await db.query(`update tracking."print OS" set processed_at = null where id = $1`, [id]);
  await db.query(`update tracking.scanned_codes set processed_at = null where scan_id = $1`, [sid]);
  const queued = await db.query(`select source_type, record_id::int from tracking_private.pending_records order by source_type`);
  t.deepEqual(queued.rows, [{ source_type: "print_os", record_id: id }, { source_type: "scanner", record_id: sid }]);
  t.deepEqual(await process(), { print_os_processed: 1, scanner_processed: 1, jobs_updated: 0 });
  t.is(await history(), before, "its history rows are there already");
  const left = await db.query(`select count(*)::int as n from tracking_private.pending_records`);
  t.is(left.rows[0].n, 0);
});

test.serial("marking records processed stays on their page (HOT): processed_at is in no index", async (t) => {
  await fixture("h");
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    // One transaction, so that pg_stat_xact_user_tables counts exactly its own updates.
    await c.query("begin");
    await c.query(`insert into tracking."print OS" (name, status, marker) select 'himp3', 'PRINTED', 880000 + g from generate_series(1, 40) g`);
    await c.query(`insert into tracking.scanned_codes (code_text, operations) select 'h3_3', '["coating"]' from generate_series(1, 40) g`);
    await c.query(`select tracking.process_status_updates('both')`);
    const { rows } = await c.query<{ relname: string; upd: number; hot: number }>(
      `select relname, n_tup_upd::int as upd, n_tup_hot_upd::int as hot from pg_stat_xact_user_tables
        where relid in ('tracking."print OS"'::regclass, 'tracking.scanned_codes'::regclass) order by relname`,
    );
    await c.query("commit");
    t.deepEqual(rows, [
      { relname: "print OS", upd: 40, hot: 40 },
      { relname: "scanned_codes", upd: 40, hot: 40 },
    ]);
  } finally {
    await c.query("rollback").catch(() => {});
    await c.end();
  }
});

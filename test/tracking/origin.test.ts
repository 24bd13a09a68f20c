// Tracking, issue 14: spec 8.3 (an abort keeps a printed job printed), a
// history that agrees with the status, the data shapes the origin's printer
// and scanner system writes, quiet psql, and plans cheap enough that JIT
// never compiles them.
import test from "ava";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { createTestDatabase, type TestDb } from "../helpers/db.ts";
import { insertPrintOs, insertScan } from "./helpers.ts";

let db: TestDb;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(() => db?.drop());

const printOs = (name: string, status: "PRINTED" | "ABORTED", at: string) => insertPrintOs(db, name, status, at);
const scan = (code: string, operations: unknown, at = "2026-11-20T11:00:00Z") => insertScan(db, code, operations, at);
async function process(source = "both") {
  const { rows } = await db.query<{ r: any }>(`select tracking.process_status_updates($1) as r`, [source]);
  return rows[0].r;
}
async function ops(jobId: string) {
  const { rows } = await db.query<{ operations: Record<string, boolean | undefined> }>(`select operations from tracking.jobs where job_id = $1`, [jobId]);
  return rows[0].operations;
}
async function history(jobId: string) {
  const { rows } = await db.query<{ s: { update_history: { status: string; source_id: number; notes: string }[] } }>(`select tracking.job_status($1) as s`, [jobId]);
  return rows[0].s.update_history;
}
async function printOp(jobId: string) {
  const { rows } = await db.query<{ status: string | null; source_id: string | null; notes: string | null }>(
    `select status, source_id, notes from tracking.job_operations where job_id = $1 and operation_id = 'op001'`,
    [jobId],
  );
  return rows[0];
}
/** A job with `files` files on impositions `<p>imp1` and `<p>imp2` (alternating), and a print operation row. */
async function job(p: string, files = 2) {
  await db.query(`insert into tracking.jobs (job_id, version_tag) values ($1 || '_1', 'v1')`, [p]);
  await db.query(
    `insert into tracking.imposition_file_mapping (imposition_id, file_id)
     select $1 || 'imp' || (1 + g % 2), 'FILE_1_Labex_' || $1 || '_1_' || g from generate_series(0, $2 - 1) g`,
    [p, files],
  );
  await db.query(`insert into tracking.job_operations (job_operation_id, job_id, version_tag, operation_id) values ($1 || '-print', $1 || '_1', 'v1', 'op001')`, [p]);
  return `${p}_1`;
}

test.serial("spec 8.3: a later abort of one imposition keeps a printed job printed and is noted in its history", async (t) => {
  const j = await job("ab");
  await printOs("abimp1", "PRINTED", "2026-11-20T10:00:00Z");
  await printOs("abimp2", "PRINTED", "2026-11-20T10:05:00Z");
  await process("print_os");
  t.is((await ops(j)).print, true);
  const printed = await printOp(j);
  t.is(printed.status, "completed");

  const abort = await printOs("abimp2", "ABORTED", "2026-11-20T10:30:00Z");
  await process("print_os");
  t.is((await ops(j)).print, true, "still printed");
  t.deepEqual(await printOp(j), printed, "the print operation is untouched");
  const h = await history(j);
  const entry = h.find((x) => Number(x.source_id) === abort);
  t.truthy(entry, "the abort is in the history");
  t.is(entry!.status, "completed", "the history says what the job is: still printed");
  t.regex(entry!.notes, /abimp2 aborted/);
  t.regex(entry!.notes, /all 2 file\(s\) printed, status kept/);
  const fps = await db.query(`select status from tracking.file_print_status where job_id = $1 order by file_id`, [j]);
  t.deepEqual(fps.rows.map((r) => r.status), ["printed", "printed"], "a printed file stays printed");
});

test.serial("an abort arriving before the print in one batch does not hide the print", async (t) => {
  const j = await job("bo");
  await printOs("boimp1", "ABORTED", "2026-11-20T10:00:00Z");
  await printOs("boimp1", "PRINTED", "2026-11-20T09:00:00Z"); // printed earlier, reported later
  await printOs("boimp2", "PRINTED", "2026-11-20T10:05:00Z");
  await process("print_os");
  t.is((await ops(j)).print, true);
  t.is((await printOp(j)).status, "completed");
});

test.serial("all files aborted still sets print false; some aborted and none printed keeps the status", async (t) => {
  const j = await job("aa");
  await printOs("aaimp1", "ABORTED", "2026-11-20T10:00:00Z");
  await process("print_os");
  t.is((await ops(j)).print, undefined, "one of two files aborted: status kept (none yet)");
  t.is((await printOp(j)).status, null);
  t.is((await history(j))[0].status, "aborted");
  await printOs("aaimp2", "ABORTED", "2026-11-20T10:10:00Z");
  await process("print_os");
  t.is((await ops(j)).print, false, "all aborted");
  t.is((await printOp(j)).status, "aborted");
});

test.serial("a partly printed job's history says partial, not completed", async (t) => {
  const j = await job("pp", 3);
  const first = await printOs("ppimp1", "PRINTED", "2026-11-20T10:00:00Z"); // 2 of 3 files
  await process("print_os");
  t.is((await ops(j)).print, false);
  let h = await history(j);
  t.is(h.length, 1);
  t.is(Number(h[0].source_id), first);
  t.is(h[0].status, "partial");
  t.regex(h[0].notes, /2 of 3 file\(s\) printed/);
  await printOs("ppimp2", "PRINTED", "2026-11-20T10:05:00Z");
  await process("print_os");
  h = await history(j);
  t.deepEqual(h.map((x) => x.status), ["partial", "completed"]);
  t.is((await ops(j)).print, true);
});

test.serial("origin shapes: scan operations as operation ids, names, or an object of either", async (t) => {
  await db.query(`insert into tracking.jobs (job_id) values ('so_1'), ('so_2'), ('so_3')`);
  await scan("so_1", ["op003"]);
  await scan("so_2", ["coating", "OP006"]);
  await scan("so_3", { op004: true, slitter: true, op006: false });
  const bad = await scan("so_1", ["op999"]);
  await process("scanner");
  t.deepEqual(await ops("so_1"), { coating: true }, "op003 is coating, stored under its name");
  t.deepEqual(await ops("so_2"), { coating: true, kiss_cut: true });
  t.deepEqual(await ops("so_3"), { backscore: true, slitter: true });
  const u = await db.query(`select operation from tracking.job_status_updates where job_id = 'so_1' order by operation`);
  t.deepEqual(u.rows.map((r) => r.operation), ["coating"]);
  const issues = await db.query(`select kind, subject from tracking.processing_issues where source_type = 'scanner' and source_id = $1`, [bad]);
  t.deepEqual(issues.rows, [{ kind: "unknown_operation", subject: "op999" }], "an unknown id stays an issue");
});

test.serial("origin shapes: file ids with or without the FILE_<version>_ prefix", async (t) => {
  const parsed = await db.query(`select * from tracking.parse_file_id('Labex_5510_7110_3_of_4')`);
  t.deepEqual(parsed.rows[0], { version: null, job_id: "5510_7110" });
  const prefixed = await db.query(`select * from tracking.parse_file_id('FILE_2_Labex_5510_7110_3')`);
  t.deepEqual(prefixed.rows[0], { version: "2", job_id: "5510_7110" });
  await db.query(`insert into tracking.jobs (job_id) values ('5510_7110')`);
  await db.query(
    `insert into tracking.imposition_file_mapping (imposition_id, file_id) values ('LXIMP', 'Labex_5510_7110_a'), ('LXIMP', 'FILE_1_Labex_5510_7110_b')`,
  );
  const m = await db.query(`select file_id, version, job_id from tracking.imposition_file_mapping where imposition_id = 'LXIMP' order by file_id`);
  t.deepEqual(m.rows, [
    { file_id: "FILE_1_Labex_5510_7110_b", version: "1", job_id: "5510_7110" },
    { file_id: "Labex_5510_7110_a", version: null, job_id: "5510_7110" },
  ]);
  const rec = await printOs("LXIMP", "PRINTED", "2026-11-20T10:00:00Z");
  await process("print_os");
  t.is((await ops("5510_7110")).print, true, "both files printed");
  const issues = await db.query(`select 1 from tracking.processing_issues where source_type = 'print_os' and source_id = $1`, [rec]);
  t.is(issues.rowCount, 0);
});

test.serial("origin shapes: a print OS record whose name is a single file id", async (t) => {
  await db.query(`insert into tracking.jobs (job_id, version_tag) values ('7001_7002', 'v1'), ('7003_7004', 'v1')`);
  // 7001_7002: two files on an imposition; one of them is printed on its own.
  await db.query(
    `insert into tracking.imposition_file_mapping (imposition_id, file_id) values ('SFIMP', 'Labex_7001_7002_a'), ('SFIMP', 'Labex_7001_7002_b')`,
  );
  const solo = await printOs("Labex_7001_7002_a", "PRINTED", "2026-11-20T10:00:00Z");
  // 7003_7004: no mapping at all; its one file printed outside an imposition, with the prefix.
  await printOs("FILE_3_Labex_7003_7004_x", "PRINTED", "2026-11-20T10:00:00Z");
  const unknownJob = await printOs("Labex_7999_7999_z", "PRINTED", "2026-11-20T10:00:00Z");
  const garbage = await printOs("not-an-imposition", "PRINTED", "2026-11-20T10:00:00Z");
  const r = await process("print_os");
  t.is(r.print_os_processed, 4);
  t.is((await ops("7001_7002")).print, false, "1 of its 2 files printed");
  const h = await history("7001_7002");
  t.is(Number(h[0].source_id), solo);
  t.is(h[0].status, "partial");
  t.regex(h[0].notes, /^file Labex_7001_7002_a printed; job: 1 of 2 file\(s\) printed/);
  t.is((await ops("7003_7004")).print, true, "its only file printed");
  await printOs("SFIMP", "PRINTED", "2026-11-20T10:10:00Z");
  await process("print_os");
  t.is((await ops("7001_7002")).print, true, "the same file printed twice counts once: 2 of 2");
  const issues = await db.query(
    `select source_id::int, kind, subject from tracking.processing_issues where source_type = 'print_os' and source_id = any($1::bigint[]) order by source_id`,
    [[unknownJob, garbage]],
  );
  t.deepEqual(issues.rows, [
    { source_id: unknownJob, kind: "unknown_job", subject: "7999_7999" },
    { source_id: garbage, kind: "unknown_imposition", subject: "not-an-imposition" },
  ]);
  const pending = await db.query(`select count(*)::int as n from tracking."print OS" where processed_at is null`);
  t.is(pending.rows[0].n, 0, "unknown shapes are issues; the records are processed");
});

test.serial("origin shapes: a scan whose code is a file id updates that file's job (and its runlist)", async (t) => {
  await db.query(`insert into tracking.jobs (job_id) values ('8001_8002'), ('8003_8004'), ('8005_8006')`);
  await db.query(
    `insert into tracking.imposition_file_mapping (imposition_id, file_id) values
       ('FCIMP1', 'Labex_8001_8002_a'), ('FCIMP1', 'FILE_1_Labex_8003_8004_a'), ('FCIMP2', 'Labex_8005_8006_a')`,
  );
  await db.query(`insert into tracking.production_planner_paths (runlist_id, imposition_id) values ('FCRL', 'FCIMP1')`);
  await scan("Labex_8001_8002_a", ["op003"]);
  await scan("FILE_1_Labex_8005_8006_a", ["kiss_cut"]);
  const unknown = await scan("Labex_8999_8999_a", ["coating"]);
  await process("scanner");
  t.deepEqual(await ops("8001_8002"), { coating: true });
  t.deepEqual(await ops("8003_8004"), { coating: true }, "the same runlist");
  t.deepEqual(await ops("8005_8006"), { kiss_cut: true }, "not on a runlist: the job alone");
  const issues = await db.query(`select kind, subject from tracking.processing_issues where source_type = 'scanner' and source_id = $1`, [unknown]);
  t.deepEqual(issues.rows, [{ kind: "unknown_job", subject: "8999_8999" }]);
});

test.serial("what scanners and feeds send: a code or name with a CR/LF suffix, a tab or spaces around it is that code", async (t) => {
  await db.query(`insert into tracking.jobs (job_id, version_tag) values ('ws_1', 'v1'), ('ws_2', 'v1'), ('ws_3', 'v1')`);
  await db.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id) values ('WSIMP', 'Labex_ws_3_a')`);
  await db.query(`insert into tracking.production_planner_paths (runlist_id, imposition_id) values ('WSRL', 'WSIMP')`);
  // A keyboard-wedge scanner ends a code with Enter (CR, LF or CRLF); a feeder may pad it.
  await scan("ws_1_v1\r\n", ["coating"]);
  await scan("\tws_2 ", ["kiss_cut"]);
  await scan("WSRL\r", ["slitter"]);
  const blank = await scan(" \r\n", ["coating"]);
  await printOs("WSIMP\n", "PRINTED", "2026-11-20T10:00:00Z");
  await process();
  t.deepEqual(await ops("ws_1"), { coating: true }, "job_id_version_tag with CRLF");
  t.deepEqual(await ops("ws_2"), { kiss_cut: true }, "a job id between a tab and a space");
  t.deepEqual(await ops("ws_3"), { print: true, slitter: true }, "the runlist with CR, and a print OS name with LF");
  const h = await db.query(`select notes from tracking.job_status_updates where job_id = 'ws_1'`);
  t.notRegex(h.rows[0].notes, /[\r\n]/, "the history shows the code without its suffix");
  const stored = await db.query(`select code_text from tracking.scanned_codes where code_text like 'ws_1%'`);
  t.is(stored.rows[0].code_text, "ws_1_v1\r\n", "the record is kept as it was sent");
  const issues = await db.query(`select kind, subject from tracking.processing_issues where source_type = 'scanner' and source_id = $1`, [blank]);
  t.deepEqual(issues.rows, [{ kind: "unknown_code", subject: "" }], "a code of only whitespace is an issue");
  const e = await t.throwsAsync(db.query(`select tracking.record_print_os(e' \\r\\n', 'PRINTED', 990001)`));
  t.is((e as { code?: string }).code, "SF422", "the printer feed refuses a blank name");
  t.regex(e!.message, /name .* must not be blank/);
  const padded = await db.query(`select (tracking.record_print_os('WSIMP', e' printed\\r\\n', 990002)).status`);
  t.is(padded.rows[0].status, "PRINTED", "the status is read like a code: trimmed, any case");
});

test.serial("a scanned code or operation name of 6 kB is an issue with a cut subject; the rest of the batch is applied, run after run", async (t) => {
  await db.query(`insert into tracking.jobs (job_id) values ('lc_1'), ('lc_2')`);
  const noise = randomBytes(3200).toString("hex"); // incompressible, as a 2D code read as text would be
  await scan("lc_1", ["coating"]);
  const longCode = await scan(noise, ["coating"]);
  const longOp = await scan("lc_2", ["kiss_cut", noise]);
  for (const run of [1, 2]) {
    await process("scanner");
    const issues = await db.query<{ source_id: string; kind: string; len: number; attempts: number }>(
      `select source_id, kind, length(subject) as len, attempts from tracking.processing_issues where source_id = any($1::bigint[]) and source_type = 'scanner' order by source_id`,
      [[longCode, longOp]],
    );
    t.deepEqual(
      issues.rows.map((r) => [Number(r.source_id), r.kind, r.len, r.attempts]),
      [
        [longCode, "unknown_code", 200, run],
        [longOp, "unknown_operation", 200, run],
      ],
      `run ${run}: both reported, subjects cut to 200 characters`,
    );
  }
  t.deepEqual(await ops("lc_1"), { coating: true });
  t.deepEqual(await ops("lc_2"), { kiss_cut: true }, "the known operation of the scan is applied");
});

test.serial("a press that reports late completes the job: its state is as of the job's latest file outcome", async (t) => {
  const id = await job("lo");
  await printOs("loimp2", "PRINTED", "2026-11-20T10:00:00Z");
  await process("print_os");
  t.is((await ops(id)).print, false, "1 of 2 files printed");
  // The other press reports its earlier print after the first record was processed.
  const late = await printOs("loimp1", "PRINTED", "2026-11-20T09:00:00Z");
  await process("print_os");
  t.is((await ops(id)).print, true, "all files printed, whatever the order they were reported in");
  const op = await printOp(id);
  t.is(op.status, "completed");
  t.is(Number(op.source_id), late, "the record that completed it");
  const times = await db.query(`select operation_times ->> 'print' as at from tracking.jobs where job_id = $1`, [id]);
  t.is(new Date(times.rows[0].at).toISOString(), "2026-11-20T10:00:00.000Z", "the time of the job's latest file outcome");
  const h = await history(id);
  t.deepEqual(
    h.map((r) => r.status).sort(),
    ["completed", "partial"],
    "the history agrees: partial after the first record, completed after the late one",
  );
});

test.serial("missing data that arrives late gives back the retries of the records it held back (mapping, runlist, job)", async (t) => {
  await db.query(`select ops.set_setting('tracking.issue_retry_limit', '2')`);
  try {
    await db.query(`insert into tracking.jobs (job_id, version_tag) values ('ml_1', 'v1')`);
    const print = await printOs("MLIMP", "PRINTED", "2026-11-20T10:00:00Z"); // its mapping comes later
    const runlistScan = await scan("MLRL", ["coating"]); // a runlist the planner has not sent yet
    const jobScan = await scan("ml_2_v1", ["kiss_cut"]); // a job not sent yet, job_id_version_tag
    for (let run = 0; run < 4; run++) {
      await scan("ml_1", ["slitter"], `2026-11-20T08:0${run}:00Z`); // other records' runs use up the retries
      await process();
    }
    const spent = await db.query(`select kind, attempts from tracking.processing_issues where resolved_at is null and subject in ('MLIMP', 'MLRL', 'ml_2_v1') order by kind`);
    t.deepEqual(spent.rows, [
      { kind: "unknown_code", attempts: 2 },
      { kind: "unknown_code", attempts: 2 },
      { kind: "unknown_imposition", attempts: 2 },
    ], "retries used up");
    await db.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id) values ('MLIMP', 'FILE_1_Labex_ml_1_a')`);
    await db.query(`insert into tracking.production_planner_paths (runlist_id, imposition_id) values ('MLRL', 'MLIMP')`);
    await db.query(`insert into tracking.jobs (job_id, version_tag) values ('ml_2', 'v1')`);
    const r = await db.query<{ p: any; s: any }>(`select tracking.process_print_os() as p, tracking.process_scanned_codes() as s`);
    t.is(r.rows[0].p.retried_count, 1, "the print OS record is retried once more");
    t.is(r.rows[0].s.retried_count, 2, "so are the two scans");
    t.deepEqual(await ops("ml_1"), { print: true, coating: true, slitter: true });
    t.deepEqual(await ops("ml_2"), { kiss_cut: true });
    const open = await db.query(
      `select count(*)::int as n from tracking.processing_issues
        where resolved_at is null and ((source_type = 'print_os' and source_id = $1) or (source_type = 'scanner' and source_id = any($2::bigint[])))`,
      [print, [runlistScan, jobScan]],
    );
    t.is(open.rows[0].n, 0, "their issues are resolved");
  } finally {
    await db.query(`select ops.set_setting('tracking.issue_retry_limit', '5')`);
  }
});

test.serial("job_id_version_tag codes whose version tag holds `_` reach their job; a job arriving later gives such a code its retries back", async (t) => {
  await db.query(`insert into tracking.jobs (job_id, version_tag) values ('vt_1', 'v2_final'), ('vt_2', '2026_11_20')`);
  await scan("vt_1_v2_final", ["coating"]);
  await scan("vt_2_2026_11_20", ["kiss_cut"]);
  const other = await scan("vt_1_v3_draft", ["slitter"]); // no job has this id and tag
  const early = await scan("vt_3_rev_b", ["coating"]); // its job comes later
  await process("scanner");
  t.deepEqual(await ops("vt_1"), { coating: true });
  t.deepEqual(await ops("vt_2"), { kiss_cut: true });
  const issues = await db.query(`select source_id::int, kind from tracking.processing_issues where source_type = 'scanner' and source_id = any($1::bigint[]) order by source_id`, [[other, early]]);
  t.deepEqual(issues.rows, [{ source_id: other, kind: "unknown_code" }, { source_id: early, kind: "unknown_code" }]);
  await db.query(`update tracking.processing_issues set attempts = 5 where source_type = 'scanner' and source_id = $1`, [early]);
  await db.query(`insert into tracking.jobs (job_id, version_tag) values ('vt_3', 'rev_b')`);
  await process("scanner");
  t.deepEqual(await ops("vt_3"), { coating: true }, "the new job gave the early scan its retries back");
  const resolved = await db.query(`select resolved_at is not null as done from tracking.processing_issues where source_type = 'scanner' and source_id = $1`, [early]);
  t.true(resolved.rows[0].done);
});

test.serial("an event time that is no time (infinity) counts as the record's arrival: later records still win", async (t) => {
  const id = await job("inf", 1);
  await db.query(`insert into tracking."print OS" (name, status, marker, job_complete_time) values ('infimp1', 'ABORTED', 880101, 'infinity')`);
  await db.query(`insert into tracking.scanned_codes (code_text, operations, scanned_at) values ($1, '["coating"]', 'infinity')`, [id]);
  await process();
  const times = await db.query(`select operation_times from tracking.jobs where job_id = $1`, [id]);
  for (const [op, at] of Object.entries(times.rows[0].operation_times as Record<string, string>)) {
    t.true(Number.isFinite(new Date(at).getTime()), `${op}: ${at} is a time`);
  }
  await printOs("infimp1", "PRINTED", new Date(Date.now() + 60_000).toISOString());
  await process("print_os");
  t.is((await ops(id)).print, true, "a later print still wins");
});

test.serial("processing called from psql prints no NOTICE, also twice in one transaction", async (t) => {
  await db.query(`insert into tracking.jobs (job_id) values ('nn_1')`);
  await db.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id) values ('NNIMP', 'FILE_1_Labex_nn_1_a')`);
  const c = new pg.Client({ connectionString: db.url });
  const notices: string[] = [];
  c.on("notice", (n) => notices.push(n.message ?? ""));
  await c.connect();
  try {
    await printOs("NNIMP", "PRINTED", "2026-11-20T10:00:00Z");
    await scan("nn_1", ["coating"]);
    await c.query(`begin`);
    await c.query(`select tracking.process_status_updates('both')`);
    await c.query(`select tracking.process_print_os(true)`);
    await c.query(`select tracking.process_scanned_codes()`);
    await c.query(`commit`);
    await c.query(`select tracking.process_status_updates('both')`);
  } finally {
    await c.end();
  }
  t.deepEqual(notices, []);
  t.like(await ops("nn_1"), { print: true, coating: true });
});

test.serial("no statement of a run is costed above jit_above_cost (JIT would compile it)", async (t) => {
  // Plant-sized lookups: 5,000 jobs, 30,000 file mappings, 500 runlists.
  await db.query(`insert into tracking.jobs (job_id) select 'jx' || g || '_1' from generate_series(0, 4999) g`);
  await db.query(
    `insert into tracking.imposition_file_mapping (imposition_id, file_id)
     select 'JXIMP' || i, 'FILE_1_Labex_jx' || (i / 2) || '_1_' || k from generate_series(0, 9999) i, generate_series(1, 3) k`,
  );
  await db.query(`insert into tracking.production_planner_paths (runlist_id, imposition_id) select 'JXRL' || (i / 4), 'JXIMP' || i from generate_series(0, 1999) i`);
  await db.query(`analyze`);
  await printOs("JXIMP7", "PRINTED", "2026-11-20T10:00:00Z");
  await scan("jx5_1_v1", ["coating"]);
  await scan("JXRL9", ["kiss_cut"]);
  const c = new pg.Client({ connectionString: db.url });
  const plans: { cost: number; text: string }[] = [];
  c.on("notice", (n) => {
    const m = /plan:\s*(\{[\s\S]*\})\s*$/.exec(n.message ?? "");
    if (!m) return;
    const plan = JSON.parse(m[1]);
    plans.push({ cost: plan.Plan["Total Cost"], text: String(plan["Query Text"]).replace(/\s+/g, " ").slice(0, 120) });
  });
  await c.connect();
  try {
    await c.query(`load 'auto_explain'`);
    await c.query(`set auto_explain.log_min_duration = 0; set auto_explain.log_nested_statements = on; set auto_explain.log_format = json; set client_min_messages = log`);
    const { rows } = await c.query(`select current_setting('jit_above_cost')::float as limit, tracking.process_status_updates('both') as r`);
    t.like(rows[0].r, { print_os_processed: 1, scanner_processed: 2 });
    t.true(plans.length > 20, `saw ${plans.length} plans`);
    t.log(JSON.stringify([...plans].sort((a, b) => b.cost - a.cost).slice(0, 3)));
    const costly = plans.filter((p) => p.cost >= rows[0].limit);
    t.deepEqual(costly, [], "every statement is costed below jit_above_cost");
  } finally {
    await c.end();
  }
  t.like(await ops("jx4_1"), { coating: true }, "same runlist as jx5_1");
});

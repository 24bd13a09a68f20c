// A real plant's files and faults (issue 11): real stock exports (header, a `;`
// ending every line, LF, hundreds of types, 50-character names, numeric
// customer IDs, one ID on two types), messages built from long lists, a reply
// that fails in SQL, links in the share, and releases confirmed by .erl only.
import { existsSync, readFileSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { encodeWindows1252, parseRows, RELEASE_FIELDS, releaseRow, STOCK_FIELDS, stockRow } from "../../src/grundner/csv.ts";
import { realExportStock, type SimBoard } from "../../src/grundner/simulator.ts";
import { rejectsWith } from "../helpers/assert.ts";
import { eventually, type TestDb } from "../helpers/db.ts";
import { addJob, job, messages, waitForRequest, withNesting, type Nesting } from "./harness.ts";

let db: TestDb;
let n: Nesting;
withNesting(test, (made) => ({ db, n } = made));

/** A stock.csv as the plant's storage exported it: header, `;` at every line end, LF. */
function realExport(boards: SimBoard[], extraLine?: string): Buffer {
  const header = "Type;Material;Length;Width;Thickness;MatNo;Stock;Available;R1;R2;R3;R4;R5;R6;Reserved;Customer;Rest;Block;Density;";
  const lines = boards.map(
    (b) => `${b.type};${b.material_name};${b.length};${b.width};${b.thickness};${b.material_no};${b.stock};${b.stock};0;0;0;0;0;0;0;${b.customer_id};0;0;650;`,
  );
  if (extraLine) lines.splice(3, 0, extraLine);
  return encodeWindows1252([header, ...lines].map((l) => `${l}\n`).join(""));
}

/** Written as the gateway writes (temporary name, then renamed), once the last file of that name is gone. */
async function dropIntoShare(name: string, bytes: Buffer) {
  await eventually(async () => !n.files().some((f) => f.toLowerCase() === name.toLowerCase()), 30_000);
  writeFileSync(path.join(n.share, `${name}.sim-tmp`), bytes);
  renameSync(path.join(n.share, `${name}.sim-tmp`), path.join(n.share, name));
}

test("a real export's lines are all read; a non-empty extra field is refused naming the line", (t) => {
  const boards = realExportStock(448);
  t.is(boards[0].material_name.length, 50);
  const parsed = parseRows(realExport(boards, "999;x;1;1;1;;1;1;0;0;0;0;0;0;0;7;0;0;650;surplus;"), stockRow, { allowHeader: true, fields: STOCK_FIELDS });
  t.is(parsed.rows.length, 448);
  t.is(parsed.rows[0].customer_id, "100000");
  t.is(parsed.rows[1].customer_id, "100000");
  t.deepEqual(parsed.problems.map((p) => [p.line, p.error]), [[5, "20 fields where the format has 19: field 20 is not empty"]]);
  // CRLF and no trailing separator read the same.
  const crlf = encodeWindows1252(realExport(boards.slice(0, 3)).toString("latin1").replace(/;\n/g, "\r\n"));
  t.deepEqual(parseRows(crlf, stockRow, { allowHeader: true, fields: STOCK_FIELDS }).rows, parsed.rows.slice(0, 3));
  // productionLIST_del.csv: trailing separator, LF, trailing blanks.
  const release = parseRows(Buffer.from("1;Sheet1;101;Spanplatte;1;0;1;1;0; \n2;Sheet2;101;Spanplatte;1;0;1;1;0;;\n"), releaseRow, {
    allowHeader: true,
    fields: RELEASE_FIELDS,
  });
  t.deepEqual(release.rows.map((r) => r.job_no), ["Sheet1", "Sheet2"]);
  t.deepEqual(release.problems, []);
});

test.serial("a first sync of 448 types from a real export applies, with a bounded title and one ambiguity message", async (t) => {
  const before = (await db.query(`select coalesce(max(id), 0) as id from ops.messages`)).rows[0].id;
  await dropIntoShare("stock.csv", realExport(realExportStock(448)));
  await eventually(async () => (await db.query(`select count(*)::int as n from nesting.grundner where type_data <= 448`)).rows[0].n === 448, 60_000);
  const { rows } = await db.query(`select title, body, related from ops.messages where id > $1 and source = 'grundner' order by id`, [before]);
  const added = rows.find((m) => /new board type/.test(m.title));
  t.is(added.title, "444 new board type(s) in Grundner stock"); // 101-104 were there already
  t.is(added.related.types.length, 444);
  const ambiguous = rows.filter((m) => m.title.startsWith("Customer ID 100000"));
  t.is(ambiguous.length, 1);
  t.is(ambiguous[0].title, "Customer ID 100000 names 2 board types; jobs with it use type 1");
  const row = await db.query(`select material_name, customer_id_types from nesting.allocated_material_view where type_data = 2`);
  t.is(row.rows[0].material_name.length, 50);
  t.deepEqual(row.rows[0].customer_id_types, [1, 2]);
  t.true(n.archived().some((f) => f.endsWith("stock.csv")), "archived, not quarantined");

  // The next sync with the same ambiguity says nothing more.
  await eventually(async () => n.archived().filter((f) => f.endsWith("stock.csv")).length >= 2, 60_000);
  await dropIntoShare("stock.csv", realExport(realExportStock(448)));
  await eventually(async () => n.archived().filter((f) => f.endsWith("stock.csv")).length >= 3, 60_000); // the harness's sync, and these two
  const again = await db.query(`select count(*)::int as n from ops.messages where title like 'Customer ID 100000%'`);
  t.is(again.rows[0].n, 1);
});

test.serial("500 new types and a 10,000-character reason never fail a message", async (t) => {
  const boards = realExportStock(500).map((b) => ({ ...b, type: 3000 + b.type }));
  const { rows } = parseRows(realExport(boards), stockRow, { allowHeader: true, fields: STOCK_FIELDS });
  const r = await db.query(`select nesting_private.apply_stock(null, $1, '[{"line": 1, "error": "x"}]') as result`, [JSON.stringify(rows)]);
  t.is(r.rows[0].result.appeared.length, 500);
  const m = await db.query(`select title from ops.messages where title like '500 new board type%'`);
  t.is(m.rows[0].title, "500 new board type(s) in Grundner stock");

  const long = await db.query(`select length(title) as len, right(title, 1) as last, length(body) as body from ops.post_message('grundner', 'info', repeat('x', 10000), repeat('y', 50000))`);
  t.deepEqual(long.rows[0], { len: 500, last: "…", body: 20000 });

  await addJob(db, "Why/One", "103");
  const lock = await db.query(`select nesting.lock_jobs(array['Why/One']) as id`);
  await waitForRequest(db, lock.rows[0].id, ["acknowledged"]);
  await rejectsWith(t, db.query(`select nesting.unlock_jobs(array['Why/One'], 'Shift Lead', 'x')`), "SF422",
    'source must be one of user, jobs-ingest, stage-sanity, ready-delete, not "Shift Lead"');
  const rel = await db.query(`select nesting.unlock_jobs(array['Why/One'], 'stage-sanity', repeat('because ', 1250)) as id`);
  await waitForRequest(db, rel.rows[0].id, ["answered"]);
  t.false((await job(db, "Why/One")).is_locked);
  const released = (await messages(db, "stage-sanity")).find((x) => x.title.startsWith("Released One.nc"));
  t.true(released!.title.length <= 120);
  t.true(released!.body.includes("because because"), "the full reason is in the body");
});

test.serial("an unusable reply is quarantined on its own; the rest of the pass runs", async (t) => {
  await addJob(db, "Iso/One", "103");
  n.sim.faults = { noAnswer: true };
  const lock = await db.query(`select nesting.lock_jobs(array['Iso/One']) as id`);
  const sent = await waitForRequest(db, lock.rows[0].id, ["sent"]);
  // In one pass: a stock.csv whose only line has a NUL in its material name (refused by the parser: jsonb cannot hold it) and the lock's .erl.
  await dropIntoShare("stock.csv", Buffer.from("103;Bad\u0000Name;1;1;1;;1;1;0;0;0;0;0;0;0;;0;0;1\r\n"));
  renameSync(path.join(n.share, "order_saw.csv"), path.join(n.share, "order_saw.erl"));
  n.sim.faults = {};
  await waitForRequest(db, sent.id, ["acknowledged"]);
  await eventually(async () => n.quarantined().some((f) => f.endsWith("stock.csv")), 30_000);
  const m = await eventually(async () => (await messages(db)).find((x) => x.title === "stock.csv from Grundner could not be used and was quarantined"));
  t.regex(m.body, /line 1: field 2: a NUL character/);
  // The share is not blocked: the next request goes out and completes.
  const stock = await db.query(`select nesting.request_stock('test') as id`);
  await waitForRequest(db, stock.rows[0].id, ["answered"]);
  t.true((await job(db, "Iso/One")).is_locked);
});

test.serial("a symlinked order_saw.erl is quarantined as a link and its target is never read", async (t) => {
  const secret = path.join(os.tmpdir(), `secret-${process.pid}.txt`);
  writeFileSync(secret, "root-password-hunter2\n");
  symlinkSync(secret, path.join(n.share, "order_saw.erl"));
  await eventually(async () => n.quarantined().some((f) => f.endsWith("order_saw.erl.reason.txt")), 30_000);
  const m = await eventually(async () => (await messages(db)).find((x) => x.title.startsWith("order_saw.erl from Grundner could not be used")));
  t.is(m.body, "order_saw.erl is a symbolic link, not a file; it was not read.");
  const all = await db.query(`select title || body || related::text as text from ops.messages`);
  t.false(all.rows.some((r) => r.text.includes("hunter2")), "the target's content is in no message");
  t.true(existsSync(secret), "the target is untouched");
  t.is(readFileSync(secret, "utf8"), "root-password-hunter2\n");
});

test.serial("a pruned job cannot be reserved or locked", async (t) => {
  await addJob(db, "Gone/Pruned", "101");
  await db.query(`update nesting.jobs set removed_at = now() where key = 'Gone/Pruned'`);
  await rejectsWith(t, db.query(`select nesting.reserve_job('Gone/Pruned')`), "SF409", /its NC file is gone/);
  await rejectsWith(t, db.query(`select nesting.lock_jobs(array['Gone/Pruned'])`), "SF409", "Cannot lock: Gone/Pruned (its NC file is gone)");
});

test.serial("releases confirmed by .erl only: timed out and kept locked by default, applied in erl_only mode", async (t) => {
  await db.query(`select ops.set_setting('nesting.request_timeout', '"1 second"')`);
  await addJob(db, "Erl/One", "104");
  await addJob(db, "Erl/Two", "104");
  const lock = await db.query(`select nesting.lock_jobs(array['Erl/One', 'Erl/Two']) as id`);
  await waitForRequest(db, lock.rows[0].id, ["acknowledged"]);
  n.sim.faults = { erlOnlyRelease: true };
  try {
    // Default (the manual's answer file): no answer by the deadline, the jobs stay locked, the next release goes out.
    const first = await db.query(`select nesting.unlock_jobs(array['Erl/One']) as id`);
    const r = await waitForRequest(db, first.rows[0].id, ["timed_out"], 30_000);
    t.regex(r.error, /did not answer by the deadline; the jobs stay locked/);
    t.true((await job(db, "Erl/One")).is_locked);
    t.true((await messages(db)).some((m) => m.title.includes(`get_production.csv (request ${first.rows[0].id}) but sent no productionLIST_del.csv`)));
    const second = await db.query(`select nesting.unlock_jobs(array['Erl/Two']) as id`);
    const secondTimedOut = await waitForRequest(db, second.rows[0].id, ["timed_out"], 30_000);
    // A late answer to a release that timed out waiting for it is still applied.
    const jobNo = secondTimedOut.items[0].job_no;
    await dropIntoShare("productionLIST_del.csv", Buffer.from(`1;${jobNo};104;x;1;0;1;1;0;\n`));
    await waitForRequest(db, second.rows[0].id, ["answered"], 30_000);
    t.false((await job(db, "Erl/Two")).is_locked);
    await db.query(`select nesting.lock_jobs(array['Erl/Two']) as id`).then((r) => waitForRequest(db, r.rows[0].id, ["acknowledged"]));

    // erl_only: the .erl is the confirmation.
    await db.query(`select ops.set_setting('nesting.release_confirmation', '"erl_only"')`);
    const third = await db.query(`select nesting.unlock_jobs(array['Erl/One', 'Erl/Two']) as id`);
    await waitForRequest(db, third.rows[0].id, ["answered"], 30_000);
    t.false((await job(db, "Erl/One")).is_locked);
    t.false((await job(db, "Erl/Two")).is_locked);
  } finally {
    n.sim.faults = {};
    await db.query(`select ops.set_setting('nesting.release_confirmation', '"answer_file"')`);
    await db.query(`select ops.set_setting('nesting.request_timeout', '"60 seconds"')`);
  }
});

test.serial("an order_saw.erl applied before a crash but not yet archived is archived on the next pass, not reported", async (t) => {
  await addJob(db, "Twice/One", "101");
  const { rows } = await db.query(`select nesting.lock_jobs(array['Twice/One']) as id`);
  const r = await waitForRequest(db, rows[0].id, ["acknowledged"]);
  const errorsBefore = (await messages(db)).filter((m) => m.severity === "error").length;
  const archivedBefore = n.archived().length;
  await dropIntoShare("order_saw.erl", encodeWindows1252(r.lines.map((l: string) => `${l}\r\n`).join("")));
  await eventually(async () => n.archived().length > archivedBefore && !n.files().includes("order_saw.erl"), 30_000);
  t.false(n.quarantined().some((f) => f.endsWith("order_saw.erl") && f.includes("Twice")));
  t.is((await messages(db)).filter((m) => m.severity === "error").length, errorsBefore);
});

test.serial("the simulator's real-plant shapes end to end: header, `;` at every line end, LF", async (t) => {
  n.sim.faults = { stockHeader: true, trailingSeparator: true, lfOnly: true };
  try {
    await addJob(db, "Shape/One", "102");
    const lock = await db.query(`select nesting.lock_jobs(array['Shape/One']) as id`);
    await waitForRequest(db, lock.rows[0].id, ["acknowledged"], 30_000);
    const rel = await db.query(`select nesting.unlock_jobs(array['Shape/One']) as id`);
    const released = await waitForRequest(db, rel.rows[0].id, ["answered"], 30_000);
    t.deepEqual(released.answer.released, ["Shape/One"]);
    const stock = await db.query(`select nesting.request_stock('test') as id`);
    const answered = await waitForRequest(db, stock.rows[0].id, ["answered"], 30_000);
    t.deepEqual(answered.answer.problems, [], "every line read");
  } finally {
    n.sim.faults = {};
  }
});

test.serial("a release stored with free text as its source (before the check) still applies when answered", async (t) => {
  await addJob(db, "Old/Src", "101");
  const lock = await db.query(`select nesting.lock_jobs(array['Old/Src']) as id`);
  await waitForRequest(db, lock.rows[0].id, ["acknowledged"], 30_000);
  const j = await job(db, "Old/Src");
  const { rows } = await db.query(
    `insert into nesting.grundner_requests (kind, file_name, lines, items, source)
     values ('release', 'get_production', array[$1 || ';1'], jsonb_build_array(jsonb_build_object('key', 'Old/Src', 'job_no', $1, 'type', 101, 'machine', 1)), 'Shift Lead')
     returning id`,
    [j.grundner_job_no],
  );
  await waitForRequest(db, rows[0].id, ["answered"], 30_000);
  t.false((await job(db, "Old/Src")).is_locked);
  t.true((await messages(db)).some((m) => m.title.startsWith("Released Src.nc from Grundner")));
});

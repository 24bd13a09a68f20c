// Replies that cannot be used must never leave a request in flight, and the
// parser must not lose a line without saying so. The real pass
// (pumpGrundner) runs against real files in a temp share and a real database;
// this test plays the storage's side by hand, one pass at a time.
import { mkdirSync, mkdtempSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { encodeWindows1252 } from "../../src/grundner/csv.ts";
import { pumpGrundner } from "../../src/grundner/pump.ts";
import { Share } from "../../src/grundner/share.ts";
import { testLog, withTestDatabase, type TestDb } from "../helpers/db.ts";
import { addJob, job, messages } from "./harness.ts";

let db: TestDb;
let share: Share;
withTestDatabase(test, async (made) => {
  db = made;
  const base = mkdtempSync(path.join(os.tmpdir(), "replies-"));
  share = new Share({ dir: path.join(base, "share"), archiveDir: path.join(base, "archive"), quarantineDir: path.join(base, "quarantine") });
  mkdirSync(share.dirs.dir, { recursive: true });
});

const pass = () => pumpGrundner(db.pool, share, testLog);
const inShare = (f: string) => path.join(share.dirs.dir, f);
const quarantined = () => readdirSync(share.dirs.quarantineDir).filter((f) => !f.endsWith(".reason.txt"));

/** One stock line: 19 fields. */
const stockLine = (type: number | string, stock: number, name = `Board ${type}`) =>
  `${type};${name};2800;2070;19;M${type};${stock};${stock};0;0;0;0;0;0;0;;0;0;650`;

/** The storage's side: writes the reply under a temporary name, renames it into place. */
function reply(name: string, bytes: Buffer) {
  writeFileSync(inShare(`${name}.sim-tmp`), bytes);
  renameSync(inShare(`${name}.sim-tmp`), inShare(name));
}

/** A stock request sent and answered with `bytes`; returns the request as it ended. */
async function stockExchange(bytes: Buffer) {
  const { rows } = await db.query(`select nesting.request_stock('test') as id`);
  await pass(); // writes stock_request.csv
  renameSync(inShare("stock_request.csv"), inShare("stock_request.erl"));
  reply("stock.csv", bytes);
  await pass();
  return (await db.query(`select * from nesting.grundner_requests where id = $1`, [rows[0].id])).rows[0];
}

const stockOf = async () =>
  Object.fromEntries((await db.query(`select type_data, stock from nesting.grundner order by 1`)).rows.map((r) => [r.type_data, r.stock]));

test.serial("setup: a clean stock.csv applies", async (t) => {
  const r = await stockExchange(encodeWindows1252([101, 102, 103, 104].map((ty) => stockLine(ty, 5) + "\r\n").join("")));
  t.is(r.status, "answered");
  t.deepEqual(await stockOf(), { 101: 5, 102: 5, 103: 5, 104: 5 });
});

test.serial("a stock.csv the database refuses fails its request; the next sync is a new request that applies", async (t) => {
  // A constraint of this test's database makes apply_stock fail for one material name.
  await db.query(`alter table nesting.grundner add constraint test_refuses_unusable check (material_name <> 'Unusable')`);
  try {
    const r = await stockExchange(encodeWindows1252(stockLine(101, 9, "Unusable") + "\r\n"));
    t.is(r.status, "failed", "not left 'sent', where every request_stock() would return it");
    t.regex(r.error, /stock\.csv could not be applied: .*test_refuses_unusable/);
    t.true(quarantined().some((f) => f.endsWith("-stock.csv")));
    const titles = (await messages(db)).map((m) => m.title);
    t.true(titles.includes(`Grundner's stock.csv for stock_request.csv (request ${r.id}) could not be applied; the stock was left as it was`));
  } finally {
    await db.query(`alter table nesting.grundner drop constraint test_refuses_unusable`);
  }
  const next = await stockExchange(encodeWindows1252([101, 102, 103, 104].map((ty) => stockLine(ty, 6) + "\r\n").join("")));
  t.is(next.status, "answered");
  t.deepEqual(await stockOf(), { 101: 6, 102: 6, 103: 6, 104: 6 });
});

test.serial("a type listed twice and a NUL in a name are refused naming line and field; the other lines apply", async (t) => {
  const lines = [stockLine(101, 7), stockLine(102, 7), stockLine(101, 8), stockLine(103, 7, "Bad\u0000Name"), stockLine(104, 7)];
  const r = await stockExchange(Buffer.from(lines.map((l) => `${l}\r\n`).join(""), "latin1"));
  t.is(r.status, "answered");
  t.deepEqual(
    r.answer.problems.map((p: { line: number; error: string }) => `line ${p.line}: ${p.error}`),
    [
      "line 1: field 1: type 101 is on line 3 too; neither line is applied",
      "line 3: field 1: type 101 is on line 1 too; neither line is applied",
      "line 4: field 2: a NUL character, which no field may hold",
    ],
  );
  // 101 and 103 keep their last figures (lines were skipped, so nothing is removed either).
  t.deepEqual(await stockOf(), { 101: 6, 102: 7, 103: 6, 104: 7 });
});

test.serial("a stock.csv of 1,000 broken lines: every count is told, the first 100 problems are kept, each line's text cut", async (t) => {
  const junk = Array.from({ length: 1000 }, (_, i) => `x${i};${"garbage".repeat(100)}`);
  const lines = [stockLine(101, 6), stockLine(102, 7), ...junk, stockLine(103, 6), stockLine(104, 7)];
  const r = await stockExchange(encodeWindows1252(lines.map((l) => `${l}\r\n`).join("")));
  t.is(r.status, "answered");
  t.is(r.answer.problem_count, 1000);
  t.is(r.answer.problems.length, 100);
  t.true(r.answer.problems.every((p: { text: string }) => p.text.length <= 300));
  const m = (await db.query(`select title, body, related from ops.messages where title like 'stock.csv had 1000 line(s)%' order by id desc limit 1`)).rows[0];
  t.truthy(m, "the message counts every line");
  t.is(m.related.problems.length, 100);
  t.regex(m.body, /\.\.\. and 900 more$/);
  t.deepEqual(await stockOf(), { 101: 6, 102: 7, 103: 6, 104: 7 });
});

test.serial("an order_saw.erl the database refuses fails the lock request; the job stays unlocked and the next lock goes out", async (t) => {
  await addJob(db, "Ack/Bad", "101");
  // A request written with a machine the jobs table refuses (queued before
  // lock_jobs checked nesting.saw_machine): applying its .erl fails.
  const { rows } = await db.query(
    `insert into nesting.grundner_requests (kind, file_name, lines, items, requested_by)
     values ('lock', 'order_saw', array['${(await job(db, "Ack/Bad")).grundner_job_no};101;1;0;5;0;0;0;;'],
             jsonb_build_array(jsonb_build_object('key', 'Ack/Bad', 'job_no', $1::text, 'type', 101, 'machine', 5)), 'test')
     returning id`,
    [(await job(db, "Ack/Bad")).grundner_job_no],
  );
  await pass();
  renameSync(inShare("order_saw.csv"), inShare("order_saw.erl"));
  await pass();
  const r = (await db.query(`select status, error from nesting.grundner_requests where id = $1`, [rows[0].id])).rows[0];
  t.is(r.status, "failed");
  t.regex(r.error, /order_saw\.erl could not be applied/);
  t.false((await job(db, "Ack/Bad")).is_locked);
  t.true(quarantined().some((f) => f.endsWith("-order_saw.erl")));
  const m = (await messages(db)).find((x) => x.title.startsWith(`Grundner's order_saw.erl for order_saw.csv (request ${rows[0].id})`));
  t.regex(m!.body, /may now hold orders for Ack\/Bad/);
  const events = await db.query(`select event from nesting.job_events where job_key = 'Ack/Bad' order by id`);
  t.true(events.rows.some((e) => e.event === "lock_failed"));
  // The file name is free again: a new lock goes out and is acknowledged.
  const lock = await db.query(`select nesting.lock_jobs(array['Ack/Bad']) as id`);
  await pass();
  renameSync(inShare("order_saw.csv"), inShare("order_saw.erl"));
  await pass();
  t.is((await db.query(`select status from nesting.grundner_requests where id = $1`, [lock.rows[0].id])).rows[0].status, "acknowledged");
  t.true((await job(db, "Ack/Bad")).is_locked);
});

test.serial("a byte-order mark before line 1 is not a header: the line applies", async (t) => {
  const text = [101, 102, 103, 104].map((ty) => stockLine(ty, 11) + "\r\n").join("");
  const r = await stockExchange(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), encodeWindows1252(text)]));
  t.is(r.status, "answered");
  t.deepEqual(r.answer.problems, []);
  t.deepEqual(await stockOf(), { 101: 11, 102: 11, 103: 11, 104: 11 }, "type 101 was not taken for gone");
});

test.serial("a typo in line 1 (1O1) is a reported problem, not a header: type 101 is kept", async (t) => {
  const lines = [stockLine("1O1", 12), stockLine(102, 12), stockLine(103, 12), stockLine(104, 12)];
  const r = await stockExchange(encodeWindows1252(lines.map((l) => `${l}\r\n`).join("")));
  t.is(r.status, "answered");
  t.deepEqual(r.answer.problems.map((p: { line: number; error: string }) => [p.line, p.error]), [[1, "field 1: expected a whole number"]]);
  t.deepEqual(await stockOf(), { 101: 11, 102: 12, 103: 12, 104: 12 });
  const warn = (await messages(db)).find((m) => m.title === "stock.csv had 1 line(s) that could not be read; they were skipped");
  t.regex(warn!.body, /line 1: field 1/);
});

test.serial("a late answer to a timed-out release is applied to that release, not to the release in flight", async (t) => {
  for (const k of ["Late/RelA", "Late/RelB"]) {
    await addJob(db, k, "101");
    await db.query(`update nesting.jobs set is_locked = true, allocated_at = now(), locked_type = 101, grundner_machine = 1 where key = $1`, [k]);
  }
  const status = async (id: string) => (await db.query(`select status from nesting.grundner_requests where id = $1`, [id])).rows[0].status;
  // Release A: the storage takes it but does not answer by the deadline.
  const a = (await db.query(`select nesting.unlock_jobs(array['Late/RelA'], 'user', 'test') as id`)).rows[0].id;
  await pass();
  renameSync(inShare("get_production.csv"), inShare("get_production.erl"));
  await db.query(`update nesting.grundner_requests set deadline = now() - interval '1 second' where id = $1`, [a]);
  await pass();
  t.is(await status(a), "timed_out");
  // Release B goes out; then A's answer arrives.
  const b = (await db.query(`select nesting.unlock_jobs(array['Late/RelB'], 'user', 'test') as id`)).rows[0].id;
  await pass();
  t.is(await status(b), "sent");
  const jobNo = async (k: string) => (await job(db, k)).grundner_job_no;
  reply("productionLIST_del.csv", encodeWindows1252(`1;${await jobNo("Late/RelA")};101;Board;1;0;1;1;0\r\n`));
  await pass();
  t.is(await status(a), "answered");
  t.is(await status(b), "sent", "B still waits for its own answer");
  t.false((await job(db, "Late/RelA")).is_locked);
  t.true((await job(db, "Late/RelB")).is_locked);
  // B's own answer releases B.
  renameSync(inShare("get_production.csv"), inShare("get_production.erl"));
  reply("productionLIST_del.csv", encodeWindows1252(`1;${await jobNo("Late/RelB")};101;Board;1;0;1;1;0\r\n`));
  await pass();
  t.is(await status(b), "answered");
  t.false((await job(db, "Late/RelB")).is_locked);
});

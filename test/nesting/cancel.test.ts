// Cancelling a request that was already sent, and requests caught 'sending'
// whose file name is taken by another request's file. The real pass
// (pumpGrundner) runs against a temp share and a real database; the test
// plays the storage by hand, one pass at a time.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { fileLines, formatRequest } from "../../src/grundner/csv.ts";
import { pumpGrundner } from "../../src/grundner/pump.ts";
import { Share } from "../../src/grundner/share.ts";
import { testLog, withTestDatabase, type TestDb } from "../helpers/db.ts";
import { addJob, job, messages } from "./harness.ts";

let db: TestDb;
let share: Share;
withTestDatabase(test, async (made) => {
  db = made;
  await db.query(`insert into nesting.grundner (type_data, material_name, stock, stock_available) values (101, 'Spanplatte', 20, 20)`);
  const base = mkdtempSync(path.join(os.tmpdir(), "cancel-"));
  share = new Share({ dir: path.join(base, "share"), archiveDir: path.join(base, "archive"), quarantineDir: path.join(base, "quarantine") });
  mkdirSync(share.dirs.dir, { recursive: true });
});

const pass = () => pumpGrundner(db.pool, share, testLog);
const inShare = (f: string) => path.join(share.dirs.dir, f);
const shareLines = (f: string) => fileLines(readFileSync(inShare(f)));
const list = (d: string) => (existsSync(d) ? readdirSync(d) : []);
const request = async (id: string) => (await db.query(`select * from nesting.grundner_requests where id = $1`, [id])).rows[0];
const lock = async (key: string) => (await db.query(`select nesting.lock_jobs(array[$1]) as id`, [key])).rows[0].id as string;
const cancel = (id: string) => db.query(`select nesting.cancel_request($1, 'gateway offline')`, [id]);
const orderLine = async (key: string) => `${(await job(db, key)).grundner_job_no};101;1;0;1;0;0;0;;`;

test.serial("a sent lock cancelled before the gateway took it: its file is taken back and the next lock goes out with its own lines", async (t) => {
  await addJob(db, "K/A1", "101");
  await addJob(db, "K/B1", "101");
  const a = await lock("K/A1");
  await pass();
  t.is((await request(a)).status, "sent");
  t.true(existsSync(inShare("order_saw.csv")));

  await cancel(a); // the gateway is offline: it has not taken order_saw.csv
  const b = await lock("K/B1");
  const report = await pass();
  t.deepEqual(report.errors, []);
  t.deepEqual(shareLines("order_saw.csv"), [await orderLine("K/B1")], "B's own lines, not A1's");
  t.is((await request(b)).status, "sent");
  t.true(list(share.dirs.archiveDir).some((f) => f.endsWith(`-r${a}-withdrawn-order_saw.csv`)), "A's file went to the archive");
  t.false((await request(a)).answer.withdraw_file === true);
  t.true((await messages(db)).some((m) => m.title === `Cancelled order_saw.csv (request ${a}) was taken back from the share`));

  // The gateway comes back and takes B: B1 locks, A1 does not.
  renameSync(inShare("order_saw.csv"), inShare("order_saw.erl"));
  await pass();
  t.is((await request(b)).status, "acknowledged");
  t.true((await job(db, "K/B1")).is_locked);
  t.false((await job(db, "K/A1")).is_locked);
});

test.serial("a sent lock cancelled after the gateway took it: its .erl is quarantined as a late acknowledgement and the next lock is not confused with it", async (t) => {
  await addJob(db, "K/A2", "101");
  await addJob(db, "K/B2", "101");
  const a = await lock("K/A2");
  await pass();
  renameSync(inShare("order_saw.csv"), inShare("order_saw.erl")); // taken just before the cancel
  await cancel(a);
  const b = await lock("K/B2");
  const report = await pass();
  t.deepEqual(report.errors, []);
  t.true(list(share.dirs.quarantineDir).some((f) => f.endsWith("-order_saw.erl")));
  t.true((await messages(db)).some((m) => m.title === `Grundner acknowledged order_saw.csv (request ${a}) after it was cancelled; nothing was locked`));
  t.deepEqual(shareLines("order_saw.csv"), [await orderLine("K/B2")]);
  renameSync(inShare("order_saw.csv"), inShare("order_saw.erl"));
  await pass();
  t.is((await request(b)).status, "acknowledged");
  t.false((await job(db, "K/A2")).is_locked);
  t.true((await job(db, "K/B2")).is_locked);
});

test.serial("the gateway takes a cancelled lock's file just as it is taken back: the next lock waits until that .erl is dealt with", async (t) => {
  await addJob(db, "K/A4", "101");
  await addJob(db, "K/B4", "101");
  const a = await lock("K/A4");
  await pass();
  await cancel(a);
  const b = await lock("K/B4");
  // The storage renames order_saw.csv in the moment between the reply step and the withdrawal.
  const racing = new (class extends Share {
    override async withdraw(...args: Parameters<Share["withdraw"]>) {
      if (existsSync(inShare("order_saw.csv"))) renameSync(inShare("order_saw.csv"), inShare("order_saw.erl"));
      return super.withdraw(...args);
    }
  })(share.dirs);
  const first = await pumpGrundner(db.pool, racing, testLog);
  t.deepEqual(first.errors, []);
  t.is((await request(b)).status, "queued", "not sent while A's .erl is in the share");
  t.false(existsSync(inShare("order_saw.csv")));
  await pass(); // the .erl is quarantined as an acknowledgement after the cancel; then B goes out
  t.true((await messages(db)).some((m) => m.title === `Grundner acknowledged order_saw.csv (request ${a}) after it was cancelled; nothing was locked`));
  t.is((await request(b)).status, "sent");
  t.deepEqual(shareLines("order_saw.csv"), [await orderLine("K/B4")]);
  renameSync(inShare("order_saw.csv"), inShare("order_saw.erl"));
  await pass();
  t.is((await request(b)).status, "acknowledged");
  t.false((await job(db, "K/A4")).is_locked);
});

test.serial("a request caught 'sending' is not marked sent when the share's file holds another request's lines; the operator is told once", async (t) => {
  await addJob(db, "K/A3", "101");
  await addJob(db, "K/B3", "101");
  // As a crash, or an older version, left it: B is 'sending' while the share holds A3's order.
  const b = await lock("K/B3");
  await db.query(`update nesting.grundner_requests set status = 'sending' where id = $1`, [b]);
  writeFileSync(inShare("order_saw.csv"), formatRequest([await orderLine("K/A3")]));

  await pass();
  await pass();
  const r = await request(b);
  t.is(r.status, "sending", "not marked sent");
  t.regex(r.error, /another request's lines/);
  const said = (await messages(db)).filter((m) => m.title === `order_saw.csv (request ${b}) waits: the Grundner share holds another order_saw.csv`);
  t.is(said.length, 1, "one message, not one per pass");
  t.regex(said[0].body, new RegExp(`holds: ${await orderLine("K/A3")}`));

  // The operator moves the stray file out: B goes out with its own lines.
  rmSync(inShare("order_saw.csv"));
  await pass();
  t.is((await request(b)).status, "sent");
  t.is((await request(b)).error, null);
  t.deepEqual(shareLines("order_saw.csv"), [await orderLine("K/B3")]);
  renameSync(inShare("order_saw.csv"), inShare("order_saw.erl"));
  await pass();
  t.is((await request(b)).status, "acknowledged");
});

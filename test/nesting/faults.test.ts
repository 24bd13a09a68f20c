// The handshake when things go wrong: an altered acknowledgement, a storage
// that does not answer, a late answer, a crash mid-request, values the
// gateway cannot take.
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import test from "ava";
import { formatRequest, ProtocolError } from "../../src/grundner/csv.ts";
import { rejectsWith } from "../helpers/assert.ts";
import { createTestDatabase, eventually, type TestDb } from "../helpers/db.ts";
import { addJob, job, messages, startNesting, waitForRequest, type Nesting } from "./harness.ts";

let db: TestDb;
let n: Nesting;
test.before(async () => {
  db = await createTestDatabase();
  n = await startNesting(db);
  await db.query(`select ops.set_setting('nesting.request_timeout', '"1 second"')`);
});
test.after.always(async () => {
  await n?.stop();
  await db?.drop();
});

test.serial("an order_saw.erl that differs from the request locks nothing and is quarantined", async (t) => {
  await addJob(db, "Alt/One", "101");
  n.sim.faults = { alterErl: true };
  try {
    const { rows } = await db.query(`select nesting.lock_jobs(array['Alt/One']) as id`);
    const r = await waitForRequest(db, rows[0].id, ["failed", "acknowledged"]);
    t.is(r.status, "failed");
    t.false((await job(db, "Alt/One")).is_locked);
    // The file and its reason are two renames: wait for both.
    await eventually(async () => n.quarantined().some((f) => f.endsWith("order_saw.erl")), 15_000);
    await eventually(async () => n.quarantined().some((f) => f.endsWith("order_saw.erl.reason.txt")), 15_000);
    t.pass();
    const m = (await messages(db)).find((x) => x.title.includes("different content"));
    t.is(m?.severity, "error");
    t.regex(m!.body, /^Sent: One;101;1;0;1;0;0;0;;\. Acknowledged: One;101;2;0;1;0;0;0;;\./);
  } finally {
    n.sim.faults = {};
  }
});

test.serial("a request the storage never takes is taken back at the deadline; jobs stay unlocked", async (t) => {
  await addJob(db, "Off/One", "101");
  n.sim.faults = { noAnswer: true };
  try {
    const { rows } = await db.query(`select nesting.lock_jobs(array['Off/One']) as id`);
    const r = await waitForRequest(db, rows[0].id, ["timed_out"], 10_000);
    t.regex(r.error, /taken back/);
    t.false(n.files().some((f) => /^order_saw\.csv$/i.test(f)), "order_saw.csv is no longer in the share");
    t.true(n.archived().some((f) => /withdrawn-order_saw\.csv$/.test(f)), "it was moved to the archive, not deleted");
    t.false((await job(db, "Off/One")).is_locked);
    const m = (await messages(db)).find((x) => x.title.includes(`request ${rows[0].id}`));
    t.regex(m!.title, /did not take order_saw\.csv \(request \d+\) in time/);
    // The jobs can be locked again once the storage is back.
    n.sim.faults = {};
    const again = await db.query(`select nesting.lock_jobs(array['Off/One']) as id`);
    await waitForRequest(db, again.rows[0].id, ["acknowledged"]);
    t.true((await job(db, "Off/One")).is_locked);
  } finally {
    n.sim.faults = {};
  }
});

test.serial("an .erl arriving for a request that already timed out locks nothing, is quarantined and names the jobs", async (t) => {
  await addJob(db, "Gone/One", "101");
  n.sim.faults = { noAnswer: true };
  let lines: string[];
  let id: string;
  try {
    const { rows } = await db.query(`select nesting.lock_jobs(array['Gone/One']) as id`);
    id = rows[0].id;
    lines = (await waitForRequest(db, id, ["timed_out"], 10_000)).lines;
  } finally {
    n.sim.faults = {};
  }
  const quarantinedBefore = n.quarantined().length;
  writeFileSync(path.join(n.share, "order_saw.erl"), formatRequest(lines));
  await eventually(async () => n.quarantined().length > quarantinedBefore && n.quarantined().some((f) => f.endsWith("order_saw.erl")), 15_000);
  t.false((await job(db, "Gone/One")).is_locked);
  const status = await db.query(`select status from nesting.grundner_requests where id = $1`, [id]);
  t.is(status.rows[0].status, "timed_out", "the request stays as it was");
  const m = (await messages(db)).find((x) => x.title.includes(`request ${id}) after it was timed out`));
  t.is(m?.severity, "error");
  t.is(m!.title, `Grundner acknowledged order_saw.csv (request ${id}) after it was timed out; nothing was locked`);
  t.regex(m!.body, /may now hold orders for Gone\/One/);
  const events = await db.query(`select event from nesting.job_events where job_key = 'Gone/One' order by id`);
  t.true(events.rows.some((e) => e.event === "late_lock_ack_ignored"));
});

test.serial("a late .erl for a request the storage really took is still applied", async (t) => {
  await addJob(db, "Late/One", "103");
  n.sim.faults = { lateErlMs: 2500 };
  try {
    const { rows } = await db.query(`select nesting.lock_jobs(array['Late/One']) as id`);
    // Past the 1 s deadline the storage has the file: the request waits, with a warning.
    await eventually(async () => (await messages(db)).some((m) => m.title.includes("has not answered yet")), 8000);
    const waiting = await db.query(`select status from nesting.grundner_requests where id = $1`, [rows[0].id]);
    t.is(waiting.rows[0].status, "sent");
    const r = await waitForRequest(db, rows[0].id, ["acknowledged"], 10_000);
    t.truthy(r.finished_at);
    t.true((await job(db, "Late/One")).is_locked);
  } finally {
    n.sim.faults = {};
  }
});

test.serial("a worker that stops mid-request: no second file, the request completes", async (t) => {
  await addJob(db, "Crash/One", "104");
  await addJob(db, "Crash/Two", "104");
  n.sim.delayMs = 600;
  try {
    const takenBefore = n.sim.taken.length;
    const first = await db.query(`select nesting.lock_jobs(array['Crash/One']) as id`);
    await waitForRequest(db, first.rows[0].id, ["sent"]);
    await n.restartWorker(); // the storage answers while no worker runs
    await waitForRequest(db, first.rows[0].id, ["acknowledged"]);

    // A crash between claiming a request and writing its file: the next pass writes it once.
    const second = await db.query(`select nesting.lock_jobs(array['Crash/Two']) as id`);
    await n.worker.stop();
    await db.query(`update nesting.grundner_requests set status = 'sending' where id = $1 and status in ('queued', 'sending')`, [second.rows[0].id]);
    await n.restartWorker();
    await db.query(`select graphile_worker.add_job('nesting_grundner')`);
    await waitForRequest(db, second.rows[0].id, ["acknowledged"]);
    const files = n.sim.taken.slice(takenBefore).filter((x) => x.file === "order_saw.csv");
    t.is(files.length, 2, "each request reached the storage exactly once");
    t.true((await job(db, "Crash/One")).is_locked);
    t.true((await job(db, "Crash/Two")).is_locked);
  } finally {
    n.sim.delayMs = 0;
  }
});

test.serial("values the gateway cannot take are refused before anything is written", async (t) => {
  // The format layer refuses them outright.
  t.throws(() => formatRequest(["A;1;1;0;1;0;0;0;Ω;"]), { instanceOf: ProtocolError, message: /"Ω" cannot be written in Windows-1252/ });
  t.throws(() => formatRequest(["A;1\r\n;1"]), { instanceOf: ProtocolError, message: /line break/ });
  t.deepEqual([...formatRequest(["Ü€;é"])], [0xdc, 0x80, 0x3b, 0xe9, 0x0d, 0x0a]);

  // The database refuses a job number that would break the protocol.
  await rejectsWith(t, db.query(`insert into nesting.jobs (key, ncfile, grundner_job_no) values ('Bad/Semi', 'x.nc', 'A;B')`), "23514",
    /grundner_job_no_check|violates check constraint/);

  // A request that holds such a value (written by hand) fails with a message; no file appears.
  const { rows } = await db.query(
    `insert into nesting.grundner_requests (kind, file_name, lines) values ('lock', 'order_saw', array['Ω1;101;1;0;1;0;0;0;;']) returning id`,
  );
  const r = await waitForRequest(db, rows[0].id, ["failed"]);
  t.regex(r.error, /cannot be written in Windows-1252/);
  t.false(existsSync(path.join(n.share, "order_saw.csv")));
  t.true((await messages(db)).some((m) => m.title === `Could not send order_saw.csv (request ${rows[0].id})`));
});

test.serial("a reply nobody asked for is quarantined with a message", async (t) => {
  writeFileSync(path.join(n.share, "productionLIST_del.csv"), "1;NOPE;101;x;1;0;1;1;0\r\n");
  await eventually(async () => n.quarantined().some((f) => f.endsWith("productionLIST_del.csv")), 15_000);
  // The file is moved first, the message follows in the database: wait for it too.
  const m = await eventually(
    async () => (await messages(db)).find((x) => x.title.startsWith("productionLIST_del.csv from Grundner could not be used")),
    15_000,
  );
  t.regex(m.body, /No release request waiting for an answer names the orders in it/);
});

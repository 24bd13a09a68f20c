// Reserve, lock a batch through order_saw.csv/.erl, release through
// get_production.csv/productionLIST_del.csv, with the simulator as the storage.
// Each test has its own database and storage and sets up the jobs it needs.
import { readFileSync } from "node:fs";
import path from "node:path";
import anyTest, { type TestFn } from "ava";
import { rejectsWith } from "../helpers/assert.ts";
import { createTestDatabase, eventually, type TestDb } from "../helpers/db.ts";
import { addJob, job, messages, startNesting, waitForRequest, type Nesting } from "./harness.ts";

const test = anyTest as TestFn<{ db: TestDb; n: Nesting }>;
test.beforeEach(async (t) => {
  t.context.db = await createTestDatabase();
  t.context.n = await startNesting(t.context.db);
});
test.afterEach.always(async (t) => {
  await t.context.n?.stop();
  await t.context.db?.drop();
});

/** Adds the jobs (key, material) and locks them at the storage in one batch. */
async function lockedJobs(db: TestDb, jobs: [string, string][]) {
  for (const [key, material] of jobs) await addJob(db, key, material);
  const { rows } = await db.query(`select nesting.lock_jobs($1) as id`, [jobs.map(([key]) => key)]);
  return waitForRequest(db, rows[0].id, ["acknowledged"]);
}

test.serial("reserve sets pre_reserved, shows in the allocation view, and is idempotent", async (t) => {
  const { db } = t.context;
  await addJob(db, "Kitchen42/Sheet1", "101");
  const first = await db.asRole("shopfloor_operator", (c) => c.query(`select * from nesting.reserve_job('Kitchen42/Sheet1')`), "olga");
  t.true(first.rows[0].pre_reserved);
  await db.query(`select nesting.reserve_job('Kitchen42/Sheet1')`);
  const view = await db.query(`select pre_reserved_count, locked_count, jobs from nesting.allocated_material_view where type_data = 101`);
  t.is(view.rows[0].pre_reserved_count, 1);
  t.is(view.rows[0].jobs[0].key, "Kitchen42/Sheet1");
  const events = await db.query(`select event, actor from nesting.job_events where job_key = 'Kitchen42/Sheet1'`);
  t.deepEqual(events.rows, [{ event: "reserved", actor: "olga" }]);
});

test.serial("a batch of 3 is locked with one order_saw.csv of 3 lines, acknowledged by order_saw.erl", async (t) => {
  const { db, n } = t.context;
  await addJob(db, "Kitchen42/Sheet1", "101");
  await db.query(`select nesting.reserve_job('Kitchen42/Sheet1')`);
  await addJob(db, "Kitchen42/Sheet2", "101");
  await addJob(db, "Kitchen42/Sheet3", "SP19W"); // a customer ID names the same board type
  const takenBefore = n.sim.taken.length;
  const { rows } = await db.query(`select nesting.lock_jobs(array['Kitchen42/Sheet1', 'Kitchen42/Sheet2', 'Kitchen42/Sheet3']) as id`);
  const request = await waitForRequest(db, rows[0].id, ["acknowledged"]);

  const taken = n.sim.taken.slice(takenBefore);
  t.is(taken.length, 1, "one file for the whole batch");
  t.is(taken[0].file, "order_saw.csv");
  t.deepEqual(taken[0].lines, ["Sheet1;101;1;0;1;0;0;0;;", "Sheet2;101;1;0;1;0;0;0;;", "Sheet3;101;1;0;1;0;0;0;;"]);
  t.deepEqual(request.lines, taken[0].lines);

  for (const key of ["Kitchen42/Sheet1", "Kitchen42/Sheet2", "Kitchen42/Sheet3"]) {
    const j = await job(db, key);
    t.true(j.is_locked, key);
    t.false(j.pre_reserved, `${key}: a lock replaces the reservation`);
    t.truthy(j.allocated_at);
  }
  t.true(await eventually(async () => n.archived().some((f) => f.endsWith("order_saw.erl")), 10_000), "the .erl is archived");
  t.false(n.files().some((f) => /order_saw/i.test(f)), "nothing left in the share");
  const view = await db.query(`select locked_count from nesting.allocated_material_view where type_data = 101`);
  t.is(view.rows[0].locked_count, 3);
});

test.serial("unlock releases through get_production.csv and productionLIST_del.csv", async (t) => {
  const { db, n } = t.context;
  await lockedJobs(db, [["Kitchen42/Sheet1", "101"], ["Kitchen42/Sheet2", "101"], ["Kitchen42/Sheet3", "SP19W"]]);
  const takenBefore = n.sim.taken.length;
  const { rows } = await db.query(`select nesting.unlock_jobs(array['Kitchen42/Sheet1', 'Kitchen42/Sheet2'], 'user', 'cut later') as id`);
  const request = await waitForRequest(db, rows[0].id, ["answered", "partial"]);
  t.is(request.status, "answered");
  t.deepEqual(n.sim.taken.slice(takenBefore).map((x) => [x.file, x.lines]), [["get_production.csv", ["Sheet1;1", "Sheet2;1"]]]);
  t.false((await job(db, "Kitchen42/Sheet1")).is_locked);
  t.false((await job(db, "Kitchen42/Sheet2")).is_locked);
  t.true((await job(db, "Kitchen42/Sheet3")).is_locked, "not asked, still locked");
  t.true(await eventually(async () => n.archived().some((f) => /productionLIST_del\.csv$/.test(f)), 10_000));
  t.true(await eventually(async () => n.archived().some((f) => /get_production\.erl$/.test(f)), 10_000));
});

test.serial("a partial release keeps the jobs whose board is on the gripper locked, and says so", async (t) => {
  const { db, n } = t.context;
  await lockedJobs(db, [["Kitchen42/Sheet3", "SP19W"]]);
  await lockedJobs(db, [["Kitchen42/Sheet4", "102"]]);

  n.sim.faults = { onGripper: ["Sheet3"] };
  try {
    const { rows } = await db.query(`select nesting.unlock_jobs(array['Kitchen42/Sheet3', 'Kitchen42/Sheet4'], 'stage-sanity', 'NC file left Ready-to-Run') as id`);
    const request = await waitForRequest(db, rows[0].id, ["answered", "partial"]);
    t.is(request.status, "partial");
    t.deepEqual(request.answer.still_locked, ["Kitchen42/Sheet3"]);
    t.true((await job(db, "Kitchen42/Sheet3")).is_locked);
    t.false((await job(db, "Kitchen42/Sheet4")).is_locked);
    const warn = (await messages(db)).find((m) => m.title.includes("Kitchen42/Sheet3"));
    t.is(warn?.severity, "warning");
    t.regex(warn!.title, /already on its way to the saw/);
    const released = await messages(db, "stage-sanity");
    t.deepEqual(released.map((m) => m.title), ["Released Sheet4.nc from Grundner (NC file left Ready-to-Run)"]);
  } finally {
    n.sim.faults = {};
  }
});

test.serial("job names longer than 8 characters get a stored Grundner job number that fits", async (t) => {
  const { db } = t.context;
  const long = await addJob(db, "Project Alpha/Cabinet_Door_Left_0042", "103");
  const fits = await addJob(db, "Project Alpha/Door42", "103");
  t.regex(long.grundner_job_no, /^J[0-9A-Z]{7}$/);
  t.is(fits.grundner_job_no, "Door42");
  const { rows } = await db.query(`select nesting.lock_jobs(array['Project Alpha/Cabinet_Door_Left_0042', 'Project Alpha/Door42']) as id`);
  const request = await waitForRequest(db, rows[0].id, ["acknowledged"]);
  t.deepEqual(request.lines, [`${long.grundner_job_no};103;1;0;1;0;0;0;;`, "Door42;103;1;0;1;0;0;0;;"]);
  // A second job whose name is taken, or does not fit, never reuses a number.
  const clash = await addJob(db, "Elsewhere/Door42", "103");
  t.not(clash.grundner_job_no, "Door42");
});

test.serial("lock refusals name the jobs: unknown, not lockable, unknown material, too few boards", async (t) => {
  const { db } = t.context;
  await lockedJobs(db, [["Kitchen42/Sheet3", "SP19W"]]);
  await rejectsWith(t, db.query(`select nesting.lock_jobs(array['No/Such', 'Kitchen42/Sheet3'])`), "SF404", /Unknown job\(s\): No\/Such/);
  await rejectsWith(t, db.query(`select nesting.lock_jobs(array['Kitchen42/Sheet3'])`), "SF409", /Kitchen42\/Sheet3 \(already locked\)/);

  await addJob(db, "X/Mystery", "999");
  await rejectsWith(t, db.query(`select nesting.lock_jobs(array['X/Mystery'])`), "SF409", /X\/Mystery \(material 999 is unknown to Grundner\)/);

  // Type 102 has 3 boards, none locked: 3 available; ask for 4.
  for (const k of ["A", "B", "C", "D"]) await addJob(db, `Oak/${k}`, "EI19");
  await rejectsWith(t, db.query(`select nesting.lock_jobs(array['Oak/A', 'Oak/B', 'Oak/C', 'Oak/D'])`), "SF409",
    /Not enough boards: type 102 needs 4, 3 available \(Oak\/A, Oak\/B, Oak\/C, Oak\/D\)/);
  const { rows } = await db.query(`select count(*)::int as n from nesting.grundner_requests where status = 'queued'`);
  t.is(rows[0].n, 0, "a refused lock queues nothing");
});

test.serial("two batches queued back to back are never in the share at the same time", async (t) => {
  const { db, n } = t.context;
  n.sim.delayMs = 250;
  try {
    for (const k of ["E", "F"]) await addJob(db, `Pine/${k}`, "101");
    const a = await db.query(`select nesting.lock_jobs(array['Pine/E']) as id`);
    const b = await db.query(`select nesting.lock_jobs(array['Pine/F']) as id`);
    const ra = await waitForRequest(db, a.rows[0].id, ["acknowledged"]);
    const rb = await waitForRequest(db, b.rows[0].id, ["acknowledged"]);
    t.true(new Date(rb.sent_at) >= new Date(ra.finished_at), "the second was written only after the first was acknowledged");
  } finally {
    n.sim.delayMs = 0;
  }
});

test.serial("stock.csv with Windows-1252 letters arrives intact", async (t) => {
  const { db, n } = t.context;
  const { rows } = await db.query(`select type_data, material_name, thickness_mm::float as t from nesting.grundner order by type_data`);
  t.deepEqual(
    rows.map((r) => r.material_name),
    ["Spanplatte weiß 19", "Eiche geölt 19", "Bøg massiv", "Hêtre étuvé"],
  );
  t.is(rows[3].t, 18.5);
  const stockFile = await eventually(async () => n.archived().find((f) => f.endsWith("stock.csv")), 10_000);
  const bytes = readFileSync(path.join(n.config.grundnerArchiveDir, stockFile));
  t.true(bytes.includes(Buffer.from("ge\xf6lt", "latin1")), "ö is the one Windows-1252 byte 0xF6");
  t.false(bytes.includes(Buffer.from("ö", "utf8")), "not UTF-8");
});

test.serial("a job staged on a machine is ordered to that machine's Grundner number, and released from it", async (t) => {
  const { db, n } = t.context;
  const { rows: m } = await db.query(`select (nesting.upsert_machine('Saw three', '/tmp/nowhere-saw3', 3)).id`);
  await addJob(db, "Saw3/Staged", "101");
  await addJob(db, "Saw3/Loose", "101");
  await db.query(`update nesting.jobs set status = 'STAGED', staged_machine_id = $1 where key = 'Saw3/Staged'`, [m[0].id]);
  const lock = await db.query(`select nesting.lock_jobs(array['Saw3/Staged', 'Saw3/Loose']) as id`);
  const locked = await waitForRequest(db, lock.rows[0].id, ["acknowledged"]);
  t.deepEqual(locked.lines, ["Loose;101;1;0;1;0;0;0;;", "Staged;101;1;0;3;0;0;0;;"], "the setting (1) for the job on no machine");
  t.is((await job(db, "Saw3/Staged")).grundner_machine, 3);

  // Unstaged since (stage sanity clears the machine before releasing): the
  // release still names the machine the order went to.
  await db.query(`update nesting.jobs set status = 'PENDING', staged_machine_id = null where key = 'Saw3/Staged'`);
  const takenBefore = n.sim.taken.length;
  const release = await db.query(`select nesting.unlock_jobs(array['Saw3/Staged', 'Saw3/Loose']) as id`);
  const released = await waitForRequest(db, release.rows[0].id, ["answered", "partial"]);
  t.is(released.status, "answered");
  t.deepEqual(n.sim.taken.slice(takenBefore).map((x) => x.lines), [["Loose;1", "Staged;3"]]);
  t.is((await job(db, "Saw3/Staged")).grundner_machine, null);
});

test.serial("job number collisions: a program called like a generated code, and names with a separator", async (t) => {
  const { db } = t.context;
  // The next generated code is taken by a program of that name: the generator skips it.
  const { rows } = await db.query(`select 'J' || lpad(nesting_private.to_base36(nextval('nesting.grundner_job_no_seq') + 1), 7, '0') as code`);
  const named = await addJob(db, `Clash/${rows[0].code}`, "101");
  t.is(named.grundner_job_no, rows[0].code);
  const generated = await addJob(db, "Clash/A_name_longer_than_eight", "101");
  t.regex(generated.grundner_job_no, /^J[0-9A-Z]{7}$/);
  t.not(generated.grundner_job_no, rows[0].code);
  // A comma is a separator the gateway accepts: such a name gets a generated code.
  const comma = await addJob(db, "Clash/A,B", "101");
  t.regex(comma.grundner_job_no, /^J[0-9A-Z]{7}$/);
  const lock = await db.query(`select nesting.lock_jobs(array['Clash/A,B']) as id`);
  await waitForRequest(db, lock.rows[0].id, ["acknowledged"]);
  t.true((await job(db, "Clash/A,B")).is_locked);
});

test.serial("stage sanity leaves a job staged after the folder was listed for the next look", async (t) => {
  const { db } = t.context;
  const { rows: m } = await db.query(`select (nesting.upsert_machine('Saw three', '/tmp/nowhere-saw3', 3)).id`);
  await addJob(db, "Race/Copied", "101");
  const { rows: before } = await db.query(`select clock_timestamp() as at`);
  // The worker copies the file and marks the job STAGED after the listing was taken.
  await db.query(`select nesting_private.mark_staged(array['Race/Copied'], $1)`, [m[0].id]);
  const late = await db.query(`select nesting_private.stage_sanity($1, '{}', $2) as r`, [m[0].id, before[0].at]);
  t.deepEqual(late.rows[0].r.unstaged, []);
  t.is((await job(db, "Race/Copied")).status, "STAGED");
  // A listing taken after staging that lacks the file does unstage it.
  const { rows: after } = await db.query(`select clock_timestamp() as at`);
  const next = await db.query(`select nesting_private.stage_sanity($1, '{}', $2) as r`, [m[0].id, after[0].at]);
  t.deepEqual(next.rows[0].r.unstaged, ["Race/Copied"]);
  t.is((await job(db, "Race/Copied")).status, "PENDING");
});

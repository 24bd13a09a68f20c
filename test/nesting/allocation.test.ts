// Availability and the grid against a real storage's habits (issue 11):
// acknowledged locks counted until the next stock figure, racing lockers, one
// customer ID on two types, drift between field 15 and our locks, and the
// grid's live event firing only when something changed.
import test from "ava";
import pg from "pg";
import { rejectsWith } from "../helpers/assert.ts";
import { eventually, type TestDb } from "../helpers/db.ts";
import { addJob, job, messages, waitForRequest, withNesting, type Nesting } from "./harness.ts";

let db: TestDb;
let n: Nesting;
withNesting(test, (made) => ({ db, n } = made));

async function syncStock() {
  const { rows } = await db.query(`select nesting.request_stock('test') as id`);
  await waitForRequest(db, rows[0].id, ["answered"]);
}

test.serial("acknowledged locks count against the storage's figure until the next sync", async (t) => {
  // Type 103 has 5 boards. Lock them one by one, each acknowledged, no sync in between.
  for (let i = 1; i <= 5; i++) {
    await addJob(db, `Avail/${i}`, "103");
    const { rows } = await db.query(`select nesting.lock_jobs(array['Avail/${i}']) as id`);
    await waitForRequest(db, rows[0].id, ["acknowledged"]);
  }
  const grid = await db.query(`select stock_available, locked_since_sync, available_to_lock from nesting.allocated_material_view where type_data = 103`);
  t.deepEqual(grid.rows[0], { stock_available: 5, locked_since_sync: 5, available_to_lock: 0 });
  await addJob(db, "Avail/6", "103");
  await rejectsWith(t, db.query(`select nesting.lock_jobs(array['Avail/6'])`), "SF409", "Not enough boards: type 103 needs 1, 0 available (Avail/6)");
  // After a sync the storage's own figure says the same: 0 available, nothing counted twice.
  await syncStock();
  const after = await db.query(`select stock_available, locked_since_sync, available_to_lock from nesting.allocated_material_view where type_data = 103`);
  t.deepEqual(after.rows[0], { stock_available: 0, locked_since_sync: 0, available_to_lock: 0 });
});

test.serial("racing connections never lock more boards than the storage has", async (t) => {
  // Type 104 has 4 boards; 6 connections each lock a batch of 2 at once, while acknowledgements arrive.
  const keys = Array.from({ length: 12 }, (_, i) => `Race/${String(i).padStart(2, "0")}`);
  for (const k of keys) await addJob(db, k, "104");
  const clients = await Promise.all(Array.from({ length: 6 }, async () => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    return c;
  }));
  try {
    const results = await Promise.allSettled(clients.map((c, i) => c.query(`select nesting.lock_jobs($1) as id`, [keys.slice(i * 2, i * 2 + 2)])));
    const ok = results.filter((r) => r.status === "fulfilled") as PromiseFulfilledResult<pg.QueryResult>[];
    t.is(ok.length, 2, "two batches of two fit into four boards");
    for (const r of results) if (r.status === "rejected") t.regex(r.reason.message, /^Not enough boards: type 104/);
    for (const r of ok) await waitForRequest(db, r.value.rows[0].id, ["acknowledged"]);
    // More attempts once they are acknowledged (no sync yet): still nothing more.
    const more = await Promise.allSettled(clients.map((c, i) => c.query(`select nesting.lock_jobs($1)`, [[keys[i + 6]]])));
    t.true(more.every((r) => r.status === "rejected"));
    const { rows } = await db.query(
      `select (select count(*)::int from nesting.jobs where is_locked and locked_type = 104) +
              nesting.pending_lock_count(104) as held`,
    );
    t.is(rows[0].held, 4);
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
});

test.serial("one customer ID on two types: each job counts on one type, the same in lock, release and grid; a supervisor pins", async (t) => {
  n.sim.boards.set(201, { type: 201, material_name: "Shared A", length: 2800, width: 2070, thickness: 19, stock: 10, customer_id: "777" });
  n.sim.boards.set(202, { type: 202, material_name: "Shared B", length: 2800, width: 2070, thickness: 19, stock: 10, customer_id: "777" });
  await syncStock();
  for (const k of ["Amb/1", "Amb/2", "Amb/3", "Amb/4"]) {
    await addJob(db, k, "777");
    await db.query(`select nesting.reserve_job($1)`, [k]);
  }
  const grid = async () =>
    (await db.query(`select type_data, pre_reserved_count, locked_count, customer_id_types from nesting.allocated_material_view where type_data in (201, 202) order by 1`)).rows;
  t.deepEqual(await grid(), [
    { type_data: 201, pre_reserved_count: 4, locked_count: 0, customer_id_types: [201, 202] },
    { type_data: 202, pre_reserved_count: 0, locked_count: 0, customer_id_types: [201, 202] },
  ]);
  t.is((await messages(db)).filter((m) => m.title.startsWith("Customer ID 777 names 2 board types")).length, 1);

  await rejectsWith(t, db.asRole("shopfloor_operator", (c) => c.query(`select nesting.pin_job_type('Amb/4', 202)`)), "42501", /permission denied/);
  await db.asRole("shopfloor_supervisor", (c) => c.query(`select nesting.pin_job_type('Amb/4', 202)`));
  t.deepEqual((await grid()).map((r) => r.pre_reserved_count), [3, 1]);

  const lock = await db.query(`select nesting.lock_jobs(array['Amb/1', 'Amb/4']) as id`);
  const r = await waitForRequest(db, lock.rows[0].id, ["acknowledged"]);
  t.deepEqual(r.lines, ["Amb1;201;1;0;1;0;0;0;;", "Amb4;202;1;0;1;0;0;0;;"].map((l) => l.replace("Amb1", (r.items[0].job_no as string)).replace("Amb4", r.items[1].job_no as string)));
  t.deepEqual(r.items.map((i: any) => i.type), [201, 202]);
  t.deepEqual((await grid()).map((g) => [g.pre_reserved_count, g.locked_count]), [[2, 1], [0, 1]]);
  await rejectsWith(t, db.query(`select nesting.pin_job_type('Amb/4', 201)`), "SF409");
  const rel = await db.query(`select nesting.unlock_jobs(array['Amb/1', 'Amb/4']) as id`);
  const released = await waitForRequest(db, rel.rows[0].id, ["answered"]);
  t.deepEqual(released.items.map((i: any) => i.type), [201, 202]);
  t.deepEqual(released.answer.mismatched, [], "the storage answered with the types we sent");
  t.false((await job(db, "Amb/4")).is_locked);
});

test.serial("drift between Grundner's reserved stock and our locks: one message per episode, a view, cleared when they agree", async (t) => {
  n.sim.faults = { reservedDrift: { 101: 2 } };
  try {
    await syncStock();
    const drift = await db.query(`select type_data, reserved_stock, locked_count, jobs from nesting.stock_drift_view`);
    t.deepEqual(drift.rows, [{ type_data: 101, reserved_stock: 2, locked_count: 0, jobs: [] }]);
    await syncStock();
    const titles = (await messages(db)).filter((m) => m.title.startsWith("Type 101: Grundner reserves"));
    t.deepEqual(titles.map((m) => m.title), ["Type 101: Grundner reserves 2 board(s), we hold 0 locked"]);
    const gql = await db.query(`select drifting from nesting.allocated_material_view where type_data = 101`);
    t.true(gql.rows[0].drifting);
  } finally {
    n.sim.faults = {};
  }
  await syncStock();
  t.is((await db.query(`select count(*)::int as n from nesting.stock_drift`)).rows[0].n, 0);
  t.true((await messages(db)).some((m) => m.title.startsWith("Type 101: Grundner's reserved stock agrees with our locks again")));
});

test.serial("allocatedMaterialChanged: an idle ingest scan and an unchanged stock sync notify nobody", async (t) => {
  await addJob(db, "Idle/1", "101");
  const listener = new pg.Client({ connectionString: db.url });
  await listener.connect();
  const heard: string[] = [];
  listener.on("notification", (m) => heard.push(m.payload ?? ""));
  await listener.query("listen allocated_material_changed");
  try {
    const present = (await db.query(`select array_agg(key) as keys from nesting.jobs where removed_at is null`)).rows[0].keys;
    await db.query(`select nesting_private.apply_ingest_scan($1, '[]')`, [present]);
    await syncStock();
    await syncStock();
    // A statement that changes something notifies: the last event proves the listener hears.
    await db.query(`select nesting.reserve_job('Idle/1')`);
    await eventually(async () => heard.length > 0);
    t.deepEqual(heard.map((h) => JSON.parse(h)), [{ table: "jobs", op: "update" }]);
  } finally {
    await listener.end();
  }
});

// approve_job through SQL: the spec's four scenarios, reserved-quantity
// bookkeeping under every status change, and bad input.
import test from "ava";
import { createTestDatabase, type TestDb } from "../helpers/db.ts";
import { item, job, reserved, reservedDrift, status } from "./helpers.ts";
import { rejectsWith } from "../helpers/assert.ts";

let db: TestDb;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(() => db?.drop());

const DETAIL = "Inventory was reduced or reserved by another operation while you were editing this job, and it can no longer be fulfilled.";

async function fulfillable(jobId: number): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>(`select approval.job_is_fulfillable($1) as ok`, [jobId]);
  return rows[0].ok;
}
const approve = (jobId: number, was: boolean) =>
  db.asRole("shopfloor_supervisor", (c) => c.query(`select * from approval.approve_job($1, $2)`, [jobId, was]), "sam");

test("TEST 1: reseeding resolves a shortage, approval succeeds", async (t) => {
  const x = await item(db, 2);
  const j = await job(db, [[x, 5]]);
  const lines = (await db.query(`select * from approval.job_shortfall($1)`, [j])).rows;
  t.is(lines.length, 1);
  t.like(lines[0], { item_id: String(x), qty_needed: "5", on_hand: "2", reserved: "0", available: "2", shortfall: "3" });
  const was = await fulfillable(j);
  t.false(was);
  await db.query(`select approval.set_on_hand($1, 10)`, [x]);
  const res = await approve(j, was);
  t.is(res.rows[0].status, "approved");
  t.is(res.rows[0].approved_by, "sam");
  t.truthy(res.rows[0].approved_at);
  t.is(await reserved(db, x), 5);
  const audit = await db.query(`select actor, details from ops.audit_log where action = 'approve_job' and entity_id = $1`, [String(j)]);
  t.is(audit.rows.length, 1);
  t.is(audit.rows[0].actor, "sam");
  t.like(audit.rows[0].details, { was_fulfillable: false, is_fulfillable: true });
});

test("TEST 2: an inventory reduction causes a regression, approval blocked with the shortages", async (t) => {
  const x = await item(db, 10, "T2-X");
  const y = await item(db, 10, "T2-Y");
  const j = await job(db, [[y, 2], [x, 8]]);
  t.true(await fulfillable(j));
  await db.query(`select approval.set_on_hand($1, 3)`, [x]);
  const err = await rejectsWith(t, () => approve(j, true), "SF409", "Inventory changed during job approval");
  t.is(err.detail, DETAIL);
  t.deepEqual(JSON.parse(err.hint!), [
    { item_id: x, sku: "T2-X", needed: 8, available: 3, shortfall: 5, reason: "Insufficient inventory" },
  ]);
  t.is(await status(db, j), "draft");
  t.is(await reserved(db, x), 0, "nothing reserved by a blocked approval");
  t.is(await reserved(db, y), 0);
});

test("TEST 3: concurrent user conflict, the second approval is blocked", async (t) => {
  const x = await item(db, 5);
  const a = await job(db, [[x, 4]]);
  const b = await job(db, [[x, 4]]);
  const wasA = await fulfillable(a);
  const wasB = await fulfillable(b);
  t.true(wasA && wasB);
  await approve(b, wasB);
  t.is(await reserved(db, x), 4);
  const err = await rejectsWith(t, () => approve(a, wasA), "SF409");
  t.like(JSON.parse(err.hint!)[0], { item_id: x, needed: 4, available: 1, shortfall: 3 });
  t.is(await status(db, a), "draft");
  // The job editor reopening now sees it is not fulfillable; approving anyway is allowed (never was).
  t.false(await fulfillable(a));
  await approve(a, false);
  t.is(await reserved(db, x), 8);
});

test("TEST 4: an unrelated item change does not block", async (t) => {
  const x = await item(db, 10);
  const y = await item(db, 10);
  const j = await job(db, [[x, 5]]);
  t.true(await fulfillable(j));
  await db.query(`select approval.set_on_hand($1, 0)`, [y]);
  const res = await approve(j, true);
  t.is(res.rows[0].status, "approved");
});

test("an increase or a smaller shortage never blocks; never-fulfillable jobs approve as the spec says", async (t) => {
  const x = await item(db, 1);
  const j = await job(db, [[x, 5]]);
  await db.query(`select approval.set_on_hand($1, 3)`, [x]); // partial reseed: still short
  const res = await approve(j, false);
  t.is(res.rows[0].status, "approved");
  t.is(await reserved(db, x), 5, "reserved may exceed on hand when a short job is approved knowingly");
});

test("job_shortfall shows what other jobs hold, also for an approved job", async (t) => {
  const x = await item(db, 10);
  const a = await job(db, [[x, 3]]);
  const b = await job(db, [[x, 4]]);
  await approve(a, true);
  await approve(b, true);
  const rows = (await db.query(`select * from approval.job_shortfall($1)`, [b])).rows;
  t.like(rows[0], { qty_needed: "4", on_hand: "10", reserved: "3", available: "7", shortfall: "0" });
  const operatorView = await db.asRole("shopfloor_operator", (c) => c.query(`select approval.job_is_fulfillable($1) as ok`, [b]));
  t.true(operatorView.rows[0].ok, "operators may read shortfalls");
});

// Serial: the repair tool locks every item, so it must not race the other tests' transactions.
test.serial("reserved stays right under every status change", async (t) => {
  const x = await item(db, 100);
  const y = await item(db, 100);
  const j = await job(db, [[x, 10], [y, 20]]);
  const k = await job(db, [[x, 1]]);
  const sup = (sql: string, id: number) => db.asRole("shopfloor_supervisor", (c) => c.query(sql, [id]));
  await approve(j, true);
  await approve(k, true);
  t.deepEqual([await reserved(db, x), await reserved(db, y)], [11, 20]);
  await sup(`select approval.start_job($1)`, j);
  t.deepEqual([await reserved(db, x), await reserved(db, y)], [11, 20], "in progress keeps the reservation");
  await sup(`select approval.complete_job($1)`, j);
  t.deepEqual([await reserved(db, x), await reserved(db, y)], [1, 0], "completion releases it");
  await sup(`select approval.cancel_job($1)`, k);
  t.is(await reserved(db, x), 0, "cancellation releases it");
  // A DBA's plain UPDATE or DELETE is also accounted for.
  const m = await job(db, [[y, 7]]);
  await db.query(`update approval.jobs set status = 'approved' where id = $1`, [m]);
  t.is(await reserved(db, y), 7);
  await db.query(`delete from approval.jobs where id = $1`, [m]);
  t.is(await reserved(db, y), 0);
  t.is(await reservedDrift(db), 0);
  const n = await db.query(`select approval.recompute_reserved() as n`);
  t.is(n.rows[0].n, 0, "the repair tool finds nothing to fix");
});

test("approve_job reserves once; a later status change in the same transaction still goes through the trigger", async (t) => {
  const x = await item(db, 100);
  const y = await item(db, 100);
  const j = await job(db, [[x, 10], [y, 3]]);
  const k = await job(db, [[x, 1]]);
  await db.asRole(
    "shopfloor_supervisor",
    async (c) => {
      await c.query(`select approval.approve_job($1, true)`, [j]);
      const mid = await c.query(`select id, reserved from approval.inventory_items where id = any($1) order by id`, [[x, y]]);
      t.deepEqual(mid.rows.map((r) => Number(r.reserved)), [10, 3], "reserved once by approve_job, not again by the trigger");
      await c.query(`select approval.cancel_job($1)`, [j]); // same transaction: the trigger must release
      await c.query(`select approval.approve_job($1, true)`, [k]);
    },
    "sam",
  );
  t.deepEqual([await reserved(db, x), await reserved(db, y)], [1, 0]);
  // A DBA's plain UPDATE to approved right after, in a new transaction, is reserved by the trigger.
  const m = await job(db, [[y, 4]]);
  await db.query(`update approval.jobs set status = 'approved', approved_at = now(), approved_by = 'dba' where id = $1`, [m]);
  t.is(await reserved(db, y), 4);
  t.is(await reservedDrift(db), 0);
});

test("the BOM of an approved job cannot change", async (t) => {
  const x = await item(db, 100);
  const y = await item(db, 100);
  const j = await job(db, [[x, 1]]);
  await approve(j, true);
  for (const sql of [
    `insert into approval.job_bom (job_id, item_id, qty_planned) values (${j}, ${y}, 1)`,
    `update approval.job_bom set qty_planned = 50 where job_id = ${j}`,
    `delete from approval.job_bom where job_id = ${j}`,
  ]) {
    await rejectsWith(t, () => db.query(sql), "SF409");
  }
  t.is(await reserved(db, x), 1);
});

test("bad input: unknown job, empty BOM, wrong status, wrong role, nulls", async (t) => {
  await rejectsWith(t, () => approve(987654321, true), "SF404", "Job 987654321 does not exist");
  await rejectsWith(t, () => db.query(`select * from approval.job_shortfall(987654321)`), "SF404");

  const empty = await job(db, []);
  t.true(await fulfillable(empty));
  t.is((await approve(empty, true)).rows[0].status, "approved", "a job with no BOM lines is approvable");

  const x = await item(db, 10);
  const j = await job(db, [[x, 4]]);
  await approve(j, true);
  await rejectsWith(t, () => approve(j, true), "SF412", `Job ${j} is approved and cannot be approved`);
  t.is(await reserved(db, x), 4, "approving twice never reserves twice");
  await db.asRole("shopfloor_supervisor", (c) => c.query(`select approval.cancel_job($1)`, [j]));
  await rejectsWith(t, () => approve(j, false), "SF412", `Job ${j} is cancelled and cannot be approved`);
  await rejectsWith(t, () => db.asRole("shopfloor_supervisor", (c) => c.query(`select approval.start_job($1)`, [j])), "SF412");

  const d = await job(db, [[x, 1]]);
  for (const role of ["shopfloor_operator", "shopfloor_planner", "shopfloor_integration"]) {
    await rejectsWith(t, () => db.asRole(role, (c) => c.query(`select approval.approve_job($1, true)`, [d])), "42501");
  }
  t.is(await status(db, d), "draft");
  const admin = await db.asRole("shopfloor_admin", (c) => c.query(`select status from approval.approve_job($1, true)`, [d]));
  t.is(admin.rows[0].status, "approved", "an admin may approve");

  await rejectsWith(t, () => approve(null as unknown as number, true), "SF422");
  await rejectsWith(t, () => approve(d, null as unknown as boolean), "SF422");
  await rejectsWith(t, () => db.query(`select approval.create_job('bad', '[{"item_id": ${x}, "qty_planned": 0}]')`), "SF422");
  await rejectsWith(t, () => db.query(`select approval.create_job('bad', '[{"item_id": 99999999, "qty_planned": 1}]')`), "SF422");
});

test("grants: supervisors and admin change status; operators, planners and integrations read shortfalls only", async (t) => {
  const x = await item(db, 10);
  const j = await job(db, [[x, 2]]);
  for (const role of ["shopfloor_operator", "shopfloor_planner", "shopfloor_integration", "shopfloor_supervisor", "shopfloor_admin"]) {
    const rows = await db.asRole(role, (c) => c.query(`select * from approval.job_shortfall($1)`, [j]));
    t.like(rows.rows[0], { item_id: String(x), qty_needed: "2", shortfall: "0" }, role);
  }
  for (const fn of ["approve_job($1, true)", "start_job($1)", "complete_job($1)", "cancel_job($1)"]) {
    for (const role of ["shopfloor_operator", "shopfloor_planner", "shopfloor_integration"]) {
      await rejectsWith(t, () => db.asRole(role, (c) => c.query(`select approval.${fn}`, [j])), "42501");
    }
  }
  for (const role of ["shopfloor_operator", "shopfloor_supervisor"]) {
    await rejectsWith(t, () => db.asRole(role, (c) => c.query(`select approval.recompute_reserved()`)), "42501");
  }
  t.is(await status(db, j), "draft");
  t.is(await reserved(db, x), 0);
  // The admin runs the whole life cycle.
  const admin = (sql: string) => db.asRole("shopfloor_admin", (c) => c.query(sql, [j]), "ada");
  t.is((await admin(`select approved_by from approval.approve_job($1, true)`)).rows[0].approved_by, "ada");
  t.is(await reserved(db, x), 2);
  await admin(`select approval.start_job($1)`);
  await admin(`select approval.complete_job($1)`);
  t.is(await reserved(db, x), 0);
});

test("a DBA in psql (no token) is recorded as the database user", async (t) => {
  const x = await item(db, 10);
  const j = await job(db, [[x, 1]]);
  const { rows } = await db.query(`select (approval.approve_job($1, true)).approved_by, session_user::text as me`, [j]);
  t.is(rows[0].approved_by, rows[0].me);
  const audit = await db.query(`select actor from ops.audit_log where action = 'approve_job' and entity_id = $1`, [String(j)]);
  t.is(audit.rows[0].actor, rows[0].me);
});

test("complete and cancel release the reservation once; a finished job cannot change again", async (t) => {
  const x = await item(db, 10);
  const a = await job(db, [[x, 3]]);
  const b = await job(db, [[x, 4]]);
  const sup = (sql: string, id: number) => db.asRole("shopfloor_supervisor", (c) => c.query(sql, [id]));
  await approve(a, true);
  await approve(b, true);
  t.is(await reserved(db, x), 7);
  await sup(`select approval.complete_job($1)`, a);
  t.is(await reserved(db, x), 4);
  await rejectsWith(t, () => sup(`select approval.complete_job($1)`, a), "SF412");
  await rejectsWith(t, () => sup(`select approval.cancel_job($1)`, a), "SF412"); // a completed job cannot be cancelled
  await sup(`select approval.cancel_job($1)`, b);
  t.is(await reserved(db, x), 0);
  await rejectsWith(t, () => sup(`select approval.cancel_job($1)`, b), "SF412"); // cancelling twice never releases twice
  await rejectsWith(t, () => sup(`select approval.complete_job($1)`, 987654321), "SF404");
  const d = await job(db, [[x, 1]]);
  await rejectsWith(t, () => sup(`select approval.complete_job($1)`, d), "SF412"); // a draft cannot be completed
  t.is(await reserved(db, x), 0);
  t.is(await reservedDrift(db), 0);
});

test("the psql walk-through of docs/approval.md works as written", async (t) => {
  const sku = "DOC-X-100";
  const psql = await db.pool.connect(); // one session, as psql is
  t.teardown(() => psql.release(true)); // destroyed, never back in the pool with a role set
  const x = Number((await psql.query(`select id from approval.create_item($1, 'Hinge', 'pcs', 5)`, [sku])).rows[0].id);
  const j7 = Number((await psql.query(`select id from approval.create_job('Cabinet 42', $1)`, [JSON.stringify([{ item_id: x, qty_planned: 4 }])])).rows[0].id);
  const j8 = Number((await psql.query(`select id from approval.create_job('Cabinet 43', $1)`, [JSON.stringify([{ sku, qty_planned: 4 }])])).rows[0].id);
  t.true((await psql.query(`select approval.job_is_fulfillable($1) as ok`, [j7])).rows[0].ok);
  await psql.query(`set role shopfloor_supervisor`);
  t.is((await psql.query(`select status from approval.approve_job($1, true)`, [j7])).rows[0].status, "approved");
  await psql.query(`reset role`);
  const err = await rejectsWith(t, () => psql.query(`select approval.approve_job($1, true)`, [j8]), "SF409");
  t.is(err.detail, DETAIL);
  t.is(err.hint, `[{"sku": "${sku}", "needed": 4, "reason": "Insufficient inventory", "item_id": ${x}, "available": 1, "shortfall": 3}]`);
  await psql.query(`select approval.set_on_hand($1, 50)`, [x]);
  t.is((await psql.query(`select status from approval.approve_job($1, true)`, [j8])).rows[0].status, "approved");
  await psql.query(`select approval.start_job($1)`, [j7]);
  await psql.query(`select approval.complete_job($1)`, [j7]);
  t.is(await reserved(db, x), 4);
});

test("quantities that are no number, or too big to count, are refused naming the field and the BOM line", async (t) => {
  const x = await item(db, 10);
  for (const [bom, message] of [
    [[{ item_id: x, qty_planned: "NaN" }], /^bom\[0\]: qty_planned must be a number above 0 and below 1,000,000,000,000/],
    [[{ item_id: x, qty_planned: 1 }, { item_id: x + 1000000, qty_planned: "Infinity" }], /^bom\[1\]: qty_planned must be/],
    [[{ item_id: x, qty_planned: 1e13 }], /^bom\[0\]: qty_planned must be/],
    [[{ item_id: "abc", qty_planned: 1 }], /^bom\[0\]: item_id must be a positive whole number/],
    [[{ item_id: x }], /^bom\[0\]: qty_planned must be/],
    [[{ qty_planned: 1 }], /^bom\[0\]: item_id or sku is needed/],
    [[7], /^bom\[0\]: a BOM line is an object/],
  ] as const) {
    await rejectsWith(t, () => db.query(`select approval.create_job('bad', $1)`, [JSON.stringify(bom)]), "SF422", message);
  }
  for (const value of ["NaN", "Infinity", "1e13"]) {
    await rejectsWith(t, () => db.query(`select approval.create_item('nan-item', 'n', 'pcs', $1::numeric)`, [value]), "SF422", /on_hand must be zero or more: a number from 0 to below 1,000,000,000,000/);
    await rejectsWith(t, () => db.query(`select approval.set_on_hand($1, $2::numeric)`, [x, value]), "SF422", /on_hand must be zero or more: a number from 0 to below 1,000,000,000,000/);
  }
  await rejectsWith(t, () => db.query(`select approval.set_on_hand(null, 1)`), "SF422", /set_on_hand needs an item id/);
  // An item_id of null next to a sku (how clients serialize an unset field) is the sku's line.
  const sku = (await db.query(`select sku from approval.inventory_items where id = $1`, [x])).rows[0].sku;
  const bySku = await db.query(`select id from approval.create_job('by-sku', $1)`, [JSON.stringify([{ item_id: null, sku, qty_planned: 2 }])]);
  const line = await db.query(`select item_id::int, qty_planned::int from approval.job_bom where job_id = $1`, [bySku.rows[0].id]);
  t.deepEqual(line.rows, [{ item_id: x, qty_planned: 2 }]);
  await rejectsWith(t, () => db.query(`select approval.create_job('bad', '[{"item_id": null, "qty_planned": 1}]')`), "SF422", /^bom\[0\]: item_id or sku is needed/);
  t.is(await reservedDrift(db), 0);
});

test("a blocked approval's shortage list is bounded: the first 50 lines, and how many there are", async (t) => {
  const items: number[] = [];
  for (let i = 0; i < 60; i++) items.push(await item(db, 0));
  const j = await job(db, items.map((x) => [x, 1] as [number, number]));
  const err = await rejectsWith(t, () => approve(j, true), "SF409");
  const shortages = JSON.parse(err.hint!);
  t.is(shortages.length, 50);
  t.deepEqual(shortages.map((s: { item_id: number }) => Number(s.item_id)), items.slice(0, 50));
  t.regex(err.detail!, /60 BOM lines are short; the first 50 are listed/);
});

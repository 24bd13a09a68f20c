// Real races: several connections approving at once, each committing.
import test from "ava";
import type pg from "pg";
import { createTestDatabase, type TestDb } from "../helpers/db.ts";
import { connect, item, job, reserved, reservedDrift, status, type PgError } from "./helpers.ts";
import { rejectsWith } from "../helpers/assert.ts";

let db: TestDb;
let clients: pg.Client[] = [];
test.before(async () => {
  db = await createTestDatabase();
  clients = await connect(db.url, 20);
});
test.after.always(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => {})));
  await db?.drop();
});

async function approveOn(c: pg.Client, jobId: number, was: boolean) {
  await c.query("begin");
  try {
    await c.query("select set_config('role', 'shopfloor_supervisor', true)");
    const r = await c.query(`select status from approval.approve_job($1, $2)`, [jobId, was]);
    // Hold the locks a moment so that the competitors really queue behind us.
    await c.query("select pg_sleep(0.01)");
    await c.query("commit");
    return r.rows[0].status as string;
  } catch (e) {
    await c.query("rollback");
    throw e;
  }
}

test.serial("two competing approvals at the same time: exactly one wins", async (t) => {
  for (let round = 0; round < 5; round++) {
    const x = await item(db, 5);
    const a = await job(db, [[x, 4]]);
    const b = await job(db, [[x, 4]]);
    const results = await Promise.allSettled([approveOn(clients[0], a, true), approveOn(clients[1], b, true)]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    t.is(won.length, 1, `round ${round}`);
    t.is(lost.length, 1);
    t.is((lost[0].reason as PgError).code, "SF409");
    t.is(await reserved(db, x), 4);
    t.deepEqual([await status(db, a), await status(db, b)].sort(), ["approved", "draft"]);
  }
});

test.serial("20 concurrent approvals over shared items: no item ends with reserved > on_hand", async (t) => {
  const items = [await item(db, 30), await item(db, 25), await item(db, 40), await item(db, 12)];
  const jobs: number[] = [];
  for (let i = 0; i < 20; i++) {
    // Each job alone is fulfillable; together they are not.
    jobs.push(await job(db, [[items[i % 4], 5], [items[(i + 1) % 4], 3], [items[(i + 2) % 4], 2]]));
  }
  const results = await Promise.allSettled(jobs.map((j, i) => approveOn(clients[i], j, true)));
  const won = results.filter((r) => r.status === "fulfilled").length;
  const codes = results.flatMap((r) => (r.status === "rejected" ? [(r.reason as PgError).code] : []));
  t.true(won > 0 && won < 20, `${won} approved`);
  t.deepEqual([...new Set(codes)], ["SF409"], "every loser is blocked by the guardrail, nothing else");
  const over = await db.query(`select id, on_hand, reserved from approval.inventory_items where id = any($1) and reserved > on_hand`, [items]);
  t.deepEqual(over.rows, []);
  t.is(await reservedDrift(db), 0);
  const approved = await db.query<{ n: string }>(`select count(*) as n from approval.jobs where id = any($1) and status = 'approved'`, [jobs]);
  t.is(Number(approved.rows[0].n), won);
});

test.serial("BOMs sharing items in opposite orders, approved concurrently many times: never a deadlock", async (t) => {
  const errors: string[] = [];
  let approved = 0;
  for (let round = 0; round < 15; round++) {
    const its = [await item(db, 1000), await item(db, 1000), await item(db, 1000)];
    const pairs = [];
    for (let k = 0; k < 4; k++) {
      // Lines inserted in opposite orders, so an unordered lock would take them in opposite orders.
      const a = await job(db, [[its[0], 1], [its[1], 1], [its[2], 1]]);
      const b = await job(db, [[its[2], 1], [its[1], 1], [its[0], 1]]);
      pairs.push(a, b);
    }
    const results = await Promise.allSettled(pairs.map((j, i) => approveOn(clients[i], j, true)));
    for (const r of results) {
      if (r.status === "fulfilled") approved++;
      else errors.push((r.reason as PgError).code ?? String(r.reason));
    }
  }
  t.deepEqual(errors, [], "no 40P01 and no other error");
  t.is(approved, 15 * 8);
  t.is(await reservedDrift(db), 0);
});

test.serial("an approval racing a cancellation and a stock reduction keeps reserved exact", async (t) => {
  const x = await item(db, 10);
  const a = await job(db, [[x, 6]]);
  await approveOn(clients[0], a, true);
  const b = await job(db, [[x, 6]]);
  // Cancel a (frees 6) while b is approved: whichever order, the books must balance.
  const cancel = (async () => {
    await clients[1].query("begin");
    await clients[1].query("select set_config('role', 'shopfloor_supervisor', true)");
    await clients[1].query(`select approval.cancel_job($1)`, [a]);
    await clients[1].query("select pg_sleep(0.01)");
    await clients[1].query("commit");
  })();
  const approval = approveOn(clients[2], b, false);
  await Promise.all([cancel, approval]);
  t.is(await reserved(db, x), 6);
  t.is(await reservedDrift(db), 0);
});

test.serial("the same job approved from several connections at once: one wins, the others get SF412, reserved once", async (t) => {
  for (let round = 0; round < 5; round++) {
    const x = await item(db, 100);
    const y = await item(db, 100);
    const j = await job(db, [[x, 7], [y, 5]]);
    const results = await Promise.allSettled(clients.slice(0, 6).map((c, i) => approveOn(c, j, i % 2 === 0)));
    const won = results.filter((r) => r.status === "fulfilled").length;
    const codes = results.flatMap((r) => (r.status === "rejected" ? [(r.reason as PgError).code] : []));
    t.is(won, 1, `round ${round}`);
    t.deepEqual([...new Set(codes)], ["SF412"]);
    t.deepEqual([await reserved(db, x), await reserved(db, y)], [7, 5], "approving twice never reserves twice");
  }
  t.is(await reservedDrift(db), 0);
});

test.serial("a BOM line added while the job is being approved waits, then is refused; reserved stays exact", async (t) => {
  for (const via of ["approve_job", "a DBA's plain UPDATE"]) {
    const x = await item(db, 100);
    const y = await item(db, 100);
    const j = await job(db, [[x, 2]]);
    const [a, b] = [clients[0], clients[1]];
    await a.query("begin");
    if (via === "approve_job") await a.query(`select approval.approve_job($1, true)`, [j]);
    else await a.query(`update approval.jobs set status = 'approved', approved_at = now(), approved_by = 'dba' where id = $1`, [j]);
    let settled = false;
    const insert = b.query(`insert into approval.job_bom (job_id, item_id, qty_planned) values ($1, $2, 5)`, [j, y]).finally(() => {
      settled = true;
    });
    insert.catch(() => {});
    await new Promise((r) => setTimeout(r, 150));
    t.false(settled, `${via}: the BOM insert waits for the approval`);
    await a.query("commit");
    await rejectsWith(t, () => insert, "SF409");
    t.deepEqual([await reserved(db, x), await reserved(db, y)], [2, 0], via);
  }
  t.is(await reservedDrift(db), 0);
});

test.serial("a planner creating a draft over the same items neither waits for nor deadlocks with an approval, a cancel or a completion", async (t) => {
  const items: number[] = [];
  for (let i = 0; i < 20; i++) items.push(await item(db, 100));
  const bom = items.map((x) => [x, 1] as [number, number]);
  for (const action of ["approve", "cancel", "complete"]) {
    const j = await job(db, bom);
    if (action !== "approve") await db.asRole("shopfloor_supervisor", (c) => c.query(`select approval.approve_job($1, true)`, [j]));
    const holder = clients[0];
    await holder.query("begin");
    try {
      await holder.query("select set_config('role', 'shopfloor_supervisor', true)");
      const fn = action === "approve" ? "approve_job($1, true)" : action === "cancel" ? "cancel_job($1)" : "complete_job($1)";
      await holder.query(`select approval.${fn}`, [j]);
      // The items stay locked by the status change while a planner drafts a job over them, in the opposite order.
      const planner = clients[1];
      await planner.query("set statement_timeout = '3s'");
      const started = performance.now();
      await planner.query(`select approval.create_job('draft', $1)`, [JSON.stringify([...bom].reverse().map(([item_id, qty_planned]) => ({ item_id, qty_planned })))]);
      t.true(performance.now() - started < 3000, `${action}: the draft did not wait for the locked items`);
      await planner.query("reset statement_timeout");
    } finally {
      await holder.query("commit");
    }
  }
  t.is(await reservedDrift(db), 0);
});

// Real races: separate connections committing at the same time.
import test from "ava";
import pg from "pg";
import { createTestDatabase, type TestDb } from "../helpers/db.ts";
import { balance, makeTicket, newProduct, receive, start, type PoolResult, type StartResult } from "./fixtures.ts";

let db: TestDb;
let clients: pg.Client[] = [];
const CLIENTS = 25;
test.before(async () => {
  db = await createTestDatabase();
  clients = await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      return c;
    }),
  );
});
test.after.always(async () => {
  await Promise.all(clients.map((c) => c.end()));
  await db?.drop();
});

/** Runs jobs on the clients, each client taking the next job; all clients start together. */
async function onClients<T>(jobs: ((c: pg.Client) => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    clients.map(async (c) => {
      for (let i = next++; i < jobs.length; i = next++) results[i] = await jobs[i](c);
    }),
  );
  return results;
}

test.serial("50 concurrent assembly starts against 10 units: exactly 10 allocated, never negative, every answer truthful", async (t) => {
  const p = newProduct();
  const { tokenIds } = await makeTicket(db, { product: p, requirements: [{ component_code: "SHELL", default_qty: 1, is_required: true }], tokens: 50 });
  await receive(db, p, 1, "SHELL", 10, "race-rcv");
  const results = await onClients(tokenIds.map((tok, i) => (c: pg.Client) => start(c, tok, i + 1)));

  t.true(results.every((r) => r.ok && r.status === "active"), "every token started (LAW-02)");
  const applied = results.filter((r) => r.allocation_ok === true);
  const refused = results.filter((r) => r.allocation_ok === false);
  t.is(applied.length, 10);
  t.is(refused.length, 40);
  t.true(refused.every((r) => r.warnings[0] === "POOL_INSUFFICIENT" && r.allocations[0].code === "POOL_409_NEGATIVE"));
  t.is(await balance(db, p, 1, "SHELL"), "0.000000");

  // What the responses claim is what the ledger holds.
  const ev = await db.query(`select token_id::int, balance_after::text from pool.events where product_model_id = $1 and pool_mode = 'allocate'`, [p]);
  t.deepEqual(ev.rows.map((r) => r.token_id as number).sort((a, b) => a - b), applied.map((r) => r.token_id).sort((a, b) => a - b));
  t.deepEqual(ev.rows.map((r) => r.balance_after).sort(), ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"].map((n) => `${n}.000000`));
  const sessions = await db.query(`select count(*)::int as n from execution.work_sessions s join execution.tokens t on t.id = s.token_id
                                    where t.job_ticket_id = (select job_ticket_id from execution.tokens where id = $1)`, [tokenIds[0]]);
  t.is(sessions.rows[0].n, 50);
  const rej = await db.query(`select count(distinct token_id)::int as n from pool.rejections where product_model_id = $1`, [p]);
  t.is(rej.rows[0].n, 40);
  const sh = await db.query(`select open_allocations, qty_short::text from pool.shortages where product_model_id = $1`, [p]);
  t.deepEqual(sh.rows, [{ open_allocations: 40, qty_short: "40.000000" }]);
});

test.serial("the same idempotency key posted concurrently is applied exactly once", async (t) => {
  const p = newProduct();
  const results = await onClients(Array.from({ length: CLIENTS }, () => (c: pg.Client) => receive(c, p, 1, "SAME", 3, "race-same-key")));
  t.is(results.filter((r) => r.status === "applied").length, 1);
  t.is(results.filter((r) => r.status === "duplicate").length, CLIENTS - 1);
  t.is(new Set(results.map((r) => r.event_id)).size, 1);
  t.is(await balance(db, p, 1, "SAME"), "3.000000");
});

test.serial("the same key with different content posted concurrently: one applied, the others SFK09", async (t) => {
  const p = newProduct();
  // different quantities, and different balances (components) for half of them
  const outcomes = await onClients(
    Array.from({ length: 10 }, (_, i) => (c: pg.Client) =>
      receive(c, p, 1, i % 2 ? "K1" : "K2", i + 1, "race-conflict-key").then(
        (r): PoolResult | string => r,
        (e) => e.code as string,
      ),
    ),
  );
  const applied = outcomes.filter((o) => typeof o !== "string" && o.status === "applied");
  t.is(applied.length, 1);
  t.true(outcomes.filter((o) => typeof o === "string").every((o) => o === "SFK09"));
  t.is(outcomes.filter((o) => typeof o === "string").length, 9);
  const total = await db.query(`select coalesce(sum(quantity), 0)::text as q from pool.balances where product_model_id = $1`, [p]);
  t.is(total.rows[0].q, (applied[0] as PoolResult).balance);
});

test.serial("mixed receives and multi-component starts in opposite orders: no deadlock, balances match the ledger", async (t) => {
  const p = newProduct();
  const a = await makeTicket(db, { product: p, tokens: 20, requirements: [
    { component_code: "A", default_qty: 1, is_required: true },
    { component_code: "B", default_qty: 1, is_required: true },
    { component_code: "C", default_qty: 2, is_required: true },
  ] });
  const b = await makeTicket(db, { product: p, tokens: 20, requirements: [
    { component_code: "C", default_qty: 2, is_required: true },
    { component_code: "B", default_qty: 1, is_required: true },
    { component_code: "A", default_qty: 1, is_required: true },
  ] });
  const jobs: ((c: pg.Client) => Promise<StartResult | PoolResult>)[] = [];
  for (let i = 0; i < 20; i++) {
    jobs.push((c) => start(c, a.tokenIds[i], 1));
    jobs.push((c) => start(c, b.tokenIds[i], 2));
    if (i % 4 === 0) for (const code of ["C", "B", "A"]) jobs.push((c) => receive(c, p, 1, code, 5, `mix-${code}-${i}`));
  }
  const results = await onClients(jobs);
  t.is(results.length, jobs.length, "all finished (a deadlock would have thrown 40P01)");
  const starts = results.filter((r): r is StartResult => "token_id" in r);
  t.is(starts.length, 40);
  t.true(starts.every((s) => s.status === "active"));
  const check = await db.query(
    `select b.component_code, b.quantity::text as q, (select coalesce(sum(delta_qty), 0)::text from pool.events e
        where (e.product_model_id, e.bom_version_id, e.component_code) = (b.product_model_id, b.bom_version_id, b.component_code)) as ledger
       from pool.balances b where b.product_model_id = $1 order by 1`,
    [p],
  );
  t.is(check.rows.length, 3);
  for (const row of check.rows) {
    t.is(row.q, row.ledger, `balance of ${row.component_code} equals the sum of its events`);
    t.true(Number(row.q) >= 0);
  }
  // each answer matches its events
  for (const s of starts) {
    const n = await db.query(`select count(*)::int as n from pool.events where token_id = $1`, [s.token_id]);
    t.is(n.rows[0].n, s.allocations.filter((l) => l.status === "applied").length);
  }
});

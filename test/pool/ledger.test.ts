// The ledger itself: posting events, idempotency, rejections, the shortage
// view, the single cut_ready state, and append-only events.
import test from "ava";
import { createTestDatabase, type TestDb } from "../helpers/db.ts";
import { balance, makeTicket, newProduct, receive } from "./fixtures.ts";
import { rejectsWith } from "../helpers/assert.ts";

let db: TestDb;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(() => db?.drop());

test("a receive is booked as an event with its balance", async (t) => {
  const p = newProduct();
  const r1 = await receive(db, p, 1, "STRAP", "2.5", "rcv-1");
  t.is(r1.status, "applied");
  t.is(r1.code, "POOL_201_APPLIED");
  t.is(r1.balance, "2.500000");
  t.is(r1.delta_qty, "2.500000");
  const r2 = await receive(db, p, 1, "STRAP", 3, "rcv-2");
  t.is(r2.balance, "5.500000");
  t.is(await balance(db, p, 1, "STRAP"), "5.500000");
  const ev = await db.query(`select event_type, pool_mode, state, delta_qty::text, balance_after::text, reason_code, recorded_by
                               from pool.events where id = $1`, [r1.event_id]);
  t.deepEqual(ev.rows[0], {
    event_type: "POOL_RECEIVE",
    pool_mode: "receive",
    state: "cut_ready",
    delta_qty: "2.500000",
    balance_after: "2.500000",
    reason_code: "CUT_RECEIVE",
    recorded_by: "postgres",
  });
});

test("the same key with the same content is a duplicate returning the original, and changes nothing", async (t) => {
  const p = newProduct();
  const first = await receive(db, p, 1, "BUCKLE", 4, "dup-1");
  const again = await receive(db, p, 1, "BUCKLE", "4.000000", "dup-1");
  t.is(again.status, "duplicate");
  t.is(again.code, "POOL_200_DUPLICATE");
  t.is(again.event_id, first.event_id);
  t.is(again.balance, "4.000000");
  const n = await db.query(`select count(*)::int as n from pool.events where idempotency_key = 'dup-1'`);
  t.is(n.rows[0].n, 1);
  t.is(await balance(db, p, 1, "BUCKLE"), "4.000000");
});

test("the same key with different content is refused with SFK09", async (t) => {
  const p = newProduct();
  await receive(db, p, 1, "LINING", 4, "conflict-1");
  for (const [qty, code] of [
    [5, "LINING"],
    [4, "LINING2"],
  ] as const) {
    await rejectsWith(t, receive(db, p, 1, code, qty, "conflict-1"), "SFK09", /already used for a different pool event/);
  }
  t.is(await balance(db, p, 1, "LINING"), "4.000000");
  t.is(await balance(db, p, 1, "LINING2"), null, "nothing booked for the other component");
});

test("an allocation beyond the balance is rejected, recorded, and leaves the key free", async (t) => {
  const p = newProduct();
  const { tokenIds } = await makeTicket(db, { product: p, tokens: 1 });
  await receive(db, p, 1, "PANEL", 1, "short-rcv-1");
  const post = () =>
    db.query(`select pool.post_event('POOL_ALLOCATE', $1, 1, 'PANEL', -2, 'short-alloc', 'ASSEMBLY_ALLOCATE', $2, 7) as r`, [p, tokenIds[0]]);
  const rejected = (await post()).rows[0].r;
  t.like(rejected, { status: "rejected", code: "POOL_409_NEGATIVE", event_id: null, balance: "1.000000" });
  t.is(await balance(db, p, 1, "PANEL"), "1.000000");
  t.is((await db.query(`select count(*)::int as n from pool.events where idempotency_key = 'short-alloc'`)).rows[0].n, 0);
  const rej = await db.query(`select code, delta_qty::text, balance_at_rejection::text, token_id from pool.rejections where idempotency_key = 'short-alloc'`);
  t.deepEqual(rej.rows, [{ code: "POOL_409_NEGATIVE", delta_qty: "-2.000000", balance_at_rejection: "1.000000", token_id: String(tokenIds[0]) }]);

  const shortage = await db.query(`select open_allocations, qty_needed::text, qty_available::text, qty_short::text, token_ids
                                     from pool.shortages where product_model_id = $1 and component_code = 'PANEL'`, [p]);
  t.deepEqual(shortage.rows, [{ open_allocations: 1, qty_needed: "2.000000", qty_available: "1.000000", qty_short: "1.000000", token_ids: [String(tokenIds[0])] }]);

  // Stock arrives; the retry with the same key now succeeds and the shortage is gone.
  await receive(db, p, 1, "PANEL", 1, "short-rcv-2");
  const applied = (await post()).rows[0].r;
  t.like(applied, { status: "applied", balance: "0.000000" });
  t.is((await db.query(`select count(*)::int as n from pool.shortages where product_model_id = $1`, [p])).rows[0].n, 0);
});

test("only cut_ready exists, and invalid events are refused with SF422 or SF404", async (t) => {
  const p = newProduct();
  const cases: [string, unknown[], string, RegExp][] = [
    [`select pool.post_event('POOL_RECEIVE', $1, 1, 'X', 1, 'k1', 'CUT_RECEIVE', null, null, 'skived_ready')`, [p], "SF422", /one state, cut_ready/],
    [`select pool.post_event('POOL_RESERVE', $1, 1, 'X', 1, 'k2', 'CUT_RECEIVE')`, [p], "SF422", /Unknown pool event type/],
    [`select pool.receive($1, 1, 'X', -1, 'k3')`, [p], "SF422", /must be positive/],
    [`select pool.receive($1, 1, 'X', 0, 'k4')`, [p], "SF422", /Invalid quantity/],
    [`select pool.receive($1, 1, 'X', 1.0000001, 'k5')`, [p], "SF422", /Invalid quantity/],
    [`select pool.receive($1, null, 'X', 1, 'k6')`, [p], "SF422", /BOM version/],
    [`select pool.receive($1, 1, ' X', 1, 'k7')`, [p], "SF422", /component code/],
    // What ERP exports carry: a no-break space, a zero-width space, a line break.
    [`select pool.receive($1, 1, e'X\\u00a0', 1, 'k7a')`, [p], "SF422", /component code/],
    [`select pool.receive($1, 1, e'X\\u200bY', 1, 'k7b')`, [p], "SF422", /component code/],
    [`select pool.receive($1, 1, e'X\\nY', 1, 'k7c')`, [p], "SF422", /component code/],
    // The assembly allocations' own keys (pa:asm:{token}:{component}) are not a receive's to take.
    [`select pool.receive($1, 1, 'X', 1, 'pa:asm:2:X')`, [p], "SF422", /idempotency key .*pa:/],
    [`select pool.post_event('POOL_ALLOCATE', $1, 1, 'X', -1, 'k8', 'ASSEMBLY_ALLOCATE')`, [p], "SF422", /names the token/],
    [`select pool.post_event('POOL_ALLOCATE', $1, 1, 'X', -1, 'k9', 'ASSEMBLY_ALLOCATE', 999999999)`, [p], "SF404", /does not exist/],
  ];
  for (const [sql, values, code, message] of cases) {
    await rejectsWith(t, db.query(sql, values), code, message);
  }
  // The constraint holds even for a superuser writing around the functions.
  await rejectsWith(
    t,
    db.query(`insert into pool.balances (product_model_id, bom_version_id, component_code, state, quantity) values ($1, 1, 'X', 'edged_ready', 1)`, [p]),
    "23514",
  );
  await rejectsWith(
    t,
    db.query(`insert into pool.events (event_type, pool_mode, product_model_id, bom_version_id, component_code, state, delta_qty,
                                       balance_after, reason_code, recorded_by, idempotency_key, content_hash)
              values ('POOL_RECEIVE', 'receive', $1, 1, 'X', 'skived_ready', 1, 1, 'CUT_RECEIVE', 'dba', 'direct-skived', '\\x00')`, [p]),
    "23514",
    /events_state_cut_ready/,
  );
  t.is((await db.query(`select count(*)::int as n from pool.events where product_model_id = $1`, [p])).rows[0].n, 0);
});

test.serial("the ledger is append-only: UPDATE, DELETE and TRUNCATE are refused, even for a superuser", async (t) => {
  const p = newProduct();
  const r = await receive(db, p, 1, "EDGE", 1, "ao-1");
  for (const sql of [
    `update pool.events set delta_qty = 100 where id = ${r.event_id}`,
    `delete from pool.events where id = ${r.event_id}`,
    `truncate pool.events cascade`,
  ]) {
    await rejectsWith(t, db.query(sql), "SF409", /append-only/);
  }
  // And roles have no write rights at all.
  await rejectsWith(t, db.asRole("shopfloor_admin", (c) => c.query(`delete from pool.events where id = $1`, [r.event_id])), "42501");
  t.is((await db.query(`select delta_qty::text from pool.events where id = $1`, [r.event_id])).rows[0].delta_qty, "1.000000");
});

test("roles: integration may receive, an operator may not; an operator reads balances; supervisors read shortages", async (t) => {
  const p = newProduct();
  const r = await db.asRole("shopfloor_integration", (c) => receive(c, p, 1, "ROLE", 2, "role-1"), "cutter-line");
  t.is(r.status, "applied");
  t.is((await db.query(`select recorded_by from pool.events where id = $1`, [r.event_id])).rows[0].recorded_by, "cutter-line");
  await rejectsWith(t, db.asRole("shopfloor_operator", (c) => receive(c, p, 1, "ROLE", 2, "role-2")), "42501");
  await rejectsWith(
    t,
    db.asRole("shopfloor_integration", (c) => c.query(`select pool.post_event('POOL_RECEIVE', 1, 1, 'X', 1, 'k', 'CUT_RECEIVE')`)),
    "42501", // post_event is internal
  );
  const q = await db.asRole("shopfloor_operator", (c) => c.query(`select quantity::text from pool.balances where product_model_id = $1`, [p]));
  t.is(q.rows[0].quantity, "2.000000");
  await t.throwsAsync(db.asRole("shopfloor_operator", (c) => c.query(`select * from pool.shortages`)));
  await t.notThrowsAsync(db.asRole("shopfloor_supervisor", (c) => c.query(`select * from pool.shortages`)));
});

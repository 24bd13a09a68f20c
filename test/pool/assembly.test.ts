// handle_single_piece_start: the token starts exactly as without a pool, and an
// ASSEMBLY start books one POOL_ALLOCATE per required component (specs/pool-allocate.md).
import test from "ava";
import { createTestDatabase, type TestDb } from "../helpers/db.ts";
import { balance, makeTicket, newProduct, receive, start } from "./fixtures.ts";
import { rejectsWith } from "../helpers/assert.ts";

let db: TestDb;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(() => db?.drop());

async function tokenState(tokenId: number) {
  const r = await db.query(
    `select t.status, t.current_behavior_code,
            (select count(*)::int from execution.work_sessions s where s.token_id = t.id and s.ended_at is null) as open_sessions
       from execution.tokens t where t.id = $1`,
    [tokenId],
  );
  return r.rows[0];
}

test("ASSEMBLY allocates each required component with the spec's fields, and skips the others", async (t) => {
  const p = newProduct();
  const { tokenIds } = await makeTicket(db, {
    product: p,
    bom: 42,
    requirements: [
      { component_code: "BODY", default_qty: 2, is_required: true },
      { component_code: "STRAP", default_qty: 0.5, is_required: true },
      { component_code: "CHARM", default_qty: 1, is_required: false },
      { component_code: "TAG", default_qty: 1, is_required: "true" }, // not === true
    ],
  });
  await receive(db, p, 42, "BODY", 10, "asm-rcv-body");
  await receive(db, p, 42, "STRAP", 10, "asm-rcv-strap");
  await receive(db, p, 42, "CHARM", 10, "asm-rcv-charm");
  const [tok] = tokenIds;
  const res = await start(db, tok, 7);
  t.like(res, { ok: true, status: "active", allocation_ok: true, allocation_skipped: false, already_active: false });
  t.deepEqual(res.warnings, []);
  t.deepEqual(
    res.allocations.map((a) => [a.component_code, a.status, a.delta_qty, a.balance]),
    [
      ["BODY", "applied", "-2.000000", "8.000000"],
      ["STRAP", "applied", "-0.500000", "9.500000"],
    ],
  );
  const ev = await db.query(
    `select event_type, pool_mode, product_model_id::int, bom_version_id::int, component_code, state, delta_qty::text,
            token_id::int, reason_code, actor_id::int, idempotency_key, occurred_at <= now() as now_ok
       from pool.events where token_id = $1 order by component_code`,
    [tok],
  );
  t.deepEqual(ev.rows, [
    { event_type: "POOL_ALLOCATE", pool_mode: "allocate", product_model_id: p, bom_version_id: 42, component_code: "BODY", state: "cut_ready",
      delta_qty: "-2.000000", token_id: tok, reason_code: "ASSEMBLY_ALLOCATE", actor_id: 7, idempotency_key: `pa:asm:${tok}:BODY`, now_ok: true },
    { event_type: "POOL_ALLOCATE", pool_mode: "allocate", product_model_id: p, bom_version_id: 42, component_code: "STRAP", state: "cut_ready",
      delta_qty: "-0.500000", token_id: tok, reason_code: "ASSEMBLY_ALLOCATE", actor_id: 7, idempotency_key: `pa:asm:${tok}:STRAP`, now_ok: true },
  ]);
  t.is(await balance(db, p, 42, "CHARM"), "10.000000", "non-required untouched");
  t.deepEqual(await tokenState(tok), { status: "active", current_behavior_code: "ASSEMBLY", open_sessions: 1 });
});

test("the same start twice allocates once; a resume after a pause does not allocate again", async (t) => {
  const p = newProduct();
  const { tokenIds } = await makeTicket(db, { product: p, requirements: [{ component_code: "BODY", default_qty: 1, is_required: true }] });
  await receive(db, p, 1, "BODY", 5, "twice-rcv");
  const [tok] = tokenIds;
  const first = await start(db, tok);
  const second = await start(db, tok);
  t.is(second.already_active, true);
  t.is(second.work_session_id, first.work_session_id);
  t.is(second.allocations[0].status, "duplicate");
  t.is(second.allocations[0].event_id, first.allocations[0].event_id);
  t.true(second.allocation_ok!);
  // pause, then resume: a new work session, still one allocation
  await db.query(`update execution.work_sessions set ended_at = now() where token_id = $1 and ended_at is null`, [tok]);
  await db.query(`update execution.tokens set status = 'paused' where id = $1`, [tok]);
  const resumed = await start(db, tok);
  t.not(resumed.work_session_id, first.work_session_id);
  t.is(resumed.allocations[0].status, "duplicate");
  t.is(await balance(db, p, 1, "BODY"), "4.000000");
  t.is((await db.query(`select count(*)::int as n from pool.events where token_id = $1`, [tok])).rows[0].n, 1);
});

test("insufficient stock: the token starts anyway with allocation_ok=false and POOL_INSUFFICIENT; a later retry books it", async (t) => {
  const p = newProduct();
  const { tokenIds } = await makeTicket(db, {
    product: p,
    requirements: [
      { component_code: "A", default_qty: 1, is_required: true },
      { component_code: "B", default_qty: 3, is_required: true },
    ],
  });
  await receive(db, p, 1, "A", 1, "ins-a");
  await receive(db, p, 1, "B", 2, "ins-b");
  const [tok] = tokenIds;
  const res = await start(db, tok);
  t.like(res, { ok: true, status: "active", allocation_ok: false, allocation_skipped: false });
  t.deepEqual(res.warnings, ["POOL_INSUFFICIENT"]);
  t.deepEqual(res.allocations.map((a) => [a.component_code, a.status, a.code]), [
    ["A", "applied", "POOL_201_APPLIED"],
    ["B", "rejected", "POOL_409_NEGATIVE"],
  ]);
  t.deepEqual(await tokenState(tok), { status: "active", current_behavior_code: "ASSEMBLY", open_sessions: 1 });
  t.is(await balance(db, p, 1, "B"), "2.000000");
  const sh = await db.query(`select component_code, qty_short::text from pool.shortages where product_model_id = $1`, [p]);
  t.deepEqual(sh.rows, [{ component_code: "B", qty_short: "1.000000" }]);

  await receive(db, p, 1, "B", 1, "ins-b2");
  const retry = await start(db, tok);
  t.true(retry.allocation_ok!);
  t.deepEqual(retry.allocations.map((a) => a.status), ["duplicate", "applied"]);
  t.is(await balance(db, p, 1, "B"), "0.000000");
  t.is((await db.query(`select count(*)::int as n from pool.shortages where product_model_id = $1`, [p])).rows[0].n, 0);
});

test("a ticket without bom_version_id: allocation skipped with BOM_VERSION_MISSING, the token starts", async (t) => {
  const p = newProduct();
  const { tokenIds } = await makeTicket(db, { product: p, bom: null, requirements: [{ component_code: "A", default_qty: 1, is_required: true }] });
  const res = await start(db, tokenIds[0]);
  t.like(res, { ok: true, status: "active", allocation_skipped: true, reason: "BOM_VERSION_MISSING" });
  t.deepEqual(await tokenState(tokenIds[0]), { status: "active", current_behavior_code: "ASSEMBLY", open_sessions: 1 });
  t.is((await db.query(`select count(*)::int as n from pool.events where token_id = $1`, [tokenIds[0]])).rows[0].n, 0);
});

test("a malformed snapshot skips allocation with SNAPSHOT_INVALID and a warning, the token starts, nothing is booked", async (t) => {
  const p = newProduct();
  await receive(db, p, 1, "A", 10, "mal-a");
  const snapshots: [unknown, RegExp][] = [
    [{ structure: { component_requirements: { A: 1 } } }, /not an array/],
    [{ structure: {} }, /not an array/],
    [{ structure: { component_requirements: [{ default_qty: 1, is_required: true }] } }, /no valid component_code/],
    [{ structure: { component_requirements: [{ component_code: "A", default_qty: 0, is_required: true }] } }, /not a positive quantity/],
    [{ structure: { component_requirements: [{ component_code: "A", default_qty: -1, is_required: true }] } }, /not a positive quantity/],
    [{ structure: { component_requirements: [{ component_code: "A", default_qty: "2", is_required: true }] } }, /not a number/],
    // a bad line after a good one: nothing is booked for the good one either
    [{ structure: { component_requirements: [
      { component_code: "A", default_qty: 1, is_required: true },
      { component_code: "A", default_qty: 1, is_required: true },
    ] } }, /required twice/],
  ];
  for (const [snapshot, detail] of snapshots) {
    const { tokenIds } = await makeTicket(db, { product: p, snapshot });
    const res = await start(db, tokenIds[0]);
    t.like(res, { ok: true, status: "active", allocation_ok: false, allocation_skipped: true, reason: "SNAPSHOT_INVALID" }, JSON.stringify(snapshot));
    t.deepEqual(res.warnings, ["SNAPSHOT_INVALID"]);
    t.regex(res.detail!, detail);
    t.deepEqual(await tokenState(tokenIds[0]), { status: "active", current_behavior_code: "ASSEMBLY", open_sessions: 1 });
  }
  t.is(await balance(db, p, 1, "A"), "10.000000");
});

test("a pool error (key reused with other content) never stops the start: warning, message, nothing booked", async (t) => {
  const p = newProduct();
  const { tokenIds } = await makeTicket(db, {
    product: p,
    requirements: [
      { component_code: "A", default_qty: 1, is_required: true },
      { component_code: "B", default_qty: 1, is_required: true },
    ],
  });
  const [tok] = tokenIds;
  await receive(db, p, 1, "A", 5, "err-a");
  await receive(db, p, 1, "B", 5, "err-b");
  // Someone booked B's key with another quantity before the start.
  await db.query(`select pool.post_event('POOL_ALLOCATE', $1, 1, 'B', -2, $2, 'ASSEMBLY_ALLOCATE', $3, 1)`, [p, `pa:asm:${tok}:B`, tok]);
  const res = await start(db, tok);
  t.like(res, { ok: true, status: "active", allocation_ok: false, allocation_skipped: true, reason: "POOL_IDEMPOTENCY_CONFLICT" });
  t.deepEqual(res.warnings, ["POOL_IDEMPOTENCY_CONFLICT"]);
  t.is(await balance(db, p, 1, "A"), "5.000000", "A's allocation was rolled back with the failed pool part");
  t.deepEqual(await tokenState(tok), { status: "active", current_behavior_code: "ASSEMBLY", open_sessions: 1 });
  const msg = await db.query(`select severity, title from ops.messages where source = 'pool' and related->>'token_id' = $1`, [String(tok)]);
  t.deepEqual(msg.rows, [{ severity: "error", title: `Pool allocation failed for token ${tok}` }]);
});

test("other behaviors start without touching the pool; execution refusals keep their codes", async (t) => {
  const p = newProduct();
  const { tokenIds } = await makeTicket(db, { product: p, requirements: [{ component_code: "A", default_qty: 1, is_required: true }], tokens: 2 });
  await receive(db, p, 1, "A", 5, "beh-a");
  const res = await start(db, tokenIds[0], 3, "SKIVE");
  t.like(res, { ok: true, status: "active", allocation_ok: null, allocation_skipped: true, reason: "NOT_ASSEMBLY" });
  t.is(await balance(db, p, 1, "A"), "5.000000", "LAW-05: no decrement outside assembly start");

  await rejectsWith(t, start(db, tokenIds[0], 4, "ASSEMBLY"), "SF409");
  await rejectsWith(t, start(db, 999999999), "SF404");
  await db.query(`update execution.tokens set status = 'completed' where id = $1`, [tokenIds[1]]);
  await rejectsWith(t, start(db, tokenIds[1]), "SF409");
  await rejectsWith(t, start(db, tokenIds[1], 1, "assembly"), "SF422");
});

test("an operator may start tokens through the function alone", async (t) => {
  const p = newProduct();
  const { tokenIds } = await makeTicket(db, { product: p, requirements: [{ component_code: "A", default_qty: 1, is_required: true }] });
  await receive(db, p, 1, "A", 1, "op-a");
  const res = await db.asRole("shopfloor_operator", (c) => start(c, tokenIds[0], 11), "olga");
  t.true(res.allocation_ok!);
  t.is((await db.query(`select recorded_by from pool.events where token_id = $1`, [tokenIds[0]])).rows[0].recorded_by, "olga");
  await rejectsWith(t, db.asRole("shopfloor_operator", (c) => c.query(`update execution.tokens set status = 'ready'`)), "42501");
});

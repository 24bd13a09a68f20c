// The supervisor's carryover and the daily cleanup: the previous working
// date's unfinished rows wait for a decision (carry or reject, all at once);
// older past rows are cleaned up and their operations paused.
import test from "ava";
import pg from "pg";
import { loginUrl } from "../../src/db/api-roles.ts";
import { TEST_API_DB_PASSWORD } from "../helpers/api.ts";
import { createTestDatabase, type TestDb } from "../helpers/db.ts";
import { addDays, createOps, insertPastRows, seedPlant, today, type Plant } from "./fixture.ts";
import { rejectsWith } from "../helpers/assert.ts";

let db: TestDb;
let plant: Plant;
let T: string; // today, in the plant's time zone
let P: string; // the previous working date
test.before(async () => {
  db = await createTestDatabase();
  plant = await seedPlant(db);
  T = await today(db);
  P = (await db.query<{ d: string }>(`select planning.previous_working_date($1)::text as d`, [T])).rows[0].d;
});
test.after.always(() => db?.drop());

const status = async (op: string) => (await db.query(`select op_status from planning.operations where op_id = $1`, [op])).rows[0].op_status as number;
const rowsOf = async (op: string) =>
  (await db.query(`select mp_op_proddate::text as date, mp_sequence as seq from planning.mach_planning where mp_op_id = $1 order by 1`, [op])).rows;

test.serial("the full carryover flow: cleanup, blocking gate, partial decision refused, carry and reject", async (t) => {
  t.truthy(P);
  const [o1, o2, o3, o4, o5, o6, o7] = await createOps(db, plant.items["Housing"], 7);
  const [M1, M2] = plant.machines;
  const A = plant.dayShift;
  const tomorrow = await addDays(db, T, 1);
  const older = await addDays(db, P, -7);

  // today's plan and tomorrow's exist before the carryover appears
  await db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [M1, A, T, [o4]]);
  await db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [M2, A, tomorrow, [o6]]);
  // yesterday's (the previous working date's) plan and an older one, left behind
  const [r1, r2, r3] = await insertPastRows(db, [
    { op: o1, machine: M1, shift: A, date: P, seq: 1 },
    { op: o2, machine: M1, shift: A, date: P, seq: 2 },
    { op: o3, machine: M2, shift: A, date: P, seq: 1 },
    { op: o5, machine: M1, shift: A, date: older, seq: 1 },
    { op: o6, machine: M1, shift: A, date: older, seq: 2 },
    { op: o7, machine: M1, shift: A, date: older, seq: 3 },
  ]);
  await db.query(`update planning.operations set op_status = 5 where op_id = $1`, [o7]);
  // an operator starts o2 before anyone decides: the past row follows the status
  await db.query(`update planning.operations set op_status = 5 where op_id = $1`, [o2]);
  t.is((await db.query(`select mp_op_status from planning.mach_planning where mp_id = $1`, [r2])).rows[0].mp_op_status, 5);

  // the gate: today's plan is frozen until the supervisor decides; other dates are not
  await rejectsWith(t, db.asRole("shopfloor_planner", (c) =>
    c.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [M1, A, T, [o4]])), "SF428", /carryover .* is pending/);
  await db.asRole("shopfloor_planner", (c) => c.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [M2, A, tomorrow, [o6]]));

  // login: the cleanup runs, then the pending rows come back
  const login = await db.asRole("shopfloor_supervisor", (c) =>
    c.query(`select mp_id::text, mp_op_proddate::text as date from planning.supervisor_login($1)`, [T]), "sam");
  t.deepEqual(login.rows.map((r) => r.mp_id).sort(), [r1, r2, r3].sort());
  t.true(login.rows.every((r) => r.date === P));
  t.is(await status(o5), 6, "an old unexecuted row pauses its operation");
  t.is(await status(o7), 6, "even one that had started");
  t.is(await status(o6), 1, "an operation still planned for tomorrow keeps its status");
  t.deepEqual(await rowsOf(o6), [{ date: tomorrow, seq: 1 }]);
  t.deepEqual(await rowsOf(o5), []);
  const cleanupLog = await db.query(`select count(*)::int as n from planning.planning_log where reason = 'cleanup' and operation = 'delete' and actor = 'sam'`);
  t.is(cleanupLog.rows[0].n, 3);
  t.is((await db.query(`select planning.cleanup($1) as n`, [T])).rows[0].n, 0, "the cleanup is idempotent");

  // all or nothing
  await rejectsWith(t, db.asRole("shopfloor_supervisor", (c) =>
    c.query(`select * from planning.resolve_carryover($1, $2)`, [T, JSON.stringify([{ mp_id: Number(r1), decision: "carry" }])])), "SF428", /needs a decision/);
  t.is((await db.query(`select count(*)::int as n from planning.pending_carryover($1)`, [T])).rows[0].n, 3, "nothing changed");
  await rejectsWith(t, db.query(`select * from planning.resolve_carryover($1, $2)`,
    [T, JSON.stringify([r1, r2, r3].map((id) => ({ mp_id: Number(id), decision: "maybe" })))]), "SF422");
  await rejectsWith(t, db.query(`select * from planning.resolve_carryover($1, $2)`,
    [T, JSON.stringify([r1, r2, r3, "424242"].map((id) => ({ mp_id: Number(id), decision: "carry" })))]), "SF422");
  await rejectsWith(t, db.asRole("shopfloor_planner", (c) =>
    c.query(`select * from planning.resolve_carryover($1, '[]')`, [T])), "42501"); // planners do not resolve carryovers

  const decided = await db.asRole("shopfloor_supervisor", (c) =>
    c.query(`select reason, operation, mp_id::text from planning.resolve_carryover($1, $2)`, [T, JSON.stringify([
      { mp_id: Number(r1), decision: "carry" },
      { mp_id: Number(r3), decision: "reject" },
      { mp_id: Number(r2), decision: "carry" },
    ])]), "sam");
  t.deepEqual(decided.rows, [
    { reason: "carryover:carry", operation: "update", mp_id: r1 },
    { reason: "carryover:carry", operation: "update", mp_id: r2 },
    { reason: "carryover:reject", operation: "delete", mp_id: r3 },
  ]);
  t.deepEqual(await rowsOf(o1), [{ date: T, seq: 2 }], "carried after today's sequence");
  t.deepEqual(await rowsOf(o2), [{ date: T, seq: 3 }]);
  t.is(await status(o2), 5, "a carried operation keeps its status");
  t.deepEqual(await rowsOf(o3), []);
  t.is(await status(o3), 6, "a rejected operation is paused, and stays in operations");
  t.is((await db.query(`select count(*)::int as n from planning.pending_carryover($1)`, [T])).rows[0].n, 0);

  // the gate opens
  const saved = await db.asRole("shopfloor_planner", (c) =>
    c.query(`select mp_op_id::text from planning.save_sequence($1, $2, $3, $4::bigint[])`, [M1, A, T, [o2, o1, o4, o3]]));
  t.deepEqual(saved.rows.map((r) => r.mp_op_id), [o2, o1, o4, o3]);
  t.is(await status(o3), 0, "the rejected operation is planned again");
  const audit = await db.query(`select count(*)::int as n from ops.audit_log where action = 'resolve_carryover' and actor = 'sam'`);
  t.is(audit.rows[0].n, 1);
});

test.serial("carrying an operation already in today's plan just removes the old row; a future 'today' is refused", async (t) => {
  const [o] = await createOps(db, plant.items["Bracket A"], 1);
  const [M1, , M3] = plant.machines;
  await db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [M3, plant.nightShift, T, [o]]);
  const [r] = await insertPastRows(db, [{ op: o, machine: M1, shift: plant.nightShift, date: P, seq: 1 }]);
  const log = await db.query(`select reason, operation from planning.resolve_carryover($1, $2)`, [T, JSON.stringify([{ mp_id: Number(r), decision: "carry" }])]);
  t.deepEqual(log.rows, [{ reason: "carryover:carry (already planned today)", operation: "delete" }]);
  t.deepEqual(await rowsOf(o), [{ date: T, seq: 1 }]);
  await rejectsWith(t, db.query(`select planning.cleanup($1)`, [await addDays(db, T, 1)]), "SF422");
});

test.serial("carried rows keep the running order they had (sequence order, not the order the rows were made in)", async (t) => {
  const ops = await createOps(db, plant.items["Bracket A"], 3);
  const [, M2] = plant.machines;
  // Made in op order, but planned to run in reverse (the planner reordered them).
  const rows = await insertPastRows(db, [
    { op: ops[0], machine: M2, shift: plant.dayShift, date: P, seq: 3 },
    { op: ops[1], machine: M2, shift: plant.dayShift, date: P, seq: 2 },
    { op: ops[2], machine: M2, shift: plant.dayShift, date: P, seq: 1 },
  ]);
  const before = await db.query<{ n: number }>(`select coalesce(max(mp_sequence), 0)::int as n from planning.mach_planning where mp_machine_id = $1 and mp_shift_id = $2 and mp_op_proddate = $3`, [M2, plant.dayShift, T]);
  await db.query(`select planning.resolve_carryover($1, $2)`, [T, JSON.stringify(rows.map((r) => ({ mp_id: Number(r), decision: "carry" })))]);
  const today = await db.query<{ op: string; seq: number }>(
    `select mp_op_id::text as op, mp_sequence - $4::int as seq from planning.mach_planning
      where mp_machine_id = $1 and mp_shift_id = $2 and mp_op_proddate = $3 and mp_op_id = any($5::bigint[]) order by mp_sequence`,
    [M2, plant.dayShift, T, before.rows[0].n, ops],
  );
  t.deepEqual(today.rows, [
    { op: String(ops[2]), seq: 1 },
    { op: String(ops[1]), seq: 2 },
    { op: String(ops[0]), seq: 3 },
  ]);
});

test.serial("a supervisor cannot open the past: planning.allow_past set by the caller opens nothing, also inside resolve_carryover", async (t) => {
  const [o] = await createOps(db, plant.items["Bracket A"], 1);
  const [M1] = plant.machines;
  const PP = (await db.query<{ d: string }>(`select planning.previous_working_date($1)::text as d`, [P])).rows[0].d;
  await insertPastRows(db, [{ op: o, machine: M1, shift: plant.dayShift, date: PP, seq: 1 }]);
  const pending = (await db.query<{ mp_id: string }>(`select mp_id from planning.pending_carryover($1)`, [P])).rows;
  const decisions = JSON.stringify(pending.map((r) => ({ mp_id: Number(r.mp_id), decision: "carry" })));
  // As the API's supervisor connections are: a login that is not superuser.
  await db.query(`select format('alter role shopfloor_api_supervisor password %L', $1::text)`, [TEST_API_DB_PASSWORD])
    .then((r) => db.query(r.rows[0].format));
  const c = new pg.Client({ connectionString: loginUrl(db.url, "shopfloor_supervisor", TEST_API_DB_PASSWORD) });
  await c.connect();
  try {
    await c.query("begin");
    await c.query("select set_config('role', 'shopfloor_supervisor', true)");
    await c.query(`set local planning.allow_past = on`);
    // "today" = a past date: carrying would write rows on it
    await rejectsWith(t, c.query(`select planning.resolve_carryover($1, $2)`, [P, decisions]), "SF422", /no past dates/);
  } finally {
    await c.query("rollback").catch(() => {});
    await c.end();
  }
  t.deepEqual(await rowsOf(o), [{ date: PP, seq: 1 }], "the past row stays where it was");
  await db.query(`select planning.cleanup($1)`, [T]); // tidy: the old row is cleaned up as on any day
});

test.serial("no decision needed: completed operations leave the plan at once, so the previous day's complete work is not pending", async (t) => {
  const [o] = await createOps(db, plant.items["Bracket B"], 1);
  await insertPastRows(db, [{ op: o, machine: plant.machines[1], shift: plant.nightShift, date: P, seq: 7 }]);
  t.is((await db.query(`select count(*)::int as n from planning.pending_carryover($1)`, [T])).rows[0].n, 1);
  await db.query(`update planning.operations set op_status = 10 where op_id = $1`, [o]);
  t.is((await db.query(`select count(*)::int as n from planning.pending_carryover($1)`, [T])).rows[0].n, 0);
  const empty = await db.query(`select * from planning.resolve_carryover($1, '[]')`, [T]);
  t.is(empty.rows.length, 0, "an empty decision list is fine when nothing is pending");
});

test.serial("rejecting a carryover pauses the job and removes it from the plan completely, later dates included", async (t) => {
  const [o, keep] = await createOps(db, plant.items["Housing"], 2);
  const [M1, M2] = plant.machines;
  const tomorrow = await addDays(db, T, 1);
  const later = await addDays(db, T, 4);
  await db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [M2, plant.dayShift, tomorrow, [o, keep]]);
  await db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [M1, plant.nightShift, later, [o]]);
  const [r] = await insertPastRows(db, [{ op: o, machine: M1, shift: plant.nightShift, date: P, seq: 1 }]);

  const log = await db.asRole("shopfloor_supervisor", (c) =>
    c.query(`select reason, operation, op_id::text, before->>'mp_op_proddate' as date
               from planning.resolve_carryover($1, $2)`, [T, JSON.stringify([{ mp_id: Number(r), decision: "reject" }])]), "sam");
  t.deepEqual(log.rows, [
    { reason: "carryover:reject", operation: "delete", op_id: o, date: P },
    { reason: "carryover:reject:status 6", operation: "delete", op_id: o, date: tomorrow },
    { reason: "carryover:reject:status 6", operation: "delete", op_id: o, date: later },
  ], "the later rows go in the same transaction, logged");
  t.is(await status(o), 6, "the job is paused");
  t.deepEqual(await rowsOf(o), [], "and nowhere in the plan");
  t.deepEqual(await rowsOf(keep), [{ date: tomorrow, seq: 2 }], "other operations keep their rows");
  const avail = await db.query(`select op_id::text from planning.available_jobs($1, null, null, null, null)`, [tomorrow]);
  t.true(avail.rows.some((x) => x.op_id === o), "available for planning again");
  t.is((await db.query(`select count(*)::int as n from planning.pending_carryover($1)`, [T])).rows[0].n, 0);
});

test.serial("a row left on a machine that became inactive cannot be carried (SF409 naming it); rejecting it works", async (t) => {
  const [o] = await createOps(db, plant.items["Bracket A"], 1);
  const { rows: [m] } = await db.query<{ machine_id: string }>(`insert into planning.machines (machine_code) values ('LATHE-2') returning machine_id::text`);
  const [r] = await insertPastRows(db, [{ op: o, machine: m.machine_id, shift: plant.dayShift, date: P, seq: 1 }]);
  await db.query(`update planning.machines set active = false where machine_id = $1`, [m.machine_id]);

  const decide = (decision: string) => db.asRole("shopfloor_supervisor", (c) =>
    c.query(`select reason from planning.resolve_carryover($1, $2)`, [T, JSON.stringify([{ mp_id: Number(r), decision }])]));
  await rejectsWith(t, decide("carry"), "SF409", /LATHE-2 inactive/);
  t.is((await db.query(`select count(*)::int as n from planning.pending_carryover($1)`, [T])).rows[0].n, 1, "nothing changed");
  t.deepEqual((await decide("reject")).rows, [{ reason: "carryover:reject" }]);
  t.is(await status(o), 6);
});

test.serial("one operation cannot be both carried and rejected (two pending rows across a non-working day)", async (t) => {
  const yesterday = await addDays(db, T, -1);
  // make yesterday a non-working day, so that it and the working date before it both wait for a decision
  const { rowCount: added } = await db.query(`insert into planning.holiday (holiday_date, description) values ($1, 'test')
    on conflict do nothing`, [yesterday]);
  try {
    const P2 = (await db.query<{ d: string }>(`select planning.previous_working_date($1)::text as d`, [T])).rows[0].d;
    t.true(P2 < yesterday);
    const [o] = await createOps(db, plant.items["Bracket B"], 1);
    const [r1, r2] = await insertPastRows(db, [
      { op: o, machine: plant.machines[0], shift: plant.dayShift, date: P2, seq: 1 },
      { op: o, machine: plant.machines[0], shift: plant.dayShift, date: yesterday, seq: 1 },
    ]);
    await rejectsWith(t, db.query(`select * from planning.resolve_carryover($1, $2)`,
      [T, JSON.stringify([{ mp_id: Number(r1), decision: "carry" }, { mp_id: Number(r2), decision: "reject" }])]), "SF422", /both carried and rejected/);
    const both = await db.query(`select reason, mp_id::text from planning.resolve_carryover($1, $2)`,
      [T, JSON.stringify([{ mp_id: Number(r1), decision: "reject" }, { mp_id: Number(r2), decision: "reject" }])]);
    t.deepEqual(both.rows, [{ reason: "carryover:reject", mp_id: r1 }, { reason: "carryover:reject:status 6", mp_id: r2 }]);
    t.deepEqual(await rowsOf(o), []);
    t.is(await status(o), 6);
  } finally {
    if (added) await db.query(`delete from planning.holiday where holiday_date = $1`, [yesterday]);
  }
});

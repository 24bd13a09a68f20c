// set_operation_status (the one function for a status change), the audit rows
// of planning actions, and what available_jobs does with machine and shift.
import test from "ava";
import type { TestDb } from "../helpers/db.ts";
import { addDays, createOps, withPlant, type Plant } from "./fixture.ts";
import { rejectsWith } from "../helpers/assert.ts";

let db: TestDb;
let plant: Plant;
let T: string;
withPlant(test, (made) => ({ db, plant, T } = made));

test("set_operation_status: complete and paused remove the plan rows, logged and audited; others are mirrored", async (t) => {
  const ops = await createOps(db, plant.items["Bracket A"], 3);
  const d1 = await addDays(db, T, 1);
  const d2 = await addDays(db, T, 2);
  await db.asRole("shopfloor_planner", async (c) => {
    await c.query(`select * from planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[1], plant.dayShift, d1, ops]);
    await c.query(`select * from planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[1], plant.dayShift, d2, ops]);
  }, "paula");

  const out = await db.asRole("shopfloor_integration", async (c) => {
    const done = await c.query(`select op_status from planning.set_operation_status($1, 10)`, [ops[0]]);
    await c.query(`select planning.set_operation_status($1, 6)`, [ops[1]]);
    await c.query(`select planning.set_operation_status($1, 5)`, [ops[2]]);
    return done.rows[0].op_status;
  }, "erp");
  t.is(out, 10);
  const rows = await db.query(`select mp_op_id::text as op, mp_op_status from planning.mach_planning
    where mp_op_id = any($1::bigint[]) order by mp_op_id, mp_op_proddate`, [ops]);
  t.deepEqual(rows.rows, [{ op: ops[2], mp_op_status: 5 }, { op: ops[2], mp_op_status: 5 }]);

  const log = await db.query(`select reason, operation, actor, count(*)::int as n from planning.planning_log
    where op_id = any($1::bigint[]) and reason like 'set_operation_status%' group by 1, 2, 3 order by 1, 2`, [ops]);
  t.deepEqual(log.rows, [
    { reason: "set_operation_status:status 10", operation: "delete", actor: "erp", n: 2 },
    { reason: "set_operation_status:status 5", operation: "update", actor: "erp", n: 2 },
    { reason: "set_operation_status:status 6", operation: "delete", actor: "erp", n: 2 },
  ]);
  const audit = await db.query(`select actor, entity_id, details->>'from' as "from", details->>'to' as "to" from ops.audit_log
    where action = 'set_operation_status' and entity_id = any($1::text[]) order by entity_id::bigint`, [ops]);
  t.deepEqual(audit.rows, [
    { actor: "erp", entity_id: ops[0], from: "1", to: "10" },
    { actor: "erp", entity_id: ops[1], from: "1", to: "6" },
    { actor: "erp", entity_id: ops[2], from: "1", to: "5" },
  ]);
  // the same status again changes nothing and writes nothing
  await db.asRole("shopfloor_supervisor", (c) => c.query(`select planning.set_operation_status($1, 5)`, [ops[2]]), "sam");
  const again = await db.query(`select count(*)::int as n from ops.audit_log where action = 'set_operation_status' and entity_id = $1`, [ops[2]]);
  t.is(again.rows[0].n, 1);
});

test("set_operation_status refuses unknown operations and statuses, leaving a terminal status, and operators", async (t) => {
  const [op] = await createOps(db, plant.items["Housing"], 1);
  const call = (role: string, id: string, status: number) =>
    db.asRole(role, (c) => c.query(`select planning.set_operation_status($1, $2)`, [id, status]));

  await rejectsWith(t, call("shopfloor_supervisor", "999999999", 5), "SF404", /Operation 999999999 does not exist/);
  await rejectsWith(t, call("shopfloor_supervisor", op, 42), "SF422", /Status 42 does not exist/);
  await rejectsWith(t, call("shopfloor_operator", op, 5), "42501"); // operators read; they do not change statuses

  await call("shopfloor_supervisor", op, 10);
  await rejectsWith(t, call("shopfloor_supervisor", op, 1), "SF409", /terminal status/);
  const kept = await db.query(`select op_status from planning.operations where op_id = $1`, [op]);
  t.is(kept.rows[0].op_status, 10);
});

test("an operation's updated_at follows every change, status_changed_at only a status change, whoever writes", async (t) => {
  const [op] = await createOps(db, plant.items["Housing"], 1);
  const stamps = async () =>
    (await db.query(`select updated_at, status_changed_at from planning.operations where op_id = $1`, [op])).rows[0] as {
      updated_at: Date;
      status_changed_at: Date;
    };
  const created = await stamps();
  await new Promise((r) => setTimeout(r, 20));
  await db.asRole("shopfloor_integration", (c) => c.query(`update planning.operations set op_qty = op_qty + 1 where op_id = $1`, [op]));
  const edited = await stamps();
  t.true(edited.updated_at > created.updated_at);
  t.deepEqual(edited.status_changed_at, created.status_changed_at, "not a status change");
  await db.asRole("shopfloor_integration", (c) => c.query(`update planning.operations set op_status = 5 where op_id = $1`, [op]));
  const moved = await stamps();
  t.true(moved.status_changed_at > created.status_changed_at);
  t.deepEqual(moved.status_changed_at, moved.updated_at, "one statement, one clock");
});

test("save_sequence writes its audit row (actor, sequence, operations)", async (t) => {
  const ops = await createOps(db, plant.items["Bracket B"], 2);
  const d = await addDays(db, T, 4);
  await db.asRole("shopfloor_planner", (c) =>
    c.query(`select * from planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[2], plant.nightShift, d, ops]), "pia");
  const audit = await db.query(`select actor, entity_type, entity_id, details from ops.audit_log
    where action = 'save_sequence' and entity_id = $1`, [`${plant.machines[2]}/${plant.nightShift}/${d}`]);
  t.is(audit.rows.length, 1);
  t.is(audit.rows[0].actor, "pia");
  t.is(audit.rows[0].entity_type, "plan");
  t.deepEqual(audit.rows[0].details.op_ids, ops.map(Number));
});

test("available_jobs checks machine and shift (they do not narrow the list: no routing data)", async (t) => {
  const ops = await createOps(db, plant.items["Bracket A"], 2, { lotPrefix: "AVJ-" });
  const d = await addDays(db, T, 6);
  const list = (m: string | null, s: string | null) =>
    db.asRole("shopfloor_operator", async (c) =>
      (await c.query(`select op_id::text from planning.available_jobs($1, $2, $3, null, 'AVJ-')`, [d, m, s])).rows.map((r) => r.op_id));

  t.deepEqual(await list(null, null), ops);
  t.deepEqual(await list(plant.machines[0], plant.m1Shift), ops);
  t.deepEqual(await list(plant.machines[2], plant.dayShift), ops, "the same list for every machine");

  await rejectsWith(t, list("999999999", null), "SF404", /Machine 999999999 does not exist/);
  await rejectsWith(t, list(plant.machines[0], "999999999"), "SF404", /Shift 999999999 does not exist/);
  await rejectsWith(t, list(plant.machines[1], plant.m1Shift), "SF422", /belongs to machine/);
  await rejectsWith(t, db.query(`select * from planning.available_jobs(null)`), "SF422");

  // planned on one machine that date: gone from every machine's list
  await db.asRole("shopfloor_planner", (c) =>
    c.query(`select * from planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[0], plant.dayShift, d, [ops[0]]]));
  t.deepEqual(await list(plant.machines[1], plant.dayShift), [ops[1]]);
});

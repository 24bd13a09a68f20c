// The plan's log (planning_log): re-planning a paused operation is a status
// entry of its own (issue 14), and the per-statement logging still records
// every row a statement changes, and only those.
import test from "ava";
import type { TestDb } from "../helpers/db.ts";
import { addDays, createOps, withPlant, type Plant } from "./fixture.ts";

let db: TestDb;
let plant: Plant;
let T: string;
withPlant(test, (made) => ({ db, plant, T } = made));

const logOf = async (ops: string[]) =>
  (await db.query(`select log_id, actor, reason, operation, mp_id::text, op_id::text, before, after
                     from planning.planning_log where op_id = any($1::bigint[]) order by log_id`, [ops])).rows;

test("re-planning a paused operation (6 -> 0) writes a status entry naming its new plan row, before the row's insert", async (t) => {
  const [paused, fresh] = await createOps(db, plant.items["Housing"], 2);
  await db.query(`select planning.set_operation_status($1, 6)`, [paused]);
  const d = await addDays(db, T, 2);
  const saved = await db.asRole("shopfloor_planner", (c) =>
    c.query(`select mp_id::text, mp_op_id::text, mp_op_status from planning.save_sequence($1, $2, $3, $4::bigint[])`,
      [plant.machines[0], plant.dayShift, d, [fresh, paused]]), "paula");
  const row = saved.rows.find((r) => r.mp_op_id === paused)!;
  t.is(row.mp_op_status, 0);

  const log = (await logOf([paused, fresh])).map(({ log_id: _, ...e }) => e);
  const freshRow = saved.rows.find((r) => r.mp_op_id === fresh)!.mp_id;
  t.is(log.length, 3);
  t.like(log[0], {
    actor: "paula", reason: "save_sequence:status 0", operation: "status", mp_id: row.mp_id, op_id: paused,
    before: { op_status: 6 }, after: { op_status: 0 },
  });
  t.like(log[1], { reason: "save_sequence", operation: "insert", mp_id: freshRow, op_id: fresh });
  t.like(log[2], { reason: "save_sequence", operation: "insert", mp_id: row.mp_id, op_id: paused });
  t.is((log[2].after as { mp_op_status: number }).mp_op_status, 0);

  // saving the same sequence again changes no status and writes nothing
  await db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[0], plant.dayShift, d, [fresh, paused]]);
  t.is((await logOf([paused, fresh])).length, 3);
});

test("an operation that was never paused writes no status entry when planned", async (t) => {
  const [op] = await createOps(db, plant.items["Bracket A"], 1, { status: 5 });
  await db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[1], plant.dayShift, await addDays(db, T, 3), [op]]);
  t.deepEqual((await logOf([op])).map((e) => e.operation), ["insert"]);
});

test("one statement's changes are all logged, row by row, with the statement's reason; unchanged rows are not", async (t) => {
  const ops = await createOps(db, plant.items["Bracket B"], 4);
  const d = await addDays(db, T, 4);
  await db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[2], plant.nightShift, d, ops]);
  const before = (await logOf(ops)).length;
  t.is(before, 4);

  // a DBA's hand-written statements: one update touching four rows, two of which change
  await db.query(`update planning.mach_planning set planned_by = case when mp_sequence <= 2 then 'dba' else planned_by end
                   where mp_op_id = any($1::bigint[])`, [ops]);
  await db.query(`delete from planning.mach_planning where mp_op_id = any($1::bigint[]) and mp_sequence > 3`, [ops]);
  const after = (await logOf(ops)).slice(before);
  t.deepEqual(after.map((e) => [e.reason, e.operation, e.op_id]), [
    ["direct", "update", ops[0]],
    ["direct", "update", ops[1]],
    ["direct", "delete", ops[3]],
  ]);
  t.is((after[0].after as { planned_by: string }).planned_by, "dba");

  // replaying the log gives the plan: the last entry of every row is its current state
  const drift = await db.query(`
    with last as (
      select distinct on (mp_id) mp_id, operation, after from planning.planning_log
       where op_id = any($1::bigint[]) order by mp_id, log_id desc
    )
    select l.mp_id from last l left join planning.mach_planning mp on mp.mp_id = l.mp_id
     where (l.operation = 'delete') <> (mp.mp_id is null) or (mp.mp_id is not null and l.after <> to_jsonb(mp))`, [ops]);
  t.deepEqual(drift.rows, []);
});

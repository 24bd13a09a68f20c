// Planning rules enforced by the database: working dates, no past dates, only
// plannable operations, status changes removing plan rows, save_sequence
// refusals, available jobs and the timeline.
import test from "ava";
import pg from "pg";
import type { TestDb } from "../helpers/db.ts";
import type { TestApi } from "../helpers/api.ts";
import { addDays, createOps, insertPastRows, withPlantApi, type Plant } from "./fixture.ts";
import { rejectsWith } from "../helpers/assert.ts";

let db: TestDb;
let plant: Plant;
let T: string;
let api: TestApi;
withPlantApi(test, (made) => ({ db, plant, T, api } = made));

const pwd = async (d: string) =>
  (await db.query(`select planning.previous_working_date($1)::text as d`, [d])).rows[0].d as string | null;

test.serial("previous working date skips Sundays, holiday runs, follows the weekday setting, and gives up after 30 days", async (t) => {
  // 2031-01-06 is a Monday
  t.is((await db.query(`select extract(isodow from date '2031-01-06')::int as d`)).rows[0].d, 1);
  t.is(await pwd("2031-01-06"), "2031-01-04", "Monday -> Saturday");
  t.is(await pwd("2031-01-05"), "2031-01-04", "Sunday -> Saturday");
  t.is(await pwd("2031-01-07"), "2031-01-06", "Tuesday -> Monday");

  await db.query(`insert into planning.holiday (holiday_date, description) values
    ('2031-01-02', 'x'), ('2031-01-03', 'x'), ('2031-01-04', 'x')`);
  t.is(await pwd("2031-01-06"), "2031-01-01", "Thu..Sat holidays and the Sunday are skipped");

  // 2031-06-30 is a Monday; 30 days before it (2031-05-31) a Saturday
  await db.query(`insert into planning.holiday (holiday_date) select d::date from generate_series(date '2031-06-01', date '2031-06-29', interval '1 day') d`);
  t.is(await pwd("2031-06-30"), "2031-05-31", "the 30th day back still counts");
  await db.query(`insert into planning.holiday (holiday_date) values ('2031-05-31')`);
  t.is(await pwd("2031-06-30"), null, "no working date within 30 days");

  await db.query(`select ops.set_setting('planning.working_weekdays', '[1,2,3,4,5]')`);
  try {
    t.is(await pwd("2031-01-13"), "2031-01-10", "Monday -> Friday in a five-day week");
  } finally {
    await db.query(`select ops.set_setting('planning.working_weekdays', '[1,2,3,4,5,6]')`);
  }
  t.is(await pwd("2031-01-13"), "2031-01-11");
  for (const bad of ["[]", "[1.5]", '["mon"]', "[0]", "[8]", '"1,2,3"']) {
    await rejectsWith(t, db.query(`select ops.set_setting('planning.working_weekdays', $1)`, [bad]), "SF422", /working_weekdays must be a list of ISO weekdays/);
  }
  t.is(await pwd("2031-01-13"), "2031-01-11", "a refused value changes nothing");
});

test("past dates are refused by direct INSERT and UPDATE as well as by save_sequence", async (t) => {
  const [op] = await createOps(db, plant.items["Housing"], 1);
  const yesterday = await addDays(db, T, -1);
  await rejectsWith(t, db.query(
    `insert into planning.mach_planning (mp_op_id, mp_machine_id, mp_shift_id, mp_op_proddate, mp_sequence, mp_op_status)
     values ($1, $2, $3, $4, 1, 0)`, [op, plant.machines[0], plant.dayShift, yesterday]), "SF422", /no past dates/);

  await rejectsWith(t, db.query(`select * from planning.save_sequence($1, $2, $3, array[$4]::bigint[])`,
    [plant.machines[0], plant.dayShift, yesterday, op]), "SF422");

  // today itself is allowed (direct insert, as a DBA would)
  const tomorrow = await addDays(db, T, 1);
  const { rows } = await db.query(
    `insert into planning.mach_planning (mp_op_id, mp_machine_id, mp_shift_id, mp_op_proddate, mp_sequence, mp_op_status)
     values ($1, $2, $3, $4, 99, 5) returning mp_id, mp_op_status`, [op, plant.machines[2], plant.nightShift, tomorrow]);
  t.is(rows[0].mp_op_status, 1, "the status column mirrors the operation, whatever was written");
  await rejectsWith(t, db.query(`update planning.mach_planning set mp_op_proddate = $2 where mp_id = $1`, [rows[0].mp_id, yesterday]), "SF422");

  // the test door needs a superuser: under a role it stays shut
  await rejectsWith(t, db.asRole("shopfloor_admin", async (c) => {
    await c.query(`select set_config('planning.allow_past', 'on', true)`);
    return c.query(`select * from planning.save_sequence($1, $2, $3, array[$4]::bigint[])`, [plant.machines[0], plant.dayShift, yesterday, op]);
  }), "SF422");
  const [old] = await createOps(db, plant.items["Housing"], 1);
  const past = await insertPastRows(db, [{ op: old, machine: plant.machines[2], shift: plant.dayShift, date: await addDays(db, T, -60), seq: 1 }]);
  t.is(past.length, 1, "a superuser session with planning.allow_past may write a past row");
  await db.query(`delete from planning.mach_planning where mp_id = $1`, [past[0]]);
});

test("operations whose status may not be planned are refused, even by direct INSERT", async (t) => {
  const [paused] = await createOps(db, plant.items["Housing"], 1, { status: 6 });
  const [done] = await createOps(db, plant.items["Housing"], 1, { status: 10 });
  const tomorrow = await addDays(db, T, 1);
  for (const op of [paused, done]) {
    await rejectsWith(t, db.query(
      `insert into planning.mach_planning (mp_op_id, mp_machine_id, mp_shift_id, mp_op_proddate, mp_sequence, mp_op_status)
       values ($1, $2, $3, $4, 50, 0)`, [op, plant.machines[1], plant.nightShift, tomorrow]), "SF409");
  }
  await rejectsWith(t, db.query(`select * from planning.save_sequence($1, $2, $3, array[$4]::bigint[])`,
    [plant.machines[1], plant.dayShift, await addDays(db, T, 5), done]), "SF409", /complete or may not be planned/);
});

test("a status change to 6 or 10 removes the plan rows in the same transaction, logged; other changes are mirrored", async (t) => {
  const ops = await createOps(db, plant.items["Bracket A"], 3);
  const d1 = await addDays(db, T, 2);
  const d2 = await addDays(db, T, 3);
  await db.asRole("shopfloor_planner", async (c) => {
    await c.query(`select * from planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[0], plant.dayShift, d1, ops]);
    await c.query(`select * from planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[0], plant.dayShift, d2, ops]);
  }, "paula");
  const count = async (op: string) => Number((await db.query(`select count(*) from planning.mach_planning where mp_op_id = $1`, [op])).rows[0].count);
  t.is(await count(ops[0]), 2);

  await db.query(`update planning.operations set op_status = 10 where op_id = $1`, [ops[0]]);
  await db.query(`update planning.operations set op_status = 6 where op_id = $1`, [ops[1]]);
  await db.query(`update planning.operations set op_status = 5 where op_id = $1`, [ops[2]]);
  t.is(await count(ops[0]), 0);
  t.is(await count(ops[1]), 0);
  t.is(await count(ops[2]), 2);
  const mirrored = await db.query(`select distinct mp_op_status from planning.mach_planning where mp_op_id = $1`, [ops[2]]);
  t.deepEqual(mirrored.rows, [{ mp_op_status: 5 }]);

  const log = await db.query(`select reason, operation, count(*)::int as n from planning.planning_log
    where op_id = any($1::bigint[]) group by 1, 2 order by 1, 2`, [ops]);
  t.deepEqual(log.rows, [
    { reason: "save_sequence", operation: "insert", n: 6 },
    { reason: "status_change:status 10", operation: "delete", n: 2 },
    { reason: "status_change:status 5", operation: "update", n: 2 },
    { reason: "status_change:status 6", operation: "delete", n: 2 },
  ]);
  const actor = await db.query(`select distinct actor from planning.planning_log where op_id = $1 and reason = 'save_sequence'`, [ops[0]]);
  t.deepEqual(actor.rows, [{ actor: "paula" }]);
  const kept = await db.query(`select op_status from planning.operations where op_id = $1`, [ops[0]]);
  t.is(kept.rows[0].op_status, 10, "nothing leaves operations");
});

test("paused operations may be planned again and become planned (0); the sequence is replaced and renumbered", async (t) => {
  const ops = await createOps(db, plant.items["Bracket B"], 4);
  await db.query(`update planning.operations set op_status = 6 where op_id = $1`, [ops[0]]);
  const d = await addDays(db, T, 4);
  const save = (ids: string[]) => db.asRole("shopfloor_planner", (c) =>
    c.query(`select mp_op_id::text, mp_sequence, mp_op_status from planning.save_sequence($1, $2, $3, $4::bigint[])`,
      [plant.machines[1], plant.dayShift, d, ids]));
  const first = await save([ops[0], ops[1], ops[2]]);
  t.deepEqual(first.rows, [
    { mp_op_id: ops[0], mp_sequence: 1, mp_op_status: 0 },
    { mp_op_id: ops[1], mp_sequence: 2, mp_op_status: 1 },
    { mp_op_id: ops[2], mp_sequence: 3, mp_op_status: 1 },
  ]);
  t.is((await db.query(`select op_status from planning.operations where op_id = $1`, [ops[0]])).rows[0].op_status, 0);

  const second = await save([ops[3], ops[2], ops[0]]);
  t.deepEqual(second.rows.map((r) => [r.mp_op_id, r.mp_sequence]), [[ops[3], 1], [ops[2], 2], [ops[0], 3]]);
  const log = await db.query(`select operation, count(*)::int as n from planning.planning_log
    where op_id = any($1::bigint[]) and reason = 'save_sequence' group by 1 order by 1`, [ops]);
  t.deepEqual(log.rows, [
    { operation: "delete", n: 1 },
    { operation: "insert", n: 4 },
    { operation: "update", n: 2 },
  ], "only what changed is written and logged");

  const cleared = await save([]);
  t.is(cleared.rows.length, 0, "an empty list clears the sequence");
});

test("save_sequence refuses operations planned elsewhere that date, duplicates, unknown ids and foreign shifts", async (t) => {
  const ops = await createOps(db, plant.items["Housing"], 2);
  const d = await addDays(db, T, 6);
  await db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[0], plant.nightShift, d, ops]);
  await rejectsWith(t, db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[1], plant.nightShift, d, [ops[1]]]), "SF409", /already planned elsewhere/);
  await rejectsWith(t, db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[0], plant.dayShift, d, [ops[0]]]), "SF409"); // another shift of the same machine is elsewhere too
  await rejectsWith(t, db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[2], plant.dayShift, d, [ops[0], ops[1], ops[0]]]), "SF422", new RegExp(`appears twice in the sequence: ${ops[0]}$`));
  await rejectsWith(t, db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[2], plant.dayShift, d, ["999999999"]]), "SF404");
  await rejectsWith(t, db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[1], plant.m1Shift, d, []]), "SF422", /belongs to another machine/);
  // another date is fine
  const ok = await db.query(`select * from planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[1], plant.dayShift, await addDays(db, T, 7), [ops[1]]]);
  t.is(ok.rows.length, 1);
  await rejectsWith(t, db.asRole("shopfloor_operator", (c) => c.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[2], plant.dayShift, d, []])), "42501"); // operators read; planners edit
});

test("available_jobs lists pending operations (paused included) not in that date's plan, filtered by item and lot", async (t) => {
  const d = await addDays(db, T, 9);
  const widgets = (await db.query<{ item_id: string }>(`insert into planning.wip_items (item_name) values ('Widget Z') returning item_id::text`)).rows[0].item_id;
  const [a, b, c, e] = await createOps(db, widgets, 4, { lotPrefix: "WZ-77-" });
  await db.query(`update planning.operations set op_status = 6 where op_id = $1`, [b]);
  await db.query(`update planning.operations set op_status = 10 where op_id = $1`, [c]);
  await db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[2], plant.dayShift, d, [e]]);
  const list = await db.asRole("shopfloor_operator", (cl) =>
    cl.query(`select op_id::text from planning.available_jobs($1, $2, $3, $4, $5)`, [d, plant.machines[2], plant.dayShift, "widget", null]));
  t.deepEqual(list.rows.map((r) => r.op_id), [a, b]);
  const byLot = await db.query(`select op_id::text from planning.available_jobs($1, null, null, null, $2)`, [d, "wz-77-2"]);
  t.deepEqual(byLot.rows.map((r) => r.op_id), [b]);
  const otherDay = await db.query(`select op_id::text from planning.available_jobs($1, null, null, 'Widget Z', null)`, [await addDays(db, T, 10)]);
  t.deepEqual(otherDay.rows.map((r) => r.op_id), [a, b, e]);
});

test("sequence_timeline adds changeovers and run times from the shift start, across midnight", async (t) => {
  const d = await addDays(db, T, 12);
  const [x1] = await createOps(db, plant.items["Bracket A"], 1, { minutesTotal: 120 });
  const [x2] = await createOps(db, plant.items["Housing"], 1, { minutesTotal: 90 });
  const [x3] = await createOps(db, plant.items["Housing"], 1, { minutesTotal: 30 });
  const [x4] = (await db.query(`insert into planning.operations (op_lot_number, op_item_id, op_qty, op_run_min_per_unit)
     values ('PU-1', $1, 20, 6) returning op_id::text`, [plant.items["Bracket B"]])).rows.map((r) => r.op_id);
  await db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[2], plant.nightShift, d, [x1, x2, x3, x4]]);
  const { rows } = await db.query(`select op_id::text, changeover_minutes::float as co, run_minutes::float as run,
      to_char(starts_at, 'YYYY-MM-DD HH24:MI') as s, to_char(ends_at, 'YYYY-MM-DD HH24:MI') as e, beyond_shift
    from planning.sequence_timeline($1, $2, $3)`, [plant.machines[2], plant.nightShift, d]);
  const next = await addDays(db, d, 1);
  t.deepEqual(rows, [
    { op_id: x1, co: 0, run: 120, s: `${d} 22:00`, e: `${next} 00:00`, beyond_shift: false },
    { op_id: x2, co: 40, run: 90, s: `${next} 00:40`, e: `${next} 02:10`, beyond_shift: false },
    { op_id: x3, co: 0, run: 30, s: `${next} 02:10`, e: `${next} 02:40`, beyond_shift: false },
    { op_id: x4, co: 15, run: 120, s: `${next} 02:55`, e: `${next} 04:55`, beyond_shift: false },
  ]);
});

test("GraphQL: a planner saves a sequence, the ERP sets a status; refusals arrive with their SF code", async (t) => {
  const [op] = await createOps(db, plant.items["Housing"], 1);
  const planner = api.tokenForRole("shopfloor_planner", "gina");
  const mutation = `mutation($m: BigInt!, $s: BigInt!, $d: Date!, $ops: [BigInt]!) {
    planningSaveSequence(input: { machine: $m, shift: $s, date: $d, opIds: $ops }) { result { mpOpId mpSequence } } }`;
  const vars = { m: plant.machines[2], s: plant.dayShift, d: await addDays(db, T, 20), ops: [op] };
  let res = await api.graphql(mutation, vars, planner);
  t.falsy(res.errors, JSON.stringify(res.errors));
  t.deepEqual(res.data?.planningSaveSequence.result, [{ mpOpId: op, mpSequence: 1 }]);
  res = await api.graphql(mutation,
    { ...vars, d: await addDays(db, T, -3) }, planner);
  t.is(res.errors?.[0]?.extensions?.code, "SF422");
  const operator = api.tokenForRole("shopfloor_operator", "otto");
  const read = await api.graphql(`query($d: Date!) { planningAvailableJobs(date: $d, item: "Housing") { nodes { opId } } }`, { d: await addDays(db, T, 20) }, operator);
  t.falsy(read.errors, JSON.stringify(read.errors));
  t.false((read.data?.planningAvailableJobs.nodes as { opId: string }[]).some((n) => n.opId === op));

  // the ERP completes the operation: it leaves the plan; reopening it is refused with SF409
  const erp = api.tokenForRole("shopfloor_integration", "erp");
  const status = `mutation($op: BigInt!, $st: Int!) {
    planningSetOperationStatus(input: { opId: $op, status: $st }) { result { opId opStatus } } }`;
  res = await api.graphql(status, { op, st: 10 }, erp);
  t.falsy(res.errors, JSON.stringify(res.errors));
  t.deepEqual(res.data?.planningSetOperationStatus.result, { opId: op, opStatus: 10 });
  t.is((await db.query(`select count(*)::int as n from planning.mach_planning where mp_op_id = $1`, [op])).rows[0].n, 0);
  res = await api.graphql(status, { op, st: 1 }, erp);
  t.is(res.errors?.[0]?.extensions?.code, "SF409");
  res = await api.graphql(status, { op, st: 1 }, operator);
  t.truthy(res.errors, "operators may not change statuses");
});

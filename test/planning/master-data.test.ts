// Planning master data through GraphQL, as an ERP integration, a planner and an
// admin would send it: create, change, upsert by the ERP's key, retire; bad
// input and retiring what the plan uses are refused with the field or reason.
import test from "ava";
import pg from "pg";
import { startTestApi, type TestApi } from "../helpers/api.ts";
import { createTestDatabase, eventually, type TestDb } from "../helpers/db.ts";
import { addDays, today } from "./fixture.ts";

let db: TestDb;
let api: TestApi;
let admin: string, integration: string, planner: string, supervisor: string, operator: string;
test.before(async () => {
  db = await createTestDatabase();
  api = await startTestApi(db);
  admin = api.tokenForRole("shopfloor_admin", "ada");
  integration = api.tokenForRole("shopfloor_integration", "erp");
  planner = api.tokenForRole("shopfloor_planner", "pia");
  supervisor = api.tokenForRole("shopfloor_supervisor", "sam");
  operator = api.tokenForRole("shopfloor_operator", "olga");
});
test.after.always(async () => {
  await api?.stop();
  await db?.drop();
});

async function ok(query: string, variables: Record<string, unknown>, token: string) {
  const r = await api.graphql(query, variables, token);
  if (r.errors) throw new Error(JSON.stringify(r.errors));
  return r.data!;
}

const SAVE_MACHINE = `mutation ($code: String!, $name: String, $ext: String, $id: BigInt, $active: Boolean) {
  planningSaveMachine(input: { machineCode: $code, machineName: $name, externalId: $ext, machineId: $id, active: $active }) {
    result { machineId machineCode machineName externalId active } } }`;
const SAVE_ITEM = `mutation ($name: String!, $ext: String) { planningSaveItem(input: { itemName: $name, externalId: $ext }) { result { itemId itemName externalId active } } }`;
const SAVE_OP = `mutation ($lot: String!, $qty: BigFloat!, $item: String, $ext: String, $min: BigFloat) {
  planningSaveOperation(input: { opLotNumber: $lot, opQty: $qty, itemExternalId: $item, opRunMinTotal: $min, externalId: $ext }) {
    result { opId opLotNumber opQty opStatus externalId opItemId } } }`;

test("an ERP syncs machines, items and operations by its own keys: a second sync changes, never duplicates", async (t) => {
  const m1 = (await ok(SAVE_MACHINE, { code: "SYNC-1", name: "Saw", ext: "ERP-M-1" }, integration)).planningSaveMachine.result;
  t.like(m1, { machineCode: "SYNC-1", machineName: "Saw", externalId: "ERP-M-1", active: true });
  const m1b = (await ok(SAVE_MACHINE, { code: "SYNC-1", name: "Panel saw", ext: "ERP-M-1" }, integration)).planningSaveMachine.result;
  t.is(m1b.machineId, m1.machineId);
  t.is(m1b.machineName, "Panel saw");

  const item = (await ok(SAVE_ITEM, { name: "Sync shelf", ext: "ERP-I-1" }, integration)).planningSaveItem.result;
  const again = (await ok(SAVE_ITEM, { name: "Sync shelf 2", ext: "ERP-I-1" }, integration)).planningSaveItem.result;
  t.is(again.itemId, item.itemId);

  const op = (await ok(SAVE_OP, { lot: "L-1", qty: "10", item: "ERP-I-1", ext: "ERP-O-1", min: "30" }, integration)).planningSaveOperation.result;
  t.like(op, { opLotNumber: "L-1", opQty: "10", opStatus: 1, externalId: "ERP-O-1", opItemId: item.itemId });
  const op2 = (await ok(SAVE_OP, { lot: "L-1", qty: "12", item: "ERP-I-1", ext: "ERP-O-1" }, integration)).planningSaveOperation.result;
  t.is(op2.opId, op.opId);
  t.is(op2.opQty, "12");

  const found = await ok(
    `{ planningOperationByExternalId(externalId: "ERP-O-1") { opId } planningMachineByExternalId(externalId: "ERP-M-1") { machineId } }`,
    {},
    operator,
  );
  t.is(found.planningOperationByExternalId.opId, op.opId);
  const counts = await db.query(`select (select count(*) from planning.operations where external_id = 'ERP-O-1')::int as ops,
    (select count(*) from planning.machines where machine_code = 'SYNC-1')::int as machines`);
  t.deepEqual(counts.rows[0], { ops: 1, machines: 1 });
  const audit = await db.query(`select action, actor, details->>'created' as created from ops.audit_log where action = 'save_operation' and entity_id = $1 order by id`, [op.opId]);
  t.deepEqual(audit.rows, [
    { action: "save_operation", actor: "erp", created: "true" },
    { action: "save_operation", actor: "erp", created: "false" },
  ]);
});

test("bad input is refused with SF422 or SF409 naming the field; roles that do not own master data get SF403", async (t) => {
  await ok(SAVE_MACHINE, { code: "DUP-1", ext: "ERP-DUP-1" }, admin);
  const cases: [string, Record<string, unknown>, string, string, RegExp][] = [
    [SAVE_MACHINE, { code: "DUP-1", ext: "ERP-DUP-2" }, admin, "SF409", /machineCode DUP-1 is already used/],
    [SAVE_MACHINE, { code: "  " }, admin, "SF422", /machineCode must be 1 to 60 characters/],
    [SAVE_MACHINE, { code: "X".repeat(61) }, admin, "SF422", /machineCode must be/],
    [SAVE_MACHINE, { code: "NEW", id: "999999" }, admin, "SF404", /machineId 999999 does not exist/],
    [SAVE_OP, { lot: "L", qty: "0", item: "ERP-I-x", min: "1" }, integration, "SF422", /opQty must be a positive quantity/],
    [SAVE_OP, { lot: "L", qty: "NaN", item: "ERP-I-x", min: "1" }, integration, "SF422", /opQty must be a positive quantity of at most/],
    [SAVE_OP, { lot: "L", qty: "Infinity", item: "ERP-I-x", min: "1" }, integration, "SF422", /opQty must be/],
    [SAVE_OP, { lot: "L", qty: "1", item: "ERP-I-x", min: "NaN" }, integration, "SF422", /opRunMinTotal must be a number of minutes from 0 to 1,000,000/],
    [SAVE_OP, { lot: "L", qty: "1", item: "ERP-I-x", min: "1e7" }, integration, "SF422", /opRunMinTotal must be/],
    [SAVE_OP, { lot: "L", qty: "1", item: "no-such-item", min: "1" }, integration, "SF404", /itemExternalId no-such-item does not exist/],
    [`mutation { planningSaveShift(input: { shiftCode: "S", startTime: "06:00", endTime: "06:00" }) { result { shiftId } } }`, {}, planner, "SF422", /endTime must differ from startTime/],
    [`mutation { planningSetChangeover(input: { fromItemId: "1", toItemId: "1", minutes: "5" }) { result { minutes } } }`, {}, planner, "SF422", /toItemId must differ/],
    [SAVE_MACHINE, { code: "OP-1" }, operator, "SF403", /./],
    [SAVE_MACHINE, { code: "PL-1" }, planner, "SF403", /./],
    [`mutation { planningSetHoliday(input: { holidayDate: "2030-01-01" }) { result { holidayDate } } }`, {}, integration, "SF403", /./],
  ];
  for (const [q, v, token, code, message] of cases) {
    const r = await api.graphql(q, v, token);
    t.is(r.errors?.[0].extensions?.code, code, `${JSON.stringify(v)}: ${JSON.stringify(r.errors)}`);
    t.regex(r.errors?.[0].message ?? "", message);
  }
});

test("a run time the timeline cannot place (quantity × minutes per unit above 1,000,000 minutes) is refused, and nothing is saved", async (t) => {
  await ok(SAVE_ITEM, { name: "Huge lot item", ext: "ERP-HUGE" }, integration);
  const save = (qty: string, perUnit: string | null) =>
    api.graphql(
      `mutation ($qty: BigFloat!, $pu: BigFloat) { planningSaveOperation(input: { opLotNumber: "HUGE", opQty: $qty, itemExternalId: "ERP-HUGE", opRunMinPerUnit: $pu, externalId: "ERP-OP-HUGE" }) { result { opId } } }`,
      { qty, pu: perUnit },
      integration,
    );
  const r = await save("1000000", "2");
  t.is(r.errors?.[0].extensions?.code, "SF422", JSON.stringify(r.errors));
  t.regex(r.errors![0].message, /run time, opQty × opRunMinPerUnit = 2000000(\.0+)? minutes, may be at most 1,000,000/);
  t.is((await db.query(`select 1 from planning.operations where external_id = 'ERP-OP-HUGE'`)).rowCount, 0, "nothing saved");
  const fine = await save("1000", "2");
  t.falsy(fine.errors, JSON.stringify(fine.errors));
  const grown = await save("600000", null);
  t.is(grown.errors?.[0].extensions?.code, "SF422", "a later quantity change is checked against the stored minutes per unit");
  t.regex(grown.errors![0].message, /= 1200000(\.0+)? minutes/);
});

test("retiring what the plan uses is refused with the reason; once unplanned it retires", async (t) => {
  const T = await today(db);
  const day = await addDays(db, T, 2);
  const holiday = await addDays(db, T, 20);
  const m = (await ok(SAVE_MACHINE, { code: "RET-1", ext: "ERP-RET-M" }, admin)).planningSaveMachine.result;
  const shift = (await ok(`mutation ($m: BigInt) { planningSaveShift(input: { shiftCode: "RET-A", startTime: "06:00", endTime: "14:00", machineId: $m }) { result { shiftId } } }`,
    { m: m.machineId }, planner)).planningSaveShift.result;
  const item = (await ok(SAVE_ITEM, { name: "Retire item", ext: "ERP-RET-I" }, planner)).planningSaveItem.result;
  const other = (await ok(SAVE_ITEM, { name: "Other item" }, planner)).planningSaveItem.result;
  const co = await ok(`mutation ($a: BigInt!, $b: BigInt!) { planningSetChangeover(input: { fromItemId: $a, toItemId: $b, minutes: "25" }) { result { minutes } } }`,
    { a: item.itemId, b: other.itemId }, planner);
  t.is(co.planningSetChangeover.result.minutes, "25");
  const op = (await ok(SAVE_OP, { lot: "RET-L", qty: "5", item: "ERP-RET-I", ext: "ERP-RET-O", min: "60" }, planner)).planningSaveOperation.result;
  const SAVE_SEQ = `mutation ($m: BigInt!, $s: BigInt!, $d: Date!, $ops: [BigInt]!) {
    planningSaveSequence(input: { machine: $m, shift: $s, date: $d, opIds: $ops }) { result { mpOpId } } }`;
  await ok(SAVE_SEQ, { m: m.machineId, s: shift.shiftId, d: day, ops: [op.opId] }, planner);

  const refusals: [string, Record<string, unknown>, string, RegExp][] = [
    [`mutation ($id: BigInt!) { planningRetireMachine(input: { machineId: $id }) { result { active } } }`, { id: m.machineId }, admin, /Machine \d+ is in use: 1 plan row\(s\) from/],
    [SAVE_MACHINE, { code: "RET-1", ext: "ERP-RET-M", active: false }, admin, /is in use/],
    [`mutation ($id: BigInt!) { planningRetireShift(input: { shiftId: $id }) { result { shiftId } } }`, { id: shift.shiftId }, planner, /Shift \d+ is in use/],
    [`mutation ($id: BigInt!) { planningRetireOperation(input: { opId: $id }) { result { opStatus } } }`, { id: op.opId }, planner, /Operation \d+ is in use: 1 plan row/],
    [`mutation ($id: BigInt!) { planningRetireItem(input: { itemId: $id }) { result { active } } }`, { id: item.itemId }, planner, /Item \d+ is in use: 1 open operation/],
    [`mutation ($d: Date!) { planningSetHoliday(input: { holidayDate: $d, description: "x" }) { result { holidayDate } } }`, { d: day }, planner, /has 1 plan row/],
  ];
  for (const [q, v, token, message] of refusals) {
    const r = await api.graphql(q, v, token);
    t.is(r.errors?.[0].extensions?.code, "SF409", JSON.stringify(r.errors));
    t.regex(r.errors?.[0].message ?? "", message);
  }

  const h = await ok(`mutation ($d: Date!) { planningSetHoliday(input: { holidayDate: $d, description: "Plant party" }) { result { description } } }`, { d: holiday }, planner);
  t.is(h.planningSetHoliday.result.description, "Plant party");
  await ok(`mutation ($d: Date!) { planningRemoveHoliday(input: { holidayDate: $d }) { result { holidayDate } } }`, { d: holiday }, planner);

  await ok(SAVE_SEQ, { m: m.machineId, s: shift.shiftId, d: day, ops: [] }, planner);
  const retiredOp = await ok(`mutation ($id: BigInt!) { planningRetireOperation(input: { opId: $id }) { result { opStatus } } }`, { id: op.opId }, planner);
  t.is(retiredOp.planningRetireOperation.result.opStatus, 11);
  const changeRetired = await api.graphql(SAVE_OP, { lot: "RET-L", qty: "6", item: "ERP-RET-I", ext: "ERP-RET-O" }, integration);
  t.is(changeRetired.errors?.[0].extensions?.code, "SF409");
  t.regex(changeRetired.errors![0].message, /terminal status 11/);
  const retiredItem = await ok(`mutation ($id: BigInt!) { planningRetireItem(input: { itemId: $id }) { result { active } } }`, { id: item.itemId }, planner);
  t.false(retiredItem.planningRetireItem.result.active);
  const opOnRetired = await api.graphql(SAVE_OP, { lot: "RET-2", qty: "1", item: "ERP-RET-I", min: "1" }, integration);
  t.regex(opOnRetired.errors?.[0].message ?? "", /is retired/);
  await ok(`mutation ($id: BigInt!) { planningRetireShift(input: { shiftId: $id }) { result { shiftId } } }`, { id: shift.shiftId }, planner);
  const retiredM = await ok(`mutation ($id: BigInt!) { planningRetireMachine(input: { machineId: $id }) { result { active } } }`, { id: m.machineId }, admin);
  t.false(retiredM.planningRetireMachine.result.active);
  const actions = await db.query(`select distinct action from ops.audit_log where action like 'retire_%' order by 1`);
  t.deepEqual(actions.rows.map((r) => r.action), ["retire_item", "retire_machine", "retire_operation", "retire_shift"]);
});

test("an admin stages yesterday's plan without superuser settings; the supervisor's review shows the carryover", async (t) => {
  const m = (await ok(SAVE_MACHINE, { code: "PAST-1" }, admin)).planningSaveMachine.result;
  const shift = (await ok(`mutation { planningSaveShift(input: { shiftCode: "PAST-A", startTime: "06:00", endTime: "14:00" }) { result { shiftId } } }`, {}, admin)).planningSaveShift.result;
  await ok(SAVE_ITEM, { name: "Past item", ext: "ERP-PAST-I" }, admin);
  const op = (await ok(SAVE_OP, { lot: "PAST-L", qty: "1", item: "ERP-PAST-I", min: "10" }, admin)).planningSaveOperation.result;
  const rows = [{ op_id: Number(op.opId), machine_id: Number(m.machineId), shift_id: Number(shift.shiftId), sequence: 1 }];

  const planner403 = await api.graphql(`mutation ($r: JSON!) { planningStagePastPlan(input: { rows: $r }) { result } }`, { r: rows }, planner);
  t.is(planner403.errors?.[0].extensions?.code, "SF403");
  const bad = await api.graphql(`mutation { planningStagePastPlan(input: { rows: [{ op_id: 1 }] }) { result } }`, {}, admin);
  t.is(bad.errors?.[0].extensions?.code, "SF422");
  t.regex(bad.errors![0].message, /rows: every row needs op_id, machine_id, shift_id and sequence/);

  // A login role that is not a superuser, as a plant's app connects.
  await db.query(`do $$ begin if not exists (select 1 from pg_roles where rolname = 'i16_app') then
    create role i16_app login password 'i16-app-pw' nosuperuser; end if; end $$`);
  await db.query(`grant shopfloor_admin to i16_app`);
  const url = new URL(db.url);
  url.username = "i16_app";
  url.password = "i16-app-pw";
  const c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  try {
    await c.query("set role shopfloor_admin");
    const staged = await c.query(`select planning.stage_past_plan($1) as n`, [JSON.stringify(rows)]);
    t.is(staged.rows[0].n, 1);
    // the door is not open to the same session writing past rows itself
    const direct = await c
      .query(`select set_config('planning.allow_past', 'on', false);
              insert into planning.mach_planning (mp_op_id, mp_machine_id, mp_shift_id, mp_op_proddate, mp_sequence, mp_op_status)
              values ($1, $2, $3, ops.plant_today() - 30, 2, 1)`.replace(/\$1/, op.opId).replace(/\$2/, m.machineId).replace(/\$3/, shift.shiftId))
      .catch((e) => e);
    t.true(direct instanceof Error && ["42501", "SF422"].includes((direct as { code?: string }).code ?? ""), String(direct));
  } finally {
    await c.end();
  }

  const review = await ok(`mutation { planningReviewCarryover(input: {}) { result { mpOpId mpOpProddate } } }`, {}, supervisor);
  const prev = (await db.query(`select planning.previous_working_date(ops.plant_today())::text as d`)).rows[0].d;
  t.deepEqual(review.planningReviewCarryover.result, [{ mpOpId: op.opId, mpOpProddate: prev }]);
  const legacy = await ok(`mutation { planningSupervisorLogin(input: {}) { result { mpOpId } } }`, {}, supervisor);
  t.deepEqual(legacy.planningSupervisorLogin.result, [{ mpOpId: op.opId }], "the old name still works (deprecated)");
});

test("two syncs creating the same externalId at once: one row, both succeed, the later one updates it", async (t) => {
  await ok(SAVE_ITEM, { name: "Race item", ext: "ERP-RACE-I" }, integration);
  const [a, b] = await Promise.all([0, 1].map(async () => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query("begin");
    await c.query("select set_config('role', 'shopfloor_integration', true), set_config('jwt.claims.username', 'erp', true)");
    return c;
  }));
  try {
    const sql = `select (planning.save_operation($1, $2, null, 'ERP-RACE-I', 5, null, 'ERP-RACE-O')).op_id::text as id`;
    const first = await a.query(sql, ["RACE-L", 10]);
    const bPid = (await b.query("select pg_backend_pid() as pid")).rows[0].pid;
    const second = b.query(sql, ["RACE-L", 11]); // waits on a's uncommitted row
    await eventually(async () => (await db.query(`select 1 from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'`, [bPid])).rowCount);
    await a.query("commit");
    const secondRow = await second;
    await b.query("commit");
    t.is(secondRow.rows[0].id, first.rows[0].id, "the later sync found and updated the same row");
    const rows = await db.query(`select op_qty::text from planning.operations where external_id = 'ERP-RACE-O'`);
    t.deepEqual(rows.rows, [{ op_qty: "11" }]);
  } finally {
    for (const c of [a, b]) {
      await c.query("rollback").catch(() => {});
      await c.end();
    }
  }
});

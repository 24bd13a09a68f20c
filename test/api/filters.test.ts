// List filters as screens use them: locked jobs, unacknowledged messages,
// operations of status 6, records since yesterday. Only indexed columns and a
// small set of operators are offered; anything else is a validation error.
import test from "ava";
import { withTestApi, type TestApi } from "../helpers/api.ts";
import type { TestDb } from "../helpers/db.ts";

let db: TestDb;
let api: TestApi;
let operator: string;
let supervisor: string;
withTestApi(test, async (made) => {
  ({ db, api } = made);
  operator = api.tokenForRole("shopfloor_operator", "olga");
  supervisor = api.tokenForRole("shopfloor_supervisor", "sam");
  await db.query(`insert into nesting.jobs (key, ncfile, grundner_job_no, is_locked, locked_by)
    select 'f/job' || g, 'job' || g || '.nc', 'J' || g, g % 3 = 0, case when g % 3 = 0 then 'test' end from generate_series(1, 30) g`);
  await db.query(`select ops.post_message('filters', 'info', 'Message ' || g, '', '{}') from generate_series(1, 12) g`);
  await db.query(`update ops.messages set acknowledged_at = now(), acknowledged_by = 'olga' where source = 'filters' and id % 2 = 0`);
  await db.query(`insert into planning.wip_items (item_name) values ('Filter item')`);
  await db.query(`insert into planning.operations (op_lot_number, op_item_id, op_qty, op_run_min_total, op_status)
    select 'FL-' || g, (select item_id from planning.wip_items where item_name = 'Filter item'), 1, 10, case when g <= 4 then 6 else 1 end
      from generate_series(1, 10) g`);
  await db.query(`insert into tracking."print OS" (name, status, marker, created_at)
    select 'IMP-' || g, 'PRINTED', 1000 + g, now() - make_interval(days => g) from generate_series(1, 5) g`);
});

async function ok(query: string, variables: Record<string, unknown> = {}, token = operator) {
  const r = await api.graphql(query, variables, token);
  if (r.errors) throw new Error(JSON.stringify(r.errors));
  return r.data!;
}

test("locked jobs, paged", async (t) => {
  const d = await ok(`{ allNestingJobs(filter: { isLocked: { equalTo: true } }, first: 4, orderBy: KEY_ASC) { totalCount nodes { key isLocked } } }`);
  t.is(d.allNestingJobs.totalCount, 10);
  t.is(d.allNestingJobs.nodes.length, 4);
  t.true(d.allNestingJobs.nodes.every((n: { isLocked: boolean }) => n.isLocked));
  const status = await ok(`{ allNestingJobs(filter: { status: { in: ["PENDING"] }, isLocked: { equalTo: false } }) { totalCount } }`);
  t.is(status.allNestingJobs.totalCount, 20);
});

test("unacknowledged messages", async (t) => {
  const d = await ok(`{ allMessages(filter: { source: { equalTo: "filters" }, acknowledgedAt: { isNull: true } }) { totalCount nodes { title acknowledgedAt } } }`);
  t.is(d.allMessages.totalCount, 6);
  t.true(d.allMessages.nodes.every((n: { acknowledgedAt: string | null }) => n.acknowledgedAt === null));
});

test("operations of status 6", async (t) => {
  const d = await ok(`{ allPlanningOperations(filter: { opStatus: { equalTo: 6 } }) { totalCount nodes { opLotNumber opStatus } } }`);
  t.is(d.allPlanningOperations.totalCount, 4);
  t.deepEqual(d.allPlanningOperations.nodes.map((n: { opLotNumber: string }) => n.opLotNumber).sort(), ["FL-1", "FL-2", "FL-3", "FL-4"]);
});

test("records since yesterday", async (t) => {
  const since = (await db.query(`select (now() - interval '2 days 1 hour') as s`)).rows[0].s.toISOString();
  const d = await ok(`query ($s: Datetime!) { allPrintOsRecords(filter: { createdAt: { greaterThanOrEqualTo: $s } }) { totalCount nodes { marker } } }`,
    { s: since }, supervisor);
  t.is(d.allPrintOsRecords.totalCount, 2);
});

test("unindexed columns, pattern operators and or/not are not offered", async (t) => {
  const refused = [
    `{ allMessages(filter: { title: { equalTo: "x" } }) { totalCount } }`,
    `{ allMessages(filter: { source: { includes: "fil" } }) { totalCount } }`,
    `{ allMessages(filter: { source: { like: "fil%" } }) { totalCount } }`,
    `{ allMessages(filter: { or: [{ source: { equalTo: "a" } }] }) { totalCount } }`,
    `{ allNestingJobs(filter: { ncfile: { equalTo: "job1.nc" } }) { totalCount } }`,
    `{ allAllocatedMaterials(filter: { stock: { greaterThan: 0 } }) { totalCount } }`,
  ];
  for (const q of refused) {
    const r = await api.graphql(q, {}, operator);
    t.truthy(r.errors?.length, q);
    t.regex(r.errors?.[0].message ?? "", /not defined|Unknown argument/, q);
  }
});

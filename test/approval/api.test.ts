// The approval module through GraphQL: the spec's four scenarios once more,
// the error a client gets for a blocked approval, type names and roles.
import test from "ava";
import { withTestApi, type TestApi } from "../helpers/api.ts";
import type { TestDb } from "../helpers/db.ts";
import { item, job, reserved } from "./helpers.ts";

let db: TestDb;
let api: TestApi;
let supervisor: string;
let operator: string;
withTestApi(test, (made) => {
  ({ db, api } = made);
  supervisor = api.tokenForRole("shopfloor_supervisor", "sue");
  operator = api.tokenForRole("shopfloor_operator", "olga");
});

const SHORTFALL = `query ($id: BigInt!) { jobShortfall(jobId: $id) { nodes { itemId sku qtyNeeded onHand reserved available shortfall } } }`;
const FULFILLABLE = `query ($id: BigInt!) { jobIsFulfillable(jobId: $id) }`;
const APPROVE = `mutation ($id: BigInt!, $was: Boolean!) {
  approveJob(input: { jobId: $id, wasFulfillable: $was }) { result { __typename rowId status approvedBy approvedAt } }
}`;

/** What the job editor does: open (derive wasFulfillable from the shortfall), then approve. */
async function openEditor(jobId: number, token = supervisor) {
  const res = await api.graphql(SHORTFALL, { id: String(jobId) }, token);
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  const nodes = res.data!.jobShortfall.nodes as { shortfall: string }[];
  return nodes.every((n) => Number(n.shortfall) === 0);
}
const approve = (jobId: number, was: boolean, token = supervisor) => api.graphql(APPROVE, { id: String(jobId), was }, token);

test("TEST 1 via GraphQL: reseed resolves shortage", async (t) => {
  const x = await item(db, 2);
  const j = await job(db, [[x, 5]]);
  const was = await openEditor(j);
  t.false(was);
  await db.query(`select approval.set_on_hand($1, 10)`, [x]);
  const res = await approve(j, was);
  t.is(res.errors, undefined);
  t.like(res.data!.approveJob.result, { __typename: "ApprovalJob", rowId: String(j), status: "approved", approvedBy: "sue" });
});

test("TEST 2 via GraphQL: a reduction is blocked with SF409, the title, the message and the shortages", async (t) => {
  const x = await item(db, 10, "GQL-T2-X");
  const j = await job(db, [[x, 8]]);
  const was = await openEditor(j);
  t.true(was);
  await db.query(`select approval.set_on_hand($1, 3)`, [x]);
  const res = await approve(j, was);
  t.is(res.data?.approveJob ?? null, null);
  const e = res.errors![0];
  t.is(e.message, "Inventory changed during job approval");
  t.is(e.extensions?.code, "SF409");
  t.regex(String(e.extensions?.detail), /can no longer be fulfilled/);
  const shortages = [{ item_id: x, sku: "GQL-T2-X", needed: 8, available: 3, shortfall: 5, reason: "Insufficient inventory" }];
  t.deepEqual(JSON.parse(String(e.extensions?.hint)), shortages);
  t.deepEqual(e.extensions?.shortages, shortages, "the shortage list, parsed, for the client");
  t.is(await reserved(db, x), 0);
});

test("TEST 3 via GraphQL: concurrent user conflict", async (t) => {
  const x = await item(db, 5);
  const a = await job(db, [[x, 4]]);
  const b = await job(db, [[x, 4]]);
  const wasA = await openEditor(a);
  const wasB = await openEditor(b, operator);
  t.true(wasA && wasB);
  t.is((await approve(b, wasB)).errors, undefined);
  const res = await approve(a, wasA);
  t.is(res.errors?.[0].extensions?.code, "SF409");
  const nowA = await api.graphql(FULFILLABLE, { id: String(a) }, operator);
  t.false(nowA.data!.jobIsFulfillable);
});

test("TEST 4 via GraphQL: unrelated item change is allowed", async (t) => {
  const x = await item(db, 10);
  const y = await item(db, 10);
  const j = await job(db, [[x, 5]]);
  const was = await openEditor(j);
  await db.query(`select approval.set_on_hand($1, 0)`, [y]);
  const res = await approve(j, was);
  t.is(res.errors, undefined);
  t.is(res.data!.approveJob.result.status, "approved");
});

test("errors via GraphQL: unknown job SF404, wrong status SF412, operator SF403, anonymous SF403", async (t) => {
  let res = await approve(987654321, true);
  t.is(res.errors?.[0].extensions?.code, "SF404");
  res = await api.graphql(SHORTFALL, { id: "987654321" }, operator);
  t.is(res.errors?.[0].extensions?.code, "SF404");

  const x = await item(db, 10);
  const j = await job(db, [[x, 1]]);
  res = await approve(j, true, operator);
  t.is(res.errors?.[0].extensions?.code, "SF403");
  res = await approve(j, true);
  t.is(res.errors, undefined);
  res = await approve(j, true);
  t.is(res.errors?.[0].extensions?.code, "SF412");
  t.regex(res.errors![0].message, /is approved and cannot be approved/);
  res = await api.graphql(FULFILLABLE, { id: String(j) });
  t.is(res.errors?.[0].extensions?.code, "SF403");
  t.is(await reserved(db, x), 1);
});

test("the tables are exposed read-only under their Approval* names", async (t) => {
  const x = await item(db, 7, "GQL-NAMES");
  const j = await job(db, [[x, 2]]);
  const res = await api.graphql(
    `query ($id: BigInt!) { approvalJobByRowId(rowId: $id) { __typename status approvalJobBomLinesByJobId { nodes { __typename qtyPlanned approvalInventoryItemByItemId { __typename sku reserved } } } } }`,
    { id: String(j) },
    operator,
  );
  t.is(res.errors, undefined, JSON.stringify(res.errors));
  const jobNode = res.data!.approvalJobByRowId;
  t.is(jobNode.__typename, "ApprovalJob");
  const line = jobNode.approvalJobBomLinesByJobId.nodes[0];
  t.like(line, { __typename: "ApprovalJobBomLine", qtyPlanned: "2" });
  t.like(line.approvalInventoryItemByItemId, { __typename: "ApprovalInventoryItem", sku: "GQL-NAMES" });
  const mutations = await api.graphql(`{ __type(name: "Mutation") { fields { name } } }`, {}, operator);
  const names = (mutations.data!.__type.fields as { name: string }[]).map((f) => f.name);
  t.true(names.includes("approvalApproveJob"));
  t.false(names.some((n) => /^(create|update|delete)Approval/.test(n)), "no generated CRUD on approval tables");
  t.false(names.includes("recomputeReserved"));
});

test("cancel and complete via GraphQL release the reservation; operators may not", async (t) => {
  const x = await item(db, 10);
  const a = await job(db, [[x, 3]]);
  const b = await job(db, [[x, 4]]);
  t.is((await approve(a, true)).errors, undefined);
  t.is((await approve(b, true)).errors, undefined);
  t.is(await reserved(db, x), 7);
  const call = (name: string, id: number, token = supervisor) =>
    api.graphql(`mutation ($id: BigInt!) { ${name}(input: { jobId: $id }) { result { status } } }`, { id: String(id) }, token);
  let res = await call("approvalCancelJob", a, operator);
  t.is(res.errors?.[0].extensions?.code, "SF403");
  res = await call("approvalCancelJob", a);
  t.is(res.data?.approvalCancelJob.result.status, "cancelled");
  t.is(await reserved(db, x), 4);
  res = await call("approvalCompleteJob", b);
  t.is(res.data?.approvalCompleteJob.result.status, "completed");
  t.is(await reserved(db, x), 0);
  res = await call("approvalCancelJob", b);
  t.is(res.errors?.[0].extensions?.code, "SF412");
});

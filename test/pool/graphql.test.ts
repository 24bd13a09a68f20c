// The pool over GraphQL: handleSinglePieceStart, receive, and the queries.
import test from "ava";
import { withTestApi, type TestApi } from "../helpers/api.ts";
import type { TestDb } from "../helpers/db.ts";
import { makeTicket, newProduct } from "./fixtures.ts";

let db: TestDb;
let api: TestApi;
withTestApi(test, (made) => ({ db, api } = made));

test("integration receives, an operator starts an assembly, supervisors see balances, events and shortages", async (t) => {
  const p = newProduct();
  const { tokenIds } = await makeTicket(db, {
    product: p,
    bom: 5,
    tokens: 2,
    requirements: [{ component_code: "BODY", default_qty: 1, is_required: true }],
  });
  const integration = api.tokenForRole("shopfloor_integration", "cutter");
  const operator = api.tokenForRole("shopfloor_operator", "olga");
  const supervisor = api.tokenForRole("shopfloor_supervisor", "sam");

  const RECEIVE = `mutation ($p: BigInt!, $k: String!) {
    poolReceive(input: { productModelId: $p, bomVersionId: "5", componentCode: "BODY", qty: "1", idempotencyKey: $k }) { result } }`;
  const rcv = await api.graphql(RECEIVE, { p: String(p), k: "gql-rcv-1" }, integration);
  t.is(rcv.errors, undefined);
  t.like(rcv.data!.poolReceive.result, { status: "applied", balance: "1.000000" });
  const denied = await api.graphql(RECEIVE, { p: String(p), k: "gql-rcv-2" }, operator);
  t.is(denied.errors?.[0].extensions?.code, "SF403");

  const START = `mutation ($t: BigInt!) { handleSinglePieceStart(input: { tokenId: $t, workerId: "9", behaviorCode: "ASSEMBLY" }) { result } }`;
  const s1 = await api.graphql(START, { t: String(tokenIds[0]) }, operator);
  t.is(s1.errors, undefined);
  t.like(s1.data!.handleSinglePieceStart.result, { status: "active", allocation_ok: true, warnings: [] });
  const s2 = await api.graphql(START, { t: String(tokenIds[1]) }, operator);
  t.like(s2.data!.handleSinglePieceStart.result, { status: "active", allocation_ok: false, warnings: ["POOL_INSUFFICIENT"] });

  const missing = await api.graphql(START, { t: "999999999" }, operator);
  t.is(missing.errors?.[0].extensions?.code, "SF404");
  t.regex(missing.errors![0].message, /Token 999999999 does not exist/);

  const Q = `query ($p: BigInt!) {
    allPoolBalances(condition: { productModelId: $p }) { nodes { componentCode state quantity } }
    allPoolEvents(condition: { productModelId: $p }, orderBy: ROW_ID_ASC) { nodes { eventType deltaQty idempotencyKey executionTokenByTokenId { status } } }
    allPoolShortages(condition: { productModelId: $p }) { nodes { componentCode openAllocations qtyShort } }
  }`;
  const q = await api.graphql(Q, { p: String(p) }, supervisor);
  t.is(q.errors, undefined, JSON.stringify(q.errors));
  t.deepEqual(q.data!.allPoolBalances.nodes, [{ componentCode: "BODY", state: "cut_ready", quantity: "0.000000" }]);
  t.deepEqual(q.data!.allPoolEvents.nodes, [
    { eventType: "POOL_RECEIVE", deltaQty: "1.000000", idempotencyKey: "gql-rcv-1", executionTokenByTokenId: null },
    { eventType: "POOL_ALLOCATE", deltaQty: "-1.000000", idempotencyKey: `pa:asm:${tokenIds[0]}:BODY`, executionTokenByTokenId: { status: "active" } },
  ]);
  t.deepEqual(q.data!.allPoolShortages.nodes, [{ componentCode: "BODY", openAllocations: 1, qtyShort: "1.000000" }]);

  const opShort = await api.graphql(`{ allPoolShortages { nodes { componentCode } } }`, {}, operator);
  t.is(opShort.errors?.[0].extensions?.code, "SF403");
  const tokens = await api.graphql(`{ allExecutionTokens(first: 1) { nodes { rowId status jobTicketByJobTicketId { idProduct } } } }`, {}, operator);
  t.is(tokens.errors, undefined, JSON.stringify(tokens.errors));
  t.is(tokens.data!.allExecutionTokens.nodes.length, 1);
});

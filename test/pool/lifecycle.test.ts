// Token lifecycle through GraphQL, as a client: create revision, ticket and
// tokens, start, pause, resume, complete; retries; refusals naming what to do.
import test from "ava";
import pg from "pg";
import { withTestApi, type TestApi } from "../helpers/api.ts";
import type { TestDb } from "../helpers/db.ts";

let db: TestDb;
let api: TestApi;
let integration: string;
let operator: string;
withTestApi(test, (made) => {
  ({ db, api } = made);
  integration = api.tokenForRole("shopfloor_integration", "erp");
  operator = api.tokenForRole("shopfloor_operator", "olga");
});

const SNAPSHOT = { structure: { component_requirements: [{ component_code: "BODY", default_qty: 2, is_required: true }] } };

async function gql(query: string, variables: Record<string, unknown>, token: string) {
  const r = await api.graphql(query, variables, token);
  return r;
}

/** A revision, a ticket and `count` tokens, made through the API as an ERP would. */
async function makeTokens(product: number, count: number): Promise<string[]> {
  const rev = await gql(
    `mutation ($p: BigInt!, $s: JSON!) { executionCreateProductRevision(input: { productModelId: $p, snapshotJson: $s }) { result { rowId productModelId } } }`,
    { p: String(product), s: SNAPSHOT },
    integration,
  );
  if (rev.errors) throw new Error(JSON.stringify(rev.errors));
  const revId = rev.data!.executionCreateProductRevision.result.rowId;
  const ticket = await gql(
    `mutation ($p: BigInt!, $r: BigInt!) { executionCreateJobTicket(input: { idProduct: $p, productRevisionId: $r, bomVersionId: "1" }) { result { rowId } } }`,
    { p: String(product), r: revId },
    integration,
  );
  if (ticket.errors) throw new Error(JSON.stringify(ticket.errors));
  const toks = await gql(
    `mutation ($t: BigInt!, $n: Int!) { executionCreateTokens(input: { jobTicketId: $t, count: $n }) { result { rowId status } } }`,
    { t: ticket.data!.executionCreateJobTicket.result.rowId, n: count },
    integration,
  );
  if (toks.errors) throw new Error(JSON.stringify(toks.errors));
  return toks.data!.executionCreateTokens.result.map((t: { rowId: string; status: string }) => {
    if (t.status !== "ready") throw new Error("token not ready");
    return t.rowId;
  });
}

const START = `mutation ($t: BigInt!, $w: BigInt!) { executionHandleSinglePieceStart(input: { tokenId: $t, workerId: $w, behaviorCode: "ASSEMBLY" }) { result } }`;
const step = (name: string) => `mutation ($t: BigInt!, $w: BigInt!) { ${name}(input: { tokenId: $t, workerId: $w }) { result } }`;
const PAUSE = step("executionPauseToken");
const RESUME = step("executionResumeToken");
const COMPLETE = step("executionCompleteToken");

test("start, pause, resume and complete a token; each step closes or opens a work session and is audited", async (t) => {
  const [tok] = await makeTokens(501, 1);
  const s = await gql(START, { t: tok, w: "9" }, operator);
  t.like(s.data!.executionHandleSinglePieceStart.result, { status: "active", allocation_ok: false, warnings: ["POOL_INSUFFICIENT"] });

  const p = await gql(PAUSE, { t: tok, w: "9" }, operator);
  t.is(p.errors, undefined, JSON.stringify(p.errors));
  t.like(p.data!.executionPauseToken.result, { status: "paused", already_paused: false });
  const again = await gql(PAUSE, { t: tok, w: "9" }, operator);
  t.like(again.data!.executionPauseToken.result, { status: "paused", already_paused: true }, "a retried pause is not an error");

  const r = await gql(RESUME, { t: tok, w: "12" }, operator);
  t.is(r.errors, undefined, JSON.stringify(r.errors));
  t.like(r.data!.executionResumeToken.result, { status: "active", behavior_code: "ASSEMBLY", already_active: false });
  const r2 = await gql(RESUME, { t: tok, w: "12" }, operator);
  t.like(r2.data!.executionResumeToken.result, { already_active: true });

  // another worker can neither pause nor complete it
  const other = await gql(COMPLETE, { t: tok, w: "9" }, operator);
  t.is(other.errors?.[0].extensions?.code, "SF409");
  t.regex(other.errors![0].message, /being worked by worker 12, not 9/);

  const c = await gql(COMPLETE, { t: tok, w: "12" }, operator);
  t.is(c.errors, undefined, JSON.stringify(c.errors));
  t.like(c.data!.executionCompleteToken.result, { status: "completed", already_completed: false });
  const c2 = await gql(COMPLETE, { t: tok, w: "12" }, operator);
  t.like(c2.data!.executionCompleteToken.result, { already_completed: true });

  const sessions = await db.query(
    `select worker_id::int, behavior_code, ended_at is not null as closed from execution.work_sessions where token_id = $1 order by id`,
    [tok],
  );
  t.deepEqual(sessions.rows, [
    { worker_id: 9, behavior_code: "ASSEMBLY", closed: true },
    { worker_id: 12, behavior_code: "ASSEMBLY", closed: true },
  ]);
  const audit = await db.query(`select action, actor from ops.audit_log where entity_type = 'token' and entity_id = $1 order by id`, [tok]);
  t.deepEqual(
    audit.rows.map((a) => a.action),
    ["handle_single_piece_start", "pause_token", "resume_token", "complete_token"],
  );
  t.true(audit.rows.every((a) => a.actor === "olga"));
  // resume never allocates: the only allocation attempt was the start's (rejected, nothing booked)
  const events = await db.query(`select count(*)::int as n from pool.events where token_id = $1`, [tok]);
  t.is(events.rows[0].n, 0);

  for (const q of [START, PAUSE, RESUME]) {
    const refused = await gql(q, { t: tok, w: "12" }, operator);
    t.is(refused.errors?.[0].extensions?.code, "SF409", "a completed token cannot change");
  }
});

test("refusals: unknown token, a token never started, another worker's session, and the start hint names the mutations", async (t) => {
  const [a, b] = await makeTokens(502, 2);
  const missing = await gql(PAUSE, { t: "999999", w: "1" }, operator);
  t.is(missing.errors?.[0].extensions?.code, "SF404");
  for (const q of [PAUSE, RESUME, COMPLETE]) {
    const r = await gql(q, { t: a, w: "1" }, operator);
    t.is(r.errors?.[0].extensions?.code, "SF409");
    t.regex(String(r.errors![0].extensions?.hint ?? r.errors![0].message), /Start it first|never started/);
  }
  await gql(START, { t: b, w: "1" }, operator);
  const busy = await gql(START, { t: b, w: "2" }, operator);
  t.is(busy.errors?.[0].extensions?.code, "SF409");
  t.regex(String(busy.errors![0].extensions?.hint), /pauseToken.*completeToken/);
  const pauseOther = await gql(PAUSE, { t: b, w: "2" }, operator);
  t.is(pauseOther.errors?.[0].extensions?.code, "SF409");
  const noToken = await api.graphql(`mutation { executionPauseToken(input: { workerId: "1" }) { result } }`, {}, operator);
  t.is(noToken.errors?.[0].extensions?.code, "SF422");
  t.regex(noToken.errors![0].message, /tokenId/);
  const unauth = await gql(PAUSE, { t: b, w: "1" }, integration);
  t.is(unauth.errors?.[0].extensions?.code, "SF403", "the printer feed does not work tokens");
});

test("a paused token resumed by two workers at once: one wins, the other is refused, one open session", async (t) => {
  const [tok] = await makeTokens(503, 1);
  await gql(START, { t: tok, w: "1" }, operator);
  await gql(PAUSE, { t: tok, w: "1" }, operator);
  const clients = await Promise.all([1, 2].map(async () => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    return c;
  }));
  try {
    // both hold a transaction open before either resumes, then race
    await Promise.all(clients.map((c) => c.query("begin")));
    const results = await Promise.allSettled(
      clients.map((c, i) => c.query(`select execution.resume_token($1, $2) as r`, [tok, 20 + i]).then(async (r) => {
        await c.query("commit");
        return r.rows[0].r;
      })),
    );
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    t.is(won.length, 1);
    t.is(lost.length, 1);
    t.is(lost[0].reason.code, "SF409");
    const open = await db.query(`select count(*)::int as n from execution.work_sessions where token_id = $1 and ended_at is null`, [tok]);
    t.is(open.rows[0].n, 1);
  } finally {
    for (const c of clients) {
      await c.query("rollback").catch(() => {});
      await c.end();
    }
  }
});

test("creating revisions, tickets and tokens refuses bad input naming the field", async (t) => {
  const bad = await gql(
    `mutation ($s: JSON!) { executionCreateProductRevision(input: { productModelId: "7", snapshotJson: $s }) { result { rowId } } }`,
    { s: { structure: { component_requirements: [{ component_code: "A", default_qty: 1, is_required: true }, { component_code: "B", default_qty: "two", is_required: true }] } } },
    integration,
  );
  t.is(bad.errors?.[0].extensions?.code, "SF422");
  t.regex(bad.errors![0].message, /component_requirements\[1\]: default_qty must be a number/);
  const twice = await gql(
    `mutation ($s: JSON!) { executionCreateProductRevision(input: { productModelId: "7", snapshotJson: $s }) { result { rowId } } }`,
    { s: { structure: { component_requirements: [{ component_code: "A", default_qty: 1, is_required: true }, { component_code: "A", default_qty: 1, is_required: true }] } } },
    integration,
  );
  t.regex(twice.errors![0].message, /component A is required twice/);
  const rev = await gql(
    `mutation ($s: JSON!) { executionCreateProductRevision(input: { productModelId: "7", snapshotJson: $s }) { result { rowId } } }`,
    { s: SNAPSHOT },
    integration,
  );
  const revId = rev.data!.executionCreateProductRevision.result.rowId;
  const wrongProduct = await gql(
    `mutation ($r: BigInt!) { executionCreateJobTicket(input: { idProduct: "8", productRevisionId: $r }) { result { rowId } } }`,
    { r: revId },
    integration,
  );
  t.is(wrongProduct.errors?.[0].extensions?.code, "SF422");
  t.regex(wrongProduct.errors![0].message, /pins product 7, not idProduct 8/);
  const noRev = await gql(`mutation { executionCreateJobTicket(input: { idProduct: "8", productRevisionId: "999999" }) { result { rowId } } }`, {}, integration);
  t.is(noRev.errors?.[0].extensions?.code, "SF404");
  t.regex(noRev.errors![0].message, /productRevisionId 999999/);
  const tooMany = await gql(`mutation { executionCreateTokens(input: { jobTicketId: "1", count: 5000 }) { result { rowId } } }`, {}, integration);
  t.is(tooMany.errors?.[0].extensions?.code, "SF422");
  t.regex(tooMany.errors![0].message, /count must be between 1 and 1000/);
  const operatorCannot = await gql(
    `mutation ($s: JSON!) { executionCreateProductRevision(input: { productModelId: "7", snapshotJson: $s }) { result { rowId } } }`,
    { s: SNAPSHOT },
    operator,
  );
  t.is(operatorCannot.errors?.[0].extensions?.code, "SF403");
});

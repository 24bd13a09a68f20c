// npm run demo's loader against a fresh database and real folders: a second
// run neither fails nor duplicates, and the plant answers through the API.
import test from "ava";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { DEMO_USERS, loadDemoPlant, type DemoOptions } from "../../src/demo.ts";
import { withTestApi, type TestApi } from "../helpers/api.ts";
import { testLog, type TestDb } from "../helpers/db.ts";

let db: TestDb;
let api: TestApi;
let dir: string;
withTestApi(test, (made) => {
  ({ db, api } = made);
  dir = mkdtempSync(path.join(os.tmpdir(), "shopfloor-demo-"));
});
test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const COUNTS = readFileSync(new URL("./counts.sql", import.meta.url), "utf8");

async function runDemo() {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const opts: DemoOptions = {
      client,
      processedRoot: path.join(dir, "processed"),
      grundnerDir: path.join(dir, "grundner"),
      grundnerArchiveDir: path.join(dir, "grundner-archive"),
      grundnerQuarantineDir: path.join(dir, "grundner-quarantine"),
      log: testLog,
    };
    const report = await loadDemoPlant(opts);
    const counts = (await client.query(COUNTS)).rows[0];
    return { report, counts };
  } finally {
    await client.end();
  }
}

test("the demo loads a plant, a second run changes nothing, and the plant answers through GraphQL", async (t) => {
  const first = await runDemo();
  t.like(first.counts, { machines: 3, shifts: 2, items: 4, ops: 12, nc: 4, stock: 3, printos: 3, scans: 2, ajobs: 2, tokens: 5, revs: 1, pending: 3 });
  t.true(first.counts.holidays >= 1);
  t.is(first.report.stockBoards, 3);
  const second = await runDemo();
  t.deepEqual(second.counts, first.counts, "a second run duplicates nothing");

  // every printed password logs in
  for (const u of DEMO_USERS) {
    const r = await api.graphql(`mutation ($u: String!, $p: String!) { login(input: { username: $u, password: $p }) { token } }`, { u: u.username, p: u.password });
    t.truthy(r.data?.login?.token, `${u.username} logs in`);
  }
  const sam = await api.tokenFor("sam");
  const review = await api.graphql(`mutation { planningReviewCarryover(input: {}) { result { mpOpProddate } } }`, {}, sam);
  t.is(review.errors, undefined, JSON.stringify(review.errors));
  t.is(review.data!.planningReviewCarryover.result.length, 3);
  t.true(review.data!.planningReviewCarryover.result.every((r: { mpOpProddate: string }) => r.mpOpProddate === first.report.previousWorkingDate));
  const olga = await api.tokenFor("olga");
  const screens = await api.graphql(`{
    allGrundnerStocks { totalCount }
    allNestingJobs(filter: { status: { equalTo: "PENDING" } }) { totalCount }
    allApprovalJobs { nodes { name } }
    allExecutionTokens(filter: { status: { equalTo: "active" } }) { totalCount }
  }`, {}, olga);
  t.is(screens.errors, undefined, JSON.stringify(screens.errors));
  t.is(screens.data!.allGrundnerStocks.totalCount, 3);
  t.is(screens.data!.allNestingJobs.totalCount, 4);
  t.deepEqual(screens.data!.allApprovalJobs.nodes.map((n: { name: string }) => n.name).sort(), ["Kitchen K-1042", "Wardrobe W-77"]);
  t.is(screens.data!.allExecutionTokens.totalCount, 1);
});

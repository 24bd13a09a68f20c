// /metrics in the Prometheus text format, every name prefixed shopfloor_,
// figures read from the real tables; METRICS_TOKEN; one log line per request
// whose id is the "error id" a masked error reports.
import { Writable } from "node:stream";
import test from "ava";
import { pino } from "pino";
import type { ApiOptions } from "../../src/api/server.ts";
import { createMetrics } from "../../src/metrics.ts";
import { startTestApi, type TestApi } from "../helpers/api.ts";
import { createTestDatabase, type TestDb } from "../helpers/db.ts";

const TOKEN = "metrics-token-0123456789abcdef";
let db: TestDb;
let api: TestApi;
const lines: Record<string, any>[] = [];

test.before(async () => {
  db = await createTestDatabase();
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split("\n")) if (l.trim()) lines.push(JSON.parse(l));
      done();
    },
  });
  // A function that fails the way a bug would (no SF code, no constraint): its
  // error is masked and reported with an error id. Made before the API builds its schema.
  await db.query(`create function ops.metrics_test_failure() returns integer language plpgsql volatile as $$
    begin raise exception 'an internal failure for the test'; end $$;
    grant execute on function ops.metrics_test_failure() to shopfloor_admin`);
  const log = pino({ level: "info" }, sink);
  api = await startProductionApi({ log, metrics: createMetrics({ pool: db.pool, log }), metricsToken: TOKEN });
});

/** The real API as production runs it, on the test database. */
function startProductionApi(opts: Pick<ApiOptions, "log" | "metrics" | "metricsToken">) {
  return startTestApi(db, { ...opts, production: true, graphiql: false });
}
test.after.always(async () => {
  await api?.stop();
  await db?.drop();
});

async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(`${api.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  if (res.status !== 200) throw new Error(`metrics answered ${res.status}`);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const cut = line.lastIndexOf(" ");
    samples.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return samples;
}

test("/metrics needs METRICS_TOKEN when it is set", async (t) => {
  t.is((await fetch(`${api.url}/metrics`)).status, 401);
  t.is((await fetch(`${api.url}/metrics`, { headers: { authorization: "Bearer wrong" } })).status, 401);
  t.is((await fetch(`${api.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
});

test("every sample is prefixed shopfloor_ and the database figures are what the tables hold", async (t) => {
  await db.query(`select ops.post_message('metrics-test', s, 'a ' || s) from unnest(array['warning', 'warning', 'critical', 'info']) s`);
  await db.query(`update ops.messages set acknowledged_at = now(), acknowledged_by = 'test' where source = 'metrics-test' and severity = 'info'`);
  await db.query(`select graphile_worker.add_job('metrics_test_task', '{}', run_at => now() - interval '90 seconds')`);
  await db.query(`insert into nesting.grundner_requests (kind, file_name, lines, created_at) values ('stock', 'stock_request', '{}', now() - interval '10 minutes')`);
  await db.query(`insert into nesting.scan_state (scanner, last_complete_at) values ('metrics test share', now() - interval '1 minute')`);
  await db.query(`insert into tracking."print OS" (name, status, marker) select 'imp-' || i, 'PRINTED', 900000 + i from generate_series(1, 3) i`);

  const m = await scrape();
  const names = [...m.keys()].map((k) => k.replace(/\{.*$/, ""));
  t.true(names.length > 20);
  t.deepEqual(names.filter((n) => !n.startsWith("shopfloor_")), []);
  t.is(m.get('shopfloor_messages_unacknowledged{severity="warning"}'), 2);
  t.is(m.get('shopfloor_messages_unacknowledged{severity="critical"}'), 1);
  t.is(m.get('shopfloor_messages_unacknowledged{severity="info"}'), 0);
  t.is(m.get('shopfloor_jobs_waiting{task="metrics_test_task"}'), 1);
  t.true(m.get('shopfloor_jobs_oldest_waiting_seconds{task="metrics_test_task"}')! >= 89);
  t.is(m.get('shopfloor_grundner_requests{state="queued"}'), 1);
  t.true(m.get('shopfloor_grundner_request_oldest_seconds{state="queued"}')! >= 599);
  const pass = m.get('shopfloor_share_last_pass_timestamp_seconds{scanner="metrics test share"}')!;
  t.true(Math.abs(Date.now() / 1000 - 60 - pass) < 30, `last pass ${pass}`);
  t.is(m.get('shopfloor_share_scan_failing{scanner="metrics test share"}'), 0);
  t.true(m.get('shopfloor_tracking_records_waiting{stream="print_os"}')! >= 3);
  t.true(m.has('shopfloor_tracking_records_waiting{stream="scanned_codes"}'));
  t.true(m.has("shopfloor_process_cpu_seconds_total"), "process metrics, prefixed too");
});

test("GraphQL operations and HTTP requests are counted by name, route and status", async (t) => {
  const res = await fetch(`${api.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: "query MetricsProbe { __typename }" }),
  });
  t.is(res.status, 200);
  await fetch(`${api.url}/no/such/route/${"x".repeat(50)}`);
  const m = await scrape();
  t.is(m.get('shopfloor_graphql_operations_total{type="query",name="MetricsProbe",outcome="ok"}'), 1);
  t.true(m.get('shopfloor_http_requests_total{method="POST",route="/graphql",status="200"}')! >= 1);
  t.true(m.get('shopfloor_graphql_operation_duration_seconds_count{type="query",outcome="ok"}')! >= 1);
  // Unknown paths share one label: a scanner of URLs cannot blow up the series.
  t.false([...m.keys()].some((k) => k.includes("no/such/route")));
});

test("one log line per request, and a masked error's id is that request's id", async (t) => {
  const admin = api.tokenForRole("shopfloor_admin");
  const res = await fetch(`${api.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${admin}` },
    body: JSON.stringify({ query: `mutation { metricsTestFailure(input: {}) { result } }` }),
  });
  const body = await res.json();
  const errorId = body.errors?.[0]?.extensions?.errorId as string;
  t.regex(errorId, /^[0-9a-f]{12}$/, JSON.stringify(body));
  t.is(res.headers.get("x-request-id"), errorId);
  // The request line is written when the answer is complete.
  const deadline = Date.now() + 10_000;
  while (!lines.some((l) => l.msg === "request" && l.reqId === errorId) && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  const request = lines.find((l) => l.msg === "request" && l.reqId === errorId);
  t.like(request, { method: "POST", route: "/graphql", status: 200 });
  t.is(typeof request?.ms, "number");
  t.truthy(lines.find((l) => l.msg === "masked GraphQL error" && l.errorId === errorId), "the error's log line has the same id");
});

test("in production without METRICS_TOKEN, /metrics is off and says how to turn it on", async (t) => {
  const other = await startProductionApi({ log: pino({ level: "silent" }) });
  t.teardown(() => other.stop());
  const res = await fetch(`${other.url}/metrics`);
  t.is(res.status, 403);
  t.regex((await res.json()).error, /METRICS_TOKEN/);
});

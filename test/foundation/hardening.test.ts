// Issue 13, the adversarial trial's probes: hostile queries over HTTP and
// websockets, password guessing, sessions of disabled users, the role switch,
// hostile REST bodies, and one error contract.
import { randomBytes } from "node:crypto";
import http from "node:http";
import { readFileSync } from "node:fs";
import test from "ava";
import jwt from "jsonwebtoken";
import pg from "pg";
import WebSocket from "ws";
import { getIntrospectionQuery } from "postgraphile/graphql";
import { SF_CODES } from "../../src/api/errors.ts";
import { signToken } from "../../src/auth/jwt.ts";
import { loginUrl } from "../../src/db/api-roles.ts";
import { sqlLayerFiles } from "../../src/db/sql-layer.ts";
import { startTestApi, TEST_API_DB_PASSWORD, TEST_JWT_SECRET, type TestApi } from "../helpers/api.ts";
import { rejectsWith } from "../helpers/assert.ts";
import { createTestDatabase, eventually, listening, type TestDb } from "../helpers/db.ts";

let db: TestDb;
let api: TestApi;
let prod: TestApi;
test.before(async () => {
  db = await createTestDatabase();
  api = await startTestApi(db);
  prod = await startTestApi(db, { limits: { introspection: false }, graphiql: false });
  await db.query(`select ops.create_user('gus', 'operator', 'gus password 12')`);
  await db.query(`select ops.create_user('dora', 'operator', 'dora password 12')`);
  await db.query(`select ops.create_user('subby', 'operator', 'subby password 1')`);
});
test.after.always(async () => {
  await prod?.stop();
  await api?.stop();
  await db?.drop();
});

const LOGIN = `mutation ($u: String!, $p: String!) { login(input: { username: $u, password: $p }) { result } }`;
const aliasBomb = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: __schema { types { name fields { name } } }`).join(" ")} }`;

/** A graphql-transport-ws client: messages in order, and the close event. */
function wsClient(url: string, token?: string) {
  const ws = new WebSocket(`${url.replace("http", "ws")}/graphql`, "graphql-transport-ws");
  const messages: any[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => resolve({ code, reason: String(reason) })),
  );
  ws.on("message", (raw) => messages.push(JSON.parse(String(raw))));
  ws.on("error", () => {});
  const opened = new Promise<void>((resolve) => ws.once("open", () => resolve()));
  const next = (type: string) => eventually(async () => messages.find((m) => m.type === type), 10_000);
  const init = async () => {
    await opened;
    ws.send(JSON.stringify({ type: "connection_init", payload: token ? { authorization: `Bearer ${token}` } : {} }));
    await next("connection_ack");
  };
  return { ws, messages, closed, opened, next, init };
}

// 1. No query can take the process down.

test("a 677 KB alias bomb over HTTP is refused unread with SF413; the API keeps answering", async (t) => {
  const body = JSON.stringify({ query: aliasBomb(13_000) });
  t.true(body.length > 600_000);
  const started = performance.now();
  const res = await fetch(`${api.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body });
  t.log(`${body.length} bytes refused in ${(performance.now() - started).toFixed(0)} ms`);
  t.is(res.status, 413);
  const json = await res.json();
  t.is(json.errors[0].extensions.code, "SF413");
  t.is(json.errors[0].extensions.limit, "GRAPHQL_MAX_REQUEST_BYTES");
  t.regex(json.errors[0].message, /at most 100000/);
  // Still up: /healthz answers (503 would only mean a slow database on a loaded machine).
  t.is(typeof (await (await fetch(`${api.url}/healthz`)).json()).ok, "boolean");
});

test("an alias bomb under the size limit is refused before execution for its field count", async (t) => {
  const query = aliasBomb(1500);
  t.true(query.length < 100_000);
  for (const token of [undefined, api.tokenForRole("shopfloor_admin")]) {
    const started = performance.now();
    const res = await api.graphql(query, {}, token);
    t.log(`${query.length} bytes, 1500 aliases: refused in ${(performance.now() - started).toFixed(0)} ms`);
    t.is(res.data, undefined, "nothing executed");
    t.is(res.errors?.length, 1);
    t.is(res.errors?.[0].extensions?.code, "SF413");
    t.is(res.errors?.[0].extensions?.limit, "GRAPHQL_MAX_FIELDS");
  }
});

test("a query nested deeper than the limit is refused; the standard introspection query passes", async (t) => {
  const deep = `{ __schema { types { fields { type ${"{ ofType ".repeat(14)}{ name }${" }".repeat(14)} } } } }`;
  const res = await api.graphql(deep);
  t.is(res.errors?.[0].extensions?.code, "SF413");
  t.is(res.errors?.[0].extensions?.limit, "GRAPHQL_MAX_DEPTH");
  const full = await api.graphql(getIntrospectionQuery());
  t.is(full.errors, undefined);
  t.truthy(full.data?.__schema);
});

test("fragments spread in a loop of doubling are counted as expanded and refused", async (t) => {
  const frags = Array.from({ length: 30 }, (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`).join("\n");
  const res = await api.graphql(`{ ...F0 }\n${frags}\nfragment F30 on Query { __typename }`);
  t.is(res.errors?.[0].extensions?.code, "SF413");
});

test("first/last above the page maximum are refused, as literals and as variables", async (t) => {
  const token = api.tokenForRole("shopfloor_operator");
  const literal = await api.graphql(`{ allMessages(first: 5000) { nodes { rowId } } }`, {}, token);
  t.is(literal.errors?.[0].extensions?.code, "SF413");
  t.is(literal.errors?.[0].extensions?.limit, "GRAPHQL_MAX_PAGE_SIZE");
  t.regex(literal.errors![0].message, /^first: at most 1000 rows per page/);
  const variable = await api.graphql(`query ($n: Int) { allMessages(last: $n) { nodes { rowId } } }`, { n: 1001 }, token);
  t.regex(variable.errors?.[0].message ?? "", /^last: at most 1000/);
  const ok = await api.graphql(`query ($n: Int) { allMessages(first: $n) { nodes { rowId } } }`, { n: 1000 }, token);
  t.is(ok.errors, undefined);
});

test("over a websocket: an oversized message closes the socket (1009), an alias bomb gets SF413, the server lives", async (t) => {
  const big = wsClient(api.url, api.tokenForRole("shopfloor_operator"));
  await big.init();
  big.ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: aliasBomb(13_000) } }));
  t.is((await big.closed).code, 1009);

  const bomb = wsClient(api.url);
  await bomb.init();
  bomb.ws.send(JSON.stringify({ id: "2", type: "subscribe", payload: { query: aliasBomb(1500) } }));
  const error = await bomb.next("error");
  t.is(error.payload[0].extensions.code, "SF413");
  bomb.ws.close();
  t.is((await api.graphql(`{ __typename }`)).data?.__typename, "Query");
});

test("production defaults: introspection and Ruru are off", async (t) => {
  const res = await prod.graphql(`{ __schema { queryType { name } } }`);
  t.is(res.errors?.[0].extensions?.code, "SF403");
  t.regex(res.errors![0].message, /Introspection is turned off/);
  t.is((await prod.graphql(`{ __typename }`)).data?.__typename, "Query");
  const ruru = await fetch(`${prod.url}/graphiql`, { headers: { accept: "text/html" } });
  t.is(ruru.status, 404);
  t.regex(ruru.headers.get("content-type") ?? "", /json/);
});

// 2. Logins that resist guessing.

test.serial("20 wrong passwords: 5 refused as wrong, 15 wait (SF429, saying when); the right one waits too; all audited", async (t) => {
  const codes: string[] = [];
  for (let i = 0; i < 20; i++) {
    const res = await api.graphql(LOGIN, { u: "gus", p: `wrong guess ${i}` });
    t.is(res.data?.login ?? null, null);
    codes.push(String(res.errors?.[0].extensions?.code));
  }
  t.deepEqual(codes, [...Array(5).fill("SF401"), ...Array(15).fill("SF429")]);
  const right = await api.graphql(LOGIN, { u: "gus", p: "gus password 12" });
  t.is(right.errors?.[0].extensions?.code, "SF429");
  t.regex(right.errors![0].message, /try again in \d+ seconds \(after \d{4}-\d\d-\d\dT/);
  t.truthy(right.errors![0].extensions?.retryAfter);
  const audit = await db.query(
    `select action, count(*)::int as n from ops.audit_log where entity_id = 'gus' and action like 'login%' group by 1 order by 1`,
  );
  t.deepEqual(audit.rows, [
    { action: "login_failed", n: 5 },
    { action: "login_refused", n: 16 },
  ]);
  // Not locked out for good: after the cooldown the right password works.
  await db.query(`select ops.set_setting('auth.login_cooldown', '"1 second"')`);
  try {
    const token = await eventually(async () => (await api.graphql(LOGIN, { u: "gus", p: "gus password 12" })).data?.login?.result, 10_000, 300);
    t.truthy(token);
  } finally {
    await db.query(`select ops.set_setting('auth.login_cooldown', '"5 minutes"')`);
  }
});

test.serial("failures from one address across usernames are throttled too", async (t) => {
  const c = await db.pool.connect();
  try {
    const verdicts: string[] = [];
    for (let i = 0; i < 32; i++) {
      await c.query("select set_config('shopfloor.client_address', '10.9.9.9', false)");
      const { rows } = await c.query(`select ops.login($1, 'not the password') as r`, [`nobody${i}`]);
      verdicts.push(rows[0].r.code);
    }
    t.deepEqual(verdicts, [...Array(30).fill("SF401"), "SF429", "SF429"]);
    const other = await c.query(`select set_config('shopfloor.client_address', '10.9.9.10', false), ops.login('nobody0', 'x') as r`);
    t.is(other.rows[0].r.code, "SF401", "another address is not affected");
  } finally {
    c.release();
  }
});

test.serial("an unknown username costs a bcrypt like a known one", async (t) => {
  const time = async (u: string) => {
    const started = performance.now();
    for (let i = 0; i < 3; i++) await db.query(`select ops.login($1, 'wrong password here')`, [u]);
    return performance.now() - started;
  };
  const known = await time("dora");
  const unknown = await time("no-such-user");
  t.log(`3 failed logins: known user ${known.toFixed(0)} ms, unknown user ${unknown.toFixed(0)} ms`);
  // Without the dummy hash the unknown user would answer ~100 times faster.
  t.true(unknown > known / 4, `${unknown} vs ${known}`);
  await db.query(`delete from ops_private.login_failures`);
});

test("passwords: 12+ characters, not only blanks, at most 72 bytes; hashed at bcrypt cost 10", async (t) => {
  for (const [password, why] of [
    ["short pass1", /at least 12 characters/],
    [" ".repeat(20), /only blanks/],
    ["\t\n  \t\n  \t\n  ", /only blanks/],
    ["ü".repeat(37), /at most 72 bytes are allowed \(got 74\)/],
  ] as const) {
    await rejectsWith(t, db.query(`select ops.create_user('pw-test', 'operator', $1)`, [password]), "SF422", why);
  }
  await db.query(`select ops.create_user('pw-ok', 'operator', $1)`, ["ü".repeat(36)]);
  const { rows } = await db.query(`select split_part(password_hash, '$', 3) as cost from ops_private.users where username = 'pw-ok'`);
  t.is(rows[0].cost, "10");
  await rejectsWith(t, db.query(`select ops.set_user_password('pw-ok', 'too short')`), "SF422");
});

// 3. Sessions end when users do.

test("a disabled user's token is refused on the next request; re-enabled, it works again", async (t) => {
  const token = (await api.graphql(LOGIN, { u: "dora", p: "dora password 12" })).data!.login.result as string;
  t.is((await api.graphql(`{ unreadMessageCount }`, {}, token)).errors, undefined);
  await db.query(`select ops.disable_user('dora')`);
  const refused = await api.graphql(`{ unreadMessageCount }`, {}, token);
  t.is(refused.status, 401);
  t.is(refused.errors?.[0].extensions?.code, "SF401");
  t.regex(refused.errors![0].message, /disabled, removed or has another role/);
  const rest = await fetch(`${api.url}/api/job-status/J1`, { headers: { authorization: `Bearer ${token}` } });
  t.is(rest.status, 401);
  await db.query(`update ops_private.users set disabled_at = null where username = 'dora'`);
  t.is((await api.graphql(`{ unreadMessageCount }`, {}, token)).errors, undefined);
});

test("a live subscription ends (4401) when its user is disabled", async (t) => {
  const token = await api.tokenFor("subby");
  const client = wsClient(api.url, token);
  await client.init();
  client.ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: `subscription { messageAdded { count } }` } }));
  await listening(db, "ops_message_added"); // the subscription is live
  await db.query(`select ops.disable_user('subby')`);
  const closed = await client.closed;
  t.is(closed.code, 4401);
  t.regex(closed.reason, /disabled/);
});

test("a live subscription ends (4401) when its token expires; tokens without an expiry are refused", async (t) => {
  const { rows } = await db.query(`select id from ops_private.users where username = 'gus'`);
  const exp = Math.floor(Date.now() / 1000) + 8; // room for a slow machine to connect first
  const token = signToken({ role: "shopfloor_operator", user_id: rows[0].id, username: "gus", exp }, TEST_JWT_SECRET, "1h");
  const client = wsClient(api.url, token);
  await client.init();
  client.ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: `subscription { messageAdded { count } }` } }));
  const closed = await client.closed;
  t.is(closed.code, 4401);
  t.regex(closed.reason, /expired/);
  t.true(Date.now() >= exp * 1000);

  const noExp = jwt.sign({ role: "shopfloor_operator", user_id: rows[0].id, username: "gus" }, TEST_JWT_SECRET, {
    audience: "shopfloor",
    issuer: "shopfloor",
  });
  const res = await api.graphql(`{ unreadMessageCount }`, {}, noExp);
  t.is(res.status, 401);
  t.regex(res.errors![0].message, /no expiry/);
});

// 4. Least privilege.

test("the API's connections log in as roles that are neither superuser nor owner, and an operator cannot make itself admin", async (t) => {
  const roles = await db.query(
    `select rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb from pg_roles where rolname like 'shopfloor\\_api\\_%' order by 1`,
  );
  t.is(roles.rows.length, 6);
  for (const r of roles.rows) t.like(r, { rolsuper: false, rolinherit: false, rolcreaterole: false, rolcreatedb: false });
  const owned = await db.query(
    `select count(*)::int as n from pg_class c join pg_roles r on r.oid = c.relowner where r.rolname like 'shopfloor\\_api\\_%'`,
  );
  t.is(owned.rows[0].n, 0);
  const who = await api.rolePools.forRole("shopfloor_operator").query("select session_user::text as s");
  t.is(who.rows[0].s, "shopfloor_api_operator");

  const c = new pg.Client({ connectionString: loginUrl(db.url, "shopfloor_operator", TEST_API_DB_PASSWORD) });
  await c.connect();
  try {
    await c.query("begin");
    await c.query("select set_config('role', 'shopfloor_operator', true)");
    for (const target of ["shopfloor_admin", "shopfloor_supervisor", "postgres"]) {
      await c.query("savepoint s");
      await rejectsWith(t, c.query("select set_config('role', $1, true)", [target]), "42501");
      await c.query("rollback to savepoint s");
    }
    await c.query("reset role");
    t.is((await c.query("select current_user::text as u")).rows[0].u, "shopfloor_api_operator");
    // without its role the login has no privileges
    await rejectsWith(t, c.query("select 1 from ops.messages"), "42501");
    await c.query("rollback");
  } finally {
    await c.end();
  }
});

// 5. One error contract.

test("every SF code raised in sql/ is in the error table, and docs/ops.md's table matches the code's", (t) => {
  const sql = sqlLayerFiles()
    .map((f) => readFileSync(f, "utf8"))
    .join("\n");
  const raised = new Set([...sql.matchAll(/errcode\s*=\s*'(SF[0-9A-Z]{3})'/g)].map((m) => m[1]));
  for (const code of raised) t.truthy(SF_CODES[code], `${code} is raised but not in SF_CODES`);
  const doc = readFileSync(new URL("../../docs/ops.md", import.meta.url), "utf8");
  const table = new Map([...doc.matchAll(/^\| `(SF[0-9A-Z]{3})` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]));
  t.deepEqual(
    Object.fromEntries([...table].sort()),
    Object.fromEntries(Object.entries(SF_CODES).map(([k, v]) => [k, v.status]).sort()),
  );
});

test("constraint violations from generated mutations are SF409/SF422 naming the field", async (t) => {
  const admin = api.tokenForRole("shopfloor_admin");
  const create = (name: string, id: string) =>
    api.graphql(`mutation ($n: String!, $o: String!) { createTrackingOperation(input: { trackingOperation: { name: $n, operationId: $o } }) { trackingOperation { name } } }`, { n: name, o: id }, admin);
  t.is((await create("hard_test", "HT-1")).errors, undefined);
  const dup = await create("hard_test_2", "HT-1");
  t.is(dup.errors?.[0].extensions?.code, "SF409");
  t.is(dup.errors?.[0].extensions?.field, "operationId");
  t.regex(dup.errors![0].message, /^operationId: HT-1 is already taken/);
  const bad = await create("Not Valid", "HT-2");
  t.is(bad.errors?.[0].extensions?.code, "SF422");
  t.is(bad.errors?.[0].extensions?.field, "name");
});

test("a value too long for its index is SF422 naming the field, not an unexpected error", async (t) => {
  const planner = api.tokenForRole("shopfloor_planner");
  const long = randomBytes(4000).toString("hex"); // 8,000 characters that do not compress
  const job = await api.graphql(`mutation ($id: String!) { createPrintJob(input: { printJob: { jobId: $id } }) { printJob { jobId } } }`, { id: long }, planner);
  t.is(job.errors?.[0].extensions?.code, "SF422", JSON.stringify(job.errors));
  t.is(job.errors?.[0].extensions?.field, "jobId");
  t.regex(job.errors![0].message, /^jobId: too long/);
  const mapping = await api.graphql(
    `mutation ($f: String!) { createImpositionFile(input: { impositionFile: { impositionId: "IMP-LONG", fileId: $f } }) { impositionFile { fileId } } }`,
    { f: long },
    planner,
  );
  t.is(mapping.errors?.[0].extensions?.code, "SF422", JSON.stringify(mapping.errors));
  const feed = api.tokenForRole("shopfloor_integration", "printer");
  const record = await api.graphql(
    `mutation ($n: String!) { createPrintOsRecord(input: { printOsRecord: { name: $n, status: "PRINTED", marker: "880001" } }) { printOsRecord { id } } }`,
    { n: long },
    feed,
  );
  t.is(record.errors?.[0].extensions?.code, "SF422", JSON.stringify(record.errors));
  t.is(record.errors?.[0].extensions?.field, "name");
  const fn = await api.graphql(
    `mutation ($n: String!) { trackingRecordPrintOs(input: { name: $n, status: "PRINTED", marker: "880002" }) { result { rowId } } }`,
    { n: long },
    feed,
  );
  t.is(fn.errors?.[0].extensions?.code, "SF422", JSON.stringify(fn.errors));
  t.regex(fn.errors![0].message, /at most 500 characters/);
});

// REST: hostile bodies.

function post(path: string, body: string | Buffer, token?: string, agent?: http.Agent) {
  return new Promise<{ status: number; body: any; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    const u = new URL(path, api.url);
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname, method: "POST", agent, headers: {
        "content-type": "application/json", "content-length": Buffer.byteLength(body), ...(token ? { authorization: `Bearer ${token}` } : {}) } },
      (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : null, headers: res.headers }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

test("REST: out-of-range numbers and NUL characters get 400 naming the field", async (t) => {
  const token = api.tokenForRole("shopfloor_integration", "printer");
  const base = { name: "IMP-1", status: "PRINTED", marker: 1 };
  for (const [body, field] of [
    [{ ...base, marker: "9223372036854775808" }, "marker"],
    [{ ...base, copies: 2147483648 }, "copies"],
    [{ ...base, name: "IMP\u0000" }, "name"],
    [{ ...base, name: "I".repeat(501) }, "name"],
    [{ ...base, payload: { note: "a\u0000b" } }, "payload.note"],
  ] as const) {
    const res = await post("/api/print-os", JSON.stringify(body), token);
    t.is(res.status, 400, JSON.stringify(body));
    t.is(res.body.code, "SF422");
    t.true(JSON.stringify(res.body).includes(field), `${field}: ${JSON.stringify(res.body)}`);
  }
});

test("REST: unknown /api routes answer JSON 404; the token is checked before the body is read", async (t) => {
  const missing = await fetch(`${api.url}/api/no-such-thing`);
  t.is(missing.status, 404);
  t.is((await missing.json()).code, "SF404");
  const huge = Buffer.alloc(3 * 1024 * 1024, "x");
  const res = await post("/api/print-os", huge, "not-a-token");
  t.is(res.status, 401);
  t.is(res.body.code, "SF401");
});

test("REST: a refused oversized body is answered cleanly; the next request on the same connection works", async (t) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const token = api.tokenForRole("shopfloor_integration", "printer");
  try {
    const big = await post("/api/print-os", JSON.stringify({ name: "x".repeat(2 * 1024 * 1024) }), token, agent);
    t.is(big.status, 413);
    t.is(big.body.code, "SF413");
    const next = await post("/api/process-print-os", "{}", token, agent);
    t.is(next.status, 200);
  } finally {
    agent.destroy();
  }
});

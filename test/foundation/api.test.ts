// The API end to end over HTTP and websockets: login, roles, error codes,
// masking, Ruru, /healthz and the live messageAdded subscription.
import test from "ava";
import jwt from "jsonwebtoken";
import WebSocket from "ws";
import { TEST_JWT_SECRET, withTestApi, type TestApi } from "../helpers/api.ts";
import { liveMetrics } from "../../src/api/live.ts";
import { eventually, listening, waitBudget, type TestDb } from "../helpers/db.ts";

let db: TestDb;
let api: TestApi;
withTestApi(test, async (made) => {
  ({ db, api } = made);
  await db.query(`select ops.create_user('olga', 'operator', 'correct horse battery')`);
});

const LOGIN = `mutation ($u: String!, $p: String!) { login(input: { username: $u, password: $p }) { result } }`;

test("login returns a signed token naming the user's role", async (t) => {
  const res = await api.graphql(LOGIN, { u: "olga", p: "correct horse battery" });
  t.is(res.errors, undefined);
  const token = res.data!.login.result as string;
  const claims = jwt.verify(token, TEST_JWT_SECRET, { audience: "shopfloor", issuer: "shopfloor" }) as jwt.JwtPayload;
  t.is(claims.role, "shopfloor_operator");
  t.is(claims.username, "olga");
  t.true(claims.exp! > Date.now() / 1000 + 3600, "valid for the configured lifetime (12 hours)");

  const me = await api.graphql(`{ unreadMessageCount }`, {}, token);
  t.is(me.errors, undefined);
  t.is(typeof me.data!.unreadMessageCount, "number");
});

test("a wrong password is refused with SF401 and no token", async (t) => {
  for (const [u, p] of [["olga", "wrong password"], ["nobody", "whatever1"]]) {
    const res = await api.graphql(LOGIN, { u, p });
    t.is(res.data?.login ?? null, null);
    t.is(res.errors?.[0].message, "Invalid username or password");
    t.is(res.errors?.[0].extensions?.code, "SF401");
  }
});

test("anonymous can log in and nothing else", async (t) => {
  const res = await api.graphql(`{ allMessages { nodes { rowId } } }`);
  t.is(res.errors?.[0].extensions?.code, "SF403");
  t.regex(res.errors![0].message, /Permission denied/);
  t.notRegex(res.errors![0].message, /ops\.messages|relation/, "no SQL text reaches the client");
});

test("a bad, expired or foreign token gets 401 with SF401", async (t) => {
  const expired = jwt.sign({ role: "shopfloor_admin", username: "x", exp: Math.floor(Date.now() / 1000) - 10 }, TEST_JWT_SECRET, {
    audience: "shopfloor",
    issuer: "shopfloor",
  });
  const forged = jwt.sign({ role: "shopfloor_admin", username: "x" }, "another-secret-another-secret-another-secret", {
    audience: "shopfloor",
    issuer: "shopfloor",
  });
  const superuser = api.tokenForRole("postgres");
  for (const [token, why] of [
    ["not-a-jwt", /not valid/],
    [expired, /expired/],
    [forged, /not valid/],
    [superuser, /no Shopfloor role/],
  ] as const) {
    const res = await api.graphql(`{ unreadMessageCount }`, {}, token);
    t.is(res.status, 401);
    t.is(res.errors?.[0].extensions?.code, "SF401");
    t.regex(JSON.stringify(res), why);
  }
});

test("roles: an operator may read messages but not change settings; an admin may", async (t) => {
  const operator = await api.tokenFor("olga");
  const admin = await api.tokenFor("admin");
  const SET = `mutation { setSetting(input: { key: "test.api", value: "x" }) { result { key value updatedBy } } }`;

  const refused = await api.graphql(SET, {}, operator);
  t.is(refused.errors?.[0].extensions?.code, "SF403");

  const done = await api.graphql(SET, {}, admin);
  t.is(done.errors, undefined);
  t.deepEqual(done.data!.setSetting.result, { key: "test.api", value: "x", updatedBy: "admin" });

  const read = await api.graphql(`{ allMessages(first: 1) { nodes { rowId } } }`, {}, operator);
  t.is(read.errors, undefined);
});

test("our SF errors pass through with code and message; a constraint violation names the field", async (t) => {
  const operator = await api.tokenFor("olga");
  const missing = await api.graphql(`mutation { acknowledgeMessage(input: { messageId: "-5" }) { result { rowId } } }`, {}, operator);
  t.is(missing.errors?.[0].message, "Message -5 does not exist");
  t.is(missing.errors?.[0].extensions?.code, "SF404");

  // A key that breaks the settings table's CHECK constraint: SF422 naming the field, no SQL text.
  const admin = await api.tokenFor("admin");
  const refused = await api.graphql(`mutation { setSetting(input: { key: "Not A Key", value: "1" }) { result { key } } }`, {}, admin);
  const err = refused.errors?.[0];
  t.is(err!.extensions?.code, "SF422");
  t.is(err!.extensions?.field, "key");
  t.regex(err!.message, /^key: /);
  t.notRegex(JSON.stringify(refused), /unexpected error|violates check constraint/);
});

test("/healthz tells anonymous callers ok or not; a token shows the details as JSON", async (t) => {
  const anonymous = await fetch(`${api.url}/healthz`);
  t.is(anonymous.status, 200);
  t.deepEqual(await anonymous.json(), { ok: true });
  const res = await fetch(`${api.url}/healthz`, { headers: { authorization: `Bearer ${await api.tokenFor("olga")}` } });
  t.is(res.status, 200);
  const body = await res.json();
  t.true(body.ok);
  t.true(body.database.ok);
  t.regex(body.database.version, /^\d+/);
  t.is(body.worker.status, "not run by this process");
});

test("/graphiql serves Ruru", async (t) => {
  const res = await fetch(`${api.url}/graphiql`, { headers: { accept: "text/html" } });
  t.is(res.status, 200);
  t.regex(await res.text(), /ruru/i);
});

function subscribe(query: string, token?: string) {
  const ws = new WebSocket(`${api.url.replace("http", "ws")}/graphql`, "graphql-transport-ws");
  const messages: any[] = [];
  const waiters: (() => void)[] = [];
  ws.on("message", (raw) => {
    messages.push(JSON.parse(String(raw)));
    waiters.splice(0).forEach((w) => w());
  });
  const next = async (type: string, timeoutMs = 5000) => {
    const deadline = Date.now() + waitBudget(timeoutMs);
    for (;;) {
      const i = messages.findIndex((m) => m.type === type);
      if (i >= 0) return messages.splice(i, 1)[0];
      if (Date.now() > deadline) throw new Error(`no ${type} within ${timeoutMs} ms; got ${JSON.stringify(messages)}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 100);
      });
    }
  };
  const ready = new Promise<void>((resolve, reject) => {
    ws.once("open", () => {
      ws.send(JSON.stringify({ type: "connection_init", payload: token ? { authorization: `Bearer ${token}` } : {} }));
      resolve();
    });
    ws.once("error", reject);
  }).then(async () => {
    await next("connection_ack");
    ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query } }));
  });
  return { ws, ready, next };
}

test("messageAdded delivers a message inserted by plain SQL, live", async (t) => {
  const token = await api.tokenFor("olga");
  const sub = subscribe(`subscription { messageAdded { count messages { rowId source severity title } } }`, token);
  await sub.ready;
  await eventually(async () => liveMetrics().subscriptions >= 1, 10_000); // the server holds it
  await listening(db, "ops_message_added"); // and its LISTEN reached PostgreSQL
  const started = Date.now();
  const { rows } = await db.query<{ id: string }>(
    `select id from ops.post_message('stage-sanity', 'warning', 'Sheet9.nc left Ready-to-Run; released')`,
  );
  const event = await sub.next("next");
  const ms = Date.now() - started;
  sub.ws.close();
  t.deepEqual(event.payload.data.messageAdded, {
    count: 1,
    messages: [{ rowId: rows[0].id, source: "stage-sanity", severity: "warning", title: "Sheet9.nc left Ready-to-Run; released" }],
  });
  t.log(`delivered in ${ms} ms`);
});

test("messageAdded refuses an anonymous subscriber", async (t) => {
  const sub = subscribe(`subscription { messageAdded { count } }`);
  await sub.ready;
  const err = await Promise.race([sub.next("error"), sub.next("next")]);
  sub.ws.close();
  t.regex(JSON.stringify(err.payload), /Log in to receive live updates/);
});

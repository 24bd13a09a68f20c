// Contracts for client code: the GraphQL SDL in docs/schema.graphql equals the
// live schema; mutations follow the one naming rule; the OpenAPI document of
// the REST routes is served and says what the routes really validate.
import test from "ava";
import { readFileSync } from "node:fs";
import { buildSchema, isObjectType } from "postgraphile/graphql";
import { exportSchemaSdl, SCHEMA_SDL_PATH } from "../../src/api/schema-sdl.ts";
import { routes } from "../../src/api/routes.ts";
import { EXPOSED_SCHEMAS } from "../../src/api/preset.ts";
import { withTestApi, type TestApi } from "../helpers/api.ts";
import { testLog, type TestDb } from "../helpers/db.ts";

let db: TestDb;
let api: TestApi;
let liveSdl: string;
withTestApi(test, async (made) => {
  ({ db, api } = made);
  liveSdl = await exportSchemaSdl(db.pool, testLog);
});

test("docs/schema.graphql is the live GraphQL schema", (t) => {
  const committed = readFileSync(SCHEMA_SDL_PATH, "utf8");
  if (committed !== liveSdl) {
    const a = committed.split("\n");
    const b = liveSdl.split("\n");
    let i = 0;
    while (i < a.length && a[i] === b[i]) i++;
    t.fail(
      `docs/schema.graphql differs from the live schema (first difference at line ${i + 1}: ` +
        `file ${JSON.stringify(a[i] ?? "<end>")}, live ${JSON.stringify(b[i] ?? "<end>")}). ` +
        `The API changed: run \`npm run schema:export\` and commit docs/schema.graphql with the change.`,
    );
    return;
  }
  t.pass();
});

test("every mutation follows the naming rule: module prefix, or ops, or create/update/delete of a type; old names are deprecated", async (t) => {
  const schema = buildSchema(liveSdl);
  const mutation = schema.getMutationType()!;
  const { rows } = await db.query<{ proname: string }>(`select distinct p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'ops'`);
  const camel = (s: string) => s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
  const opsNames = new Set(rows.map((r) => camel(r.proname)));
  const modules = EXPOSED_SCHEMAS.filter((s) => s !== EXPOSED_SCHEMAS[0]);
  const typeNames = new Set(Object.values(schema.getTypeMap()).filter(isObjectType).map((ty) => ty.name));
  const offenders: string[] = [];
  for (const field of Object.values(mutation.getFields())) {
    if (field.deprecationReason) continue;
    const crud = /^(create|update|delete)([A-Z]\w*?)(By[A-Z]\w*)?$/.exec(field.name);
    if (crud && typeNames.has(crud[2])) continue;
    if (modules.some((m) => field.name.startsWith(m) && /^[A-Z]/.test(field.name.slice(m.length)))) continue;
    if (opsNames.has(field.name)) continue;
    offenders.push(field.name);
  }
  t.deepEqual(offenders, [], "name mutations <module><Action> (docs/integrators.md, Names); keep an old name only as a deprecated alias");
  // the old names still answer, marked deprecated
  for (const old of ["reserveJob", "approveJob", "handleSinglePieceStart", "planningSupervisorLogin", "lockJobs"]) {
    t.truthy(mutation.getFields()[old]?.deprecationReason, old);
  }
  const loginPayload = schema.getType("LoginPayload");
  t.true(isObjectType(loginPayload) && !!loginPayload.getFields().token && !!loginPayload.getFields().result.deprecationReason);
});

test("login returns the token under token (result stays, deprecated)", async (t) => {
  await db.query(`select ops.create_user('contract', 'operator', 'a long password 123', 'C')`);
  const r = await api.graphql(`mutation { login(input: { username: "contract", password: "a long password 123" }) { token result } }`);
  t.is(r.errors, undefined, JSON.stringify(r.errors));
  t.regex(r.data!.login.token, /^ey[\w-]+\.[\w-]+\.[\w-]+$/);
  t.is(r.data!.login.result, r.data!.login.token);
});

test("GET /api/openapi.json describes every REST route, and what it marks required is what the route refuses without", async (t) => {
  const res = await fetch(`${api.url}/api/openapi.json`);
  t.is(res.status, 200);
  const doc = (await res.json()) as any;
  t.is(doc.openapi, "3.1.0");
  for (const route of routes) {
    const path = route.path.replace(/:(\w+)/g, "{$1}");
    const op = doc.paths[path]?.[route.method.toLowerCase()];
    t.truthy(op, `${route.method} ${route.path} is in the document`);
    t.truthy(op?.responses && Object.keys(op.responses).length > 0);
  }
  const printOs = doc.paths["/api/print-os"].post;
  const schema = printOs.requestBody.content["application/json"].schema;
  t.deepEqual([...schema.required].sort(), ["marker", "name", "status"]);
  t.deepEqual(printOs.security, [{ bearer: [] }]);
  t.truthy(doc.components.schemas.Error.properties.code);

  const token = api.tokenForRole("shopfloor_integration", "printer");
  const full = { name: "IMP-1", status: "PRINTED", marker: 1 };
  for (const field of schema.required as string[]) {
    const body: Record<string, unknown> = { ...full };
    delete body[field];
    const r = await fetch(`${api.url}/api/print-os`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    t.is(r.status, 400, field);
    const err = (await r.json()) as any;
    t.is(err.code, "SF422");
    t.truthy(err.fieldErrors?.[field], `the refusal names ${field}`);
  }
  // a property the document types as integer-or-digits is refused otherwise
  t.truthy(schema.properties.marker.anyOf);
  const bad = await fetch(`${api.url}/api/print-os`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ ...full, marker: "12a" }),
  });
  t.is(bad.status, 400);
});

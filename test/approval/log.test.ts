// The server logs each blocked approval with its shortages, at info level, in
// every environment: the API's error masking logs every SF refusal.
import test from "ava";
import { pino } from "pino";
import { GraphQLError } from "postgraphile/graphql";
import { makeMaskError } from "../../src/api/errors.ts";
import { startTestApi, type TestApi } from "../helpers/api.ts";
import { createTestDatabase, type TestDb } from "../helpers/db.ts";
import { item, job } from "./helpers.ts";

const DETAIL = "Inventory was reduced or reserved by another operation while you were editing this job, and it can no longer be fulfilled.";

function capture() {
  const lines: Record<string, any>[] = [];
  // level "info", as the server's default (LOG_LEVEL=info) in every environment.
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { lines, log };
}

let db: TestDb;
let api: TestApi;
const server = capture();
test.before(async () => {
  db = await createTestDatabase();
  api = await startTestApi(db, { log: server.log });
});
test.after.always(async () => {
  await api?.stop();
  await db?.drop();
});

test("a blocked approval is logged at info with its shortages parsed; the client gets code, detail, hint, shortages", (t) => {
  const { lines, log } = capture();
  const shortages = [{ item_id: 1, sku: "X", needed: 8, available: 3, shortfall: 5, reason: "Insufficient inventory" }];
  const original = Object.assign(new Error("Inventory changed during job approval"), {
    code: "SF409",
    detail: DETAIL,
    hint: JSON.stringify(shortages),
  });
  const masked = makeMaskError(log)(new GraphQLError(original.message, { originalError: original, path: ["approveJob"] }));
  t.is(masked.message, "Inventory changed during job approval");
  t.deepEqual(masked.extensions, { code: "SF409", detail: original.detail, hint: original.hint, shortages });
  t.is(lines.length, 1);
  t.like(lines[0], { level: 30, msg: "Inventory changed during job approval", code: "SF409", path: "approveJob" });
  t.deepEqual(lines[0].hint, shortages);
  t.deepEqual(lines[0].shortages, shortages);
});

test("other refusals keep their hint as text and get no shortages; unknown errors are masked and logged at error", (t) => {
  const { lines, log } = capture();
  const mask = makeMaskError(log);
  const bom = Object.assign(new Error("The BOM of job 3 cannot change: the job is approved"), { code: "SF409", detail: "Only a draft job's BOM can be edited." });
  t.deepEqual(mask(new GraphQLError(bom.message, { originalError: bom })).extensions, { code: "SF409", detail: bom.detail });
  const other = Object.assign(new Error("relation x does not exist"), { code: "42P01" });
  const masked = mask(new GraphQLError(other.message, { originalError: other }));
  t.is(masked.extensions.code, "INTERNAL");
  t.notRegex(masked.message, /relation/);
  t.deepEqual(lines.map((l) => l.level), [30, 50]);
});

test("through the real server: a blocked approveJob is logged at info with the job's shortages", async (t) => {
  const x = await item(db, 10, "LOG-X");
  const y = await item(db, 10, "LOG-Y");
  const j = await job(db, [[x, 8], [y, 2]]);
  await db.query(`select approval.set_on_hand($1, 3)`, [x]);
  const res = await api.graphql(
    `mutation ($id: BigInt!) { approveJob(input: { jobId: $id, wasFulfillable: true }) { result { status } } }`,
    { id: String(j) },
    api.tokenForRole("shopfloor_supervisor", "sue"),
  );
  const expected = [{ item_id: x, sku: "LOG-X", needed: 8, available: 3, shortfall: 5, reason: "Insufficient inventory" }];
  t.is(res.errors?.[0].extensions?.code, "SF409");
  t.deepEqual(res.errors?.[0].extensions?.shortages, expected);
  const logged = server.lines.filter((l) => l.code === "SF409");
  t.is(logged.length, 1);
  t.like(logged[0], { level: 30, msg: "Inventory changed during job approval", detail: DETAIL, path: "approveJob" });
  t.deepEqual(logged[0].shortages, expected);
});

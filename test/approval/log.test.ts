// The server logs each blocked approval with its shortages, at info level, in
// every environment: the API's error masking logs every SF refusal.
import test from "ava";
import { pino } from "pino";
import { GraphQLError } from "postgraphile/graphql";
import { makeMaskError } from "../../src/api/errors.ts";

test("a blocked approval is logged at info with its shortages parsed; the client gets code, detail, hint", (t) => {
  const lines: Record<string, any>[] = [];
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const shortages = [{ item_id: 1, sku: "X", needed: 8, available: 3, shortfall: 5, reason: "Insufficient inventory" }];
  const original = Object.assign(new Error("Inventory changed during job approval"), {
    code: "SF409",
    detail: "Inventory was reduced or reserved by another operation while you were editing this job, and it can no longer be fulfilled.",
    hint: JSON.stringify(shortages),
  });
  const masked = makeMaskError(log)(new GraphQLError(original.message, { originalError: original, path: ["approveJob"] }));
  t.is(masked.message, "Inventory changed during job approval");
  t.deepEqual(masked.extensions, { code: "SF409", detail: original.detail, hint: original.hint });
  t.is(lines.length, 1);
  t.like(lines[0], { level: 30, msg: "Inventory changed during job approval", code: "SF409", path: "approveJob" });
  t.deepEqual(lines[0].hint, shortages);
});

// The nesting API through GraphQL: an operator reserves and locks, a refusal
// arrives with its code, an anonymous caller is refused.
import test from "ava";
import type { TestApi } from "../helpers/api.ts";
import type { TestDb } from "../helpers/db.ts";
import { addJob, job, waitForRequest, withNestingApi, type Nesting } from "./harness.ts";

let db: TestDb;
let n: Nesting;
let api: TestApi;
withNestingApi(test, (made) => ({ db, n, api } = made));

test.serial("an operator reserves and locks through GraphQL", async (t) => {
  const token = api.tokenForRole("shopfloor_operator", "olga");
  await addJob(db, "Api/One", "102");
  const reserved = await api.graphql(`mutation { reserveJob(input: { key: "Api/One" }) { result { key preReserved grundnerJobNo } } }`, {}, token);
  t.falsy(reserved.errors, JSON.stringify(reserved.errors));
  t.deepEqual(reserved.data!.reserveJob.result, { key: "Api/One", preReserved: true, grundnerJobNo: "One" });

  const lock = await api.graphql(`mutation { lockJobs(input: { keys: ["Api/One"] }) { result } }`, {}, token);
  t.falsy(lock.errors, JSON.stringify(lock.errors));
  const request = await waitForRequest(db, lock.data!.lockJobs.result, ["acknowledged"]);
  t.is(request.requested_by, "olga");
  t.is((await job(db, "Api/One")).locked_by, "olga");

  const list = await api.graphql(`{ allNestingJobs { nodes { key isLocked allocatedAt } } }`, {}, token);
  t.falsy(list.errors, JSON.stringify(list.errors));
  const locked = list.data!.allNestingJobs.nodes.filter((x: { isLocked: boolean }) => x.isLocked);
  t.deepEqual(locked.map((x: { key: string }) => x.key), ["Api/One"]);
  t.truthy(locked[0].allocatedAt);
});

test.serial("a refusal reaches the client with its code; anonymous callers are refused", async (t) => {
  const token = api.tokenForRole("shopfloor_operator");
  const refused = await api.graphql(`mutation { lockJobs(input: { keys: ["Api/One", "Api/Nope"] }) { result } }`, {}, token);
  t.is(refused.errors?.[0].extensions?.code, "SF404");
  t.is(refused.errors?.[0].message, "Unknown job(s): Api/Nope");

  const anonymous = await api.graphql(`mutation { lockJobs(input: { keys: ["Api/One"] }) { result } }`);
  t.is(anonymous.errors?.[0].extensions?.code, "SF403");
  const integration = await api.graphql(`mutation { cancelGrundnerRequest(input: { requestId: "1" }) { result { rowId } } }`, {}, token);
  t.is(integration.errors?.[0].extensions?.code, "SF403", "only admins cancel requests");
});

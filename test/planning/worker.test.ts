// The crontab's planning_cleanup task runs planning.cleanup through graphile-worker.
import test from "ava";
import { readFileSync } from "node:fs";
import type { Worker } from "../../src/worker.ts";
import { createTestDatabase, eventually, type TestDb } from "../helpers/db.ts";
import { startTestWorker } from "../helpers/worker.ts";
import { addDays, createOps, insertPastRows, seedPlant, today } from "./fixture.ts";

let db: TestDb;
let worker: Worker;
test.before(async () => {
  db = await createTestDatabase();
  worker = await startTestWorker(db, { concurrency: 1, pollInterval: 500 });
});
test.after.always(async () => {
  await worker?.stop();
  await db?.drop();
});

test("the planning_cleanup task removes stale plan rows and pauses their operations; the crontab schedules it", async (t) => {
  t.regex(readFileSync(new URL("../../crontab", import.meta.url), "utf8"), /^5 \* \* \* \* planning_cleanup$/m);
  const plant = await seedPlant(db);
  const T = await today(db);
  const P = (await db.query<{ d: string }>(`select planning.previous_working_date($1)::text as d`, [T])).rows[0].d;
  const [stale, waiting] = await createOps(db, plant.items["Housing"], 2);
  await insertPastRows(db, [
    { op: stale, machine: plant.machines[0], shift: plant.dayShift, date: await addDays(db, P, -3), seq: 1 },
    { op: waiting, machine: plant.machines[0], shift: plant.dayShift, date: P, seq: 1 },
  ]);
  await db.query(`select graphile_worker.add_job('planning_cleanup')`);
  await eventually(async () => {
    const r = await db.query(`select op_status from planning.operations where op_id = $1`, [stale]);
    return r.rows[0].op_status === 6;
  }, 10000);
  const left = await db.query(`select mp_op_id::text from planning.mach_planning order by 1`);
  t.deepEqual(left.rows, [{ mp_op_id: waiting }], "the previous working date's row waits for the supervisor");
});

// stage_jobs' checks at the door: no worker runs here, so nothing is copied;
// only what the function accepts or refuses is at work.
import test from "ava";
import { rejectsWith } from "../helpers/assert.ts";
import { withTestDatabase, type TestDb } from "../helpers/db.ts";
import { addJob, job } from "./harness.ts";

let db: TestDb;
withTestDatabase(test, async (made) => {
  db = made;
  await db.query(`select nesting_private.ensure_machine(d) from unnest(array['/srv/ready/saw1', '/srv/ready/saw2']) d`);
  for (const key of ["K1/Sheet1", "K2/Sheet1", "K3/Other", "K4/SHEET1"]) await addJob(db, key, "101");
});

const stageRequests = async (key: string) =>
  (await db.query(`select count(*)::int as n from nesting.job_events where job_key = $1 and event = 'stage_requested'`, [key])).rows[0].n;

test.serial("two jobs with the same NC file name in one call: stage_jobs refuses with SF409 naming both, and stages none of the call", async (t) => {
  await rejectsWith(
    t,
    db.query(`select nesting.stage_jobs(array['K1/Sheet1', 'K2/Sheet1', 'K3/Other'], 'saw1')`),
    "SF409",
    "Cannot stage on saw1: two jobs with the same NC file name would overwrite each other in its Ready-to-Run folder: Sheet1.nc (K1/Sheet1, K2/Sheet1)",
  );
  for (const key of ["K1/Sheet1", "K2/Sheet1", "K3/Other"]) t.is(await stageRequests(key), 0, `${key}: nothing asked of the staging task`);
});

test.serial("a job whose NC file name another job staged on the machine has (in any case) is refused; another machine takes it", async (t) => {
  t.is((await db.query(`select nesting.stage_jobs(array['K1/Sheet1'], 'saw1') as n`)).rows[0].n, 1);
  // What the staging task does once K1's files are copied.
  await db.query(`select nesting_private.mark_staged(array['K1/Sheet1'], (select id from nesting.machines where name = 'saw1'))`);
  t.is((await job(db, "K1/Sheet1")).status, "STAGED");

  for (const other of ["K2/Sheet1", "K4/SHEET1"]) {
    const err = await rejectsWith(t, db.query(`select nesting.stage_jobs(array[$1], 'saw1')`, [other]), "SF409");
    t.true(err.message.endsWith(`(K1/Sheet1, ${other})`), err.message);
  }
  t.is((await db.query(`select nesting.stage_jobs(array['K1/Sheet1', 'K3/Other'], 'saw1') as n`)).rows[0].n, 2, "staging K1 again is no clash with itself");
  t.is((await db.query(`select nesting.stage_jobs(array['K2/Sheet1'], 'saw2') as n`)).rows[0].n, 1, "another machine's folder is another folder");
});

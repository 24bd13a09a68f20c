// lock_jobs and unlock_jobs under two real connections at once, and the saw
// machine setting they write into every order: no worker runs here, so
// requests stay queued and only the functions' own checks are at work.
import test from "ava";
import pg from "pg";
import { rejectsWith } from "../helpers/assert.ts";
import { eventually, withTestDatabase, type TestDb } from "../helpers/db.ts";
import { addJob } from "./harness.ts";

let db: TestDb;
withTestDatabase(test, async (made) => {
  db = made;
  // Plenty of boards: only the open-request check can refuse the second caller.
  await db.query(`insert into nesting.grundner (type_data, material_name, stock, stock_available) values (101, 'Spanplatte', 10, 10)`);
});

async function connect() {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  return c;
}

/**
 * Connection A runs `sql` in an open transaction; B runs it too and waits for
 * A's row locks; A commits. Returns B's outcome (its error, or null).
 */
async function race(sql: string, values: unknown[]) {
  const [a, b] = [await connect(), await connect()];
  try {
    await a.query("begin");
    await a.query(sql, values);
    const bPid = (await b.query("select pg_backend_pid() as pid")).rows[0].pid;
    const second = b.query(sql, values).then(
      () => null,
      (e: Error & { code?: string }) => e,
    );
    await eventually(async () => (await db.query(`select 1 from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'`, [bPid])).rows.length > 0);
    await a.query("commit");
    return await second;
  } finally {
    await Promise.all([a.end(), b.end()]);
  }
}

const requestsFor = async (key: string) =>
  (await db.query(`select count(*)::int as n from nesting.grundner_request_items where job_key = $1`, [key])).rows[0].n;

test.serial("two lock_jobs on one job at once: the second waits, then is refused with SF409", async (t) => {
  await addJob(db, "Race/Lock", "101");
  const err = await race(`select nesting.lock_jobs(array['Race/Lock'])`, []);
  t.is(err?.code, "SF409", err?.message);
  t.is(err?.message, "Cannot lock: Race/Lock (a lock is already under way)");
  t.is(await requestsFor("Race/Lock"), 1, "one order_saw line for the job");
});

test.serial("two unlock_jobs on one job at once: the second waits, then is refused with SF409", async (t) => {
  await addJob(db, "Race/Unlock", "101");
  await db.query(`update nesting.jobs set is_locked = true, allocated_at = now(), locked_type = 101, grundner_machine = 1 where key = 'Race/Unlock'`);
  const err = await race(`select nesting.unlock_jobs(array['Race/Unlock'], 'user', 'test')`, []);
  t.is(err?.code, "SF409", err?.message);
  t.is(err?.message, "Cannot release: Race/Unlock (a release is already under way)");
  t.is(await requestsFor("Race/Unlock"), 1, "one get_production line for the job");
});

test.serial("ops.set_setting refuses a saw machine the gateway cannot take", async (t) => {
  for (const v of ["5", "0", "1.5", '"2"', "null"]) {
    await rejectsWith(t, db.query(`select ops.set_setting('nesting.saw_machine', $1::jsonb)`, [v]), "SF422", /^nesting\.saw_machine must be a Grundner saw number, 1 to 4: /);
  }
  await db.query(`select ops.set_setting('nesting.saw_machine', '4')`);
  t.is((await db.query(`select ops.setting_numeric('nesting.saw_machine') as v`)).rows[0].v, "4");
  await db.query(`select ops.set_setting('nesting.saw_machine', '1')`);
});

test.serial("a saw machine out of range in the settings table: lock_jobs and unlock_jobs refuse with SF422 and write nothing", async (t) => {
  await addJob(db, "Machine/Lock", "101");
  await addJob(db, "Machine/Unlock", "101");
  // An older value, or one written past ops.set_setting.
  await db.query(`update nesting.jobs set is_locked = true, allocated_at = now(), locked_type = 101 where key = 'Machine/Unlock'`);
  await db.query(`update ops.settings set value = '5' where key = 'nesting.saw_machine'`);
  try {
    const before = (await db.query(`select count(*)::int as n from nesting.grundner_requests`)).rows[0].n;
    const said = "Setting nesting.saw_machine is 5, but the Grundner gateway takes machine numbers 1 to 4 for saw orders";
    await rejectsWith(t, db.query(`select nesting.lock_jobs(array['Machine/Lock'])`), "SF422", said);
    await rejectsWith(t, db.query(`select nesting.unlock_jobs(array['Machine/Unlock'])`), "SF422", said);
    t.is((await db.query(`select count(*)::int as n from nesting.grundner_requests`)).rows[0].n, before);
  } finally {
    await db.query(`update ops.settings set value = '1' where key = 'nesting.saw_machine'`);
  }
  t.true((await db.query(`select nesting.lock_jobs(array['Machine/Lock']) as id`)).rows[0].id > 0);
});

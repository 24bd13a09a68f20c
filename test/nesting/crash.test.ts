// kill -9 during a Grundner pass (issue 11, point 4): a real child process
// running the real worker is killed at each point the issue names; a restarted
// process, or another one that was already running, resumes the exchange
// within 15 s, applies what is on the share, and never sends twice.
//
// The child is held at the named point by a real obstacle: a FIFO where the
// request's .tmp goes (the write blocks), or a lock the test holds on what the
// next statement needs. After kill -9 its server sessions are ended, as the
// server does when it notices the dead client (TCP keepalive,
// client_connection_check_interval).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, renameSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import pg from "pg";
import { parseRows, STOCK_FIELDS, stockRow } from "../../src/grundner/csv.ts";
import { GrundnerSimulator } from "../../src/grundner/simulator.ts";
import { createTestDatabase, eventually, type TestDb } from "../helpers/db.ts";
import { addJob, job, STOCK, waitForRequest } from "./harness.ts";

const CHILD = path.join(import.meta.dirname, "crash-child.ts");
let db: TestDb;
let base: string;
let share: string;
let sim: GrundnerSimulator;
const children = new Set<ChildProcess>();

test.before(async () => {
  db = await createTestDatabase();
  base = mkdtempSync(path.join(os.tmpdir(), "crash-"));
  share = path.join(base, "share");
  mkdirSync(share, { recursive: true });
  const lines = STOCK.map((b) => `${b.type};${b.material_name};${b.length};${b.width};${b.thickness};;${b.stock};${b.stock};0;0;0;0;0;0;0;;0;0;1`);
  const { rows } = parseRows(Buffer.from(lines.join("\n")), stockRow, { allowHeader: false, fields: STOCK_FIELDS });
  await db.query(`select nesting_private.apply_stock(null, $1)`, [JSON.stringify(rows)]);
  // No periodic stock request during these tests: only the lock files matter.
  await db.query(`select ops.set_setting('nesting.stock_sync_interval', '"1 day"')`);
  await db.query(`insert into nesting.grundner_requests (kind, file_name, lines, status) values ('stock', 'stock_request', '{0}', 'answered')`);
  sim = new GrundnerSimulator({ folder: share, stock: STOCK }).start();
});
const childNames = new Map<ChildProcess, string>();
// Each test starts from no running child.
test.afterEach.always(async () => {
  for (const c of [...children]) await killHard(c, childNames.get(c)!);
});
test.after.always(async () => {
  for (const c of children) c.kill("SIGKILL");
  await sim?.stop();
  await db?.drop();
});

async function startChild(name: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CHILD], {
    env: {
      ...process.env,
      CHILD_DATABASE_URL: db.url,
      CHILD_NAME: name,
      DATA_DIR: base,
      GRUNDNER_DIR: share,
      GRUNDNER_ARCHIVE_DIR: path.join(base, "archive"),
      GRUNDNER_QUARANTINE_DIR: path.join(base, "quarantine"),
      GRUNDNER_PASS_MS: "1000",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.add(child);
  childNames.set(child, name);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d) => String(d).includes("ready") && resolve());
    child.once("exit", (code) => reject(new Error(`child exited with ${code}`)));
  });
  return child;
}

/** kill -9, then the server ends the dead client's sessions. Returns when it is gone. */
async function killHard(child: ChildProcess, name: string): Promise<number> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  }
  children.delete(child);
  const at = Date.now();
  await db.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1`, [`shopfloor-${name}`]);
  return at;
}

async function blockedIn(name: string, fn: string) {
  await eventually(async () => {
    const { rows } = await db.query(
      `select 1 from pg_stat_activity where application_name = $1 and wait_event_type = 'Lock' and query like $2`,
      [`shopfloor-${name}`, `%${fn}%`],
    );
    return rows.length > 0;
  }, 15_000).catch(async (e) => {
    const { rows } = await db.query(`select application_name, state, wait_event_type, left(query, 120) as q from pg_stat_activity where application_name like 'shopfloor-%'`);
    throw new Error(`${e.message}: ${JSON.stringify(rows)}`);
  });
}

const takenFor = (jobNo: string) => sim.taken.filter((x) => x.file === "order_saw.csv" && x.lines.some((l) => l.startsWith(`${jobNo};`))).length;

test.serial("killed while the request is being written: a restarted process writes it once within 15 s", async (t) => {
  await addJob(db, "KillA/One", "101");
  execFileSync("mkfifo", [path.join(share, "order_saw.tmp")]); // the write blocks on it
  const first = await startChild("crash-a1");
  const { rows } = await db.query(`select nesting.lock_jobs(array['KillA/One']) as id`);
  await waitForRequest(db, rows[0].id, ["sending"]);
  const killedAt = await killHard(first, "crash-a1");
  await startChild("crash-a2");
  const readyAt = Date.now();
  await waitForRequest(db, rows[0].id, ["acknowledged"], 15_000);
  t.log(`resumed ${Date.now() - readyAt} ms after the new process was up, ${Date.now() - killedAt} ms after kill -9`);
  t.true(Date.now() - readyAt < 15_000);
  t.is(takenFor("One"), 1, "the storage received the request once");
  t.true((await job(db, "KillA/One")).is_locked);
  t.false(readdirSync(share).some((f) => f.endsWith(".tmp")), "no stray .tmp");
});

test.serial("killed after the file was renamed into place, before it was marked sent: resumed, not sent twice", async (t) => {
  await addJob(db, "KillB/Two", "101");
  sim.faults = { noAnswer: true };
  const { rows } = await db.query(`select nesting.lock_jobs(array['KillB/Two']) as id`);
  // Hold passes back (the pass lock) until the child has started, then hold
  // the table add_job writes to: mark_request_sent queues the deadline pass.
  const passLock = new pg.Client({ connectionString: db.url });
  await passLock.connect();
  await passLock.query("select pg_advisory_lock(hashtextextended('shopfloor.grundner-pass', 0))");
  const child = await startChild("crash-b1");
  await blockedIn("crash-b1", "pg_advisory_lock"); // its pass is waiting for the pass lock
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  await holder.query("begin");
  await holder.query("lock table graphile_worker._private_tasks in share row exclusive mode");
  await passLock.end();
  try {
    await blockedIn("crash-b1", "mark_request_sent");
    t.true(readdirSync(share).includes("order_saw.csv"), "the file is in the share");
    t.is((await db.query(`select status from nesting.grundner_requests where id = $1`, [rows[0].id])).rows[0].status, "sending");
    await killHard(child, "crash-b1");
  } finally {
    await holder.query("rollback");
    await holder.end();
  }
  const restartAt = Date.now();
  sim.faults = {};
  await startChild("crash-b2");
  await waitForRequest(db, rows[0].id, ["acknowledged"], 15_000);
  t.log(`resumed in ${Date.now() - restartAt} ms`);
  t.is(takenFor("Two"), 1);
  t.true((await job(db, "KillB/Two")).is_locked);
});

test.serial("killed with the .erl on the share: another running process applies it within 15 s", async (t) => {
  await addJob(db, "KillC/Three", "102");
  sim.faults = { noAnswer: true };
  const first = await startChild("crash-c1");
  const { rows } = await db.query(`select nesting.lock_jobs(array['KillC/Three']) as id`);
  await waitForRequest(db, rows[0].id, ["sent"]);
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  await holder.query("begin");
  await holder.query("select 1 from nesting.grundner_requests where id = $1 for update", [rows[0].id]);
  let killedAt = 0;
  try {
    renameSync(path.join(share, "order_saw.csv"), path.join(share, "order_saw.erl")); // the storage took it
    sim.taken.push({ file: "order_saw.csv", lines: [`Three;102;1;0;1;0;0;0;;`] });
    await blockedIn("crash-c1", "apply_order_saw_ack");
    await startChild("crash-c2"); // the other process, running before the crash
    killedAt = await killHard(first, "crash-c1");
  } finally {
    await holder.query("rollback");
    await holder.end();
  }
  sim.faults = {};
  await waitForRequest(db, rows[0].id, ["acknowledged"], 15_000);
  t.log(`resumed in ${Date.now() - killedAt} ms after kill -9`);
  t.true(Date.now() - killedAt < 15_000);
  t.true((await job(db, "KillC/Three")).is_locked);
  const graphile = await db.query(
    `select count(*)::int as n from graphile_worker._private_jobs j join graphile_worker._private_tasks k on k.id = j.task_id
      where k.identifier = 'nesting_grundner' and j.locked_at is not null and j.job_queue_id is not null`,
  );
  t.is(graphile.rows[0].n, 0, "no pass sits in a named queue a dead worker could block");
});

test.serial("no process runs passes: the exchange reports itself unhealthy after a few intervals", async (t) => {
  const child = await startChild("crash-d1");
  await db.query(`select ops.set_setting('nesting.exchange_stale_after', '"3 seconds"')`);
  await eventually(async () => (await db.query(`select nesting.exchange_health() as h`)).rows[0].h.ok === true, 15_000);
  await killHard(child, "crash-d1");
  const h = await eventually(async () => {
    const { rows } = await db.query(`select nesting.exchange_health() as h`);
    return rows[0].h.ok === false ? rows[0].h : undefined;
  }, 15_000);
  t.true(h.lastPassSecondsAgo >= 3);
});

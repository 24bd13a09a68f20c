// graphile-worker: a row inserted by plain SQL fires a trigger whose task runs
// within a second; a burst collapses into one job; housekeeping prunes.
import test from "ava";
import pg from "pg";
import type { Worker } from "../../src/worker.ts";
import { readFileSync } from "node:fs";
import { parseCrontab } from "graphile-worker";
import { CRONTAB_FILE } from "../../src/worker.ts";
import { eventually, type TestDb } from "../helpers/db.ts";
import { startTestWorker, withTestWorker } from "../helpers/worker.ts";

let db: TestDb;
let worker: Worker;
withTestWorker(test, (made) => ({ db, worker } = made), { concurrency: 2, pollInterval: 1000 });

const loggedAt = async (id: string) =>
  (await db.query<{ logged_at: Date | null }>(`select logged_at from ops.messages where id = $1`, [id])).rows[0].logged_at;

test.serial("a message inserted by plain SQL is logged by the worker within a second", async (t) => {
  // Let the worker's LISTEN settle so we measure the trigger path, not polling.
  await eventually(async () => worker.health().listening);
  const started = Date.now();
  const { rows } = await db.query<{ id: string }>(
    `insert into ops.messages (source, severity, title) values ('worker-test', 'error', 'Grundner did not answer') returning id`,
  );
  const logged = await eventually(() => loggedAt(rows[0].id), 1000, 10);
  const ms = Date.now() - started;
  t.truthy(logged);
  t.true(ms < 1000, `took ${ms} ms`);
  t.log(`trigger → task → logged_at in ${ms} ms`);
});

test.serial("a burst of messages is handled by one job, each message logged once", async (t) => {
  await db.query(`insert into ops.messages (source, title) select 'burst', 'm' || g from generate_series(1, 1200) g`);
  await eventually(async () => {
    const r = await db.query<{ n: number }>(`select count(*)::int as n from ops.messages where source = 'burst' and logged_at is null`);
    return r.rows[0].n === 0;
  }, 5000);
  // The last job may still be finishing when the last message is stamped.
  const left = await eventually(async () => {
    const r = await db.query<{ n: number }>(`select count(*)::int as n from graphile_worker.jobs where task_identifier = 'ops_log_messages'`);
    return r.rows[0].n === 0 ? "none" : undefined;
  }, 5000);
  t.is(left, "none", "no job left behind");
  t.true(worker.health().ok);
});

test.serial("housekeeping prunes watcher events older than the setting", async (t) => {
  await db.query(`
    insert into ops.watcher_events (watcher, event, path, at) values
      ('w', 'add', '/old', now() - interval '40 days'),
      ('w', 'add', '/new', now() - interval '1 day')`);
  await db.query(`select graphile_worker.add_job('ops_housekeeping')`);
  await eventually(async () => {
    const r = await db.query(`select path from ops.watcher_events where watcher = 'w' order by path`);
    return r.rows.length === 1 && r.rows[0].path === "/new";
  }, 5000);
  t.pass();
});

test.serial("a writer that stays open delays nobody: another writer's message is handled at once", async (t) => {
  const open = new pg.Client({ connectionString: db.url });
  await open.connect();
  try {
    await open.query("begin");
    await open.query(`select ops.post_message('slow-writer', 'info', 'still open')`);
    const started = Date.now();
    const { rows } = await db.query<{ id: string }>(`select id from ops.post_message('quick-writer', 'info', 'committed at once')`);
    await eventually(() => loggedAt(rows[0].id), 3000, 10);
    t.log(`logged in ${Date.now() - started} ms while the other writer stayed open`);
    await open.query("commit");
    await eventually(async () => {
      const r = await db.query(`select count(*)::int as n from ops.messages where source = 'slow-writer' and logged_at is not null`);
      return r.rows[0].n === 1;
    }, 3000, 10);
    t.pass();
  } finally {
    await open.end();
  }
});

test.serial("the worker listens again after its LISTEN connection is killed, and catches up", async (t) => {
  await eventually(async () => worker.health().listening);
  const killed = await db.query(
    `select pg_terminate_backend(pid) from pg_stat_activity
      where datname = current_database() and query = 'listen ops_message_added'`,
  );
  t.is(killed.rowCount, 1, "one LISTEN connection for messages");
  const { rows } = await db.query<{ id: string }>(`select id from ops.post_message('listen-lost', 'info', 'posted while the LISTEN was down')`);
  t.truthy(await eventually(() => loggedAt(rows[0].id), 10_000, 20), "caught up after reconnecting");
  await eventually(async () => worker.health().listening, 10_000);
  const again = await db.query<{ id: string }>(`select id from ops.post_message('listen-back', 'info', 'posted after the reconnect')`);
  t.truthy(await eventually(() => loggedAt(again.rows[0].id), 2000, 10));
});

test("the crontab asks for the message log every minute as a backstop, under the listener's job key", (t) => {
  const item = parseCrontab(readFileSync(CRONTAB_FILE, "utf8")).find((i) => i.task === "ops_log_messages");
  t.is(item?.options.jobKey, "ops_log_messages");
});

// Last: it stops the file's worker.
test.serial("messages posted while no worker listens are logged when one starts", async (t) => {
  await worker.stop();
  const { rows } = await db.query<{ id: string }>(`select id from ops.post_message('nobody-listens', 'warning', 'posted with no worker')`);
  await new Promise((r) => setTimeout(r, 200));
  t.is(await loggedAt(rows[0].id), null, "nothing logs it without a worker");
  const later = await startTestWorker(db, { concurrency: 2, pollInterval: 1000 });
  try {
    t.truthy(await eventually(() => loggedAt(rows[0].id), 5000, 10));
  } finally {
    await later.stop();
  }
});

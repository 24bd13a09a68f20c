// ops schema: messages, NOTIFY per statement, acknowledgement, settings, audit.
import test from "ava";
import pg from "pg";
import { rejectsWith } from "../helpers/assert.ts";
import { createTestDatabase, eventually, type TestDb } from "../helpers/db.ts";

let db: TestDb;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(() => db?.drop());

test.serial("post_message stores a message and one NOTIFY reports a multi-row insert", async (t) => {
  const listener = new pg.Client({ connectionString: db.url });
  await listener.connect();
  const heard: { ids: string[]; count: number }[] = [];
  listener.on("notification", (n) => heard.push(JSON.parse(n.payload ?? "{}")));
  await listener.query("listen ops_message_added");

  const { rows } = await db.query<{ id: string; severity: string; acknowledged_at: Date | null }>(
    `select * from ops.post_message('jobs-ingest', 'warning', 'Released Sheet123.nc from Grundner (job deleted)', '', '{"job":"J1"}')`,
  );
  t.is(rows[0].severity, "warning");
  t.is(rows[0].acknowledged_at, null);

  await db.query(`insert into ops.messages (source, title) select 'bulk', 'message ' || g from generate_series(1, 3) g`);
  await eventually(async () => heard.length >= 2);
  await new Promise((r) => setTimeout(r, 100)); // nothing more should arrive
  await listener.end();
  t.is(heard.length, 2, "one notification per statement, not per row");
  t.deepEqual(heard[0].ids.map(String), [String(rows[0].id)]);
  t.is(heard[1].count, 3);
  t.is(heard[1].ids.length, 3);
});

test("a message must name a known severity and a source", async (t) => {
  await rejectsWith(t, db.query(`select ops.post_message('x', 'panic', 'title')`), "23514");
});

test("acknowledging is idempotent, names the actor and counts down the unread", async (t) => {
  const { rows } = await db.query<{ id: string }>(`select id from ops.post_message('ack-test', 'info', 'to acknowledge')`);
  const id = rows[0].id;
  const before = await db.query<{ n: number }>(`select ops.unread_message_count('ack-test') as n`);
  t.is(before.rows[0].n, 1);

  const first = await db.asRole("shopfloor_operator", (c) => c.query(`select * from ops.acknowledge_message($1)`, [id]), "olga");
  t.is(first.rows[0].acknowledged_by, "olga");
  const second = await db.asRole("shopfloor_operator", (c) => c.query(`select * from ops.acknowledge_message($1)`, [id]), "peter");
  t.is(second.rows[0].acknowledged_by, "olga", "the first acknowledgement stays");
  t.deepEqual(second.rows[0].acknowledged_at, first.rows[0].acknowledged_at);

  const after = await db.query<{ n: number }>(`select ops.unread_message_count('ack-test') as n`);
  t.is(after.rows[0].n, 0);

  await rejectsWith(t, db.query(`select ops.acknowledge_message(-1)`), "SF404", /Message -1 does not exist/);
});

test("acknowledge_messages acknowledges one source only", async (t) => {
  await db.query(`select ops.post_message('src-a', 'info', 'a1'), ops.post_message('src-a', 'info', 'a2'), ops.post_message('src-b', 'info', 'b1')`);
  const { rows } = await db.query<{ n: number }>(`select ops.acknowledge_messages('src-a') as n`);
  t.is(rows[0].n, 2);
  const b = await db.query<{ n: number }>(`select ops.unread_message_count('src-b') as n`);
  t.is(b.rows[0].n, 1);
});

test("typed setting readers convert, default, and refuse the wrong type", async (t) => {
  await db.query(`select ops.set_setting('test.number', '42'), ops.set_setting('test.flag', 'true'), ops.set_setting('test.every', '"5 minutes"')`);
  const { rows } = await db.query(`
    select ops.setting_numeric('test.number') as n, ops.setting_boolean('test.flag') as b,
           ops.setting_interval('test.every')::text as i, ops.setting_text('test.absent', 'fallback') as d`);
  t.deepEqual(rows[0], { n: "42", b: true, i: "00:05:00", d: "fallback" });

  await rejectsWith(t, db.query(`select ops.setting_boolean('test.number')`), "SF422", /test\.number is not true or false/);

  await rejectsWith(t, db.query(`select ops.set_setting('plant.timezone', '"Mars/Olympus"')`), "SF422");
});

test("a seeded setting deleted by hand is named when read without a default, never read as null", async (t) => {
  const seeded = await db.query(`select key from ops.settings where key = 'nesting.stage_sanity_interval'`);
  t.is(seeded.rowCount, 1, "the migrations seed it");
  await db.query(`delete from ops.settings where key = 'nesting.stage_sanity_interval'`);
  try {
    const err = await rejectsWith(t, db.query(`select ops.setting_interval('nesting.stage_sanity_interval')`), "P0002", "Setting nesting.stage_sanity_interval is missing");
    t.regex(err.hint ?? "", /ops\.set_setting/);
  } finally {
    await db.query(`select ops.set_setting('nesting.stage_sanity_interval', '"10 seconds"')`);
  }
});

test("set_setting writes an audit row naming the caller", async (t) => {
  await db.asRole("shopfloor_admin", (c) => c.query(`select ops.set_setting('test.audited', '"yes"', 'for the audit test')`), "alice");
  const { rows } = await db.query(`select actor, action, entity_type, entity_id, details from ops.audit_log where entity_id = 'test.audited'`);
  t.deepEqual(rows, [{ actor: "alice", action: "set_setting", entity_type: "setting", entity_id: "test.audited", details: { value: "yes" } }]);
  const s = await db.query(`select value, description, updated_by from ops.settings where key = 'test.audited'`);
  t.deepEqual(s.rows[0], { value: "yes", description: "for the audit test", updated_by: "alice" });
});

test("plant_today follows the plant time zone setting", async (t) => {
  const { rows } = await db.query<{ kiritimati: string; niue: string }>(`
    select (select ops.plant_today()::text from (select set_config('x.unused', '', true)) s) as unused,
           (now() at time zone 'Pacific/Kiritimati')::date::text as kiritimati,
           (now() at time zone 'Pacific/Niue')::date::text as niue`);
  const c = await db.pool.connect();
  try {
    await c.query("begin");
    await c.query(`update ops.settings set value = '"Pacific/Kiritimati"' where key = 'plant.timezone'`);
    const a = await c.query<{ d: string }>(`select ops.plant_today()::text as d`);
    await c.query(`update ops.settings set value = '"Pacific/Niue"' where key = 'plant.timezone'`);
    const b = await c.query<{ d: string }>(`select ops.plant_today()::text as d`);
    await c.query("rollback");
    // UTC+14 and UTC-11 are 25 hours apart: always two different dates.
    t.is(a.rows[0].d, rows[0].kiritimati);
    t.is(b.rows[0].d, rows[0].niue);
    t.not(a.rows[0].d, b.rows[0].d);
  } finally {
    c.release();
  }
});

test("audit rows name the database user when there is no token", async (t) => {
  await db.query(`select ops.audit('test_action', 'thing', '7', '{"n":1}')`);
  const { rows } = await db.query(`select actor from ops.audit_log where action = 'test_action'`);
  const { rows: me } = await db.query(`select session_user::text as u`);
  t.is(rows[0].actor, me[0].u);
});

test("an interval setting that does not parse is refused clearly", async (t) => {
  await db.query(`select ops.set_setting('test.bad_interval', '"every now and then"')`);
  await rejectsWith(t, db.query(`select ops.setting_interval('test.bad_interval')`), "SF422", /test\.bad_interval is not an interval/);
});

test("two open transactions posting messages do not wait for each other", async (t) => {
  const a = new pg.Client({ connectionString: db.url });
  const b = new pg.Client({ connectionString: db.url });
  await Promise.all([a.connect(), b.connect()]);
  try {
    await a.query("begin");
    await a.query(`select ops.post_message('tx-a', 'info', 'from a, not yet committed')`);
    await b.query("begin");
    const started = Date.now();
    await b.query("set local statement_timeout = '2s'"); // a wait would end in an error, not a hang
    await b.query(`select ops.post_message('tx-b', 'info', 'from b')`);
    await b.query("commit");
    t.true(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    await a.query("commit");
    const { rows } = await db.query(`select count(*)::int as n from ops.messages where source in ('tx-a', 'tx-b')`);
    t.is(rows[0].n, 2);
  } finally {
    await Promise.all([a.end(), b.end()]);
  }
});

// Live updates for many screens (issue 19) and the tracking/planning
// subscriptions (issue 16.5), over the real graphql-transport-ws protocol:
// events built once per role, each role sees what it may read, one event per
// statement, and a screen that stops reading is dropped without holding up
// the others.
import test from "ava";
import WebSocket from "ws";
import { liveEmitter, liveMetrics } from "../../src/api/live.ts";
import { pino } from "pino";
import { withTestApi, type TestApi } from "../helpers/api.ts";
import { eventually, listening, type TestDb } from "../helpers/db.ts";
import { createOps, seedPlant, today, type Plant } from "../planning/fixture.ts";

let db: TestDb;
let api: TestApi;
let plant: Plant;
const logLines: string[] = [];
withTestApi(
  test,
  async (made) => {
    ({ db, api } = made);
    plant = await seedPlant(db);
  },
  // Keep what the server logs at warn and above, to read the drop notices.
  { log: pino({ level: "warn" }, { write: (line: string) => void logLines.push(line) }) },
);

interface Screen {
  ws: WebSocket;
  events: any[];
  errors: any[];
  /** Resolves once the subscription is registered on the server. */
  ready: Promise<void>;
  close(): void;
}

/** A screen: one websocket, one subscription, everything it receives. */
function openScreen(query: string, token: string): Screen {
  const ws = new WebSocket(`${api.url.replace("http", "ws")}/graphql`, "graphql-transport-ws");
  const events: any[] = [];
  const errors: any[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    ws.once("error", reject);
    ws.once("open", () => ws.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } })));
    ws.on("message", (raw) => {
      const m = JSON.parse(String(raw));
      if (m.type === "connection_ack") {
        ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query } }));
        resolve();
      } else if (m.type === "next") {
        if (m.payload.errors) errors.push(m.payload.errors);
        else events.push(m.payload.data);
      } else if (m.type === "error") {
        errors.push(m.payload);
      }
    });
  });
  return { ws, events, errors, ready, close: () => ws.terminate() };
}

/** The NOTIFY channel behind each subscription field (src/api/plugins). */
const CHANNELS: Record<string, string> = {
  messageAdded: "ops_message_added",
  planChanged: "planning_plan_changed",
  jobStatusChanged: "tracking_job_status_changed",
};

/** Opens screens and waits until the server holds all their subscriptions and listens. */
async function openScreens(n: number, query: string, token: string): Promise<Screen[]> {
  const before = liveMetrics().subscriptions;
  const screens = Array.from({ length: n }, () => openScreen(query, token));
  await Promise.all(screens.map((s) => s.ready));
  await eventually(async () => liveMetrics().subscriptions >= before + n, 10_000);
  await listening(db, CHANNELS[/subscription\s*\{\s*(\w+)/.exec(query)![1]]); // its LISTEN reached PostgreSQL
  return screens;
}

/** Closes the screens and waits until the server has ended every live subscription. */
async function closeAll(screens: Screen[]) {
  for (const s of screens) s.close();
  await eventually(async () => liveMetrics().subscriptions === 0, 10_000);
}

/** Waits until nothing new arrives for a moment, so that "exactly one event" means it. */
async function settled(screens: Screen[], ms = 400) {
  let last = -1;
  for (;;) {
    const now = screens.reduce((n, s) => n + s.events.length + s.errors.length, 0);
    if (now === last) return;
    last = now;
    await new Promise((r) => setTimeout(r, ms));
  }
}

const MESSAGE_FIELDS = "id rowId createdAt source severity title body related acknowledgedAt acknowledgedBy loggedAt";

test.serial("messageAdded reaches 40 screens of two roles with one load per role, not one per screen", async (t) => {
  const query = `subscription { messageAdded { count messages { rowId title } } }`;
  const operators = await openScreens(30, query, api.tokenForRole("shopfloor_operator"));
  const integrations = await openScreens(10, query, api.tokenForRole("shopfloor_integration"));
  const screens = [...operators, ...integrations];
  try {
    // Every database connection the API takes from its pool while the event fans out.
    let checkouts = 0;
    const count = () => checkouts++;
    db.pool.on("acquire", count);
    const { rows } = await db.query<{ id: string }>(`select id::text from ops.post_message('live-test', 'info', 'Press 4 is down')`);
    await eventually(async () => screens.every((s) => s.events.length === 1), 10_000);
    db.pool.off("acquire", count);
    for (const s of screens) {
      t.deepEqual(s.events[0], { messageAdded: { count: 1, messages: [{ rowId: rows[0].id, title: "Press 4 is down" }] } });
    }
    t.log(`${screens.length} screens, ${checkouts} database checkouts for the event`);
    t.is(liveMetrics().executions, 2, "one shared execution per role");
    // One load per role (2), the post itself (1) and at most a privilege check per role.
    t.true(checkouts <= 5, `${checkouts} checkouts for ${screens.length} screens`);
  } finally {
    await closeAll(screens);
  }
});

test.serial("screens that select different fields each get their own shape, from one load", async (t) => {
  const token = api.tokenForRole("shopfloor_operator");
  const byId = await openScreens(3, `subscription { messageAdded { messages { rowId } } }`, token);
  const byTitle = await openScreens(3, `subscription { messageAdded { count messages { title severity } } }`, token);
  try {
    const builds = liveMetrics().builds;
    const { rows } = await db.query<{ id: string }>(`select id::text from ops.post_message('live-test', 'error', 'Saw 2 jammed')`);
    await eventually(async () => [...byId, ...byTitle].every((s) => s.events.length === 1), 10_000);
    for (const s of byId) t.deepEqual(s.events[0], { messageAdded: { messages: [{ rowId: rows[0].id }] } });
    for (const s of byTitle) t.deepEqual(s.events[0], { messageAdded: { count: 1, messages: [{ title: "Saw 2 jammed", severity: "error" }] } });
    t.is(liveMetrics().builds, builds + 1, "the messages were loaded once for the role");
  } finally {
    await closeAll([...byId, ...byTitle]);
  }
});

test.serial("a LiveMessage carries the same fields and values as the Message it announces", async (t) => {
  const token = api.tokenForRole("shopfloor_supervisor");
  const [screen] = await openScreens(1, `subscription { messageAdded { count messages { ${MESSAGE_FIELDS} } } }`, token);
  try {
    await db.query(`select ops.post_message('live-test', 'warning', 'Two at once', 'body one', '{"machine": "P4"}')
                    from generate_series(1, 1)`);
    await eventually(async () => screen.events.length === 1, 10_000);
    const live = screen.events[0].messageAdded.messages[0];
    const queried = await api.graphql(`query ($id: BigInt!) { allMessages(condition: { rowId: $id }) { nodes { ${MESSAGE_FIELDS} } } }`, { id: live.rowId }, token);
    t.falsy(queried.errors, JSON.stringify(queried.errors));
    t.deepEqual(live, queried.data!.allMessages.nodes[0]);

    // Message gains a column → LiveMessage must follow (and this test says so).
    const types = await api.graphql(`{ m: __type(name: "Message") { fields { name } } l: __type(name: "LiveMessage") { fields { name } } }`, {}, token);
    const names = (x: any) => x.fields.map((f: any) => f.name).sort();
    t.deepEqual(names(types.data!.l), names(types.data!.m).filter((n: string) => !/^(nodeId)$/.test(n)));
  } finally {
    await closeAll([screen]);
  }
});

test.serial("planChanged: one event per statement that changes the plan, none for a statement that changes nothing", async (t) => {
  const [screen] = await openScreens(1, `subscription { planChanged { op count machineIds dates } }`, api.tokenForRole("shopfloor_operator"));
  try {
    const day = await today(db);
    const ops = await createOps(db, plant.items["Housing"], 3);
    await db.query(
      `insert into planning.mach_planning (mp_op_id, mp_machine_id, mp_shift_id, mp_op_proddate, mp_sequence, mp_op_status)
       select op, $2, $3, $4, row_number() over (), 0 from unnest($1::bigint[]) op`,
      [ops, plant.machines[0], plant.dayShift, day],
    );
    await eventually(async () => screen.events.length >= 1, 10_000);
    await db.query(`update planning.mach_planning set mp_machine_id = $1 where mp_op_id = $2`, [plant.machines[1], ops[2]]);
    await db.query(`update planning.mach_planning set mp_sequence = mp_sequence where mp_op_id = any($1::bigint[])`, [ops]);
    await db.query(`delete from planning.mach_planning where mp_op_id = any($1::bigint[])`, [ops]);
    await eventually(async () => screen.events.length >= 3, 10_000);
    await settled([screen]);
    t.deepEqual(screen.events.map((e) => e.planChanged), [
      { op: "insert", count: 3, machineIds: [plant.machines[0]], dates: [day] },
      { op: "update", count: 1, machineIds: [plant.machines[0], plant.machines[1]].sort((a, b) => Number(a) - Number(b)), dates: [day] },
      { op: "delete", count: 3, machineIds: [plant.machines[0], plant.machines[1]].sort((a, b) => Number(a) - Number(b)), dates: [day] },
    ]);
  } finally {
    await closeAll([screen]);
  }
});

test.serial("planChanged is refused to a role that may not read the plan", async (t) => {
  const screen = openScreen(`subscription { planChanged { op } }`, api.tokenForRole("shopfloor_integration"));
  try {
    await screen.ready;
    await eventually(async () => screen.errors.length > 0, 10_000);
    t.regex(JSON.stringify(screen.errors), /SF403/);
    t.regex(JSON.stringify(screen.errors), /may not see planning\.mach_planning/);
  } finally {
    await closeAll([screen]);
  }
});

test.serial("jobStatusChanged: one event per statement that changes job status, none when nothing changes", async (t) => {
  const [screen] = await openScreens(1, `subscription { jobStatusChanged { table op count jobIds } }`, api.tokenForRole("shopfloor_integration"));
  try {
    await db.query(`insert into tracking.jobs (job_id, version_tag) select 'LJ_' || g, '1' from generate_series(1, 3) g`);
    await db.query(`insert into tracking.job_operations (job_operation_id, job_id, operation_id) values ('LJ_1:op001', 'LJ_1', 'op001')`);
    await eventually(async () => screen.events.length >= 2, 10_000);
    await db.query(`update tracking.jobs set operations = operations || '{"print": true}' where job_id in ('LJ_2', 'LJ_3')`);
    await db.query(`update tracking.jobs set updated_at = now()`); // no status changed
    await db.query(`update tracking.job_operations set status = 'completed', completed_by = 'scanner' where job_id = 'LJ_1'`);
    await db.query(`delete from tracking.jobs where job_id = 'nothing-like-this'`); // no row
    await eventually(async () => screen.events.length >= 4, 10_000);
    await settled([screen]);
    t.deepEqual(screen.events.map((e) => e.jobStatusChanged), [
      { table: "jobs", op: "insert", count: 3, jobIds: ["LJ_1", "LJ_2", "LJ_3"] },
      { table: "job_operations", op: "insert", count: 1, jobIds: ["LJ_1"] },
      { table: "jobs", op: "update", count: 2, jobIds: ["LJ_2", "LJ_3"] },
      { table: "job_operations", op: "update", count: 1, jobIds: ["LJ_1"] },
    ]);
  } finally {
    await closeAll([screen]);
  }
});

test.serial("jobStatusChanged from processing: one event per statement, naming only the jobs whose status changed", async (t) => {
  await db.query(`insert into tracking.jobs (job_id, version_tag) values ('LP_1', '1'), ('LP_2', '1')`);
  await db.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id)
                  values ('LPIMP1', 'FILE_1_Labex_LP_1_a'), ('LPIMP2', 'FILE_1_Labex_LP_2_a')`);
  const ops = await db.query<{ operation_id: string; name: string }>(
    `select operation_id, name from tracking.operation_catalogue where name in ('print', 'coating')`,
  );
  const op = Object.fromEntries(ops.rows.map((r) => [r.name, r.operation_id]));
  await db.query(
    `insert into tracking.job_operations (job_operation_id, job_id, version_tag, operation_id)
     select j || ':' || o, j, '1', o from unnest(array['LP_1', 'LP_2']) j, unnest(array[$1, $2]) o`,
    [op.print, op.coating],
  );
  const [screen] = await openScreens(1, `subscription { jobStatusChanged { table op count jobIds } }`, api.tokenForRole("shopfloor_operator"));
  const run = async (sql: string, source: string) => {
    await db.query(sql);
    await db.query(`select tracking.process_status_updates($1)`, [source]);
  };
  try {
    await run(`insert into tracking."print OS" (name, status, marker, job_complete_time)
               values ('LPIMP1', 'PRINTED', 901, '2026-11-20 06:00'), ('LPIMP2', 'PRINTED', 902, '2026-11-20 06:00')`, "print_os");
    // Printed again later: the job's print time moves (no status change); the operation's completion time does.
    await run(`insert into tracking."print OS" (name, status, marker, job_complete_time) values ('LPIMP1', 'PRINTED', 903, '2026-11-20 07:00')`, "print_os");
    await run(`insert into tracking.scanned_codes (code_text, operations, scanned_at) values ('LP_2', '["coating"]', '2026-11-20 08:00')`, "scanner");
    await eventually(async () => screen.events.length >= 5, 10_000);
    await settled([screen]);
    // Each run writes the operations before the jobs (the order both sources lock them in).
    t.deepEqual(screen.events.map((e) => e.jobStatusChanged), [
      { table: "job_operations", op: "update", count: 2, jobIds: ["LP_1", "LP_2"] },
      { table: "jobs", op: "update", count: 2, jobIds: ["LP_1", "LP_2"] },
      { table: "job_operations", op: "update", count: 1, jobIds: ["LP_1"] },
      { table: "job_operations", op: "update", count: 1, jobIds: ["LP_2"] },
      { table: "jobs", op: "update", count: 1, jobIds: ["LP_2"] },
    ]);
  } finally {
    await closeAll([screen]);
  }
});

test.serial("jobStatusChanged keeps its notification small when a statement changes thousands of long job ids", async (t) => {
  const [screen] = await openScreens(1, `subscription { jobStatusChanged { count jobIds } }`, api.tokenForRole("shopfloor_operator"));
  try {
    await db.query(`insert into tracking.jobs (job_id) select repeat('x', 180) || g from generate_series(1, 5000) g`);
    await eventually(async () => screen.events.length >= 1, 10_000);
    const { count, jobIds } = screen.events[0].jobStatusChanged;
    t.is(count, 5000);
    t.true(jobIds.length > 0 && jobIds.length < 100, `${jobIds.length} ids`);
    t.true(jobIds.every((id: string) => id.length > 180));
  } finally {
    await closeAll([screen]);
  }
});

test.serial("a screen that stops reading is dropped with a log line; the other screens get every message", async (t) => {
  const token = api.tokenForRole("shopfloor_operator");
  const query = `subscription { messageAdded { messages { rowId body } } }`;
  const [healthy, stalled] = await openScreens(2, query, token);
  const droppedBefore = liveMetrics().screensDropped;
  const dropped = new Promise((resolve) => liveEmitter.once("screenDropped", resolve));
  // The stalled screen stops reading its socket, as a frozen panel would.
  (stalled.ws as any)._socket.pause();
  try {
    // ops.post_message keeps at most 20,000 characters of a body: enough
    // messages of that size to pass the 1 MiB buffer and the kernel's socket buffers.
    const n = 600;
    const body = "x".repeat(20_000);
    for (let i = 0; i < n; i++) await db.query(`select ops.post_message('live-test', 'info', $1, $2)`, [`big ${i}`, body]);
    await eventually(async () => healthy.events.length === n, 60_000);
    const ids = healthy.events.map((e) => Number(e.messageAdded.messages[0].rowId));
    t.deepEqual(ids, [...ids].sort((a, b) => a - b), "in order");
    await dropped;
    t.is(liveMetrics().screensDropped, droppedBefore + 1);
    t.true(logLines.some((l) => l.includes("live screen dropped")), "a log line says so");
    await eventually(async () => liveMetrics().subscriptions === 1, 10_000); // its subscription ended with it
    t.log(`stalled screen got ${stalled.events.length} of ${n} before it was dropped`);
  } finally {
    await closeAll([healthy, stalled]);
  }
});

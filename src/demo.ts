// A demo plant (npm run demo): users of each role, planning master data and a
// plan with yesterday's unfinished work, NC programs in the processed root,
// Grundner stock through the simulator, print OS records and scans, jobs to
// approve, a product revision with tokens. Everything goes through the same
// SQL functions the API exposes, keyed so that a second run changes nothing
// twice (external ids, idempotency keys, markers, names).
import { existsSync } from "node:fs";
import { mkdir, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import type pg from "pg";
import { pumpGrundner } from "./grundner/pump.ts";
import { Share } from "./grundner/share.ts";
import { GrundnerSimulator, type SimBoard } from "./grundner/simulator.ts";
import { IngestPoller } from "./nesting/ingest.ts";
import type { Logger } from "./log.ts";

export interface DemoOptions {
  client: pg.ClientBase;
  processedRoot: string;
  grundnerDir: string;
  grundnerArchiveDir: string;
  grundnerQuarantineDir: string;
  log: Logger;
  /** How long to wait for the simulator's stock answer. */
  stockTimeoutMs?: number;
}

export interface DemoReport {
  users: { username: string; role: string; password: string }[];
  previousWorkingDate: string;
  nextWorkingDates: string[];
  stockBoards: number;
  ncJobs: number;
}

export const DEMO_USERS = [
  { username: "olga", role: "operator", password: "olga-demo-pass", name: "Olga (operator)" },
  { username: "sam", role: "supervisor", password: "sam-demo-pass", name: "Sam (supervisor)" },
  { username: "pia", role: "planner", password: "pia-demo-pass", name: "Pia (planner)" },
  { username: "erp", role: "integration", password: "erp-demo-pass", name: "ERP feed (integration)" },
  { username: "ada", role: "admin", password: "ada-demo-pass", name: "Ada (admin)" },
];

const STOCK: SimBoard[] = [
  { type: 101, material_name: "Spanplatte weiß 19", length: 2800, width: 2070, thickness: 19, stock: 40, customer_id: "SP19W" },
  { type: 102, material_name: "Eiche geölt 19", length: 2800, width: 2070, thickness: 19, stock: 12, customer_id: "EI19" },
  { type: 205, material_name: "MDF roh 16", length: 2800, width: 2070, thickness: 16, stock: 25 },
];

const NC_PROGRAMS = [
  { folder: "ORDER-4711", name: "carcass-sides", material: "SP19W", x: 2800, y: 2070, z: 19, parts: 8 },
  { folder: "ORDER-4711", name: "carcass-tops", material: "SP19W", x: 2800, y: 2070, z: 19, parts: 6 },
  { folder: "ORDER-4712", name: "oak-fronts", material: "EI19", x: 2800, y: 2070, z: 19, parts: 4 },
  { folder: "ORDER-4713", name: "back-panels", material: "205", x: 2800, y: 2070, z: 16, parts: 10 },
];

const ITEMS = [
  { ext: "ERP-ITEM-100", name: "Cabinet side 720" },
  { ext: "ERP-ITEM-101", name: "Cabinet top 600" },
  { ext: "ERP-ITEM-102", name: "Door 716x396" },
  { ext: "ERP-ITEM-103", name: "Shelf 564" },
];

// Operations: lot, item, quantity, minutes per unit.
const OPERATIONS = Array.from({ length: 12 }, (_, i) => ({
  ext: `ERP-OP-${1001 + i}`,
  lot: `LOT-26-${String(4711 + i)}`,
  item: ITEMS[i % ITEMS.length].ext,
  qty: 20 + 5 * (i % 4),
  minPerUnit: 1.5 + (i % 3) * 0.5,
}));

async function one<R extends pg.QueryResultRow>(c: pg.ClientBase, sql: string, values: unknown[] = []): Promise<R> {
  return (await c.query<R>(sql, values)).rows[0];
}

async function users(c: pg.ClientBase) {
  for (const u of DEMO_USERS) {
    const found = await c.query(`select 1 from ops_private.users where username = $1`, [u.username]);
    if (found.rowCount) await c.query(`select ops.set_user_password($1, $2)`, [u.username, u.password]);
    else await c.query(`select ops.create_user($1, $2, $3, $4)`, [u.username, u.role, u.password, u.name]);
  }
}

async function planning(c: pg.ClientBase) {
  const machine = async (code: string, name: string) =>
    (await one<{ id: string }>(c, `select (planning.save_machine($1, $2, $3)).machine_id::text as id`, [code, name, `ERP-MC-${code}`])).id;
  const saw = await machine("SAW-1", "Panel saw");
  const cnc = await machine("CNC-1", "Nesting CNC");
  const edge = await machine("EDGE-1", "Edgebander");

  const shift = async (code: string, start: string, end: string) => {
    const existing = await c.query<{ id: string }>(`select shift_id::text as id from planning.shifts where machine_id is null and shift_code = $1`, [code]);
    return (await one<{ id: string }>(c, `select (planning.save_shift($1, $2, $3, null, $4)).shift_id::text as id`, [code, start, end, existing.rows[0]?.id ?? null])).id;
  };
  const early = await shift("EARLY", "06:00", "14:00");
  const late = await shift("LATE", "14:00", "22:00");

  const { rows: holidays } = await c.query<{ d: string; label: string }>(`
    select d::text, label from (values
      (make_date(extract(year from ops.plant_today())::int, 12, 25), 'Christmas Day'),
      (make_date(extract(year from ops.plant_today())::int, 12, 26), 'Boxing Day'),
      (make_date(extract(year from ops.plant_today())::int + 1, 1, 1), 'New Year')) h(d, label)
     where d > ops.plant_today() and not exists (select 1 from planning.mach_planning where mp_op_proddate = d)`);
  for (const h of holidays) await c.query(`select planning.set_holiday($1, $2)`, [h.d, h.label]);

  const items: Record<string, string> = {};
  for (const it of ITEMS) items[it.ext] = (await one<{ id: string }>(c, `select (planning.save_item($1, $2)).item_id::text as id`, [it.name, it.ext])).id;
  await c.query(`select planning.set_changeover($1, $2, 20), planning.set_changeover($2, $1, 25), planning.set_changeover($3, $4, 35)`,
    [items["ERP-ITEM-100"], items["ERP-ITEM-101"], items["ERP-ITEM-102"], items["ERP-ITEM-103"]]);

  const ops: string[] = [];
  for (const op of OPERATIONS) {
    const existing = await c.query<{ id: string; terminal: boolean }>(
      `select o.op_id::text as id, s.is_terminal as terminal from planning.operations o join planning.op_statuses s on s.code = o.op_status where o.external_id = $1`,
      [op.ext],
    );
    if (existing.rows[0]?.terminal) { ops.push(existing.rows[0].id); continue; } // finished since the last run: leave it
    ops.push((await one<{ id: string }>(c,
      `select (planning.save_operation($1, $2, null, $3, $4, null, $5)).op_id::text as id`,
      [op.lot, op.qty, op.item, op.minPerUnit, op.ext])).id);
  }

  // Yesterday's unfinished work: three operations planned on the previous
  // working date, never done. The supervisor decides at the next review.
  const prev = (await one<{ d: string }>(c, `select planning.previous_working_date(ops.plant_today())::text as d`)).d;
  const plannable = await c.query<{ id: string }>(
    `select o.op_id::text as id from planning.operations o join planning.op_statuses s on s.code = o.op_status
      where o.op_id = any($1::bigint[]) and s.may_be_planned order by o.op_id`, [ops.slice(0, 3)]);
  const alreadyDecided = await one<{ n: number }>(c,
    `select count(*)::int as n from planning.planning_log where reason like 'carryover:%' and op_id = any($1::bigint[])`, [ops.slice(0, 3)]);
  if (plannable.rows.length > 0 && alreadyDecided.n === 0) {
    await c.query(`select planning.stage_past_plan($1, $2)`, [
      JSON.stringify(plannable.rows.map((r, i) => ({ op_id: Number(r.id), machine_id: Number(saw), shift_id: Number(early), sequence: i + 1 }))),
      prev,
    ]);
  }

  // The next two working days: sequences on the CNC and the edgebander.
  const { rows: next } = await c.query<{ d: string }>(`
    select d::date::text as d from generate_series(ops.plant_today() + 1, ops.plant_today() + 21, interval '1 day') d
     where extract(isodow from d)::int in (select jsonb_array_elements_text(ops.setting('planning.working_weekdays'))::int)
       and d::date not in (select holiday_date from planning.holiday)
     order by d limit 2`);
  const plan = async (m: string, s: string, d: string, opIds: string[]) => {
    const ok = await c.query<{ id: string }>(
      `select o.op_id::text as id from planning.operations o join planning.op_statuses st on st.code = o.op_status
        where o.op_id = any($1::bigint[]) and st.may_be_planned order by o.op_id`, [opIds]);
    await c.query(`select planning.save_sequence($1, $2, $3, $4)`, [m, s, d, ok.rows.map((r) => r.id)]);
  };
  if (next[0]) {
    await plan(cnc, early, next[0].d, ops.slice(3, 6));
    await plan(edge, late, next[0].d, ops.slice(6, 8));
  }
  if (next[1]) await plan(saw, early, next[1].d, ops.slice(8, 10));
  // One operation is on hold: it shows in "operations of status 8".
  await c.query(`select planning.set_operation_status($1, 8)`, [ops[11]]).catch((e) => {
    if (e.code !== "SF409") throw e; // finished meanwhile: leave it
  });
  return { prev, next: next.map((n) => n.d) };
}

async function ncPrograms(root: string) {
  for (const p of NC_PROGRAMS) {
    const dir = path.join(root, p.folder);
    await mkdir(dir, { recursive: true });
    const nc = path.join(dir, `${p.name}.nc`);
    if (existsSync(nc)) continue; // rewriting would only change its time
    const parts = Array.from({ length: p.parts }, (_, i) => `${p.name}-${i + 1};${400 + 10 * i};300`).join("\r\n") + "\r\n";
    await writeFile(path.join(dir, `${p.name}.pts`), parts);
    await writeFile(nc, `(ID=${p.material})\r\nG100 X${p.x} Y${p.y} Z${p.z}\r\nG0 X0 Y0\r\nM30\r\n`);
    // Written whole just now: dated back past the ingest's stability wait, so one scan reads them.
    const past = new Date(Date.now() - 10 * 60_000);
    for (const f of [nc, path.join(dir, `${p.name}.pts`)]) await utimes(f, past, past);
  }
}

/** One stock request answered by the simulator, applied through the same pump the worker runs. */
async function stock(c: pg.ClientBase, opts: DemoOptions) {
  const share = new Share({ dir: opts.grundnerDir, archiveDir: opts.grundnerArchiveDir, quarantineDir: opts.grundnerQuarantineDir });
  for (const d of Object.values(share.dirs)) await mkdir(d, { recursive: true });
  const sim = new GrundnerSimulator({ folder: opts.grundnerDir, stock: STOCK }).start();
  try {
    const id = (await one<{ id: string }>(c, `select nesting.request_stock('demo')::text as id`)).id;
    const deadline = Date.now() + (opts.stockTimeoutMs ?? 20_000);
    for (;;) {
      await pumpGrundner(c, share, opts.log);
      const r = await one<{ status: string }>(c, `select status from nesting.grundner_requests where id = $1`, [id]);
      if (!["queued", "sending", "sent"].includes(r.status)) break;
      if (Date.now() > deadline) throw new Error(`the simulator did not answer stock request ${id} in time (status ${r.status})`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await sim.stop();
  }
  return (await one<{ n: number }>(c, `select count(*)::int as n from nesting.grundner`)).n;
}

async function nesting(c: pg.ClientBase, opts: DemoOptions) {
  await ncPrograms(opts.processedRoot);
  await new IngestPoller(opts.processedRoot, c).scan();
  const job = await c.query<{ key: string }>(`select key from nesting.jobs where key = 'ORDER-4711/carcass-sides' and status = 'PENDING'`);
  if (job.rows[0]) await c.query(`select nesting.reserve_job($1)`, [job.rows[0].key]);
  return (await one<{ n: number }>(c, `select count(*)::int as n from nesting.jobs`)).n;
}

async function tracking(c: pg.ClientBase) {
  const jobs = ["4604_5889", "4604_5890", "4604_5891"];
  for (const [i, job] of jobs.entries()) {
    const imp = `IMP-DEMO-${i + 1}`;
    await c.query(`insert into tracking.jobs (job_id, version_tag) values ($1, '1') on conflict do nothing`, [job]);
    await c.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id) values ($1, $2) on conflict do nothing`,
      [imp, `FILE_1_Labex_${job}_80`]);
    await c.query(`insert into tracking.job_operations (job_operation_id, job_id, version_tag, operation_id, sequence_order)
      select $1 || '-' || o, $1, '1', o, n from unnest(array['op001', 'op003', 'op006']) with ordinality u(o, n) on conflict do nothing`, [job]);
    await c.query(`insert into tracking.imposition_operations (imposition_operation_id, imposition_id, operation_id)
      select $1 || '-' || o, $1, o from unnest(array['op001', 'op003']) o on conflict do nothing`, [imp]);
  }
  // The printer feed: two printed, one aborted; markers make a second run a no-op.
  const prints: [string, string, number][] = [["IMP-DEMO-1", "PRINTED", 900001], ["IMP-DEMO-2", "PRINTED", 900002], ["IMP-DEMO-3", "ABORTED", 900003]];
  for (const [imp, status, marker] of prints) {
    const exists = await c.query(`select 1 from tracking."print OS" where marker = $1`, [marker]);
    if (!exists.rowCount) {
      await c.query(`select tracking.record_print_os($1, $2, $3, $4, null, now() - interval '3 hours', 500)`, [imp, status, marker, `Labels ${imp}`]);
    }
  }
  // Scans at the coating line.
  for (const [code, ops] of [["4604_5889", ["coating"]], ["4604_5890", ["coating"]]] as const) {
    await c.query(`insert into tracking.scanned_codes (code_text, operations, machine_id, user_id, scanned_at)
      select $1, $2, 'COATER-1', 'olga', now() - interval '1 hour'
       where not exists (select 1 from tracking.scanned_codes where code_text = $1 and machine_id = 'COATER-1')`,
      [code, JSON.stringify(ops)]);
  }
  await c.query(`select tracking.process_status_updates('both')`);
}

async function approval(c: pg.ClientBase) {
  const items = [["HINGE-110", "Hinge 110°", 200], ["SCREW-4x16", "Screw 4x16", 5000], ["HANDLE-128", "Handle 128 mm", 40]] as const;
  for (const [sku, name, onHand] of items) {
    const found = await c.query(`select 1 from approval.inventory_items where sku = $1`, [sku]);
    if (!found.rowCount) await c.query(`select approval.create_item($1, $2, 'pcs', $3)`, [sku, name, onHand]);
  }
  const jobs: [string, { sku: string; qty_planned: number }[]][] = [
    ["Kitchen K-1042", [{ sku: "HINGE-110", qty_planned: 24 }, { sku: "HANDLE-128", qty_planned: 12 }, { sku: "SCREW-4x16", qty_planned: 300 }]],
    ["Wardrobe W-77", [{ sku: "HANDLE-128", qty_planned: 60 }]], // more handles than on hand: not fulfillable
  ];
  for (const [name, bom] of jobs) {
    const found = await c.query(`select 1 from approval.jobs where name = $1`, [name]);
    if (!found.rowCount) await c.query(`select approval.create_job($1, $2)`, [name, JSON.stringify(bom)]);
  }
}

async function pool(c: pg.ClientBase) {
  const product = 7001;
  const snapshot = { structure: { component_requirements: [
    { component_code: "BODY", default_qty: 1, is_required: true },
    { component_code: "SHELF", default_qty: 3, is_required: true },
    { component_code: "DOOR", default_qty: 2, is_required: true },
    { component_code: "MANUAL", default_qty: 1, is_required: false },
  ] } };
  let rev = await c.query<{ id: string }>(`select id::text from execution.product_revisions where product_model_id = $1 order by id limit 1`, [product]);
  if (!rev.rowCount) rev = await c.query(`select (execution.create_product_revision($1, $2)).id::text as id`, [product, JSON.stringify(snapshot)]);
  let ticket = await c.query<{ id: string }>(`select id::text from execution.job_tickets where product_revision_id = $1 order by id limit 1`, [rev.rows[0].id]);
  if (!ticket.rowCount) ticket = await c.query(`select (execution.create_job_ticket($1, $2, 1)).id::text as id`, [product, rev.rows[0].id]);
  const have = (await one<{ n: number }>(c, `select count(*)::int as n from execution.tokens where job_ticket_id = $1`, [ticket.rows[0].id])).n;
  if (have < 5) await c.query(`select execution.create_tokens($1, $2)`, [ticket.rows[0].id, 5 - have]);
  for (const [code, qty] of [["BODY", 4], ["SHELF", 9], ["DOOR", 4]] as const) {
    await c.query(`select pool.receive($1, 1, $2, $3, $4)`, [product, code, qty, `demo:receive:${code}`]);
  }
  const first = await c.query<{ id: string }>(`select id::text from execution.tokens where job_ticket_id = $1 and status = 'ready' order by id limit 1`, [ticket.rows[0].id]);
  const started = (await one<{ n: number }>(c, `select count(*)::int as n from execution.tokens where job_ticket_id = $1 and status <> 'ready'`, [ticket.rows[0].id])).n;
  if (first.rowCount && started === 0) await c.query(`select execution.handle_single_piece_start($1, 9, 'ASSEMBLY')`, [first.rows[0].id]);
}

export async function loadDemoPlant(opts: DemoOptions): Promise<DemoReport> {
  const c = opts.client;
  await c.query(`select set_config('jwt.claims.username', 'demo', false)`); // the audit log's actor
  await users(c);
  const { prev, next } = await planning(c);
  const stockBoards = await stock(c, opts);
  const ncJobs = await nesting(c, opts);
  await tracking(c);
  await approval(c);
  await pool(c);
  return {
    users: DEMO_USERS.map(({ username, role, password }) => ({ username, role, password })),
    previousWorkingDate: prev,
    nextWorkingDates: next,
    stockBoards,
    ncJobs,
  };
}

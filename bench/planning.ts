// Planning benchmark: a plant with 50,000 operations, 40 machines, 3 shifts and
// a year of plans (BENCH_QUICK=1: 5,000, 10, 3 and 30 days), built with
// set-based inserts. Median and 95th-percentile latency of available_jobs,
// sequence_timeline and save_sequence (30 operations). Aim: p95 under 20 ms.
import pg from "pg";
import { baselineUpdate, fmt, measure, type BenchContext } from "./lib.ts";

const SEQ_LEN = 10; // operations per planned sequence in the generated year
const SAVE_LEN = 30; // operations per save_sequence call measured
const PAGE = 200; // available_jobs rows the planning board asks for at once

interface PlantSize { ops: number; machines: number; shifts: number; days: number; ms: number }
const sizes: Record<"quick" | "full", PlantSize> = {
  quick: { ops: 5_000, machines: 10, shifts: 3, days: 30, ms: 1500 },
  full: { ops: 50_000, machines: 40, shifts: 3, days: 365, ms: 5000 },
};

interface Plant {
  /** Pending (status 1) operation ids, in id order; the first perDate are planned every day. */
  pend: string[];
  perDate: number;
  machines: string[];
  shifts: string[];
  today: string;
  counts: { ops: string; rows: string };
}

/** Builds the generated plant in the (migrated, empty) database at url. */
async function buildPlant(url: string, size: PlantSize, clients: number): Promise<Plant> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  // Bulk load without the row triggers (guard and log): the data is valid by
  // construction, and this is a benchmark set-up, not a plant.
  await c.query(`set session_replication_role = replica`);
  await c.query(`insert into planning.wip_items (item_name) select 'Item ' || g from generate_series(1, 200) g`);
  await c.query(`insert into planning.machines (machine_code) select 'M' || g from generate_series(1, $1::int) g`, [size.machines]);
  await c.query(`insert into planning.shifts (shift_code, start_time, end_time) values
    ('A', '06:00', '14:00'), ('B', '14:00', '22:00'), ('C', '22:00', '06:00')`);
  await c.query(`insert into planning.changeovers (from_item_id, to_item_id, minutes)
    select a.item_id, b.item_id, 10 + (a.item_id * 7 + b.item_id) % 50 from planning.wip_items a, planning.wip_items b
     where a.item_id <> b.item_id and (a.item_id + b.item_id) % 5 = 0`);
  // 80% complete, the rest pending (a few paused)
  await c.query(`insert into planning.operations (op_lot_number, op_item_id, op_qty, op_run_min_per_unit, op_status)
    select 'LOT-' || lpad(g::text, 6, '0'), 1 + g % 200, 1 + g % 50, 0.5 + (g % 7) * 0.25,
           case when g % 5 <> 0 then 10 when g % 35 = 0 then 6 else 1 end
      from generate_series(1, $1::int) g`, [size.ops]);
  await c.query(`create table bench_pending (rn int primary key, op_id bigint not null)`);
  await c.query(`insert into bench_pending select row_number() over (order by op_id) - 1, op_id from planning.operations where op_status = 1`);
  const pend = (await c.query<{ id: string }>(`select op_id::text as id from bench_pending order by rn`)).rows.map((r) => r.id);
  const perDate = size.machines * size.shifts * SEQ_LEN;
  if (pend.length < perDate + clients * 2 * SAVE_LEN) throw new Error("not enough pending operations for the plan");
  // every (machine, shift, date) of the year gets SEQ_LEN operations; no operation twice on a date
  await c.query(`
    insert into planning.mach_planning (mp_op_id, mp_machine_id, mp_shift_id, mp_op_proddate, mp_sequence, mp_op_status, planned_by)
    select bp.op_id, m.machine_id, s.shift_id, ops.plant_today() + d, q, 1, 'bench'
      from generate_series(0, $1::int - 1) d
      cross join (select machine_id, row_number() over (order by machine_id) - 1 as mi from planning.machines) m
      cross join (select shift_id, row_number() over (order by shift_id) - 1 as si from planning.shifts) s
      cross join generate_series(1, $2::int) q
      join bench_pending bp on bp.rn = ((m.mi * $3::int + s.si) * $2::int + q - 1 + d * 37) % $4::int`,
    [size.days, SEQ_LEN, size.shifts, pend.length]);
  await c.query(`reset session_replication_role`);
  await c.query(`analyze`);
  const counts = (await c.query<{ ops: string; rows: string }>(
    `select (select count(*) from planning.operations) as ops, (select count(*) from planning.mach_planning) as rows`)).rows[0];
  const machines = (await c.query<{ id: string }>(`select machine_id::text as id from planning.machines order by 1`)).rows.map((r) => r.id);
  const shifts = (await c.query<{ id: string }>(`select shift_id::text as id from planning.shifts order by 1`)).rows.map((r) => r.id);
  const today = (await c.query<{ d: string }>(`select ops.plant_today()::text as d`)).rows[0].d;
  await c.end();
  return { pend, perDate, machines, shifts, today, counts };
}

export default async function bench({ url, quick, print }: BenchContext) {
  const size = sizes[quick ? "quick" : "full"];
  const clients = 2;
  const started = Date.now();
  const plant = await buildPlant(url, size, clients);
  const { pend, machines, shifts, counts } = plant;
  print(`setup     ${counts.ops} operations (${pend.length} pending), ${machines.length} machines, ${shifts.length} shifts, ` +
        `${counts.rows} plan rows over ${size.days} days, built in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const opts = { clients, ms: size.ms };
  const baseline = await baselineUpdate(url, opts);
  print(`baseline  one-row UPDATE, ${clients} clients                  ${fmt(baseline)}`);

  await measurePlant(url, size, plant, clients, print);
}

/** The measurements, on a plant built by buildPlant. */
async function measurePlant(url: string, size: PlantSize, plant: Plant, clients: number, print: (line: string) => void) {
  const { pend, perDate, machines, shifts, today } = plant;
  const opts = { clients, ms: size.ms };
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  const day = () => Math.floor(rand() * size.days);

  // The planning board asks for a page of PAGE rows (p_limit), the next one
  // after the last op_id it shows (p_after_op_id).
  const available = await measure(url, opts, (cl) =>
    cl.query(`select count(*) from planning.available_jobs(ops.plant_today() + $1::int, $2, $3, null, null, null, $4)`,
      [day(), pick(machines), pick(shifts), PAGE]));
  print(`planning  available_jobs (all pending, first ${PAGE})       ${fmt(available)}`);
  const later = await measure(url, opts, (cl) =>
    cl.query(`select count(*) from planning.available_jobs(ops.plant_today() + $1::int, $2, $3, null, null, $4, $5)`,
      [day(), pick(machines), pick(shifts), pick(pend), PAGE]));
  print(`planning  available_jobs (all pending, a later page)  ${fmt(later)}`);
  const filtered = await measure(url, opts, (cl) =>
    cl.query(`select count(*) from planning.available_jobs(ops.plant_today() + $1::int, $2, $3, $4, $5, null, $6)`,
      [day(), pick(machines), pick(shifts), `Item ${1 + Math.floor(rand() * 200)}`, rand() < 0.5 ? null : "LOT-01", PAGE]));
  print(`planning  available_jobs (item/lot filter, first ${PAGE}) ${fmt(filtered)}`);
  const unpaged = await measure(url, opts, (cl) =>
    cl.query(`select count(*) from planning.available_jobs(ops.plant_today() + $1::int, $2, $3, null, null)`, [day(), pick(machines), pick(shifts)]));
  print(`planning  available_jobs (all pending, unpaged)       ${fmt(unpaged)}`);
  const timeline = await measure(url, opts, (cl) =>
    cl.query(`select * from planning.sequence_timeline($1, $2, ops.plant_today() + $3::int)`, [pick(machines), pick(shifts), day()]));
  print(`planning  sequence_timeline (${SEQ_LEN} operations)           ${fmt(timeline)}`);
  // Each client plans its own machine and shift, alternating between two sets of
  // 30 operations that nothing else plans on that date: every call deletes 30
  // (or the generated 10) rows and inserts 30, all logged.
  const save = await measure(url, opts, (cl, w, i) => {
    const d = day();
    const base = perDate + w * 2 * SAVE_LEN + (i % 2) * SAVE_LEN;
    const ids = Array.from({ length: SAVE_LEN }, (_, k) => pend[(base + k + d * 37) % pend.length]);
    return cl.query(`select count(*) from planning.save_sequence($1, $2, ops.plant_today() + $3::int, $4::bigint[])`,
      [machines[w], shifts[0], d, ids]).catch((e) => { if (process.env.BENCH_DEBUG) console.error(e.code, e.message); throw e; });
  });
  print(`planning  save_sequence (${SAVE_LEN} operations)              ${fmt(save)}`);
  print(`aim       p95 under 20 ms: available_jobs ${available.p95Ms.toFixed(1)} (filtered ${filtered.p95Ms.toFixed(1)}), ` +
        `sequence_timeline ${timeline.p95Ms.toFixed(1)}, save_sequence ${save.p95Ms.toFixed(1)} (today ${today})`);
}

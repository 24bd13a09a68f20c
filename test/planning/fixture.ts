// Shared set-up for the planning tests: items, machines, plant shifts and
// operations, plus a door for writing past plan rows (superuser only, see
// planning.past_allowed()).
import type { TestFn } from "ava";
import type pg from "pg";
import { withTestApi, type TestApi } from "../helpers/api.ts";
import { withTestDatabase, type TestDb } from "../helpers/db.ts";

export interface Plant {
  items: Record<string, string>;
  machines: string[];
  dayShift: string;
  nightShift: string;
  /** A shift that belongs to machines[0] only. */
  m1Shift: string;
}

type Queryable = { query: (text: string, values?: unknown[]) => Promise<pg.QueryResult<any>> };

export async function seedPlant(db: Queryable, prefix = ""): Promise<Plant> {
  const items: Record<string, string> = {};
  for (const name of ["Bracket A", "Bracket B", "Housing"]) {
    const { rows } = await db.query(`insert into planning.wip_items (item_name) values ($1) returning item_id::text`, [prefix + name]);
    items[name] = rows[0].item_id;
  }
  const machines: string[] = [];
  for (const code of ["M1", "M2", "M3"]) {
    const { rows } = await db.query(`insert into planning.machines (machine_code) values ($1) returning machine_id::text`, [prefix + code]);
    machines.push(rows[0].machine_id);
  }
  const shift = async (code: string, start: string, end: string, machine: string | null) =>
    (await db.query(`insert into planning.shifts (shift_code, start_time, end_time, machine_id) values ($1, $2, $3, $4) returning shift_id::text`,
      [prefix + code, start, end, machine])).rows[0].shift_id as string;
  const dayShift = await shift("A", "06:00", "14:00", null);
  const nightShift = await shift("C", "22:00", "06:00", null);
  const m1Shift = await shift("M1-special", "08:00", "12:00", machines[0]);
  await db.query(`insert into planning.changeovers (from_item_id, to_item_id, minutes) values ($1, $2, 40)`, [items["Bracket A"], items["Housing"]]);
  return { items, machines, dayShift, nightShift, m1Shift };
}

/** Creates operations; returns their ids as strings. */
export async function createOps(
  db: Queryable,
  item: string,
  n: number,
  opts: { status?: number; lotPrefix?: string; minutesTotal?: number } = {},
): Promise<string[]> {
  const { rows } = await db.query(
    `insert into planning.operations (op_lot_number, op_item_id, op_qty, op_run_min_total, op_status)
     select $2 || g, $1, 10, $3, $4 from generate_series(1, $5) g returning op_id::text`,
    [item, opts.lotPrefix ?? "LOT-", opts.minutesTotal ?? 60, opts.status ?? 1, n],
  );
  return rows.map((r) => r.op_id);
}

export async function today(db: Queryable): Promise<string> {
  return (await db.query(`select ops.plant_today()::text as d`)).rows[0].d;
}

export async function addDays(db: Queryable, date: string, days: number): Promise<string> {
  return (await db.query(`select ($1::date + $2::int)::text as d`, [date, days])).rows[0].d;
}

/** What a planning test file works on: its own database with the plant seeded, and the plant's today. */
export interface PlantDb {
  db: TestDb;
  plant: Plant;
  T: string;
}

async function seeded(db: TestDb): Promise<PlantDb> {
  const plant = await seedPlant(db);
  return { db, plant, T: await today(db) };
}

/** The hooks of a planning test file: see withTestDatabase; `ready` gets the seeded plant. */
export function withPlant(test: TestFn, ready: (made: PlantDb) => unknown) {
  withTestDatabase(test, async (db) => ready(await seeded(db)));
}

/** withPlant with the API running on the database: see withTestApi. */
export function withPlantApi(test: TestFn, ready: (made: PlantDb & { api: TestApi }) => unknown) {
  withTestApi(test, async ({ db, api }) => ready({ ...(await seeded(db)), api }));
}

/** Inserts plan rows dated in the past, as the test door allows (superuser session only). */
export async function insertPastRows(
  db: TestDb,
  rows: { op: string; machine: string; shift: string; date: string; seq: number }[],
): Promise<string[]> {
  const c = await db.pool.connect();
  try {
    await c.query("begin");
    await c.query(`select set_config('planning.allow_past', 'on', true), set_config('planning.reason', 'test: past row', true)`);
    const ids: string[] = [];
    for (const r of rows) {
      const { rows: out } = await c.query(
        `insert into planning.mach_planning (mp_op_id, mp_machine_id, mp_shift_id, mp_op_proddate, mp_sequence, mp_op_status)
         values ($1, $2, $3, $4, $5, 0) returning mp_id::text`,
        [r.op, r.machine, r.shift, r.date, r.seq],
      );
      ids.push(out[0].mp_id);
    }
    await c.query("commit");
    return ids;
  } catch (e) {
    await c.query("rollback");
    throw e;
  } finally {
    c.release();
  }
}

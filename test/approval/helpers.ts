// Small builders for approval tests: items and draft jobs through the module's
// own functions, as a DBA would in psql.
import pg from "pg";
import type { TestDb } from "../helpers/db.ts";

let seq = 0;
/** A unique SKU prefix per call, so tests in one file never share items by accident. */
function uniq(prefix: string) {
  seq++;
  return `${prefix}-${process.pid}-${seq}`;
}

export async function item(db: TestDb, onHand: number, sku = uniq("item")): Promise<number> {
  const { rows } = await db.query<{ id: string }>(`select id from approval.create_item($1, $1, 'pcs', $2)`, [sku, onHand]);
  return Number(rows[0].id);
}

export async function job(db: TestDb, bom: [itemId: number, qty: number][], name = uniq("job")): Promise<number> {
  const { rows } = await db.query<{ id: string }>(`select id from approval.create_job($1, $2)`, [
    name,
    JSON.stringify(bom.map(([item_id, qty_planned]) => ({ item_id, qty_planned }))),
  ]);
  return Number(rows[0].id);
}

export async function reserved(db: TestDb, itemId: number): Promise<number> {
  const { rows } = await db.query<{ reserved: string }>(`select reserved from approval.inventory_items where id = $1`, [itemId]);
  return Number(rows[0].reserved);
}

export async function status(db: TestDb, jobId: number): Promise<string> {
  const { rows } = await db.query<{ status: string }>(`select status from approval.jobs where id = $1`, [jobId]);
  return rows[0].status;
}

/** The reserved column must equal the sum over approved/in-progress BOM lines, for every item. */
export async function reservedDrift(db: TestDb): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`
    select count(*) as n from approval.inventory_items i
     where i.reserved <> coalesce((select sum(b.qty_planned) from approval.job_bom b join approval.jobs j on j.id = b.job_id
                                    where b.item_id = i.id and j.status in ('approved', 'in_progress')), 0)`);
  return Number(rows[0].n);
}

export async function connect(url: string, n: number): Promise<pg.Client[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      return c;
    }),
  );
}

export interface PgError extends Error {
  code?: string;
  detail?: string;
  hint?: string;
}

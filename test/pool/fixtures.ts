// Pool test fixtures: a pinned revision, a job ticket and tokens, made as a DBA would.
import type pg from "pg";

interface Requirement {
  component_code?: unknown;
  default_qty?: unknown;
  is_required?: unknown;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Queryable = { query(text: string, values?: unknown[]): Promise<pg.QueryResult<any>> };

let nextProduct = 1000;
/** A product model id no other test in the file uses. */
export function newProduct() {
  return nextProduct++;
}

/** A revision with the given snapshot, a ticket over it, and `tokens` ready tokens. */
export async function makeTicket(
  db: Queryable,
  opts: { product: number; bom?: number | null; requirements?: Requirement[]; snapshot?: unknown; tokens?: number },
): Promise<{ ticketId: number; tokenIds: number[] }> {
  const snapshot = opts.snapshot ?? { structure: { component_requirements: opts.requirements ?? [] } };
  const rev = await db.query(`insert into execution.product_revisions (product_model_id, snapshot_json) values ($1, $2) returning id`, [
    opts.product,
    JSON.stringify(snapshot),
  ]);
  const ticket = await db.query(
    `insert into execution.job_tickets (id_product, bom_version_id, product_revision_id) values ($1, $2, $3) returning id`,
    [opts.product, opts.bom === undefined ? 1 : opts.bom, rev.rows[0].id],
  );
  const ticketId = Number(ticket.rows[0].id);
  const toks = await db.query(
    `insert into execution.tokens (job_ticket_id) select $1 from generate_series(1, $2) returning id`,
    [ticketId, opts.tokens ?? 1],
  );
  return { ticketId, tokenIds: toks.rows.map((r) => Number(r.id)).sort((a, b) => a - b) };
}

export async function receive(db: Queryable, product: number, bom: number, code: string, qty: number | string, key: string) {
  const r = await db.query(`select pool.receive($1, $2, $3, $4, $5) as r`, [product, bom, code, qty, key]);
  return r.rows[0].r as PoolResult;
}

export async function start(db: Queryable, tokenId: number, worker = 7, behavior = "ASSEMBLY") {
  const r = await db.query(`select execution.handle_single_piece_start($1, $2, $3) as r`, [tokenId, worker, behavior]);
  return r.rows[0].r as StartResult;
}

export async function balance(db: Queryable, product: number, bom: number, code: string): Promise<string | null> {
  const r = await db.query(
    `select quantity::text as q from pool.balances where product_model_id = $1 and bom_version_id = $2 and component_code = $3 and state = 'cut_ready'`,
    [product, bom, code],
  );
  return r.rows[0]?.q ?? null;
}

export interface PoolResult {
  status: "applied" | "duplicate" | "rejected";
  code: string;
  event_id: number | null;
  balance: string;
  delta_qty: string;
  idempotency_key: string;
}

export interface StartResult {
  ok: boolean;
  token_id: number;
  status: string;
  work_session_id: number;
  already_active: boolean;
  allocation_ok: boolean | null;
  allocation_skipped: boolean;
  reason: string | null;
  detail?: string;
  warnings: string[];
  allocations: (PoolResult & { component_code: string })[];
}

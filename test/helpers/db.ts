// A database of one's own for each test file, cloned from the migrated
// template that scripts/test.ts prepared.
import { randomBytes } from "node:crypto";
import type { TestFn } from "ava";
import pg from "pg";
import { withDatabase } from "../../src/db/embedded.ts";
import { inTransaction } from "../../src/db/pool.ts";
import { createLogger, type Logger } from "../../src/log.ts";

export const ROOT_URL = process.env.SHOPFLOOR_TEST_ROOT_URL ?? "";
const TEMPLATE = process.env.SHOPFLOOR_TEST_TEMPLATE ?? "";
const PREFIX = process.env.SHOPFLOOR_TEST_PREFIX ?? "sft_";

export const testLog: Logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? "silent", pretty: false, fd: 2 });

export interface TestDb {
  name: string;
  url: string;
  /** Superuser pool, as a DBA or the Node process connects. */
  pool: pg.Pool;
  query<R extends pg.QueryResultRow = any>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Runs fn in a transaction as `role`, with the token claims the API would set. */
  asRole<T>(role: string, fn: (c: pg.PoolClient) => Promise<T>, username?: string): Promise<T>;
  drop(): Promise<void>;
}

async function adminQuery(text: string) {
  const c = new pg.Client({ connectionString: ROOT_URL });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

export async function createTestDatabase(): Promise<TestDb> {
  if (!ROOT_URL || !TEMPLATE) throw new Error("Run the tests with `npm test` (scripts/test.ts prepares the database).");
  const name = `${PREFIX}${randomBytes(4).toString("hex")}`;
  await adminQuery(`create database "${name}" template "${TEMPLATE}"`);
  const url = withDatabase(ROOT_URL, name);
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  pool.on("error", () => {});
  return {
    name,
    url,
    pool,
    query: (text, values) => pool.query(text, values),
    asRole: (role, fn, username) =>
      inTransaction(pool, async (c) => {
        await c.query("select set_config('role', $1, true), set_config('jwt.claims.username', $2, true)", [
          role,
          username ?? `test-${role.replace(/^shopfloor_/, "")}`,
        ]);
        return fn(c);
      }),
    async drop() {
      await pool.end();
      await adminQuery(`drop database if exists "${name}" with (force)`);
    },
  };
}

/**
 * The hooks of a test file that runs a service on its own database:
 * `test.before` makes the database, starts the service on it (`start`: the API,
 * a worker) and hands both to `ready` (keep them, add the file's data);
 * `test.after.always` stops the service and drops the database.
 */
export function withServiceOnTestDatabase<S extends { stop(): Promise<void> }>(
  test: TestFn,
  start: (db: TestDb) => Promise<S>,
  ready: (db: TestDb, service: S) => unknown,
) {
  let db: TestDb | undefined;
  let service: S | undefined;
  test.before(async () => {
    db = await createTestDatabase();
    service = await start(db);
    await ready(db, service);
  });
  test.after.always(async () => {
    await service?.stop();
    await db?.drop();
  });
}

/** The hooks of a test file that needs only its own database: made in `test.before` and handed to `ready`, dropped in `test.after.always`. */
export function withTestDatabase(test: TestFn, ready: (db: TestDb) => unknown) {
  withServiceOnTestDatabase(test, async () => ({ async stop() {} }), (db) => ready(db));
}

/**
 * A wait's deadline on this machine: tests name the time a condition needs on
 * an idle machine; a busy one (another suite on the same cores) gets
 * TEST_WAIT_SCALE times as long (default 6). A passing test never waits for
 * the deadline, so only a failing one takes longer to say so.
 */
export function waitBudget(ms: number) {
  return ms * (Number(process.env.TEST_WAIT_SCALE) || 6);
}

/** Resolves when `check` returns a truthy value; fails after waitBudget(timeoutMs). */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 5000, stepMs = 25): Promise<T> {
  const budget = waitBudget(timeoutMs);
  const deadline = Date.now() + budget;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${budget} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Resolves once the API's subscriber LISTENs on `channel` in this database (a subscription is live). */
export async function listening(db: TestDb, channel: string) {
  await eventually(async () => {
    const { rows } = await db.query(
      `select 1 from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and query ~* '^\\s*listen\\M' and strpos(query, $1) > 0`,
      [channel],
    );
    return rows.length > 0;
  }, 10_000);
}

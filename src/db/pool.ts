// Connection pools. keepAlive so that dead peers are noticed; pool errors
// (a connection dropped while idle) are logged instead of crashing the process.
import pg from "pg";
import type { Logger } from "../log.ts";

export function createPool(url: string, opts: { max: number; log: Logger; name: string }): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max,
    keepAlive: true,
    application_name: `shopfloor-${opts.name}`,
    connectionTimeoutMillis: 10_000,
  });
  // During shutdown the server closing our connections is expected.
  const level = () => (pool.ending ? "debug" : "warn");
  pool.on("error", (err) => opts.log[level()]({ err, pool: opts.name }, "idle database connection failed"));
  // A checked-out client whose connection drops emits 'error' too; without a
  // listener that would crash the process instead of failing one query.
  pool.on("connect", (client) => client.on("error", (err) => opts.log[level()]({ err, pool: opts.name }, "database connection failed")));
  return pool;
}

/**
 * Runs fn between `begin` and commit on a client of `pool`; rolls back and
 * rethrows when it fails. `begin` may carry more statements (one round trip).
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>, begin = "begin"): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query(begin);
    const result = await fn(client);
    await client.query("commit");
    return result;
  } catch (e) {
    await client.query("rollback").catch(() => {});
    throw e;
  } finally {
    client.release();
  }
}

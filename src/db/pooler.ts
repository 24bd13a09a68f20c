// Shopfloor needs PostgreSQL sessions that stay one server connection:
// LISTEN/NOTIFY (worker, subscriptions), session advisory locks (watchers,
// migrations) and session settings. A pooler in transaction or statement mode
// (pgbouncer's pool_mode=transaction, most managed "pooled" endpoints) hands
// each transaction to any server connection, and those break silently. This
// check runs at start-up and refuses such a URL with a sentence.
import pg from "pg";

export class PoolerError extends Error {}

const FIX =
  "Shopfloor needs session state (LISTEN/NOTIFY, advisory locks, session settings): point DATABASE_URL at PostgreSQL directly, or at a pooler in session mode (pgbouncer pool_mode = session).";

/**
 * Client A sets a session setting and notes its server process; client B then
 * holds a transaction open (pinning a server connection, in a transaction pooler
 * the one A just gave back); A asks again. A direct or session-pooled
 * connection answers from the same process with the setting kept.
 */
export async function refuseTransactionPooler(url: string, timeoutMs = 5000) {
  const a = new pg.Client({ connectionString: url, application_name: "shopfloor-pooler-check" });
  const b = new pg.Client({ connectionString: url, application_name: "shopfloor-pooler-check" });
  a.on("error", () => {});
  b.on("error", () => {});
  await a.connect();
  try {
    await b.connect();
    const first = await a.query<{ pid: number }>("select pg_backend_pid() as pid, set_config('shopfloor.session_check', 'kept', false)");
    try {
      await b.query("begin");
      await b.query("select pg_backend_pid()");
    } catch (e) {
      throw new PoolerError(`DATABASE_URL refuses a transaction of two statements (${(e as Error).message}), as a pooler in statement mode does. ${FIX}`);
    }
    let timer: NodeJS.Timeout | undefined;
    const second = await Promise.race([
      a.query<{ pid: number; probe: string | null }>("select pg_backend_pid() as pid, current_setting('shopfloor.session_check', true) as probe"),
      new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs))),
    ]).finally(() => clearTimeout(timer));
    if (second === null) {
      throw new PoolerError(`DATABASE_URL made one connection wait for another's transaction, as a transaction-mode pooler with one server connection does. ${FIX}`);
    }
    const row = second.rows[0];
    if (row.pid !== first.rows[0].pid || row.probe !== "kept") {
      throw new PoolerError(
        `DATABASE_URL goes through a pooler in transaction mode: one connection was served by PostgreSQL processes ${first.rows[0].pid} and ${row.pid}, and its session setting was ${row.probe === "kept" ? "kept" : "lost"}. ${FIX}`,
      );
    }
  } finally {
    await Promise.all([a.end().catch(() => {}), b.end().catch(() => {})]);
  }
}

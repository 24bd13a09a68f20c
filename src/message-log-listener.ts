// Operator messages reach the process log without costing their writer a job
// row. Every INSERT statement on ops.messages already sends a NOTIFY on
// `ops_message_added` (for the Messages page); the worker process listens to
// it and, after the writer's commit, asks for one `ops_log_messages` job
// (job_key `ops_log_messages`: a burst collapses into one waiting job).
//
// Why not ops_private.wake in the trigger, like tracking and the Grundner
// exchange: through graphile-worker's public functions a wake writes its
// job's row in the writer's transaction, which cost post_message a quarter of
// its rate (docs/ops.md, "Measured"). A NOTIFY is delivered only after the
// commit, so the job asked for here always sees the message: no lost wake-up.
//
// Nothing is lost while nobody listens either: the job is asked for again
// whenever the LISTEN (re)connects, and the crontab asks every minute.
import type pg from "pg";
import type { Logger } from "./log.ts";

const CHANNEL = "ops_message_added";
const ASK = "select ops_private.enqueue('ops_log_messages', '{}', 'ops_log_messages')";
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

export interface MessageLogListener {
  /** True while the LISTEN connection is up. */
  listening(): boolean;
  stop(): Promise<void>;
}

export function listenForMessages(pool: pg.Pool, log: Logger): MessageLogListener {
  let stopped = false;
  let client: pg.PoolClient | undefined;
  let live = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let retryMs = RETRY_MIN_MS;
  // At most one request in flight; notifications meanwhile ask for one more.
  let asking: Promise<void> | undefined;
  let askAgain = false;

  const ask = () => {
    if (stopped) return;
    if (asking) {
      askAgain = true;
      return;
    }
    asking = pool
      .query(ASK)
      .then(
        () => undefined,
        (err) => log.warn({ err }, "could not ask for the message log job; the crontab asks again within a minute"),
      )
      .finally(() => {
        asking = undefined;
        if (askAgain) {
          askAgain = false;
          ask();
        }
      });
  };

  const drop = (c: pg.PoolClient, err?: Error) => {
    if (client !== c) return;
    client = undefined;
    live = false;
    c.removeAllListeners("notification");
    c.release(err ?? true); // never back into the pool: it was LISTENing
    if (!stopped) {
      if (err) log.warn({ err, retryInMs: retryMs }, `lost the LISTEN on ${CHANNEL}; reconnecting`);
      retryTimer = setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    }
  };

  const connect = async () => {
    retryTimer = undefined;
    if (stopped) return;
    let c: pg.PoolClient | undefined;
    try {
      c = await pool.connect();
      const mine = c;
      mine.on("error", (err) => drop(mine, err));
      mine.on("notification", (n) => {
        if (n.channel === CHANNEL) ask();
      });
      client = mine;
      await mine.query(`listen ${CHANNEL}`);
      if (stopped) return drop(mine);
      live = true;
      retryMs = RETRY_MIN_MS;
      ask(); // messages posted while nobody listened
    } catch (err) {
      if (c && client === c) drop(c, err as Error);
      else if (!stopped) {
        log.warn({ err, retryInMs: retryMs }, `could not LISTEN on ${CHANNEL}; retrying`);
        retryTimer = setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      }
    }
  };

  void connect();
  return {
    listening: () => live,
    async stop() {
      stopped = true;
      clearTimeout(retryTimer);
      if (client) drop(client);
      await asking;
    },
  };
}

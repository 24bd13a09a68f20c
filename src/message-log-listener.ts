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
  // Set once the LISTEN is in place.
  let client: pg.PoolClient | undefined;
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

  const retryLater = (err: unknown, what: string) => {
    log.warn({ err, retryInMs: retryMs }, what);
    retryTimer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  };

  const release = (c: pg.PoolClient, err?: Error) => {
    c.removeAllListeners("notification");
    c.release(err ?? true); // never back into the pool: it was LISTENing
  };

  // The connection died while listening (an error during connect is the catch's).
  const lost = (c: pg.PoolClient, err: Error) => {
    if (client !== c) return;
    client = undefined;
    release(c, err);
    if (!stopped) retryLater(err, `lost the LISTEN on ${CHANNEL}; reconnecting`);
  };

  const connect = async () => {
    retryTimer = undefined;
    if (stopped) return;
    let c: pg.PoolClient | undefined;
    try {
      c = await pool.connect();
      const mine = c;
      mine.on("error", (err) => lost(mine, err));
      mine.on("notification", (n) => n.channel === CHANNEL && ask());
      await mine.query(`listen ${CHANNEL}`);
      if (stopped) return release(mine);
      client = mine;
      retryMs = RETRY_MIN_MS;
      ask(); // messages posted while nobody listened
    } catch (err) {
      if (c) release(c, err as Error);
      if (!stopped) retryLater(err, `could not LISTEN on ${CHANNEL}; retrying`);
    }
  };

  void connect();
  return {
    listening: () => client !== undefined,
    async stop() {
      stopped = true;
      clearTimeout(retryTimer);
      if (client) release(client);
      client = undefined;
      await asking;
    },
  };
}

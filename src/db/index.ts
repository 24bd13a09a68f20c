// Where the database is: DATABASE_URL, or the embedded server under DATA_DIR.
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import { refuseTransactionPooler } from "./pooler.ts";
import { ensureDatabase, redactUrl, startEmbedded, withDatabase, type EmbeddedServer } from "./embedded.ts";

const EMBEDDED_DATABASE_NAME = "shopfloor";

export interface Database {
  /** The application database. */
  url: string;
  /** The same server's maintenance database, when we know it (embedded). */
  rootUrl: string | undefined;
  embedded: EmbeddedServer | undefined;
  /** Stops the embedded server if this process started it; no-op otherwise. */
  stop(): Promise<void>;
}

export async function openDatabase(config: Config, log: Logger): Promise<Database> {
  if (config.databaseUrl) {
    log.info({ database: redactUrl(config.databaseUrl) }, "using the database from DATABASE_URL");
    await refuseTransactionPooler(config.databaseUrl);
    return { url: config.databaseUrl, rootUrl: undefined, embedded: undefined, stop: async () => {} };
  }
  const embedded = await startEmbedded({ dataDir: config.dataDir, port: config.embeddedPgPort, home: config.embeddedPgHome, log });
  try {
    await ensureDatabase(embedded.rootUrl, EMBEDDED_DATABASE_NAME);
  } catch (e) {
    await embedded.stop();
    throw e;
  }
  return {
    url: withDatabase(embedded.rootUrl, EMBEDDED_DATABASE_NAME),
    rootUrl: embedded.rootUrl,
    embedded,
    stop: () => embedded.stop(),
  };
}

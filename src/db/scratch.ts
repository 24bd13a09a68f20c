// A throwaway PostgreSQL for tests and benchmarks: the embedded server in a
// temp folder (fast settings, nothing kept), or an existing server given by
// URL. Databases it creates share a prefix and are all dropped by cleanup().
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import type { Logger } from "../log.ts";
import { startEmbedded, withDatabase, type EmbeddedServer } from "./embedded.ts";
import { migrateDatabase } from "./migrate.ts";

export interface ScratchServer {
  rootUrl: string;
  embedded: boolean;
  prefix: string;
  /** Creates `${prefix}${suffix}`, migrated, and returns its URL. */
  createMigratedDatabase(suffix: string): Promise<string>;
  /** Forces everyone off a database (a template cannot be copied while in use). */
  disconnectAll(database: string): Promise<void>;
  cleanup(): Promise<void>;
}

export async function startScratchServer(opts: { url?: string; log: Logger; prefix: string }): Promise<ScratchServer> {
  let server: EmbeddedServer | undefined;
  let dataDir: string | undefined;
  let rootUrl = opts.url;
  if (!rootUrl) {
    dataDir = mkdtempSync(path.join(os.tmpdir(), "shopfloor-scratch-"));
    chmodSync(dataDir, 0o755); // the postgres OS user must enter it when we run as root
    server = await startEmbedded({
      dataDir,
      port: 0,
      log: opts.log,
      settings: { fsync: "off", synchronous_commit: "off", full_page_writes: "off", max_connections: "300" },
    });
    rootUrl = server.rootUrl;
  }
  const url = rootUrl;
  const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  return {
    rootUrl: url,
    embedded: Boolean(server),
    prefix: opts.prefix,
    async createMigratedDatabase(suffix) {
      const name = `${opts.prefix}${suffix}`;
      await admin((c) => c.query(`create database "${name}"`));
      const dbUrl = withDatabase(url, name);
      await migrateDatabase({ url: dbUrl, rootUrl: url, log: opts.log });
      return dbUrl;
    },
    async disconnectAll(database) {
      await admin((c) =>
        c.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()", [database]),
      );
    },
    async cleanup() {
      await admin(async (c) => {
        const { rows } = await c.query<{ datname: string }>("select datname from pg_database where starts_with(datname, $1)", [opts.prefix]);
        for (const { datname } of rows) await c.query(`drop database if exists "${datname}" with (force)`);
      }).catch((err) => opts.log.warn({ err }, "could not drop scratch databases"));
      await server?.stop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

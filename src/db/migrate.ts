// Migrations: graphile-migrate applies migrations/committed (state), the
// graphile-worker schema is installed, then the sql/ layer (behaviour) is
// re-applied. One process at a time: a session advisory lock serialises
// processes that start together.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as gm from "graphile-migrate";
// Not part of graphile-migrate's documented API, but the only way to close its
// cached pools now: their error handler exits the process, so they must be
// gone before the database restarts or a connection is terminated.
import { clearAllPools as closeMigratePools } from "graphile-migrate/dist/pgReal.js";
import { runMigrations as runWorkerMigrations } from "graphile-worker";
import pg from "pg";
import type { Logger } from "../log.ts";
import { withDatabase } from "./embedded.ts";
import { createPool } from "./pool.ts";
import { applySqlLayer, SQL_DIR } from "./sql-layer.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MIGRATE_LOCK = "shopfloor.migrate";

export interface MigrateTarget {
  /** The application database. */
  url: string;
  /** A maintenance database on the same server (for reset); defaults to `postgres`. */
  rootUrl?: string;
  log: Logger;
}

function gmLogger(log: Logger) {
  return new gm.Logger(() => (level, message) => {
    // graphile-migrate keeps idle connections; they end when the embedded
    // server stops, which is expected and not worth an error line.
    if (message.includes("terminating connection due to administrator command")) return;
    const l = level === "error" ? "error" : level === "warning" ? "warn" : level === "debug" ? "debug" : "info";
    log[l]({ component: "migrate" }, message);
  });
}

function migrateSettings(target: MigrateTarget): gm.Settings {
  const rc = JSON.parse(readFileSync(`${ROOT}.gmrc`, "utf8")) as gm.Settings & { "//"?: string };
  delete rc["//"];
  const dbName = decodeURIComponent(new URL(target.url).pathname.slice(1));
  return {
    ...rc,
    connectionString: target.url,
    shadowConnectionString: withDatabase(target.url, `${dbName}_shadow`),
    rootConnectionString: target.rootUrl ?? withDatabase(target.url, "postgres"),
    databaseOwner: decodeURIComponent(new URL(target.url).username) || undefined,
    migrationsFolder: `${ROOT}migrations`,
    logger: gmLogger(target.log),
  };
}

async function withMigrateLock<T>(url: string, fn: () => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("select pg_advisory_lock(hashtext($1))", [MIGRATE_LOCK]);
    return await fn();
  } finally {
    closeMigratePools();
    await client.end(); // ending the session releases the lock
  }
}

/** Everything after the committed migrations: worker schema, sql/ layer. */
async function afterMigrations(target: MigrateTarget) {
  const pool = createPool(target.url, { max: 1, log: target.log, name: "migrate" });
  try {
    await runWorkerMigrations({ pgPool: pool });
    const client = await pool.connect();
    try {
      const files = await applySqlLayer(client);
      target.log.info({ files: files.length }, "sql layer applied");
    } finally {
      client.release();
    }
  } finally {
    await pool.end();
  }
}

export async function migrateDatabase(target: MigrateTarget): Promise<void> {
  const started = Date.now();
  await withMigrateLock(target.url, async () => {
    await gm.migrate(migrateSettings(target));
    await afterMigrations(target);
  });
  target.log.info({ ms: Date.now() - started }, "database is up to date");
}

/** Drops and recreates the database, then migrates it. Development only. */
export async function resetDatabase(target: MigrateTarget): Promise<void> {
  try {
    await gm.reset(migrateSettings(target), false);
  } finally {
    closeMigratePools();
  }
  await migrateDatabase(target);
}

/**
 * Development: graphile-migrate watch re-runs migrations/current.sql (and then
 * the sql/ layer, see .gmrc) on change; a change to a sql/ file re-applies the
 * layer. Returns a function that stops watching sql/.
 */
export async function watchMigrations(target: MigrateTarget): Promise<() => Promise<void>> {
  await migrateDatabase(target);
  await gm.watch(migrateSettings(target), false, false);
  const { default: chokidar } = await import("chokidar");
  const watcher = chokidar.watch(SQL_DIR, { ignoreInitial: true });
  watcher.on("all", async (_event, file) => {
    if (!file.endsWith(".sql")) return;
    const client = new pg.Client({ connectionString: target.url });
    try {
      await client.connect();
      const files = await applySqlLayer(client);
      target.log.info({ files: files.length, changed: file }, "sql layer re-applied");
    } catch (err) {
      target.log.error({ err: (err as Error).message }, "sql layer not applied; the database is unchanged");
    } finally {
      await client.end().catch(() => {});
    }
  });
  return () => watcher.close();
}

/** Commits migrations/current.sql as the next committed migration. */
export async function commitMigration(target: MigrateTarget, message?: string): Promise<void> {
  try {
    await gm.commit(migrateSettings(target), message);
  } finally {
    closeMigratePools();
  }
  writeFileSync(`${ROOT}migrations/current.sql`, ""); // main keeps it empty
}

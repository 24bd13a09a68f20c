// One Shopfloor process: opens the database (embedded when DATABASE_URL is
// unset), migrates it, then runs the roles asked for: api, worker, watch.
// stop() shuts the parts down in reverse order and stops the embedded server last.
import { mkdirSync } from "node:fs";
import path from "node:path";
import type pg from "pg";
import { startApi, type Api } from "./api/server.ts";
import { resolveJwtSecret } from "./auth/jwt.ts";
import type { Config } from "./config.ts";
import { ensureApiLogins, resolveApiDbPassword, RolePools } from "./db/api-roles.ts";
import { openDatabase, type Database } from "./db/index.ts";
import { migrateDatabase } from "./db/migrate.ts";
import { createPool } from "./db/pool.ts";
import { grundnerHealth } from "./grundner/pump.ts";
import { Health } from "./health.ts";
import type { Logger } from "./log.ts";
import { createMetrics } from "./metrics.ts";
import { startWatchers, type Watchers } from "./watchers/index.ts";
import { folderWatches } from "./watchers/registry.ts";
import { startWorker, type Worker } from "./worker.ts";

export type Role = "api" | "worker" | "watch";

export interface App {
  db: Database;
  pool: pg.Pool;
  api: Api | undefined;
  worker: Worker | undefined;
  watchers: Watchers | undefined;
  health: Health;
  stop(): Promise<void>;
}

/**
 * Keeps the database in step with the configuration: the plant time zone
 * setting, and a nesting machine for every Ready-to-Run folder.
 */
async function syncSettings(pool: pg.Pool, config: Config) {
  await pool.query(
    `update ops.settings set value = to_jsonb($1::text), updated_at = now(), updated_by = 'PLANT_TIMEZONE'
      where key = 'plant.timezone' and value is distinct from to_jsonb($1::text)`,
    [config.plantTimezone],
  );
  await pool.query("select nesting_private.ensure_machine(d) from unnest($1::text[]) d", [config.readyDirs]);
}

export async function startApp(config: Config, log: Logger, roles: Role[]): Promise<App> {
  const jwtSecret = roles.includes("api") ? resolveJwtSecret(config) : "";
  const db = await openDatabase(config, log);
  const parts: { name: string; stop: () => Promise<void> }[] = [];
  const stopAll = async () => {
    for (const p of parts.reverse().splice(0)) {
      try {
        await p.stop();
      } catch (err) {
        log.warn({ err, part: p.name }, "error while stopping");
      }
    }
    await db.stop();
  };
  try {
    await migrateDatabase({ url: db.url, rootUrl: db.rootUrl, log });
    const pool = createPool(db.url, { max: config.dbPoolMax, log, name: roles.join("+") });
    parts.push({ name: "pool", stop: () => pool.end() });
    await syncSettings(pool, config);
    // The default folders live under DATA_DIR; configured shares are never created here.
    for (const dir of [config.grundnerDir, config.processedRoot, ...config.readyDirs]) {
      if (dir.startsWith(config.dataDir + path.sep)) mkdirSync(dir, { recursive: true });
    }
    const health = new Health(pool);
    const app: App = { db, pool, api: undefined, worker: undefined, watchers: undefined, health, stop: stopAll };

    if (roles.includes("worker")) {
      const worker = await startWorker({
        pool,
        config,
        concurrency: config.workerConcurrency,
        pollInterval: config.workerPollIntervalMs,
        log,
      });
      parts.push({ name: "worker", stop: () => worker.stop() });
      health.register("worker", () => worker.health());
      health.register("grundner", () => grundnerHealth(pool));
      app.worker = worker;
    }
    if (roles.includes("watch")) {
      const watchers = startWatchers(folderWatches(config, pool), { url: db.url, log, lockRetryMs: config.watchLockRetryMs });
      parts.push({ name: "watchers", stop: () => watchers.stop() });
      health.register("watchers", () => watchers.health());
      app.watchers = watchers;
    }
    if (roles.includes("api")) {
      // Requests run on login roles that are neither superuser nor owner.
      const apiDbPassword = resolveApiDbPassword(config);
      await ensureApiLogins(pool, db.url, apiDbPassword, log);
      const rolePools = new RolePools({ ownerUrl: db.url, password: apiDbPassword, max: config.dbPoolMax, log });
      parts.push({ name: "api pools", stop: () => rolePools.end() });
      const metrics = createMetrics({ pool, log, watchers: () => app.watchers?.health(), worker: () => app.worker?.health() });
      const api = await startApi({
        metrics,
        metricsToken: config.metricsToken,
        production: config.nodeEnv === "production",
        pool,
        rolePools,
        limits: {
          maxRequestBytes: config.graphqlMaxRequestBytes,
          maxDepth: config.graphqlMaxDepth,
          maxFields: config.graphqlMaxFields,
          maxPageSize: config.graphqlMaxPageSize,
          introspection: config.graphqlIntrospection,
        },
        graphiql: config.graphiql,
        port: config.port,
        host: config.host,
        jwtSecret,
        jwtExpiresIn: config.jwtExpiresIn,
        health,
        log,
      });
      parts.push({ name: "api", stop: () => api.stop() });
      app.api = api;
    }
    return app;
  } catch (e) {
    await stopAll();
    throw e;
  }
}

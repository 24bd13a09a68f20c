#!/usr/bin/env node
// shopfloor start | serve | worker | watch | migrate | token | psql
import { spawn, spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import type { App, Role } from "./app.ts";
import { resolveJwtSecret, signToken } from "./auth/jwt.ts";
import { ConfigError, loadConfig, type Config } from "./config.ts";
import { openDatabase } from "./db/index.ts";
import { commitMigration, migrateDatabase, resetDatabase, watchMigrations } from "./db/migrate.ts";
import { backup, restore } from "./db/backup.ts";
import { redactUrl, stateFile } from "./db/embedded.ts";
import { existsSync } from "node:fs";
import path from "node:path";
import { createLogger, type Logger } from "./log.ts";
import pg from "pg";

const USAGE = `Usage: shopfloor <command> [options]

Commands:
  start              run everything in one process: API, worker and folder watchers (npm start)
  serve              run the API only (GraphQL, Ruru, REST, subscriptions)
  worker             run the graphile-worker tasks only
  watch              run the folder watchers only
  migrate            apply migrations and the sql/ layer, then exit
    --reset          drop and recreate the database first (development only)
    --watch          keep running: re-apply migrations/current.sql and sql/ on change
    --commit [-m M]  commit migrations/current.sql as the next migration
  token [--user U]   print a token for user U (default: admin), for the Authorization header
  psql               open psql on the database (prints the URL if psql is not installed)
  backup FILE        write a consistent backup of the database to FILE (.tar, or .tar.gz), while it runs
    --force          overwrite FILE if it exists
  restore FILE       restore FILE into an empty data directory (embedded) or database (DATABASE_URL)
    --force          replace what is there (an embedded cluster is moved aside, not deleted)
    --pgdata DIR     restore a physical backup of a DATABASE_URL server into the data directory DIR

Configuration comes from environment variables (see README.md).`;

const ROLE_COMMANDS: Record<string, Role[]> = {
  start: ["api", "worker", "watch"],
  serve: ["api"],
  worker: ["worker"],
  watch: ["watch"],
};

async function runRoles(config: Config, log: Logger, roles: Role[]) {
  const started = Date.now();
  let app: App | undefined;
  let stopping = false;
  // Armed at the first signal: whatever is still running by then, the database is stopped and we exit.
  const armShutdownTimer = () =>
    setTimeout(async () => {
      log.error({ timeoutMs: config.shutdownTimeoutMs }, "shutdown took too long; stopping the database and exiting");
      await app?.db.stop().catch(() => {});
      process.exit(1);
    }, config.shutdownTimeoutMs);
  let timer: NodeJS.Timeout | undefined;
  const stop = async (running: App) => {
    await running.stop();
    clearTimeout(timer);
    log.info("stopped cleanly");
    process.exit(0);
  };
  // Listen before starting anything: a signal that comes during start-up, or
  // the instant after "Shopfloor is up", must not find Node's default action
  // (which exits at once and leaves the embedded PostgreSQL behind).
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting now");
      void (app?.db.stop() ?? Promise.resolve()).catch(() => {}).finally(() => process.exit(1));
      return;
    }
    stopping = true;
    timer = armShutdownTimer();
    log.info({ signal }, app ? "shutting down" : "shutting down as soon as start-up has finished");
    if (app) void stop(app);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  // Grafast reads GRAPHILE_ENV when it is first imported.
  process.env.GRAPHILE_ENV ??= config.nodeEnv === "development" ? "development" : "production";
  const { startApp } = await import("./app.ts");
  app = await startApp(config, log, roles);
  log.info({ roles, ms: Date.now() - started }, app.api ? `Shopfloor is up: ${app.api.url}/graphiql` : "Shopfloor is up");
  if (stopping) await stop(app);
}

async function withDatabase<T>(config: Config, log: Logger, fn: (url: string, rootUrl: string | undefined) => Promise<T>) {
  const db = await openDatabase(config, log);
  try {
    return await fn(db.url, db.rootUrl);
  } finally {
    await db.stop();
  }
}

async function migrateCommand(config: Config, log: Logger, args: string[]) {
  const { values } = parseArgs({
    args,
    options: { reset: { type: "boolean" }, watch: { type: "boolean" }, commit: { type: "boolean" }, message: { type: "string", short: "m" } },
  });
  if (values.reset && config.nodeEnv === "production") throw new Error("migrate --reset is refused when NODE_ENV=production");
  await withDatabase(config, log, async (url, rootUrl) => {
    const target = { url, rootUrl, log };
    if (values.commit) return commitMigration(target, values.message);
    if (values.reset) return resetDatabase(target);
    if (values.watch) {
      const stopWatching = await watchMigrations(target);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", () => resolve());
        process.once("SIGTERM", () => resolve());
      });
      await stopWatching();
      return;
    }
    return migrateDatabase(target);
  });
}

async function tokenCommand(config: Config, log: Logger, args: string[]) {
  const { values } = parseArgs({ args, options: { user: { type: "string", short: "u", default: "admin" } } });
  const secret = resolveJwtSecret(config);
  const token = await withDatabase(config, log, async (url, rootUrl) => {
    await migrateDatabase({ url, rootUrl, log });
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query(
        `select (t).role, (t).user_id, (t).username, (t).exp
           from (select ops_private.token_for(u) as t from ops_private.users u
                  where u.username = lower($1) and u.disabled_at is null) x`,
        [values.user],
      );
      if (rows.length === 0) throw new Error(`No active user named ${values.user}. Create one with: select ops.create_user('name', 'operator', 'password');`);
      return signToken({ ...rows[0], exp: Number(rows[0].exp) }, secret, config.jwtExpiresIn);
    } finally {
      await client.end();
    }
  });
  process.stdout.write(token + "\n");
  process.stderr.write(`Use it as the header  Authorization: Bearer <token>  (user ${values.user})\n`);
}

async function psqlCommand(config: Config, log: Logger) {
  await withDatabase(config, log, async (url) => {
    const found = spawnSync("psql", ["--version"], { stdio: "ignore" }).status === 0;
    if (!found) {
      process.stdout.write(`${url}\n`);
      process.stderr.write(`psql is not installed here; connect any client to the URL above (keep this running: Ctrl-C stops the embedded server).\n`);
      await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
      return;
    }
    log.info({ database: redactUrl(url) }, "opening psql");
    await new Promise<void>((resolve) => {
      const child = spawn("psql", [url], { stdio: "inherit" });
      process.on("SIGINT", () => {}); // Ctrl-C belongs to psql while it runs
      child.on("exit", () => resolve());
    });
  });
}

async function backupCommand(config: Config, log: Logger, args: string[]) {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { force: { type: "boolean" } } });
  if (positionals.length !== 1) throw new Error("usage: npm run backup -- FILE [--force]");
  const file = path.resolve(positionals[0]);
  if (existsSync(file) && !values.force) throw new Error(`${file} exists; choose another name or add --force`);
  await withDatabase(config, log, (url, rootUrl) =>
    backup({ url, superUrl: rootUrl, file, log, embeddedStateFile: config.databaseUrl ? undefined : stateFile(config.dataDir) }),
  );
}

async function restoreCommand(config: Config, log: Logger, args: string[]) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { force: { type: "boolean" }, pgdata: { type: "string" } },
  });
  if (positionals.length !== 1) throw new Error("usage: npm run restore -- FILE [--force] [--pgdata DIR]");
  await restore({
    file: path.resolve(positionals[0]),
    log,
    force: Boolean(values.force),
    pgdata: values.pgdata ? path.resolve(values.pgdata) : undefined,
    dataDir: config.databaseUrl ? undefined : config.dataDir,
    url: config.databaseUrl,
  });
}

async function main(argv: string[]) {
  const [command = "help", ...rest] = argv;
  if (command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(USAGE + "\n");
    return;
  }
  const config = loadConfig();
  // token and psql print on stdout; keep their logs on stderr.
  const quietCommand = command === "token" || command === "psql";
  const log = createLogger({ level: quietCommand ? "warn" : config.logLevel, pretty: config.logPretty, fd: quietCommand ? 2 : 1 });
  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled promise rejection"));

  if (ROLE_COMMANDS[command]) return runRoles(config, log, ROLE_COMMANDS[command]);
  if (command === "migrate") return migrateCommand(config, log, rest);
  if (command === "token") return tokenCommand(config, log, rest);
  if (command === "psql") return psqlCommand(config, log);
  if (command === "backup") return backupCommand(config, log, rest);
  if (command === "restore") return restoreCommand(config, log, rest);
  process.stderr.write(`Unknown command: ${command}\n\n${USAGE}\n`);
  process.exitCode = 2;
}

main(process.argv.slice(2)).catch((err) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  process.stderr.write(`shopfloor: ${err instanceof Error ? err.message : String(err)}\n`);
  if (process.env.LOG_LEVEL === "debug" && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});

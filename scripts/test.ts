// npm test: one PostgreSQL for the whole run (embedded, or TEST_DATABASE_URL),
// a template database migrated once, then ava. Each test file clones the
// template (test/helpers/db.ts), so files run in parallel and may commit.
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { startEmbedded, withDatabase, type EmbeddedServer } from "../src/db/embedded.ts";
import { migrateDatabase } from "../src/db/migrate.ts";
import { createLogger } from "../src/log.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? "warn", pretty: false, fd: 2 });
const runId = `${process.pid}_${Date.now().toString(36)}`;
const template = `sft_${runId}_template`;

let server: EmbeddedServer | undefined;
let dataDir: string | undefined;
let rootUrl: string;

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: rootUrl });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function cleanup() {
  if (rootUrl) {
    await admin(async (c) => {
      const { rows } = await c.query<{ datname: string }>("select datname from pg_database where datname like $1", [`sft\\_${runId}\\_%`]);
      for (const { datname } of rows) await c.query(`drop database if exists "${datname}" with (force)`);
    }).catch((e) => log.warn({ err: e }, "could not drop test databases"));
  }
  await server?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}

async function main(): Promise<number> {
  const started = Date.now();
  if (process.env.TEST_DATABASE_URL) {
    rootUrl = process.env.TEST_DATABASE_URL;
  } else {
    dataDir = mkdtempSync(path.join(os.tmpdir(), "shopfloor-test-"));
    chmodSync(dataDir, 0o755); // the postgres OS user must enter it when we run as root
    server = await startEmbedded({
      dataDir,
      port: 0,
      log,
      settings: { fsync: "off", synchronous_commit: "off", full_page_writes: "off", max_connections: "300" },
    });
    rootUrl = server.rootUrl;
  }
  await admin((c) => c.query(`create database "${template}"`));
  const templateUrl = withDatabase(rootUrl, template);
  await migrateDatabase({ url: templateUrl, rootUrl, log });
  // A template cannot be copied while anyone is connected to it.
  await admin((c) =>
    c.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()", [template]),
  );
  process.stderr.write(`test database ready in ${Date.now() - started} ms (${server ? "embedded" : "TEST_DATABASE_URL"})\n`);

  const ava = spawn(process.execPath, [path.join(ROOT, "node_modules/ava/entrypoints/cli.js"), ...process.argv.slice(2)], {
    stdio: "inherit",
    env: {
      ...process.env,
      SHOPFLOOR_TEST_ROOT_URL: rootUrl,
      SHOPFLOOR_TEST_TEMPLATE: template,
      SHOPFLOOR_TEST_RUN_ID: runId,
    },
  });
  const forward = (sig: NodeJS.Signals) => ava.kill(sig);
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  return new Promise((resolve) => ava.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

let code = 1;
try {
  code = await main();
} catch (e) {
  process.stderr.write(`test setup failed: ${(e as Error).stack ?? e}\n`);
} finally {
  await cleanup();
}
process.exit(code);

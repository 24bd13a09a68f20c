// npm test: one PostgreSQL for the whole run (embedded, or TEST_DATABASE_URL),
// a template database migrated once, then ava. Each test file clones the
// template (test/helpers/db.ts), so files run in parallel and may commit.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { EmbeddedSetupError } from "../src/db/embedded.ts";
import { startScratchServer, type ScratchServer } from "../src/db/scratch.ts";
import { createLogger } from "../src/log.ts";

const AVA = fileURLToPath(new URL("../node_modules/ava/entrypoints/cli.js", import.meta.url));
const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? "warn", pretty: false, fd: 2 });
const runId = `${process.pid}_${Date.now().toString(36)}`;

async function main(server: ScratchServer): Promise<number> {
  const started = Date.now();
  await server.createMigratedDatabase("template");
  await server.disconnectAll(`${server.prefix}template`);
  process.stderr.write(`test database ready in ${Date.now() - started} ms (${server.embedded ? "embedded" : "TEST_DATABASE_URL"})\n`);

  const ava = spawn(process.execPath, [AVA, ...process.argv.slice(2)], {
    stdio: "inherit",
    env: {
      ...process.env,
      SHOPFLOOR_TEST_ROOT_URL: server.rootUrl,
      SHOPFLOOR_TEST_TEMPLATE: `${server.prefix}template`,
      SHOPFLOOR_TEST_PREFIX: server.prefix,
      GRAPHILE_ENV: process.env.GRAPHILE_ENV ?? "production",
    },
  });
  const forward = (sig: NodeJS.Signals) => ava.kill(sig);
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  return new Promise((resolve) => ava.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

let code = 1;
let server: ScratchServer | undefined;
try {
  server = await startScratchServer({ url: process.env.TEST_DATABASE_URL, log, prefix: `sft_${runId}_` });
  code = await main(server);
} catch (e) {
  // A known set-up problem is one sentence; anything else keeps its stack.
  process.stderr.write(`test setup failed: ${e instanceof EmbeddedSetupError ? e.message : ((e as Error).stack ?? e)}\n`);
} finally {
  await server?.cleanup();
}
process.exit(code);

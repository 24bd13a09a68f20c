// A Shopfloor worker process for the kill -9 tests (test/nesting/crash.test.ts):
// the real worker with the real tasks, on the share and database given in
// the environment. Prints "ready" once running; never stops by itself.
import { loadConfig } from "../../src/config.ts";
import { createPool } from "../../src/db/pool.ts";
import { createLogger } from "../../src/log.ts";
import { startWorker } from "../../src/worker.ts";

const config = loadConfig(process.env);
const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? "silent", pretty: false, fd: 2 });
const pool = createPool(process.env.CHILD_DATABASE_URL!, { max: 4, log, name: process.env.CHILD_NAME ?? "crash-child" });
await startWorker({ pool, config, concurrency: 2, pollInterval: 500, log });
process.stdout.write("ready\n");

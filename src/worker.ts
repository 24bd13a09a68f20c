// The worker process: graphile-worker running the tasks in workers/ and the
// crontab. Tasks do only what needs the filesystem or the process log.
import { fileURLToPath } from "node:url";
import { Logger as WorkerLogger, run, type Runner } from "graphile-worker";
import type pg from "pg";
import type { PartHealth } from "./health.ts";
import type { Logger } from "./log.ts";

export const TASK_DIR = fileURLToPath(new URL("../workers/", import.meta.url));
export const CRONTAB_FILE = fileURLToPath(new URL("../crontab", import.meta.url));

export interface WorkerOptions {
  pool: pg.Pool;
  concurrency: number;
  pollInterval: number;
  log: Logger;
}

export interface Worker {
  health(): PartHealth;
  stop(): Promise<void>;
}

function workerLogger(log: Logger) {
  return new WorkerLogger((scope) => (level, message, meta) => {
    const l = level === "error" ? "error" : level === "warning" ? "warn" : level === "debug" ? "debug" : "info";
    log[l]({ ...scope, ...(meta ?? {}) }, message);
  });
}

export async function startWorker(opts: WorkerOptions): Promise<Worker> {
  const log = opts.log.child({ component: "worker" });
  let listening = false;
  let lastError: string | undefined;
  const runner: Runner = await run({
    pgPool: opts.pool,
    taskDirectory: TASK_DIR,
    crontabFile: CRONTAB_FILE,
    concurrency: opts.concurrency,
    pollInterval: opts.pollInterval,
    noHandleSignals: true,
    logger: workerLogger(log),
  });
  runner.events.on("pool:listen:success", () => {
    listening = true;
    lastError = undefined;
  });
  runner.events.on("pool:listen:error", ({ error }) => {
    listening = false;
    lastError = String((error as Error)?.message ?? error);
  });
  runner.events.on("job:failed", ({ job, error }) =>
    log.warn({ task: job.task_identifier, jobId: job.id, attempts: job.attempts, err: error }, "job failed; it will be retried"),
  );
  let stopped = false;
  log.info({ tasks: TASK_DIR, concurrency: opts.concurrency }, "worker started");
  return {
    health: () => ({ ok: !stopped && lastError === undefined, status: stopped ? "stopped" : "running", listening, lastError }),
    async stop() {
      if (stopped) return;
      stopped = true;
      await runner.stop();
      log.info("worker stopped");
    },
  };
}

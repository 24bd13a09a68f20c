// The worker process: graphile-worker running the tasks in workers/ and the
// crontab. Tasks do only what needs the filesystem or the process log.
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Logger as WorkerLogger, run, type Runner, type Task, type TaskList } from "graphile-worker";
import type { Config } from "./config.ts";
import type pg from "pg";
import type { PartHealth } from "./health.ts";
import type { Logger } from "./log.ts";
import { listenForMessages } from "./message-log-listener.ts";

const TASK_DIR = fileURLToPath(new URL("../workers/", import.meta.url));
export const CRONTAB_FILE = fileURLToPath(new URL("../crontab", import.meta.url));

/** What a task may need from the process beyond its payload. */
export interface WorkerContext {
  config: Config;
  log: Logger;
}

/**
 * A task file in workers/ exports either a plain task (default) or
 * `makeTask(ctx)`, for tasks that need the process's configuration (folders).
 */
async function loadTasks(ctx: WorkerContext, dir = TASK_DIR): Promise<TaskList> {
  const tasks: TaskList = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".ts")).sort()) {
    const mod = (await import(pathToFileURL(path.join(dir, file)).href)) as { default?: Task; makeTask?: (c: WorkerContext) => Task };
    const task = mod.makeTask ? mod.makeTask(ctx) : mod.default;
    if (typeof task !== "function") throw new Error(`workers/${file} exports neither a default task nor makeTask`);
    tasks[file.slice(0, -3)] = task;
  }
  return tasks;
}

export interface WorkerOptions {
  pool: pg.Pool;
  config: Config;
  concurrency: number;
  pollInterval: number;
  log: Logger;
  /** Ask for a Grundner pass every config.grundnerPassMs (default true; tests of other modules turn it off). */
  grundnerPasses?: boolean;
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
    taskList: await loadTasks({ config: opts.config, log }),
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
  const messages = listenForMessages(opts.pool, log);
  let stopped = false;
  // Every worker process asks for a Grundner pass now and then (wake() adds
  // none while one is waiting): the exchange resumes within seconds when the
  // process that ran it died, whatever it held.
  const wakeGrundner = () =>
    opts.pool.query("select ops_private.wake('nesting_grundner')").catch((err) => log.warn({ err }, "could not ask for a Grundner pass"));
  const passes = opts.grundnerPasses ?? true;
  if (passes) void wakeGrundner();
  const grundnerTimer = passes ? setInterval(wakeGrundner, opts.config.grundnerPassMs) : undefined;
  log.info({ tasks: TASK_DIR, concurrency: opts.concurrency }, "worker started");
  return {
    health: () => ({
      ok: !stopped && lastError === undefined,
      status: stopped ? "stopped" : "running",
      listening: listening && messages.listening(),
      lastError,
    }),
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(grundnerTimer);
      await messages.stop();
      await runner.stop();
      log.info("worker stopped");
    },
  };
}

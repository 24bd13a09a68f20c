// Folder watchers. A module declares a folder and a handler; this file does
// the rest: chokidar (polling on network shares), recording every event in
// ops.watcher_events, and making sure that exactly one process in the plant
// watches a given folder. That process holds a PostgreSQL advisory lock on a
// dedicated connection; when it dies, its connection closes, the lock is
// released, and a standby process takes over at its next attempt.
import { mkdirSync } from "node:fs";
import type { Stats } from "node:fs";
import chokidar, { type FSWatcher } from "chokidar";
import pg from "pg";
import type { PartHealth } from "../health.ts";
import type { Logger } from "../log.ts";

export type WatchEventName = "add" | "change" | "unlink" | "addDir" | "unlinkDir";

export interface WatchEvent {
  event: WatchEventName;
  path: string;
  stats?: Stats;
}

export interface FolderWatch {
  /** Stable name; also the lock identity, so all processes must agree on it. */
  name: string;
  folder: string;
  /** Polling mode, for network shares where native events miss other hosts' writes. */
  polling: boolean;
  pollIntervalMs?: number;
  /** Wait until a file's size has not changed for this long before reporting it. */
  stableMs?: number;
  /** How deep below the folder to look (default: unlimited). */
  depth?: number;
  ignored?: (path: string) => boolean;
  /** Called for each file event (chokidar). Omit for a scan-only duty. */
  handle?(event: WatchEvent): Promise<void>;
  /**
   * A periodic pass over the folder, run by the lock holder only: run() returns
   * how long to wait before the next pass. A thrown error is recorded and the
   * pass is tried again after retryMs.
   */
  scan?: { run(): Promise<number>; retryMs: number };
  /** What the duty itself has to say in /healthz while this process runs it (ok: false makes the watcher unhealthy). */
  status?(): { ok: boolean; [key: string]: unknown };
}

export type WatcherState = "starting" | "standby" | "watching" | "stopped";

export interface WatcherOptions {
  url: string;
  log: Logger;
  /** How often a standby process tries to take the folder over. */
  lockRetryMs: number;
}

/** Batches watcher events into one INSERT every few hundred milliseconds. */
class EventRecorder {
  private buffer: { watcher: string; event: string; path: string | null; details: unknown }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly pool: pg.Pool;
  private readonly log: Logger;

  constructor(pool: pg.Pool, log: Logger) {
    this.pool = pool;
    this.log = log;
  }

  record(watcher: string, event: string, path: string | null, details: unknown = {}) {
    this.buffer.push({ watcher, event, path, details });
    this.timer ??= setTimeout(() => void this.flush(), 250);
  }

  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const rows = this.buffer.splice(0);
    if (rows.length === 0) return this.flushing;
    this.flushing = this.flushing.then(() =>
      this.pool
        .query(
          `insert into ops.watcher_events (watcher, event, path, details)
           select * from unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])`,
          [
            rows.map((r) => r.watcher),
            rows.map((r) => r.event),
            rows.map((r) => r.path),
            rows.map((r) => JSON.stringify(r.details)),
          ],
        )
        .then(
          () => undefined,
          (err) => this.log.warn({ err, events: rows.length }, "could not record watcher events"),
        ),
    );
    return this.flushing;
  }
}

/** One declared folder: holds the lock when it can, watches while it does. */
class SupervisedWatch {
  state: WatcherState = "starting";
  since = new Date();
  lastEventAt: Date | undefined;
  lastError: string | undefined;
  private lockClient: pg.Client | undefined;
  private fsWatcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly spec: FolderWatch;
  private readonly opts: WatcherOptions;
  private readonly recorder: EventRecorder;
  private readonly log: Logger;

  constructor(spec: FolderWatch, opts: WatcherOptions, recorder: EventRecorder) {
    this.spec = spec;
    this.opts = opts;
    this.recorder = recorder;
    this.log = opts.log.child({ watcher: spec.name });
  }

  start() {
    void this.attempt();
  }

  private setState(state: WatcherState) {
    if (this.state !== state) {
      this.state = state;
      this.since = new Date();
    }
  }

  private schedule() {
    if (!this.stopping) this.timer = setTimeout(() => void this.attempt(), this.opts.lockRetryMs);
  }

  /** Tries to take the folder's lock; watches if it gets it, stands by if not. */
  private async attempt() {
    if (this.stopping) return;
    try {
      if (!this.lockClient) {
        const client = new pg.Client({
          connectionString: this.opts.url,
          keepAlive: true,
          application_name: `shopfloor-watch-${this.spec.name}`,
        });
        client.on("error", (err) => this.lockLost(err));
        client.on("end", () => this.lockLost(new Error("lock connection closed")));
        await client.connect();
        this.lockClient = client;
      }
      const { rows } = await this.lockClient.query<{ locked: boolean }>(
        "select pg_try_advisory_lock(hashtextextended($1, 0)) as locked",
        [`shopfloor.watch:${this.spec.name}`],
      );
      if (rows[0].locked) {
        await this.startWatching();
        return; // holding the lock: nothing to retry until it is lost
      }
      if (this.state !== "standby") this.log.info({ folder: this.spec.folder }, "another process watches this folder; standing by");
      this.setState("standby");
    } catch (err) {
      this.lastError = (err as Error).message;
      this.log.warn({ err }, "could not take the watch lock; will retry");
      await this.dropLockClient();
    }
    this.schedule();
  }

  private scanTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;

  private scheduleScan(ms: number) {
    this.scanTimer = setTimeout(() => {
      this.scanning = this.runScan().finally(() => (this.scanning = undefined));
    }, ms);
  }

  private async runScan() {
    const scan = this.spec.scan!;
    let next = scan.retryMs;
    try {
      next = await scan.run();
      this.lastEventAt = new Date();
      this.lastError = undefined;
    } catch (err) {
      this.lastError = (err as Error).message;
      this.log.warn({ err }, "scan failed; will retry");
    }
    if (this.state === "watching") this.scheduleScan(next);
  }

  private async startWatching() {
    if (this.spec.scan) {
      this.setState("watching");
      this.recorder.record(this.spec.name, "watching", this.spec.folder, { scan: true });
      this.log.info({ folder: this.spec.folder }, "scanning folder");
      this.scheduleScan(0);
    }
    if (this.spec.handle) await this.startChokidar();
  }

  private async startChokidar() {
    mkdirSync(this.spec.folder, { recursive: true });
    const spec = this.spec;
    const watcher = chokidar.watch(spec.folder, {
      usePolling: spec.polling,
      interval: spec.pollIntervalMs,
      binaryInterval: spec.pollIntervalMs,
      depth: spec.depth,
      ignored: spec.ignored,
      alwaysStat: true,
      awaitWriteFinish: spec.stableMs ? { stabilityThreshold: spec.stableMs, pollInterval: Math.min(100, spec.stableMs) } : false,
    });
    this.fsWatcher = watcher;
    const ready = new Promise<void>((resolve) => watcher.once("ready", () => resolve()));
    watcher.on("all", (event, path, stats) => void this.onEvent({ event: event as WatchEventName, path, stats }));
    watcher.on("error", (err) => {
      this.lastError = String((err as Error).message ?? err);
      this.log.error({ err }, "watcher error");
      this.recorder.record(spec.name, "error", null, { message: this.lastError });
    });
    await ready;
    this.setState("watching");
    this.lastError = undefined;
    this.recorder.record(spec.name, "watching", spec.folder, { polling: spec.polling });
    this.log.info({ folder: spec.folder, polling: spec.polling }, "watching folder");
  }

  private async onEvent(e: WatchEvent) {
    this.lastEventAt = new Date();
    this.recorder.record(this.spec.name, e.event, e.path, e.stats ? { size: e.stats.size, mtime: e.stats.mtime } : {});
    try {
      await this.spec.handle?.(e);
    } catch (err) {
      this.lastError = (err as Error).message;
      this.log.error({ err, event: e.event, path: e.path }, "watch handler failed");
      this.recorder.record(this.spec.name, "handler_error", e.path, { event: e.event, message: this.lastError });
    }
  }

  /** The lock connection died: another process may already hold the folder. */
  private lockLost(err: Error) {
    if (this.stopping || !this.lockClient) return;
    const wasWatching = this.state === "watching";
    this.lockClient = undefined;
    void this.stopWatching();
    if (wasWatching) {
      this.log.warn({ err }, "lost the watch lock; stopped watching and will try again");
      this.recorder.record(this.spec.name, "lock_lost", this.spec.folder, { message: err.message });
    }
    this.setState("standby");
    clearTimeout(this.timer);
    this.schedule();
  }

  private async stopWatching() {
    clearTimeout(this.scanTimer);
    const w = this.fsWatcher;
    this.fsWatcher = undefined;
    if (w) await w.close();
    await this.scanning;
  }

  private async dropLockClient() {
    const c = this.lockClient;
    this.lockClient = undefined;
    if (c) await c.end().catch(() => {});
  }

  async stop() {
    this.stopping = true;
    clearTimeout(this.timer);
    const wasWatching = this.state === "watching";
    await this.stopWatching();
    if (wasWatching) this.recorder.record(this.spec.name, "released", this.spec.folder);
    await this.dropLockClient(); // closing the session releases the lock
    this.setState("stopped");
  }

  health(): PartHealth {
    const { ok: dutyOk = true, ...duty } = (this.state === "watching" && this.spec.status?.()) || {};
    return {
      ...duty,
      // A scan that is failing (its folder unreadable) makes the watcher unhealthy.
      ok: (this.state === "watching" || this.state === "standby") && !(this.spec.scan && this.lastError) && dutyOk,
      name: this.spec.name,
      folder: this.spec.folder,
      state: this.state,
      since: this.since.toISOString(),
      lastEventAt: this.lastEventAt?.toISOString() ?? null,
      lastError: this.lastError ?? null,
    };
  }
}

export interface Watchers {
  health(): PartHealth;
  states(): Record<string, WatcherState>;
  /** Writes buffered events now (tests, shutdown). */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export function startWatchers(specs: FolderWatch[], opts: WatcherOptions): Watchers {
  const log = opts.log.child({ component: "watchers" });
  const pool = new pg.Pool({ connectionString: opts.url, max: 2, keepAlive: true, application_name: "shopfloor-watchers" });
  pool.on("error", (err) => log.warn({ err }, "idle watcher connection failed"));
  const recorder = new EventRecorder(pool, log);
  const watches = specs.map((s) => new SupervisedWatch(s, { ...opts, log }, recorder));
  for (const w of watches) w.start();
  if (specs.length === 0) log.info("no folders to watch");
  return {
    health() {
      const list = watches.map((w) => w.health());
      return { ok: list.every((w) => w.ok), watchers: list };
    },
    states() {
      return Object.fromEntries(watches.map((w) => [w.health().name as string, w.state]));
    },
    flush: () => recorder.flush(),
    async stop() {
      await Promise.all(watches.map((w) => w.stop()));
      await recorder.flush();
      await pool.end();
    },
  };
}

// /healthz: is the database reachable, is the worker running, are the folder
// watchers watching (or standing by while another process holds the folder).
import type pg from "pg";

export interface PartHealth {
  ok: boolean;
  [key: string]: unknown;
}

export type HealthCheck = () => Promise<PartHealth> | PartHealth;

export class Health {
  private readonly checks = new Map<string, HealthCheck>();
  private readonly started = Date.now();

  constructor(pool: pg.Pool) {
    this.checks.set("database", () => databaseHealth(pool));
  }

  /** Each process role (worker, watchers) registers how to report itself. */
  register(name: string, check: HealthCheck) {
    this.checks.set(name, check);
  }

  async report(): Promise<{ ok: boolean; uptimeSeconds: number; [part: string]: unknown }> {
    const parts: Record<string, PartHealth> = {};
    await Promise.all(
      [...this.checks].map(async ([name, check]) => {
        try {
          parts[name] = await withTimeout(Promise.resolve(check()), 3000);
        } catch (e) {
          parts[name] = { ok: false, error: (e as Error).message };
        }
      }),
    );
    for (const name of ["worker", "watchers"]) {
      parts[name] ??= { ok: true, status: "not run by this process" };
    }
    const ok = Object.values(parts).every((p) => p.ok);
    return { ok, uptimeSeconds: Math.round((Date.now() - this.started) / 1000), ...parts };
  }
}

async function databaseHealth(pool: pg.Pool): Promise<PartHealth> {
  const t = Date.now();
  const { rows } = await pool.query<{ version: string; queued: number; oldest_waiting_s: number | null }>(`
    select current_setting('server_version') as version,
           (select count(*)::int from graphile_worker.jobs where locked_at is null and run_at <= now()) as queued,
           (select extract(epoch from now() - min(run_at))::int from graphile_worker.jobs
             where locked_at is null and run_at <= now()) as oldest_waiting_s`);
  return {
    ok: true,
    latencyMs: Date.now() - t,
    version: rows[0].version,
    jobsWaiting: rows[0].queued,
    oldestWaitingSeconds: rows[0].oldest_waiting_s,
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
}

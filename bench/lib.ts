// Benchmark helpers: run a transaction from N clients for a while, count and
// time it, and the baseline every benchmark compares against (one-row UPDATE
// transactions on the same server, in the same run). Benchmarks print; they
// never assert a time.
import pg from "pg";

export interface BenchContext {
  url: string;
  /** Short runs for a quick look (BENCH_QUICK=1). */
  quick: boolean;
  print(line: string): void;
}

export interface Measured {
  tps: number;
  count: number;
  errors: number;
  p50Ms: number;
  p95Ms: number;
}

export function percentile(sorted: number[], p: number) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Runs `fn` in a loop on `clients` connections for `ms`, and reports. */
export async function measure(
  url: string,
  opts: { clients: number; ms: number },
  fn: (client: pg.Client, worker: number, i: number) => Promise<unknown>,
): Promise<Measured> {
  const clients = await Promise.all(
    Array.from({ length: opts.clients }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      return c;
    }),
  );
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + opts.ms;
  await Promise.all(
    clients.map(async (c, w) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const t = performance.now();
        try {
          await fn(c, w, i);
          latencies.push(performance.now() - t);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  await Promise.all(clients.map((c) => c.end()));
  latencies.sort((a, b) => a - b);
  return {
    tps: latencies.length / elapsed,
    count: latencies.length,
    errors,
    p50Ms: percentile(latencies, 50),
    p95Ms: percentile(latencies, 95),
  };
}

/** The reference: one-row UPDATE by primary key, one transaction each. */
export async function baselineUpdate(url: string, opts: { clients: number; ms: number }): Promise<Measured> {
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query(`drop table if exists bench_baseline; create unlogged table bench_baseline (id int primary key, n bigint not null default 0);
                     insert into bench_baseline (id) select generate_series(1, 1000)`);
  await setup.end();
  return measure(url, opts, (c, w, i) => c.query("update bench_baseline set n = n + 1 where id = $1", [((w * 7919 + i) % 1000) + 1]));
}

export function fmt(m: Measured) {
  return `${m.tps.toFixed(0).padStart(7)} tx/s  p50 ${m.p50Ms.toFixed(2)} ms  p95 ${m.p95Ms.toFixed(2)} ms  (${m.count} ok, ${m.errors} errors)`;
}

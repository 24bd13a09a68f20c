// Pool benchmark: events per second posted through pool.receive by 8 clients
// spread over 1,000 balances (lock the balance, check the key, append the
// event, update the balance), next to a baseline in the same run: plain
// single-row INSERTs into a table of the same shape (same columns, constraints
// and unique key index). Prints; never asserts.
import pg from "pg";
import { fmt, measure, type BenchContext } from "./lib.ts";

const BALANCES = 1000;

export default async function bench({ url, quick, print }: BenchContext) {
  const opts = { clients: 8, ms: quick ? 1000 : 5000 };
  const run = Date.now().toString(36);
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query(`drop table if exists bench_pool_events;
                     create table bench_pool_events (like pool.events including defaults including constraints including indexes including identity)`);
  await setup.end();

  // balance n of 1000: product 1..10, BOM 1, component C001..C100
  const target = (w: number, i: number) => {
    const n = (w * 7919 + i * 104729) % BALANCES;
    return { product: 1 + (n % 10), component: `C${String(Math.floor(n / 10)).padStart(3, "0")}` };
  };

  const baseline = await measure(url, opts, (c, w, i) => {
    const { product, component } = target(w, i);
    return c.query(
      `insert into bench_pool_events (event_type, pool_mode, product_model_id, bom_version_id, component_code, state, delta_qty,
                                      balance_after, reason_code, recorded_by, idempotency_key, content_hash)
       values ('POOL_RECEIVE', 'receive', $1, 1, $2, 'cut_ready', 1, 1, 'BENCH', 'bench', $3::text, sha256(convert_to($3::text, 'UTF8')))`,
      [product, component, `base:${run}:${w}:${i}`],
    );
  });
  print(`baseline  plain INSERT, 8 clients          ${fmt(baseline)}`);

  const posted = await measure(url, opts, (c, w, i) => {
    const { product, component } = target(w, i);
    return c.query(`select pool.receive($1, 1, $2, 1, $3, 'BENCH')`, [product, component, `bench:${run}:${w}:${i}`]);
  });
  print(`pool      receive, 8 clients, 1000 bal.  ${fmt(posted)}`);
  print(`ratio     pool.receive / plain INSERT = ${(posted.tps / baseline.tps).toFixed(2)} (aim: 0.50 or more)`);

  // The same with replays: every other call repeats a key already booked.
  const replayed = await measure(url, opts, (c, w, i) => {
    const { product, component } = target(w, i >> 1);
    return c.query(`select pool.receive($1, 1, $2, 1, $3, 'BENCH')`, [product, component, `replay:${run}:${w}:${i >> 1}`]);
  });
  print(`pool      receive, half duplicates        ${fmt(replayed)}`);

  const check = new pg.Client({ connectionString: url });
  await check.connect();
  const { rows } = await check.query(
    `select count(*)::int as balances, bool_and(quantity >= 0) as never_negative,
            sum(quantity) = (select sum(delta_qty) from pool.events) as ledger_matches from pool.balances`,
  );
  await check.query(`drop table if exists bench_pool_events`);
  await check.end();
  print(`check     ${rows[0].balances} balances, never negative: ${rows[0].never_negative}, balances = sum of events: ${rows[0].ledger_matches}`);
}

// Approval benchmark (issue 3): approve_job from 8 clients on 2,000 items and
// 100,000 approved BOM lines, against the one-row UPDATE baseline of the same
// run; then approve_job's median latency as approved BOM lines grow from
// 10,000 to 1,000,000 (it reads the maintained reserved column, so it should
// stay flat). BENCH_QUICK=1: shorter runs and 10k vs 100k lines.
import pg from "pg";
import { baselineUpdate, fmt, measure, type BenchContext } from "./lib.ts";

const ITEMS = 2000;
const LINES_PER_APPROVED_JOB = 10;
const LINES_PER_DRAFT = 4;
const BUILD_BUDGET_MS = 60_000;

async function reset(c: pg.Client) {
  await c.query(`truncate approval.job_bom, approval.jobs, approval.inventory_items restart identity`);
  await c.query(`insert into approval.inventory_items (id, sku, name, on_hand)
                 select g, 'SKU-' || g, 'item ' || g, 1e12 from generate_series(1, ${ITEMS}) g`);
}

/** Adds approved jobs with `lines` BOM lines in all, set-based (triggers off), then rebuilds reserved. */
async function addApproved(c: pg.Client, lines: number) {
  await c.query(`set session_replication_role = replica`);
  await c.query(
    `with j as (
       insert into approval.jobs (name, status, approved_at, approved_by)
       select 'approved ' || g, 'approved', now(), 'bench' from generate_series(1, $1) g
       returning id)
     insert into approval.job_bom (job_id, item_id, qty_planned)
     select j.id, ((j.id * 13 + k * 199) % ${ITEMS}) + 1, 1 from j, generate_series(0, ${LINES_PER_APPROVED_JOB - 1}) k`,
    [Math.ceil(lines / LINES_PER_APPROVED_JOB)],
  );
  await c.query(`set session_replication_role = origin`);
}

/** Adds draft jobs of 4 lines each and returns their ids. */
async function addDrafts(c: pg.Client, n: number): Promise<number[]> {
  await c.query(`set session_replication_role = replica`);
  const { rows } = await c.query<{ id: string }>(
    `with j as (
       insert into approval.jobs (name) select 'draft ' || g from generate_series(1, $1) g returning id),
     b as (
       insert into approval.job_bom (job_id, item_id, qty_planned)
       select j.id, ((j.id * 7 + k * 500) % ${ITEMS}) + 1, 2 from j, generate_series(0, ${LINES_PER_DRAFT - 1}) k)
     select id from j order by id`,
    [n],
  );
  await c.query(`set session_replication_role = origin`);
  return rows.map((r) => Number(r.id));
}

async function finish(c: pg.Client) {
  await c.query(`select approval.recompute_reserved()`);
  await c.query(`analyze approval.jobs; analyze approval.job_bom; analyze approval.inventory_items`);
}

async function approvedLines(c: pg.Client) {
  const { rows } = await c.query<{ n: string }>(
    `select count(*) as n from approval.job_bom b join approval.jobs j on j.id = b.job_id where j.status in ('approved', 'in_progress')`,
  );
  return Number(rows[0].n);
}

/** Approves the drafts in `ids`, from `used.next` on, from several clients. */
function approveAll(url: string, opts: { clients: number; ms: number }, ids: number[], used = { next: 0 }) {
  return measure(url, opts, (c) => {
    const id = ids[used.next++];
    if (id === undefined) throw new Error("out of draft jobs");
    return c.query(`select approval.approve_job($1, true)`, [id]);
  });
}

export default async function bench({ url, quick, print }: BenchContext) {
  const opts = { clients: 8, ms: quick ? 1000 : 5000 };
  // Enough drafts that no phase runs out (a run out of drafts counts errors, not approvals).
  const drafts = quick ? 30_000 : 100_000;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // 1. Throughput on 2,000 items and 100,000 approved BOM lines.
    let t0 = Date.now();
    await reset(c);
    await addApproved(c, 100_000);
    let ids = await addDrafts(c, drafts);
    await finish(c);
    print(`data      ${ITEMS} items, ${await approvedLines(c)} approved BOM lines, ${ids.length} draft jobs of ${LINES_PER_DRAFT} lines (built in ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    const baseline = await baselineUpdate(url, opts);
    print(`baseline  one-row UPDATE, 8 clients    ${fmt(baseline)}`);
    const approved = await approveAll(url, opts, ids);
    print(`approval  approve_job, 8 clients       ${fmt(approved)}`);
    print(`ratio     approve_job / baseline = ${(approved.tps / baseline.tps).toFixed(2)} (aim: 0.25 or more)`);

    // 2. Median latency as approved BOM lines grow.
    const small = 10_000;
    const large = quick ? 100_000 : 1_000_000;
    const latencyOpts = { clients: 8, ms: quick ? 1000 : 3000 };
    await reset(c);
    await addApproved(c, small);
    ids = await addDrafts(c, drafts);
    await finish(c);
    const n1 = await approvedLines(c);
    let used = { next: 0 };
    await approveAll(url, { clients: 8, ms: 300 }, ids, used); // warm-up, not counted
    const atSmall = await approveAll(url, latencyOpts, ids, used);
    print(`latency   ${String(n1).padStart(8)} approved lines: ${fmt(atSmall)}`);

    // Grow in steps; stop when building takes longer than the budget.
    t0 = Date.now();
    let lines = await approvedLines(c);
    const step = 200_000;
    while (lines < large && Date.now() - t0 < BUILD_BUDGET_MS) {
      await addApproved(c, Math.min(step, large - lines));
      lines = await approvedLines(c);
    }
    ids = await addDrafts(c, drafts);
    await finish(c);
    const n2 = await approvedLines(c);
    const buildS = ((Date.now() - t0) / 1000).toFixed(1);
    if (n2 < large) print(`note      ${large} approved lines did not build within ${BUILD_BUDGET_MS / 1000} s; using ${n2}`);
    used = { next: 0 };
    await approveAll(url, { clients: 8, ms: 300 }, ids, used); // warm-up, not counted
    const atLarge = await approveAll(url, latencyOpts, ids, used);
    print(`latency   ${String(n2).padStart(8)} approved lines: ${fmt(atLarge)}  (grown in ${buildS} s)`);
    print(`flatness  p50 at ${n2} / p50 at ${n1} approved lines = ${(atLarge.p50Ms / atSmall.p50Ms).toFixed(2)} (aim: within 2x)`);
  } finally {
    await c.end();
  }
}

// Tracking benchmark: a backlog of print OS records and scans processed by the
// set-based SQL (tracking.process_status_updates), next to a baseline in the
// same run that processes records the way the spec sketches it: one query per
// record and step, from TypeScript. Prints; never asserts.
//
// The backlog is processed twice: in one call on one connection (compared
// with the one-connection baseline), and as the worker drains it, each
// source's task beside the other's (the time a plant waits).
//
// Then the latency a plant sees: with the worker running (the insert triggers
// wake it), a feeder inserts records one at a time, alternating print OS
// records and scans, and times each from its insert's commit until its job
// status update is visible.
//
// Full: 50,000 jobs, 300,000 file mappings (100,000 impositions × 3 files),
// 100,000 print OS records, 100,000 scans. BENCH_QUICK=1: a tenth of that.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { loadConfig } from "../src/config.ts";
import { createPool } from "../src/db/pool.ts";
import { createLogger } from "../src/log.ts";
import { startWorker } from "../src/worker.ts";
import { percentile, type BenchContext } from "./lib.ts";

const FILE_RE = /^FILE_([^_]+)_Labex_([^_]+_[^_]+)(?:_.*)?$/;

export async function seed(c: pg.Client, scale: number) {
  const jobs = 50_000 * scale;
  const imps = 100_000 * scale;
  // Imposition i holds 3 files of job floor(i/2): 6 files per job over 2 impositions.
  // The first fifth of the impositions are in runlists of 4.
  await c.query(`insert into tracking.jobs (job_id, version_tag) select 'j' || g || '_1', 'v1' from generate_series(0, $1 - 1) g`, [jobs]);
  await c.query(
    `insert into tracking.imposition_file_mapping (imposition_id, file_id)
     select 'IMP' || i, 'FILE_1_Labex_j' || (i / 2) || '_1_' || k from generate_series(0, $1 - 1) i, generate_series(1, 3) k`,
    [imps],
  );
  await c.query(
    `insert into tracking.production_planner_paths (runlist_id, imposition_id) select 'RL' || (i / 4), 'IMP' || i from generate_series(0, $1 / 5 - 1) i`,
    [imps],
  );
  await c.query(
    `insert into tracking.job_operations (job_operation_id, job_id, version_tag, operation_id)
     select 'j' || g || '_1-' || o, 'j' || g || '_1', 'v1', o from generate_series(0, $1 - 1) g, unnest(array['op001', 'op003']) o`,
    [jobs],
  );
  await c.query(
    `insert into tracking.imposition_operations (imposition_operation_id, imposition_id, operation_id)
     select 'IMP' || i || '-' || o, 'IMP' || i, o from generate_series(0, $1 - 1) i, unnest(array['op001', 'op003']) o`,
    [imps],
  );
  // One print OS record per imposition (5% aborted); scans: every tenth a runlist, else a job.
  // Inserted with the insert triggers off (no worker jobs, nothing queued): reset() queues them all.
  await c.query(`alter table tracking."print OS" disable trigger print_os_added; alter table tracking.scanned_codes disable trigger scanned_codes_added`);
  await c.query(
    `insert into tracking."print OS" (name, status, marker, job_complete_time)
     select 'IMP' || i, case when i % 20 = 7 then 'ABORTED' else 'PRINTED' end, i + 1, timestamptz '2026-11-20 06:00' + i * interval '100 ms'
       from generate_series(0, $1 - 1) i`,
    [imps],
  );
  await c.query(
    `insert into tracking.scanned_codes (code_text, operations, scanned_at, machine_id)
     select case when k % 10 = 0 then 'RL' || (k % ($2 / 20)) else 'j' || (k % $1) || '_1_v1' end, '["coating"]',
            timestamptz '2026-11-20 09:00' + k * interval '100 ms', 'coater'
       from generate_series(0, $3 - 1) k`,
    [jobs, imps, imps],
  );
  await c.query(`vacuum analyze`);
}

/** Back to the seeded state; every record queued again in bulk (the requeue row triggers, one call per record, are off meanwhile). */
export async function reset(c: pg.Client) {
  await c.query(`truncate tracking.job_status_updates, tracking.file_print_status, tracking.processing_issues;
    update tracking.jobs set operations = '{}', operation_times = '{}';
    update tracking.job_operations set completed_at = null, completed_by = null, source_id = null, status = null, notes = null;
    update tracking.imposition_operations set completed_at = null, completed_by = null, source_id = null, status = null, notes = null;
    update tracking.processing_markers set last_processed_id = 0;
    alter table tracking."print OS" disable trigger print_os_requeued; alter table tracking.scanned_codes disable trigger scanned_codes_requeued;
    update tracking."print OS" set processed_at = null where processed_at is not null;
    update tracking.scanned_codes set processed_at = null where processed_at is not null;
    alter table tracking."print OS" enable trigger print_os_requeued; alter table tracking.scanned_codes enable trigger scanned_codes_requeued;
    insert into tracking_private.pending_records (source_type, record_id)
      select 'print_os', id from tracking."print OS" union all select 'scanner', scan_id from tracking.scanned_codes
      on conflict do nothing`);
  await c.query(`vacuum analyze`);
}

/** The spec's sketch: per record, one query per step, in a transaction of its own. */
async function baseline(c: pg.Client, n: number) {
  const prints = (await c.query(`select id, name, status, marker, coalesce(job_complete_time, created_at) as at from tracking."print OS" order by marker limit $1`, [n])).rows;
  for (const r of prints) {
    await c.query("begin");
    const files = (await c.query(`select file_id from tracking.imposition_file_mapping where imposition_id = $1`, [r.name])).rows;
    const jobs = new Set<string>();
    for (const f of files) {
      const m = FILE_RE.exec(f.file_id);
      if (!m) continue;
      jobs.add(m[2]);
      await c.query(
        `insert into tracking.file_print_status (imposition_id, file_id, job_id, status, source_id, event_at) values ($1, $2, $3, $4, $5, $6)
         on conflict (imposition_id, file_id) do update set status = excluded.status, source_id = excluded.source_id, event_at = excluded.event_at`,
        [r.name, f.file_id, m[2], r.status.toLowerCase(), r.id, r.at],
      );
    }
    const status = r.status === "PRINTED" ? "completed" : "aborted";
    for (const job of jobs) {
      const t = (
        await c.query(
          `select count(*)::int as total, count(*) filter (where s.status = 'printed')::int as printed from tracking.imposition_file_mapping m
           left join tracking.file_print_status s using (imposition_id, file_id) where m.job_id = $1`,
          [job],
        )
      ).rows[0];
      await c.query(`update tracking.jobs set operations = jsonb_set(operations, '{print}', to_jsonb($2::boolean)) where job_id = $1`, [job, t.printed === t.total]);
      await c.query(`update tracking.job_operations set completed_at = $2, completed_by = 'print_os', source_id = $3, status = $4 where job_id = $1 and operation_id = 'op001'`, [job, r.at, r.id, status]);
      await c.query(
        `insert into tracking.job_status_updates (job_id, operation, status, source_type, source_id, event_at) values ($1, 'print', $2, 'print_os', $3, $4) on conflict do nothing`,
        [job, status, r.id, r.at],
      );
    }
    await c.query(`update tracking.imposition_operations set completed_at = $2, completed_by = 'print_os', source_id = $3, status = $4 where imposition_id = $1 and operation_id = 'op001'`, [r.name, r.at, r.id, status]);
    await c.query(`update tracking.processing_markers set last_processed_id = $1 where marker_type = 'print_os'`, [r.marker]);
    await c.query("commit");
  }
  const scans = (await c.query(`select scan_id, code_text, operations, scanned_at from tracking.scanned_codes order by scan_id limit $1`, [n])).rows;
  for (const s of scans) {
    await c.query("begin");
    let imps = (await c.query(`select distinct imposition_id from tracking.production_planner_paths where runlist_id = $1`, [s.code_text])).rows.map((x) => x.imposition_id);
    const jobs = new Set<string>();
    if (imps.length === 0) {
      const job = s.code_text.replace(/_[^_]*$/, "");
      imps = (
        await c.query(
          `select p.imposition_id from tracking.production_planner_paths p where p.runlist_id in
             (select p2.runlist_id from tracking.imposition_file_mapping m join tracking.production_planner_paths p2 using (imposition_id) where m.job_id = $1)`,
          [job],
        )
      ).rows.map((x) => x.imposition_id);
      if (imps.length === 0) jobs.add(job);
    }
    for (const imp of imps) {
      const files = (await c.query(`select file_id from tracking.imposition_file_mapping where imposition_id = $1`, [imp])).rows;
      for (const f of files) {
        const m = FILE_RE.exec(f.file_id);
        if (m) jobs.add(m[2]);
      }
    }
    for (const op of s.operations as string[]) {
      const opId = (await c.query(`select operation_id from tracking.operation_catalogue where name = $1`, [op])).rows[0]?.operation_id;
      for (const job of jobs) {
        await c.query(`update tracking.jobs set operations = jsonb_set(operations, array[$2], 'true') where job_id = $1`, [job, op]);
        await c.query(`update tracking.job_operations set completed_at = $2, completed_by = 'scanner', source_id = $3, status = 'completed' where job_id = $1 and operation_id = $4`, [job, s.scanned_at, s.scan_id, opId]);
        await c.query(
          `insert into tracking.job_status_updates (job_id, operation, status, source_type, source_id, event_at) values ($1, $2, 'completed', 'scanner', $3, $4) on conflict do nothing`,
          [job, op, s.scan_id, s.scanned_at],
        );
      }
      for (const imp of imps) {
        await c.query(`update tracking.imposition_operations set completed_at = $2, completed_by = 'scanner', source_id = $3, status = 'completed' where imposition_id = $1 and operation_id = $4`, [imp, s.scanned_at, s.scan_id, opId]);
      }
    }
    await c.query(`update tracking.processing_markers set last_processed_id = $1 where marker_type = 'scanned_codes'`, [s.scan_id]);
    await c.query("commit");
  }
  return prints.length + scans.length;
}

/** Polls until `check` is truthy, every `everyMs` (the measurement's resolution). */
async function until(check: () => Promise<boolean>, timeoutMs = 30_000, everyMs = 2) {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error("benchmark step timed out");
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Runs `fn` while a graphile-worker runs as `npm start` runs it (concurrency 2, DB_POOL_MAX's default pool of 10), once it listens. */
async function withWorker(url: string, fn: () => Promise<void>) {
  const log = createLogger({ level: "warn", pretty: false, fd: 2 });
  const base = mkdtempSync(path.join(os.tmpdir(), "tracking-bench-"));
  const pool = createPool(url, { max: 10, log, name: "bench-worker" });
  const worker = await startWorker({ pool, config: loadConfig({ DATA_DIR: base }), concurrency: 2, pollInterval: 2000, log });
  try {
    await until(async () => Boolean(worker.health().listening));
    await fn();
  } finally {
    await worker.stop();
    await pool.end();
    rmSync(base, { recursive: true, force: true });
  }
}

/**
 * The backlog drained by the worker as a plant runs it (concurrency 2): both
 * tasks are asked for at once, and each source is done when its marker
 * reaches its last record. Returns the seconds until each source was done.
 */
async function drain(url: string, c: pg.Client) {
  const done = { print_os: 0, scanner: 0 };
  await withWorker(url, async () => {
    const last = (await c.query<{ p: string; s: string }>(`select (select max(marker) from tracking."print OS") as p, (select max(scan_id) from tracking.scanned_codes) as s`)).rows[0];
    const t = performance.now();
    await c.query(`select graphile_worker.add_job('tracking_process_print_os'), graphile_worker.add_job('tracking_process_scans')`);
    await until(async () => {
      const m = (await c.query<{ p: string; s: string }>(
        `select (select last_processed_id from tracking.processing_markers where marker_type = 'print_os') as p,
                (select last_processed_id from tracking.processing_markers where marker_type = 'scanned_codes') as s`,
      )).rows[0];
      const at = (performance.now() - t) / 1000;
      if (!done.print_os && m.p === last.p) done.print_os = at;
      if (!done.scanner && m.s === last.s) done.scanner = at;
      return done.print_os > 0 && done.scanner > 0;
    }, 300_000, 50); // every 50 ms: polling faster would take CPU from the two runs it measures
  });
  return done;
}

/** Insert → job status with the worker running, one record at a time. */
async function latency(url: string, c: pg.Client, n: number, scale: number) {
  await c.query(`alter table tracking."print OS" enable trigger print_os_added; alter table tracking.scanned_codes enable trigger scanned_codes_added`);
  const imps = 100_000 * scale;
  const jobs = 50_000 * scale;
  const ms: number[] = [];
  await withWorker(url, async () => {
    for (let i = 0; i < n; i++) {
      const k = (i * 7919) % imps;
      const isPrint = i % 2 === 0;
      const t = performance.now();
      const { rows } = isPrint
        ? await c.query<{ id: string }>(`insert into tracking."print OS" (name, status, marker) values ($1, 'PRINTED', $2) returning id`, ['IMP' + k, 10_000_000 + i])
        : await c.query<{ id: string }>(`insert into tracking.scanned_codes (code_text, operations, machine_id) values ($1, '["kiss_cut"]', 'feeder') returning scan_id as id`, [`j${k % jobs}_1_v1`]);
      const source = isPrint ? "print_os" : "scanner";
      await until(async () => (await c.query(`select 1 from tracking.job_status_updates where source_type = $1 and source_id = $2 limit 1`, [source, rows[0].id])).rowCount === 1);
      ms.push(performance.now() - t);
    }
  });
  return ms.sort((a, b) => a - b);
}

export default async function bench({ url, quick, print }: BenchContext) {
  const scale = quick ? 0.1 : 1;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    let t = performance.now();
    await seed(c, scale);
    const records = 200_000 * scale;
    print(`setup     ${50_000 * scale} jobs, ${300_000 * scale} file mappings, ${100_000 * scale} print OS records, ${100_000 * scale} scans in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    const sample = quick ? 500 : 2_000;
    t = performance.now();
    const done = await baseline(c, sample);
    const baseSec = (performance.now() - t) / 1000;
    const baseRate = done / baseSec;
    print(`baseline  one query per record and step (spec sketch), ${done} records: ${baseRate.toFixed(0).padStart(7)} records/s  (whole backlog would take ${(records / baseRate).toFixed(0)} s)`);

    await reset(c);
    t = performance.now();
    const { rows } = await c.query(`select tracking.process_status_updates('both') as r`);
    const oneSec = (performance.now() - t) / 1000;
    const oneRate = records / oneSec;
    print(`tracking  one call, process_status_updates('both'), ${records} records: ${oneRate.toFixed(0).padStart(7)} records/s  (${oneSec.toFixed(2)} s; ${JSON.stringify(rows[0].r)})`);
    print(`ratio     one call / baseline, each on one connection = ${(oneRate / baseRate).toFixed(1)}x`);

    t = performance.now();
    await c.query(`select tracking.process_status_updates('both')`);
    print(`idle      a run with nothing new: ${(performance.now() - t).toFixed(1)} ms`);

    await reset(c);
    const drained = await drain(url, c);
    const setSec = Math.max(drained.print_os, drained.scanner);
    print(
      `worker    the backlog drained by the worker, each source's task beside the other's: ${(records / setSec).toFixed(0).padStart(7)} records/s  ` +
        `(${setSec.toFixed(2)} s; print OS done after ${drained.print_os.toFixed(2)} s, scans after ${drained.scanner.toFixed(2)} s)`,
    );

    const n = quick ? 50 : 200;
    const ms = await latency(url, c, n, scale);
    const p95 = percentile(ms, 95);
    print(`latency   record insert → job status, ${n} records: p50 ${percentile(ms, 50).toFixed(0)} ms p95 ${p95.toFixed(0)} ms  (worker running; max ${ms[ms.length - 1].toFixed(0)} ms)`);
    const met = (ok: boolean) => (ok ? "met" : "NOT met");
    print(
      `aim       backlog of ${records} drained under ${15 * scale} s: ${setSec.toFixed(2)} s (${met(setSec < 15 * scale)}); ` +
        `at least 40x the baseline: ${(oneRate / baseRate).toFixed(1)}x (${met(oneRate / baseRate >= 40)}); ` +
        `latency p95 under 300 ms: ${p95.toFixed(0)} ms (${met(p95 < 300)})`,
    );
  } finally {
    await c.end();
  }
}

// /metrics: Prometheus text format (prom-client). Every name starts with
// `shopfloor_`. HTTP and GraphQL figures are counted by this process; queue,
// Grundner, scan, message and tracking figures are read from the database at
// scrape time with one cheap query per source (a failing source is logged and
// counted, the others are still reported).
import type pg from "pg";
import client from "prom-client";
import { getOperationAST, type DocumentNode } from "postgraphile/graphql";
import type { PartHealth } from "./health.ts";
import type { Logger } from "./log.ts";

const METRICS_PREFIX = "shopfloor_";

export interface MetricsOptions {
  pool: pg.Pool;
  log: Logger;
  /** The watchers this process runs, if any. */
  watchers?: () => PartHealth | undefined;
  /** The worker this process runs, if any. */
  worker?: () => PartHealth | undefined;
}

export interface Metrics {
  readonly contentType: string;
  observeRequest(labels: { method: string; route: string; status: number }, seconds: number): void;
  observeOperation(labels: { type: string; name: string; outcome: "ok" | "error" }, seconds: number): void;
  render(): Promise<string>;
}

/** Database sources read at scrape time: name, SQL, and how its rows become gauge values. */
interface Source {
  name: string;
  sql: string;
  apply(rows: any[]): void;
}

// Client-chosen operation names are labels: keep their number bounded.
const MAX_OPERATION_NAMES = 200;
const OPERATION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export function createMetrics(opts: MetricsOptions): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: METRICS_PREFIX });
  const p = (name: string) => METRICS_PREFIX + name;

  const registers = [registry];
  const counter = (name: string, help: string, labelNames: string[]) => new client.Counter({ name: p(name), help, labelNames, registers });
  const gauge = (name: string, help: string, labelNames: string[]) => new client.Gauge({ name: p(name), help, labelNames, registers });
  const seconds = (name: string, help: string, labelNames: string[]) =>
    new client.Histogram({ name: p(name), help, labelNames, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers });

  const httpRequests = counter("http_requests_total", "HTTP requests answered, by method, route and status code.", ["method", "route", "status"]);
  const httpDuration = seconds(
    "http_request_duration_seconds",
    "Time from request to the last byte of the answer, by method, route and status code.",
    ["method", "route", "status"],
  );
  const operations = counter(
    "graphql_operations_total",
    "GraphQL operations executed, by type (query, mutation, subscription), operation name and outcome (ok, error).",
    ["type", "name", "outcome"],
  );
  const operationDuration = seconds(
    "graphql_operation_duration_seconds",
    "GraphQL execution time (subscriptions: until the stream is set up), by type and outcome.",
    ["type", "outcome"],
  );
  const scrapeErrors = counter("metrics_source_errors_total", "Database sources that could not be read during a scrape, by source.", ["source"]);

  const jobsWaiting = gauge("jobs_waiting", "Background jobs due and not yet taken by a worker, by task.", ["task"]);
  const jobsOldest = gauge("jobs_oldest_waiting_seconds", "Age of the oldest due job not yet taken, by task.", ["task"]);
  const jobsFailing = gauge("jobs_failed", "Jobs that have used all their attempts, by task.", ["task"]);
  const grundnerRequests = gauge("grundner_requests", "Grundner requests by state.", ["state"]);
  const grundnerOldest = gauge(
    "grundner_request_oldest_seconds",
    "Age of the oldest Grundner request in each open state (queued, sending, sent, acknowledged).",
    ["state"],
  );
  const passAt = gauge("share_last_pass_timestamp_seconds", "When each periodic scan of a share last completed (Unix time).", ["scanner"]);
  const passFailing = gauge("share_scan_failing", "1 while a periodic scan of a share is failing, else 0.", ["scanner"]);
  const watcherEventAt = gauge(
    "watcher_last_event_timestamp_seconds",
    "Last event any process recorded for each folder watcher in the past day (Unix time).",
    ["watcher"],
  );
  const watcherUp = gauge("watcher_up", "Folder watchers of this process: 1 when watching or standing by healthily, else 0.", ["watcher", "state"]);
  const workerUp = gauge("worker_up", "1 when this process runs a healthy worker, 0 when its worker is unhealthy (absent when it runs none).", []);
  const unacknowledged = gauge("messages_unacknowledged", "Messages page entries not yet acknowledged, by severity.", ["severity"]);
  const trackingWaiting = gauge("tracking_records_waiting", "Tracking records not yet processed, by stream (print_os, scanned_codes).", ["stream"]);
  const trackingOldest = gauge("tracking_oldest_waiting_seconds", "Age of the oldest unprocessed tracking record, by stream.", ["stream"]);

  const set = (g: client.Gauge, rows: any[], label: string, value: string) => {
    g.reset();
    for (const r of rows) if (r[value] !== null) g.set({ [label]: r[label] }, Number(r[value]));
  };

  const sources: Source[] = [
    {
      name: "jobs",
      sql: `select task_identifier as task,
                   count(*) filter (where locked_at is null and run_at <= now() and attempts < max_attempts) as waiting,
                   extract(epoch from now() - min(run_at) filter (where locked_at is null and run_at <= now() and attempts < max_attempts)) as oldest,
                   count(*) filter (where attempts >= max_attempts) as failed
              from graphile_worker.jobs group by task_identifier`,
      apply(rows) {
        set(jobsWaiting, rows, "task", "waiting");
        set(jobsOldest, rows, "task", "oldest");
        set(jobsFailing, rows, "task", "failed");
      },
    },
    {
      name: "grundner",
      sql: `select status as state, count(*) as n,
                   case when status in ('queued', 'sending', 'sent', 'acknowledged')
                        then extract(epoch from now() - min(created_at)) end as oldest
              from nesting.grundner_requests group by status`,
      apply(rows) {
        set(grundnerRequests, rows, "state", "n");
        set(grundnerOldest, rows, "state", "oldest");
      },
    },
    {
      name: "scans",
      sql: `select scanner, extract(epoch from last_complete_at) as at, (failing_since is not null)::int as failing from nesting.scan_state`,
      apply(rows) {
        set(passAt, rows, "scanner", "at");
        set(passFailing, rows, "scanner", "failing");
      },
    },
    {
      name: "watcher_events",
      sql: `select watcher, extract(epoch from max(at)) as at from ops.watcher_events where at > now() - interval '1 day' group by watcher`,
      apply: (rows) => set(watcherEventAt, rows, "watcher", "at"),
    },
    {
      name: "messages",
      sql: `select severity, count(*) as n from ops.messages where acknowledged_at is null group by severity`,
      apply(rows) {
        unacknowledged.reset();
        for (const severity of ["info", "warning", "error", "critical"]) {
          unacknowledged.set({ severity }, Number(rows.find((r) => r.severity === severity)?.n ?? 0));
        }
      },
    },
    {
      name: "tracking",
      // The processing queue (tracking_private.pending_records): by its primary key, never a scan of the records.
      sql: `select s.stream, count(q.record_id) as n, extract(epoch from now() - min(q.queued_at)) as oldest
              from (values ('print_os', 'print_os'), ('scanner', 'scanned_codes')) s(source_type, stream)
              left join tracking_private.pending_records q on q.source_type = s.source_type
             group by s.stream`,
      apply(rows) {
        set(trackingWaiting, rows, "stream", "n");
        set(trackingOldest, rows, "stream", "oldest");
      },
    },
  ];

  async function readSource(source: Source) {
    try {
      const { rows } = await opts.pool.query(source.sql);
      source.apply(rows);
    } catch (err) {
      scrapeErrors.inc({ source: source.name });
      opts.log.warn({ err, source: source.name }, "metrics: could not read a source");
    }
  }

  function processParts() {
    watcherUp.reset();
    const watchers = opts.watchers?.();
    for (const w of (watchers?.watchers as PartHealth[] | undefined) ?? []) {
      watcherUp.set({ watcher: String(w.name), state: String(w.state) }, w.ok ? 1 : 0);
    }
    workerUp.reset();
    const worker = opts.worker?.();
    if (worker) workerUp.set(worker.ok ? 1 : 0);
  }

  const names = new Set<string>();
  const boundedName = (name: string) => {
    if (!OPERATION_NAME.test(name)) return name ? "invalid" : "anonymous";
    if (names.has(name)) return name;
    if (names.size >= MAX_OPERATION_NAMES) return "other";
    names.add(name);
    return name;
  };

  return {
    contentType: registry.contentType,
    observeRequest(labels, seconds) {
      const l = { method: labels.method, route: labels.route, status: String(labels.status) };
      httpRequests.inc(l);
      httpDuration.observe(l, seconds);
    },
    observeOperation(labels, seconds) {
      operations.inc({ type: labels.type, name: boundedName(labels.name), outcome: labels.outcome });
      operationDuration.observe({ type: labels.type, outcome: labels.outcome }, seconds);
    },
    async render() {
      processParts();
      await Promise.all(sources.map(readSource));
      return registry.metrics();
    },
  };
}

/** The type and name of the operation a GraphQL request runs. */
function describeOperation(document: DocumentNode | undefined, operationName: string | null | undefined) {
  const op = document ? getOperationAST(document, operationName ?? undefined) : null;
  return { type: op?.operation ?? "unknown", name: op?.name?.value ?? operationName ?? "" };
}

/**
 * A graphile-config plugin that times each GraphQL execution (HTTP and
 * websocket alike) into the metrics.
 */
export function makeMetricsPlugin(metrics: Metrics): GraphileConfig.Plugin {
  const timed = (type: "execute" | "subscribe") =>
    async (next: () => unknown, event: { args: { document?: DocumentNode; operationName?: string | null } }) => {
      const started = process.hrtime.bigint();
      const op = describeOperation(event.args.document, event.args.operationName);
      let outcome: "ok" | "error" = "error";
      try {
        const result = (await next()) as { errors?: readonly unknown[] } | undefined;
        if (!(result && Array.isArray(result.errors) && result.errors.length > 0)) outcome = "ok";
        return result;
      } finally {
        metrics.observeOperation({ ...op, type: op.type === "unknown" ? type : op.type, outcome }, Number(process.hrtime.bigint() - started) / 1e9);
      }
    };
  return {
    name: "ShopfloorMetricsPlugin",
    version: "1.0.0",
    grafast: {
      middleware: {
        execute: timed("execute") as any,
        subscribe: timed("subscribe") as any,
      },
    },
  };
}

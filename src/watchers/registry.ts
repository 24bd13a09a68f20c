// The folders this installation watches or scans. Each module that works
// with files adds its declarations here.
import type { Config } from "../config.ts";
import type { Queryable } from "../grundner/pump.ts";
import { IngestPoller } from "../nesting/ingest.ts";
import { readyFileEvent, stageSanity } from "../nesting/ready.ts";
import type { FolderWatch } from "./index.ts";

export function folderWatches(config: Config, db: Queryable): FolderWatch[] {
  const ingest = new IngestPoller(config.processedRoot, db);
  return [
    {
      // Any file the storage writes or renames in the Grundner share wakes the
      // worker's pass over the share; the pass itself decides what to do.
      name: "grundner",
      folder: config.grundnerDir,
      polling: config.watchPolling,
      pollIntervalMs: config.watchPollIntervalMs,
      depth: 0,
      ignored: (p) => /\.tmp$/i.test(p),
      async handle(e) {
        if (e.event !== "add" && e.event !== "change") return;
        await db.query("select ops_private.wake('nesting_grundner')");
      },
    },
    {
      // The ingest poller: a full walk of the processed jobs root (a polling
      // scan suits a large tree on a share better than file events).
      name: "jobs-ingest",
      folder: config.processedRoot,
      polling: true,
      scan: {
        async run() {
          const report = await ingest.scan();
          return report.applied.next_scan_ms;
        },
        retryMs: 5000,
      },
      // Applied, but not healthy: a root not fully readable (nothing is pruned),
      // or a held prune (too many jobs vanished at once) waiting for a supervisor.
      status: () => ({
        ok: ingest.held === null && ingest.unreadable.length === 0,
        scans: ingest.scans,
        lastScanAt: ingest.lastScanAt?.toISOString() ?? null,
        ...(ingest.unreadable.length > 0 && { unreadable: `processed jobs root not fully readable: ${ingest.unreadable.slice(0, 3).join("; ")}` }),
        ...(ingest.held && { held: { ...ingest.held, confirm: `select nesting.confirm_prune(${ingest.held.id})` } }),
      }),
    },
    {
      name: "stage-sanity",
      folder: config.processedRoot,
      polling: true,
      scan: {
        async run() {
          const { unreadable } = await stageSanity(db);
          if (unreadable.length > 0) throw new Error(`Ready-to-Run folder(s) not readable: ${unreadable.join("; ")}`);
          const { rows } = await db.query(
            "select (extract(epoch from ops.setting_interval('nesting.stage_sanity_interval')) * 1000)::int as ms",
          );
          return rows[0].ms;
        },
        retryMs: 10_000,
      },
    },
    // The Ready page: one watcher per Ready-to-Run folder; a file is reported
    // once it has stopped growing.
    ...config.readyDirs.map(
      (dir): FolderWatch => ({
        name: `ready:${dir}`,
        folder: dir,
        polling: config.watchPolling,
        pollIntervalMs: config.watchPollIntervalMs,
        depth: 0,
        stableMs: 500,
        ignored: (p) => /\.shopfloor-tmp$/.test(p),
        handle: (e) => readyFileEvent(db, dir, e),
      }),
    ),
  ];
}

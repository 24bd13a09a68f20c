// The tracking worker tasks: each applies new records of its source(s) with
// one SQL call (tracking.process_status_updates: set-based, the source's
// marker row locked, so concurrent runs never process a record twice).
//
// The insert trigger of each source wakes that source's own task, so the
// worker runs print OS and scanner processing side by side: a scan never
// waits behind a print OS backlog, and a backlog of both uses both cores.
import type { Task } from "graphile-worker";

export type TrackingSource = "both" | "print_os" | "scanner";

interface Processed {
  print_os_processed: number;
  scanner_processed: number;
  jobs_updated: number;
}

export function trackingTask(source: TrackingSource): Task {
  return async (_payload, helpers) => {
    const { rows } = await helpers.query<{ r: Processed }>(`select tracking.process_status_updates($1) as r`, [source]);
    const r = rows[0].r;
    if (r.print_os_processed > 0 || r.scanner_processed > 0) helpers.logger.info("tracking processed", { source, ...r });
  };
}

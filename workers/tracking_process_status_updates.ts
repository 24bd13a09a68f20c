// Applies new print OS records and scans to job status. Woken by statement
// triggers on "print OS" and scanned_codes (ops_private.wake: a job still
// waiting serves a whole burst), and every minute by the crontab as a backstop.
// The work is one SQL function: set-based, the marker row locked, so concurrent
// runs never process a record twice.
import type { Task } from "graphile-worker";

const task: Task = async (_payload, helpers) => {
  const { rows } = await helpers.query<{ r: { print_os_processed: number; scanner_processed: number; jobs_updated: number } }>(
    `select tracking.process_status_updates('both') as r`,
  );
  const r = rows[0].r;
  if (r.print_os_processed > 0 || r.scanner_processed > 0) helpers.logger.info("tracking processed", r);
};

export default task;

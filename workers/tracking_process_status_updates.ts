// Both sources in one run: what the worker ran before each source had its own
// task (jobs queued by an older version, a DBA's graphile_worker.add_job).
// The triggers and the crontab now use tracking_process_print_os and
// tracking_process_scans (see src/tracking/process-task.ts).
import { trackingTask } from "../src/tracking/process-task.ts";

export default trackingTask("both");

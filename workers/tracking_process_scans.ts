// New scans → job and imposition operations. Woken by the insert trigger on
// scanned_codes (ops_private.wake: a job still waiting serves a whole burst)
// and every minute by the crontab. See src/tracking/process-task.ts.
import { trackingTask } from "../src/tracking/process-task.ts";

export default trackingTask("scanner");

// New print OS records → file, job and imposition print status. Woken by the
// insert trigger on "print OS" (ops_private.wake: a job still waiting serves a
// whole burst) and every minute by the crontab. See src/tracking/process-task.ts.
import { trackingTask } from "../src/tracking/process-task.ts";

export default trackingTask("print_os");

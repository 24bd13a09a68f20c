// The planning module's daily cleanup: plan rows older than the previous
// working date leave the plan and their operations are paused (6); the
// previous working date's rows wait for the supervisor (planning.cleanup).
import type { Task } from "graphile-worker";

const task: Task = async (_payload, helpers) => {
  const { rows } = await helpers.query<{ removed: number }>(`select planning.cleanup() as removed`);
  helpers.logger.info(`planning cleanup removed ${rows[0]?.removed ?? 0} stale plan row(s)`);
};

export default task;

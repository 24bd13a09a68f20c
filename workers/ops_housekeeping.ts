// Nightly: prunes watcher events older than the ops.watcher_events_keep setting.
import type { Task } from "graphile-worker";

const task: Task = async (_payload, helpers) => {
  const { rowCount } = await helpers.query(
    `delete from ops.watcher_events where at < now() - ops.setting_interval('ops.watcher_events_keep')`,
  );
  helpers.logger.info(`pruned ${rowCount ?? 0} old watcher event(s)`);
};

export default task;

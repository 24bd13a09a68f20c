// Copies new operator messages into the process log (so log shipping sees
// them) and stamps logged_at. Set-based and idempotent: a message is logged
// once, however many jobs a burst of inserts enqueued.
import type { Task } from "graphile-worker";

const BATCH = 500;

const task: Task = async (_payload, helpers) => {
  for (;;) {
    const { rows } = await helpers.query<{ id: string; source: string; severity: string; title: string; related: unknown }>(
      `update ops.messages m set logged_at = now()
        where m.id in (select id from ops.messages where logged_at is null order by id limit $1 for update skip locked)
       returning m.id, m.source, m.severity, m.title, m.related`,
      [BATCH],
    );
    for (const m of rows) {
      const line = { messageId: m.id, source: m.source, related: m.related };
      if (m.severity === "error" || m.severity === "critical") helpers.logger.error(m.title, line);
      else if (m.severity === "warning") helpers.logger.warn(m.title, line);
      else helpers.logger.info(m.title, line);
    }
    if (rows.length < BATCH) return;
  }
};

export default task;

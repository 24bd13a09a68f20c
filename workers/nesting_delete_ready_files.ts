// Ready delete: removes the files an operator chose on the Ready page (the
// jobs were already put back to PENDING and released by
// nesting.delete_ready_files). A file already gone counts as deleted.
import { unlink } from "node:fs/promises";
import path from "node:path";
import type { Task } from "graphile-worker";

interface Payload {
  machine_id: string;
  names: string[];
}

const task: Task = async (raw, helpers) => {
  const payload = raw as Payload;
  const { rows } = await helpers.query<{ ready_dir: string; name: string }>("select ready_dir, name from nesting.machines where id = $1", [payload.machine_id]);
  if (!rows[0]) return;
  const deleted: string[] = [];
  const failed: string[] = [];
  for (const name of payload.names) {
    if (name.includes("/") || name.includes("\\")) {
      failed.push(`${name}: not a file name`);
      continue;
    }
    try {
      await unlink(path.join(rows[0].ready_dir, name));
      deleted.push(name);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") deleted.push(name);
      else failed.push(`${name}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (deleted.length > 0) await helpers.query("select nesting_private.ready_files_removed($1, $2)", [payload.machine_id, deleted]);
  if (failed.length > 0) {
    await helpers.query("select ops.post_message('ready-delete', 'error', $1, $2, $3)", [
      `Could not delete ${failed.length} file(s) from Ready-to-Run on ${rows[0].name}`,
      failed.join("\n"),
      JSON.stringify({ machine_id: payload.machine_id }),
    ]);
  }
};

export default task;

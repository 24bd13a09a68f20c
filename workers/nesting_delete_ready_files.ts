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
  const { rows } = await helpers.query<{ ready_dir: string }>("select ready_dir from nesting.machines where id = $1", [payload.machine_id]);
  if (!rows[0]) return;
  const deleted: string[] = [];
  // The database words the message: here only the file and a reason code.
  const failed: { name: string; reason: string }[] = [];
  for (const name of payload.names) {
    if (name.includes("/") || name.includes("\\")) {
      failed.push({ name, reason: "not_a_file_name" });
      continue;
    }
    try {
      await unlink(path.join(rows[0].ready_dir, name));
      deleted.push(name);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") deleted.push(name);
      else failed.push({ name, reason: (e as NodeJS.ErrnoException).code ?? (e as Error).message });
    }
  }
  if (deleted.length + failed.length > 0) {
    await helpers.query("select nesting_private.ready_files_removed($1, $2, $3)", [payload.machine_id, deleted, JSON.stringify(failed)]);
  }
};

export default task;

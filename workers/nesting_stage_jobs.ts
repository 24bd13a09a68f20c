// Copies each job's NC and part files into the machine's Ready-to-Run folder
// (temporary name, then rename), then marks the copied jobs STAGED. A job
// whose copy fails is left as it was, with a message.
import { copyFile, readdir, rename, unlink } from "node:fs/promises";
import path from "node:path";
import type { Task } from "graphile-worker";
import type { WorkerContext } from "../src/worker.ts";

interface Payload {
  keys: string[];
  machine_id: string;
}

async function copyInto(from: string, toDir: string, name: string) {
  const tmp = path.join(toDir, `.${name}.shopfloor-tmp`);
  try {
    await copyFile(from, tmp);
    await rename(tmp, path.join(toDir, name));
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

export function makeTask(ctx: WorkerContext): Task {
  return async (raw, helpers) => {
    const payload = raw as Payload;
    const { rows: machines } = await helpers.query<{ ready_dir: string }>("select ready_dir from nesting.machines where id = $1", [payload.machine_id]);
    const { rows: jobs } = await helpers.query<{ key: string; folder: string; ncfile: string }>(
      "select key, folder, ncfile from nesting.jobs where key = any($1) and removed_at is null order by key",
      [payload.keys],
    );
    const staged: string[] = [];
    const failed: { key: string; error: string }[] = [];
    for (const job of jobs) {
      try {
        if (!machines[0]) throw new Error("the machine no longer exists");
        const dir = path.join(ctx.config.processedRoot, job.folder);
        const base = job.ncfile.replace(/\.nc$/i, "").toLowerCase();
        const siblings = (await readdir(dir)).filter((n) => /\.(pts|lpt)$/i.test(n) && n.slice(0, -4).toLowerCase() === base);
        for (const name of [...siblings, job.ncfile]) await copyInto(path.join(dir, name), machines[0].ready_dir, name); // the NC file last
        staged.push(job.key);
      } catch (e) {
        failed.push({ key: job.key, error: `${job.key}: ${(e as Error).message}` });
      }
    }
    const missing = payload.keys.filter((k) => !jobs.some((j) => j.key === k));
    for (const key of missing) failed.push({ key, error: `${key}: the job is gone` });
    if (staged.length > 0) await helpers.query("select nesting_private.mark_staged($1, $2)", [staged, payload.machine_id]);
    if (failed.length > 0) {
      await helpers.query("select nesting_private.stage_failed($1, $2, $3)", [failed.map((f) => f.key), payload.machine_id, failed.map((f) => f.error).join("\n")]);
    }
    helpers.logger.info(`staged ${staged.length} job(s), ${failed.length} failed`);
  };
}

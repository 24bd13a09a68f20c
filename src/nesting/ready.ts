// Ready-to-Run folders: the watcher keeps the Ready page in step, and the
// stage sanity check looks at every machine's folder as a whole: jobs staged
// there whose NC file is gone go back to PENDING and are released. A folder
// that cannot be read is reported and nothing is changed for it.
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import type { Queryable } from "../grundner/pump.ts";
import type { WatchEvent } from "../watchers/index.ts";

export async function readyFileEvent(db: Queryable, dir: string, e: WatchEvent) {
  if (path.dirname(e.path) !== dir) return; // files only, directly in the folder
  const name = path.basename(e.path);
  if (e.event === "add" || e.event === "change") {
    const s = e.stats ?? (await stat(e.path));
    await db.query("select nesting_private.ready_file_seen($1, $2, $3, $4)", [dir, name, s.size, s.mtime.toISOString()]);
  } else if (e.event === "unlink") {
    await db.query("select nesting_private.ready_file_gone($1, $2)", [dir, name]);
  }
}

export async function stageSanity(db: Queryable): Promise<{ checked: { machine: string; unstaged: string[] }[]; unreadable: string[] }> {
  // The database's time before any folder is listed: jobs staged after it are
  // left for the next look (their file may have arrived after the listing).
  const { rows: machines } = await db.query<{ id: string; name: string; ready_dir: string; listed_at: Date; ignored: string }>(
    "select id, name, ready_dir, clock_timestamp() as listed_at, nesting.ignored_name_pattern() as ignored from nesting.machines order by id",
  );
  const out: { machine: string; unstaged: string[] }[] = [];
  const unreadable: string[] = [];
  for (const m of machines) {
    let names: string[];
    try {
      // Recycle bins, lock files and temporary copies are not on the Ready page (nesting.ignored_names).
      const ignored = new RegExp(m.ignored, "i");
      names = (await readdir(m.ready_dir, { withFileTypes: true })).filter((e) => e.isFile() && !ignored.test(e.name)).map((e) => e.name);
    } catch (e) {
      const why = `${m.ready_dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
      await db.query("select nesting_private.note_scan($1, 'stage-sanity', $2)", [`Ready-to-Run folder of ${m.name}`, why]);
      unreadable.push(why);
      continue;
    }
    const { rows } = await db.query<{ result: { unstaged: string[] } }>("select nesting_private.stage_sanity($1, $2, $3) as result", [m.id, names, m.listed_at]);
    out.push({ machine: m.name, unstaged: rows[0].result.unstaged });
  }
  return { checked: out, unreadable };
}

// The Grundner communication folder: write requests under a temporary name
// and rename them into place, find replies (names match case-insensitively),
// take a request back, and move replies to the archive or to quarantine.
// Nothing is ever deleted.
import { copyFile, mkdir, readdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { formatRequest } from "./csv.ts";

export type RequestFile = "order_saw" | "get_production" | "stock_request";

export interface ShareDirs {
  dir: string;
  archiveDir: string;
  quarantineDir: string;
}

const stamp = () => new Date().toISOString().replace(/[:.]/g, "-");

async function move(from: string, to: string) {
  await mkdir(path.dirname(to), { recursive: true });
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EXDEV") throw e;
    await copyFile(from, to); // archive on another disk than the share
    await unlink(from);
  }
}

export class Share {
  readonly dirs: ShareDirs;

  constructor(dirs: ShareDirs) {
    this.dirs = dirs;
  }

  /** The actual name of `wanted` in the folder (any case), if it is there. */
  async find(wanted: string): Promise<string | undefined> {
    const names = await readdir(this.dirs.dir);
    return names.find((n) => n.toLowerCase() === wanted.toLowerCase());
  }

  read(name: string): Promise<Buffer> {
    return readFile(path.join(this.dirs.dir, name));
  }

  /** Writes `name.tmp`, then renames it to `name.csv`: the gateway reads a .csv at once. */
  async writeRequest(name: RequestFile, lines: string[]): Promise<void> {
    const bytes = formatRequest(lines); // refuses values the gateway cannot take, before anything is written
    if (await this.find(`${name}.csv`)) throw new Error(`${name}.csv is already in the share`);
    const tmp = path.join(this.dirs.dir, `${name}.tmp`);
    await writeFile(tmp, bytes);
    await rename(tmp, path.join(this.dirs.dir, `${name}.csv`));
  }

  /** Takes a request back (into the archive); false when the storage has taken it already. */
  async withdraw(name: RequestFile, requestId: string): Promise<boolean> {
    const actual = await this.find(`${name}.csv`);
    if (!actual) return false;
    try {
      await move(path.join(this.dirs.dir, actual), path.join(this.dirs.archiveDir, `${stamp()}-r${requestId}-withdrawn-${actual}`));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return false; // the storage took it just now
      throw e;
    }
  }

  async archive(name: string, requestId?: string): Promise<string> {
    const to = path.join(this.dirs.archiveDir, `${stamp()}${requestId ? `-r${requestId}` : ""}-${name}`);
    await move(path.join(this.dirs.dir, name), to);
    return to;
  }

  /** Moves a file that cannot be used aside, with a note saying why. */
  async quarantine(name: string, reason: string): Promise<string> {
    const to = path.join(this.dirs.quarantineDir, `${stamp()}-${name}`);
    await move(path.join(this.dirs.dir, name), to);
    await writeFile(`${to}.reason.txt`, reason + "\n");
    return to;
  }
}

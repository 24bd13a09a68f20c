// The Grundner communication folder: write requests under a temporary name
// and rename them into place, find replies (names match case-insensitively),
// take a request back, and move replies to the archive or to quarantine.
// Nothing is ever deleted but our own temporary files. Replies are read as
// regular files only: a link is never followed.
import { constants } from "node:fs";
import { copyFile, lstat, mkdir, readdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { formatRequest } from "./csv.ts";

export type RequestFile = "order_saw" | "get_production" | "stock_request";

export interface ShareDirs {
  dir: string;
  archiveDir: string;
  quarantineDir: string;
}

/** The share refused a file (full, read-only, gone): the request waits for the next pass. */
export class ShareWriteError extends Error {
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = "ShareWriteError";
  }
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

async function removeIfThere(file: string) {
  await unlink(file).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== "ENOENT") throw e;
  });
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

  /** What a name in the share is, without following a link: "file" is the only kind we read. */
  async kind(name: string): Promise<"file" | "symbolic link" | "folder" | "special file"> {
    const st = await lstat(path.join(this.dirs.dir, name));
    return st.isFile() ? "file" : st.isSymbolicLink() ? "symbolic link" : st.isDirectory() ? "folder" : "special file";
  }

  /** A regular file's bytes; O_NOFOLLOW refuses a link even if one appeared since kind(). */
  read(name: string): Promise<Buffer> {
    return readFile(path.join(this.dirs.dir, name), { flag: constants.O_RDONLY | constants.O_NOFOLLOW });
  }

  /**
   * Writes `name.tmp`, then renames it to `name.csv`: the gateway reads a .csv
   * at once. A share that refuses the file leaves no .tmp behind.
   */
  async writeRequest(name: RequestFile, lines: string[]): Promise<void> {
    const bytes = formatRequest(lines); // refuses values the gateway cannot take, before anything is written
    if (await this.find(`${name}.csv`)) throw new Error(`${name}.csv is already in the share`);
    const tmp = path.join(this.dirs.dir, `${name}.tmp`);
    try {
      await writeFile(tmp, bytes);
      await rename(tmp, path.join(this.dirs.dir, `${name}.csv`));
    } catch (e) {
      await removeIfThere(tmp).catch(() => {});
      throw new ShareWriteError(`${name}.csv could not be written: ${(e as Error).message}`, { cause: e });
    }
  }

  /** A temporary file left by a process that died mid-write. */
  removeStaleTemp(name: RequestFile): Promise<void> {
    return removeIfThere(path.join(this.dirs.dir, `${name}.tmp`));
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

  /** Moves a file that cannot be used aside (a link is moved as a link), with a note saying why. */
  async quarantine(name: string, reason: string): Promise<string> {
    const to = path.join(this.dirs.quarantineDir, `${stamp()}-${name}`);
    await move(path.join(this.dirs.dir, name), to);
    await writeFile(`${to}.reason.txt`, reason + "\n");
    return to;
  }
}

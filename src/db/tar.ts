// A small ustar writer and reader for backups: regular files and folders
// only, streamed (a data directory does not fit in memory), optionally gzip.
import { once } from "node:events";
import { closeSync, createReadStream, createWriteStream, mkdirSync, openSync, readSync, writeSync } from "node:fs";
import path from "node:path";
import type { Readable, Writable } from "node:stream";
import { createGunzip, createGzip } from "node:zlib";

const BLOCK = 512;

export interface TarEntry {
  name: string;
  type: "file" | "dir";
  size: number;
  mode: number;
}

function octal(n: number, width: number) {
  return n.toString(8).padStart(width - 1, "0") + "\0";
}

function header(entry: TarEntry, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  let name = entry.name + (entry.type === "dir" && !entry.name.endsWith("/") ? "/" : "");
  let prefix = "";
  if (Buffer.byteLength(name) > 100) {
    // ustar: up to 155 bytes of folders go into the prefix field.
    let i = name.indexOf("/");
    while (i !== -1 && Buffer.byteLength(name.slice(i + 1)) > 100) i = name.indexOf("/", i + 1);
    if (i <= 0 || Buffer.byteLength(name.slice(0, i)) > 155) throw new Error(`path too long for a backup archive: ${entry.name}`);
    prefix = name.slice(0, i);
    name = name.slice(i + 1);
  }
  h.write(name, 0, 100, "utf8");
  h.write(octal(entry.mode & 0o7777, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii");
  h.write(octal(0, 8), 116, "ascii");
  h.write(octal(entry.type === "file" ? entry.size : 0, 12), 124, "ascii");
  h.write(octal(Math.floor(mtime / 1000), 12), 136, "ascii");
  h.write("        ", 148, "ascii");
  h.write(entry.type === "dir" ? "5" : "0", 156, "ascii");
  h.write("ustar\0" + "00", 257, "ascii");
  h.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + " ", 148, "ascii");
  return h;
}

export class TarWriter {
  private readonly out: Writable;
  private readonly file: Writable;
  /** gzip: compress (the default when the name ends in .gz). */
  constructor(file: string, gzip = file.endsWith(".gz")) {
    this.file = createWriteStream(file, { mode: 0o600 });
    if (gzip) {
      const gz = createGzip({ level: 6 });
      gz.pipe(this.file);
      this.out = gz;
    } else {
      this.out = this.file;
    }
  }

  private async write(chunk: Buffer) {
    if (!this.out.write(chunk)) await once(this.out, "drain");
  }

  async addDir(name: string, mode = 0o700) {
    await this.write(header({ name, type: "dir", size: 0, mode }, Date.now()));
  }

  async addBuffer(name: string, data: Buffer, mode = 0o600) {
    await this.write(header({ name, type: "file", size: data.length, mode }, Date.now()));
    await this.write(data);
    await this.pad(data.length);
  }

  /**
   * Copies `size` bytes of a file that may change while it is read (a running
   * server's data files): a file that shrank is padded with zeros, bytes past
   * `size` are left out. WAL replay puts such pages right.
   */
  async addFile(name: string, source: string, size: number, mode: number, mtime: number) {
    const fd = openSync(source, "r");
    try {
      await this.write(header({ name, type: "file", size, mode }, mtime));
      const buf = Buffer.alloc(1 << 20);
      let done = 0;
      while (done < size) {
        const want = Math.min(buf.length, size - done);
        const got = readSync(fd, buf, 0, want, done);
        if (got === 0) {
          await this.write(Buffer.alloc(size - done));
          break;
        }
        await this.write(Buffer.from(buf.subarray(0, got)));
        done += got;
      }
    } finally {
      closeSync(fd);
    }
    await this.pad(size);
  }

  private async pad(size: number) {
    const rest = size % BLOCK;
    if (rest) await this.write(Buffer.alloc(BLOCK - rest));
  }

  async finish() {
    await this.write(Buffer.alloc(BLOCK * 2));
    this.out.end();
    await once(this.file, "close");
  }
}

function parseHeader(h: Buffer): TarEntry | null {
  if (h.every((b) => b === 0)) return null;
  const str = (start: number, len: number) => {
    const raw = h.subarray(start, start + len);
    const end = raw.indexOf(0);
    return raw.subarray(0, end === -1 ? len : end).toString("utf8");
  };
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  if (sum !== parseInt(str(148, 8).trim(), 8)) throw new Error("not a Shopfloor backup archive (bad tar header checksum)");
  const prefix = str(345, 155);
  const name = (prefix ? `${prefix}/` : "") + str(0, 100);
  const type = str(156, 1);
  if (type !== "0" && type !== "" && type !== "5") throw new Error(`unexpected entry type ${type} for ${name} in the backup`);
  return {
    name: name.replace(/\/$/, ""),
    type: type === "5" ? "dir" : "file",
    size: parseInt(str(124, 12).trim() || "0", 8),
    mode: parseInt(str(100, 8).trim() || "600", 8),
  };
}

/** The archive's bytes, un-gzipped when it starts with gzip's magic number. */
export async function openArchive(file: string): Promise<Readable> {
  const fd = openSync(file, "r");
  const magic = Buffer.alloc(2);
  readSync(fd, magic, 0, 2, 0);
  closeSync(fd);
  const raw = createReadStream(file);
  return magic[0] === 0x1f && magic[1] === 0x8b ? raw.pipe(createGunzip()) : raw;
}

/**
 * Extracts every entry under `target`; `onEntry` may redirect an entry (return
 * another absolute path) or skip it (return null). Names that would leave the
 * target are refused.
 */
export async function extractTar(
  input: Readable,
  target: string,
  onEntry: (e: TarEntry) => string | null | undefined = () => undefined,
): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  let pending: Buffer = Buffer.alloc(0);
  let current: { entry: TarEntry; fd: number | null; left: number; pad: number } | null = null;
  let ended = false;
  for await (const chunk of input) {
    pending = pending.length ? Buffer.concat([pending, chunk as Buffer]) : (chunk as Buffer);
    while (!ended) {
      if (current) {
        const take = Math.min(current.left, pending.length);
        if (take > 0 && current.fd !== null) writeSync(current.fd, pending, 0, take);
        pending = pending.subarray(take);
        current.left -= take;
        if (current.left > 0) break;
        if (pending.length < current.pad) break;
        pending = pending.subarray(current.pad);
        if (current.fd !== null) closeSync(current.fd);
        current = null;
        continue;
      }
      if (pending.length < BLOCK) break;
      const entry = parseHeader(pending.subarray(0, BLOCK));
      pending = pending.subarray(BLOCK);
      if (!entry) {
        ended = true;
        break;
      }
      const relative = path.normalize(entry.name);
      if (path.isAbsolute(relative) || relative.startsWith("..")) throw new Error(`refusing the backup entry ${entry.name} (outside the target)`);
      entries.push(entry);
      const redirected = onEntry(entry);
      const dest = redirected === undefined ? path.join(target, relative) : redirected;
      if (entry.type === "dir") {
        if (dest) mkdirSync(dest, { recursive: true, mode: 0o700 });
        continue;
      }
      let fd: number | null = null;
      if (dest) {
        mkdirSync(path.dirname(dest), { recursive: true, mode: 0o700 });
        fd = openSync(dest, "w", entry.mode & 0o777 || 0o600);
      }
      current = { entry, fd, left: entry.size, pad: (BLOCK - (entry.size % BLOCK)) % BLOCK };
    }
  }
  if (current) throw new Error(`the backup ends in the middle of ${current.entry.name}: the file is incomplete`);
  if (!ended) throw new Error("the backup has no end marker: the file is incomplete");
  return entries;
}

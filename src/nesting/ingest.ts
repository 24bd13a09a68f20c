// The ingest poller: walks the processed jobs root, reads each NC program
// that is new or changed (material from `ID=`, sheet size and thickness from
// `G100 X.. Y.. Z..`, part count from the sibling .pts/.lpt), and hands the
// whole scan to nesting.apply_ingest_scan in one call. Unchanged files cost
// a stat, not a read; the database gets one round trip per scan.
import type { Dirent } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { decodeWindows1252 } from "../grundner/csv.ts";
import type { Queryable } from "../grundner/pump.ts";

export interface NcProgram {
  key: string;
  folder: string;
  ncfile: string;
  material: string | null;
  parts: number | null;
  length_mm: number | null;
  width_mm: number | null;
  thickness_mm: number | null;
  nc_mtime: string;
  nc_size: number;
  problem: string | null;
}

export interface WalkResult {
  present: string[];
  changed: (NcProgram & { signature: string })[];
  /** Files seen but not yet stable (still being written): present, not read. */
  unstable: string[];
  errors: string[];
}

/** Fields from the NC text; what is missing is named in `problems`. */
export function parseNc(text: string): { material: string | null; length: number | null; width: number | null; thickness: number | null; problems: string[] } {
  const problems: string[] = [];
  const id = /^[\s(]*ID\s*=\s*([^\s);]+)/im.exec(text);
  const g100 = /G100\s+X\s*(\d+(?:\.\d+)?)\s+Y\s*(\d+(?:\.\d+)?)\s+Z\s*(\d+(?:\.\d+)?)/i.exec(text);
  if (!id) problems.push("no ID=<material> line");
  if (!g100) problems.push("no G100 X.. Y.. Z.. line (sheet size)");
  return {
    material: id ? id[1] : null,
    length: g100 ? Number(g100[1]) : null,
    width: g100 ? Number(g100[2]) : null,
    thickness: g100 ? Number(g100[3]) : null,
    problems,
  };
}

async function readProgram(dir: string, rel: string, ncName: string, partsName: string | undefined, mtime: Date, size: number): Promise<NcProgram> {
  const base = ncName.replace(/\.nc$/i, "");
  const program: NcProgram = {
    key: rel ? `${rel}/${base}` : base,
    folder: rel,
    ncfile: ncName,
    material: null,
    parts: null,
    length_mm: null,
    width_mm: null,
    thickness_mm: null,
    nc_mtime: mtime.toISOString(),
    nc_size: size,
    problem: null,
  };
  const problems: string[] = [];
  try {
    const nc = parseNc(decodeWindows1252(await readFile(path.join(dir, ncName))));
    Object.assign(program, { material: nc.material, length_mm: nc.length, width_mm: nc.width, thickness_mm: nc.thickness });
    problems.push(...nc.problems);
  } catch (e) {
    problems.push(`could not read the NC file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (partsName) {
    try {
      program.parts = decodeWindows1252(await readFile(path.join(dir, partsName))).split(/\r?\n/).filter((l) => l.trim() !== "").length;
    } catch (e) {
      problems.push(`could not read ${partsName} (${(e as NodeJS.ErrnoException).code})`);
    }
  } else {
    problems.push("no .pts or .lpt file (part count)");
  }
  program.problem = problems.length > 0 ? problems.join("; ") : null;
  return program;
}

/** Walks the root; `known` maps key → signature of what the database already has. */
export async function walkProcessedRoot(root: string, known: Map<string, string>, stableMs: number): Promise<WalkResult> {
  const result: WalkResult = { present: [], changed: [], unstable: [], errors: [] };
  const now = Date.now();
  const visit = async (dir: string, rel: string) => {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      result.errors.push(`${rel || "."}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return;
    }
    const byLower = new Map(entries.filter((e) => e.isFile()).map((e) => [e.name.toLowerCase(), e.name]));
    const subdirs: Promise<void>[] = [];
    for (const entry of entries) {
      if (entry.isDirectory()) {
        subdirs.push(visit(path.join(dir, entry.name), rel ? `${rel}/${entry.name}` : entry.name));
        continue;
      }
      if (!entry.isFile() || !/\.nc$/i.test(entry.name)) continue;
      const base = entry.name.slice(0, -3);
      const key = rel ? `${rel}/${base}` : base;
      const partsName = byLower.get(`${base.toLowerCase()}.pts`) ?? byLower.get(`${base.toLowerCase()}.lpt`);
      let signature: string;
      let mtime: Date;
      let size: number;
      try {
        // One stat per program when nothing changed: the parts file is named
        // in the signature, and stat-ed only when the NC file is new or changed
        // (the CAM program writes both together).
        const s = await stat(path.join(dir, entry.name));
        mtime = s.mtime;
        size = s.size;
        signature = `${s.mtimeMs}:${s.size}:${partsName ?? "-"}`;
        if (known.get(key) === signature) {
          result.present.push(key);
          continue;
        }
        const p = partsName ? await stat(path.join(dir, partsName)) : undefined;
        if (now - Math.max(s.mtimeMs, p?.mtimeMs ?? 0) < stableMs) {
          result.present.push(key);
          result.unstable.push(key);
          continue;
        }
      } catch (e) {
        result.errors.push(`${key}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        continue;
      }
      result.present.push(key);
      if (known.get(key) === signature) continue;
      result.changed.push({ ...(await readProgram(dir, rel, entry.name, partsName, mtime, size)), signature });
    }
    await Promise.all(subdirs);
  };
  await visit(root, "");
  return result;
}

export interface IngestReport {
  present: number;
  changed: number;
  unstable: number;
  errors: string[];
  applied: { added: number; updated: number; pruned: string[]; release_request_id: string | null; next_scan_ms: number; stable_ms: number };
}

/** One poller per process: remembers what the database has, so unchanged files are not re-read. */
export class IngestPoller {
  private readonly known = new Map<string, string>();
  private readonly root: string;
  private readonly db: Queryable;
  private stableMs: number;

  constructor(root: string, db: Queryable, stableMs: number) {
    this.root = root;
    this.db = db;
    this.stableMs = stableMs;
  }

  async scan(): Promise<IngestReport> {
    const walk = await walkProcessedRoot(this.root, this.known, this.stableMs);
    const error = walk.errors.length > 0 ? `Could not read: ${walk.errors.slice(0, 20).join("; ")}${walk.errors.length > 20 ? ` (and ${walk.errors.length - 20} more)` : ""}` : null;
    const { rows } = await this.db.query<{ result: IngestReport["applied"] }>("select nesting.apply_ingest_scan($1, $2, $3) as result", [
      walk.present,
      JSON.stringify(walk.changed.map(({ signature: _s, ...p }) => p)),
      error,
    ]);
    for (const p of walk.changed) this.known.set(p.key, p.signature);
    this.stableMs = rows[0].result.stable_ms; // the setting, for the next scan
    const present = new Set(walk.present);
    for (const key of this.known.keys()) if (!present.has(key)) this.known.delete(key);
    return { present: walk.present.length, changed: walk.changed.length, unstable: walk.unstable.length, errors: walk.errors, applied: rows[0].result };
  }
}

// The ingest poller: walks the processed jobs root, reads each NC program
// that is new or changed (material from `ID=`, sheet size and thickness from
// `G100 X.. Y.. Z..`, part count from the sibling .pts/.lpt), and hands the
// whole scan to nesting.apply_ingest_scan in one call. Unchanged files cost
// a stat, not a read; the database gets one round trip per scan.
import { readdir, stat, type Stats } from "node:fs";
import { readFile, stat as statAsync } from "node:fs/promises";
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
  changed: (NcProgram & { known: Known })[];
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

/** What the database has of one NC program: the poller re-reads it only when this changes. */
export interface Known {
  mtimeMs: number;
  size: number;
  /** The sibling part file's name, or null. */
  parts: string | null;
  /** The last scan that saw it. */
  seen: number;
}

type Candidate = { dir: string; rel: string; key: string; ncName: string; partsName: string | undefined; stats: Stats };

/**
 * Walks the root; `known` maps key → what the database already has, and each
 * entry seen gets `seen = generation`. An unchanged scan is the hot path (every
 * 5 s, 20,000 files): one readdir per folder and one stat per NC program, with
 * callbacks rather than a promise per file, and no string built to compare.
 */
export async function walkProcessedRoot(root: string, known: Map<string, Known>, stableMs: number, generation = 0): Promise<WalkResult> {
  const result: WalkResult = { present: [], changed: [], unstable: [], errors: [] };
  const candidates: Candidate[] = [];
  await new Promise<void>((resolve) => {
    let pending = 0;
    const done = () => {
      if (--pending === 0) resolve();
    };
    const visit = (dir: string, rel: string) => {
      pending++;
      readdir(dir, { withFileTypes: true }, (err, entries) => {
        if (err) {
          result.errors.push(`${rel || "."}: ${err.code ?? err.message}`);
          return done();
        }
        let names: Set<string> | undefined;
        let byLower: Map<string, string> | undefined;
        const partsOf = (base: string) => {
          names ??= new Set(entries.map((e) => e.name));
          if (names.has(`${base}.pts`)) return `${base}.pts`;
          if (names.has(`${base}.lpt`)) return `${base}.lpt`;
          byLower ??= new Map(entries.filter((e) => e.isFile()).map((e) => [e.name.toLowerCase(), e.name]));
          const lower = base.toLowerCase();
          return byLower.get(`${lower}.pts`) ?? byLower.get(`${lower}.lpt`);
        };
        const prefix = rel ? `${rel}/` : "";
        for (const entry of entries) {
          const name = entry.name;
          if (entry.isDirectory()) {
            visit(`${dir}${path.sep}${name}`, prefix + name);
            continue;
          }
          // *.nc, any case
          if (!entry.isFile() || name.length < 4 || name.charCodeAt(name.length - 3) !== 46 || name.slice(-2).toLowerCase() !== "nc") continue;
          const base = name.slice(0, -3);
          const key = prefix + base;
          const partsName = partsOf(base);
          pending++;
          stat(`${dir}${path.sep}${name}`, (e, s) => {
            if (e) {
              result.errors.push(`${key}: ${e.code ?? e.message}`);
            } else {
              result.present.push(key);
              const k = known.get(key);
              if (k !== undefined && k.mtimeMs === s.mtimeMs && k.size === s.size && k.parts === (partsName ?? null)) k.seen = generation;
              else candidates.push({ dir, rel, key, ncName: name, partsName, stats: s });
            }
            done();
          });
        }
        done();
      });
    };
    visit(root, "");
  });

  // New or changed programs (rare after the first scan): read once stable.
  const now = Date.now();
  await Promise.all(
    candidates.map(async (c) => {
      try {
        const p = c.partsName ? await statAsync(path.join(c.dir, c.partsName)) : undefined;
        if (now - Math.max(c.stats.mtimeMs, p?.mtimeMs ?? 0) < stableMs) {
          result.unstable.push(c.key);
          return;
        }
      } catch (e) {
        result.errors.push(`${c.key}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        return;
      }
      const program = await readProgram(c.dir, c.rel, c.ncName, c.partsName, c.stats.mtime, c.stats.size);
      result.changed.push({ ...program, known: { mtimeMs: c.stats.mtimeMs, size: c.stats.size, parts: c.partsName ?? null, seen: generation } });
    }),
  );
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
  private readonly known = new Map<string, Known>();
  private readonly root: string;
  private readonly db: Queryable;
  private stableMs: number;
  private generation = 0;

  constructor(root: string, db: Queryable, stableMs: number) {
    this.root = root;
    this.db = db;
    this.stableMs = stableMs;
  }

  async scan(): Promise<IngestReport> {
    const generation = ++this.generation;
    const walk = await walkProcessedRoot(this.root, this.known, this.stableMs, generation);
    const error = walk.errors.length > 0 ? `Could not read: ${walk.errors.slice(0, 20).join("; ")}${walk.errors.length > 20 ? ` (and ${walk.errors.length - 20} more)` : ""}` : null;
    // The present keys go as one JSON text (far cheaper to build than a
    // text[] literal of 20,000 escaped elements).
    const { rows } = await this.db.query<{ result: IngestReport["applied"] }>(
      "select nesting.apply_ingest_scan(array(select json_array_elements_text($1::json)), $2, $3) as result",
      [JSON.stringify(walk.present), JSON.stringify(walk.changed.map(({ known: _k, ...p }) => p)), error],
    );
    for (const p of walk.changed) this.known.set(p.key, p.known);
    this.stableMs = rows[0].result.stable_ms; // the setting, for the next scan
    // Forget programs not seen (after a complete walk: a folder that could not
    // be read keeps what we knew of it).
    if (walk.errors.length === 0) for (const [key, k] of this.known) if (k.seen !== generation) this.known.delete(key);
    return { present: walk.present.length, changed: walk.changed.length, unstable: walk.unstable.length, errors: walk.errors, applied: rows[0].result };
  }
}

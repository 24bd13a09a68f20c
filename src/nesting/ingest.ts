// The ingest poller: walks the processed jobs root, reads each NC program
// that is new or changed (material from `ID=`, sheet size and thickness from
// `G100 X.. Y.. Z..`, part count from the sibling .pts/.lpt), and hands the
// whole scan to nesting_private.apply_ingest_scan in one call. Unchanged files cost
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

// A number as CAM systems write it: 3630, 3630.5, 3630. or .5
const NUMBER = String.raw`[+-]?(?:\d+\.?\d*|\.\d+)`;
// ID=<material> wherever it is not the tail of a longer word: at the start of
// a line or inside a comment, in any case: ID=PT53449, (ID=PT53449),
// //ID=PT53449;, ; ID = PT53449, (id="PT53449").
const MATERIAL = /(?<![\w$])ID\s*=\s*["']?([^\s"'();,]+)/i;
// A G100 line (not G1000), e.g. N10 G100 X3630. Y1820. Z18. (the rest of the line)
const G100 = /(?<![A-Za-z])G100(?![\d.])([^\r\n]*)/gi;
const AXIS = new RegExp(`(?<![A-Za-z])([XYZ])\\s*(${NUMBER})`, "gi");

/** X, Y and Z of the first G100 line that has all three (else of the first G100 line). */
function sheetSize(text: string): { found: boolean; size: Record<string, number> } {
  let first: Record<string, number> | undefined;
  for (const [, rest] of text.matchAll(G100)) {
    const size: Record<string, number> = {};
    for (const [, axis, value] of rest.matchAll(AXIS)) size[axis.toUpperCase()] ??= Number(value);
    if (size.X !== undefined && size.Y !== undefined && size.Z !== undefined) return { found: true, size };
    first ??= size;
  }
  return { found: first !== undefined, size: first ?? {} };
}

/** Fields from the NC text; what is missing is named in `problems`. */
export function parseNc(text: string): { material: string | null; length: number | null; width: number | null; thickness: number | null; problems: string[] } {
  const problems: string[] = [];
  const id = MATERIAL.exec(text);
  if (!id) problems.push("no ID=<material> line");
  const { found, size } = sheetSize(text);
  const missing = ["X", "Y", "Z"].filter((a) => size[a] === undefined);
  if (!found) problems.push("no G100 X.. Y.. Z.. line (sheet size)");
  else if (missing.length > 0) problems.push(`G100 line without ${missing.join(", ")} (sheet size)`);
  return {
    material: id ? id[1] : null,
    length: size.X ?? null,
    width: size.Y ?? null,
    thickness: size.Z ?? null,
    problems,
  };
}

/** Lines of a .pts/.lpt file that name a part: CRLF, LF or CR; blank lines and a DOS end-of-file mark do not count. */
export function countParts(text: string): number {
  let n = 0;
  for (const line of text.split(/\r\n|\r|\n/)) if (line.replace(/\x1a/g, "").trim() !== "") n++;
  return n;
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
      program.parts = countParts(decodeWindows1252(await readFile(path.join(dir, partsName))));
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
export async function walkProcessedRoot(
  root: string,
  known: Map<string, Known>,
  stableMs: number,
  generation = 0,
  /** Folder and file names that are never jobs (recycle bins, lock files, ...): not entered, not read. */
  ignored?: RegExp,
): Promise<WalkResult> {
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
            if (!ignored?.test(name)) visit(`${dir}${path.sep}${name}`, prefix + name);
            continue;
          }
          // *.nc, any case
          if (!entry.isFile() || name.length < 4 || name.charCodeAt(name.length - 3) !== 46 || name.slice(-2).toLowerCase() !== "nc") continue;
          if (ignored?.test(name)) continue;
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

/** What the database tells the poller for its next scan (nesting_private.ingest_settings()). */
export interface IngestSettings {
  next_scan_ms: number;
  stable_ms: number;
  /** nesting.ignored_names as one regular expression (case-insensitive). */
  ignored_pattern: string;
  /** A file whose absence from the root means "the share is not mounted"; empty: off. */
  sentinel_file: string;
}

/** An open hold on pruning (nesting.prune_holds): too many jobs vanished at once. */
export interface PruneHold {
  id: number;
  since: string;
  jobs: number;
  known: number;
  confirmed_by: string | null;
}

export interface IngestReport {
  present: number;
  changed: number;
  unstable: number;
  errors: string[];
  applied: IngestSettings & { added: number; updated: number; pruned: string[]; release_request_id: string | null; held: PruneHold | null };
}

/** One poller per process: remembers what the database has, so unchanged files are not re-read. */
export class IngestPoller {
  private readonly known = new Map<string, Known>();
  private readonly root: string;
  private readonly db: Queryable;
  private settings: IngestSettings | undefined;
  private ignored: RegExp | undefined;
  private generation = 0;
  /** For /healthz: scans applied, when the last one was, what it could not read, and the hold on pruning it reported. */
  scans = 0;
  unreadable: string[] = [];
  lastScanAt: Date | undefined;
  held: PruneHold | null = null;

  constructor(root: string, db: Queryable) {
    this.root = root;
    this.db = db;
  }

  private useSettings(s: IngestSettings) {
    if (s.ignored_pattern !== this.settings?.ignored_pattern) this.ignored = new RegExp(s.ignored_pattern, "i");
    this.settings = s;
  }

  async scan(): Promise<IngestReport> {
    if (!this.settings) {
      const { rows } = await this.db.query<{ s: IngestSettings }>("select nesting_private.ingest_settings() as s");
      this.useSettings(rows[0].s);
    }
    const settings = this.settings!;
    const generation = ++this.generation;
    const walk = (await this.sentinelMissing(settings.sentinel_file)) ?? (await walkProcessedRoot(this.root, this.known, settings.stable_ms, generation, this.ignored));
    const error = walk.errors.length > 0 ? `Could not read: ${walk.errors.slice(0, 20).join("; ")}${walk.errors.length > 20 ? ` (and ${walk.errors.length - 20} more)` : ""}` : null;
    // The present keys go as one JSON text (far cheaper to build than a
    // text[] literal of 20,000 escaped elements).
    const { rows } = await this.db.query<{ result: IngestReport["applied"] }>(
      "select nesting_private.apply_ingest_scan(array(select json_array_elements_text($1::json)), $2, $3) as result",
      [JSON.stringify(walk.present), JSON.stringify(walk.changed.map(({ known: _k, ...p }) => p)), error],
    );
    const applied = rows[0].result;
    for (const p of walk.changed) this.known.set(p.key, p.known);
    this.useSettings(applied); // the settings, for the next scan
    this.held = applied.held;
    this.unreadable = walk.errors;
    this.scans++;
    this.lastScanAt = new Date();
    // Forget programs not seen (after a complete walk: a folder that could not
    // be read keeps what we knew of it).
    if (walk.errors.length === 0) for (const [key, k] of this.known) if (k.seen !== generation) this.known.delete(key);
    return { present: walk.present.length, changed: walk.changed.length, unstable: walk.unstable.length, errors: walk.errors, applied };
  }

  /** With a sentinel file set, its absence means the share is not mounted: an incomplete scan, so nothing is pruned. */
  private async sentinelMissing(sentinel: string): Promise<WalkResult | undefined> {
    if (!sentinel) return undefined;
    try {
      await statAsync(path.join(this.root, sentinel));
      return undefined;
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      return { present: [], changed: [], unstable: [], errors: [`sentinel file ${sentinel} not found (${why}): the share looks not mounted`] };
    }
  }
}

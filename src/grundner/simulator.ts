// A Grundner storage simulator: plays the storage's side of the three
// exchanges on a real folder, with the gateway's habits (takes a .csv at once,
// renames it to .erl, writes answers under a temporary name first) and
// settable delays and faults. The tests use it; a plant uses it to
// commission an install without the machine (`npm run grundner:sim`).
import { existsSync } from "node:fs";
import { readdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { decodeWindows1252, encodeWindows1252 } from "./csv.ts";

export interface SimBoard {
  type: number;
  material_name: string;
  length: number;
  width: number;
  thickness: number;
  stock: number;
  material_no?: string;
  customer_id?: string;
  density?: number;
}

/**
 * Board types shaped like a real storage's export: 50-character material
 * names, numeric customer IDs, and one customer ID on two types.
 */
export function realExportStock(count: number): SimBoard[] {
  return Array.from({ length: count }, (_, i) => ({
    type: i + 1,
    material_name: `Spanplatte ${String(i + 1).padStart(4, "0")} weiß beschichtet Dekor Eiche Natur`.padEnd(50, "x").slice(0, 50),
    length: 2800,
    width: 2070,
    thickness: [8, 16, 19, 25][i % 4],
    stock: 5 + (i % 30),
    material_no: String(400000 + i),
    customer_id: String(i === 1 ? 100000 : 100000 + i), // types 1 and 2 share customer ID 100000
    density: 650,
  }));
}

export interface SimFaults {
  /** The storage is off: request files are left where they are. */
  noAnswer?: boolean;
  /** order_saw.erl comes back with other content than the request. */
  alterErl?: boolean;
  /** The storage takes order_saw.csv at once but writes the .erl only after this long. */
  lateErlMs?: number;
  /** Orders whose board the gripper already moves: never deleted, left out of the answer. */
  onGripper?: string[];
  /** stock.csv starts with a header line. */
  stockHeader?: boolean;
  /** stock.csv has a line that does not parse. */
  stockBrokenLine?: boolean;
  /** Answers under the names the vendor's manual writes: Stock.csv, productionLIST_DEL.csv. */
  vendorNames?: boolean;
  /** Every answer line ends in `;` (one empty field more), as real exports do. */
  trailingSeparator?: boolean;
  /** LF line ends instead of CRLF. */
  lfOnly?: boolean;
  /** Releases are confirmed by renaming get_production.csv to .erl only: no productionLIST_del.csv. */
  erlOnlyRelease?: boolean;
  /** Field 15 (reserved stock) reports this many boards more than the production list holds, per type. */
  reservedDrift?: Record<number, number>;
}

export interface SimOptions {
  folder: string;
  stock: SimBoard[];
  /** Wait this long before acting on a request (the storage's reaction time). */
  delayMs?: number;
  pollMs?: number;
  faults?: SimFaults;
  onLog?: (line: string) => void;
}

interface Order {
  jobNo: string;
  type: number;
  quantity: number;
  machine: number;
}

export class GrundnerSimulator {
  readonly folder: string;
  readonly boards: Map<number, SimBoard>;
  readonly productionList = new Map<string, Order>();
  faults: SimFaults;
  delayMs: number;
  /** Every request file the storage took, in order (for tests). */
  readonly taken: { file: string; lines: string[] }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private readonly pollMs: number;
  private readonly log: (line: string) => void;

  constructor(opts: SimOptions) {
    this.folder = opts.folder;
    this.boards = new Map(opts.stock.map((b) => [b.type, { ...b }]));
    this.faults = opts.faults ?? {};
    this.delayMs = opts.delayMs ?? 0;
    this.pollMs = opts.pollMs ?? 20;
    this.log = opts.onLog ?? (() => {});
  }

  start() {
    this.timer = setInterval(() => void this.tick(), this.pollMs);
    return this;
  }

  async stop() {
    clearInterval(this.timer);
    while (this.busy) await new Promise((r) => setTimeout(r, 5));
  }

  available(type: number): number {
    const board = this.boards.get(type);
    if (!board) return 0;
    const ordered = [...this.productionList.values()].filter((o) => o.type === type).reduce((n, o) => n + o.quantity, 0);
    return Math.max(0, board.stock - ordered);
  }

  private async tick() {
    if (this.busy) return;
    this.busy = true;
    try {
      const names = await readdir(this.folder);
      const find = (n: string) => names.find((x) => x.toLowerCase() === n);
      for (const [file, handle] of [
        ["order_saw.csv", this.orderSaw],
        ["get_production.csv", this.getProduction],
        ["stock_request.csv", this.stockRequest],
      ] as const) {
        const name = find(file);
        if (!name || this.faults.noAnswer) continue;
        if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
        const full = path.join(this.folder, name);
        if (!existsSync(full)) continue; // taken back meanwhile
        const bytes = await readFile(full);
        const lines = decodeWindows1252(bytes).split(/\r?\n/).filter((l) => l.trim() !== "");
        this.taken.push({ file: name, lines });
        this.log(`took ${name}: ${lines.join(" | ")}`);
        await handle.call(this, full, bytes, lines);
      }
    } catch (e) {
      this.log(`error: ${(e as Error).message}`);
    } finally {
      this.busy = false;
    }
  }

  /** Answers are written under a temporary name, then renamed: like the gateway. */
  private async answer(name: string, lines: string[]) {
    const tmp = path.join(this.folder, `${name}.sim-tmp`);
    const end = (this.faults.trailingSeparator ? ";" : "") + (this.faults.lfOnly ? "\n" : "\r\n");
    await writeFile(tmp, encodeWindows1252(lines.map((l) => `${l}${end}`).join("")));
    await rename(tmp, path.join(this.folder, name));
  }

  private async orderSaw(full: string, bytes: Buffer, lines: string[]) {
    for (const line of lines) {
      const f = line.split(";");
      this.productionList.set(f[0], { jobNo: f[0], type: Number(f[1]), quantity: Number(f[2]), machine: Number(f[4]) });
    }
    const erl = full.replace(/\.csv$/i, ".erl");
    if (this.faults.alterErl) {
      await unlink(full);
      await this.answer(path.basename(erl), lines.map((l) => l.replace(/^([^;]*);(\d+);(\d+)/, (_m, j, t, q) => `${j};${t};${Number(q) + 1}`)));
    } else if (this.faults.lateErlMs) {
      const held = `${full}.taken`;
      await rename(full, held);
      setTimeout(() => void rename(held, erl).catch(() => {}), this.faults.lateErlMs);
    } else {
      await rename(full, erl);
    }
    void bytes;
  }

  private async getProduction(full: string, _bytes: Buffer, lines: string[]) {
    await rename(full, full.replace(/\.csv$/i, ".erl"));
    const deleted: Order[] = [];
    const erlOnly = this.faults.erlOnlyRelease;
    for (const line of lines) {
      const [jobNo, machine] = line.split(";");
      const targets =
        jobNo === "0"
          ? [...this.productionList.values()]
          : jobNo
            ? [this.productionList.get(jobNo)].filter((o): o is Order => Boolean(o))
            : [...this.productionList.values()].filter((o) => String(o.machine) === machine);
      for (const o of targets) {
        if (this.faults.onGripper?.includes(o.jobNo)) continue;
        this.productionList.delete(o.jobNo);
        deleted.push(o);
      }
    }
    if (erlOnly) return; // this gateway says nothing more
    await this.answer(
      this.faults.vendorNames ? "productionLIST_DEL.csv" : "productionLIST_del.csv",
      deleted.map((o, i) => `${i + 1};${o.jobNo};${o.type};${this.boards.get(o.type)?.material_name ?? ""};${o.quantity};0;${o.machine};1;0`),
    );
  }

  private async stockRequest(full: string) {
    await rename(full, full.replace(/\.csv$/i, ".erl"));
    const lines = [...this.boards.values()].map((b) =>
      [
        b.type,
        b.material_name,
        b.length,
        b.width,
        b.thickness,
        b.material_no ?? "",
        b.stock,
        this.available(b.type),
        0, 0, 0, 0, 0, 0,
        b.stock - this.available(b.type) + (this.faults.reservedDrift?.[b.type] ?? 0),
        b.customer_id ?? "",
        0,
        0,
        b.density ?? 0,
      ].join(";"),
    );
    if (this.faults.stockBrokenLine) lines.splice(1, 0, "17;broken line without its fields");
    if (this.faults.stockHeader) lines.unshift("Type;Material;Length;Width;Thickness;MatNo;Stock;Available;R1;R2;R3;R4;R5;R6;Reserved;Customer;Rest;Block;Density");
    await this.answer(this.faults.vendorNames ? "Stock.csv" : "stock.csv", lines);
  }
}

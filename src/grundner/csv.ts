// The Grundner gateway's file format: CSV without a header, `;` between
// fields (`,` and TAB accepted when reading), CRLF, Windows-1252 text. Real
// exports differ: a header line, a `;` ending every line, LF line ends; all
// are read.
import { parse } from "csv-parse/sync";
import { z } from "zod";

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

const decoder = new TextDecoder("windows-1252");
/** Unicode character → Windows-1252 byte, for the 251 characters the code page has. */
const ENCODE = new Map<string, number>();
for (let b = 0; b < 256; b++) {
  const ch = decoder.decode(Uint8Array.of(b));
  if (ch !== "\uFFFD" && !ENCODE.has(ch)) ENCODE.set(ch, b);
}

export function encodeWindows1252(text: string): Buffer {
  const out = Buffer.alloc(text.length);
  let i = 0;
  for (const ch of text) {
    const b = ENCODE.get(ch);
    if (b === undefined) throw new ProtocolError(`"${ch}" cannot be written in Windows-1252`);
    out[i++] = b;
  }
  return out.subarray(0, i);
}

export function decodeWindows1252(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** A request file's bytes: each line checked, CRLF after each, Windows-1252. */
export function formatRequest(lines: string[]): Buffer {
  for (const line of lines) {
    if (/[\r\n]/.test(line)) throw new ProtocolError(`a line break inside a field: ${JSON.stringify(line)}`);
  }
  return encodeWindows1252(lines.map((l) => `${l}\r\n`).join(""));
}

/** Lines of a reply file, decoded, without line ends or blank lines. */
export function fileLines(bytes: Uint8Array): string[] {
  return decodeWindows1252(bytes)
    .split(/\r?\n/)
    .map((l) => l.replace(/\r$/, ""))
    .filter((l) => l.trim() !== "");
}

/** A reply's text: Windows-1252, without a UTF-8 byte-order mark some exports start with. */
function replyText(bytes: Uint8Array): string {
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
  return decodeWindows1252(bom ? bytes.subarray(3) : bytes);
}

/**
 * Records of a reply file; the gateway writes `;`, accepts `,` and TAB too.
 * The separator is taken from the first non-blank line (a blank first line
 * would otherwise make a `;` file read as `,`).
 */
function parseRecords(bytes: Uint8Array): { line: number; fields: string[] }[] {
  const text = replyText(bytes);
  const first = text.split(/\r?\n/).find((l) => l.trim() !== "") ?? "";
  const delimiter = first.includes(";") ? ";" : first.includes("\t") ? "\t" : ",";
  const records = parse(text, {
    delimiter,
    relax_column_count: true,
    skip_empty_lines: true,
    trim: true,
    quote: false,
    info: true,
  }) as unknown as { record: string[]; info: { lines: number } }[];
  return records.map((r) => ({ line: r.info.lines, fields: r.record }));
}

// Digits only (a spreadsheet's "5.0" or "5,00" is still 5): z.coerce.number
// would take "", " ", "0x10" and "1e2" as numbers.
const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+([.,]0+)?$/, "expected a whole number")
    .transform((s) => Number(s.replace(/[.,]0+$/, "")))
    .pipe(z.number().int().min(min).max(max));
const decimal = z
  .string()
  .regex(/^\d+([.,]\d+)?$/, "expected a number")
  .transform((s) => Number(s.replace(",", ".")));

/** stock.csv: 19 fields per board type. */
export const stockRow = z
  .tuple([
    int(1, 4095), // 1 type
    z.string().max(50), // 2 material name
    decimal, // 3 length
    decimal, // 4 width
    decimal, // 5 thickness
    z.string(), // 6 material number
    int(0, 1_000_000), // 7 stock
    int(0, 1_000_000), // 8 stock available
    int(0, 1_000_000), // 9-14 reserve areas
    int(0, 1_000_000),
    int(0, 1_000_000),
    int(0, 1_000_000),
    int(0, 1_000_000),
    int(0, 1_000_000),
    int(0, 1_000_000), // 15 reserved stock
    z.string().max(14), // 16 customer ID
    int(0, 1_000_000), // 17 manual rest
    int(0, 1_000_000), // 18 block storage
    decimal, // 19 density
  ])
  .transform((f) => ({
    type_data: f[0],
    material_name: f[1],
    length_mm: f[2],
    width_mm: f[3],
    thickness_mm: f[4],
    material_no: f[5],
    stock: f[6],
    stock_available: f[7],
    reserve_1: f[8],
    reserve_2: f[9],
    reserve_3: f[10],
    reserve_4: f[11],
    reserve_5: f[12],
    reserve_6: f[13],
    reserved_stock: f[14],
    customer_id: f[15],
    manual_rest: f[16],
    block_storage: f[17],
    density: f[18],
  }));
export type StockRow = z.output<typeof stockRow>;

/** productionLIST_del.csv: 9 fields per deleted order. */
export const releaseRow = z
  .tuple(
    [
      z.string(), // 1 line no.
      z.string().min(1).max(8), // 2 job-no
      int(1, 4095), // 3 type
      z.string(), // 4 material name
      int(0, 255), // 5 quantity
      z.string(), // 6 rotation
      z.string(), // 7 machine
      z.string(), // 8 source place
    ],
    z.string(), // 9 res (ignored)
  )
  .transform((f) => ({ line_no: f[0], job_no: f[1], type: f[2], material_name: f[3], quantity: f[4], machine: f[6] }));
export type ReleaseRow = z.output<typeof releaseRow>;

export interface Parsed<T> {
  rows: T[];
  problems: { line: number; error: string; text: string }[];
}

function describe(error: z.ZodError) {
  return error.issues.map((i) => (i.path.length ? `field ${Number(i.path[0]) + 1}: ${i.message}` : i.message)).join("; ");
}

export interface ParseOptions {
  /** Line 1 may be a header (the vendor says never; some gateways write one). */
  allowHeader: boolean;
  /** The format's field count; empty fields past it are dropped. */
  fields: number;
  /** 1-based fields that hold numbers: a line with a number in one of them is data, never a header. */
  numeric?: number[];
  /** What names a line's thing (a stock line's type, field 1): two lines naming one thing are both refused. */
  unique?: { field: number; what: string; key: (row: any) => unknown };
}

/**
 * Reads every line it can; a line that does not fit is reported with its
 * number. Real exports end every line with the separator (one empty field
 * more than the format has) and may start with a header: empty fields past
 * `fields` are dropped, a non-empty one is still refused.
 */
export function parseRows<T>(bytes: Uint8Array, schema: z.ZodType<T>, opts: ParseOptions): Parsed<T> {
  const out: Parsed<T> = { rows: [], problems: [] };
  const kept: { line: number; row: T; text: string }[] = [];
  for (const [i, rec] of parseRecords(bytes).entries()) {
    if (opts.allowHeader && i === 0 && looksLikeHeader(rec.fields, opts)) continue;
    const fields = withoutTrailingEmpty(rec.fields, opts.fields);
    const text = rec.fields.join(";").replace(/\u0000/g, "\\0"); // the line as reported: jsonb cannot hold a NUL
    const error = lineError(fields, opts.fields);
    const result = error ? undefined : schema.safeParse(fields);
    if (result?.success) kept.push({ line: rec.line, row: result.data, text });
    else out.problems.push({ line: rec.line, error: error ?? describe(result!.error!), text });
  }
  const twins = opts.unique ? twinLines(kept, opts.unique.key) : new Map<number, number[]>();
  for (const k of kept) {
    const others = twins.get(k.line);
    if (!others) out.rows.push(k.row);
    // Two lines for one type: we cannot tell which is right, so neither is applied.
    else out.problems.push({ line: k.line, error: `field ${opts.unique!.field}: ${opts.unique!.what} ${opts.unique!.key(k.row)} is on line ${others.join(", ")} too; neither line is applied`, text: k.text });
  }
  out.problems.sort((a, b) => a.line - b.line);
  return out;
}

/** For each line whose key another line has too: the other lines' numbers. */
function twinLines<T>(kept: { line: number; row: T }[], key: (row: T) => unknown): Map<number, number[]> {
  const byKey = new Map<unknown, number[]>();
  for (const k of kept) {
    const lines = byKey.get(key(k.row));
    if (lines) lines.push(k.line);
    else byKey.set(key(k.row), [k.line]);
  }
  // The other lines are named up to 5 (a file could repeat one type on every line).
  const twins = new Map<number, number[]>();
  for (const lines of byKey.values()) {
    if (lines.length < 2) continue;
    const first = lines.slice(0, 6);
    for (const l of lines) twins.set(l, first.filter((o) => o !== l).slice(0, 5));
  }
  return twins;
}

/**
 * Line 1 is a header only when none of its number fields holds a number:
 * `Type;Material;...` is one, `1O1;Spanplatte;2800;...` (a typo) is a broken
 * data line and must be reported, or its type would count as gone.
 */
function looksLikeHeader(fields: string[], opts: ParseOptions): boolean {
  const numeric = opts.numeric ?? fields.map((_, i) => i + 1);
  return !numeric.some((f) => /^\d+([.,]\d+)?$/.test(fields[f - 1] ?? ""));
}

/** What makes a line unreadable before its fields are checked one by one (null: nothing). */
function lineError(fields: string[], count: number): string | null {
  const nul = fields.findIndex((f) => f.includes("\u0000"));
  if (nul >= 0) return `field ${nul + 1}: a NUL character, which no field may hold`; // PostgreSQL text cannot hold it
  if (fields.length > count) return `${fields.length} fields where the format has ${count}: field ${fields.length} is not empty`;
  return null;
}

function withoutTrailingEmpty(fields: string[], keep: number): string[] {
  let end = fields.length;
  while (end > keep && fields[end - 1] === "") end--;
  return end === fields.length ? fields : fields.slice(0, end);
}

export const STOCK_FIELDS = 19;
export const RELEASE_FIELDS = 9;
/** stock.csv: every field but the material name (2), material number (6) and customer ID (16) is a number. */
export const STOCK_NUMERIC = [1, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 18, 19];
/** productionLIST_del.csv: line no., type, quantity, rotation, machine. */
export const RELEASE_NUMERIC = [1, 3, 5, 6, 7];
/** The options the worker reads each reply with. */
export const STOCK_FORMAT: ParseOptions = { allowHeader: true, fields: STOCK_FIELDS, numeric: STOCK_NUMERIC, unique: { field: 1, what: "type", key: (r: StockRow) => r.type_data } };
export const RELEASE_FORMAT: ParseOptions = { allowHeader: true, fields: RELEASE_FIELDS, numeric: RELEASE_NUMERIC };

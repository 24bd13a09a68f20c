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

/** Records of a reply file; the gateway writes `;`, accepts `,` and TAB too. */
function parseRecords(bytes: Uint8Array): { line: number; fields: string[] }[] {
  const text = decodeWindows1252(bytes);
  const first = text.split(/\r?\n/, 1)[0] ?? "";
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

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
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

/**
 * Reads every line it can; a line that does not fit is reported with its
 * number. Real exports end every line with the separator (one empty field
 * more than the format has) and may start with a header: empty fields past
 * `fields` are dropped, a non-empty one is still refused.
 */
export function parseRows<T>(bytes: Uint8Array, schema: z.ZodType<T>, opts: { allowHeader: boolean; fields: number }): Parsed<T> {
  const out: Parsed<T> = { rows: [], problems: [] };
  for (const [i, rec] of parseRecords(bytes).entries()) {
    const fields = withoutTrailingEmpty(rec.fields, opts.fields);
    const tooMany = fields.length > opts.fields;
    const result = schema.safeParse(fields);
    if (result.success && !tooMany) out.rows.push(result.data);
    // The vendor says "no header"; some gateways write one anyway: tolerate it.
    else if (!(opts.allowHeader && i === 0 && !/^\d+$/.test(rec.fields[0] ?? ""))) {
      const error = tooMany
        ? `${fields.length} fields where the format has ${opts.fields}: field ${fields.length} is not empty`
        : result.success ? "" : describe(result.error);
      out.problems.push({ line: rec.line, error, text: rec.fields.join(";") });
    }
  }
  return out;
}

function withoutTrailingEmpty(fields: string[], keep: number): string[] {
  let end = fields.length;
  while (end > keep && fields[end - 1] === "") end--;
  return end === fields.length ? fields : fields.slice(0, end);
}

export const STOCK_FIELDS = 19;
export const RELEASE_FIELDS = 9;

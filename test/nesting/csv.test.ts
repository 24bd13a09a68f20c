// The reply parser on its own: what it reads, and what it refuses naming the
// line and the field. (End to end through the pass: replies.test.ts.)
import test from "ava";
import { encodeWindows1252, parseRows, RELEASE_FORMAT, releaseRow, STOCK_FORMAT, stockRow } from "../../src/grundner/csv.ts";

const stockLine = (type: number | string, stock: number | string) => `${type};Board;2800;2070;19;M1;${stock};${stock};0;0;0;0;0;0;0;;0;0;650`;
const parseStock = (text: string) => parseRows(encodeWindows1252(text), stockRow, STOCK_FORMAT);
const problems = (p: { problems: { line: number; error: string }[] }) => p.problems.map((x) => `line ${x.line}: ${x.error}`);

test("a blank first line does not change the separator: a ; file is read as ;", (t) => {
  const parsed = parseStock(`\r\n${stockLine(101, 5)}\r\n${stockLine(102, 6)}\r\n`);
  t.deepEqual(problems(parsed), []);
  t.deepEqual(parsed.rows.map((r) => [r.type_data, r.stock]), [[101, 5], [102, 6]]);
});

test("numbers are digits only: empty, 0x10, 1e2, -1 and blanks are refused naming the field", (t) => {
  const parsed = parseStock([stockLine(101, ""), stockLine(102, "0x10"), stockLine(103, "1e2"), stockLine(104, "-1"), stockLine(" ", 1), stockLine(105, 7)].join("\r\n"));
  t.deepEqual(problems(parsed), [
    "line 1: field 7: expected a whole number; field 8: expected a whole number",
    "line 2: field 7: expected a whole number; field 8: expected a whole number",
    "line 3: field 7: expected a whole number; field 8: expected a whole number",
    "line 4: field 7: expected a whole number; field 8: expected a whole number",
    "line 5: field 1: expected a whole number",
  ]);
  t.deepEqual(parsed.rows.map((r) => r.type_data), [105]);
  // A spreadsheet's whole numbers with zero decimals are still whole numbers.
  const decimals = parseStock([stockLine(106, "5.0"), stockLine(107, "6,00"), stockLine(108, "6.5")].join("\r\n"));
  t.deepEqual(decimals.rows.map((r) => [r.type_data, r.stock]), [[106, 5], [107, 6]]);
  t.deepEqual(problems(decimals), ["line 3: field 7: expected a whole number; field 8: expected a whole number"]);
  const release = parseRows(Buffer.from("1;Sheet1;0x65;Board;1;0;1;1;0\r\n2;Sheet2;101;Board;;0;1;1;0\r\n"), releaseRow, RELEASE_FORMAT);
  t.deepEqual(problems(release), ["line 1: field 3: expected a whole number", "line 2: field 5: expected a whole number"]);
});

test("line 1 is a header only when no number field holds a number; a byte-order mark is dropped", (t) => {
  const header = "Type;Material;Length;Width;Thickness;MatNo;Stock;Available;R1;R2;R3;R4;R5;R6;Reserved;Customer;Rest;Block;Density";
  t.deepEqual(problems(parseStock(`${header}\r\n${stockLine(101, 1)}\r\n`)), [], "a real header is tolerated");
  const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), encodeWindows1252(`${stockLine(101, 1)}\r\n${stockLine(102, 1)}\r\n`)]);
  t.deepEqual(parseRows(bom, stockRow, STOCK_FORMAT).rows.map((r) => r.type_data), [101, 102]);
  const bomHeader = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), encodeWindows1252(`${header}\r\n${stockLine(101, 1)}\r\n`)]);
  t.deepEqual(parseRows(bomHeader, stockRow, STOCK_FORMAT).rows.map((r) => r.type_data), [101]);
  // A typo or an empty type in line 1: a broken data line, reported.
  t.deepEqual(problems(parseStock(`${stockLine("1O1", 1)}\r\n${stockLine(102, 1)}\r\n`)), ["line 1: field 1: expected a whole number"]);
  t.deepEqual(problems(parseStock(`${stockLine("", 1)}\r\n${stockLine(102, 1)}\r\n`)), ["line 1: field 1: expected a whole number"]);
  const release = parseRows(Buffer.from("1;Sheet1;1O1;Board;1;0;1;1;0\r\n"), releaseRow, RELEASE_FORMAT);
  t.deepEqual(problems(release), ["line 1: field 3: expected a whole number"]);
});

// The ingest walk on real temp folders: what an unchanged scan skips, and
// what makes it read a program again.
import { chmodSync, mkdirSync, mkdtempSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { createTestDatabase } from "../helpers/db.ts";
import { countParts, parseNc, walkProcessedRoot, type Known } from "../../src/nesting/ingest.ts";

const nc = (material: string) => `%\r\n(ID=${material})\r\nG100 X2800 Y2070 Z19\r\nM30\r\n`;

function remember(known: Map<string, Known>, changed: { key: string; known: Known }[]) {
  for (const c of changed) known.set(c.key, c.known);
}

test("an unchanged scan reads nothing; a new part file, a new size or any case of .NC/.PTS is noticed", async (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), "walk-"));
  mkdirSync(path.join(root, "A", "Deep"), { recursive: true });
  writeFileSync(path.join(root, "A", "S1.nc"), nc("101"));
  writeFileSync(path.join(root, "A", "S1.pts"), "p1\r\np2\r\n");
  writeFileSync(path.join(root, "A", "Deep", "UPPER.NC"), nc("EI19"));
  writeFileSync(path.join(root, "A", "Deep", "upper.LPT"), "p1\r\n");
  writeFileSync(path.join(root, "A", "NoParts.nc"), nc("102"));
  writeFileSync(path.join(root, "A", "notes.txt"), "not a program");
  const known = new Map<string, Known>();

  const first = await walkProcessedRoot(root, known, 0, 1);
  t.deepEqual(first.errors, []);
  t.deepEqual([...first.present].sort(), ["A/Deep/UPPER", "A/NoParts", "A/S1"]);
  const byKey = Object.fromEntries(first.changed.map((c) => [c.key, c]));
  t.is(byKey["A/S1"].parts, 2);
  t.is(byKey["A/Deep/UPPER"].parts, 1);
  t.is(byKey["A/Deep/UPPER"].material, "EI19");
  t.regex(byKey["A/NoParts"].problem!, /no \.pts or \.lpt file/);
  remember(known, first.changed);

  const again = await walkProcessedRoot(root, known, 0, 2);
  t.is(again.changed.length, 0, "nothing read again");
  t.is(again.present.length, 3);
  t.true([...known.values()].every((k) => k.seen === 2));

  // The part file appears; another program grows.
  writeFileSync(path.join(root, "A", "NoParts.pts"), "p1\r\np2\r\np3\r\n");
  writeFileSync(path.join(root, "A", "S1.nc"), nc("101") + "G0 X1\r\n");
  const third = await walkProcessedRoot(root, known, 0, 3);
  t.deepEqual(third.changed.map((c) => [c.key, c.parts]).sort(), [["A/NoParts", 3], ["A/S1", 2]]);
});

test("a file still being written is present but not read; an unreadable folder is an error", async (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), "walk-"));
  mkdirSync(path.join(root, "Locked"));
  writeFileSync(path.join(root, "Fresh.nc"), nc("101"));
  const old = new Date(Date.now() - 60_000);
  writeFileSync(path.join(root, "Old.nc"), nc("101"));
  utimesSync(path.join(root, "Old.nc"), old, old);
  const known = new Map<string, Known>();
  const walk = await walkProcessedRoot(root, known, 10_000, 1);
  t.deepEqual(walk.unstable, ["Fresh"]);
  t.deepEqual(walk.changed.map((c) => c.key), ["Old"]);
  t.deepEqual([...walk.present].sort(), ["Fresh", "Old"]);

  if (process.getuid?.() === 0) return t.pass("root reads every folder: the permission case cannot be shown");
  chmodSync(path.join(root, "Locked"), 0o000);
  try {
    const blind = await walkProcessedRoot(root, known, 10_000, 2);
    t.deepEqual(blind.errors, ["Locked: EACCES"]);
  } finally {
    chmodSync(path.join(root, "Locked"), 0o755);
  }
});

// NC programs as plants' CAM systems write them (each from a real dialect),
// written to disk byte for byte: CRLF or LF, header lines, comments.
const DIALECTS: { name: string; text: string; material: string | null; size: [number, number, number] | null }[] = [
  { name: "point-terminated numbers", text: "%\r\n(ID=PT53449)\r\nG100 X3630. Y1820. Z18.\r\nG0 X0. Y0.\r\nM30\r\n", material: "PT53449", size: [3630, 1820, 18] },
  { name: "ID in a // comment, LF", text: "%\nN10 G90 //ID=PT53449;\nN20 G100 X2800 Y2070 Z19\nM30\n", material: "PT53449", size: [2800, 2070, 19] },
  { name: "ID after a ; with spaces, lower case", text: "; Program 4711\r\n; id = pt53449\r\nG100 X2800.0 Y2070.5 Z19.\r\n", material: "pt53449", size: [2800, 2070.5, 19] },
  { name: "ID in a parenthesis after code", text: "%\r\nN5 G0 X0 Y0 (ID=EI19)\r\nN10G100X2500.Y1250.Z18.5\r\n", material: "EI19", size: [2500, 1250, 18.5] },
  { name: "quoted ID, axes in another order, .5", text: "(ID=\"SP19W\")\nG100 Z.5 Y1000 X2000\n", material: "SP19W", size: [2000, 1000, 0.5] },
  { name: "G100 in a comment before the real line", text: "(sheet size on the G100 line below)\r\nID=101\r\nG100 X3050. Y1250. Z22.\r\n", material: "101", size: [3050, 1250, 22] },
  { name: "no ID, G1000 is not G100", text: "(GRID=5)\r\nPARTID=7\r\nG1000 X1 Y2 Z3\r\n", material: null, size: null },
];

for (const d of DIALECTS) {
  test(`NC dialect: ${d.name}`, (t) => {
    const p = parseNc(d.text);
    t.is(p.material, d.material);
    t.deepEqual(p.length === null ? null : [p.length, p.width, p.thickness], d.size);
    t.is(p.problems.length, (d.material ? 0 : 1) + (d.size ? 0 : 1), p.problems.join("; "));
  });
}

test("an incomplete G100 line names the missing axes", (t) => {
  const p = parseNc("ID=101\r\nG100 X3630. Y1820.\r\n");
  t.deepEqual([p.length, p.width, p.thickness], [3630, 1820, null]);
  t.deepEqual(p.problems, ["G100 line without Z (sheet size)"]);
});

test("part files: trailing blank lines, CRLF, LF, CR and a DOS end-of-file mark count only parts", (t) => {
  t.is(countParts("p1;1\r\np2;1\r\np3;1\r\n\r\n\r\n"), 3);
  t.is(countParts("p1;1\np2;1\n\n \n"), 2);
  t.is(countParts("p1;1\rp2;1\r"), 2);
  t.is(countParts("p1;1\r\np2;1\r\n\x1a"), 2);
});

test("the walk reads every dialect from disk; a program it cannot read is still listed with its problem", async (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), "walk-"));
  mkdirSync(path.join(root, "Plant"));
  DIALECTS.forEach((d, i) => {
    writeFileSync(path.join(root, "Plant", `D${i}.nc`), d.text, "latin1");
    writeFileSync(path.join(root, "Plant", `D${i}.${i % 2 ? "lpt" : "pts"}`), i % 2 ? "a\nb\n\n\n" : "a\r\nb\r\n\r\n");
  });
  const walk = await walkProcessedRoot(root, new Map(), 0, 1);
  t.deepEqual(walk.errors, []);
  const byKey = Object.fromEntries(walk.changed.map((c) => [c.key, c]));
  DIALECTS.forEach((d, i) => {
    const p = byKey[`Plant/D${i}`];
    t.is(p.parts, 2, `${d.name}: parts`);
    t.is(p.material, d.material, `${d.name}: material`);
    t.is(p.length_mm, d.size?.[0] ?? null, `${d.name}: length`);
    t.is(p.problem === null, d.material !== null && d.size !== null, `${d.name}: ${p.problem}`);
  });
  t.regex(byKey[`Plant/D${DIALECTS.length - 1}`].problem!, /no ID=<material> line; no G100/);
});

test("recycle bins, system folders, lock files, temporary copies and hidden folders never become jobs", async (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), "walk-"));
  const put = (rel: string) => {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), nc("101"));
  };
  for (const rel of [
    "$RECYCLE.BIN/S-1-5-21-1004/$R4KQ2ZT/Sheet1.nc",
    "$Recycle.Bin/$RA1B2C3.nc",
    "System Volume Information/Old.nc",
    "#recycle/Kitchen/Sheet2.nc",
    ".snapshot/hourly.0/Kitchen/Sheet3.nc",
    "Kitchen/~$Sheet4.nc",
    "Kitchen/.Sheet5.nc",
    "Kitchen/Sheet6.nc.tmp",
    "Kitchen/Sheet7.nc.part",
    "Kitchen/Sheet8.nc.crdownload",
    "Kitchen/Sheet9.nc",
  ]) put(rel);
  // The default setting, as the database turns it into one pattern.
  const db = await createTestDatabase();
  const { rows } = await db.query("select nesting.ignored_name_pattern() as p");
  await db.drop();
  const walk = await walkProcessedRoot(root, new Map(), 0, 1, new RegExp(rows[0].p, "i"));
  t.deepEqual(walk.errors, []);
  t.deepEqual(walk.present, ["Kitchen/Sheet9"]);
  t.deepEqual(walk.changed.map((c) => c.key), ["Kitchen/Sheet9"]);
});

// The ingest walk on real temp folders: what an unchanged scan skips, and
// what makes it read a program again.
import { chmodSync, mkdirSync, mkdtempSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { walkProcessedRoot, type Known } from "../../src/nesting/ingest.ts";

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

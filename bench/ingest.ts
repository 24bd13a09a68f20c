// Ingest benchmark: a processed root of 20,000 NC programs in 2,000 folders.
// Time and CPU of the first scan and of later unchanged scans, and database
// round trips per scan. Prints; never asserts.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { IngestPoller } from "../src/nesting/ingest.ts";
import { percentile, type BenchContext } from "./lib.ts";

export default async function bench({ url, quick, print }: BenchContext) {
  const folders = quick ? 200 : 2000;
  const perFolder = 10;
  const root = mkdtempSync(path.join(os.tmpdir(), "ingest-bench-"));
  const t0 = performance.now();
  for (let f = 0; f < folders; f++) {
    const dir = path.join(root, `Order${String(f).padStart(4, "0")}`);
    mkdirSync(dir);
    for (let i = 0; i < perFolder; i++) {
      writeFileSync(path.join(dir, `S${i}.nc`), `%\r\n(ID=${101 + (i % 3)})\r\nG100 X2800 Y2070 Z19\r\nG0 X0 Y0\r\nM30\r\n`);
      writeFileSync(path.join(dir, `S${i}.pts`), "p1;1\r\np2;1\r\n");
    }
  }
  print(`data      ${folders * perFolder} NC programs (+ .pts) in ${folders} folders, written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`select ops.set_setting('nesting.stable_after', '"0 seconds"')`);
  let roundTrips = 0;
  const db = {
    query: (text: string, values?: unknown[]) => {
      roundTrips++;
      return client.query(text, values);
    },
  };
  const poller = new IngestPoller(root, db as never);
  const scan = async () => {
    roundTrips = 0;
    const cpu0 = process.cpuUsage();
    const w0 = performance.now();
    const report = await poller.scan();
    const cpu = process.cpuUsage(cpu0);
    return { report, wallMs: performance.now() - w0, cpuMs: (cpu.user + cpu.system) / 1000, trips: roundTrips };
  };
  try {
    const first = await scan();
    print(`first     ${first.report.applied.added} jobs added: ${first.wallMs.toFixed(0)} ms wall, ${first.cpuMs.toFixed(0)} ms CPU (Node), ${first.trips} database round trip(s)`);
    const wall: number[] = [];
    const cpu: number[] = [];
    let trips = 0;
    for (let i = 0; i < (quick ? 3 : 5); i++) {
      const s = await scan();
      wall.push(s.wallMs);
      cpu.push(s.cpuMs);
      trips = s.trips;
      if (s.report.changed !== 0) print(`(unexpected: ${s.report.changed} changed)`);
    }
    wall.sort((a, b) => a - b);
    cpu.sort((a, b) => a - b);
    print(`unchanged ${wall.length} scans: wall p50 ${percentile(wall, 50).toFixed(0)} ms, CPU (Node) p50 ${percentile(cpu, 50).toFixed(0)} ms max ${cpu[cpu.length - 1].toFixed(0)} ms, ${trips} round trip(s) per scan`);
    print(`budget    at one scan every 5 s the Node CPU share is ${((percentile(cpu, 50) / 5000) * 100).toFixed(1)}% of one core (aim: under 10%, i.e. under 500 ms CPU per scan)`);
  } finally {
    await client.end();
  }
}

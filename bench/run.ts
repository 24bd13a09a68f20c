// npm run bench [-- module ...]: runs each module's benchmark (bench/<module>.ts)
// on a fresh, migrated database: the embedded server in a temp folder, or
// BENCH_DATABASE_URL. Prints measurements; never asserts a time.
import { readdirSync } from "node:fs";
import { startScratchServer } from "../src/db/scratch.ts";
import { createLogger } from "../src/log.ts";
import type { BenchContext } from "./lib.ts";

const available = readdirSync(new URL(".", import.meta.url))
  .filter((f) => f.endsWith(".ts") && f !== "run.ts" && f !== "lib.ts")
  .map((f) => f.slice(0, -3))
  .sort();
const asked = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const unknown = asked.filter((a) => !available.includes(a));
if (unknown.length > 0) {
  console.error(`Unknown benchmark(s): ${unknown.join(", ")}. Available: ${available.join(", ")}`);
  process.exit(2);
}
process.env.GRAPHILE_ENV ??= "production"; // benchmarks measure what a plant runs
const log = createLogger({ level: "warn", pretty: false, fd: 2 });
// A stray rejection in one benchmark's background work must not end the others.
process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection during a benchmark"));
const server = await startScratchServer({ url: process.env.BENCH_DATABASE_URL, log, prefix: `sfb_${process.pid}_` });
try {
  for (const name of asked.length > 0 ? asked : available) {
    const url = await server.createMigratedDatabase(name);
    console.log(`\n== ${name} (${server.embedded ? "embedded PostgreSQL" : "BENCH_DATABASE_URL"}) ==`);
    const { default: bench } = (await import(`./${name}.ts`)) as { default: (ctx: BenchContext) => Promise<void> };
    const started = Date.now();
    await bench({ url, quick: process.env.BENCH_QUICK === "1", print: (line) => console.log(line) });
    console.log(`(${name} took ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }
} finally {
  await server.cleanup();
}

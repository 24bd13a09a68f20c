// npm run demo: loads a demo plant into the configured database (the embedded
// default when DATABASE_URL is unset) and prints the users and what to try.
// Safe to run again: nothing is duplicated. Stop `npm start` first when it
// uses the same folders (both would answer the Grundner share).
import pg from "pg";
import { loadConfig } from "../src/config.ts";
import { openDatabase } from "../src/db/index.ts";
import { migrateDatabase } from "../src/db/migrate.ts";
import { loadDemoPlant } from "../src/demo.ts";
import { createLogger } from "../src/log.ts";

const config = loadConfig();
const log = createLogger({ level: "warn", pretty: config.logPretty, fd: 2 });
const db = await openDatabase(config, log);
let code = 0;
try {
  await migrateDatabase({ url: db.url, rootUrl: db.rootUrl, log });
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const r = await loadDemoPlant({
      client,
      processedRoot: config.processedRoot,
      grundnerDir: config.grundnerDir,
      grundnerArchiveDir: config.grundnerArchiveDir,
      grundnerQuarantineDir: config.grundnerQuarantineDir,
      log,
    });
    const lines = [
      "Demo plant loaded. Users (log in with the login mutation):",
      ...r.users.map((u) => `  ${u.username.padEnd(5)} ${u.role.padEnd(12)} password: ${u.password}`),
      `Plan: yesterday's (${r.previousWorkingDate}) unfinished work awaits the supervisor (sam: planningReviewCarryover);`,
      `      sequences planned on ${r.nextWorkingDates.join(" and ") || "(no working date found)"}.`,
      `Nesting: ${r.ncJobs} NC programs under ${config.processedRoot}, ${r.stockBoards} board types of Grundner stock (simulator).`,
      "Also: print OS records and scans, two jobs to approve, product 7001 with 5 tokens (one started).",
      `Next: npm start, then open http://localhost:${config.port}/graphiql (docs/integrators.md walks through a first day).`,
    ];
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    await client.end();
  }
} catch (e) {
  process.stderr.write(`demo: ${(e as Error).message}\n`);
  code = 1;
} finally {
  await db.stop();
}
process.exit(code);

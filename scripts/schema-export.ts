// npm run schema:export: writes docs/schema.graphql from the live schema of the
// configured database (the embedded default when DATABASE_URL is unset),
// after applying pending migrations.
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { loadConfig } from "../src/config.ts";
import { openDatabase } from "../src/db/index.ts";
import { migrateDatabase } from "../src/db/migrate.ts";
import { createLogger } from "../src/log.ts";

const config = loadConfig();
const log = createLogger({ level: "warn", pretty: false, fd: 2 });
const db = await openDatabase(config, log);
try {
  await migrateDatabase({ url: db.url, rootUrl: db.rootUrl, log });
  const { exportSchemaSdl, SCHEMA_SDL_PATH } = await import("../src/api/schema-sdl.ts");
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  try {
    const sdl = await exportSchemaSdl(pool, log);
    writeFileSync(SCHEMA_SDL_PATH, sdl);
    process.stdout.write(`wrote ${fileURLToPath(SCHEMA_SDL_PATH)} (${sdl.split("\n").length} lines)\n`);
  } finally {
    await pool.end();
  }
} finally {
  await db.stop();
}

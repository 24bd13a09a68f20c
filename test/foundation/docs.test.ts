// The documentation tells the truth: README's configuration table is the
// configuration src/config.ts reads (every variable, every default), and the
// SQL examples in README.md and docs/ops.md call functions that exist with
// those signatures.
import { readFileSync } from "node:fs";
import path from "node:path";
import test from "ava";
import pg from "pg";
import { CONFIG_KEYS, loadConfig, type Config } from "../../src/config.ts";
import { createTestDatabase, type TestDb } from "../helpers/db.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
const opsDoc = readFileSync(path.join(ROOT, "docs/ops.md"), "utf8");

/** The rows of README's configuration table: variable → default cell. */
function configTable(): Map<string, string> {
  const section = readme.split("## Configuration")[1].split("\n## ")[0];
  const rows = new Map<string, string>();
  for (const m of section.matchAll(/^\| `([A-Z_]+)` \| ([^|]+) \|/gm)) rows.set(m[1], m[2].trim());
  return rows;
}

const camel = (key: string) => key.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof Config;

test("README's configuration table lists exactly the variables src/config.ts reads", (t) => {
  t.deepEqual([...configTable().keys()].sort(), [...CONFIG_KEYS, "CONFIG_FILE"].sort());
});

test("README's defaults are the defaults src/config.ts applies", (t) => {
  const cwd = "/srv/shopfloor";
  const c = loadConfig({}, cwd) as unknown as Record<string, unknown>;
  const special: Record<string, string> = {
    DATABASE_URL: "unset: embedded",
    LOG_PRETTY: "when a terminal",
    JWT_SECRET: "generated",
    API_DB_PASSWORD: "generated",
    GRAPHIQL: "on unless production",
    GRAPHQL_INTROSPECTION: "on unless production",
    CONFIG_FILE: "unset",
    METRICS_TOKEN: "unset",
  };
  for (const [key, cell] of configTable()) {
    if (key in special) {
      t.is(cell, special[key], key);
      continue;
    }
    const field = camel(key);
    t.true(field in c, `${key} maps to config.${field}`);
    const under = /^`DATA_DIR\/([^`]+)`$/.exec(cell);
    const literal = /^`([^`]*)`$/.exec(cell);
    let expected: unknown;
    if (under) expected = path.join(c.dataDir as string, under[1]);
    else if (literal && key === "DATA_DIR") expected = path.resolve(cwd, literal[1]);
    else if (literal) expected = literal[1];
    else return t.fail(`${key}: default ${cell} is neither a literal nor under DATA_DIR`);
    const actual = Array.isArray(c[field]) ? (c[field] as string[]).join(",") : String(c[field]);
    t.is(actual, String(expected), key);
  }
});

let db: TestDb;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(() => db?.drop());

/** Statements of the ```sql blocks of a document, comments removed. */
function sqlExamples(doc: string): string[] {
  return [...doc.matchAll(/```sql\n([\s\S]*?)```/g)]
    .flatMap((m) => m[1].replace(/--[^\n]*/g, "").split(";"))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

test("every SQL example in README.md and docs/ops.md resolves and runs (our refusals allowed)", async (t) => {
  const statements = [...sqlExamples(readme), ...sqlExamples(opsDoc)];
  t.true(statements.length >= 15, `found ${statements.length} examples`);
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    await c.query("begin");
    for (const s of statements) {
      await c.query("savepoint example");
      try {
        await c.query(s);
        await c.query("release savepoint example");
      } catch (e) {
        await c.query("rollback to savepoint example");
        const code = (e as pg.DatabaseError).code ?? "";
        // SF errors are the function refusing this example's data (e.g. message 42 does not exist).
        t.true(code.startsWith("SF"), `${s}\n  → ${code} ${(e as Error).message}`);
      }
    }
    await c.query("rollback");
  } finally {
    await c.end();
  }
});

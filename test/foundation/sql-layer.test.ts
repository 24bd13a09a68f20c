// The sql/ layer: re-applied idempotently; a broken file names file and line
// and leaves the database exactly as it was.
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { migrateDatabase } from "../../src/db/migrate.ts";
import { applySqlLayer, SqlLayerError } from "../../src/db/sql-layer.ts";
import { createTestDatabase, testLog, type TestDb } from "../helpers/db.ts";

let db: TestDb;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(() => db?.drop());

function sqlDir(files: Record<string, string>) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sql-layer-"));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

test("the real sql/ layer applies twice without change", async (t) => {
  const c = await db.pool.connect();
  try {
    const first = await applySqlLayer(c);
    const second = await applySqlLayer(c);
    t.deepEqual(first, second);
    t.true(first.some((f) => f.endsWith("00_ops.sql")));
  } finally {
    c.release();
  }
});

test("files apply in file-name order; a module's folder takes its place by name, its files in name order", async (t) => {
  const log = (step: string) => `insert into sql_layer_order (step) values ('${step}');\n`;
  const dir = sqlDir({
    "00_first.sql": "create table if not exists sql_layer_order (n serial, step text);\ntruncate sql_layer_order;\n" + log("00_first"),
    "mod/b_second.sql": log("mod/b_second"),
    "mod/a_first.sql": log("mod/a_first"),
    "mod/notes.txt": "not SQL",
    "mod.sql": log("mod.sql"),
    "zz_last.sql": log("zz_last"),
  });
  const c = await db.pool.connect();
  try {
    const files = await applySqlLayer(c, dir);
    t.deepEqual(
      files.map((f) => path.relative(dir, f)),
      ["00_first.sql", "mod/a_first.sql", "mod/b_second.sql", "mod.sql", "zz_last.sql"],
    );
    const { rows } = await c.query(`select step from sql_layer_order order by n`);
    t.deepEqual(rows.map((r) => r.step), ["00_first", "mod/a_first", "mod/b_second", "mod.sql", "zz_last"]);
  } finally {
    await c.query("drop table if exists sql_layer_order");
    c.release();
  }
});

test("an error names the file and line, and nothing of the run is kept", async (t) => {
  const dir = sqlDir({
    "10_first.sql": "create or replace function public.sql_layer_probe() returns int language sql as $$ select 1 $$;\n",
    "20_broken.sql": "-- a comment\n\ncreate or replace view public.v as\n  selec 1;\n",
  });
  const c = await db.pool.connect();
  try {
    const err = await t.throwsAsync(applySqlLayer(c, dir), { instanceOf: SqlLayerError });
    t.is(err!.line, 4);
    t.regex(err!.message, /20_broken\.sql:4: syntax error at or near "selec"/);
    const { rows } = await c.query(`select to_regprocedure('public.sql_layer_probe()') as f`);
    t.is(rows[0].f, null, "the first file's function was rolled back too");
  } finally {
    c.release();
  }
});

test("an error inside a function body points into the body", async (t) => {
  const dir = sqlDir({
    "10_body.sql":
      "create or replace function public.sql_layer_bad() returns int\nlanguage sql as $$\n  select 1\n  from no_such_table\n$$;\n",
  });
  const c = await db.pool.connect();
  try {
    const err = await t.throwsAsync(applySqlLayer(c, dir), { instanceOf: SqlLayerError });
    t.regex(err!.message, /10_body\.sql:4: relation "no_such_table" does not exist/);
  } finally {
    c.release();
  }
});

test("two processes migrating at once both succeed", async (t) => {
  await Promise.all([migrateDatabase({ url: db.url, log: testLog }), migrateDatabase({ url: db.url, log: testLog })]);
  const committed = readdirSync(new URL("../../migrations/committed/", import.meta.url)).filter((f) => f.endsWith(".sql"));
  const { rows } = await db.query(`select count(*)::int as n from graphile_migrate.migrations`);
  t.is(rows[0].n, committed.length, "each migration applied once");
});

test("a PL/pgSQL compile error points at its line in the file", async (t) => {
  const dir = sqlDir({
    "10_plpgsql.sql": [
      "-- header",
      "create or replace function public.sql_layer_plpgsql() returns int",
      "language plpgsql as $$",
      "begin",
      "  return 1;",
      "exception when no_such_condition then",
      "  return 2;",
      "end",
      "$$;",
      "",
    ].join("\n"),
  });
  const c = await db.pool.connect();
  try {
    const err = await t.throwsAsync(applySqlLayer(c, dir), { instanceOf: SqlLayerError });
    t.is(err!.line, 6);
    t.regex(err!.message, /10_plpgsql\.sql:6: unrecognized exception condition "no_such_condition"/);
  } finally {
    c.release();
  }
});

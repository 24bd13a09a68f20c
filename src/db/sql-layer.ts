// The behaviour layer: every file in sql/ (functions, views, triggers, grants,
// smart tags) re-applied after each migrate, in file-name order, in one
// transaction. An error names the file and line and rolls everything back.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

export const SQL_DIR = fileURLToPath(new URL("../../sql/", import.meta.url));
const LOCK_KEY = "shopfloor.sql-layer";

export class SqlLayerError extends Error {
  readonly file: string;
  readonly line: number | undefined;
  readonly code: string | undefined;
  constructor(file: string, line: number | undefined, cause: pg.DatabaseError | Error) {
    const where = line ? `${file}:${line}` : file;
    const detail = "detail" in cause && cause.detail ? ` (${cause.detail})` : "";
    const context = "where" in cause && cause.where ? `\n  in ${cause.where}` : "";
    super(`${where}: ${cause.message}${detail}${context}`, { cause });
    this.name = "SqlLayerError";
    this.file = file;
    this.line = line;
    this.code = "code" in cause ? (cause.code as string | undefined) : undefined;
  }
}

/**
 * The layer's files in file-name order. A folder (a module's files,
 * `sql/<module>/<concept>.sql`) takes its place by its name and is read in
 * file-name order too.
 */
export function sqlLayerFiles(dir = SQL_DIR): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((e) => {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) return sqlLayerFiles(full);
      return e.name.endsWith(".sql") ? [full] : [];
    });
}

/** 1-based line of a 1-based character position in `text`. */
function lineAt(text: string, position: number): number {
  return text.slice(0, Math.max(0, position - 1)).split("\n").length;
}

/** Line of the error: the statement position, or inside a function body. */
function errorLine(text: string, err: pg.DatabaseError): number | undefined {
  if (err.position) return lineAt(text, Number(err.position));
  if (err.internalQuery && err.internalPosition) {
    const at = text.indexOf(err.internalQuery);
    if (at >= 0) return lineAt(text, at + Number(err.internalPosition));
  }
  // PL/pgSQL compile errors say 'compilation of PL/pgSQL function "name" near
  // line N': N counts from the line where the body's opening $$ stands.
  const m = /function "([^"]+)" near line (\d+)/.exec(err.where ?? "");
  if (m) {
    const fn = new RegExp(`function\\s+(?:\\w+\\.)?"?${m[1]}"?\\s*\\(`, "i").exec(text);
    const body = fn ? text.indexOf("$$", fn.index) : -1;
    if (body >= 0) return lineAt(text, body + 1) + Number(m[2]) - 1;
  }
  return undefined;
}

export async function applySqlLayer(client: pg.ClientBase, dir = SQL_DIR): Promise<string[]> {
  const files = sqlLayerFiles(dir);
  await client.query("begin");
  try {
    // Two processes starting at once apply the layer one after the other.
    await client.query("select pg_advisory_xact_lock(hashtext($1))", [LOCK_KEY]);
    for (const file of files) {
      const text = readFileSync(file, "utf8");
      try {
        await client.query(text);
      } catch (e) {
        const rel = path.relative(process.cwd(), file) || file;
        throw e instanceof pg.DatabaseError ? new SqlLayerError(rel, errorLine(text, e), e) : e;
      }
    }
    await client.query("commit");
    return files;
  } catch (e) {
    await client.query("rollback").catch(() => {});
    throw e;
  }
}

// graphile-migrate runs this file as a command action (see .gmrc) in watch mode.
if (import.meta.main) {
  const url = process.env.GM_DBURL ?? process.env.DATABASE_URL;
  if (!url) {
    console.error("sql-layer: set GM_DBURL or DATABASE_URL");
    process.exit(2);
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const files = await applySqlLayer(client);
    console.log(`sql-layer: applied ${files.length} file(s)`);
  } catch (e) {
    console.error(String((e as Error).message));
    process.exitCode = 1;
  } finally {
    await client.end();
  }
}

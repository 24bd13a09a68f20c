// What a client sees of an error. Our own refusals (SQLSTATE class SF) pass
// through with their code, message, detail and hint, and are logged at info
// (a JSON hint is logged parsed; a blocked approval's shortage list is also
// passed to the client parsed, as extensions.shortages); a
// permission error becomes SF403; a constraint violation or bad value from a
// generated mutation becomes SF409/SF422 naming the field; everything else is
// masked and logged with an id the client also gets (the request's id, which
// its log line carries), so support can find it.
import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import type pg from "pg";
import { isSafeError } from "postgraphile/grafast";
import { GraphQLError } from "postgraphile/graphql";
import type { Logger } from "../log.ts";

interface CodedError {
  code?: unknown;
  message: string;
  detail?: unknown;
  hint?: unknown;
}

const SF_CODE = /^SF[0-9A-Z]{3}$/;

/** The id of the HTTP request being served (server.ts logs one line per request with it). */
export const requestIds = new AsyncLocalStorage<string>();

/** A new request id; also the "error id" of a masked error raised while serving that request. */
export function newRequestId() {
  return randomBytes(6).toString("hex");
}

/**
 * Every SF code with its HTTP status (docs/ops.md has the same table; a test
 * keeps them equal). SF4xx map to status 4xx; the others are listed.
 */
export const SF_CODES: Record<string, { status: number; meaning: string }> = {
  SF401: { status: 401, meaning: "not authenticated: bad credentials, a bad or expired token, or a user disabled since" },
  SF403: { status: 403, meaning: "not allowed (PostgreSQL's 42501 becomes this too), or introspection turned off" },
  SF404: { status: 404, meaning: "not found" },
  SF409: { status: 409, meaning: "conflicts with the current state (also a unique or foreign-key conflict)" },
  SF412: { status: 412, meaning: "the record is not in a status the action starts from" },
  SF413: { status: 413, meaning: "the request passes a limit: size, depth, fields or page size (the message names it)" },
  SF422: { status: 422, meaning: "invalid input (also a check, not-null or value error, or a value too long for its index, naming the field)" },
  SF428: { status: 428, meaning: "something must be decided first (a pending carryover)" },
  SF429: { status: 429, meaning: "too many failed logins: the message says when to retry" },
  SFK09: { status: 409, meaning: "an idempotency key was reused for different content" },
};

/** The HTTP status for an SF code: listed ones, then SF4xx → 4xx, else 400. */
export function httpStatusForCode(code: string): number {
  const known = SF_CODES[code];
  if (known) return known.status;
  const m = /^SF(4\d\d)$/.exec(code);
  return m ? Number(m[1]) : 400;
}

/** schema.table.constraint (or index) → its columns, for naming the field of a violation. */
export type ConstraintColumns = Map<string, string[]>;

export async function loadConstraintColumns(pool: pg.Pool, schemas: string[]): Promise<ConstraintColumns> {
  // Indexes too: a value too long for an index entry names the index.
  const { rows } = await pool.query<{ key: string; columns: string[] }>(
    `select n.nspname || '.' || cl.relname || '.' || c.conname as key,
            array(select a.attname::text from unnest(c.conkey) k join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k) as columns
       from pg_constraint c join pg_class cl on cl.oid = c.conrelid join pg_namespace n on n.oid = cl.relnamespace
      where n.nspname = any($1)
     union
     select n.nspname || '.' || cl.relname || '.' || ic.relname,
            array(select a.attname::text from unnest(i.indkey::int2[]) k join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k)
       from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_class cl on cl.oid = i.indrelid
       join pg_namespace n on n.oid = cl.relnamespace
      where n.nspname = any($1)`,
    [schemas],
  );
  return new Map(rows.map((r) => [r.key, r.columns]));
}

/** GraphQL's name of a column (Amber: camelCase; `id` is `rowId`). */
function fieldName(column: string): string {
  if (column === "id") return "rowId";
  return column.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

interface PgErrorFields {
  code?: string;
  message: string;
  detail?: string;
  schema?: string;
  table?: string;
  column?: string;
  constraint?: string;
}

const clip = (s: string, n = 120) => (s.length > n ? `${s.slice(0, n)}…` : s);

/**
 * A constraint violation or bad value as our code and a sentence naming the
 * field; undefined for anything else.
 */
export function describeDataError(e: PgErrorFields, constraints: ConstraintColumns): { code: string; message: string; field?: string } | undefined {
  const keyed = /^Key \((.+?)\)=\((.*)\)/.exec(e.detail ?? "");
  const constraintCols = e.constraint ? constraints.get(`${e.schema}.${e.table}.${e.constraint}`) : undefined;
  const cols = keyed ? keyed[1].split(", ") : (constraintCols ?? (e.column ? [e.column] : []));
  const field = cols.length > 0 ? cols.map(fieldName).join(", ") : undefined;
  const what = e.table ? ` (${e.table})` : "";
  switch (e.code) {
    case "23505":
      return { code: "SF409", field, message: `${field ?? "A value"}: ${keyed ? clip(keyed[2]) + " is" : "the value is"} already taken${what}` };
    case "23503":
      if (/still referenced/.test(e.detail ?? "")) {
        return { code: "SF409", field, message: `This row${what} is still referenced by other rows; remove or change those first` };
      }
      return { code: "SF422", field, message: `${field ?? "A reference"}: ${keyed ? clip(keyed[2]) : "the value"} does not exist${what}` };
    case "23514":
      return { code: "SF422", field, message: `${field ?? "A value"}: not allowed by the rule ${e.constraint ?? "on this table"}${what}` };
    case "23502":
      return { code: "SF422", field, message: `${field ?? "A value"}: is required${what}` };
    case "23P01":
      return { code: "SF409", field, message: `${field ?? "The row"}: overlaps an existing row (rule ${e.constraint ?? "exclusion"})${what}` };
  }
  // An index entry holds at most about a third of a page: a longer value is refused by its index.
  if (e.code === "54000" && /^index row size/.test(e.message)) {
    return { code: "SF422", field, message: `${field ?? "A value"}: too long to be stored (an indexed value may take at most about 2,700 bytes)${what}` };
  }
  // Class 22 (data exceptions: out of range, bad format, too long, NUL...): PostgreSQL's sentence names the value, not SQL.
  if (e.code?.startsWith("22")) return { code: "SF422", field, message: `Invalid value: ${clip(e.message, 200)}` };
  return undefined;
}

export function makeMaskError(log: Logger, constraints: ConstraintColumns = new Map()) {
  return function maskError(error: GraphQLError): GraphQLError {
    const original = error.originalError as (Error & CodedError) | undefined;
    const keep = (message: string, extensions: Record<string, unknown>) =>
      new GraphQLError(message, {
        nodes: error.nodes,
        source: error.source,
        positions: error.positions,
        path: error.path,
        originalError: original,
        extensions,
      });

    // GraphQL's own errors (validation, non-null violations) are safe as they are.
    if (!original || original instanceof GraphQLError) return error;
    if (isSafeError(original)) return keep(original.message, { ...(original.extensions ?? {}) });

    const code = typeof original.code === "string" ? original.code : undefined;
    if (code && SF_CODE.test(code)) {
      const extensions: Record<string, unknown> = { code };
      if (original.detail) extensions.detail = original.detail;
      if (original.hint) extensions.hint = original.hint;
      const hint = parseHint(original.hint);
      // A blocked approval (SF409 from approve_job) carries its per-item
      // shortages as a JSON array in the hint: clients get them parsed too.
      const shortages = code === "SF409" && Array.isArray(hint) ? hint : undefined;
      if (shortages) extensions.shortages = shortages;
      // Every refusal is logged at info with what the client got, so each
      // blocked approval is logged with its shortages in every environment.
      log.info({ code, detail: original.detail, hint, shortages, path: error.path?.join(".") }, original.message);
      return keep(original.message, extensions);
    }
    if (code === "42501") {
      return keep("Permission denied: your role may not do this", { code: "SF403" });
    }
    const data = describeDataError(original as PgErrorFields, constraints);
    if (data) {
      log.info({ code: data.code, pgCode: code, constraint: (original as PgErrorFields).constraint, path: error.path?.join(".") }, data.message);
      return keep(data.message, data.field ? { code: data.code, field: data.field } : { code: data.code });
    }
    const errorId = requestIds.getStore() ?? newRequestId();
    log.error({ err: original, errorId, path: error.path?.join(".") }, "masked GraphQL error");
    return keep(`An unexpected error occurred (error id ${errorId})`, { code: "INTERNAL", errorId });
  };
}

/** A hint that is JSON (e.g. approve_job's shortage list) is logged as data. */
function parseHint(hint: unknown): unknown {
  if (typeof hint !== "string" || !/^\s*[[{]/.test(hint)) return hint;
  try {
    return JSON.parse(hint);
  } catch {
    return hint;
  }
}

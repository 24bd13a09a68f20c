// The tracking module's REST routes (spec: job status updates). Each calls one
// SQL function, as the token's role inside a transaction, so the grants and
// SF refusals are the same as through GraphQL.
import type { IncomingMessage, ServerResponse } from "node:http";
import type pg from "pg";
import { z } from "zod";
import { AuthError } from "../auth/jwt.ts";
import type { Session } from "../auth/session.ts";
import { describeDataError, httpStatusForCode } from "./errors.ts";
import type { Route, RouteContext } from "./routes.ts";
import { readBody, sendJson } from "./routes.ts";

const MAX_BODY = 1024 * 1024;

const BIGINT_MAX = 9223372036854775807n;
const INT_MAX = 2147483647;

class HttpError extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;
  /** Close the connection after answering (a body left unread would corrupt the next request). */
  readonly close: boolean;
  constructor(status: number, body: Record<string, unknown>, close = false) {
    super(String(body.error ?? status));
    this.status = status;
    this.body = body;
    this.close = close;
  }
}

/** Where in a JSON value the first string (or key) with a NUL character is, if any. */
function nulPath(value: unknown, path: string): string | undefined {
  if (typeof value === "string") return value.includes("\u0000") ? path : undefined;
  if (value === null || typeof value !== "object") return undefined;
  for (const [k, v] of Object.entries(value)) {
    const here = Array.isArray(value) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
    if (k.includes("\u0000")) return here;
    const found = nulPath(v, here);
    if (found) return found;
  }
  return undefined;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const read = await readBody(req, MAX_BODY);
  if (!read.body) {
    throw new HttpError(413, { error: `request body too large: at most ${MAX_BODY} bytes`, code: "SF413" }, !read.drained);
  }
  const text = read.body.toString("utf8").trim();
  if (text === "") return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, { error: "the body is not valid JSON", code: "SF422" });
  }
  const nul = nulPath(body, "");
  if (nul !== undefined) {
    throw new HttpError(400, { error: `${nul || "body"}: text must not contain NUL characters`, code: "SF422", field: nul });
  }
  return body;
}

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    const flat = z.flattenError(r.error);
    throw new HttpError(400, { error: "invalid request body", code: "SF422", fieldErrors: flat.fieldErrors, formErrors: flat.formErrors });
  }
  return r.data;
}

/** Runs `sql` in a transaction as the session's role with its claims, like GraphQL does, on that role's connection. */
async function asToken<R extends pg.QueryResultRow>(session: Session, ctx: RouteContext, sql: string, values: unknown[]): Promise<R[]> {
  const client = await ctx.rolePools.forRole(session.role).connect();
  try {
    await client.query("begin");
    await client.query("select set_config(k, v, true) from jsonb_each_text($1::jsonb) as s(k, v)", [JSON.stringify(session.pgSettings)]);
    const { rows } = await client.query<R>(sql, values);
    await client.query("commit");
    return rows;
  } catch (e) {
    await client.query("rollback").catch(() => {});
    const err = e as { code?: string; message: string; detail?: string; hint?: string };
    if (err.code?.startsWith("SF")) {
      throw new HttpError(httpStatusForCode(err.code), { error: err.message, code: err.code, detail: err.detail, hint: err.hint });
    }
    if (err.code === "42501") throw new HttpError(403, { error: "Not allowed", code: "SF403" });
    const data = describeDataError(err, new Map());
    if (data) throw new HttpError(httpStatusForCode(data.code), { error: data.message, code: data.code, field: data.field });
    throw e;
  } finally {
    client.release();
  }
}

/** The token is checked before the body is read; refusals are JSON with our code. */
function handle(fn: (req: IncomingMessage, res: ServerResponse, ctx: RouteContext, session: Session) => Promise<void>) {
  return async (req: IncomingMessage, res: ServerResponse, ctx: RouteContext) => {
    try {
      let session: Session;
      try {
        session = await ctx.authenticate();
        if (!session.claims) throw new AuthError("Not authenticated: send 'Authorization: Bearer <token>'");
      } catch (e) {
        if (!(e instanceof AuthError)) throw e;
        // Refused before the body is read; its rest is skipped so that the answer arrives cleanly.
        const { drained } = await readBody(req, 0);
        throw new HttpError(401, { error: e.message, code: e.code }, !drained);
      }
      await fn(req, res, ctx, session);
    } catch (e) {
      if (e instanceof HttpError) sendJson(res, e.status, e.body, e.close ? { connection: "close" } : {});
      else throw e;
    }
  };
}

const printOsBody = z.object({
  name: z.string().trim().min(1, "the imposition id is required").max(500, "the imposition id may have at most 500 characters"),
  status: z.string().transform((s) => s.toUpperCase()).pipe(z.enum(["PRINTED", "ABORTED"])),
  marker: z
    .union([z.number().int().nonnegative(), z.string().regex(/^\d+$/, "expected a whole number")])
    .transform(String)
    .refine((m) => BigInt(m) <= BIGINT_MAX, `at most ${BIGINT_MAX}`),
  job_name: z.string().nullish(),
  item_id: z.string().nullish(),
  job_complete_time: z.iso.datetime({ offset: true }).nullish(),
  copies: z.number().int().nonnegative().max(INT_MAX, `at most ${INT_MAX}`).nullish(),
  payload: z.record(z.string(), z.unknown()).nullish(),
});

const processPrintOsBody = z.object({ force: z.boolean().optional().default(false) });
const processStatusBody = z.object({ source: z.enum(["both", "print_os", "scanner"]).optional().default("both") });

export const trackingRoutes: Route[] = [
  {
    method: "POST",
    path: "/api/print-os",
    doc: {
      summary: "Record one print OS record from the printer feed (tracking.record_print_os)",
      tags: ["tracking"],
      auth: true,
      body: printOsBody,
      responses: { 201: "The stored record", 409: "SF409: a record with this marker is already stored (a replay after a lost response gets this too; the record is kept once)" },
    },
    handler: handle(async (req, res, ctx, session) => {
      const b = parseBody(printOsBody, await readJson(req));
      const rows = await asToken<{ r: unknown }>(
        session,
        ctx,
        `select to_jsonb(tracking.record_print_os($1, $2, $3::bigint, $4, $5, $6::timestamptz, $7, $8::jsonb)) as r`,
        [b.name, b.status, b.marker, b.job_name ?? null, b.item_id ?? null, b.job_complete_time ?? null, b.copies ?? null, JSON.stringify(b.payload ?? {})],
      );
      sendJson(res, 201, rows[0].r);
    }),
  },
  {
    method: "POST",
    path: "/api/process-print-os",
    doc: {
      summary: "Process the pending print OS records (tracking.process_print_os)",
      tags: ["tracking"],
      auth: true,
      body: processPrintOsBody,
      responses: { 200: "What was processed" },
    },
    handler: handle(async (req, res, ctx, session) => {
      const b = parseBody(processPrintOsBody, await readJson(req));
      const rows = await asToken<{ r: unknown }>(session, ctx, `select tracking.process_print_os($1) as r`, [b.force]);
      sendJson(res, 200, rows[0].r);
    }),
  },
  {
    method: "POST",
    path: "/api/process-status-updates",
    doc: {
      summary: "Turn processed records and scans into job status updates (tracking.process_status_updates)",
      tags: ["tracking"],
      auth: true,
      body: processStatusBody,
      responses: { 200: "What was processed" },
    },
    handler: handle(async (req, res, ctx, session) => {
      const b = parseBody(processStatusBody, await readJson(req));
      const rows = await asToken<{ r: unknown }>(session, ctx, `select tracking.process_status_updates($1) as r`, [b.source]);
      sendJson(res, 200, rows[0].r);
    }),
  },
  {
    method: "GET",
    path: "/api/job-status/:jobId",
    doc: {
      summary: "A job's status with its operations (tracking.job_status)",
      tags: ["tracking"],
      auth: true,
      params: { jobId: "The job id" },
      responses: { 200: "The job's status" },
    },
    handler: handle(async (req, res, ctx, session) => {
      const rows = await asToken<{ r: unknown }>(session, ctx, `select tracking.job_status($1) as r`, [ctx.params.jobId]);
      sendJson(res, 200, rows[0].r);
    }),
  },
];

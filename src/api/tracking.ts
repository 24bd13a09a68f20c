// The tracking module's REST routes (spec: job status updates). Each calls one
// SQL function, as the token's role inside a transaction, so the grants and
// SF refusals are the same as through GraphQL.
import type { IncomingMessage, ServerResponse } from "node:http";
import type pg from "pg";
import { z } from "zod";
import { AuthError, bearerToken, pgSettingsForToken } from "../auth/jwt.ts";
import type { Route, RouteContext } from "./routes.ts";
import { sendJson } from "./routes.ts";

const MAX_BODY = 1024 * 1024;

class HttpError extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;
  constructor(status: number, body: Record<string, unknown>) {
    super(String(body.error ?? status));
    this.status = status;
    this.body = body;
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, { error: "request body too large", code: "SF422" });
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8").trim();
  if (text === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, { error: "the body is not valid JSON", code: "SF422" });
  }
}

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    const flat = z.flattenError(r.error);
    throw new HttpError(400, { error: "invalid request body", code: "SF422", fieldErrors: flat.fieldErrors, formErrors: flat.formErrors });
  }
  return r.data;
}

const STATUS_FOR_CODE: Record<string, number> = { SF401: 401, SF403: 403, SF404: 404, SF409: 409, SF422: 422 };

/** Runs `sql` in a transaction as the token's role with its claims, like GraphQL does. */
async function asToken<R extends pg.QueryResultRow>(req: IncomingMessage, ctx: RouteContext, sql: string, values: unknown[]): Promise<R[]> {
  let settings: Record<string, string>;
  try {
    const token = bearerToken(req.headers.authorization);
    if (!token) throw new AuthError("Not authenticated: send 'Authorization: Bearer <token>'");
    settings = pgSettingsForToken(token, ctx.jwtSecret);
  } catch (e) {
    if (e instanceof AuthError) throw new HttpError(401, { error: e.message, code: e.code });
    throw e;
  }
  const client = await ctx.pool.connect();
  try {
    await client.query("begin");
    await client.query("select set_config(k, v, true) from jsonb_each_text($1::jsonb) as s(k, v)", [JSON.stringify(settings)]);
    const { rows } = await client.query<R>(sql, values);
    await client.query("commit");
    return rows;
  } catch (e) {
    await client.query("rollback").catch(() => {});
    const err = e as { code?: string; message: string; detail?: string; hint?: string };
    if (err.code && STATUS_FOR_CODE[err.code]) {
      throw new HttpError(STATUS_FOR_CODE[err.code], { error: err.message, code: err.code, detail: err.detail, hint: err.hint });
    }
    if (err.code === "42501") throw new HttpError(403, { error: "Not allowed", code: "SF403" });
    throw e;
  } finally {
    client.release();
  }
}

function handle(fn: (req: IncomingMessage, res: ServerResponse, ctx: RouteContext) => Promise<void>) {
  return async (req: IncomingMessage, res: ServerResponse, ctx: RouteContext) => {
    try {
      await fn(req, res, ctx);
    } catch (e) {
      if (e instanceof HttpError) sendJson(res, e.status, e.body);
      else throw e;
    }
  };
}

const printOsBody = z.object({
  name: z.string().trim().min(1, "the imposition id is required"),
  status: z.string().transform((s) => s.toUpperCase()).pipe(z.enum(["PRINTED", "ABORTED"])),
  marker: z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/)]).transform(String),
  job_name: z.string().nullish(),
  item_id: z.string().nullish(),
  job_complete_time: z.iso.datetime({ offset: true }).nullish(),
  copies: z.number().int().nonnegative().nullish(),
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
      responses: { 201: "The stored record (a replay of the same marker returns it again)" },
    },
    handler: handle(async (req, res, ctx) => {
      const b = parseBody(printOsBody, await readJson(req));
      const rows = await asToken<{ r: unknown }>(
        req,
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
    handler: handle(async (req, res, ctx) => {
      const b = parseBody(processPrintOsBody, await readJson(req));
      const rows = await asToken<{ r: unknown }>(req, ctx, `select tracking.process_print_os($1) as r`, [b.force]);
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
    handler: handle(async (req, res, ctx) => {
      const b = parseBody(processStatusBody, await readJson(req));
      const rows = await asToken<{ r: unknown }>(req, ctx, `select tracking.process_status_updates($1) as r`, [b.source]);
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
    handler: handle(async (req, res, ctx) => {
      const rows = await asToken<{ r: unknown }>(req, ctx, `select tracking.job_status($1) as r`, [ctx.params.jobId]);
      sendJson(res, 200, rows[0].r);
    }),
  },
];

// The few REST routes the specs name, beside GraphQL. A module adds its
// routes to this table; /healthz is the foundation's.
import type { IncomingMessage, ServerResponse } from "node:http";
import pkg from "../../package.json" with { type: "json" };
import { AuthError } from "../auth/jwt.ts";
import type { Session } from "../auth/session.ts";
import type { RolePools } from "../db/api-roles.ts";
import type { Health } from "../health.ts";
import { buildOpenApi, type RouteDoc } from "./openapi.ts";
import { trackingRoutes } from "./tracking.ts";

export interface RouteContext {
  url: URL;
  health: Health;
  /** Connections per API role: run a request's SQL on its role's pool. */
  rolePools: RolePools;
  /** The caller's session (token checked against the database); AuthError (SF401) when refused. */
  authenticate(): Promise<Session>;
  /** Values of `:name` segments in the route's path. */
  params: Record<string, string>;
}

export interface Route {
  method: "GET" | "POST";
  path: string;
  handler: (req: IncomingMessage, res: ServerResponse, ctx: RouteContext) => Promise<void> | void;
  /** The route in GET /api/openapi.json (src/api/openapi.ts). */
  doc?: RouteDoc;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const payload = Buffer.from(JSON.stringify(body, null, 2) + "\n", "utf8");
  res.writeHead(status, { ...headers, "content-type": "application/json; charset=utf-8", "content-length": payload.length });
  res.end(payload);
}

/**
 * A refused body is still read (and thrown away) up to this size, so that the
 * answer reaches the client and the connection stays usable; beyond it, or
 * when the declared length is beyond it, the connection is closed instead.
 */
const SKIP_BODY_MAX = 16 * 1024 * 1024;

export interface BodyRead {
  /** The body, unless it was longer than asked. */
  body?: Buffer;
  /** False when the rest was not read (too large even to skip): answer with `connection: close`. */
  drained: boolean;
}

/**
 * Reads a request body of at most `max` bytes. Event-based on purpose:
 * leaving a `for await` loop early destroys the socket, and the client sees
 * a reset instead of our answer.
 */
export function readBody(req: IncomingMessage, max: number): Promise<BodyRead> {
  if (Number(req.headers["content-length"]) > SKIP_BODY_MAX) return Promise.resolve({ drained: false });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= max) chunks.push(chunk);
      else if (size > SKIP_BODY_MAX) {
        req.off("data", onData);
        req.pause();
        resolve({ drained: false });
      }
    };
    req.on("data", onData);
    req.once("end", () => resolve(size > max ? { drained: true } : { body: Buffer.concat(chunks), drained: true }));
    req.once("error", reject);
  });
}

export const routes: Route[] = [
  {
    method: "GET",
    path: "/healthz",
    // Anonymous callers learn ok or not ok; folders, versions and queue
    // depths need a token.
    async handler(req, res, { health, authenticate }) {
      let anonymous = true;
      try {
        anonymous = !(await authenticate()).claims;
      } catch (e) {
        if (!(e instanceof AuthError)) throw e;
        sendJson(res, 401, { error: e.message, code: e.code });
        return;
      }
      const report = await health.report();
      sendJson(res, report.ok ? 200 : 503, anonymous ? { ok: report.ok } : report);
    },
    doc: { summary: "Health of the database, the worker and the folder watchers", tags: ["ops"], responses: { 200: "All healthy", 503: "Something is unhealthy (the report says what)" } },
  },
  ...trackingRoutes,
  {
    method: "GET",
    path: "/api/openapi.json",
    handler(_req, res) {
      sendJson(res, 200, buildOpenApi(routes, pkg.version));
    },
    doc: { summary: "This document: the OpenAPI 3.1 contract of the REST routes", tags: ["ops"], responses: { 200: "The OpenAPI document" } },
  },
];

function match(pattern: string, pathname: string): Record<string, string> | undefined {
  const want = pattern.split("/");
  const got = pathname.split("/");
  if (want.length !== got.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(":")) {
      if (got[i] === "") return undefined;
      try {
        params[want[i].slice(1)] = decodeURIComponent(got[i]);
      } catch {
        return undefined;
      }
    } else if (want[i] !== got[i]) return undefined;
  }
  return params;
}

export function findRoute(method: string | undefined, pathname: string): { route: Route; params: Record<string, string> } | undefined {
  for (const route of routes) {
    if (route.method !== method) continue;
    const params = match(route.path, pathname);
    if (params) return { route, params };
  }
  return undefined;
}

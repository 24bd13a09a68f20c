// The few REST routes the specs name, beside GraphQL. A module adds its
// routes to this table; /healthz is the foundation's.
import type { IncomingMessage, ServerResponse } from "node:http";
import type pg from "pg";
import pkg from "../../package.json" with { type: "json" };
import type { Health } from "../health.ts";
import { buildOpenApi, type RouteDoc } from "./openapi.ts";
import { trackingRoutes } from "./tracking.ts";

export interface RouteContext {
  url: URL;
  health: Health;
  pool: pg.Pool;
  jwtSecret: string;
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

export function sendJson(res: ServerResponse, status: number, body: unknown) {
  const payload = Buffer.from(JSON.stringify(body, null, 2) + "\n", "utf8");
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": payload.length });
  res.end(payload);
}

export const routes: Route[] = [
  {
    method: "GET",
    path: "/healthz",
    async handler(_req, res, { health }) {
      const report = await health.report();
      sendJson(res, report.ok ? 200 : 503, report);
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

// The few REST routes the specs name, beside GraphQL. A module adds its
// routes to this table; /healthz is the foundation's.
import type { IncomingMessage, ServerResponse } from "node:http";
import { AuthError } from "../auth/jwt.ts";
import type { Session } from "../auth/session.ts";
import type { RolePools } from "../db/api-roles.ts";
import type { Health } from "../health.ts";
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
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const payload = Buffer.from(JSON.stringify(body, null, 2) + "\n", "utf8");
  res.writeHead(status, { ...headers, "content-type": "application/json; charset=utf-8", "content-length": payload.length });
  res.end(payload);
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
  },
  ...trackingRoutes,
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

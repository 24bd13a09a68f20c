// The few REST routes the specs name, beside GraphQL. A module adds its
// routes to this table; /healthz is the foundation's.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Health } from "../health.ts";

export interface RouteContext {
  url: URL;
  health: Health;
}

export interface Route {
  method: "GET" | "POST";
  path: string;
  handler: (req: IncomingMessage, res: ServerResponse, ctx: RouteContext) => Promise<void> | void;
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
  },
];

export function findRoute(method: string | undefined, pathname: string): Route | undefined {
  return routes.find((r) => r.method === method && r.path === pathname);
}

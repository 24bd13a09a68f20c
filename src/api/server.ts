// The API process: grafserv on Node's http server (GraphQL, Ruru, websocket
// subscriptions) plus the REST routes.
import { timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { Socket } from "node:net";
import type pg from "pg";
import { postgraphile } from "postgraphile";
import { grafserv } from "postgraphile/grafserv/node";
import { AuthError, bearerToken, pgSettingsForToken } from "../auth/jwt.ts";
import type { Health } from "../health.ts";
import type { Logger } from "../log.ts";
import { createMetrics, makeMetricsPlugin, type Metrics } from "../metrics.ts";
import { newRequestId, requestIds } from "./errors.ts";
import { makePreset } from "./preset.ts";
import { findRoute, sendJson } from "./routes.ts";

export interface ApiOptions {
  pool: pg.Pool;
  port: number;
  host: string;
  jwtSecret: string;
  jwtExpiresIn: string;
  health: Health;
  log: Logger;
  /** Defaults to metrics of this API alone (no worker or watcher parts). */
  metrics?: Metrics;
  /** When set, GET /metrics needs `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
  /** Without a token, production does not serve /metrics. */
  production?: boolean;
}

export interface Api {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function startApi(options: ApiOptions): Promise<Api> {
  const opts = { ...options, metrics: options.metrics ?? createMetrics({ pool: options.pool, log: options.log }) };
  const log = opts.log.child({ component: "api" });
  const pgl = postgraphile({ extends: [makePreset({ ...opts, log })], plugins: [makeMetricsPlugin(opts.metrics)] });
  const serv = pgl.createServ(grafserv);
  await pgl.getSchema(); // fail at start-up, not on the first request
  const graphql = serv.createHandler();

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, url: URL, reqId: string) => {
    if (req.method === "GET" && url.pathname === "/metrics") {
      serveMetrics(req, res, opts).catch((err) => {
        log.error({ err, errorId: reqId }, "metrics failed");
        if (!res.headersSent) sendJson(res, 500, { error: `internal error (error id ${reqId})` });
      });
      return;
    }
    const found = findRoute(req.method, url.pathname);
    if (found) {
      const ctx = { url, health: opts.health, pool: opts.pool, jwtSecret: opts.jwtSecret, params: found.params };
      Promise.resolve(found.route.handler(req, res, ctx)).catch((err) => {
        log.error({ err, path: url.pathname, errorId: reqId }, "route failed");
        if (!res.headersSent) sendJson(res, 500, { error: `internal error (error id ${reqId})` });
      });
      return;
    }
    // Refuse a bad token before GraphQL runs, with 401 and our code (a
    // refusal from inside grafserv's context would lose both).
    if (url.pathname === "/graphql") {
      try {
        pgSettingsForToken(bearerToken(req.headers.authorization), opts.jwtSecret);
      } catch (e) {
        if (!(e instanceof AuthError)) throw e;
        sendJson(res, 401, { errors: [{ message: e.message, extensions: { code: e.code } }] });
        return;
      }
    }
    if (url.pathname === "/") {
      res.writeHead(302, { location: "/graphiql" }).end();
      return;
    }
    graphql(req, res);
  };
  // One log line per request, with the id a masked error reports as its "error id".
  const server = http.createServer((req, res) => {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? "/", "http://localhost");
    const reqId = newRequestId();
    res.setHeader("x-request-id", reqId);
    res.on("close", () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeLabel(req.method, url.pathname);
      const status = res.writableFinished ? res.statusCode : 499; // 499: the client went away first
      opts.metrics.observeRequest({ method: req.method ?? "", route, status }, seconds);
      log.info({ reqId, method: req.method, route, path: url.pathname.slice(0, 200), status, ms: Math.round(seconds * 1000) }, "request");
    });
    requestIds.run(reqId, () => handle(req, res, url, reqId));
  });
  const upgrade = await serv.getUpgradeHandler();
  if (upgrade) {
    server.on("upgrade", (req, socket, head) => {
      if (serv.shouldHandleUpgrade(req, socket, head)) upgrade(req, socket, head);
      else socket.destroy();
    });
  }
  const sockets = new Set<Socket>();
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(err.code === "EADDRINUSE" ? new Error(`PORT: ${opts.host}:${opts.port} is already in use`) : err),
    );
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const shownHost = opts.host === "0.0.0.0" || opts.host === "::" ? "localhost" : opts.host;
  const url = `http://${shownHost}:${port}`;
  log.info({ graphql: `${url}/graphql`, graphiql: `${url}/graphiql`, healthz: `${url}/healthz` }, `API listening on ${url}`);

  return {
    url,
    port,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Websocket and keep-alive sockets would hold close() open.
      for (const s of sockets) s.destroy();
      await closed;
      await pgl.release(); // releases grafserv too
      // ...but not the pg services: release them so the LISTEN client of the
      // subscriber goes back to the pool.
      for (const service of pgl.getResolvedPreset().pgServices ?? []) await service.release?.();
      log.info("API stopped");
    },
  };
}

/** A bounded route label: the matched route's pattern, a known path, or "other". */
function routeLabel(method: string | undefined, pathname: string) {
  if (pathname === "/metrics" || pathname === "/graphql" || pathname === "/graphiql" || pathname === "/") return pathname;
  return findRoute(method, pathname)?.route.path ?? "other";
}

async function serveMetrics(req: http.IncomingMessage, res: http.ServerResponse, opts: ApiOptions & { metrics: Metrics }) {
  if (opts.metricsToken) {
    if (!safeEqual(req.headers.authorization ?? "", `Bearer ${opts.metricsToken}`)) {
      sendJson(res, 401, { error: "/metrics needs the header  Authorization: Bearer <METRICS_TOKEN>" });
      return;
    }
  } else if (opts.production) {
    sendJson(res, 403, { error: "/metrics is off in production until METRICS_TOKEN is set" });
    return;
  }
  const body = await opts.metrics.render();
  res.writeHead(200, { "content-type": opts.metrics.contentType }).end(body);
}

function safeEqual(a: string, b: string) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

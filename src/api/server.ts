// The API process: grafserv on Node's http server (GraphQL, Ruru, websocket
// subscriptions) plus the REST routes and /metrics. Requests run on the caller's
// role's own login connection (db/api-roles.ts); the owner's pool only checks sessions.
import { timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { Socket } from "node:net";
import type pg from "pg";
import { postgraphile } from "postgraphile";
import { grafserv } from "postgraphile/grafserv/node";
import { AuthError } from "../auth/jwt.ts";
import { openSession } from "../auth/session.ts";
import type { RolePools } from "../db/api-roles.ts";
import type { Health } from "../health.ts";
import type { Logger } from "../log.ts";
import { createMetrics, makeMetricsPlugin, type Metrics } from "../metrics.ts";
import { loadConsole, serveConsole } from "./console.ts";
import { loadConstraintColumns, newRequestId, requestIds } from "./errors.ts";
import type { QueryLimits } from "./limits.ts";
import { EXPOSED_SCHEMAS, httpSessions, makePreset } from "./preset.ts";
import { findRoute, readBody, sendJson } from "./routes.ts";
import { makeWebsockets } from "./websocket.ts";

export interface ApiOptions {
  /** The owner's pool (session checks, health); requests run on rolePools. */
  pool: pg.Pool;
  rolePools: RolePools;
  port: number;
  host: string;
  jwtSecret: string;
  jwtExpiresIn: string;
  limits: QueryLimits;
  graphiql: boolean;
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

const USERS_CHANGED = "ops_users_changed";

/** A GraphQL-shaped refusal before GraphQL runs. */
function sendGraphQLError(res: http.ServerResponse, status: number, message: string, extensions: Record<string, unknown>, close = false) {
  sendJson(res, status, { errors: [{ message, extensions }] }, close ? { connection: "close" } : undefined);
}

export async function startApi(options: ApiOptions): Promise<Api> {
  const opts = { ...options, metrics: options.metrics ?? createMetrics({ pool: options.pool, log: options.log }) };
  const log = opts.log.child({ component: "api" });
  const constraintColumns = await loadConstraintColumns(opts.pool, EXPOSED_SCHEMAS);
  const pgl = postgraphile({ extends: [makePreset({ ...opts, constraintColumns, log })], plugins: [makeMetricsPlugin(opts.metrics)] });
  const serv = pgl.createServ(grafserv);
  await pgl.getSchema(); // fail at start-up, not on the first request
  const graphql = serv.createHandler();
  const consoleFiles = loadConsole();
  const authenticate = (req: http.IncomingMessage) =>
    openSession(req.headers.authorization, opts.jwtSecret, opts.pool, req.socket.remoteAddress);

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL) {
    if (req.method === "GET" && url.pathname === "/metrics") {
      await serveMetrics(req, res, opts);
      return;
    }
    const found = findRoute(req.method, url.pathname);
    if (found) {
      const ctx = { url, health: opts.health, rolePools: opts.rolePools, authenticate: () => authenticate(req), params: found.params };
      await found.route.handler(req, res, ctx);
      return;
    }
    if (url.pathname.startsWith("/api/") || url.pathname === "/healthz") {
      sendJson(res, 404, { error: `No route ${req.method} ${url.pathname}`, code: "SF404" });
      return;
    }
    if (url.pathname === "/graphql" && req.method === "POST") {
      // Size first: an oversized body is refused before anything parses it
      // (its rest is skipped so that it is not taken for the next request).
      const length = Number(req.headers["content-length"]);
      if (length > opts.limits.maxRequestBytes) {
        const max = opts.limits.maxRequestBytes;
        const { drained } = await readBody(req, 0);
        sendGraphQLError(res, 413, `The request has ${length} bytes; at most ${max} are accepted (limit GRAPHQL_MAX_REQUEST_BYTES=${max})`, { code: "SF413", limit: "GRAPHQL_MAX_REQUEST_BYTES", max }, !drained);
        return;
      }
      if (!req.headers["content-length"]) res.setHeader("connection", "close"); // chunked: grafserv may stop reading midway
      // Refuse a bad token before GraphQL runs, with 401 and our code (a
      // refusal from inside grafserv's context would lose both).
      try {
        httpSessions.set(req, await authenticate(req));
      } catch (e) {
        if (!(e instanceof AuthError)) throw e;
        sendGraphQLError(res, 401, e.message, { code: e.code });
        return;
      }
    }
    // The operator console at / (issue 17): a client of /graphql like any other.
    if (serveConsole(consoleFiles, req, res, url.pathname)) return;
    if (url.pathname.startsWith("/console/")) {
      sendJson(res, 404, { error: `No console file ${url.pathname}`, code: "SF404" });
      return;
    }
    graphql(req, res, () => sendJson(res, 404, { error: `No route ${req.method} ${url.pathname}`, code: "SF404" }));
  }

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
    requestIds.run(reqId, () =>
      handle(req, res, url).catch((err) => {
        log.error({ err, path: url.pathname, errorId: reqId }, "request failed");
        if (!res.headersSent) sendJson(res, 500, { error: `internal error (error id ${reqId})` });
        else res.end();
      }),
    );
  });

  const websockets = makeWebsockets(serv, {
    maxPayload: opts.limits.maxRequestBytes,
    jwtSecret: opts.jwtSecret,
    ownerPool: opts.pool,
    log,
  });
  server.on("upgrade", (req, socket, head) => {
    if (serv.shouldHandleUpgrade(req, socket, head)) websockets.upgrade(req, socket, head);
    else socket.destroy();
  });
  // Disabling, removing or re-roling a user ends their live connections at once.
  const subscriber = pgl.getResolvedPreset().pgServices?.[0]?.pgSubscriber;
  const usersChanged = subscriber?.subscribe(USERS_CHANGED) as AsyncIterableIterator<unknown> | undefined;
  void (async () => {
    if (!usersChanged) return;
    try {
      for await (const _ of usersChanged) await websockets.recheck();
    } catch (err) {
      log.warn({ err }, "lost the users-changed notifications; live sessions are re-checked every 30 s");
    }
  })();

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
  log.info({ graphql: `${url}/graphql`, graphiql: opts.graphiql ? `${url}/graphiql` : "off", healthz: `${url}/healthz` }, `API listening on ${url}`);

  return {
    url,
    port,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      websockets.close();
      // Not awaited: after a lost connection the subscriber's iterator may never settle.
      void usersChanged?.return?.()?.catch(() => {});
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

// The API process: grafserv on Node's http server (GraphQL, Ruru, websocket
// subscriptions) plus the REST routes. Requests run on the caller's role's
// own login connection (db/api-roles.ts); the owner's pool only checks sessions.
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
import { loadConsole, serveConsole } from "./console.ts";
import { loadConstraintColumns } from "./errors.ts";
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

export async function startApi(opts: ApiOptions): Promise<Api> {
  const log = opts.log.child({ component: "api" });
  const constraintColumns = await loadConstraintColumns(opts.pool, EXPOSED_SCHEMAS);
  const pgl = postgraphile(makePreset({ ...opts, constraintColumns, log }));
  const serv = pgl.createServ(grafserv);
  await pgl.getSchema(); // fail at start-up, not on the first request
  const graphql = serv.createHandler();
  const consoleFiles = loadConsole();
  const authenticate = (req: http.IncomingMessage) =>
    openSession(req.headers.authorization, opts.jwtSecret, opts.pool, req.socket.remoteAddress);

  async function handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = new URL(req.url ?? "/", "http://localhost");
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

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      log.error({ err, path: req.url }, "request failed");
      if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
      else res.end();
    });
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
      await usersChanged?.return?.();
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

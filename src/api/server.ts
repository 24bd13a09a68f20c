// The API process: grafserv on Node's http server (GraphQL, Ruru, websocket
// subscriptions) plus the REST routes.
import http from "node:http";
import type { Socket } from "node:net";
import type pg from "pg";
import { postgraphile } from "postgraphile";
import { grafserv } from "postgraphile/grafserv/node";
import { AuthError, bearerToken, pgSettingsForToken } from "../auth/jwt.ts";
import type { Health } from "../health.ts";
import type { Logger } from "../log.ts";
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
}

export interface Api {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function startApi(opts: ApiOptions): Promise<Api> {
  const log = opts.log.child({ component: "api" });
  const pgl = postgraphile(makePreset({ ...opts, log }));
  const serv = pgl.createServ(grafserv);
  await pgl.getSchema(); // fail at start-up, not on the first request
  const graphql = serv.createHandler();

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const found = findRoute(req.method, url.pathname);
    if (found) {
      const ctx = { url, health: opts.health, pool: opts.pool, jwtSecret: opts.jwtSecret, params: found.params };
      Promise.resolve(found.route.handler(req, res, ctx)).catch((err) => {
        log.error({ err, path: url.pathname }, "route failed");
        if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
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

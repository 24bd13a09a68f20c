// GraphQL over websockets (graphql-ws), with what grafserv's own handler does
// not offer: a message size limit (larger messages close the socket with
// 1009 before they are read into memory), a token check at connection_init,
// and sessions that end: a connection closes (4401) when its token expires or
// its user is disabled, removed or given another role.
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { makeServer } from "graphql-ws";
import type pg from "pg";
import { makeGraphQLWSConfig, type GrafservBase } from "postgraphile/grafserv";
import { WebSocketServer, type WebSocket } from "ws";
import { AuthError, type VerifiedClaims } from "../auth/jwt.ts";
import { activeUserIds, openSession, SESSION_ENDED } from "../auth/session.ts";
import type { Logger } from "../log.ts";

const CLOSE_UNAUTHORIZED = 4401;
const KEEPALIVE_MS = 12_000;
/** Backstop for a missed NOTIFY: live sessions are re-checked this often anyway. */
const RECHECK_MS = 30_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

interface LiveSession {
  socket: WebSocket;
  claims: VerifiedClaims;
  timer?: NodeJS.Timeout;
}

export interface WebsocketOptions {
  maxPayload: number;
  jwtSecret: string;
  ownerPool: pg.Pool;
  log: Logger;
}

/** A close reason must fit in 123 bytes. */
const reason = (text: string) => Buffer.from(text).subarray(0, 123).toString();

export function makeWebsockets(serv: GrafservBase, opts: WebsocketOptions) {
  const live = new Map<WebSocket, LiveSession>();
  const end = (s: LiveSession, why: string) => {
    clearTimeout(s.timer);
    live.delete(s.socket);
    s.socket.close(CLOSE_UNAUTHORIZED, reason(why));
  };
  const scheduleExpiry = (s: LiveSession) => {
    const ms = s.claims.exp * 1000 - Date.now();
    if (ms <= 0) return end(s, "Not authenticated: the token has expired; log in again");
    s.timer = setTimeout(() => scheduleExpiry(s), Math.min(ms, MAX_TIMER_MS));
    s.timer.unref();
  };

  const graphqlWs = makeServer<Record<string, unknown> | undefined, { socket: WebSocket; request: IncomingMessage }>({
    ...makeGraphQLWSConfig(serv),
    async onConnect(ctx) {
      const params = ctx.connectionParams ?? {};
      const header = (params.authorization ?? params.Authorization) as string | undefined;
      const { socket, request } = ctx.extra;
      try {
        const session = await openSession(header, opts.jwtSecret, opts.ownerPool, request.socket.remoteAddress);
        if (session.claims) {
          const s: LiveSession = { socket, claims: session.claims };
          live.set(socket, s);
          scheduleExpiry(s);
        }
        return true;
      } catch (e) {
        if (!(e instanceof AuthError)) throw e;
        socket.close(CLOSE_UNAUTHORIZED, reason(e.message));
        return false;
      }
    },
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload });
  wss.on("connection", (socket: WebSocket, request: IncomingMessage) => {
    let alive = true;
    socket.on("pong", () => (alive = true));
    // A message over maxPayload (and other protocol errors) end up here; ws closes the socket itself (1009).
    socket.on("error", (err) => opts.log.info({ err: err.message }, "websocket closed for a protocol error"));
    const ping = setInterval(() => {
      if (!alive) return socket.terminate();
      alive = false;
      socket.ping();
    }, KEEPALIVE_MS);
    const closed = graphqlWs.opened(
      {
        protocol: socket.protocol,
        send: (data) => new Promise((resolve, reject) => socket.send(data, (err) => (err ? reject(err) : resolve()))),
        close: (code, why) => socket.close(code, why),
        onMessage: (cb) =>
          socket.on("message", async (data) => {
            try {
              await cb(String(data));
            } catch (err) {
              socket.close(4500, reason((err as Error).message));
            }
          }),
      },
      { socket, request },
    );
    socket.once("close", (code, why) => {
      clearInterval(ping);
      const s = live.get(socket);
      if (s) clearTimeout(s.timer);
      live.delete(socket);
      closed(code, String(why));
    });
  });

  /** Closes the connections whose users no longer hold their token. */
  async function recheck() {
    const sessions = [...live.values()];
    if (sessions.length === 0) return;
    try {
      const active = await activeUserIds(opts.ownerPool, sessions.map((s) => s.claims));
      for (const s of sessions) if (!active.has(s.claims.userId)) end(s, SESSION_ENDED);
    } catch (err) {
      opts.log.warn({ err }, "could not re-check websocket sessions; will retry");
    }
  }
  const sweep = setInterval(() => void recheck(), RECHECK_MS);
  sweep.unref();

  return {
    upgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
    },
    /** Call when users changed (the ops_users_changed NOTIFY). */
    recheck,
    get liveSessions() {
      return live.size;
    },
    close() {
      clearInterval(sweep);
      for (const s of live.values()) clearTimeout(s.timer);
      live.clear();
      for (const client of wss.clients) client.terminate();
      wss.close();
    },
  };
}

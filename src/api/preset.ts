// The PostGraphile v5 preset: Amber, our schemas, login, live messages, query
// limits, requests served on the caller's role's own login connection, and
// error masking that lets our SF codes through.
import type { IncomingMessage } from "node:http";
import type pg from "pg";
import { createWithPgClient, makePgService } from "postgraphile/adaptors/pg";
import { PgJWTPlugin } from "postgraphile/graphile-build-pg";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { SafeError } from "postgraphile/grafast";
import { AuthError, JWT_AUDIENCE, JWT_ISSUER } from "../auth/jwt.ts";
import { openSession, type Session } from "../auth/session.ts";
import type { RolePools } from "../db/api-roles.ts";
import type { Logger } from "../log.ts";
import { makeMaskError, type ConstraintColumns } from "./errors.ts";
import { makeQueryLimitsPlugin, type QueryLimits } from "./limits.ts";
import { DEFAULT_SEND_BUFFER_LIMIT, LiveHub, LiveSharingPlugin, limitSendBuffer } from "./live.ts";
import { ListFilterPreset } from "./plugins/filter.ts";
import { ShopfloorInflectionPlugin } from "./plugins/inflection.ts";
import { makeLoginPlugin } from "./plugins/login.ts";
import { MessagesSubscriptionPlugin } from "./plugins/messages.ts";
import { NestingSubscriptionPlugin } from "./plugins/nesting.ts";
import { PlanningSubscriptionPlugin } from "./plugins/planning.ts";
import { TrackingSubscriptionPlugin } from "./plugins/tracking.ts";

/** Schemas PostGraphile exposes; each module adds its own. */
export const EXPOSED_SCHEMAS = ["ops", "nesting", "approval", "execution", "pool", "tracking", "planning"];

export interface PresetOptions {
  /** The owner's pool: session checks only; requests never run on it. */
  pool: pg.Pool;
  rolePools: RolePools;
  jwtSecret: string;
  jwtExpiresIn: string;
  limits: QueryLimits;
  graphiql: boolean;
  constraintColumns: ConstraintColumns;
  log: Logger;
  /** A websocket's unsent bytes beyond which its screen is dropped (default 1 MiB). */
  liveSendBufferLimit?: number;
}

/** Sessions server.ts opened for HTTP requests before GraphQL runs (checked once). */
export const httpSessions = new WeakMap<IncomingMessage, Session>();

type WithPgClient = ReturnType<typeof createWithPgClient>;

/**
 * A pg service whose queries run on the pool of the role in their pgSettings.
 * Every request has a role (the context sets it); introspection has none and
 * runs as the owner, so that the schema is built from the whole database as
 * before. LISTEN uses the anonymous login role.
 */
function makeRoutedPgService(rolePools: RolePools, ownerPool: pg.Pool) {
  const service = makePgService({ pool: rolePools.forRole(undefined), schemas: EXPOSED_SCHEMAS, pubsub: true });
  const byRole = new Map<string, WithPgClient>();
  const routed = (async (pgSettings: Record<string, string> | null, callback: Parameters<WithPgClient>[1]) => {
    const role = pgSettings?.role ?? "";
    let withPgClient = byRole.get(role);
    if (!withPgClient) {
      withPgClient = createWithPgClient({ pool: role ? rolePools.forRole(role) : ownerPool });
      byRole.set(role, withPgClient);
    }
    return withPgClient(pgSettings, callback);
  }) as unknown as WithPgClient;
  routed.release = () => {}; // the pools are RolePools', ended by the API
  service.adaptor = { ...service.adaptor, createWithPgClient: () => routed } as typeof service.adaptor;
  return service;
}

export function makePreset(opts: PresetOptions): GraphileConfig.Preset {
  const pgService = makeRoutedPgService(opts.rolePools, opts.pool);
  // Subscriptions share one listener per channel and build each event once per role.
  const live = new LiveHub({ pool: opts.pool, subscriber: pgService.pgSubscriber!, log: opts.log });
  const sendBufferLimit = opts.liveSendBufferLimit ?? DEFAULT_SEND_BUFFER_LIMIT;
  return {
    extends: [PostGraphileAmberPreset, ListFilterPreset], // ListFilterPreset: list filters (plugins/filter.ts)
    plugins: [
      PgJWTPlugin,
      ShopfloorInflectionPlugin,
      makeLoginPlugin(opts.jwtSecret),
      MessagesSubscriptionPlugin,
      NestingSubscriptionPlugin,
      TrackingSubscriptionPlugin,
      PlanningSubscriptionPlugin,
      LiveSharingPlugin,
      makeQueryLimitsPlugin(opts.limits),
    ],
    pgServices: [pgService],
    gather: {
      pgJwtTypes: "ops.jwt_token",
    },
    schema: {
      pgJwtSecret: opts.jwtSecret,
      pgJwtSignOptions: { algorithm: "HS256", audience: JWT_AUDIENCE, issuer: JWT_ISSUER },
    },
    grafast: {
      explain: false,
      async context(requestContext) {
        const req = requestContext.node?.req;
        const known = req ? httpSessions.get(req) : undefined;
        if (known) return { pgSettings: known.pgSettings, live };
        // Websocket operations: every operation re-checks its connection's token.
        const header =
          req?.headers?.authorization ?? (requestContext.ws?.normalizedConnectionParams?.authorization as string | undefined);
        const address = req?.socket?.remoteAddress ?? requestContext.ws?.request?.socket?.remoteAddress;
        const socket = requestContext.ws?.socket;
        if (socket) limitSendBuffer(socket, sendBufferLimit, opts.log);
        try {
          return { pgSettings: (await openSession(header, opts.jwtSecret, opts.pool, address)).pgSettings, live };
        } catch (e) {
          if (e instanceof AuthError) throw new SafeError(e.message, { code: e.code, statusCode: 401 });
          throw e;
        }
      },
    },
    grafserv: {
      graphqlPath: "/graphql",
      graphiql: opts.graphiql,
      graphiqlPath: "/graphiql",
      graphiqlOnGraphQLGET: false,
      websockets: true,
      watch: false,
      maxRequestLength: opts.limits.maxRequestBytes,
      maskError: makeMaskError(opts.log, opts.constraintColumns),
    },
  };
}

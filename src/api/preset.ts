// The PostGraphile v5 preset: Amber, our schemas, JWT login, live messages,
// and error masking that lets our SF codes through.
import type pg from "pg";
import { makePgService } from "postgraphile/adaptors/pg";
import { PgJWTPlugin } from "postgraphile/graphile-build-pg";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { SafeError } from "postgraphile/grafast";
import { AuthError, bearerToken, JWT_AUDIENCE, JWT_ISSUER, pgSettingsForToken } from "../auth/jwt.ts";
import type { Logger } from "../log.ts";
import { makeMaskError } from "./errors.ts";
import { DEFAULT_SEND_BUFFER_LIMIT, LiveHub, LiveSharingPlugin, limitSendBuffer } from "./live.ts";
import { ShopfloorInflectionPlugin } from "./plugins/inflection.ts";
import { MessagesSubscriptionPlugin } from "./plugins/messages.ts";
import { NestingSubscriptionPlugin } from "./plugins/nesting.ts";
import { PlanningSubscriptionPlugin } from "./plugins/planning.ts";
import { TrackingSubscriptionPlugin } from "./plugins/tracking.ts";

/** Schemas PostGraphile exposes; each module adds its own. */
export const EXPOSED_SCHEMAS = ["ops", "nesting", "approval", "execution", "pool", "tracking", "planning"];

export interface PresetOptions {
  pool: pg.Pool;
  jwtSecret: string;
  jwtExpiresIn: string;
  log: Logger;
  /** A websocket's unsent bytes beyond which its screen is dropped (default 1 MiB). */
  liveSendBufferLimit?: number;
}

export function makePreset(opts: PresetOptions): GraphileConfig.Preset {
  const pgService = makePgService({ pool: opts.pool, schemas: EXPOSED_SCHEMAS, pubsub: true });
  // Subscriptions share one listener per channel and build each event once per role.
  const live = new LiveHub({ pool: opts.pool, subscriber: pgService.pgSubscriber!, log: opts.log });
  const sendBufferLimit = opts.liveSendBufferLimit ?? DEFAULT_SEND_BUFFER_LIMIT;
  return {
    extends: [PostGraphileAmberPreset],
    plugins: [
      PgJWTPlugin,
      ShopfloorInflectionPlugin,
      MessagesSubscriptionPlugin,
      NestingSubscriptionPlugin,
      TrackingSubscriptionPlugin,
      PlanningSubscriptionPlugin,
      LiveSharingPlugin,
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
      context(requestContext) {
        const header =
          requestContext.node?.req?.headers?.authorization ??
          (requestContext.ws?.normalizedConnectionParams?.authorization as string | undefined);
        const socket = requestContext.ws?.socket;
        if (socket) limitSendBuffer(socket, sendBufferLimit, opts.log);
        try {
          return { pgSettings: pgSettingsForToken(bearerToken(header), opts.jwtSecret), live };
        } catch (e) {
          if (e instanceof AuthError) throw new SafeError(e.message, { code: e.code, statusCode: 401 });
          throw e;
        }
      },
    },
    grafserv: {
      graphqlPath: "/graphql",
      graphiql: true,
      graphiqlPath: "/graphiql",
      graphiqlOnGraphQLGET: false,
      websockets: true,
      watch: false,
      maskError: makeMaskError(opts.log),
    },
  };
}

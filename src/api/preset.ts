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
import { ListFilterPreset } from "./plugins/filter.ts";
import { ShopfloorInflectionPlugin } from "./plugins/inflection.ts";
import { MessagesSubscriptionPlugin } from "./plugins/messages.ts";
import { NestingSubscriptionPlugin } from "./plugins/nesting.ts";

/** Schemas PostGraphile exposes; each module adds its own. */
export const EXPOSED_SCHEMAS = ["ops", "nesting", "approval", "execution", "pool", "tracking", "planning"];

export interface PresetOptions {
  pool: pg.Pool;
  jwtSecret: string;
  jwtExpiresIn: string;
  log: Logger;
}

export function makePreset(opts: PresetOptions): GraphileConfig.Preset {
  return {
    extends: [PostGraphileAmberPreset, ListFilterPreset], // ListFilterPreset: list filters (plugins/filter.ts)
    plugins: [PgJWTPlugin, ShopfloorInflectionPlugin, MessagesSubscriptionPlugin, NestingSubscriptionPlugin],
    pgServices: [makePgService({ pool: opts.pool, schemas: EXPOSED_SCHEMAS, pubsub: true })],
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
        try {
          return { pgSettings: pgSettingsForToken(bearerToken(header), opts.jwtSecret) };
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

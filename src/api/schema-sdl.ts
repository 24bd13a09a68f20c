// The GraphQL contract as SDL: the live schema built from a database with the
// real preset, printed in a stable (sorted) order. `npm run schema:export`
// writes it to docs/schema.graphql; test/api/contracts.test.ts keeps the two equal.
import type pg from "pg";
import { postgraphile } from "postgraphile";
import { lexicographicSortSchema, printSchema } from "postgraphile/graphql";
import { RolePools } from "../db/api-roles.ts";
import type { Logger } from "../log.ts";
import { DEFAULT_QUERY_LIMITS } from "./limits.ts";
import { makePreset } from "./preset.ts";

export const SCHEMA_SDL_PATH = new URL("../../docs/schema.graphql", import.meta.url);

export async function exportSchemaSdl(pool: pg.Pool, log: Logger): Promise<string> {
  // The secret only signs login tokens; it does not shape the schema.
  // Introspection runs on the owner's pool; the role pools are never opened here.
  const ownerUrl = (pool as unknown as { options: { connectionString: string } }).options.connectionString;
  const rolePools = new RolePools({ ownerUrl, password: "schema-export-unused", max: 1, log });
  const pgl = postgraphile(
    makePreset({
      pool,
      rolePools,
      limits: DEFAULT_QUERY_LIMITS,
      graphiql: false,
      constraintColumns: new Map(),
      jwtSecret: "schema-export-not-a-secret-000000000000",
      jwtExpiresIn: "1h",
      log,
    }),
  );
  try {
    const schema = await pgl.getSchema();
    return printSchema(lexicographicSortSchema(schema)) + "\n";
  } finally {
    await pgl.release();
    for (const service of pgl.getResolvedPreset().pgServices ?? []) await service.release?.();
    await rolePools.end();
  }
}

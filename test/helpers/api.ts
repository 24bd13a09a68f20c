// The real API (grafserv on http, the real preset) over a test database, and
// helpers to send GraphQL with a token.
import { startApi, type Api } from "../../src/api/server.ts";
import { signToken } from "../../src/auth/jwt.ts";
import { Health } from "../../src/health.ts";
import type { Logger } from "../../src/log.ts";
import { testLog, type TestDb } from "./db.ts";

export const TEST_JWT_SECRET = "test-secret-test-secret-test-secret-0123456789";

export interface GraphQLResult<T = Record<string, unknown>> {
  status: number;
  data?: T;
  errors?: { message: string; extensions?: Record<string, unknown>; path?: string[] }[];
}

export interface TestApi extends Api {
  health: Health;
  graphql<T = Record<string, any>>(query: string, variables?: Record<string, unknown>, token?: string): Promise<GraphQLResult<T>>;
  /** A token for an existing user (ops_private.users), as `shopfloor token` makes. */
  tokenFor(username: string): Promise<string>;
  /** A token naming a role directly. */
  tokenForRole(role: string, username?: string): string;
}

/** `log` replaces the test logger, for tests that read what the server logs. */
export async function startTestApi(db: TestDb, opts: { log?: Logger } = {}): Promise<TestApi> {
  const health = new Health(db.pool);
  const api = await startApi({
    pool: db.pool,
    port: 0,
    host: "127.0.0.1",
    jwtSecret: TEST_JWT_SECRET,
    jwtExpiresIn: "1h",
    health,
    log: opts.log ?? testLog,
  });
  return {
    ...api,
    health,
    async graphql(query, variables, token) {
      const res = await fetch(`${api.url}/graphql`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json",
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query, variables }),
      });
      const text = await res.text();
      try {
        return { status: res.status, ...JSON.parse(text) };
      } catch {
        return { status: res.status, errors: [{ message: text }] };
      }
    },
    async tokenFor(username) {
      const { rows } = await db.query<{ role: string; user_id: string; username: string; exp: string }>(
        `select (t).* from (select ops_private.token_for(u) as t from ops_private.users u where username = $1) x`,
        [username],
      );
      if (!rows[0]) throw new Error(`no user ${username}`);
      return signToken({ ...rows[0], exp: Number(rows[0].exp) }, TEST_JWT_SECRET, "1h");
    },
    tokenForRole(role, username = `test-${role.replace(/^shopfloor_/, "")}`) {
      return signToken({ role, user_id: 0, username }, TEST_JWT_SECRET, "1h");
    },
  };
}

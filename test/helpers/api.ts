// The real API (grafserv on http, the real preset) over a test database, and
// helpers to send GraphQL with a token. Requests run on the shopfloor_api_*
// login roles, as in production.
import { createRequire } from "node:module";
import type { TestFn } from "ava";
import { Worker } from "node:worker_threads";
import { startApi, type Api, type ApiOptions } from "../../src/api/server.ts";
import { DEFAULT_QUERY_LIMITS, type QueryLimits } from "../../src/api/limits.ts";
import { ROLES, signToken } from "../../src/auth/jwt.ts";
import { ensureApiLogins, RolePools } from "../../src/db/api-roles.ts";
import { Health } from "../../src/health.ts";
import type { Logger } from "../../src/log.ts";
import { testLog, withServiceOnTestDatabase, type TestDb } from "./db.ts";

export const TEST_JWT_SECRET = "test-secret-test-secret-test-secret-0123456789";
export const TEST_API_DB_PASSWORD = "test-api-db-password-0123456789";


export interface GraphQLResult<T = Record<string, unknown>> {
  status: number;
  data?: T;
  errors?: { message: string; extensions?: Record<string, unknown>; path?: string[] }[];
}

export interface TestApi extends Api {
  health: Health;
  rolePools: RolePools;
  graphql<T = Record<string, any>>(query: string, variables?: Record<string, unknown>, token?: string): Promise<GraphQLResult<T>>;
  /** A token for an existing user (ops_private.users), as `shopfloor token` makes. */
  tokenFor(username: string): Promise<string>;
  /** A token naming a role directly; the user is created with that role if it does not exist. */
  tokenForRole(role: string, username?: string): string;
}

const PG_PATH = createRequire(import.meta.url).resolve("pg");

// Tokens are checked against ops_private.users on every request, so the user
// a token names must exist. tokenForRole is synchronous (tests call it
// inline), so the insert runs on a worker thread while this one waits.
const ENSURE_USER = `
const { workerData } = require("node:worker_threads");
const pg = require(workerData.pgPath);
const state = new Int32Array(workerData.shared);
(async () => {
  const c = new pg.Client({ connectionString: workerData.url });
  try {
    await c.connect();
    await c.query("insert into ops_private.users (username, role) values ($1, $2) on conflict (username) do nothing", [workerData.username, workerData.role]);
    const { rows } = await c.query("select id from ops_private.users where username = $1", [workerData.username]);
    state[1] = Number(rows[0].id);
    state[0] = 1;
  } catch (e) {
    state[0] = 2;
  } finally {
    await c.end().catch(() => {});
    Atomics.notify(state, 0);
  }
})();
`;

function ensureUserSync(url: string, username: string, role: string): number {
  const shared = new SharedArrayBuffer(8);
  const state = new Int32Array(shared);
  const worker = new Worker(ENSURE_USER, { eval: true, workerData: { url, username, role, pgPath: PG_PATH, shared } });
  Atomics.wait(state, 0, 0, 30_000);
  void worker.terminate();
  if (state[0] !== 1) throw new Error(`could not create test user ${username}`);
  return state[1];
}

export type TestApiOptions = { log?: Logger; limits?: Partial<QueryLimits>; graphiql?: boolean; port?: number } & Pick<
  ApiOptions,
  "metrics" | "metricsToken" | "production"
>;

/** `log` replaces the test logger, for tests that read what the server logs. */
export async function startTestApi(db: TestDb, opts: TestApiOptions = {}): Promise<TestApi> {
  const health = new Health(db.pool);
  const log = opts.log ?? testLog;
  await ensureApiLogins(db.pool, db.url, TEST_API_DB_PASSWORD, log);
  const rolePools = new RolePools({ ownerUrl: db.url, password: TEST_API_DB_PASSWORD, max: 5, log });
  const api = await startApi({
    pool: db.pool,
    rolePools,
    port: opts.port ?? 0,
    host: "127.0.0.1",
    jwtSecret: TEST_JWT_SECRET,
    jwtExpiresIn: "1h",
    limits: { ...DEFAULT_QUERY_LIMITS, ...opts.limits },
    graphiql: opts.graphiql ?? true,
    health,
    log,
    metrics: opts.metrics,
    metricsToken: opts.metricsToken,
    production: opts.production,
  });
  const userIds = new Map<string, number>();
  return {
    ...api,
    health,
    rolePools,
    async stop() {
      await api.stop();
      await rolePools.end();
    },
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
      let userId = 0;
      if ((ROLES as readonly string[]).includes(role)) {
        const key = `${role}/${username}`;
        userId = userIds.get(key) ?? ensureUserSync(db.url, username, role);
        userIds.set(key, userId);
      }
      return signToken({ role, user_id: userId, username }, TEST_JWT_SECRET, "1h");
    },
  };
}

/** The hooks of a test file that talks to the API: see withServiceOnTestDatabase. */
export function withTestApi(test: TestFn, ready: (made: { db: TestDb; api: TestApi }) => unknown, opts: TestApiOptions = {}) {
  withServiceOnTestDatabase(test, (db) => startTestApi(db, opts), (db, api) => ready({ db, api }));
}

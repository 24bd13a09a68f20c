// The API's own connections (PostGraphile's "authenticator" pattern, one login
// role per API role): a request for an operator runs on a connection that
// logged in as shopfloor_api_operator, which is neither superuser nor owner,
// has no privileges of its own (NOINHERIT) and may switch to
// shopfloor_operator only. PostgreSQL checks SET ROLE against the session's
// login role, so with a single authenticator granted every role, a statement
// running as an operator could switch itself to admin; with one login role
// per API role it cannot. Migrations, the worker and the watchers keep the
// owner's connection (DATABASE_URL).
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import pg from "pg";
import { ANONYMOUS_ROLE, generatedSecret, ROLES } from "../auth/jwt.ts";
import type { Config } from "../config.ts";
import { ConfigError } from "../config.ts";
import type { Logger } from "../log.ts";
import { createPool } from "./pool.ts";

/** shopfloor_operator → shopfloor_api_operator (created by the migrations). */
function loginRoleFor(role: string): string {
  return role.replace(/^shopfloor_/, "shopfloor_api_");
}
export const API_ROLES = [ANONYMOUS_ROLE, ...ROLES];

/**
 * API_DB_PASSWORD, or a password generated once and kept in
 * DATA_DIR/api-db-password (mode 0600). Production with DATABASE_URL must set it,
 * so that every process of the plant uses the same one.
 */
export function resolveApiDbPassword(config: Config): string {
  if (config.apiDbPassword) return config.apiDbPassword;
  if (config.nodeEnv === "production" && config.databaseUrl) {
    throw new ConfigError(["API_DB_PASSWORD: required when NODE_ENV=production and DATABASE_URL is set (at least 16 characters)"]);
  }
  return generatedSecret(config.dataDir, "api-db-password", 24);
}

/** The owner's URL with the login role and password swapped in. */
export function loginUrl(ownerUrl: string, role: string, password: string): string {
  const u = new URL(ownerUrl);
  u.username = loginRoleFor(role);
  u.password = password; // the URL setter percent-encodes
  return u.toString();
}

/** A SCRAM-SHA-256 verifier, so that the password itself never appears in SQL (or the server log). */
function scramVerifier(password: string): string {
  const salt = randomBytes(16);
  const iterations = 4096;
  const salted = pbkdf2Sync(password.normalize("NFKC"), salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

async function canLogIn(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await c.connect();
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === "28P01") return false; // wrong password
    throw e;
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * Makes the login roles accept `password`, as the owner, unless they already
 * do. Serialised with an advisory lock: concurrent ALTER ROLEs on one role
 * fail ("tuple concurrently updated"). Roles belong to the whole cluster but
 * advisory locks to one database, so a process on another database of the
 * same cluster (test databases, a second plant) may still collide: then it
 * looks again, and tries again.
 */
export async function ensureApiLogins(ownerPool: pg.Pool, ownerUrl: string, password: string, log: Logger) {
  for (let attempt = 1; ; attempt++) {
    if (await canLogIn(loginUrl(ownerUrl, ANONYMOUS_ROLE, password))) return;
    const c = await ownerPool.connect();
    try {
      await c.query("begin");
      await c.query("select pg_advisory_xact_lock(hashtext('shopfloor.api-logins'))");
      for (const role of API_ROLES) {
        await c.query(`alter role ${pg.escapeIdentifier(loginRoleFor(role))} password ${pg.escapeLiteral(scramVerifier(password))}`);
      }
      await c.query("commit");
      log.info({ roles: API_ROLES.map(loginRoleFor) }, "API login roles set to the configured password");
      return;
    } catch (e) {
      await c.query("rollback").catch(() => {});
      if (/tuple concurrently updated/.test((e as Error).message) && attempt < 5) {
        await new Promise((r) => setTimeout(r, 50 * attempt + Math.random() * 100));
        continue;
      }
      throw new Error(
        `Could not set the password of the shopfloor_api_* login roles as ${new URL(ownerUrl).username}: ${(e as Error).message}. ` +
          `Run as a role with CREATEROLE (PostgreSQL 16+: ADMIN on those roles), or set their password yourself and give it in API_DB_PASSWORD.`,
      );
    } finally {
      c.release();
    }
  }
}

/** One small pool per API role, opened on first use. */
export class RolePools {
  private readonly pools = new Map<string, pg.Pool>();
  private readonly ownerUrl: string;
  private readonly password: string;
  private readonly max: number;
  private readonly log: Logger;
  constructor(opts: { ownerUrl: string; password: string; max: number; log: Logger }) {
    this.ownerUrl = opts.ownerUrl;
    this.password = opts.password;
    this.max = opts.max;
    this.log = opts.log;
  }

  forRole(role: string | undefined): pg.Pool {
    const r = role ?? ANONYMOUS_ROLE;
    if (!API_ROLES.includes(r)) throw new Error(`No API connection for role ${r}`);
    let pool = this.pools.get(r);
    if (!pool) {
      pool = createPool(loginUrl(this.ownerUrl, r, this.password), { max: this.max, log: this.log, name: loginRoleFor(r) });
      this.pools.set(r, pool);
    }
    return pool;
  }

  async end() {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.end()));
  }
}

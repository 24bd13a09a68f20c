// A request's session: the verified token, checked against the database on
// every request (one primary-key lookup), so that a disabled, removed or
// re-roled user's token stops working at once rather than when it expires.
import type pg from "pg";
import { AuthError, bearerToken, pgSettingsForClaims, verifyToken, type VerifiedClaims } from "./jwt.ts";

export interface Session {
  role: string;
  /** Undefined for anonymous callers. */
  claims: VerifiedClaims | undefined;
  /** What PostgreSQL sees: role, token claims and the caller's address (login throttling). */
  pgSettings: Record<string, string>;
}

export const SESSION_ENDED = "Not authenticated: this user is disabled, removed or has another role now; log in again";

/** The users (of those given) whose tokens still hold: existing, enabled, same username and role. */
export async function activeUserIds(pool: pg.Pool, claims: VerifiedClaims[]): Promise<Set<string>> {
  if (claims.length === 0) return new Set();
  const { rows } = await pool.query<{ id: string }>(
    `select u.id::text as id
       from jsonb_to_recordset($1::jsonb) as t(id text, username text, role text)
       join ops_private.users u on u.id = case when t.id ~ '^[0-9]{1,18}$' then t.id::bigint end
                                and u.username = t.username and u.role = t.role
      where u.disabled_at is null`,
    [JSON.stringify(claims.map((c) => ({ id: c.userId, username: c.username, role: c.role })))],
  );
  return new Set(rows.map((r) => r.id));
}

/**
 * The session for an Authorization header value. `ownerPool` may read
 * ops_private.users. Throws AuthError (SF401) for a bad, expired or ended token.
 */
export async function openSession(
  header: string | string[] | undefined,
  secret: string,
  ownerPool: pg.Pool,
  clientAddress: string | undefined,
): Promise<Session> {
  const token = bearerToken(header);
  const claims = token ? verifyToken(token, secret) : undefined;
  if (claims && !(await activeUserIds(ownerPool, [claims])).has(claims.userId)) throw new AuthError(SESSION_ENDED);
  const pgSettings = pgSettingsForClaims(claims);
  if (clientAddress) pgSettings["shopfloor.client_address"] = clientAddress;
  return { role: pgSettings.role, claims, pgSettings };
}

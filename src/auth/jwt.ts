// Tokens: HS256 JWTs signed with JWT_SECRET. The API verifies the bearer token
// and switches to the PostgreSQL role it names; no token means
// shopfloor_anonymous, which can only log in.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import jwt from "jsonwebtoken";
import type { Config } from "../config.ts";
import { ConfigError } from "../config.ts";

export const ROLES = [
  "shopfloor_operator",
  "shopfloor_supervisor",
  "shopfloor_planner",
  "shopfloor_integration",
  "shopfloor_admin",
] as const;
export const ANONYMOUS_ROLE = "shopfloor_anonymous";
export const JWT_AUDIENCE = "shopfloor";
export const JWT_ISSUER = "shopfloor";

export class AuthError extends Error {
  readonly code = "SF401";
}

/**
 * JWT_SECRET, or in development a secret generated once and kept in
 * DATA_DIR/jwt-secret (mode 0600). Production must set it.
 */
export function resolveJwtSecret(config: Config): string {
  if (config.jwtSecret) return config.jwtSecret;
  if (config.nodeEnv === "production") {
    throw new ConfigError(["JWT_SECRET: required when NODE_ENV=production (at least 32 characters)"]);
  }
  return generatedSecret(config.dataDir, "jwt-secret", 48);
}

/** A random secret kept in DATA_DIR/<name> (mode 0600), made on first use. */
export function generatedSecret(dataDir: string, name: string, bytes: number): string {
  const file = path.join(dataDir, name);
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(bytes).toString("base64url");
  writeFileSync(file, secret + "\n", { mode: 0o600, flag: "wx" });
  return secret;
}

export interface TokenClaims {
  role: string;
  user_id: number | string;
  username: string;
  exp?: number;
}

export function signToken(claims: TokenClaims, secret: string, expiresIn: string): string {
  const { exp, ...rest } = claims;
  return jwt.sign(exp ? { ...rest, exp } : rest, secret, {
    algorithm: "HS256",
    audience: JWT_AUDIENCE,
    issuer: JWT_ISSUER,
    ...(exp ? {} : { expiresIn: expiresIn as jwt.SignOptions["expiresIn"] }),
  });
}

export interface VerifiedClaims {
  role: string;
  userId: string;
  username: string;
  /** Seconds since the epoch; every accepted token has one. */
  exp: number;
}

/** Checks signature, audience, issuer, expiry and role; AuthError otherwise. */
export function verifyToken(token: string, secret: string): VerifiedClaims {
  let claims: jwt.JwtPayload;
  try {
    const decoded = jwt.verify(token, secret, { algorithms: ["HS256"], audience: JWT_AUDIENCE, issuer: JWT_ISSUER });
    if (typeof decoded === "string") throw new Error("payload is not an object");
    claims = decoded;
  } catch (e) {
    const reason = e instanceof jwt.TokenExpiredError ? "the token has expired" : "the token is not valid";
    throw new AuthError(`Not authenticated: ${reason}; log in again`);
  }
  if (typeof claims.exp !== "number") throw new AuthError("Not authenticated: the token has no expiry; log in again");
  const role = String(claims.role ?? "");
  if (!(ROLES as readonly string[]).includes(role)) {
    throw new AuthError("Not authenticated: the token names no Shopfloor role");
  }
  return { role, userId: String(claims.user_id ?? ""), username: String(claims.username ?? ""), exp: claims.exp };
}

/** The settings PostgreSQL sees for a request: the role and the token's claims. */
export function pgSettingsForClaims(claims: VerifiedClaims | undefined): Record<string, string> {
  if (!claims) return { role: ANONYMOUS_ROLE };
  return {
    role: claims.role,
    "jwt.claims.role": claims.role,
    "jwt.claims.user_id": claims.userId,
    "jwt.claims.username": claims.username,
  };
}

/** "Bearer xyz" → "xyz"; anything else that is present is a malformed header. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(value);
  if (!m) throw new AuthError("Not authenticated: the Authorization header must be 'Bearer <token>'");
  return m[1];
}

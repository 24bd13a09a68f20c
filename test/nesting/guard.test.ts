// The prune guard on real folders: an unmounted network share leaves its mount
// point as an empty folder, and a complete, error-free scan of it must not
// prune every job and release every board. A mass removal waits for a
// supervisor; a real removal of a few jobs still prunes at once.
import { mkdirSync, renameSync, rmSync, rmdirSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import test from "ava";
import type { TestApi } from "../helpers/api.ts";
import { createTestDatabase, eventually, type TestDb } from "../helpers/db.ts";
import { job, messages, waitForRequest, withNestingApi, type Nesting } from "./harness.ts";

let db: TestDb;
let n: Nesting;
let api: TestApi;
withNestingApi(
  test,
  (made) => {
    ({ db, n, api } = made);
    api.health.register("watchers", () => n.watchers.health());
  },
  {
    folders: true,
    before: (fresh) =>
      fresh.query(`select ops.set_setting('nesting.ingest_interval', '"200 milliseconds"'),
                       ops.set_setting('nesting.stable_after', '"100 milliseconds"'),
                       ops.set_setting('nesting.stage_sanity_interval', '"200 milliseconds"')`),
  },
);

const nc = (material: string) => `%\r\n(ID=${material})\r\nG100 X2800. Y2070. Z19.\r\nM30\r\n`;
const KEYS = [0, 1, 2].flatMap((f) => Array.from({ length: 10 }, (_, i) => `Order${f}/S${f}${i}`));
const LOCKED = ["Order0/S00", "Order0/S01", "Order1/S10", "Order2/S20"];

function writeProgram(key: string) {
  const file = path.join(n.config.processedRoot, `${key}.nc`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file.replace(/\.nc$/, ".pts"), "p1;1\r\n");
  writeFileSync(file, nc("101"));
}

async function jobsNow() {
  const { rows } = await db.query(
    `select key, status, is_locked, removed_at, updated_at from nesting.jobs order by key`,
  );
  return rows;
}
const openHold = () =>
  db.query(`select * from nesting.prune_holds where ended_at is null`).then((r) => r.rows[0]);
/** The open hold, once two scans have found the mass removal. */
const heldForTwoScans = () =>
  eventually(async () => {
    const h = await openHold();
    return h?.scans >= 2 ? h : undefined;
  }, 30_000);
const ingestReleases = () =>
  db.query(`select * from nesting.grundner_requests where kind = 'release' and source = 'jobs-ingest' order by id`).then((r) => r.rows);
const ingestWatcher = (health: any) => health.watchers.find((w: any) => w.name === "jobs-ingest");

test.serial("a root replaced by an empty folder (an unmounted share): nothing pruned or released, one message, healthz says held; put back, nothing changed", async (t) => {
  for (const key of KEYS) writeProgram(key);
  await eventually(async () => {
    const { rows } = await db.query(`select count(*)::int as n from nesting.jobs where removed_at is null and problem is null`);
    return rows[0].n === 30;
  }, 30_000);
  const lock = await db.query(`select nesting.lock_jobs($1) as id`, [LOCKED]);
  await waitForRequest(db, lock.rows[0].id, ["acknowledged"]);
  const before = await jobsNow();
  t.is(before.filter((j) => j.is_locked).length, 4);

  const root = n.config.processedRoot;
  renameSync(root, `${root}.away`);
  mkdirSync(root); // the mount point, with the share gone
  try {
    const hold = await heldForTwoScans();
    t.is(hold.keys.length, 30);
    t.is(hold.known, 30);
    t.deepEqual(await jobsNow(), before, "0 pruned, 0 released, nothing changed");
    t.deepEqual(await ingestReleases(), []);
    const said = await messages(db, "jobs-ingest");
    t.is(said.length, 1, "one message for the whole outage");
    t.is(said[0].severity, "error");
    t.is(said[0].title, "Pruning held: 30 of 30 jobs' NC files are gone from the processed jobs root at once; nothing is pruned or released");
    t.true(said[0].body.includes(`select nesting.confirm_prune(${hold.id});`));

    const res = await fetch(`${api.url}/healthz`, { headers: { authorization: `Bearer ${api.tokenForRole("shopfloor_admin")}` } }); // details need a token
    t.is(res.status, 503);
    const watcher = ingestWatcher((await res.json()).watchers);
    t.false(watcher.ok);
    t.like(watcher.held, { id: Number(hold.id), jobs: 30, known: 30, confirmed_by: null });
  } finally {
    rmdirSync(root);
    renameSync(`${root}.away`, root);
  }
  const lifted = await eventually(async () => {
    const { rows } = await db.query(`select * from nesting.prune_holds where outcome is not null`);
    return rows[0];
  }, 30_000);
  t.is(lifted.outcome, "lifted");
  t.deepEqual(await jobsNow(), before, "the files are back: nothing changed");
  t.deepEqual(await ingestReleases(), []);
  t.is((await messages(db, "jobs-ingest")).at(-1)!.title, "Pruning is no longer held: the NC files are back (0 of the 30 held job(s) still gone)");
  await eventually(async () => {
    const res = await fetch(`${api.url}/healthz`, { headers: { authorization: `Bearer ${api.tokenForRole("shopfloor_admin")}` } }); // details need a token
    return res.status === 200 && ingestWatcher((await res.json()).watchers).held === undefined;
  }, 30_000);
});

test.serial("a real removal of 2 jobs still prunes at once, releasing the locked one", async (t) => {
  unlinkSync(path.join(n.config.processedRoot, "Order0", "S00.nc"));
  unlinkSync(path.join(n.config.processedRoot, "Order0", "S05.nc"));
  const release = await eventually(async () => (await ingestReleases())[0], 30_000);
  t.deepEqual(release.lines, ["S00;1"]);
  for (const key of ["Order0/S00", "Order0/S05"]) t.truthy((await job(db, key)).removed_at, key);
  t.is(await openHold(), undefined, "no hold");
  t.true((await messages(db, "jobs-ingest")).some((m) => m.title === "Removed 2 job(s) whose NC files are gone; releasing Order0/S00 from Grundner"));
  await waitForRequest(db, release.id, ["answered"]);
});

test.serial("a mass removal is held until a supervisor confirms it; then the next scan prunes it and releases the locked jobs once", async (t) => {
  rmSync(path.join(n.config.processedRoot, "Order1"), { recursive: true });
  rmSync(path.join(n.config.processedRoot, "Order2"), { recursive: true });
  const hold = await heldForTwoScans();
  t.is(hold.keys.length, 20);
  t.is(hold.known, 28);
  t.falsy((await job(db, "Order1/S10")).removed_at, "nothing pruned while held");
  t.is((await ingestReleases()).length, 1, "only the earlier release");

  const listed = await api.graphql(`{ allNestingPruneHolds { nodes { rowId keys known endedAt } } }`, {}, api.tokenForRole("shopfloor_operator"));
  t.falsy(listed.errors, JSON.stringify(listed.errors));
  const shown = listed.data!.allNestingPruneHolds.nodes.find((h: any) => h.endedAt === null);
  t.like(shown, { rowId: hold.id, known: 28 });
  t.is(shown.keys.length, 20, "the screen shows what would be pruned");

  const mutation = `mutation ($id: BigInt!) { nestingConfirmPrune(input: { holdId: $id }) { result { rowId confirmedBy } } }`;
  const refused = await api.graphql(mutation, { id: hold.id }, api.tokenForRole("shopfloor_operator", "olga"));
  t.is(refused.errors?.[0].extensions?.code, "SF403", "operators cannot confirm");
  t.falsy((await openHold()).confirmed_at);

  const confirmed = await api.graphql(mutation, { id: hold.id }, api.tokenForRole("shopfloor_supervisor", "sam"));
  t.falsy(confirmed.errors, JSON.stringify(confirmed.errors));
  t.deepEqual(confirmed.data!.nestingConfirmPrune.result, { rowId: hold.id, confirmedBy: "sam" });

  const ended = await eventually(async () => {
    const { rows } = await db.query(`select * from nesting.prune_holds where id = $1 and ended_at is not null`, [hold.id]);
    return rows[0];
  }, 30_000);
  t.is(ended.outcome, "pruned");
  const { rows: gone } = await db.query(`select key from nesting.jobs where removed_at is not null and key like any(array['Order1/%', 'Order2/%'])`);
  t.is(gone.length, 20);
  const releases = await ingestReleases();
  t.is(releases.length, 2, "one more get_production.csv, for both locked jobs");
  t.deepEqual(releases[1].lines, ["S10;1", "S20;1"]);
  const titles = (await messages(db, "jobs-ingest")).map((m) => m.title);
  t.true(titles.includes("sam confirmed pruning 20 job(s) whose NC files are gone; the next scan prunes them"));
  t.true(titles.includes("Removed 20 job(s) whose NC files are gone; releasing Order1/S10, Order2/S20 from Grundner"));
  const again = await api.graphql(mutation, { id: hold.id }, api.tokenForRole("shopfloor_supervisor", "sam"));
  t.is(again.errors?.[0].extensions?.code, "SF409", "an ended hold cannot be confirmed");
  await waitForRequest(db, releases[1].id, ["answered"]);
});

test.serial("with a sentinel file set, a root without it counts as not mounted: even a small removal waits", async (t) => {
  const root = n.config.processedRoot;
  const scans = () => ingestWatcher(n.watchers.health()).scans as number;
  const twoMoreScans = async () => {
    const from = scans();
    await eventually(async () => scans() >= from + 2, 30_000);
  };
  writeFileSync(path.join(root, ".share-mounted"), "");
  await db.query(`select ops.set_setting('nesting.ingest_sentinel_file', '".share-mounted"')`);
  await twoMoreScans(); // the second one runs with the new setting
  unlinkSync(path.join(root, ".share-mounted"));
  unlinkSync(path.join(root, "Order0", "S09.nc"));
  const outage = await eventually(async () => (await messages(db, "jobs-ingest")).find((m) => m.title.startsWith("Processed jobs root could not be read")), 30_000);
  t.regex(outage.body, /sentinel file \.share-mounted not found \(ENOENT\): the share looks not mounted/);
  await eventually(async () => !ingestWatcher(n.watchers.health()).ok, 30_000);
  await twoMoreScans();
  t.falsy((await job(db, "Order0/S09")).removed_at, "not pruned while the sentinel is missing");

  writeFileSync(path.join(root, ".share-mounted"), "");
  await eventually(async () => (await job(db, "Order0/S09")).removed_at, 30_000);
  t.true((await messages(db, "jobs-ingest")).some((m) => m.title === "Processed jobs root can be read again"));
});

// The guard's arithmetic and its lock, on a database of its own (no poller):
// apply_ingest_scan called as the poller calls it.
async function sqlOnly(jobs: number) {
  const own = await createTestDatabase();
  await own.query(`insert into nesting.jobs (key, folder, ncfile, material) select 'G/J' || i, 'G', 'J' || i || '.nc', '101' from generate_series(1, $1) i`, [jobs]);
  const scan = async (present: number, c: { query: TestDb["query"] } = own) =>
    (await c.query(`select nesting_private.apply_ingest_scan(array(select 'G/J' || i from generate_series(1, $1) i), '[]', null) as r`, [present])).rows[0].r;
  return { own, scan };
}

test("the thresholds: more than 10 jobs and more than half of the known ones; both are settings", async (t) => {
  const { own, scan } = await sqlOnly(40);
  try {
    t.is((await scan(29)).pruned.length, 11, "11 of 40: more than 10, not more than half");
    t.is((await scan(19)).pruned.length, 10, "10 of 29: not more than 10");
    const held = await scan(0);
    t.is(held.pruned.length, 0, "19 of 19: held");
    t.like(held.held, { jobs: 19, known: 19, confirmed_by: null });
    t.like(await scan(0), { pruned: [], held: { jobs: 19 } }, "still held, one hold");
    await own.query(`select ops.set_setting('nesting.prune_hold_above_jobs', '20')`);
    const lifted = await scan(0);
    t.is(lifted.pruned.length, 19, "19 is no mass once the limit is 20");
    t.is(lifted.held, null);
    const { rows } = await own.query(`select outcome, scans from nesting.prune_holds`);
    t.deepEqual(rows, [{ outcome: "lifted", scans: 3 }]);
  } finally {
    await own.drop();
  }
});

test("a confirmation racing a scan: the scan waits for the hold's row lock and then prunes what was confirmed", async (t) => {
  const { own, scan } = await sqlOnly(12);
  const confirmer = await own.pool.connect();
  const scanner = await own.pool.connect();
  try {
    const { held } = await scan(0);
    await confirmer.query("begin");
    await confirmer.query("select nesting.confirm_prune($1)", [held.id]);
    const pid = (await scanner.query("select pg_backend_pid() as pid")).rows[0].pid;
    const racing = scan(0, scanner);
    await eventually(async () => (await own.query(`select wait_event_type from pg_stat_activity where pid = $1`, [pid])).rows[0]?.wait_event_type === "Lock");
    await confirmer.query("commit");
    const result = await racing;
    t.is(result.pruned.length, 12, "the confirmation committed while the scan waited: it counts");
    t.is(result.held, null);
    t.deepEqual((await own.query(`select outcome, confirmed_by is not null as confirmed from nesting.prune_holds`)).rows, [{ outcome: "pruned", confirmed: true }]);
  } finally {
    confirmer.release();
    scanner.release();
    await own.drop();
  }
});

// A full Grundner share (issue 11, point 8): the share is a real 64 KiB tmpfs
// filled to the last byte. Requests wait in the database, no .tmp is left,
// one message per outage, /healthz shows it, and the request goes out once
// space is back. Needs permission to mount a tmpfs (root); skipped otherwise.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { grundnerHealth } from "../../src/grundner/pump.ts";
import { createTestDatabase, eventually, type TestDb } from "../helpers/db.ts";
import { addJob, job, messages, startNesting, waitForRequest, type Nesting } from "./harness.ts";

function canMount(): boolean {
  const dir = mkdtempSync(path.join(os.tmpdir(), "mount-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir], { stdio: "ignore" });
    execFileSync("umount", [dir]);
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const run = canMount() ? test.serial : test.serial.skip;

let db: TestDb;
let n: Nesting;
let share = "";
test.after.always(async () => {
  await n?.stop();
  if (share) execFileSync("umount", [share]);
  await db?.drop();
});

run("a full share: one message, no stray .tmp, /healthz shows it, the request goes out once space is back", async (t) => {
  db = await createTestDatabase();
  n = await startNesting(db, {
    prepare: (config) => {
      mkdirSync(config.grundnerDir, { recursive: true });
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", config.grundnerDir]);
      share = config.grundnerDir;
    },
  });
  await addJob(db, "Full/One", "101");
  // The first sync's files are archived (freeing their pages) before the share is filled to the last byte.
  await eventually(async () => readdirSync(share).length === 0, 30_000);
  const filler = path.join(share, "filler.bin");
  try {
    for (let i = 0; ; i++) writeFileSync(filler, Buffer.alloc(4096), { flag: "a" });
  } catch (e) {
    t.is((e as NodeJS.ErrnoException).code, "ENOSPC");
  }
  const { rows } = await db.query(`select nesting.lock_jobs(array['Full/One']) as id`);
  const passes = async () => (await db.query(`select last_pass_at from nesting.exchange_state`)).rows[0].last_pass_at.getTime();
  await eventually(async () => (await messages(db)).some((m) => m.title === "Requests cannot be written to the Grundner share"), 30_000);
  const first = await passes();
  await eventually(async () => (await passes()) > first, 30_000); // another failing pass
  t.is((await messages(db)).filter((m) => m.title === "Requests cannot be written to the Grundner share").length, 1, "one message per outage");
  t.regex((await messages(db)).find((m) => m.title.startsWith("Requests cannot"))!.body, /ENOSPC|no space/i);
  // A pass running right now may hold its .tmp for a moment (created, the write refused, removed):
  // a stray one is one that stays.
  t.true(await eventually(async () => !readdirSync(share).some((f) => f.endsWith(".tmp")), 10_000), "no stray .tmp");
  const status = await db.query(`select status from nesting.grundner_requests where id = $1`, [rows[0].id]);
  t.is(status.rows[0].status, "sending", "the request waits in the database");
  const health = await grundnerHealth(db);
  t.false(health.ok);
  t.truthy(health.shareFailingSince);

  rmSync(filler);
  await waitForRequest(db, rows[0].id, ["acknowledged"], 30_000);
  t.true((await job(db, "Full/One")).is_locked);
  t.is(n.sim.taken.filter((x) => x.file === "order_saw.csv").length, 1, "sent once");
  await eventually(async () => (await messages(db)).some((m) => m.title === "The Grundner share takes requests again"), 30_000);
  t.true((await grundnerHealth(db)).ok);
});

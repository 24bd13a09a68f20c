// Folder watchers: exactly one process watches a folder; when it dies another
// takes over within 10 seconds; every event is recorded in ops.watcher_events.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { startWatchers, type WatchEvent } from "../../src/watchers/index.ts";
import { createTestDatabase, eventually, testLog, type TestDb } from "../helpers/db.ts";

let db: TestDb;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(() => db?.drop());

const tempFolder = () => mkdtempSync(path.join(os.tmpdir(), "watch-"));

test("a watcher reports new files to its handler and records the events", async (t) => {
  const folder = tempFolder();
  const seen: WatchEvent[] = [];
  const watchers = startWatchers(
    [{ name: "record-test", folder, polling: false, handle: async (e) => void seen.push(e) }],
    { url: db.url, log: testLog, lockRetryMs: 500 },
  );
  try {
    await eventually(async () => watchers.states()["record-test"] === "watching");
    writeFileSync(path.join(folder, "a.csv"), "1;2;3\n");
    await eventually(async () => seen.find((e) => e.event === "add" && e.path.endsWith("a.csv")));
    await watchers.flush();
    const { rows } = await db.query(`select event, path from ops.watcher_events where watcher = 'record-test' order by id`);
    // The initial scan reports the folder itself, then the watcher is ready.
    t.deepEqual(rows.map((r) => r.event), ["addDir", "watching", "add"]);
    t.is(rows[2].path, path.join(folder, "a.csv"));
    t.true(watchers.health().ok);
  } finally {
    await watchers.stop();
  }
});

test("a failing handler is recorded and the watcher carries on", async (t) => {
  const folder = tempFolder();
  let calls = 0;
  const watchers = startWatchers(
    [
      {
        name: "failing-test",
        folder,
        polling: true,
        pollIntervalMs: 50,
        async handle(e) {
          calls++;
          if (e.path.endsWith("bad.csv")) throw new Error("cannot parse bad.csv");
        },
      },
    ],
    { url: db.url, log: testLog, lockRetryMs: 500 },
  );
  try {
    await eventually(async () => watchers.states()["failing-test"] === "watching");
    writeFileSync(path.join(folder, "bad.csv"), "x");
    writeFileSync(path.join(folder, "good.csv"), "y");
    await eventually(async () => calls >= 2);
    await watchers.flush();
    const { rows } = await db.query<{ details: { message: string } }>(`select details from ops.watcher_events where watcher = 'failing-test' and event = 'handler_error'`);
    t.is(rows.length, 1);
    t.is((rows[0].details as { message: string }).message, "cannot parse bad.csv");
    t.is(watchers.states()["failing-test"], "watching");
  } finally {
    await watchers.stop();
  }
});

test("only one process watches a folder; another takes over within 10 s when it dies", async (t) => {
  const folder = tempFolder();
  const holder = spawn(process.execPath, [new URL("../fixtures/watch-holder.ts", import.meta.url).pathname, db.url, folder], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  holder.stdout.on("data", (d) => (out += d));
  t.teardown(() => holder.kill("SIGKILL"));
  await eventually(async () => out.includes("state:watching"), 10_000);

  const mine: WatchEvent[] = [];
  const watchers = startWatchers([{ name: "takeover-test", folder, polling: false, handle: async (e) => void mine.push(e) }], {
    url: db.url,
    log: testLog,
    lockRetryMs: 1000,
  });
  try {
    await eventually(async () => watchers.states()["takeover-test"] === "standby");
    writeFileSync(path.join(folder, "one.csv"), "1");
    await eventually(async () => out.includes("one.csv"));
    await new Promise((r) => setTimeout(r, 300));
    t.is(mine.length, 0, "the standby process does not handle events");

    const killedAt = Date.now();
    holder.kill("SIGKILL");
    await eventually(async () => watchers.states()["takeover-test"] === "watching", 10_000, 50);
    const tookOverMs = Date.now() - killedAt;
    t.true(tookOverMs < 10_000);
    t.log(`took over ${tookOverMs} ms after the holder died`);

    writeFileSync(path.join(folder, "two.csv"), "2");
    await eventually(async () => mine.find((e) => e.path.endsWith("two.csv")));
    t.pass();
  } finally {
    await watchers.stop();
  }
});

// What a service manager or a container runtime does: SIGTERM to the npm
// process of `npm start` (and serve, worker, watch). Everything stops within
// the shutdown timeout and no process is left on the data directory.
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { freePort } from "../../src/db/embedded.ts";
import { alive } from "../helpers/process.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SHUTDOWN_TIMEOUT_MS = 8000;

/** Every process whose command line or working directory names `dir` (Linux /proc). */
function processesOn(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
      if (cmd.includes(dir)) found.push(`${pid}: ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}


const dataDir = mkdtempSync(path.join(os.tmpdir(), "shopfloor-signals-"));
chmodSync(dataDir, 0o755);

/** The environment of a service on the embedded default, on a free port. */
async function serviceEnv(): Promise<Record<string, string>> {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    DATA_DIR: dataDir,
    PORT: String(await freePort()),
    HOST: "127.0.0.1",
    LOG_PRETTY: "false",
    LOG_LEVEL: "info",
    NODE_ENV: "development",
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
  };
  delete env.DATABASE_URL;
  delete env.CONFIG_FILE;
  return env;
}

for (const script of ["start", "serve", "worker", "watch"]) {
  test.serial(`SIGTERM to the npm process of \`npm run ${script}\` stops everything and leaves no process on the data directory`, async (t) => {
    const env = await serviceEnv();
    const npm = spawn("npm", ["run", script], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    t.teardown(() => {
      if (npm.exitCode === null) npm.kill("SIGKILL");
    });
    let out = "";
    const up = new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        out += d;
        if (out.includes("Shopfloor is up")) resolve();
      };
      npm.stdout!.on("data", onData);
      npm.stderr!.on("data", onData);
      npm.once("exit", (code) => reject(new Error(`npm run ${script} exited early (${code}):\n${out}`)));
    });
    // "close", not "exit": the last log lines may still be in the pipe when npm exits.
    const exited = new Promise<number | null>((resolve) => npm.once("close", (code) => resolve(code)));
    await up;
    // The node process (its pid is in every log line) and the embedded server.
    const nodePid = Number(/"pid":(\d+)/.exec(out)![1]);
    const pgPid = Number(readFileSync(path.join(dataDir, "pg", "postmaster.pid"), "utf8").split("\n")[0]);
    t.not(nodePid, npm.pid, "npm runs node as a child");
    t.teardown(() => {
      if (alive(nodePid)) process.kill(nodePid, "SIGTERM"); // an orphan of a failed run
    });
    t.true(alive(nodePid) && alive(pgPid));

    const signalled = Date.now();
    npm.kill("SIGTERM");
    const code = await exited;
    const ms = Date.now() - signalled;
    t.log(`npm run ${script}: exit ${code} ${ms} ms after SIGTERM`);
    t.true(ms < SHUTDOWN_TIMEOUT_MS + 2000, `stopped within the shutdown timeout (${ms} ms)`);
    t.regex(out, /stopped cleanly/, out);
    t.false(alive(nodePid), "node is gone");
    t.false(alive(pgPid), "the embedded PostgreSQL is gone");
    t.false(existsSync(path.join(dataDir, "pg", "postmaster.pid")), "PostgreSQL shut down cleanly");
    t.deepEqual(processesOn(dataDir), [], "no process names the data directory");
  });
}

test.serial("SIGTERM during start-up (PostgreSQL up, migrations running) still stops cleanly and leaves no PostgreSQL", async (t) => {
  const env = await serviceEnv();
  const node = spawn(process.execPath, ["src/cli.ts", "start"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  t.teardown(() => void (node.exitCode === null && node.kill("SIGKILL")));
  let out = "";
  const closed = new Promise<number | null>((resolve) => node.once("close", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d;
      if (out.includes("embedded PostgreSQL started")) resolve();
    };
    node.stdout!.on("data", onData);
    node.stderr!.on("data", onData);
    node.once("exit", () => reject(new Error(`exited before PostgreSQL started:\n${out}`)));
  });
  const pgPid = Number(readFileSync(path.join(dataDir, "pg", "postmaster.pid"), "utf8").split("\n")[0]);
  node.kill("SIGTERM");
  t.is(await closed, 0, out);
  t.regex(out, /shutting down/);
  t.regex(out, /stopped cleanly/);
  t.false(alive(pgPid), "the embedded PostgreSQL is gone");
  t.deepEqual(processesOn(dataDir), []);
});

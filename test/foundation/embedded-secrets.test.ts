// The embedded server's superuser password, handed to initdb in a file, is
// never world-readable and never left behind, not even by a Ctrl-C during
// initdb (the trial found it 0644 in TMPDIR, left behind).
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { eventually } from "../helpers/db.ts";

const EMBEDDED = fileURLToPath(new URL("../../src/db/embedded.ts", import.meta.url));
const LOG = fileURLToPath(new URL("../../src/log.ts", import.meta.url));
const NODE = process.execPath;

/** `startEmbedded` on a new data dir in a child process whose TMPDIR is `tmpdir`. */
function startInChild(dataDir: string, tmpdir: string) {
  const script = `
    import { startEmbedded } from ${JSON.stringify(EMBEDDED)};
    import { createLogger } from ${JSON.stringify(LOG)};
    const s = await startEmbedded({ dataDir: ${JSON.stringify(dataDir)}, port: 0, log: createLogger({ level: "silent", pretty: false, fd: 2 }) });
    await s.stop();`;
  const child = spawn(NODE, ["--input-type=module", "-e", script], { env: { ...process.env, TMPDIR: tmpdir }, stdio: "ignore" });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exited };
}

function tempDir(prefix: string) {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  chmodSync(dir, 0o755); // the postgres OS user must enter it when we run as root
  return dir;
}

test("Ctrl-C during initdb leaves no password file, in TMPDIR or in DATA_DIR", async (t) => {
  const dataDir = tempDir("sf-secrets-");
  const tmpdir = path.join(dataDir, "tmp");
  mkdirSync(tmpdir, { mode: 0o777 });
  chmodSync(tmpdir, 0o1777);
  try {
    const { child, exited } = startInChild(dataDir, tmpdir);
    // The private folder appears while initdb runs: it is not open to others; then interrupt.
    const seen = await eventually(async () => readdirSync(dataDir).find((n) => n.startsWith(".initdb-")), 60_000, 5);
    const mode = statSync(path.join(dataDir, seen)).mode & 0o777;
    t.true(mode === 0o700 || mode === 0o711, `private folder mode ${mode.toString(8)}`);
    child.kill("SIGINT");
    t.is(await exited, 130);
    t.deepEqual(readdirSync(dataDir).filter((n) => n.startsWith(".initdb-")), [], "the private folder is gone");
    t.deepEqual(readdirSync(tmpdir).filter((n) => n.startsWith("pg-password")), [], "nothing was written to TMPDIR");
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a normal first start leaves no password file anywhere but the 0600 state file", async (t) => {
  const dataDir = tempDir("sf-secrets-");
  const tmpdir = path.join(dataDir, "tmp");
  mkdirSync(tmpdir);
  chmodSync(tmpdir, 0o1777);
  try {
    t.is(await startInChild(dataDir, tmpdir).exited, 0);
    t.true(existsSync(path.join(dataDir, "pg", "PG_VERSION")));
    t.deepEqual(readdirSync(dataDir).filter((n) => n.startsWith(".initdb-")), []);
    t.deepEqual(readdirSync(tmpdir), []);
    t.is(statSync(path.join(dataDir, "embedded-pg.json")).mode & 0o777, 0o600);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

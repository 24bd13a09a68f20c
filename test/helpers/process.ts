// Real Shopfloor processes for tests: the CLI with its own environment,
// output collected, waits driven by what the process prints.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));

export interface CliProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  /** Resolves when the output contains `text`; rejects if the process exits first. */
  waitFor(text: string | RegExp): Promise<void>;
}

export function cliEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...(process.env as Record<string, string>), LOG_PRETTY: "false", NODE_ENV: "development" };
  delete env.DATABASE_URL;
  delete env.CONFIG_FILE;
  return { ...env, ...extra };
}

export function runCli(args: string[], env: Record<string, string>): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d;
    for (const w of waiters) w();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited,
    waitFor(text) {
      const seen = () => (typeof text === "string" ? out.includes(text) : text.test(out));
      return new Promise<void>((resolve, reject) => {
        if (seen()) return resolve();
        const check = () => {
          if (seen()) {
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
        void exited.then((code) => {
          waiters.delete(check);
          if (!seen()) reject(new Error(`exited (${code}) before printing ${text}:\n${out}`));
        });
      });
    },
  };
}

/** A temp folder the embedded server's `postgres` OS user can enter when we run as root. */
export function tempDir(prefix: string) {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/** Whether a process with this pid exists. */
export function alive(pid: number) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

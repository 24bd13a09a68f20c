#!/usr/bin/env node
// The `shopfloor` command for any Node on PATH (a plant server may have only
// Node 20): the code needs Node 24, which `npm install` puts into
// node_modules (the node-linux-* package). With a new enough Node this runs
// the CLI in-process; otherwise it runs it with the installed runtime and
// passes signals on, so a service manager's SIGTERM still reaches it.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const cli = path.join(root, "src", "cli.ts");
const major = Number(process.versions.node.split(".")[0]);

if (major >= 24) {
  await import(pathToFileURL(cli).href);
} else {
  const runtime = path.join(root, "node_modules", ".bin", process.platform === "win32" ? "node.cmd" : "node");
  if (!existsSync(runtime)) {
    process.stderr.write(`shopfloor needs Node 24, and ${runtime} is missing: run npm install in ${root}.\n`);
    process.exit(1);
  }
  const child = spawn(runtime, [cli, ...process.argv.slice(2)], { stdio: "inherit" });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 }[signal] ?? 1) : 1)));
}

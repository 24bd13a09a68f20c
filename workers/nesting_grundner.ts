// One pass over the Grundner share (see src/grundner/pump.ts). Runs in the
// named queue `nesting_grundner`, so passes never overlap anywhere in the plant.
import { mkdir } from "node:fs/promises";
import type { Task } from "graphile-worker";
import { pumpGrundner } from "../src/grundner/pump.ts";
import { Share } from "../src/grundner/share.ts";
import type { WorkerContext } from "../src/worker.ts";

export function makeTask(ctx: WorkerContext): Task {
  const share = new Share({
    dir: ctx.config.grundnerDir,
    archiveDir: ctx.config.grundnerArchiveDir,
    quarantineDir: ctx.config.grundnerQuarantineDir,
  });
  const log = ctx.log.child({ component: "grundner" });
  return async (_payload, helpers) => {
    for (const d of Object.values(share.dirs)) await mkdir(d, { recursive: true });
    await pumpGrundner({ query: (text, values) => helpers.query(text, values as unknown[]) }, share, log);
  };
}

// One pass over the Grundner share (see src/grundner/pump.ts). Passes never
// overlap anywhere in the plant: each holds a session-level advisory lock on
// its own connection for the whole pass. Not a named queue: graphile-worker
// frees a queue locked by a killed process only after 4 hours, while the
// advisory lock dies with the connection, so the next pass runs at once.
import { mkdir } from "node:fs/promises";
import type { Task } from "graphile-worker";
import { pumpGrundner } from "../src/grundner/pump.ts";
import { Share } from "../src/grundner/share.ts";
import type { WorkerContext } from "../src/worker.ts";

const PASS_LOCK_WAIT_MS = 20_000;

export function makeTask(ctx: WorkerContext): Task {
  const share = new Share({
    dir: ctx.config.grundnerDir,
    archiveDir: ctx.config.grundnerArchiveDir,
    quarantineDir: ctx.config.grundnerQuarantineDir,
  });
  const log = ctx.log.child({ component: "grundner" });
  return async (_payload, helpers) => {
    for (const d of Object.values(share.dirs)) await mkdir(d, { recursive: true });
    await helpers.withPgClient(async (client) => {
      // A live pass elsewhere: wait for it (its end may have missed our news), within reason.
      await client.query("select set_config('lock_timeout', $1, false)", [`${PASS_LOCK_WAIT_MS}ms`]);
      try {
        await client.query("select pg_advisory_lock(hashtextextended('shopfloor.grundner-pass', 0))");
      } catch (e) {
        if ((e as { code?: string }).code !== "55P03") throw e;
        log.info("another Grundner pass is still running; this one is skipped");
        return;
      } finally {
        await client.query("select set_config('lock_timeout', '0', false)");
      }
      try {
        await pumpGrundner(client, share, log);
      } finally {
        await client.query("select pg_advisory_unlock(hashtextextended('shopfloor.grundner-pass', 0))");
      }
    });
  };
}

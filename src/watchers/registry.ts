// The folders this installation watches. Each module that works with files
// adds its declarations here.
import type { Config } from "../config.ts";
import type { Queryable } from "../grundner/pump.ts";
import type { FolderWatch } from "./index.ts";

export function folderWatches(config: Config, db: Queryable): FolderWatch[] {
  return [
    {
      // Any file the storage writes or renames in the Grundner share wakes the
      // worker's pass over the share; the pass itself decides what to do.
      name: "grundner",
      folder: config.grundnerDir,
      polling: config.watchPolling,
      pollIntervalMs: config.watchPollIntervalMs,
      depth: 0,
      ignored: (p) => /\.tmp$/i.test(p),
      async handle(e) {
        if (e.event !== "add" && e.event !== "change") return;
        await db.query(
          "select ops_private.enqueue('nesting_grundner', '{}', 'nesting_grundner', null, null, 'replace', 'nesting_grundner')",
        );
      },
    },
  ];
}

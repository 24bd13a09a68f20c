// The folders this installation watches. Each module that works with files
// adds its declarations here (for example the nesting module's Grundner share).
import type { Config } from "../config.ts";
import type { FolderWatch } from "./index.ts";

export function folderWatches(_config: Config): FolderWatch[] {
  return [];
}

// What a client sees of an error. Our own refusals (SQLSTATE class SF) pass
// through with their code, message, detail and hint, and are logged at info
// (a JSON hint is logged parsed; a blocked approval's shortage list is also
// passed to the client parsed, as extensions.shortages); a
// permission error becomes SF403; everything else is masked and logged with an id the client
// also gets, so support can find it.
import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import { isSafeError } from "postgraphile/grafast";
import { GraphQLError } from "postgraphile/graphql";
import type { Logger } from "../log.ts";

interface CodedError {
  code?: unknown;
  message: string;
  detail?: unknown;
  hint?: unknown;
}

const SF_CODE = /^SF[0-9A-Z]{3}$/;

/** The id of the HTTP request being served (server.ts logs one line per request with it). */
export const requestIds = new AsyncLocalStorage<string>();

/** A new request id; also the "error id" of a masked error raised while serving that request. */
export function newRequestId() {
  return randomBytes(6).toString("hex");
}

export function makeMaskError(log: Logger) {
  return function maskError(error: GraphQLError): GraphQLError {
    const original = error.originalError as (Error & CodedError) | undefined;
    const keep = (message: string, extensions: Record<string, unknown>) =>
      new GraphQLError(message, {
        nodes: error.nodes,
        source: error.source,
        positions: error.positions,
        path: error.path,
        originalError: original,
        extensions,
      });

    // GraphQL's own errors (validation, non-null violations) are safe as they are.
    if (!original || original instanceof GraphQLError) return error;
    if (isSafeError(original)) return keep(original.message, { ...(original.extensions ?? {}) });

    const code = typeof original.code === "string" ? original.code : undefined;
    if (code && SF_CODE.test(code)) {
      const extensions: Record<string, unknown> = { code };
      if (original.detail) extensions.detail = original.detail;
      if (original.hint) extensions.hint = original.hint;
      const hint = parseHint(original.hint);
      // A blocked approval (SF409 from approve_job) carries its per-item
      // shortages as a JSON array in the hint: clients get them parsed too.
      const shortages = code === "SF409" && Array.isArray(hint) ? hint : undefined;
      if (shortages) extensions.shortages = shortages;
      // Every refusal is logged at info with what the client got, so each
      // blocked approval is logged with its shortages in every environment.
      log.info({ code, detail: original.detail, hint, shortages, path: error.path?.join(".") }, original.message);
      return keep(original.message, extensions);
    }
    if (code === "42501") {
      return keep("Permission denied: your role may not do this", { code: "SF403" });
    }
    const errorId = requestIds.getStore() ?? newRequestId();
    log.error({ err: original, errorId, path: error.path?.join(".") }, "masked GraphQL error");
    return keep(`An unexpected error occurred (error id ${errorId})`, { code: "INTERNAL", errorId });
  };
}

/** A hint that is JSON (e.g. approve_job's shortage list) is logged as data. */
function parseHint(hint: unknown): unknown {
  if (typeof hint !== "string" || !/^\s*[[{]/.test(hint)) return hint;
  try {
    return JSON.parse(hint);
  } catch {
    return hint;
  }
}

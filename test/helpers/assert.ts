// Assertions shared by every module's tests.
import type { ExecutionContext } from "ava";

/**
 * Awaits `action`, which must fail with SQLSTATE `code` (SF422, 23505, 42501, ...)
 * and, when given, a message matching `message`. Returns the error for further checks.
 */
export async function rejectsWith(
  t: ExecutionContext,
  action: Promise<unknown> | (() => Promise<unknown>),
  code: string,
  message?: RegExp | string,
): Promise<Error & { code?: string; detail?: string; hint?: string }> {
  const err = (await t.throwsAsync(typeof action === "function" ? action() : action)) as (Error & { code?: string; detail?: string; hint?: string }) | undefined;
  if (!err) throw new Error(`expected SQLSTATE ${code}, but it succeeded`);
  t.is(err.code, code, `SQLSTATE of: ${err.message}`);
  if (typeof message === "string") t.is(err.message, message);
  else if (message) t.regex(err.message, message);
  return err;
}

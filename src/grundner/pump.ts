// One pass over the Grundner share, run by the `nesting_grundner` worker task.
// Passes never overlap anywhere in the plant (a session advisory lock, see
// workers/nesting_grundner.ts), and every pass is safe to repeat and to
// interrupt, even by kill -9:
//   1. requests caught mid-write by a crash are settled from what is in the share;
//   2. replies present are parsed and each handed to one SQL function, then
//      archived, or quarantined with a message when they cannot be applied;
//   3. requests past their deadline are taken back (or, if the storage took
//      them, left waiting for the answer), and so are cancelled ones;
//   4. the periodic stock request is queued when due;
//   5. queued requests are written, one per file name at a time.
// One file or step that fails never stops the others. The database decides
// every business outcome; this file only moves files.
import type { Logger } from "../log.ts";
import { fileLines, parseRows, ProtocolError, RELEASE_FORMAT, releaseRow, STOCK_FORMAT, stockRow } from "./csv.ts";
import { type RequestFile, type Share, ShareWriteError } from "./share.ts";

export interface Queryable {
  query<R extends Record<string, any> = any>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

interface RequestRow {
  id: string;
  kind: "lock" | "release" | "stock";
  file_name: RequestFile;
  status: string;
  lines: string[];
  deadline: Date | null;
}

export interface PumpReport {
  sent: string[];
  applied: string[];
  quarantined: string[];
  timedOut: string[];
  /** Steps that failed this pass (the others ran). */
  errors: string[];
}

async function inFlight(db: Queryable, kind: RequestRow["kind"]): Promise<RequestRow | undefined> {
  const { rows } = await db.query<RequestRow>("select * from nesting_private.requests_in_flight() where kind = $1", [kind]);
  return rows[0];
}

async function send(db: Queryable, share: Share, r: RequestRow, report: PumpReport) {
  try {
    await share.writeRequest(r.file_name, r.lines);
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e; // a share problem: the request stays 'sending', retried next pass
    await db.query("select nesting_private.fail_request($1, $2)", [r.id, `A value cannot be written for the gateway: ${e.message}`]);
    return;
  }
  await db.query("select nesting_private.mark_request_sent($1)", [r.id]);
  report.sent.push(`${r.file_name}.csv#${r.id}`);
}

/**
 * A request marked 'sending' when the process stopped: did its file reach the
 * share? A file of its name counts only if it holds its lines (the database
 * compares them): another request's file left there must not be taken for it.
 */
async function recover(db: Queryable, share: Share, r: RequestRow, report: PumpReport) {
  const reached = (await share.find(`${r.file_name}.csv`)) ?? (await share.find(`${r.file_name}.erl`));
  if (reached) {
    const lines = fileLines(await share.read(reached));
    return void (await db.query("select nesting_private.recover_request($1, $2, $3)", [r.id, reached, lines]));
  }
  await share.removeStaleTemp(r.file_name); // half-written by the process that died
  await send(db, share, r, report);
}

/**
 * Requests cancelled after they were sent: a file the storage has not taken is
 * moved to the archive, like a timed-out one; the next request of its name
 * waits until then (and while the storage's .erl of it is still in the share).
 */
async function withdrawCancelled(db: Queryable, share: Share) {
  for (const r of (await db.query<RequestRow>("select * from nesting_private.cancelled_requests_to_withdraw()")).rows) {
    const withdrawn = await share.withdraw(r.file_name, r.id);
    const taken = !withdrawn && (await share.find(`${r.file_name}.erl`)) !== undefined;
    await db.query("select nesting_private.cancelled_file_settled($1, $2, $3)", [r.id, withdrawn, taken]);
  }
}

/** Why a reply goes to quarantine: a code and its facts here, the words from the database. */
type QuarantineReason = "not_a_file" | "not_applied" | "no_release_waiting" | "no_stock_line" | "erl_mismatch";
async function quarantineReason(db: Queryable, name: string, reason: QuarantineReason, details: object): Promise<string> {
  const { rows } = await db.query<{ text: string }>("select nesting_private.quarantine_reason($1, $2, $3) as text", [name, reason, JSON.stringify(details)]);
  return rows[0].text;
}

/** Moves a reply to quarantine, with a message. */
async function quarantine(db: Queryable, share: Share, name: string, reason: QuarantineReason, details: object, report: PumpReport) {
  const text = await quarantineReason(db, name, reason, details);
  const to = await share.quarantine(name, text);
  report.quarantined.push(name);
  await db.query("select nesting_private.reply_quarantined($1, $2, $3)", [name, text, to]);
}

/**
 * The request a reply is being applied to: set before the apply, so that a
 * reply that cannot be applied fails its request instead of leaving it in
 * flight (where it would block every later request of its file name).
 */
interface ReplyTarget {
  requestId?: string;
}

async function applyLockAck(db: Queryable, share: Share, name: string, report: PumpReport, target: ReplyTarget) {
  const r = await inFlight(db, "lock");
  const lines = fileLines(await share.read(name));
  if (!r) {
    // The database says what it was (a request that had timed out?) and tells the operator.
    const { rows } = await db.query<{ title: string | null }>("select nesting_private.unexpected_order_saw_ack($1) as title", [lines]);
    if (rows[0].title === null) return void (await share.archive(name)); // applied before a crash
    await share.quarantine(name, rows[0].title);
    report.quarantined.push(name);
    return;
  }
  target.requestId = r.id;
  const { rows } = await db.query<{ result: { outcome: string } }>("select nesting_private.apply_order_saw_ack($1, $2) as result", [r.id, lines]);
  if (rows[0].result.outcome === "mismatch") {
    await share.quarantine(name, await quarantineReason(db, name, "erl_mismatch", { request_id: r.id }));
    report.quarantined.push(name);
  } else {
    await share.archive(name, r.id);
    report.applied.push(`${name}#${r.id}`);
  }
}

async function applyReleaseAnswer(db: Queryable, share: Share, name: string, report: PumpReport, target: ReplyTarget) {
  const parsed = parseRows(await share.read(name), releaseRow, RELEASE_FORMAT);
  // The release whose orders it names: the one in flight, or one that timed out waiting for its answer.
  const { rows } = await db.query<{ id: string | null }>("select nesting_private.release_for_answer($1) as id", [JSON.stringify(parsed.rows)]);
  const id = rows[0].id;
  if (!id) return quarantine(db, share, name, "no_release_waiting", {}, report);
  target.requestId = id;
  // Jobs on unreadable lines count as not deleted: they stay locked, the safe side.
  await db.query("select nesting_private.apply_release_answer($1, $2, $3, $4)", [id, JSON.stringify(parsed.rows), JSON.stringify(parsed.problems), name]);
  await share.archive(name, id);
  report.applied.push(`${name}#${id}`);
}

/** get_production.erl: the storage took the release. On an `.erl only` gateway it is the confirmation. */
async function applyReleaseErl(db: Queryable, share: Share, name: string, report: PumpReport, target: ReplyTarget) {
  const { rows } = await db.query<{ mode: string }>("select ops.setting_text('nesting.release_confirmation') as mode");
  const r = rows[0].mode === "erl_only" ? await inFlight(db, "release") : undefined;
  target.requestId = r?.id;
  if (r) await db.query("select nesting_private.apply_release_erl($1)", [r.id]);
  await share.archive(name, r?.id);
  if (r) report.applied.push(`${name}#${r.id}`);
}

async function applyStock(db: Queryable, share: Share, name: string, report: PumpReport, target: ReplyTarget) {
  const r = await inFlight(db, "stock");
  const parsed = parseRows(await share.read(name), stockRow, STOCK_FORMAT);
  if (parsed.rows.length === 0) {
    if (r) await db.query("select nesting_private.fail_request($1, $2)", [r.id, "stock.csv had no readable line"]);
    return quarantine(db, share, name, "no_stock_line", { problems: parsed.problems }, report);
  }
  target.requestId = r?.id;
  await db.query("select nesting_private.apply_stock($1, $2, $3)", [r?.id ?? null, JSON.stringify(parsed.rows), JSON.stringify(parsed.problems)]);
  await share.archive(name, r?.id);
  report.applied.push(`${name}${r ? `#${r.id}` : ""}`);
}

const REPLIES = [
  ["order_saw.erl", applyLockAck],
  ["productionLIST_del.csv", applyReleaseAnswer],
  ["stock.csv", applyStock],
  ["get_production.erl", applyReleaseErl],
  ["stock_request.erl", null], // the gateway's receipt: nothing to apply
] as const;

/** One reply, applied or quarantined on its own: whatever goes wrong is said in a message naming the file. */
async function handleReply(db: Queryable, share: Share, name: string, apply: (typeof REPLIES)[number][1], report: PumpReport, log: Logger) {
  const kind = await share.kind(name);
  if (kind !== "file") {
    // Never read through a link: its target's content would end up in a message.
    return quarantine(db, share, name, "not_a_file", { kind }, report);
  }
  const target: ReplyTarget = {};
  try {
    if (apply) await apply(db, share, name, report, target);
    else await share.archive(name);
  } catch (e) {
    log.error({ err: e, file: name }, "could not apply a Grundner reply; quarantining it");
    const error = (e as Error).message;
    // The request ends failed (with a message): the next of its file name may go out.
    if (target.requestId) {
      await db
        .query("select nesting_private.reply_not_applied($1, $2, $3)", [target.requestId, name, error])
        .catch((err: unknown) => log.error({ err, file: name, request: target.requestId }, "could not fail the request of an unusable reply"));
    }
    if (await share.find(name)) await quarantine(db, share, name, "not_applied", { error }, report);
  }
}

/** Runs one step; a failure is logged and reported, and the pass goes on. */
async function step(report: PumpReport, log: Logger, what: string, fn: () => Promise<void>) {
  try {
    await fn();
  } catch (e) {
    log.error({ err: e, step: what }, "a step of the Grundner pass failed; the others go on");
    report.errors.push(`${what}: ${(e as Error).message}`);
  }
}

export async function pumpGrundner(db: Queryable, share: Share, log: Logger): Promise<PumpReport> {
  const report: PumpReport = { sent: [], applied: [], quarantined: [], timedOut: [], errors: [] };
  let shareError: string | null = null;
  const sending = async (fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      if (!(e instanceof ShareWriteError)) throw e;
      shareError ??= e.message;
    }
  };

  for (const r of (await db.query<RequestRow>("select * from nesting_private.requests_in_flight()")).rows) {
    if (r.status === "sending") await step(report, log, `recover request ${r.id}`, () => sending(() => recover(db, share, r, report)));
  }

  for (const [file, apply] of REPLIES) {
    await step(report, log, file, async () => {
      const name = await share.find(file);
      if (name) await handleReply(db, share, name, apply, report, log);
    });
  }

  await step(report, log, "time-outs", async () => {
    const overdue = await db.query<RequestRow>("select * from nesting_private.requests_in_flight() where status = 'sent' and deadline < now()");
    for (const r of overdue.rows) {
      const withdrawn = await share.withdraw(r.file_name, r.id);
      const { rows } = await db.query<{ outcome: string }>("select nesting_private.time_out_request($1, $2) as outcome", [r.id, withdrawn]);
      if (rows[0].outcome === "timed_out") report.timedOut.push(`${r.file_name}.csv#${r.id}`);
    }
  });

  await step(report, log, "cancelled requests", () => withdrawCancelled(db, share));

  await step(report, log, "stock sync", async () => void (await db.query("select nesting_private.request_stock_if_due()")));

  await step(report, log, "sends", async () => {
    for (const r of (await db.query<RequestRow>("select * from nesting_private.claim_requests_to_send()")).rows) {
      await sending(() => send(db, share, r, report));
    }
  });

  await db.query("select nesting_private.note_exchange_pass($1)", [shareError]);
  if (report.sent.length + report.applied.length + report.quarantined.length + report.timedOut.length + report.errors.length > 0) {
    log.info(report, "grundner share");
  }
  return report;
}

/**
 * For /healthz (processes that run the worker): unhealthy when no pass has
 * completed for nesting.exchange_stale_after (passes are asked for every few
 * seconds), or when the share refuses our files.
 */
export async function grundnerHealth(db: Queryable): Promise<{ ok: boolean; [key: string]: unknown }> {
  const startedRecently = Date.now() - processStarted < 30_000; // the first pass may still be on its way
  const { rows } = await db.query<{ h: { ok: boolean | null; shareFailingSince: string | null } }>("select nesting.exchange_health() as h");
  const h = rows[0].h;
  return { ...h, ok: h.ok === true || (startedRecently && h.ok === null && !h.shareFailingSince) };
}
const processStarted = Date.now();

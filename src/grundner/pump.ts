// One pass over the Grundner share, run by the `nesting_grundner` worker task
// (a named queue: one pass at a time in the whole plant). Every pass is safe
// to repeat and to interrupt:
//   1. requests caught mid-write by a crash are settled from what is in the share;
//   2. replies present are parsed and each handed to one SQL function, then
//      archived (or quarantined when they cannot be used);
//   3. requests past their deadline are taken back (or, if the storage took
//      them, left waiting for the answer);
//   4. the periodic stock request is queued when due;
//   5. queued requests are written, one per file name at a time.
// The database decides every business outcome; this file only moves files.
import type { Logger } from "../log.ts";
import { fileLines, parseRows, ProtocolError, releaseRow, stockRow } from "./csv.ts";
import type { RequestFile, Share } from "./share.ts";

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
}

async function message(db: Queryable, severity: string, title: string, body: string, related: object) {
  await db.query("select ops.post_message('grundner', $1, $2, $3, $4)", [severity, title, body, JSON.stringify(related)]);
}

async function inFlight(db: Queryable, kind: RequestRow["kind"]): Promise<RequestRow | undefined> {
  const { rows } = await db.query<RequestRow>("select * from nesting.requests_in_flight() where kind = $1", [kind]);
  return rows[0];
}

async function send(db: Queryable, share: Share, r: RequestRow, report: PumpReport) {
  try {
    await share.writeRequest(r.file_name, r.lines);
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e; // a share problem: the request stays 'sending', retried next pass
    await db.query("select nesting.fail_request($1, $2)", [r.id, `A value cannot be written for the gateway: ${e.message}`]);
    return;
  }
  await db.query("select nesting.mark_request_sent($1)", [r.id]);
  report.sent.push(`${r.file_name}.csv#${r.id}`);
}

/** A request marked 'sending' when the process stopped: did its file reach the share? */
async function recover(db: Queryable, share: Share, r: RequestRow, report: PumpReport) {
  const reached = (await share.find(`${r.file_name}.csv`)) ?? (await share.find(`${r.file_name}.erl`));
  if (reached) await db.query("select nesting.mark_request_sent($1)", [r.id]);
  else await send(db, share, r, report);
}

async function quarantine(db: Queryable, share: Share, name: string, reason: string, report: PumpReport) {
  const to = await share.quarantine(name, reason);
  report.quarantined.push(name);
  await message(db, "error", `${name} from Grundner could not be used and was quarantined`, reason, { file: to });
}

async function applyLockAck(db: Queryable, share: Share, name: string, report: PumpReport) {
  const r = await inFlight(db, "lock");
  const lines = fileLines(await share.read(name));
  if (!r) {
    // The database says what it was (a request that had timed out?) and tells the operator.
    const { rows } = await db.query<{ title: string }>("select nesting.unexpected_order_saw_ack($1) as title", [lines]);
    await share.quarantine(name, rows[0].title);
    report.quarantined.push(name);
    return;
  }
  const { rows } = await db.query<{ result: { outcome: string } }>("select nesting.apply_order_saw_ack($1, $2) as result", [r.id, lines]);
  if (rows[0].result.outcome === "mismatch") {
    await share.quarantine(name, `order_saw.erl does not match request ${r.id}`);
    report.quarantined.push(name);
  } else {
    await share.archive(name, r.id);
    report.applied.push(`${name}#${r.id}`);
  }
}

async function applyReleaseAnswer(db: Queryable, share: Share, name: string, report: PumpReport) {
  const r = await inFlight(db, "release");
  if (!r) return quarantine(db, share, name, "No release request is waiting for an answer.", report);
  const parsed = parseRows(await share.read(name), releaseRow, { allowHeader: true });
  if (parsed.problems.length > 0) {
    // Jobs on unreadable lines count as not deleted: they stay locked, the safe side.
    await message(db, "warning", `${name}: ${parsed.problems.length} line(s) could not be read`,
      parsed.problems.map((p) => `line ${p.line}: ${p.error}`).join("\n"), { request_id: r.id, problems: parsed.problems });
  }
  await db.query("select nesting.apply_release_answer($1, $2)", [r.id, JSON.stringify(parsed.rows)]);
  await share.archive(name, r.id);
  report.applied.push(`${name}#${r.id}`);
}

async function applyStock(db: Queryable, share: Share, name: string, report: PumpReport) {
  const r = await inFlight(db, "stock");
  const parsed = parseRows(await share.read(name), stockRow, { allowHeader: true });
  if (parsed.rows.length === 0) {
    const why = parsed.problems.map((p) => `line ${p.line}: ${p.error}`).join("\n") || "The file is empty.";
    if (r) await db.query("select nesting.fail_request($1, $2)", [r.id, "stock.csv had no readable line"]);
    return quarantine(db, share, name, `No readable stock line; the stock table was left as it was.\n${why}`, report);
  }
  await db.query("select nesting.apply_stock($1, $2, $3)", [r?.id ?? null, JSON.stringify(parsed.rows), JSON.stringify(parsed.problems)]);
  await share.archive(name, r?.id);
  report.applied.push(`${name}${r ? `#${r.id}` : ""}`);
}

export async function pumpGrundner(db: Queryable, share: Share, log: Logger): Promise<PumpReport> {
  const report: PumpReport = { sent: [], applied: [], quarantined: [], timedOut: [] };

  for (const r of (await db.query<RequestRow>("select * from nesting.requests_in_flight()")).rows) {
    if (r.status === "sending") await recover(db, share, r, report);
  }

  // Replies. The gateway's own acknowledgements of release and stock requests
  // (.erl) carry nothing to apply: they are archived.
  for (const [file, apply] of [
    ["order_saw.erl", applyLockAck],
    ["productionLIST_del.csv", applyReleaseAnswer],
    ["stock.csv", applyStock],
    ["get_production.erl", null],
    ["stock_request.erl", null],
  ] as const) {
    const name = await share.find(file);
    if (!name) continue;
    try {
      if (apply) await apply(db, share, name, report);
      else await share.archive(name);
    } catch (e) {
      log.error({ err: e, file: name }, "could not apply a Grundner reply");
      throw e;
    }
  }

  const overdue = await db.query<RequestRow>("select * from nesting.requests_in_flight() where status = 'sent' and deadline < now()");
  for (const r of overdue.rows) {
    const withdrawn = await share.withdraw(r.file_name, r.id);
    const { rows } = await db.query<{ outcome: string }>("select nesting.time_out_request($1, $2) as outcome", [r.id, withdrawn]);
    if (rows[0].outcome === "timed_out") report.timedOut.push(`${r.file_name}.csv#${r.id}`);
  }

  await db.query("select nesting.request_stock_if_due()");

  for (const r of (await db.query<RequestRow>("select * from nesting.claim_requests_to_send()")).rows) {
    await send(db, share, r, report);
  }

  if (report.sent.length + report.applied.length + report.quarantined.length + report.timedOut.length > 0) {
    log.info(report, "grundner share");
  }
  return report;
}

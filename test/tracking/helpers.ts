// Records as the feeds write them, for the tracking tests.
import type { TestDb } from "../helpers/db.ts";

let marker = 1000;

/** Inserts a print OS record with the next marker; returns its id. */
export async function insertPrintOs(db: TestDb, name: string, status: "PRINTED" | "ABORTED", at: string) {
  const { rows } = await db.query<{ id: string }>(
    `insert into tracking."print OS" (name, status, marker, job_complete_time) values ($1, $2, $3, $4) returning id`,
    [name, status, ++marker, at],
  );
  return Number(rows[0].id);
}

/** Inserts a scan from machine m1; returns its scan_id. */
export async function insertScan(db: TestDb, code: string, operations: unknown, at: string) {
  const { rows } = await db.query<{ scan_id: string }>(
    `insert into tracking.scanned_codes (code_text, operations, scanned_at, machine_id) values ($1, $2, $3, 'm1') returning scan_id`,
    [code, JSON.stringify(operations), at],
  );
  return Number(rows[0].scan_id);
}

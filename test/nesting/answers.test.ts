// Answers as the vendor's manual names and writes them: Stock.csv and
// productionLIST_DEL.csv (any case), Windows-1252 material names.
import { readFileSync } from "node:fs";
import path from "node:path";
import test from "ava";
import { createTestDatabase, eventually, type TestDb } from "../helpers/db.ts";
import { addJob, job, messages, startNesting, waitForRequest, type Nesting } from "./harness.ts";

let db: TestDb;
let n: Nesting;
test.before(async () => {
  db = await createTestDatabase();
  n = await startNesting(db, { faults: { vendorNames: true } }); // the first stock sync reads Stock.csv
});
test.after.always(async () => {
  await n?.stop();
  await db?.drop();
});

test.serial("Stock.csv is read like stock.csv and archived under its own name", async (t) => {
  const { rows } = await db.query(`select type_data, material_name from nesting.grundner order by type_data`);
  t.deepEqual(rows.map((r) => r.material_name), ["Spanplatte weiß 19", "Eiche geölt 19", "Bøg massiv", "Hêtre étuvé"]);
  // The worker archives a reply just after the database applied it.
  t.true(await eventually(async () => n.archived().some((f) => f.endsWith("-Stock.csv")), 10_000));
  t.false(n.files().some((f) => /stock\.csv$/i.test(f)));
});

test.serial("productionLIST_DEL.csv with ø, ê and é in the material names releases the jobs, no warning", async (t) => {
  await addJob(db, "Nordic/Bog1", "103"); // Bøg massiv
  await addJob(db, "Nordic/Hetre1", "104"); // Hêtre étuvé
  const lock = await db.query(`select nesting.lock_jobs(array['Nordic/Bog1', 'Nordic/Hetre1']) as id`);
  await waitForRequest(db, lock.rows[0].id, ["acknowledged"]);
  const { rows } = await db.query(`select nesting.unlock_jobs(array['Nordic/Bog1', 'Nordic/Hetre1'], 'ready-delete', 'deleted from Ready-to-Run') as id`);
  const r = await waitForRequest(db, rows[0].id, ["answered", "partial", "failed"]);
  t.is(r.status, "answered");
  t.deepEqual(r.answer.rows.map((x: { material_name: string }) => x.material_name), ["Bøg massiv", "Hêtre étuvé"]);
  t.deepEqual(r.answer.mismatched, []);
  t.false((await job(db, "Nordic/Bog1")).is_locked);
  t.false((await job(db, "Nordic/Hetre1")).is_locked);

  const answer = await eventually(async () => n.archived().find((f) => f.endsWith("-productionLIST_DEL.csv")), 10_000);
  t.truthy(answer, "archived under the vendor's name");
  const bytes = readFileSync(path.join(n.config.grundnerArchiveDir, answer));
  t.true(bytes.includes(Buffer.from([0x42, 0xf8, 0x67])), "Bøg: ø is the one byte 0xF8");
  t.true(bytes.includes(Buffer.from([0x48, 0xea, 0x74, 0x72, 0x65, 0x20, 0xe9])), "Hêtre é: 0xEA, 0xE9");
  t.deepEqual((await messages(db)).filter((m) => m.severity !== "info"), [], "no warning, nothing quarantined");
  t.deepEqual((await messages(db, "ready-delete")).map((m) => m.title), ["Released Bog1.nc, Hetre1.nc from Grundner (deleted from Ready-to-Run)"]);
});

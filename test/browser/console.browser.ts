// The operator console in a real Chromium against the real API, database,
// worker and Grundner simulator (npm run test:browser).
import { existsSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import test from "ava";
import type { Browser, Page } from "puppeteer-core";
import { startTestApi, type TestApi } from "../helpers/api.ts";
import { createTestDatabase, eventually, type TestDb } from "../helpers/db.ts";
import { addJob, startNesting, waitForRequest, type Nesting } from "../nesting/harness.ts";
import { createOps, seedPlant, type Plant } from "../planning/fixture.ts";
import { launch, login, newPage, open, waitForText } from "./browser.ts";

const ROLES = ["operator", "supervisor", "planner", "admin"] as const;
const user = (role: string) => `console-${role}`;
const password = (role: string) => `${role}-console-pass`;

let db: TestDb;
let n: Nesting;
let api: TestApi;
let browser: Browser;
let plant: Plant;
const pageErrors: string[] = [];

test.before(async () => {
  db = await createTestDatabase();
  n = await startNesting(db);
  api = await startTestApi(db);
  for (const role of ROLES) await db.query(`select ops.create_user($1, $2, $3)`, [user(role), role, password(role)]);
  plant = await seedPlant(db);
  browser = await launch();
});
test.after.always(async () => {
  await browser?.close();
  await api?.stop();
  await n?.stop();
  await db?.drop();
});
test.afterEach((t) => t.deepEqual(pageErrors, [], "no script errors in the page"));

async function signedIn(role: string): Promise<Page> {
  const page = await newPage(browser, pageErrors);
  await login(page, api.url, user(role), password(role));
  return page;
}

test.serial("the first screen is measured; a lost connection is shown and recovers by itself", async (t) => {
  const page = await newPage(browser, pageErrors);
  const started = Date.now();
  await page.goto(api.url);
  await page.waitForSelector("input#username");
  t.log(`first screen (login form) ${Date.now() - started} ms after navigation (a fresh browser context)`);
  const again = Date.now();
  await page.reload();
  await page.waitForSelector("input#username");
  const paint = await page.evaluate(() => performance.now());
  t.log(`the page itself: login form rendered ${Math.round(paint)} ms after its navigation started`);
  t.log(`and ${Date.now() - again} ms on a reload (files revalidated by ETag)`);
  await page.locator("::-p-aria(Username)").fill(user("operator"));
  await page.locator("::-p-aria(Password)").fill(password("operator"));
  await page.locator('::-p-aria(Sign in[role="button"])').click();
  await open(page, "Messages");
  await page.waitForSelector(".link.live");

  const port = api.port;
  await api.stop();
  await page.waitForSelector(".link.lost");
  t.regex(await page.$eval(".link", (e) => e.textContent ?? ""), /Connection lost/);
  api = await startTestApi(db, { port });
  await page.waitForSelector(".link.live", { timeout: 30_000 });
  await db.query(`select ops.post_message('jobs-ingest', 'info', 'Console test: after the reconnection')`);
  await page.waitForSelector("li[aria-label='Console test: after the reconnection']");
  t.pass();
  await page.browserContext().close();
});

test.serial("a wrong password is refused in plain words; each role signs in and sees the buttons it may press", async (t) => {
  const page = await newPage(browser, pageErrors);
  await page.goto(api.url);
  await page.locator("::-p-aria(Username)").fill(user("operator"));
  await page.locator("::-p-aria(Password)").fill("wrong-password");
  await page.locator('::-p-aria(Sign in[role="button"])').click();
  const alert = await page.waitForSelector("[role=alert]");
  t.regex(await alert!.evaluate((e) => e.textContent ?? ""), /password|credentials|SF401/i);

  for (const role of ROLES) {
    const p = await signedIn(role);
    const links = await p.$$eval("nav[aria-label=Screens] a", (as) => as.map((a) => a.textContent));
    t.deepEqual(links, ["Allocated", "Messages", "Ready", "Planning", "Job status"], role);
    t.true((await p.$eval("header", (h) => h.textContent ?? "")).includes(`(${role})`));
    await open(p, "Planning");
    await p.waitForSelector("section[aria-label='Available jobs']");
    const saves = await p.$$("::-p-aria(Save sequence)");
    t.is(saves.length, role === "planner" || role === "admin" ? 1 : 0, `${role}: the Save sequence button`);
    await p.browserContext().close();
  }
});

test.serial("Allocated shows a lock acknowledged by the simulator live, without a reload", async (t) => {
  const page = await signedIn("operator");
  await page.waitForSelector("tr[data-type='101'] [data-col=locked]");
  const locked = () => page.$eval("tr[data-type='101'] [data-col=locked]", (e) => e.textContent);
  t.is(await locked(), "0");
  await page.waitForSelector(".link.live");
  await page.evaluate(() => ((window as any).stillTheSamePage = true));

  await addJob(db, "Console/Sheet1", "101");
  const { rows } = await db.query(`select nesting.lock_jobs(array['Console/Sheet1']) as id`);
  await waitForRequest(db, rows[0].id, ["acknowledged"]);
  const acknowledged = Date.now();
  await page.waitForFunction(() => document.querySelector("tr[data-type='101'] [data-col=locked]")?.textContent === "1");
  t.log(`Allocated showed the lock ${Date.now() - acknowledged} ms after the simulator's acknowledgement was recorded`);
  t.true(await page.evaluate(() => (window as any).stillTheSamePage === true), "no reload");
  await page.browserContext().close();
});

test.serial("a message appears live with its time and source and is acknowledged", async (t) => {
  const page = await signedIn("operator");
  await open(page, "Messages");
  await page.waitForSelector(".link.live");
  await page.waitForSelector("ul[aria-label=Messages]");
  await db.query(`select ops.post_message('stage-sanity', 'warning', 'Console test: NC file left Ready', 'Sheet9.nc was removed by hand')`);
  const item = await page.waitForSelector("li[aria-label='Console test: NC file left Ready']");
  const text = await item!.evaluate((e) => (e as HTMLElement).innerText);
  t.regex(text, /stage-sanity/);
  t.truthy(await item!.$("time[datetime]"));
  await (await item!.$("::-p-aria(Acknowledge)"))!.click();
  await waitForText(page, "Console test: NC file left Ready", true);
  const { rows } = await db.query(`select acknowledged_by from ops.messages where title = 'Console test: NC file left Ready'`);
  t.is(rows[0].acknowledged_by, user("operator"));
  await page.browserContext().close();
});

test.serial("a staged file is deleted from the Ready page; the worker removes it from disk", async (t) => {
  const dir = n.config.readyDirs[0];
  const file = path.join(dir, "Manual42.nc");
  writeFileSync(file, "G0 X0 Y0\n");
  const s = statSync(file);
  await db.query(`select nesting_private.ready_file_seen($1, $2, $3, $4)`, [dir, "Manual42.nc", s.size, s.mtime.toISOString()]);

  const page = await signedIn("operator");
  await open(page, "Ready");
  await page.waitForSelector(".link.live");
  await page.locator(`::-p-aria([name="Select Manual42.nc"][role="checkbox"])`).click();
  await page.waitForSelector('input[aria-label="Select Manual42.nc"]:checked');
  await page.locator("::-p-aria(Delete selected (1))").click();
  await page.waitForSelector(".machine [role=status]");
  await eventually(async () => !existsSync(file), 30_000);
  await waitForText(page, "Manual42.nc", true);
  const { rows } = await db.query(`select count(*)::int as n from nesting.ready_files where name = 'Manual42.nc'`);
  t.is(rows[0].n, 0);
  await page.browserContext().close();
});

test.serial("a planner filters, adds, reorders and saves a sequence", async (t) => {
  await createOps(db, plant.items["Bracket A"], 2, { lotPrefix: "CON-A-" });
  await createOps(db, plant.items["Housing"], 1, { lotPrefix: "CON-H-" });
  const page = await signedIn("planner");
  await open(page, "Planning");
  await page.locator("::-p-aria(Add CON-A-1)").click();
  await page.locator("::-p-aria(Lot)").fill("CON-H");
  await page.locator('::-p-aria(Filter[role="button"])').click();
  await page.waitForFunction(() => !document.querySelector("section[aria-label='Available jobs']")?.textContent?.includes("CON-A-2"));
  await page.locator("::-p-aria(Add CON-H-1)").click();
  await page.locator("::-p-aria(Move CON-H-1 up)").click();
  await page.locator("::-p-aria(Save sequence)").click();
  await page.waitForFunction(() => !document.querySelector(".dirty") && document.querySelector(".sequence .slot")?.textContent);
  const { rows } = await db.query(
    `select o.op_lot_number from planning.mach_planning mp join planning.operations o on o.op_id = mp.mp_op_id
      where mp.mp_machine_id = $1 and mp.mp_shift_id = $2 and mp.mp_op_proddate = ops.plant_today() order by mp.mp_sequence`,
    [plant.machines[0], plant.dayShift],
  );
  t.deepEqual(rows.map((r) => r.op_lot_number), ["CON-H-1", "CON-A-1"]);
  t.regex(await page.$eval(".sequence", (e) => (e as HTMLElement).innerText), /changeover \d+ min/);
  await page.browserContext().close();
});

test.serial("the supervisor's carryover decision is a modal that Escape and outside clicks do not close", async (t) => {
  const ops = await createOps(db, plant.items["Bracket B"], 2, { lotPrefix: "CO-" });
  await db.query(`select planning.stage_past_plan($1::jsonb)`, [JSON.stringify(ops.map((op, i) => ({
    op_id: Number(op), machine_id: Number(plant.machines[1]), shift_id: Number(plant.dayShift), sequence: i + 1 })))]);

  const page = await signedIn("supervisor");
  const dialog = await page.waitForSelector("dialog[open]");
  t.true(await dialog!.evaluate((d) => d.matches(":modal")), "a modal dialog");
  const text = await dialog!.evaluate((d) => (d as HTMLElement).innerText);
  t.regex(text, /CO-1 — Bracket B/);
  t.regex(text, /CO-2 — Bracket B/);

  await page.evaluate(() => {
    addEventListener("keydown", (e) => { if (e.key === "Escape") (window as any).escaped = true; }, true);
    addEventListener("click", () => ((window as any).clicked = true), true);
  });
  await page.keyboard.press("Escape");
  await page.waitForFunction(() => (window as any).escaped);
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  t.true(await dialog!.evaluate((d) => (d as HTMLDialogElement).open), "Escape does not close it");
  await page.mouse.click(8, 8);
  await page.waitForFunction(() => (window as any).clicked);
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  t.true(await dialog!.evaluate((d) => (d as HTMLDialogElement).open), "a click outside does not close it");

  const apply = await dialog!.$("::-p-aria(Apply decisions)");
  t.true(await apply!.evaluate((b) => (b as HTMLButtonElement).disabled), "not until every job is decided");
  const sets = await dialog!.$$("fieldset");
  await (await sets[0].$("::-p-aria(Carry over)"))!.click();
  await (await sets[1].$("::-p-aria(Reject)"))!.click();
  await apply!.click();
  await page.waitForFunction(() => !document.querySelector("dialog")?.open);
  const { rows } = await db.query(`select count(*)::int as n from planning.pending_carryover(ops.plant_today())`);
  t.is(rows[0].n, 0);
  await page.browserContext().close();
});

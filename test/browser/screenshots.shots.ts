// npm run console:screenshots: the demo plant (npm run demo) in the console,
// one PNG per screen in docs/console/ at the panels' 1280×800.
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "ava";
import pg from "pg";
import { loadDemoPlant } from "../../src/demo.ts";
import { startTestApi } from "../helpers/api.ts";
import { createTestDatabase, testLog } from "../helpers/db.ts";
import { launch, login, newPage, open } from "./browser.ts";

const OUT = new URL("../../docs/console/", import.meta.url);

test("screenshots of every screen of the demo plant", async (t) => {
  const db = await createTestDatabase();
  const api = await startTestApi(db);
  const dir = mkdtempSync(path.join(os.tmpdir(), "console-shots-"));
  const browser = await launch();
  const errors: string[] = [];
  try {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await loadDemoPlant({
        client,
        processedRoot: path.join(dir, "processed"),
        grundnerDir: path.join(dir, "grundner"),
        grundnerArchiveDir: path.join(dir, "grundner-archive"),
        grundnerQuarantineDir: path.join(dir, "grundner-quarantine"),
        log: testLog,
      });
    } finally {
      await client.end();
    }
    // A staged file and an unread message, so those screens show something.
    const ready = path.join(dir, "ready", "saw1");
    mkdirSync(ready, { recursive: true });
    writeFileSync(path.join(ready, "ORDER-4711_Sheet1.nc"), "G0 X0 Y0\n");
    const s = statSync(path.join(ready, "ORDER-4711_Sheet1.nc"));
    await db.query(`select nesting_private.ensure_machine($1)`, [ready]);
    await db.query(`select nesting_private.ready_file_seen($1, $2, $3, $4)`, [ready, "ORDER-4711_Sheet1.nc", s.size, s.mtime.toISOString()]);
    await db.query(`select ops.post_message('stage-sanity', 'warning', 'NC file left Ready-to-Run', 'ORDER-4711_Sheet2.nc was removed by hand; the job is PENDING again')`);
    mkdirSync(OUT, { recursive: true });
    const shot = async (page: Awaited<ReturnType<typeof newPage>>, name: string) => {
      const file = new URL(`${name}.png`, OUT);
      await page.screenshot({ path: file.pathname as `${string}.png` });
      t.true(statSync(file).size > 10_000, `${name}.png has content`);
    };

    const signIn = await newPage(browser, errors);
    await signIn.goto(api.url);
    await signIn.waitForSelector("form[aria-label='Sign in']");
    await shot(signIn, "login");

    const planner = await newPage(browser, errors);
    await login(planner, api.url, "pia", "pia-demo-pass");
    await planner.waitForSelector(".link.live");
    await planner.waitForSelector("tr[data-type]");
    await shot(planner, "allocated");
    await open(planner, "Messages");
    await planner.waitForSelector("ul[aria-label=Messages] li");
    await shot(planner, "messages");
    await open(planner, "Ready");
    await planner.waitForSelector(".machine");
    await shot(planner, "ready");
    await open(planner, "Job status");
    await planner.waitForSelector("section.jobstatus tbody tr");
    await planner.locator('::-p-aria(History[role="button"])').click();
    await planner.waitForSelector("section[aria-label^='History of'] tbody tr");
    await shot(planner, "job-status");
    await open(planner, "Planning");
    await planner.waitForSelector("section[aria-label='Available jobs'] li");
    await shot(planner, "planning");

    const supervisor = await newPage(browser, errors);
    await login(supervisor, api.url, "sam", "sam-demo-pass");
    await supervisor.waitForSelector("dialog[open] fieldset");
    await shot(supervisor, "carryover");
    t.deepEqual(errors, []);
  } finally {
    await browser.close();
    await api.stop();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
});

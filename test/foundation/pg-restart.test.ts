// PostgreSQL restarts under a running Shopfloor (a plant's server is patched,
// a managed database fails over): the process stays up and, once the server is
// back, the API answers, the worker handles new work and /healthz is green again.
import test from "ava";
import pg from "pg";
import { ensureDatabase, freePort, startEmbedded, withDatabase } from "../../src/db/embedded.ts";
import { eventually, testLog } from "../helpers/db.ts";
import { cliEnv, runCli, tempDir } from "../helpers/process.ts";

test("the API, the worker and /healthz recover when PostgreSQL restarts", async (t) => {
  t.timeout(10 * 60_000);
  const pgDir = tempDir("shopfloor-restart-pg-");
  let server = await startEmbedded({ dataDir: pgDir, port: 0, log: testLog });
  t.teardown(() => server.stop());
  await ensureDatabase(server.rootUrl, "shopfloor");
  const url = withDatabase(server.rootUrl, "shopfloor");

  const port = await freePort();
  const app = runCli(["start"], cliEnv({ DATABASE_URL: url, DATA_DIR: tempDir("shopfloor-restart-app-"), PORT: String(port), HOST: "127.0.0.1" }));
  t.teardown(() => app.child.kill("SIGTERM"));
  await app.waitFor("Shopfloor is up");
  const health = async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).json();
  t.true((await health()).ok);

  // Stop PostgreSQL (fast shutdown ends every session), then start it again on the same port.
  await server.stop();
  await eventually(async () => (await health()).ok === false, 10_000); // anonymous callers see ok or not ok
  server = await startEmbedded({ dataDir: pgDir, port: server.port, log: testLog });

  await eventually(async () => (await health()).ok === true, 30_000, 200);
  const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: "{ __typename }" }),
  });
  t.is(res.status, 200);

  // New work after the restart reaches the worker (its LISTEN or its polling backstop).
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  t.teardown(() => c.end().catch(() => {}));
  const { rows } = await c.query<{ id: string }>("select (ops.post_message('restart-test', 'info', 'after the restart')).id");
  await eventually(async () => {
    const r = await c.query("select logged_at from ops.messages where id = $1", [rows[0].id]);
    return r.rows[0].logged_at !== null;
  }, 30_000, 100);
  t.true(app.child.exitCode === null, "the process stayed up");

  app.child.kill("SIGTERM");
  t.is(await app.exited, 0, app.output());
});

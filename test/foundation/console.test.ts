// The console's files (src/api/console.ts): served at / from a fixed list,
// with types, ETags and a content policy; nothing else of the disk is reachable.
import test from "ava";
import { withTestApi, type TestApi } from "../helpers/api.ts";
import type { TestDb } from "../helpers/db.ts";

let db: TestDb;
let api: TestApi;
withTestApi(test, (made) => ({ db, api } = made), { graphiql: false });

test("/ serves the console page with a content policy that allows only its import map inline", async (t) => {
  const res = await fetch(`${api.url}/`);
  t.is(res.status, 200);
  t.is(res.headers.get("content-type"), "text/html; charset=utf-8");
  const csp = res.headers.get("content-security-policy") ?? "";
  t.regex(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
  t.regex(csp, /connect-src 'self' ws: wss:/);
  t.is(res.headers.get("x-content-type-options"), "nosniff");
  t.regex(await res.text(), /<script type="importmap">/);
});

test("every module the page imports is served as JavaScript, the libraries from the installed packages", async (t) => {
  const page = await (await fetch(`${api.url}/`)).text();
  const map = JSON.parse(/<script type="importmap">([\s\S]*?)<\/script>/.exec(page)![1]).imports as Record<string, string>;
  const seen = new Set<string>();
  const pending = ["/console/app.js", ...Object.values(map)];
  while (pending.length > 0) {
    const url = pending.pop()!;
    if (seen.has(url)) continue;
    seen.add(url);
    const res = await fetch(`${api.url}${url}`);
    t.is(res.status, 200, url);
    t.is(res.headers.get("content-type"), "text/javascript; charset=utf-8", url);
    const source = await res.text();
    for (const m of source.matchAll(/(?:from|import)\s*["'](\.\/[\w.-]+\.js)["']/g)) pending.push(new URL(m[1], `http://x${url}`).pathname);
  }
  t.true(seen.has("/console/vendor/graphql-ws/client.js"));
  t.true([...seen].some((u) => /^\/console\/vendor\/graphql-ws\/common-[\w-]+\.js$/.test(u)), "the client's chunk");
  t.true(seen.size >= 12, `${seen.size} modules`);
});

test("an unchanged file answers 304 to its ETag; HEAD has no body", async (t) => {
  const first = await fetch(`${api.url}/console/style.css`);
  t.is(first.headers.get("content-type"), "text/css; charset=utf-8");
  t.is(first.headers.get("cache-control"), "no-cache");
  const etag = first.headers.get("etag")!;
  t.regex(etag, /^"[\w-]+"$/);
  await first.text();
  const again = await fetch(`${api.url}/console/style.css`, { headers: { "if-none-match": etag } });
  t.is(again.status, 304);
  const head = await fetch(`${api.url}/`, { method: "HEAD" });
  t.is(head.status, 200);
  t.is(await head.text(), "");
});

test("paths outside the list are 404 in JSON, traversal included; /api keeps its JSON 404", async (t) => {
  for (const p of ["/console/../package.json", "/console/%2e%2e/package.json", "/console/..%2fpackage.json",
    "/console/vendor/../../src/config.ts", "/console/vendor/preact/package.json", "/console/", "/console/index.html",
    "/console/app.js%00.css", "/package.json", "/node_modules/preact/dist/preact.mjs"]) {
    const res = await fetch(`${api.url}${p}`);
    t.is(res.status, 404, p);
    const body = await res.text();
    t.notRegex(body, /"dependencies"|import |createClient/, p);
  }
  const api404 = await fetch(`${api.url}/api/nope`);
  t.is(api404.status, 404);
  t.is((await api404.json()).code, "SF404");
  const post = await fetch(`${api.url}/`, { method: "POST", body: "{}" });
  t.not(post.status, 200);
});

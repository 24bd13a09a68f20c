// The operator console (issue 17): a few static files served at `/` and
// `/console/...`. Only the files listed here are served, read once at
// start-up: our own files from console/ and the ESM builds of the browser
// libraries from node_modules. No path from a request ever reaches the file
// system, so there is nothing to traverse.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const CONSOLE_DIR = fileURLToPath(new URL("../../console/", import.meta.url));
const require = createRequire(import.meta.url);

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/** The browser libraries: URL under /console/vendor/ → package file (named in index.html's import map). */
const VENDOR: Record<string, string> = {
  "preact.mjs": "preact/dist/preact.mjs",
  "preact-hooks.mjs": "preact/hooks/dist/hooks.mjs",
  "htm.mjs": "htm/dist/htm.mjs",
  // and the chunks it imports by relative path (their names carry a build hash)
  "graphql-ws/client.js": "graphql-ws/dist/client.js",
};

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
  csp?: string;
}

/** A file of an installed package (its package.json may not export it, so resolve the folder). */
function packageFile(spec: string): string {
  const [name, ...rest] = spec.split("/");
  const main = require.resolve(name);
  const root = main.slice(0, main.lastIndexOf(`${path.sep}node_modules${path.sep}${name}${path.sep}`)) + `${path.sep}node_modules${path.sep}${name}`;
  return path.join(root, ...rest);
}

function staticFile(file: string): StaticFile {
  const body = readFileSync(file);
  const type = TYPES[path.extname(file)] ?? "application/octet-stream";
  return { body, type, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` };
}

/**
 * index.html carries its import map inline; the page's policy allows that
 * one script by its hash and nothing else inline.
 */
function withPolicy(page: StaticFile): StaticFile {
  const inline = [...page.body.toString("utf8").matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)];
  const hashes = inline.map((m) => `'sha256-${createHash("sha256").update(m[1]).digest("base64")}'`);
  const csp = [
    "default-src 'self'",
    `script-src 'self' ${hashes.join(" ")}`,
    "connect-src 'self' ws: wss:",
    "img-src 'self' data:",
    "style-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
  return { ...page, csp };
}

/** A library file and, beside it, the files it imports as `./name.js`. */
function addVendor(files: Map<string, StaticFile>, url: string, file: string) {
  if (files.has(url)) return;
  const f = staticFile(file);
  files.set(url, f);
  for (const m of f.body.toString("utf8").matchAll(/from\s*['"]\.\/([\w.-]+\.js)['"]/g)) {
    addVendor(files, url.slice(0, url.lastIndexOf("/") + 1) + m[1], path.join(path.dirname(file), m[1]));
  }
}

export function loadConsole(): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const name of readdirSync(CONSOLE_DIR)) {
    if (!TYPES[path.extname(name)] || name.startsWith(".")) continue;
    files.set(`/console/${name}`, staticFile(path.join(CONSOLE_DIR, name)));
  }
  const index = files.get("/console/index.html");
  if (!index) throw new Error(`console/index.html is missing in ${CONSOLE_DIR}`);
  files.set("/", withPolicy(index));
  files.delete("/console/index.html");
  for (const [name, spec] of Object.entries(VENDOR)) addVendor(files, `/console/vendor/${name}`, packageFile(spec));
  return files;
}

/** Answers GET/HEAD for a console file; false when the path is not one. */
export function serveConsole(files: Map<string, StaticFile>, req: IncomingMessage, res: ServerResponse, pathname: string): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  const file = files.get(pathname);
  if (!file) return false;
  const headers: Record<string, string | number> = {
    "content-type": file.type,
    etag: file.etag,
    // Revalidate every time: a new release shows at once, an unchanged file costs a 304.
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  };
  if (file.csp) headers["content-security-policy"] = file.csp;
  if (req.headers["if-none-match"] === file.etag) {
    res.writeHead(304, headers).end();
    return true;
  }
  headers["content-length"] = file.body.length;
  res.writeHead(200, headers);
  res.end(req.method === "HEAD" ? undefined : file.body);
  return true;
}

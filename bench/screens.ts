// Live updates for a plant's screens (issue 19): one API process (`shopfloor
// serve`, its own Node process) and SCREENS websocket clients over
// graphql-transport-ws, each subscribed to messageAdded and
// allocatedMaterialChanged, while messages are posted EVENTS_PER_S a second and
// one client runs GraphQL queries over HTTP. Prints delivery latency (commit →
// screen, and commit → last screen per event), lost deliveries, the HTTP query
// latency meanwhile, and the API process's memory and CPU. Never asserts.
// BENCH_SCREENS (1000), BENCH_EVENTS_PER_S (4), BENCH_SECONDS (20; 5 with BENCH_QUICK=1),
// BENCH_PORT (51190), BENCH_PROF=<dir> to write a CPU profile of the API process.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import WebSocket from "ws";
import { signToken } from "../src/auth/jwt.ts";
import { percentile, type BenchContext } from "./lib.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SECRET = "bench-secret-bench-secret-bench-secret-0123456789";

const ms = (x: number) => `${x.toFixed(0)} ms`;

/** The API as a plant runs it: `shopfloor serve` in its own process. */
async function startServer(url: string, port: number): Promise<{ child: ChildProcess; dataDir: string }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "sf-bench-screens-"));
  const child = spawn(process.execPath, [...(process.env.BENCH_PROF ? ["--cpu-prof", "--cpu-prof-dir=" + process.env.BENCH_PROF] : []), path.join(ROOT, "src/cli.ts"), "serve"], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: url, PORT: String(port), HOST: "127.0.0.1", JWT_SECRET: SECRET, DATA_DIR: dataDir, LOG_LEVEL: "warn", LOG_PRETTY: "false", DB_POOL_MAX: "10" },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the API exited with ${child.exitCode}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return { child, dataDir };
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error("the API did not start within 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Resident memory (MB) and CPU seconds (user + system) of a process, from /proc. */
function processUsage(pid: number) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const ticks = Number(stat[11]) + Number(stat[12]); // utime, stime
  return { rssMb: rssKb / 1024, cpuS: ticks / 100 };
}

interface Screen {
  ws: WebSocket;
  /** Per posted event index: when this screen received it (performance.now()). */
  received: Map<number, number>;
}

/** One screen: connects, subscribes to both topics, and records each message by its title's index. */
function openScreen(wsUrl: string, token: string, onWarmup: () => void): Promise<Screen> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, "graphql-transport-ws");
    const screen: Screen = { ws, received: new Map() };
    ws.once("error", reject);
    ws.once("open", () => ws.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } })));
    ws.on("message", (raw) => {
      const at = performance.now();
      const m = JSON.parse(String(raw));
      if (m.type === "connection_ack") {
        const sub = (id: string, query: string) => ws.send(JSON.stringify({ id, type: "subscribe", payload: { query } }));
        sub("1", "subscription { messageAdded { count messages { rowId title severity createdAt } } }");
        sub("2", "subscription { allocatedMaterialChanged { table op } }");
        resolve(screen);
      } else if (m.type === "next" && m.id === "1") {
        const title: string | undefined = m.payload.data?.messageAdded?.messages?.[0]?.title;
        if (title === "warm-up") onWarmup();
        const index = /^screen event (\d+)$/.exec(title ?? "")?.[1];
        if (index !== undefined) screen.received.set(Number(index), at);
      }
    });
  });
}

/** HTTP GraphQL queries one after another until stopped; returns their latencies. */
async function queryLoop(httpUrl: string, token: string, stop: { done: boolean }) {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const body = JSON.stringify({ query: "{ allMessages(first: 20, orderBy: PRIMARY_KEY_DESC) { nodes { rowId title severity createdAt } } }" });
  while (!stop.done) {
    const t = performance.now();
    try {
      const res = await fetch(httpUrl, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body });
      const json = (await res.json()) as { errors?: unknown };
      if (!res.ok || json.errors) {
        errors++;
        firstError ??= JSON.stringify(json.errors ?? res.status).slice(0, 300);
      } else latencies.push(performance.now() - t);
    } catch (e) {
      errors++;
      firstError ??= String(e);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { latencies: latencies.sort((a, b) => a - b), errors, firstError };
}

export default async function bench({ url, quick, print }: BenchContext) {
  const screensWanted = Number(process.env.BENCH_SCREENS ?? 1000);
  const perSecond = Number(process.env.BENCH_EVENTS_PER_S ?? 4);
  const seconds = Number(process.env.BENCH_SECONDS ?? (quick ? 5 : 20));
  const port = Number(process.env.BENCH_PORT ?? 51190);
  const { child, dataDir } = await startServer(url, port);
  const poster = new pg.Client({ connectionString: url });
  await poster.connect();
  // Tokens must name a user that exists and is enabled (the API checks on every connection).
  const existing = await poster.query<{ id: number }>(`select id from ops_private.users where username = 'bench-screen'`);
  const userId =
    existing.rows[0]?.id ??
    (await poster.query<{ id: number }>(`select ops.create_user('bench-screen', 'operator', null, 'Benchmark screens') as id`)).rows[0].id;
  const token = signToken({ role: "shopfloor_operator", user_id: Number(userId), username: "bench-screen" }, SECRET, "2h");
  const screens: Screen[] = [];
  try {
    const idle = processUsage(child.pid!);
    print(`API process (shopfloor serve, pid ${child.pid}) started: ${idle.rssMb.toFixed(0)} MB resident`);

    // Connect the screens, 50 at a time, then check every one hears a message.
    let warm = 0;
    const connectStarted = performance.now();
    for (let i = 0; i < screensWanted; i += 50) {
      const batch = Array.from({ length: Math.min(50, screensWanted - i) }, () =>
        openScreen(`ws://127.0.0.1:${port}/graphql`, token, () => warm++),
      );
      screens.push(...(await Promise.all(batch)));
    }
    const warmDeadline = Date.now() + 30_000;
    while (warm < screens.length && Date.now() < warmDeadline) {
      await poster.query(`select ops.post_message('bench', 'info', 'warm-up')`);
      const until = Date.now() + 2000;
      while (warm < screens.length && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      if (warm < screens.length) warm = 0; // the subscriptions were not all in place yet: again
    }
    print(`${screens.length} screens connected and subscribed in ${ms(performance.now() - connectStarted)} (${warm} heard the warm-up message)`);
    const before = processUsage(child.pid!);
    const benchCpuBefore = process.cpuUsage();

    // Post events at the asked rate, while one client queries over HTTP.
    const stop = { done: false };
    const queries = queryLoop(`http://127.0.0.1:${port}/graphql`, token, stop);
    const committedAt: number[] = [];
    let peakRss = before.rssMb;
    const total = Math.round(seconds * perSecond);
    const started = performance.now();
    for (let i = 0; i < total; i++) {
      const due = started + (i * 1000) / perSecond;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await poster.query(`select ops.post_message('bench', 'info', $1)`, [`screen event ${i}`]);
      committedAt[i] = performance.now();
      if (i % perSecond === 0) peakRss = Math.max(peakRss, processUsage(child.pid!).rssMb);
    }
    // Let the last events arrive (at most 10 s), then stop the queries.
    const drainDeadline = performance.now() + 10_000;
    while (performance.now() < drainDeadline && screens.some((s) => s.received.size < total)) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const elapsed = (performance.now() - started) / 1000;
    const after = processUsage(child.pid!);
    peakRss = Math.max(peakRss, after.rssMb);
    stop.done = true;
    const q = await queries;

    const deliveries: number[] = [];
    const lastScreen: number[] = [];
    let lost = 0;
    let reachedAll = 0;
    for (let i = 0; i < total; i++) {
      let last = 0;
      let missing = 0;
      for (const s of screens) {
        const at = s.received.get(i);
        if (at === undefined) {
          missing++;
          continue;
        }
        deliveries.push(at - committedAt[i]);
        last = Math.max(last, at - committedAt[i]);
      }
      lost += missing;
      if (missing === 0) {
        reachedAll++;
        lastScreen.push(last);
      }
    }
    deliveries.sort((a, b) => a - b);
    lastScreen.sort((a, b) => a - b);
    const cpu = ((after.cpuS - before.cpuS) / elapsed) * 100;
    print(`events    ${total} messages at ${perSecond}/s to ${screens.length} screens (${screens.length * 2} subscriptions) over ${elapsed.toFixed(1)} s`);
    print(`delivery  commit → screen       p50 ${ms(percentile(deliveries, 50))}  p95 ${ms(percentile(deliveries, 95))}  max ${ms(deliveries.at(-1) ?? NaN)}`);
    print(`delivery  commit → last screen  (${reachedAll} events that reached every screen)  p50 ${ms(percentile(lastScreen, 50))}  p95 ${ms(percentile(lastScreen, 95))}  max ${ms(lastScreen.at(-1) ?? NaN)}`);
    print(`lost      ${lost} of ${total * screens.length} deliveries not received 10 s after the last event was posted`);
    print(`http      ${q.latencies.length} queries meanwhile  p50 ${percentile(q.latencies, 50).toFixed(1)} ms  p95 ${percentile(q.latencies, 95).toFixed(1)} ms  (${q.errors} errors${q.firstError ? `, first: ${q.firstError}` : ""})`);
    const delivered = total * screens.length - lost;
    const perDelivery = delivered > 0 ? ((after.cpuS - before.cpuS) * 1000) / delivered : NaN;
    print(`api       resident memory peak ${peakRss.toFixed(0)} MB; CPU ${cpu.toFixed(0)}% of one core during the run, ${perDelivery.toFixed(3)} ms of CPU per delivery`);
    const benchCpu = process.cpuUsage(benchCpuBefore);
    print(`screens   this process (all ${screens.length} clients) used ${(((benchCpu.user + benchCpu.system) / 1e6 / elapsed) * 100).toFixed(0)}% of one core`);
    print(`machine   load average ${loadavg().map((l) => l.toFixed(1)).join(" ")} on ${cpus().length} cores (other work competes with the API and the screens)`);
    print(`aims      delivery p95 < 200 ms, 0 lost, http p95 < 50 ms, memory < 1024 MB (the machine is shared: read the figures, not a verdict)`);
  } finally {
    for (const s of screens) s.ws.terminate();
    await poster.end();
    child.kill("SIGTERM");
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once("exit", r)));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

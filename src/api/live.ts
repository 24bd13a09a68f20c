// Live events for a plant's screens (issue 19). A thousand screens may hold
// the same subscription, so nothing here is done once per screen:
// - one listener per NOTIFY channel per process (PostGraphile's pgSubscriber);
// - each event is built once per role (the payload of the NOTIFY, or rows
//   loaded in one transaction as that role), so grants and row security decide
//   what a role's screens receive, and every screen of the role shares it;
// - screens of one role holding the same subscription share one grafast
//   execution per event (LiveSharingPlugin);
// - a screen's websocket has a bounded send buffer: a screen that stops
//   reading is dropped, with a log line and a counter, and never slows the rest.
// A subscription field declares a LiveTopic and is planned with liveField(topic).
import { EventEmitter } from "node:events";
import pg from "pg";
import { context, lambda, listen, SafeError, type GrafastSubscriber, type PromiseOrDirect, type Step } from "postgraphile/grafast";
import type WebSocket from "ws";
import { ANONYMOUS_ROLE } from "../auth/jwt.ts";
import { inTransaction } from "../db/pool.ts";
import type { Logger } from "../log.ts";

export interface LiveTopic<E = any, P = any> {
  /** The NOTIFY channel; its payloads are small JSON. */
  channel: string;
  /** The table or view a role must be allowed to SELECT to receive the topic's events. */
  readable: string;
  /**
   * Builds what one role's screens receive for one notification (null: nothing),
   * in a transaction as that role, once per role per event. Without it the
   * screens receive the notification's payload itself.
   */
  buildAsRole?: (event: E, client: pg.PoolClient) => Promise<P | null>;
}

/** Counters for /metrics: what the live layer has done since the process started. */
const liveCounters = {
  /** Notifications received on live channels. */
  events: 0,
  /** Payloads built (one per event and role that had screens). */
  builds: 0,
  /** Payloads handed to (shared) executions. */
  deliveries: 0,
  /** Screens dropped because they stopped reading (full send buffer, or a subscription's queue full). */
  screensDropped: 0,
};
/** Emits "screenDropped" ({ bufferedBytes, limitBytes, remote }) whenever a screen is dropped. */
export const liveEmitter = new EventEmitter();

let openSubscriptions = 0;
let openExecutions = 0;
/**
 * The counters, the live subscriptions of screens this process holds now, and
 * the executions they share (one per role and distinct subscription document).
 */
export function liveMetrics() {
  return { ...liveCounters, subscriptions: openSubscriptions, executions: openExecutions };
}

/** A websocket's unsent bytes beyond which its screen is dropped. */
export const DEFAULT_SEND_BUFFER_LIMIT = 1024 * 1024;
/** Events waiting for one subscription beyond which it is ended (a backstop; see limitSendBuffer). */
const MAX_QUEUED_EVENTS = 1000;
/** How long a role's SELECT right on a topic's relation is trusted before it is checked again. */
const PRIVILEGE_TTL_MS = 5000;

declare global {
  namespace Grafast {
    interface Context {
      /** The live hub of this API instance (see makePreset). */
      live?: LiveHub;
    }
  }
}

type SharedExecution = { members: Set<Screen>; result: Promise<unknown> };

const isAsyncIterable = (x: unknown): x is AsyncIterable<unknown> =>
  x != null && typeof (x as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function";

type Settings = Record<string, string | undefined> | null | undefined;

/** One per API instance: the channels this process listens to, and their screens. */
export class LiveHub {
  private readonly channels = new Map<string, Channel>();
  private readonly privileges = new Map<string, { at: number; allowed: Promise<boolean> }>();
  private builds: Promise<void> = Promise.resolve();
  private readonly shared = new Map<string, SharedExecution>();
  readonly pool: pg.Pool;
  readonly subscriber: GrafastSubscriber;
  readonly log: Logger;

  constructor(opts: { pool: pg.Pool; subscriber: GrafastSubscriber; log: Logger }) {
    this.pool = opts.pool;
    this.subscriber = opts.subscriber;
    this.log = opts.log.child({ component: "live" });
  }

  /** A screen's stream of events: refused for anonymous screens and roles that may not read the topic. */
  async subscribe(topic: LiveTopic, settings: Settings): Promise<AsyncIterableIterator<unknown>> {
    const role = settings?.role;
    if (!role || role === ANONYMOUS_ROLE) throw new SafeError("Log in to receive live updates", { code: "SF401" });
    if (!(await this.mayRead(role, topic.readable))) {
      throw new SafeError(`Your role may not see ${topic.readable}, so it gets no live updates of it`, { code: "SF403" });
    }
    let channel = this.channels.get(topic.channel);
    if (!channel) {
      channel = new Channel(this, topic, () => this.channels.delete(topic.channel));
      this.channels.set(topic.channel, channel);
    }
    return channel.add(role);
  }

  /**
   * Joins a screen to the execution of its subscription shared by every screen
   * of the same role with the same document, operation and variables; `start`
   * starts grafast's execution when there is none yet. Results are handed to
   * each screen as they come; the execution stops when its last screen leaves.
   */
  share(key: string, role: string, start: () => PromiseOrDirect<unknown>): Promise<unknown> {
    let run = this.shared.get(key);
    if (!run) {
      const created: SharedExecution = { members: new Set(), result: Promise.resolve(start()) };
      run = created;
      this.shared.set(key, created);
      created.result.then(
        (result) => {
          if (isAsyncIterable(result)) void this.pump(key, created, result);
          else this.shared.delete(key);
        },
        () => void this.shared.delete(key),
      );
    }
    const joined = run;
    return joined.result.then((result) => {
      if (!isAsyncIterable(result)) return result; // an error: each screen gets it
      if (this.shared.get(key) !== joined) return this.share(key, role, start); // it ended meanwhile: start again
      const member: Screen = new Screen(role, (m) => this.leave(key, joined, m), (m) => this.overflowed(m));
      joined.members.add(member);
      openSubscriptions++;
      return member;
    });
  }

  private leave(key: string, run: SharedExecution, member: Screen) {
    if (!run.members.delete(member)) return;
    openSubscriptions--;
    if (run.members.size === 0 && this.shared.get(key) === run) {
      this.shared.delete(key);
      void run.result.then((r) => (r as AsyncIterator<unknown>).return?.());
    }
  }

  private async pump(key: string, run: SharedExecution, results: AsyncIterable<unknown>) {
    try {
      for await (const result of results) await deliverInSlices([...run.members], result);
    } catch (err) {
      this.log.error({ err }, "shared live execution failed");
    } finally {
      if (this.shared.get(key) === run) this.shared.delete(key);
      for (const m of [...run.members]) m.end();
    }
  }

  overflowed(screen: Screen) {
    liveCounters.screensDropped++;
    this.log.warn({ role: screen.role, queued: MAX_QUEUED_EVENTS }, "live subscription ended: its screen is not taking events");
  }

  /** Whether `role` may SELECT from `relation`; cached for a few seconds per role. */
  mayRead(role: string, relation: string): Promise<boolean> {
    const key = `${role}\u0000${relation}`;
    const cached = this.privileges.get(key);
    if (cached && Date.now() - cached.at < PRIVILEGE_TTL_MS) return cached.allowed;
    const allowed = this.pool
      .query<{ ok: boolean }>("select has_table_privilege($1, $2, 'SELECT') as ok", [role, relation])
      .then((r) => r.rows[0].ok === true);
    allowed.catch(() => this.privileges.delete(key));
    this.privileges.set(key, { at: Date.now(), allowed });
    return allowed;
  }

  /**
   * Runs fn in a transaction as `role` (the role only: payloads are shared by
   * all its screens). One at a time per process: live builds never take more
   * than one connection from the pool the HTTP requests use, and under load
   * they wait here, in order, rather than in the pool's queue with its timeout.
   */
  asRole<T>(role: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    // One round trip to begin as the role (the role comes from a verified token, and is quoted anyway).
    const begin = `begin; set local role ${pg.escapeIdentifier(role)}; set local jwt.claims.role = ${pg.escapeLiteral(role)}`;
    const run = this.builds.then(() => inTransaction(this.pool, fn, begin));
    this.builds = run.then(
      () => {},
      () => {},
    );
    return run;
  }

}

/** One NOTIFY channel: one listener, its screens grouped by role at each event. */
class Channel {
  private readonly screens = new Set<Screen>();
  private source: AsyncIterableIterator<unknown> | undefined;
  private listening = false;
  /** Payloads are built concurrently but delivered in the order the events came. */
  private tail: Promise<void> = Promise.resolve();
  private readonly hub: LiveHub;
  private readonly topic: LiveTopic;
  private readonly onEmpty: () => void;

  constructor(hub: LiveHub, topic: LiveTopic, onEmpty: () => void) {
    this.hub = hub;
    this.topic = topic;
    this.onEmpty = onEmpty;
  }

  add(role: string): Screen {
    const screen = new Screen(role, (s) => this.remove(s), (s) => this.hub.overflowed(s));
    this.screens.add(screen);
    openExecutions++;
    if (!this.listening) this.listen();
    return screen;
  }

  private remove(screen: Screen) {
    if (!this.screens.delete(screen)) return;
    openExecutions--;
    if (this.screens.size === 0) {
      this.onEmpty();
      this.source?.return?.(); // UNLISTEN once no screen is left
    }
  }

  private listen() {
    this.listening = true;
    void Promise.resolve(this.hub.subscriber.subscribe(this.topic.channel))
      .then(async (iterator) => {
        this.source = iterator;
        if (this.screens.size === 0) return void iterator.return?.(); // all left while we subscribed
        for await (const raw of iterator) this.received(raw);
      })
      .catch((err) => this.hub.log.error({ err, channel: this.topic.channel }, "live channel failed"))
      .finally(() => {
        // The listener ended without being asked (released, or its connection
        // dropped): the screens must resubscribe, so end their subscriptions.
        if (this.screens.size === 0) return;
        this.hub.log.warn({ channel: this.topic.channel, screens: this.screens.size }, "live channel ended; ending its subscriptions");
        for (const s of [...this.screens]) s.end();
      });
  }

  /** One notification: build once per role present, then hand the payload to each of its screens. */
  private received(raw: unknown) {
    liveCounters.events++;
    let event: unknown;
    try {
      event = typeof raw === "string" ? JSON.parse(raw) : raw;
    } catch {
      this.hub.log.warn({ channel: this.topic.channel, payload: String(raw).slice(0, 200) }, "live notification is not JSON; ignored");
      return;
    }
    const byRole = new Map<string, Screen[]>();
    for (const s of this.screens) {
      const list = byRole.get(s.role);
      if (list) list.push(s);
      else byRole.set(s.role, [s]);
    }
    const built = Promise.all([...byRole].map(async ([role, screens]) => ({ screens, payload: await this.build(role, event) })));
    this.tail = this.tail
      .then(() => built)
      .then(async (results) => {
        for (const { screens, payload } of results) {
          if (payload == null) continue;
          await deliverInSlices(screens, payload);
          liveCounters.deliveries += screens.length;
        }
      })
      .catch((err) => this.hub.log.error({ err, channel: this.topic.channel }, "live event could not be delivered"));
  }

  /** What `role`'s screens receive for `event`; null when the role may not see it or it could not be built. */
  private async build(role: string, event: unknown): Promise<unknown> {
    try {
      if (!(await this.hub.mayRead(role, this.topic.readable))) return null;
      liveCounters.builds++;
      const buildAsRole = this.topic.buildAsRole;
      return buildAsRole ? await this.hub.asRole(role, (c) => buildAsRole(event, c)) : event;
    } catch (err) {
      this.hub.log.warn({ err, channel: this.topic.channel, role }, "live event could not be built for a role; its screens skip it");
      return null;
    }
  }
}

/** Screens handed one payload between two turns of the event loop. */
const DELIVERY_SLICE = 100;

/**
 * Hands a payload to its screens, a slice at a time: each push runs grafast
 * and the websocket write for that screen, so a thousand at once would keep
 * HTTP requests and database replies waiting for the whole burst.
 */
async function deliverInSlices(screens: Screen[], payload: unknown) {
  for (let i = 0; i < screens.length; i += DELIVERY_SLICE) {
    if (i > 0) await new Promise((resolve) => setImmediate(resolve));
    for (const s of screens.slice(i, i + DELIVERY_SLICE)) s.push(payload);
  }
}

/** One subscription of one screen: an async iterator over a bounded queue. */
class Screen implements AsyncIterableIterator<unknown> {
  private readonly queue: unknown[] = [];
  private waiting: ((r: IteratorResult<unknown>) => void) | undefined;
  private done = false;
  readonly role: string;
  private readonly onDone: (s: Screen) => void;
  private readonly onOverflow: (s: Screen) => void;

  constructor(role: string, onDone: (s: Screen) => void, onOverflow: (s: Screen) => void) {
    this.role = role;
    this.onDone = onDone;
    this.onOverflow = onOverflow;
  }

  push(value: unknown) {
    if (this.done) return;
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = undefined;
      waiting({ value, done: false });
    } else if (this.queue.length >= MAX_QUEUED_EVENTS) {
      this.onOverflow(this);
      this.end();
    } else {
      this.queue.push(value);
    }
  }

  end() {
    if (this.done) return;
    this.done = true;
    this.queue.length = 0;
    this.onDone(this);
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<unknown>> {
    if (this.queue.length > 0) return Promise.resolve({ value: this.queue.shift(), done: false });
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  return(): Promise<IteratorResult<unknown>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(): Promise<IteratorResult<unknown>> {
    return this.return();
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

/**
 * The plan of a Subscription field: the topic's events as this screen's role
 * sees them. The field's payload plans read the (plain JSON) payload with get().
 */
export function liveEvents(topic: LiveTopic): Step {
  const $screen = lambda([context().get("live"), context().get("pgSettings")], ([hub, settings]): GrafastSubscriber => {
    if (!hub) throw new SafeError("Live updates are not available on this server", { code: "SF503" });
    return { subscribe: () => hub.subscribe(topic, settings) as Promise<AsyncIterableIterator<any>> };
  });
  return listen($screen, topic.channel);
}

/** A Subscription field's plans: subscribe to the topic, and the event is the payload. */
export function liveField(topic: LiveTopic) {
  return {
    subscribePlan: () => liveEvents(topic),
    plan: ($event: Step) => $event,
  };
}

const limited = new WeakSet<WebSocket>();

/**
 * Bounds what a websocket may hold unsent. grafserv waits for each send to
 * reach the kernel before taking the next result, so a screen that stops
 * reading would pile results up in grafast's per-subscription queue, out of
 * sight and unbounded. Here a send returns at once: the backlog sits in the
 * socket's own buffer (bufferedAmount), and beyond `limitBytes` the socket is
 * terminated; its subscriptions end with it.
 */
export function limitSendBuffer(socket: WebSocket, limitBytes: number, log: Logger) {
  if (limited.has(socket)) return;
  limited.add(socket);
  const send = socket.send.bind(socket) as (data: unknown, options: object, cb: (err?: Error) => void) => void;
  const patched = (data: unknown, optionsOrCb?: unknown, maybeCb?: unknown) => {
    const cb = (typeof optionsOrCb === "function" ? optionsOrCb : maybeCb) as ((err?: Error) => void) | undefined;
    const options = typeof optionsOrCb === "object" && optionsOrCb !== null ? optionsOrCb : {};
    if (socket.readyState !== socket.OPEN) return cb?.();
    const bufferedBytes = socket.bufferedAmount;
    if (bufferedBytes > limitBytes) {
      dropScreen(socket, bufferedBytes, limitBytes, log);
      return cb?.();
    }
    send(data, options, (err) => {
      if (err) log.debug({ err }, "websocket send failed");
    });
    cb?.();
  };
  socket.send = patched as typeof socket.send;
}

function dropScreen(socket: WebSocket, bufferedBytes: number, limitBytes: number, log: Logger) {
  const raw = (socket as unknown as { _socket?: { remoteAddress?: string; remotePort?: number } })._socket;
  const remote = raw?.remoteAddress ? `${raw.remoteAddress}:${raw.remotePort}` : undefined;
  liveCounters.screensDropped++;
  log.warn({ component: "live", remote, bufferedBytes, limitBytes }, "live screen dropped: it stopped reading and its send buffer is full");
  liveEmitter.emit("screenDropped", { bufferedBytes, limitBytes, remote });
  socket.terminate();
}

const documentIds = new WeakMap<object, number>();
let nextDocumentId = 1;

/**
 * Screens of one role holding the same subscription (same parsed document,
 * operation name and variables) share one grafast execution: each event runs
 * the selection once, and its result goes to every such screen. Payloads are
 * built per role (LiveTopic), so a subscription's payload plans must read only
 * the payload, never per-user data.
 */
export const LiveSharingPlugin: GraphileConfig.Plugin = {
  name: "LiveSharingPlugin",
  version: "1.0.0",
  grafast: {
    middleware: {
      subscribe(next, event) {
        const { document, operationName, variableValues, contextValue } = event.args;
        const ctx = contextValue as Grafast.Context | undefined;
        const role = ctx?.pgSettings?.role;
        if (!ctx?.live || !role || !document) return next();
        let doc = documentIds.get(document);
        if (doc === undefined) documentIds.set(document, (doc = nextDocumentId++));
        const key = JSON.stringify([role, doc, operationName ?? null, variableValues ?? null]);
        return ctx.live.share(key, role, () => next()) as ReturnType<typeof next>;
      },
    },
  },
};


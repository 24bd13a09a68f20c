// The console's only way to the server: the public GraphQL API over HTTP and
// its subscriptions over the graphql-transport-ws websocket protocol.
import { createClient } from "graphql-ws";

export class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

const TOKEN_KEY = "shopfloor.token";

/** The signed-in user, from the token's claims (the server checks them; this only shapes the screens). */
export function readSession() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return undefined;
  try {
    const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    if (claims.exp && claims.exp * 1000 < Date.now()) throw new Error("expired");
    return { token, role: String(claims.role).replace(/^shopfloor_/, ""), username: String(claims.username) };
  } catch {
    sessionStorage.removeItem(TOKEN_KEY);
    return undefined;
  }
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** What each role may press; the database refuses the rest with SF403 anyway. */
export function can(role, action) {
  const staff = ["operator", "supervisor", "planner", "admin"];
  const rules = {
    acknowledge: staff,
    deleteReady: staff,
    plan: ["planner", "admin"],
    carryover: ["supervisor", "admin"],
  };
  return (rules[action] ?? []).includes(role);
}

let onUnauthorized = () => {};
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

/** One GraphQL request; throws ApiError with the server's own words (SF codes). */
export async function gql(query, variables = {}) {
  const session = readSession();
  let res;
  try {
    res = await fetch("/graphql", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json",
        ...(session ? { authorization: `Bearer ${session.token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError("Cannot reach the server. Check the network; the console retries when you try again.", "NETWORK");
  }
  let body;
  try {
    body = await res.json();
  } catch {
    throw new ApiError(`The server answered ${res.status} ${res.statusText} without a readable body.`, `HTTP${res.status}`);
  }
  const error = body.errors?.[0];
  if (error) {
    const code = error.extensions?.code;
    if (code === "SF401" && session) onUnauthorized(error.message);
    throw new ApiError(error.message, code);
  }
  return body.data;
}

/**
 * The live connection: reconnects by itself (backoff capped at 10 s) and
 * reports "connecting", "live" or "lost" so the screens can show it.
 */
export function connectLive(token, onState) {
  return createClient({
    url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
    connectionParams: { authorization: `Bearer ${token}` },
    lazy: false,
    keepAlive: 10_000,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** retries, 10_000))),
    on: {
      connecting: () => onState("connecting"),
      connected: () => onState("live"),
      closed: () => onState("lost"),
    },
  });
}

// Shared pieces of the screens: htm bound to Preact, loading a query that
// re-runs on live events and on every reconnect, errors in plain words.
import { h, createContext } from "preact";
import { useCallback, useContext, useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";

export const html = htm.bind(h);

/** { client, epoch, role, username }: epoch grows on every (re)connection. */
export const Live = createContext(undefined);

/** Runs `load` now, when `deps` change, on each reconnection and when `subscription` fires. */
export function useLoad(load, deps, subscription) {
  const live = useContext(Live);
  const [state, setState] = useState({ loading: true });
  const current = useRef(0);
  const reload = useCallback(async () => {
    const n = ++current.current;
    try {
      const data = await load();
      if (n === current.current) setState({ data, at: new Date() });
    } catch (error) {
      if (n === current.current) setState((s) => ({ ...s, error, loading: false }));
    }
  }, deps);
  useEffect(() => {
    reload();
  }, [reload, live.epoch]);
  useEffect(() => {
    if (!subscription) return undefined;
    return live.client.subscribe({ query: subscription }, { next: () => reload(), error: () => {}, complete: () => {} });
  }, [reload, live.client, subscription]);
  return { ...state, reload };
}

export function ErrorNote({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message}${error.code ? html` <span class="code">(${error.code})</span>` : ""}</p>`;
}

/** An action button's click: runs `fn`, shows its error, disables the button while it runs. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(undefined);
  const run = async (fn) => {
    setBusy(true);
    setError(undefined);
    try {
      return await fn();
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}

export const time = (t) => (t ? new Date(t).toLocaleString([], { dateStyle: "short", timeStyle: "medium", hourCycle: "h23" }) : "—");
export const clock = (t) => (t ? new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }) : "—");

export function Updated({ at }) {
  return at ? html`<span class="updated">Updated ${at.toLocaleTimeString([], { hourCycle: "h23" })}</span>` : null;
}

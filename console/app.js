// The console's shell: login, navigation by role, the live connection, and
// the supervisor's carryover decision.
import { render } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { can, connectLive, forgetToken, gql, readSession, saveToken, whenUnauthorized } from "./api.js";
import { ErrorNote, html, Live, useAction } from "./ui.js";
import { Allocated } from "./allocated.js";
import { Messages } from "./messages.js";
import { Ready } from "./ready.js";
import { Planning } from "./planning.js";
import { JobStatus } from "./jobs.js";
import { Carryover } from "./carryover.js";

const SCREENS = [
  { id: "allocated", name: "Allocated", view: Allocated },
  { id: "messages", name: "Messages", view: Messages },
  { id: "ready", name: "Ready", view: Ready },
  { id: "planning", name: "Planning", view: Planning },
  { id: "jobs", name: "Job status", view: JobStatus },
];

function Login({ onLogin, notice }) {
  const { busy, error, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    run(async () => {
      const data = await gql(`mutation Login($username: String!, $password: String!) {
        login(input: { username: $username, password: $password }) { token } }`,
        { username: form.get("username"), password: form.get("password") });
      if (!data.login.token) throw new Error("Wrong username or password.");
      saveToken(data.login.token);
      onLogin(readSession());
    });
  };
  return html`<main class="login">
    <h1>Shopfloor</h1>
    <form onSubmit=${submit} aria-label="Sign in">
      <label for="username">Username</label>
      <input id="username" name="username" autocomplete="username" required autofocus />
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required />
      <button type="submit" disabled=${busy}>Sign in</button>
      ${notice && html`<p class="notice" role="status">${notice}</p>`}
      <${ErrorNote} error=${error} />
    </form>
  </main>`;
}

const screenFromHash = () => SCREENS.find((s) => `#/${s.id}` === location.hash) ?? SCREENS[0];

function Shell({ session, onLogout }) {
  const [screen, setScreen] = useState(screenFromHash);
  const [link, setLink] = useState("connecting");
  const [epoch, setEpoch] = useState(0);
  const client = useMemo(
    () => connectLive(session.token, (state) => {
      setLink(state);
      if (state === "live") setEpoch((n) => n + 1);
    }),
    [session.token],
  );
  useEffect(() => () => client.dispose(), [client]);
  useEffect(() => {
    const onHash = () => setScreen(screenFromHash());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  const live = { client, epoch, role: session.role, username: session.username };
  const View = screen.view;
  return html`<${Live.Provider} value=${live}>
    <header>
      <span class="brand">Shopfloor</span>
      <nav aria-label="Screens">
        ${SCREENS.map((s) => html`<a href=${`#/${s.id}`} aria-current=${s === screen ? "page" : undefined}>${s.name}</a>`)}
      </nav>
      <span class="link ${link}" role="status" aria-live="polite">
        ${link === "live" ? "Live" : link === "lost" ? "Connection lost — reconnecting…" : "Connecting…"}
      </span>
      <span class="who">${session.username} (${session.role})</span>
      <button type="button" class="secondary" onClick=${onLogout}>Sign out</button>
    </header>
    <main id="screen" aria-label=${screen.name}>
      <h1>${screen.name}</h1>
      <${View} />
    </main>
    ${can(session.role, "carryover") && html`<${Carryover} />`}
  <//>`;
}

function App() {
  const [session, setSession] = useState(readSession);
  const [notice, setNotice] = useState(undefined);
  useEffect(() => {
    whenUnauthorized((message) => {
      forgetToken();
      setNotice(`Signed out: ${message}`);
      setSession(undefined);
    });
  }, []);
  if (!session) return html`<${Login} notice=${notice} onLogin=${(s) => { setNotice(undefined); setSession(s); }} />`;
  return html`<${Shell} key=${session.token} session=${session} onLogout=${() => { forgetToken(); setSession(undefined); }} />`;
}

const root = document.getElementById("app");
root.textContent = ""; // the loading note goes; render() does not replace what it did not make
render(html`<${App} />`, root);

// Ready: the files staged in each machine's ready folder. Deleting the
// selected files of a machine is one call (one release for all of them);
// the worker removes them from disk and the list follows.
import { can, gql } from "./api.js";
import { useContext, useEffect, useState } from "preact/hooks";
import { ErrorNote, html, Live, time, Updated, useAction, useLoad } from "./ui.js";

const QUERY = `{ allReadyPageFiles(first: 1000) { nodes { machine fileName jobKey size mtime seenAt } } }`;
const REFRESH_MS = 3000;
const LIVE = "subscription { allocatedMaterialChanged { op } }"; // a delete releases the jobs' reservations
const DELETE = `mutation Delete($machine: String!, $names: [String]!) {
  nestingDeleteReadyFiles(input: { machine: $machine, names: $names }) { result } }`;

function Machine({ name, files, onDone }) {
  const { role } = useContext(Live);
  const [chosen, setChosen] = useState(() => new Set());
  const action = useAction();
  const [done, setDone] = useState(undefined);
  const toggle = (file) => {
    const next = new Set(chosen);
    next.has(file) ? next.delete(file) : next.add(file);
    setChosen(next);
  };
  const remove = () => action.run(async () => {
    const names = files.map((f) => f.fileName).filter((f) => chosen.has(f));
    const data = await gql(DELETE, { machine: name, names });
    const released = data.nestingDeleteReadyFiles.result?.released ?? [];
    setDone(`Deleting ${names.length} file(s); ${released.length} job(s) released.`);
    setChosen(new Set());
    await onDone();
  });
  const mayDelete = can(role, "deleteReady");
  return html`<section class="machine" aria-label=${`Machine ${name}`}>
    <h2>${name}</h2>
    <table>
      <thead><tr>${mayDelete && html`<th><span class="sr">Select</span></th>`}<th>File</th><th>Job</th><th class="num">Size</th><th>Modified</th></tr></thead>
      <tbody>${files.map((f) => html`<tr key=${f.fileName}>
        ${mayDelete && html`<td><input type="checkbox" aria-label=${`Select ${f.fileName}`} checked=${chosen.has(f.fileName)} onChange=${() => toggle(f.fileName)} /></td>`}
        <td>${f.fileName}</td><td>${f.jobKey ?? "—"}</td><td class="num">${f.size}</td><td>${time(f.mtime)}</td>
      </tr>`)}</tbody>
    </table>
    ${mayDelete && html`<button type="button" class="danger" disabled=${action.busy || chosen.size === 0} onClick=${remove}>
      Delete selected (${chosen.size})</button>`}
    ${done && html`<p class="notice" role="status">${done}</p>`}
    <${ErrorNote} error=${action.error} />
  </section>`;
}

export function Ready() {
  const { data, error, at, reload } = useLoad(() => gql(QUERY), [], LIVE);
  // Files come and go on disk (the worker deletes, people copy): no event
  // says so, so the page also re-reads every few seconds.
  useEffect(() => {
    const timer = setInterval(reload, REFRESH_MS);
    return () => clearInterval(timer);
  }, [reload]);
  const byMachine = new Map();
  for (const f of data?.allReadyPageFiles.nodes ?? []) {
    if (!byMachine.has(f.machine)) byMachine.set(f.machine, []);
    byMachine.get(f.machine).push(f);
  }
  return html`<section>
    <p class="toolbar"><button type="button" class="secondary" onClick=${reload}>Refresh</button><${Updated} at=${at} /></p>
    <${ErrorNote} error=${error} />
    ${[...byMachine].map(([name, files]) => html`<${Machine} key=${name} name=${name} files=${files} onDone=${reload} />`)}
    ${data && byMachine.size === 0 && html`<p class="empty">No staged files.</p>`}
  </section>`;
}

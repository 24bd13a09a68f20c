// Job status: each job's operations (print, coating, kiss cut, …) and the
// history of updates behind them, re-read when jobStatusChanged fires.
import { gql } from "./api.js";
import { useState } from "preact/hooks";
import { ErrorNote, html, time, Updated, useLoad } from "./ui.js";

const JOBS = `{ allPrintJobs(first: 200, orderBy: JOB_ID_DESC) { nodes { jobId operations operationTimes updatedAt } } }`;
const HISTORY = `query History($job: String!) { allJobStatusUpdates(first: 500, orderBy: UPDATE_ID_ASC, filter: { jobId: { equalTo: $job } }) {
  nodes { updateId operation status sourceType sourceId eventAt notes } } }`;
const LIVE = "subscription { jobStatusChanged { count } }";

const shown = (v) => (v === true ? "done" : v === false ? "not done" : typeof v === "string" ? v : JSON.stringify(v));

function History({ job }) {
  const { data, error } = useLoad(() => gql(HISTORY, { job }), [job], LIVE);
  return html`<section aria-label=${`History of ${job}`}>
    <h2>History of ${job}</h2>
    <${ErrorNote} error=${error} />
    <table>
      <thead><tr><th>When</th><th>Operation</th><th>Status</th><th>From</th><th>Notes</th></tr></thead>
      <tbody>${(data?.allJobStatusUpdates.nodes ?? []).map((u) => html`<tr key=${u.updateId}>
        <td>${time(u.eventAt)}</td><td>${u.operation}</td><td>${u.status}</td><td>${u.sourceType} #${u.sourceId}</td><td>${u.notes}</td>
      </tr>`)}</tbody>
    </table>
  </section>`;
}

export function JobStatus() {
  const { data, error, at } = useLoad(() => gql(JOBS), [], LIVE);
  const [job, setJob] = useState(undefined);
  const jobs = data?.allPrintJobs.nodes ?? [];
  return html`<section class="jobstatus">
    <p class="toolbar"><${Updated} at=${at} /></p>
    <${ErrorNote} error=${error} />
    <table aria-label="Jobs">
      <thead><tr><th>Job</th><th>Operations</th><th>Updated</th><th></th></tr></thead>
      <tbody>${jobs.map((j) => html`<tr key=${j.jobId} aria-selected=${j.jobId === job}>
        <td>${j.jobId}</td>
        <td>${Object.entries(j.operations ?? {}).map(([op, v]) => html`<span class="op" title=${time(j.operationTimes?.[op])}>${op}: ${shown(v)}</span> `)}</td>
        <td>${time(j.updatedAt)}</td>
        <td><button type="button" class="secondary" onClick=${() => setJob(j.jobId)}>History</button></td>
      </tr>`)}
      ${data && jobs.length === 0 && html`<tr><td colspan="4">No jobs yet.</td></tr>`}</tbody>
    </table>
    ${job && html`<${History} job=${job} />`}
  </section>`;
}

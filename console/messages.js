// Messages: newest first with time and source; new ones arrive by
// messageAdded; acknowledging is one press.
import { can, gql } from "./api.js";
import { useContext, useState } from "preact/hooks";
import { ErrorNote, html, Live, time, Updated, useAction, useLoad } from "./ui.js";

const QUERY = `query Messages($filter: MessageFilter) { allMessages(first: 200, orderBy: CREATED_AT_DESC, filter: $filter) { totalCount nodes {
  rowId createdAt source severity title body acknowledgedAt acknowledgedBy } } }`;
const LIVE = "subscription { messageAdded { count } }";
const ACK = `mutation Ack($id: BigInt!) { acknowledgeMessage(input: { messageId: $id }) { result { rowId acknowledgedAt } } }`;

export function Messages() {
  const { role } = useContext(Live);
  const [openOnly, setOpenOnly] = useState(true);
  const { data, error, at, reload } = useLoad(() => gql(QUERY, { filter: openOnly ? { acknowledgedAt: { isNull: true } } : {} }), [openOnly], LIVE);
  const action = useAction();
  const acknowledge = (id) => action.run(async () => {
    await gql(ACK, { id });
    await reload();
  });
  const rows = data?.allMessages.nodes ?? [];
  return html`<section>
    <p class="toolbar">
      <label><input type="checkbox" checked=${openOnly} onChange=${(e) => setOpenOnly(e.currentTarget.checked)} /> Unacknowledged only</label>
      <span>${data ? `${data.allMessages.totalCount} message(s)` : ""}</span>
      <${Updated} at=${at} />
    </p>
    <${ErrorNote} error=${error ?? action.error} />
    <ul class="messages" aria-label="Messages">
      ${rows.map((m) => html`<li key=${m.rowId} class=${`severity-${m.severity}`} aria-label=${m.title}>
        <div class="meta"><time datetime=${m.createdAt}>${time(m.createdAt)}</time>
          <span class="source">${m.source}</span><span class="severity">${m.severity}</span></div>
        <div class="title">${m.title}</div>
        ${m.body && html`<pre class="body">${m.body}</pre>`}
        ${m.acknowledgedAt
          ? html`<div class="acked">Acknowledged by ${m.acknowledgedBy} at ${time(m.acknowledgedAt)}</div>`
          : can(role, "acknowledge") && html`<button type="button" disabled=${action.busy} onClick=${() => acknowledge(m.rowId)}>Acknowledge</button>`}
      </li>`)}
      ${data && rows.length === 0 && html`<li class="empty">No messages.</li>`}
    </ul>
  </section>`;
}

// Allocated: every board type with stock, reservations and locks; re-queried
// whenever allocatedMaterialChanged fires (locks, unlocks, stock syncs).
import { gql } from "./api.js";
import { ErrorNote, html, time, Updated, useLoad } from "./ui.js";

const QUERY = `{ allAllocatedMaterials(first: 500) { nodes {
  typeData materialName thicknessMm customerId stock reservedStock lockedCount pendingLockCount
  stockAvailable availableToLock syncedAt drifting } } }`;
const LIVE = "subscription { allocatedMaterialChanged { op table } }";

export function Allocated() {
  const { data, error, at } = useLoad(() => gql(QUERY), [], LIVE);
  const rows = data?.allAllocatedMaterials.nodes ?? [];
  return html`<section>
    <p class="toolbar"><${Updated} at=${at} /></p>
    <${ErrorNote} error=${error} />
    <table aria-label="Allocated material">
      <thead><tr>
        <th>Type</th><th>Material</th><th>Thickness</th><th>Customer</th><th class="num">Stock</th>
        <th class="num">Reserved</th><th class="num">Locked</th><th class="num">Lock pending</th>
        <th class="num">Available</th><th>Synced</th>
      </tr></thead>
      <tbody>
        ${rows.map((r) => html`<tr key=${r.typeData} data-type=${r.typeData} class=${r.drifting ? "drifting" : ""}>
          <td>${r.typeData}</td><td>${r.materialName}</td><td>${r.thicknessMm ?? ""}</td><td>${r.customerId ?? ""}</td>
          <td class="num">${r.stock}</td><td class="num">${r.reservedStock}</td>
          <td class="num" data-col="locked">${r.lockedCount}</td><td class="num">${r.pendingLockCount}</td>
          <td class="num">${r.stockAvailable}</td>
          <td>${time(r.syncedAt)}${r.drifting ? html` <strong>drifting</strong>` : ""}</td>
        </tr>`)}
        ${data && rows.length === 0 && html`<tr><td colspan="10">No material yet: nothing was synced from the Grundner storage.</td></tr>`}
      </tbody>
    </table>
  </section>`;
}

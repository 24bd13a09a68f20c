// Planning: the operations that may be planned (left, filtered by item and
// lot) and one machine/shift/date sequence with its timeline (right).
// Planners reorder and save; everyone else reads.
import { can, gql } from "./api.js";
import { useContext, useEffect, useState } from "preact/hooks";
import { clock, ErrorNote, html, Live, Updated, useAction, useLoad } from "./ui.js";

const SETUP = `{ plantToday planningPlannableMachines { nodes { machineId machineCode machineName } }
  allPlanningShifts(orderBy: PRIMARY_KEY_ASC) { nodes { shiftId shiftCode startTime endTime machineId } } }`;
const AVAILABLE = `query Available($machine: BigInt, $shift: BigInt, $date: Date, $item: String, $lot: String) {
  planningAvailableJobs(machine: $machine, shift: $shift, date: $date, item: $item, lot: $lot, limit: 200) {
    nodes { opId opLotNumber opQty opStatus planningWipItemByOpItemId { itemName } } } }`;
const TIMELINE = `query Timeline($machine: BigInt, $shift: BigInt, $date: Date) {
  planningSequenceTimeline(machine: $machine, shift: $shift, date: $date) { nodes {
    mpId opId opLotNumber itemName mpSequence changeoverMinutes runMinutes startsAt endsAt beyondShift } } }`;
const SAVE = `mutation Save($machine: BigInt, $shift: BigInt, $date: Date, $opIds: [BigInt]) {
  planningSaveSequence(input: { machine: $machine, shift: $shift, date: $date, opIds: $opIds }) { result { mpId } } }`;
const LIVE = "subscription { planChanged { count } }";

function Sequence({ where, onSaved }) {
  const { role } = useContext(Live);
  const mayPlan = can(role, "plan");
  const timeline = useLoad(() => gql(TIMELINE, where), [where.machine, where.shift, where.date], LIVE);
  const [draft, setDraft] = useState(undefined); // the edited order, until saved
  const [filters, setFilters] = useState({ item: "", lot: "" });
  const available = useLoad(() => gql(AVAILABLE, { ...where, item: filters.item || null, lot: filters.lot || null }),
    [where.machine, where.shift, where.date, filters.item, filters.lot], LIVE);
  const action = useAction();
  useEffect(() => setDraft(undefined), [where.machine, where.shift, where.date]);

  const saved = (timeline.data?.planningSequenceTimeline.nodes ?? []).map((r) => ({ opId: r.opId, lot: r.opLotNumber, item: r.itemName, row: r }));
  const rows = draft ?? saved;
  const inSequence = new Set(rows.map((r) => String(r.opId)));
  const edit = (next) => setDraft(next);
  const move = (i, by) => {
    const next = [...rows];
    const [row] = next.splice(i, 1);
    next.splice(i + by, 0, row);
    edit(next);
  };
  const save = () => action.run(async () => {
    await gql(SAVE, { ...where, opIds: rows.map((r) => r.opId) });
    setDraft(undefined);
    await Promise.all([timeline.reload(), available.reload()]);
    onSaved?.();
  });
  const jobs = (available.data?.planningAvailableJobs.nodes ?? []).filter((j) => !inSequence.has(String(j.opId)));
  const onFilter = (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setFilters({ item: String(form.get("item")).trim(), lot: String(form.get("lot")).trim() });
  };

  return html`<div class="planning">
    <section class="available" aria-label="Available jobs">
      <h2>Available jobs</h2>
      <form class="filters" onSubmit=${onFilter}>
        <label>Item <input name="item" /></label>
        <label>Lot <input name="lot" /></label>
        <button type="submit" class="secondary">Filter</button>
      </form>
      <${ErrorNote} error=${available.error} />
      <ul class="jobs">
        ${jobs.map((j) => html`<li key=${j.opId}>
          <span><strong>${j.opLotNumber}</strong> ${j.planningWipItemByOpItemId?.itemName} · qty ${j.opQty}${j.opStatus === 6 ? " · paused" : ""}</span>
          ${mayPlan && html`<button type="button" aria-label=${`Add ${j.opLotNumber}`}
            onClick=${() => edit([...rows, { opId: j.opId, lot: j.opLotNumber, item: j.planningWipItemByOpItemId?.itemName }])}>Add</button>`}
        </li>`)}
        ${available.data && jobs.length === 0 && html`<li class="empty">No jobs to plan.</li>`}
      </ul>
    </section>
    <section class="sequence" aria-label="Sequence">
      <h2>Sequence ${draft && html`<span class="dirty">(not saved)</span>`}</h2>
      <${ErrorNote} error=${timeline.error ?? action.error} />
      <ol>
        ${rows.map((r, i) => html`<li key=${r.opId} class=${r.row?.beyondShift ? "beyond" : ""}>
          <span class="slot">${r.row && !draft ? `${clock(r.row.startsAt)}–${clock(r.row.endsAt)}` : ""}</span>
          <span><strong>${r.lot}</strong> ${r.item}
            ${r.row && !draft && Number(r.row.changeoverMinutes) > 0 ? html` <em>changeover ${r.row.changeoverMinutes} min</em>` : ""}
            ${r.row?.beyondShift && !draft ? html` <strong>beyond the shift</strong>` : ""}</span>
          ${mayPlan && html`<span class="moves">
            <button type="button" class="secondary" aria-label=${`Move ${r.lot} up`} disabled=${i === 0} onClick=${() => move(i, -1)}>↑</button>
            <button type="button" class="secondary" aria-label=${`Move ${r.lot} down`} disabled=${i === rows.length - 1} onClick=${() => move(i, 1)}>↓</button>
            <button type="button" class="secondary" aria-label=${`Remove ${r.lot}`} onClick=${() => edit(rows.filter((_, k) => k !== i))}>✕</button>
          </span>`}
        </li>`)}
      </ol>
      ${timeline.data && rows.length === 0 && html`<p class="empty">Nothing planned.</p>`}
      ${mayPlan && html`<p class="toolbar">
        <button type="button" disabled=${!draft || action.busy} onClick=${save}>Save sequence</button>
        <button type="button" class="secondary" disabled=${!draft} onClick=${() => setDraft(undefined)}>Discard changes</button>
        <${Updated} at=${timeline.at} />
      </p>`}
    </section>
  </div>`;
}

export function Planning() {
  const setup = useLoad(() => gql(SETUP), []);
  const [where, setWhere] = useState(undefined);
  const data = setup.data;
  useEffect(() => {
    if (!data || where) return;
    const machine = data.planningPlannableMachines.nodes[0]?.machineId;
    const shift = data.allPlanningShifts.nodes.find((s) => !s.machineId || s.machineId === machine)?.shiftId;
    setWhere({ machine, shift, date: data.plantToday });
  }, [data]);
  if (!data || !where) return html`<${ErrorNote} error=${setup.error} />`;
  const shifts = data.allPlanningShifts.nodes.filter((s) => !s.machineId || s.machineId === where.machine);
  const change = (field) => (e) => setWhere({ ...where, [field]: e.currentTarget.value || undefined });
  return html`<section>
    <form class="toolbar" onSubmit=${(e) => e.preventDefault()}>
      <label>Machine <select value=${where.machine} onChange=${change("machine")}>
        ${data.planningPlannableMachines.nodes.map((m) => html`<option value=${m.machineId}>${m.machineCode} — ${m.machineName}</option>`)}
      </select></label>
      <label>Shift <select value=${where.shift} onChange=${change("shift")}>
        ${shifts.map((s) => html`<option value=${s.shiftId}>${s.shiftCode} ${s.startTime.slice(0, 5)}–${s.endTime.slice(0, 5)}</option>`)}
      </select></label>
      <label>Date <input type="date" value=${where.date} onChange=${change("date")} /></label>
    </form>
    ${where.machine && where.shift ? html`<${Sequence} where=${where} />` : html`<p class="empty">No machine or shift to plan yet.</p>`}
  </section>`;
}

// The supervisor's carryover decision at sign-in: a modal dialog that
// neither Escape nor a click outside closes, until every previous-day job
// is carried over or rejected (planning.resolve_carryover decides all at once).
import { gql } from "./api.js";
import { useEffect, useRef, useState } from "preact/hooks";
import { ErrorNote, html, useAction } from "./ui.js";

const REVIEW = `mutation { planningReviewCarryover(input: {}) { result { mpId mpOpProddate
  planningOperationByMpOpId { opLotNumber planningWipItemByOpItemId { itemName } }
  planningMachineByMpMachineId { machineCode } } } }`;
const RESOLVE = `mutation Resolve($decisions: JSON!) { planningResolveCarryover(input: { decisions: $decisions }) { clientMutationId } }`;

export function Carryover() {
  const dialog = useRef(null);
  const [rows, setRows] = useState([]);
  const [choice, setChoice] = useState({});
  const review = useAction();
  const action = useAction();
  const pending = rows.length > 0;

  useEffect(() => {
    review.run(async () => setRows((await gql(REVIEW)).planningReviewCarryover.result ?? []));
  }, []);
  useEffect(() => {
    const d = dialog.current;
    if (pending && d && !d.open) d.showModal();
    if (!pending && d?.open) d.close();
  }, [pending]);

  // The decision cannot be put off: refuse the cancel (Escape) and, should the
  // browser close it anyway, open it again.
  const onCancel = (e) => e.preventDefault();
  const onClose = () => {
    if (pending && dialog.current && !dialog.current.open) dialog.current.showModal();
  };
  const decided = rows.every((r) => choice[r.mpId]);
  const submit = (e) => {
    e.preventDefault();
    action.run(async () => {
      await gql(RESOLVE, { decisions: rows.map((r) => ({ mp_id: Number(r.mpId), decision: choice[r.mpId] })) });
      setRows([]);
    });
  };
  return html`<dialog ref=${dialog} closedby="none" aria-labelledby="carryover-title" onCancel=${onCancel} onClose=${onClose}>
    <form onSubmit=${submit}>
      <h2 id="carryover-title">Yesterday's unfinished jobs</h2>
      <p>Decide for each job: carry it over into today's plan, or reject it. The console stays here until every job is decided.</p>
      ${rows.map((r) => {
        const op = r.planningOperationByMpOpId;
        const label = `${op?.opLotNumber} — ${op?.planningWipItemByOpItemId?.itemName}`;
        return html`<fieldset key=${r.mpId} class="decision">
          <legend>${label}</legend>
          <span class="where">${r.planningMachineByMpMachineId?.machineCode}, planned ${r.mpOpProddate}</span>
          <label><input type="radio" name=${`mp-${r.mpId}`} value="carry" checked=${choice[r.mpId] === "carry"}
            onChange=${() => setChoice({ ...choice, [r.mpId]: "carry" })} /> Carry over</label>
          <label><input type="radio" name=${`mp-${r.mpId}`} value="reject" checked=${choice[r.mpId] === "reject"}
            onChange=${() => setChoice({ ...choice, [r.mpId]: "reject" })} /> Reject</label>
        </fieldset>`;
      })}
      <${ErrorNote} error=${action.error} />
      <button type="submit" disabled=${!decided || action.busy}>Apply decisions</button>
    </form>
  </dialog>
  <${ErrorNote} error=${review.error} />`;
}

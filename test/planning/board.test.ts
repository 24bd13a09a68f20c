// What the planning board reads and writes (issue 14): available_jobs a page
// at a time (a limit and the last op_id shown), and inactive machines: left
// out of the machines the board offers, refused by save_sequence and by the
// plan itself.
import test from "ava";
import type { TestDb } from "../helpers/db.ts";
import type { TestApi } from "../helpers/api.ts";
import { addDays, createOps, withPlantApi, type Plant } from "./fixture.ts";
import { rejectsWith } from "../helpers/assert.ts";

let db: TestDb;
let plant: Plant;
let T: string;
let api: TestApi;
withPlantApi(test, (made) => ({ db, plant, T, api } = made));

type Args = { item?: string | null; lot?: string | null; after?: string | null; limit?: number | null };
const available = async (date: string, a: Args = {}) =>
  (await db.asRole("shopfloor_operator", (c) =>
    c.query(`select op_id::text from planning.available_jobs($1, null, null, $2, $3, $4, $5)`,
      [date, a.item ?? null, a.lot ?? null, a.after ?? null, a.limit ?? null]))).rows.map((r) => r.op_id as string);

/** Every page of `limit` rows, each after the last op_id of the one before. */
async function allPages(date: string, a: Args, limit: number) {
  const pages: string[][] = [];
  let after: string | null = null;
  for (;;) {
    const page = await available(date, { ...a, after, limit });
    if (page.length === 0) return pages;
    pages.push(page);
    after = page[page.length - 1];
  }
}

test.serial("available_jobs pages: 200 rows at a time after the last op_id shown, together exactly the unpaged list", async (t) => {
  const item = (await db.query<{ item_id: string }>(`insert into planning.wip_items (item_name) values ('Pager part') returning item_id::text`)).rows[0].item_id;
  const ops = await createOps(db, item, 450, { lotPrefix: "PG-" });
  const d = await addDays(db, T, 3);
  // a few that must not show: complete, and planned that date; paused ones do show
  await db.query(`update planning.operations set op_status = 10 where op_id = any($1::bigint[])`, [ops.slice(10, 20)]);
  await db.query(`update planning.operations set op_status = 6 where op_id = any($1::bigint[])`, [ops.slice(20, 25)]);
  await db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[0], plant.dayShift, d, ops.slice(300, 305)]);
  const expected = ops.filter((_, i) => !(i >= 10 && i < 20) && !(i >= 300 && i < 305));

  const unpaged = await available(d, { item: "pager" });
  t.deepEqual(unpaged, expected, "without a limit: every row, as before");
  const pages = await allPages(d, { item: "pager" }, 200);
  t.deepEqual(pages.map((p) => p.length), [200, 200, expected.length - 400]);
  t.deepEqual(pages.flat(), expected, "the pages together are the list, in op_id order, nothing twice");

  // the lot filter pages the same way
  const lotPages = await allPages(d, { lot: "pg-1" }, 50);
  t.deepEqual(lotPages.flat(), await available(d, { lot: "pg-1" }));
  t.true(lotPages.length > 2);
  // no filter at all: the first page is the start of the whole list
  const everything = await available(d);
  t.deepEqual(await available(d, { limit: 200 }), everything.slice(0, 200));
  t.deepEqual(await available(d, { after: everything[everything.length - 1], limit: 200 }), [], "after the last row: an empty page");
});

test.serial("available_jobs follows the status flags, a plant's own codes included, paged or not", async (t) => {
  await db.query(`insert into planning.op_statuses (code, name, may_be_planned, is_terminal) values
    (12, 'QC Hold', false, false), (13, 'Rework', true, false), (14, 'Scrapped', false, true)`);
  const item = (await db.query<{ item_id: string }>(`insert into planning.wip_items (item_name) values ('Flag part') returning item_id::text`)).rows[0].item_id;
  const ops = await createOps(db, item, 6);
  const statuses = [1, 6, 10, 12, 13, 14];
  for (const [i, st] of statuses.entries()) await db.query(`update planning.operations set op_status = $2 where op_id = $1`, [ops[i], st]);
  const pending = [ops[0], ops[1], ops[4]]; // New, Paused, Rework
  t.deepEqual(await available(T, { item: "flag part" }), pending);
  t.deepEqual((await allPages(T, { item: "flag part" }, 2)).flat(), pending);
  t.deepEqual((await allPages(T, { lot: "LOT-" }, 1000)).flat().filter((id) => ops.includes(id)), pending);
});

test.serial("available_jobs refuses a limit below 1 with SF422; GraphQL passes limit and afterOpId", async (t) => {
  for (const limit of [0, -5]) {
    await rejectsWith(t, available(T, { limit }), "SF422", /limit must be at least 1/);
  }
  const item = (await db.query<{ item_id: string }>(`insert into planning.wip_items (item_name) values ('Graph part') returning item_id::text`)).rows[0].item_id;
  const ops = await createOps(db, item, 5, { lotPrefix: "GQ-" });
  const operator = api.tokenForRole("shopfloor_operator", "otto");
  const query = `query($d: Date!, $after: BigInt) {
    planningAvailableJobs(date: $d, item: "Graph part", limit: 2, afterOpId: $after) { nodes { opId } } }`;
  const first = await api.graphql(query, { d: T }, operator);
  t.falsy(first.errors, JSON.stringify(first.errors));
  const ids = (r: typeof first) => (r.data?.planningAvailableJobs as { nodes: { opId: string }[] }).nodes.map((n) => n.opId);
  t.deepEqual(ids(first), ops.slice(0, 2));
  const next = await api.graphql(query, { d: T, after: ops[1] }, operator);
  t.deepEqual(ids(next), ops.slice(2, 4));
});

test.serial("inactive machines: left out of plannable_machines, refused by save_sequence (SF409 naming the machine) and by the plan", async (t) => {
  const { rows: [m] } = await db.query<{ machine_id: string }>(
    `insert into planning.machines (machine_code, machine_name) values ('PRESS-9', 'Old press') returning machine_id::text`);
  const ops = await createOps(db, plant.items["Housing"], 3);
  const d = await addDays(db, T, 5);
  // planned while it was active
  await db.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [m.machine_id, plant.dayShift, d, [ops[0]]]);
  const listed = async () => (await db.asRole("shopfloor_operator", (c) =>
    c.query(`select machine_code from planning.plannable_machines()`))).rows.map((r) => r.machine_code);
  t.deepEqual(await listed(), ["M1", "M2", "M3", "PRESS-9"]);

  await db.query(`update planning.machines set active = false where machine_id = $1`, [m.machine_id]);
  t.deepEqual(await listed(), ["M1", "M2", "M3"], "an inactive machine is not offered");

  const save = (ids: string[]) => db.asRole("shopfloor_planner", (c) =>
    c.query(`select mp_op_id::text from planning.save_sequence($1, $2, $3, $4::bigint[])`, [m.machine_id, plant.dayShift, d, ids]));
  await rejectsWith(t, save([ops[0], ops[1]]), "SF409", new RegExp(`Machine PRESS-9 \\(id ${m.machine_id}\\) is inactive`));
  const kept = await db.query(`select mp_op_id::text from planning.mach_planning where mp_machine_id = $1`, [m.machine_id]);
  t.deepEqual(kept.rows.map((r) => r.mp_op_id), [ops[0]], "nothing changed");

  // the plan itself refuses a row on it, whoever writes it
  await rejectsWith(t, db.query(
    `insert into planning.mach_planning (mp_op_id, mp_machine_id, mp_shift_id, mp_op_proddate, mp_sequence, mp_op_status)
     values ($1, $2, $3, $4, 9, 1)`, [ops[2], m.machine_id, plant.nightShift, d]), "SF409", /PRESS-9/);
  // the board asking for its jobs is told too
  await rejectsWith(t, db.query(`select * from planning.available_jobs($1, $2)`, [d, m.machine_id]), "SF409");

  // its old sequence can still be cleared, and other machines are untouched
  t.deepEqual((await save([])).rows, []);
  await db.asRole("shopfloor_planner", (c) =>
    c.query(`select planning.save_sequence($1, $2, $3, $4::bigint[])`, [plant.machines[1], plant.dayShift, d, [ops[1]]]));

  // GraphQL clients get the code and the sentence
  const planner = api.tokenForRole("shopfloor_planner", "gina");
  const res = await api.graphql(`mutation($m: BigInt!, $s: BigInt!, $d: Date!, $ops: [BigInt]!) {
    planningSaveSequence(input: { machine: $m, shift: $s, date: $d, opIds: $ops }) { result { mpOpId } } }`,
    { m: m.machine_id, s: plant.dayShift, d, ops: [ops[2]] }, planner);
  t.is(res.errors?.[0]?.extensions?.code, "SF409");
  t.regex(res.errors?.[0]?.message ?? "", /PRESS-9 .* inactive/);
});

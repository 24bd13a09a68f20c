// The privilege policy, read from the catalog for every role, and the GraphQL
// surface: which mutations exist at all. A module that adds a function must
// grant it on purpose, or put it in the module's private schema when it is a
// helper; these tests fail until it does one or the other consciously.
import test from "ava";
import { withTestApi, type TestApi } from "../helpers/api.ts";
import { rejectsWith } from "../helpers/assert.ts";
import type { TestDb } from "../helpers/db.ts";

let db: TestDb;
let api: TestApi;
withTestApi(test, (made) => ({ db, api } = made));

const API_ROLES = [
  "shopfloor_anonymous",
  "shopfloor_operator",
  "shopfloor_supervisor",
  "shopfloor_planner",
  "shopfloor_integration",
  "shopfloor_admin",
];
/** Every schema of ours: all but PostgreSQL's own and the graphile tools'. */
const OUR_SCHEMAS = `n.nspname !~ '^pg_' and n.nspname not in ('information_schema', 'graphile_worker', 'graphile_migrate')`;

test("no function in our schemas is executable by PUBLIC", async (t) => {
  const { rows } = await db.query(
    `select p.oid::regprocedure::text as f from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where ${OUR_SCHEMAS} and has_function_privilege('public', p.oid, 'execute') order by 1`,
  );
  t.deepEqual(rows.map((r) => r.f), []);
});

test("no table, view or sequence of ours is readable or writable by PUBLIC", async (t) => {
  const { rows } = await db.query(
    `select c.oid::regclass::text as r from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where ${OUR_SCHEMAS} and c.relkind in ('r', 'v', 'm', 'p', 'f', 'S')
        and (has_table_privilege('public', c.oid, 'select,insert,update,delete,truncate')
             or (c.relkind = 'S' and has_sequence_privilege('public', c.oid, 'usage,select,update')))`,
  );
  t.deepEqual(rows.map((r) => r.r), []);
});

test("anonymous may execute ops.login and nothing else, and read no table", async (t) => {
  const fns = await db.query(
    `select p.oid::regprocedure::text as f from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where ${OUR_SCHEMAS} and has_function_privilege('shopfloor_anonymous', p.oid, 'execute') order by 1`,
  );
  t.deepEqual(fns.rows.map((r) => r.f), ["ops.login(text,text)"]);
  const rels = await db.query(
    `select c.oid::regclass::text as r from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where (${OUR_SCHEMAS} or n.nspname like 'graphile%') and c.relkind in ('r', 'v', 'm', 'p', 'f')
        and has_table_privilege('shopfloor_anonymous', c.oid, 'select,insert,update,delete,truncate')`,
  );
  t.deepEqual(rels.rows.map((r) => r.r), []);
  const schemas = await db.query(
    `select n.nspname from pg_namespace n
      where (${OUR_SCHEMAS}) and n.nspname <> 'public' and has_schema_privilege('shopfloor_anonymous', n.oid, 'usage') order by 1`,
  );
  t.deepEqual(schemas.rows.map((r) => r.nspname), ["ops"]);
});

test("private schemas, users and password hashes are out of reach of every API role", async (t) => {
  const { rows } = await db.query(
    `select r.rolname, n.nspname from pg_namespace n cross join pg_roles r
      where r.rolname = any($1) and (n.nspname like '%\\_private' or n.nspname like 'graphile\\_%')
        and has_schema_privilege(r.oid, n.oid, 'usage')`,
    [API_ROLES],
  );
  t.deepEqual(rows, []);
  for (const role of API_ROLES) {
    const { rows: r } = await db.query(
      `select has_table_privilege($1, 'ops_private.users', 'select') as s,
              has_column_privilege($1, 'ops_private.users', 'password_hash', 'select') as h,
              has_table_privilege($1, 'graphile_worker._private_jobs', 'select,insert,update,delete') as j`,
      [role],
    );
    t.deepEqual(r[0], { s: false, h: false, j: false }, role);
  }
  // ...and in practice: the admin role cannot read the users table either.
  await rejectsWith(t, db.asRole("shopfloor_admin", (c) => c.query("select password_hash from ops_private.users")), "42501");
});

test("every SECURITY DEFINER function of ours fixes its search_path", async (t) => {
  const { rows } = await db.query(
    `select p.oid::regprocedure::text as f from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where ${OUR_SCHEMAS} and p.prosecdef
        and not exists (select 1 from unnest(p.proconfig) c where c like 'search_path=%')`,
  );
  t.deepEqual(rows.map((r) => r.f), []);
});

test("no function in the private schemas is executable by an API role", async (t) => {
  const { rows } = await db.query(
    `select r.rolname, p.oid::regprocedure::text as f from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      cross join pg_roles r
      where r.rolname = any($1) and n.nspname like '%\\_private' and has_function_privilege(r.oid, p.oid, 'execute')`,
    [API_ROLES],
  );
  t.deepEqual(rows, []);
});

const TYPE_FIELDS = `query ($name: String!) { __type(name: $name) { fields { name } } }`;

// The intended Mutation type. Worker-only functions (the apply_* steps, enqueue,
// ensure_machine, recompute_reserved, audit) must not be here.
const MUTATIONS = [
  // ops
  "acknowledgeMessage", "acknowledgeMessages", "createUser", "disableUser", "login", "postMessage", "setSetting",
  "setUserPassword",
  // approval
  "approvalCancelJob", "approvalCompleteJob", "approvalCreateItem", "approvalCreateJob", "approvalSetOnHand",
  "approvalStartJob", "approvalApproveJob",
  // execution, pool
  "executionHandleSinglePieceStart", "executionPauseToken", "executionResumeToken", "executionCompleteToken",
  "executionCreateProductRevision", "executionCreateJobTicket", "executionCreateTokens", "poolReceive",
  // nesting
  "nestingCancelRequest", "nestingDeleteReadyFiles", "nestingLockJobs", "nestingRequestStock", "nestingReserveJob",
  "nestingStageJobs", "nestingUnlockJobs", "nestingUnreserveJob", "nestingUpsertMachine", "nestingConfirmPrune",
  "nestingPinJobType",
  // planning
  "planningCleanup", "planningResolveCarryover", "planningSaveSequence", "planningSetOperationStatus",
  "planningReviewCarryover", "planningSaveMachine", "planningRetireMachine", "planningSaveShift",
  "planningRetireShift", "planningSaveItem", "planningRetireItem", "planningSetChangeover", "planningSetHoliday",
  "planningRemoveHoliday", "planningSaveOperation", "planningRetireOperation", "planningStagePastPlan",
  // (the old names remain as deprecated aliases, which introspection lists only with includeDeprecated)
  // tracking: its functions, and the reference tables the integration role maintains
  "trackingProcessPrintOs", "trackingProcessScannedCodes", "trackingProcessStatusUpdates", "trackingRecordPrintOs",
  "trackingReparseFileIds",
  "createImpositionFile", "createImpositionOperation", "createPrintJob", "createPrintJobOperation",
  "createPrintOsRecord", "createProductionPlannerPath", "createScannedCode", "createTrackingOperation",
  "deleteImpositionFile", "deleteImpositionFileByImpositionIdAndFileId", "deleteImpositionOperation",
  "deleteImpositionOperationByImpositionOperationId", "deletePrintJob", "deletePrintJobByJobId",
  "deletePrintJobOperation", "deletePrintJobOperationByJobOperationId", "deleteProductionPlannerPath",
  "deleteProductionPlannerPathByRowId", "deleteProductionPlannerPathByRunlistIdAndImpositionId",
  "deleteTrackingOperation", "deleteTrackingOperationByName", "deleteTrackingOperationByOperationId",
  "updateImpositionFile", "updateImpositionFileByImpositionIdAndFileId", "updateImpositionOperation",
  "updateImpositionOperationByImpositionOperationId", "updatePrintJob", "updatePrintJobByJobId",
  "updatePrintJobOperation", "updatePrintJobOperationByJobOperationId", "updateProductionPlannerPath",
  "updateProductionPlannerPathByRowId", "updateProductionPlannerPathByRunlistIdAndImpositionId",
  "updateTrackingOperation", "updateTrackingOperationByName", "updateTrackingOperationByOperationId",
].sort();

async function fieldNames(type: string, token?: string): Promise<string[]> {
  const res = await api.graphql(TYPE_FIELDS, { name: type }, token);
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return (res.data!.__type.fields as { name: string }[]).map((f) => f.name).sort();
}

test("the Mutation type holds exactly the intended fields, for anonymous and operators alike", async (t) => {
  t.deepEqual(await fieldNames("Mutation", api.tokenForRole("shopfloor_operator")), MUTATIONS);
  t.deepEqual(await fieldNames("Mutation"), MUTATIONS, "introspection as anonymous shows the same schema");
});

test("a volatile function no API role may execute is hidden from the Mutation type", async (t) => {
  // A function no API role may execute must be hidden (-mutationField), or
  // GraphQL would offer a field that can only fail.
  const { rows } = await db.query(
    `select p.oid::regprocedure::text as f from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = any($1) and p.provolatile = 'v' and p.prorettype <> 'trigger'::regtype
        and p.prorettype <> 'event_trigger'::regtype
        and not exists (select 1 from pg_roles r where r.rolname = any($2) and has_function_privilege(r.oid, p.oid, 'execute'))
        and coalesce(obj_description(p.oid, 'pg_proc'), '') !~ '@behavior[^\\n]*-mutationField'
        -- functions taking a table row (computed columns) or a trigger-like internal type are not root fields
        and not exists (select 1 from unnest(p.proargtypes) a join pg_type ty on ty.oid = a where ty.typtype = 'c' and ty.typrelid <> 0)`,
    [["ops", "nesting", "approval", "execution", "pool", "tracking", "planning"], API_ROLES],
  );
  t.deepEqual(rows.map((r) => r.f), []);
});

test("worker-only helpers are not query fields either", async (t) => {
  const queries = await fieldNames("Query", api.tokenForRole("shopfloor_operator"));
  for (const hidden of ["currentActor", "settingText", "settingNumeric", "settingChecked", "audit", "enqueue"]) {
    t.false(queries.includes(hidden), hidden);
  }
  t.true(queries.includes("unreadMessageCount"));
});

test("a temp table the caller made never stands in for a SECURITY DEFINER function's own (its trigger would run as the owner)", async (t) => {
  await db.query(`insert into tracking."print OS" (name, status, marker) values ('TT-IMP', 'PRINTED', 770001)`);
  const cases = [
    ["_pos", "id bigint, imposition_id text, status text, marker bigint, event_at timestamptz, fresh boolean", "select tracking.process_print_os()"],
    ["planning_decisions", "mp_id bigint primary key, decision text not null", `select planning.resolve_carryover(null, '[{"mp_id": 999, "decision": "carry"}]')`],
  ];
  for (const [table, columns, call] of cases) {
    await rejectsWith(
      t,
      db.asRole("shopfloor_supervisor", async (c) => {
        await c.query(`create function pg_temp.whoami() returns trigger language plpgsql as $$ begin raise exception 'trigger ran as %', current_user; end $$`);
        await c.query(`create temp table ${table} (${columns})`);
        await c.query(`create trigger whoami before insert or update or delete on pg_temp.${table} for each row execute function pg_temp.whoami()`);
        await c.query(`create trigger whoami_truncate before truncate on pg_temp.${table} for each statement execute function pg_temp.whoami()`);
        await c.query(call);
      }),
      "SF403",
      new RegExp(`temp table ${table} .*another role`),
    );
  }
  const r = await db.query(`select tracking.process_print_os() as r`);
  t.is(r.rows[0].r.processed_count, 1, "the function's own run is unaffected");
});

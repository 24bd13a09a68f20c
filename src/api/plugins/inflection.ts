// Naming: one rule for GraphQL names across modules (docs/integrators.md,
// "Names"). SQL functions keep the specs' p_ argument prefixes (p_job_id), but
// GraphQL clients see clean names (jobId).
//
// The rule for root fields made from SQL functions: the module's schema, then
// the function's name, camelCase (planning.save_sequence → planningSaveSequence,
// nesting.reserve_job → nestingReserveJob); functions of `ops`, the shared
// core, have no prefix (login, postMessage). That is PostGraphile's default;
// the functions below had other names (@name tags, or a misleading SQL name)
// and get the rule's name here, with their old name kept as a deprecated alias
// so that existing clients keep working.
import type {} from "postgraphile";

/** "schema.function" → the rule's name (in SQL spelling) for functions whose
 * GraphQL name broke the rule; LEGACY_FIELDS keeps what clients used. */
const RENAMED_FUNCTIONS: Record<string, string> = {
  "nesting.reserve_job": "nesting_reserve_job",
  "nesting.unreserve_job": "nesting_unreserve_job",
  "nesting.lock_jobs": "nesting_lock_jobs",
  "nesting.unlock_jobs": "nesting_unlock_jobs",
  "nesting.request_stock": "nesting_request_stock",
  "nesting.cancel_request": "nesting_cancel_request",
  "nesting.stage_jobs": "nesting_stage_jobs",
  "nesting.delete_ready_files": "nesting_delete_ready_files",
  "nesting.upsert_machine": "nesting_upsert_machine",
  "approval.approve_job": "approval_approve_job",
  "approval.job_shortfall": "approval_job_shortfall",
  "approval.job_is_fulfillable": "approval_job_is_fulfillable",
  "execution.handle_single_piece_start": "execution_handle_single_piece_start",
  // It runs the cleanup due and lists the carryover to decide; it logs nobody in.
  "planning.supervisor_login": "planning_review_carryover",
};

/** New root field → the old one, kept as a deprecated alias. */
const LEGACY_FIELDS: Record<string, string> = {
  nestingReserveJob: "reserveJob",
  nestingUnreserveJob: "unreserveJob",
  nestingLockJobs: "lockJobs",
  nestingUnlockJobs: "unlockJobs",
  nestingRequestStock: "requestGrundnerStock",
  nestingCancelRequest: "cancelGrundnerRequest",
  nestingStageJobs: "stageJobs",
  nestingDeleteReadyFiles: "deleteReadyFiles",
  nestingUpsertMachine: "upsertNestingMachine",
  approvalApproveJob: "approveJob",
  approvalJobShortfall: "jobShortfall",
  approvalJobIsFulfillable: "jobIsFulfillable",
  executionHandleSinglePieceStart: "handleSinglePieceStart",
  planningReviewCarryover: "planningSupervisorLogin",
};

export const ShopfloorInflectionPlugin: GraphileConfig.Plugin = {
  name: "ShopfloorInflectionPlugin",
  version: "1.1.0",
  inflection: {
    replace: {
      argument(previous, _options, details) {
        const name = details.param.name;
        if (name && /^p_./.test(name)) return this.coerceToGraphQLName(this.camelCase(name.slice(2)));
        return previous!(details);
      },
      _functionName(previous, _options, details) {
        const pg = details.resource.extensions?.pg as { schemaName?: string; name?: string } | undefined;
        const renamed = pg?.schemaName && pg.name ? RENAMED_FUNCTIONS[`${pg.schemaName}.${pg.name}`] : undefined;
        return renamed ?? previous!(details);
      },
    },
  },
  schema: {
    hooks: {
      // The old names, as deprecated copies of the renamed fields; login's
      // token also under `token` (its `result` says nothing).
      GraphQLObjectType_fields(fields, build, context) {
        const { scope, Self } = context;
        if (scope.isRootQuery || scope.isRootMutation) {
          const aliases: typeof fields = {};
          for (const [name, old] of Object.entries(LEGACY_FIELDS)) {
            const field = fields[name];
            if (field && !fields[old]) aliases[old] = { ...field, deprecationReason: `Use ${name} (one naming rule: module, then action).` };
          }
          return Object.keys(aliases).length ? build.extend(fields, aliases, "ShopfloorInflectionPlugin legacy names") : fields;
        }
        if (Self.name === "LoginPayload" && fields.result && !fields.token) {
          return {
            ...fields,
            token: { ...fields.result, description: "The signed JWT: send it as Authorization: Bearer <token>." },
            result: { ...fields.result, deprecationReason: "Use token." },
          };
        }
        return fields;
      },
    },
  },
};

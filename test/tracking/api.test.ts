// Tracking through the API: the spec's REST routes (validation, tokens, roles)
// and GraphQL.
import test from "ava";
import { startTestApi, type TestApi } from "../helpers/api.ts";
import { createTestDatabase, type TestDb } from "../helpers/db.ts";

let db: TestDb;
let api: TestApi;
test.before(async () => {
  db = await createTestDatabase();
  api = await startTestApi(db);
  await db.query(`insert into tracking.jobs (job_id, version_tag) values ('4604_5889', '1')`);
  await db.query(`insert into tracking.imposition_file_mapping (imposition_id, file_id) values ('IMP-1', 'FILE_1_Labex_4604_5889_80')`);
});
test.after.always(async () => {
  await api?.stop();
  await db?.drop();
});

async function call(method: string, path: string, body?: unknown, token?: string) {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

test.serial("POST /api/print-os validates the body with field errors", async (t) => {
  const token = api.tokenForRole("shopfloor_integration");
  const bad = await call("POST", "/api/print-os", { name: "", status: "DONE", marker: -1 }, token);
  t.is(bad.status, 400);
  t.is(bad.body.code, "SF422");
  t.deepEqual(Object.keys(bad.body.fieldErrors).sort(), ["marker", "name", "status"]);
  const notJson = await call("POST", "/api/print-os", "{nope", token);
  t.is(notJson.status, 400);
});

test.serial("REST routes need a token, and the right role", async (t) => {
  const none = await call("POST", "/api/print-os", { name: "IMP-1", status: "PRINTED", marker: 1 });
  t.is(none.status, 401);
  t.is(none.body.code, "SF401");
  const forged = await call("GET", "/api/job-status/4604_5889", undefined, "not-a-token");
  t.is(forged.status, 401);
  const operator = await call("POST", "/api/print-os", { name: "IMP-1", status: "PRINTED", marker: 1 }, api.tokenForRole("shopfloor_operator"));
  t.is(operator.status, 403, "operators read; integration accounts post");
  t.is(operator.body.code, "SF403");
});

test.serial("the printer posts, processing runs, the job status shows it", async (t) => {
  const integration = api.tokenForRole("shopfloor_integration", "printer");
  const posted = await call(
    "POST",
    "/api/print-os",
    { name: "IMP-1", status: "printed", marker: 12345, job_complete_time: "2026-11-20T10:30:00Z", copies: 500, payload: { press: "HP" } },
    integration,
  );
  t.is(posted.status, 201);
  t.is(posted.body.status, "PRINTED");
  const dup = await call("POST", "/api/print-os", { name: "IMP-1", status: "PRINTED", marker: 12345 }, integration);
  t.is(dup.status, 409);
  t.is(dup.body.code, "SF409");

  const processed = await call("POST", "/api/process-print-os", { force: false }, integration);
  t.is(processed.status, 200);
  // The worker is not running here, so this call does the work.
  t.deepEqual(processed.body, { processed_count: 1, retried_count: 0, jobs_updated: 1, last_marker: 12345 });

  const both = await call("POST", "/api/process-status-updates", { source: "both" }, api.tokenForRole("shopfloor_supervisor"));
  t.deepEqual(both.body, { print_os_processed: 0, scanner_processed: 0, jobs_updated: 0 });
  const badSource = await call("POST", "/api/process-status-updates", { source: "fax" }, integration);
  t.is(badSource.status, 400);
  t.truthy(badSource.body.fieldErrors.source);

  const status = await call("GET", "/api/job-status/4604_5889", undefined, api.tokenForRole("shopfloor_operator"));
  t.is(status.status, 200);
  t.is(status.body.job_id, "4604_5889");
  t.is(status.body.current_status.print, true);
  t.is(status.body.update_history.length, 1);
  t.like(status.body.update_history[0], { operation_type: "print", status: "completed", source_type: "print_os" });
  const missing = await call("GET", "/api/job-status/nope", undefined, api.tokenForRole("shopfloor_operator"));
  t.is(missing.status, 404);
  t.is(missing.body.code, "SF404");
});

test.serial("GraphQL: job status, jobs and issues", async (t) => {
  const token = api.tokenForRole("shopfloor_operator");
  const r = await api.graphql(
    `query { trackingJobStatus(jobId: "4604_5889") allPrintJobs { nodes { jobId operations } } allTrackingIssues { totalCount } trackingParseFileId(fileId: "FILE_2_Labex_1_2_3") { version jobId } }`,
    {},
    token,
  );
  t.falsy(r.errors, JSON.stringify(r.errors));
  t.is(r.data!.trackingJobStatus.current_status.print, true);
  t.deepEqual(r.data!.allPrintJobs.nodes, [{ jobId: "4604_5889", operations: { print: true } }]);
  t.is(r.data!.allTrackingIssues.totalCount, 0);
  t.deepEqual(r.data!.trackingParseFileId, { version: "2", jobId: "1_2" });
  const m = await api.graphql(
    `mutation { trackingProcessStatusUpdates(input: { source: "scanner" }) { result } }`,
    {},
    api.tokenForRole("shopfloor_supervisor"),
  );
  t.falsy(m.errors, JSON.stringify(m.errors));
  t.is(m.data!.trackingProcessStatusUpdates.result.scanner_processed, 0);
});

test.serial("REST processing routes: body errors, and operators may not run processing", async (t) => {
  const supervisor = api.tokenForRole("shopfloor_supervisor");
  const badForce = await call("POST", "/api/process-print-os", { force: "yes" }, supervisor);
  t.is(badForce.status, 400);
  t.truthy(badForce.body.fieldErrors.force);
  const operator = api.tokenForRole("shopfloor_operator");
  const denied = await call("POST", "/api/process-status-updates", { source: "both" }, operator);
  t.is(denied.status, 403);
  t.is(denied.body.code, "SF403");
  const deniedPrint = await call("POST", "/api/process-print-os", {}, operator);
  t.is(deniedPrint.status, 403);
  const noToken = await call("POST", "/api/process-status-updates", {});
  t.is(noToken.status, 401);
  const badPost = await call("POST", "/api/print-os", { name: "IMP-1", status: "PRINTED", marker: 7, copies: -3, job_complete_time: "yesterday" }, api.tokenForRole("shopfloor_integration"));
  t.is(badPost.status, 400);
  t.deepEqual(Object.keys(badPost.body.fieldErrors).sort(), ["copies", "job_complete_time"]);
});

test.serial("GraphQL: a feed creates print OS records; processed_at is not an input; processing marks it", async (t) => {
  const integration = api.tokenForRole("shopfloor_integration", "printer");
  const bad = await api.graphql(
    `mutation { createPrintOsRecord(input: { printOsRecord: { name: "IMP-1", status: "PRINTED", marker: "777", processedAt: "2026-11-20T00:00:00Z" } }) { printOsRecord { id } } }`,
    {},
    integration,
  );
  t.truthy(bad.errors, "processedAt is not part of the input");
  const ok = await api.graphql(
    `mutation { createPrintOsRecord(input: { printOsRecord: { name: "IMP-1", status: "PRINTED", marker: "777" } }) { printOsRecord { marker processedAt } } }`,
    {},
    integration,
  );
  t.falsy(ok.errors, JSON.stringify(ok.errors));
  t.deepEqual(ok.data!.createPrintOsRecord.printOsRecord, { marker: "777", processedAt: null });
  const run = await api.graphql(`mutation { trackingProcessPrintOs(input: {}) { result } }`, {}, api.tokenForRole("shopfloor_supervisor"));
  t.falsy(run.errors, JSON.stringify(run.errors));
  t.is(run.data!.trackingProcessPrintOs.result.processed_count, 1);
  const denied = await api.graphql(`mutation { trackingProcessPrintOs(input: {}) { result } }`, {}, api.tokenForRole("shopfloor_operator"));
  t.truthy(denied.errors, "operators read only");
  const read = await api.graphql(`query { allPrintOsRecords(condition: { marker: "777" }) { nodes { processedAt } } }`, {}, api.tokenForRole("shopfloor_operator"));
  t.falsy(read.errors, JSON.stringify(read.errors));
  t.truthy(read.data!.allPrintOsRecords.nodes[0].processedAt);
});

test.serial("GraphQL: planners and feeds create and rename jobs; a job's operations and their times are processing's alone", async (t) => {
  const planner = api.tokenForRole("shopfloor_planner");
  const made = await api.graphql(
    `mutation { createPrintJob(input: { printJob: { jobId: "gq_1", versionTag: "v1" } }) { printJob { jobId operations operationTimes } } }`,
    {},
    planner,
  );
  t.falsy(made.errors, JSON.stringify(made.errors));
  t.deepEqual(made.data!.createPrintJob.printJob, { jobId: "gq_1", operations: {}, operationTimes: {} });
  for (const field of [`operations: "{\\"print\\": \\"partial\\"}"`, `operationTimes: "{\\"coating\\": true}"`]) {
    const bad = await api.graphql(`mutation { createPrintJob(input: { printJob: { jobId: "gq_2", ${field} } }) { printJob { jobId } } }`, {}, planner);
    t.truthy(bad.errors, `${field} is not part of the input`);
    const patch = await api.graphql(`mutation { updatePrintJobByJobId(input: { jobId: "gq_1", printJobPatch: { ${field} } }) { printJob { jobId } } }`, {}, planner);
    t.truthy(patch.errors, `${field} is not part of the patch`);
  }
  const renamed = await api.graphql(`mutation { updatePrintJobByJobId(input: { jobId: "gq_1", printJobPatch: { versionTag: "v2" } }) { printJob { versionTag } } }`, {}, planner);
  t.falsy(renamed.errors, JSON.stringify(renamed.errors));
  // Below the API too: the roles have no privilege on those columns.
  await t.throwsAsync(
    db.asRole("shopfloor_integration", (c) => c.query(`update tracking.jobs set operation_times = '{"coating": true}' where job_id = 'gq_1'`)),
    { message: /permission denied/ },
  );
  const scanned = await db.query(`insert into tracking.scanned_codes (code_text, operations) values ('gq_1', '["coating"]') returning scan_id`);
  await db.query(`select tracking.process_scanned_codes()`);
  const job = await db.query(`select operations from tracking.jobs where job_id = 'gq_1'`);
  t.deepEqual(job.rows[0].operations, { coating: true }, `scan ${scanned.rows[0].scan_id} applied`);
});

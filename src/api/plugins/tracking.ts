// Live job status: Subscription.jobStatusChanged fires once per statement that
// changes a job's operations (tracking.jobs) or an operation's status
// (tracking.job_operations); the NOTIFY comes from sql/tracking.sql ("live
// events"). The payload is the notification itself, shared by every screen of
// the roles that may read tracking.jobs (src/api/live.ts).
import { extendSchema, gql } from "postgraphile/utils";
import { liveField, type LiveTopic } from "../live.ts";

const JOB_STATUS_CHANGED_TOPIC = "tracking_job_status_changed";

const jobStatusChangedTopic: LiveTopic<{ table: string; op: string; count: number; jobIds: string[] }> = {
  channel: JOB_STATUS_CHANGED_TOPIC,
  readable: "tracking.jobs",
};

export const TrackingSubscriptionPlugin = extendSchema(() => ({
  typeDefs: gql`
    type JobStatusChangedPayload {
      "jobs (a job's operations changed) or job_operations (an operation's status, completion or notes changed)."
      table: String!
      "insert, update or delete."
      op: String!
      "How many jobs the statement changed."
      count: Int!
      "Their job ids, in order: the first 100 (fewer when the ids are long); re-query the rest."
      jobIds: [String!]!
    }
    extend type Subscription {
      "Fires once per statement that changes job status (print OS and scanner processing, or edits): re-query those jobs."
      jobStatusChanged: JobStatusChangedPayload
    }
  `,
  objects: {
    Subscription: {
      plans: {
        jobStatusChanged: liveField(jobStatusChangedTopic),
      },
    },
  },
}));

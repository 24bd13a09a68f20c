// Live plan: Subscription.planChanged fires once per statement that changes
// planning.mach_planning (saveSequence, carryover, status changes, edits); the
// NOTIFY comes from sql/planning.sql ("live events"). The payload is the
// notification itself, shared by every screen of the roles that may read the
// plan (src/api/live.ts): operators and above, not integration accounts.
import { extendSchema, gql } from "postgraphile/utils";
import { liveField, type LiveTopic } from "../live.ts";

const PLAN_CHANGED_TOPIC = "planning_plan_changed";

const planChangedTopic: LiveTopic<{ op: string; count: number; machineIds: string[]; dates: string[] }> = {
  channel: PLAN_CHANGED_TOPIC,
  readable: "planning.mach_planning",
};

export const PlanningSubscriptionPlugin = extendSchema(() => ({
  typeDefs: gql`
    type PlanChangedPayload {
      "insert, update or delete."
      op: String!
      "How many plan rows the statement changed."
      count: Int!
      "The machines of those rows, before and after the change (at most 100)."
      machineIds: [BigInt!]!
      "Their production dates, before and after the change (at most 100)."
      dates: [Date!]!
    }
    extend type Subscription {
      "Fires once per statement that changes the plan: re-query the plan of those machines and dates."
      planChanged: PlanChangedPayload
    }
  `,
  objects: {
    Subscription: {
      plans: {
        planChanged: liveField(planChangedTopic),
      },
    },
  },
}));

// Live allocation grid: Subscription.allocatedMaterialChanged fires once per
// statement that changes reservations, locks, materials or stock (the NOTIFY
// sent by nesting's statement triggers). Clients re-query the grid on it.
// The payload is the notification itself, shared by every screen (src/api/live.ts).
import { extendSchema, gql } from "postgraphile/utils";
import { liveField, type LiveTopic } from "../live.ts";

const ALLOCATED_MATERIAL_TOPIC = "allocated_material_changed";

const allocatedMaterialTopic: LiveTopic<{ table: string; op: string }> = {
  channel: ALLOCATED_MATERIAL_TOPIC,
  readable: "nesting.allocated_material_view",
};

export const NestingSubscriptionPlugin = extendSchema(() => ({
  typeDefs: gql`
    type AllocatedMaterialChangedPayload {
      "The table whose change caused the event: jobs or grundner."
      table: String!
      "insert, update or delete."
      op: String!
    }
    extend type Subscription {
      "Fires when reservations, locks, materials or Grundner stock change: re-query allocatedMaterials."
      allocatedMaterialChanged: AllocatedMaterialChangedPayload
    }
  `,
  objects: {
    Subscription: {
      plans: {
        allocatedMaterialChanged: liveField(allocatedMaterialTopic),
      },
    },
  },
}));

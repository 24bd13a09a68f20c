// Live allocation grid: Subscription.allocatedMaterialChanged fires once per
// statement that changes reservations, locks, materials or stock (the NOTIFY
// sent by nesting's statement triggers). Clients re-query the grid on it.
import { context, get, lambda, listen, type Step } from "postgraphile/grafast";
import { jsonParse } from "postgraphile/@dataplan/json";
import { extendSchema, gql } from "postgraphile/utils";
import { requireLogin } from "./messages.ts";

export const ALLOCATED_MATERIAL_TOPIC = "allocated_material_changed";

type ChangedEvent = { table: string; op: string };

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
        allocatedMaterialChanged: {
          subscribePlan() {
            const $topic = lambda(context().get("pgSettings"), (s) => requireLogin(s, ALLOCATED_MATERIAL_TOPIC));
            return listen(context().get("pgSubscriber"), $topic, jsonParse);
          },
          plan($event) {
            return $event;
          },
        },
      },
    },
    AllocatedMaterialChangedPayload: {
      plans: {
        table($event) {
          return get($event as Step<ChangedEvent>, "table");
        },
        op($event) {
          return get($event as Step<ChangedEvent>, "op");
        },
      },
    },
  },
}));

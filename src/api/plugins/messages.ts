// Live operator messages: Subscription.messageAdded, fed by the NOTIFY that
// ops.messages' statement trigger sends (one per insert statement).
import { context, each, get, lambda, listen, SafeError, type Step } from "postgraphile/grafast";

type MessageAddedEvent = { count: number; ids: string[] };
import { jsonParse } from "postgraphile/@dataplan/json";
import { extendSchema, gql } from "postgraphile/utils";
import { ANONYMOUS_ROLE } from "../../auth/jwt.ts";

export const MESSAGE_ADDED_TOPIC = "ops_message_added";

/** The topic, for a logged-in subscriber; anonymous subscribers are refused. */
export function requireLogin(pgSettings: Record<string, string | undefined> | null, topic: string) {
  if (!pgSettings || !pgSettings.role || pgSettings.role === ANONYMOUS_ROLE) {
    throw new SafeError("Log in to receive live updates", { code: "SF401" });
  }
  return topic;
}

export const MessagesSubscriptionPlugin = extendSchema((build) => {
  const messages = build.input.pgRegistry.pgResources.messages;
  if (!messages) throw new Error("MessagesSubscriptionPlugin: the ops.messages resource is missing");
  return {
    typeDefs: gql`
      type MessageAddedPayload {
        "How many messages the statement added."
        count: Int!
        "The messages added (the first 100 when a statement added more)."
        messages: [Message!]!
      }
      extend type Subscription {
        "Fires whenever messages are added to the operators' Messages page."
        messageAdded: MessageAddedPayload
      }
    `,
    objects: {
      Subscription: {
        plans: {
          messageAdded: {
            subscribePlan() {
              const $topic = lambda(context().get("pgSettings"), (s) => requireLogin(s, MESSAGE_ADDED_TOPIC));
              return listen(context().get("pgSubscriber"), $topic, jsonParse);
            },
            plan($event) {
              return $event;
            },
          },
        },
      },
      MessageAddedPayload: {
        plans: {
          count($event) {
            return get($event as Step<MessageAddedEvent>, "count");
          },
          messages($event) {
            const $ids = get($event as Step<MessageAddedEvent>, "ids");
            return each($ids, ($id) => messages.get({ id: $id }));
          },
        },
      },
    },
  };
});

// Live operator messages: Subscription.messageAdded, fed by the NOTIFY that
// ops.messages' statement trigger sends (one per insert statement). The
// messages are loaded once per event and role (src/api/live.ts), not once per
// screen, so they come as LiveMessage: Message's fields, from the shared payload.
import type pg from "pg";
import { get, lambda, object, type Step } from "postgraphile/grafast";
import { extendSchema, gql } from "postgraphile/utils";
import { liveField, type LiveTopic } from "../live.ts";

const MESSAGE_ADDED_TOPIC = "ops_message_added";

type MessageAddedEvent = { count: number; ids: string[] };
type MessageAddedPayload = { count: number; messages: Record<string, unknown>[] };

// PostGraphile's own formats: bigint as text, timestamps as its Datetime.
const DATETIME = `'YYYY-MM-DD"T"HH24:MI:SS.USTZH:TZM'`;
const LOAD_MESSAGES = `
  select id::text as "rowId", to_char(created_at, ${DATETIME}) as "createdAt", source, severity, title, body, related,
         to_char(acknowledged_at, ${DATETIME}) as "acknowledgedAt", acknowledged_by as "acknowledgedBy",
         to_char(logged_at, ${DATETIME}) as "loggedAt"
    from ops.messages
   where id = any($1::bigint[])
   order by id`;

const messageAddedTopic: LiveTopic<MessageAddedEvent, MessageAddedPayload> = {
  channel: MESSAGE_ADDED_TOPIC,
  readable: "ops.messages",
  async buildAsRole(event, client: pg.PoolClient) {
    const { rows } = await client.query(LOAD_MESSAGES, [event.ids ?? []]);
    return { count: event.count, messages: rows };
  },
};

export const MessagesSubscriptionPlugin = extendSchema((build) => ({
  typeDefs: gql`
    type MessageAddedPayload {
      "How many messages the statement added."
      count: Int!
      "The messages added (the first 100 when a statement added more)."
      messages: [LiveMessage!]!
    }
    "A message as live screens receive it: the fields of Message."
    type LiveMessage {
      "The same global id as the Message."
      id: ID!
      rowId: BigInt!
      createdAt: Datetime!
      source: String!
      severity: String!
      title: String!
      body: String!
      related: JSON!
      acknowledgedAt: Datetime
      acknowledgedBy: String
      loggedAt: Datetime
    }
    extend type Subscription {
      "Fires whenever messages are added to the operators' Messages page."
      messageAdded: MessageAddedPayload
    }
  `,
  objects: {
    Subscription: {
      plans: {
        messageAdded: liveField(messageAddedTopic),
      },
    },
    LiveMessage: {
      plans: {
        id($message) {
          // Encoded as PostGraphile encodes Message's id, so client caches match them.
          const handler = build.getNodeIdHandler!("Message")!;
          const $spec = handler.plan(object({ id: get($message as Step<Record<string, unknown>>, "rowId") }));
          return lambda($spec, (spec) => handler.codec.encode(spec));
        },
      },
    },
  },
}));

// Mutation.login: ops.login checks the password, counts and audits failures
// and returns its verdict without raising, so that what it recorded is
// committed; this plugin then signs the token, or turns the refusal into an
// error (SF401, or SF429 with the time to retry).
import { sideEffectWithPgClient } from "postgraphile/@dataplan/pg";
import { get, lambda, object, SafeError } from "postgraphile/grafast";
import { extendSchema, gql } from "postgraphile/utils";
import { signToken, type TokenClaims } from "../../auth/jwt.ts";

interface Verdict {
  token?: TokenClaims;
  code?: string;
  message?: string;
  retry_after?: string;
}

function tokenFromVerdict(verdict: Verdict, secret: string): string {
  if (verdict.token) return signToken({ ...verdict.token, exp: Number(verdict.token.exp) }, secret, "12h");
  const extensions: Record<string, unknown> = { code: verdict.code ?? "SF401" };
  if (verdict.retry_after) extensions.retryAfter = verdict.retry_after;
  throw new SafeError(verdict.message ?? "Invalid username or password", extensions);
}

export function makeLoginPlugin(jwtSecret: string) {
  return extendSchema((build) => {
    const executor = build.input.pgRegistry.pgExecutors.main;
    return {
      typeDefs: gql`
        input LoginInput {
          clientMutationId: String
          username: String!
          password: String!
        }
        type LoginPayload {
          clientMutationId: String
          "A signed token (JWT): send it as 'Authorization: Bearer <token>'."
          token: String
          "The same token (its first name)."
          result: String @deprecated(reason: "Use token.")
        }
        extend type Mutation {
          "Exchanges a username and password for a token. Repeated failures wait (SF429)."
          login(input: LoginInput!): LoginPayload
        }
      `,
      objects: {
        Mutation: {
          plans: {
            login(_, fieldArgs) {
              const $input = fieldArgs.getRaw("input");
              const $verdict = sideEffectWithPgClient(executor, $input, async (client, input: { username: string; password: string }) => {
                const { rows } = await client.query<{ r: Verdict }>({
                  text: "select ops.login($1, $2) as r",
                  values: [input.username, input.password],
                });
                return rows[0].r;
              });
              const $token = lambda($verdict, (v) => tokenFromVerdict(v, jwtSecret));
              return object({ clientMutationId: get($input, "clientMutationId"), token: $token, result: $token });
            },
          },
        },
      },
    };
  });
}

// The OpenAPI 3.1 document of the REST routes, served at GET /api/openapi.json.
// Built from the route table and the same zod schemas that validate request
// bodies (z.toJSONSchema, input side), so the contract cannot drift from the code.
import { z } from "zod";
import type { Route } from "./routes.ts";

/** What a route says about itself for the contract. */
export interface RouteDoc {
  summary: string;
  description?: string;
  tags?: string[];
  /** A bearer token is required (401 without one, 403 when its role may not). */
  auth?: boolean;
  /** The zod schema that validates the JSON body. */
  body?: z.ZodType;
  /** Descriptions of the `:name` path segments. */
  params?: Record<string, string>;
  /** Status → description of the success responses. */
  responses: Record<number, string>;
}

/** The body of every refusal: a message, our SF code, and what helps. */
const errorBody = z.object({
  error: z.string().describe("A sentence a person can read."),
  code: z.string().describe("SF401, SF403, SF404, SF409 or SF422."),
  detail: z.string().optional(),
  hint: z.string().optional(),
  fieldErrors: z.record(z.string(), z.array(z.string())).optional().describe("Invalid body fields and why (SF422)."),
  formErrors: z.array(z.string()).optional(),
});

const REFUSALS: Record<number, string> = {
  400: "The body is not valid JSON or does not match the schema (code SF422).",
  401: "No valid token (SF401).",
  403: "The token's role may not call this (SF403).",
  404: "Not found (SF404).",
  409: "Conflicts with the current state (SF409).",
  422: "Refused by the rules (SF422).",
};

function jsonSchema(schema: z.ZodType) {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return rest;
}

function openApiPath(path: string) {
  return path.replace(/:([A-Za-z_]\w*)/g, "{$1}");
}

export function buildOpenApi(routes: Route[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const doc = route.doc;
    if (!doc) continue;
    const responses: Record<string, unknown> = {};
    for (const [status, description] of Object.entries(doc.responses)) {
      responses[status] = { description, content: { "application/json": { schema: {} } } };
    }
    const refusals = doc.auth ? [400, 401, 403, 404, 409, 422] : doc.body ? [400] : [];
    for (const status of refusals) {
      if (status === 400 && !doc.body) continue;
      responses[String(status)] = { description: REFUSALS[status], content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } };
    }
    const params = Object.entries(doc.params ?? {}).map(([name, description]) => ({
      name,
      in: "path",
      required: true,
      description,
      schema: { type: "string" },
    }));
    (paths[openApiPath(route.path)] ??= {})[route.method.toLowerCase()] = {
      summary: doc.summary,
      ...(doc.description ? { description: doc.description } : {}),
      ...(doc.tags ? { tags: doc.tags } : {}),
      ...(doc.auth ? { security: [{ bearer: [] }] } : {}),
      ...(params.length ? { parameters: params } : {}),
      ...(doc.body ? { requestBody: { required: false, content: { "application/json": { schema: jsonSchema(doc.body) } } } } : {}),
      responses,
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Shopfloor REST routes",
      version,
      description: "The REST routes beside GraphQL (/graphql). Errors carry an SF code; see docs/integrators.md.",
    },
    paths,
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
      schemas: { Error: jsonSchema(errorBody) },
    },
  };
}

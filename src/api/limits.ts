// Query limits, enforced before any query runs, for HTTP and websockets alike:
// - the request size (HTTP body, websocket message) is refused in server.ts;
// - depth and field count are measured on the parsed document before
//   GraphQL's own validation (which is quadratic on some shapes);
// - `first`/`last` above the page maximum are refused while planning;
// - introspection can be switched off (production default).
// Every refusal is a GraphQL error with code SF413 (SF403 for introspection)
// and a message naming the limit and its setting.
import { SafeError, type PromiseOrDirect } from "postgraphile/grafast";
import {
  GraphQLError,
  Kind,
  parse,
  type ASTVisitor,
  type DocumentNode,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from "postgraphile/graphql";

export interface QueryLimits {
  /** HTTP body or websocket message, in bytes. */
  maxRequestBytes: number;
  /** Nesting levels of fields (fragments expanded). */
  maxDepth: number;
  /** Fields and fragment spreads, aliases and repeated fragments counted each time. */
  maxFields: number;
  /** Largest `first`/`last` a connection accepts. */
  maxPageSize: number;
  introspection: boolean;
}

const LIMIT_CODE = "SF413";

/** The defaults of src/config.ts (development: introspection on). */
export const DEFAULT_QUERY_LIMITS: QueryLimits = {
  maxRequestBytes: 100_000,
  maxDepth: 15,
  maxFields: 1000,
  maxPageSize: 1000,
  introspection: true,
};

function limitError(message: string, setting: string, max: number, node?: { loc?: unknown }) {
  return new GraphQLError(message, {
    nodes: node ? [node as never] : undefined,
    extensions: { code: LIMIT_CODE, limit: setting, max },
  });
}

interface Measure {
  fields: number;
  depth: number;
}

/** Walks a selection set, expanding fragments; stops as soon as a limit is passed. */
function measure(
  set: SelectionSetNode,
  depth: number,
  fragments: Map<string, FragmentDefinitionNode>,
  inPath: Set<string>,
  m: Measure,
  limits: QueryLimits,
) {
  for (const sel of set.selections) {
    if (m.fields > limits.maxFields || m.depth > limits.maxDepth) return;
    m.fields++;
    if (sel.kind === Kind.FIELD) {
      if (depth > m.depth) m.depth = depth;
      if (sel.selectionSet) measure(sel.selectionSet, depth + 1, fragments, inPath, m, limits);
    } else if (sel.kind === Kind.INLINE_FRAGMENT) {
      measure(sel.selectionSet, depth, fragments, inPath, m, limits);
    } else {
      const name = sel.name.value;
      const fragment = fragments.get(name);
      if (!fragment || inPath.has(name)) continue; // GraphQL validation reports these
      inPath.add(name);
      measure(fragment.selectionSet, depth, fragments, inPath, m, limits);
      inPath.delete(name);
    }
  }
}

/** The first limit the document passes, as a GraphQL error; undefined when it is within them. */
function checkDocument(document: DocumentNode, limits: QueryLimits): GraphQLError | undefined {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  for (const op of document.definitions) {
    if (op.kind !== Kind.OPERATION_DEFINITION) continue;
    const m: Measure = { fields: 0, depth: 0 };
    measure(op.selectionSet, 1, fragments, new Set(), m, limits);
    if (m.depth > limits.maxDepth) {
      return limitError(
        `The query nests fields more than ${limits.maxDepth} levels deep (limit GRAPHQL_MAX_DEPTH=${limits.maxDepth})`,
        "GRAPHQL_MAX_DEPTH",
        limits.maxDepth,
        op,
      );
    }
    if (m.fields > limits.maxFields) {
      return limitError(
        `The query selects more than ${limits.maxFields} fields, counting aliases and each use of a fragment (limit GRAPHQL_MAX_FIELDS=${limits.maxFields})`,
        "GRAPHQL_MAX_FIELDS",
        limits.maxFields,
        op,
      );
    }
  }
  return undefined;
}

type ParseAndValidate = (query: string) => { errors?: readonly GraphQLError[]; document?: DocumentNode };

/**
 * Wraps grafserv's parse-and-validate: our limits first (on a bounded parse),
 * then grafserv's own (cached) parse and validation. Verdicts are remembered
 * for the most recent documents.
 */
function guardParseAndValidate(inner: ParseAndValidate, limits: QueryLimits): ParseAndValidate {
  const refused = new Map<string, GraphQLError | null>();
  return (query) => {
    let verdict = refused.get(query);
    if (verdict === undefined) {
      try {
        // A token budget keeps a hostile document from costing more to parse than a big legitimate one.
        verdict = checkDocument(parse(query, { maxTokens: limits.maxFields * 20, noLocation: true }), limits) ?? null;
      } catch (e) {
        verdict = e instanceof GraphQLError ? e : null;
      }
      if (refused.size >= 500) refused.delete(refused.keys().next().value!);
      refused.set(query, verdict);
    }
    return verdict ? { errors: [verdict] } : inner(query);
  };
}

/** Refuses __schema and __type when introspection is off (__typename stays allowed). */
function noIntrospection(context: ValidationContext): ASTVisitor {
  return {
    Field(node) {
      if (node.name.value === "__schema" || node.name.value === "__type") {
        context.reportError(
          new GraphQLError("Introspection is turned off on this server (GRAPHQL_INTROSPECTION)", {
            nodes: [node],
            extensions: { code: "SF403" },
          }),
        );
      }
    },
  };
}

const isPromise = <T>(v: PromiseOrDirect<T>): v is PromiseLike<T> => typeof (v as PromiseLike<T>)?.then === "function";

type PageArgPlan = (parent: unknown, $connection: unknown, arg: { getRaw(): unknown }) => unknown;

/** `first`/`last` above the maximum are refused while the operation is planned. */
function pageSizeChecked(name: string, apply: PageArgPlan, max: number): PageArgPlan {
  return (parent, $connection, arg) => {
    const $value = arg.getRaw() as { eval?: () => unknown };
    const value = typeof $value?.eval === "function" ? $value.eval() : undefined;
    if (typeof value === "number" && value > max) {
      throw new SafeError(`${name}: at most ${max} rows per page (asked for ${value}); page with 'after' (limit GRAPHQL_MAX_PAGE_SIZE=${max})`, {
        code: LIMIT_CODE,
        limit: "GRAPHQL_MAX_PAGE_SIZE",
        max,
      });
    }
    return apply(parent, $connection, arg);
  };
}

export function makeQueryLimitsPlugin(limits: QueryLimits): GraphileConfig.Plugin {
  return {
    name: "ShopfloorQueryLimitsPlugin",
    version: "1.0.0",
    after: ["PgFirstLastBeforeAfterArgsPlugin"],
    schema: {
      hooks: {
        GraphQLObjectType_fields_field_args(args) {
          for (const name of ["first", "last"] as const) {
            const arg = args[name] as { applyPlan?: PageArgPlan } | undefined;
            if (arg?.applyPlan) arg.applyPlan = pageSizeChecked(name, arg.applyPlan, limits.maxPageSize);
          }
          return args;
        },
      },
    },
    grafserv: {
      middleware: {
        setPreset(next, event) {
          if (!limits.introspection) event.validationRules.push(noIntrospection as ValidationRule);
          const original = event.getExecutionConfig;
          let guardedFor: ParseAndValidate | undefined;
          let guarded: ParseAndValidate | undefined;
          const guard = <C extends { parseAndValidate: ParseAndValidate }>(config: C): C => {
            if (config.parseAndValidate !== guardedFor) {
              guardedFor = config.parseAndValidate;
              guarded = guardParseAndValidate(config.parseAndValidate, limits);
            }
            return { ...config, parseAndValidate: guarded! };
          };
          event.getExecutionConfig = function (ctx) {
            const config = original.call(this, ctx);
            return isPromise(config) ? Promise.resolve(config).then(guard) : guard(config);
          };
          return next();
        },
      },
    },
  };
}

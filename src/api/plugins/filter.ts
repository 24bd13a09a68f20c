// List filtering (issue 16): the connection-filter plugin made for PostGraphile
// 5, kept deliberately small. A `filter` argument on every list, offering only
// columns that have an index (PostGraphile's index behaviours hide the rest;
// migrations add indexes for the lists screens filter), only comparison
// operators, no relations, no computed columns, no set-returning functions,
// no arrays, no and/or/not. The page-size maximum of the API applies as usual.
import { PostGraphileConnectionFilterPreset } from "postgraphile-plugin-connection-filter";

const FILTER_OPERATORS = [
  "isNull",
  "equalTo",
  "notEqualTo",
  "in",
  "lessThan",
  "lessThanOrEqualTo",
  "greaterThan",
  "greaterThanOrEqualTo",
];

// Views have no indexes, and PostGraphile gives them the benefit of the doubt:
// here lists over views get no `filter` argument (their `condition` stays;
// both hang on the same "filter" behaviour, so the argument is removed).
const NoViewFiltersPlugin: GraphileConfig.Plugin = {
  name: "ShopfloorNoViewFiltersPlugin",
  version: "1.0.0",
  after: ["PgConnectionArgFilterPlugin"],
  schema: {
    hooks: {
      GraphQLObjectType_fields_field_args(args, _build, context) {
        const ext = context.scope.pgFieldResource?.extensions as { isView?: boolean; isMaterializedView?: boolean } | undefined;
        if (!(ext?.isView || ext?.isMaterializedView) || !("filter" in args)) return args;
        const { filter: _dropped, ...rest } = args;
        return rest;
      },
    },
  },
};

export const ListFilterPreset: GraphileConfig.Preset = {
  extends: [PostGraphileConnectionFilterPreset],
  plugins: [NoViewFiltersPlugin],
  // The options below are not all honoured by this version: leaving the
  // plugins out is what removes relation, computed and logical filters.
  disablePlugins: [
    "PgConnectionArgFilterBackwardRelationsPlugin",
    "PgConnectionArgFilterForwardRelationsPlugin",
    "PgConnectionArgFilterComputedAttributesPlugin",
    "PgConnectionArgFilterCompositeTypeAttributesPlugin",
    "PgConnectionArgFilterRecordFunctionsPlugin",
    "PgConnectionArgFilterLogicalOperatorsPlugin",
  ],
  schema: {
    connectionFilterAllowedOperators: FILTER_OPERATORS,
    connectionFilterRelations: false,
    connectionFilterComputedColumns: false,
    connectionFilterSetofFunctions: false,
    connectionFilterArrays: false,
    connectionFilterLogicalOperators: false,
    connectionFilterAllowNullInput: false,
    connectionFilterAllowEmptyObjectInput: false,
  },
};

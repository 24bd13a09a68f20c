// List filtering (issue 16): the connection-filter plugin made for PostGraphile
// 5, kept deliberately small. A `filter` argument on every list, offering only
// columns that have an index (PostGraphile's index behaviours hide the rest;
// migrations add indexes for the lists screens filter), only comparison
// operators, no relations, no computed columns, no set-returning functions,
// no arrays, no and/or/not. The page-size maximum of the API applies as usual.
import { PostGraphileConnectionFilterPreset } from "postgraphile-plugin-connection-filter";

export const FILTER_OPERATORS = [
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
// here their columns are not filterable (the client filters what it fetched).
const NoViewFiltersPlugin: GraphileConfig.Plugin = {
  name: "ShopfloorNoViewFiltersPlugin",
  version: "1.0.0",
  gather: {
    hooks: {
      pgCodecs_attribute(_info, event) {
        const relkind = event.pgAttribute.getClass()?.relkind;
        if (relkind === "v" || relkind === "m") {
          event.attribute.extensions ??= Object.create(null);
          (event.attribute.extensions as Record<string, unknown>).shopfloorView = true;
        }
      },
    },
  },
  schema: {
    entityBehavior: {
      pgCodecAttribute: {
        inferred: {
          after: ["inferred"],
          provides: ["postInferred"],
          callback(behavior, [codec, attributeName]) {
            const ext = codec.attributes[attributeName]?.extensions as Record<string, unknown> | undefined;
            return ext?.shopfloorView ? [behavior, "-attribute:filterBy"] : behavior;
          },
        },
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

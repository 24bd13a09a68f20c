// Naming: SQL functions keep the specs' p_ argument prefixes (p_job_id), but
// GraphQL clients see clean names (jobId).
export const ShopfloorInflectionPlugin: GraphileConfig.Plugin = {
  name: "ShopfloorInflectionPlugin",
  version: "1.0.0",
  inflection: {
    replace: {
      argument(previous, _options, details) {
        const name = details.param.name;
        if (name && /^p_./.test(name)) return this.coerceToGraphQLName(this.camelCase(name.slice(2)));
        return previous!(details);
      },
    },
  },
};

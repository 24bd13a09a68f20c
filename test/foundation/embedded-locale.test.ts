// A new embedded cluster uses PostgreSQL's builtin C.UTF-8 locale, whatever
// the machine's locale (README, "The embedded server's locale"): code point
// order, Unicode case mapping, nothing a C library update could change.
import test from "ava";
import { createTestDatabase, type TestDb } from "../helpers/db.ts";

const embedded = !process.env.TEST_DATABASE_URL;
let db: TestDb;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(() => db?.drop());

(embedded ? test : test.skip)("the embedded cluster sorts by code point with the builtin C.UTF-8 locale", async (t) => {
  const { rows } = await db.query<{ provider: string; locale: string; sorted: string[]; upper: string }>(
    `select datlocprovider as provider, datlocale as locale,
            (select array_agg(x order by x) from unnest(array['alpha', 'Zeta', 'Ölfilter', 'Zylinder']) x) as sorted,
            upper('ölfilter') as upper
       from pg_database where datname = current_database()`,
  );
  t.deepEqual(rows[0], { provider: "b", locale: "C.UTF-8", sorted: ["Zeta", "Zylinder", "alpha", "Ölfilter"], upper: "ÖLFILTER" });
});

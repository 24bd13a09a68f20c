// Foundation benchmark: posting an operator message (insert, statement
// trigger, NOTIFY, debounced worker job) against the one-row UPDATE baseline.
import { baselineUpdate, fmt, measure, type BenchContext } from "./lib.ts";

export default async function bench({ url, quick, print }: BenchContext) {
  const opts = { clients: 8, ms: quick ? 1000 : 5000 };
  const baseline = await baselineUpdate(url, opts);
  print(`baseline  one-row UPDATE, 8 clients    ${fmt(baseline)}`);
  const posted = await measure(url, opts, (c, w, i) =>
    c.query(`select ops.post_message('bench', 'info', $1)`, [`message ${w}/${i}`]),
  );
  print(`ops       post_message, 8 clients      ${fmt(posted)}`);
  print(`ratio     post_message / baseline = ${(posted.tps / baseline.tps).toFixed(2)}`);
}

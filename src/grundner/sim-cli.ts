// npm run grundner:sim -- <share folder> [options]: plays the Grundner storage
// on a folder, to commission an install without the machine.
import { mkdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { GrundnerSimulator, realExportStock, type SimBoard } from "./simulator.ts";

const USAGE = `Usage: npm run grundner:sim -- <share folder> [options]
  --stock FILE         seed stock: JSON array of {type, material_name, length, width, thickness, stock, customer_id?}
  --delay MS           the storage's reaction time (default 0)
  --no-answer          leave request files untouched (storage off)
  --alter-erl          acknowledge order_saw.csv with other content
  --late-erl MS        take order_saw.csv at once, write the .erl this much later
  --on-gripper A,B     job numbers whose boards are on the gripper (never released)
  --stock-header       write a header line in stock.csv
  --stock-broken-line  write a line that does not parse in stock.csv
  --vendor-names       name the answers Stock.csv and productionLIST_DEL.csv, as the manual does
  --real-export N      seed N board types shaped like a real export (50-char names, numeric customer IDs, one shared)
  --trailing-separator end every answer line with ';', as real exports do
  --lf                 LF line ends instead of CRLF
  --erl-only-release   confirm releases by renaming get_production.csv to .erl only (no productionLIST_del.csv)
  --reserved-drift T:N report N more reserved boards than ordered for type T (field 15); repeatable as T:N,T:N`;

const DEFAULT_STOCK: SimBoard[] = [
  { type: 101, material_name: "Spanplatte weiß 19", length: 2800, width: 2070, thickness: 19, stock: 40, customer_id: "SP19W" },
  { type: 102, material_name: "Eiche geölt 19", length: 2800, width: 2070, thickness: 19, stock: 12, customer_id: "EI19" },
  { type: 205, material_name: "MDF roh 16", length: 2800, width: 2070, thickness: 16, stock: 25 },
];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    stock: { type: "string" },
    delay: { type: "string" },
    "no-answer": { type: "boolean" },
    "alter-erl": { type: "boolean" },
    "late-erl": { type: "string" },
    "on-gripper": { type: "string" },
    "stock-header": { type: "boolean" },
    "stock-broken-line": { type: "boolean" },
    "vendor-names": { type: "boolean" },
    "real-export": { type: "string" },
    "trailing-separator": { type: "boolean" },
    lf: { type: "boolean" },
    "erl-only-release": { type: "boolean" },
    "reserved-drift": { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help || positionals.length !== 1) {
  console.log(USAGE);
  process.exit(values.help ? 0 : 2);
}
const folder = positionals[0];
mkdirSync(folder, { recursive: true });
const stock = values.stock
  ? (JSON.parse(readFileSync(values.stock, "utf8")) as SimBoard[])
  : values["real-export"]
    ? realExportStock(Number(values["real-export"]))
    : DEFAULT_STOCK;
const drift = values["reserved-drift"]
  ? Object.fromEntries(values["reserved-drift"].split(",").map((p) => p.split(":").map(Number)))
  : undefined;
const sim = new GrundnerSimulator({
  folder,
  stock,
  delayMs: Number(values.delay ?? 0),
  faults: {
    noAnswer: values["no-answer"],
    alterErl: values["alter-erl"],
    lateErlMs: values["late-erl"] ? Number(values["late-erl"]) : undefined,
    onGripper: values["on-gripper"]?.split(",").map((s) => s.trim()),
    stockHeader: values["stock-header"],
    stockBrokenLine: values["stock-broken-line"],
    vendorNames: values["vendor-names"],
    trailingSeparator: values["trailing-separator"],
    lfOnly: values.lf,
    erlOnlyRelease: values["erl-only-release"],
    reservedDrift: drift,
  },
  onLog: (line) => console.log(`${new Date().toISOString()} ${line}`),
}).start();
console.log(`Grundner simulator watching ${folder} with ${stock.length} board types. Ctrl-C stops it.`);
process.on("SIGINT", async () => {
  await sim.stop();
  process.exit(0);
});

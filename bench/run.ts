// kemu benchmark runner (not kernel code): runs every bench/*.bench.ts, prints one table and
// writes bench/results.json. Each bench file exports `run(): Promise<BenchResult[]>`. Host
// time is what is measured here, so these figures depend on the machine running them.

import { readdirSync, readFileSync, existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export interface BenchResult {
  metric: string;
  value: number;
  unit: string;
  /** A reference figure to compare with (a published number, or the other variant). */
  baseline?: number;
  note?: string;
}

interface BenchFile {
  run(): Promise<BenchResult[]>;
}

interface ResultsFile {
  generated: string;
  node: string;
  results: Record<string, BenchResult[]>;
}

const here = dirname(fileURLToPath(import.meta.url));
const out_path = join(here, "results.json");

function fmt(v: number | undefined): string {
  if (v === undefined) return "";
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en-US");
  return v.toPrecision(4);
}

/** The previous run's value of each metric, to show how this run compares. */
function previous_results(): Map<string, number> {
  const prev = new Map<string, number>();
  if (!existsSync(out_path)) return prev;
  try {
    const old = JSON.parse(readFileSync(out_path, "utf8")) as ResultsFile;
    for (const [file, rs] of Object.entries(old.results)) for (const r of rs) prev.set(`${file}:${r.metric}`, r.value);
  } catch {
    // A damaged results file only loses the comparison column.
  }
  return prev;
}

function print_table(results: Record<string, BenchResult[]>, prev: Map<string, number>): void {
  const rows = [["file", "metric", "value", "unit", "baseline", "previous", "note"]];
  for (const [file, rs] of Object.entries(results)) {
    for (const r of rs) rows.push([file, r.metric, fmt(r.value), r.unit, fmt(r.baseline), fmt(prev.get(`${file}:${r.metric}`)), r.note ?? ""]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const [n, row] of rows.entries()) {
    console.log(row.map((c, i) => (i === 2 || i === 4 || i === 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd());
    if (n === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
  }
}

async function main(): Promise<void> {
  const filter = process.argv[2];
  const files = readdirSync(here).filter((f) => f.endsWith(".bench.ts") && (!filter || f.includes(filter))).sort();
  const prev = previous_results();
  const results: Record<string, BenchResult[]> = {};
  for (const f of files) {
    console.error(`running ${f} ...`);
    const mod = (await import(pathToFileURL(join(here, f)).href)) as BenchFile;
    results[f.replace(/\.bench\.ts$/, "")] = await mod.run();
  }
  print_table(results, prev);
  const out: ResultsFile = { generated: new Date().toISOString(), node: process.version, results };
  writeFileSync(out_path, JSON.stringify(out, null, 2) + "\n");
  console.error(`wrote ${out_path}`);
}

await main();

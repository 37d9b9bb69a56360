// kemu tooling: the `kemu trace`, `kemu run` and `kemu dmesg` subcommands (registered by
// tools/kemu.ts). Host time and the terminal are fair game here.
//
//   kemu trace [scenario] [-o dir] [--machine m] [--events list] [--stdout] [--list]
//   kemu run <scenario.ts|name> [--machine m] [--seeds N] [--trace dir]
//   kemu dmesg [scenario.ts|name] [--follow] [--ns patterns] [--events] [--machine m]
//   --seed N (global): the seed of the run, or the first seed of a sweep

import { mkdirSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { InvalidArgumentError, type Command } from "commander";
import { format_timestamp, type printk_record } from "../../kernel/printk/printk.ts";
import { TRACE } from "../../kernel/tokens.ts";
import { trace_print_line } from "../../kernel/trace/trace.ts";
import type { Machine } from "../../kernel/machine.ts";
import { builtin_scenarios, find_scenario } from "./builtin/index.ts";
import { named_machines } from "./machines.ts";
import { run_scenario, sweep_seeds, type ScenarioResult, type SweepReport } from "./runner.ts";
import type { Scenario } from "./scenario.ts";

/** What the commands need from the CLI around them. */
export interface CliIo {
  out(line: string): void;
  fail(msg: string, code?: number): void;
  progress: { show(text: string): void; clear(): void };
  seed(cmd: Command): number | undefined;
}

function parseCount(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer");
  return n;
}

/** A built-in scenario by name, or a scenario file (default export: a Scenario or its run function). */
export async function load_scenario(what: string): Promise<Scenario> {
  const builtin = find_scenario(what);
  if (builtin) return builtin;
  if (!/\.[cm]?[jt]s$/.test(what)) {
    throw new Error(`no built-in scenario "${what}" (see kemu trace --list) and not a .ts/.js file`);
  }
  let mod: { default?: unknown; scenario?: unknown };
  try {
    mod = (await import(pathToFileURL(resolve(what)).href)) as typeof mod;
  } catch (e) {
    // Outside an ES-module package Node loads a .ts file as CommonJS, which cannot import kemu.
    const code = (e as { code?: string }).code;
    if (code === "ERR_REQUIRE_CYCLE_MODULE" || code === "ERR_REQUIRE_ESM" || code === "ERR_REQUIRE_ASYNC_MODULE") {
      throw new Error(`${what} was loaded as CommonJS: name it .mts, or put it under a package.json with "type": "module"`, { cause: e });
    }
    throw e;
  }
  const exp = mod.default ?? mod.scenario;
  const name = basename(what).replace(/\.[cm]?[jt]s$/, "");
  if (typeof exp === "function") return { name, title: name, run: exp as Scenario["run"] };
  if (exp && typeof exp === "object" && typeof (exp as Scenario).run === "function") {
    const sc = exp as Partial<Scenario> & Pick<Scenario, "run">;
    return { ...sc, name: sc.name ?? name, title: sc.title ?? name };
  }
  throw new Error(`${what}: the default export must be a scenario (defineScenario({...})) or an async function (ctx) => ...`);
}

function failure_lines(r: ScenarioResult): string[] {
  return [
    ...(r.error ? [`error: ${r.error}`] : []),
    ...r.checks.map((c) => `check failed: ${c}`),
    ...(r.chain_missing ? [`expected call chain broken at ${r.chain_missing}()`] : []),
    ...r.problems.map((p) => `shutdown: ${p}`),
  ];
}

// ---- kemu trace ----------------------------------------------------------------------------------

interface TraceOptions {
  out?: string;
  machine?: string;
  events?: string;
  stdout?: boolean;
  list?: boolean;
}

function list_scenarios(io: CliIo): void {
  const w = Math.max(...builtin_scenarios.map((s) => s.name.length));
  for (const s of builtin_scenarios) io.out(`${s.name.padEnd(w)}  ${s.title}${s.reference ? `  [${s.reference}]` : ""}`);
  io.out("");
  io.out(`machines: ${[...named_machines().keys()].join(", ")}`);
}

async function traceCommand(io: CliIo, what: string | undefined, opts: TraceOptions, cmd: Command): Promise<void> {
  if (opts.list || !what) return list_scenarios(io);
  const s = await load_scenario(what);
  io.progress.show(`tracing ${s.name}...`);
  const r = await run_scenario(s, {
    seed: io.seed(cmd), machine: opts.machine, events: opts.events?.split(",").map((e) => e.trim()).filter(Boolean),
  });
  io.progress.clear();
  if (opts.stdout) process.stdout.write(r.trace_text);
  else {
    const dir = opts.out ?? "kemu-trace";
    mkdirSync(dir, { recursive: true });
    const text = join(dir, `${s.name}.trace`);
    const json = join(dir, `${s.name}.perfetto.json`);
    writeFileSync(text, r.trace_text);
    writeFileSync(json, JSON.stringify(r.perfetto));
    io.out(`${s.name} on ${r.machine}, seed ${r.seed}: ${r.calls.length} calls in ${new Set(r.calls.map((c) => c.ctx)).size} contexts`);
    io.out(`  ftrace text:   ${text}`);
    io.out(`  Perfetto JSON: ${json}  (open in https://ui.perfetto.dev)`);
  }
  for (const l of failure_lines(r)) io.fail(l);
}

// ---- kemu run ------------------------------------------------------------------------------------

interface RunCmdOptions {
  machine?: string;
  seeds?: number;
  trace?: string;
}

/** "[######----] 6/10" */
function bar(done: number, total: number, width = 24): string {
  const n = Math.round((done / total) * width);
  return `[${"#".repeat(n)}${"-".repeat(width - n)}] ${done}/${total}`;
}

/** 0,1,2,5,7,8 → "0-2, 5, 7-8" */
export function seed_ranges(seeds: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < seeds.length; ) {
    let j = i;
    while (j + 1 < seeds.length && seeds[j + 1] === seeds[j]! + 1) j++;
    parts.push(i === j ? `${seeds[i]}` : `${seeds[i]}-${seeds[j]}`);
    i = j + 1;
  }
  return parts.join(", ");
}

export function sweep_lines(s: Scenario, report: SweepReport): string[] {
  const n = report.outcomes.length;
  const lines = [`${s.name}: ${n} seeds, ${report.groups.length} distinct behaviour${report.groups.length === 1 ? "" : "s"}`];
  report.groups.forEach((g, i) => {
    const what = i === 0 ? g.behaviour.outcome : `differs from seed ${report.groups[0]!.seeds[0]} in ${g.difference}`;
    lines.push(`  seed${g.seeds.length > 1 ? "s" : ""} ${seed_ranges(g.seeds)} (${g.seeds.length}): ${what}`);
  });
  const failed = report.outcomes.filter((o) => !o.ok).map((o) => o.seed);
  if (failed.length) lines.push(`  failed: seed${failed.length > 1 ? "s" : ""} ${seed_ranges(failed)}`);
  return lines;
}

async function runCommand(io: CliIo, what: string, opts: RunCmdOptions, cmd: Command): Promise<void> {
  const s = await load_scenario(what);
  const first = io.seed(cmd) ?? 0;
  if (opts.seeds) {
    const seeds = Array.from({ length: opts.seeds }, (_, i) => first + i);
    const report = await sweep_seeds(s, seeds, { machine: opts.machine }, (done, seed) => io.progress.show(`${bar(done, seeds.length)} seed ${seed}`));
    io.progress.clear();
    for (const l of sweep_lines(s, report)) io.out(l);
    if (report.outcomes.some((o) => !o.ok)) process.exitCode = 1;
    return;
  }
  const r = await run_scenario(s, { seed: first, machine: opts.machine, graph: opts.trace !== undefined });
  io.out(`${s.name} on ${r.machine}, seed ${r.seed}`);
  for (const n of r.notes) io.out(`  note: ${n}`);
  io.out(`  result: ${r.behaviour.value}`);
  for (const x of r.splats) io.out(`  splat: ${x}`);
  if (opts.trace) {
    mkdirSync(opts.trace, { recursive: true });
    writeFileSync(join(opts.trace, `${s.name}.trace`), r.trace_text);
    writeFileSync(join(opts.trace, `${s.name}.perfetto.json`), JSON.stringify(r.perfetto));
    io.out(`  trace written to ${opts.trace}/`);
  }
  const fails = failure_lines(r);
  if (!fails.length) io.out(`  ok (${r.nr_switches} context switches, ${(r.virtual_ns / 1e9).toFixed(6)} s of virtual time)`);
  for (const l of fails) io.fail(l);
}

// ---- kemu dmesg ----------------------------------------------------------------------------------

/** A DEBUG-style namespace list: "kemu:mm*,kemu:kfd*,-kemu:kunit". */
export function namespace_filter(spec: string): (ns: string) => boolean {
  const to_re = (p: string) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`);
  const parts = spec.split(/[\s,]+/).filter(Boolean);
  const include = parts.filter((p) => !p.startsWith("-")).map(to_re);
  const exclude = parts.filter((p) => p.startsWith("-")).map((p) => to_re(p.slice(1)));
  return (ns) => !exclude.some((r) => r.test(ns)) && include.some((r) => r.test(ns));
}

interface DmesgOptions {
  follow?: boolean;
  ns?: string;
  events?: boolean;
  machine?: string;
}

/** A scenario that only boots the machine (kemu dmesg with no scenario). */
const boot_only: Scenario = { name: "boot", title: "boot and shut down", run: async () => null };

async function dmesgCommand(io: CliIo, what: string | undefined, opts: DmesgOptions, cmd: Command): Promise<void> {
  const s = what ? await load_scenario(what) : boot_only;
  const wanted = namespace_filter(opts.ns ?? "kemu:*");
  const line = (r: printk_record) => `${format_timestamp(r.ts_nsec)}${r.text}`;
  const on_boot = (m: Machine) => {
    if (!opts.follow) return;
    for (const r of m.k.log.records()) if (wanted(`kemu:${r.facility}`)) io.out(line(r));
    m.k.log.follow((r) => {
      if (wanted(`kemu:${r.facility}`)) io.out(line(r));
    });
    if (opts.events) {
      m.symbol(TRACE).add_sink((e) => {
        if (e.system !== "ftrace" || e.name === "tracing_mark_write") io.out(`  ${trace_print_line(e).trim()}`);
      });
    }
  };
  const r = await run_scenario(s, {
    seed: io.seed(cmd), machine: opts.machine, graph: false, events: opts.events ? undefined : [], on_boot,
  });
  if (!opts.follow) for (const l of r.dmesg) io.out(l);
  for (const l of failure_lines(r)) io.fail(l);
}

// ---- registration --------------------------------------------------------------------------------

/** A command's failure (a bad scenario file, an unknown machine) as a message and exit code 2. */
function guarded<A extends unknown[]>(io: CliIo, fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      io.fail(e instanceof Error ? e.message : String(e), 2);
    }
  };
}

export function register_scenario_commands(program: Command, io: CliIo): void {
  program.command("trace")
    .description("run a scenario with the function-graph tracer and every trace event; write ftrace text and Perfetto JSON")
    .argument("[scenario]", "built-in scenario name (see --list) or a scenario .ts file")
    .option("-o, --out <dir>", "output directory", "kemu-trace")
    .option("--machine <name|file.json>", "machine to run on (default: the scenario's)")
    .option("--events <list>", `comma-separated set_event specs, e.g. "migrate_device:*,mmu_notifier:*" (default: all)`)
    .option("--stdout", "print the ftrace text to stdout instead of writing files")
    .option("--list", "list the built-in scenarios and named machines")
    .action(guarded(io, (what: string | undefined, opts: TraceOptions, cmd: Command) => traceCommand(io, what, opts, cmd)));

  program.command("run")
    .description("run a scenario file (or built-in) on a machine and report; --seeds N sweeps N seeds and groups them by behaviour")
    .argument("<scenario>", "a scenario .ts file (default export: defineScenario({...}) or async (ctx) => ...) or a built-in name")
    .option("--machine <name|file.json>", "machine to run on (default: the scenario's)")
    .option("--seeds <n>", "run seeds --seed .. --seed+n-1 and report which behaved differently", parseCount)
    .option("--trace <dir>", "also record and write the trace (single run)")
    .action(guarded(io, (what: string, opts: RunCmdOptions, cmd: Command) => runCommand(io, what, opts, cmd)));

  program.command("dmesg")
    .description("run a scenario (or just boot) and print the kernel log; --follow streams it live")
    .argument("[scenario]", "built-in scenario name or scenario file; none: boot and shut down")
    .option("-f, --follow", "print records as they are logged, filtered by --ns")
    .option("--ns <patterns>", `debug namespaces to show, e.g. "kemu:amdgpu,kemu:kfd*,-kemu:kunit" (default kemu:*)`)
    .option("--events", "with --follow: also stream trace events as they are recorded (like trace_pipe)")
    .option("--machine <name|file.json>", "machine to run on")
    .action(guarded(io, (what: string | undefined, opts: DmesgOptions, cmd: Command) => dmesgCommand(io, what, opts, cmd)));
}

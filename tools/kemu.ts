// kemu's command line: boot a machine, run the KUnit suites (kunit.py-style), parse KTAP, run the
// selftest programs (kselftest runner-style), and the demo. Host time and the terminal are fair
// game here: this is tooling around the machines, not emulated code.
//
//   kemu boot [--spec file.json]           boot, print dmesg, shut down
//   kemu kunit run [glob] [--raw_output]   run KUnit suites ("suite_glob[.case_glob]")
//   kemu kunit parse [file]                pretty-print KTAP from a file or stdin
//   kemu selftest run [suite]              run selftest programs ("dir/name" glob)
//   kemu demo                              the guided demo
//   kemu trace [scenario] [-o dir]         trace a scenario: ftrace text + Perfetto JSON (--list)
//   kemu run <scenario.ts> [--seeds N]     run a scenario file; sweep seeds, group by behaviour
//   kemu dmesg [scenario] [--follow]       the kernel log of a run, live with --follow
//   --seed N (anywhere)                    seed of every machine booted

import { runDemo } from "./demo.ts";
import { readFileSync, writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { Command, InvalidArgumentError } from "commander";
import { boot } from "../kernel/boot.ts";
import type { MachineSpec } from "../kernel/machine_spec.ts";
import type { Machine } from "../kernel/machine.ts";
import { glob_match } from "../lib/glob.ts";
import { named_machines, resolve_machine } from "./scenarios/machines.ts";
import {
  kunit_filter_suites, kunit_list_tests, kunit_run_all_tests, type kunit_filtered_suite,
} from "../lib/kunit/executor.ts";
import {
  kunit_ktap_printer, kunit_render_json, kunit_run_failed, kunit_summary_printer, ktap_tree_from_run, ktap_tree_from_suite,
  type kunit_event, type ktap_test,
} from "../lib/kunit/ktap.ts";
import { ktapFailed, parseKtap } from "./testing/kunit/kunit_parser.ts";
import { runMany } from "./testing/selftests/kselftest/runner.ts";
import { register_scenario_commands } from "./scenarios/commands.ts";
import type { KselftestProgram } from "./testing/selftests/kselftest_harness.ts";

// ---- output and progress -----------------------------------------------------------------------

/** A one-line progress indicator on stderr, shown only when stderr is a terminal. */
class Progress {
  private shown = false;
  private readonly tty = process.stderr.isTTY === true;

  show(text: string): void {
    if (!this.tty) return;
    const width = (process.stderr.columns || 80) - 1;
    process.stderr.write(`\r\x1b[K${text.slice(0, width)}`);
    this.shown = true;
  }

  clear(): void {
    if (!this.shown) return;
    process.stderr.write("\r\x1b[K");
    this.shown = false;
  }
}

const progress = new Progress();

/** Writes a line to stdout, first clearing the progress line it would otherwise overwrite. */
function out(line: string): void {
  progress.clear();
  process.stdout.write(`${line}\n`);
}

function fail(msg: string, code = 1): void {
  progress.clear();
  process.stderr.write(`kemu: ${msg}\n`);
  process.exitCode = code;
}

function parseSeed(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError("the seed must be a non-negative integer");
  return n;
}

function globalSeed(cmd: Command): number | undefined {
  return cmd.optsWithGlobals<{ seed?: number }>().seed;
}

// ---- boot and demo ---------------------------------------------------------------------------

/** Boots, prints dmesg, shuts down and prints what the shutdown check found. */
async function bootAndShutdown(spec: MachineSpec | undefined | null): Promise<void> {
  if (spec === null) return;
  const machine: Machine = await boot(spec);
  for (const l of machine.dmesg()) out(l);
  const before = machine.dmesg().length;
  const problems = await machine.shutdown({ report_only: true });
  for (const l of machine.dmesg().slice(before)) out(l);
  for (const p of problems) fail(`shutdown: ${p}`);
}

/** The spec file (JSON MachineSpec) with --seed applied; null after reporting a bad file. */
function readSpec(file: string | undefined, seed: number | undefined): MachineSpec | undefined | null {
  let spec: MachineSpec | undefined;
  try {
    spec = file ? (JSON.parse(readFileSync(file, "utf8")) as MachineSpec) : undefined;
  } catch (e) {
    fail(`cannot read machine spec ${file}: ${e instanceof Error ? e.message : String(e)}`, 2);
    return null;
  }
  return seed === undefined ? spec : { ...(spec ?? {}), seed };
}

/** A named machine with --seed applied; null after reporting an unknown name. */
function namedSpec(name: string, seed: number | undefined): MachineSpec | null {
  try {
    const spec = resolve_machine(name);
    return seed === undefined ? spec : { ...spec, seed };
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e), 2);
    return null;
  }
}

// ---- kunit ---------------------------------------------------------------------------------------

interface KunitRunOptions {
  raw_output?: boolean;
  json?: string | boolean;
  filter?: string;
  filter_action?: string;
  list_tests?: boolean;
  list_tests_attr?: boolean;
}

function elapsedLine(ms: number): string {
  const s = (ms / 1000).toFixed(3);
  return `Elapsed time: ${s}s total, 0.000s configuring, 0.000s building, ${s}s running`;
}

function writeJson(target: string | boolean, root: ktap_test): void {
  const text = kunit_render_json(root);
  if (typeof target === "string") writeFileSync(target, `${text}\n`);
  else out(text);
}

async function kunitRun(glob: string | undefined, opts: KunitRunOptions, cmd: Command): Promise<void> {
  if (opts.filter_action !== undefined && opts.filter_action !== "skip") return fail(`unknown --filter_action: ${opts.filter_action}`, 2);
  const { all_suites } = await import("../test/kunit/index.ts");
  const suites = kunit_filter_suites(all_suites(), { filter_glob: glob, filter: opts.filter, filter_action: opts.filter_action as "skip" | undefined });
  if (typeof suites === "string") return fail(suites, 2);
  if (opts.list_tests || opts.list_tests_attr) {
    for (const l of kunit_list_tests(suites, opts.list_tests_attr).slice(1)) out(l);
    return;
  }
  const t0 = performance.now();
  const run = await kunit_run_all_tests(suites, { seed: globalSeed(cmd), on_event: kunitReporter(suites, opts, t0) });
  progress.clear();
  if (opts.json !== undefined) writeJson(opts.json, ktap_tree_from_run(run));
  if (kunit_run_failed(run)) process.exitCode = 1;
}

/** Prints KTAP (--raw_output) or the kunit.py summary as events arrive, with progress on stderr. */
function kunitReporter(suites: readonly kunit_filtered_suite[], opts: KunitRunOptions, t0: number): (e: kunit_event) => void {
  const total = suites.reduce((n, s) => n + s.cases.length, 0);
  let done = 0;
  const ktap = new kunit_ktap_printer(out);
  const summary = new kunit_summary_printer(out, { now: () => performance.now() - t0, color: process.stdout.isTTY === true });
  // With --json and no file, stdout carries only the JSON.
  const quiet = opts.json === true;
  return (e) => {
    if (e.kind === "case_start") progress.show(`[${++done}/${total}] ${e.suite}.${e.case_name}`);
    if (quiet) return;
    if (opts.raw_output) return ktap.on_event(e);
    if (e.kind === "start") summary.begin();
    else if (e.kind === "suite_end") summary.test(ktap_tree_from_suite(e.result));
    else if (e.kind === "end") {
      summary.end(ktap_tree_from_run(e.result));
      summary.line(elapsedLine(performance.now() - t0));
    }
  };
}

async function kunitParse(file: string | undefined, opts: { json?: string | boolean; raw_output?: boolean }): Promise<void> {
  const text = file ? readFileSync(file, "utf8") : await readStdin();
  if (opts.raw_output) {
    process.stdout.write(text);
    return;
  }
  const root = parseKtap(text);
  if (opts.json !== undefined) writeJson(opts.json, root);
  if (opts.json !== true) new kunit_summary_printer(out, { color: process.stdout.isTTY === true }).print(root);
  if (ktapFailed(root)) process.exitCode = 1;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

// ---- selftests -----------------------------------------------------------------------------------

/** runner.sh: KSELFTEST_<NAME>_ARGS, the name upper-cased with non-alphanumerics as "_". */
function programArgs(p: KselftestProgram): string[] {
  const v = process.env[`KSELFTEST_${p.name.replace(/[^A-Za-z0-9_]/g, "_").toUpperCase()}_ARGS`];
  return v ? v.split(/\s+/).filter((a) => a) : [];
}

async function selftestRun(suite: string | undefined, opts: { list?: boolean }, cmd: Command): Promise<void> {
  const { all_selftests } = await import("../test/selftests/index.ts");
  const programs = all_selftests().filter((p) => !suite || glob_match(suite, `${p.dir}/${p.name}`) || glob_match(suite, p.name));
  if (suite && !programs.length) return fail(`no selftest program matches ${suite}`, 2);
  if (opts.list) {
    for (const p of programs) out(`${p.dir}:${p.name}`);
    return;
  }
  const write = (l: string) => {
    const m = /^# # {2}RUN +(\S+)/.exec(l);
    if (m) progress.show(`selftest ${m[1]}`);
    out(l);
  };
  const r = await runMany(programs, { write, seed: globalSeed(cmd), args: programArgs });
  progress.clear();
  process.exitCode = r.exitCode;
}

// ---- the command tree ----------------------------------------------------------------------------

function buildCli(): Command {
  const program = new Command("kemu")
    .description("kemu: an emulated Linux kernel-driver framework (HMM, amdkfd SVM, AMD IOMMUv2)")
    .option("--seed <n>", "seed of every machine booted (scheduling and other machine-random choices)", parseSeed)
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError();

  program.command("boot")
    .description("boot a machine (the default one, a named one, or a MachineSpec JSON file), print dmesg, shut down")
    .option("--spec <file>", "machine description (JSON MachineSpec)")
    .option("--machine <name>", `a named machine (${[...named_machines().keys()].join(", ")})`)
    .action(async (opts: { spec?: string; machine?: string }, cmd: Command) => bootAndShutdown(
      opts.machine !== undefined ? namedSpec(opts.machine, globalSeed(cmd)) : readSpec(opts.spec, globalSeed(cmd))));

  const kunit = program.command("kunit").description("KUnit suites (like tools/testing/kunit/kunit.py)");
  kunit.command("run")
    .description("run KUnit suites and print a summary (or KTAP with --raw_output)")
    .argument("[glob]", `filter "suite_glob[.case_glob]", e.g. 'lockdep*.*irq*'`)
    .option("--raw_output", "print the raw KTAP output instead of the summary")
    .option("--json [file]", "write results as kunit.py JSON to a file (or stdout)")
    .option("--filter <filters>", `attribute filters, e.g. "speed>slow, module=foo"`)
    .option("--filter_action <action>", `"skip": report filtered-out cases as skipped instead of omitting them`)
    .option("--list_tests", "list the selected tests and exit")
    .option("--list_tests_attr", "list the selected tests with their attributes and exit")
    .action(kunitRun);
  kunit.command("parse")
    .description("parse KTAP (a file, or stdin) and pretty-print it; exit 1 on failures")
    .argument("[file]", "KTAP or dmesg capture")
    .option("--raw_output", "echo the input instead of summarising it")
    .option("--json [file]", "write results as kunit.py JSON to a file (or stdout)")
    .action(kunitParse);

  const selftest = program.command("selftest").description("user-space selftests (like tools/testing/selftests run_tests)");
  selftest.command("run")
    .description("run selftest programs as TAP 13, each wrapped like kselftest's runner.sh")
    .argument("[suite]", `program glob, "dir/name" or "name", e.g. 'kernel/*'`)
    .option("--list", "list the programs as dir:name and exit")
    .action(selftestRun);

  program.command("demo")
    .description("boot the default machine and narrate how device and system memory trade pages")
    .action(async (_opts: object, cmd: Command) => {
      process.exitCode = await runDemo(globalSeed(cmd), out);
    });

  register_scenario_commands(program, { out, fail, progress, seed: globalSeed });
  return program;
}

// A context's error that nobody awaited (a test that dropped a kthread's promise) must not kill
// the whole run: report it and fail.
process.on("unhandledRejection", (e) => fail(`unhandled rejection: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`));

await buildCli().parseAsync(process.argv);

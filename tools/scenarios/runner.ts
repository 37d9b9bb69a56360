// kemu tooling: runs a scenario on a freshly booted machine with the function-graph tracer and
// trace events on, and collects what a student of the path wants: the ftrace text, the
// Perfetto JSON, the calls in order, dmesg, and the run's observable behaviour (for seed
// sweeps). Host-side code: it boots machines and reads their state from outside.

import "reflect-metadata";
import "./ftrace_sites.ts";
import { boot } from "../../kernel/boot.ts";
import type { Machine } from "../../kernel/machine.ts";
import type { MachineSpec } from "../../kernel/machine_spec.ts";
import type { ContextKind } from "../../kernel/sched/core.ts";
import { TRACE } from "../../kernel/tokens.ts";
import type { PerfettoEvent, trace_entry, Tracing } from "../../kernel/trace/trace.ts";
import { resolve_machine } from "./machines.ts";
import { trace_tracing_mark_write, type Scenario, type ScenarioContext } from "./scenario.ts";

export interface RunOptions {
  seed?: number;
  /** Overrides the scenario's machine. */
  machine?: string | MachineSpec;
  /** Record the function graph (default true; seed sweeps turn it off unless asked). */
  graph?: boolean;
  /** set_event specs; the scenario's (or every event) if absent. */
  events?: string[];
  /** Ring-buffer size in entries. */
  buffer_entries?: number;
  /** Called once the machine has booted, before the scenario runs (live views attach here). */
  on_boot?: (m: Machine) => void;
}

/** One traced call: a function_graph entry and its return. */
export interface call_record {
  func: string;
  /** The context as a track name: "comm-pid", or "comm (kind)" for IRQ/hardware contexts. */
  ctx: string;
  kind: ContextKind;
  depth: number;
  /** Virtual ns. */
  start: number;
  /** -1 while the call had not returned when tracing stopped. */
  end: number;
  /** Index of the caller in the same list, or -1 at the top of a context. */
  parent: number;
  /** The kemu file, when the tracer recorded it (patched methods). */
  site?: string;
}

/** What a run did that an observer can see; two seeds "behave alike" when these match. */
export interface Behaviour {
  outcome: string;
  value: string;
  checks: string[];
  splats: string[];
  problems: string[];
  /** dmesg text without timestamps or the boot line naming the seed. */
  dmesg: string[];
}

export interface ScenarioResult {
  scenario: string;
  machine: string;
  seed: number;
  ok: boolean;
  error: string | null;
  value: unknown;
  /** Failed checks. */
  checks: string[];
  notes: string[];
  /** The first function of expected_chain missing from the calls (in order), or null. */
  chain_missing: string | null;
  splats: string[];
  problems: string[];
  dmesg: string[];
  trace_text: string;
  perfetto: { traceEvents: PerfettoEvent[]; displayTimeUnit: "ns" };
  calls: call_record[];
  nr_switches: number;
  virtual_ns: number;
  behaviour: Behaviour;
}

/** Every event unless the scenario narrows it; the trace marker always. */
const MARKER_EVENT = "ftrace:tracing_mark_write";

export function ctx_name(e: { pid: number; comm: string; kind: ContextKind }): string {
  return e.pid >= 0 ? `${e.comm}-${e.pid}` : `${e.comm} (${e.kind})`;
}

/** The function_graph entries and returns of `entries` as call records, in call order. */
export function calls_of(entries: readonly trace_entry[]): call_record[] {
  const calls: call_record[] = [];
  const stacks = new Map<string, number[]>();
  for (const e of entries) {
    if (e.system !== "ftrace" || (e.name !== "funcgraph_entry" && e.name !== "funcgraph_exit")) continue;
    const ctx = ctx_name(e);
    const stack = stacks.get(ctx) ?? [];
    stacks.set(ctx, stack);
    const f = e.fields as { func: string; depth: number; site?: string };
    if (e.name === "funcgraph_entry") {
      const rec: call_record = { func: f.func, ctx, kind: e.kind, depth: f.depth, start: e.ts, end: -1, parent: stack.at(-1) ?? -1 };
      if (f.site) rec.site = f.site;
      calls.push(rec);
      stack.push(calls.length - 1);
      continue;
    }
    let i = stack.length - 1;
    while (i >= 0 && calls[stack[i]!]!.func !== f.func) i--;
    if (i < 0) continue;
    calls[stack[i]!]!.end = e.ts;
    stack.length = i;
  }
  return calls;
}

/**
 * The first function of `chain` that does not follow the previous ones in `calls` (entry
 * order), or null when the whole chain occurs in order.
 */
export function find_chain_gap(calls: readonly { func: string }[], chain: readonly string[]): string | null {
  let i = 0;
  for (const want of chain) {
    while (i < calls.length && calls[i]!.func !== want) i++;
    if (i === calls.length) return want;
    i++;
  }
  return null;
}

/** A stable text for a scenario's return value (byte arrays by length and checksum). */
export function describe_value(v: unknown): string {
  return JSON.stringify(v ?? null, (_k, x: unknown) => {
    if (x instanceof Uint8Array) {
      let h = 0x811c9dc5;
      for (const b of x) h = Math.imul(h ^ b, 0x01000193) >>> 0;
      return `Uint8Array(${x.length}, fnv1a=${h.toString(16)})`;
    }
    if (typeof x === "bigint") return `${x}n`;
    return x;
  });
}

function error_text(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** dmesg as behaviour: no timestamps, no seed. */
function normalise_dmesg(lines: readonly string[]): string[] {
  return lines.map((l) => l.replace(/^\[\s*\d+\.\d+\] /, "").replace(/\bseed \d+/, "seed N"));
}

function configure_tracing(tr: Tracing, graph: boolean, events: readonly string[], entries: number | undefined): void {
  if (entries) tr.set_buffer_entries(entries);
  tr.set_current_tracer(graph ? "function_graph" : "nop");
  for (const e of events) tr.set_event(e);
  tr.set_event(MARKER_EVENT);
  tr.set_tracing_on(true);
}

/** Boots the scenario's machine with `seed`, runs it traced, shuts down, and reports. */
export async function run_scenario(s: Scenario, opts: RunOptions = {}): Promise<ScenarioResult> {
  const seed = opts.seed ?? 0;
  const spec = { ...resolve_machine(opts.machine ?? s.machine), seed };
  const machine = await boot(spec);
  opts.on_boot?.(machine);
  const tr = machine.symbol(TRACE);
  const graph = opts.graph ?? true;
  configure_tracing(tr, graph, opts.events ?? s.events ?? ["*:*"], opts.buffer_entries);
  const checks: string[] = [];
  const notes: string[] = [];
  let studied = false;
  const mark = (buf: string) => trace_tracing_mark_write.trace(machine.k, { buf });
  const ctx: ScenarioContext = {
    machine, k: machine.k, tracing: tr, seed,
    spawn: (name) => machine.spawn(name),
    insmod: async (name, params) => {
      const ret = await machine.insmod(name, params);
      if (ret) throw new Error(`insmod ${name}: ${ret}`);
    },
    study: async (label, fn) => {
      if (!studied) tr.trace_clear();
      studied = true;
      tr.set_tracing_on(true);
      mark(`study: ${label}`);
      try {
        return await fn();
      } finally {
        await machine.settle();
        mark(`end of study: ${label}`);
        tr.set_tracing_on(false);
      }
    },
    check: (cond, what) => {
      if (!cond) checks.push(what);
    },
    note: (text) => {
      notes.push(text);
      mark(text);
    },
  };
  let value: unknown = null;
  let error: string | null = null;
  try {
    value = await s.run(ctx);
    await machine.settle();
  } catch (e) {
    error = error_text(e);
  }
  tr.set_tracing_on(false);
  const entries = tr.entries();
  const calls = calls_of(entries);
  const trace_text = tr.trace_output();
  const perfetto = tr.perfetto_trace();
  const nr_switches = machine.k.sched.nr_switches;
  const virtual_ns = machine.k.ktime_get();
  const problems = await machine.shutdown({ report_only: true, expected_splats: s.expected_splats });
  const expected = new Set(s.expected_splats ?? []);
  const splats = machine.k.splats.filter((x) => !expected.has(x.kind)).map((x) => `${x.kind}: ${x.title}`);
  const dmesg = machine.dmesg();
  const chain_missing = graph && s.expected_chain ? find_chain_gap(calls, s.expected_chain) : null;
  const behaviour: Behaviour = {
    outcome: error ?? "ok", value: describe_value(value), checks, splats, problems, dmesg: normalise_dmesg(dmesg),
  };
  return {
    scenario: s.name, machine: spec.name ?? "default", seed, ok: !error && !checks.length && !problems.length && !chain_missing,
    error, value, checks, notes, chain_missing, splats, problems, dmesg, trace_text, perfetto, calls, nr_switches,
    virtual_ns, behaviour,
  };
}

// ---- seed sweeps ---------------------------------------------------------------------------------

export interface SeedOutcome {
  seed: number;
  ok: boolean;
  behaviour: Behaviour;
  nr_switches: number;
}

export interface SweepGroup {
  /** Seeds that behaved alike, ascending; the first group is the most common behaviour. */
  seeds: number[];
  behaviour: Behaviour;
  /** How this group differs from the first one ("" for the first). */
  difference: string;
}

export interface SweepReport {
  outcomes: SeedOutcome[];
  groups: SweepGroup[];
}

/** Where two behaviours first differ: the component and the first differing line. */
export function diff_behaviour(a: Behaviour, b: Behaviour): string {
  for (const key of ["outcome", "value", "checks", "splats", "problems", "dmesg"] as const) {
    const x = ([] as string[]).concat(a[key]);
    const y = ([] as string[]).concat(b[key]);
    const n = Math.max(x.length, y.length);
    for (let i = 0; i < n; i++) {
      if (x[i] === y[i]) continue;
      const where = n > 1 ? ` line ${i + 1}` : "";
      // The value is JSON already; the other components are text lines.
      const show = (v: string | undefined) => (v === undefined ? "(none)" : key === "value" ? v : JSON.stringify(v));
      return `${key}${where}: ${show(x[i])} vs ${show(y[i])}`;
    }
  }
  return "";
}

/** Runs the scenario once per seed and groups the seeds by behaviour, commonest first. */
export async function sweep_seeds(
  s: Scenario, seeds: readonly number[], opts: RunOptions = {}, on_progress?: (done: number, seed: number) => void,
): Promise<SweepReport> {
  const outcomes: SeedOutcome[] = [];
  for (const seed of seeds) {
    const r = await run_scenario(s, { graph: false, ...opts, seed });
    outcomes.push({ seed, ok: r.ok, behaviour: r.behaviour, nr_switches: r.nr_switches });
    on_progress?.(outcomes.length, seed);
  }
  const by_key = new Map<string, SeedOutcome[]>();
  for (const o of outcomes) {
    const key = JSON.stringify(o.behaviour);
    by_key.set(key, [...(by_key.get(key) ?? []), o]);
  }
  const sorted = [...by_key.values()].sort((a, b) => b.length - a.length || a[0]!.seed - b[0]!.seed);
  const base = sorted[0]?.[0]?.behaviour;
  const groups = sorted.map((g): SweepGroup => ({
    seeds: g.map((o) => o.seed), behaviour: g[0]!.behaviour, difference: base ? diff_behaviour(base, g[0]!.behaviour) : "",
  }));
  return { outcomes, groups };
}

// Mirrors kernel/trace/trace.c (Linux 6.8) with the tracepoint side of include/linux/tracepoint.h,
// set_event of kernel/trace/trace_events.c and the line format of kernel/trace/trace_output.c:
// one ring buffer per machine (one CPU), trace events with kernel names, the nop and
// function_graph tracers, the `trace` file text, and — a kemu addition — Chrome/Perfetto Trace
// Event JSON with one track per context (task, kworker, IRQ context, hardware engine).
// A disabled event costs one boolean test; so does trace_fn() while function_graph is off.

import { inject, injectable } from "tsyringe";
import { KERNEL } from "../tokens.ts";
import type { Kernel } from "../kernel.ts";
import type { ContextKind, task_struct } from "../sched/core.ts";
import { EINVAL } from "../../include/uapi/asm-generic/errno.ts";
import { print_graph_entries, print_graph_headers } from "./trace_functions_graph.ts";

export type trace_fields = Record<string, unknown>;

type tracer_name = "nop" | "function_graph";

/** One ring-buffer record: a trace event, or a function_graph entry/exit (system "ftrace"). */
export class trace_entry {
  constructor(
    /** Virtual ns since boot. */
    readonly ts: number,
    readonly pid: number,
    readonly comm: string,
    readonly kind: ContextKind,
    /** The irqs-off / need-resched / hardirq-softirq / preempt-depth / migrate-disable column. */
    readonly flags: string,
    readonly system: string,
    readonly name: string,
    readonly fields: Readonly<trace_fields>,
    /** Open function_graph calls of the context when recorded. */
    readonly depth: number,
    private readonly fmt: (f: never) => string,
    /** For a span (trace_span): when it started; -1 for an instant. */
    readonly start: number = -1,
  ) {}

  /** The TP_printk text, formatted on demand. */
  get text(): string {
    return this.fmt(this.fields as never);
  }
}

/** A tracepoint and its trace event (TRACE_EVENT): `system:name`, its fields and TP_printk. */
export class trace_event_call<A extends trace_fields = trace_fields> {
  /** The static key: on while set_event enables it or any probe is attached. */
  enabled = false;
  /**
   * For an event declared at file scope (TRACE_EVENT in include/linux/tracepoint.ts): the
   * count, shared by every machine, of machines where it is on; call sites test it first.
   */
  static_key: static_key | null = null;
  /** Enabled through set_event (events/<system>/<name>/enable). */
  ftrace_enabled = false;
  private probes: Array<(args: A) => void> = [];

  constructor(
    readonly system: string,
    readonly name: string,
    readonly printk: (args: A) => string,
    private readonly tr: Tracing,
  ) {}

  /** trace_<name>(): free when disabled; callers building costly args test `.enabled` first. */
  trace(args: A): void {
    if (!this.enabled) return;
    this.fire(args, -1);
  }

  /**
   * A record that covers [start_ns, now]: an ordinary event line in the trace file, a
   * duration slice in the JSON export (for hardware engines' work).
   */
  trace_span(args: A, start_ns: number): void {
    if (!this.enabled) return;
    this.fire(args, start_ns);
  }

  private fire(args: A, start: number): void {
    for (const p of this.probes) p(args);
    if (this.ftrace_enabled) this.tr.record_event(this, args, start);
  }

  /** register_trace_<name>(): `probe` runs on every hit while attached. */
  register_probe(probe: (args: A) => void): () => void {
    this.probes.push(probe);
    this.update();
    return () => {
      this.probes = this.probes.filter((p) => p !== probe);
      this.update();
    };
  }

  /** @internal */
  update(): void {
    const was = this.enabled;
    this.enabled = this.ftrace_enabled || this.probes.length > 0;
    if (this.static_key && was !== this.enabled) this.static_key.count += this.enabled ? 1 : -1;
  }
}

/** A static key shared by all machines: how many have the thing it guards switched on. */
export interface static_key {
  count: number;
}

/** A trace event declared once at file scope and instantiated in every machine's Tracing. */
export interface static_trace_event {
  readonly system: string;
  readonly name: string;
  readonly printk: (args: never) => string;
  readonly key: static_key;
}

/** Every file-scope trace event, in declaration order (the kernel's __start_ftrace_events). */
const static_events: static_trace_event[] = [];

/** @internal — TRACE_EVENT() at file scope registers here. */
export function register_static_event(ev: static_trace_event): void {
  static_events.push(ev);
}

/**
 * Machines with the function_graph tracer recording: ftrace() call sites in kernel functions
 * test this before anything else, so an untraced run pays one comparison per call.
 */
export const ftrace_graph_key: static_key = { count: 0 };

/** Each machine's Tracing by its Kernel, for code that reaches the machine only through `k`. */
const instances = new WeakMap<Kernel, Tracing>();

/** The Tracing service of the machine `k` belongs to. */
export function tracing_of(k: Kernel): Tracing | undefined {
  return instances.get(k);
}

/** An open function_graph call: disposing it is the function's return. */
export interface graph_scope extends Disposable {
  /**
   * For a function that may return a promise without awaiting it (`number | Promise<number>`):
   * passes `r` through, and if it is a promise the return is recorded when it settles instead.
   */
  ret<R>(r: R): R;
}

/** A scope that records the return once: at dispose, or when a returned promise settles. */
function open_scope(close: () => void): graph_scope {
  let held = false;
  return {
    ret<R>(r: R): R {
      if (!(r instanceof Promise)) return r;
      held = true;
      return r.finally(close) as R;
    },
    [Symbol.dispose]() {
      if (!held) close();
    },
  };
}

/** A function_graph shadow-stack frame (ftrace_ret_stack). */
interface graph_frame {
  func: string;
  calltime: number;
}

/** trace_print_lat_fmt(): the five irq-info characters of a context. */
function lat_fmt(t: task_struct): string {
  // kemu's softirq_count: odd while serving a softirq, +2 per local_bh_disable().
  const serving = t.softirq_count % 2 === 1;
  const bh_off = t.softirq_count >= 2;
  const irqs_off = t.irqs_disabled ? (bh_off ? "D" : "d") : bh_off ? "b" : ".";
  const hardsoft = t.hardirq_count && serving ? "H" : t.hardirq_count ? "h" : serving ? "s" : ".";
  const pc = t.preempt_count & 0xf;
  return `${irqs_off}.${hardsoft}${pc ? pc.toString(16) : "."}.`;
}

/** " %5lu.%06lu" of a ns timestamp. */
function fmt_ts(ns: number): string {
  const sec = Math.floor(ns / 1e9);
  const usec = Math.floor((ns % 1e9) / 1e3);
  return `${String(sec).padStart(5)}.${String(usec).padStart(6, "0")}`;
}

/** JSON-safe event args: primitives as they are, anything else as text. */
function json_args(fields: Readonly<trace_fields>): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = v === null || typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v)) ? v : String(v);
  }
  return out;
}

export interface PerfettoEvent {
  ph: "B" | "E" | "X" | "i" | "M";
  name: string;
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  cat?: string;
  s?: "t";
  args?: Record<string, unknown>;
}

/** Tracks of pseudo contexts (IRQ, softirq, hardware engines) start here, above any pid. */
const PSEUDO_TID_BASE = 1_000_000;

@injectable()
export class Tracing {
  /** /sys/kernel/tracing/tracing_on */
  private tracing_on = true;
  private tracer: tracer_name = "nop";
  /** tracing_on && tracer === function_graph: the one test trace_fn() makes when off. */
  private graph_on = false;
  private readonly events = new Map<string, trace_event_call<never>>();
  private ring: trace_entry[] = [];
  private head = 0;
  private capacity = 1 << 17;
  private written = 0;
  private sinks = new Set<(e: trace_entry) => void>();
  private readonly graph_stacks = new WeakMap<task_struct, graph_frame[]>();
  /** How many file-scope events have been instantiated here. */
  private static_synced = 0;
  /** Whether this machine counts in ftrace_graph_key. */
  private graph_keyed = false;

  constructor(@inject(KERNEL) private readonly k: Kernel) {
    instances.set(k, this);
  }

  // ---- trace events ------------------------------------------------------------------------

  /**
   * TRACE_EVENT(): declares `system:name` with its TP_printk. Defining the same event again
   * (a module reloaded) returns the existing one.
   */
  define_trace_event<A extends trace_fields>(system: string, name: string, printk: (args: A) => string): trace_event_call<A> {
    const key = `${system}:${name}`;
    const old = this.events.get(key);
    if (old) return old as unknown as trace_event_call<A>;
    const ev = new trace_event_call<A>(system, name, printk, this);
    this.events.set(key, ev as unknown as trace_event_call<never>);
    return ev;
  }

  /** Instantiates the file-scope events declared since the last look (modules load lazily). */
  private sync_static_events(): void {
    while (this.static_synced < static_events.length) {
      const s = static_events[this.static_synced++]!;
      const ev = this.define_trace_event(s.system, s.name, s.printk);
      ev.static_key = s.key;
      if (ev.enabled) s.key.count++;
    }
  }

  /** This machine's instance of a file-scope event. */
  static_event<A extends trace_fields>(s: static_trace_event): trace_event_call<A> {
    this.sync_static_events();
    return this.events.get(`${s.system}:${s.name}`) as unknown as trace_event_call<A>;
  }

  /** /sys/kernel/tracing/available_events */
  available_events(): string[] {
    this.sync_static_events();
    return [...this.events.keys()];
  }

  /**
   * A write to /sys/kernel/tracing/set_event: "system:event", "system:*" or "system:",
   * "*:*", or a bare word matching an event or a system name; a leading '!' disables.
   * Returns 0, or -EINVAL when nothing matched.
   */
  set_event(spec: string, on = true): number {
    this.sync_static_events();
    let s = spec.trim();
    if (s.startsWith("!")) {
      on = false;
      s = s.slice(1);
    }
    const colon = s.indexOf(":");
    const sys = colon >= 0 ? s.slice(0, colon) : "";
    const evname = colon >= 0 ? s.slice(colon + 1) : "";
    let matched = 0;
    for (const ev of this.events.values()) {
      const hit = colon >= 0
        ? (sys === "*" || sys === "" || sys === ev.system) && (evname === "*" || evname === "" || evname === ev.name)
        : s === "*" || s === ev.name || s === ev.system;
      if (!hit) continue;
      ev.ftrace_enabled = on;
      ev.update();
      matched++;
    }
    return matched ? 0 : -EINVAL;
  }

  /** Reading /sys/kernel/tracing/set_event: the enabled events, one "system:name" a line. */
  read_set_event(): string[] {
    return [...this.events.values()].filter((e) => e.ftrace_enabled).map((e) => `${e.system}:${e.name}`);
  }

  /** @internal — the trace event's ftrace probe (trace_event_raw_event_*). */
  record_event<A extends trace_fields>(ev: trace_event_call<A>, args: A, start: number): void {
    if (!this.tracing_on) return;
    const t = this.k.current;
    // TP_fast_assign copies the fields, so later changes to `args` do not show.
    this.commit(new trace_entry(this.k.ktime_get(), t.pid, t.comm, t.kind, lat_fmt(t), ev.system, ev.name,
      { ...args }, this.graph_stacks.get(t)?.length ?? 0, ev.printk as (f: never) => string, start));
  }

  // ---- tracers -----------------------------------------------------------------------------

  /** /sys/kernel/tracing/current_tracer: "nop" or "function_graph"; switching clears the buffer. */
  set_current_tracer(name: string): number {
    if (name !== "nop" && name !== "function_graph") return -EINVAL;
    if (name !== this.tracer) this.trace_clear();
    this.tracer = name;
    this.update_graph();
    return 0;
  }

  get current_tracer(): string {
    return this.tracer;
  }

  /** echo 0/1 > tracing_on: stop or resume recording (the buffer is kept). */
  set_tracing_on(on: boolean): void {
    this.tracing_on = on;
    this.update_graph();
  }

  private update_graph(): void {
    this.graph_on = this.tracing_on && this.tracer === "function_graph";
    if (this.graph_on !== this.graph_keyed) ftrace_graph_key.count += this.graph_on ? 1 : -1;
    this.graph_keyed = this.graph_on;
  }

  /**
   * Power-off: this machine stops counting in the shared static keys, so a machine dropped
   * with tracing on does not slow down the others. The buffer and settings stay readable.
   */
  power_off(): void {
    for (const ev of this.events.values()) {
      if (ev.static_key && ev.enabled) ev.static_key.count--;
      ev.static_key = null;
    }
    if (this.graph_keyed) ftrace_graph_key.count--;
    this.graph_keyed = false;
    this.graph_on = false;
  }

  /**
   * Runs `fn` as a traced function: with function_graph on, its entry and return (for an
   * async fn, when its promise settles) are recorded on the calling context's shadow stack.
   */
  trace_fn<R>(func: string, fn: () => R, site?: string): R {
    if (!this.graph_on) return fn();
    const t = this.k.current;
    this.graph_entry(t, func, site);
    let r: R;
    try {
      r = fn();
    } catch (e) {
      this.graph_return(t, func);
      throw e;
    }
    if (r instanceof Promise) return r.finally(() => this.graph_return(t, func)) as R;
    this.graph_return(t, func);
    return r;
  }

  /**
   * The entry of a traced function whose return is the end of the returned scope: a kernel
   * function opens one with `using _ = ftrace(k, "name")` (include/linux/ftrace.ts).
   */
  graph_scope(func: string): graph_scope | null {
    if (!this.graph_on) return null;
    const t = this.k.current;
    this.graph_entry(t, func);
    return open_scope(() => this.graph_return(t, func));
  }

  /** ftrace_graph_entry for the current context, for code that cannot wrap a closure. */
  funcgraph_entry(func: string): void {
    if (this.graph_on) this.graph_entry(this.k.current, func);
  }

  /** ftrace_return_to_handler: closes the innermost open call of `func` in this context. */
  funcgraph_exit(func: string): void {
    this.graph_return(this.k.current, func);
  }

  /** `site`: the kemu file of the function, recorded when its name alone is ambiguous. */
  private graph_entry(t: task_struct, func: string, site?: string): void {
    let stack = this.graph_stacks.get(t);
    if (!stack) {
      stack = [];
      this.graph_stacks.set(t, stack);
    }
    const now = this.k.ktime_get();
    this.commit(new trace_entry(now, t.pid, t.comm, t.kind, lat_fmt(t), "ftrace", "funcgraph_entry",
      site ? { func, depth: stack.length, site } : { func, depth: stack.length }, stack.length, fmt_graph_entry));
    stack.push({ func, calltime: now });
  }

  private graph_return(t: task_struct, func: string): void {
    const stack = this.graph_stacks.get(t);
    if (!stack) return;
    let i = stack.length - 1;
    while (i >= 0 && stack[i]!.func !== func) i--;
    if (i < 0) return;
    // Frames above it lost their return (an exception skipped funcgraph_exit): drop them.
    const frame = stack[i]!;
    stack.length = i;
    if (!this.tracing_on) return;
    const now = this.k.ktime_get();
    this.commit(new trace_entry(now, t.pid, t.comm, t.kind, lat_fmt(t), "ftrace", "funcgraph_exit",
      { func, depth: i, calltime: frame.calltime, rettime: now }, i, fmt_graph_exit));
  }

  // ---- the ring buffer ---------------------------------------------------------------------

  private commit(e: trace_entry): void {
    this.written++;
    if (this.ring.length < this.capacity) this.ring.push(e);
    else {
      this.ring[this.head] = e;
      this.head = (this.head + 1) % this.capacity;
    }
    for (const s of this.sinks) s(e);
  }

  /** Entries in order, oldest first (overwrite mode drops the oldest when full). */
  entries(): trace_entry[] {
    return this.ring.slice(this.head).concat(this.ring.slice(0, this.head));
  }

  /** echo > trace */
  trace_clear(): void {
    this.ring = [];
    this.head = 0;
    this.written = 0;
  }

  /** buffer_size_kb, counted in entries; resizing clears the buffer. */
  set_buffer_entries(n: number): number {
    if (!Number.isInteger(n) || n < 1) return -EINVAL;
    this.capacity = n;
    this.trace_clear();
    return 0;
  }

  /** A live listener (like reading trace_pipe); returns the function that detaches it. */
  add_sink(fn: (e: trace_entry) => void): () => void {
    this.sinks.add(fn);
    return () => this.sinks.delete(fn);
  }

  // ---- output ------------------------------------------------------------------------------

  /** The /sys/kernel/tracing/trace file for the current tracer. */
  trace_output(): string {
    const entries = this.entries();
    const lines = this.tracer === "function_graph"
      ? [...print_graph_headers(), ...print_graph_entries(entries)]
      : [...this.nop_headers(entries.length), ...entries.map(trace_print_line)];
    return lines.join("\n") + "\n";
  }

  /** print_trace_header + print_func_help_header_irq for the nop tracer. */
  private nop_headers(n: number): string[] {
    return [
      "# tracer: nop",
      "#",
      `# entries-in-buffer/entries-written: ${n}/${this.written}   #P:1`,
      "#",
      "#                                _-----=> irqs-off/BH-disabled",
      "#                               / _----=> need-resched",
      "#                              | / _---=> hardirq/softirq",
      "#                              || / _--=> preempt-depth",
      "#                              ||| / _-=> migrate-disable",
      "#                              |||| /     delay",
      "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION",
      "#              | |         |   |||||     |         |",
    ];
  }

  /**
   * Chrome/Perfetto Trace Event JSON: the machine is one process; each context a thread
   * track named by thread_name metadata; function_graph calls as B/E pairs (balanced per
   * track: an exit whose entry was overwritten is dropped, a call still open ends at the
   * last timestamp), spans as X slices, other events as instant events; ts in µs. `pid` tells
   * machines apart when several traces are merged into one file.
   */
  perfetto_trace(pid = 1): { traceEvents: PerfettoEvent[]; displayTimeUnit: "ns" } {
    const entries = this.entries();
    const tids = new Map<string, { tid: number; name: string }>();
    const tid_of = (e: trace_entry): number => {
      const key = e.pid >= 0 ? `pid:${e.pid}` : `${e.kind}:${e.comm}`;
      let t = tids.get(key);
      if (!t) {
        const tid = e.pid >= 0 ? e.pid : PSEUDO_TID_BASE + tids.size;
        t = { tid, name: e.pid >= 0 ? `${e.comm}-${e.pid}` : `${e.comm} (${e.kind})` };
        tids.set(key, t);
      }
      return t.tid;
    };
    const out: PerfettoEvent[] = [];
    const open = new Map<number, string[]>();
    const end_ts = entries.length ? entries[entries.length - 1]!.ts / 1000 : 0;
    for (const e of entries) {
      const tid = tid_of(e);
      const ts = e.ts / 1000;
      const stack = open.get(tid) ?? [];
      open.set(tid, stack);
      if (e.system === "ftrace" && e.name === "funcgraph_entry") {
        const func = (e.fields as { func: string }).func;
        stack.push(func);
        out.push({ ph: "B", name: func, cat: "function_graph", pid, tid, ts });
      } else if (e.system === "ftrace" && e.name === "funcgraph_exit") {
        const func = (e.fields as { func: string }).func;
        const i = stack.lastIndexOf(func);
        if (i < 0) continue;
        // Close what the entry's frame still had open, innermost first.
        while (stack.length > i) out.push({ ph: "E", name: stack.pop()!, pid, tid, ts });
      } else if (e.start >= 0) {
        out.push({ ph: "X", name: e.name, cat: e.system, pid, tid, ts: e.start / 1000,
          dur: (e.ts - e.start) / 1000, args: json_args(e.fields) });
      } else {
        out.push({ ph: "i", s: "t", name: e.name, cat: e.system, pid, tid, ts, args: json_args(e.fields) });
      }
    }
    for (const [tid, stack] of open) while (stack.length) out.push({ ph: "E", name: stack.pop()!, pid, tid, ts: end_ts });
    const meta: PerfettoEvent[] = [
      { ph: "M", name: "process_name", pid, tid: 0, args: { name: `kemu ${this.k.log.machine_name || "machine"}` } },
      ...[...tids.values()].map((t): PerfettoEvent => ({ ph: "M", name: "thread_name", pid, tid: t.tid, args: { name: t.name } })),
    ];
    return { traceEvents: [...meta, ...out], displayTimeUnit: "ns" };
  }

  perfetto_json(pid = 1): string {
    return JSON.stringify(this.perfetto_trace(pid));
  }
}

function fmt_graph_entry(f: { func: string; depth: number }): string {
  return `--> ${f.func} (${f.depth})`;
}

function fmt_graph_exit(f: { func: string; depth: number; calltime: number; rettime: number }): string {
  return `<-- ${f.func} (${f.depth}) (start: ${f.calltime}  end: ${f.rettime}) over: 0`;
}

/** trace_print_context() + the event: "<comm>-<pid> [000] ..... <sec.usec>: <name>: <text>". */
export function trace_print_line(e: trace_entry): string {
  const comm = e.pid === 0 ? "<idle>" : e.comm;
  const pid = Math.max(e.pid, 0);
  return `${comm.padStart(16)}-${String(pid).padEnd(7)} [000] ${e.flags} ${fmt_ts(e.ts)}: ${e.name}: ${e.text}`;
}

// kemu tooling: what a scenario is. A scenario drives one machine through one kernel path —
// from user space, the way a program would — and says which part of the run is the path being
// studied, so traces and tours show that part only. Built-in scenarios live in
// tools/scenarios/builtin/; `kemu run my-scenario.ts` runs a user's file that default-exports
// one (or just the async `run` function).

import "reflect-metadata";
import type { Machine } from "../../kernel/machine.ts";
import type { MachineSpec } from "../../kernel/machine_spec.ts";
import type { Kernel, SplatKind } from "../../kernel/kernel.ts";
import type { Tracing } from "../../kernel/trace/trace.ts";
import type { Process } from "../runtime/process.ts";
import { TRACE_EVENT } from "../../include/linux/tracepoint.ts";

export interface ScenarioContext {
  readonly machine: Machine;
  readonly k: Kernel;
  readonly tracing: Tracing;
  readonly seed: number;
  /** A new user process (machine.spawn). */
  spawn(name?: string): Promise<Process>;
  /** modprobe: loads a module and throws if it fails. */
  insmod(name: string, params?: Record<string, number | string>): Promise<void>;
  /**
   * The studied window. Tracing records only inside study() calls (the first one drops what
   * setup recorded); a scenario that never calls it is traced from start to end. Background
   * work the window started (kworkers, timers) runs to completion before it closes.
   */
  study<T>(label: string, fn: () => Promise<T>): Promise<T>;
  /** A claim about the outcome; a false one fails the run with `what`. */
  check(cond: boolean, what: string): void;
  /** A line of the scenario's narrative: kept in the result and written into the trace. */
  note(text: string): void;
}

export interface Scenario {
  /** Command-line name, e.g. "dmirror-migrate". */
  name: string;
  /** One line for listings and the tour's title. */
  title: string;
  /** The call chain it follows, e.g. "mm.md §3(b)". */
  reference?: string;
  /** A paragraph for the tour: what happens and why it matters. */
  description?: string;
  /** A named machine (tools/scenarios/machines.ts) or a spec; "default" if absent. */
  machine?: string | MachineSpec;
  /** set_event specs recorded with the function graph; every event if absent. */
  events?: string[];
  /** Kernel functions the studied window must call, in this order (not necessarily adjacent). */
  expected_chain?: string[];
  /** Splats the scenario provokes on purpose. */
  expected_splats?: SplatKind[];
  /** Drives the machine; the value it returns is part of the run's observable behaviour. */
  run(ctx: ScenarioContext): Promise<unknown>;
}

/** Identity helper so scenario files get type checking without importing the interface. */
export function defineScenario(s: Scenario): Scenario {
  return s;
}

/** /sys/kernel/tracing/trace_marker: what a program writes there shows in the trace. */
export const trace_tracing_mark_write = TRACE_EVENT<{ buf: string }>("ftrace", "tracing_mark_write", (a) => a.buf);

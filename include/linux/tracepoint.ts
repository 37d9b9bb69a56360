// Mirrors include/linux/tracepoint.h and include/linux/trace_events.h (Linux 6.8): a trace event
// declared once at file scope with TRACE_EVENT(), its call site `trace_<name>(...)` guarded by a
// static key. kemu has many machines per process, so the key counts the machines where the
// event is on, and a hit looks up the event instance of the machine the Kernel belongs to.
// Subsystems whose objects are per machine (drivers) may instead define events on their
// Tracing instance (Tracing.define_trace_event); both show in available_events alike.

import "reflect-metadata";
import type { Kernel } from "../../kernel/kernel.ts";
import {
  register_static_event, tracing_of, type static_key, type static_trace_event, type trace_fields,
} from "../../kernel/trace/trace.ts";

export class tracepoint<A extends trace_fields> implements static_trace_event {
  readonly key: static_key = { count: 0 };

  constructor(
    readonly system: string,
    readonly name: string,
    readonly printk: (args: A) => string,
  ) {}

  /** static_key_enabled(): on in some machine; test it before building costly arguments. */
  get enabled(): boolean {
    return this.key.count > 0;
  }

  /** trace_<name>(args) in machine `k`: one comparison when the event is off everywhere. */
  trace(k: Kernel, args: A): void {
    if (this.key.count === 0) return;
    tracing_of(k)?.static_event<A>(this).trace(args);
  }

  /** A record covering [start_ns, now] (a duration slice in the Perfetto export). */
  trace_span(k: Kernel, args: A, start_ns: number): void {
    if (this.key.count === 0) return;
    tracing_of(k)?.static_event<A>(this).trace_span(args, start_ns);
  }
}

/** TRACE_EVENT(name, ...) under TRACE_SYSTEM `system`, with its TP_printk. */
export function TRACE_EVENT<A extends trace_fields>(system: string, name: string, printk: (args: A) => string): tracepoint<A> {
  const tp = new tracepoint<A>(system, name, printk);
  register_static_event(tp as unknown as static_trace_event);
  return tp;
}

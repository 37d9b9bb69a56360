// Mirrors lib/dump_stack.c (Linux 6.8): dump_stack() prints who is running, the taint state
// (print_tainted() of kernel/panic.c) and the call trace, framed by the context marker
// (<TASK> or <IRQ>) the x86 unwinder prints.

import type { Kernel } from "../kernel/kernel.ts";
import { LOGLEVEL_WARNING } from "../kernel/printk/printk.ts";
import { stack_trace_save, stack_trace_print } from "../kernel/stacktrace.ts";

export const UTS_RELEASE = "6.8.0-kemu";

/** taint_flags[] of kernel/panic.c in bit order: letter when set, when clear. */
const TAINT_CHARS: ReadonlyArray<readonly [string, string]> = [
  ["P", "G"], ["F", " "], ["S", " "], ["R", " "], ["M", " "], ["B", " "], ["U", " "], ["D", " "],
  ["A", " "], ["W", " "], ["C", " "], ["I", " "], ["O", " "], ["E", " "], ["L", " "], ["K", " "],
  ["X", " "], ["T", " "], ["N", " "],
];

/** print_tainted(): "Not tainted", or "Tainted: " and one column per taint flag. */
export function print_tainted(taint: number): string {
  if (!taint) return "Not tainted";
  return "Tainted: " + TAINT_CHARS.map(([on, off], i) => (Math.floor(taint / 2 ** i) % 2 ? on : off)).join("");
}

/** dump_stack_lvl(): the running context's identity line and its call trace. */
export function dump_stack_lvl(k: Kernel, level = LOGLEVEL_WARNING): void {
  const t = k.current;
  const irq = t.kind === "hardirq" || t.kind === "softirq";
  k.printk(level, `CPU: 0 PID: ${t.pid} Comm: ${t.comm.slice(0, 20)} ${print_tainted(k.taint)} ${UTS_RELEASE} #1`);
  k.printk(level, "Hardware name: kemu emulated machine");
  k.printk(level, "Call Trace:");
  k.printk(level, irq ? " <IRQ>" : " <TASK>");
  for (const line of stack_trace_print(stack_trace_save(), 1)) k.printk(level, line);
  k.printk(level, irq ? " </IRQ>" : " </TASK>");
}

export function dump_stack(k: Kernel): void {
  dump_stack_lvl(k);
}

// Mirrors include/trace/events/syscalls.h (Linux 6.8): raw_syscalls:sys_enter and
// raw_syscalls:sys_exit around every system call (the id is the x86-64 syscall number; the
// TP_printk prints all six argument registers).

import { TRACE_EVENT } from "../../linux/tracepoint.ts";

export const trace_sys_enter = TRACE_EVENT<{ id: number; args: string }>(
  "raw_syscalls", "sys_enter", (a) => `NR ${a.id} (${a.args})`,
);

export const trace_sys_exit = TRACE_EVENT<{ id: number; ret: number }>(
  "raw_syscalls", "sys_exit", (a) => `NR ${a.id} = ${a.ret}`,
);

// kemu tooling: the function-graph tracer's patch sites in classes whose files other
// subsystems own. Kernel files open their own scopes (`using _ = ftrace(k, "name")`, see
// include/linux/ftrace.ts); classes still being written elsewhere are instrumented from here,
// the way ftrace patches every fentry site at boot without the functions knowing. Importing
// this module applies the patches once; they only cost anything while function_graph is on.

import type { Kernel } from "../../kernel/kernel.ts";
import { ftrace_call, ftrace_patch_methods } from "../../include/linux/ftrace.ts";
import { trace_sys_enter, trace_sys_exit } from "../../include/trace/events/syscalls.ts";
import { Syscalls } from "../../arch/x86/entry/syscall_64.ts";
import * as NR from "../../arch/x86/include/uapi/asm/unistd_64.ts";
import { hmm_dmirror } from "../../lib/test_hmm.ts";

type with_k = { k: Kernel };
const k_of = (self: never): Kernel => (self as with_k).k;

/** lib/test_hmm.c's functions, as the dmirror module's methods. */
ftrace_patch_methods(hmm_dmirror, "lib/test_hmm.ts", [
  "dmirror_fops_open", "dmirror_fops_release", "dmirror_fops_unlocked_ioctl", "dmirror_fops_mmap",
  "dmirror_interval_invalidate", "dmirror_do_update", "dmirror_range_fault", "dmirror_fault", "dmirror_do_fault",
  "dmirror_read", "dmirror_do_read", "dmirror_write", "dmirror_do_write",
  "dmirror_allocate_chunk", "dmirror_devmem_alloc_page", "dmirror_devmem_free", "dmirror_devmem_fault",
  "dmirror_devmem_fault_alloc_and_copy", "dmirror_migrate_to_device", "dmirror_migrate_alloc_and_copy",
  "dmirror_migrate_finalize_and_map", "dmirror_migrate_to_system", "dmirror_snapshot", "dmirror_range_snapshot",
  "dmirror_snapshot_invalidate", "dmirror_exclusive", "dmirror_atomic_map", "dmirror_device_evict_chunk",
  "dmirror_remove_free_pages", "dmirror_device_remove_chunks", "dmirror_device_init", "dmirror_device_remove",
  ["init", "hmm_dmirror_init"], ["exit", "hmm_dmirror_exit"],
], k_of);

/** __NR_xxx → "xxx". */
const syscall_names = new Map<number, string>(
  Object.entries(NR).map(([name, nr]) => [nr as number, name.replace(/^__NR_/, "")]),
);

type syscall_fn = (a: number[]) => Promise<number> | number;

/** A register as %lx prints it: negative values in two's complement. */
function reg_hex(x: number): string {
  return x < 0 ? (2n ** 64n + BigInt(x)).toString(16) : x.toString(16);
}

/**
 * Every entry of the system-call table becomes __x64_sys_<name> with the raw_syscalls events
 * around it (syscall_enter_from_user_mode / syscall_exit_to_user_mode), and do_syscall_64 a
 * traced function around it.
 */
function patch_syscalls(): void {
  const proto = Syscalls.prototype as unknown as { build_table(this: with_k): Map<number, syscall_fn>; __ftrace?: boolean };
  if (proto.__ftrace) return;
  proto.__ftrace = true;
  const build_table = proto.build_table;
  proto.build_table = function (this: with_k): Map<number, syscall_fn> {
    const table = build_table.call(this);
    const k = this.k;
    for (const [nr, fn] of table) {
      const func = `__x64_sys_${syscall_names.get(nr) ?? nr}`;
      table.set(nr, (a) => {
        if (trace_sys_enter.enabled) trace_sys_enter.trace(k, { id: nr, args: a.map(reg_hex).join(", ") });
        const exit = (ret: number): number => {
          trace_sys_exit.trace(k, { id: nr, ret });
          return ret;
        };
        const r = ftrace_call(k, func, () => fn(a));
        return r instanceof Promise ? r.then(exit) : exit(r);
      });
    }
    return table;
  };
  ftrace_patch_methods(Syscalls, "arch/x86/entry/syscall_64.ts", ["do_syscall_64"], k_of);
}

patch_syscalls();

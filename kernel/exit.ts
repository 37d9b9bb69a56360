// Mirrors kernel/exit.c (Linux 6.8): do_exit() and do_group_exit(). An exiting task lets go of
// its address space first (exit_mm → mmput → exit_mmap, where mmu notifiers get ->release), then
// its files (exit_files; ->release of the last references runs from exit_task_work). kemu tasks
// are reaped at once: nothing waits for a zombie (see docs/fidelity.md).

import { PF_EXITING, TASK_DEAD, type task_struct } from "./sched/core.ts";
import type { Kernel } from "./kernel.ts";
import type { mm_struct } from "../include/linux/mm_types.ts";
import { exit_files } from "../fs/file.ts";
import { exit_task_work } from "./task_work.ts";
import { mmput } from "./fork.ts";

/** SIGKILL: what zap_other_threads() queues for the rest of the group. */
export const SIGKILL = 9;

/** exit_mm(): the task stops using its mm; the last user tears the mappings down. */
async function exit_mm(tsk: task_struct): Promise<void> {
  const mm = tsk.mm as mm_struct | null;
  if (!mm) return;
  tsk.mm = null;
  await mmput(mm);
}

/** do_exit(): runs in the exiting task; afterwards the task is gone. */
export async function do_exit(k: Kernel, code: number): Promise<void> {
  const tsk = k.current;
  k.might_sleep("do_exit");
  if (k.WARN_ON(tsk.flags & PF_EXITING, `do_exit: ${tsk} is already exiting`)) return;
  tsk.flags |= PF_EXITING;
  tsk.exit_code = code;
  await exit_mm(tsk);
  await exit_files(tsk);
  await exit_task_work(tsk);
  tsk.__state = TASK_DEAD;
  // release_task(): no parent waits in kemu, the task is reaped as it dies.
  k.sched.release_task(tsk);
}

/** zap_other_threads(): the other threads of the group get SIGKILL. */
export function zap_other_threads(k: Kernel, tsk: task_struct): task_struct[] {
  const others = k.sched.all_tasks().filter((t) => t.tgid === tsk.tgid && t !== tsk && !(t.flags & PF_EXITING));
  for (const t of others) t.pending_signals.add(SIGKILL);
  return others;
}

/** do_group_exit(): the whole thread group goes; the others die on their way to user mode. */
export async function do_group_exit(k: Kernel, exit_code: number): Promise<void> {
  zap_other_threads(k, k.current);
  await do_exit(k, exit_code);
}

/** sys_exit(): this thread only. */
export async function sys_exit(k: Kernel, error_code: number): Promise<void> {
  await do_exit(k, (error_code & 0xff) * 256);
}

/** sys_exit_group(): the exit status lands in bits 8-15, as wait(2) reports it. */
export async function sys_exit_group(k: Kernel, error_code: number): Promise<void> {
  await do_group_exit(k, (error_code & 0xff) * 256);
}

// Mirrors kernel/entry/common.c (Linux 6.8): the generic work on every return to user mode,
// after a system call or a fault: queued task work (the final fput of closed files) and fatal
// signals (a thread whose group is exiting dies here instead of returning).

import type { Kernel } from "../kernel.ts";
import { PF_EXITING } from "../sched/core.ts";
import { task_work_run } from "../task_work.ts";
import { do_exit, SIGKILL } from "../exit.ts";

/** exit_to_user_mode_loop(): task work, then a pending SIGKILL ends the task. */
export async function exit_to_user_mode(k: Kernel): Promise<void> {
  const t = k.current;
  await task_work_run(t);
  if (t.pending_signals.has(SIGKILL) && !(t.flags & PF_EXITING)) await do_exit(k, SIGKILL);
}

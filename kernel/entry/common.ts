// Mirrors kernel/entry/common.c (Linux 6.8): the generic system-call entry and exit work. On the
// way back to user space a task runs its queued task work (the final fput of files it closed).

import type { task_struct } from "../sched/core.ts";
import { task_work_run } from "../task_work.ts";

/** syscall_exit_to_user_mode(): exit_to_user_mode_loop()'s TIF_NOTIFY_RESUME part. */
export async function syscall_exit_to_user_mode(t: task_struct): Promise<void> {
  await task_work_run(t);
}

// Mirrors kernel/task_work.c (Linux 6.8): callbacks a task runs on its way back to user space
// (or in do_exit). fput() queues the final __fput() here so that ->release runs in the closing
// task's context after the system call, as in the kernel.

import { ESRCH } from "../include/uapi/asm-generic/errno.ts";
import type { task_struct } from "./sched/core.ts";

export type task_work_fn = () => Promise<void> | void;

interface task_works {
  list: task_work_fn[];
  /** Set by exit_task_work(): no more work may be queued. */
  dead: boolean;
}

const TASK_WORKS = Symbol("task_works");

function works(t: task_struct): task_works {
  let w = t.slots.get(TASK_WORKS) as task_works | undefined;
  if (!w) {
    w = { list: [], dead: false };
    t.slots.set(TASK_WORKS, w);
  }
  return w;
}

/** task_work_add(): queues `fn` on `t`; -ESRCH once the task is past exit_task_work(). */
export function task_work_add(t: task_struct, fn: task_work_fn): number {
  const w = works(t);
  if (w.dead) return -ESRCH;
  w.list.push(fn);
  return 0;
}

export function task_work_pending(t: task_struct): boolean {
  return works(t).list.length > 0;
}

/** task_work_run(): runs the queued work of `t` (the current task), including work it queues. */
export async function task_work_run(t: task_struct): Promise<void> {
  const w = works(t);
  while (w.list.length) {
    const batch = w.list.splice(0);
    for (const fn of batch) await fn();
  }
}

/** exit_task_work(): the last run in do_exit; later task_work_add() calls fail. */
export async function exit_task_work(t: task_struct): Promise<void> {
  await task_work_run(t);
  works(t).dead = true;
}

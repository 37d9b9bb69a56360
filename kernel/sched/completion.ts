// Mirrors kernel/sched/completion.c and include/linux/completion.h (Linux 6.8): a counted
// "done" event with a FIFO of sleepers. complete() adds one to the count and wakes the first
// sleeper; complete_all() makes the count infinite and wakes everyone. A woken waiter takes one
// count back, unless the completion was completed for all. complete() never sleeps, so IRQ
// handlers and timers may call it.

import type { Kernel } from "../kernel.ts";
import { TASK_INTERRUPTIBLE, TASK_UNINTERRUPTIBLE, type task_struct } from "./core.ts";
import { MAX_SCHEDULE_TIMEOUT, TASK_KILLABLE, schedule_timeout, signal_pending_state } from "./wait.ts";
import { ERESTARTSYS } from "../../include/uapi/asm-generic/errno.ts";

/** The "done" value of complete_all(): every later wait returns at once. */
const UINT_MAX = 0xffffffff;

/** struct swait_queue: one sleeper, queued at most once. */
interface swait_queue {
  task: task_struct;
  queued: boolean;
}

export class completion {
  done = 0;
  /** The simple wait queue (swait): sleepers in arrival order. */
  readonly wait: swait_queue[] = [];
  readonly wait_desc: string;

  constructor(
    readonly k: Kernel,
    readonly name = "completion",
  ) {
    this.wait_desc = `completion ${name}`;
  }
}

/** init_completion(): not done, nobody waiting. */
export function init_completion(x: completion): void {
  x.done = 0;
  for (const w of x.wait) w.queued = false;
  x.wait.length = 0;
}

/** reinit_completion(): not done again; use only when nobody can be waiting. */
export function reinit_completion(x: completion): void {
  x.done = 0;
}

/** swake_up_locked(): the first sleeper leaves the queue and is woken. */
function swake_up_locked(x: completion): void {
  const w = x.wait.shift();
  if (!w) return;
  w.queued = false;
  x.k.sched.wake_up_process(w.task);
}

export function complete(x: completion): void {
  if (x.done !== UINT_MAX) x.done++;
  swake_up_locked(x);
}

export function complete_all(x: completion): void {
  x.done = UINT_MAX;
  while (x.wait.length) swake_up_locked(x);
}

/**
 * do_wait_for_common(): sleeps in `state` until done, the timeout (jiffies) runs out, or a
 * signal the state allows. Returns the jiffies left (at least 1) when done, 0 on timeout,
 * -ERESTARTSYS on a signal.
 */
async function wait_for_common(x: completion, timeout: number, state: number, what: string): Promise<number> {
  const k = x.k;
  k.might_sleep(what);
  if (!x.done) {
    const t = k.current;
    const w: swait_queue = { task: t, queued: false };
    try {
      do {
        if (signal_pending_state(state, t)) {
          timeout = -ERESTARTSYS;
          break;
        }
        if (!w.queued) {
          x.wait.push(w);
          w.queued = true;
        }
        k.sched.set_current_state(state);
        t.wait_desc = x.wait_desc;
        timeout = await schedule_timeout(k, timeout);
      } while (!x.done && timeout);
    } finally {
      // __finish_swait(): a waiter that was not woken through the queue leaves it.
      if (w.queued) x.wait.splice(x.wait.indexOf(w), 1);
    }
    if (!x.done) return timeout;
  }
  if (x.done !== UINT_MAX) x.done--;
  return timeout || 1;
}

export async function wait_for_completion(x: completion): Promise<void> {
  await wait_for_common(x, MAX_SCHEDULE_TIMEOUT, TASK_UNINTERRUPTIBLE, "wait_for_completion");
}

/** wait_for_completion_timeout(): jiffies left (at least 1) if completed, 0 on timeout. */
export function wait_for_completion_timeout(x: completion, timeout: number): Promise<number> {
  return wait_for_common(x, timeout, TASK_UNINTERRUPTIBLE, "wait_for_completion_timeout");
}

/** wait_for_completion_interruptible(): 0, or -ERESTARTSYS if a signal came first. */
export async function wait_for_completion_interruptible(x: completion): Promise<number> {
  const r = await wait_for_common(x, MAX_SCHEDULE_TIMEOUT, TASK_INTERRUPTIBLE, "wait_for_completion_interruptible");
  return r < 0 ? r : 0;
}

/** wait_for_completion_interruptible_timeout(): jiffies left, 0 on timeout, or -ERESTARTSYS. */
export function wait_for_completion_interruptible_timeout(x: completion, timeout: number): Promise<number> {
  return wait_for_common(x, timeout, TASK_INTERRUPTIBLE, "wait_for_completion_interruptible_timeout");
}

/** wait_for_completion_killable(): 0, or -ERESTARTSYS if a fatal signal came first. */
export async function wait_for_completion_killable(x: completion): Promise<number> {
  const r = await wait_for_common(x, MAX_SCHEDULE_TIMEOUT, TASK_KILLABLE, "wait_for_completion_killable");
  return r < 0 ? r : 0;
}

/** try_wait_for_completion(): takes one count if available, never sleeps. */
export function try_wait_for_completion(x: completion): boolean {
  if (!x.done) return false;
  if (x.done !== UINT_MAX) x.done--;
  return true;
}

/** completion_done(): true if a wait would not sleep. */
export function completion_done(x: completion): boolean {
  return x.done !== 0;
}

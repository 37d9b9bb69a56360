// Mirrors kernel/locking/mutex.c and kernel/locking/mutex-debug.c (Linux 6.8): sleeping mutual
// exclusion with an owner, a FIFO of waiters and lockdep annotations. Lockdep hears of the
// acquisition before the task blocks, as mutex_acquire() precedes the wait in the kernel, so an
// AB-BA inversion is reported even when it really deadlocks. Unlock hands the mutex straight to
// the first waiter (the kernel's MUTEX_FLAG_HANDOFF behaviour, here always on).

import type { Kernel } from "../kernel.ts";
import { TASK_INTERRUPTIBLE, TASK_UNINTERRUPTIBLE, type task_struct } from "../sched/core.ts";
import { TASK_KILLABLE, signal_pending_state } from "../sched/wait.ts";
import { EINTR } from "../../include/uapi/asm-generic/errno.ts";
import { LD_WAIT_SLEEP, lockdep_map } from "./lockdep.ts";

export { lockdep_assert_held, lockdep_assert_not_held, lockdep_is_held } from "./lockdep.ts";

export class mutex {
  owner: task_struct | null = null;
  /** Waiters in arrival order; unlock hands the mutex to the first. */
  readonly wait_list: task_struct[] = [];
  readonly dep_map: lockdep_map;
  /** What a waiter sleeps on, as deadlock reports print it. */
  readonly wait_desc: string;

  constructor(
    readonly k: Kernel,
    readonly name: string,
  ) {
    this.dep_map = new lockdep_map(name, 0, LD_WAIT_SLEEP);
    this.wait_desc = `mutex ${name}`;
  }
}

/**
 * need_resched(): another context is runnable or a timer is due, so a voluntary preemption
 * point should give up the CPU. The uncontended lock path checks this instead of awaiting
 * cond_resched(), which would cost a trip through the event loop even when nothing else can run.
 */
export function need_resched(k: Kernel): boolean {
  // The run queue is private to the scheduler; its length is all a preemption point needs.
  return k.sched.nr_running > 0 || k.timers.next_expiry() <= k.clock.ktime_get();
}

/** The result of every uncontended acquisition: one shared settled promise, no allocation. */
const ACQUIRED = Promise.resolve(0);

function __mutex_lock(m: mutex, state: number, subclass: number, what: string): Promise<number> {
  const k = m.k;
  if (k.might_sleep(what) && need_resched(k)) return __mutex_lock_preempted(m, state, subclass);
  return __mutex_lock_common(m, state, subclass);
}

async function __mutex_lock_preempted(m: mutex, state: number, subclass: number): Promise<number> {
  await m.k.sched.cond_resched();
  return __mutex_lock_common(m, state, subclass);
}

function __mutex_lock_common(m: mutex, state: number, subclass: number): Promise<number> {
  const k = m.k;
  const t = k.sched.current;
  k.lockdep.lock_acquire(m.dep_map, 0, false, subclass);
  if (m.owner === null) {
    m.owner = t;
    return ACQUIRED;
  }
  return __mutex_lock_slowpath(m, t, state);
}

function list_del<T>(list: T[], x: T): void {
  const i = list.indexOf(x);
  if (i >= 0) list.splice(i, 1);
}

/** The wait: queued at the tail, asleep until unlock hands the mutex over or a signal ends it. */
async function __mutex_lock_slowpath(m: mutex, t: task_struct, state: number): Promise<number> {
  const s = m.k.sched;
  m.wait_list.push(t);
  try {
    for (;;) {
      if (signal_pending_state(state, t)) {
        list_del(m.wait_list, t);
        m.k.lockdep.lock_release(m.dep_map);
        return -EINTR;
      }
      s.set_current_state(state);
      t.wait_desc = m.wait_desc;
      await s.schedule();
      if (m.owner === t) return 0;
    }
  } catch (e) {
    // A deadlock report or a halt: the mutex may have been handed over meanwhile; pass it on.
    if (m.owner === t) __mutex_handoff(m);
    else list_del(m.wait_list, t);
    m.k.lockdep.lock_release(m.dep_map);
    throw e;
  }
}

export function mutex_lock(m: mutex): Promise<void> {
  return __mutex_lock(m, TASK_UNINTERRUPTIBLE, 0, "mutex_lock") as Promise<unknown> as Promise<void>;
}

/** mutex_lock_nested(): lockdep sees subclass `subclass` of the mutex's class. */
export function mutex_lock_nested(m: mutex, subclass: number): Promise<void> {
  return __mutex_lock(m, TASK_UNINTERRUPTIBLE, subclass, "mutex_lock_nested") as Promise<unknown> as Promise<void>;
}

/** mutex_lock_interruptible(): 0, or -EINTR if a signal is pending while it would wait. */
export function mutex_lock_interruptible(m: mutex): Promise<number> {
  return __mutex_lock(m, TASK_INTERRUPTIBLE, 0, "mutex_lock_interruptible");
}

/** mutex_lock_killable(): 0, or -EINTR if a fatal signal is pending while it would wait. */
export function mutex_lock_killable(m: mutex): Promise<number> {
  return __mutex_lock(m, TASK_KILLABLE, 0, "mutex_lock_killable");
}

/** mutex_trylock(): takes it if free, never sleeps. */
export function mutex_trylock(m: mutex): boolean {
  if (m.owner !== null) return false;
  m.owner = m.k.sched.current;
  m.k.lockdep.lock_acquire(m.dep_map, 0, true);
  return true;
}

/** __mutex_handoff(): the first waiter becomes the owner and is woken; else the mutex is free. */
function __mutex_handoff(m: mutex): void {
  const w = m.wait_list.shift();
  if (w === undefined) {
    m.owner = null;
    return;
  }
  m.owner = w;
  m.k.sched.wake_up_process(w);
}

/** mutex_unlock(): only the owner may unlock; anyone else gets a WARN (and unlocks, as in Linux). */
export function mutex_unlock(m: mutex): void {
  const k = m.k;
  k.lockdep.lock_release(m.dep_map);
  if (m.owner !== k.sched.current) {
    k.WARN(true, "DEBUG_LOCKS_WARN_ON(__owner_task(owner) != current)");
    if (m.owner === null) return;
  }
  __mutex_handoff(m);
}

export function mutex_is_locked(m: mutex): boolean {
  return m.owner !== null;
}

/** mutex_destroy(): destroying a locked mutex is a bug. */
export function mutex_destroy(m: mutex): void {
  m.k.WARN(m.owner !== null, "DEBUG_LOCKS_WARN_ON(mutex_is_locked(lock))");
}

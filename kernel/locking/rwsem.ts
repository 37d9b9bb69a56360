// Mirrors kernel/locking/rwsem.c (Linux 6.8): reader-writer semaphores. Readers share, a writer
// is alone. Fairness follows the kernel: a reader only takes the lock at once if nobody is
// queued, so a waiting writer holds off new readers; when the lock frees up, a writer at the
// head of the queue gets it, otherwise every queued reader does (rwsem_mark_wake()).

import type { Kernel } from "../kernel.ts";
import { TASK_INTERRUPTIBLE, TASK_UNINTERRUPTIBLE, type task_struct } from "../sched/core.ts";
import { TASK_KILLABLE, signal_pending_state } from "../sched/wait.ts";
import { EINTR } from "../../include/uapi/asm-generic/errno.ts";
import { LD_WAIT_SLEEP, lockdep_map } from "./lockdep.ts";
import { need_resched } from "./mutex.ts";

export {
  lockdep_assert_held, lockdep_assert_held_read, lockdep_assert_held_write, lockdep_assert_not_held, lockdep_is_held,
} from "./lockdep.ts";

/** struct rwsem_waiter. */
interface rwsem_waiter {
  task: task_struct;
  write: boolean;
  /** Set by the waker when it hands the lock over. */
  granted: boolean;
}

export class rw_semaphore {
  /** Number of read holds. */
  readers = 0;
  writer: task_struct | null = null;
  readonly wait_list: rwsem_waiter[] = [];
  readonly dep_map: lockdep_map;
  readonly wait_desc_read: string;
  readonly wait_desc_write: string;

  constructor(
    readonly k: Kernel,
    readonly name: string,
  ) {
    this.dep_map = new lockdep_map(name, 0, LD_WAIT_SLEEP);
    this.wait_desc_read = `rwsem ${name} (read)`;
    this.wait_desc_write = `rwsem ${name} (write)`;
  }
}

const ACQUIRED = Promise.resolve(0);

/** rwsem_mark_wake(): a writer at the head takes a free lock; otherwise all queued readers enter. */
function rwsem_wake(sem: rw_semaphore): void {
  const first = sem.wait_list[0];
  if (!first) return;
  if (first.write) {
    if (sem.readers > 0 || sem.writer !== null) return;
    sem.wait_list.shift();
    sem.writer = first.task;
    grant(sem, first);
    return;
  }
  if (sem.writer !== null) return;
  for (const w of sem.wait_list.filter((x) => !x.write)) {
    sem.readers++;
    grant(sem, w);
  }
  // Splice the granted readers out in one pass; writers keep their order.
  const writers = sem.wait_list.filter((x) => x.write);
  sem.wait_list.length = 0;
  sem.wait_list.push(...writers);
}

function grant(sem: rw_semaphore, w: rwsem_waiter): void {
  w.granted = true;
  sem.k.sched.wake_up_process(w.task);
}

function can_read(sem: rw_semaphore): boolean {
  return sem.writer === null && sem.wait_list.length === 0;
}

function can_write(sem: rw_semaphore): boolean {
  return sem.writer === null && sem.readers === 0 && sem.wait_list.length === 0;
}

function __down(sem: rw_semaphore, write: boolean, state: number, subclass: number, what: string): Promise<number> {
  const k = sem.k;
  if (k.might_sleep(what) && need_resched(k)) return __down_preempted(sem, write, state, subclass);
  return __down_common(sem, write, state, subclass);
}

async function __down_preempted(sem: rw_semaphore, write: boolean, state: number, subclass: number): Promise<number> {
  await sem.k.sched.cond_resched();
  return __down_common(sem, write, state, subclass);
}

function __down_common(sem: rw_semaphore, write: boolean, state: number, subclass: number): Promise<number> {
  const t = sem.k.sched.current;
  sem.k.lockdep.lock_acquire(sem.dep_map, write ? 0 : 1, false, subclass);
  if (write ? can_write(sem) : can_read(sem)) {
    if (write) sem.writer = t;
    else sem.readers++;
    return ACQUIRED;
  }
  return rwsem_down_slowpath(sem, { task: t, write, granted: false }, state);
}

/** rwsem_down_read_slowpath() / rwsem_down_write_slowpath(): queue and sleep until granted. */
async function rwsem_down_slowpath(sem: rw_semaphore, w: rwsem_waiter, state: number): Promise<number> {
  const s = sem.k.sched;
  const t = w.task;
  sem.wait_list.push(w);
  try {
    for (;;) {
      if (signal_pending_state(state, t)) {
        cancel_wait(sem, w);
        sem.k.lockdep.lock_release(sem.dep_map);
        return -EINTR;
      }
      s.set_current_state(state);
      t.wait_desc = w.write ? sem.wait_desc_write : sem.wait_desc_read;
      await s.schedule();
      if (w.granted) return 0;
    }
  } catch (e) {
    // A deadlock report or a halt: give back what may have been granted meanwhile.
    if (w.granted) release(sem, w.write);
    else cancel_wait(sem, w);
    sem.k.lockdep.lock_release(sem.dep_map);
    throw e;
  }
}

/** A waiter gives up: readers queued behind a departing writer may now get in. */
function cancel_wait(sem: rw_semaphore, w: rwsem_waiter): void {
  const i = sem.wait_list.indexOf(w);
  if (i >= 0) sem.wait_list.splice(i, 1);
  if (i === 0) rwsem_wake(sem);
}

function release(sem: rw_semaphore, write: boolean): void {
  if (write) sem.writer = null;
  else sem.readers--;
  if (sem.readers === 0) rwsem_wake(sem);
}

export function down_read(sem: rw_semaphore): Promise<void> {
  return __down(sem, false, TASK_UNINTERRUPTIBLE, 0, "down_read") as Promise<unknown> as Promise<void>;
}

export function down_read_nested(sem: rw_semaphore, subclass: number): Promise<void> {
  return __down(sem, false, TASK_UNINTERRUPTIBLE, subclass, "down_read_nested") as Promise<unknown> as Promise<void>;
}

/** down_read_interruptible(): 0, or -EINTR if a signal is pending while it would wait. */
export function down_read_interruptible(sem: rw_semaphore): Promise<number> {
  return __down(sem, false, TASK_INTERRUPTIBLE, 0, "down_read_interruptible");
}

/** down_read_killable(): 0, or -EINTR if a fatal signal is pending while it would wait. */
export function down_read_killable(sem: rw_semaphore): Promise<number> {
  return __down(sem, false, TASK_KILLABLE, 0, "down_read_killable");
}

export function down_write(sem: rw_semaphore): Promise<void> {
  return __down(sem, true, TASK_UNINTERRUPTIBLE, 0, "down_write") as Promise<unknown> as Promise<void>;
}

export function down_write_nested(sem: rw_semaphore, subclass: number): Promise<void> {
  return __down(sem, true, TASK_UNINTERRUPTIBLE, subclass, "down_write_nested") as Promise<unknown> as Promise<void>;
}

/** down_write_killable(): 0, or -EINTR if a fatal signal is pending while it would wait. */
export function down_write_killable(sem: rw_semaphore): Promise<number> {
  return __down(sem, true, TASK_KILLABLE, 0, "down_write_killable");
}

/** down_read_trylock(): a read hold if nobody writes or waits; never sleeps. */
export function down_read_trylock(sem: rw_semaphore): boolean {
  if (!can_read(sem)) return false;
  sem.readers++;
  sem.k.lockdep.lock_acquire(sem.dep_map, 1, true);
  return true;
}

export function down_write_trylock(sem: rw_semaphore): boolean {
  if (!can_write(sem)) return false;
  sem.writer = sem.k.sched.current;
  sem.k.lockdep.lock_acquire(sem.dep_map, 0, true);
  return true;
}

export function up_read(sem: rw_semaphore): void {
  const k = sem.k;
  k.lockdep.lock_release(sem.dep_map);
  if (k.WARN(sem.readers === 0, `DEBUG_RWSEMS_WARN_ON(!is_rwsem_reader_owned(sem)): ${sem.name}`)) return;
  release(sem, false);
}

export function up_write(sem: rw_semaphore): void {
  const k = sem.k;
  k.lockdep.lock_release(sem.dep_map);
  if (k.WARN(sem.writer !== k.sched.current, `DEBUG_RWSEMS_WARN_ON(sem->owner != current): ${sem.name}`) && sem.writer === null) return;
  release(sem, true);
}

/** downgrade_write(): the writer keeps a read hold and lets queued readers in. */
export function downgrade_write(sem: rw_semaphore): void {
  const k = sem.k;
  if (k.WARN(sem.writer !== k.sched.current, `DEBUG_RWSEMS_WARN_ON(sem->owner != current): ${sem.name}`)) return;
  k.lockdep.lock_downgrade(sem.dep_map);
  sem.writer = null;
  sem.readers = 1;
  rwsem_wake(sem);
}

export function rwsem_is_locked(sem: rw_semaphore): boolean {
  return sem.writer !== null || sem.readers > 0;
}

/** rwsem_is_contended(): someone is queued (mmap_lock users back off on this). */
export function rwsem_is_contended(sem: rw_semaphore): boolean {
  return sem.wait_list.length > 0;
}

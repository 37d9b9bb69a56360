// Mirrors kernel/sched/wait.c and include/linux/wait.h (Linux 6.8): wait queues and the
// wait_event() family, plus the task-state and signal helpers they use (include/linux/sched.h,
// include/linux/sched/signal.h) and schedule_timeout() in jiffies (kernel/time/timer.c).
// The sleep follows the kernel's protocol: queue the entry and set the task state, test the
// condition, then schedule(); a wake-up between the test and schedule() makes the task runnable
// again, so it is never lost.

import type { Kernel } from "../kernel.ts";
import { TASK_INTERRUPTIBLE, TASK_UNINTERRUPTIBLE, TASK_IDLE, TASK_RUNNING, type task_struct } from "./core.ts";
import { jiffies_to_nsecs } from "../time/timekeeping.ts";
import { ERESTARTSYS } from "../../include/uapi/asm-generic/errno.ts";

export const TASK_WAKEKILL = 0x0100;
export const TASK_KILLABLE = TASK_WAKEKILL | TASK_UNINTERRUPTIBLE;
/** The states a plain wake_up() wakes. */
export const TASK_NORMAL = TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE;
/** LONG_MAX: "no timeout" for schedule_timeout() and the wait functions. */
export const MAX_SCHEDULE_TIMEOUT = Number.MAX_SAFE_INTEGER;

/** SIGKILL (include/uapi/asm-generic/signal.h). */
const SIGKILL = 9;

export function signal_pending(t: task_struct): boolean {
  return t.pending_signals.size > 0;
}

export function fatal_signal_pending(t: task_struct): boolean {
  return t.pending_signals.has(SIGKILL);
}

/** signal_pending_state(): would a signal end a sleep in `state`? */
export function signal_pending_state(state: number, t: task_struct): boolean {
  if (!(state & (TASK_INTERRUPTIBLE | TASK_WAKEKILL))) return false;
  if (!signal_pending(t)) return false;
  return (state & TASK_INTERRUPTIBLE) !== 0 || fatal_signal_pending(t);
}

/**
 * schedule_timeout(): sleeps in the state already set for up to `timeout` jiffies (expiring on
 * a jiffy boundary, as the timer wheel does); returns the jiffies left, 0 when it expired.
 */
export async function schedule_timeout(k: Kernel, timeout: number): Promise<number> {
  if (timeout === MAX_SCHEDULE_TIMEOUT) {
    await k.sched.schedule();
    return timeout;
  }
  const expire = k.jiffies + Math.max(0, timeout);
  await k.schedule_timeout(jiffies_to_nsecs(expire) - k.ktime_get());
  return Math.max(0, expire - k.jiffies);
}

// ---- wait queues --------------------------------------------------------------------------------

export const WQ_FLAG_EXCLUSIVE = 0x01;

/** A wake function returns true if it woke the task; it may take the entry off the queue. */
export type wait_queue_func_t = (wq_entry: wait_queue_entry, mode: number) => boolean;

export class wait_queue_entry {
  flags = 0;
  /** The queue this entry is on, null when off every queue (list_empty(&entry->entry)). */
  head: wait_queue_head_t | null = null;

  constructor(
    readonly task: task_struct,
    public func: wait_queue_func_t = autoremove_wake_function,
  ) {}
}

export class wait_queue_head_t {
  /** Entries in wake order: non-exclusive waiters at the front, exclusive ones at the back. */
  readonly head: wait_queue_entry[] = [];
  /** What a task sleeping here waits on, for deadlock and hung-task reports. */
  readonly wait_desc: string;

  constructor(
    readonly k: Kernel,
    readonly name: string,
  ) {
    this.wait_desc = `waitqueue ${name}`;
  }
}

/** init_waitqueue_head(): an empty queue (whoever was queued is forgotten, as in the kernel). */
export function init_waitqueue_head(wq: wait_queue_head_t): void {
  for (const e of wq.head) e.head = null;
  wq.head.length = 0;
}

export function add_wait_queue(wq: wait_queue_head_t, e: wait_queue_entry): void {
  e.flags &= ~WQ_FLAG_EXCLUSIVE;
  e.head = wq;
  wq.head.unshift(e);
}

export function add_wait_queue_exclusive(wq: wait_queue_head_t, e: wait_queue_entry): void {
  e.flags |= WQ_FLAG_EXCLUSIVE;
  e.head = wq;
  wq.head.push(e);
}

/** list_del_init(): off its queue, if on one. */
function list_del_init(e: wait_queue_entry): void {
  const wq = e.head;
  if (!wq) return;
  const i = wq.head.indexOf(e);
  if (i >= 0) wq.head.splice(i, 1);
  e.head = null;
}

export function remove_wait_queue(_wq: wait_queue_head_t, e: wait_queue_entry): void {
  list_del_init(e);
}

/** waitqueue_active(): someone is queued (callers order this against their condition update). */
export function waitqueue_active(wq: wait_queue_head_t): boolean {
  return wq.head.length > 0;
}

export function wq_has_sleeper(wq: wait_queue_head_t): boolean {
  return waitqueue_active(wq);
}

/** try_to_wake_up(): wakes `t` only if its state is one of `mode`. */
function try_to_wake_up(k: Kernel, t: task_struct, mode: number): boolean {
  if (!(t.__state & mode)) return false;
  return k.sched.wake_up_process(t);
}

export function default_wake_function(e: wait_queue_entry, mode: number): boolean {
  return e.head !== null && try_to_wake_up(e.head.k, e.task, mode);
}

/** autoremove_wake_function(): a woken entry leaves the queue; the sleeper re-queues if needed. */
export function autoremove_wake_function(e: wait_queue_entry, mode: number): boolean {
  const ret = default_wake_function(e, mode);
  if (ret) list_del_init(e);
  return ret;
}

/** __wake_up(): wakes every non-exclusive waiter and up to nr_exclusive exclusive ones (0 = all). */
export function __wake_up(wq: wait_queue_head_t, mode: number, nr_exclusive: number): number {
  if (wq.head.length === 0) return 0;
  let woken = 0;
  for (const e of wq.head.slice()) {
    if (e.head !== wq) continue;
    const ret = e.func(e, mode);
    if (ret) woken++;
    if (ret && e.flags & WQ_FLAG_EXCLUSIVE && --nr_exclusive === 0) break;
  }
  return woken;
}

export function wake_up(wq: wait_queue_head_t): void {
  __wake_up(wq, TASK_NORMAL, 1);
}

export function wake_up_nr(wq: wait_queue_head_t, nr: number): void {
  __wake_up(wq, TASK_NORMAL, nr);
}

export function wake_up_all(wq: wait_queue_head_t): void {
  __wake_up(wq, TASK_NORMAL, 0);
}

export function wake_up_interruptible(wq: wait_queue_head_t): void {
  __wake_up(wq, TASK_INTERRUPTIBLE, 1);
}

export function wake_up_interruptible_all(wq: wait_queue_head_t): void {
  __wake_up(wq, TASK_INTERRUPTIBLE, 0);
}

/** prepare_to_wait(): queue (once) and set the state; the caller then tests and schedules. */
export function prepare_to_wait(wq: wait_queue_head_t, e: wait_queue_entry, state: number): void {
  if (e.head === null) add_wait_queue(wq, e);
  set_state(wq.k, e.task, state, wq.wait_desc);
}

export function prepare_to_wait_exclusive(wq: wait_queue_head_t, e: wait_queue_entry, state: number): void {
  if (e.head === null) add_wait_queue_exclusive(wq, e);
  set_state(wq.k, e.task, state, wq.wait_desc);
}

/** prepare_to_wait_event(): like prepare_to_wait(), but a pending signal dequeues and fails. */
export function prepare_to_wait_event(wq: wait_queue_head_t, e: wait_queue_entry, state: number): number {
  if (signal_pending_state(state, e.task)) {
    list_del_init(e);
    return -ERESTARTSYS;
  }
  if (e.head === null) {
    if (e.flags & WQ_FLAG_EXCLUSIVE) add_wait_queue_exclusive(wq, e);
    else add_wait_queue(wq, e);
  }
  set_state(wq.k, e.task, state, wq.wait_desc);
  return 0;
}

/** finish_wait(): running again and off the queue. */
export function finish_wait(_wq: wait_queue_head_t, e: wait_queue_entry): void {
  e.task.__state = TASK_RUNNING;
  list_del_init(e);
}

function set_state(k: Kernel, t: task_struct, state: number, desc: string): void {
  k.sched.set_current_state(state);
  t.wait_desc = desc;
}

// ---- wait_event() and friends -------------------------------------------------------------------

const RESOLVED = Promise.resolve(0);

/**
 * ___wait_event(): the common loop. With `timed`, `ret` counts down the jiffies left and the
 * result follows ___wait_cond_timeout(): 0 if the condition is still false at expiry, at least 1
 * if it became true. A pending signal in an interruptible state gives -ERESTARTSYS.
 */
async function ___wait_event(wq: wait_queue_head_t, condition: () => boolean, state: number, exclusive: boolean,
  timed: boolean, timeout: number, desc?: string): Promise<number> {
  const e = new wait_queue_entry(wq.k.current);
  if (exclusive) e.flags = WQ_FLAG_EXCLUSIVE;
  let ret = timed ? timeout : 0;
  try {
    for (;;) {
      const intr = prepare_to_wait_event(wq, e, state);
      if (desc) e.task.wait_desc = desc;
      const cond = condition();
      if (timed && cond && ret === 0) ret = 1;
      if (cond || (timed && ret === 0)) break;
      if (intr) return intr;
      if (timed) ret = await schedule_timeout(wq.k, ret);
      else await wq.k.sched.schedule();
    }
  } finally {
    finish_wait(wq, e);
  }
  return ret;
}

/** The fast path every variant shares: the condition already holds, so nothing sleeps. */
function wait_event_common(wq: wait_queue_head_t, condition: () => boolean, state: number, what: string): Promise<number> {
  wq.k.might_sleep(what);
  if (condition()) return RESOLVED;
  return ___wait_event(wq, condition, state, false, false, 0);
}

/** wait_event(): sleeps uninterruptibly until `condition` is true. */
export function wait_event(wq: wait_queue_head_t, condition: () => boolean): Promise<void> {
  return wait_event_common(wq, condition, TASK_UNINTERRUPTIBLE, "wait_event") as Promise<unknown> as Promise<void>;
}

/**
 * wait_event() on a queue shared by many kinds of waits (flush_work, synchronize_irq, ...):
 * `desc` names this wait in deadlock reports instead of the queue.
 */
export async function wait_event_desc(wq: wait_queue_head_t, condition: () => boolean, desc: string): Promise<void> {
  wq.k.might_sleep(desc);
  if (condition()) return;
  await ___wait_event(wq, condition, TASK_UNINTERRUPTIBLE, false, false, 0, desc);
}

/** wait_event_idle(): like wait_event() but in TASK_IDLE, which never counts as blocked. */
export function wait_event_idle(wq: wait_queue_head_t, condition: () => boolean): Promise<void> {
  return wait_event_common(wq, condition, TASK_IDLE, "wait_event_idle") as Promise<unknown> as Promise<void>;
}

/** wait_event_interruptible(): 0, or -ERESTARTSYS if a signal came first. */
export function wait_event_interruptible(wq: wait_queue_head_t, condition: () => boolean): Promise<number> {
  return wait_event_common(wq, condition, TASK_INTERRUPTIBLE, "wait_event_interruptible");
}

/** wait_event_killable(): 0, or -ERESTARTSYS if a fatal signal came first. */
export function wait_event_killable(wq: wait_queue_head_t, condition: () => boolean): Promise<number> {
  return wait_event_common(wq, condition, TASK_KILLABLE, "wait_event_killable");
}

/** wait_event_exclusive(): queued at the tail; wake_up() wakes one exclusive waiter. */
export function wait_event_exclusive(wq: wait_queue_head_t, condition: () => boolean): Promise<void> {
  wq.k.might_sleep("wait_event_exclusive");
  if (condition()) return RESOLVED as Promise<unknown> as Promise<void>;
  return ___wait_event(wq, condition, TASK_UNINTERRUPTIBLE, true, false, 0) as Promise<unknown> as Promise<void>;
}

function wait_event_timeout_common(wq: wait_queue_head_t, condition: () => boolean, state: number, timeout: number,
  what: string): Promise<number> {
  wq.k.might_sleep(what);
  const cond = condition();
  if (cond) return Promise.resolve(timeout === 0 ? 1 : timeout);
  if (timeout === 0) return Promise.resolve(0);
  return ___wait_event(wq, condition, state, false, true, timeout);
}

/**
 * wait_event_timeout(): 0 if `condition` is still false after `timeout` jiffies, 1 if it became
 * true only as the time ran out, otherwise the jiffies left.
 */
export function wait_event_timeout(wq: wait_queue_head_t, condition: () => boolean, timeout: number): Promise<number> {
  return wait_event_timeout_common(wq, condition, TASK_UNINTERRUPTIBLE, timeout, "wait_event_timeout");
}

/** wait_event_interruptible_timeout(): as wait_event_timeout(), or -ERESTARTSYS on a signal. */
export function wait_event_interruptible_timeout(wq: wait_queue_head_t, condition: () => boolean, timeout: number): Promise<number> {
  return wait_event_timeout_common(wq, condition, TASK_INTERRUPTIBLE, timeout, "wait_event_interruptible_timeout");
}

/** wait_event_idle_timeout(): as wait_event_timeout() in TASK_IDLE. */
export function wait_event_idle_timeout(wq: wait_queue_head_t, condition: () => boolean, timeout: number): Promise<number> {
  return wait_event_timeout_common(wq, condition, TASK_IDLE, timeout, "wait_event_idle_timeout");
}

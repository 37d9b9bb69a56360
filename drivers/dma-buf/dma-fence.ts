// Mirrors drivers/dma-buf/dma-fence.c and include/linux/dma-fence.h (Linux 6.8): one-shot
// completion points on timelines (contexts). A fence is signalled once; callbacks registered
// before that run once, under the fence lock with interrupts off; waiting first enables
// signalling (ops.enable_signaling, the hook KFD's eviction fences use to start an eviction)
// and then sleeps until the fence signals, a signal arrives (interruptible waits) or the timeout
// in jiffies runs out. Fence contexts are numbered per machine.

import type { Kernel } from "../../kernel/kernel.ts";
import { spinlock_t, spin_lock_irqsave, spin_unlock_irqrestore, lockdep_assert_held } from "../../kernel/locking/spinlock.ts";
import { kref, kref_get, kref_put, kref_read } from "../../include/linux/kref.ts";
import { MAX_SCHEDULE_TIMEOUT, schedule_timeout, signal_pending } from "../../kernel/sched/wait.ts";
import { TASK_INTERRUPTIBLE, TASK_RUNNING, TASK_UNINTERRUPTIBLE } from "../../kernel/sched/core.ts";
import { EINVAL, ENOENT, ERESTARTSYS } from "../../include/uapi/asm-generic/errno.ts";

export const DMA_FENCE_FLAG_SIGNALED_BIT = 0;
export const DMA_FENCE_FLAG_TIMESTAMP_BIT = 1;
export const DMA_FENCE_FLAG_ENABLE_SIGNAL_BIT = 2;
export const DMA_FENCE_FLAG_USER_BITS = 3;

export interface dma_fence_ops {
  use_64bit_seqno?: boolean;
  get_driver_name(fence: dma_fence): string;
  get_timeline_name(fence: dma_fence): string;
  /** Asked once, when someone first needs the fence to signal; false means "already done". */
  enable_signaling?(fence: dma_fence): boolean;
  /** Polled by dma_fence_is_signaled() for fences whose signalling is not interrupt driven. */
  signaled?(fence: dma_fence): boolean;
  /** A custom wait (returns like dma_fence_wait_timeout); the default sleeps on the callback. */
  wait?(fence: dma_fence, intr: boolean, timeout: number): Promise<number>;
  release?(fence: dma_fence): void;
}

export type dma_fence_func_t = (fence: dma_fence, cb: dma_fence_cb) => void;

export class dma_fence_cb {
  func: dma_fence_func_t | null = null;
  /** On the fence's callback list. */
  queued = false;
}

export class dma_fence {
  flags = 0;
  /** Virtual ns at which the fence signalled. */
  timestamp = 0;
  /** A negative errno recorded before signalling (dma_fence_set_error). */
  error = 0;
  readonly refcount: kref;
  cb_list: dma_fence_cb[] = [];

  constructor(
    readonly k: Kernel,
    public ops: dma_fence_ops,
    readonly lock: spinlock_t,
    readonly context: number,
    public seqno: number,
  ) {
    this.refcount = new kref(k);
  }
}

/** Per-machine fence context counter (the kernel's global dma_fence_context_counter). */
const context_counters = new WeakMap<Kernel, { next: number }>();

/** dma_fence_context_alloc(): `num` fresh, consecutive fence contexts. */
export function dma_fence_context_alloc(k: Kernel, num: number): number {
  let c = context_counters.get(k);
  if (!c) {
    // Context 0 is the stub fence's, as in the kernel.
    c = { next: 1 };
    context_counters.set(k, c);
  }
  const first = c.next;
  c.next += num;
  return first;
}

/** dma_fence_init(): refcount 1, unsignalled. */
export function dma_fence_init(k: Kernel, ops: dma_fence_ops, lock: spinlock_t, context: number, seqno: number): dma_fence {
  return new dma_fence(k, ops, lock, context, seqno);
}

function test_bit(f: dma_fence, bit: number): boolean {
  return (f.flags & (1 << bit)) !== 0;
}

function test_and_set_bit(f: dma_fence, bit: number): boolean {
  const was = test_bit(f, bit);
  f.flags |= 1 << bit;
  return was;
}

export function dma_fence_get(f: dma_fence): dma_fence {
  kref_get(f.refcount);
  return f;
}

export function dma_fence_put(f: dma_fence | null): void {
  if (!f) return;
  kref_put(f.refcount, () => dma_fence_release(f));
}

function dma_fence_release(f: dma_fence): void {
  // A fence freed with waiters or callbacks still queued would leave them hanging.
  f.k.WARN_ON(f.cb_list.length > 0 && !test_bit(f, DMA_FENCE_FLAG_SIGNALED_BIT), `dma_fence_release: fence ${f.context}:${f.seqno} released with pending callbacks`);
  f.ops.release?.(f);
}

export function dma_fence_refcount(f: dma_fence): number {
  return kref_read(f.refcount);
}

/** dma_fence_set_error(): only before the fence signals. */
export function dma_fence_set_error(f: dma_fence, error: number): void {
  f.k.WARN_ON(test_bit(f, DMA_FENCE_FLAG_SIGNALED_BIT), "dma_fence_set_error on a signaled fence");
  f.k.WARN_ON(error >= 0 || error < -4095, `dma_fence_set_error: invalid error ${error}`);
  f.error = error;
}

/** dma_fence_signal_timestamp_locked(): -EINVAL if it already signalled. */
export function dma_fence_signal_timestamp_locked(f: dma_fence, timestamp: number): number {
  lockdep_assert_held(f.lock);
  if (test_and_set_bit(f, DMA_FENCE_FLAG_SIGNALED_BIT)) return -EINVAL;
  const cbs = f.cb_list;
  f.cb_list = [];
  f.timestamp = timestamp;
  f.flags |= 1 << DMA_FENCE_FLAG_TIMESTAMP_BIT;
  for (const cb of cbs) {
    cb.queued = false;
    cb.func?.(f, cb);
  }
  return 0;
}

export function dma_fence_signal_locked(f: dma_fence): number {
  return dma_fence_signal_timestamp_locked(f, f.k.ktime_get());
}

/** dma_fence_signal(): signals and runs the callbacks; -EINVAL if it already signalled. */
export function dma_fence_signal(f: dma_fence): number {
  const flags = spin_lock_irqsave(f.lock);
  const ret = dma_fence_signal_locked(f);
  spin_unlock_irqrestore(f.lock, flags);
  return ret;
}

/** dma_fence_is_signaled(): the flag, or the driver's poll (which then signals the fence). */
export function dma_fence_is_signaled(f: dma_fence): boolean {
  if (test_bit(f, DMA_FENCE_FLAG_SIGNALED_BIT)) return true;
  if (f.ops.signaled?.(f)) {
    dma_fence_signal(f);
    return true;
  }
  return false;
}

export function dma_fence_is_signaled_locked(f: dma_fence): boolean {
  if (test_bit(f, DMA_FENCE_FLAG_SIGNALED_BIT)) return true;
  if (f.ops.signaled?.(f)) {
    dma_fence_signal_locked(f);
    return true;
  }
  return false;
}

/** dma_fence_get_status(): 0 pending, 1 signalled, negative the recorded error. */
export function dma_fence_get_status(f: dma_fence): number {
  if (!dma_fence_is_signaled(f)) return 0;
  return f.error || 1;
}

/** Calls ops.enable_signaling once; if it says the fence is done, signals it. Lock held. */
function __dma_fence_enable_signaling(f: dma_fence): boolean {
  if (test_and_set_bit(f, DMA_FENCE_FLAG_ENABLE_SIGNAL_BIT)) return true;
  if (test_bit(f, DMA_FENCE_FLAG_SIGNALED_BIT)) return false;
  if (f.ops.enable_signaling && !f.ops.enable_signaling(f)) {
    dma_fence_signal_locked(f);
    return false;
  }
  return true;
}

export function dma_fence_enable_sw_signaling(f: dma_fence): void {
  const flags = spin_lock_irqsave(f.lock);
  __dma_fence_enable_signaling(f);
  spin_unlock_irqrestore(f.lock, flags);
}

/**
 * dma_fence_add_callback(): `func` runs once when the fence signals. -ENOENT (and nothing
 * queued) if it already did; -EINVAL for a missing function.
 */
export function dma_fence_add_callback(f: dma_fence, cb: dma_fence_cb, func: dma_fence_func_t): number {
  if (!func) return -EINVAL;
  if (test_bit(f, DMA_FENCE_FLAG_SIGNALED_BIT)) {
    cb.queued = false;
    return -ENOENT;
  }
  const flags = spin_lock_irqsave(f.lock);
  let ret = 0;
  if (__dma_fence_enable_signaling(f)) {
    cb.func = func;
    cb.queued = true;
    f.cb_list.push(cb);
  } else {
    cb.queued = false;
    ret = -ENOENT;
  }
  spin_unlock_irqrestore(f.lock, flags);
  return ret;
}

/** dma_fence_remove_callback(): true if the callback was still queued (and is now removed). */
export function dma_fence_remove_callback(f: dma_fence, cb: dma_fence_cb): boolean {
  const flags = spin_lock_irqsave(f.lock);
  const i = f.cb_list.indexOf(cb);
  if (i >= 0) f.cb_list.splice(i, 1);
  cb.queued = false;
  spin_unlock_irqrestore(f.lock, flags);
  return i >= 0;
}

/**
 * dma_fence_default_wait(): sleeps until signalled. Returns the jiffies left (at least 1) when
 * signalled, 0 on timeout, -ERESTARTSYS if interrupted.
 */
export async function dma_fence_default_wait(f: dma_fence, intr: boolean, timeout: number): Promise<number> {
  const k = f.k;
  const t = k.current;
  const cb = new dma_fence_cb();
  let flags = spin_lock_irqsave(f.lock);
  let locked = true;
  let ret = timeout;
  try {
    if (test_bit(f, DMA_FENCE_FLAG_SIGNALED_BIT)) return ret || 1;
    if (intr && signal_pending(t)) return -ERESTARTSYS;
    if (!__dma_fence_enable_signaling(f)) return ret || 1;
    if (!timeout) return 0;
    cb.func = () => k.sched.wake_up_process(t);
    cb.queued = true;
    f.cb_list.push(cb);
    while (!test_bit(f, DMA_FENCE_FLAG_SIGNALED_BIT) && ret > 0) {
      k.sched.set_current_state(intr ? TASK_INTERRUPTIBLE : TASK_UNINTERRUPTIBLE);
      t.wait_desc = `dma_fence ${f.ops.get_timeline_name(f)} seqno ${f.seqno}`;
      spin_unlock_irqrestore(f.lock, flags);
      locked = false;
      ret = await schedule_timeout(k, ret);
      flags = spin_lock_irqsave(f.lock);
      locked = true;
      if (ret > 0 && intr && signal_pending(t)) ret = -ERESTARTSYS;
    }
    k.sched.set_current_state(TASK_RUNNING);
    if (ret === 0 && test_bit(f, DMA_FENCE_FLAG_SIGNALED_BIT)) ret = 1;
    return ret;
  } finally {
    if (cb.queued) {
      const i = f.cb_list.indexOf(cb);
      if (i >= 0) f.cb_list.splice(i, 1);
    }
    if (locked) spin_unlock_irqrestore(f.lock, flags);
  }
}

/**
 * dma_fence_wait_timeout(): waits up to `timeout` jiffies (MAX_SCHEDULE_TIMEOUT for ever).
 * Returns the jiffies left (>= 1) once signalled, 0 on timeout, -ERESTARTSYS if interrupted.
 */
export async function dma_fence_wait_timeout(f: dma_fence, intr: boolean, timeout: number): Promise<number> {
  if (timeout < 0) return -EINVAL;
  f.k.might_sleep("dma_fence_wait_timeout");
  if (f.ops.wait) return f.ops.wait(f, intr, timeout);
  return dma_fence_default_wait(f, intr, timeout);
}

/** dma_fence_wait(): 0 once signalled, or -ERESTARTSYS. */
export async function dma_fence_wait(f: dma_fence, intr: boolean): Promise<number> {
  const ret = await dma_fence_wait_timeout(f, intr, MAX_SCHEDULE_TIMEOUT);
  return ret < 0 ? ret : 0;
}

/** dma_fence_is_later(): is `f1` after `f2` on their (shared) timeline. */
export function dma_fence_is_later(f1: dma_fence, f2: dma_fence): boolean {
  if (f1.context !== f2.context) return false;
  return f1.seqno > f2.seqno;
}

const stub_ops: dma_fence_ops = {
  get_driver_name: () => "stub",
  get_timeline_name: () => "stub",
};

/** dma_fence_get_stub(): an already signalled fence (one per call in kemu; refcounted like any). */
export function dma_fence_get_stub(k: Kernel): dma_fence {
  const f = new dma_fence(k, stub_ops, new spinlock_t(k, "dma_fence_stub_lock"), 0, 0);
  dma_fence_signal(f);
  return f;
}

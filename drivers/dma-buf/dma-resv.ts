// Mirrors drivers/dma-buf/dma-resv.c and include/linux/dma-resv.h (Linux 6.8): the reservation
// object of a buffer — a lock (ww_mutex in the kernel) and the fences of the work that uses the
// buffer, each with a usage (KERNEL < WRITE < READ < BOOKKEEP). Adding a fence of a context that
// already has one replaces the older fence; signalled fences are pruned on the way.
// kemu's lock is a plain mutex of class "reservation_ww_class_mutex": no acquire contexts or
// -EDEADLK backoff, so code that locks two reservations uses trylock for the second (as TTM's
// eviction does).

import type { Kernel } from "../../kernel/kernel.ts";
import { mutex, mutex_lock, mutex_lock_interruptible, mutex_trylock, mutex_unlock, mutex_is_locked, lockdep_assert_held } from "../../kernel/locking/mutex.ts";
import {
  dma_fence_get, dma_fence_is_later, dma_fence_is_signaled, dma_fence_put, dma_fence_wait_timeout, type dma_fence,
} from "./dma-fence.ts";

export enum dma_resv_usage {
  DMA_RESV_USAGE_KERNEL = 0,
  DMA_RESV_USAGE_WRITE = 1,
  DMA_RESV_USAGE_READ = 2,
  DMA_RESV_USAGE_BOOKKEEP = 3,
}

interface resv_fence {
  fence: dma_fence;
  usage: dma_resv_usage;
}

export class dma_resv {
  readonly lock: mutex;
  fences: resv_fence[] = [];

  constructor(readonly k: Kernel) {
    this.lock = new mutex(k, "reservation_ww_class_mutex");
  }
}

/** dma_resv_usage_rw(): the usage a new access must wait for (writers wait for readers too). */
export function dma_resv_usage_rw(write: boolean): dma_resv_usage {
  return write ? dma_resv_usage.DMA_RESV_USAGE_READ : dma_resv_usage.DMA_RESV_USAGE_WRITE;
}

export async function dma_resv_lock(obj: dma_resv): Promise<number> {
  await mutex_lock(obj.lock);
  return 0;
}

export function dma_resv_lock_interruptible(obj: dma_resv): Promise<number> {
  return mutex_lock_interruptible(obj.lock);
}

export function dma_resv_trylock(obj: dma_resv): boolean {
  return mutex_trylock(obj.lock);
}

export function dma_resv_unlock(obj: dma_resv): void {
  mutex_unlock(obj.lock);
}

export function dma_resv_is_locked(obj: dma_resv): boolean {
  return mutex_is_locked(obj.lock);
}

/** True if the current task holds the lock. */
export function dma_resv_locking_ctx_is_current(obj: dma_resv): boolean {
  return obj.lock.owner === obj.k.current;
}

export function dma_resv_assert_held(obj: dma_resv): void {
  lockdep_assert_held(obj.lock);
}

/** dma_resv_reserve_fences(): room for `num` more fences (arrays grow, so only the lock is checked). */
export function dma_resv_reserve_fences(obj: dma_resv, _num: number): number {
  dma_resv_assert_held(obj);
  return 0;
}

/** dma_resv_add_fence(): tracks `fence`; replaces an older one of the same context. */
export function dma_resv_add_fence(obj: dma_resv, fence: dma_fence, usage: dma_resv_usage): void {
  dma_resv_assert_held(obj);
  obj.fences = obj.fences.filter((e) => {
    const stale = (e.fence.context === fence.context && !dma_fence_is_later(e.fence, fence) && e.usage >= usage) ||
      dma_fence_is_signaled(e.fence);
    if (stale) dma_fence_put(e.fence);
    return !stale;
  });
  obj.fences.push({ fence: dma_fence_get(fence), usage });
}

/** The unsignalled fences with usage at most `usage` (dma_resv_for_each_fence_unlocked). */
export function dma_resv_fences(obj: dma_resv, usage: dma_resv_usage): dma_fence[] {
  return obj.fences.filter((e) => e.usage <= usage && !dma_fence_is_signaled(e.fence)).map((e) => e.fence);
}

/** dma_resv_test_signaled(): every fence up to `usage` has signalled. */
export function dma_resv_test_signaled(obj: dma_resv, usage: dma_resv_usage): boolean {
  return dma_resv_fences(obj, usage).length === 0;
}

/**
 * dma_resv_wait_timeout(): waits for the fences up to `usage`. Returns the jiffies left (>0),
 * 0 on timeout, or -ERESTARTSYS.
 */
export async function dma_resv_wait_timeout(obj: dma_resv, usage: dma_resv_usage, intr: boolean, timeout: number): Promise<number> {
  let left = timeout;
  for (const f of dma_resv_fences(obj, usage)) {
    dma_fence_get(f);
    const r = await dma_fence_wait_timeout(f, intr, left);
    dma_fence_put(f);
    if (r <= 0) return r;
    left = r;
  }
  return left || 1;
}

/** dma_resv_fini(): drops every fence reference. */
export function dma_resv_fini(obj: dma_resv): void {
  for (const e of obj.fences) dma_fence_put(e.fence);
  obj.fences = [];
}

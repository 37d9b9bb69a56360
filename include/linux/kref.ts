// Mirrors include/linux/kref.h over include/linux/refcount.h and lib/refcount.c (Linux 6.8):
// reference counts that call a release function when the last reference goes. As refcount_t
// does, a get from zero (use after free) or a put below zero WARNs and saturates the count, so
// the object leaks (and the leak check reports it) instead of being freed twice.

import type { Kernel } from "../../kernel/kernel.ts";
import { mutex, mutex_lock, mutex_unlock } from "../../kernel/locking/mutex.ts";
import { spinlock_t, spin_lock, spin_unlock } from "../../kernel/locking/spinlock.ts";

/** REFCOUNT_SATURATED: INT_MIN / 2; a saturated count never reaches zero again. */
export const REFCOUNT_SATURATED = -0x40000000;

export class kref {
  /** refcount_t refs: starts at 1, like kref_init(). */
  refs = 1;

  constructor(readonly k: Kernel) {}
}

export function kref_init(r: kref): void {
  r.refs = 1;
}

export function kref_read(r: kref): number {
  return r.refs;
}

/** refcount_warn_saturate(). */
function saturate(r: kref, msg: string): void {
  r.refs = REFCOUNT_SATURATED;
  r.k.WARN_ONCE(true, `refcount_t: ${msg}`);
}

export function kref_get(r: kref): void {
  const old = r.refs;
  if (old === 0) saturate(r, "addition on 0; use-after-free.");
  else if (old < 0) saturate(r, "saturated; leaking memory.");
  else r.refs = old + 1;
}

/** refcount_dec_and_test(). */
function dec_and_test(r: kref): boolean {
  const old = r.refs;
  if (old === REFCOUNT_SATURATED) return false;
  if (old <= 0) {
    saturate(r, "underflow; use-after-free.");
    return false;
  }
  r.refs = old - 1;
  return old === 1;
}

/** kref_put(): drops a reference; returns 1 if this was the last one and `release` ran. */
export function kref_put(r: kref, release: (r: kref) => void): number {
  if (!dec_and_test(r)) return 0;
  release(r);
  return 1;
}

/** kref_get_unless_zero(): 1 and a new reference, or 0 if the object is already dying. */
export function kref_get_unless_zero(r: kref): number {
  if (r.refs === 0) return 0;
  kref_get(r);
  return 1;
}

/**
 * kref_put_mutex(): like kref_put(), but the final put happens with `lock` held, and `release`
 * must drop it. A reference taken meanwhile (under `lock`) keeps the object.
 */
export async function kref_put_mutex(r: kref, release: (r: kref) => void, lock: mutex): Promise<number> {
  if (r.refs > 1) return kref_put(r, release);
  await mutex_lock(lock);
  if (!dec_and_test(r)) {
    mutex_unlock(lock);
    return 0;
  }
  release(r);
  return 1;
}

/** kref_put_lock(): kref_put_mutex() with a spinlock. */
export function kref_put_lock(r: kref, release: (r: kref) => void, lock: spinlock_t): number {
  if (r.refs > 1) return kref_put(r, release);
  spin_lock(lock);
  if (!dec_and_test(r)) {
    spin_unlock(lock);
    return 0;
  }
  release(r);
  return 1;
}

// Mirrors kernel/notifier.c and include/linux/notifier.h (Linux 6.8): notifier chains.
// A chain is a list of callbacks sorted by priority (higher first; equal priorities keep their
// registration order), walked until one returns a value with NOTIFY_STOP_MASK. Three flavours:
// atomic (spinlock for writers, an RCU read section for the walk: callbacks must not sleep),
// blocking (an rwsem: callbacks may sleep, so they and the walk are async) and raw (the caller
// locks). The SRCU flavour is not modelled.

import { EBUSY, EEXIST, ENOENT } from "../include/uapi/asm-generic/errno.ts";
import type { Kernel } from "./kernel.ts";
import { spinlock_t, spin_lock_irqsave, spin_unlock_irqrestore } from "./locking/spinlock.ts";
import { rw_semaphore, down_read, up_read, down_write, up_write } from "./locking/rwsem.ts";

export const NOTIFY_DONE = 0x0000;
export const NOTIFY_OK = 0x0001;
export const NOTIFY_STOP_MASK = 0x8000;
export const NOTIFY_BAD = NOTIFY_STOP_MASK | 0x0002;
export const NOTIFY_STOP = NOTIFY_OK | NOTIFY_STOP_MASK;

/** notifier_from_errno(): a -errno carried through a chain's return value (stops the walk). */
export function notifier_from_errno(err: number): number {
  return err ? NOTIFY_STOP_MASK | (NOTIFY_OK - err) : NOTIFY_OK;
}

/** notifier_to_errno(): the -errno a callback encoded, or 0. */
export function notifier_to_errno(ret: number): number {
  const v = ret & ~NOTIFY_STOP_MASK;
  return v > NOTIFY_OK ? NOTIFY_OK - v : 0;
}

/** struct notifier_block for atomic and raw chains: the callback runs atomically. */
export interface notifier_block<D = unknown> {
  notifier_call: (nb: notifier_block<D>, action: number, data: D) => number;
  /** Higher runs first; default 0. */
  priority?: number;
}

/** struct notifier_block on a blocking chain: the callback may sleep. */
export interface blocking_notifier_block<D = unknown> {
  notifier_call: (nb: blocking_notifier_block<D>, action: number, data: D) => number | Promise<number>;
  priority?: number;
}

type any_block = { priority?: number };

/** The singly linked list a head points to (the nb->next links live here). */
class notifier_list<B extends any_block> {
  head: B | null = null;
  readonly next = new Map<B, B | null>();

  /** notifier_chain_register(): 0, -EEXIST (already on the chain) or -EBUSY (unique priority taken). */
  register(k: Kernel, n: B, unique_priority: boolean, fn_name: string): number {
    if (this.next.has(n)) {
      k.WARN(true, `notifier callback ${fn_name} already registered`);
      return -EEXIST;
    }
    const prio = n.priority ?? 0;
    let prev: B | null = null;
    let cur = this.head;
    while (cur && (cur.priority ?? 0) >= prio) {
      if (unique_priority && (cur.priority ?? 0) === prio) return -EBUSY;
      prev = cur;
      cur = this.next.get(cur) ?? null;
    }
    this.next.set(n, cur);
    if (prev) this.next.set(prev, n);
    else this.head = n;
    return 0;
  }

  /** notifier_chain_unregister(): 0 or -ENOENT. */
  unregister(n: B): number {
    if (!this.next.has(n)) return -ENOENT;
    const after = this.next.get(n) ?? null;
    if (this.head === n) this.head = after;
    else for (const [b, nx] of this.next) if (nx === n) this.next.set(b, after);
    this.next.delete(n);
    return 0;
  }

  /** The link to follow after `nb`, read before calling it so it may unregister itself. */
  after(nb: B): B | null {
    return this.next.get(nb) ?? null;
  }
}

function name_of(b: { notifier_call: { name: string } }): string {
  return b.notifier_call.name || "<anonymous>";
}

/** notifier_call_chain(): the walk; returns the last callback's value. */
function notifier_call_chain<D>(k: Kernel, nl: notifier_list<notifier_block<D>>, val: number, v: D, nr_to_call: number): number {
  let ret = NOTIFY_DONE;
  for (let nb = nl.head; nb && nr_to_call; nr_to_call--) {
    const next = nl.after(nb);
    ret = nb.notifier_call(nb, val, v);
    if (typeof ret !== "number") {
      // An async callback on an atomic chain would sleep inside the RCU read section.
      k.WARN(true, `notifier callback ${name_of(nb)} returned a Promise on an atomic chain`);
      ret = NOTIFY_DONE;
    }
    if (ret & NOTIFY_STOP_MASK) break;
    nb = next;
  }
  return ret;
}

async function notifier_call_chain_async<D>(nl: notifier_list<blocking_notifier_block<D>>, val: number, v: D,
  nr_to_call: number): Promise<number> {
  let ret = NOTIFY_DONE;
  for (let nb = nl.head; nb && nr_to_call; nr_to_call--) {
    const next = nl.after(nb);
    ret = await nb.notifier_call(nb, val, v);
    if (ret & NOTIFY_STOP_MASK) break;
    nb = next;
  }
  return ret;
}

// ---- atomic chains --------------------------------------------------------------------------

/** ATOMIC_NOTIFIER_HEAD: writers take the spinlock; the walk is an RCU read section. */
export class atomic_notifier_head<D = unknown> {
  readonly lock: spinlock_t;
  readonly chain = new notifier_list<notifier_block<D>>();

  constructor(
    readonly k: Kernel,
    readonly name = "nh",
  ) {
    this.lock = new spinlock_t(k, `${name}.lock`);
  }
}

function atomic_register<D>(nh: atomic_notifier_head<D>, n: notifier_block<D>, unique: boolean): number {
  const flags = spin_lock_irqsave(nh.lock);
  const ret = nh.chain.register(nh.k, n, unique, name_of(n));
  spin_unlock_irqrestore(nh.lock, flags);
  return ret;
}

/** atomic_notifier_chain_register(): callable from any context. */
export function atomic_notifier_chain_register<D>(nh: atomic_notifier_head<D>, n: notifier_block<D>): number {
  return atomic_register(nh, n, false);
}

/** atomic_notifier_chain_register_unique_prio(): -EBUSY if the priority is taken. */
export function atomic_notifier_chain_register_unique_prio<D>(nh: atomic_notifier_head<D>, n: notifier_block<D>): number {
  return atomic_register(nh, n, true);
}

/**
 * atomic_notifier_chain_unregister(): the kernel follows with synchronize_rcu(), so this may
 * sleep; kemu's walks never outlive a context switch, so no wait is needed, but calling it from
 * atomic context (a callback unregistering itself) is still the bug it is in Linux.
 */
export function atomic_notifier_chain_unregister<D>(nh: atomic_notifier_head<D>, n: notifier_block<D>): number {
  nh.k.might_sleep("atomic_notifier_chain_unregister");
  const flags = spin_lock_irqsave(nh.lock);
  const ret = nh.chain.unregister(n);
  spin_unlock_irqrestore(nh.lock, flags);
  return ret;
}

/**
 * atomic_notifier_call_chain(): runs the callbacks in an RCU read section (preemption off, as
 * with non-preemptible RCU), so a callback that tries to sleep gets the might_sleep splat.
 */
export function atomic_notifier_call_chain<D>(nh: atomic_notifier_head<D>, val: number, v: D): number {
  const t = nh.k.current;
  t.preempt_count++;
  try {
    return notifier_call_chain(nh.k, nh.chain, val, v, -1);
  } finally {
    t.preempt_count--;
  }
}

export function atomic_notifier_call_chain_is_empty<D>(nh: atomic_notifier_head<D>): boolean {
  return nh.chain.head === null;
}

// ---- blocking chains ------------------------------------------------------------------------

/** BLOCKING_NOTIFIER_HEAD: an rwsem; the walk holds it for reading, writers for writing. */
export class blocking_notifier_head<D = unknown> {
  readonly rwsem: rw_semaphore;
  readonly chain = new notifier_list<blocking_notifier_block<D>>();

  constructor(
    readonly k: Kernel,
    readonly name = "nh",
  ) {
    this.rwsem = new rw_semaphore(k, `${name}.rwsem`);
  }
}

async function blocking_register<D>(nh: blocking_notifier_head<D>, n: blocking_notifier_block<D>, unique: boolean): Promise<number> {
  await down_write(nh.rwsem);
  const ret = nh.chain.register(nh.k, n, unique, name_of(n));
  up_write(nh.rwsem);
  return ret;
}

export function blocking_notifier_chain_register<D>(nh: blocking_notifier_head<D>, n: blocking_notifier_block<D>): Promise<number> {
  return blocking_register(nh, n, false);
}

export function blocking_notifier_chain_register_unique_prio<D>(nh: blocking_notifier_head<D>,
  n: blocking_notifier_block<D>): Promise<number> {
  return blocking_register(nh, n, true);
}

export async function blocking_notifier_chain_unregister<D>(nh: blocking_notifier_head<D>, n: blocking_notifier_block<D>): Promise<number> {
  await down_write(nh.rwsem);
  const ret = nh.chain.unregister(n);
  up_write(nh.rwsem);
  return ret;
}

/** blocking_notifier_call_chain(): an empty chain returns NOTIFY_DONE without the rwsem. */
export async function blocking_notifier_call_chain<D>(nh: blocking_notifier_head<D>, val: number, v: D): Promise<number> {
  if (!nh.chain.head) return NOTIFY_DONE;
  await down_read(nh.rwsem);
  try {
    return await notifier_call_chain_async(nh.chain, val, v, -1);
  } finally {
    up_read(nh.rwsem);
  }
}

// ---- raw chains -------------------------------------------------------------------------------

/** RAW_NOTIFIER_HEAD: no locking at all; the caller serialises. */
export class raw_notifier_head<D = unknown> {
  readonly chain = new notifier_list<notifier_block<D>>();

  constructor(readonly k: Kernel) {}
}

export function raw_notifier_chain_register<D>(nh: raw_notifier_head<D>, n: notifier_block<D>): number {
  return nh.chain.register(nh.k, n, false, name_of(n));
}

export function raw_notifier_chain_unregister<D>(nh: raw_notifier_head<D>, n: notifier_block<D>): number {
  return nh.chain.unregister(n);
}

export function raw_notifier_call_chain<D>(nh: raw_notifier_head<D>, val: number, v: D): number {
  return notifier_call_chain(nh.k, nh.chain, val, v, -1);
}

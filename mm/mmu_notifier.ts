// Mirrors mm/mmu_notifier.c and include/linux/mmu_notifier.h (Linux 6.5, the last form with
// ->invalidate_range, which AMD IOMMUv2 uses; ->arch_invalidate_secondary_tlbs of 6.6 is also
// offered). Classic whole-mm subscribers and interval subscribers with the exact sequence
// protocol: an even global seq means idle, every window touching intervals uses one odd value.

import { EAGAIN, EINVAL, ENOMEM, EOVERFLOW } from "../include/uapi/asm-generic/errno.ts";
import type { mm_struct } from "../include/linux/mm_types.ts";
import type { Kernel } from "../kernel/kernel.ts";
import { spinlock_t, spin_lock, spin_unlock } from "../kernel/locking/spinlock.ts";
import { lockdep_map } from "../kernel/locking/lockdep.ts";
import { wait_queue_head_t, wait_event, wake_up_all } from "../kernel/sched/wait.ts";
import { mmap_write_lock, mmap_write_unlock, mmap_assert_write_locked } from "../include/linux/mmap_lock.ts";
import { mmgrab, mmdrop } from "../kernel/fork.ts";
import {
  rb_root_cached, interval_tree_node, interval_tree_insert, interval_tree_remove, interval_tree_iter_first,
  interval_tree_iter_next,
} from "../lib/interval_tree.ts";
import { ftrace } from "../include/linux/ftrace.ts";
import {
  owner_name, trace_mmu_interval_invalidate, trace_mmu_notifier_invalidate_range_end,
  trace_mmu_notifier_invalidate_range_start, trace_mmu_notifier_release,
} from "../include/trace/events/mmu_notifier.ts";

// enum mmu_notifier_event
export const MMU_NOTIFY_UNMAP = 0;
export const MMU_NOTIFY_CLEAR = 1;
export const MMU_NOTIFY_PROTECTION_VMA = 2;
export const MMU_NOTIFY_PROTECTION_PAGE = 3;
export const MMU_NOTIFY_SOFT_DIRTY = 4;
export const MMU_NOTIFY_RELEASE = 5;
export const MMU_NOTIFY_MIGRATE = 6;
export const MMU_NOTIFY_EXCLUSIVE = 7;

export const MMU_NOTIFIER_RANGE_BLOCKABLE = 1 << 0;

/** The whole address space, [0, ULONG_MAX]: 2^64 stands in for ULONG_MAX + 1. */
const ULONG_MAX_END = 2 ** 64;

export class mmu_notifier_range {
  mm!: mm_struct;
  start = 0;
  /** Exclusive. */
  end = 0;
  flags = 0;
  event = MMU_NOTIFY_UNMAP;
  owner: unknown = null;
}

export function mmu_notifier_range_init(
  range: mmu_notifier_range, event: number, flags: number, mm: mm_struct, start: number, end: number,
): void {
  range.event = event;
  range.flags = flags;
  range.mm = mm;
  range.start = start;
  range.end = end;
  range.owner = null;
}

export function mmu_notifier_range_init_owner(
  range: mmu_notifier_range, event: number, flags: number, mm: mm_struct, start: number, end: number, owner: unknown,
): void {
  mmu_notifier_range_init(range, event, flags, mm, start, end);
  range.owner = owner;
}

export function mmu_notifier_range_blockable(range: mmu_notifier_range): boolean {
  return (range.flags & MMU_NOTIFIER_RANGE_BLOCKABLE) !== 0;
}

type MaybeAsync<T> = T | Promise<T>;

export interface mmu_notifier_ops {
  release?(sub: mmu_notifier, mm: mm_struct): MaybeAsync<void>;
  clear_flush_young?(sub: mmu_notifier, mm: mm_struct, start: number, end: number): boolean;
  clear_young?(sub: mmu_notifier, mm: mm_struct, start: number, end: number): boolean;
  test_young?(sub: mmu_notifier, mm: mm_struct, address: number): boolean;
  /** May sleep only when the range is blockable; a non-blockable one may return -EAGAIN. */
  invalidate_range_start?(sub: mmu_notifier, range: mmu_notifier_range): MaybeAsync<number>;
  invalidate_range_end?(sub: mmu_notifier, range: mmu_notifier_range): MaybeAsync<void>;
  /** ≤6.5: after PTEs change, for devices that walk the CPU page tables (IOMMUv2 PASID). */
  invalidate_range?(sub: mmu_notifier, mm: mm_struct, start: number, end: number): void;
  /** 6.6+: the same hook, called from the TLB flush code. */
  arch_invalidate_secondary_tlbs?(sub: mmu_notifier, mm: mm_struct, start: number, end: number): void;
  alloc_notifier?(mm: mm_struct): mmu_notifier | null;
  free_notifier?(sub: mmu_notifier): void;
}

export class mmu_notifier {
  mm: mm_struct | null = null;
  users = 0;
  /** Linked on the mm's subscription list (the kernel's hlist node). */
  linked = false;
  constructor(public ops: mmu_notifier_ops) {}
}

export interface mmu_interval_notifier_ops {
  /** Must call mmu_interval_set_seq(sub, cur_seq) under the driver lock. */
  invalidate(sub: mmu_interval_notifier, range: mmu_notifier_range, cur_seq: number): MaybeAsync<boolean>;
}

export class mmu_interval_notifier extends interval_tree_node {
  ops!: mmu_interval_notifier_ops;
  mm: mm_struct | null = null;
  invalidate_seq = 0;
  /** Linked in the tree (RB_EMPTY_NODE is false). */
  in_tree = false;
  /** Queued on the deferred list (hlist_unhashed is false). */
  deferred = false;
}

/** Per-mm state hung off mm->notifier_subscriptions. */
export class mmu_notifier_subscriptions {
  list: mmu_notifier[] = [];
  has_itree = false;
  invalidate_seq = 2;
  active_invalidate_ranges = 0;
  readonly itree = new rb_root_cached();
  readonly lock: spinlock_t;
  readonly wq: wait_queue_head_t;
  deferred_list: mmu_interval_notifier[] = [];
  /** SRCU readers inside classic callbacks; synchronize_srcu waits for zero. */
  srcu_readers = 0;
  readonly srcu_wq: wait_queue_head_t;

  constructor(k: Kernel) {
    this.lock = new spinlock_t(k, "&subscriptions->lock");
    this.wq = new wait_queue_head_t(k, "&subscriptions->wq");
    this.srcu_wq = new wait_queue_head_t(k, "srcu");
  }
}

/** Lockdep map of the invalidation window: taking it orders callbacks after mmap_lock. */
const maps = new WeakMap<Kernel, lockdep_map>();
function start_map(k: Kernel): lockdep_map {
  let m = maps.get(k);
  if (!m) {
    m = new lockdep_map("mmu_notifier_invalidate_range_start");
    maps.set(k, m);
  }
  return m;
}

function subs_of(mm: mm_struct): mmu_notifier_subscriptions | null {
  return mm.notifier_subscriptions as mmu_notifier_subscriptions | null;
}

export function mm_has_notifiers(mm: mm_struct): boolean {
  return mm.notifier_subscriptions !== null;
}

// ---- interval subscriptions ---------------------------------------------------------------

function mn_itree_is_invalidating(subs: mmu_notifier_subscriptions): boolean {
  return subs.invalidate_seq % 2 === 1;
}

/** Opens a window; returns the first overlapping interval and the window's seq. */
function mn_itree_inv_start_range(subs: mmu_notifier_subscriptions, range: mmu_notifier_range): [mmu_interval_notifier | null, number] {
  spin_lock(subs.lock);
  subs.active_invalidate_ranges++;
  const node = interval_tree_iter_first(subs.itree, range.start, range.end - 1) as mmu_interval_notifier | null;
  if (node) subs.invalidate_seq |= 1;
  const seq = subs.invalidate_seq;
  spin_unlock(subs.lock);
  return [node, seq];
}

/** Closes a window; the last one to close makes the seq even and applies deferred changes. */
function mn_itree_inv_end(subs: mmu_notifier_subscriptions): void {
  spin_lock(subs.lock);
  if (--subs.active_invalidate_ranges || !mn_itree_is_invalidating(subs)) {
    spin_unlock(subs.lock);
    return;
  }
  subs.invalidate_seq++;
  // Deferred entries: a node already in the tree was queued for removal, any other for insertion.
  for (const sub of subs.deferred_list) {
    sub.deferred = false;
    if (sub.in_tree) {
      interval_tree_remove(sub, subs.itree);
      sub.in_tree = false;
    } else {
      interval_tree_insert(sub, subs.itree);
      sub.in_tree = true;
    }
  }
  subs.deferred_list = [];
  spin_unlock(subs.lock);
  wake_up_all(subs.wq);
}

function mn_itree_next(sub: mmu_interval_notifier, range: mmu_notifier_range): mmu_interval_notifier | null {
  return interval_tree_iter_next(sub, range.start, range.end - 1) as mmu_interval_notifier | null;
}

async function call_invalidate(
  k: Kernel, sub: mmu_interval_notifier, range: mmu_notifier_range, seq: number,
): Promise<boolean> {
  const r = sub.ops.invalidate(sub, range, seq);
  if (r instanceof Promise && !mmu_notifier_range_blockable(range)) {
    k.WARN(true, "mmu_interval_notifier: invalidate slept in a non-blockable range");
  }
  const ret = await r;
  trace_mmu_interval_invalidate.trace(k, { start: sub.start, last: sub.last, event: range.event, seq, ret });
  return ret;
}

/** The fields of the invalidate_range_start/end events. */
function range_event(range: mmu_notifier_range) {
  return {
    mm: range.mm.context_id, start: range.start, end: range.end, event: range.event,
    owner: owner_name(range.owner), blockable: mmu_notifier_range_blockable(range),
  };
}

async function mn_itree_invalidate(k: Kernel, subs: mmu_notifier_subscriptions, range: mmu_notifier_range): Promise<number> {
  using _ = ftrace(k, "mn_itree_invalidate");
  const blockable = mmu_notifier_range_blockable(range);
  const [first, seq] = mn_itree_inv_start_range(subs, range);
  for (let sub = first; sub; sub = mn_itree_next(sub, range)) {
    if (await call_invalidate(k, sub, range, seq)) continue;
    if (k.WARN_ON(blockable)) continue;
    mn_itree_inv_end(subs);
    return -EAGAIN;
  }
  return 0;
}

/**
 * mmu_interval_read_begin(): the seq a reader must later pass to read_retry. Sleeps while a
 * window that already invalidated this interval is still open.
 */
export async function mmu_interval_read_begin(sub: mmu_interval_notifier): Promise<number> {
  const mm = sub.mm!;
  using _ = ftrace(mm.k, "mmu_interval_read_begin");
  const subs = subs_of(mm)!;
  spin_lock(subs.lock);
  const seq = sub.invalidate_seq;
  const is_invalidating = seq === subs.invalidate_seq;
  spin_unlock(subs.lock);
  mm.k.lockdep.lock_map_acquire(start_map(mm.k));
  mm.k.lockdep.lock_map_release(start_map(mm.k));
  if (is_invalidating) await wait_event(subs.wq, () => subs.invalidate_seq !== seq);
  return seq;
}

/** Under the driver lock: true means an invalidation hit the interval since read_begin. */
export function mmu_interval_read_retry(sub: mmu_interval_notifier, seq: number): boolean {
  return sub.invalidate_seq !== seq;
}

/** Lockless hint: true is reliable, false may be stale. */
export function mmu_interval_check_retry(sub: mmu_interval_notifier, seq: number): boolean {
  return sub.invalidate_seq !== seq;
}

/** Called by ->invalidate under the driver lock, unconditionally. */
export function mmu_interval_set_seq(sub: mmu_interval_notifier, cur_seq: number): void {
  sub.invalidate_seq = cur_seq;
}

function __mmu_interval_notifier_insert(
  sub: mmu_interval_notifier, mm: mm_struct, subs: mmu_notifier_subscriptions, start: number, length: number,
  ops: mmu_interval_notifier_ops,
): number {
  sub.mm = mm;
  sub.ops = ops;
  sub.deferred = false;
  sub.in_tree = false;
  const last = start + length - 1;
  if (length === 0 || last >= ULONG_MAX_END || last < start) return -EOVERFLOW;
  sub.start = start;
  sub.last = last;
  if (mm.k.WARN_ON(mm.mm_users <= 0)) return -EINVAL;
  mmgrab(mm);
  spin_lock(subs.lock);
  if (subs.active_invalidate_ranges) {
    if (mn_itree_is_invalidating(subs)) {
      sub.deferred = true;
      subs.deferred_list.push(sub);
    } else {
      subs.invalidate_seq |= 1;
      interval_tree_insert(sub, subs.itree);
      sub.in_tree = true;
    }
    sub.invalidate_seq = subs.invalidate_seq;
  } else {
    mm.k.WARN_ON(mn_itree_is_invalidating(subs));
    sub.invalidate_seq = subs.invalidate_seq - 1;
    interval_tree_insert(sub, subs.itree);
    sub.in_tree = true;
  }
  spin_unlock(subs.lock);
  return 0;
}

/** mmu_interval_notifier_insert(): may take the mmap write lock to enable the tree. */
export async function mmu_interval_notifier_insert(
  sub: mmu_interval_notifier, mm: mm_struct, start: number, length: number, ops: mmu_interval_notifier_ops,
): Promise<number> {
  using _ = ftrace(mm.k, "mmu_interval_notifier_insert");
  mm.k.might_sleep("mmu_interval_notifier_insert");
  let subs = subs_of(mm);
  if (!subs || !subs.has_itree) {
    const ret = await mmu_notifier_register(null, mm);
    if (ret) return ret;
    subs = subs_of(mm)!;
  }
  return __mmu_interval_notifier_insert(sub, mm, subs, start, length, ops);
}

/** The same with the mmap write lock already held. */
export async function mmu_interval_notifier_insert_locked(
  sub: mmu_interval_notifier, mm: mm_struct, start: number, length: number, ops: mmu_interval_notifier_ops,
): Promise<number> {
  mmap_assert_write_locked(mm);
  let subs = subs_of(mm);
  if (!subs || !subs.has_itree) {
    const ret = __mmu_notifier_register(null, mm);
    if (ret) return ret;
    subs = subs_of(mm)!;
  }
  return __mmu_interval_notifier_insert(sub, mm, subs, start, length, ops);
}

/**
 * mmu_interval_notifier_remove(): after it returns no invalidate of `sub` runs or will run.
 * Must not be called from an invalidate callback (it waits for the window to close).
 */
export async function mmu_interval_notifier_remove(sub: mmu_interval_notifier): Promise<void> {
  const mm = sub.mm!;
  const subs = subs_of(mm)!;
  using _ = ftrace(mm.k, "mmu_interval_notifier_remove");
  mm.k.might_sleep("mmu_interval_notifier_remove");
  let seq = 0;
  spin_lock(subs.lock);
  if (mn_itree_is_invalidating(subs)) {
    if (!sub.in_tree) {
      // Never made it into the tree: drop the pending insert.
      subs.deferred_list = subs.deferred_list.filter((s) => s !== sub);
      sub.deferred = false;
    } else {
      sub.deferred = true;
      subs.deferred_list.push(sub);
      seq = subs.invalidate_seq;
    }
  } else {
    mm.k.WARN_ON(!sub.in_tree);
    if (sub.in_tree) interval_tree_remove(sub, subs.itree);
    sub.in_tree = false;
  }
  spin_unlock(subs.lock);
  mm.k.lockdep.lock_map_acquire(start_map(mm.k));
  mm.k.lockdep.lock_map_release(start_map(mm.k));
  if (seq) await wait_event(subs.wq, () => subs.invalidate_seq !== seq);
  mmdrop(mm);
}

// ---- classic subscriptions ----------------------------------------------------------------

function ops_are_valid(ops: mmu_notifier_ops): boolean {
  // 6.6: a secondary-TLB hook cannot be combined with start/end callbacks.
  return !(ops.arch_invalidate_secondary_tlbs && (ops.invalidate_range_start || ops.invalidate_range_end));
}

/** __mmu_notifier_register(): mmap write lock held; `sub === null` just enables the tree. */
export function __mmu_notifier_register(sub: mmu_notifier | null, mm: mm_struct): number {
  const k = mm.k;
  mmap_assert_write_locked(mm);
  if (k.WARN_ON(mm.mm_users <= 0)) return -EINVAL;
  if (sub && !ops_are_valid(sub.ops)) return -EINVAL;
  let subs = subs_of(mm);
  if (!subs) {
    // kemu: the kzalloc of this struct is not a fault-injection site (docs/fidelity.md).
    subs = new mmu_notifier_subscriptions(k);
    mm.notifier_subscriptions = subs;
  }
  if (sub) {
    sub.mm = mm;
    sub.users = 1;
    spin_lock(subs.lock);
    subs.list.unshift(sub); // hlist_add_head_rcu: newest first
    sub.linked = true;
    spin_unlock(subs.lock);
    mmgrab(mm);
  } else {
    subs.has_itree = true;
  }
  return 0;
}

export async function mmu_notifier_register(sub: mmu_notifier | null, mm: mm_struct): Promise<number> {
  await mmap_write_lock(mm);
  const ret = __mmu_notifier_register(sub, mm);
  mmap_write_unlock(mm);
  return ret;
}

function find_get_mmu_notifier(mm: mm_struct, ops: mmu_notifier_ops): mmu_notifier | null {
  const subs = subs_of(mm);
  if (!subs) return null;
  spin_lock(subs.lock);
  const sub = subs.list.find((s) => s.ops === ops && s.users > 0) ?? null;
  if (sub) sub.users++;
  spin_unlock(subs.lock);
  return sub;
}

/** mmu_notifier_get_locked(): one subscription per (ops, mm), refcounted by users. */
export function mmu_notifier_get_locked(ops: mmu_notifier_ops, mm: mm_struct): mmu_notifier | number {
  mmap_assert_write_locked(mm);
  const existing = find_get_mmu_notifier(mm, ops);
  if (existing) return existing;
  const sub = ops.alloc_notifier?.(mm) ?? null;
  if (!sub) return -ENOMEM;
  sub.ops = ops;
  const ret = __mmu_notifier_register(sub, mm);
  if (ret) {
    ops.free_notifier?.(sub);
    return ret;
  }
  return sub;
}

export async function mmu_notifier_get(ops: mmu_notifier_ops, mm: mm_struct): Promise<mmu_notifier | number> {
  await mmap_write_lock(mm);
  const r = mmu_notifier_get_locked(ops, mm);
  mmap_write_unlock(mm);
  return r;
}

/** mmu_notifier_put(): drops a get reference; the last one unlinks and frees the subscription. */
export function mmu_notifier_put(sub: mmu_notifier): void {
  const mm = sub.mm!;
  const subs = subs_of(mm)!;
  spin_lock(subs.lock);
  if (mm.k.WARN_ON(!sub.users) || --sub.users) {
    spin_unlock(subs.lock);
    return;
  }
  unlink(subs, sub);
  spin_unlock(subs.lock);
  // The kernel frees from an SRCU callback once current readers are done.
  sub.ops.free_notifier?.(sub);
  mmdrop(mm);
}

function unlink(subs: mmu_notifier_subscriptions, sub: mmu_notifier): void {
  subs.list = subs.list.filter((s) => s !== sub);
  sub.linked = false;
}

async function synchronize_srcu(subs: mmu_notifier_subscriptions): Promise<void> {
  if (subs.srcu_readers) await wait_event(subs.srcu_wq, () => subs.srcu_readers === 0);
}

function srcu_read_lock(subs: mmu_notifier_subscriptions): void {
  subs.srcu_readers++;
}

function srcu_read_unlock(subs: mmu_notifier_subscriptions): void {
  if (--subs.srcu_readers === 0) wake_up_all(subs.srcu_wq);
}

/** mmu_notifier_unregister(): calls ->release if still linked; no callback runs afterwards. */
export async function mmu_notifier_unregister(sub: mmu_notifier, mm: mm_struct): Promise<void> {
  const subs = subs_of(mm)!;
  mm.k.might_sleep("mmu_notifier_unregister");
  if (sub.linked) {
    srcu_read_lock(subs);
    try {
      await sub.ops.release?.(sub, mm);
    } finally {
      srcu_read_unlock(subs);
    }
    spin_lock(subs.lock);
    unlink(subs, sub);
    spin_unlock(subs.lock);
  }
  await synchronize_srcu(subs);
  mmdrop(mm);
}

/** mmu_notifier_synchronize(): modules call it on exit so no freeing callback is pending. */
export async function mmu_notifier_synchronize(mm: mm_struct): Promise<void> {
  const subs = subs_of(mm);
  if (subs) await synchronize_srcu(subs);
}

// ---- invalidation entry points used by the mm ----------------------------------------------

async function mn_hlist_invalidate_range_start(k: Kernel, subs: mmu_notifier_subscriptions, range: mmu_notifier_range): Promise<number> {
  using _ = ftrace(k, "mn_hlist_invalidate_range_start");
  let ret = 0;
  let failed: mmu_notifier | null = null;
  srcu_read_lock(subs);
  try {
    for (const sub of subs.list) {
      if (!sub.ops.invalidate_range_start) continue;
      const r = sub.ops.invalidate_range_start(sub, range);
      const _ret = r instanceof Promise ? await r : r;
      if (!_ret) continue;
      k.pr_info(`mmu_notifier: invalidate_range_start callback failed with ${_ret} in ${mmu_notifier_range_blockable(range) ? "" : "non-"}blockable context`);
      k.WARN_ON(mmu_notifier_range_blockable(range) || _ret !== -EAGAIN);
      ret = _ret;
      failed = sub;
      break;
    }
    if (ret) {
      // Undo: every subscriber that saw start before the failing one gets its end.
      for (const sub of subs.list) {
        if (sub === failed) break;
        await sub.ops.invalidate_range_end?.(sub, range);
      }
    }
  } finally {
    srcu_read_unlock(subs);
  }
  return ret;
}

async function __mmu_notifier_invalidate_range_start(k: Kernel, range: mmu_notifier_range): Promise<number> {
  using _ = ftrace(k, "__mmu_notifier_invalidate_range_start");
  trace_mmu_notifier_invalidate_range_start.trace(k, range_event(range));
  const subs = subs_of(range.mm)!;
  if (subs.has_itree) {
    const ret = await mn_itree_invalidate(k, subs, range);
    if (ret) return ret;
  }
  if (subs.list.length) return await mn_hlist_invalidate_range_start(k, subs, range);
  return 0;
}

/** Opens a blockable invalidation window over [range.start, range.end). */
export async function mmu_notifier_invalidate_range_start(range: mmu_notifier_range): Promise<void> {
  const k = range.mm.k;
  k.might_sleep("mmu_notifier_invalidate_range_start");
  k.lockdep.lock_map_acquire(start_map(k));
  try {
    if (mm_has_notifiers(range.mm)) {
      range.flags |= MMU_NOTIFIER_RANGE_BLOCKABLE;
      await __mmu_notifier_invalidate_range_start(k, range);
    }
  } finally {
    k.lockdep.lock_map_release(start_map(k));
  }
}

/** The OOM-reaper variant: callbacks must not sleep and may refuse with -EAGAIN. */
export async function mmu_notifier_invalidate_range_start_nonblock(range: mmu_notifier_range): Promise<number> {
  const k = range.mm.k;
  if (!mm_has_notifiers(range.mm)) return 0;
  range.flags &= ~MMU_NOTIFIER_RANGE_BLOCKABLE;
  return __mmu_notifier_invalidate_range_start(k, range);
}

async function mn_hlist_invalidate_end(subs: mmu_notifier_subscriptions, range: mmu_notifier_range, only_end: boolean): Promise<void> {
  srcu_read_lock(subs);
  try {
    for (const sub of subs.list) {
      if (!only_end) sub.ops.invalidate_range?.(sub, range.mm, range.start, range.end);
      await sub.ops.invalidate_range_end?.(sub, range);
    }
  } finally {
    srcu_read_unlock(subs);
  }
}

async function __mmu_notifier_invalidate_range_end(range: mmu_notifier_range, only_end: boolean): Promise<void> {
  using _ = ftrace(range.mm.k, "__mmu_notifier_invalidate_range_end");
  trace_mmu_notifier_invalidate_range_end.trace(range.mm.k, range_event(range));
  const subs = subs_of(range.mm)!;
  if (subs.has_itree) mn_itree_inv_end(subs);
  if (subs.list.length) await mn_hlist_invalidate_end(subs, range, only_end);
}

/** Closes the window; ≤6.5 also calls ->invalidate_range (the secondary-TLB flush). */
export async function mmu_notifier_invalidate_range_end(range: mmu_notifier_range): Promise<void> {
  if (mm_has_notifiers(range.mm)) await __mmu_notifier_invalidate_range_end(range, false);
}

/** For callers that already flushed secondary TLBs under the PT lock (ptep_clear_flush_notify). */
export async function mmu_notifier_invalidate_range_only_end(range: mmu_notifier_range): Promise<void> {
  if (mm_has_notifiers(range.mm)) await __mmu_notifier_invalidate_range_end(range, true);
}

/** ≤6.5 mmu_notifier_invalidate_range(): synchronous, under the PT lock. */
export function mmu_notifier_invalidate_range(mm: mm_struct, start: number, end: number): void {
  const subs = subs_of(mm);
  if (!subs) return;
  for (const sub of subs.list) sub.ops.invalidate_range?.(sub, mm, start, end);
}

/** 6.6+: called by the arch TLB flush code for devices sharing the CPU page tables. */
export function mmu_notifier_arch_invalidate_secondary_tlbs(mm: mm_struct, start: number, end: number): void {
  const subs = subs_of(mm);
  if (!subs) return;
  for (const sub of subs.list) sub.ops.arch_invalidate_secondary_tlbs?.(sub, mm, start, end);
}

export function mmu_notifier_clear_flush_young(mm: mm_struct, start: number, end: number): boolean {
  let young = false;
  for (const sub of subs_of(mm)?.list ?? []) young = (sub.ops.clear_flush_young?.(sub, mm, start, end) ?? false) || young;
  return young;
}

export function mmu_notifier_clear_young(mm: mm_struct, start: number, end: number): boolean {
  let young = false;
  for (const sub of subs_of(mm)?.list ?? []) young = (sub.ops.clear_young?.(sub, mm, start, end) ?? false) || young;
  return young;
}

export function mmu_notifier_test_young(mm: mm_struct, address: number): boolean {
  return (subs_of(mm)?.list ?? []).some((sub) => sub.ops.test_young?.(sub, mm, address) ?? false);
}

// ---- exit ---------------------------------------------------------------------------------

async function mn_itree_release(k: Kernel, subs: mmu_notifier_subscriptions, mm: mm_struct): Promise<void> {
  using _ = ftrace(k, "mn_itree_release");
  const range = new mmu_notifier_range();
  mmu_notifier_range_init(range, MMU_NOTIFY_RELEASE, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, 0, ULONG_MAX_END);
  const [first, seq] = mn_itree_inv_start_range(subs, range);
  for (let sub = first; sub; sub = mn_itree_next(sub, range)) {
    k.WARN_ON(!(await call_invalidate(k, sub, range, seq)));
  }
  mn_itree_inv_end(subs);
}

async function mn_hlist_release(subs: mmu_notifier_subscriptions, mm: mm_struct): Promise<void> {
  using _ = ftrace(mm.k, "mn_hlist_release");
  srcu_read_lock(subs);
  try {
    for (const sub of [...subs.list]) await sub.ops.release?.(sub, mm);
  } finally {
    srcu_read_unlock(subs);
  }
  spin_lock(subs.lock);
  for (const sub of subs.list) sub.linked = false;
  subs.list = [];
  spin_unlock(subs.lock);
  await synchronize_srcu(subs);
}

/** mmu_notifier_release(): exit_mmap calls it before any page of the mm is freed. */
export async function mmu_notifier_release(mm: mm_struct): Promise<void> {
  const subs = subs_of(mm);
  if (!subs) return;
  using _ = ftrace(mm.k, "__mmu_notifier_release");
  trace_mmu_notifier_release.trace(mm.k, { mm: mm.context_id, intervals: subs.itree.count, subscribers: subs.list.length });
  if (subs.has_itree) await mn_itree_release(mm.k, subs, mm);
  if (subs.list.length) await mn_hlist_release(subs, mm);
}

/** __mmu_notifier_subscriptions_destroy(): from __mmdrop when the mm_struct goes away. */
export function __mmu_notifier_subscriptions_destroy(mm: mm_struct): void {
  const subs = subs_of(mm);
  if (!subs) return;
  mm.k.WARN_ON(subs.list.length !== 0 || subs.itree.count !== 0);
  mm.notifier_subscriptions = null;
}

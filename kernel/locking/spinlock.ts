// Mirrors kernel/locking/spinlock.c and kernel/locking/spinlock_debug.c (Linux 6.8): spinlock_t
// and rwlock_t with the _irq, _irqsave and _bh variants, lockdep annotations and the
// CONFIG_DEBUG_SPINLOCK checks. kemu runs one context at a time and nothing preempts synchronous
// code, so a spinlock is never legitimately contended: finding it taken means its holder slept
// with it (or this context takes it twice). On one CPU that spin would never end, so kemu prints
// the debug report ("BUG: spinlock recursion" / "BUG: spinlock lockup suspected") and halts the
// machine like a hard lockup, instead of hanging the emulator.

import { KernelOops, type Kernel } from "../kernel.ts";
import type { task_struct } from "../sched/core.ts";
import { LD_WAIT_CONFIG, lockdep_map } from "./lockdep.ts";

export { lockdep_assert_held, lockdep_assert_not_held, lockdep_is_held } from "./lockdep.ts";

/** X86_EFLAGS_IF: the "interrupts were enabled" bit of the flags local_irq_save() returns. */
export const X86_EFLAGS_IF = 0x200;
/** SOFTIRQ_DISABLE_OFFSET in kemu's softirq_count units (1 = serving a softirq). */
const SOFTIRQ_DISABLE_OFFSET = 2;

export class spinlock_t {
  owner: task_struct | null = null;
  readonly dep_map: lockdep_map;

  constructor(
    readonly k: Kernel,
    readonly name: string,
  ) {
    this.dep_map = new lockdep_map(name, 0, LD_WAIT_CONFIG);
  }
}

// ---- irq and bottom-half state (include/linux/irqflags.h, kernel/softirq.c) -----------------------

function local_irq_save(t: task_struct): number {
  const flags = t.irqs_disabled ? 0 : X86_EFLAGS_IF;
  t.irqs_disabled = true;
  return flags;
}

function local_irq_enable(k: Kernel, t: task_struct): void {
  if (!t.irqs_disabled) return;
  t.irqs_disabled = false;
  k.lockdep.lockdep_hardirqs_on(t);
}

function local_irq_restore(k: Kernel, t: task_struct, flags: number): void {
  if (flags & X86_EFLAGS_IF) local_irq_enable(k, t);
  else t.irqs_disabled = true;
}

function local_bh_enable(k: Kernel, t: task_struct): void {
  t.softirq_count -= SOFTIRQ_DISABLE_OFFSET;
  if (t.softirq_count === 0) k.lockdep.lockdep_softirqs_on(t);
}

function preempt_enable(t: task_struct): void {
  if (t.preempt_count > 0) t.preempt_count--;
}

// ---- CONFIG_DEBUG_SPINLOCK (kernel/locking/spinlock_debug.c) ------------------------------------

function owner_name(o: task_struct | null): string {
  return o ? `${o.comm}/${o.pid}` : "<none>/-1";
}

/** spin_dump(): the debug report of a broken lock. */
function spin_dump(k: Kernel, kind: string, name: string, owner: task_struct | null, msg: string): void {
  const t = k.current;
  k.pr_emerg(`BUG: ${kind} ${msg} on CPU#0, ${t.comm}/${t.pid}`);
  k.pr_emerg(` lock: ${name}, .magic: dead4ead, .owner: ${owner_name(owner)}, .owner_cpu: ${owner ? 0 : -1}`);
}

/** A check that the kernel reports and survives (bad unlock). */
function spin_bug(k: Kernel, kind: string, name: string, owner: task_struct | null, msg: string): void {
  spin_dump(k, kind, name, owner, msg);
  k.record_splat("warn", `${kind} ${msg}: ${name}`);
}

/** The lock is taken: on one CPU the spin never ends. Report it, then halt like a hard lockup. */
function spin_lockup(k: Kernel, kind: string, name: string, owner: task_struct | null): never {
  const recursion = owner === k.current;
  spin_dump(k, kind, name, owner, recursion ? "recursion" : "lockup suspected");
  if (owner && !recursion) k.pr_emerg(`kemu: ${owner_name(owner)} holds ${name} while not running (it slept in atomic context)`);
  k.record_splat("bug", `${kind} ${recursion ? "recursion" : "lockup"}: ${name}`);
  const oops = new KernelOops(`${kind} ${recursion ? "recursion" : "lockup"} on ${name}`);
  k.sched.halt(oops);
  throw oops;
}

function do_raw_spin_lock(l: spinlock_t, t: task_struct): void {
  if (l.owner !== null) spin_lockup(l.k, "spinlock", l.name, l.owner);
  l.owner = t;
}

function do_raw_spin_unlock(l: spinlock_t, t: task_struct): void {
  if (l.owner === null) spin_bug(l.k, "spinlock", l.name, null, "already unlocked");
  else if (l.owner !== t) spin_bug(l.k, "spinlock", l.name, l.owner, "wrong owner");
  l.owner = null;
}

// ---- spinlock_t ---------------------------------------------------------------------------------

export function spin_lock(l: spinlock_t): void {
  const t = l.k.sched.current;
  t.preempt_count++;
  l.k.lockdep.lock_acquire(l.dep_map, 0, false);
  do_raw_spin_lock(l, t);
}

/** spin_lock_nested(): a lock of the same class one level down a legitimate hierarchy. */
export function spin_lock_nested(l: spinlock_t, subclass: number): void {
  const t = l.k.sched.current;
  t.preempt_count++;
  l.k.lockdep.lock_acquire(l.dep_map, 0, false, subclass);
  do_raw_spin_lock(l, t);
}

export function spin_unlock(l: spinlock_t): void {
  const t = l.k.sched.current;
  l.k.lockdep.lock_release(l.dep_map);
  do_raw_spin_unlock(l, t);
  preempt_enable(t);
}

export function spin_trylock(l: spinlock_t): boolean {
  if (l.owner !== null) return false;
  const t = l.k.sched.current;
  t.preempt_count++;
  l.owner = t;
  l.k.lockdep.lock_acquire(l.dep_map, 0, true);
  return true;
}

export function spin_lock_irq(l: spinlock_t): void {
  const t = l.k.sched.current;
  t.irqs_disabled = true;
  spin_lock(l);
}

export function spin_unlock_irq(l: spinlock_t): void {
  const t = l.k.sched.current;
  l.k.lockdep.lock_release(l.dep_map);
  do_raw_spin_unlock(l, t);
  local_irq_enable(l.k, t);
  preempt_enable(t);
}

/** spin_lock_irqsave(): returns the flags spin_unlock_irqrestore() puts back. */
export function spin_lock_irqsave(l: spinlock_t): number {
  const flags = local_irq_save(l.k.sched.current);
  spin_lock(l);
  return flags;
}

export function spin_unlock_irqrestore(l: spinlock_t, flags: number): void {
  const t = l.k.sched.current;
  l.k.lockdep.lock_release(l.dep_map);
  do_raw_spin_unlock(l, t);
  local_irq_restore(l.k, t, flags);
  preempt_enable(t);
}

export function spin_trylock_irqsave(l: spinlock_t): number | null {
  const t = l.k.sched.current;
  const flags = local_irq_save(t);
  if (spin_trylock(l)) return flags;
  local_irq_restore(l.k, t, flags);
  return null;
}

/** spin_lock_bh(): bottom halves (kemu: timer callbacks) are held off while the lock is held. */
export function spin_lock_bh(l: spinlock_t): void {
  l.k.sched.current.softirq_count += SOFTIRQ_DISABLE_OFFSET;
  spin_lock(l);
}

export function spin_unlock_bh(l: spinlock_t): void {
  const t = l.k.sched.current;
  l.k.lockdep.lock_release(l.dep_map);
  do_raw_spin_unlock(l, t);
  local_bh_enable(l.k, t);
  preempt_enable(t);
}

export function spin_is_locked(l: spinlock_t): boolean {
  return l.owner !== null;
}

/** assert_spin_locked(): BUG unless someone holds it. */
export function assert_spin_locked(l: spinlock_t): void {
  l.k.BUG_ON(l.owner === null);
}

// ---- rwlock_t -----------------------------------------------------------------------------------

export class rwlock_t {
  /** Read holders (possibly the same context several times). */
  readers = 0;
  writer: task_struct | null = null;
  readonly dep_map: lockdep_map;

  constructor(
    readonly k: Kernel,
    readonly name: string,
  ) {
    this.dep_map = new lockdep_map(name, 0, LD_WAIT_CONFIG);
  }
}

/** rwlock_acquire_read(): readers are recursive only in interrupt context (queued rwlocks are fair). */
function rwlock_read_mode(k: Kernel): 1 | 2 {
  return k.sched.in_interrupt() ? 2 : 1;
}

export function read_lock(l: rwlock_t): void {
  const t = l.k.sched.current;
  t.preempt_count++;
  l.k.lockdep.lock_acquire(l.dep_map, rwlock_read_mode(l.k), false);
  if (l.writer !== null) spin_lockup(l.k, "rwlock", l.name, l.writer);
  l.readers++;
}

export function read_unlock(l: rwlock_t): void {
  const t = l.k.sched.current;
  l.k.lockdep.lock_release(l.dep_map);
  if (l.readers === 0) spin_bug(l.k, "rwlock", l.name, null, "already unlocked");
  else l.readers--;
  preempt_enable(t);
}

export function write_lock(l: rwlock_t): void {
  const t = l.k.sched.current;
  t.preempt_count++;
  l.k.lockdep.lock_acquire(l.dep_map, 0, false);
  if (l.writer !== null || l.readers > 0) spin_lockup(l.k, "rwlock", l.name, l.writer);
  l.writer = t;
}

export function write_unlock(l: rwlock_t): void {
  const t = l.k.sched.current;
  l.k.lockdep.lock_release(l.dep_map);
  if (l.writer === null) spin_bug(l.k, "rwlock", l.name, null, "already unlocked");
  else if (l.writer !== t) spin_bug(l.k, "rwlock", l.name, l.writer, "wrong owner");
  l.writer = null;
  preempt_enable(t);
}

export function read_trylock(l: rwlock_t): boolean {
  if (l.writer !== null) return false;
  l.k.sched.current.preempt_count++;
  l.readers++;
  l.k.lockdep.lock_acquire(l.dep_map, rwlock_read_mode(l.k), true);
  return true;
}

export function write_trylock(l: rwlock_t): boolean {
  if (l.writer !== null || l.readers > 0) return false;
  const t = l.k.sched.current;
  t.preempt_count++;
  l.writer = t;
  l.k.lockdep.lock_acquire(l.dep_map, 0, true);
  return true;
}

export function read_lock_irq(l: rwlock_t): void {
  l.k.sched.current.irqs_disabled = true;
  read_lock(l);
}

export function read_unlock_irq(l: rwlock_t): void {
  read_unlock(l);
  local_irq_enable(l.k, l.k.sched.current);
}

export function write_lock_irq(l: rwlock_t): void {
  l.k.sched.current.irqs_disabled = true;
  write_lock(l);
}

export function write_unlock_irq(l: rwlock_t): void {
  write_unlock(l);
  local_irq_enable(l.k, l.k.sched.current);
}

export function read_lock_irqsave(l: rwlock_t): number {
  const flags = local_irq_save(l.k.sched.current);
  read_lock(l);
  return flags;
}

export function read_unlock_irqrestore(l: rwlock_t, flags: number): void {
  read_unlock(l);
  local_irq_restore(l.k, l.k.sched.current, flags);
}

export function write_lock_irqsave(l: rwlock_t): number {
  const flags = local_irq_save(l.k.sched.current);
  write_lock(l);
  return flags;
}

export function write_unlock_irqrestore(l: rwlock_t, flags: number): void {
  write_unlock(l);
  local_irq_restore(l.k, l.k.sched.current, flags);
}

// Mirrors kernel/locking/lockdep.c (Linux 6.8): the runtime locking correctness validator.
// Lock classes are keyed by name (plus subclass), like a static lock_class_key per init site.
// Every acquisition goes on the task's held-lock stack. The first time a given stack of classes
// (a "lock chain") is seen, lockdep checks it: the same class twice (recursive locking), the new
// dependency prev -> next closing a cycle in the class graph (circular dependency), an irq-safe
// lock leading to an irq-unsafe one. Usage bits per class (taken in hardirq/softirq context,
// taken with them enabled) catch inconsistent irq usage. Chains are cached by a hash of the held
// sequence, so a repeated acquisition costs two hash steps and one map lookup.

import { inject, injectable } from "tsyringe";
import { PRINTK, SCHED } from "../tokens.ts";
import { Printk, LOGLEVEL_WARNING } from "../printk/printk.ts";
import { Scheduler, type task_struct } from "../sched/core.ts";
import { stack_trace_save, type stack_trace } from "../stacktrace.ts";
import { UTS_RELEASE } from "../../lib/dump_stack.ts";
import type { Kernel } from "../kernel.ts";
import type { KernelService } from "../machine.ts";
import type { HeldLock } from "./lockdep_types.ts";

// ---- wait types (include/linux/lockdep_types.h, !PREEMPT_RT) -----------------------------------

export const LD_WAIT_INV = 0;
export const LD_WAIT_FREE = 1;
export const LD_WAIT_SPIN = 2;
/** spinlock_t: a spinning lock unless PREEMPT_RT. */
export const LD_WAIT_CONFIG = LD_WAIT_SPIN;
export const LD_WAIT_SLEEP = 3;

/** MAX_LOCK_DEPTH: held locks per task before lockdep gives up. */
export const MAX_LOCK_DEPTH = 48;

// ---- usage bits (kernel/locking/lockdep_states.h) ----------------------------------------------
// Per irq state (hardirq = 0, softirq = 4): +0 used in that context, +1 the same as reader,
// +2 taken with that irq enabled, +3 the same as reader.

const LOCK_USED_IN_HARDIRQ = 0;
const LOCK_USED_IN_HARDIRQ_READ = 1;
const LOCK_ENABLED_HARDIRQ = 2;
const LOCK_ENABLED_HARDIRQ_READ = 3;
const LOCK_USED_IN_SOFTIRQ = 4;
const LOCK_USED_IN_SOFTIRQ_READ = 5;
const LOCK_ENABLED_SOFTIRQ = 6;
const LOCK_ENABLED_SOFTIRQ_READ = 7;
const LOCK_USED = 8;
const LOCK_USED_READ = 9;
const LOCK_USAGE_STATES = 10;

const usage_str = [
  "IN-HARDIRQ-W", "IN-HARDIRQ-R", "HARDIRQ-ON-W", "HARDIRQ-ON-R",
  "IN-SOFTIRQ-W", "IN-SOFTIRQ-R", "SOFTIRQ-ON-W", "SOFTIRQ-ON-R",
  "INITIAL USE", "INITIAL READ USE",
];
const irq_state_name = ["HARDIRQ", "SOFTIRQ"];

const F = (bit: number): number => 1 << bit;

// ---- dependency types (the recursive-read rules of lockdep-design.rst) ------------------------
// An edge prev -> next records how prev was held (E exclusive, S shared) and how next was
// waited for (R recursive read, N anything else). A deadlock needs a "strong" cycle: no -(xR)->
// immediately followed by -(Sx)->, because two readers never block each other there.

const DEP_EN = 1;
const DEP_ER = 2;
const DEP_SN = 4;
const DEP_SR = 8;

function calc_dep(prev_read: number, next_read: number): number {
  if (prev_read === 0) return next_read === 2 ? DEP_ER : DEP_EN;
  return next_read === 2 ? DEP_SR : DEP_SN;
}

/** A lock's lockdep identity. Each lock instance has one; its class comes from name + subclass. */
export class lockdep_map {
  /** The Lockdep that filled `classes`: a map may be seen by several machines in one process. */
  owner: Lockdep | null = null;
  /** Resolved classes by subclass, so a hot acquisition never hashes the name. */
  classes: Array<lock_class | undefined> = [];

  constructor(
    readonly name: string,
    readonly subclass = 0,
    /** The lock's wait type: LD_WAIT_SLEEP for mutexes, LD_WAIT_CONFIG for spinlocks. */
    readonly wait_type_inner = LD_WAIT_INV,
  ) {}
}

/** struct lock_class: the unit lockdep reasons about. */
export class lock_class {
  usage_mask = 0;
  /** Where each usage bit was first set. */
  readonly usage_traces: Array<stack_trace | undefined> = new Array<stack_trace | undefined>(LOCK_USAGE_STATES);
  /** Dependencies: classes taken while holding this one, and classes held when this one was taken. */
  readonly locks_after = new Map<lock_class, lock_list>();
  readonly locks_before = new Map<lock_class, lock_list>();

  constructor(
    readonly id: number,
    readonly name: string,
    readonly wait_type_inner: number,
  ) {}
}

/** struct lock_list: one dependency edge, with the stack that first took `to` under `from`. */
class lock_list {
  dep = 0;
  constructor(
    readonly from: lock_class,
    readonly to: lock_class,
    readonly trace: stack_trace,
  ) {}
}

/** struct lock_chain: a validated held-lock sequence, bucketed by one hash lane, checked by both. */
class lock_chain {
  next: lock_chain | null = null;
  constructor(
    readonly h1: number,
    readonly h2: number,
    /** The acquisition that first completed this chain: the "at:" site of cache hits. */
    readonly trace: stack_trace,
  ) {}
}

/** struct held_lock. Entries are recycled after release, so nobody may keep one. */
class held_lock implements HeldLock {
  constructor(
    public cls: lock_class,
    public instance: lockdep_map,
    public read: number,
    public trylock: boolean,
    public hardirqs_off: boolean,
    /** The chain key after this lock, in two 32-bit lanes. */
    public h1: number,
    public h2: number,
    public trace: stack_trace,
  ) {}

  get class_name(): string {
    return this.cls.name;
  }

  get acquire_ip(): string {
    return acquire_site(this.trace);
  }
}

/** An acquisition being validated (not on the stack yet), or a held lock being re-marked. */
interface acquisition {
  cls: lock_class;
  read: number;
  trace: stack_trace;
}

// ---- chain keys ---------------------------------------------------------------------------------
// Two independent 32-bit lanes of a multiplicative hash over (class, read, trylock): a false hit
// needs both lanes to collide. 32-bit operators are right here: these are hashes, not addresses.

const CHAIN_SEED1 = 0x2545f491;
const CHAIN_SEED2 = 0x6c8e9cf5;

function iterate_chain_key(h: number, id: number, mul: number): number {
  h = Math.imul(h ^ id, mul);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 13);
}

// ---- stack traces -------------------------------------------------------------------------------

/** save_trace(): lockdep's own frames never show, as the kernel skips its internals. */
function save_trace(): stack_trace {
  const old = Error.stackTraceLimit;
  Error.stackTraceLimit = 32;
  try {
    return stack_trace_save();
  } finally {
    Error.stackTraceLimit = old;
  }
}

function trace_frames(trace: stack_trace): string[] {
  return trace.frames(40).filter((f) => !f.includes("(kernel/locking/lockdep.ts:")).slice(0, 16);
}

/** The acquire_ip: the first frame outside the locking code, i.e. who called spin_lock(). */
function acquire_site(trace: stack_trace): string {
  return trace.frames(40).find((f) => !f.includes("(kernel/locking/")) ?? "?";
}

/** The task_struct slot that marks a task as listed in Lockdep.holders. */
const LOCKDEP_HOLDER = Symbol("lockdep_holder");

function task_name(t: task_struct): string {
  return `${t.comm}/${t.pid}`;
}

/** How a scenario line names an acquisition: "lock(x)", or "rlock(x)" for a reader. */
function lock_verb(read: number): string {
  return read ? "rlock" : "lock";
}

@injectable()
export class Lockdep implements KernelService {
  /** kernel/kernel.ts hooks this to record every splat (including those printed no more). */
  on_splat: ((title: string) => void) | null = null;
  /** debug_locks: cleared by the first splat; later problems are counted but not printed. */
  debug_locks = true;
  nr_splats = 0;
  private readonly classes = new Map<string, lock_class>();
  private readonly chains = new Map<number, lock_chain>();
  private nr_chains = 0;
  private nr_deps = 0;
  /**
   * Contexts that took a lock since the last prune, so exited tasks still show in leak reports.
   * A task is listed once (marked in its slots); tasks holding nothing are pruned in batches.
   */
  private holders: task_struct[] = [];
  /** Released held-lock entries for reuse (at most the most locks ever held at once). */
  private readonly free_held: held_lock[] = [];
  private holders_pruned_at = 64;

  constructor(
    @inject(SCHED) private readonly sched: Scheduler,
    @inject(PRINTK) private readonly printk: Printk,
  ) {}

  get nr_lock_classes(): number {
    return this.classes.size;
  }

  get nr_lock_chains(): number {
    return this.nr_chains;
  }

  get nr_dependencies(): number {
    return this.nr_deps;
  }

  // ---- the annotations --------------------------------------------------------------------------

  /**
   * lock_acquire(): `read` 0 exclusive, 1 shared, 2 recursive shared. Trylocks (called after the
   * lock was obtained) add no dependency of their own, since they cannot wait.
   */
  lock_acquire(map: lockdep_map, read: 0 | 1 | 2, trylock: boolean, subclass = map.subclass): void {
    const t = this.sched.current;
    const cls = (map.owner === this && map.classes[subclass]) || this.register_lock_class(map, subclass);
    const irqs_off = t.irqs_disabled;
    // mark_usage(): the bits this acquisition sets; the common case is that all are set already.
    let usage = read ? F(LOCK_USED_READ) | F(LOCK_USED) : F(LOCK_USED);
    if (!trylock) {
      if (t.hardirq_count > 0) usage |= F(read ? LOCK_USED_IN_HARDIRQ_READ : LOCK_USED_IN_HARDIRQ);
      if (t.softirq_count % 2 === 1) usage |= F(read ? LOCK_USED_IN_SOFTIRQ_READ : LOCK_USED_IN_SOFTIRQ);
    }
    if (!irqs_off) {
      usage |= F(read ? LOCK_ENABLED_HARDIRQ_READ : LOCK_ENABLED_HARDIRQ);
      if (t.softirq_count === 0) usage |= F(read ? LOCK_ENABLED_SOFTIRQ_READ : LOCK_ENABLED_SOFTIRQ);
    }
    let trace: stack_trace | null = null;
    if ((cls.usage_mask & usage) !== usage) {
      trace = save_trace();
      this.mark_usage(t, { cls, read, trace }, usage);
    }
    this.__lock_acquire(t, cls, map, read, trylock, irqs_off, trace);
  }

  /** lock_release(): pops the lock; releasing out of order rebuilds the stack above it. */
  lock_release(map: lockdep_map): void {
    const t = this.sched.current;
    const held = t.held_locks;
    const n = held.length;
    if (n > 0 && held[n - 1]!.instance === map) {
      this.free_held.push(held.pop() as held_lock);
      return;
    }
    const i = this.find_held_lock(t, map);
    if (i < 0) {
      this.print_unlock_imbalance_bug(t, map);
      return;
    }
    this.reacquire_from(t, i, null);
  }

  /** lock_downgrade(): the held write lock becomes a read lock (downgrade_write). */
  lock_downgrade(map: lockdep_map): void {
    const t = this.sched.current;
    const i = this.find_held_lock(t, map);
    if (i < 0) {
      this.print_unlock_imbalance_bug(t, map);
      return;
    }
    this.reacquire_from(t, i, 1);
  }

  /** lock_is_held_type(): read undefined = any mode, 0 = exclusively, 1 = shared. */
  lock_is_held(map: lockdep_map, read?: number): boolean {
    for (const h of this.sched.current.held_locks) {
      if (h.instance !== map) continue;
      if (read === undefined || (read === 0) === (h.read === 0)) return true;
    }
    return false;
  }

  /**
   * lockdep_assert_held() on a bare map: a WARN-style report when the current context does not
   * hold it (recorded as a lockdep splat; the lock-object helpers below WARN through the kernel).
   */
  lockdep_assert_held(map: lockdep_map): boolean {
    if (!this.debug_locks || this.lock_is_held(map)) return true;
    const t = this.sched.current;
    this.nr_splats++;
    this.on_splat?.(`lockdep_assert_held(${map.name})`);
    this.pr([
      "------------[ cut here ]------------",
      `WARNING: CPU: 0 PID: ${t.pid} at ${acquire_site(save_trace())} lockdep_assert_held(${map.name})`,
      `CPU: 0 PID: ${t.pid} Comm: ${t.comm} ${UTS_RELEASE} #1`,
      "---[ end trace 0000000000000000 ]---",
    ]);
    return false;
  }

  /** lock_map_acquire(): an exclusive pseudo-lock (workqueue flush, fs_reclaim, ...). */
  lock_map_acquire(map: lockdep_map): void {
    this.lock_acquire(map, 0, false);
  }

  /** lock_map_acquire_read(): a recursive-read pseudo-lock. */
  lock_map_acquire_read(map: lockdep_map): void {
    this.lock_acquire(map, 2, false);
  }

  lock_map_release(map: lockdep_map): void {
    this.lock_release(map);
  }

  /** lockdep_hardirqs_on(): irqs were enabled while `t` holds locks, which are now irq-unsafe. */
  lockdep_hardirqs_on(t: task_struct = this.sched.current): void {
    if (t.held_locks.length === 0) return;
    this.mark_held_locks(t, LOCK_ENABLED_HARDIRQ);
    if (t.softirq_count === 0) this.mark_held_locks(t, LOCK_ENABLED_SOFTIRQ);
  }

  /** lockdep_softirqs_on(): bottom halves were enabled again while `t` holds locks. */
  lockdep_softirqs_on(t: task_struct = this.sched.current): void {
    if (t.held_locks.length === 0 || t.irqs_disabled) return;
    this.mark_held_locks(t, LOCK_ENABLED_SOFTIRQ);
  }

  /** debug_locks_off(): returns whether lockdep was still on. */
  debug_locks_off(): boolean {
    const was = this.debug_locks;
    this.debug_locks = false;
    return was;
  }

  // ---- reports of held locks ----------------------------------------------------------------------

  /** lockdep_print_held_locks(). */
  lockdep_print_held_locks(t: task_struct): void {
    this.pr(this.held_locks_lines(t));
  }

  /** debug_show_all_locks(): every context that holds a lock, exited ones included. */
  debug_show_all_locks(): void {
    const lines = ["", "Showing all locks held in the system:"];
    for (const t of this.lock_holders()) lines.push(...this.held_locks_lines(t));
    lines.push("", "=============================================", "");
    this.pr(lines);
  }

  /** Shutdown check: any lock still held is a leak. */
  leak_report(): string[] {
    const out: string[] = [];
    for (const t of this.lock_holders()) {
      for (const h of this.held(t)) {
        out.push(`lock held at shutdown: ${h.cls.name} by ${task_name(t)}, acquired at ${h.acquire_ip}`);
      }
    }
    return out;
  }

  // ---- internals: classes and the held-lock stack ---------------------------------------------

  private held(t: task_struct): held_lock[] {
    return t.held_locks as held_lock[];
  }

  private lock_holders(): task_struct[] {
    return this.holders.filter((t) => t.held_locks.length > 0).sort((a, b) => a.pid - b.pid);
  }

  /** register_lock_class(): the class of name (+ "/subclass"), created on first use. */
  private register_lock_class(map: lockdep_map, subclass: number): lock_class {
    const key = subclass ? `${map.name}/${subclass}` : map.name;
    let cls = this.classes.get(key);
    if (!cls) {
      cls = new lock_class(this.classes.size, key, map.wait_type_inner);
      this.classes.set(key, cls);
    }
    if (map.owner !== this) {
      map.owner = this;
      map.classes = [];
    }
    map.classes[subclass] = cls;
    return cls;
  }

  private find_held_lock(t: task_struct, map: lockdep_map): number {
    const held = t.held_locks;
    for (let i = held.length - 1; i >= 0; i--) if (held[i]!.instance === map) return i;
    return -1;
  }

  /**
   * __lock_acquire() after the usage marks: computes the chain key, validates the chain on a
   * cache miss, and pushes the held lock. `trace` is the acquisition stack when already known.
   */
  private __lock_acquire(t: task_struct, cls: lock_class, map: lockdep_map, read: number, trylock: boolean,
    irqs_off: boolean, trace: stack_trace | null): void {
    const held = this.held(t);
    const depth = held.length;
    const prev = depth > 0 ? held[depth - 1]! : null;
    const id = cls.id * 8 + read * 2 + (trylock ? 1 : 0);
    const h1 = iterate_chain_key(prev ? prev.h1 : CHAIN_SEED1, id, 0x9e3779b1);
    const h2 = iterate_chain_key(prev ? prev.h2 : CHAIN_SEED2, id, 0x85ebca77);
    let chain = this.chains.get(h1 >>> 2) ?? null;
    while (chain !== null && (chain.h1 !== h1 || chain.h2 !== h2)) chain = chain.next;
    if (chain === null) {
      chain = this.add_chain(h1, h2, trace ?? save_trace());
      if (!trylock) this.validate_chain(t, { cls, read, trace: chain.trace });
    }
    if (depth === MAX_LOCK_DEPTH) this.print_lock_depth_bug(t);
    held.push(this.alloc_held_lock(cls, map, read, trylock, irqs_off, h1, h2, trace ?? chain.trace));
    if (depth === 0 && !t.slots.has(LOCKDEP_HOLDER)) this.add_holder(t);
  }

  private add_holder(t: task_struct): void {
    t.slots.set(LOCKDEP_HOLDER, true);
    this.holders.push(t);
    if (this.holders.length < 2 * this.holders_pruned_at) return;
    const keep: task_struct[] = [];
    for (const h of this.holders) {
      if (h.held_locks.length > 0) keep.push(h);
      else h.slots.delete(LOCKDEP_HOLDER);
    }
    this.holders = keep;
    this.holders_pruned_at = Math.max(64, keep.length);
  }

  /** Held-lock entries are recycled: the hottest path of the emulator allocates nothing. */
  private alloc_held_lock(cls: lock_class, map: lockdep_map, read: number, trylock: boolean, irqs_off: boolean,
    h1: number, h2: number, trace: stack_trace): held_lock {
    const hl = this.free_held.pop();
    if (hl === undefined) return new held_lock(cls, map, read, trylock, irqs_off, h1, h2, trace);
    hl.cls = cls;
    hl.instance = map;
    hl.read = read;
    hl.trylock = trylock;
    hl.hardirqs_off = irqs_off;
    hl.h1 = h1;
    hl.h2 = h2;
    hl.trace = trace;
    return hl;
  }

  private add_chain(h1: number, h2: number, trace: stack_trace): lock_chain {
    const c = new lock_chain(h1, h2, trace);
    const bucket = h1 >>> 2;
    c.next = this.chains.get(bucket) ?? null;
    this.chains.set(bucket, c);
    this.nr_chains++;
    return c;
  }

  /**
   * reacquire_held_locks(): drops entry i (or changes its read mode to `read`) and pushes the
   * locks above it again, so their chain keys and dependencies match the new stack.
   */
  private reacquire_from(t: task_struct, i: number, read: number | null): void {
    const held = this.held(t);
    const rest = held.splice(i);
    const victim = rest.shift()!;
    if (read !== null) rest.unshift(new held_lock(victim.cls, victim.instance, read, victim.trylock, victim.hardirqs_off, 0, 0, victim.trace));
    for (const h of rest) this.__lock_acquire(t, h.cls, h.instance, h.read, h.trylock, h.hardirqs_off, h.trace);
  }

  // ---- chain validation -----------------------------------------------------------------------

  /** validate_chain(): check_deadlock() then check_prevs_add() for a chain seen the first time. */
  private validate_chain(t: task_struct, next: acquisition): void {
    const held = this.held(t);
    if (held.length === 0) return;
    if (!this.check_deadlock(t, next)) return;
    // Dependencies from the previous lock, and from the ones below it while those are trylocks:
    // a non-trylock already linked itself to everything beneath it.
    for (let i = held.length - 1; i >= 0; i--) {
      const prev = held[i]!;
      if (!this.check_prev_add(t, prev, next)) return;
      if (!prev.trylock) return;
    }
  }

  /** check_deadlock(): the same class already held, unless both are reads and this one recursive. */
  private check_deadlock(t: task_struct, next: acquisition): boolean {
    for (const prev of this.held(t)) {
      if (prev.cls !== next.cls) continue;
      if (next.read === 2 && prev.read) continue;
      this.print_deadlock_bug(t, prev, next);
      return false;
    }
    return true;
  }

  /** check_prev_add(): adds prev -> next unless it closes a cycle or links irq-safe to irq-unsafe. */
  private check_prev_add(t: task_struct, prev: held_lock, next: acquisition): boolean {
    const dep = calc_dep(prev.read, next.read);
    const existing = prev.cls.locks_after.get(next.cls);
    // The graph only grows and every new edge was checked, so a known dependency proves nothing new.
    if (existing && (existing.dep & dep) === dep) return true;
    const path = this.check_noncircular(next.cls, next.read === 2, prev.cls, prev.read !== 0);
    if (path) {
      this.print_circular_bug(t, prev, next, path);
      return false;
    }
    if (!this.check_irq_usage(t, prev, next)) return false;
    if (existing) {
      existing.dep |= dep;
      return true;
    }
    const e = new lock_list(prev.cls, next.cls, next.trace);
    e.dep = dep;
    prev.cls.locks_after.set(next.cls, e);
    next.cls.locks_before.set(prev.cls, e);
    this.nr_deps++;
    return true;
  }

  /**
   * check_noncircular(): a strong path from `src` (entered as a recursive reader if src_r) back
   * to `target` (held shared if target_s) means the new edge closes a deadlock cycle. BFS, so
   * the reported chain is a shortest one. Returns its edges, src first.
   */
  private check_noncircular(src: lock_class, src_r: boolean, target: lock_class, target_s: boolean): lock_list[] | null {
    type state = { cls: lock_class; r: boolean; via: lock_list | null; parent: state | null };
    const seen = [new Set<lock_class>(), new Set<lock_class>()];
    const queue: state[] = [{ cls: src, r: src_r, via: null, parent: null }];
    seen[src_r ? 1 : 0]!.add(src);
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi]!;
      if (s.cls === target && !(s.r && target_s)) {
        const path: lock_list[] = [];
        for (let p: state | null = s; p?.via; p = p.parent) path.unshift(p.via);
        return path;
      }
      for (const e of s.cls.locks_after.values()) {
        // After a recursive-read wait, only an exclusive holder can block.
        const dep = s.r ? e.dep & (DEP_EN | DEP_ER) : e.dep;
        for (const r of [false, true]) {
          if (!(dep & (r ? DEP_ER | DEP_SR : DEP_EN | DEP_SN))) continue;
          const set = seen[r ? 1 : 0]!;
          if (set.has(e.to)) continue;
          set.add(e.to);
          queue.push({ cls: e.to, r, via: e, parent: s });
        }
      }
    }
    return null;
  }

  /** Classes reachable from `root` (included) forwards or backwards, in BFS order with parents. */
  private bfs(root: lock_class, forwards: boolean): Map<lock_class, lock_class | null> {
    const parent = new Map<lock_class, lock_class | null>([[root, null]]);
    const queue = [root];
    for (let qi = 0; qi < queue.length; qi++) {
      const c = queue[qi]!;
      for (const o of (forwards ? c.locks_after : c.locks_before).keys()) {
        if (parent.has(o)) continue;
        parent.set(o, c);
        queue.push(o);
      }
    }
    return parent;
  }

  /** The path root ... found to the first class (BFS order, root excluded) whose usage meets mask. */
  private find_usage(root: lock_class, forwards: boolean, mask: number): lock_class[] | null {
    const parent = this.bfs(root, forwards);
    for (const c of parent.keys()) {
      if (c === root || !(c.usage_mask & mask)) continue;
      const path: lock_class[] = [];
      for (let p: lock_class | null | undefined = c; p; p = parent.get(p)) path.unshift(p);
      return path;
    }
    return null;
  }

  /**
   * check_irq_usage(): prev -> next must not connect a class used in an irq (anything that
   * leads to prev) to a class taken with that irq enabled (anything next leads to).
   */
  private check_irq_usage(t: task_struct, prev: held_lock, next: acquisition): boolean {
    const back = [...this.bfs(prev.cls, false).keys()];
    let usage = 0;
    for (const c of back) usage |= c.usage_mask;
    for (const state of [0, 4]) {
      const used_w = usage & F(state + LOCK_USED_IN_HARDIRQ);
      const used_r = usage & F(state + LOCK_USED_IN_HARDIRQ_READ);
      if (!used_w && !used_r) continue;
      const excl = F(state + LOCK_ENABLED_HARDIRQ) | (used_w ? F(state + LOCK_ENABLED_HARDIRQ_READ) : 0);
      const fwd = this.bfs(next.cls, true);
      const unsafe = [...fwd.keys()].find((c) => c.usage_mask & excl);
      if (!unsafe) continue;
      const unsafe_w = unsafe.usage_mask & F(state + LOCK_ENABLED_HARDIRQ);
      const safe = back.find((c) => c.usage_mask & F(state + LOCK_USED_IN_HARDIRQ) ||
        (unsafe_w && c.usage_mask & F(state + LOCK_USED_IN_HARDIRQ_READ)))!;
      this.print_bad_irq_dependency(t, prev, next, safe, unsafe, state);
      return false;
    }
    return true;
  }

  // ---- usage marks --------------------------------------------------------------------------------

  /** mark_usage(): sets each missing bit of `usage`, irq-context bits first as the kernel does. */
  private mark_usage(t: task_struct, a: acquisition, usage: number): void {
    for (let bit = 0; bit < LOCK_USAGE_STATES; bit++) {
      if (usage & F(bit)) this.mark_lock(t, a, bit);
    }
  }

  /** mark_held_locks(): `base` (LOCK_ENABLED_*IRQ) on every held lock, read variant for readers. */
  private mark_held_locks(t: task_struct, base: number): void {
    for (const h of [...this.held(t)]) {
      const bit = base + (h.read ? 1 : 0);
      if (!(h.cls.usage_mask & F(bit))) this.mark_lock(t, { cls: h.cls, read: h.read, trace: save_trace() }, bit);
    }
  }

  /** mark_lock(): records a new usage bit and checks it against the class and its dependencies. */
  private mark_lock(t: task_struct, a: acquisition, bit: number): void {
    const cls = a.cls;
    if (cls.usage_mask & F(bit)) return;
    cls.usage_mask |= F(bit);
    cls.usage_traces[bit] = a.trace;
    if (bit >= LOCK_USED) return;
    // mark_lock_irq(): the opposite direction of the same irq state conflicts.
    const read = bit & 1;
    const excl = (bit & 4) | ((bit & 2) ^ 2);
    for (const other of read ? [excl] : [excl, excl + 1]) {
      if (cls.usage_mask & F(other)) {
        this.print_usage_bug(t, a, other, bit);
        return;
      }
    }
    const mask = F(excl) | (read ? 0 : F(excl + 1));
    const forwards = (bit & 2) === 0;
    // Became irq-safe: nothing it leads to may be irq-unsafe; became irq-unsafe: the reverse.
    const path = this.find_usage(cls, forwards, mask);
    if (path) this.print_irq_inversion_bug(t, a, path, forwards, bit & 4);
  }

  // ---- splats -------------------------------------------------------------------------------------

  private pr(lines: string[]): void {
    for (const l of lines) this.printk.printk(LOGLEVEL_WARNING, l, "lockdep");
  }

  /** Counts a splat and tells the kernel; true if it should be printed (the first one). */
  private begin_splat(title: string): boolean {
    this.nr_splats++;
    this.on_splat?.(title);
    return this.debug_locks_off();
  }

  private header(title: string): string[] {
    const bar = "=".repeat(title.length);
    return ["", bar, title, `${UTS_RELEASE} #1`, "-".repeat(title.length)];
  }

  /** The class as lockdep prints it: "(&a){+.+.}-{3:3}". */
  private lock_name(c: lock_class): string {
    return `(${c.name}){${this.usage_chars(c)}}-{${c.wait_type_inner}:${c.wait_type_inner}}`;
  }

  /** get_usage_chars(): per irq state, write then read: '.', '-' used in irq, '+' irq on, '?' both. */
  private usage_chars(c: lock_class): string {
    let s = "";
    for (const state of [0, 4]) {
      for (const read of [0, 1]) {
        const used_in = c.usage_mask & F(state + read);
        const enabled = c.usage_mask & F(state + 2 + read);
        s += used_in ? (enabled ? "?" : "-") : enabled ? "+" : ".";
      }
    }
    return s;
  }

  private print_lock(c: lock_class, trace: stack_trace): string {
    return ` ${this.lock_name(c)}, at: ${acquire_site(trace)}`;
  }

  private held_locks_lines(t: task_struct): string[] {
    const held = this.held(t);
    if (held.length === 0) return [`no locks held by ${task_name(t)}.`];
    const lines = [`${held.length} lock${held.length > 1 ? "s" : ""} held by ${task_name(t)}:`];
    held.forEach((h, i) => lines.push(` #${i}: ${this.lock_name(h.cls)}, at: ${h.acquire_ip}`));
    return lines;
  }

  private irq_ctx(t: task_struct): string {
    const hc = t.hardirq_count > 0 ? 1 : 0;
    const sc = t.softirq_count % 2;
    return `[HC${hc}[${t.hardirq_count}]:SC${sc}[${t.softirq_count}]:HE${t.irqs_disabled ? 0 : 1}:SE${t.softirq_count === 0 ? 1 : 0}]`;
  }

  /** The tail every lockdep splat ends with: held locks and the current stack. */
  private footer(t: task_struct): string[] {
    const irq = t.kind === "hardirq" || t.kind === "softirq";
    return [
      ...this.held_locks_lines(t),
      "",
      "stack backtrace:",
      `CPU: 0 PID: ${t.pid} Comm: ${t.comm} ${UTS_RELEASE} #1`,
      "Call Trace:",
      irq ? " <IRQ>" : " <TASK>",
      ...trace_frames(save_trace()).map((f) => ` ${f}`),
      irq ? " </IRQ>" : " </TASK>",
    ];
  }

  private indent(trace: stack_trace | undefined, n: number): string[] {
    return trace ? trace_frames(trace).map((f) => " ".repeat(n) + f) : [];
  }

  private print_deadlock_bug(t: task_struct, prev: held_lock, next: acquisition): void {
    const title = "WARNING: possible recursive locking detected";
    if (!this.begin_splat(title.slice(9))) return;
    this.pr([
      ...this.header(title),
      `${task_name(t)} is trying to acquire lock:`,
      this.print_lock(next.cls, next.trace),
      "",
      "but task is already holding lock:",
      this.print_lock(prev.cls, prev.trace),
      "",
      "other info that might help us debug this:",
      " Possible unsafe locking scenario:",
      "",
      "       CPU0",
      "       ----",
      `  ${lock_verb(prev.read)}(${prev.cls.name});`,
      `  ${lock_verb(next.read)}(${next.cls.name});`,
      "",
      " *** DEADLOCK ***",
      "",
      " May be due to missing lock nesting notation",
      "",
      ...this.footer(t),
    ]);
  }

  private print_circular_bug(t: task_struct, prev: held_lock, next: acquisition, path: lock_list[]): void {
    const title = "WARNING: possible circular locking dependency detected";
    if (!this.begin_splat(title.slice(9))) return;
    const lines = [
      ...this.header(title),
      `${task_name(t)} is trying to acquire lock:`,
      this.print_lock(next.cls, next.trace),
      "",
      "but task is already holding lock:",
      this.print_lock(prev.cls, prev.trace),
      "",
      "which lock already depends on the new lock.",
      "",
      "",
      "the existing dependency chain (in reverse order) is:",
    ];
    for (let depth = path.length; depth >= 1; depth--) {
      const e = path[depth - 1]!;
      lines.push("", `-> #${depth} ${this.lock_name(e.to)}:`, ...this.indent(e.trace, 7));
    }
    lines.push("", `-> #0 ${this.lock_name(next.cls)}:`, ...this.indent(next.trace, 7), "");
    // print_circular_lock_scenario(): source = the new lock, target = the held one.
    const source = next.cls;
    const target = prev.cls;
    const parent = path.length ? path[path.length - 1]!.from : source;
    lines.push("other info that might help us debug this:", "");
    if (parent !== source) lines.push("Chain exists of:", `  ${source.name} --> ${parent.name} --> ${target.name}`, "");
    lines.push(
      " Possible unsafe locking scenario:",
      "",
      "       CPU0                    CPU1",
      "       ----                    ----",
      `  lock(${target.name});`,
      `                               lock(${parent.name});`,
      `                               lock(${target.name});`,
      `  ${lock_verb(next.read)}(${source.name});`,
      "",
      " *** DEADLOCK ***",
      "",
      ...this.footer(t),
    );
    this.pr(lines);
  }

  private print_usage_bug(t: task_struct, a: acquisition, prev_bit: number, new_bit: number): void {
    const title = "WARNING: inconsistent lock state";
    if (!this.begin_splat(title.slice(9))) return;
    this.pr([
      ...this.header(title),
      `inconsistent {${usage_str[prev_bit]}} -> {${usage_str[new_bit]}} usage.`,
      `${task_name(t)} ${this.irq_ctx(t)} takes:`,
      this.print_lock(a.cls, a.trace),
      `{${usage_str[prev_bit]}} state was registered at:`,
      ...this.indent(a.cls.usage_traces[prev_bit], 2),
      "",
      "other info that might help us debug this:",
      " Possible unsafe locking scenario:",
      "",
      "       CPU0",
      "       ----",
      `  lock(${a.cls.name});`,
      "  <Interrupt>",
      `    lock(${a.cls.name});`,
      "",
      " *** DEADLOCK ***",
      "",
      ...this.footer(t),
    ]);
  }

  /** print_irq_lock_scenario(): CPU1 takes safe then middle with irqs off, CPU0 is interrupted. */
  private irq_scenario(safe: lock_class, unsafe: lock_class, middle: lock_class): string[] {
    const lines: string[] = [];
    if (middle !== unsafe) lines.push("Chain exists of:", `  ${safe.name} --> ${middle.name} --> ${unsafe.name}`, "");
    lines.push(
      " Possible interrupt unsafe locking scenario:",
      "",
      "       CPU0                    CPU1",
      "       ----                    ----",
      `  lock(${unsafe.name});`,
      "                               local_irq_disable();",
      `                               lock(${safe.name});`,
      `                               lock(${middle.name});`,
      "  <Interrupt>",
      `    lock(${safe.name});`,
      "",
      " *** DEADLOCK ***",
      "",
    );
    return lines;
  }

  private print_irq_inversion_bug(t: task_struct, a: acquisition, path: lock_class[], forwards: boolean, state: number): void {
    const title = "WARNING: possible irq lock inversion dependency detected";
    if (!this.begin_splat(title.slice(9))) return;
    const irq = irq_state_name[state / 4]!;
    const other = path[path.length - 1]!;
    // The chain always runs from the irq-safe lock to the irq-unsafe one.
    const chain = forwards ? path : [...path].reverse();
    const middle = chain.length > 2 ? chain[chain.length - 2]! : chain[chain.length - 1]!;
    this.pr([
      ...this.header(title),
      `${task_name(t)} just changed the state of lock:`,
      this.print_lock(a.cls, a.trace),
      forwards ? `but this lock took another, ${irq}-unsafe lock in the past:` : `but this lock was taken by another, ${irq}-safe lock in the past:`,
      ` ${this.lock_name(other)}`,
      "",
      "",
      "and interrupts could create inverse lock ordering between them.",
      "",
      "",
      "other info that might help us debug this:",
      ...this.irq_scenario(chain[0]!, chain[chain.length - 1]!, middle),
      ...this.footer(t),
    ]);
  }

  private print_bad_irq_dependency(t: task_struct, prev: held_lock, next: acquisition, safe: lock_class,
    unsafe: lock_class, state: number): void {
    const irq = irq_state_name[state / 4]!;
    const title = `WARNING: ${irq}-safe -> ${irq}-unsafe lock order detected`;
    if (!this.begin_splat(title.slice(9))) return;
    const safe_bit = safe.usage_mask & F(state + LOCK_USED_IN_HARDIRQ) ? state + LOCK_USED_IN_HARDIRQ : state + LOCK_USED_IN_HARDIRQ_READ;
    const unsafe_bit = unsafe.usage_mask & F(state + LOCK_ENABLED_HARDIRQ) ? state + LOCK_ENABLED_HARDIRQ : state + LOCK_ENABLED_HARDIRQ_READ;
    const middle = prev.cls === safe ? next.cls : prev.cls;
    this.pr([
      ...this.header(title),
      `${task_name(t)} ${this.irq_ctx(t)} is trying to acquire:`,
      this.print_lock(next.cls, next.trace),
      "",
      "and this task is already holding:",
      this.print_lock(prev.cls, prev.trace),
      "which would create a new lock dependency:",
      ` ${this.lock_name(prev.cls)} -> ${this.lock_name(next.cls)}`,
      "",
      `but this new dependency connects a ${irq}-irq-safe lock:`,
      ` ${this.lock_name(safe)}`,
      "",
      `... which became ${irq}-irq-safe at:`,
      ...this.indent(safe.usage_traces[safe_bit], 2),
      "",
      `to a ${irq}-irq-unsafe lock:`,
      ` ${this.lock_name(unsafe)}`,
      "",
      `... which became ${irq}-irq-unsafe at:`,
      "...",
      ...this.indent(unsafe.usage_traces[unsafe_bit], 2),
      "",
      "other info that might help us debug this:",
      "",
      ...this.irq_scenario(safe, unsafe, middle),
      ...this.footer(t),
    ]);
  }

  private print_unlock_imbalance_bug(t: task_struct, map: lockdep_map): void {
    const title = "WARNING: bad unlock balance detected!";
    if (!this.begin_splat(title.slice(9))) return;
    this.pr([
      ...this.header(title),
      `${task_name(t)} is trying to release lock (${map.name}) at:`,
      acquire_site(save_trace()),
      "but there are no more locks to release!",
      "",
      "other info that might help us debug this:",
      ...this.footer(t),
    ]);
  }

  private print_lock_depth_bug(t: task_struct): void {
    if (!this.begin_splat("MAX_LOCK_DEPTH too low!")) return;
    this.pr([
      "BUG: MAX_LOCK_DEPTH too low!",
      "turning off the locking correctness validator.",
      `depth: ${MAX_LOCK_DEPTH}  max: ${MAX_LOCK_DEPTH}!`,
      ...this.footer(t),
    ]);
  }
}

// ---- lockdep_assert_held() and friends on lock objects (include/linux/lockdep.h) -------------------

/** Anything with a lockdep map on a machine: mutex, spinlock_t, rwlock_t, rw_semaphore. */
export interface lockdep_lock {
  readonly k: Kernel;
  readonly dep_map: lockdep_map;
}

function assert_held(l: lockdep_lock, ok: boolean, what: string): void {
  // The message is built only on failure: these asserts sit on hot paths.
  if (!ok && l.k.lockdep.debug_locks) l.k.WARN_ON(true, `${what}(${l.dep_map.name})`);
}

/** lockdep_assert_held(): WARN unless the current context holds the lock (any mode). */
export function lockdep_assert_held(l: lockdep_lock): void {
  assert_held(l, l.k.lockdep.lock_is_held(l.dep_map), "lockdep_assert_held");
}

export function lockdep_assert_held_write(l: lockdep_lock): void {
  assert_held(l, l.k.lockdep.lock_is_held(l.dep_map, 0), "lockdep_assert_held_write");
}

export function lockdep_assert_held_read(l: lockdep_lock): void {
  assert_held(l, l.k.lockdep.lock_is_held(l.dep_map, 1), "lockdep_assert_held_read");
}

export function lockdep_assert_not_held(l: lockdep_lock): void {
  assert_held(l, !l.k.lockdep.lock_is_held(l.dep_map), "lockdep_assert_not_held");
}

/** lockdep_is_held(). */
export function lockdep_is_held(l: lockdep_lock): boolean {
  return l.k.lockdep.lock_is_held(l.dep_map);
}

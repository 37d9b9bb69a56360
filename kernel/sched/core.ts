// Mirrors kernel/sched/core.c (Linux 6.8): tasks, the run queue, schedule() and wake-ups.
// kemu runs one context at a time per machine. A context gives up the CPU only at a scheduling
// point (schedule(), cond_resched(), a sleeping lock, a wait); there a seeded policy picks the
// next runnable context. Same seed => same interleaving; other seeds explore other orders.

import { inject, injectable } from "tsyringe";
import { CLOCK, MACHINE_SPEC, PRINTK, TIMERS } from "../tokens.ts";
import type { MachineSpec } from "../machine_spec.ts";
import { prandom_u32_below, prandom_seed_state, type rnd_state } from "../../lib/random32.ts";
import { Printk, LOGLEVEL_ERR } from "../printk/printk.ts";
import { Clock } from "../time/timekeeping.ts";
import { TimerBase, timer_list } from "../time/timer.ts";
import type { HeldLock } from "../locking/lockdep_types.ts";
import type { files_struct } from "../../fs/file.ts";

export const TASK_RUNNING = 0x0000;
export const TASK_INTERRUPTIBLE = 0x0001;
export const TASK_UNINTERRUPTIBLE = 0x0002;
export const TASK_DEAD = 0x0080;
/** Sleeping without counting as blocked: idle kworkers, threads with nothing to do. */
export const TASK_IDLE = 0x0402;

export const PF_EXITING = 0x00000004;
export const PF_WQ_WORKER = 0x00000020;
export const PF_KTHREAD = 0x00200000;

/** What kind of execution context a task stands for. */
export type ContextKind = "user" | "kthread" | "kworker" | "hardirq" | "softirq" | "hw";

/** Thrown into every blocked context when the machine deadlocks, so callers never hang. */
export class KernelDeadlock extends Error {
  constructor(public readonly report: string[]) {
    super(`deadlock: every context is blocked\n${report.join("\n")}`);
    this.name = "KernelDeadlock";
  }
}

export class task_struct {
  __state = TASK_RUNNING;
  flags = 0;
  /** Tasks that share an mm and a tgid are the threads of one process. */
  tgid: number;
  mm: unknown = null;
  /** Page faults this task took: minor (no I/O) and major (task->min_flt / maj_flt). */
  min_flt = 0;
  maj_flt = 0;
  /** Open file table (fs/file.ts); threads of a process share one. Null for kernel threads. */
  files: files_struct | null = null;
  /** The process that forked this one (null for spawned processes and kernel threads). */
  real_parent: task_struct | null = null;
  /** preempt_count() without the irq bits: spinlocks and preempt_disable() raise it. */
  preempt_count = 0;
  hardirq_count = 0;
  softirq_count = 0;
  irqs_disabled = false;
  /** Lockdep's held-lock stack for this context. */
  held_locks: HeldLock[] = [];
  /** /proc/<pid>/fail-nth: fail the N-th injectable call of this task (0 = off). */
  fail_nth = 0;
  make_it_fail = false;
  pending_signals = new Set<number>();
  /** What the task sleeps on, for deadlock and hung-task reports. */
  wait_desc = "";
  /** Set while a body runs on the task. */
  busy = false;
  on_rq = false;
  exit_code = 0;
  /** Opaque per-subsystem slots (kthread data, worker, kunit test) keyed by owner. */
  readonly slots = new Map<symbol, unknown>();

  resume: (() => void) | null = null;
  abort: ((e: Error) => void) | null = null;
  /** Delivered instead of a normal wake-up when the task next gets the CPU. */
  pending_error: Error | null = null;

  constructor(
    public readonly pid: number,
    public comm: string,
    public readonly kind: ContextKind,
    tgid?: number,
  ) {
    this.tgid = tgid ?? pid;
  }

  toString(): string {
    return `${this.comm}:${this.pid}`;
  }
}

@injectable()
export class Scheduler {
  private runq: task_struct[] = [];
  private cur: task_struct;
  private readonly idle_task: task_struct;
  private loop_running = false;
  private loop_kicked = false;
  private switch_done: (() => void) | null = null;
  private settle_waiters: (() => void)[] = [];
  private settle_requests = 0;
  private next_pid = 1;
  private readonly tasks = new Map<number, task_struct>();
  /** Contexts blocked in TASK_(UN)INTERRUPTIBLE: a deadlock when nothing else can run. */
  private readonly blocked = new Set<task_struct>();
  readonly rnd: rnd_state;
  /** Tasks in wait_for(): their wake-ups arrive through host promise callbacks. */
  private external_waits = 0;
  /** Counts scheduling decisions; a cheap fingerprint of an interleaving. */
  nr_switches = 0;
  deadlocks = 0;
  /** Set by BUG(): the machine stops running contexts. */
  halted: Error | null = null;
  /** Called once per deadlock with the report (lockdep and hung-task splats hang off this). */
  on_deadlock: ((report: string[]) => void) | null = null;

  constructor(
    @inject(CLOCK) readonly clock: Clock,
    @inject(TIMERS) readonly timers: TimerBase,
    @inject(PRINTK) readonly printk: Printk,
    @inject(MACHINE_SPEC) spec: MachineSpec,
  ) {
    this.rnd = prandom_seed_state(spec.seed ?? 0);
    this.idle_task = new task_struct(0, "swapper/0", "kthread");
    this.idle_task.flags = PF_KTHREAD;
    this.cur = this.idle_task;
  }

  get current(): task_struct {
    return this.cur;
  }

  /** Creates a task identity; it runs nothing until run_task() gives it a body. */
  alloc_task(comm: string, kind: ContextKind, tgid?: number): task_struct {
    const t = new task_struct(this.next_pid++, comm, kind, tgid);
    if (kind !== "user") t.flags |= PF_KTHREAD;
    this.tasks.set(t.pid, t);
    return t;
  }

  find_task_by_pid(pid: number): task_struct | undefined {
    return this.tasks.get(pid);
  }

  /** Live task identities (not hard-IRQ pseudo contexts). */
  all_tasks(): task_struct[] {
    return [...this.tasks.values()];
  }

  /** Forgets a task identity once it has exited for good. */
  release_task(t: task_struct): void {
    this.tasks.delete(t.pid);
  }

  /**
   * Runs `fn` as the body of task `t`, scheduled like any other context. The body starts only
   * when the scheduler picks the task, and the returned promise settles when it finishes.
   */
  run_task<T>(t: task_struct, fn: () => Promise<T>): Promise<T> {
    if (this.halted) return Promise.reject(this.halted);
    if (t.busy) return Promise.reject(new Error(`task ${t} already runs a body`));
    t.busy = true;
    t.__state = TASK_RUNNING;
    const started = new Promise<void>((res, rej) => {
      t.resume = res;
      t.abort = rej;
    });
    const body = (async () => {
      try {
        await started;
        return await fn();
      } finally {
        t.busy = false;
        this.blocked.delete(t);
        if (this.cur === t) this.switch_out_dead();
      }
    })();
    this.enqueue(t);
    return body;
  }

  /** Spawns a kernel thread running `fn`; resolves to its result when it exits. */
  kthread_run<T>(fn: () => Promise<T>, comm: string, kind: ContextKind = "kthread"): Promise<T> {
    const t = this.alloc_task(comm, kind);
    return this.run_task(t, fn).finally(() => this.release_task(t));
  }

  /**
   * Waits for a promise that settles outside the scheduler's knowledge (another context's
   * completion promise, another machine). Inside a context the task sleeps until it settles,
   * so other contexts run meanwhile; awaiting such a promise directly would keep the CPU and
   * stall this machine. Outside any context it is a plain await.
   */
  async wait_for<T>(p: Promise<T>, desc = "external event"): Promise<T> {
    const t = this.cur;
    if (t === this.idle_task) return p;
    let settled = false;
    const done = () => {
      settled = true;
      this.external_waits--;
      this.wake_up_process(t);
    };
    this.external_waits++;
    p.then(done, done);
    // TASK_IDLE: the scheduler cannot see external progress, so this wait never counts
    // towards a deadlock; the settling promise wakes the task.
    while (!settled) {
      this.set_current_state(TASK_IDLE);
      t.wait_desc = desc;
      if (settled) {
        t.__state = TASK_RUNNING;
        break;
      }
      await this.schedule();
    }
    return p;
  }

  /** set_current_state(): the next schedule() sleeps unless a wake-up comes first. */
  set_current_state(state: number): void {
    this.cur.__state = state;
  }

  /**
   * schedule(): gives up the CPU. A task whose state is TASK_RUNNING stays runnable (a yield);
   * otherwise it sleeps until wake_up_process().
   */
  async schedule(): Promise<void> {
    const t = this.cur;
    if (t.kind === "hardirq" || t.kind === "softirq" || t.kind === "hw") {
      throw new Error(`schedule() from ${t.kind} context`);
    }
    if (t.__state === TASK_RUNNING) {
      if (this.runq.length === 0 && this.timers.next_expiry() > this.clock.ktime_get()) return;
      this.enqueue_raw(t);
    } else if (t.__state !== TASK_IDLE) {
      this.blocked.add(t);
    }
    await this.switch_out(t);
  }

  /** cond_resched(): a preemption point; other runnable contexts may go first. */
  async cond_resched(): Promise<void> {
    this.cur.__state = TASK_RUNNING;
    await this.schedule();
  }

  /** Returns true if the task was woken (it was sleeping or about to sleep). */
  wake_up_process(t: task_struct): boolean {
    if (t.__state === TASK_RUNNING || t.__state === TASK_DEAD) return false;
    t.__state = TASK_RUNNING;
    t.wait_desc = "";
    this.blocked.delete(t);
    if (t !== this.cur && !t.on_rq && t.resume) this.enqueue(t);
    return true;
  }

  /** Runs an atomic callback (IRQ top half, timer, device model) as a pseudo context. */
  run_atomic<T>(kind: "hardirq" | "softirq" | "hw", comm: string, fn: () => T): T {
    const prev = this.cur;
    const ctx = this.atomic_ctx(kind, comm);
    this.cur = ctx;
    try {
      return fn();
    } finally {
      this.cur = prev;
    }
  }

  // One context task per (kind, comm), looked up on every timer and interrupt: keyed by kind
  // then comm, so no key string is built per event.
  private atomic_ctxs = { hardirq: new Map<string, task_struct>(), softirq: new Map<string, task_struct>(), hw: new Map<string, task_struct>() };
  private atomic_ctx(kind: "hardirq" | "softirq" | "hw", comm: string): task_struct {
    const ctxs = this.atomic_ctxs[kind];
    let t = ctxs.get(comm);
    if (!t) {
      t = new task_struct(-1, comm, kind);
      if (kind === "hardirq") t.hardirq_count = 1;
      if (kind === "softirq") t.softirq_count = 1;
      t.irqs_disabled = kind === "hardirq";
      ctxs.set(comm, t);
    }
    return t;
  }

  in_interrupt(): boolean {
    return this.cur.hardirq_count > 0 || this.cur.softirq_count > 0;
  }

  in_atomic(): boolean {
    const c = this.cur;
    return c.preempt_count > 0 || c.hardirq_count > 0 || c.softirq_count > 0 || c.kind === "hw";
  }

  /** Runs the machine until nothing is runnable and no timer is pending. */
  settle(): Promise<void> {
    this.settle_requests++;
    const p = new Promise<void>((res) => this.settle_waiters.push(res));
    this.kick();
    return p.finally(() => this.settle_requests--);
  }

  /** Live contexts: running bodies, blocked ones with what they wait on. */
  describe_contexts(): string[] {
    return this.all_tasks()
      .filter((t) => t.busy)
      .map((t) => `${t}: ${t.__state === TASK_RUNNING ? "runnable" : `blocked on ${t.wait_desc || "?"}`}`);
  }

  get nr_blocked(): number {
    return this.blocked.size;
  }

  /** Runnable contexts waiting for the CPU (need_resched() is true when this is non-zero). */
  get nr_running(): number {
    return this.runq.length;
  }

  /** Halts the machine (BUG/oops): nothing runs afterwards. */
  halt(err: Error): void {
    this.halted = err;
    for (const t of [...this.runq, ...this.blocked]) t.abort?.(err);
    this.runq = [];
    this.blocked.clear();
  }

  private enqueue(t: task_struct): void {
    this.enqueue_raw(t);
    this.kick();
  }

  private enqueue_raw(t: task_struct): void {
    if (t.on_rq) return;
    t.on_rq = true;
    this.runq.push(t);
  }

  private kick(): void {
    if (this.loop_running || this.loop_kicked) return;
    this.loop_kicked = true;
    // A microtask, so every context a caller creates in one synchronous burst is runnable
    // before the first pick.
    queueMicrotask(() => {
      this.loop_kicked = false;
      if (!this.loop_running) void this.loop();
    });
  }

  private switch_out(t: task_struct): Promise<void> {
    const back = new Promise<void>((res, rej) => {
      t.resume = res;
      t.abort = rej;
    });
    this.hand_back();
    return back;
  }

  private switch_out_dead(): void {
    this.hand_back();
  }

  private hand_back(): void {
    const done = this.switch_done;
    this.switch_done = null;
    this.cur = this.idle_task;
    done?.();
  }

  private async loop(): Promise<void> {
    this.loop_running = true;
    try {
      while (!this.halted) {
        this.run_due_timers();
        if (this.runq.length === 0) {
          if (this.advance_clock()) continue;
          if (this.blocked.size > 0) {
            if (await this.external_wakeup_pending()) continue;
            this.deadlock();
            continue;
          }
          break;
        }
        await this.run_one(this.pick());
      }
    } finally {
      this.loop_running = false;
      const waiters = this.settle_waiters;
      this.settle_waiters = [];
      for (const w of waiters) w();
    }
  }

  private pick(): task_struct {
    const i = this.runq.length === 1 ? 0 : prandom_u32_below(this.rnd, this.runq.length);
    const t = this.runq[i]!;
    this.runq[i] = this.runq[this.runq.length - 1]!;
    this.runq.pop();
    t.on_rq = false;
    return t;
  }

  private run_one(t: task_struct): Promise<void> {
    this.nr_switches++;
    return new Promise<void>((res) => {
      this.switch_done = res;
      this.cur = t;
      const r = t.resume;
      const a = t.abort;
      const err = t.pending_error;
      t.resume = null;
      t.abort = null;
      t.pending_error = null;
      if (err) a?.(err);
      else r?.();
    });
  }

  private run_due_timers(): void {
    for (let t = this.timers.pop_due(); t; t = this.timers.pop_due()) this.fire(t);
  }

  private fire(t: timer_list): void {
    this.run_atomic(t.context, t.context === "hw" ? t.name : "ksoftirqd/0", () => t.function_(t));
  }

  /** Idles forward to the next timer when someone waits on the future (a blocked task or settle()). */
  private advance_clock(): boolean {
    const next = this.timers.next_expiry();
    if (next === Infinity) return false;
    if (this.blocked.size === 0 && this.settle_requests === 0) return false;
    this.clock.advance_to(next);
    return true;
  }

  /**
   * A context that finished may settle a promise some wait_for() sleeper waits on; the wake-up
   * arrives a few promise callbacks later. Let those run before calling it a deadlock.
   */
  private async external_wakeup_pending(): Promise<boolean> {
    if (this.external_waits === 0) return false;
    for (let i = 0; i < 64 && this.runq.length === 0; i++) await Promise.resolve();
    return this.runq.length > 0;
  }

  private deadlock(): void {
    this.deadlocks++;
    const report = [...this.blocked].map((t) => {
      const locks = t.held_locks.map((h) => h.class_name).join(", ");
      return `${t} blocked on ${t.wait_desc || "?"}${locks ? ` holding ${locks}` : ""}`;
    });
    this.printk.printk(LOGLEVEL_ERR, "INFO: kemu: deadlock: every context is blocked", "sched");
    for (const line of report) this.printk.printk(LOGLEVEL_ERR, `  ${line}`, "sched");
    this.on_deadlock?.(report);
    // Each blocked context gets the error when it next runs, one at a time like any wake-up.
    const err = new KernelDeadlock(report);
    for (const t of [...this.blocked]) {
      this.blocked.delete(t);
      t.__state = TASK_RUNNING;
      t.pending_error = err;
      this.enqueue_raw(t);
    }
  }
}

// Mirrors kernel/workqueue.c (Linux 6.8): workqueues, work items, delayed work and kworkers.
// kemu keeps one worker pool per workqueue (the kernel shares per-CPU and unbound pools between
// workqueues): kworkers are kernel threads created on demand, at most max_active of them, each
// running one work item at a time. A worker with nothing left to do goes idle (TASK_IDLE, as
// worker_enter_idle) and new work wakes the most recently idled one; a pool keeps at most
// MAX_IDLE_WORKERS idle and a worker beyond that exits at once (the kernel's idle timer reaps
// such extras after IDLE_WORKER_TIMEOUT). destroy_workqueue and power-off stop idle workers.
// Flushing waits on per-workqueue "tickets" (one per queueing) instead of the kernel's flush
// colours and barrier works. Lockdep sees the same pseudo-locks as in the kernel:
// "(wq_completion)<wq>" and "(work_completion)(<work>)".

import { wait_queue_head_t, wait_event_desc, wake_up_all } from "./sched/wait.ts";
import { inject, injectable } from "tsyringe";
import { KERNEL } from "./tokens.ts";
import type { Kernel } from "./kernel.ts";
import type { KernelService } from "./machine.ts";
import { lockdep_map } from "./locking/lockdep.ts";
import { PF_WQ_WORKER, TASK_IDLE, TASK_RUNNING, type task_struct } from "./sched/core.ts";
import { jiffies_to_nsecs } from "./time/timekeeping.ts";
import { timer_list } from "./time/timer.ts";

// ---- flags (include/linux/workqueue.h) ------------------------------------------------------

export const WQ_UNBOUND = 1 << 1;
export const WQ_FREEZABLE = 1 << 2;
export const WQ_MEM_RECLAIM = 1 << 3;
export const WQ_HIGHPRI = 1 << 4;
export const WQ_CPU_INTENSIVE = 1 << 5;
export const WQ_SYSFS = 1 << 6;
export const WQ_POWER_EFFICIENT = 1 << 7;
/** Internal: destroy_workqueue() in progress. */
export const __WQ_DESTROYING = 1 << 15;
/** Internal: drain_workqueue() in progress. */
export const __WQ_DRAINING = 1 << 16;
/** Internal: alloc_ordered_workqueue(). */
export const __WQ_ORDERED = 1 << 17;
/** Internal: create_workqueue()-style legacy workqueue. */
export const __WQ_LEGACY = 1 << 18;

export const WQ_MAX_ACTIVE = 512;
/** Idle workers a pool keeps (too_many_workers() lets two stay idle whatever the load). */
export const MAX_IDLE_WORKERS = 2;
export const WQ_DFL_ACTIVE = WQ_MAX_ACTIVE / 2;
/** wq->name's size in 6.8 (kernel/workqueue.c): longer names are cut, as vsnprintf does. */
export const WQ_NAME_LEN = 24;
/** queue_work_on()'s "any CPU"; kemu has one CPU, so every CPU number means CPU 0. */
export const WORK_CPU_UNBOUND = 8192;

// ---- work items --------------------------------------------------------------------------------

export type work_func_t = (work: work_struct) => Promise<void> | void;

export class work_struct {
  func: work_func_t | null = null;
  /** What INIT_WORK was given as the work's name; lockdep and leak reports print it. */
  name = "";
  lockdep_map = new lockdep_map("(work_completion)(?)");
  /** WORK_STRUCT_PENDING: on a worklist, or armed as delayed work. */
  pending = false;
  /** The workqueue the pending (or the last) instance was queued on. */
  wq: workqueue_struct | null = null;
  /** The pending instance's ticket in wq.inflight; 0 when not on a worklist. */
  ticket = 0;
  /** The kworker executing this item right now, if any. */
  current_worker: worker | null = null;
  /** cancel_work_sync() in progress: queueing is refused meanwhile (WORK_OFFQ_CANCELING). */
  canceling = 0;
  /** Set for the work embedded in a delayed_work (to_delayed_work). */
  dwork: delayed_work | null = null;

  constructor(func?: work_func_t, name?: string) {
    if (func) INIT_WORK(this, func, name);
  }
}

/** INIT_WORK(): binds the function; `name` stands for the stringified `&obj->work` of the macro. */
export function INIT_WORK(work: work_struct, func: work_func_t, name?: string): void {
  work.func = func;
  work.name = name ?? (func.name || "work");
  work.lockdep_map = new lockdep_map(`(work_completion)(${work.name})`);
}

export class delayed_work {
  readonly work = new work_struct();
  /** Fires in softirq context and queues the work on `wq`. */
  readonly timer: timer_list;
  wq: workqueue_struct | null = null;

  constructor(func?: work_func_t, name?: string) {
    this.work.dwork = this;
    this.timer = new timer_list(() => this.wq?.wqs.delayed_work_timer_fn(this), "delayed_work_timer_fn");
    if (func) INIT_DELAYED_WORK(this, func, name);
  }
}

export function INIT_DELAYED_WORK(dwork: delayed_work, func: work_func_t, name?: string): void {
  INIT_WORK(dwork.work, func, name);
  dwork.timer.name = `delayed_work_timer_fn(${dwork.work.name})`;
}

/** to_delayed_work(): the delayed_work a work item is embedded in, or null. */
export function to_delayed_work(work: work_struct): delayed_work | null {
  return work.dwork;
}

export function work_pending(work: work_struct): boolean {
  return work.pending;
}

export function delayed_work_pending(dwork: delayed_work): boolean {
  return dwork.work.pending;
}

// ---- workqueues and workers ---------------------------------------------------------------------

/** The running state of one kworker (struct worker of workqueue_internal.h). */
export class worker {
  current_work: work_struct | null = null;
  /** The ticket of the instance being executed. */
  current_ticket = 0;
  /** Asked to exit when next idle (destroy_workqueue, power-off). */
  should_stop = false;
  /** Woken from idle for work: counted in its workqueue's nr_starting until it runs. */
  kicked = false;

  constructor(
    readonly task: task_struct,
    readonly id: number,
    readonly pool: string,
    readonly wq: workqueue_struct,
  ) {}
}

export class workqueue_struct {
  /** Pending work in queue order. */
  readonly worklist: work_struct[] = [];
  /** Queued-or-running instances by ticket, in ticket (queueing) order: what a flush waits for. */
  readonly inflight = new Map<number, work_struct>();
  readonly workers = new Set<worker>();
  /** Idle workers, most recently idled last (the next one woken). */
  readonly idle: worker[] = [];
  /** Workers created or woken but not yet looking for work: the spare that takes the next item. */
  nr_starting = 0;
  nr_drainers = 0;
  readonly saved_max_active: number;
  readonly lockdep_map: lockdep_map;

  constructor(
    readonly wqs: Workqueues,
    readonly name: string,
    public flags: number,
    readonly max_active: number,
  ) {
    this.saved_max_active = max_active;
    this.lockdep_map = new lockdep_map(`(wq_completion)${name}`);
  }
}

/** The task-slot key under which a kworker keeps its worker (current_wq_worker()). */
const WORKER_SLOT = Symbol("worker");

/** The printf subset workqueue names use ("%s", "%d", "%u", "%x"). */
function format_name(fmt: string, args: readonly unknown[]): string {
  let i = 0;
  return fmt.replace(/%([sdux%])/g, (_m, c: string) => {
    if (c === "%") return "%";
    const v = args[i++];
    if (c === "x") return Number(v).toString(16);
    return String(v);
  });
}

@injectable()
export class Workqueues implements KernelService {
  system_wq!: workqueue_struct;
  system_highpri_wq!: workqueue_struct;
  system_long_wq!: workqueue_struct;
  system_unbound_wq!: workqueue_struct;
  system_freezable_wq!: workqueue_struct;

  private readonly workqueues = new Set<workqueue_struct>();
  private readonly system = new Set<workqueue_struct>();
  /** Delayed work whose timer is armed. */
  private readonly armed = new Set<delayed_work>();
  /** Worker ids in use per pool name ("u8", "0", "0H"...), for ida-style lowest-free ids. */
  private readonly pool_ids = new Map<string, Set<number>>();
  private next_ticket = 0;
  /** Power-off began: workers exit instead of idling. */
  private stopping = false;
  /** Tasks sleeping in a flush or cancel; each rechecks its own condition when woken. */
  private readonly wait_wq: wait_queue_head_t;

  constructor(@inject(KERNEL) private readonly k: Kernel) {
    this.wait_wq = new wait_queue_head_t(k, "workqueue flush");
  }

  /** workqueue_init_early(): the system workqueues. */
  init(): void {
    this.system_wq = this.alloc_system("events", 0, 0);
    this.system_highpri_wq = this.alloc_system("events_highpri", WQ_HIGHPRI, 0);
    this.system_long_wq = this.alloc_system("events_long", 0, 0);
    this.system_unbound_wq = this.alloc_system("events_unbound", WQ_UNBOUND, WQ_MAX_ACTIVE);
    this.system_freezable_wq = this.alloc_system("events_freezable", WQ_FREEZABLE, 0);
  }

  private alloc_system(name: string, flags: number, max_active: number): workqueue_struct {
    const wq = this.alloc_workqueue(name, flags, max_active);
    this.system.add(wq);
    return wq;
  }

  /** Power-off: every worker exits once it has nothing to do; waits until all are gone. */
  async power_off(): Promise<void> {
    this.stopping = true;
    for (const wq of this.workqueues) this.stop_workers(wq);
    await this.wait_until("workqueue power-off", () => [...this.workqueues].every((wq) => wq.workers.size === 0));
  }

  /** Pending and running work, armed delayed work, and workqueues nobody destroyed. */
  leak_report(): string[] {
    const r: string[] = [];
    for (const wq of this.workqueues) {
      for (const w of wq.worklist) r.push(`workqueue ${wq.name}: work ${w.name} still pending`);
      for (const wk of wq.workers) {
        if (wk.current_work) r.push(`workqueue ${wq.name}: work ${wk.current_work.name} still running on ${wk.task}`);
      }
      if (!this.system.has(wq)) r.push(`workqueue ${wq.name} was never destroyed`);
    }
    for (const dw of this.armed) {
      r.push(`delayed work ${dw.work.name} on ${dw.wq?.name ?? "?"} still armed (expires at ${dw.timer.expires} ns)`);
    }
    return r;
  }

  // ---- allocation ------------------------------------------------------------------------

  /** alloc_workqueue(): `fmt` is printf-like over `args`; max_active 0 means the default. */
  alloc_workqueue(fmt: string, flags: number, max_active: number, ...args: unknown[]): workqueue_struct {
    const name = format_name(fmt, args).slice(0, WQ_NAME_LEN - 1);
    const active = this.clamp_max_active(max_active || WQ_DFL_ACTIVE, name);
    const wq = new workqueue_struct(this, name, flags, active);
    this.workqueues.add(wq);
    return wq;
  }

  /** alloc_ordered_workqueue(): one item at a time, strictly in queueing order. */
  alloc_ordered_workqueue(fmt: string, flags: number, ...args: unknown[]): workqueue_struct {
    return this.alloc_workqueue(fmt, WQ_UNBOUND | __WQ_ORDERED | flags, 1, ...args);
  }

  /** create_singlethread_workqueue(): the legacy ordered workqueue with a rescuer. */
  create_singlethread_workqueue(name: string): workqueue_struct {
    return this.alloc_ordered_workqueue("%s", __WQ_LEGACY | WQ_MEM_RECLAIM, name);
  }

  private clamp_max_active(max_active: number, name: string): number {
    if (max_active >= 1 && max_active <= WQ_MAX_ACTIVE) return max_active;
    this.k.pr_warn(`workqueue: max_active ${max_active} requested for ${name} is out of range, clamping between 1 and ${WQ_MAX_ACTIVE}`);
    return Math.min(Math.max(max_active, 1), WQ_MAX_ACTIVE);
  }

  // ---- queueing (atomic-safe: never sleeps) --------------------------------------------------

  /** queue_work(): false if the work was already pending (or being cancelled). */
  queue_work(wq: workqueue_struct, work: work_struct): boolean {
    if (this.k.WARN_ON(!work.func, "workqueue: queue_work() of a work item without INIT_WORK")) return false;
    if (work.pending || work.canceling) return false;
    work.pending = true;
    return this.__queue_work(wq, work);
  }

  /** queue_work_on(): kemu has one CPU, so `cpu` only documents the caller's intent. */
  queue_work_on(_cpu: number, wq: workqueue_struct, work: work_struct): boolean {
    return this.queue_work(wq, work);
  }

  schedule_work(work: work_struct): boolean {
    return this.queue_work(this.system_wq, work);
  }

  /** queue_delayed_work(): queue `dwork` after `delay` jiffies (0: at once). */
  queue_delayed_work(wq: workqueue_struct, dwork: delayed_work, delay: number): boolean {
    const work = dwork.work;
    if (this.k.WARN_ON(!work.func, "workqueue: queue_delayed_work() of a work item without INIT_DELAYED_WORK")) return false;
    if (work.pending || work.canceling) return false;
    work.pending = true;
    this.__queue_delayed_work(wq, dwork, delay);
    return true;
  }

  schedule_delayed_work(dwork: delayed_work, delay: number): boolean {
    return this.queue_delayed_work(this.system_wq, dwork, delay);
  }

  /**
   * mod_delayed_work(): (re)arms `dwork` to run `delay` jiffies from now whatever its state;
   * returns true if it was pending before. Refused (false) while cancel_work_sync() runs.
   */
  mod_delayed_work(wq: workqueue_struct, dwork: delayed_work, delay: number): boolean {
    const work = dwork.work;
    if (work.canceling) return false;
    const was_pending = this.try_to_grab_pending(work);
    work.pending = true;
    this.__queue_delayed_work(wq, dwork, delay);
    return was_pending;
  }

  private __queue_delayed_work(wq: workqueue_struct, dwork: delayed_work, delay: number): void {
    dwork.wq = wq;
    const jiffies = Math.max(0, Math.floor(delay));
    if (jiffies === 0) {
      this.__queue_work(wq, dwork.work);
      return;
    }
    // The timer fires on the tick where jiffies reaches the deadline, as timer_list does.
    this.k.timers.mod_timer(dwork.timer, jiffies_to_nsecs(this.k.jiffies + jiffies));
    this.armed.add(dwork);
  }

  /** delayed_work_timer_fn(): softirq context; hands the work to its workqueue. */
  delayed_work_timer_fn(dwork: delayed_work): void {
    this.armed.delete(dwork);
    if (dwork.wq) this.__queue_work(dwork.wq, dwork.work);
  }

  /** Puts a work whose PENDING bit the caller set on `wq`'s worklist. */
  private __queue_work(wq: workqueue_struct, work: work_struct): boolean {
    if (wq.flags & (__WQ_DESTROYING | __WQ_DRAINING) && !this.is_chained_work(wq)) {
      this.k.WARN_ON_ONCE(true, `workqueue: cannot queue ${work.name} on ${wq.name}: it is being drained or destroyed`);
      work.pending = false;
      return false;
    }
    work.wq = wq;
    work.ticket = ++this.next_ticket;
    wq.inflight.set(work.ticket, work);
    wq.worklist.push(work);
    this.maybe_create_worker(wq);
    return true;
  }

  /** While draining, only work items of the workqueue itself may queue more (chained work). */
  private is_chained_work(wq: workqueue_struct): boolean {
    return this.current_worker()?.wq === wq;
  }

  // ---- kworkers ----------------------------------------------------------------------------

  /** current_wq_worker(). */
  private current_worker(): worker | null {
    const t = this.k.current;
    if (!(t.flags & PF_WQ_WORKER)) return null;
    return (t.slots.get(WORKER_SLOT) as worker | undefined) ?? null;
  }

  /** current_work(): the work item the current kworker executes, or null. */
  current_work(): work_struct | null {
    return this.current_worker()?.current_work ?? null;
  }

  /**
   * Keeps one spare worker ready while work waits: the most recently idled worker is woken
   * (kick_pool), else one is created, up to max_active workers. The spare runs when the busy
   * ones sleep, which stands in for the kernel's concurrency management.
   */
  private maybe_create_worker(wq: workqueue_struct): void {
    if (wq.nr_starting > 0 || wq.worklist.length === 0) return;
    if (this.k.sched.halted) return;
    const idle = wq.idle.pop();
    if (idle) {
      wq.nr_starting++;
      idle.kicked = true;
      this.k.sched.wake_up_process(idle.task);
      return;
    }
    if (wq.workers.size >= wq.max_active) return;
    this.create_worker(wq);
  }

  private pool_of(wq: workqueue_struct): string {
    const hi = wq.flags & WQ_HIGHPRI;
    if (wq.flags & WQ_UNBOUND) return hi ? "u9" : "u8";
    return hi ? "0H" : "0";
  }

  private create_worker(wq: workqueue_struct): void {
    const pool = this.pool_of(wq);
    const ids = this.pool_ids.get(pool) ?? new Set<number>();
    this.pool_ids.set(pool, ids);
    let id = 0;
    while (ids.has(id)) id++;
    ids.add(id);
    const name = pool.startsWith("u") ? `kworker/${pool}:${id}` : `kworker/0:${id}${pool.endsWith("H") ? "H" : ""}`;
    const t = this.k.sched.alloc_task(name, "kworker");
    t.flags |= PF_WQ_WORKER;
    const w = new worker(t, id, pool, wq);
    t.slots.set(WORKER_SLOT, w);
    wq.workers.add(w);
    wq.nr_starting++;
    this.k.sched.run_task(t, () => this.worker_thread(w)).catch(() => this.worker_exit(w, true));
  }

  /** worker_thread(): runs work items, idles when none is left, exits when told to. */
  private async worker_thread(w: worker): Promise<void> {
    const wq = w.wq;
    wq.nr_starting--;
    try {
      for (;;) {
        for (let next = this.pick(w); next; next = this.pick(w)) {
          this.maybe_create_worker(wq);
          await this.process_one_work(w, next.work, next.ticket);
        }
        if (!(await this.worker_idle(w))) return;
      }
    } finally {
      this.worker_exit(w, false);
      // Work that arrived as this worker was told to stop still needs a worker.
      this.maybe_create_worker(wq);
    }
  }

  /**
   * worker_enter_idle() and the sleep until new work wakes this worker (true), or false when it
   * should exit instead: told to stop, or the pool already has MAX_IDLE_WORKERS idle.
   */
  private async worker_idle(w: worker): Promise<boolean> {
    const wq = w.wq;
    const s = this.k.sched;
    if (w.should_stop || this.stopping || s.halted || wq.idle.length >= MAX_IDLE_WORKERS) return false;
    wq.idle.push(w);
    s.set_current_state(TASK_IDLE);
    s.current.wait_desc = "worker_thread";
    await s.schedule();
    s.set_current_state(TASK_RUNNING);
    if (w.kicked) {
      w.kicked = false;
      wq.nr_starting--;
    }
    return !w.should_stop;
  }

  /** Makes `wq`'s workers exit as soon as they are idle, waking the idle ones now. */
  private stop_workers(wq: workqueue_struct): void {
    for (const w of wq.workers) w.should_stop = true;
    for (const w of wq.idle.splice(0)) this.k.sched.wake_up_process(w.task);
  }

  private worker_exit(w: worker, never_started: boolean): void {
    if (!w.wq.workers.delete(w)) return;
    if (never_started) w.wq.nr_starting--;
    const i = w.wq.idle.indexOf(w);
    if (i >= 0) w.wq.idle.splice(i, 1);
    this.pool_ids.get(w.pool)?.delete(w.id);
    w.task.slots.delete(WORKER_SLOT);
    this.k.sched.release_task(w.task);
    wake_up_all(this.wait_wq);
  }

  /**
   * Takes the next item for `w` and clears its PENDING bit (it may be queued again while it runs).
   * An item still running on another worker is left for that worker (non-reentrancy); on an
   * ordered workqueue nothing may overtake the head.
   */
  private pick(w: worker): { work: work_struct; ticket: number } | null {
    const wq = w.wq;
    if (this.k.sched.halted) return null;
    for (let i = 0; i < wq.worklist.length; i++) {
      const work = wq.worklist[i]!;
      if (work.current_worker && work.current_worker !== w) {
        if (wq.flags & __WQ_ORDERED) return null;
        continue;
      }
      wq.worklist.splice(i, 1);
      const ticket = work.ticket;
      work.ticket = 0;
      work.pending = false;
      return { work, ticket };
    }
    return null;
  }

  /** process_one_work(): runs one item under the workqueue's and the work's lockdep maps. */
  private async process_one_work(w: worker, work: work_struct, ticket: number): Promise<void> {
    const wq = w.wq;
    const t = w.task;
    const fn = work.func!;
    w.current_work = work;
    w.current_ticket = ticket;
    work.current_worker = w;
    const depth = t.held_locks.length;
    const ld = this.k.lockdep;
    ld.lock_map_acquire(wq.lockdep_map);
    ld.lock_map_acquire(work.lockdep_map);
    try {
      await fn(work);
    } catch (e) {
      this.work_fn_failed(w, e);
    }
    ld.lock_map_release(work.lockdep_map);
    ld.lock_map_release(wq.lockdep_map);
    this.check_leaks(t, depth, work);
    work.current_worker = null;
    w.current_work = null;
    w.current_ticket = 0;
    this.retire(wq, ticket);
    // The item may have been queued again elsewhere while it ran; that queue skipped it then.
    if (work.pending && work.wq && work.wq !== wq) this.maybe_create_worker(work.wq);
  }

  /** A work function never returns an error in C; an exception here is a deadlock or an emulator bug. */
  private work_fn_failed(w: worker, e: unknown): void {
    if (this.k.sched.halted) throw e;
    if (e instanceof Error && e.name === "KernelDeadlock") return;
    const what = e instanceof Error ? (e.stack ?? e.message) : String(e);
    const name = w.current_work?.name ?? "?";
    this.k.pr_err(`workqueue: ${w.wq.name}: work function ${name} raised: ${what}`);
    this.k.record_splat("bug", `work function ${name} raised`);
  }

  /** The "leaked atomic, lock or RCU" check after each work item. */
  private check_leaks(t: task_struct, depth: number, work: work_struct): void {
    if (t.preempt_count === 0 && t.held_locks.length === depth) return;
    const preempt = `0x${t.preempt_count.toString(16).padStart(8, "0")}`;
    this.k.pr_err(`BUG: workqueue leaked atomic, lock or RCU: ${t.comm}[${t.pid}]`);
    this.k.pr_err(`     preempt=${preempt} lock=${depth}->${t.held_locks.length} RCU=0->0 workfn=${work.name}`);
    for (const h of t.held_locks.slice(depth)) this.k.pr_err(` #${t.held_locks.indexOf(h)}: ${h.class_name}, at: ${h.acquire_ip}`);
    this.k.record_splat("bug", `workqueue leaked atomic or lock: ${work.name}`);
  }

  /** An instance left the workqueue (ran or was cancelled): wake whoever waited for it. */
  private retire(wq: workqueue_struct, ticket: number): void {
    wq.inflight.delete(ticket);
    wake_up_all(this.wait_wq);
  }

  /** Sleeps uninterruptibly until `cond` holds; whoever changes the state wakes the queue. */
  private wait_until(desc: string, cond: () => boolean): Promise<void> {
    return wait_event_desc(this.wait_wq, cond, desc);
  }

  // ---- cancelling ----------------------------------------------------------------------------

  /** try_to_grab_pending(): takes the PENDING instance off its timer or worklist. */
  private try_to_grab_pending(work: work_struct): boolean {
    if (!work.pending) return false;
    const dw = work.dwork;
    if (dw && this.k.timers.del_timer(dw.timer)) {
      this.armed.delete(dw);
    } else if (work.wq && work.ticket) {
      const wq = work.wq;
      const i = wq.worklist.indexOf(work);
      if (i >= 0) wq.worklist.splice(i, 1);
      const ticket = work.ticket;
      work.ticket = 0;
      work.pending = false;
      this.retire(wq, ticket);
    }
    work.pending = false;
    return true;
  }

  /** cancel_work(): removes a pending instance without waiting for a running one. */
  cancel_work(work: work_struct): boolean {
    return this.try_to_grab_pending(work);
  }

  cancel_delayed_work(dwork: delayed_work): boolean {
    return this.try_to_grab_pending(dwork.work);
  }

  /**
   * cancel_work_sync(): removes a pending instance and waits for a running one to finish;
   * queueing is refused meanwhile. Returns whether it was pending.
   */
  async cancel_work_sync(work: work_struct): Promise<boolean> {
    const may_sleep = this.k.might_sleep("cancel_work_sync");
    const was_pending = this.try_to_grab_pending(work);
    const running = work.current_worker;
    if (!running || !may_sleep) return was_pending;
    if (running === this.current_worker()) {
      this.self_flush_warn("cancel_work_sync", running.wq, work);
      return was_pending;
    }
    work.canceling++;
    try {
      await this.wait_until(`cancel_work_sync(${work.name})`, () => work.current_worker === null);
    } finally {
      work.canceling--;
    }
    return was_pending;
  }

  cancel_delayed_work_sync(dwork: delayed_work): Promise<boolean> {
    return this.cancel_work_sync(dwork.work);
  }

  // ---- flushing ------------------------------------------------------------------------------

  /**
   * flush_work(): waits for the last queueing instance of `work` to finish. Returns false if it
   * was idle (neither queued nor running; an armed delayed work counts as idle, as in Linux).
   */
  async flush_work(work: work_struct): Promise<boolean> {
    if (!this.k.might_sleep("flush_work")) return false;
    if (this.k.WARN_ON(!work.func, "workqueue: flush_work() of a work item without INIT_WORK")) return false;
    const ld = this.k.lockdep;
    ld.lock_map_acquire(work.lockdep_map);
    ld.lock_map_release(work.lockdep_map);
    const targets: Array<[workqueue_struct, number]> = [];
    if (work.wq && work.ticket) targets.push([work.wq, work.ticket]);
    const running = work.current_worker;
    if (running) targets.push([running.wq, running.current_ticket]);
    if (targets.length === 0) return false;
    const wq = targets[0]![0];
    this.check_flush_dependency(wq, work);
    // Flushing on a single-threaded or rescuer-backed workqueue from one of its own items can
    // deadlock; the write acquisition of the workqueue's map lets lockdep say so.
    if (wq.saved_max_active === 1 || wq.flags & WQ_MEM_RECLAIM) {
      ld.lock_map_acquire(wq.lockdep_map);
      ld.lock_map_release(wq.lockdep_map);
    }
    const self = this.current_worker();
    if (self && (running === self || (self.wq === wq && wq.saved_max_active === 1))) {
      this.self_flush_warn("flush_work", wq, work);
      return false;
    }
    await this.wait_until(`flush_work(${work.name})`, () => targets.every(([q, tk]) => !q.inflight.has(tk)));
    return true;
  }

  /** flush_delayed_work(): an armed timer is fired early, then the work is flushed. */
  async flush_delayed_work(dwork: delayed_work): Promise<boolean> {
    if (this.k.timers.del_timer(dwork.timer)) {
      this.armed.delete(dwork);
      if (dwork.wq) this.__queue_work(dwork.wq, dwork.work);
    }
    return this.flush_work(dwork.work);
  }

  /** flush_workqueue(): waits until everything queued before the call has finished. */
  async flush_workqueue(wq: workqueue_struct): Promise<void> {
    await this.__flush_workqueue(wq);
  }

  /** Returns false when it refused to wait because the wait could never end. */
  private async __flush_workqueue(wq: workqueue_struct): Promise<boolean> {
    if (!this.k.might_sleep("flush_workqueue")) return false;
    const ld = this.k.lockdep;
    ld.lock_map_acquire(wq.lockdep_map);
    ld.lock_map_release(wq.lockdep_map);
    this.check_flush_dependency(wq, null);
    const self = this.current_worker();
    if (self?.wq === wq) {
      // Our own running item is among those the flush waits for.
      this.self_flush_warn("flush_workqueue", wq, self.current_work);
      return false;
    }
    const last = this.next_ticket;
    await this.wait_until(`flush_workqueue(${wq.name})`, () => {
      const first = wq.inflight.keys().next();
      return first.done === true || first.value > last;
    });
    return true;
  }

  /** drain_workqueue(): flushes until empty; only the workqueue's own items may queue meanwhile. */
  async drain_workqueue(wq: workqueue_struct): Promise<void> {
    if (!this.k.might_sleep("drain_workqueue")) return;
    wq.nr_drainers++;
    wq.flags |= __WQ_DRAINING;
    try {
      let flush_cnt = 0;
      while (wq.inflight.size > 0) {
        if (!(await this.__flush_workqueue(wq))) break;
        // Chained work queued more meanwhile: flush again, complaining now and then.
        if (wq.inflight.size > 0 && (++flush_cnt === 10 || (flush_cnt % 100 === 0 && flush_cnt <= 1000))) {
          this.k.pr_warn(`workqueue ${wq.name}: drain_workqueue() isn't complete after ${flush_cnt} tries`);
        }
      }
    } finally {
      if (--wq.nr_drainers === 0) wq.flags &= ~__WQ_DRAINING;
    }
  }

  /**
   * destroy_workqueue(): drains, then frees. A workqueue still busy afterwards (a self-destroy
   * from its own work item, or delayed work still armed on it) is reported and left alive.
   */
  async destroy_workqueue(wq: workqueue_struct): Promise<void> {
    if (!this.k.might_sleep("destroy_workqueue")) return;
    if (this.k.WARN_ON(this.system.has(wq), `workqueue: destroy_workqueue() of system workqueue ${wq.name}`)) return;
    if (this.k.WARN_ON(!this.workqueues.has(wq), `workqueue: destroy_workqueue() of destroyed workqueue ${wq.name}`)) return;
    wq.flags |= __WQ_DESTROYING;
    await this.drain_workqueue(wq);
    const busy = [...wq.inflight.values()].map((w) => w.name);
    const armed = [...this.armed].filter((d) => d.wq === wq).map((d) => d.work.name);
    if (busy.length || armed.length) {
      const what = [...busy.map((n) => `work ${n}`), ...armed.map((n) => `delayed work ${n} (armed)`)].join(", ");
      this.k.WARN(true, `destroy_workqueue: ${wq.name} has the following busy pwq: ${what}`);
      wq.flags &= ~__WQ_DESTROYING;
      return;
    }
    this.stop_workers(wq);
    await this.wait_until(`destroy_workqueue(${wq.name})`, () => wq.workers.size === 0);
    this.workqueues.delete(wq);
  }

  /**
   * check_flush_dependency(): a WQ_MEM_RECLAIM worker must not wait for a workqueue without
   * a rescuer, or memory reclaim can deadlock behind it.
   */
  private check_flush_dependency(target: workqueue_struct, target_work: work_struct | null): void {
    if (target.flags & WQ_MEM_RECLAIM) return;
    const w = this.current_worker();
    if (!w || (w.wq.flags & (WQ_MEM_RECLAIM | __WQ_LEGACY)) !== WQ_MEM_RECLAIM) return;
    this.k.WARN_ONCE(true, `workqueue: WQ_MEM_RECLAIM ${w.wq.name}:${w.current_work?.name ?? "?"} is flushing !WQ_MEM_RECLAIM ${target.name}:${target_work?.name ?? "0x0"}`);
  }

  /** Waiting for our own work item can never end: Linux hangs here; kemu warns and returns. */
  private self_flush_warn(op: string, wq: workqueue_struct, work: work_struct | null): void {
    this.k.WARN(true, `workqueue: ${op}() from a work item on the same workqueue ${wq.name}:${work?.name ?? "?"} would deadlock`);
  }
}

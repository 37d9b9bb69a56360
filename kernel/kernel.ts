// kemu's kernel core: what Linux code reaches through globals — current, printk, jiffies,
// msleep (kernel/time/timer.c), WARN/BUG (kernel/panic.c, lib/bug.c), might_sleep
// (kernel/sched/core.c __might_sleep). One Kernel per machine; subsystems get it injected.

import { Printk, LOGLEVEL_EMERG, LOGLEVEL_ALERT, LOGLEVEL_CRIT, LOGLEVEL_ERR, LOGLEVEL_WARNING,
  LOGLEVEL_NOTICE, LOGLEVEL_INFO, LOGLEVEL_DEBUG } from "./printk/printk.ts";
import { Scheduler, TASK_UNINTERRUPTIBLE, type task_struct } from "./sched/core.ts";
import { Clock, NSEC_PER_MSEC, NSEC_PER_USEC } from "./time/timekeeping.ts";
import { TimerBase, timer_list } from "./time/timer.ts";
import { inject, injectable } from "tsyringe";
import { CLOCK, LOCKDEP, PRINTK, SCHED, TIMERS } from "./tokens.ts";
import type { Lockdep } from "./locking/lockdep.ts";

export type SplatKind = "warn" | "bug" | "lockdep" | "sleep-in-atomic" | "deadlock" | "hung-task";

export interface Splat {
  kind: SplatKind;
  title: string;
  ts_nsec: number;
}

/** Raised by BUG(): the machine halts, and every call into it rejects with this. */
export class KernelOops extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = "KernelOops";
  }
}

/** Something with a driver and a device name, for dev_printk ("amdgpu 0000:03:00.0: ..."). */
export interface DevPrintTarget {
  dev_name(): string;
  driver_name(): string;
}

/** The repository root, to tell the kernel core's own frames from callers' frames. */
const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);
const CORE_FRAMES = [`${ROOT}kernel/kernel.ts`, `${ROOT}kernel/locking/`];

/** First stack frame outside the kernel core: stands in for __FILE__:__LINE__ in splats. */
function caller_location(skip = 0): string {
  const stack = new Error().stack?.split("\n").slice(1) ?? [];
  const frames = stack.filter((l) => !CORE_FRAMES.some((c) => l.includes(c)));
  const frame = frames[skip] ?? "";
  const m = /\(?((?:file:\/\/)?[^()\s]+):(\d+):\d+\)?$/.exec(frame.trim());
  if (!m) return "?";
  const file = m[1]!.replace(/^file:\/\//, "");
  return `${file.startsWith(ROOT) ? file.slice(ROOT.length) : file}:${m[2]}`;
}

@injectable()
export class Kernel {
  readonly splats: Splat[] = [];
  private warned_once = new Set<string>();
  /** Splats the running test announced it will provoke; they do not fail it at shutdown. */
  expected_splats = new Set<SplatKind>();
  taint = 0;

  constructor(
    @inject(CLOCK) readonly clock: Clock,
    @inject(TIMERS) readonly timers: TimerBase,
    @inject(SCHED) readonly sched: Scheduler,
    @inject(PRINTK) readonly log: Printk,
    @inject(LOCKDEP) readonly lockdep: Lockdep,
  ) {
    sched.on_deadlock = () => {
      this.record_splat("deadlock", "every context is blocked");
      lockdep.debug_show_all_locks();
    };
    lockdep.on_splat = (title) => this.record_splat("lockdep", title);
  }

  get current(): task_struct {
    return this.sched.current;
  }

  get jiffies(): number {
    return this.clock.jiffies;
  }

  ktime_get(): number {
    return this.clock.ktime_get();
  }

  // ---- printk -------------------------------------------------------------------------

  printk(level: number, text: string, facility = "kernel"): void {
    this.log.printk(level, text, facility);
  }
  pr_emerg(text: string, facility?: string): void { this.printk(LOGLEVEL_EMERG, text, facility); }
  pr_alert(text: string, facility?: string): void { this.printk(LOGLEVEL_ALERT, text, facility); }
  pr_crit(text: string, facility?: string): void { this.printk(LOGLEVEL_CRIT, text, facility); }
  pr_err(text: string, facility?: string): void { this.printk(LOGLEVEL_ERR, text, facility); }
  pr_warn(text: string, facility?: string): void { this.printk(LOGLEVEL_WARNING, text, facility); }
  pr_notice(text: string, facility?: string): void { this.printk(LOGLEVEL_NOTICE, text, facility); }
  pr_info(text: string, facility?: string): void { this.printk(LOGLEVEL_INFO, text, facility); }
  pr_debug(text: string, facility?: string): void { this.printk(LOGLEVEL_DEBUG, text, facility); }

  dev_printk(level: number, dev: DevPrintTarget, text: string): void {
    this.printk(level, `${dev.driver_name()} ${dev.dev_name()}: ${text}`, dev.driver_name());
  }
  dev_err(dev: DevPrintTarget, text: string): void { this.dev_printk(LOGLEVEL_ERR, dev, text); }
  dev_warn(dev: DevPrintTarget, text: string): void { this.dev_printk(LOGLEVEL_WARNING, dev, text); }
  dev_info(dev: DevPrintTarget, text: string): void { this.dev_printk(LOGLEVEL_INFO, dev, text); }
  dev_dbg(dev: DevPrintTarget, text: string): void { this.dev_printk(LOGLEVEL_DEBUG, dev, text); }

  // ---- WARN / BUG (kernel/panic.c __warn, lib/bug.c) --------------------------------------

  record_splat(kind: SplatKind, title: string): void {
    this.splats.push({ kind, title, ts_nsec: this.clock.ktime_get() });
  }

  /** Prints the "cut here" splat with the caller's location; returns `cond` like the macro. */
  WARN_ON(cond: unknown, msg = ""): boolean {
    if (!cond) return false;
    this.warn_splat(caller_location(), msg);
    return true;
  }

  WARN(cond: unknown, msg: string): boolean {
    return this.WARN_ON(cond, msg);
  }

  WARN_ON_ONCE(cond: unknown, msg = ""): boolean {
    if (!cond) return false;
    const where = caller_location();
    if (!this.warned_once.has(where)) {
      this.warned_once.add(where);
      this.warn_splat(where, msg);
    }
    return true;
  }

  WARN_ONCE(cond: unknown, msg: string): boolean {
    return this.WARN_ON_ONCE(cond, msg);
  }

  private warn_splat(where: string, msg: string): void {
    const t = this.current;
    this.pr_warn("------------[ cut here ]------------");
    if (msg) this.pr_warn(msg);
    this.pr_warn(`WARNING: CPU: 0 PID: ${t.pid} at ${where}`);
    this.pr_warn(`CPU: 0 PID: ${t.pid} Comm: ${t.comm} Tainted: G        W`);
    this.pr_warn("---[ end trace 0000000000000000 ]---");
    this.taint |= 1 << 9; // TAINT_WARN
    this.record_splat("warn", msg || where);
  }

  BUG_ON(cond: unknown): void {
    if (cond) this.BUG(caller_location());
  }

  /** Oopses: prints the report, halts the machine and throws. */
  BUG(where = caller_location()): never {
    const t = this.current;
    this.pr_crit(`kernel BUG at ${where}!`);
    this.pr_emerg("Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI");
    this.pr_emerg(`CPU: 0 PID: ${t.pid} Comm: ${t.comm}`);
    this.record_splat("bug", where);
    const oops = new KernelOops(`kernel BUG at ${where}`);
    this.sched.halt(oops);
    throw oops;
  }

  // ---- sleeping -------------------------------------------------------------------------

  /**
   * __might_sleep(): complains when a sleeping function is called from atomic context.
   * Returns false after the splat so callers can refuse to sleep instead of corrupting state.
   */
  might_sleep(what = ""): boolean {
    const s = this.sched;
    const t = s.current;
    const atomic = s.in_atomic();
    if (!atomic && !t.irqs_disabled) return true;
    const where = caller_location(1);
    this.pr_err(`BUG: sleeping function called from invalid context at ${where}`);
    this.pr_err(`in_atomic(): ${atomic ? 1 : 0}, irqs_disabled(): ${t.irqs_disabled ? 1 : 0}, non_block: 0, pid: ${t.pid}, name: ${t.comm}`);
    if (what) this.pr_err(`called: ${what}`);
    this.record_splat("sleep-in-atomic", where);
    return false;
  }

  async schedule(): Promise<void> {
    await this.sched.schedule();
  }

  async cond_resched(): Promise<void> {
    this.might_sleep("cond_resched");
    await this.sched.cond_resched();
  }

  /** schedule_timeout(): sleeps in the current state until woken or `timeout_ns` passes. */
  async schedule_timeout(timeout_ns: number): Promise<number> {
    const t = this.current;
    const deadline = this.clock.ktime_get() + timeout_ns;
    const timer = new timer_list(() => this.sched.wake_up_process(t), "process_timeout");
    this.timers.mod_timer(timer, deadline);
    try {
      await this.sched.schedule();
    } finally {
      this.timers.del_timer(timer);
    }
    return Math.max(0, deadline - this.clock.ktime_get());
  }

  async msleep(ms: number): Promise<void> {
    this.might_sleep("msleep");
    const end = this.clock.ktime_get() + ms * NSEC_PER_MSEC;
    while (this.clock.ktime_get() < end) {
      this.sched.set_current_state(TASK_UNINTERRUPTIBLE);
      this.current.wait_desc = "msleep";
      await this.schedule_timeout(end - this.clock.ktime_get());
    }
  }

  async usleep_range(min_us: number, _max_us: number): Promise<void> {
    await this.msleep(min_us / 1000);
  }

  /** Busy-wait: legal in atomic context, charges CPU time to the clock. */
  udelay(us: number): void {
    this.clock.advance(us * NSEC_PER_USEC);
  }

  ndelay(ns: number): void {
    this.clock.advance(ns);
  }
}

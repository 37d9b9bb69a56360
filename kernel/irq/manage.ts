// Mirrors kernel/irq/manage.c (Linux 6.8): request_threaded_irq/free_irq, the per-action IRQ
// threads, enable/disable/synchronize, together with the bits of irqdesc.c (irq_alloc_descs,
// generic_handle_irq), resend.c (replaying pending events) and proc.c (/proc/interrupts) a
// machine needs. One CPU; every line is an MSI-like edge line (see handle.ts).

import { wait_queue_head_t, wait_event_desc, wake_up_all } from "../sched/wait.ts";
import { inject, injectable } from "tsyringe";
import { KERNEL } from "../tokens.ts";
import type { Kernel } from "../kernel.ts";
import type { KernelService } from "../machine.ts";
import { EBUSY, EEXIST, EINVAL, ENOMEM } from "../../include/uapi/asm-generic/errno.ts";
import { TASK_IDLE, TASK_RUNNING } from "../sched/core.ts";
import { timer_list } from "../time/timer.ts";
import { ratelimit_state, ___ratelimit } from "../../lib/ratelimit.ts";
import {
  IRQF_NO_AUTOEN, IRQF_ONESHOT, IRQF_PERCPU, IRQF_PROBE_SHARED, IRQF_SHARED, IRQF_TRIGGER_MASK,
  IRQ_HANDLED, IRQ_NONE, IRQ_WAKE_THREAD, handle_edge_irq, irq_desc, irqaction, irqd_irq_disabled,
  type irq_handler_t, type irq_thread_fn_t, type irqreturn_t,
} from "./handle.ts";

export * from "./handle.ts";

/** Interrupt numbers a machine can hand out. */
export const NR_IRQS = 1024;
/** arch_dynirq_lower_bound(): dynamic numbers start above the IO-APIC's 24 GSIs, as on x86. */
export const NR_IRQS_DYN_BASE = 24;

/** irq_default_primary_handler(): the top half of a thread-only request. */
export function irq_default_primary_handler(_irq: number, _dev_id: unknown): irqreturn_t {
  return IRQ_WAKE_THREAD;
}

/**
 * The wire a hardware model holds (not a kernel object): raise() delivers one interrupt to the
 * CPU, which runs the top halves at once in hard-IRQ context.
 */
export class IrqLine {
  constructor(
    private readonly core: IrqCore,
    readonly irq: number,
  ) {}

  raise(): void {
    this.core.generic_handle_irq(this.irq);
  }
}

@injectable()
export class IrqCore implements KernelService {
  private readonly descs = new Map<number, irq_desc>();
  private readonly resend_timers = new Map<irq_desc, timer_list>();
  private readonly wait_wq: wait_queue_head_t;
  private readonly bad_irq_rs = new ratelimit_state();
  /** Interrupts raised on numbers with no descriptor (the ERR: line). */
  irq_err_count = 0;

  constructor(@inject(KERNEL) private readonly k: Kernel) {
    this.wait_wq = new wait_queue_head_t(k, "irq_desc wait");
  }

  /** Handlers still requested: a driver that forgot free_irq(). */
  leak_report(): string[] {
    const r: string[] = [];
    for (const desc of this.descs.values()) {
      for (const a of desc.actions) r.push(`irq ${desc.irq}: handler ${a.name} still requested`);
    }
    return r;
  }

  // ---- descriptors (kernel/irq/irqdesc.c) ---------------------------------------------------

  irq_to_desc(irq: number): irq_desc | undefined {
    return this.descs.get(irq);
  }

  /**
   * irq_alloc_descs(): `cnt` consecutive numbers, exactly at `irq` when irq >= 0, else the
   * first free run at or above `from`. Returns the first number or -EEXIST/-ENOMEM/-EINVAL.
   */
  irq_alloc_descs(irq: number, from: number, cnt: number, _node = -1): number {
    if (cnt <= 0 || !Number.isInteger(cnt)) return -EINVAL;
    if (irq >= 0) {
      if (from > irq) return -EINVAL;
      from = irq;
    } else {
      from = Math.max(from, NR_IRQS_DYN_BASE);
    }
    const start = this.find_free_run(from, cnt);
    if (start < 0) return -ENOMEM;
    if (irq >= 0 && start !== irq) return -EEXIST;
    for (let i = start; i < start + cnt; i++) this.descs.set(i, new irq_desc(i, "none", i));
    return start;
  }

  private find_free_run(from: number, cnt: number): number {
    for (let s = from; s + cnt <= NR_IRQS; s++) {
      let n = 0;
      while (n < cnt && !this.descs.has(s + n)) n++;
      if (n === cnt) return s;
      s += n;
    }
    return -1;
  }

  /** irq_free_descs(): a number with a handler still requested is kept (and warned about). */
  irq_free_descs(from: number, cnt: number): void {
    for (let i = from; i < from + cnt; i++) {
      const desc = this.descs.get(i);
      if (!desc) continue;
      if (this.k.WARN_ON(desc.actions.length > 0, `irq_free_descs: irq ${i} still has handler ${desc.actions[0]?.name}`)) continue;
      const t = this.resend_timers.get(desc);
      if (t) this.k.timers.del_timer(t);
      this.resend_timers.delete(desc);
      this.descs.delete(i);
    }
  }

  /**
   * One dynamic interrupt number for a device (an MSI vector), shown in /proc/interrupts with
   * `chip_name` and `hwirq`. Returns the number or -ENOMEM.
   */
  irq_alloc(chip_name: string, hwirq?: number): number {
    const irq = this.irq_alloc_descs(-1, 0, 1);
    if (irq < 0) return irq;
    const desc = this.descs.get(irq)!;
    desc.chip_name = chip_name;
    desc.hwirq = hwirq ?? irq;
    return irq;
  }

  /** The wire for a hardware model; null if the number is not allocated. */
  irq_line(irq: number): IrqLine | null {
    return this.descs.has(irq) ? new IrqLine(this, irq) : null;
  }

  // ---- the hardware side -----------------------------------------------------------------

  /**
   * generic_handle_irq(): the CPU takes interrupt `irq` now and runs its flow handler in
   * hard-IRQ context. -EINVAL for a number without a descriptor.
   */
  generic_handle_irq(irq: number): number {
    const desc = this.descs.get(irq);
    if (!desc) {
      this.irq_err_count++;
      if (___ratelimit(this.bad_irq_rs, "generic_handle_irq", this.k)) this.k.pr_emerg(`common_interrupt: 0.${irq} No irq handler for vector`);
      return -EINVAL;
    }
    this.k.sched.run_atomic("hardirq", desc.hardirq_comm, () => handle_edge_irq(this.k, desc));
    return 0;
  }

  /**
   * check_irq_resend(): an event that came while the line was off is delivered again. Like the
   * kernel's retrigger it arrives asynchronously (at the next scheduling point), never inside
   * the enable_irq() caller, which may hold a lock its own handler takes.
   */
  private check_irq_resend(desc: irq_desc): void {
    if (!desc.pending || desc.actions.length === 0) return;
    let t = this.resend_timers.get(desc);
    if (!t) {
      t = new timer_list(() => {
        if (!desc.pending || irqd_irq_disabled(desc)) return;
        desc.pending = false;
        this.generic_handle_irq(desc.irq);
      }, `irq_resend/${desc.irq}`, "hw");
      this.resend_timers.set(desc, t);
    }
    this.k.timers.add_timer_in(t, 0);
  }

  // ---- requesting and freeing ---------------------------------------------------------------

  request_irq(irq: number, handler: irq_handler_t, flags: number, name: string, dev_id: unknown): number {
    return this.request_threaded_irq(irq, handler, null, flags, name, dev_id);
  }

  /**
   * request_threaded_irq(): installs a handler; with `thread_fn`, an "irq/<n>-<name>" thread
   * runs it whenever the top half returns IRQ_WAKE_THREAD. A null `handler` means "thread only"
   * and needs IRQF_ONESHOT. Returns 0, -EINVAL or -EBUSY (the line is taken and not shareable).
   */
  request_threaded_irq(irq: number, handler: irq_handler_t | null, thread_fn: irq_thread_fn_t | null,
    flags: number, name: string, dev_id: unknown): number {
    this.k.might_sleep("request_threaded_irq");
    const desc = this.descs.get(irq);
    if (!desc) return -EINVAL;
    if (flags & IRQF_SHARED && (dev_id === null || dev_id === undefined)) return -EINVAL;
    if (flags & IRQF_SHARED && flags & IRQF_NO_AUTOEN) return -EINVAL;
    if (!handler && !thread_fn) return -EINVAL;
    if (!handler && !(flags & IRQF_ONESHOT)) {
      this.k.pr_err(`genirq: Threaded irq requested with handler=NULL and !ONESHOT for ${name} (irq ${irq})`);
      return -EINVAL;
    }
    const old = desc.actions[0];
    if (old && this.flags_mismatch(old.flags, flags)) {
      if (!(flags & IRQF_PROBE_SHARED)) {
        this.k.pr_err(`genirq: Flags mismatch irq ${irq}. ${hex8(flags)} (${name}) vs. ${hex8(old.flags)} (${old.name})`);
      }
      return -EBUSY;
    }
    const action = new irqaction(irq, handler ?? irq_default_primary_handler, thread_fn, flags, name, dev_id);
    if (thread_fn) this.setup_irq_thread(desc, action);
    desc.actions.push(action);
    if (!old) this.irq_startup(desc, flags);
    else if (desc.spurious_disabled) {
      // A new handler on a line the spurious detector shut down gets another chance.
      desc.spurious_disabled = false;
      this.enable_irq(irq);
    }
    return 0;
  }

  /** Sharing needs IRQF_SHARED on both sides and the same trigger, one-shot and per-CPU mode. */
  private flags_mismatch(old: number, nw: number): boolean {
    if (!(old & nw & IRQF_SHARED)) return true;
    const t_old = old & IRQF_TRIGGER_MASK;
    const t_new = nw & IRQF_TRIGGER_MASK;
    if (t_old && t_new && t_old !== t_new) return true;
    return ((old ^ nw) & (IRQF_ONESHOT | IRQF_PERCPU)) !== 0;
  }

  /** irq_startup() for the first handler: reset the spurious detector and enable the line. */
  private irq_startup(desc: irq_desc, flags: number): void {
    desc.spurious_disabled = false;
    desc.irq_count = 0;
    desc.irqs_unhandled = 0;
    if (flags & IRQF_NO_AUTOEN) return;
    desc.depth = 0;
    this.check_irq_resend(desc);
  }

  private setup_irq_thread(desc: irq_desc, action: irqaction): void {
    const t = this.k.sched.alloc_task(`irq/${desc.irq}-${action.name}`, "kthread");
    action.thread = t;
    this.k.sched.run_task(t, () => this.irq_thread(desc, action))
      .catch(() => this.irq_thread_exit(desc, action))
      .finally(() => this.k.sched.release_task(t));
  }

  /** irq_thread(): waits for IRQ_WAKE_THREAD, runs thread_fn, until free_irq() stops it. */
  private async irq_thread(desc: irq_desc, action: irqaction): Promise<void> {
    try {
      while (await this.irq_wait_for_interrupt(action)) {
        let ret: irqreturn_t = IRQ_NONE;
        try {
          ret = await action.thread_fn!(desc.irq, action.dev_id);
        } catch (e) {
          this.thread_fn_failed(action, e);
        }
        if (ret === IRQ_HANDLED) desc.threads_handled++;
        this.wake_threads_waitq(desc);
      }
    } finally {
      this.irq_thread_exit(desc, action);
    }
  }

  /** Returns true to run the thread function, false when the thread must exit. */
  private async irq_wait_for_interrupt(action: irqaction): Promise<boolean> {
    const s = this.k.sched;
    for (;;) {
      // TASK_IDLE: an IRQ thread with nothing to do is not a blocked context.
      s.set_current_state(TASK_IDLE);
      if (action.runthread) {
        action.runthread = false;
        s.set_current_state(TASK_RUNNING);
        return true;
      }
      if (action.should_stop) {
        s.set_current_state(TASK_RUNNING);
        return false;
      }
      s.current.wait_desc = "irq_wait_for_interrupt";
      action.thread_idle = true;
      try {
        await s.schedule();
      } finally {
        action.thread_idle = false;
      }
    }
  }

  /** A thread function cannot fail in C: an exception is a deadlock report or an emulator bug. */
  private thread_fn_failed(action: irqaction, e: unknown): void {
    if (this.k.sched.halted) throw e;
    if (e instanceof Error && e.name === "KernelDeadlock") return;
    const what = e instanceof Error ? (e.stack ?? e.message) : String(e);
    this.k.pr_err(`genirq: thread function of irq ${action.irq} (${action.name}) raised: ${what}`);
    this.k.record_splat("bug", `irq ${action.irq} thread function raised`);
  }

  /** irq_thread_dtor(): a wake-up the thread will never serve must not hold synchronize_irq(). */
  private irq_thread_exit(desc: irq_desc, action: irqaction): void {
    if (action.thread_exited) return;
    action.thread_exited = true;
    if (action.runthread) {
      action.runthread = false;
      this.wake_threads_waitq(desc);
    }
    this.wake_waiters();
  }

  private wake_threads_waitq(desc: irq_desc): void {
    if (--desc.threads_active === 0) this.wake_waiters();
  }

  /**
   * free_irq(): removes the handler registered with `dev_id` and stops its thread (waiting for
   * a running thread function). Returns the handler's name, or null if there was none.
   */
  async free_irq(irq: number, dev_id: unknown): Promise<string | null> {
    if (!this.k.might_sleep("free_irq")) return null;
    const desc = this.descs.get(irq);
    const i = desc ? desc.actions.findIndex((a) => a.dev_id === dev_id) : -1;
    if (!desc || i < 0) {
      this.k.WARN(true, `Trying to free already-free IRQ ${irq}`);
      return null;
    }
    const action = desc.actions[i]!;
    if (action.thread && action.thread === this.k.current) {
      this.k.WARN(true, `genirq: free_irq(${irq}) from its own thread ${action.thread.comm} would deadlock`);
      return null;
    }
    desc.actions.splice(i, 1);
    if (desc.actions.length === 0) desc.depth = 1; // irq_shutdown()
    if (action.thread && !action.thread_exited) await this.kthread_stop(action);
    return action.name;
  }

  /** kthread_stop() of an IRQ thread: it serves a pending wake-up first, then exits. */
  private async kthread_stop(action: irqaction): Promise<void> {
    action.should_stop = true;
    if (action.thread_idle) this.k.sched.wake_up_process(action.thread!);
    await this.wait_until(`kthread_stop(${action.thread!.comm})`, () => action.thread_exited);
  }

  // ---- enable / disable ------------------------------------------------------------------

  /** disable_irq_nosync(): nests; does not wait for a running handler. Atomic-safe. */
  disable_irq_nosync(irq: number): void {
    const desc = this.descs.get(irq);
    if (desc) desc.depth++;
  }

  /** disable_irq(): also waits for the line's IRQ threads to finish. */
  async disable_irq(irq: number): Promise<void> {
    this.disable_irq_nosync(irq);
    await this.synchronize_irq(irq);
  }

  /** enable_irq(): undoes one disable; the last one delivers an event that came meanwhile. */
  enable_irq(irq: number): void {
    const desc = this.descs.get(irq);
    if (!desc) return;
    if (desc.depth === 0) {
      this.k.WARN(true, `Unbalanced enable for IRQ ${irq}`);
      return;
    }
    if (--desc.depth === 0) this.check_irq_resend(desc);
  }

  /** synchronize_irq(): waits until no woken IRQ thread of the line is still running. */
  async synchronize_irq(irq: number): Promise<void> {
    if (!this.k.might_sleep("synchronize_irq")) return;
    const desc = this.descs.get(irq);
    if (!desc) return;
    await this.wait_until(`synchronize_irq(${irq})`, () => desc.threads_active === 0);
  }

  /** Sleeps uninterruptibly until `cond` holds; whoever changes the state wakes the queue. */
  private wait_until(desc: string, cond: () => boolean): Promise<void> {
    return wait_event_desc(this.wait_wq, cond, desc);
  }

  private wake_waiters(): void {
    wake_up_all(this.wait_wq);
  }

  // ---- /proc/interrupts (kernel/irq/proc.c show_interrupts) ---------------------------------

  proc_interrupts(): string {
    let prec = 3;
    for (let j = 1000; prec < 10 && j <= NR_IRQS; ++prec) j *= 10;
    const lines = [`${" ".repeat(prec + 8)}CPU0       `];
    for (const desc of [...this.descs.values()].sort((a, b) => a.irq - b.irq)) {
      if (desc.actions.length === 0 && desc.kstat_irqs === 0) continue;
      let l = `${String(desc.irq).padStart(prec)}: ${String(desc.kstat_irqs).padStart(10)}  ${desc.chip_name.padStart(8)}`;
      l += ` ${String(desc.hwirq).padStart(prec)}-${"edge".padEnd(8)}`;
      if (desc.actions.length) l += `  ${desc.actions.map((a) => a.name).join(", ")}`;
      lines.push(l);
    }
    lines.push(`${"ERR".padStart(prec)}: ${String(this.irq_err_count).padStart(10)}`);
    return `${lines.join("\n")}\n`;
  }
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}

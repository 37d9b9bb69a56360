// Mirrors kernel/irq/handle.c (Linux 6.8): running the actions of an interrupt, with the pieces
// of kernel/irq/chip.c (handle_edge_irq) and kernel/irq/spurious.c (note_interrupt) it needs.
// Every kemu interrupt line behaves like an MSI: edge-triggered, one-shot safe, and an event
// that arrives while the line is disabled or busy is remembered (IRQS_PENDING) and replayed.

import type { Kernel } from "../kernel.ts";
import type { task_struct } from "../sched/core.ts";
import { HZ } from "../time/timekeeping.ts";
import { dump_stack } from "../../lib/dump_stack.ts";

// include/linux/irqreturn.h
export const IRQ_NONE = 0;
export const IRQ_HANDLED = 1 << 0;
export const IRQ_WAKE_THREAD = 1 << 1;
export type irqreturn_t = number;

// include/linux/interrupt.h
export const IRQF_TRIGGER_NONE = 0x00000000;
export const IRQF_TRIGGER_RISING = 0x00000001;
export const IRQF_TRIGGER_FALLING = 0x00000002;
export const IRQF_TRIGGER_HIGH = 0x00000004;
export const IRQF_TRIGGER_LOW = 0x00000008;
export const IRQF_TRIGGER_MASK = IRQF_TRIGGER_HIGH | IRQF_TRIGGER_LOW | IRQF_TRIGGER_RISING | IRQF_TRIGGER_FALLING;
export const IRQF_SHARED = 0x00000080;
export const IRQF_PROBE_SHARED = 0x00000100;
export const IRQF_PERCPU = 0x00000400;
export const IRQF_ONESHOT = 0x00002000;
export const IRQF_NO_THREAD = 0x00010000;
export const IRQF_NO_AUTOEN = 0x00080000;

/** The top half: hard-IRQ context, must not sleep. */
export type irq_handler_t = (irq: number, dev_id: unknown) => irqreturn_t;
/** The bottom half of a threaded IRQ: runs in its "irq/<n>-<name>" thread and may sleep. */
export type irq_thread_fn_t = (irq: number, dev_id: unknown) => Promise<irqreturn_t> | irqreturn_t;

/** struct irqaction: one requested handler on a line. */
export class irqaction {
  /** The per-action IRQ thread, for threaded handlers. */
  thread: task_struct | null = null;
  /** IRQTF_RUNTHREAD: the top half asked for the thread to run. */
  runthread = false;
  /** kthread_should_stop() for the thread. */
  should_stop = false;
  thread_exited = false;
  /** The thread sleeps in irq_wait_for_interrupt(): only then is a wake-up sent (no spurious ones). */
  thread_idle = false;
  /** IRQTF_WARNED: "returned IRQ_WAKE_THREAD but no thread function" printed once. */
  warned = false;

  constructor(
    readonly irq: number,
    readonly handler: irq_handler_t,
    readonly thread_fn: irq_thread_fn_t | null,
    readonly flags: number,
    readonly name: string,
    readonly dev_id: unknown,
  ) {}
}

/** struct irq_desc: one interrupt number. */
export class irq_desc {
  readonly actions: irqaction[] = [];
  /** Nested disable count; a line without handlers is shut down (depth 1). */
  depth = 1;
  /** IRQS_PENDING: an event arrived while disabled or in progress. */
  pending = false;
  /** IRQD_IRQ_INPROGRESS: the flow handler runs. */
  inprogress = false;
  /** IRQS_SPURIOUS_DISABLED: note_interrupt() shut the line down. */
  spurious_disabled = false;
  /** kstat_irqs for CPU 0 (the /proc/interrupts count). */
  kstat_irqs = 0;
  irq_count = 0;
  irqs_unhandled = 0;
  last_unhandled = 0;
  /** Woken IRQ threads that have not finished yet (synchronize_irq waits for 0). */
  threads_active = 0;
  threads_handled = 0;
  /** The hard-IRQ context's name ("irq/N"), built once: a retry-fault storm raises it per IV. */
  readonly hardirq_comm: string;

  constructor(
    readonly irq: number,
    /** irq_chip name, the /proc/interrupts chip column ("PCI-MSI", "AMD-Vi"...). */
    public chip_name: string,
    public hwirq: number,
  ) {
    this.hardirq_comm = `irq/${irq}`;
  }
}

/** irqd_irq_disabled(): events on a disabled line stay pending until enable_irq(). */
export function irqd_irq_disabled(desc: irq_desc): boolean {
  return desc.depth > 0;
}

/**
 * handle_edge_irq() (chip.c): counts the event and runs the actions, replaying events that
 * came in meanwhile. A disabled or busy line only remembers the event.
 */
export function handle_edge_irq(k: Kernel, desc: irq_desc): void {
  if (irqd_irq_disabled(desc) || desc.inprogress || desc.actions.length === 0) {
    desc.pending = true;
    return;
  }
  desc.kstat_irqs++;
  desc.inprogress = true;
  try {
    do {
      desc.pending = false;
      handle_irq_event(k, desc);
    } while (desc.pending && !irqd_irq_disabled(desc) && desc.actions.length > 0);
  } finally {
    desc.inprogress = false;
  }
}

/** handle_irq_event(): the actions' top halves, then the spurious-interrupt bookkeeping. */
export function handle_irq_event(k: Kernel, desc: irq_desc): irqreturn_t {
  const ret = __handle_irq_event_percpu(k, desc);
  note_interrupt(k, desc, ret);
  return ret;
}

/** __handle_irq_event_percpu(): every action of a shared line is asked in turn. */
export function __handle_irq_event_percpu(k: Kernel, desc: irq_desc): irqreturn_t {
  let retval = IRQ_NONE;
  // Handlers run atomically and cannot free their own line, so the list is stable here: no copy
  // per interrupt (a retry-fault storm raises one per IV).
  const actions = desc.actions;
  for (let i = 0; i < actions.length; i++) {
    const action = actions[i]!;
    const res = action.handler(desc.irq, action.dev_id);
    if (res === IRQ_WAKE_THREAD) {
      if (action.thread_fn) __irq_wake_thread(k, desc, action);
      else warn_no_thread(k, desc.irq, action);
    }
    retval |= res;
  }
  return retval;
}

function warn_no_thread(k: Kernel, irq: number, action: irqaction): void {
  if (action.warned) return;
  action.warned = true;
  k.pr_warn(`IRQ ${irq} device ${action.name} returned IRQ_WAKE_THREAD but no thread function available.`);
}

/** __irq_wake_thread(): marks the thread to run; a wake-up while it runs makes it run again. */
export function __irq_wake_thread(k: Kernel, desc: irq_desc, action: irqaction): void {
  if (!action.thread || action.thread_exited || action.should_stop) return;
  if (action.runthread) return;
  action.runthread = true;
  desc.threads_active++;
  if (action.thread_idle) k.sched.wake_up_process(action.thread);
}

/** After this many events, note_interrupt() judges the line (kernel/irq/spurious.c). */
export const SPURIOUS_WINDOW = 100000;
/** ...and a line with more unhandled events than this in the window is disabled. */
export const SPURIOUS_UNHANDLED_LIMIT = 99900;

/**
 * note_interrupt(): counts unhandled events; a line where (nearly) nobody handled 100000
 * events in a row, without a 100 ms pause, is reported and disabled. IRQ_WAKE_THREAD counts as
 * handled (the kernel defers that judgement to the thread's result).
 */
export function note_interrupt(k: Kernel, desc: irq_desc, action_ret: irqreturn_t): void {
  if (action_ret < 0 || action_ret > (IRQ_HANDLED | IRQ_WAKE_THREAD)) {
    k.pr_err(`irq event ${desc.irq}: bogus return value ${action_ret.toString(16)}`);
    report_handlers(k, desc);
  }
  if (action_ret === IRQ_NONE) {
    // A pause of HZ/10 since the last unhandled event restarts the count.
    if (k.jiffies > desc.last_unhandled + Math.floor(HZ / 10)) desc.irqs_unhandled = 1;
    else desc.irqs_unhandled++;
    desc.last_unhandled = k.jiffies;
  }
  if (++desc.irq_count < SPURIOUS_WINDOW) return;
  desc.irq_count = 0;
  if (desc.irqs_unhandled > SPURIOUS_UNHANDLED_LIMIT) {
    k.pr_err(`irq ${desc.irq}: nobody cared (try booting with the "irqpoll" option)`);
    report_handlers(k, desc);
    k.pr_emerg(`Disabling IRQ #${desc.irq}`);
    k.record_splat("warn", `irq ${desc.irq}: nobody cared`);
    desc.spurious_disabled = true;
    desc.depth++;
  }
  desc.irqs_unhandled = 0;
}

/** __report_bad_irq()'s stack dump and handler list. */
function report_handlers(k: Kernel, desc: irq_desc): void {
  dump_stack(k);
  k.pr_err("handlers:");
  for (const a of desc.actions) {
    const threaded = a.thread_fn ? ` threaded [<0000000000000000>] ${a.thread_fn.name || "<anonymous>"}` : "";
    k.pr_err(`[<0000000000000000>] ${a.handler.name || "<anonymous>"}${threaded}`);
  }
}

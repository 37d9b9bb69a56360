// KUnit suite for kernel/irq: requesting and raising lines, shared-line rules, threaded handlers,
// disable/enable with replay, the spurious-interrupt detector, /proc/interrupts, and a top half
// that tries to sleep.

import { IRQ } from "../../../kernel/tokens.ts";
import {
  IRQF_ONESHOT, IRQF_SHARED, IRQ_HANDLED, IRQ_NONE, IRQ_WAKE_THREAD, NR_IRQS_DYN_BASE, SPURIOUS_WINDOW,
  type IrqCore, type IrqLine,
} from "../../../kernel/irq/manage.ts";
import { EBUSY, EEXIST, EINVAL } from "../../../include/uapi/asm-generic/errno.ts";
import { NSEC_PER_MSEC } from "../../../kernel/time/timekeeping.ts";
import { timer_list } from "../../../kernel/time/timer.ts";
import {
  KUNIT_ASSERT_GE, KUNIT_ASSERT_NOT_NULL, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_TRUE,
  kunit_expect_splat, type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";

function irq_of(test: kunit): IrqCore {
  return test.machine.symbol(IRQ);
}

function dmesg_has(test: kunit, text: string): boolean {
  return test.machine.dmesg().some((l) => l.includes(text));
}

/** A fresh MSI-like line and the wire a device model would hold. */
function new_line(test: kunit, chip = "kemu-test", hwirq = 7): { irq: number; line: IrqLine } {
  const core = irq_of(test);
  const irq = core.irq_alloc(chip, hwirq);
  KUNIT_ASSERT_GE(test, irq, NR_IRQS_DYN_BASE);
  const line = core.irq_line(irq);
  KUNIT_ASSERT_NOT_NULL(test, line);
  return { irq, line: line! };
}

function proc_line(core: IrqCore, irq: number): string {
  return core.proc_interrupts().split("\n").find((l) => l.trimStart().startsWith(`${irq}:`)) ?? "";
}

async function raise_runs_top_half_in_hardirq(test: kunit): Promise<void> {
  const core = irq_of(test);
  const { irq, line } = new_line(test);
  const dev = { name: "testdev" };
  const calls: string[] = [];
  const handler = (n: number, dev_id: unknown) => {
    calls.push(`${n}:${dev_id === dev}:${test.k.current.kind}:${test.k.current.comm}:${test.k.sched.in_interrupt()}`);
    return IRQ_HANDLED;
  };
  KUNIT_EXPECT_EQ(test, core.request_irq(irq, handler, 0, "testdev", dev), 0);
  line.raise();
  line.raise();
  line.raise();
  KUNIT_EXPECT_EQ(test, calls.length, 3);
  KUNIT_EXPECT_EQ(test, calls[0], `${irq}:true:hardirq:irq/${irq}:true`);
  KUNIT_EXPECT_EQ(test, test.k.current.kind, "kthread", "back in the interrupted context");
  KUNIT_EXPECT_TRUE(test, /^\s*\d+:\s+3\s+kemu-test\s+7-edge\s+testdev$/.test(proc_line(core, irq)), proc_line(core, irq));
  KUNIT_EXPECT_EQ(test, await core.free_irq(irq, dev), "testdev");
  line.raise();
  KUNIT_EXPECT_EQ(test, calls.length, 3, "no handler after free_irq");
  KUNIT_EXPECT_EQ(test, core.irq_to_desc(irq)!.kstat_irqs, 3);
}

async function raise_from_hardware_timer(test: kunit): Promise<void> {
  const core = irq_of(test);
  const { irq, line } = new_line(test);
  const seen: number[] = [];
  core.request_irq(irq, () => {
    seen.push(test.k.ktime_get());
    return IRQ_HANDLED;
  }, 0, "hwdev", null);
  const t = new timer_list(() => line.raise(), "test_device_completion", "hw");
  test.k.timers.add_timer_in(t, 2 * NSEC_PER_MSEC);
  const t0 = test.k.ktime_get();
  await test.k.msleep(5);
  KUNIT_EXPECT_EQ(test, seen.length, 1);
  KUNIT_EXPECT_EQ(test, seen[0], t0 + 2 * NSEC_PER_MSEC);
  await core.free_irq(irq, null);
}

async function shared_line_rules(test: kunit): Promise<void> {
  const core = irq_of(test);
  const { irq, line } = new_line(test);
  const order: string[] = [];
  const a = { id: "a" };
  const b = { id: "b" };
  const ha = () => {
    order.push("a");
    return IRQ_NONE;
  };
  const hb = () => {
    order.push("b");
    return IRQ_HANDLED;
  };
  KUNIT_EXPECT_EQ(test, core.request_irq(irq, ha, IRQF_SHARED, "dev_a", a), 0);
  KUNIT_EXPECT_EQ(test, core.request_irq(irq, hb, 0, "dev_b", b), -EBUSY);
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, `genirq: Flags mismatch irq ${irq}. 00000000 (dev_b) vs. 00000080 (dev_a)`));
  KUNIT_EXPECT_EQ(test, core.request_irq(irq, hb, IRQF_SHARED, "dev_b", null), -EINVAL, "shared needs a dev_id");
  KUNIT_EXPECT_EQ(test, core.request_irq(irq, hb, IRQF_SHARED | IRQF_ONESHOT, "dev_b", b), -EBUSY, "oneshot must match");
  KUNIT_EXPECT_EQ(test, core.request_irq(irq, hb, IRQF_SHARED, "dev_b", b), 0);
  line.raise();
  KUNIT_EXPECT_EQ(test, order.join(","), "a,b");
  KUNIT_EXPECT_TRUE(test, proc_line(core, irq).endsWith("  dev_a, dev_b"), proc_line(core, irq));
  KUNIT_EXPECT_EQ(test, await core.free_irq(irq, a), "dev_a");
  line.raise();
  KUNIT_EXPECT_EQ(test, order.join(","), "a,b,b");
  await core.free_irq(irq, b);

  const other = new_line(test).irq;
  KUNIT_EXPECT_EQ(test, core.request_irq(other, hb, 0, "excl", b), 0);
  KUNIT_EXPECT_EQ(test, core.request_irq(other, ha, IRQF_SHARED, "late", a), -EBUSY, "an exclusive line cannot be shared");
  KUNIT_EXPECT_EQ(test, core.request_irq(9999, hb, 0, "nowhere", b), -EINVAL);
  await core.free_irq(other, b);
}

async function free_of_unknown_dev_id_warns(test: kunit): Promise<void> {
  kunit_expect_splat(test, "warn");
  const core = irq_of(test);
  const { irq } = new_line(test);
  KUNIT_EXPECT_EQ(test, await core.free_irq(irq, { nobody: true }), null);
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, `Trying to free already-free IRQ ${irq}`));
}

async function threaded_irq_runs_its_thread(test: kunit): Promise<void> {
  const core = irq_of(test);
  const { irq, line } = new_line(test);
  let top = 0;
  const runs: Array<{ comm: string; at: number }> = [];
  const dev = {};
  const ret = core.request_threaded_irq(irq, () => {
    top++;
    return IRQ_WAKE_THREAD;
  }, async () => {
    await test.k.msleep(5); // a thread may sleep
    runs.push({ comm: test.k.current.comm, at: test.k.ktime_get() });
    return IRQ_HANDLED;
  }, 0, "thr", dev);
  KUNIT_EXPECT_EQ(test, ret, 0);
  const t0 = test.k.ktime_get();
  line.raise();
  line.raise(); // before the thread ran: one more run is already asked for
  KUNIT_EXPECT_EQ(test, top, 2);
  KUNIT_EXPECT_EQ(test, runs.length, 0, "the thread runs later, not in the top half");
  await core.synchronize_irq(irq);
  KUNIT_EXPECT_EQ(test, runs.length, 1, "wake-ups before the thread ran coalesce");
  KUNIT_EXPECT_EQ(test, runs[0]?.comm, `irq/${irq}-thr`);
  KUNIT_EXPECT_EQ(test, runs[0]?.at, t0 + 5 * NSEC_PER_MSEC);
  await test.k.msleep(1);
  line.raise(); // the thread is idle again
  await test.k.msleep(1);
  line.raise(); // ... and this one comes while it runs: it runs once more
  await core.synchronize_irq(irq);
  KUNIT_EXPECT_EQ(test, runs.length, 3);
  KUNIT_EXPECT_TRUE(test, test.k.sched.all_tasks().some((t) => t.comm === `irq/${irq}-thr`));
  KUNIT_EXPECT_EQ(test, await core.free_irq(irq, dev), "thr");
  KUNIT_EXPECT_FALSE(test, test.k.sched.all_tasks().some((t) => t.comm === `irq/${irq}-thr` && t.busy), "free_irq stops the thread");
}

async function thread_only_request_needs_oneshot(test: kunit): Promise<void> {
  const core = irq_of(test);
  const { irq, line } = new_line(test);
  let runs = 0;
  const fn = () => {
    runs++;
    return IRQ_HANDLED;
  };
  KUNIT_EXPECT_EQ(test, core.request_threaded_irq(irq, null, fn, 0, "lazy", null), -EINVAL);
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, `Threaded irq requested with handler=NULL and !ONESHOT for lazy (irq ${irq})`));
  KUNIT_EXPECT_EQ(test, core.request_threaded_irq(irq, null, fn, IRQF_ONESHOT, "lazy", null), 0);
  line.raise();
  await core.synchronize_irq(irq);
  KUNIT_EXPECT_EQ(test, runs, 1);
  await core.free_irq(irq, null);
}

async function wake_thread_without_thread_fn_warns_once(test: kunit): Promise<void> {
  const core = irq_of(test);
  const { irq, line } = new_line(test);
  core.request_irq(irq, () => IRQ_WAKE_THREAD, 0, "confused", null);
  line.raise();
  line.raise();
  const text = `IRQ ${irq} device confused returned IRQ_WAKE_THREAD but no thread function available.`;
  KUNIT_EXPECT_EQ(test, test.machine.dmesg().filter((l) => l.includes(text)).length, 1);
  await core.free_irq(irq, null);
}

async function top_half_that_sleeps_splats(test: kunit): Promise<void> {
  kunit_expect_splat(test, "sleep-in-atomic");
  const core = irq_of(test);
  const { irq, line } = new_line(test);
  const errors: unknown[] = [];
  core.request_irq(irq, () => {
    test.k.msleep(1).catch((e: unknown) => errors.push(e));
    return IRQ_HANDLED;
  }, 0, "sleepy", null);
  line.raise();
  await test.k.msleep(2);
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "BUG: sleeping function called from invalid context"));
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, `in_atomic(): 1, irqs_disabled(): 1, non_block: 0, pid: -1, name: irq/${irq}`));
  KUNIT_EXPECT_EQ(test, errors.length, 1, "the sleep itself cannot happen in hard-IRQ context");
  await core.free_irq(irq, null);
}

async function disabled_line_replays_on_enable(test: kunit): Promise<void> {
  const core = irq_of(test);
  const { irq, line } = new_line(test);
  let calls = 0;
  core.request_irq(irq, () => {
    calls++;
    return IRQ_HANDLED;
  }, 0, "replay", null);
  core.disable_irq_nosync(irq);
  await core.disable_irq(irq); // nests
  line.raise();
  line.raise();
  KUNIT_EXPECT_EQ(test, calls, 0);
  core.enable_irq(irq);
  await test.k.cond_resched();
  KUNIT_EXPECT_EQ(test, calls, 0, "still disabled once");
  core.enable_irq(irq);
  KUNIT_EXPECT_EQ(test, calls, 0, "the replay is not run inside enable_irq()");
  await test.k.msleep(1);
  KUNIT_EXPECT_EQ(test, calls, 1, "events while disabled collapse into one replay");
  await core.free_irq(irq, null);
}

async function unbalanced_enable_warns(test: kunit): Promise<void> {
  kunit_expect_splat(test, "warn");
  const core = irq_of(test);
  const { irq } = new_line(test);
  core.request_irq(irq, () => IRQ_HANDLED, 0, "balanced", null);
  core.enable_irq(irq);
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, `Unbalanced enable for IRQ ${irq}`));
  await core.free_irq(irq, null);
}

async function unhandled_storm_is_disabled(test: kunit): Promise<void> {
  kunit_expect_splat(test, "warn");
  const core = irq_of(test);
  const { irq, line } = new_line(test);
  let calls = 0;
  const not_mine = () => {
    calls++;
    return IRQ_NONE;
  };
  core.request_irq(irq, not_mine, 0, "deaf", null);
  for (let i = 0; i < SPURIOUS_WINDOW - 1; i++) line.raise();
  KUNIT_EXPECT_FALSE(test, dmesg_has(test, "nobody cared"), "one event short of the window");
  line.raise();
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, `irq ${irq}: nobody cared (try booting with the "irqpoll" option)`));
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "[<0000000000000000>] not_mine"));
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, `Disabling IRQ #${irq}`));
  line.raise();
  KUNIT_EXPECT_EQ(test, calls, SPURIOUS_WINDOW, "the line is off");
  await core.free_irq(irq, null);
}

async function bad_irq_counts_as_error(test: kunit): Promise<void> {
  const core = irq_of(test);
  KUNIT_EXPECT_EQ(test, core.generic_handle_irq(NR_IRQS_DYN_BASE + 500), -EINVAL);
  KUNIT_EXPECT_TRUE(test, /^ERR:\s+1$/.test((core.proc_interrupts().trimEnd().split("\n").pop() ?? "").trim()));
  KUNIT_EXPECT_TRUE(test, core.proc_interrupts().startsWith(`${" ".repeat(12)}CPU0`));
}

async function descriptor_allocation(test: kunit): Promise<void> {
  const core = irq_of(test);
  KUNIT_EXPECT_EQ(test, core.irq_alloc_descs(100, 0, 4), 100);
  KUNIT_EXPECT_EQ(test, core.irq_alloc_descs(102, 0, 1), -EEXIST);
  KUNIT_EXPECT_EQ(test, core.irq_alloc_descs(-1, 0, 0), -EINVAL);
  KUNIT_EXPECT_EQ(test, core.irq_alloc_descs(50, 60, 1), -EINVAL);
  const first = core.irq_alloc_descs(-1, 0, 1);
  KUNIT_EXPECT_EQ(test, first, NR_IRQS_DYN_BASE);
  KUNIT_EXPECT_EQ(test, core.irq_alloc_descs(-1, 98, 4), 104, "the first free run at or above 98");
  core.irq_free_descs(100, 4);
  KUNIT_EXPECT_EQ(test, core.irq_alloc_descs(-1, 98, 4), 98);
  KUNIT_EXPECT_EQ(test, core.irq_line(100)?.irq, 100);
  KUNIT_EXPECT_EQ(test, core.irq_line(500), null);
}

async function requested_irq_is_a_leak(test: kunit): Promise<void> {
  const core = irq_of(test);
  const { irq } = new_line(test);
  core.request_irq(irq, () => IRQ_HANDLED, 0, "forgotten", null);
  KUNIT_EXPECT_EQ(test, core.leak_report().join(), `irq ${irq}: handler forgotten still requested`);
  await core.free_irq(irq, null);
  KUNIT_EXPECT_EQ(test, core.leak_report().length, 0);
}

export const irq_test_suite: kunit_suite = {
  name: "irq",
  test_cases: [
    KUNIT_CASE(raise_runs_top_half_in_hardirq),
    KUNIT_CASE(raise_from_hardware_timer),
    KUNIT_CASE(shared_line_rules),
    KUNIT_CASE(free_of_unknown_dev_id_warns),
    KUNIT_CASE(threaded_irq_runs_its_thread),
    KUNIT_CASE(thread_only_request_needs_oneshot),
    KUNIT_CASE(wake_thread_without_thread_fn_warns_once),
    KUNIT_CASE(top_half_that_sleeps_splats),
    KUNIT_CASE(disabled_line_replays_on_enable),
    KUNIT_CASE(unbalanced_enable_warns),
    KUNIT_CASE(unhandled_storm_is_disabled),
    KUNIT_CASE(bad_irq_counts_as_error),
    KUNIT_CASE(descriptor_allocation),
    KUNIT_CASE(requested_irq_is_a_leak),
  ],
};

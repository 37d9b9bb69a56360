// KUnit suite for lib/fault-inject.ts: the should_fail() decision order (fail-nth first, then
// probability, task filter, times, space, interval, the seeded random draw), the failslab
// gfp filters, the verbose report, the debugfs and /proc/<pid>/fail-nth text semantics, and
// the boot options.

import { FAULT_INJECT, SLAB } from "../../../kernel/tokens.ts";
import {
  FaultInjection, fault_attr, should_fail, should_fail_ex, FAULT_NOWARN,
} from "../../../lib/fault-inject.ts";
import type { Slab } from "../../../mm/slab_common.ts";
import { prandom_u32_below } from "../../../lib/random32.ts";
import {
  GFP_ATOMIC, GFP_KERNEL, GFP_NOWAIT, __GFP_HIGHMEM, __GFP_NOFAIL, __GFP_NOWARN,
} from "../../../include/linux/gfp_types.ts";
import { EINVAL, ENOENT, ENOMEM } from "../../../include/uapi/asm-generic/errno.ts";
import {
  KUNIT_ASSERT_NOT_NULL, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_NOT_NULL,
  KUNIT_EXPECT_NULL, KUNIT_EXPECT_TRUE, type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";

function fi_of(test: kunit): FaultInjection {
  return test.machine.symbol(FAULT_INJECT);
}

function slab_of(test: kunit): Slab {
  return test.machine.symbol(SLAB);
}

function dmesg_has(test: kunit, text: string): boolean {
  return test.machine.dmesg().some((l) => l.includes(text));
}

/** Runs `n` GFP_ATOMIC kmallocs, frees the ones that succeeded, returns which (1-based) failed. */
function failing_calls(test: kunit, n: number, size = 16, gfp = GFP_ATOMIC): number[] {
  const slab = slab_of(test);
  const failed: number[] = [];
  for (let i = 1; i <= n; i++) {
    const p = slab.kmalloc(size, gfp);
    if (p) slab.kfree(p);
    else failed.push(i);
  }
  return failed;
}

/** failslab armed to fail every eligible allocation, silently. */
function arm_failslab(fi: FaultInjection, times = -1): void {
  fi.failslab.attr.probability = 100;
  fi.failslab.attr.times = times;
  fi.failslab.attr.verbose = 0;
}

function fail_nth_fails_exactly_the_nth_then_reads_zero(test: kunit): void {
  const fi = fi_of(test);
  const t = test.k.current;
  KUNIT_EXPECT_EQ(test, fi.set_fail_nth(t, 3), 0);
  const slab = slab_of(test);
  const a = slab.kmalloc(8, GFP_ATOMIC);
  KUNIT_EXPECT_EQ(test, fi.get_fail_nth(t), 2, "each injectable call counts down");
  const b = slab.kmalloc(8, GFP_ATOMIC);
  const c = slab.kmalloc(8, GFP_ATOMIC);
  const d = slab.kmalloc(8, GFP_ATOMIC);
  KUNIT_EXPECT_NOT_NULL(test, a);
  KUNIT_EXPECT_NOT_NULL(test, b);
  KUNIT_EXPECT_NULL(test, c, "the 3rd allocation fails");
  KUNIT_EXPECT_NOT_NULL(test, d, "and only the 3rd");
  KUNIT_EXPECT_EQ(test, fi.get_fail_nth(t), 0, "reads back 0 once injected");
  for (const p of [a, b, d]) slab.kfree(p);
}

function fail_nth_counts_every_capability(test: kunit): void {
  const fi = fi_of(test);
  const point = fi.register_fault_point("fail_kunit_point");
  fi.set_fail_nth(test.k.current, 2);
  KUNIT_EXPECT_FALSE(test, should_fail(point, 1), "1st injectable call of the task");
  const p = slab_of(test).kmalloc(8, GFP_ATOMIC);
  KUNIT_EXPECT_NULL(test, p, "2nd call, in another capability, is the one that fails");
  KUNIT_EXPECT_EQ(test, point.times, 1, "probability 0: the point itself never fired");
  fi.unregister_fault_point("fail_kunit_point");
}

function fail_nth_skips_sleeping_allocs_unless_ignore_gfp_wait_off(test: kunit): void {
  const fi = fi_of(test);
  const slab = slab_of(test);
  const t = test.k.current;
  fi.set_fail_nth(t, 1);
  const a = slab.kmalloc(8, GFP_KERNEL);
  KUNIT_EXPECT_NOT_NULL(test, a, "ignore-gfp-wait=Y filters GFP_KERNEL before should_fail()");
  KUNIT_EXPECT_EQ(test, fi.get_fail_nth(t), 1, "so it does not consume the countdown");
  KUNIT_EXPECT_EQ(test, fi.write_knob("failslab", "ignore-gfp-wait", "N\n"), 0);
  const b = slab.kmalloc(8, GFP_KERNEL);
  KUNIT_EXPECT_NULL(test, b, "with ignore-gfp-wait=N the sleeping allocation fails");
  KUNIT_EXPECT_EQ(test, fi.get_fail_nth(t), 0);
  slab.kfree(a);
}

function fail_nth_ignored_in_interrupt_context(test: kunit): void {
  const fi = fi_of(test);
  const t = test.k.current;
  fi.set_fail_nth(t, 1);
  const slab = slab_of(test);
  const p = test.k.sched.run_atomic("hardirq", "irq/99-kunit", () => slab.kmalloc(8, GFP_ATOMIC));
  KUNIT_EXPECT_NOT_NULL(test, p, "an IRQ handler is not the task");
  KUNIT_EXPECT_EQ(test, fi.get_fail_nth(t), 1);
  slab.kfree(p);
  fi.set_fail_nth(t, 0);
}

function interval_with_probability_100_fails_every_nth(test: kunit): void {
  const fi = fi_of(test);
  arm_failslab(fi);
  KUNIT_EXPECT_EQ(test, fi.write_knob("failslab", "interval", "3"), 0);
  KUNIT_EXPECT_EQ(test, failing_calls(test, 9).join(","), "3,6,9");
  KUNIT_EXPECT_EQ(test, fi.failslab.attr.count, 9);
}

function times_limits_the_number_of_failures(test: kunit): void {
  const fi = fi_of(test);
  arm_failslab(fi, 2);
  KUNIT_EXPECT_EQ(test, failing_calls(test, 5).join(","), "1,2");
  KUNIT_EXPECT_EQ(test, fi.read_knob("failslab", "times"), "0\n");
}

function space_is_a_byte_budget_before_failures(test: kunit): void {
  const fi = fi_of(test);
  const attr = fi.register_fault_point("fail_kunit_space");
  attr.probability = 100;
  attr.times = -1;
  attr.verbose = 0;
  attr.space = 10;
  const got = [should_fail(attr, 4), should_fail(attr, 4), should_fail(attr, 4), should_fail(attr, 4)];
  KUNIT_EXPECT_EQ(test, got.join(","), "false,false,true,true", "10 > 4, 6 > 4, then 2 is not > 4");
  KUNIT_EXPECT_EQ(test, attr.space, 2);
  // Through failslab the size is the cache's object size: kmalloc-32 consumes 32 a call.
  arm_failslab(fi);
  fi.failslab.attr.space = 100;
  KUNIT_EXPECT_EQ(test, failing_calls(test, 5, 20).join(","), "4,5");
  fi.unregister_fault_point("fail_kunit_space");
}

function ignore_gfp_wait_spares_gfp_kernel_not_gfp_atomic(test: kunit): void {
  const fi = fi_of(test);
  arm_failslab(fi);
  KUNIT_EXPECT_EQ(test, fi.read_knob("failslab", "ignore-gfp-wait"), "Y\n");
  KUNIT_EXPECT_EQ(test, failing_calls(test, 3, 16, GFP_KERNEL).length, 0, "GFP_KERNEL may sleep: spared");
  KUNIT_EXPECT_EQ(test, failing_calls(test, 3, 16, GFP_ATOMIC).length, 3);
  KUNIT_EXPECT_EQ(test, failing_calls(test, 3, 16, GFP_NOWAIT).length, 3);
  KUNIT_EXPECT_EQ(test, failing_calls(test, 3, 16, GFP_ATOMIC | __GFP_NOFAIL).length, 0, "__GFP_NOFAIL never fails");
  KUNIT_EXPECT_EQ(test, fi.should_failslab(16, GFP_ATOMIC), -ENOMEM);
}

function fail_page_alloc_filters(test: kunit): void {
  const fp = fi_of(test).fail_page_alloc;
  fp.attr.probability = 100;
  fp.attr.times = -1;
  fp.attr.verbose = 0;
  KUNIT_EXPECT_FALSE(test, fi_of(test).should_fail_alloc_page(GFP_ATOMIC, 0), "below min-order 1");
  KUNIT_EXPECT_TRUE(test, fi_of(test).should_fail_alloc_page(GFP_ATOMIC, 1));
  KUNIT_EXPECT_FALSE(test, fi_of(test).should_fail_alloc_page(GFP_ATOMIC | __GFP_HIGHMEM, 2), "ignore-gfp-highmem");
  KUNIT_EXPECT_FALSE(test, fi_of(test).should_fail_alloc_page(GFP_KERNEL, 2), "ignore-gfp-wait");
  fp.attr.space = 5;
  KUNIT_EXPECT_FALSE(test, fi_of(test).should_fail_alloc_page(GFP_ATOMIC, 2), "space counts pages: 5 > 4");
  KUNIT_EXPECT_EQ(test, fp.attr.space, 1);
}

function verbose_prints_the_failure_message(test: kunit): void {
  const fi = fi_of(test);
  arm_failslab(fi, 3);
  fi.failslab.attr.verbose = 1;
  KUNIT_EXPECT_NULL(test, slab_of(test).kmalloc(8, GFP_ATOMIC));
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "FAULT_INJECTION: forcing a failure."));
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "name failslab, interval 1, probability 100, space 0, times 3"));
  KUNIT_EXPECT_FALSE(test, dmesg_has(test, "Call Trace:"), "verbose 1: no stack dump");
  fi.failslab.attr.verbose = 2;
  KUNIT_EXPECT_NULL(test, slab_of(test).kmalloc(8, GFP_ATOMIC));
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "times 2"));
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "Call Trace:"), "verbose 2 dumps the stack");
  const before = test.machine.dmesg().length;
  KUNIT_EXPECT_NULL(test, slab_of(test).kmalloc(8, GFP_ATOMIC | __GFP_NOWARN));
  KUNIT_EXPECT_EQ(test, test.machine.dmesg().length, before, "__GFP_NOWARN fails silently");
  KUNIT_EXPECT_EQ(test, fi.failslab.attr.times, 0);
}

function verbose_ratelimit_suppresses_and_counts(test: kunit): void {
  const fi = fi_of(test);
  const attr = fi.register_fault_point("fail_kunit_rl");
  attr.probability = 100;
  attr.times = -1;
  attr.verbose = 1;
  KUNIT_EXPECT_EQ(test, fi.write_knob("fail_kunit_rl", "verbose_ratelimit_interval_ms", "10"), 0);
  KUNIT_EXPECT_EQ(test, fi.write_knob("fail_kunit_rl", "verbose_ratelimit_burst", "2"), 0);
  for (let i = 0; i < 5; i++) should_fail(attr, 1);
  const count = () => test.machine.dmesg().filter((l) => l.includes("FAULT_INJECTION: forcing a failure.")).length;
  KUNIT_EXPECT_EQ(test, count(), 2, "burst of 2 per window");
  test.k.udelay(100_000); // 25 jiffies later: a new window
  should_fail(attr, 1);
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "fail_dump: 3 callbacks suppressed"));
  KUNIT_EXPECT_EQ(test, count(), 3);
  KUNIT_EXPECT_TRUE(test, should_fail_ex(attr, 1, FAULT_NOWARN));
  fi.unregister_fault_point("fail_kunit_rl");
}

function task_filter_needs_make_it_fail(test: kunit): void {
  const fi = fi_of(test);
  arm_failslab(fi);
  KUNIT_EXPECT_EQ(test, fi.write_knob("failslab", "task-filter", "Y"), 0);
  KUNIT_EXPECT_EQ(test, failing_calls(test, 2).length, 0, "task not marked");
  KUNIT_EXPECT_EQ(test, fi.set_make_it_fail(test.k.current, 1), 0);
  KUNIT_EXPECT_EQ(test, failing_calls(test, 2).length, 2);
  KUNIT_EXPECT_EQ(test, fi.set_make_it_fail(test.k.current, 2), -EINVAL);
  fi.set_make_it_fail(test.k.current, 0);
}

function probability_draws_from_the_seeded_prandom_state(test: kunit): void {
  const fi = fi_of(test);
  const attr = fi.register_fault_point("fail_kunit_prob");
  attr.probability = 30;
  attr.times = -1;
  attr.verbose = 0;
  const model = { ...test.k.sched.rnd };
  const expected = Array.from({ length: 200 }, () => !(30 <= prandom_u32_below(model, 100)));
  const got = Array.from({ length: 200 }, () => should_fail(attr, 1));
  KUNIT_EXPECT_EQ(test, got.join(""), expected.join(""), "same draws as the machine's prandom state");
  const n = got.filter(Boolean).length;
  KUNIT_EXPECT_TRUE(test, n > 30 && n < 90, `30% of 200 failed ${n} times`);
  fi.unregister_fault_point("fail_kunit_prob");
}

function debugfs_knobs_read_and_write_as_text(test: kunit): void {
  const fi = fi_of(test);
  KUNIT_EXPECT_EQ(test, fi.read_knob("failslab", "probability"), "0\n");
  KUNIT_EXPECT_EQ(test, fi.read_knob("failslab", "interval"), "1\n");
  KUNIT_EXPECT_EQ(test, fi.read_knob("failslab", "times"), "1\n");
  KUNIT_EXPECT_EQ(test, fi.read_knob("failslab", "verbose"), "2\n");
  KUNIT_EXPECT_EQ(test, fi.read_knob("failslab", "task-filter"), "N\n");
  KUNIT_EXPECT_EQ(test, fi.read_knob("fail_page_alloc", "min-order"), "1\n");
  KUNIT_EXPECT_EQ(test, fi.read_knob("fail_page_alloc", "ignore-gfp-highmem"), "Y\n");
  KUNIT_EXPECT_EQ(test, fi.write_knob("failslab", "probability", "0x10\n"), 0);
  KUNIT_EXPECT_EQ(test, fi.read_knob("failslab", "probability"), "16\n");
  KUNIT_EXPECT_EQ(test, fi.write_knob("failslab", "times", "-1"), 0);
  KUNIT_EXPECT_EQ(test, fi.read_knob("failslab", "times"), "-1\n");
  KUNIT_EXPECT_EQ(test, fi.write_knob("failslab", "probability", "-1"), -EINVAL, "unsigned knob");
  KUNIT_EXPECT_EQ(test, fi.write_knob("failslab", "interval", "ten"), -EINVAL);
  KUNIT_EXPECT_EQ(test, fi.write_knob("failslab", "cache-filter", "maybe"), -EINVAL);
  KUNIT_EXPECT_EQ(test, fi.read_knob("failslab", "interval"), "1\n", "a rejected write changes nothing");
  KUNIT_EXPECT_EQ(test, fi.read_knob("failslab", "nope"), -ENOENT);
  KUNIT_EXPECT_EQ(test, fi.write_knob("fail_nothing", "times", "1"), -ENOENT);
  KUNIT_EXPECT_TRUE(test, fi.caps().includes("fail_usercopy"));
  KUNIT_EXPECT_EQ(test, fi.knobs("fail_usercopy")?.includes("ignore-gfp-wait"), false);
  fi.write_knob("failslab", "probability", "0");
}

function fail_nth_rejects_bad_values(test: kunit): void {
  const fi = fi_of(test);
  const t = test.k.current;
  KUNIT_EXPECT_EQ(test, fi.set_fail_nth(t, -1), -EINVAL);
  KUNIT_EXPECT_EQ(test, fi.set_fail_nth(t, 1.5), -EINVAL);
  KUNIT_EXPECT_EQ(test, fi.get_fail_nth(t), 0, "unchanged");
  fi.set_fail_nth(t, 5);
  KUNIT_EXPECT_EQ(test, fi.set_fail_nth(t, 0), 0, "0 disarms");
  const p = slab_of(test).kmalloc(8, GFP_ATOMIC);
  KUNIT_EXPECT_NOT_NULL(test, p);
  slab_of(test).kfree(p);
}

function boot_options_set_the_attributes(test: kunit): void {
  // A second FaultInjection reading its own command line, as __setup() would at boot.
  const fi = new FaultInjection(test.k, { cmdline: "quiet failslab=2,100,16,3 fail_page_alloc=1,50,0,-1 fail_usercopy=bogus" });
  fi.init();
  const fs = fi.failslab.attr;
  KUNIT_EXPECT_EQ(test, `${fs.interval},${fs.probability},${fs.space},${fs.times}`, "2,100,16,3");
  const fp = fi.fail_page_alloc.attr;
  KUNIT_EXPECT_EQ(test, `${fp.interval},${fp.probability},${fp.space},${fp.times}`, "1,50,0,-1");
  KUNIT_EXPECT_EQ(test, fi.fail_usercopy.probability, 0, "unparsable arguments leave the defaults");
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "FAULT_INJECTION: failed to parse arguments"));
  const point = fi.register_fault_point("fail_kunit_boot");
  KUNIT_EXPECT_EQ(test, point.probability, 0, "no boot option for this point");
}

function registered_point_boot_option_applies(test: kunit): void {
  const fi = new FaultInjection(test.k, { cmdline: "fail_kunit_drv=1,100,0,2" });
  const attr = fi.register_fault_point("fail_kunit_drv");
  KUNIT_ASSERT_NOT_NULL(test, attr);
  KUNIT_EXPECT_EQ(test, attr.probability, 100);
  KUNIT_EXPECT_EQ(test, fi.register_fault_point("fail_kunit_drv"), attr, "re-registering keeps the knobs");
  KUNIT_EXPECT_EQ(test, fi.read_knob("fail_kunit_drv", "times"), "2\n");
  KUNIT_EXPECT_TRUE(test, attr instanceof fault_attr);
  attr.verbose = 0;
  KUNIT_EXPECT_TRUE(test, should_fail(attr, 1));
  KUNIT_EXPECT_TRUE(test, fi.should_fail_usercopy() === false, "fail_usercopy stays off");
}

export const fault_injection_suite: kunit_suite = {
  name: "fault_injection",
  test_cases: [
    KUNIT_CASE(fail_nth_fails_exactly_the_nth_then_reads_zero),
    KUNIT_CASE(fail_nth_counts_every_capability),
    KUNIT_CASE(fail_nth_skips_sleeping_allocs_unless_ignore_gfp_wait_off),
    KUNIT_CASE(fail_nth_ignored_in_interrupt_context),
    KUNIT_CASE(fail_nth_rejects_bad_values),
    KUNIT_CASE(interval_with_probability_100_fails_every_nth),
    KUNIT_CASE(times_limits_the_number_of_failures),
    KUNIT_CASE(space_is_a_byte_budget_before_failures),
    KUNIT_CASE(ignore_gfp_wait_spares_gfp_kernel_not_gfp_atomic),
    KUNIT_CASE(fail_page_alloc_filters),
    KUNIT_CASE(verbose_prints_the_failure_message),
    KUNIT_CASE(verbose_ratelimit_suppresses_and_counts),
    KUNIT_CASE(task_filter_needs_make_it_fail),
    KUNIT_CASE(probability_draws_from_the_seeded_prandom_state),
    KUNIT_CASE(debugfs_knobs_read_and_write_as_text),
    KUNIT_CASE(boot_options_set_the_attributes),
    KUNIT_CASE(registered_point_boot_option_applies),
  ],
};

// kemu selftest: a small demonstration of the kselftest harness — a plain TEST, a fixture with
// setup/teardown and two variants, and the machine each test gets through `_metadata`.

import { MINIMAL_MACHINE } from "../../../kernel/machine_spec.ts";
import {
  ASSERT_EQ, ASSERT_GE, ASSERT_TRUE, EXPECT_GE, EXPECT_LE, EXPECT_TRUE, FIXTURE, FIXTURE_VARIANT_ADD, TEST, TEST_F, kselftest,
} from "../../../tools/testing/selftests/kselftest_harness.ts";

export const harness_demo = kselftest("harness_demo", { machine: MINIMAL_MACHINE });

TEST(harness_demo, "boot_banner", (_metadata) => {
  const dmesg = _metadata.machine.dmesg();
  ASSERT_TRUE(dmesg.some((l) => l.includes("Linux version")));
  EXPECT_TRUE(dmesg.some((l) => l.includes("Run /sbin/init as init process")));
});

interface SleepSelf {
  start_ns: number;
}

interface SleepVariant {
  ms: number;
}

const sleep = FIXTURE<SleepSelf, SleepVariant>(harness_demo, "msleep", {
  setup: (self, _variant, _metadata) => {
    self.start_ns = _metadata.machine.k.ktime_get();
  },
  teardown: (self, _variant, _metadata) => {
    // Virtual time never runs backwards.
    ASSERT_GE(_metadata.machine.k.ktime_get(), self.start_ns);
  },
});

FIXTURE_VARIANT_ADD(sleep, "short", { ms: 1 });
FIXTURE_VARIANT_ADD(sleep, "long", { ms: 250 });

TEST_F(sleep, "virtual_time_advances", async (self, variant, _metadata) => {
  const { machine } = _metadata;
  await machine.run_kthread("msleep_test", () => machine.k.msleep(variant.ms));
  ASSERT_GE(machine.k.ktime_get() - self.start_ns, variant.ms * 1_000_000);
});

TEST_F(sleep, "jiffies_follow_the_clock", async (_self, variant, _metadata) => {
  const { machine } = _metadata;
  const before = machine.k.jiffies;
  await machine.run_kthread("msleep_test", () => machine.k.msleep(variant.ms));
  // HZ=250: one jiffy per 4 ms, so the sleep spans floor(ms/4) or ceil(ms/4) jiffy ticks.
  EXPECT_GE(machine.k.jiffies - before, Math.floor(variant.ms / 4));
  EXPECT_LE(machine.k.jiffies - before, Math.ceil(variant.ms / 4));
});

TEST(harness_demo, "settle_leaves_nothing_runnable", async (_metadata) => {
  await _metadata.machine.settle();
  ASSERT_EQ(0, _metadata.machine.k.sched.nr_blocked);
});

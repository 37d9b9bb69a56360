// KUnit suite for kernel/sched/core.ts and the virtual clock: determinism per seed, wake-ups,
// deadlock detection, msleep on virtual time.

import { boot } from "../../../kernel/boot.ts";
import { MINIMAL_MACHINE } from "../../../kernel/machine_spec.ts";
import { TASK_UNINTERRUPTIBLE, KernelDeadlock, type task_struct } from "../../../kernel/sched/core.ts";
import { NSEC_PER_MSEC } from "../../../kernel/time/timekeeping.ts";
import {
  KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_NE, KUNIT_EXPECT_TRUE, KUNIT_ASSERT_TRUE, kunit_expect_splat,
  type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";

/** Three threads racing to append to one log, yielding between steps. */
async function racy_trace(seed: number): Promise<string> {
  const m = await boot({ ...MINIMAL_MACHINE, seed });
  const log: string[] = [];
  const worker = (name: string) => async () => {
    for (let i = 0; i < 6; i++) {
      log.push(name);
      await m.k.cond_resched();
    }
  };
  await Promise.all(["a", "b", "c"].map((n) => m.k.sched.kthread_run(worker(n), `racer/${n}`)));
  await m.shutdown();
  return log.join("");
}

async function same_seed_same_interleaving(test: kunit): Promise<void> {
  const s = test.k.sched;
  const first = await s.wait_for(racy_trace(7));
  const second = await s.wait_for(racy_trace(7));
  KUNIT_EXPECT_EQ(test, first, second);
  KUNIT_EXPECT_EQ(test, first.length, 18);
}

async function different_seeds_explore_other_interleavings(test: kunit): Promise<void> {
  const traces = new Set<string>();
  for (const seed of [1, 2, 3, 4, 5, 6]) traces.add(await test.k.sched.wait_for(racy_trace(seed)));
  KUNIT_EXPECT_TRUE(test, traces.size > 1, `all seeds gave ${[...traces][0]}`);
}

async function wake_up_resumes_sleeper(test: kunit): Promise<void> {
  const s = test.k.sched;
  let sleeper: task_struct | null = null;
  let woke_at = -1;
  const a = s.kthread_run(async () => {
    sleeper = s.current;
    s.set_current_state(TASK_UNINTERRUPTIBLE);
    s.current.wait_desc = "test event";
    await s.schedule();
    woke_at = test.k.ktime_get();
  }, "sleeper");
  const b = s.kthread_run(async () => {
    await test.k.msleep(5);
    KUNIT_ASSERT_TRUE(test, sleeper !== null);
    KUNIT_EXPECT_TRUE(test, s.wake_up_process(sleeper!));
  }, "waker");
  await s.wait_for(Promise.all([a, b]));
  KUNIT_EXPECT_EQ(test, woke_at, 5 * NSEC_PER_MSEC);
}

async function wake_before_schedule_is_not_lost(test: kunit): Promise<void> {
  const s = test.k.sched;
  s.set_current_state(TASK_UNINTERRUPTIBLE);
  KUNIT_EXPECT_TRUE(test, s.wake_up_process(s.current));
  await s.schedule(); // returns at once: the wake-up already made us runnable
  KUNIT_EXPECT_EQ(test, s.current.__state, 0);
}

async function msleep_advances_virtual_time_only(test: kunit): Promise<void> {
  const t0 = test.k.ktime_get();
  const j0 = test.k.jiffies;
  await test.k.msleep(40);
  KUNIT_EXPECT_EQ(test, test.k.ktime_get() - t0, 40 * NSEC_PER_MSEC);
  KUNIT_EXPECT_EQ(test, test.k.jiffies - j0, 10); // HZ=250: 4 ms per jiffy
}

async function deadlock_reported_with_each_wait(test: kunit): Promise<void> {
  kunit_expect_splat(test, "deadlock");
  const s = test.k.sched;
  const stuck = (what: string) => async () => {
    s.set_current_state(TASK_UNINTERRUPTIBLE);
    s.current.wait_desc = what;
    await s.schedule();
  };
  const both = Promise.allSettled([s.kthread_run(stuck("event A"), "stuck/a"), s.kthread_run(stuck("event B"), "stuck/b")]);
  const results = await s.wait_for(both);
  KUNIT_EXPECT_TRUE(test, results.every((r) => r.status === "rejected" && r.reason instanceof KernelDeadlock));
  const dmesg = test.machine.dmesg().join("\n");
  KUNIT_EXPECT_TRUE(test, dmesg.includes("deadlock: every context is blocked"));
  KUNIT_EXPECT_TRUE(test, /stuck\/a:\d+ blocked on event A/.test(dmesg), dmesg);
  KUNIT_EXPECT_TRUE(test, /stuck\/b:\d+ blocked on event B/.test(dmesg), dmesg);
  KUNIT_EXPECT_EQ(test, s.deadlocks, 1);
}

async function settle_runs_background_timers(test: kunit): Promise<void> {
  await test.k.sched.wait_for(settle_on_fresh_machine(test));
}

async function settle_on_fresh_machine(test: kunit): Promise<void> {
  const m = await boot({ ...MINIMAL_MACHINE, seed: 3 });
  let fired_at = -1;
  const { timer_list } = await import("../../../kernel/time/timer.ts");
  const t = new timer_list(() => { fired_at = m.k.ktime_get(); }, "test_timer");
  m.k.timers.add_timer_in(t, 3 * NSEC_PER_MSEC);
  await m.settle();
  KUNIT_EXPECT_EQ(test, fired_at, 3 * NSEC_PER_MSEC);
  KUNIT_EXPECT_NE(test, m.k.sched.nr_switches, 0);
  await m.shutdown();
}

export const sched_test_suite: kunit_suite = {
  name: "sched",
  test_cases: [
    KUNIT_CASE(same_seed_same_interleaving),
    KUNIT_CASE(different_seeds_explore_other_interleavings),
    KUNIT_CASE(wake_up_resumes_sleeper),
    KUNIT_CASE(wake_before_schedule_is_not_lost),
    KUNIT_CASE(msleep_advances_virtual_time_only),
    KUNIT_CASE(deadlock_reported_with_each_wait),
    KUNIT_CASE(settle_runs_background_timers),
  ],
};

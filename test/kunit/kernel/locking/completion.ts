// KUnit suite for kernel/sched/completion.ts: complete() wakes one waiter and complete_all()
// every waiter, counts carried over, timeouts on virtual time, completion from a timer
// (atomic context), interruptible waits, and the non-blocking helpers.

import {
  complete, complete_all, completion, completion_done, reinit_completion, try_wait_for_completion,
  wait_for_completion, wait_for_completion_interruptible, wait_for_completion_timeout,
} from "../../../../kernel/sched/completion.ts";
import type { task_struct } from "../../../../kernel/sched/core.ts";
import { jiffies_to_nsecs } from "../../../../kernel/time/timekeeping.ts";
import { timer_list } from "../../../../kernel/time/timer.ts";
import { ERESTARTSYS } from "../../../../include/uapi/asm-generic/errno.ts";
import {
  KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_TRUE,
  type kunit, type kunit_suite,
} from "../../../../lib/kunit/test.ts";

async function until(test: kunit, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await test.k.msleep(1);
  KUNIT_ASSERT_TRUE(test, cond(), "condition never became true");
}

async function complete_wakes_one_complete_all_wakes_all(test: kunit): Promise<void> {
  const k = test.k;
  const s = k.sched;
  const c = new completion(k, "&done");
  let woken = 0;
  const waiters = [0, 1, 2, 3].map((i) => s.kthread_run(async () => {
    await wait_for_completion(c);
    woken++;
  }, `waiter${i}`));
  await until(test, () => c.wait.length === 4);
  complete(c);
  KUNIT_EXPECT_EQ(test, c.wait.length, 3, "complete() wakes (and dequeues) exactly one waiter");
  const switches = s.nr_switches;
  await k.msleep(1);
  KUNIT_EXPECT_EQ(test, s.nr_switches - switches, 2, "the woken waiter ran once, then this task");
  KUNIT_EXPECT_EQ(test, woken, 1);
  KUNIT_EXPECT_EQ(test, c.done, 0, "the woken waiter took the count");
  complete(c);
  await k.msleep(1);
  KUNIT_EXPECT_EQ(test, woken, 2);
  complete_all(c);
  KUNIT_EXPECT_EQ(test, c.wait.length, 0, "complete_all() wakes every waiter");
  await s.wait_for(Promise.all(waiters));
  KUNIT_EXPECT_EQ(test, woken, 4);
  KUNIT_EXPECT_TRUE(test, completion_done(c));
  await wait_for_completion(c); // completed for all: later waits return at once
  KUNIT_EXPECT_TRUE(test, completion_done(c));
}

async function counts_accumulate_before_waiting(test: kunit): Promise<void> {
  const k = test.k;
  const c = new completion(k);
  complete(c);
  complete(c);
  const before = k.sched.nr_switches;
  await wait_for_completion(c);
  await wait_for_completion(c);
  KUNIT_EXPECT_EQ(test, k.sched.nr_switches, before, "no sleep needed");
  KUNIT_EXPECT_FALSE(test, completion_done(c));
  KUNIT_EXPECT_FALSE(test, try_wait_for_completion(c));
  complete(c);
  KUNIT_EXPECT_TRUE(test, try_wait_for_completion(c));
  complete(c);
  reinit_completion(c);
  KUNIT_EXPECT_FALSE(test, completion_done(c));
}

async function timeout_expires_on_virtual_time(test: kunit): Promise<void> {
  const k = test.k;
  const c = new completion(k, "&never");
  const j0 = k.jiffies;
  const left = await wait_for_completion_timeout(c, 10);
  KUNIT_EXPECT_EQ(test, left, 0);
  KUNIT_EXPECT_EQ(test, k.jiffies - j0, 10);
  KUNIT_EXPECT_EQ(test, k.ktime_get(), jiffies_to_nsecs(j0 + 10), "expiry on a jiffy boundary (HZ=250: 4 ms each)");
  KUNIT_EXPECT_EQ(test, c.wait.length, 0);
}

async function completed_from_a_timer(test: kunit): Promise<void> {
  const k = test.k;
  const c = new completion(k, "&irq_done");
  let ctx = "";
  const timer = new timer_list(() => {
    ctx = k.current.kind;
    complete(c);
  }, "test_timer");
  const j0 = k.jiffies;
  k.timers.mod_timer(timer, jiffies_to_nsecs(j0 + 4));
  const left = await wait_for_completion_timeout(c, 10);
  KUNIT_EXPECT_EQ(test, ctx, "softirq");
  KUNIT_EXPECT_EQ(test, left, 6, "completed 4 jiffies into a 10-jiffy wait");
  KUNIT_EXPECT_EQ(test, k.jiffies, j0 + 4);
}

async function interruptible_wait(test: kunit): Promise<void> {
  const k = test.k;
  const s = k.sched;
  const c = new completion(k);
  let waiter: task_struct | null = null;
  let ret = 1;
  const p = s.kthread_run(async () => {
    waiter = k.current;
    ret = await wait_for_completion_interruptible(c);
  }, "waiter");
  await until(test, () => c.wait.length === 1);
  waiter!.pending_signals.add(2);
  s.wake_up_process(waiter!);
  await s.wait_for(p);
  KUNIT_EXPECT_EQ(test, ret, -ERESTARTSYS);
  KUNIT_EXPECT_EQ(test, c.wait.length, 0);
  KUNIT_EXPECT_EQ(test, c.done, 0);
}

export const completion_test_suite: kunit_suite = {
  name: "completion",
  test_cases: [
    KUNIT_CASE(complete_wakes_one_complete_all_wakes_all),
    KUNIT_CASE(counts_accumulate_before_waiting),
    KUNIT_CASE(timeout_expires_on_virtual_time),
    KUNIT_CASE(completed_from_a_timer),
    KUNIT_CASE(interruptible_wait),
  ],
};

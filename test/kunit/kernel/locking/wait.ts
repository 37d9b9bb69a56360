// KUnit suite for kernel/sched/wait.ts: wait_event() with no lost wake-up, timeouts and their
// return values, interruptible waits and wake modes, exclusive waiters, and TASK_IDLE waits
// that never count towards a deadlock.

import {
  MAX_SCHEDULE_TIMEOUT, wait_event, wait_event_exclusive, wait_event_idle, wait_event_interruptible,
  wait_event_timeout, wait_queue_head_t, waitqueue_active, wake_up, wake_up_all, wake_up_interruptible,
} from "../../../../kernel/sched/wait.ts";
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

async function wake_between_test_and_sleep_is_not_lost(test: kunit): Promise<void> {
  const k = test.k;
  const wq = new wait_queue_head_t(k, "&wq");
  let flag = false;
  let checks = 0;
  // The test after queueing triggers the event, as an interrupt arriving right after the check
  // would: the wake-up must find the waiter queued and make its schedule() return.
  await wait_event(wq, () => {
    checks++;
    if (flag) return true;
    if (checks === 2) {
      flag = true;
      KUNIT_EXPECT_TRUE(test, waitqueue_active(wq), "queued before the condition is tested");
      wake_up(wq);
    }
    return false;
  });
  KUNIT_EXPECT_EQ(test, checks, 3, "fast-path test, test after queueing, test after the wake-up");
  KUNIT_EXPECT_FALSE(test, waitqueue_active(wq));
  KUNIT_EXPECT_EQ(test, k.sched.deadlocks, 0);
}

async function woken_by_a_timer(test: kunit): Promise<void> {
  const k = test.k;
  const wq = new wait_queue_head_t(k, "&wq");
  let ready = false;
  const t = new timer_list(() => {
    ready = true;
    wake_up_all(wq);
  }, "test_timer");
  k.timers.add_timer_in(t, jiffies_to_nsecs(3));
  const t0 = k.ktime_get();
  await wait_event(wq, () => ready);
  KUNIT_EXPECT_EQ(test, k.ktime_get() - t0, jiffies_to_nsecs(3));
}

async function timeout_return_values(test: kunit): Promise<void> {
  const k = test.k;
  const wq = new wait_queue_head_t(k, "&wq");
  const j0 = k.jiffies;
  KUNIT_EXPECT_EQ(test, await wait_event_timeout(wq, () => false, 5), 0, "expired");
  KUNIT_EXPECT_EQ(test, k.jiffies - j0, 5);
  KUNIT_EXPECT_EQ(test, await wait_event_timeout(wq, () => true, 5), 5, "already true: all the time is left");
  KUNIT_EXPECT_EQ(test, await wait_event_timeout(wq, () => true, 0), 1, "true with no time left counts as 1");
  let ready = false;
  const t = new timer_list(() => {
    ready = true;
    wake_up(wq);
  }, "test_timer");
  k.timers.mod_timer(t, jiffies_to_nsecs(k.jiffies + 2));
  KUNIT_EXPECT_EQ(test, await wait_event_timeout(wq, () => ready, 10), 8);
  KUNIT_EXPECT_EQ(test, MAX_SCHEDULE_TIMEOUT > 1e15, true);
}

async function interruptible_wake_modes(test: kunit): Promise<void> {
  const k = test.k;
  const s = k.sched;
  const wq = new wait_queue_head_t(k, "&wq");
  let go = false;
  let plain_done = false;
  let intr: task_struct | null = null;
  let ret = 1;
  const plain = s.kthread_run(async () => {
    await wait_event(wq, () => go);
    plain_done = true;
  }, "uninterruptible");
  const p = s.kthread_run(async () => {
    intr = k.current;
    ret = await wait_event_interruptible(wq, () => go);
  }, "interruptible");
  await until(test, () => wq.head.length === 2);
  go = true;
  wake_up_interruptible(wq);
  // Poll rather than wait_for(p): the other thread stays blocked meanwhile, and an idle
  // machine with one blocked context is a deadlock.
  await until(test, () => ret === 0);
  KUNIT_EXPECT_FALSE(test, plain_done, "wake_up_interruptible() leaves TASK_UNINTERRUPTIBLE sleepers");
  wake_up(wq);
  await s.wait_for(Promise.all([p, plain]));
  KUNIT_EXPECT_TRUE(test, plain_done);
  // A signal ends an interruptible wait whose condition never comes true.
  go = false;
  const q = s.kthread_run(async () => {
    intr = k.current;
    ret = await wait_event_interruptible(wq, () => go);
  }, "interruptible");
  await until(test, () => wq.head.length === 1);
  intr!.pending_signals.add(15);
  s.wake_up_process(intr!);
  await s.wait_for(q);
  KUNIT_EXPECT_EQ(test, ret, -ERESTARTSYS);
  KUNIT_EXPECT_FALSE(test, waitqueue_active(wq));
}

async function exclusive_waiters_wake_one_at_a_time(test: kunit): Promise<void> {
  const k = test.k;
  const s = k.sched;
  const wq = new wait_queue_head_t(k, "&wq");
  let tokens = 0;
  let served = 0;
  const ps = [0, 1, 2].map((i) => s.kthread_run(async () => {
    await wait_event_exclusive(wq, () => tokens > 0);
    tokens--;
    served++;
  }, `exclusive${i}`));
  await until(test, () => wq.head.length === 3);
  tokens = 1;
  wake_up(wq);
  await k.msleep(1);
  KUNIT_EXPECT_EQ(test, served, 1);
  KUNIT_EXPECT_EQ(test, wq.head.length, 2);
  tokens = 2;
  wake_up_all(wq);
  await s.wait_for(Promise.all(ps));
  KUNIT_EXPECT_EQ(test, served, 3);
}

async function idle_wait_is_not_a_deadlock(test: kunit): Promise<void> {
  const k = test.k;
  const s = k.sched;
  const wq = new wait_queue_head_t(k, "&kthread_wq");
  let stop = false;
  const p = s.kthread_run(async () => {
    await wait_event_idle(wq, () => stop);
  }, "idle_thread");
  await until(test, () => waitqueue_active(wq));
  await k.msleep(10); // only the idle thread and this sleep: no deadlock
  KUNIT_EXPECT_EQ(test, s.deadlocks, 0);
  stop = true;
  wake_up(wq);
  await s.wait_for(p);
  KUNIT_EXPECT_FALSE(test, waitqueue_active(wq));
}

export const wait_test_suite: kunit_suite = {
  name: "wait",
  test_cases: [
    KUNIT_CASE(wake_between_test_and_sleep_is_not_lost),
    KUNIT_CASE(woken_by_a_timer),
    KUNIT_CASE(timeout_return_values),
    KUNIT_CASE(interruptible_wake_modes),
    KUNIT_CASE(exclusive_waiters_wake_one_at_a_time),
    KUNIT_CASE(idle_wait_is_not_a_deadlock),
  ],
};

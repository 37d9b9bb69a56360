// KUnit suite for kernel/locking/mutex.ts: FIFO handoff, trylock, interruptible and killable
// waits, sleeping under a spinlock, a real AB-BA deadlock caught by the scheduler, non-owner
// unlock, and the cheap uncontended path that is still a preemption point.

import { KernelDeadlock, TASK_RUNNING, type task_struct } from "../../../../kernel/sched/core.ts";
import {
  mutex, mutex_is_locked, mutex_lock, mutex_lock_interruptible, mutex_lock_killable, mutex_trylock, mutex_unlock,
} from "../../../../kernel/locking/mutex.ts";
import { spinlock_t, spin_lock, spin_unlock } from "../../../../kernel/locking/spinlock.ts";
import { EINTR } from "../../../../include/uapi/asm-generic/errno.ts";
import {
  KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_GT, KUNIT_EXPECT_PTR_EQ, KUNIT_EXPECT_TRUE,
  kunit_expect_splat, type kunit, type kunit_suite,
} from "../../../../lib/kunit/test.ts";

const SIGUSR1 = 10;
const SIGKILL = 9;

function dmesg(test: kunit): string {
  return test.machine.dmesg().join("\n");
}

/** Sleeps in 1 ms steps of virtual time until `cond` holds (other contexts run meanwhile). */
async function until(test: kunit, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await test.k.msleep(1);
  KUNIT_ASSERT_TRUE(test, cond(), "condition never became true");
}

async function fifo_handoff_order(test: kunit): Promise<void> {
  const k = test.k;
  const s = k.sched;
  const m = new mutex(k, "&m");
  const order: string[] = [];
  const tasks: task_struct[] = [];
  await mutex_lock(m);
  const done: Promise<void>[] = [];
  for (const name of ["w0", "w1", "w2"]) {
    done.push(s.kthread_run(async () => {
      tasks.push(k.current);
      await mutex_lock(m);
      order.push(name);
      await k.msleep(1); // hold it across a sleep: the next waiter must not get in meanwhile
      mutex_unlock(m);
    }, name));
    // Each waiter queues before the next one starts, so arrival order is w0, w1, w2.
    await until(test, () => m.wait_list.length === done.length);
  }
  mutex_unlock(m);
  // Handoff: the first waiter owns the mutex before it even runs.
  KUNIT_EXPECT_PTR_EQ(test, m.owner, tasks[0]);
  KUNIT_EXPECT_EQ(test, m.wait_list.length, 2);
  await s.wait_for(Promise.all(done));
  KUNIT_EXPECT_EQ(test, order.join(","), "w0,w1,w2");
  KUNIT_EXPECT_FALSE(test, mutex_is_locked(m));
}

async function trylock_only_when_free(test: kunit): Promise<void> {
  const k = test.k;
  const m = new mutex(k, "&m");
  KUNIT_EXPECT_TRUE(test, mutex_trylock(m));
  KUNIT_EXPECT_PTR_EQ(test, m.owner, k.current);
  KUNIT_EXPECT_FALSE(test, mutex_trylock(m), "held by us");
  let other = true;
  await k.sched.wait_for(k.sched.kthread_run(async () => {
    other = mutex_trylock(m);
  }, "other"));
  KUNIT_EXPECT_FALSE(test, other, "held by someone else");
  mutex_unlock(m);
  KUNIT_EXPECT_FALSE(test, mutex_is_locked(m));
  KUNIT_EXPECT_EQ(test, k.current.held_locks.length, 0);
}

async function interruptible_wait_returns_eintr(test: kunit): Promise<void> {
  const k = test.k;
  const m = new mutex(k, "&m");
  await mutex_lock(m);
  let waiter: task_struct | null = null;
  let ret = 1;
  const p = k.sched.kthread_run(async () => {
    waiter = k.current;
    ret = await mutex_lock_interruptible(m);
  }, "waiter");
  await until(test, () => m.wait_list.length === 1);
  waiter!.pending_signals.add(SIGUSR1);
  k.sched.wake_up_process(waiter!);
  await k.sched.wait_for(p);
  KUNIT_EXPECT_EQ(test, ret, -EINTR);
  KUNIT_EXPECT_EQ(test, m.wait_list.length, 0);
  KUNIT_EXPECT_PTR_EQ(test, m.owner, k.current);
  KUNIT_EXPECT_EQ(test, waiter!.held_locks.length, 0, "lockdep forgot the failed acquisition");
  mutex_unlock(m);
}

async function killable_ignores_other_signals(test: kunit): Promise<void> {
  const k = test.k;
  const m = new mutex(k, "&m");
  await mutex_lock(m);
  let waiter: task_struct | null = null;
  let ret = 1;
  const p = k.sched.kthread_run(async () => {
    waiter = k.current;
    ret = await mutex_lock_killable(m);
  }, "waiter");
  await until(test, () => m.wait_list.length === 1);
  waiter!.pending_signals.add(SIGUSR1);
  k.sched.wake_up_process(waiter!);
  await k.msleep(1);
  KUNIT_EXPECT_EQ(test, m.wait_list.length, 1, "a non-fatal signal does not end a killable wait");
  waiter!.pending_signals.add(SIGKILL);
  k.sched.wake_up_process(waiter!);
  await k.sched.wait_for(p);
  KUNIT_EXPECT_EQ(test, ret, -EINTR);
  mutex_unlock(m);
}

async function mutex_under_spinlock_splats(test: kunit): Promise<void> {
  kunit_expect_splat(test, "sleep-in-atomic");
  const k = test.k;
  const s = new spinlock_t(k, "&s");
  const m = new mutex(k, "&m");
  spin_lock(s);
  await mutex_lock(m);
  mutex_unlock(m);
  spin_unlock(s);
  const d = dmesg(test);
  KUNIT_EXPECT_TRUE(test, d.includes("BUG: sleeping function called from invalid context"), d);
  KUNIT_EXPECT_TRUE(test, /in_atomic\(\): 1, irqs_disabled\(\): 0, non_block: 0, pid: \d+, name: kunit_try_catch/.test(d), d);
  KUNIT_EXPECT_TRUE(test, d.includes("called: mutex_lock"));
  KUNIT_EXPECT_EQ(test, k.splats.filter((x) => x.kind === "sleep-in-atomic").length, 1);
}

async function abba_deadlock_detected_by_scheduler(test: kunit): Promise<void> {
  kunit_expect_splat(test, "deadlock");
  kunit_expect_splat(test, "lockdep");
  const k = test.k;
  const s = k.sched;
  const a = new mutex(k, "A");
  const b = new mutex(k, "B");
  const errors: unknown[] = [];
  const body = (first: mutex, second: mutex) => async () => {
    await mutex_lock(first);
    try {
      // Both hold their first mutex before either asks for the second: a real deadlock.
      while (!(mutex_is_locked(a) && mutex_is_locked(b))) await k.msleep(1);
      await mutex_lock(second);
      mutex_unlock(second);
    } catch (e) {
      errors.push(e);
    } finally {
      mutex_unlock(first);
    }
  };
  await s.wait_for(Promise.all([s.kthread_run(body(a, b), "t_ab"), s.kthread_run(body(b, a), "t_ba")]));
  const d = dmesg(test);
  KUNIT_EXPECT_EQ(test, s.deadlocks, 1);
  KUNIT_EXPECT_EQ(test, errors.length, 2);
  KUNIT_EXPECT_TRUE(test, errors.every((e) => e instanceof KernelDeadlock));
  KUNIT_EXPECT_TRUE(test, d.includes("deadlock: every context is blocked"), d);
  KUNIT_EXPECT_TRUE(test, /t_ab:\d+ blocked on mutex B holding A, B/.test(d), d);
  KUNIT_EXPECT_TRUE(test, /t_ba:\d+ blocked on mutex A holding B, A/.test(d), d);
  KUNIT_EXPECT_TRUE(test, d.includes("WARNING: possible circular locking dependency detected"), "lockdep saw it first");
  KUNIT_EXPECT_FALSE(test, mutex_is_locked(a) || mutex_is_locked(b));
}

async function unlock_by_non_owner_warns(test: kunit): Promise<void> {
  kunit_expect_splat(test, "warn");
  kunit_expect_splat(test, "lockdep");
  const k = test.k;
  const m = new mutex(k, "&m");
  await mutex_lock(m);
  await k.sched.wait_for(k.sched.kthread_run(async () => {
    mutex_unlock(m);
  }, "intruder"));
  const d = dmesg(test);
  KUNIT_EXPECT_TRUE(test, d.includes("DEBUG_LOCKS_WARN_ON(__owner_task(owner) != current)"), d);
  KUNIT_EXPECT_TRUE(test, /intruder\/\d+ is trying to release lock \(&m\) at:/.test(d), d);
  KUNIT_EXPECT_FALSE(test, mutex_is_locked(m), "the kernel unlocks anyway");
  // Our own held-lock entry is stale now; drop it so the machine shuts down clean.
  k.lockdep.lock_release(m.dep_map);
}

async function uncontended_path_does_not_switch(test: kunit): Promise<void> {
  const k = test.k;
  const m = new mutex(k, "&m");
  const before = k.sched.nr_switches;
  for (let i = 0; i < 1000; i++) {
    await mutex_lock(m);
    mutex_unlock(m);
  }
  KUNIT_EXPECT_EQ(test, k.sched.nr_switches, before, "nothing else was runnable");
}

async function mutex_lock_is_a_preemption_point(test: kunit): Promise<void> {
  const k = test.k;
  const m = new mutex(k, "&m");
  let ran = false;
  const p = k.sched.kthread_run(async () => {
    ran = true;
  }, "runnable");
  KUNIT_EXPECT_EQ(test, k.current.__state, TASK_RUNNING);
  const before = k.sched.nr_switches;
  await mutex_lock(m); // the other thread is runnable: the scheduler gets to choose
  KUNIT_EXPECT_GT(test, k.sched.nr_switches, before);
  mutex_unlock(m);
  // Whichever the seeded policy picked first, the other thread runs within a few preemption points.
  for (let i = 0; i < 64 && !ran; i++) {
    await mutex_lock(m);
    mutex_unlock(m);
  }
  KUNIT_EXPECT_TRUE(test, ran);
  await k.sched.wait_for(p);
}

export const mutex_test_suite: kunit_suite = {
  name: "mutex",
  test_cases: [
    KUNIT_CASE(fifo_handoff_order),
    KUNIT_CASE(trylock_only_when_free),
    KUNIT_CASE(interruptible_wait_returns_eintr),
    KUNIT_CASE(killable_ignores_other_signals),
    KUNIT_CASE(mutex_under_spinlock_splats),
    KUNIT_CASE(abba_deadlock_detected_by_scheduler),
    KUNIT_CASE(unlock_by_non_owner_warns),
    KUNIT_CASE(uncontended_path_does_not_switch),
    KUNIT_CASE(mutex_lock_is_a_preemption_point),
  ],
};

// KUnit suite for kernel/notifier.ts: priority order, NOTIFY_STOP, errno encoding, registration
// errors, atomic chains from hard-IRQ context and as atomic sections, blocking chains whose
// callbacks sleep under the rwsem, and raw chains whose callbacks unregister themselves.

import { EBUSY, EEXIST, ENOENT, ENOMEM } from "../../../include/uapi/asm-generic/errno.ts";
import {
  NOTIFY_BAD, NOTIFY_DONE, NOTIFY_OK, NOTIFY_STOP, atomic_notifier_call_chain, atomic_notifier_call_chain_is_empty,
  atomic_notifier_chain_register, atomic_notifier_chain_register_unique_prio, atomic_notifier_chain_unregister,
  atomic_notifier_head, blocking_notifier_call_chain, blocking_notifier_chain_register,
  blocking_notifier_chain_unregister, blocking_notifier_head, notifier_from_errno, notifier_to_errno,
  raw_notifier_call_chain, raw_notifier_chain_register, raw_notifier_chain_unregister, raw_notifier_head,
  type blocking_notifier_block, type notifier_block,
} from "../../../kernel/notifier.ts";
import { NSEC_PER_MSEC } from "../../../kernel/time/timekeeping.ts";
import {
  KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_TRUE, kunit_expect_splat, type kunit,
  type kunit_suite,
} from "../../../lib/kunit/test.ts";

interface event {
  id: number;
}

/** A block that logs its name and the action, then returns `ret`. */
function logging_nb(log: string[], name: string, priority: number, ret = NOTIFY_OK): notifier_block<event> {
  return {
    priority,
    notifier_call: (_nb, action, data) => {
      log.push(`${name}:${action}:${data.id}`);
      return ret;
    },
  };
}

async function priority_order_and_last_return(test: kunit): Promise<void> {
  const nh = new atomic_notifier_head<event>(test.k, "test_chain");
  const log: string[] = [];
  KUNIT_EXPECT_TRUE(test, atomic_notifier_call_chain_is_empty(nh));
  KUNIT_EXPECT_EQ(test, atomic_notifier_call_chain(nh, 1, { id: 0 }), NOTIFY_DONE, "empty chain");
  atomic_notifier_chain_register(nh, logging_nb(log, "a", 0));
  atomic_notifier_chain_register(nh, logging_nb(log, "b", 10));
  atomic_notifier_chain_register(nh, logging_nb(log, "c", 0));
  atomic_notifier_chain_register(nh, logging_nb(log, "d", -5, NOTIFY_DONE));
  atomic_notifier_chain_register(nh, logging_nb(log, "e", 10));
  KUNIT_EXPECT_FALSE(test, atomic_notifier_call_chain_is_empty(nh));
  KUNIT_EXPECT_EQ(test, atomic_notifier_call_chain(nh, 7, { id: 3 }), NOTIFY_DONE, "the last callback's value");
  KUNIT_EXPECT_EQ(test, log.join(" "), "b:7:3 e:7:3 a:7:3 c:7:3 d:7:3");
}

async function stop_ends_the_walk(test: kunit): Promise<void> {
  const nh = new atomic_notifier_head<event>(test.k);
  const log: string[] = [];
  atomic_notifier_chain_register(nh, logging_nb(log, "first", 2));
  const stopper = logging_nb(log, "stopper", 1, NOTIFY_STOP);
  atomic_notifier_chain_register(nh, stopper);
  atomic_notifier_chain_register(nh, logging_nb(log, "never", 0));
  KUNIT_EXPECT_EQ(test, atomic_notifier_call_chain(nh, 0, { id: 1 }), NOTIFY_STOP);
  KUNIT_EXPECT_EQ(test, log.join(" "), "first:0:1 stopper:0:1");
  KUNIT_EXPECT_EQ(test, atomic_notifier_chain_unregister(nh, stopper), 0);
  const bad = logging_nb(log, "bad", 1, NOTIFY_BAD);
  atomic_notifier_chain_register(nh, bad);
  log.length = 0;
  KUNIT_EXPECT_EQ(test, atomic_notifier_call_chain(nh, 0, { id: 2 }), NOTIFY_BAD);
  KUNIT_EXPECT_EQ(test, log.join(" "), "first:0:2 bad:0:2");
}

async function errno_round_trip(test: kunit): Promise<void> {
  KUNIT_EXPECT_EQ(test, notifier_from_errno(0), NOTIFY_OK);
  KUNIT_EXPECT_EQ(test, notifier_from_errno(-ENOMEM), 0x800d);
  KUNIT_EXPECT_EQ(test, notifier_to_errno(notifier_from_errno(-ENOMEM)), -ENOMEM);
  KUNIT_EXPECT_EQ(test, notifier_to_errno(NOTIFY_OK), 0);
  KUNIT_EXPECT_EQ(test, notifier_to_errno(NOTIFY_DONE), 0);
  KUNIT_EXPECT_EQ(test, notifier_to_errno(NOTIFY_STOP), 0);
  const nh = new raw_notifier_head<event>(test.k);
  raw_notifier_chain_register(nh, { notifier_call: () => notifier_from_errno(-EBUSY) });
  raw_notifier_chain_register(nh, { notifier_call: () => NOTIFY_OK, priority: -1 });
  KUNIT_EXPECT_EQ(test, notifier_to_errno(raw_notifier_call_chain(nh, 0, { id: 0 })), -EBUSY);
}

async function registration_errors(test: kunit): Promise<void> {
  kunit_expect_splat(test, "warn");
  const nh = new atomic_notifier_head<event>(test.k);
  const log: string[] = [];
  const nb = logging_nb(log, "once", 3);
  function ppr_notifier(): number {
    return NOTIFY_OK;
  }
  const named: notifier_block<event> = { notifier_call: ppr_notifier };
  KUNIT_EXPECT_EQ(test, atomic_notifier_chain_register(nh, nb), 0);
  KUNIT_EXPECT_EQ(test, atomic_notifier_chain_register(nh, named), 0);
  KUNIT_EXPECT_EQ(test, atomic_notifier_chain_register(nh, named), -EEXIST);
  KUNIT_EXPECT_TRUE(test, test.machine.dmesg().some((l) => l.includes("notifier callback ppr_notifier already registered")));
  KUNIT_EXPECT_EQ(test, atomic_notifier_chain_register_unique_prio(nh, logging_nb(log, "same", 3)), -EBUSY);
  KUNIT_EXPECT_EQ(test, atomic_notifier_chain_register_unique_prio(nh, logging_nb(log, "other", 4)), 0);
  KUNIT_EXPECT_EQ(test, atomic_notifier_chain_unregister(nh, logging_nb(log, "stranger", 0)), -ENOENT);
  atomic_notifier_call_chain(nh, 0, { id: 0 });
  KUNIT_EXPECT_EQ(test, log.join(" "), "other:0:0 once:0:0", "a refused block is not on the chain");
}

async function atomic_chain_from_hardirq(test: kunit): Promise<void> {
  const nh = new atomic_notifier_head<event>(test.k, "ppr_notifier");
  const contexts: string[] = [];
  atomic_notifier_chain_register(nh, {
    notifier_call: () => {
      contexts.push(`${test.k.current.kind}:${test.k.sched.in_atomic()}`);
      return NOTIFY_OK;
    },
  });
  const ret = test.k.sched.run_atomic("hardirq", "irq/99", () => atomic_notifier_call_chain(nh, 0, { id: 0 }));
  KUNIT_EXPECT_EQ(test, ret, NOTIFY_OK);
  atomic_notifier_call_chain(nh, 0, { id: 0 });
  KUNIT_EXPECT_EQ(test, contexts.join(" "), "hardirq:true kthread:true", "the walk is atomic even from a thread");
  KUNIT_EXPECT_EQ(test, test.k.current.preempt_count, 0);
  KUNIT_EXPECT_EQ(test, test.k.splats.length, 0);
}

async function atomic_callback_that_sleeps_splats(test: kunit): Promise<void> {
  kunit_expect_splat(test, "sleep-in-atomic");
  const nh = new atomic_notifier_head<event>(test.k);
  let allowed: boolean | null = null;
  atomic_notifier_chain_register(nh, {
    notifier_call: function sleeps_in_rcu() {
      allowed = test.k.might_sleep("mutex_lock"); // what any sleeping primitive checks first
      return NOTIFY_DONE;
    },
  });
  atomic_notifier_call_chain(nh, 0, { id: 0 });
  KUNIT_EXPECT_EQ(test, allowed, false);
  KUNIT_EXPECT_TRUE(test, test.machine.dmesg().some((l) => l.includes("BUG: sleeping function called from invalid context")));
  KUNIT_EXPECT_TRUE(test, test.machine.dmesg().some((l) => l.includes("in_atomic(): 1, irqs_disabled(): 0")));
}

async function blocking_chain_callbacks_sleep(test: kunit): Promise<void> {
  const nh = new blocking_notifier_head<event>(test.k, "test_blocking");
  const log: string[] = [];
  const sleeper = (name: string, ms: number, priority: number): blocking_notifier_block<event> => ({
    priority,
    notifier_call: async (_nb, action) => {
      await test.k.msleep(ms);
      log.push(`${name}:${action}@${(test.k.ktime_get() - t0) / NSEC_PER_MSEC}`);
      return NOTIFY_OK;
    },
  });
  const t0 = test.k.ktime_get();
  KUNIT_EXPECT_EQ(test, await blocking_notifier_call_chain(nh, 1, { id: 0 }), NOTIFY_DONE);
  await blocking_notifier_chain_register(nh, sleeper("low", 3, 0));
  await blocking_notifier_chain_register(nh, sleeper("high", 5, 1));
  // While the walk holds the rwsem for reading, a registration waits for it to end.
  let registered_at = -1;
  const late = sleeper("late", 1, 9);
  const registrar = test.k.sched.kthread_run(async () => {
    await test.k.msleep(1);
    await blocking_notifier_chain_register(nh, late);
    registered_at = (test.k.ktime_get() - t0) / NSEC_PER_MSEC;
  }, "registrar");
  KUNIT_EXPECT_EQ(test, await blocking_notifier_call_chain(nh, 4, { id: 0 }), NOTIFY_OK);
  await test.k.sched.wait_for(registrar);
  KUNIT_EXPECT_EQ(test, log.join(" "), "high:4@5 low:4@8");
  KUNIT_EXPECT_EQ(test, registered_at, 8);
  log.length = 0;
  await blocking_notifier_call_chain(nh, 5, { id: 0 });
  KUNIT_EXPECT_EQ(test, log.join(" "), "late:5@9 high:5@14 low:5@17");
  KUNIT_EXPECT_EQ(test, await blocking_notifier_chain_unregister(nh, late), 0);
  KUNIT_EXPECT_EQ(test, test.k.sched.deadlocks, 0);
}

async function raw_callback_unregisters_itself(test: kunit): Promise<void> {
  const nh = new raw_notifier_head<event>(test.k);
  const log: string[] = [];
  const once: notifier_block<event> = {
    priority: 1,
    notifier_call: (nb) => {
      log.push("once");
      raw_notifier_chain_unregister(nh, nb);
      return NOTIFY_OK;
    },
  };
  raw_notifier_chain_register(nh, once);
  raw_notifier_chain_register(nh, logging_nb(log, "always", 0));
  raw_notifier_call_chain(nh, 0, { id: 1 });
  raw_notifier_call_chain(nh, 0, { id: 2 });
  KUNIT_EXPECT_EQ(test, log.join(" "), "once always:0:1 always:0:2");
}

export const notifier_test_suite: kunit_suite = {
  name: "notifier",
  test_cases: [
    KUNIT_CASE(priority_order_and_last_return),
    KUNIT_CASE(stop_ends_the_walk),
    KUNIT_CASE(errno_round_trip),
    KUNIT_CASE(registration_errors),
    KUNIT_CASE(atomic_chain_from_hardirq),
    KUNIT_CASE(atomic_callback_that_sleeps_splats),
    KUNIT_CASE(blocking_chain_callbacks_sleep),
    KUNIT_CASE(raw_callback_unregisters_itself),
  ],
};

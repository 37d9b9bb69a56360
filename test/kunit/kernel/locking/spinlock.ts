// KUnit suite for kernel/locking/spinlock.ts: atomic context while held, irq flags saved and
// restored in nesting order, bottom halves, trylock, rwlock_t, and the two bugs a spinlock
// cannot survive on one CPU (recursion, a holder that slept), each halting its own machine.

import { boot } from "../../../../kernel/boot.ts";
import { KernelOops } from "../../../../kernel/kernel.ts";
import { MINIMAL_MACHINE } from "../../../../kernel/machine_spec.ts";
import {
  X86_EFLAGS_IF, read_lock, read_trylock, read_unlock, rwlock_t, spin_is_locked, spin_lock, spin_lock_bh,
  spin_lock_irq, spin_lock_irqsave, spin_trylock, spin_unlock, spin_unlock_bh, spin_unlock_irq,
  spin_unlock_irqrestore, spinlock_t, write_lock_irqsave, write_trylock, write_unlock_irqrestore,
} from "../../../../kernel/locking/spinlock.ts";
import {
  KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_PTR_EQ, KUNIT_EXPECT_TRUE,
  kunit_expect_splat, type kunit, type kunit_suite,
} from "../../../../lib/kunit/test.ts";

async function held_spinlock_is_atomic(test: kunit): Promise<void> {
  kunit_expect_splat(test, "sleep-in-atomic");
  const k = test.k;
  const l = new spinlock_t(k, "&l");
  KUNIT_EXPECT_TRUE(test, k.might_sleep("before"));
  spin_lock(l);
  KUNIT_EXPECT_EQ(test, k.current.preempt_count, 1);
  KUNIT_EXPECT_TRUE(test, k.sched.in_atomic());
  KUNIT_EXPECT_PTR_EQ(test, l.owner, k.current);
  KUNIT_EXPECT_FALSE(test, k.might_sleep("under spin_lock"));
  spin_unlock(l);
  KUNIT_EXPECT_EQ(test, k.current.preempt_count, 0);
  KUNIT_EXPECT_FALSE(test, spin_is_locked(l));
  KUNIT_EXPECT_TRUE(test, test.machine.dmesg().some((x) => x.includes("BUG: sleeping function called from invalid context")));
}

async function irqsave_nests(test: kunit): Promise<void> {
  const k = test.k;
  const a = new spinlock_t(k, "&a");
  const b = new spinlock_t(k, "&b");
  const t = k.current;
  const fa = spin_lock_irqsave(a);
  const fb = spin_lock_irqsave(b);
  KUNIT_EXPECT_EQ(test, fa, X86_EFLAGS_IF, "irqs were on before the outer lock");
  KUNIT_EXPECT_EQ(test, fb, 0, "and off before the inner one");
  KUNIT_EXPECT_TRUE(test, t.irqs_disabled);
  spin_unlock_irqrestore(b, fb);
  KUNIT_EXPECT_TRUE(test, t.irqs_disabled, "inner restore keeps them off");
  spin_unlock_irqrestore(a, fa);
  KUNIT_EXPECT_FALSE(test, t.irqs_disabled);
  spin_lock_irq(a);
  KUNIT_EXPECT_TRUE(test, t.irqs_disabled);
  spin_unlock_irq(a);
  KUNIT_EXPECT_FALSE(test, t.irqs_disabled);
  KUNIT_EXPECT_EQ(test, t.preempt_count, 0);
}

async function bh_disables_softirqs(test: kunit): Promise<void> {
  const k = test.k;
  const l = new spinlock_t(k, "&l");
  spin_lock_bh(l);
  KUNIT_EXPECT_TRUE(test, k.sched.in_interrupt(), "in_interrupt() counts BH-disabled sections");
  spin_unlock_bh(l);
  KUNIT_EXPECT_FALSE(test, k.sched.in_interrupt());
  KUNIT_EXPECT_EQ(test, k.current.softirq_count, 0);
  // Taken in a softirq (a timer) and with BHs off in process context: consistent, no splat.
  k.sched.run_atomic("softirq", "ksoftirqd/0", () => {
    spin_lock(l);
    spin_unlock(l);
  });
  KUNIT_EXPECT_EQ(test, k.lockdep.nr_splats, 0);
}

async function trylock_fails_when_held(test: kunit): Promise<void> {
  const k = test.k;
  const l = new spinlock_t(k, "&l");
  KUNIT_EXPECT_TRUE(test, spin_trylock(l));
  KUNIT_EXPECT_FALSE(test, spin_trylock(l));
  KUNIT_EXPECT_EQ(test, k.current.preempt_count, 1, "a failed trylock leaves preemption as it was");
  spin_unlock(l);
  KUNIT_EXPECT_EQ(test, k.current.preempt_count, 0);
}

async function rwlock_readers_and_writer(test: kunit): Promise<void> {
  const k = test.k;
  const l = new rwlock_t(k, "&tasklist_lock");
  read_lock(l);
  KUNIT_EXPECT_TRUE(test, read_trylock(l));
  KUNIT_EXPECT_FALSE(test, write_trylock(l));
  KUNIT_EXPECT_EQ(test, l.readers, 2);
  read_unlock(l);
  read_unlock(l);
  const flags = write_lock_irqsave(l);
  KUNIT_EXPECT_FALSE(test, read_trylock(l));
  KUNIT_EXPECT_TRUE(test, k.current.irqs_disabled);
  write_unlock_irqrestore(l, flags);
  KUNIT_EXPECT_EQ(test, l.writer, null);
  KUNIT_EXPECT_EQ(test, k.current.preempt_count, 0);
  KUNIT_EXPECT_EQ(test, k.lockdep.nr_splats, 0);
}

/** Runs `body` on a fresh machine and returns its dmesg and how the body ended. */
async function on_own_machine(body: (m: Awaited<ReturnType<typeof boot>>) => Promise<void>): Promise<{ dmesg: string; err: unknown; halted: boolean }> {
  const m = await boot({ ...MINIMAL_MACHINE });
  let err: unknown = null;
  await body(m).catch((e: unknown) => {
    err = e;
  });
  return { dmesg: m.dmesg().join("\n"), err, halted: m.k.sched.halted !== null };
}

async function recursion_halts_the_machine(test: kunit): Promise<void> {
  const r = await test.k.sched.wait_for(on_own_machine((m) => m.run_kthread("twice", async () => {
    const l = new spinlock_t(m.k, "&l");
    spin_lock(l);
    spin_lock(l);
  })));
  KUNIT_EXPECT_TRUE(test, r.err instanceof KernelOops);
  KUNIT_EXPECT_TRUE(test, r.halted);
  KUNIT_EXPECT_TRUE(test, r.dmesg.includes("WARNING: possible recursive locking detected"), "lockdep speaks first");
  KUNIT_EXPECT_TRUE(test, /BUG: spinlock recursion on CPU#0, twice\/\d+\n.* lock: &l, .magic: dead4ead, .owner: twice\/\d+, .owner_cpu: 0/.test(r.dmesg), r.dmesg);
}

async function holder_that_slept_is_a_lockup(test: kunit): Promise<void> {
  const r = await test.k.sched.wait_for(on_own_machine(async (m) => {
    const l = new spinlock_t(m.k, "&l");
    const s = m.k.sched;
    await Promise.all([
      s.kthread_run(async () => {
        spin_lock(l);
        await m.k.msleep(1); // a bug: sleeping with a spinlock held
        spin_unlock(l);
      }, "sleeper"),
      s.kthread_run(async () => {
        while (!spin_is_locked(l)) await m.k.cond_resched();
        spin_lock(l);
      }, "spinner"),
    ]);
  }));
  KUNIT_ASSERT_TRUE(test, r.halted);
  KUNIT_EXPECT_TRUE(test, r.dmesg.includes("BUG: sleeping function called from invalid context"), r.dmesg);
  KUNIT_EXPECT_TRUE(test, /BUG: spinlock lockup suspected on CPU#0, spinner\/\d+\n.* lock: &l, .magic: dead4ead, .owner: sleeper\/\d+/.test(r.dmesg), r.dmesg);
}

export const spinlock_test_suite: kunit_suite = {
  name: "spinlock",
  test_cases: [
    KUNIT_CASE(held_spinlock_is_atomic),
    KUNIT_CASE(irqsave_nests),
    KUNIT_CASE(bh_disables_softirqs),
    KUNIT_CASE(trylock_fails_when_held),
    KUNIT_CASE(rwlock_readers_and_writer),
    KUNIT_CASE(recursion_halts_the_machine),
    KUNIT_CASE(holder_that_slept_is_a_lockup),
  ],
};

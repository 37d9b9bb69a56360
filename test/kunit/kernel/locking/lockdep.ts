// KUnit suite for kernel/locking/lockdep.ts: circular dependencies across kernel threads, the
// consistent-order negative case, recursive locking and nesting annotations, the irq-safety
// checks, unlock imbalance, the chain cache, out-of-order release, recursive-read rules,
// lockdep_assert_held and the shutdown leak check.

import { boot } from "../../../../kernel/boot.ts";
import { MINIMAL_MACHINE } from "../../../../kernel/machine_spec.ts";
import type { ContextKind } from "../../../../kernel/sched/core.ts";
import { lockdep_map, lockdep_assert_held, type Lockdep } from "../../../../kernel/locking/lockdep.ts";
import { mutex, mutex_lock, mutex_lock_nested, mutex_unlock } from "../../../../kernel/locking/mutex.ts";
import {
  spinlock_t, spin_lock, spin_lock_irqsave, spin_unlock, spin_unlock_irqrestore,
} from "../../../../kernel/locking/spinlock.ts";
import {
  KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_TRUE, kunit_expect_splat,
  type kunit, type kunit_suite,
} from "../../../../lib/kunit/test.ts";

function dmesg(test: kunit): string {
  return test.machine.dmesg().join("\n");
}

function count(text: string, what: string): number {
  return text.split(what).length - 1;
}

function run(test: kunit, comm: string, fn: () => Promise<void>, kind: ContextKind = "kthread"): Promise<void> {
  return test.k.sched.wait_for(test.k.sched.kthread_run(fn, comm, kind), comm);
}

function ld(test: kunit): Lockdep {
  return test.k.lockdep;
}

async function abba_between_kworkers_is_reported(test: kunit): Promise<void> {
  kunit_expect_splat(test, "lockdep");
  const k = test.k;
  const a = new mutex(k, "&a");
  const b = new mutex(k, "&b");
  // The two threads run one after the other: no real deadlock, only the inverted order.
  await run(test, "kworker/0:1", async () => {
    await mutex_lock(a);
    await mutex_lock(b);
    mutex_unlock(b);
    mutex_unlock(a);
  }, "kworker");
  KUNIT_EXPECT_EQ(test, ld(test).nr_splats, 0);
  await run(test, "kworker/0:2", async () => {
    await mutex_lock(b);
    await mutex_lock(a);
    mutex_unlock(a);
    mutex_unlock(b);
  }, "kworker");
  const d = dmesg(test);
  KUNIT_EXPECT_EQ(test, ld(test).nr_splats, 1);
  KUNIT_EXPECT_TRUE(test, d.includes("WARNING: possible circular locking dependency detected"), d);
  KUNIT_EXPECT_TRUE(test, /kworker\/0:2\/\d+ is trying to acquire lock:\n.*\(&a\)\{\+\.\+\.\}-\{3:3\}, at: /.test(d), d);
  KUNIT_EXPECT_TRUE(test, /but task is already holding lock:\n.* \(&b\)\{\+\.\+\.\}-\{3:3\}, at: /.test(d), d);
  KUNIT_EXPECT_TRUE(test, d.includes("-> #1 (&b){+.+.}-{3:3}:"), d);
  KUNIT_EXPECT_TRUE(test, d.includes("-> #0 (&a){+.+.}-{3:3}:"), d);
  KUNIT_EXPECT_TRUE(test, / {2}lock\(&b\);\n.* {31}lock\(&a\);\n.* {31}lock\(&b\);\n.* {2}lock\(&a\);/.test(d), d);
  KUNIT_EXPECT_TRUE(test, d.includes("*** DEADLOCK ***"));
  KUNIT_EXPECT_TRUE(test, /1 lock held by kworker\/0:2\/\d+:\n.* #0: \(&b\)/.test(d), d);
  KUNIT_EXPECT_TRUE(test, test.k.splats.some((s) => s.kind === "lockdep" && s.title.includes("circular")));
  KUNIT_EXPECT_FALSE(test, ld(test).debug_locks, "the first splat turns lockdep off");
}

async function consistent_order_is_not_flagged(test: kunit): Promise<void> {
  const k = test.k;
  const a = new mutex(k, "&a");
  const b = new mutex(k, "&b");
  const s = new spinlock_t(k, "&s");
  const body = async () => {
    await mutex_lock(a);
    await mutex_lock(b);
    spin_lock(s);
    spin_unlock(s);
    mutex_unlock(b);
    mutex_unlock(a);
  };
  await run(test, "kworker/0:1", body, "kworker");
  await run(test, "kworker/0:2", body, "kworker");
  KUNIT_EXPECT_EQ(test, ld(test).nr_splats, 0);
  KUNIT_EXPECT_EQ(test, ld(test).nr_dependencies, 2, "&a -> &b and &b -> &s");
  KUNIT_EXPECT_TRUE(test, ld(test).debug_locks);
  KUNIT_EXPECT_FALSE(test, dmesg(test).includes("WARNING"));
}

async function longer_cycle_names_the_chain(test: kunit): Promise<void> {
  kunit_expect_splat(test, "lockdep");
  const k = test.k;
  const [a, b, c] = ["&a", "&b", "&c"].map((n) => new mutex(k, n)) as [mutex, mutex, mutex];
  const pair = async (x: mutex, y: mutex) => {
    await mutex_lock(x);
    await mutex_lock(y);
    mutex_unlock(y);
    mutex_unlock(x);
  };
  await pair(a, b);
  await pair(b, c);
  KUNIT_EXPECT_EQ(test, ld(test).nr_splats, 0);
  await pair(c, a);
  const d = dmesg(test);
  KUNIT_EXPECT_TRUE(test, d.includes("-> #2 (&c){+.+.}-{3:3}:"), d);
  KUNIT_EXPECT_TRUE(test, d.includes("-> #1 (&b){+.+.}-{3:3}:"), d);
  KUNIT_EXPECT_TRUE(test, /Chain exists of:\n.* {2}&a --> &b --> &c/.test(d), d);
}

async function recursive_locking_is_detected(test: kunit): Promise<void> {
  kunit_expect_splat(test, "lockdep");
  const k = test.k;
  // Two instances initialised at the same site share a class, as in the kernel.
  const x = new mutex(k, "&obj->lock");
  const y = new mutex(k, "&obj->lock");
  await mutex_lock(x);
  await mutex_lock(y);
  const d = dmesg(test);
  KUNIT_EXPECT_TRUE(test, d.includes("WARNING: possible recursive locking detected"), d);
  KUNIT_EXPECT_TRUE(test, d.includes(" May be due to missing lock nesting notation"));
  KUNIT_EXPECT_TRUE(test, / {7}CPU0\n.* {7}----\n.* {2}lock\(&obj->lock\);\n.* {2}lock\(&obj->lock\);/.test(d), d);
  mutex_unlock(y);
  mutex_unlock(x);
  KUNIT_EXPECT_EQ(test, test.k.current.held_locks.length, 0);
}

async function nested_subclass_is_not_recursive(test: kunit): Promise<void> {
  const k = test.k;
  const parent = new mutex(k, "&inode->i_rwsem");
  const child = new mutex(k, "&inode->i_rwsem");
  await mutex_lock(parent);
  await mutex_lock_nested(child, 1);
  ld(test).lockdep_print_held_locks(k.current);
  mutex_unlock(child);
  mutex_unlock(parent);
  const d = dmesg(test);
  KUNIT_EXPECT_EQ(test, ld(test).nr_splats, 0);
  KUNIT_EXPECT_TRUE(test, / #0: \(&inode->i_rwsem\)\{\+\.\+\.\}-\{3:3\}, at: /.test(d), d);
  KUNIT_EXPECT_TRUE(test, / #1: \(&inode->i_rwsem\/1\)\{\+\.\+\.\}-\{3:3\}, at: .*lockdep\.ts/.test(d), d);
}

async function irq_inconsistent_lock_state(test: kunit): Promise<void> {
  kunit_expect_splat(test, "lockdep");
  const k = test.k;
  const l = new spinlock_t(k, "&dev->lock");
  spin_lock(l); // process context, irqs on: HARDIRQ-ON-W
  spin_unlock(l);
  k.sched.run_atomic("hardirq", "irq/42-test", () => {
    spin_lock(l); // IN-HARDIRQ-W: an irq arriving under the first spin_lock would deadlock
    spin_unlock(l);
  });
  const d = dmesg(test);
  KUNIT_EXPECT_TRUE(test, d.includes("WARNING: inconsistent lock state"), d);
  KUNIT_EXPECT_TRUE(test, d.includes("inconsistent {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage."), d);
  KUNIT_EXPECT_TRUE(test, d.includes("irq/42-test/-1 [HC1[1]:SC0[0]:HE0:SE1] takes:"), d);
  KUNIT_EXPECT_TRUE(test, d.includes("(&dev->lock){?.+.}-{2:2}"), d);
  KUNIT_EXPECT_TRUE(test, d.includes("{HARDIRQ-ON-W} state was registered at:"));
  KUNIT_EXPECT_TRUE(test, / {2}<Interrupt>\n.* {4}lock\(&dev->lock\);/.test(d), d);
}

async function irqsave_in_process_context_is_consistent(test: kunit): Promise<void> {
  const k = test.k;
  const l = new spinlock_t(k, "&dev->lock");
  const flags = spin_lock_irqsave(l);
  spin_unlock_irqrestore(l, flags);
  k.sched.run_atomic("hardirq", "irq/42-test", () => {
    spin_lock(l);
    spin_unlock(l);
  });
  KUNIT_EXPECT_EQ(test, ld(test).nr_splats, 0);
  KUNIT_EXPECT_FALSE(test, k.current.irqs_disabled);
}

async function hardirq_safe_to_unsafe_order(test: kunit): Promise<void> {
  kunit_expect_splat(test, "lockdep");
  const k = test.k;
  const safe = new spinlock_t(k, "&desc->lock");
  const unsafe = new spinlock_t(k, "&list_lock");
  spin_lock(unsafe); // irqs on: HARDIRQ-unsafe
  spin_unlock(unsafe);
  k.sched.run_atomic("hardirq", "irq/9-acpi", () => {
    spin_lock(safe); // HARDIRQ-safe
    spin_unlock(safe);
  });
  const flags = spin_lock_irqsave(safe);
  spin_lock(unsafe); // new dependency safe -> unsafe
  spin_unlock(unsafe);
  spin_unlock_irqrestore(safe, flags);
  const d = dmesg(test);
  KUNIT_EXPECT_TRUE(test, d.includes("WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected"), d);
  KUNIT_EXPECT_TRUE(test, d.includes("which would create a new lock dependency:"), d);
  KUNIT_EXPECT_TRUE(test, d.includes(" (&desc->lock){-...}-{2:2} -> (&list_lock){+.+.}-{2:2}"), d);
  KUNIT_EXPECT_TRUE(test, d.includes("... which became HARDIRQ-irq-safe at:"));
  KUNIT_EXPECT_TRUE(test, d.includes("                               local_irq_disable();"));
}

async function irq_inversion_on_state_change(test: kunit): Promise<void> {
  kunit_expect_splat(test, "lockdep");
  const k = test.k;
  const safe = new spinlock_t(k, "&desc->lock");
  const inner = new spinlock_t(k, "&inner");
  k.sched.run_atomic("hardirq", "irq/9-acpi", () => {
    spin_lock(safe);
    spin_unlock(safe);
  });
  const flags = spin_lock_irqsave(safe);
  spin_lock(inner); // irqs off: inner is not irq-unsafe yet
  spin_unlock(inner);
  spin_unlock_irqrestore(safe, flags);
  KUNIT_EXPECT_EQ(test, ld(test).nr_splats, 0);
  spin_lock(inner); // now taken with irqs on
  spin_unlock(inner);
  const d = dmesg(test);
  KUNIT_EXPECT_TRUE(test, d.includes("WARNING: possible irq lock inversion dependency detected"), d);
  KUNIT_EXPECT_TRUE(test, d.includes("but this lock was taken by another, HARDIRQ-safe lock in the past:"), d);
  KUNIT_EXPECT_TRUE(test, d.includes(" (&desc->lock){-...}-{2:2}"), d);
}

async function irqs_enabled_under_a_held_lock_marks_it(test: kunit): Promise<void> {
  kunit_expect_splat(test, "lockdep");
  const k = test.k;
  const l = new spinlock_t(k, "&l");
  const other = new spinlock_t(k, "&other");
  k.sched.run_atomic("hardirq", "irq/7", () => {
    spin_lock(l);
    spin_unlock(l);
  });
  // l taken with irqs off, then irqs come back on (other's irqrestore) while l is still held.
  const f1 = spin_lock_irqsave(other);
  spin_lock(l);
  spin_unlock_irqrestore(other, f1);
  KUNIT_EXPECT_TRUE(test, dmesg(test).includes("inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage."), dmesg(test));
  spin_unlock(l);
}

async function bad_unlock_balance(test: kunit): Promise<void> {
  kunit_expect_splat(test, "lockdep");
  const map = new lockdep_map("&never_taken");
  ld(test).lock_map_release(map);
  const d = dmesg(test);
  KUNIT_EXPECT_TRUE(test, d.includes("WARNING: bad unlock balance detected!"), d);
  KUNIT_EXPECT_TRUE(test, /kunit_try_catch\/\d+ is trying to release lock \(&never_taken\) at:/.test(d), d);
  KUNIT_EXPECT_TRUE(test, d.includes("but there are no more locks to release!"));
  KUNIT_EXPECT_TRUE(test, /no locks held by kunit_try_catch\/\d+\./.test(d), d);
}

async function off_after_first_splat_but_still_counts(test: kunit): Promise<void> {
  kunit_expect_splat(test, "lockdep");
  const k = test.k;
  for (const name of ["&x", "&y"]) {
    const p = new mutex(k, name);
    const q = new mutex(k, name);
    await mutex_lock(p);
    await mutex_lock(q);
    mutex_unlock(q);
    mutex_unlock(p);
  }
  KUNIT_EXPECT_EQ(test, ld(test).nr_splats, 2);
  KUNIT_EXPECT_FALSE(test, ld(test).debug_locks);
  KUNIT_EXPECT_EQ(test, count(dmesg(test), "WARNING: possible recursive locking detected"), 1);
  KUNIT_EXPECT_EQ(test, test.k.splats.filter((s) => s.kind === "lockdep").length, 2);
}

async function chain_cache_validates_once(test: kunit): Promise<void> {
  const k = test.k;
  const a = new spinlock_t(k, "&a");
  const b = new spinlock_t(k, "&b");
  const round = () => {
    spin_lock(a);
    spin_lock(b);
    spin_unlock(b);
    spin_unlock(a);
  };
  round();
  const chains = ld(test).nr_lock_chains;
  const deps = ld(test).nr_dependencies;
  for (let i = 0; i < 10_000; i++) round();
  KUNIT_EXPECT_EQ(test, chains, 2, "[&a] and [&a, &b]");
  KUNIT_EXPECT_EQ(test, ld(test).nr_lock_chains, chains);
  KUNIT_EXPECT_EQ(test, ld(test).nr_dependencies, deps);
  KUNIT_EXPECT_EQ(test, ld(test).nr_lock_classes, 2);
}

async function out_of_order_release_rebuilds_the_stack(test: kunit): Promise<void> {
  const k = test.k;
  const [a, b, c] = ["&a", "&b", "&c"].map((n) => new spinlock_t(k, n)) as [spinlock_t, spinlock_t, spinlock_t];
  spin_lock(a);
  spin_lock(b);
  spin_lock(c);
  spin_unlock(a); // hand-over-hand: the bottom lock goes first
  KUNIT_EXPECT_EQ(test, k.current.held_locks.map((h) => h.class_name).join(","), "&b,&c");
  KUNIT_EXPECT_TRUE(test, ld(test).lock_is_held(b.dep_map));
  KUNIT_EXPECT_FALSE(test, ld(test).lock_is_held(a.dep_map));
  spin_unlock(c);
  spin_unlock(b);
  KUNIT_EXPECT_EQ(test, ld(test).nr_splats, 0);
  KUNIT_EXPECT_EQ(test, k.current.preempt_count, 0);
}

async function recursive_reads_do_not_deadlock(test: kunit): Promise<void> {
  kunit_expect_splat(test, "lockdep");
  const k = test.k;
  const r = new lockdep_map("(wq_completion)events");
  const m = new mutex(k, "&m");
  const l = ld(test);
  // Recursive readers never block each other, so R(read) -> M -> R(read) is no cycle.
  l.lock_map_acquire_read(r);
  l.lock_map_acquire_read(r);
  await mutex_lock(m);
  mutex_unlock(m);
  l.lock_map_release(r);
  l.lock_map_release(r);
  await mutex_lock(m);
  l.lock_map_acquire_read(r);
  l.lock_map_release(r);
  mutex_unlock(m);
  KUNIT_EXPECT_EQ(test, l.nr_splats, 0);
  // An exclusive acquisition under M closes a real cycle.
  await mutex_lock(m);
  l.lock_map_acquire(r);
  l.lock_map_release(r);
  mutex_unlock(m);
  KUNIT_EXPECT_EQ(test, l.nr_splats, 1);
  KUNIT_EXPECT_TRUE(test, dmesg(test).includes("WARNING: possible circular locking dependency detected"));
}

async function flush_dependency_through_pseudo_lock(test: kunit): Promise<void> {
  kunit_expect_splat(test, "lockdep");
  const k = test.k;
  const l = ld(test);
  const work = new lockdep_map("(work_completion)(&dev->reset_work)");
  const m = new mutex(k, "&dev->mutex");
  // The worker runs the item, which takes the mutex.
  await run(test, "kworker/0:1", async () => {
    l.lock_map_acquire(work);
    await mutex_lock(m);
    mutex_unlock(m);
    l.lock_map_release(work);
  }, "kworker");
  // Someone flushes the item with the mutex held: it would wait forever.
  await mutex_lock(m);
  l.lock_map_acquire(work);
  l.lock_map_release(work);
  mutex_unlock(m);
  const d = dmesg(test);
  KUNIT_EXPECT_TRUE(test, d.includes("-> #1 (&dev->mutex){+.+.}-{3:3}:"), d);
  KUNIT_EXPECT_TRUE(test, d.includes("-> #0 ((work_completion)(&dev->reset_work)){+.+.}-{0:0}:"), d);
}

async function assert_held_warns_when_not_held(test: kunit): Promise<void> {
  kunit_expect_splat(test, "warn");
  const k = test.k;
  const m = new mutex(k, "&m");
  await mutex_lock(m);
  lockdep_assert_held(m);
  KUNIT_EXPECT_EQ(test, k.splats.length, 0);
  mutex_unlock(m);
  lockdep_assert_held(m);
  KUNIT_EXPECT_EQ(test, k.splats.filter((s) => s.kind === "warn").length, 1);
  KUNIT_EXPECT_TRUE(test, dmesg(test).includes("lockdep_assert_held(&m)"));
}

function assert_held_on_a_bare_map(test: kunit): void {
  kunit_expect_splat(test, "lockdep");
  const l = ld(test);
  const map = new lockdep_map("fs_reclaim");
  l.lock_map_acquire(map);
  KUNIT_EXPECT_TRUE(test, l.lockdep_assert_held(map));
  l.lock_map_release(map);
  KUNIT_EXPECT_FALSE(test, l.lockdep_assert_held(map));
  KUNIT_EXPECT_EQ(test, l.nr_splats, 1);
  KUNIT_EXPECT_TRUE(test, /WARNING: CPU: 0 PID: \d+ at .*lockdep\.ts:\d+\) lockdep_assert_held\(fs_reclaim\)/.test(dmesg(test)), dmesg(test));
  KUNIT_EXPECT_TRUE(test, l.debug_locks, "a failed assertion is a WARN: lockdep stays on");
}

async function leaked_lock_reported_at_shutdown(test: kunit): Promise<void> {
  await test.k.sched.wait_for(leak_on_fresh_machine(test));
}

async function leak_on_fresh_machine(test: kunit): Promise<void> {
  const m = await boot({ ...MINIMAL_MACHINE });
  const leaky = new mutex(m.k, "&leaky");
  await m.run_kthread("leaker", async () => {
    await mutex_lock(leaky);
  });
  m.k.lockdep.debug_show_all_locks();
  const d = m.dmesg().join("\n");
  KUNIT_EXPECT_TRUE(test, d.includes("Showing all locks held in the system:"), d);
  KUNIT_EXPECT_TRUE(test, /1 lock held by leaker\/\d+:\n.* #0: \(&leaky\)\{\+\.\+\.\}-\{3:3\}, at: /.test(d), d);
  const problems = await m.shutdown({ report_only: true });
  KUNIT_ASSERT_TRUE(test, problems.length > 0);
  KUNIT_EXPECT_TRUE(test, problems.some((p) => /^lock held at shutdown: &leaky by leaker\/\d+, acquired at .*lockdep\.ts/.test(p)), problems.join("\n"));
}

export const lockdep_test_suite: kunit_suite = {
  name: "lockdep",
  test_cases: [
    KUNIT_CASE(abba_between_kworkers_is_reported),
    KUNIT_CASE(consistent_order_is_not_flagged),
    KUNIT_CASE(longer_cycle_names_the_chain),
    KUNIT_CASE(recursive_locking_is_detected),
    KUNIT_CASE(nested_subclass_is_not_recursive),
    KUNIT_CASE(irq_inconsistent_lock_state),
    KUNIT_CASE(irqsave_in_process_context_is_consistent),
    KUNIT_CASE(hardirq_safe_to_unsafe_order),
    KUNIT_CASE(irq_inversion_on_state_change),
    KUNIT_CASE(irqs_enabled_under_a_held_lock_marks_it),
    KUNIT_CASE(bad_unlock_balance),
    KUNIT_CASE(off_after_first_splat_but_still_counts),
    KUNIT_CASE(chain_cache_validates_once),
    KUNIT_CASE(out_of_order_release_rebuilds_the_stack),
    KUNIT_CASE(recursive_reads_do_not_deadlock),
    KUNIT_CASE(flush_dependency_through_pseudo_lock),
    KUNIT_CASE(assert_held_warns_when_not_held),
    KUNIT_CASE(assert_held_on_a_bare_map),
    KUNIT_CASE(leaked_lock_reported_at_shutdown),
  ],
};

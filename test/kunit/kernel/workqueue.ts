// KUnit suite for kernel/workqueue.ts: queue/flush/cancel semantics, delayed work on virtual
// time, ordered and max_active limits, queueing from atomic context, draining and destroying,
// idle kworkers (reused, at most MAX_IDLE_WORKERS kept, stopped by destroy_workqueue), and the
// self-flush deadlock reported (lockdep + WARN) instead of hanging.

import { WORKQUEUE } from "../../../kernel/tokens.ts";
import {
  MAX_IDLE_WORKERS, WQ_MEM_RECLAIM, WQ_UNBOUND, delayed_work, work_pending, work_struct, type Workqueues, type workqueue_struct,
} from "../../../kernel/workqueue.ts";
import { PF_WQ_WORKER } from "../../../kernel/sched/core.ts";
import { NSEC_PER_MSEC, jiffies_to_nsecs } from "../../../kernel/time/timekeeping.ts";
import { timer_list } from "../../../kernel/time/timer.ts";
import {
  KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_GT, KUNIT_EXPECT_TRUE,
  kunit_expect_splat, type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";

function wqs_of(test: kunit): Workqueues {
  return test.machine.symbol(WORKQUEUE);
}

function dmesg_has(test: kunit, text: string): boolean {
  return test.machine.dmesg().some((l) => l.includes(text));
}

async function queue_runs_once_in_a_kworker(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  const seen: string[] = [];
  let flags = 0;
  let current_was_self = false;
  const w = new work_struct((work) => {
    seen.push(test.k.current.comm);
    flags = test.k.current.flags;
    current_was_self = wqs.current_work() === work;
  });
  KUNIT_EXPECT_TRUE(test, wqs.schedule_work(w));
  KUNIT_EXPECT_TRUE(test, work_pending(w));
  KUNIT_EXPECT_FALSE(test, wqs.schedule_work(w), "queueing a pending work must fail");
  KUNIT_EXPECT_TRUE(test, await wqs.flush_work(w));
  KUNIT_EXPECT_EQ(test, seen.length, 1);
  KUNIT_EXPECT_TRUE(test, /^kworker\/0:\d+$/.test(seen[0] ?? ""), `comm ${seen[0]}`);
  KUNIT_EXPECT_TRUE(test, (flags & PF_WQ_WORKER) !== 0);
  KUNIT_EXPECT_TRUE(test, current_was_self);
  KUNIT_EXPECT_FALSE(test, work_pending(w));
  KUNIT_EXPECT_EQ(test, wqs.current_work(), null);
}

async function flush_work_of_idle_work_is_false(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  let runs = 0;
  const w = new work_struct(() => {
    runs++;
  });
  KUNIT_EXPECT_FALSE(test, await wqs.flush_work(w), "never queued");
  wqs.schedule_work(w);
  KUNIT_EXPECT_TRUE(test, await wqs.flush_work(w));
  KUNIT_EXPECT_FALSE(test, await wqs.flush_work(w), "already finished");
  KUNIT_EXPECT_EQ(test, runs, 1);
}

async function flush_work_waits_for_last_queueing(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  const done_at: number[] = [];
  const w = new work_struct(async () => {
    await test.k.msleep(10);
    done_at.push(test.k.ktime_get());
  });
  const t0 = test.k.ktime_get();
  wqs.schedule_work(w);
  await test.k.msleep(1);
  KUNIT_EXPECT_TRUE(test, await wqs.flush_work(w), "running, not pending: still waited for");
  KUNIT_EXPECT_EQ(test, test.k.ktime_get(), t0 + 10 * NSEC_PER_MSEC);
  wqs.schedule_work(w);
  await test.k.msleep(1);
  KUNIT_EXPECT_TRUE(test, wqs.schedule_work(w), "a running work may be queued again");
  KUNIT_EXPECT_TRUE(test, await wqs.flush_work(w));
  // Never two instances at once: the second starts when the first ends.
  KUNIT_EXPECT_EQ(test, done_at.join(), [10, 20, 30].map((ms) => t0 + ms * NSEC_PER_MSEC).join());
  KUNIT_EXPECT_EQ(test, test.k.ktime_get(), t0 + 30 * NSEC_PER_MSEC);
}

async function cancel_of_pending_work_prevents_it(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  let runs = 0;
  const w = new work_struct(() => {
    runs++;
  });
  wqs.schedule_work(w);
  KUNIT_EXPECT_TRUE(test, await wqs.cancel_work_sync(w));
  KUNIT_EXPECT_FALSE(test, work_pending(w));
  await wqs.flush_workqueue(wqs.system_wq);
  await test.k.msleep(10);
  KUNIT_EXPECT_EQ(test, runs, 0);
  KUNIT_EXPECT_FALSE(test, wqs.cancel_work(w), "nothing left to cancel");
}

async function cancel_work_sync_waits_for_running_work(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  let started = false;
  let finished_at = -1;
  const w = new work_struct(async () => {
    started = true;
    await test.k.msleep(20);
    finished_at = test.k.ktime_get();
  });
  const t0 = test.k.ktime_get();
  wqs.schedule_work(w);
  await test.k.msleep(1);
  KUNIT_ASSERT_TRUE(test, started, "the work should be running by now");
  KUNIT_EXPECT_FALSE(test, await wqs.cancel_work_sync(w), "it was running, not pending");
  KUNIT_EXPECT_EQ(test, finished_at, t0 + 20 * NSEC_PER_MSEC);
  KUNIT_EXPECT_EQ(test, test.k.ktime_get(), finished_at);
}

async function queue_refused_while_cancel_waits(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  let runs = 0;
  const w = new work_struct(async () => {
    runs++;
    await test.k.msleep(10);
  });
  wqs.schedule_work(w);
  await test.k.msleep(1);
  let requeued: boolean | null = null;
  const other = test.k.sched.kthread_run(async () => {
    await test.k.msleep(2);
    requeued = wqs.schedule_work(w);
  }, "requeuer");
  await wqs.cancel_work_sync(w);
  await test.k.sched.wait_for(other);
  KUNIT_EXPECT_EQ(test, requeued, false);
  await test.k.msleep(20);
  KUNIT_EXPECT_EQ(test, runs, 1);
}

async function delayed_work_fires_at_its_jiffy(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  let ran_at = -1;
  let ran_jiffies = -1;
  const dw = new delayed_work(() => {
    ran_at = test.k.ktime_get();
    ran_jiffies = test.k.jiffies;
  });
  await test.k.msleep(1); // start between two ticks
  const j0 = test.k.jiffies;
  const deadline = jiffies_to_nsecs(j0 + 10);
  KUNIT_EXPECT_TRUE(test, wqs.schedule_delayed_work(dw, 10));
  KUNIT_EXPECT_FALSE(test, wqs.schedule_delayed_work(dw, 1), "already pending");
  await test.k.msleep((deadline - test.k.ktime_get()) / NSEC_PER_MSEC - 1);
  KUNIT_EXPECT_EQ(test, ran_at, -1, "ran before its deadline");
  KUNIT_EXPECT_TRUE(test, work_pending(dw.work));
  await test.k.msleep(2);
  KUNIT_EXPECT_EQ(test, ran_at, deadline);
  KUNIT_EXPECT_EQ(test, ran_jiffies, j0 + 10);
}

async function mod_delayed_work_rearms(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  const runs: number[] = [];
  const dw = new delayed_work(() => {
    runs.push(test.k.jiffies);
  });
  const j0 = test.k.jiffies;
  KUNIT_EXPECT_TRUE(test, wqs.queue_delayed_work(wqs.system_wq, dw, 100));
  KUNIT_EXPECT_TRUE(test, wqs.mod_delayed_work(wqs.system_wq, dw, 5), "was pending");
  await test.k.msleep(500);
  KUNIT_EXPECT_EQ(test, runs.length, 1);
  KUNIT_EXPECT_EQ(test, runs[0], j0 + 5);
  const j1 = test.k.jiffies;
  KUNIT_EXPECT_FALSE(test, wqs.mod_delayed_work(wqs.system_wq, dw, 3), "was idle");
  await test.k.msleep(100);
  KUNIT_EXPECT_EQ(test, runs.length, 2);
  KUNIT_EXPECT_EQ(test, runs[1], j1 + 3);
}

async function cancel_delayed_work_before_deadline(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  let runs = 0;
  const dw = new delayed_work(() => {
    runs++;
  });
  wqs.schedule_delayed_work(dw, 5);
  KUNIT_EXPECT_TRUE(test, await wqs.cancel_delayed_work_sync(dw));
  await test.k.msleep(100);
  KUNIT_EXPECT_EQ(test, runs, 0);
  KUNIT_EXPECT_EQ(test, test.k.timers.pending_count, 0);
}

async function flush_delayed_work_runs_it_now(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  let ran_at = -1;
  const dw = new delayed_work(() => {
    ran_at = test.k.ktime_get();
  });
  const t0 = test.k.ktime_get();
  wqs.schedule_delayed_work(dw, 1000);
  KUNIT_EXPECT_TRUE(test, await wqs.flush_delayed_work(dw));
  KUNIT_EXPECT_EQ(test, ran_at, t0);
}

/** Items that sleep less the later they are queued: only ordering keeps them in order. */
async function run_staggered(test: kunit, wq: workqueue_struct): Promise<{ order: number[]; max_running: number }> {
  const wqs = wqs_of(test);
  const order: number[] = [];
  let running = 0;
  let max_running = 0;
  const works = Array.from({ length: 6 }, (_, i) => new work_struct(async () => {
    running++;
    max_running = Math.max(max_running, running);
    await test.k.msleep(6 - i);
    order.push(i);
    running--;
  }, `staggered_${i}`));
  for (const w of works) wqs.queue_work(wq, w);
  await wqs.flush_workqueue(wq);
  return { order, max_running };
}

async function ordered_workqueue_keeps_queue_order(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  const ordered = wqs.alloc_ordered_workqueue("test_ordered", 0);
  const r = await run_staggered(test, ordered);
  KUNIT_EXPECT_EQ(test, r.order.join(","), "0,1,2,3,4,5");
  KUNIT_EXPECT_EQ(test, r.max_running, 1);
  const parallel = wqs.alloc_workqueue("test_parallel", WQ_UNBOUND, 0);
  const p = await run_staggered(test, parallel);
  KUNIT_EXPECT_EQ(test, p.order.join(","), "5,4,3,2,1,0", "a non-ordered workqueue runs them concurrently");
  KUNIT_EXPECT_GT(test, p.max_running, 1);
  await wqs.destroy_workqueue(ordered);
  await wqs.destroy_workqueue(parallel);
}

async function max_active_limits_concurrency(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  const wq = wqs.alloc_workqueue("test_max%d", 0, 2, 2);
  KUNIT_EXPECT_EQ(test, wq.name, "test_max2");
  let running = 0;
  let max_running = 0;
  const comms = new Set<string>();
  const works = Array.from({ length: 5 }, () => new work_struct(async () => {
    comms.add(test.k.current.comm);
    max_running = Math.max(max_running, ++running);
    await test.k.msleep(10);
    running--;
  }));
  const t0 = test.k.ktime_get();
  for (const w of works) wqs.queue_work(wq, w);
  await wqs.flush_workqueue(wq);
  KUNIT_EXPECT_EQ(test, max_running, 2);
  KUNIT_EXPECT_EQ(test, comms.size, 2);
  KUNIT_EXPECT_EQ(test, test.k.ktime_get() - t0, 30 * NSEC_PER_MSEC, "5 items, 2 at a time, 10 ms each");
  await wqs.destroy_workqueue(wq);
}

async function queue_work_from_softirq_timer(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  let ctx = "";
  let ran_in = "";
  const w = new work_struct(() => {
    ran_in = test.k.current.kind;
  });
  const t = new timer_list(() => {
    ctx = test.k.current.kind;
    KUNIT_EXPECT_TRUE(test, wqs.queue_work(wqs.system_highpri_wq, w));
  }, "test_timer");
  test.k.timers.add_timer_in(t, 3 * NSEC_PER_MSEC);
  await test.k.msleep(5);
  KUNIT_EXPECT_EQ(test, ctx, "softirq");
  KUNIT_EXPECT_EQ(test, ran_in, "kworker");
}

async function drain_runs_chained_work(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  const wq = wqs.alloc_workqueue("test_chain", 0, 1);
  let runs = 0;
  const w = new work_struct(async (work) => {
    runs++;
    await test.k.msleep(1);
    if (runs < 5) KUNIT_EXPECT_TRUE(test, wqs.queue_work(wq, work), "chained queueing is allowed while draining");
  });
  wqs.queue_work(wq, w);
  await wqs.destroy_workqueue(wq);
  KUNIT_EXPECT_EQ(test, runs, 5);
  KUNIT_EXPECT_EQ(test, wqs.leak_report().length, 0);
}

async function undestroyed_workqueue_is_a_leak(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  const wq = wqs.alloc_workqueue("test_leaky", 0, 0);
  KUNIT_EXPECT_TRUE(test, wqs.leak_report().some((l) => l.includes("test_leaky was never destroyed")));
  const dw = new delayed_work(() => {}, "leaky_dwork");
  wqs.queue_delayed_work(wq, dw, 50);
  KUNIT_EXPECT_TRUE(test, wqs.leak_report().some((l) => l.includes("delayed work leaky_dwork on test_leaky still armed")));
  await wqs.cancel_delayed_work_sync(dw);
  await wqs.destroy_workqueue(wq);
  KUNIT_EXPECT_EQ(test, wqs.leak_report().length, 0);
}

async function flush_workqueue_from_own_work_is_reported(test: kunit): Promise<void> {
  kunit_expect_splat(test, "lockdep");
  kunit_expect_splat(test, "warn");
  const wqs = wqs_of(test);
  const wq = wqs.alloc_workqueue("test_selfflush", 0, 0);
  let returned = false;
  const w = new work_struct(async () => {
    await wqs.flush_workqueue(wq);
    returned = true;
  }, "self_flusher");
  wqs.queue_work(wq, w);
  KUNIT_EXPECT_TRUE(test, await wqs.flush_work(w));
  KUNIT_EXPECT_TRUE(test, returned, "the self-flush must return instead of hanging");
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "workqueue: flush_workqueue() from a work item on the same workqueue test_selfflush"));
  KUNIT_EXPECT_TRUE(test, test.k.splats.some((s) => s.kind === "lockdep"), "lockdep saw (wq_completion) taken recursively");
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "(wq_completion)test_selfflush"));
  KUNIT_EXPECT_EQ(test, test.k.sched.deadlocks, 0);
  await wqs.destroy_workqueue(wq);
}

async function flush_work_of_itself_is_reported(test: kunit): Promise<void> {
  kunit_expect_splat(test, "lockdep");
  kunit_expect_splat(test, "warn");
  const wqs = wqs_of(test);
  let ret: boolean | null = null;
  const w = new work_struct(async (work) => {
    ret = await wqs.flush_work(work);
  }, "flushes_itself");
  wqs.schedule_work(w);
  await wqs.flush_work(w);
  KUNIT_EXPECT_EQ(test, ret, false);
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "workqueue: flush_work() from a work item on the same workqueue events:"));
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "(work_completion)(flushes_itself)"));
}

async function mem_reclaim_worker_flushing_plain_wq_warns(test: kunit): Promise<void> {
  kunit_expect_splat(test, "warn");
  const wqs = wqs_of(test);
  const reclaim = wqs.alloc_workqueue("test_reclaim", WQ_MEM_RECLAIM, 0);
  const plain = new work_struct(() => {}, "plain_work");
  const w = new work_struct(async () => {
    wqs.schedule_work(plain);
    await wqs.flush_work(plain);
  }, "reclaim_work");
  wqs.queue_work(reclaim, w);
  await wqs.flush_work(w);
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "workqueue: WQ_MEM_RECLAIM test_reclaim:reclaim_work is flushing !WQ_MEM_RECLAIM events:plain_work"));
  await wqs.destroy_workqueue(reclaim);
}

/** A worker that ran a work item idles: the next item runs on the same kworker (same pid). */
async function idle_worker_runs_the_next_item(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  const wq = wqs.alloc_workqueue("test_idle", 0, 0);
  const pids: number[] = [];
  const w = new work_struct(() => {
    pids.push(test.k.current.pid);
  }, "idle_work");
  for (let i = 0; i < 3; i++) {
    wqs.queue_work(wq, w);
    await wqs.flush_work(w);
  }
  KUNIT_EXPECT_EQ(test, pids.length, 3);
  KUNIT_EXPECT_EQ(test, new Set(pids).size, 1, `one kworker for all three: ${pids.join(",")}`);
  KUNIT_EXPECT_EQ(test, wq.workers.size, 1, "the worker stays, idle");
  KUNIT_EXPECT_EQ(test, wq.idle.length, 1);
  await wqs.destroy_workqueue(wq);
  KUNIT_EXPECT_EQ(test, wq.workers.size, 0, "destroy_workqueue stopped it");
  KUNIT_EXPECT_FALSE(test, test.k.sched.describe_contexts().some((c) => c.includes(`[${pids[0]}]`) || c.includes(`-${pids[0]}`)),
    "no live task left of it");
}

/** Many items sleeping at once need many workers; afterwards only MAX_IDLE_WORKERS stay. */
async function at_most_max_idle_workers_stay(test: kunit): Promise<void> {
  const wqs = wqs_of(test);
  const wq = wqs.alloc_workqueue("test_idle_max", 0, 0);
  const works = Array.from({ length: 5 }, (_, i) => new work_struct(() => test.k.msleep(1), `sleeper${i}`));
  for (const w of works) wqs.queue_work(wq, w);
  await wqs.flush_workqueue(wq);
  await test.k.msleep(1);
  KUNIT_EXPECT_EQ(test, wq.idle.length, MAX_IDLE_WORKERS);
  KUNIT_EXPECT_EQ(test, wq.workers.size, MAX_IDLE_WORKERS, "the others exited");
  await wqs.destroy_workqueue(wq);
}

export const workqueue_test_suite: kunit_suite = {
  name: "workqueue",
  test_cases: [
    KUNIT_CASE(queue_runs_once_in_a_kworker),
    KUNIT_CASE(flush_work_of_idle_work_is_false),
    KUNIT_CASE(flush_work_waits_for_last_queueing),
    KUNIT_CASE(cancel_of_pending_work_prevents_it),
    KUNIT_CASE(cancel_work_sync_waits_for_running_work),
    KUNIT_CASE(queue_refused_while_cancel_waits),
    KUNIT_CASE(delayed_work_fires_at_its_jiffy),
    KUNIT_CASE(mod_delayed_work_rearms),
    KUNIT_CASE(cancel_delayed_work_before_deadline),
    KUNIT_CASE(flush_delayed_work_runs_it_now),
    KUNIT_CASE(ordered_workqueue_keeps_queue_order),
    KUNIT_CASE(max_active_limits_concurrency),
    KUNIT_CASE(queue_work_from_softirq_timer),
    KUNIT_CASE(drain_runs_chained_work),
    KUNIT_CASE(undestroyed_workqueue_is_a_leak),
    KUNIT_CASE(flush_workqueue_from_own_work_is_reported),
    KUNIT_CASE(flush_work_of_itself_is_reported),
    KUNIT_CASE(mem_reclaim_worker_flushing_plain_wq_warns),
    KUNIT_CASE(idle_worker_runs_the_next_item),
    KUNIT_CASE(at_most_max_idle_workers_stay),
  ],
};

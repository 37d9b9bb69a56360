// KUnit port of the kernel's dma-fence selftests (drivers/dma-buf/st-dma-fence.c): sanity,
// signalling once, callbacks added before and after signalling, removal, status and error,
// waits that time out and waits that are woken by a timer, the stub fence, and a race between
// signalling from a timer and adding callbacks from two threads. Plus the reservation object:
// replacing a fence of the same context and waiting for writers vs readers.

import {
  KUNIT_ASSERT_EQ, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_GE, KUNIT_EXPECT_TRUE, type kunit,
  type kunit_suite,
} from "../../../../lib/kunit/test.ts";
import {
  dma_fence, dma_fence_add_callback, dma_fence_cb, dma_fence_context_alloc, dma_fence_enable_sw_signaling, dma_fence_get_status,
  dma_fence_get_stub, dma_fence_init, dma_fence_is_signaled, dma_fence_put, dma_fence_remove_callback, dma_fence_set_error,
  dma_fence_signal, dma_fence_wait, dma_fence_wait_timeout, dma_fence_is_later, type dma_fence_ops,
} from "../../../../drivers/dma-buf/dma-fence.ts";
import {
  dma_resv, dma_resv_add_fence, dma_resv_fences, dma_resv_fini, dma_resv_lock, dma_resv_reserve_fences, dma_resv_test_signaled,
  dma_resv_unlock, dma_resv_usage, dma_resv_wait_timeout,
} from "../../../../drivers/dma-buf/dma-resv.ts";
import { spinlock_t } from "../../../../kernel/locking/spinlock.ts";
import { timer_list } from "../../../../kernel/time/timer.ts";
import { msecs_to_jiffies } from "../../../../kernel/time/timekeeping.ts";
import { MAX_SCHEDULE_TIMEOUT } from "../../../../kernel/sched/wait.ts";
import type { Kernel } from "../../../../kernel/kernel.ts";

const ENOENT = 2;
const EINVAL = 22;
const EIO = 5;

const mock_ops: dma_fence_ops = {
  get_driver_name: () => "mock",
  get_timeline_name: () => "mock",
};

let released = 0;
const counting_ops: dma_fence_ops = { ...mock_ops, release: () => void released++ };

function mock_fence(k: Kernel, ops: dma_fence_ops = mock_ops): dma_fence {
  return dma_fence_init(k, ops, new spinlock_t(k, "mock_fence"), dma_fence_context_alloc(k, 1), 0);
}

/** Signals `f` from a timer `ms` of virtual time from now. */
function signal_later(k: Kernel, f: dma_fence, ms: number): void {
  k.timers.add_timer_in(new timer_list(() => void dma_fence_signal(f), "fence_signal"), ms * 1e6);
}

function sanity(test: kunit): void {
  released = 0;
  const f = mock_fence(test.k, counting_ops);
  dma_fence_enable_sw_signaling(f);
  dma_fence_signal(f);
  dma_fence_put(f);
  KUNIT_EXPECT_EQ(test, released, 1, "the last put releases the fence");
}

function signaling(test: kunit): void {
  const f = mock_fence(test.k);
  dma_fence_enable_sw_signaling(f);
  KUNIT_EXPECT_FALSE(test, dma_fence_is_signaled(f), "fresh fence is unsignalled");
  KUNIT_EXPECT_EQ(test, dma_fence_signal(f), 0, "first signal");
  KUNIT_EXPECT_TRUE(test, dma_fence_is_signaled(f));
  KUNIT_EXPECT_EQ(test, dma_fence_signal(f), -EINVAL, "second signal is refused");
  KUNIT_EXPECT_GE(test, f.timestamp, 0);
  dma_fence_put(f);
}

function add_callback(test: kunit): void {
  const f = mock_fence(test.k);
  const cb = new dma_fence_cb();
  let seen = 0;
  KUNIT_ASSERT_EQ(test, dma_fence_add_callback(f, cb, () => void seen++), 0);
  KUNIT_EXPECT_EQ(test, seen, 0, "not yet");
  dma_fence_signal(f);
  KUNIT_EXPECT_EQ(test, seen, 1, "runs on signal, once");
  dma_fence_signal(f);
  KUNIT_EXPECT_EQ(test, seen, 1);
  dma_fence_put(f);
}

function late_add_callback(test: kunit): void {
  const f = mock_fence(test.k);
  dma_fence_enable_sw_signaling(f);
  dma_fence_signal(f);
  let seen = 0;
  KUNIT_EXPECT_EQ(test, dma_fence_add_callback(f, new dma_fence_cb(), () => void seen++), -ENOENT, "too late: -ENOENT");
  KUNIT_EXPECT_EQ(test, seen, 0, "and the callback never runs");
  dma_fence_put(f);
}

function rm_callback(test: kunit): void {
  const f = mock_fence(test.k);
  const cb = new dma_fence_cb();
  let seen = 0;
  KUNIT_ASSERT_EQ(test, dma_fence_add_callback(f, cb, () => void seen++), 0);
  KUNIT_EXPECT_TRUE(test, dma_fence_remove_callback(f, cb), "removed while pending");
  dma_fence_signal(f);
  KUNIT_EXPECT_EQ(test, seen, 0, "a removed callback does not run");
  dma_fence_put(f);
}

function late_rm_callback(test: kunit): void {
  const f = mock_fence(test.k);
  const cb = new dma_fence_cb();
  let seen = 0;
  KUNIT_ASSERT_EQ(test, dma_fence_add_callback(f, cb, () => void seen++), 0);
  dma_fence_signal(f);
  KUNIT_EXPECT_EQ(test, seen, 1);
  KUNIT_EXPECT_FALSE(test, dma_fence_remove_callback(f, cb), "nothing to remove after signalling");
  dma_fence_put(f);
}

function status(test: kunit): void {
  const f = mock_fence(test.k);
  dma_fence_enable_sw_signaling(f);
  KUNIT_EXPECT_EQ(test, dma_fence_get_status(f), 0, "pending");
  dma_fence_signal(f);
  KUNIT_EXPECT_EQ(test, dma_fence_get_status(f), 1, "signalled");
  dma_fence_put(f);
}

function error(test: kunit): void {
  const f = mock_fence(test.k);
  dma_fence_enable_sw_signaling(f);
  dma_fence_set_error(f, -EIO);
  KUNIT_EXPECT_EQ(test, dma_fence_get_status(f), 0, "an error is not reported before signalling");
  dma_fence_signal(f);
  KUNIT_EXPECT_EQ(test, dma_fence_get_status(f), -EIO, "then it is the status");
  dma_fence_put(f);
}

async function wait(test: kunit): Promise<void> {
  const f = mock_fence(test.k);
  dma_fence_enable_sw_signaling(f);
  KUNIT_EXPECT_EQ(test, await dma_fence_wait_timeout(f, false, 0), 0, "zero timeout on a pending fence");
  KUNIT_EXPECT_EQ(test, await dma_fence_wait_timeout(f, false, 2), 0, "short timeout expires");
  dma_fence_signal(f);
  KUNIT_EXPECT_EQ(test, await dma_fence_wait_timeout(f, false, 0), 1, "signalled: 1 even with no time");
  KUNIT_EXPECT_EQ(test, await dma_fence_wait_timeout(f, false, 5), 5, "signalled: the whole timeout is left");
  KUNIT_EXPECT_EQ(test, await dma_fence_wait_timeout(f, false, -1), -EINVAL, "negative timeouts are invalid");
  dma_fence_put(f);
}

async function wait_timeout(test: kunit): Promise<void> {
  const f = mock_fence(test.k);
  signal_later(test.k, f, 5);
  const t0 = test.k.ktime_get();
  const left = await dma_fence_wait_timeout(f, false, msecs_to_jiffies(1000));
  KUNIT_EXPECT_TRUE(test, left > 0 && left < msecs_to_jiffies(1000), "woken by the signal with time left");
  KUNIT_EXPECT_GE(test, test.k.ktime_get() - t0, 5e6, "not before the signal");
  KUNIT_EXPECT_TRUE(test, test.k.ktime_get() - t0 < 20e6, "promptly after it");
  KUNIT_EXPECT_EQ(test, await dma_fence_wait(f, false), 0);
  dma_fence_put(f);

  // A fence nobody signals: the wait ends by timeout, after (about) that long.
  const g = mock_fence(test.k);
  const t1 = test.k.ktime_get();
  KUNIT_EXPECT_EQ(test, await dma_fence_wait_timeout(g, false, msecs_to_jiffies(100)), 0, "timed out");
  KUNIT_EXPECT_GE(test, test.k.ktime_get() - t1, 99e6);
  dma_fence_signal(g);
  dma_fence_put(g);
}

function stub(test: kunit): void {
  const f = dma_fence_get_stub(test.k);
  KUNIT_EXPECT_TRUE(test, dma_fence_is_signaled(f), "the stub is always signalled");
  dma_fence_put(f);
}

function ordering(test: kunit): void {
  const k = test.k;
  const ctx = dma_fence_context_alloc(k, 2);
  const lock = new spinlock_t(k, "mock_fence");
  const a = dma_fence_init(k, mock_ops, lock, ctx, 1);
  const b = dma_fence_init(k, mock_ops, lock, ctx, 2);
  const c = dma_fence_init(k, mock_ops, lock, ctx + 1, 3);
  KUNIT_EXPECT_TRUE(test, dma_fence_is_later(b, a));
  KUNIT_EXPECT_FALSE(test, dma_fence_is_later(a, b));
  KUNIT_EXPECT_FALSE(test, dma_fence_is_later(c, a), "different timelines are not ordered");
  for (const f of [a, b, c]) {
    dma_fence_signal(f);
    dma_fence_put(f);
  }
}

/** Two threads add callbacks while a timer signals: every callback runs exactly once or is refused. */
async function race_signal_callback(test: kunit): Promise<void> {
  const k = test.k;
  for (let pass = 0; pass < 20; pass++) {
    const f = mock_fence(k);
    let ran = 0;
    let refused = 0;
    signal_later(k, f, 1);
    const adder = (name: string) => k.sched.kthread_run(async () => {
      for (let i = 0; i < 10; i++) {
        const r = dma_fence_add_callback(f, new dma_fence_cb(), () => void ran++);
        if (r === -ENOENT) refused++;
        await k.usleep_range(50 + pass * 7, 150 + pass * 7);
      }
    }, name);
    await k.sched.wait_for(Promise.all([adder("fence_adder_a"), adder("fence_adder_b")]), "fence adders");
    await dma_fence_wait(f, false);
    KUNIT_EXPECT_EQ(test, ran + refused, 20, `pass ${pass}: each callback ran once or was refused`);
    dma_fence_put(f);
  }
}

async function resv_replace_and_wait(test: kunit): Promise<void> {
  const k = test.k;
  const resv = new dma_resv(k);
  const ctx = dma_fence_context_alloc(k, 1);
  const lock = new spinlock_t(k, "mock_fence");
  const w1 = dma_fence_init(k, mock_ops, lock, ctx, 1);
  const w2 = dma_fence_init(k, mock_ops, lock, ctx, 2);
  const r1 = mock_fence(k);
  KUNIT_ASSERT_EQ(test, await dma_resv_lock(resv), 0);
  dma_resv_reserve_fences(resv, 3);
  dma_resv_add_fence(resv, w1, dma_resv_usage.DMA_RESV_USAGE_WRITE);
  dma_resv_add_fence(resv, w2, dma_resv_usage.DMA_RESV_USAGE_WRITE);
  dma_resv_add_fence(resv, r1, dma_resv_usage.DMA_RESV_USAGE_READ);
  dma_resv_unlock(resv);
  KUNIT_EXPECT_EQ(test, dma_resv_fences(resv, dma_resv_usage.DMA_RESV_USAGE_WRITE).length, 1, "the later write fence of the timeline replaced the earlier");
  KUNIT_EXPECT_EQ(test, dma_resv_fences(resv, dma_resv_usage.DMA_RESV_USAGE_READ).length, 2, "readers see writers and readers");
  signal_later(k, w2, 3);
  KUNIT_EXPECT_TRUE(test, (await dma_resv_wait_timeout(resv, dma_resv_usage.DMA_RESV_USAGE_WRITE, false, msecs_to_jiffies(100))) > 0,
    "waiting for the writer");
  KUNIT_EXPECT_TRUE(test, dma_resv_test_signaled(resv, dma_resv_usage.DMA_RESV_USAGE_WRITE));
  KUNIT_EXPECT_FALSE(test, dma_resv_test_signaled(resv, dma_resv_usage.DMA_RESV_USAGE_READ), "the reader is still busy");
  KUNIT_EXPECT_EQ(test, await dma_resv_wait_timeout(resv, dma_resv_usage.DMA_RESV_USAGE_READ, false, msecs_to_jiffies(10)), 0, "times out on the reader");
  dma_fence_signal(r1);
  KUNIT_EXPECT_TRUE(test, (await dma_resv_wait_timeout(resv, dma_resv_usage.DMA_RESV_USAGE_READ, false, MAX_SCHEDULE_TIMEOUT)) > 0);
  dma_fence_signal(w1);
  dma_resv_fini(resv);
  for (const f of [w1, w2, r1]) dma_fence_put(f);
}

export const dma_fence_test_suite: kunit_suite = {
  name: "dma-fence",
  machine: { name: "dma-fence", ram_size: 512 * 2 ** 20, gpus: [], iommu: false, seed: 0 },
  test_cases: [
    KUNIT_CASE(sanity),
    KUNIT_CASE(signaling),
    KUNIT_CASE(add_callback),
    KUNIT_CASE(late_add_callback),
    KUNIT_CASE(rm_callback),
    KUNIT_CASE(late_rm_callback),
    KUNIT_CASE(status),
    KUNIT_CASE(error),
    KUNIT_CASE(wait),
    KUNIT_CASE(wait_timeout),
    KUNIT_CASE(stub),
    KUNIT_CASE(ordering),
    KUNIT_CASE(race_signal_callback),
    KUNIT_CASE(resv_replace_and_wait),
  ],
};

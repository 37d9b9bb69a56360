// KUnit suite for mm/mmu_notifier.ts: the interval-notifier sequence protocol (read_begin,
// read_retry, set_seq, deferred insert/remove, read_begin blocking in an open window), event
// and range reporting on munmap, classic notifiers' start/end/release, get/put.

import type { mm_struct } from "../../../include/linux/mm_types.ts";
import { PAGE_SIZE } from "../../../include/linux/mm.ts";
import { EOVERFLOW } from "../../../include/uapi/asm-generic/errno.ts";
import {
  mmu_interval_notifier, mmu_interval_notifier_insert, mmu_interval_notifier_remove, mmu_interval_read_begin,
  mmu_interval_read_retry, mmu_interval_set_seq, mmu_notifier, mmu_notifier_register, mmu_notifier_unregister,
  mmu_notifier_range, mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
  mmu_notifier_get, mmu_notifier_put, MMU_NOTIFY_UNMAP, MMU_NOTIFY_CLEAR, MMU_NOTIFY_RELEASE,
  type mmu_interval_notifier_ops, type mmu_notifier_ops,
} from "../../../mm/mmu_notifier.ts";
import { __vm_munmap } from "../../../mm/mmap.ts";
import {
  KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_TRUE, KUNIT_EXPECT_FALSE, KUNIT_ASSERT_EQ, KUNIT_ASSERT_TRUE,
  type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";
import { new_mm, drop_mm, anon_map, poke } from "./util.ts";

interface Seen {
  event: number;
  start: number;
  end: number;
  seq: number;
}

/** An interval subscriber that records every invalidation and sets the seq, as drivers must. */
function recorder(): { ops: mmu_interval_notifier_ops; seen: Seen[] } {
  const seen: Seen[] = [];
  const ops: mmu_interval_notifier_ops = {
    invalidate(sub, range, cur_seq) {
      mmu_interval_set_seq(sub, cur_seq);
      seen.push({ event: range.event, start: range.start, end: range.end, seq: cur_seq });
      return true;
    },
  };
  return { ops, seen };
}

async function window(mm: mm_struct, start: number, end: number, inside: () => Promise<void>): Promise<void> {
  const r = new mmu_notifier_range();
  mmu_notifier_range_init(r, MMU_NOTIFY_CLEAR, 0, mm, start, end);
  await mmu_notifier_invalidate_range_start(r);
  await inside();
  await mmu_notifier_invalidate_range_end(r);
}

async function munmap_invalidates_with_unmap_event(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 8);
  await poke(mm, addr, new Uint8Array([1]));
  const { ops, seen } = recorder();
  const sub = new mmu_interval_notifier();
  KUNIT_ASSERT_EQ(test, await mmu_interval_notifier_insert(sub, mm, addr, 8 * PAGE_SIZE, ops), 0);
  const seq = await mmu_interval_read_begin(sub);
  KUNIT_EXPECT_EQ(test, seq % 2, 1);
  KUNIT_ASSERT_EQ(test, await __vm_munmap(mm, addr + 2 * PAGE_SIZE, 2 * PAGE_SIZE, true), 0);
  KUNIT_ASSERT_EQ(test, seen.length, 1);
  KUNIT_EXPECT_EQ(test, seen[0]!.event, MMU_NOTIFY_UNMAP);
  KUNIT_EXPECT_EQ(test, seen[0]!.start, addr + 2 * PAGE_SIZE);
  KUNIT_EXPECT_EQ(test, seen[0]!.end, addr + 4 * PAGE_SIZE);
  KUNIT_EXPECT_EQ(test, seen[0]!.seq % 2, 1);
  KUNIT_EXPECT_TRUE(test, mmu_interval_read_retry(sub, seq));
  const seq2 = await mmu_interval_read_begin(sub);
  KUNIT_EXPECT_FALSE(test, mmu_interval_read_retry(sub, seq2));
  await mmu_interval_notifier_remove(sub);
  await drop_mm(mm);
}

async function disjoint_invalidation_leaves_interval_alone(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 16);
  const { ops, seen } = recorder();
  const sub = new mmu_interval_notifier();
  await mmu_interval_notifier_insert(sub, mm, addr, 4 * PAGE_SIZE, ops);
  const seq = await mmu_interval_read_begin(sub);
  await __vm_munmap(mm, addr + 8 * PAGE_SIZE, 4 * PAGE_SIZE, true);
  KUNIT_EXPECT_EQ(test, seen.length, 0);
  KUNIT_EXPECT_FALSE(test, mmu_interval_read_retry(sub, seq));
  await mmu_interval_notifier_remove(sub);
  await drop_mm(mm);
}

/** A reader between read_begin and read_retry loses the race to an invalidation. */
async function racing_invalidation_fails_read_retry(test: kunit): Promise<void> {
  const s = test.k.sched;
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 4);
  const { ops } = recorder();
  const sub = new mmu_interval_notifier();
  await mmu_interval_notifier_insert(sub, mm, addr, 4 * PAGE_SIZE, ops);
  const order: string[] = [];
  let retry = false;
  const reader = s.kthread_run(async () => {
    const seq = await mmu_interval_read_begin(sub);
    order.push("read_begin");
    await test.k.msleep(1); // the "device page-table update" takes time
    retry = mmu_interval_read_retry(sub, seq);
    order.push("read_retry");
  }, "reader");
  const invalidator = s.kthread_run(async () => {
    await window(mm, addr, addr + PAGE_SIZE, async () => {
      order.push("invalidate");
    });
  }, "invalidator");
  await s.wait_for(Promise.all([reader, invalidator]));
  KUNIT_EXPECT_EQ(test, order.join(","), "read_begin,invalidate,read_retry");
  KUNIT_EXPECT_TRUE(test, retry);
  await mmu_interval_notifier_remove(sub);
  await drop_mm(mm);
}

/** read_begin sleeps while a window that already invalidated its interval is open. */
async function read_begin_waits_for_open_window(test: kunit): Promise<void> {
  const s = test.k.sched;
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 4);
  const { ops } = recorder();
  const sub = new mmu_interval_notifier();
  await mmu_interval_notifier_insert(sub, mm, addr, 4 * PAGE_SIZE, ops);
  let begun_at = -1;
  let window_closed_at = -1;
  const inv = s.kthread_run(() => window(mm, addr, addr + PAGE_SIZE, async () => {
    await test.k.msleep(3);
    window_closed_at = test.k.ktime_get();
  }), "invalidator");
  const rd = s.kthread_run(async () => {
    await test.k.msleep(1); // start reading while the window is open
    const seq = await mmu_interval_read_begin(sub);
    begun_at = test.k.ktime_get();
    KUNIT_EXPECT_FALSE(test, mmu_interval_read_retry(sub, seq));
  }, "reader");
  await s.wait_for(Promise.all([inv, rd]));
  KUNIT_EXPECT_TRUE(test, begun_at >= window_closed_at, `begun ${begun_at} closed ${window_closed_at}`);
  KUNIT_EXPECT_EQ(test, window_closed_at, 3_000_000);
  await mmu_interval_notifier_remove(sub);
  await drop_mm(mm);
}

/** An insert during an overlapping open window is deferred to the window's end. */
async function insert_during_window_is_deferred(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 4);
  const a = recorder();
  const first = new mmu_interval_notifier();
  await mmu_interval_notifier_insert(first, mm, addr, 4 * PAGE_SIZE, a.ops);
  const b = recorder();
  const late = new mmu_interval_notifier();
  await window(mm, addr, addr + PAGE_SIZE, async () => {
    KUNIT_EXPECT_EQ(test, await mmu_interval_notifier_insert(late, mm, addr, PAGE_SIZE, b.ops), 0);
    KUNIT_EXPECT_FALSE(test, late.in_tree);
    KUNIT_EXPECT_TRUE(test, late.deferred);
  });
  KUNIT_EXPECT_TRUE(test, late.in_tree);
  KUNIT_EXPECT_EQ(test, b.seen.length, 0); // it missed the window it was inserted in
  await window(mm, addr, addr + PAGE_SIZE, async () => {});
  KUNIT_EXPECT_EQ(test, b.seen.length, 1);
  await mmu_interval_notifier_remove(late);
  await mmu_interval_notifier_remove(first);
  await drop_mm(mm);
}

/** remove() during a window that touched the interval waits until the window closes. */
async function remove_waits_for_window_end(test: kunit): Promise<void> {
  const s = test.k.sched;
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 4);
  const { ops } = recorder();
  const sub = new mmu_interval_notifier();
  await mmu_interval_notifier_insert(sub, mm, addr, 4 * PAGE_SIZE, ops);
  let removed_at = -1;
  const inv = s.kthread_run(() => window(mm, addr, addr + PAGE_SIZE, () => test.k.msleep(5)), "invalidator");
  const rm = s.kthread_run(async () => {
    await test.k.msleep(1);
    await mmu_interval_notifier_remove(sub);
    removed_at = test.k.ktime_get();
  }, "remover");
  await s.wait_for(Promise.all([inv, rm]));
  KUNIT_EXPECT_EQ(test, removed_at, 5_000_000);
  KUNIT_EXPECT_FALSE(test, sub.in_tree);
  await drop_mm(mm);
}

async function zero_length_insert_is_eoverflow(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const { ops } = recorder();
  KUNIT_EXPECT_EQ(test, await mmu_interval_notifier_insert(new mmu_interval_notifier(), mm, 0x10000, 0, ops), -EOVERFLOW);
  await drop_mm(mm);
}

/** Classic subscribers see start/end around munmap and release at exit, before pages go. */
async function classic_notifier_start_end_release(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 2);
  await poke(mm, addr, new Uint8Array([7]));
  const log: string[] = [];
  const ops: mmu_notifier_ops = {
    invalidate_range_start: (_s, r) => {
      log.push(`start:${r.event}:${(r.end - r.start) / PAGE_SIZE}`);
      return 0;
    },
    invalidate_range_end: (_s, r) => {
      log.push(`end:${r.event}`);
    },
    invalidate_range: () => {
      log.push("secondary-tlb");
    },
    release: (_s, m) => {
      log.push(`release:rss=${m.rss_stat.reduce((a, b) => a + b, 0)}`);
    },
  };
  const sub = new mmu_notifier(ops);
  KUNIT_ASSERT_EQ(test, await mmu_notifier_register(sub, mm), 0);
  await __vm_munmap(mm, addr, PAGE_SIZE, true);
  KUNIT_EXPECT_EQ(test, log.slice(0, 3).join(","), `start:${MMU_NOTIFY_UNMAP}:1,secondary-tlb,end:${MMU_NOTIFY_UNMAP}`);
  log.length = 0;
  await poke(mm, addr + PAGE_SIZE, new Uint8Array([8]));
  await drop_mm(mm); // exit: release comes first, while the page is still mapped
  KUNIT_EXPECT_TRUE(test, log[0] === "release:rss=1", log.join(","));
  KUNIT_EXPECT_FALSE(test, sub.linked);
  // The registration pinned the mm_struct (mmgrab); unregister after exit drops it.
  await mmu_notifier_unregister(sub, mm);
  KUNIT_EXPECT_EQ(test, log.filter((l) => l.startsWith("release")).length, 1);
}

async function interval_release_event_at_exit(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 2);
  const { ops, seen } = recorder();
  const sub = new mmu_interval_notifier();
  await mmu_interval_notifier_insert(sub, mm, addr, 2 * PAGE_SIZE, ops);
  // The notifier's own mmgrab keeps the mm_struct for the removal after exit.
  await drop_mm(mm);
  // RELEASE first; exit_mmap's unmap then reaches the still-inserted interval again.
  KUNIT_EXPECT_EQ(test, seen.map((x) => x.event).join(","), `${MMU_NOTIFY_RELEASE},${MMU_NOTIFY_UNMAP}`);
  await mmu_interval_notifier_remove(sub);
}

async function get_put_shares_one_subscription(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  let allocs = 0;
  let frees = 0;
  const ops: mmu_notifier_ops = {
    alloc_notifier: () => {
      allocs++;
      return new mmu_notifier(ops);
    },
    free_notifier: () => {
      frees++;
    },
  };
  const a = await mmu_notifier_get(ops, mm);
  const b = await mmu_notifier_get(ops, mm);
  KUNIT_ASSERT_TRUE(test, typeof a !== "number" && a === b);
  KUNIT_EXPECT_EQ(test, allocs, 1);
  mmu_notifier_put(a as mmu_notifier);
  KUNIT_EXPECT_EQ(test, frees, 0);
  mmu_notifier_put(a as mmu_notifier);
  KUNIT_EXPECT_EQ(test, frees, 1);
  await drop_mm(mm);
}

async function unregister_calls_release_once(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  let releases = 0;
  const sub = new mmu_notifier({ release: () => void releases++ });
  await mmu_notifier_register(sub, mm);
  await mmu_notifier_unregister(sub, mm);
  KUNIT_EXPECT_EQ(test, releases, 1);
  await drop_mm(mm);
  KUNIT_EXPECT_EQ(test, releases, 1); // exit does not call it again
}

export const mmu_notifier_test_suite: kunit_suite = {
  name: "mmu_notifier",
  test_cases: [
    KUNIT_CASE(munmap_invalidates_with_unmap_event),
    KUNIT_CASE(disjoint_invalidation_leaves_interval_alone),
    KUNIT_CASE(racing_invalidation_fails_read_retry),
    KUNIT_CASE(read_begin_waits_for_open_window),
    KUNIT_CASE(insert_during_window_is_deferred),
    KUNIT_CASE(remove_waits_for_window_end),
    KUNIT_CASE(zero_length_insert_is_eoverflow),
    KUNIT_CASE(classic_notifier_start_end_release),
    KUNIT_CASE(interval_release_event_at_exit),
    KUNIT_CASE(get_put_shares_one_subscription),
    KUNIT_CASE(unregister_calls_release_once),
  ],
};

// KUnit suites for the physical side of mm: sparse physical memory (hw/physmem.ts), the buddy
// allocator (mm/page_alloc.ts: accounting, __GFP_ZERO, fail_page_alloc and its report, bad
// frees, leak reports), the sparse memmap (mm/sparse.ts) and the page lock (mm/filemap.ts).

import {
  KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_TRUE, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_NULL, KUNIT_ASSERT_NOT_NULL,
  KUNIT_EXPECT_GT, KUNIT_EXPECT_PTR_EQ, kunit_expect_splat, type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";
import { GiB } from "../../../kernel/machine_spec.ts";
import { PAGE_ALLOC, PHYSMEM, FAULT_INJECT } from "../../../kernel/tokens.ts";
import { GFP_KERNEL, GFP_ATOMIC, __GFP_NOWARN, __GFP_ZERO } from "../../../include/linux/gfp_types.ts";
import { alloc_pages, alloc_page, __free_pages, __free_page } from "../../../mm/page_alloc.ts";
import { pfn_to_page, pfn_valid } from "../../../mm/sparse.ts";
import { NODE_DATA, MAX_ORDER } from "../../../include/linux/mmzone.ts";
import { ZERO_PAGE, is_zero_pfn, get_page, put_page, PAGE_SIZE } from "../../../include/linux/mm.ts";
import { PageReserved, PageLocked } from "../../../include/linux/page-flags.ts";
import { lock_page, trylock_page, unlock_page, wait_on_page_locked } from "../../../mm/filemap.ts";
import { completion, init_completion, complete, wait_for_completion } from "../../../kernel/sched/completion.ts";

function physmem_is_sparse(test: kunit): void {
  const mem = test.machine.symbol(PHYSMEM);
  const before = mem.stats().touched_frames;
  const far = 2 ** 45;
  KUNIT_EXPECT_EQ(test, mem.read32(far), 0);
  KUNIT_EXPECT_EQ(test, mem.read(far, 16).every((b) => b === 0), true);
  mem.fill(far, PAGE_SIZE, 0);
  KUNIT_EXPECT_EQ(test, mem.stats().touched_frames, before, "reads and zero fills allocate nothing");
  mem.write32(far + 8, 0xdeadbeef);
  KUNIT_EXPECT_EQ(test, mem.read32(far + 8), 0xdeadbeef);
  KUNIT_EXPECT_EQ(test, mem.stats().touched_frames, before + 1);
  // A copy across a frame boundary, and free page reporting dropping the backing again.
  mem.write(far + PAGE_SIZE - 2, new Uint8Array([1, 2, 3, 4]));
  mem.copy(far + 3 * PAGE_SIZE, far + PAGE_SIZE - 2, 4);
  KUNIT_EXPECT_EQ(test, Array.from(mem.read(far + 3 * PAGE_SIZE, 4)).join(","), "1,2,3,4");
  for (let i = 0; i < 4; i++) mem.report_free_frame(far / PAGE_SIZE + i);
  KUNIT_EXPECT_EQ(test, mem.stats().touched_frames, before);
  KUNIT_EXPECT_EQ(test, mem.read32(far + 8), 0);
}

function alloc_free_accounting(test: kunit): void {
  const pa = test.machine.symbol(PAGE_ALLOC);
  const free0 = pa.nr_free_pages();
  const p = alloc_pages(test.k, GFP_KERNEL | __GFP_ZERO, 3);
  KUNIT_ASSERT_NOT_NULL(test, p);
  KUNIT_EXPECT_EQ(test, p!.pfn % 8, 0, "an order-3 block is naturally aligned");
  KUNIT_EXPECT_EQ(test, p!._refcount, 1);
  KUNIT_EXPECT_EQ(test, pa.nr_free_pages(), free0 - 8);
  const mem = test.machine.symbol(PHYSMEM);
  mem.write(p!.pfn * PAGE_SIZE, new Uint8Array([9, 9, 9]));
  __free_pages(p!, 3);
  KUNIT_EXPECT_EQ(test, pa.nr_free_pages(), free0);
  KUNIT_EXPECT_FALSE(test, mem.is_backed(p!.pfn), "a freed frame is reported to the host");
  const q = alloc_pages(test.k, GFP_KERNEL, 3)!;
  KUNIT_EXPECT_EQ(test, mem.read(q.pfn * PAGE_SIZE, 3).every((b) => b === 0), true);
  __free_pages(q, 3);
}

function buddies_merge_back(test: kunit): void {
  const pa = test.machine.symbol(PAGE_ALLOC);
  const free0 = pa.nr_free_pages();
  const pages = Array.from({ length: 100 }, (_, i) => alloc_pages(test.k, GFP_KERNEL, i % 3)!);
  for (const [i, p] of pages.entries()) if (i % 2) __free_pages(p, i % 3);
  for (const [i, p] of pages.entries()) if (!(i % 2)) __free_pages(p, i % 3);
  KUNIT_EXPECT_EQ(test, pa.nr_free_pages(), free0);
  KUNIT_EXPECT_EQ(test, pa.zone.free_area.reduce((n, a) => n + a.nr_free, 0), 0, "everything merged back into the untouched tail");
}

function fail_page_alloc_injection(test: kunit): void {
  const fi = test.machine.symbol(FAULT_INJECT);
  const fp = fi.fail_page_alloc;
  fp.attr.probability = 100;
  fp.attr.times = 2;
  fp.attr.verbose = 0;
  fp.ignore_gfp_reclaim = false;
  KUNIT_EXPECT_NULL(test, alloc_pages(test.k, GFP_KERNEL, 1));
  KUNIT_EXPECT_TRUE(test, test.machine.dmesg().some((l) => l.includes("page allocation failure: order:1, mode:0xcc0(GFP_KERNEL)")));
  const lines = test.machine.dmesg().length;
  KUNIT_EXPECT_NULL(test, alloc_pages(test.k, GFP_KERNEL | __GFP_NOWARN, 2));
  KUNIT_EXPECT_FALSE(test, test.machine.dmesg().slice(lines).some((l) => l.includes("page allocation failure")), "__GFP_NOWARN is silent");
  // times is used up, and min-order 1 lets order-0 through anyway.
  const p = alloc_pages(test.k, GFP_KERNEL, 1);
  KUNIT_ASSERT_NOT_NULL(test, p);
  __free_pages(p!, 1);
  fp.attr.probability = 0;
}

function too_large_order_warns(test: kunit): void {
  kunit_expect_splat(test, "warn");
  KUNIT_EXPECT_NULL(test, alloc_pages(test.k, GFP_KERNEL, MAX_ORDER + 1));
  KUNIT_EXPECT_NULL(test, alloc_pages(test.k, GFP_KERNEL | __GFP_NOWARN, MAX_ORDER + 1));
}

function exhaustion_fails_cleanly(test: kunit): void {
  const pa = test.machine.symbol(PAGE_ALLOC);
  const got = [];
  for (let p = alloc_pages(test.k, GFP_KERNEL | __GFP_NOWARN, MAX_ORDER); p; p = alloc_pages(test.k, GFP_KERNEL | __GFP_NOWARN, MAX_ORDER)) got.push(p);
  KUNIT_EXPECT_GT(test, got.length, 0);
  KUNIT_EXPECT_TRUE(test, pa.nr_free_pages() < 2 ** MAX_ORDER * 2, "RAM is used up");
  for (const p of got) __free_pages(p, MAX_ORDER);
}

function zero_page_and_memmap(test: kunit): void {
  const zp = ZERO_PAGE(test.k);
  KUNIT_EXPECT_TRUE(test, is_zero_pfn(zp.pfn));
  KUNIT_EXPECT_TRUE(test, PageReserved(zp));
  KUNIT_EXPECT_TRUE(test, pfn_valid(test.k, zp.pfn));
  KUNIT_EXPECT_FALSE(test, pfn_valid(test.k, test.machine.spec.ram_size! / PAGE_SIZE));
  const p = alloc_page(test.k, GFP_ATOMIC)!;
  KUNIT_EXPECT_PTR_EQ(test, pfn_to_page(test.k, p.pfn), p, "one struct page per pfn");
  get_page(p);
  put_page(p);
  KUNIT_EXPECT_EQ(test, p._refcount, 1);
  put_page(p);
  KUNIT_EXPECT_EQ(test, test.machine.symbol(PAGE_ALLOC).is_allocated(p.pfn), false, "the last put frees the page");
}

function bad_free_is_reported(test: kunit): void {
  kunit_expect_splat(test, "bug");
  const p = alloc_page(test.k, GFP_KERNEL)!;
  p._mapcount = 0; // still mapped somewhere
  __free_page(p);
  KUNIT_EXPECT_TRUE(test, test.machine.dmesg().some((l) => l.includes("BUG: Bad page state")));
  p._mapcount = -1;
  p._refcount = 1;
  __free_page(p);
}

function leak_report_names_pages(test: kunit): void {
  const pa = test.machine.symbol(PAGE_ALLOC);
  const p = alloc_page(test.k, GFP_KERNEL)!;
  const report = pa.leak_report();
  KUNIT_EXPECT_TRUE(test, report.length > 0 && report[0]!.includes("still allocated"));
  KUNIT_EXPECT_TRUE(test, report.some((l) => l.includes(`pfn:0x${p.pfn.toString(16)}`)));
  __free_page(p);
  KUNIT_EXPECT_EQ(test, pa.leak_report().length, 0);
}

async function lock_page_sleeps_and_wakes(test: kunit): Promise<void> {
  const k = test.k;
  const p = alloc_page(k, GFP_KERNEL)!;
  const events: string[] = [];
  KUNIT_EXPECT_TRUE(test, trylock_page(p));
  KUNIT_EXPECT_FALSE(test, trylock_page(p));
  const done = new completion(k, "lock test");
  init_completion(done);
  void k.sched.kthread_run(async () => {
    events.push("waiting");
    await lock_page(p);
    events.push("locked");
    unlock_page(p);
    complete(done);
  }, "locker");
  void k.sched.kthread_run(async () => {
    await wait_on_page_locked(p);
    events.push("saw unlocked");
    complete(done);
  }, "watcher");
  await k.msleep(1);
  KUNIT_EXPECT_EQ(test, events.join(","), "waiting", "lock_page sleeps while the page is locked");
  events.push("unlock");
  unlock_page(p);
  await wait_for_completion(done);
  await wait_for_completion(done);
  KUNIT_EXPECT_EQ(test, events[0], "waiting");
  KUNIT_EXPECT_EQ(test, events[1], "unlock");
  KUNIT_EXPECT_TRUE(test, events.includes("locked") && events.includes("saw unlocked"));
  KUNIT_EXPECT_FALSE(test, PageLocked(p));
  __free_page(p);
}

export const page_alloc_suite: kunit_suite = {
  name: "page_alloc",
  test_cases: [
    KUNIT_CASE(physmem_is_sparse),
    KUNIT_CASE(alloc_free_accounting),
    KUNIT_CASE(buddies_merge_back),
    KUNIT_CASE(fail_page_alloc_injection),
    KUNIT_CASE(too_large_order_warns),
    KUNIT_CASE(exhaustion_fails_cleanly),
    KUNIT_CASE(zero_page_and_memmap),
    KUNIT_CASE(bad_free_is_reported),
    KUNIT_CASE(leak_report_names_pages),
    KUNIT_CASE(lock_page_sleeps_and_wakes),
  ],
  machine: { name: "page_alloc", ram_size: 64 * 1024 * 1024, gpus: [], iommu: false, seed: 0 },
};

function huge_machine_boots_lazily(test: kunit): void {
  const pa = test.machine.symbol(PAGE_ALLOC);
  KUNIT_EXPECT_EQ(test, pa.totalram_pages(), 2 ** 28 - 2);
  KUNIT_EXPECT_TRUE(test, NODE_DATA(test.k).mem_section.nr_struct_pages < 16, "no struct page built at boot");
  KUNIT_EXPECT_EQ(test, test.machine.symbol(PHYSMEM).stats().touched_frames, 0);
  const p = alloc_pages(test.k, GFP_KERNEL, MAX_ORDER)!;
  KUNIT_EXPECT_TRUE(test, pfn_valid(test.k, 2 ** 28 - 1));
  __free_pages(p, MAX_ORDER);
}

export const page_alloc_1tib_suite: kunit_suite = {
  name: "page_alloc_1tib",
  test_cases: [KUNIT_CASE(huge_machine_boots_lazily)],
  machine: { name: "1tib", ram_size: 1024 * GiB, gpus: [], iommu: false, seed: 0 },
};

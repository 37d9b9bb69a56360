// KUnit suite for ZONE_DEVICE pagemaps (mm/memremap.ts): memremap_pages' checks and errnos,
// struct pages of device memory (refcount 0 while free), zone_device_page_init, page_free
// exactly once per free, memunmap_pages blocking until the last device page is freed from
// another thread, and a CPU touch of device-private memory going through migrate_to_ram.

import {
  KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_TRUE, KUNIT_EXPECT_FALSE, KUNIT_ASSERT_EQ, KUNIT_ASSERT_GE,
  kunit_expect_splat, type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";
import { IOMEM, MEMREMAP } from "../../../kernel/tokens.ts";
import { EINVAL, ENOMEM, ENXIO } from "../../../include/uapi/asm-generic/errno.ts";
import {
  dev_pagemap, MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT, is_device_private_page, is_zone_device_page, type dev_pagemap_ops,
} from "../../../include/linux/memremap.ts";
import { PAGE_SIZE, put_page, VM_FAULT_SIGBUS } from "../../../include/linux/mm.ts";
import { PageLocked } from "../../../include/linux/page-flags.ts";
import { pfn_to_page, pfn_valid } from "../../../mm/sparse.ts";
import { zone_device_page_init, get_dev_pagemap, put_dev_pagemap } from "../../../mm/memremap.ts";
import { unlock_page } from "../../../mm/filemap.ts";
import { completion, init_completion, complete, wait_for_completion, try_wait_for_completion } from "../../../kernel/sched/completion.ts";
import { vma_lookup, sys_munmap } from "../../../mm/mmap.ts";
import { mmap_read_lock, mmap_read_unlock } from "../../../include/linux/mmap_lock.ts";
import { cpu_user_read } from "../../../arch/x86/mm/fault.ts";
import type { page } from "../../../include/linux/mm_types.ts";
import { new_mm, anon_map, poke, ToyDevice } from "./util.ts";
import { mmput } from "../../../kernel/fork.ts";

const REGION = 512 * PAGE_SIZE;

function private_ops(frees: page[]): dev_pagemap_ops {
  return { page_free: (p) => void frees.push(p), migrate_to_ram: async () => VM_FAULT_SIGBUS };
}

function region(test: kunit, name: string): number {
  const r = test.machine.symbol(IOMEM).request_free_mem_region(REGION, name);
  if (typeof r === "number") throw new Error(`request_free_mem_region: ${r}`);
  return r.start;
}

function pgmap_at(start: number, type: 1 | 2, ops: dev_pagemap_ops | null, owner: unknown, len = REGION): dev_pagemap {
  const pg = new dev_pagemap();
  pg.type = type;
  pg.ranges = [{ start, end: start + len - 1 }];
  pg.nr_range = 1;
  pg.ops = ops;
  pg.owner = owner;
  return pg;
}

async function memremap_errnos(test: kunit): Promise<void> {
  kunit_expect_splat(test, "warn");
  const mr = test.machine.symbol(MEMREMAP);
  const start = region(test, "errnos");
  const frees: page[] = [];
  const none = pgmap_at(start, MEMORY_DEVICE_PRIVATE, private_ops(frees), test);
  none.nr_range = 0;
  KUNIT_EXPECT_EQ(test, await mr.memremap_pages(none), -EINVAL, "nr_range 0");
  KUNIT_EXPECT_EQ(test, await mr.memremap_pages(pgmap_at(start, MEMORY_DEVICE_PRIVATE, { page_free: () => {} }, test)), -EINVAL, "no migrate_to_ram");
  KUNIT_EXPECT_EQ(test, await mr.memremap_pages(pgmap_at(start, MEMORY_DEVICE_PRIVATE, { migrate_to_ram: async () => 0 }, test)), -EINVAL, "no page_free");
  KUNIT_EXPECT_EQ(test, await mr.memremap_pages(pgmap_at(start, MEMORY_DEVICE_PRIVATE, private_ops(frees), null)), -EINVAL, "no owner");
  KUNIT_EXPECT_EQ(test, await mr.memremap_pages(pgmap_at(start, MEMORY_DEVICE_COHERENT, {}, test)), -EINVAL, "coherent without page_free");
  KUNIT_EXPECT_EQ(test, await mr.memremap_pages(pgmap_at(0x100000, MEMORY_DEVICE_COHERENT, private_ops(frees), test)), -ENXIO, "System RAM");
  KUNIT_EXPECT_EQ(test, await mr.memremap_pages(pgmap_at(start + PAGE_SIZE, MEMORY_DEVICE_PRIVATE, private_ops(frees), test, REGION - PAGE_SIZE)), -EINVAL, "not subsection aligned");
  const ok = pgmap_at(start, MEMORY_DEVICE_PRIVATE, private_ops(frees), test);
  KUNIT_ASSERT_EQ(test, await mr.memremap_pages(ok), start);
  KUNIT_EXPECT_EQ(test, await mr.memremap_pages(pgmap_at(start, MEMORY_DEVICE_PRIVATE, private_ops(frees), test)), -ENOMEM, "conflicting pagemap");
  KUNIT_EXPECT_EQ(test, mr.pagemaps().length, 1, "failed calls leave nothing registered");
  await mr.memunmap_pages(ok);
  KUNIT_EXPECT_FALSE(test, pfn_valid(test.k, start / PAGE_SIZE));
  test.machine.symbol(IOMEM).release_mem_region(start, REGION);
}

async function page_free_once_per_free(test: kunit): Promise<void> {
  const mr = test.machine.symbol(MEMREMAP);
  const start = region(test, "pagefree");
  const frees: page[] = [];
  const pg = pgmap_at(start, MEMORY_DEVICE_PRIVATE, private_ops(frees), test);
  KUNIT_ASSERT_GE(test, await mr.memremap_pages(pg), 0);
  const p = pfn_to_page(test.k, start / PAGE_SIZE + 3);
  KUNIT_EXPECT_TRUE(test, is_zone_device_page(p) && is_device_private_page(p));
  KUNIT_EXPECT_EQ(test, p._refcount, 0, "a free device-private page has refcount 0");
  KUNIT_EXPECT_TRUE(test, p.pgmap === pg);
  const refs = pg.ref.count;
  for (let round = 1; round <= 3; round++) {
    zone_device_page_init(p);
    KUNIT_EXPECT_EQ(test, p._refcount, 1);
    KUNIT_EXPECT_TRUE(test, PageLocked(p));
    KUNIT_EXPECT_EQ(test, pg.ref.count, refs + 1, "an allocated page holds a pgmap reference");
    unlock_page(p);
    put_page(p);
    KUNIT_EXPECT_EQ(test, frees.length, round, "page_free runs exactly once per free");
    KUNIT_EXPECT_EQ(test, pg.ref.count, refs);
    KUNIT_EXPECT_EQ(test, p.mapping, null);
  }
  const got = get_dev_pagemap(test.k, start / PAGE_SIZE + 9);
  KUNIT_EXPECT_TRUE(test, got === pg);
  put_dev_pagemap(got);
  await mr.memunmap_pages(pg);
  KUNIT_EXPECT_EQ(test, get_dev_pagemap(test.k, start / PAGE_SIZE + 9), null);
  test.machine.symbol(IOMEM).release_mem_region(start, REGION);
}

async function memunmap_waits_for_last_put(test: kunit): Promise<void> {
  const k = test.k;
  const mr = test.machine.symbol(MEMREMAP);
  const start = region(test, "waiter");
  const frees: page[] = [];
  const pg = pgmap_at(start, MEMORY_DEVICE_PRIVATE, private_ops(frees), test);
  KUNIT_ASSERT_GE(test, await mr.memremap_pages(pg), 0);
  const p = pfn_to_page(k, start / PAGE_SIZE);
  zone_device_page_init(p);
  unlock_page(p);
  const done = new completion(k, "memunmap done");
  init_completion(done);
  void k.sched.kthread_run(async () => {
    await mr.memunmap_pages(pg);
    complete(done);
  }, "unmapper");
  await k.msleep(5);
  KUNIT_EXPECT_FALSE(test, try_wait_for_completion(done), "memunmap_pages blocks while a page is allocated");
  KUNIT_EXPECT_EQ(test, frees.length, 0);
  put_page(p);
  await wait_for_completion(done);
  KUNIT_EXPECT_EQ(test, frees.length, 1);
  KUNIT_EXPECT_EQ(test, mr.pagemaps().length, 0);
  test.machine.symbol(IOMEM).release_mem_region(start, REGION);
}

/** A CPU read of device-private memory faults into migrate_to_ram and gets the data back. */
async function cpu_touch_migrates_back(test: kunit): Promise<void> {
  const k = test.k;
  const dev = new ToyDevice(test.machine);
  KUNIT_ASSERT_EQ(test, await dev.init(8), 0);
  const mm = new_mm(k);
  const a = await anon_map(mm, 4);
  await poke(mm, a, new Uint8Array([0x5a]));
  await poke(mm, a + PAGE_SIZE, new Uint8Array([0x6b]));
  await mmap_read_lock(mm);
  const moved = await dev.migrate_to_device(vma_lookup(mm, a)!, a, 4);
  mmap_read_unlock(mm);
  KUNIT_EXPECT_EQ(test, moved, 4);
  KUNIT_EXPECT_EQ(test, dev.allocated, 4);
  const t = k.current;
  t.mm = mm;
  try {
    KUNIT_EXPECT_EQ(test, (await cpu_user_read(k, a, 1))[0], 0x5a);
    KUNIT_EXPECT_EQ(test, (await cpu_user_read(k, a + PAGE_SIZE, 1))[0], 0x6b);
  } finally {
    t.mm = null;
  }
  KUNIT_EXPECT_EQ(test, dev.migrate_to_ram_calls, 2);
  KUNIT_EXPECT_EQ(test, dev.allocated, 2, "the faulting thread's put_page freed each migrated page");
  KUNIT_ASSERT_EQ(test, await sys_munmap(mm, a, 4 * PAGE_SIZE), 0);
  KUNIT_EXPECT_EQ(test, dev.allocated, 0, "munmap drops device-private references at once");
  for (const n of dev.page_free_calls.values()) KUNIT_EXPECT_EQ(test, n, 1);
  await mmput(mm);
  await dev.fini();
}

export const memremap_suite: kunit_suite = {
  name: "memremap",
  test_cases: [
    KUNIT_CASE(memremap_errnos),
    KUNIT_CASE(page_free_once_per_free),
    KUNIT_CASE(memunmap_waits_for_last_put),
    KUNIT_CASE(cpu_touch_migrates_back),
  ],
};


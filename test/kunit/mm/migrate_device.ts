// KUnit suite for mm/migrate_device.ts with a toy device-private driver written in the test:
// populated, empty, zero-page and locked pages; partial collection; the CPU fault back through
// migrate_to_ram; page_free exactly once per device page; memunmap_pages waiting for the last
// device page; eviction by pfn; fork sharing of device-private entries; argument errors.

import type { mm_struct, page } from "../../../include/linux/mm_types.ts";
import { PAGE_SIZE, VM_FAULT_ERROR } from "../../../include/linux/mm.ts";
import { EINVAL } from "../../../include/uapi/asm-generic/errno.ts";
import { mmap_read_lock, mmap_read_unlock } from "../../../include/linux/mmap_lock.ts";
import { vma_lookup } from "../../../mm/mmap.ts";
import { pte_present, pte_pfn, pte_write } from "../../../arch/x86/include/asm/pgtable.ts";
import {
  pte_to_swp_entry, is_device_private_entry, is_writable_device_private_entry, swp_offset_pfn, is_swap_pte,
} from "../../../include/linux/swapops.ts";
import { pfn_to_page } from "../../../mm/sparse.ts";
import { NODE_DATA } from "../../../include/linux/mmzone.ts";
import { dup_mm } from "../../../kernel/fork.ts";
import {
  migrate_vma, migrate_vma_setup, migrate_vma_pages, migrate_vma_finalize, migrate_device_range,
  migrate_device_pages, migrate_device_finalize, migrate_pfn, migrate_pfn_to_pfn, mpfn_test, MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_VALID, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_SYSTEM, MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
} from "../../../mm/migrate_device.ts";
import { alloc_page } from "../../../mm/page_alloc.ts";
import { GFP_HIGHUSER_MOVABLE } from "../../../include/linux/gfp_types.ts";
import { lock_page } from "../../../mm/filemap.ts";
import {
  KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_TRUE, KUNIT_EXPECT_FALSE, KUNIT_ASSERT_EQ, KUNIT_ASSERT_TRUE,
  KUNIT_EXPECT_MEMEQ, type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";
import { new_mm, drop_mm, anon_map, poke, peek, touch, pte_of, fill, ToyDevice, with_page_locked } from "./util.ts";

function device_pfn_at(mm: mm_struct, addr: number): number | null {
  const pte = pte_of(mm, addr);
  if (!pte || !is_swap_pte(pte)) return null;
  const e = pte_to_swp_entry(pte);
  return is_device_private_entry(e) ? swp_offset_pfn(e) : null;
}

async function to_device(mm: mm_struct, dev: ToyDevice, addr: number, npages: number): Promise<number> {
  await mmap_read_lock(mm);
  try {
    return await dev.migrate_to_device(vma_lookup(mm, addr)!, addr, npages);
  } finally {
    mmap_read_unlock(mm);
  }
}

async function setup(test: kunit, npages = 16): Promise<{ dev: ToyDevice; mm: mm_struct }> {
  const dev = new ToyDevice(test.machine);
  KUNIT_ASSERT_EQ(test, await dev.init(npages), 0);
  return { dev, mm: new_mm(test.k) };
}

async function teardown(dev: ToyDevice, mm: mm_struct): Promise<void> {
  await drop_mm(mm);
  await dev.fini();
}

async function populated_pages_move_and_fault_back(test: kunit): Promise<void> {
  const { dev, mm } = await setup(test);
  const addr = await anon_map(mm, 4);
  for (let i = 0; i < 4; i++) await poke(mm, addr + i * PAGE_SIZE, fill(PAGE_SIZE, 0x10 + i));
  const free_before = NODE_DATA(test.k).page_alloc.nr_free_pages();
  KUNIT_ASSERT_EQ(test, await to_device(mm, dev, addr, 4), 4);
  KUNIT_EXPECT_EQ(test, dev.allocated, 4);
  // The system pages went back to the allocator; the CPU sees writable device-private entries.
  KUNIT_EXPECT_EQ(test, NODE_DATA(test.k).page_alloc.nr_free_pages(), free_before + 4);
  for (let i = 0; i < 4; i++) {
    const e = pte_to_swp_entry(pte_of(mm, addr + i * PAGE_SIZE)!);
    KUNIT_EXPECT_TRUE(test, is_writable_device_private_entry(e));
  }
  // A CPU read faults each page back with its data.
  for (let i = 0; i < 4; i++) {
    KUNIT_EXPECT_MEMEQ(test, await peek(mm, addr + i * PAGE_SIZE, PAGE_SIZE), fill(PAGE_SIZE, 0x10 + i), PAGE_SIZE);
  }
  KUNIT_EXPECT_EQ(test, dev.migrate_to_ram_calls, 4);
  KUNIT_EXPECT_EQ(test, dev.allocated, 0);
  KUNIT_EXPECT_EQ(test, [...dev.page_free_calls.values()].join(","), "1,1,1,1");
  KUNIT_EXPECT_TRUE(test, pte_write(pte_of(mm, addr)!));
  await teardown(dev, mm);
}

async function holes_and_zero_page_are_populated(test: kunit): Promise<void> {
  const { dev, mm } = await setup(test);
  const addr = await anon_map(mm, 2);
  await touch(mm, addr + PAGE_SIZE, false); // page 1 maps the zero page, page 0 is a hole
  const args = new migrate_vma();
  args.vma = vma_lookup(mm, addr);
  args.start = addr;
  args.end = addr + 2 * PAGE_SIZE;
  args.src = [7, 7];
  args.dst = [7, 7];
  args.pgmap_owner = dev;
  args.flags = MIGRATE_VMA_SELECT_SYSTEM;
  await mmap_read_lock(mm);
  KUNIT_ASSERT_EQ(test, await migrate_vma_setup(args), 0);
  KUNIT_EXPECT_EQ(test, args.src.join(","), `${MIGRATE_PFN_MIGRATE},${MIGRATE_PFN_MIGRATE}`);
  KUNIT_EXPECT_EQ(test, args.dst.join(","), "0,0");
  KUNIT_EXPECT_EQ(test, args.cpages, 2);
  KUNIT_EXPECT_EQ(test, args.npages, 2);
  for (let i = 0; i < 2; i++) {
    const d = dev.alloc()!;
    dev.data.set(d.pfn, new Uint8Array(PAGE_SIZE));
    args.dst[i] = migrate_pfn(d.pfn);
  }
  await migrate_vma_pages(args);
  KUNIT_EXPECT_EQ(test, args.src.join(","), `${MIGRATE_PFN_MIGRATE},${MIGRATE_PFN_MIGRATE}`);
  migrate_vma_finalize(args);
  mmap_read_unlock(mm);
  KUNIT_EXPECT_TRUE(test, device_pfn_at(mm, addr) !== null && device_pfn_at(mm, addr + PAGE_SIZE) !== null);
  KUNIT_EXPECT_MEMEQ(test, await peek(mm, addr + PAGE_SIZE, 64), fill(64, 0), 64);
  await teardown(dev, mm);
}

/** Locked pages are skipped (best effort): partial collection, the rest migrates. */
async function locked_page_is_skipped(test: kunit): Promise<void> {
  const { dev, mm } = await setup(test);
  const addr = await anon_map(mm, 3);
  for (let i = 0; i < 3; i++) await poke(mm, addr + i * PAGE_SIZE, fill(8, i + 1));
  const victim = pfn_to_page(test.k, pte_pfn(pte_of(mm, addr + PAGE_SIZE)!));
  const moved = await with_page_locked(victim, () => to_device(mm, dev, addr, 3));
  KUNIT_EXPECT_EQ(test, moved, 2);
  KUNIT_EXPECT_TRUE(test, device_pfn_at(mm, addr) !== null);
  KUNIT_EXPECT_TRUE(test, pte_present(pte_of(mm, addr + PAGE_SIZE)!));
  KUNIT_EXPECT_EQ(test, pte_pfn(pte_of(mm, addr + PAGE_SIZE)!), victim.pfn);
  KUNIT_EXPECT_TRUE(test, device_pfn_at(mm, addr + 2 * PAGE_SIZE) !== null);
  KUNIT_EXPECT_MEMEQ(test, await peek(mm, addr + PAGE_SIZE, 8), fill(8, 2), 8);
  await teardown(dev, mm);
}

/** A destination the driver leaves empty keeps the source page mapped and intact. */
async function unfilled_destination_restores_source(test: kunit): Promise<void> {
  const { dev, mm } = await setup(test);
  const addr = await anon_map(mm, 2);
  await poke(mm, addr, fill(8, 0xaa));
  await poke(mm, addr + PAGE_SIZE, fill(8, 0xbb));
  const pfn0 = pte_pfn(pte_of(mm, addr)!);
  const args = new migrate_vma();
  args.vma = vma_lookup(mm, addr);
  args.start = addr;
  args.end = addr + 2 * PAGE_SIZE;
  args.src = [0, 0];
  args.dst = [0, 0];
  args.pgmap_owner = dev;
  args.flags = MIGRATE_VMA_SELECT_SYSTEM;
  await mmap_read_lock(mm);
  KUNIT_ASSERT_EQ(test, await migrate_vma_setup(args), 0);
  KUNIT_EXPECT_TRUE(test, mpfn_test(args.src[0]!, MIGRATE_PFN_VALID) && mpfn_test(args.src[0]!, MIGRATE_PFN_WRITE));
  KUNIT_EXPECT_EQ(test, migrate_pfn_to_pfn(args.src[0]!), pfn0);
  const d = dev.alloc()!;
  dev.data.set(d.pfn, fill(PAGE_SIZE, 0xbb));
  args.dst[1] = migrate_pfn(d.pfn) + MIGRATE_PFN_WRITE;
  await migrate_vma_pages(args);
  KUNIT_EXPECT_FALSE(test, mpfn_test(args.src[0]!, MIGRATE_PFN_MIGRATE));
  KUNIT_EXPECT_TRUE(test, mpfn_test(args.src[1]!, MIGRATE_PFN_MIGRATE));
  migrate_vma_finalize(args);
  mmap_read_unlock(mm);
  KUNIT_EXPECT_EQ(test, pte_pfn(pte_of(mm, addr)!), pfn0);
  KUNIT_EXPECT_TRUE(test, pte_write(pte_of(mm, addr)!));
  KUNIT_EXPECT_MEMEQ(test, await peek(mm, addr, 8), fill(8, 0xaa), 8);
  KUNIT_EXPECT_EQ(test, device_pfn_at(mm, addr + PAGE_SIZE), d.pfn);
  await teardown(dev, mm);
}

async function setup_rejects_bad_arguments(test: kunit): Promise<void> {
  const { dev, mm } = await setup(test);
  const addr = await anon_map(mm, 2);
  const vma = vma_lookup(mm, addr)!;
  const mk = (start: number, end: number, fault_page: page | null = null) => {
    const a = new migrate_vma();
    a.vma = vma;
    a.start = start;
    a.end = end;
    a.src = [0, 0, 0];
    a.dst = [0, 0, 0];
    a.flags = MIGRATE_VMA_SELECT_SYSTEM;
    a.fault_page = fault_page;
    return a;
  };
  await mmap_read_lock(mm);
  KUNIT_EXPECT_EQ(test, await migrate_vma_setup(mk(addr, addr)), -EINVAL);
  KUNIT_EXPECT_EQ(test, await migrate_vma_setup(mk(addr - PAGE_SIZE, addr + PAGE_SIZE)), -EINVAL);
  KUNIT_EXPECT_EQ(test, await migrate_vma_setup(mk(addr, addr + 3 * PAGE_SIZE)), -EINVAL);
  const sys = alloc_page(test.k, GFP_HIGHUSER_MOVABLE)!;
  KUNIT_EXPECT_EQ(test, await migrate_vma_setup(mk(addr, addr + PAGE_SIZE, sys)), -EINVAL);
  const noarrays = mk(addr, addr + PAGE_SIZE);
  noarrays.src = null;
  KUNIT_EXPECT_EQ(test, await migrate_vma_setup(noarrays), -EINVAL);
  mmap_read_unlock(mm);
  const { __free_page } = await import("../../../mm/page_alloc.ts");
  __free_page(sys);
  await teardown(dev, mm);
}

/** memunmap_pages() returns only after the last device page has been freed. */
async function memunmap_waits_for_last_page(test: kunit): Promise<void> {
  const s = test.k.sched;
  const { dev, mm } = await setup(test);
  const addr = await anon_map(mm, 2);
  await poke(mm, addr, fill(8, 1));
  KUNIT_ASSERT_EQ(test, await to_device(mm, dev, addr, 1), 1);
  const order: string[] = [];
  const unmapper = s.kthread_run(async () => {
    await dev.fini();
    order.push(`memunmap done at ${test.k.ktime_get()}`);
  }, "unloader");
  const user = s.kthread_run(async () => {
    await test.k.msleep(2);
    order.push("exit");
    await drop_mm(mm); // zaps the device-private entry: the last device page is freed
  }, "user");
  await s.wait_for(Promise.all([unmapper, user]));
  KUNIT_EXPECT_EQ(test, order.join(","), "exit,memunmap done at 2000000");
  KUNIT_EXPECT_EQ(test, [...dev.page_free_calls.values()].join(","), "1");
}

/** Eviction by pfn: every allocated device page goes back to system memory. */
async function evict_by_pfn_range(test: kunit): Promise<void> {
  const { dev, mm } = await setup(test, 4);
  const addr = await anon_map(mm, 3);
  for (let i = 0; i < 3; i++) await poke(mm, addr + i * PAGE_SIZE, fill(8, 0x30 + i));
  KUNIT_ASSERT_EQ(test, await to_device(mm, dev, addr, 3), 3);
  const n = dev.npages;
  const src = new Array(n).fill(0);
  const dst = new Array(n).fill(0);
  KUNIT_ASSERT_EQ(test, await migrate_device_range(test.k, src, dev.first_pfn, n), 0);
  KUNIT_EXPECT_EQ(test, src.filter((e) => mpfn_test(e, MIGRATE_PFN_MIGRATE)).length, 3); // the free page is skipped
  const physmem = NODE_DATA(test.k).physmem;
  for (let i = 0; i < n; i++) {
    if (!mpfn_test(src[i], MIGRATE_PFN_MIGRATE)) continue;
    const p = alloc_page(test.k, GFP_HIGHUSER_MOVABLE)!;
    await lock_page(p);
    physmem.write(p.pfn * PAGE_SIZE, dev.data.get(migrate_pfn_to_pfn(src[i]))!);
    dst[i] = migrate_pfn(p.pfn) + (mpfn_test(src[i], MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
  }
  await migrate_device_pages(test.k, src, dst, n);
  migrate_device_finalize(test.k, src, dst, n);
  KUNIT_EXPECT_EQ(test, dev.allocated, 0);
  for (let i = 0; i < 3; i++) {
    KUNIT_EXPECT_TRUE(test, pte_present(pte_of(mm, addr + i * PAGE_SIZE)!));
    KUNIT_EXPECT_MEMEQ(test, await peek(mm, addr + i * PAGE_SIZE, 8), fill(8, 0x30 + i), 8);
  }
  KUNIT_EXPECT_EQ(test, dev.migrate_to_ram_calls, 0);
  await teardown(dev, mm);
}

/** Fork shares device-private entries read-only; the page goes only with the last mapping. */
async function fork_shares_device_page_until_last_unmap(test: kunit): Promise<void> {
  const { dev, mm } = await setup(test);
  const addr = await anon_map(mm, 1);
  await poke(mm, addr, fill(8, 0x77));
  KUNIT_ASSERT_EQ(test, await to_device(mm, dev, addr, 1), 1);
  const child = await dup_mm(mm);
  KUNIT_ASSERT_TRUE(test, child !== null);
  const pfn = device_pfn_at(mm, addr)!;
  KUNIT_EXPECT_EQ(test, device_pfn_at(child!, addr), pfn);
  KUNIT_EXPECT_FALSE(test, is_writable_device_private_entry(pte_to_swp_entry(pte_of(mm, addr)!)));
  KUNIT_EXPECT_FALSE(test, is_writable_device_private_entry(pte_to_swp_entry(pte_of(child!, addr)!)));
  await drop_mm(mm);
  KUNIT_EXPECT_EQ(test, dev.page_free_calls.get(pfn) ?? 0, 0);
  KUNIT_EXPECT_MEMEQ(test, await peek(child!, addr, 8), fill(8, 0x77), 8);
  KUNIT_EXPECT_EQ(test, dev.page_free_calls.get(pfn), 1);
  KUNIT_EXPECT_FALSE(test, (await touch(child!, addr, true)) & VM_FAULT_ERROR);
  await drop_mm(child!);
  await dev.fini();
}

/** Device pages of another owner are invisible to a SELECT_DEVICE_PRIVATE migration. */
async function foreign_owner_pages_not_collected(test: kunit): Promise<void> {
  const { dev, mm } = await setup(test);
  const addr = await anon_map(mm, 1);
  await poke(mm, addr, fill(8, 3));
  KUNIT_ASSERT_EQ(test, await to_device(mm, dev, addr, 1), 1);
  const args = new migrate_vma();
  args.vma = vma_lookup(mm, addr);
  args.start = addr;
  args.end = addr + PAGE_SIZE;
  args.src = [0];
  args.dst = [0];
  args.pgmap_owner = "another driver";
  args.flags = MIGRATE_VMA_SELECT_DEVICE_PRIVATE;
  await mmap_read_lock(mm);
  KUNIT_EXPECT_EQ(test, await migrate_vma_setup(args), 0);
  mmap_read_unlock(mm);
  KUNIT_EXPECT_EQ(test, args.src[0], 0);
  KUNIT_EXPECT_EQ(test, args.cpages, 0);
  KUNIT_EXPECT_TRUE(test, device_pfn_at(mm, addr) !== null);
  await teardown(dev, mm);
}

export const migrate_device_test_suite: kunit_suite = {
  name: "migrate_device",
  test_cases: [
    KUNIT_CASE(populated_pages_move_and_fault_back),
    KUNIT_CASE(holes_and_zero_page_are_populated),
    KUNIT_CASE(locked_page_is_skipped),
    KUNIT_CASE(unfilled_destination_restores_source),
    KUNIT_CASE(setup_rejects_bad_arguments),
    KUNIT_CASE(memunmap_waits_for_last_page),
    KUNIT_CASE(evict_by_pfn_range),
    KUNIT_CASE(fork_shares_device_page_until_last_unmap),
    KUNIT_CASE(foreign_owner_pages_not_collected),
  ],
};

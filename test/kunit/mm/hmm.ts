// KUnit suite for mm/hmm.ts: hmm_range_fault results per PTE kind (none, zero page, present
// read-only and writable, device-private of the caller and of another owner, no VMA, PROT_NONE),
// fault requests, -EPERM/-EFAULT/-EBUSY, all under the interval-notifier protocol.

import type { mm_struct } from "../../../include/linux/mm_types.ts";
import { PAGE_SIZE, ZERO_PAGE_PFN } from "../../../include/linux/mm.ts";
import { EBUSY, EFAULT, EPERM } from "../../../include/uapi/asm-generic/errno.ts";
import { PROT_READ, PROT_NONE } from "../../../include/uapi/asm-generic/mman-common.ts";
import {
  hmm_range, hmm_range_fault, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, HMM_PFN_ERROR,
  hmm_pfn_to_pfn, hmm_pfn_is_valid, hmm_pfn_is_write, hmm_pfn_is_error,
} from "../../../mm/hmm.ts";
import {
  mmu_interval_notifier, mmu_interval_notifier_insert, mmu_interval_notifier_remove, mmu_interval_read_begin,
  mmu_interval_set_seq, type mmu_interval_notifier_ops,
} from "../../../mm/mmu_notifier.ts";
import { mmap_read_lock, mmap_read_unlock } from "../../../include/linux/mmap_lock.ts";
import { vma_lookup, __vm_munmap } from "../../../mm/mmap.ts";
import { pte_pfn } from "../../../arch/x86/include/asm/pgtable.ts";
import {
  KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_TRUE, KUNIT_EXPECT_FALSE, KUNIT_ASSERT_EQ,
  type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";
import { new_mm, drop_mm, anon_map, poke, touch, pte_of, fill, ToyDevice } from "./util.ts";

const ops: mmu_interval_notifier_ops = {
  invalidate(sub, _range, cur_seq) {
    mmu_interval_set_seq(sub, cur_seq);
    return true;
  },
};

interface Mirror {
  sub: mmu_interval_notifier;
  range: hmm_range;
}

async function mirror(mm: mm_struct, start: number, npages: number, default_flags: number, owner: unknown = null): Promise<Mirror> {
  const sub = new mmu_interval_notifier();
  const ret = await mmu_interval_notifier_insert(sub, mm, start, npages * PAGE_SIZE, ops);
  if (ret) throw new Error(`insert ${ret}`);
  const range = new hmm_range();
  range.notifier = sub;
  range.start = start;
  range.end = start + npages * PAGE_SIZE;
  range.hmm_pfns = new Array(npages).fill(0);
  range.default_flags = default_flags;
  range.dev_private_owner = owner;
  return { sub, range };
}

/** One hmm_range_fault attempt under read_begin and the mmap read lock. */
async function attempt(mm: mm_struct, m: Mirror): Promise<number> {
  m.range.notifier_seq = await mmu_interval_read_begin(m.sub);
  await mmap_read_lock(mm);
  try {
    return await hmm_range_fault(m.range);
  } finally {
    mmap_read_unlock(mm);
  }
}

/** The driver loop: retry while an invalidation collides (-EBUSY), as dmirror does. */
async function snapshot(mm: mm_struct, m: Mirror): Promise<number> {
  for (let tries = 0; ; tries++) {
    const ret = await attempt(mm, m);
    if (ret !== -EBUSY || tries === 16) return ret;
  }
}

async function none_pte_reads_zero_without_fault(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 4);
  const m = await mirror(mm, addr, 4, 0);
  KUNIT_ASSERT_EQ(test, await snapshot(mm, m), 0);
  KUNIT_EXPECT_EQ(test, m.range.hmm_pfns.join(","), "0,0,0,0");
  await mmu_interval_notifier_remove(m.sub);
  await drop_mm(mm);
}

async function read_fault_maps_zero_page(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 2);
  const m = await mirror(mm, addr, 2, HMM_PFN_REQ_FAULT);
  KUNIT_ASSERT_EQ(test, await snapshot(mm, m), 0);
  for (const e of m.range.hmm_pfns) {
    KUNIT_EXPECT_TRUE(test, hmm_pfn_is_valid(e));
    KUNIT_EXPECT_FALSE(test, hmm_pfn_is_write(e));
    KUNIT_EXPECT_EQ(test, hmm_pfn_to_pfn(e), ZERO_PAGE_PFN);
  }
  await mmu_interval_notifier_remove(m.sub);
  await drop_mm(mm);
}

async function write_fault_gives_private_writable_pages(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 2);
  const m = await mirror(mm, addr, 2, HMM_PFN_REQ_FAULT + HMM_PFN_REQ_WRITE);
  KUNIT_ASSERT_EQ(test, await snapshot(mm, m), 0);
  for (let i = 0; i < 2; i++) {
    const e = m.range.hmm_pfns[i]!;
    KUNIT_EXPECT_TRUE(test, hmm_pfn_is_valid(e) && hmm_pfn_is_write(e));
    KUNIT_EXPECT_EQ(test, hmm_pfn_to_pfn(e), pte_pfn(pte_of(mm, addr + i * PAGE_SIZE)!));
  }
  KUNIT_EXPECT_TRUE(test, hmm_pfn_to_pfn(m.range.hmm_pfns[0]!) !== hmm_pfn_to_pfn(m.range.hmm_pfns[1]!));
  await mmu_interval_notifier_remove(m.sub);
  await drop_mm(mm);
}

async function populated_pages_snapshot_without_fault(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 3);
  await poke(mm, addr, fill(8, 1)); // writable page
  await touch(mm, addr + PAGE_SIZE, false); // zero page, read-only
  const m = await mirror(mm, addr, 3, 0);
  KUNIT_ASSERT_EQ(test, await snapshot(mm, m), 0);
  const [a, b, c] = m.range.hmm_pfns as [number, number, number];
  KUNIT_EXPECT_EQ(test, a, pte_pfn(pte_of(mm, addr)!) + HMM_PFN_VALID + HMM_PFN_WRITE);
  KUNIT_EXPECT_EQ(test, b, ZERO_PAGE_PFN + HMM_PFN_VALID);
  KUNIT_EXPECT_EQ(test, c, 0);
  await mmu_interval_notifier_remove(m.sub);
  await drop_mm(mm);
}

async function write_request_on_readonly_vma_is_eperm(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 1, PROT_READ);
  const m = await mirror(mm, addr, 1, HMM_PFN_REQ_FAULT + HMM_PFN_REQ_WRITE);
  KUNIT_EXPECT_EQ(test, await snapshot(mm, m), -EPERM);
  await mmu_interval_notifier_remove(m.sub);
  await drop_mm(mm);
}

async function no_vma_is_error_or_efault(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 3);
  KUNIT_ASSERT_EQ(test, await __vm_munmap(mm, addr + PAGE_SIZE, PAGE_SIZE, true), 0);
  const m = await mirror(mm, addr, 3, 0);
  KUNIT_ASSERT_EQ(test, await snapshot(mm, m), 0);
  KUNIT_EXPECT_TRUE(test, hmm_pfn_is_error(m.range.hmm_pfns[1]!));
  KUNIT_EXPECT_EQ(test, m.range.hmm_pfns[1], HMM_PFN_ERROR);
  m.range.default_flags = HMM_PFN_REQ_FAULT;
  KUNIT_EXPECT_EQ(test, await snapshot(mm, m), -EFAULT);
  await mmu_interval_notifier_remove(m.sub);
  await drop_mm(mm);
}

async function prot_none_vma_is_error(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 2, PROT_NONE);
  const m = await mirror(mm, addr, 2, 0);
  KUNIT_ASSERT_EQ(test, await snapshot(mm, m), 0);
  KUNIT_EXPECT_EQ(test, m.range.hmm_pfns.join(","), `${HMM_PFN_ERROR},${HMM_PFN_ERROR}`);
  m.range.default_flags = HMM_PFN_REQ_FAULT;
  KUNIT_EXPECT_EQ(test, await snapshot(mm, m), -EFAULT);
  await mmu_interval_notifier_remove(m.sub);
  await drop_mm(mm);
}

/** Per-page requests through pfn_flags_mask: only the requested page is faulted. */
async function per_page_requests_honour_mask(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 3);
  await touch(mm, addr + 2 * PAGE_SIZE, false); // builds the page table; page 2 maps the zero page
  const m = await mirror(mm, addr, 3, 0);
  m.range.pfn_flags_mask = HMM_PFN_REQ_FAULT + HMM_PFN_REQ_WRITE;
  m.range.hmm_pfns = [0, HMM_PFN_REQ_FAULT + HMM_PFN_REQ_WRITE, 0];
  KUNIT_ASSERT_EQ(test, await snapshot(mm, m), 0);
  KUNIT_EXPECT_TRUE(test, hmm_pfn_is_write(m.range.hmm_pfns[1]!));
  KUNIT_EXPECT_EQ(test, m.range.hmm_pfns[0], 0);
  // hmm_vma_fault() faults from the faulting page to the end of the walk chunk, as the kernel
  // does, so page 2 was write-faulted too (zero page replaced) and the restarted walk reports it.
  KUNIT_EXPECT_TRUE(test, hmm_pfn_is_valid(m.range.hmm_pfns[2]!) && hmm_pfn_is_write(m.range.hmm_pfns[2]!));
  await mmu_interval_notifier_remove(m.sub);
  await drop_mm(mm);
}

async function stale_seq_returns_ebusy(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 2);
  const m = await mirror(mm, addr, 2, HMM_PFN_REQ_FAULT);
  m.range.notifier_seq = await mmu_interval_read_begin(m.sub);
  await __vm_munmap(mm, addr + PAGE_SIZE, PAGE_SIZE, true); // invalidates the interval
  await mmap_read_lock(mm);
  const ret = await hmm_range_fault(m.range);
  mmap_read_unlock(mm);
  KUNIT_EXPECT_EQ(test, ret, -EBUSY);
  await mmu_interval_notifier_remove(m.sub);
  await drop_mm(mm);
}

async function device_private_pages_by_owner(test: kunit): Promise<void> {
  const dev = new ToyDevice(test.machine);
  KUNIT_ASSERT_EQ(test, await dev.init(8), 0);
  const mm = new_mm(test.k);
  const addr = await anon_map(mm, 2);
  await poke(mm, addr, fill(16, 0x5a));
  await mmap_read_lock(mm);
  const moved = await dev.migrate_to_device(vma_lookup(mm, addr)!, addr, 2);
  mmap_read_unlock(mm);
  KUNIT_ASSERT_EQ(test, moved, 2);

  // The owner sees its own device pfns, never faulted.
  const own = await mirror(mm, addr, 2, HMM_PFN_REQ_FAULT, dev);
  KUNIT_ASSERT_EQ(test, await snapshot(mm, own), 0);
  const dev_pfn = hmm_pfn_to_pfn(own.range.hmm_pfns[0]!);
  KUNIT_EXPECT_TRUE(test, dev_pfn >= dev.first_pfn && dev_pfn < dev.first_pfn + dev.npages);
  KUNIT_EXPECT_TRUE(test, hmm_pfn_is_write(own.range.hmm_pfns[0]!));
  KUNIT_EXPECT_EQ(test, dev.migrate_to_ram_calls, 0);

  // Another owner without a fault request sees nothing; with one, the pages come back to RAM.
  const other = await mirror(mm, addr, 2, 0, "someone else");
  KUNIT_ASSERT_EQ(test, await snapshot(mm, other), 0);
  KUNIT_EXPECT_EQ(test, other.range.hmm_pfns.join(","), "0,0");
  other.range.default_flags = HMM_PFN_REQ_FAULT;
  KUNIT_ASSERT_EQ(test, await snapshot(mm, other), 0);
  KUNIT_EXPECT_EQ(test, dev.migrate_to_ram_calls, 2);
  KUNIT_EXPECT_EQ(test, hmm_pfn_to_pfn(other.range.hmm_pfns[0]!), pte_pfn(pte_of(mm, addr)!));
  KUNIT_EXPECT_EQ(test, dev.allocated, 0);

  await mmu_interval_notifier_remove(own.sub);
  await mmu_interval_notifier_remove(other.sub);
  await drop_mm(mm);
  await dev.fini();
}

export const hmm_test_suite: kunit_suite = {
  name: "hmm",
  test_cases: [
    KUNIT_CASE(none_pte_reads_zero_without_fault),
    KUNIT_CASE(read_fault_maps_zero_page),
    KUNIT_CASE(write_fault_gives_private_writable_pages),
    KUNIT_CASE(populated_pages_snapshot_without_fault),
    KUNIT_CASE(write_request_on_readonly_vma_is_eperm),
    KUNIT_CASE(no_vma_is_error_or_efault),
    KUNIT_CASE(prot_none_vma_is_error),
    KUNIT_CASE(per_page_requests_honour_mask),
    KUNIT_CASE(stale_seq_returns_ebusy),
    KUNIT_CASE(device_private_pages_by_owner),
  ],
};

// KUnit suite for the CPU MMU model (hw/cpu_mmu.ts) and arch/x86/mm/tlb.ts: a PTE changed
// without a flush keeps translating to the old frame until flush_tlb_page; flushes are per
// PCID; the walker sets Accessed/Dirty; flushes reach secondary TLBs through the mmu notifier.

import {
  KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_TRUE, KUNIT_EXPECT_FALSE, KUNIT_ASSERT_TRUE, KUNIT_ASSERT_EQ,
  type kunit, type kunit_suite,
} from "../../../../lib/kunit/test.ts";
import type { mm_struct } from "../../../../include/linux/mm_types.ts";
import { PAGE_SIZE } from "../../../../include/linux/mm.ts";
import { ptep_get, set_pte_at, mk_pte, pte_young, pte_dirty, pte_pfn } from "../../../../arch/x86/include/asm/pgtable.ts";
import { flush_tlb_page, flush_tlb_mm, flush_tlb_range } from "../../../../arch/x86/mm/tlb.ts";
import { cpu_user_read, cpu_user_write } from "../../../../arch/x86/mm/fault.ts";
import { follow_pte, pte_unmap_unlock } from "../../../../mm/pgtable-generic.ts";
import { vma_lookup } from "../../../../mm/mmap.ts";
import { alloc_page, __free_page } from "../../../../mm/page_alloc.ts";
import { GFP_KERNEL, __GFP_ZERO } from "../../../../include/linux/gfp_types.ts";
import { NODE_DATA } from "../../../../include/linux/mmzone.ts";
import { mmu_notifier, mmu_notifier_register, mmu_notifier_unregister } from "../../../../mm/mmu_notifier.ts";
import { new_mm, drop_mm, anon_map } from "../../mm/util.ts";

/** Runs `fn` with `mm` as the current task's address space (a user access context). */
async function as_user<T>(test: kunit, mm: mm_struct, fn: () => Promise<T>): Promise<T> {
  const t = test.k.current;
  const old = t.mm;
  t.mm = mm;
  try {
    return await fn();
  } finally {
    t.mm = old;
  }
}

function pte_at(mm: mm_struct, addr: number) {
  const l = follow_pte(mm, addr)!;
  const v = ptep_get(mm.k, l.pte);
  pte_unmap_unlock(l.pte, l.ptl);
  return { v, ptep: l.pte };
}

async function stale_tlb_until_flush(test: kunit): Promise<void> {
  const k = test.k;
  const mm = new_mm(k);
  const addr = await anon_map(mm, 1);
  await as_user(test, mm, () => cpu_user_write(k, addr, new Uint8Array([0xaa])));
  const { v: old, ptep } = pte_at(mm, addr);
  const other = alloc_page(k, GFP_KERNEL | __GFP_ZERO)!;
  NODE_DATA(k).physmem.write(other.pfn * PAGE_SIZE, new Uint8Array([0xbb]));
  const vma = vma_lookup(mm, addr)!;
  // Point the PTE at another frame without telling the TLB.
  set_pte_at(mm, addr, ptep, mk_pte(other, vma.vm_page_prot));
  const stale = await as_user(test, mm, () => cpu_user_read(k, addr, 1));
  KUNIT_EXPECT_EQ(test, stale[0], 0xaa, "the TLB still maps the old frame");
  flush_tlb_page(vma, addr);
  const fresh = await as_user(test, mm, () => cpu_user_read(k, addr, 1));
  KUNIT_EXPECT_EQ(test, fresh[0], 0xbb, "after flush_tlb_page the new PTE is used");
  set_pte_at(mm, addr, ptep, old);
  flush_tlb_page(vma, addr);
  KUNIT_EXPECT_EQ(test, (await as_user(test, mm, () => cpu_user_read(k, addr, 1)))[0], 0xaa);
  __free_page(other);
  await drop_mm(mm);
}

async function flush_is_per_pcid(test: kunit): Promise<void> {
  const k = test.k;
  const cpu = NODE_DATA(k).cpu;
  const a = new_mm(k);
  const b = new_mm(k);
  const va = await anon_map(a, 1);
  const vb = await anon_map(b, 1);
  await as_user(test, a, () => cpu_user_write(k, va, new Uint8Array([1])));
  await as_user(test, b, () => cpu_user_write(k, vb, new Uint8Array([2])));
  KUNIT_ASSERT_TRUE(test, cpu.tlb_lookup(a.context_id, va) !== null);
  KUNIT_ASSERT_TRUE(test, cpu.tlb_lookup(b.context_id, vb) !== null);
  flush_tlb_mm(a);
  KUNIT_EXPECT_EQ(test, cpu.tlb_lookup(a.context_id, va), null);
  KUNIT_EXPECT_TRUE(test, cpu.tlb_lookup(b.context_id, vb) !== null, "another PCID survives");
  await drop_mm(a);
  await drop_mm(b);
}

async function walker_sets_accessed_and_dirty(test: kunit): Promise<void> {
  const k = test.k;
  const mm = new_mm(k);
  const addr = await anon_map(mm, 1);
  await as_user(test, mm, () => cpu_user_write(k, addr, new Uint8Array([7])));
  const vma = vma_lookup(mm, addr)!;
  const { v, ptep } = pte_at(mm, addr);
  KUNIT_EXPECT_TRUE(test, pte_young(v) && pte_dirty(v));
  // Clear A/D behind the TLB's back: a read through the cached entry sets nothing...
  set_pte_at(mm, addr, ptep, { lo: v.lo & ~0x60, hi: v.hi });
  await as_user(test, mm, () => cpu_user_read(k, addr, 1));
  KUNIT_EXPECT_FALSE(test, pte_young(pte_at(mm, addr).v), "a TLB hit does not walk");
  // ...a walk after the flush sets A on read, and D only on write.
  flush_tlb_page(vma, addr);
  await as_user(test, mm, () => cpu_user_read(k, addr, 1));
  KUNIT_EXPECT_TRUE(test, pte_young(pte_at(mm, addr).v));
  KUNIT_EXPECT_FALSE(test, pte_dirty(pte_at(mm, addr).v));
  await as_user(test, mm, () => cpu_user_write(k, addr, new Uint8Array([8])));
  KUNIT_EXPECT_TRUE(test, pte_dirty(pte_at(mm, addr).v), "first write through a clean entry sets D");
  KUNIT_EXPECT_EQ(test, pte_pfn(pte_at(mm, addr).v), pte_pfn(v));
  await drop_mm(mm);
}

async function flush_reaches_secondary_tlbs(test: kunit): Promise<void> {
  const k = test.k;
  const mm = new_mm(k);
  const addr = await anon_map(mm, 4);
  const seen: Array<[number, number]> = [];
  const sub = new mmu_notifier({ arch_invalidate_secondary_tlbs: (_s, _mm, start, end) => void seen.push([start, end]) });
  KUNIT_ASSERT_EQ(test, await mmu_notifier_register(sub, mm), 0);
  const vma = vma_lookup(mm, addr)!;
  flush_tlb_range(vma, addr, addr + 2 * PAGE_SIZE);
  KUNIT_EXPECT_EQ(test, seen.length, 1);
  KUNIT_EXPECT_EQ(test, seen[0]![0], addr);
  KUNIT_EXPECT_EQ(test, seen[0]![1], addr + 2 * PAGE_SIZE);
  await mmu_notifier_unregister(sub, mm);
  await drop_mm(mm);
}

export const x86_tlb_suite: kunit_suite = {
  name: "x86_tlb",
  test_cases: [
    KUNIT_CASE(stale_tlb_until_flush),
    KUNIT_CASE(flush_is_per_pcid),
    KUNIT_CASE(walker_sets_accessed_and_dirty),
    KUNIT_CASE(flush_reaches_secondary_tlbs),
  ],
};

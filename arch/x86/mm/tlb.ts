// Mirrors arch/x86/mm/tlb.c (Linux 6.8): TLB shootdown. kemu has one CPU whose TLB is tagged by
// PCID (= mm->context_id). Ranges up to tlb_single_page_flush_ceiling pages are flushed one
// INVLPG at a time, larger ones drop the whole PCID, as flush_tlb_func does. Every user-space
// flush also tells devices sharing the CPU page tables (IOMMU SVA / AMD IOMMUv2) through
// mmu_notifier_arch_invalidate_secondary_tlbs (6.6+).

import type { Kernel } from "../../../kernel/kernel.ts";
import type { mm_struct, vm_area_struct } from "../../../include/linux/mm_types.ts";
import { NODE_DATA } from "../../../include/linux/mmzone.ts";
import { mmu_notifier_arch_invalidate_secondary_tlbs } from "../../../mm/mmu_notifier.ts";
import { pte_pfn } from "../include/asm/pgtable.ts";
import {
  type pte_t, _PAGE_PRESENT, _PAGE_DIRTY, _PAGE_ACCESSED, _PAGE_RW, _PAGE_USER, _PAGE_PWT, _PAGE_PCD, _PAGE_PSE, _PAGE_GLOBAL,
  _PAGE_NX_HI,
} from "../include/asm/pgtable_types.ts";

const PAGE_SIZE = 4096;
/** Above this many pages a range flush becomes a full (PCID) flush. */
export const tlb_single_page_flush_ceiling = 33;
/** flush_tlb_mm_range's "everything" end. */
export const TLB_FLUSH_ALL = 2 ** 64;

/** flush_tlb_mm_range(mm, start, end, stride_shift, freed_tables). */
export function flush_tlb_mm_range(mm: mm_struct, start: number, end: number, _stride_shift = 12, _freed_tables = false): void {
  const cpu = NODE_DATA(mm.k).cpu;
  const pages = (end - start) / PAGE_SIZE;
  if (end === TLB_FLUSH_ALL || pages > tlb_single_page_flush_ceiling) {
    cpu.flush_pcid(mm.context_id);
  } else {
    for (let a = start; a < end; a += PAGE_SIZE) cpu.invlpg(mm.context_id, a);
  }
  mmu_notifier_arch_invalidate_secondary_tlbs(mm, start, end === TLB_FLUSH_ALL ? 2 ** 64 : end);
}

export function flush_tlb_mm(mm: mm_struct): void {
  flush_tlb_mm_range(mm, 0, TLB_FLUSH_ALL);
}

export function flush_tlb_range(vma: vm_area_struct, start: number, end: number): void {
  flush_tlb_mm_range(vma.vm_mm, start, end);
}

export function flush_tlb_page(vma: vm_area_struct, addr: number): void {
  const a = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
  flush_tlb_mm_range(vma.vm_mm, a, a + PAGE_SIZE);
}

/** flush_tlb_all(): every PCID (kernel mappings included). */
export function flush_tlb_all(k: Kernel): void {
  NODE_DATA(k).cpu.flush_all();
}

/** flush_tlb_fix_spurious_fault(): x86 needs nothing for an upgrade-only change. */
export function flush_tlb_fix_spurious_fault(_vma: vm_area_struct, _addr: number): void {}

/**
 * pte_needs_flush(oldpte, newpte) (arch/x86/include/asm/tlbflush.h): does changing oldpte into
 * newpte require a TLB flush? Not for a non-present old entry; yes when it stops being present,
 * changes pfn, clears D/A, or changes RW/US/caching/NX bits.
 */
export function pte_needs_flush(oldpte: pte_t, newpte: pte_t): boolean {
  if (!(oldpte.lo & _PAGE_PRESENT)) return false;
  if (!(newpte.lo & _PAGE_PRESENT)) return true;
  if (pte_pfn(oldpte) !== pte_pfn(newpte)) return true;
  const flush_on_clear = _PAGE_DIRTY | _PAGE_PRESENT | _PAGE_ACCESSED;
  const flush_on_change = _PAGE_RW | _PAGE_USER | _PAGE_PWT | _PAGE_PCD | _PAGE_PSE | _PAGE_GLOBAL;
  const diff = (oldpte.lo ^ newpte.lo) & 0xfff;
  if (diff & oldpte.lo & flush_on_clear) return true;
  if (diff & flush_on_change) return true;
  return ((oldpte.hi ^ newpte.hi) & _PAGE_NX_HI) !== 0;
}

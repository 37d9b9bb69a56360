// Mirrors mm/mmu_gather.c and include/asm-generic/tlb.h (Linux 6.8): batching of TLB flushes and
// page frees during unmap. Pages whose PTEs were cleared stay allocated until the TLB has been
// flushed (tlb_finish_mmu), so no CPU can still reach a freed frame through a stale entry.

import type { mm_struct, page } from "../include/linux/mm_types.ts";
import { flush_tlb_mm_range } from "../arch/x86/mm/tlb.ts";
import { put_page } from "../include/linux/mm.ts";

const PAGE_SIZE = 4096;

export class mmu_gather {
  start = Infinity;
  end = 0;
  freed_tables = false;
  fullmm = false;
  /** Pages to release after the flush (the kernel's batch of encoded page pointers). */
  readonly pages: page[] = [];
  constructor(readonly mm: mm_struct) {}
}

/** tlb_gather_mmu(tlb, mm); fullmm for exit_mmap (tlb_gather_mmu_fullmm). */
export function tlb_gather_mmu(mm: mm_struct, fullmm = false): mmu_gather {
  const tlb = new mmu_gather(mm);
  tlb.fullmm = fullmm;
  return tlb;
}

/** tlb_remove_tlb_entry(tlb, ptep, addr): a PTE at addr was cleared. */
export function tlb_remove_tlb_entry(tlb: mmu_gather, _ptep: number, addr: number): void {
  tlb.start = Math.min(tlb.start, addr);
  tlb.end = Math.max(tlb.end, addr + PAGE_SIZE);
}

/** tlb_flush_pte_range(). */
export function tlb_flush_pte_range(tlb: mmu_gather, addr: number, size: number): void {
  tlb.start = Math.min(tlb.start, addr);
  tlb.end = Math.max(tlb.end, addr + size);
}

/** tlb_remove_page(): drop the mapping's reference after the flush. */
export function tlb_remove_page(tlb: mmu_gather, p: page): void {
  tlb.pages.push(p);
}

/** tlb_flush_mmu(): flush the gathered range, then free the batched pages. */
export function tlb_flush_mmu(tlb: mmu_gather): void {
  if (tlb.end > tlb.start || tlb.freed_tables) {
    if (tlb.fullmm || tlb.freed_tables) flush_tlb_mm_range(tlb.mm, 0, 2 ** 64);
    else flush_tlb_mm_range(tlb.mm, tlb.start, tlb.end);
  }
  tlb.start = Infinity;
  tlb.end = 0;
  tlb.freed_tables = false;
  const pages = tlb.pages.splice(0);
  for (const p of pages) put_page(p);
}

export function tlb_finish_mmu(tlb: mmu_gather): void {
  tlb_flush_mmu(tlb);
}

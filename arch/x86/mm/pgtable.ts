// Mirrors arch/x86/mm/pgtable.c and include/asm-generic/pgalloc.h (Linux 6.8): allocation and
// freeing of page-table pages. Every table is one zeroed 4 KiB frame from the page allocator,
// marked PageTable, living in emulated RAM where the CPU MMU (and the IOMMU) walk it.

import type { mm_struct, page } from "../../../include/linux/mm_types.ts";
import { GFP_KERNEL_ACCOUNT, __GFP_ZERO } from "../../../include/linux/gfp_types.ts";
import { __ClearPageTable, __SetPageTable } from "../../../include/linux/page-flags.ts";
import { alloc_pages, __free_pages } from "../../../mm/page_alloc.ts";
import { pfn_to_page } from "../../../mm/sparse.ts";

export const GFP_PGTABLE_USER = GFP_KERNEL_ACCOUNT | __GFP_ZERO;
const PAGE_SIZE = 4096;

/**
 * pagetable_alloc() + pagetable_pte_ctor(): a zeroed, PageTable-typed frame. Lower levels count
 * in mm_pgtables_bytes (mm_inc_nr_ptes & co); the pgd does not, as in the kernel.
 */
function pagetable_alloc(mm: mm_struct, account = true): page | null {
  const p = alloc_pages(mm.k, GFP_PGTABLE_USER, 0);
  if (!p) return null;
  __SetPageTable(p);
  if (account) mm.pgtables_bytes += PAGE_SIZE;
  return p;
}

function pagetable_free(mm: mm_struct, p: page, account = true): void {
  __ClearPageTable(p);
  if (account) mm.pgtables_bytes -= PAGE_SIZE;
  __free_pages(p, 0);
}

/** pgd_alloc(mm): the top-level table; returns its physical address (what CR3 holds), 0 on failure. */
export function pgd_alloc(mm: mm_struct): number {
  const p = pagetable_alloc(mm, false);
  return p ? p.pfn * PAGE_SIZE : 0;
}

export function pgd_free(mm: mm_struct, pgd: number): void {
  pagetable_free(mm, pfn_to_page(mm.k, pgd / PAGE_SIZE), false);
}

export function pud_alloc_one(mm: mm_struct, _addr: number): page | null {
  return pagetable_alloc(mm);
}
export function pmd_alloc_one(mm: mm_struct, _addr: number): page | null {
  return pagetable_alloc(mm);
}
export function pte_alloc_one(mm: mm_struct): page | null {
  return pagetable_alloc(mm);
}

export function pud_free(mm: mm_struct, p: page): void {
  pagetable_free(mm, p);
}
export function pmd_free(mm: mm_struct, p: page): void {
  pagetable_free(mm, p);
}
export function pte_free(mm: mm_struct, p: page): void {
  pagetable_free(mm, p);
}

/** Frees the table page whose physical address an upper-level entry held. */
export function free_table_at(mm: mm_struct, table_pa: number): void {
  pagetable_free(mm, pfn_to_page(mm.k, table_pa / PAGE_SIZE));
}

// Mirrors the page-table allocation and lookup parts of mm/memory.c and mm/pgtable-generic.c
// (Linux 6.8): __pud_alloc/__pmd_alloc/__pte_alloc, pte_offset_map(_lock), follow_pte,
// get_locked_pte and free_pgd_range/free_pgtables. Entry "pointers" are physical addresses of
// entries in emulated RAM. kemu uses one page_table_lock per mm for every level (no split PTE
// locks); see docs/fidelity.md.

import type { mm_struct, vm_area_struct } from "../include/linux/mm_types.ts";
import { spin_lock, spin_unlock, type spinlock_t } from "../kernel/locking/spinlock.ts";
import {
  mk_table_entry, pgd_offset, p4d_offset, pud_offset, pmd_offset, pte_offset_kernel, pmdp_get, pudp_get, p4dp_get,
  pmd_none, pud_none, p4d_none, pmd_bad, pmd_trans_huge, pmd_page_paddr, set_pmd, set_pud, set_p4d, pmd_clear,
  ptep_get, pte_none, pte_val_hex, ptep_get_and_clear, pte_present, pte_protnone,
} from "../arch/x86/include/asm/pgtable.ts";
import type { pte_t } from "../arch/x86/include/asm/pgtable_types.ts";
import { flush_tlb_page } from "../arch/x86/mm/tlb.ts";
import {
  PGDIR_SIZE, PUD_SIZE, PMD_SIZE, PTRS_PER_PTE, PTE_ENTRY_SIZE,
} from "../arch/x86/include/asm/pgtable_types.ts";
import { pmd_alloc_one, pud_alloc_one, pte_alloc_one, pmd_free, pud_free, pte_free, free_table_at } from "../arch/x86/mm/pgtable.ts";
import { ENOMEM } from "../include/uapi/asm-generic/errno.ts";

const PAGE_SIZE = 4096;

// ---- allocation (mm/memory.c) ------------------------------------------------------------------

/** __pud_alloc(): populate the p4d (= pgd) entry with a new pud table; 0 or -ENOMEM. */
export function __pud_alloc(mm: mm_struct, p4d: number, addr: number): number {
  const table = pud_alloc_one(mm, addr);
  if (!table) return -ENOMEM;
  spin_lock(mm.page_table_lock);
  if (p4d_none(p4dp_get(mm.k, p4d))) set_p4d(mm.k, p4d, mk_table_entry(table.pfn));
  else pud_free(mm, table); // another thread populated it first
  spin_unlock(mm.page_table_lock);
  return 0;
}

export function __pmd_alloc(mm: mm_struct, pud: number, addr: number): number {
  const table = pmd_alloc_one(mm, addr);
  if (!table) return -ENOMEM;
  spin_lock(mm.page_table_lock);
  if (pud_none(pudp_get(mm.k, pud))) set_pud(mm.k, pud, mk_table_entry(table.pfn));
  else pmd_free(mm, table);
  spin_unlock(mm.page_table_lock);
  return 0;
}

/** __pte_alloc(mm, pmd): 0 or -ENOMEM. */
export function __pte_alloc(mm: mm_struct, pmd: number): number {
  const table = pte_alloc_one(mm);
  if (!table) return -ENOMEM;
  spin_lock(mm.page_table_lock);
  if (pmd_none(pmdp_get(mm.k, pmd))) set_pmd(mm.k, pmd, mk_table_entry(table.pfn));
  else pte_free(mm, table);
  spin_unlock(mm.page_table_lock);
  return 0;
}

/** p4d_alloc(): folded into the pgd on 4-level paging. */
export function p4d_alloc(_mm: mm_struct, pgd: number, addr: number): number {
  return p4d_offset(pgd, addr);
}

/** pud_alloc(mm, p4d, addr): the pud entry, allocating its table; null on -ENOMEM. */
export function pud_alloc(mm: mm_struct, p4d: number, addr: number): number | null {
  if (p4d_none(p4dp_get(mm.k, p4d)) && __pud_alloc(mm, p4d, addr)) return null;
  return pud_offset(mm.k, p4d, addr);
}

export function pmd_alloc(mm: mm_struct, pud: number, addr: number): number | null {
  if (pud_none(pudp_get(mm.k, pud)) && __pmd_alloc(mm, pud, addr)) return null;
  return pmd_offset(mm.k, pud, addr);
}

/** pte_alloc(mm, pmd): true when the allocation FAILED (the kernel macro's sense). */
export function pte_alloc(mm: mm_struct, pmd: number): boolean {
  return pmd_none(pmdp_get(mm.k, pmd)) && __pte_alloc(mm, pmd) !== 0;
}

/** Walks from the pgd to the pmd entry of addr, allocating tables; null on -ENOMEM. */
export function walk_to_pmd(mm: mm_struct, addr: number): number | null {
  const p4d = p4d_alloc(mm, pgd_offset(mm, addr), addr);
  const pud = pud_alloc(mm, p4d, addr);
  if (pud === null) return null;
  return pmd_alloc(mm, pud, addr);
}

// ---- lookup ------------------------------------------------------------------------------------

/**
 * pte_offset_map(pmd, addr) (6.5+ semantics): the PTE slot, or null when the pmd is none, bad or
 * huge (callers retry or treat it as a hole). kemu passes the machine's Kernel.
 */
export function pte_offset_map(mm: mm_struct, pmd: number, addr: number): number | null {
  const v = pmdp_get(mm.k, pmd);
  if (pmd_none(v) || pmd_trans_huge(v) || pmd_bad(v)) return null;
  return pte_offset_kernel(mm.k, pmd, addr);
}

export interface locked_pte {
  pte: number;
  ptl: spinlock_t;
}

/** pte_offset_map_lock(mm, pmd, addr, &ptl): the slot with the PT lock held, or null. */
export function pte_offset_map_lock(mm: mm_struct, pmd: number, addr: number): locked_pte | null {
  const pte = pte_offset_map(mm, pmd, addr);
  if (pte === null) return null;
  spin_lock(mm.page_table_lock);
  return { pte, ptl: mm.page_table_lock };
}

export function pte_lockptr(mm: mm_struct, _pmd: number): spinlock_t {
  return mm.page_table_lock;
}

/** pte_unmap(): nothing to undo (no highmem kmap of page tables). */
export function pte_unmap(_pte: number): void {}

export function pte_unmap_unlock(_pte: number, ptl: spinlock_t): void {
  spin_unlock(ptl);
}

/** The pmd entry of addr without allocating, or null if an upper level is empty. */
export function mm_find_pmd(mm: mm_struct, addr: number): number | null {
  const p4d = p4d_offset(pgd_offset(mm, addr), addr);
  if (p4d_none(p4dp_get(mm.k, p4d))) return null;
  const pud = pud_offset(mm.k, p4d, addr);
  if (pud_none(pudp_get(mm.k, pud))) return null;
  return pmd_offset(mm.k, pud, addr);
}

/** follow_pte(mm, addr): the locked PTE slot of addr, or null (-EINVAL) if none is mapped. */
export function follow_pte(mm: mm_struct, addr: number): locked_pte | null {
  const pmd = mm_find_pmd(mm, addr);
  if (pmd === null) return null;
  const l = pte_offset_map_lock(mm, pmd, addr);
  if (!l) return null;
  if (pte_none(ptep_get(mm.k, l.pte))) {
    pte_unmap_unlock(l.pte, l.ptl);
    return null;
  }
  return l;
}

/** get_locked_pte(mm, addr, &ptl): allocate tables down to addr's PTE and lock it. */
export function get_locked_pte(mm: mm_struct, addr: number): locked_pte | null {
  const pmd = walk_to_pmd(mm, addr);
  if (pmd === null || pte_alloc(mm, pmd)) return null;
  return pte_offset_map_lock(mm, pmd, addr);
}

/**
 * ptep_clear_flush(vma, address, ptep) (mm/pgtable-generic.c): clear a PTE and flush the TLB
 * entry if the old one could have been cached. Returns the old PTE.
 */
export function ptep_clear_flush(vma: vm_area_struct, address: number, ptep: number): pte_t {
  const pte = ptep_get_and_clear(vma.vm_mm, address, ptep);
  if (pte_accessible(pte)) flush_tlb_page(vma, address);
  return pte;
}

/** pte_accessible(): x86 caches only present entries in the TLB. */
function pte_accessible(pte: pte_t): boolean {
  return pte_present(pte) && !pte_protnone(pte);
}

// ---- freeing (free_pgd_range / free_pgtables) ---------------------------------------------------

/** Span covered by one entry of each level below the pgd. */
const LEVEL_SPANS = [PGDIR_SIZE, PUD_SIZE, PMD_SIZE, PAGE_SIZE];

/**
 * Frees the tables under one entry (level 0 = pgd entry) whose whole span lies within
 * [floor, ceiling) — only [addr, end) has been unmapped, and addresses outside floor/ceiling
 * still belong to neighbouring VMAs. ceiling 0 means "top of the address space".
 */
function free_level(mm: mm_struct, entry: number, level: number, base: number, addr: number, end: number, floor: number, ceiling: number): void {
  const v = ptep_get(mm.k, entry);
  if (pmd_none(v)) return;
  const span = LEVEL_SPANS[level]!;
  const whole = base >= floor && (ceiling === 0 || base + span <= ceiling);
  const table = pmd_page_paddr(v);
  if (level === 2) {
    // A pmd entry points at a PTE table: it can only go if nothing else lives in its span.
    if (!whole) return;
    for (let i = 0; i < PTRS_PER_PTE; i++) {
      const pte = ptep_get(mm.k, table + i * PTE_ENTRY_SIZE);
      if (!pte_none(pte)) mm.k.WARN(true, `free_pgtables: live pte ${pte_val_hex(pte)} at 0x${(base + i * PAGE_SIZE).toString(16)}`);
    }
    pmd_clear(mm.k, entry);
    free_table_at(mm, table);
    return;
  }
  const child_span = LEVEL_SPANS[level + 1]!;
  const first = Math.max(0, Math.floor((addr - base) / child_span));
  const last = Math.min(511, Math.floor((end - 1 - base) / child_span));
  for (let i = first; i <= last; i++) {
    const child_base = base + i * child_span;
    free_level(mm, table + i * PTE_ENTRY_SIZE, level + 1, child_base, Math.max(addr, child_base), Math.min(end, child_base + child_span), floor, ceiling);
  }
  if (!whole) return;
  for (let i = 0; i < 512; i++) if (!pmd_none(ptep_get(mm.k, table + i * PTE_ENTRY_SIZE))) return;
  pmd_clear(mm.k, entry);
  free_table_at(mm, table);
}

/** free_pgd_range(tlb, addr, end, floor, ceiling). */
export function free_pgd_range(mm: mm_struct, addr: number, end: number, floor: number, ceiling: number): void {
  if (end <= addr) return;
  for (let a = Math.floor(addr / PGDIR_SIZE) * PGDIR_SIZE; a < end; a += PGDIR_SIZE) {
    free_level(mm, pgd_offset(mm, a), 0, a, Math.max(addr, a), Math.min(end, a + PGDIR_SIZE), floor, ceiling);
  }
}

/**
 * free_pgtables(tlb, mas, vma, floor, ceiling): free the tables of the given (already unmapped
 * and detached) VMAs; `floor` is the end of the previous remaining VMA, `ceiling` the start of
 * the next (0 = none above).
 */
export function free_pgtables(mm: mm_struct, vmas: vm_area_struct[], floor: number, ceiling: number): void {
  if (!vmas.length) return;
  const sorted = [...vmas].sort((a, b) => a.vm_start - b.vm_start);
  free_pgd_range(mm, sorted[0]!.vm_start, sorted[sorted.length - 1]!.vm_end, floor, ceiling);
}

// Mirrors arch/x86/include/asm/pgtable_types.h (Linux 6.8): the x86-64 page-table entry bits and
// the page protections. A 64-bit entry is held as two 32-bit words {lo, hi} (pte_t of
// include/linux/mm.ts): bits 0-31 in `lo`, bits 32-63 in `hi`. Bit operators are applied to
// those words only, never to a whole address or pfn.

import type { pte_t } from "../../../../include/linux/mm.ts";

export type { pte_t };
/** The upper levels use the same two-word layout. p4d is folded into pgd (4-level paging). */
export type pmd_t = pte_t;
export type pud_t = pte_t;
export type p4d_t = pte_t;
export type pgd_t = pte_t;
/** pgprot_t: only flag bits, same two-word layout. */
export type pgprot_t = pte_t;

// Bit numbers of the low word.
export const _PAGE_BIT_PRESENT = 0;
export const _PAGE_BIT_RW = 1;
export const _PAGE_BIT_USER = 2;
export const _PAGE_BIT_PWT = 3;
export const _PAGE_BIT_PCD = 4;
export const _PAGE_BIT_ACCESSED = 5;
export const _PAGE_BIT_DIRTY = 6;
export const _PAGE_BIT_PSE = 7;
export const _PAGE_BIT_PAT = 7;
export const _PAGE_BIT_GLOBAL = 8;
export const _PAGE_BIT_SOFTW1 = 9;
export const _PAGE_BIT_SOFTW2 = 10;
export const _PAGE_BIT_SOFTW3 = 11;
export const _PAGE_BIT_SPECIAL = _PAGE_BIT_SOFTW1;
export const _PAGE_BIT_UFFD_WP = _PAGE_BIT_SOFTW2;
export const _PAGE_BIT_SOFT_DIRTY = _PAGE_BIT_SOFTW3;
/** Only meaningful when not present: the G bit then marks a PROT_NONE mapping. */
export const _PAGE_BIT_PROTNONE = _PAGE_BIT_GLOBAL;
/** Bit 58 (SOFTW4) and 63 (NX) live in the high word. */
export const _PAGE_BIT_DEVMAP = 58;
export const _PAGE_BIT_NX = 63;

// Masks on the low word.
export const _PAGE_PRESENT = 1 << _PAGE_BIT_PRESENT;
export const _PAGE_RW = 1 << _PAGE_BIT_RW;
export const _PAGE_USER = 1 << _PAGE_BIT_USER;
export const _PAGE_PWT = 1 << _PAGE_BIT_PWT;
export const _PAGE_PCD = 1 << _PAGE_BIT_PCD;
export const _PAGE_ACCESSED = 1 << _PAGE_BIT_ACCESSED;
export const _PAGE_DIRTY = 1 << _PAGE_BIT_DIRTY;
export const _PAGE_PSE = 1 << _PAGE_BIT_PSE;
export const _PAGE_GLOBAL = 1 << _PAGE_BIT_GLOBAL;
export const _PAGE_SPECIAL = 1 << _PAGE_BIT_SPECIAL;
export const _PAGE_UFFD_WP = 1 << _PAGE_BIT_UFFD_WP;
export const _PAGE_SOFT_DIRTY = 1 << _PAGE_BIT_SOFT_DIRTY;
export const _PAGE_PROTNONE = 1 << _PAGE_BIT_PROTNONE;
/** A/D may be set by (buggy) hardware on a none entry: pte_none ignores them. */
export const _PAGE_KNL_ERRATUM_MASK = _PAGE_DIRTY | _PAGE_ACCESSED;

// Masks on the high word.
export const _PAGE_DEVMAP_HI = 1 << (_PAGE_BIT_DEVMAP - 32);
export const _PAGE_NX_HI = (1 << (_PAGE_BIT_NX - 32)) >>> 0;

/** The pfn field is bits 12-51: 20 bits of the low word and 20 bits of the high word. */
export const PTE_PFN_BITS = 40;
export const PTE_PFN_LO_MASK = 0xfffff000;
export const PTE_PFN_HI_MASK = 0x000fffff;
/** Largest pfn an entry can hold, 2^40 - 1. */
export const PTE_PFN_MAX = 2 ** PTE_PFN_BITS - 1;

/** Bits pte_modify() keeps: the pfn, caching, special, A/D, soft-dirty, uffd-wp, devmap. */
export const _PAGE_CHG_MASK_LO =
  (PTE_PFN_LO_MASK | _PAGE_PCD | _PAGE_PWT | _PAGE_SPECIAL | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_SOFT_DIRTY |
    _PAGE_UFFD_WP) >>> 0;
export const _PAGE_CHG_MASK_HI = PTE_PFN_HI_MASK | _PAGE_DEVMAP_HI;

/** Flags of an upper-level entry pointing at a lower table (_PAGE_TABLE). */
export const _PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY;
export const _KERNPG_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY;

export function __pgprot(lo: number, hi = 0): pgprot_t {
  return { lo: lo >>> 0, hi: hi >>> 0 };
}

export function pgprot_val(p: pgprot_t): pgprot_t {
  return p;
}

// The protections of protection_map[] (arch/x86/mm/pgprot.c), x86-64 with NX.
export const PAGE_NONE = __pgprot(_PAGE_PROTNONE | _PAGE_ACCESSED);
export const PAGE_SHARED = __pgprot(_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED, _PAGE_NX_HI);
export const PAGE_SHARED_EXEC = __pgprot(_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED);
export const PAGE_COPY_NOEXEC = __pgprot(_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED, _PAGE_NX_HI);
export const PAGE_COPY_EXEC = __pgprot(_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED);
export const PAGE_COPY = PAGE_COPY_NOEXEC;
export const PAGE_READONLY = __pgprot(_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED, _PAGE_NX_HI);
export const PAGE_READONLY_EXEC = __pgprot(_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED);
export const PAGE_KERNEL = __pgprot(_PAGE_PRESENT | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_GLOBAL, _PAGE_NX_HI);

/** The 4-level x86-64 geometry. */
export const PGDIR_SHIFT = 39;
export const PUD_SHIFT = 30;
export const PMD_SHIFT = 21;
export const PTRS_PER_PGD = 512;
export const PTRS_PER_P4D = 1;
export const PTRS_PER_PUD = 512;
export const PTRS_PER_PMD = 512;
export const PTRS_PER_PTE = 512;
export const PGDIR_SIZE = 2 ** PGDIR_SHIFT;
export const PUD_SIZE = 2 ** PUD_SHIFT;
export const PMD_SIZE = 2 ** PMD_SHIFT;
export const P4D_SIZE = PGDIR_SIZE;
/** Bytes of one entry in a table page. */
export const PTE_ENTRY_SIZE = 8;
/** MAX_PHYSMEM_BITS of 4-level paging: physical addresses below 2^46. */
export const MAX_PHYSMEM_BITS = 46;

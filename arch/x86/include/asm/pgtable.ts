// Mirrors arch/x86/include/asm/pgtable.h (Linux 6.8): PTE value helpers (pure functions on the
// {lo, hi} words) and the accessors that read and write entries of page tables stored in the
// machine's emulated RAM. A "pointer" to an entry (pgd_t *, pmd_t *, pte_t *) is the entry's
// physical address. Functions whose kernel signature names no object leading to the machine
// (ptep_get, pud_offset, ...) take the machine's Kernel `k` first.

import type { Kernel } from "../../../../kernel/kernel.ts";
import type { mm_struct, page, vm_area_struct } from "../../../../include/linux/mm_types.ts";
import { NODE_DATA } from "../../../../include/linux/mmzone.ts";
import {
  type pte_t, type pmd_t, type pud_t, type pgprot_t,
  _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PSE, _PAGE_SPECIAL,
  _PAGE_SOFT_DIRTY, _PAGE_UFFD_WP, _PAGE_PROTNONE, _PAGE_KNL_ERRATUM_MASK, _PAGE_NX_HI, _PAGE_DEVMAP_HI,
  PTE_PFN_LO_MASK, PTE_PFN_HI_MASK, PTE_PFN_MAX, _PAGE_CHG_MASK_LO, _PAGE_CHG_MASK_HI, _PAGE_TABLE, _KERNPG_TABLE,
  PGDIR_SHIFT, PUD_SHIFT, PMD_SHIFT, PTRS_PER_PGD, PTRS_PER_PUD, PTRS_PER_PMD, PTRS_PER_PTE, PTE_ENTRY_SIZE,
} from "./pgtable_types.ts";

const TWO20 = 2 ** 20;
const PAGE_SIZE = 4096;

export function __pte(lo: number, hi: number): pte_t {
  return { lo: lo >>> 0, hi: hi >>> 0 };
}
export const __pmd = __pte;
export const __pud = __pte;
export const __pgd = __pte;
export const native_make_pte = __pte;

export const NONE_PTE: pte_t = Object.freeze({ lo: 0, hi: 0 });

/** "0x8000000012345067" — for bad-pte reports and tests. */
export function pte_val_hex(p: pte_t): string {
  return `0x${p.hi.toString(16).padStart(8, "0")}${p.lo.toString(16).padStart(8, "0")}`;
}

export function pte_same(a: pte_t, b: pte_t): boolean {
  return a.lo === b.lo && a.hi === b.hi;
}

// ---- pfn field and the L1TF inversion ----------------------------------------------------
// A non-present, non-zero entry (PROT_NONE) stores its pfn inverted so a speculative walk
// cannot reach the frame (arch/x86/include/asm/pgtable-invert.h).

function needs_invert(lo: number, hi: number): boolean {
  return (lo !== 0 || hi !== 0) && (lo & _PAGE_PRESENT) === 0;
}

function pfn_field(lo: number, hi: number): number {
  return (hi & PTE_PFN_HI_MASK) * TWO20 + (lo >>> 12);
}

function with_pfn(lo: number, hi: number, pfn: number): pte_t {
  const ph = Math.floor(pfn / TWO20);
  const pl = pfn - ph * TWO20;
  return __pte((lo & ~PTE_PFN_LO_MASK) | (pl * 4096), (hi & ~PTE_PFN_HI_MASK) | ph);
}

export function pte_pfn(p: pte_t): number {
  const f = pfn_field(p.lo, p.hi);
  return needs_invert(p.lo, p.hi) ? PTE_PFN_MAX - f : f;
}
export const pmd_pfn = pte_pfn;
export const pud_pfn = pte_pfn;
export const pgd_pfn = pte_pfn;

/** pfn_pte(pfn, prot). */
export function pfn_pte(pfn: number, prot: pgprot_t): pte_t {
  const stored = needs_invert(prot.lo, prot.hi) ? PTE_PFN_MAX - pfn : pfn;
  return with_pfn(prot.lo & ~PTE_PFN_LO_MASK, prot.hi & ~PTE_PFN_HI_MASK, stored);
}

export function mk_pte(p: page, prot: pgprot_t): pte_t {
  return pfn_pte(p.pfn, prot);
}

// ---- predicates ---------------------------------------------------------------------------

export function pte_none(p: pte_t): boolean {
  return (p.lo & ~_PAGE_KNL_ERRATUM_MASK) === 0 && p.hi === 0;
}
/** Present, or a PROT_NONE mapping (which keeps its page). */
export function pte_present(p: pte_t): boolean {
  return (p.lo & (_PAGE_PRESENT | _PAGE_PROTNONE)) !== 0;
}
export function pte_protnone(p: pte_t): boolean {
  return (p.lo & (_PAGE_PROTNONE | _PAGE_PRESENT)) === _PAGE_PROTNONE;
}
export function pte_write(p: pte_t): boolean {
  return (p.lo & _PAGE_RW) !== 0;
}
export function pte_dirty(p: pte_t): boolean {
  return (p.lo & _PAGE_DIRTY) !== 0;
}
export function pte_young(p: pte_t): boolean {
  return (p.lo & _PAGE_ACCESSED) !== 0;
}
export function pte_user(p: pte_t): boolean {
  return (p.lo & _PAGE_USER) !== 0;
}
export function pte_exec(p: pte_t): boolean {
  return (p.hi & _PAGE_NX_HI) === 0;
}
export function pte_special(p: pte_t): boolean {
  return (p.lo & _PAGE_SPECIAL) !== 0;
}
export function pte_devmap(p: pte_t): boolean {
  return (p.hi & _PAGE_DEVMAP_HI) !== 0;
}
export function pte_soft_dirty(p: pte_t): boolean {
  return (p.lo & _PAGE_SOFT_DIRTY) !== 0;
}
export function pte_uffd_wp(p: pte_t): boolean {
  return (p.lo & _PAGE_UFFD_WP) !== 0;
}
export function pte_huge(p: pte_t): boolean {
  return (p.lo & _PAGE_PSE) !== 0;
}

// ---- modifiers ----------------------------------------------------------------------------

function set_lo(p: pte_t, bits: number): pte_t {
  return __pte(p.lo | bits, p.hi);
}
function clear_lo(p: pte_t, bits: number): pte_t {
  return __pte(p.lo & ~bits, p.hi);
}

/** pte_mkwrite(pte, vma) (6.6 form; the vma is unused on x86 without shadow stacks). */
export function pte_mkwrite(p: pte_t, _vma?: vm_area_struct): pte_t {
  return set_lo(p, _PAGE_RW);
}
export const pte_mkwrite_novma = (p: pte_t): pte_t => set_lo(p, _PAGE_RW);
export const pte_wrprotect = (p: pte_t): pte_t => clear_lo(p, _PAGE_RW);
export const pte_mkdirty = (p: pte_t): pte_t => set_lo(p, _PAGE_DIRTY | _PAGE_SOFT_DIRTY);
export const pte_mkclean = (p: pte_t): pte_t => clear_lo(p, _PAGE_DIRTY);
export const pte_mkyoung = (p: pte_t): pte_t => set_lo(p, _PAGE_ACCESSED);
export const pte_mkold = (p: pte_t): pte_t => clear_lo(p, _PAGE_ACCESSED);
export const pte_mkspecial = (p: pte_t): pte_t => set_lo(p, _PAGE_SPECIAL);
export const pte_mksoft_dirty = (p: pte_t): pte_t => set_lo(p, _PAGE_SOFT_DIRTY);
export const pte_clear_soft_dirty = (p: pte_t): pte_t => clear_lo(p, _PAGE_SOFT_DIRTY);
export const pte_mkuffd_wp = (p: pte_t): pte_t => set_lo(p, _PAGE_UFFD_WP);
export const pte_clear_uffd_wp = (p: pte_t): pte_t => clear_lo(p, _PAGE_UFFD_WP);
export const pte_mkexec = (p: pte_t): pte_t => __pte(p.lo, p.hi & ~_PAGE_NX_HI);

/** pte_modify(): keep pfn/A/D/caching bits, take the rest from newprot; re-invert the pfn. */
export function pte_modify(p: pte_t, newprot: pgprot_t): pte_t {
  const pfn = pte_pfn(p);
  const lo = (p.lo & _PAGE_CHG_MASK_LO) | (newprot.lo & ~_PAGE_CHG_MASK_LO);
  const hi = (p.hi & _PAGE_CHG_MASK_HI) | (newprot.hi & ~_PAGE_CHG_MASK_HI);
  const stored = needs_invert(lo, hi) ? PTE_PFN_MAX - pfn : pfn;
  return with_pfn(lo, hi, stored);
}

export function pte_pgprot(p: pte_t): pgprot_t {
  return __pte(p.lo & ~PTE_PFN_LO_MASK, p.hi & ~PTE_PFN_HI_MASK);
}

// ---- upper levels -------------------------------------------------------------------------

export function pmd_none(p: pmd_t): boolean {
  return (p.lo & ~_PAGE_KNL_ERRATUM_MASK) === 0 && p.hi === 0;
}
export function pmd_present(p: pmd_t): boolean {
  return (p.lo & (_PAGE_PRESENT | _PAGE_PROTNONE | _PAGE_PSE)) !== 0;
}
/** An entry whose flags are not those of a pointer to a lower table. */
export function pmd_bad(p: pmd_t): boolean {
  return (p.lo & 0xfff & ~(_PAGE_USER | _PAGE_ACCESSED)) !== (_KERNPG_TABLE & ~_PAGE_ACCESSED);
}
export function pmd_trans_huge(p: pmd_t): boolean {
  return (p.lo & _PAGE_PSE) !== 0;
}
export const pud_none = pmd_none;
export const pud_present = pmd_present;
export const pud_bad = pmd_bad;
export const pgd_none = pmd_none;
export const pgd_present = pmd_present;
export const pgd_bad = pmd_bad;
export const p4d_none = pmd_none;
export const p4d_present = pmd_present;
export const p4d_bad = pmd_bad;
export function pud_trans_huge(p: pud_t): boolean {
  return (p.lo & _PAGE_PSE) !== 0;
}

/** Physical address of the table an upper-level entry points at (pmd_page_vaddr & co). */
export function pmd_page_paddr(p: pmd_t): number {
  return pte_pfn(p) * PAGE_SIZE;
}

// Every walk step computes an index: the level sizes are folded once here.
const PGDIR_BYTES = 2 ** PGDIR_SHIFT;
const PUD_BYTES = 2 ** PUD_SHIFT;
const PMD_BYTES = 2 ** PMD_SHIFT;

export function pgd_index(addr: number): number {
  return Math.floor(addr / PGDIR_BYTES) % PTRS_PER_PGD;
}
export function pud_index(addr: number): number {
  return Math.floor(addr / PUD_BYTES) % PTRS_PER_PUD;
}
export function pmd_index(addr: number): number {
  return Math.floor(addr / PMD_BYTES) % PTRS_PER_PMD;
}
export function pte_index(addr: number): number {
  // addr / PAGE_SIZE is past 2^31 for user addresses: avoid a floating-point `%`.
  const vpn = Math.floor(addr / PAGE_SIZE);
  return vpn - Math.floor(vpn / PTRS_PER_PTE) * PTRS_PER_PTE;
}

// ---- entries in emulated RAM ---------------------------------------------------------------

/** Reads the 64-bit entry at physical address `ep`. */
export function native_get_entry(k: Kernel, ep: number): pte_t {
  const m = NODE_DATA(k).physmem;
  return { lo: m.read32(ep), hi: m.read32(ep + 4) };
}

/** Writes the entry; the high word first then the low word (present bit last, as set_pte). */
export function native_set_entry(k: Kernel, ep: number, v: pte_t): void {
  const m = NODE_DATA(k).physmem;
  if (v.lo & _PAGE_PRESENT) {
    m.write32(ep + 4, v.hi);
    m.write32(ep, v.lo);
  } else {
    m.write32(ep, v.lo);
    m.write32(ep + 4, v.hi);
  }
}

/** ptep_get(ptep): kemu passes the machine's Kernel. */
export function ptep_get(k: Kernel, ptep: number): pte_t {
  return native_get_entry(k, ptep);
}
export const pmdp_get = ptep_get;
export const pudp_get = ptep_get;
export const p4dp_get = ptep_get;
export const pgdp_get = ptep_get;

export function set_pte(k: Kernel, ptep: number, v: pte_t): void {
  native_set_entry(k, ptep, v);
}
export const set_pmd = set_pte;
export const set_pud = set_pte;
export const set_p4d = set_pte;
export const set_pgd = set_pte;

/** set_pte_at(mm, addr, ptep, pte): install a PTE (caller holds the PT lock). */
export function set_pte_at(mm: mm_struct, _addr: number, ptep: number, v: pte_t): void {
  native_set_entry(mm.k, ptep, v);
}

export function pte_clear(mm: mm_struct, _addr: number, ptep: number): void {
  native_set_entry(mm.k, ptep, NONE_PTE);
}
export function pmd_clear(k: Kernel, pmdp: number): void {
  native_set_entry(k, pmdp, NONE_PTE);
}
export const pud_clear = pmd_clear;
export const p4d_clear = pmd_clear;
export const pgd_clear = pmd_clear;

/** ptep_get_and_clear(): atomic exchange with none; returns the old entry. */
export function ptep_get_and_clear(mm: mm_struct, _addr: number, ptep: number): pte_t {
  const old = native_get_entry(mm.k, ptep);
  native_set_entry(mm.k, ptep, NONE_PTE);
  return old;
}

/** ptep_set_wrprotect(): atomically clear RW (the hardware may set D concurrently). */
export function ptep_set_wrprotect(mm: mm_struct, _addr: number, ptep: number): void {
  const m = NODE_DATA(mm.k).physmem;
  m.write32(ptep, m.read32(ptep) & ~_PAGE_RW);
}

/** ptep_test_and_clear_young(): clear A, return whether it was set (no TLB flush). */
export function ptep_test_and_clear_young(vma: vm_area_struct, _addr: number, ptep: number): boolean {
  const m = NODE_DATA(vma.vm_mm.k).physmem;
  const lo = m.read32(ptep);
  if (!(lo & _PAGE_ACCESSED)) return false;
  m.write32(ptep, lo & ~_PAGE_ACCESSED);
  return true;
}

/**
 * ptep_set_access_flags(): relax a PTE (set A/D/RW) after a fault; returns true if it changed.
 * The caller flushes the local TLB entry (x86 only needs that when the entry changed).
 */
export function ptep_set_access_flags(vma: vm_area_struct, _addr: number, ptep: number, entry: pte_t, _dirty: boolean): boolean {
  const cur = native_get_entry(vma.vm_mm.k, ptep);
  if (pte_same(cur, entry)) return false;
  native_set_entry(vma.vm_mm.k, ptep, entry);
  return true;
}

/** pgd_offset(mm, addr): the pgd entry covering addr. */
export function pgd_offset(mm: mm_struct, addr: number): number {
  return mm.pgd + pgd_index(addr) * PTE_ENTRY_SIZE;
}

/** p4d_offset(): 4-level paging folds p4d into pgd. */
export function p4d_offset(pgd: number, _addr: number): number {
  return pgd;
}

/** pmd_page_paddr(*ep) read straight from the entry's words: every walk step does this. */
function table_paddr_at(k: Kernel, ep: number): number {
  const m = NODE_DATA(k).physmem;
  const lo = m.read32(ep);
  const hi = m.read32(ep + 4);
  const f = pfn_field(lo, hi);
  return (needs_invert(lo, hi) ? PTE_PFN_MAX - f : f) * PAGE_SIZE;
}

/** pud_offset(k, p4dp, addr): the pud entry in the table the p4d entry points at. */
export function pud_offset(k: Kernel, p4dp: number, addr: number): number {
  return table_paddr_at(k, p4dp) + pud_index(addr) * PTE_ENTRY_SIZE;
}

export function pmd_offset(k: Kernel, pudp: number, addr: number): number {
  return table_paddr_at(k, pudp) + pmd_index(addr) * PTE_ENTRY_SIZE;
}

/** pte_offset_kernel() / the address part of pte_offset_map(). */
export function pte_offset_kernel(k: Kernel, pmdp: number, addr: number): number {
  return table_paddr_at(k, pmdp) + pte_index(addr) * PTE_ENTRY_SIZE;
}

/** Upper-level entry pointing at the table page `pfn` (p4d_populate, pud_populate, pmd_populate). */
export function mk_table_entry(pfn: number): pte_t {
  return pfn_pte(pfn, { lo: _PAGE_TABLE, hi: 0 });
}

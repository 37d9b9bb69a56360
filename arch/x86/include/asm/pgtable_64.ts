// Mirrors arch/x86/include/asm/pgtable_64.h (Linux 6.8): the arch encoding of non-present
// "swap" entries and their software bits.
//
//  bit  63..59      58..9             8  7  6  5  4  3  2  1  0
//       TYPE (5)    ~OFFSET (50 bits) 0  0  X  X  X  E  F  SD 0
//
// The offset is stored inverted (L1TF: a non-present entry must not point at real memory);
// E = _PAGE_SWP_EXCLUSIVE (bit 3), F = _PAGE_SWP_UFFD_WP (bit 2), SD = _PAGE_SWP_SOFT_DIRTY
// (bit 1); bit 0 (present) and bit 8 (PROTNONE) are clear, so pte_present() is false.
// In words: offset bits 0..22 sit in lo bits 9..31, offset bits 23..49 in hi bits 0..26, and
// the type in hi bits 27..31.

import type { pte_t } from "./pgtable_types.ts";
import { _PAGE_BIT_PWT, _PAGE_BIT_USER, _PAGE_BIT_RW } from "./pgtable_types.ts";
import { __pte } from "./pgtable.ts";

export const SWP_TYPE_BITS = 5;
export const SWP_OFFSET_FIRST_BIT = 9;
export const SWP_OFFSET_SHIFT = SWP_OFFSET_FIRST_BIT + SWP_TYPE_BITS;
/** Offset bits the arch entry can hold. */
export const SWP_OFFSET_BITS = 64 - SWP_OFFSET_SHIFT;
const OFFSET_MAX = 2 ** SWP_OFFSET_BITS - 1;
const LO_OFFSET_BITS = 32 - SWP_OFFSET_FIRST_BIT; // 23
const TWO_LO = 2 ** LO_OFFSET_BITS;

export const _PAGE_SWP_SOFT_DIRTY = 1 << _PAGE_BIT_RW;
export const _PAGE_SWP_UFFD_WP = 1 << _PAGE_BIT_USER;
export const _PAGE_SWP_EXCLUSIVE = 1 << _PAGE_BIT_PWT;
const SWP_FLAG_BITS = _PAGE_SWP_SOFT_DIRTY | _PAGE_SWP_UFFD_WP | _PAGE_SWP_EXCLUSIVE;

/** The arch-format swap entry ({type, offset} decoded from / encoded into a PTE). */
export interface arch_swp_entry {
  type: number;
  offset: number;
}

/** __swp_entry(type, offset) as a PTE (__swp_entry_to_pte). */
export function __swp_entry_to_pte(type: number, offset: number): pte_t {
  // Offsets (pfns of migration and device entries) pass 2^31: floor arithmetic, not a float `%`.
  const inv = OFFSET_MAX - (offset - Math.floor(offset / (OFFSET_MAX + 1)) * (OFFSET_MAX + 1));
  const inv_hi = Math.floor(inv / TWO_LO);
  const lo = (inv - inv_hi * TWO_LO) * 2 ** SWP_OFFSET_FIRST_BIT;
  const hi = inv_hi + (type % 32) * 2 ** 27;
  return __pte(lo, hi);
}

/** __pte_to_swp_entry + __swp_type / __swp_offset (flags must already be cleared). */
export function __pte_to_swp_entry(p: pte_t): arch_swp_entry {
  const type = p.hi >>> 27;
  const inv = (p.hi & 0x07ffffff) * TWO_LO + (p.lo >>> SWP_OFFSET_FIRST_BIT);
  return { type, offset: OFFSET_MAX - inv };
}

export function pte_swp_soft_dirty(p: pte_t): boolean {
  return (p.lo & _PAGE_SWP_SOFT_DIRTY) !== 0;
}
export function pte_swp_mksoft_dirty(p: pte_t): pte_t {
  return __pte(p.lo | _PAGE_SWP_SOFT_DIRTY, p.hi);
}
export function pte_swp_clear_soft_dirty(p: pte_t): pte_t {
  return __pte(p.lo & ~_PAGE_SWP_SOFT_DIRTY, p.hi);
}
export function pte_swp_uffd_wp(p: pte_t): boolean {
  return (p.lo & _PAGE_SWP_UFFD_WP) !== 0;
}
export function pte_swp_mkuffd_wp(p: pte_t): pte_t {
  return __pte(p.lo | _PAGE_SWP_UFFD_WP, p.hi);
}
export function pte_swp_clear_uffd_wp(p: pte_t): pte_t {
  return __pte(p.lo & ~_PAGE_SWP_UFFD_WP, p.hi);
}
export function pte_swp_exclusive(p: pte_t): boolean {
  return (p.lo & _PAGE_SWP_EXCLUSIVE) !== 0;
}
export function pte_swp_mkexclusive(p: pte_t): pte_t {
  return __pte(p.lo | _PAGE_SWP_EXCLUSIVE, p.hi);
}
export function pte_swp_clear_exclusive(p: pte_t): pte_t {
  return __pte(p.lo & ~_PAGE_SWP_EXCLUSIVE, p.hi);
}
/** pte_swp_clear_flags() of include/linux/swapops.h. */
export function pte_swp_clear_flags(p: pte_t): pte_t {
  return __pte(p.lo & ~SWP_FLAG_BITS, p.hi);
}

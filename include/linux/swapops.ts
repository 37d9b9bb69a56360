// Mirrors include/linux/swapops.h (Linux 6.8): the arch-independent swp_entry_t and the special
// non-present entries (migration, device-private, device-exclusive, hwpoison, PTE markers).
// The kernel packs swp_entry_t into one unsigned long (type << 58 | offset); kemu keeps the two
// fields apart so no 64-bit arithmetic is needed. The PTE encoding is arch/x86's
// (arch/x86/include/asm/pgtable_64.ts).

import type { Kernel } from "../../kernel/kernel.ts";
import type { page } from "./mm_types.ts";
import type { pte_t } from "./mm.ts";
import { pte_none, pte_present } from "../../arch/x86/include/asm/pgtable.ts";
import { MAX_PHYSMEM_BITS } from "../../arch/x86/include/asm/pgtable_types.ts";
import { __pte_to_swp_entry, __swp_entry_to_pte, pte_swp_clear_flags, SWP_OFFSET_BITS } from "../../arch/x86/include/asm/pgtable_64.ts";
import {
  MAX_SWAPFILES, MAX_SWAPFILES_SHIFT, SWP_DEVICE_EXCLUSIVE_READ, SWP_DEVICE_EXCLUSIVE_WRITE, SWP_DEVICE_READ,
  SWP_DEVICE_WRITE, SWP_HWPOISON, SWP_MIGRATION_READ, SWP_MIGRATION_READ_EXCLUSIVE, SWP_MIGRATION_WRITE, SWP_PTE_MARKER,
} from "./swap.ts";
import { pfn_to_page } from "../../mm/sparse.ts";

/** BITS_PER_XA_VALUE - MAX_SWAPFILES_SHIFT on 64-bit: 58 offset bits. */
export const SWP_TYPE_SHIFT = 63 - MAX_SWAPFILES_SHIFT;
const SWP_OFFSET_LIMIT = 2 ** Math.min(SWP_TYPE_SHIFT, SWP_OFFSET_BITS);

/** pfn bits in the offset of pfn-carrying entries: MAX_PHYSMEM_BITS - PAGE_SHIFT = 34. */
export const SWP_PFN_BITS = MAX_PHYSMEM_BITS - 12;
const SWP_PFN_LIMIT = 2 ** SWP_PFN_BITS;
/** Migration entries keep the old PTE's young/dirty bits just above the pfn. */
export const SWP_MIG_YOUNG_BIT = SWP_PFN_BITS;
export const SWP_MIG_DIRTY_BIT = SWP_PFN_BITS + 1;
const SWP_MIG_YOUNG = 2 ** SWP_MIG_YOUNG_BIT;
const SWP_MIG_DIRTY = 2 ** SWP_MIG_DIRTY_BIT;

export interface swp_entry_t {
  readonly type: number;
  readonly offset: number;
}

export function swp_entry(type: number, offset: number): swp_entry_t {
  return { type, offset: offset % SWP_OFFSET_LIMIT };
}
export function swp_type(e: swp_entry_t): number {
  return e.type;
}
export function swp_offset(e: swp_entry_t): number {
  return e.offset;
}
/** swp_offset_pfn(): the pfn of a pfn-carrying entry (young/dirty bits masked off). */
export function swp_offset_pfn(e: swp_entry_t): number {
  return e.offset % SWP_PFN_LIMIT;
}

/** is_swap_pte(): not none and not present — some kind of swap entry. */
export function is_swap_pte(p: pte_t): boolean {
  return !pte_none(p) && !pte_present(p);
}

/** pte_to_swp_entry(): drop the sw bits, decode the arch entry. */
export function pte_to_swp_entry(p: pte_t): swp_entry_t {
  const a = __pte_to_swp_entry(pte_swp_clear_flags(p));
  return swp_entry(a.type, a.offset);
}

export function swp_entry_to_pte(e: swp_entry_t): pte_t {
  return __swp_entry_to_pte(e.type, e.offset);
}

/** Special entry types are the ones above the real swap files. */
export function non_swap_entry(e: swp_entry_t): boolean {
  return e.type >= MAX_SWAPFILES;
}

// ---- device-private -------------------------------------------------------------------------

export function make_readable_device_private_entry(offset: number): swp_entry_t {
  return swp_entry(SWP_DEVICE_READ, offset);
}
export function make_writable_device_private_entry(offset: number): swp_entry_t {
  return swp_entry(SWP_DEVICE_WRITE, offset);
}
export function is_device_private_entry(e: swp_entry_t): boolean {
  return e.type === SWP_DEVICE_READ || e.type === SWP_DEVICE_WRITE;
}
export function is_writable_device_private_entry(e: swp_entry_t): boolean {
  return e.type === SWP_DEVICE_WRITE;
}

// ---- device-exclusive -----------------------------------------------------------------------

export function make_readable_device_exclusive_entry(offset: number): swp_entry_t {
  return swp_entry(SWP_DEVICE_EXCLUSIVE_READ, offset);
}
export function make_writable_device_exclusive_entry(offset: number): swp_entry_t {
  return swp_entry(SWP_DEVICE_EXCLUSIVE_WRITE, offset);
}
export function is_device_exclusive_entry(e: swp_entry_t): boolean {
  return e.type === SWP_DEVICE_EXCLUSIVE_READ || e.type === SWP_DEVICE_EXCLUSIVE_WRITE;
}
export function is_writable_device_exclusive_entry(e: swp_entry_t): boolean {
  return e.type === SWP_DEVICE_EXCLUSIVE_WRITE;
}

// ---- migration ------------------------------------------------------------------------------

export function make_readable_migration_entry(offset: number): swp_entry_t {
  return swp_entry(SWP_MIGRATION_READ, offset);
}
export function make_readable_exclusive_migration_entry(offset: number): swp_entry_t {
  return swp_entry(SWP_MIGRATION_READ_EXCLUSIVE, offset);
}
export function make_writable_migration_entry(offset: number): swp_entry_t {
  return swp_entry(SWP_MIGRATION_WRITE, offset);
}
export function is_migration_entry(e: swp_entry_t): boolean {
  return e.type === SWP_MIGRATION_READ || e.type === SWP_MIGRATION_READ_EXCLUSIVE || e.type === SWP_MIGRATION_WRITE;
}
export function is_writable_migration_entry(e: swp_entry_t): boolean {
  return e.type === SWP_MIGRATION_WRITE;
}
export function is_readable_migration_entry(e: swp_entry_t): boolean {
  return e.type === SWP_MIGRATION_READ;
}
export function is_readable_exclusive_migration_entry(e: swp_entry_t): boolean {
  return e.type === SWP_MIGRATION_READ_EXCLUSIVE;
}
/** x86-64 has room above the pfn for the A/D bits. */
export function migration_entry_supports_ad(): boolean {
  return true;
}
export function make_migration_entry_young(e: swp_entry_t): swp_entry_t {
  return is_migration_entry_young(e) ? e : swp_entry(e.type, e.offset + SWP_MIG_YOUNG);
}
export function is_migration_entry_young(e: swp_entry_t): boolean {
  return Math.floor(e.offset / SWP_MIG_YOUNG) % 2 === 1;
}
export function make_migration_entry_dirty(e: swp_entry_t): swp_entry_t {
  return is_migration_entry_dirty(e) ? e : swp_entry(e.type, e.offset + SWP_MIG_DIRTY);
}
export function is_migration_entry_dirty(e: swp_entry_t): boolean {
  return Math.floor(e.offset / SWP_MIG_DIRTY) % 2 === 1;
}

// ---- hwpoison and PTE markers ---------------------------------------------------------------

export function make_hwpoison_entry(p: page): swp_entry_t {
  return swp_entry(SWP_HWPOISON, p.pfn);
}
export function is_hwpoison_entry(e: swp_entry_t): boolean {
  return e.type === SWP_HWPOISON;
}

export const PTE_MARKER_UFFD_WP = 1 << 0;
export const PTE_MARKER_POISONED = 1 << 1;
export function make_pte_marker_entry(marker: number): swp_entry_t {
  return swp_entry(SWP_PTE_MARKER, marker);
}
export function is_pte_marker_entry(e: swp_entry_t): boolean {
  return e.type === SWP_PTE_MARKER;
}
export function pte_marker_get(e: swp_entry_t): number {
  return e.offset;
}
export function is_pte_marker(p: pte_t): boolean {
  return is_swap_pte(p) && is_pte_marker_entry(pte_to_swp_entry(p));
}

// ---- pfn-carrying entries ---------------------------------------------------------------------

/** Entries whose offset is a pfn: migration, device-private, device-exclusive, hwpoison. */
export function is_pfn_swap_entry(e: swp_entry_t): boolean {
  return is_migration_entry(e) || is_device_private_entry(e) || is_device_exclusive_entry(e) || is_hwpoison_entry(e);
}

/** pfn_swap_entry_to_page(): kemu passes the machine's Kernel (there is no global memmap). */
export function pfn_swap_entry_to_page(k: Kernel, e: swp_entry_t): page {
  if (!is_pfn_swap_entry(e)) k.BUG("pfn_swap_entry_to_page: not a pfn swap entry");
  return pfn_to_page(k, swp_offset_pfn(e));
}

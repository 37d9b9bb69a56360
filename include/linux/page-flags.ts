// Mirrors include/linux/page-flags.h (Linux 6.8): the PG_* bits of page->flags and the page
// types kept in page->page_type (the word shared with _mapcount). page->flags is a flag word
// (bit operators are fine on it); it never holds an address.

import type { page } from "./mm_types.ts";

// enum pageflags, in the 6.8 order (PG_waiters shares the byte of PG_locked).
export const PG_locked = 0;
export const PG_writeback = 1;
export const PG_referenced = 2;
export const PG_uptodate = 3;
export const PG_dirty = 4;
export const PG_lru = 5;
export const PG_head = 6;
export const PG_waiters = 7;
export const PG_active = 8;
export const PG_workingset = 9;
export const PG_error = 10;
export const PG_slab = 11;
export const PG_owner_priv_1 = 12;
export const PG_arch_1 = 13;
export const PG_reserved = 14;
export const PG_private = 15;
export const PG_private_2 = 16;
export const PG_mappedtodisk = 17;
export const PG_reclaim = 18;
export const PG_swapbacked = 19;
export const PG_unevictable = 20;
export const PG_mlocked = 21;
export const PG_hwpoison = 22;
export const __NR_PAGEFLAGS = 23;
// Aliases.
export const PG_readahead = PG_reclaim;
/** Anonymous pages: the page is exclusive to one process (may be written without COW). */
export const PG_anon_exclusive = PG_mappedtodisk;
export const PG_swapcache = PG_owner_priv_1;
export const PG_checked = PG_owner_priv_1;

/** Flags a page being freed must not carry (PAGE_FLAGS_CHECK_AT_FREE). */
export const PAGE_FLAGS_CHECK_AT_FREE =
  (1 << PG_lru) | (1 << PG_locked) | (1 << PG_private) | (1 << PG_private_2) | (1 << PG_writeback) |
  (1 << PG_reserved) | (1 << PG_slab) | (1 << PG_active) | (1 << PG_unevictable) | (1 << PG_mlocked) |
  (1 << PG_hwpoison);

function test(p: page, bit: number): boolean {
  return (p.flags & (1 << bit)) !== 0;
}
function set(p: page, bit: number): void {
  p.flags |= 1 << bit;
}
function clear(p: page, bit: number): void {
  p.flags &= ~(1 << bit);
}
function test_and_set(p: page, bit: number): boolean {
  const old = test(p, bit);
  set(p, bit);
  return old;
}
function test_and_clear(p: page, bit: number): boolean {
  const old = test(p, bit);
  clear(p, bit);
  return old;
}

export const PageLocked = (p: page): boolean => test(p, PG_locked);
export const __SetPageLocked = (p: page): void => set(p, PG_locked);
export const __ClearPageLocked = (p: page): void => clear(p, PG_locked);
export const PageWaiters = (p: page): boolean => test(p, PG_waiters);
export const SetPageWaiters = (p: page): void => set(p, PG_waiters);
export const ClearPageWaiters = (p: page): void => clear(p, PG_waiters);
export const PageReferenced = (p: page): boolean => test(p, PG_referenced);
export const SetPageReferenced = (p: page): void => set(p, PG_referenced);
export const ClearPageReferenced = (p: page): void => clear(p, PG_referenced);
export const TestClearPageReferenced = (p: page): boolean => test_and_clear(p, PG_referenced);
export const PageUptodate = (p: page): boolean => test(p, PG_uptodate);
export const SetPageUptodate = (p: page): void => set(p, PG_uptodate);
export const __SetPageUptodate = (p: page): void => set(p, PG_uptodate);
export const ClearPageUptodate = (p: page): void => clear(p, PG_uptodate);
export const PageDirty = (p: page): boolean => test(p, PG_dirty);
export const SetPageDirty = (p: page): void => set(p, PG_dirty);
export const ClearPageDirty = (p: page): void => clear(p, PG_dirty);
export const TestClearPageDirty = (p: page): boolean => test_and_clear(p, PG_dirty);
export const TestSetPageDirty = (p: page): boolean => test_and_set(p, PG_dirty);
export const PageLRU = (p: page): boolean => test(p, PG_lru);
export const SetPageLRU = (p: page): void => set(p, PG_lru);
export const ClearPageLRU = (p: page): void => clear(p, PG_lru);
export const PageActive = (p: page): boolean => test(p, PG_active);
export const PageReserved = (p: page): boolean => test(p, PG_reserved);
export const SetPageReserved = (p: page): void => set(p, PG_reserved);
export const ClearPageReserved = (p: page): void => clear(p, PG_reserved);
export const PageSwapBacked = (p: page): boolean => test(p, PG_swapbacked);
export const SetPageSwapBacked = (p: page): void => set(p, PG_swapbacked);
export const __SetPageSwapBacked = (p: page): void => set(p, PG_swapbacked);
export const ClearPageSwapBacked = (p: page): void => clear(p, PG_swapbacked);
export const PageWriteback = (p: page): boolean => test(p, PG_writeback);
export const PageHWPoison = (p: page): boolean => test(p, PG_hwpoison);
export const PagePrivate = (p: page): boolean => test(p, PG_private);
export const PageHead = (p: page): boolean => test(p, PG_head);
export const PageSwapCache = (p: page): boolean => test(p, PG_swapcache) && test(p, PG_swapbacked);

export const PageAnonExclusive = (p: page): boolean => test(p, PG_anon_exclusive);
export const SetPageAnonExclusive = (p: page): void => set(p, PG_anon_exclusive);
export const ClearPageAnonExclusive = (p: page): void => clear(p, PG_anon_exclusive);

// ---- page types: stored inverted in the word shared with _mapcount --------------------------
// A page with no type has page_type == -1 (all ones) — the same bits as _mapcount == -1.
// Setting a type clears its bit under PAGE_TYPE_BASE, which makes the value very negative, so a
// typed page can never be mistaken for a mapped one.
export const PAGE_TYPE_BASE = 0xf0000000;
export const PAGE_MAPCOUNT_RESERVE = -128;
export const PG_buddy = 0x00000080;
export const PG_offline = 0x00000100;
export const PG_table = 0x00000200;
export const PG_guard = 0x00000400;

function page_type_word(p: page): number {
  return p._mapcount >>> 0;
}

/** page_type_has_type(): any type set (the word is below PAGE_MAPCOUNT_RESERVE). */
export function page_has_type(p: page): boolean {
  return p._mapcount < PAGE_MAPCOUNT_RESERVE;
}

function page_type_test(p: page, flag: number): boolean {
  return ((page_type_word(p) & (PAGE_TYPE_BASE | flag)) >>> 0) === PAGE_TYPE_BASE;
}

export const PageTable = (p: page): boolean => page_type_test(p, PG_table);
export function __SetPageTable(p: page): void {
  p._mapcount = (page_type_word(p) & ~PG_table) | 0;
}
export function __ClearPageTable(p: page): void {
  p._mapcount = (page_type_word(p) | PG_table) | 0;
}
export const PageOffline = (p: page): boolean => page_type_test(p, PG_offline);

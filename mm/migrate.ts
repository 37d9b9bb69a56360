// Mirrors the parts of mm/migrate.c (Linux 6.8) that device migration uses: waiting on a
// migration entry, replacing migration entries with the new page (remove_migration_ptes), and
// moving a page's identity to its replacement (folio_migrate_mapping / folio_migrate_flags).
// Plus folio_isolate_lru / folio_putback_lru (mm/vmscan.c, mm/migrate.c): kemu has no LRU
// lists, so isolation is the PG_lru bit plus the reference the kernel takes with it.

import { EAGAIN } from "../include/uapi/asm-generic/errno.ts";
import type { address_space, page, vm_area_struct, mm_struct } from "../include/linux/mm_types.ts";
import { PageAnon, get_page, put_page, page_count } from "../include/linux/mm.ts";
import {
  PageLRU, SetPageLRU, ClearPageLRU, PageDirty, SetPageDirty, PageReferenced, SetPageReferenced, PageUptodate,
  SetPageUptodate, PageSwapBacked, SetPageSwapBacked,
} from "../include/linux/page-flags.ts";
import { is_device_private_page } from "../include/linux/memremap.ts";
import {
  ptep_get, mk_pte, pte_mkold, pte_mkdirty, pte_mkwrite, pte_mksoft_dirty, pte_mkuffd_wp, pte_write,
} from "../arch/x86/include/asm/pgtable.ts";
import { set_pte_at, pte_val_hex } from "../arch/x86/include/asm/pgtable.ts";
import {
  pte_swp_soft_dirty, pte_swp_mksoft_dirty, pte_swp_uffd_wp, pte_swp_mkuffd_wp,
} from "../arch/x86/include/asm/pgtable_64.ts";
import {
  pte_to_swp_entry, swp_entry_to_pte, is_migration_entry, is_migration_entry_young, is_migration_entry_dirty,
  is_writable_migration_entry, is_readable_migration_entry, make_writable_device_private_entry,
  make_readable_device_private_entry, is_swap_pte, pfn_swap_entry_to_page,
} from "../include/linux/swapops.ts";
import { pte_offset_map_lock, pte_unmap_unlock } from "./pgtable-generic.ts";
import {
  rmap_walk, DEFINE_PAGE_VMA_WALK, page_vma_mapped_walk_next, PVMW_SYNC, PVMW_MIGRATION, RMAP_NONE, RMAP_EXCLUSIVE,
  page_add_anon_rmap, page_add_file_rmap,
} from "./rmap.ts";
import { wait_on_page_locked } from "./filemap.ts";
import { page_pgdat } from "../include/linux/mmzone.ts";
import { ftrace } from "../include/linux/ftrace.ts";
import { trace_remove_migration_pte } from "../include/trace/events/migrate.ts";

export const MIGRATEPAGE_SUCCESS = 0;

/**
 * migration_entry_wait(): a fault met a migration entry. Sleep until the page is unlocked
 * (the migration finished or was rolled back); the caller then retries and sees the new PTE.
 */
export async function migration_entry_wait(mm: mm_struct, pmd: number, address: number): Promise<void> {
  using _ = ftrace(mm.k, "migration_entry_wait");
  const l = pte_offset_map_lock(mm, pmd, address);
  if (!l) return;
  const pte = ptep_get(mm.k, l.pte);
  if (!is_swap_pte(pte) || !is_migration_entry(pte_to_swp_entry(pte))) {
    pte_unmap_unlock(l.pte, l.ptl);
    return;
  }
  const p = pfn_swap_entry_to_page(mm.k, pte_to_swp_entry(pte));
  // migration_entry_wait_on_locked(): no page reference (since 6.0) — one would make the
  // migration that holds the lock fail its refcount check. The page stays locked, so it cannot
  // be freed while this task queues on it; nothing runs between dropping the PTL and queueing.
  pte_unmap_unlock(l.pte, l.ptl);
  await wait_on_page_locked(p);
}

/** remove_migration_pte(): one mapping of `old` becomes a mapping of `folio`. */
function remove_migration_pte(folio: page, vma: vm_area_struct, addr: number, old: page): boolean {
  const pvmw = DEFINE_PAGE_VMA_WALK(old, vma, addr, PVMW_SYNC | PVMW_MIGRATION);
  const k = vma.vm_mm.k;
  while (page_vma_mapped_walk_next(pvmw)) {
    let rmap_flags = RMAP_NONE;
    get_page(folio);
    const old_pte = ptep_get(k, pvmw.pte!);
    const entry = pte_to_swp_entry(old_pte);
    let pte = mk_pte(folio, vma.vm_page_prot);
    if (pte_swp_soft_dirty(old_pte)) pte = pte_mksoft_dirty(pte);
    if (!is_migration_entry_young(entry)) pte = pte_mkold(pte);
    if (PageDirty(folio) && is_migration_entry_dirty(entry)) pte = pte_mkdirty(pte);
    if (is_writable_migration_entry(entry)) pte = pte_mkwrite(pte, vma);
    else if (pte_swp_uffd_wp(old_pte)) pte = pte_mkuffd_wp(pte);
    if (PageAnon(folio) && !is_readable_migration_entry(entry)) rmap_flags |= RMAP_EXCLUSIVE;
    if (is_device_private_page(folio)) {
      const dev = pte_write(pte) ? make_writable_device_private_entry(folio.pfn) : make_readable_device_private_entry(folio.pfn);
      pte = swp_entry_to_pte(dev);
      if (pte_swp_soft_dirty(old_pte)) pte = pte_swp_mksoft_dirty(pte);
      if (pte_swp_uffd_wp(old_pte)) pte = pte_swp_mkuffd_wp(pte);
    }
    if (PageAnon(folio)) page_add_anon_rmap(folio, vma, pvmw.address, rmap_flags);
    else page_add_file_rmap(folio, vma, false);
    // No TLB flush: the entry was not present before.
    set_pte_at(vma.vm_mm, pvmw.address, pvmw.pte!, pte);
    if (trace_remove_migration_pte.enabled) trace_remove_migration_pte.trace(k, { addr: pvmw.address, pte: pte_val_hex(pte), order: 0 });
  }
  return true;
}

// A module-level callback: tsx keeps function names, so a closure made per page costs a
// defineProperty on every call.
function remove_migration_pte_one(folio: page, vma: vm_area_struct, addr: number, arg: unknown): boolean {
  return remove_migration_pte(folio, vma, addr, arg as page);
}

/** remove_migration_ptes(src, dst): every migration entry for src now maps dst. */
export function remove_migration_ptes(src: page, dst: page, _locked: boolean): void {
  using _ = ftrace(page_pgdat(dst).k, "remove_migration_ptes");
  rmap_walk(dst, { arg: src, rmap_one: remove_migration_pte_one });
}

/** folio_expected_refs(): references a page is expected to hold besides its mappings. */
function folio_expected_refs(mapping: address_space | null): number {
  return mapping ? 2 : 1;
}

/**
 * folio_migrate_mapping(): the new page takes over the old one's identity (anon_vma or
 * page-cache slot). Fails with -EAGAIN if someone took an unexpected reference since setup.
 */
export function folio_migrate_mapping(mapping: address_space | null, newfolio: page, folio: page, extra_count: number): number {
  const expected = folio_expected_refs(mapping) + extra_count;
  if (page_count(folio) !== expected) return -EAGAIN;
  newfolio.index = folio.index;
  newfolio.mapping = folio.mapping;
  if (PageSwapBacked(folio)) SetPageSwapBacked(newfolio);
  if (mapping) {
    // The page cache's reference moves with the slot.
    get_page(newfolio);
    mapping.i_pages.set(folio.index, newfolio);
    put_page(folio);
  }
  return MIGRATEPAGE_SUCCESS;
}

/** folio_migrate_flags(): page state the new page inherits (kemu's subset of the flags). */
export function folio_migrate_flags(newfolio: page, folio: page): void {
  if (PageReferenced(folio)) SetPageReferenced(newfolio);
  if (PageUptodate(folio)) SetPageUptodate(newfolio);
  if (PageDirty(folio)) SetPageDirty(newfolio);
}

/** migrate_folio_extra() in MIGRATE_SYNC_NO_COPY mode: the driver already copied the data. */
export function migrate_folio_extra(mapping: address_space | null, dst: page, src: page, extra_count: number): number {
  const rc = folio_migrate_mapping(mapping, dst, src, extra_count);
  if (rc !== MIGRATEPAGE_SUCCESS) return rc;
  folio_migrate_flags(dst, src);
  return MIGRATEPAGE_SUCCESS;
}

/** folio_isolate_lru(): take the page off the LRU with an extra reference. */
export function folio_isolate_lru(p: page): boolean {
  if (!PageLRU(p)) return false;
  ClearPageLRU(p);
  get_page(p);
  return true;
}

/** folio_putback_lru(): back on the LRU, dropping the isolation reference. */
export function folio_putback_lru(p: page): void {
  SetPageLRU(p);
  put_page(p);
}
export const putback_lru_page = folio_putback_lru;

// Mirrors mm/memory.c (Linux 6.8, the 6.1–6.14 device-memory model of mm.md): page-table
// teardown (zap_pte_range … unmap_vmas, zap_page_range_single, unmap_mapping_range), fork's
// copy_page_range, and the fault handler: handle_mm_fault → __handle_mm_fault →
// handle_pte_fault → do_anonymous_page / do_fault / do_wp_page / do_swap_page (non-swap
// entries: migration wait, device-exclusive restore, device-private migrate_to_ram).
//
// kemu: no THP, hugetlb, swap, NUMA hinting, userfaultfd or per-VMA locks; one page_table_lock
// per mm (docs/fidelity.md). Every PTE-changing path runs inside an MMU notifier window.

import type { mm_struct, page, vm_area_struct, address_space } from "../include/linux/mm_types.ts";
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES } from "../include/linux/mm_types.ts";
import {
  PAGE_SIZE, FAULT_FLAG_WRITE, FAULT_FLAG_UNSHARE, FAULT_FLAG_TRIED, FAULT_FLAG_ALLOW_RETRY,
  FAULT_FLAG_RETRY_NOWAIT, FAULT_FLAG_KILLABLE, FAULT_FLAG_ORIG_PTE_VALID, FAULT_FLAG_VMA_LOCK,
  VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV, VM_FAULT_MAJOR, VM_FAULT_RETRY, VM_FAULT_ERROR, VM_FAULT_NOPAGE,
  VM_FAULT_LOCKED, VM_FAULT_DONE_COW, VM_FAULT_HWPOISON, VM_SHARED, VM_MAYSHARE, VM_WRITE,
  VM_MAYWRITE, VM_PFNMAP, VM_MIXEDMAP, VM_GROWSDOWN,
  type pte_t, type vm_fault, get_page, put_page, get_page_unless_zero, is_zero_pfn, my_zero_pfn, PageAnon,
  vma_is_anonymous, vma_is_accessible, is_cow_mapping, linear_page_index,
} from "../include/linux/mm.ts";
import {
  pte_none, pte_present, pte_protnone, pte_write, pte_dirty, pte_young, pte_pfn, pte_special, pte_same, pte_mkwrite,
  pte_wrprotect, pte_mkdirty, pte_mkclean, pte_mkyoung, pte_mkold, pte_mkspecial, pte_mksoft_dirty, pte_mkuffd_wp,
  pte_clear_uffd_wp, pfn_pte, mk_pte, ptep_get, set_pte_at, pte_clear, ptep_get_and_clear,
  ptep_set_wrprotect, ptep_set_access_flags, pgd_offset, p4d_offset, pud_offset, pmd_offset, pmdp_get, pudp_get,
  p4dp_get, pmd_none, pud_none, p4d_none, pte_val_hex, NONE_PTE,
} from "../arch/x86/include/asm/pgtable.ts";
import { PGDIR_SIZE, PUD_SIZE, PMD_SIZE } from "../arch/x86/include/asm/pgtable_types.ts";
import { pte_swp_soft_dirty, pte_swp_uffd_wp, pte_swp_mksoft_dirty, pte_swp_mkuffd_wp, pte_swp_clear_uffd_wp } from "../arch/x86/include/asm/pgtable_64.ts";
import {
  pte_to_swp_entry, swp_entry_to_pte, non_swap_entry, is_migration_entry, is_readable_migration_entry,
  make_readable_migration_entry, is_device_private_entry, is_writable_device_private_entry,
  make_readable_device_private_entry, is_device_exclusive_entry, is_writable_device_exclusive_entry,
  is_hwpoison_entry, is_pte_marker_entry, pfn_swap_entry_to_page, swp_offset,
} from "../include/linux/swapops.ts";
import { page_has_type, PageAnonExclusive, SetPageAnonExclusive, SetPageDirty, SetPageReferenced, __SetPageUptodate, PageHWPoison, PageLocked, PageSwapBacked } from "../include/linux/page-flags.ts";
import { pfn_valid, pfn_to_page } from "./sparse.ts";
import { alloc_page_vma } from "./page_alloc.ts";
import { GFP_HIGHUSER_MOVABLE, __GFP_ZERO } from "../include/linux/gfp_types.ts";
import { copy_user_highpage } from "../include/linux/highmem.ts";
import {
  anon_vma_prepare, page_add_new_anon_rmap, page_add_anon_rmap, page_add_file_rmap, page_remove_rmap,
  page_try_dup_anon_rmap, page_dup_rmap, RMAP_NONE,
} from "./rmap.ts";
import {
  pte_alloc, pte_offset_map, pte_offset_map_lock, pte_unmap_unlock, p4d_alloc, pud_alloc, pmd_alloc, walk_to_pmd,
  ptep_clear_flush, mm_find_pmd, get_locked_pte,
} from "./pgtable-generic.ts";
import { spin_lock, spin_lock_nested, spin_unlock } from "../kernel/locking/spinlock.ts";
import {
  mmu_notifier_range, mmu_notifier_range_init, mmu_notifier_range_init_owner, mmu_notifier_invalidate_range_start,
  mmu_notifier_invalidate_range_end, MMU_NOTIFY_UNMAP, MMU_NOTIFY_CLEAR, MMU_NOTIFY_PROTECTION_PAGE, MMU_NOTIFY_EXCLUSIVE,
} from "./mmu_notifier.ts";
import { tlb_gather_mmu, tlb_finish_mmu, tlb_remove_tlb_entry, tlb_remove_page, type mmu_gather } from "./mmu_gather.ts";
import { lock_page, trylock_page, unlock_page, wait_on_page_locked, lock_page_killable } from "./filemap.ts";
import { lru_add_drain, lru_cache_add } from "./swap.ts";
import { migration_entry_wait } from "./migrate.ts";
import { mmap_read_unlock, mmap_read_lock_killable, mmap_read_trylock, mmap_write_lock_killable, mmap_write_unlock, mmap_write_downgrade } from "../include/linux/mmap_lock.ts";
import { find_vma, expand_stack_locked } from "./mmap.ts";
import { NODE_DATA } from "../include/linux/mmzone.ts";
import { EBUSY, EFAULT, EINVAL, ENOENT, ENOMEM } from "../include/uapi/asm-generic/errno.ts";
import { ftrace } from "../include/linux/ftrace.ts";

// ---- rss counters ------------------------------------------------------------------------------

/** mm_counter_file(): shmem pages count as MM_SHMEMPAGES. */
export function mm_counter_file(p: page): number {
  return PageSwapBacked(p) ? MM_SHMEMPAGES : MM_FILEPAGES;
}

/** mm_counter(page): which rss bucket a mapped page counts in. */
export function mm_counter(p: page): number {
  return PageAnon(p) ? MM_ANONPAGES : mm_counter_file(p);
}

export function add_mm_counter(mm: mm_struct, member: number, value: number): void {
  mm.rss_stat[member]! += value;
}
export function inc_mm_counter(mm: mm_struct, member: number): void {
  add_mm_counter(mm, member, 1);
}
export function dec_mm_counter(mm: mm_struct, member: number): void {
  add_mm_counter(mm, member, -1);
}
export function get_mm_counter(mm: mm_struct, member: number): number {
  return mm.rss_stat[member]!;
}
export function get_mm_rss(mm: mm_struct): number {
  return mm.rss_stat[MM_FILEPAGES]! + mm.rss_stat[MM_ANONPAGES]! + mm.rss_stat[MM_SHMEMPAGES]!;
}

// ---- helpers -------------------------------------------------------------------------------------

/** print_bad_pte(): report a PTE that makes no sense, and taint (TAINT_BAD_PAGE). */
export function print_bad_pte(vma: vm_area_struct, addr: number, pte: pte_t, p: page | null): void {
  const k = vma.vm_mm.k;
  k.pr_alert(`BUG: Bad page map in process ${k.current.comm}  pte:${pte_val_hex(pte).slice(2)} pmd:0`);
  if (p) k.pr_alert(`page:pfn 0x${p.pfn.toString(16)} refcount:${p._refcount} mapcount:${p._mapcount + 1}`);
  k.pr_alert(`addr:${addr.toString(16).padStart(16, "0")} vm_flags:${vma.vm_flags.toString(16).padStart(8, "0")} anon_vma:${vma.anon_vma ? "set" : "0"} mapping:${vma.vm_file ? vma.vm_file.path : "0"} index:${linear_page_index(vma, addr).toString(16)}`);
  k.taint |= 1 << 5;
  k.record_splat("bug", "Bad page map");
}

/**
 * vm_normal_page(vma, addr, pte): the struct page a present PTE maps, or null for special
 * mappings (the zero page, VM_PFNMAP/VM_MIXEDMAP pfns without a normal page).
 */
export function vm_normal_page(vma: vm_area_struct, addr: number, pte: pte_t): page | null {
  const pfn = pte_pfn(pte);
  if (pte_special(pte) || is_zero_pfn(pfn)) return null;
  if (vma.vm_flags & (VM_PFNMAP | VM_MIXEDMAP)) {
    if (vma.vm_flags & VM_PFNMAP || !pfn_valid(vma.vm_mm.k, pfn)) return null;
  }
  if (!pfn_valid(vma.vm_mm.k, pfn)) {
    print_bad_pte(vma, addr, pte, null);
    return null;
  }
  return pfn_to_page(vma.vm_mm.k, pfn);
}

/** maybe_mkwrite(pte, vma): writable only if the VMA allows writes. */
export function maybe_mkwrite(pte: pte_t, vma: vm_area_struct): pte_t {
  return vma.vm_flags & VM_WRITE ? pte_mkwrite(pte, vma) : pte;
}

// ---- teardown ------------------------------------------------------------------------------------

/** struct zap_details: which pages a zap may touch. */
export interface zap_details {
  /** Zap COWed anonymous pages of shared-file truncation too (unmap_mapping_range). */
  even_cows: boolean;
  /** Only this page (single_folio), or any. */
  single_page?: page | null;
}

function should_zap_page(details: zap_details | null, p: page | null): boolean {
  if (!details || !p) return true;
  if (details.single_page && details.single_page !== p) return false;
  return details.even_cows || !PageAnon(p);
}

/** zap_pte_range(): clear the PTEs of one table in [addr, end) (PT lock held). */
function zap_pte_range(tlb: mmu_gather, vma: vm_area_struct, pmd: number, addr: number, end: number, details: zap_details | null): void {
  using _ = ftrace(vma.vm_mm.k, "zap_pte_range");
  const mm = vma.vm_mm;
  const l = pte_offset_map_lock(mm, pmd, addr);
  if (!l) return;
  try {
    for (let a = addr, ptep = l.pte; a < end; a += PAGE_SIZE, ptep += 8) {
      const ptent = ptep_get(mm.k, ptep);
      if (pte_none(ptent)) continue;
      if (pte_present(ptent)) zap_present_pte(tlb, vma, ptep, ptent, a, details);
      else zap_nonpresent_pte(vma, ptep, ptent, a, details);
    }
  } finally {
    pte_unmap_unlock(l.pte, l.ptl);
  }
}

function zap_present_pte(tlb: mmu_gather, vma: vm_area_struct, ptep: number, ptent: pte_t, addr: number, details: zap_details | null): void {
  const mm = vma.vm_mm;
  const p = vm_normal_page(vma, addr, ptent);
  if (!should_zap_page(details, p)) return;
  ptep_get_and_clear(mm, addr, ptep);
  tlb_remove_tlb_entry(tlb, ptep, addr);
  if (!p) return;
  if (!PageAnon(p)) {
    if (pte_dirty(ptent)) SetPageDirty(p);
    if (pte_young(ptent)) SetPageReferenced(p);
  }
  dec_mm_counter(mm, mm_counter(p));
  page_remove_rmap(p, vma, false);
  // The mapping's reference is dropped only after the TLB flush (tlb_finish_mmu).
  tlb_remove_page(tlb, p);
}

/** zap_nonpresent_ptes(): device-private/exclusive entries drop their reference at once. */
function zap_nonpresent_pte(vma: vm_area_struct, ptep: number, ptent: pte_t, addr: number, details: zap_details | null): void {
  const mm = vma.vm_mm;
  const entry = pte_to_swp_entry(ptent);
  if (is_device_private_entry(entry) || is_device_exclusive_entry(entry)) {
    const p = pfn_swap_entry_to_page(mm.k, entry);
    if (!should_zap_page(details, p)) return;
    mm.k.WARN_ON_ONCE(!vma_is_anonymous(vma), "zap: device entry in a non-anonymous VMA");
    dec_mm_counter(mm, mm_counter(p));
    if (is_device_private_entry(entry)) page_remove_rmap(p, vma, false);
    pte_clear(mm, addr, ptep);
    put_page(p);
    return;
  }
  if (is_migration_entry(entry)) {
    const p = pfn_swap_entry_to_page(mm.k, entry);
    if (!should_zap_page(details, p)) return;
    dec_mm_counter(mm, mm_counter(p));
  } else if (!non_swap_entry(entry)) {
    // kemu has no swap devices: a real swap entry cannot have been made.
    print_bad_pte(vma, addr, ptent, null);
  } else if (!is_hwpoison_entry(entry) && !is_pte_marker_entry(entry)) {
    mm.k.WARN_ON_ONCE(true, `zap: unexpected swap entry ${pte_val_hex(ptent)}`);
  }
  pte_clear(mm, addr, ptep);
}

/** unmap_page_range(): walk the tables of [addr, end) and zap the PTE tables found. */
function unmap_page_range(tlb: mmu_gather, vma: vm_area_struct, addr: number, end: number, details: zap_details | null): void {
  using _ = ftrace(vma.vm_mm.k, "unmap_page_range");
  const mm = vma.vm_mm;
  const k = mm.k;
  for (let a = addr; a < end; ) {
    const pgd_end = Math.min(end, (Math.floor(a / PGDIR_SIZE) + 1) * PGDIR_SIZE);
    const p4d = p4d_offset(pgd_offset(mm, a), a);
    if (p4d_none(p4dp_get(k, p4d))) {
      a = pgd_end;
      continue;
    }
    for (let b = a; b < pgd_end; ) {
      const pud_end = Math.min(pgd_end, (Math.floor(b / PUD_SIZE) + 1) * PUD_SIZE);
      const pud = pud_offset(k, p4d, b);
      if (!pud_none(pudp_get(k, pud))) {
        for (let c = b; c < pud_end; ) {
          const pmd_end = Math.min(pud_end, (Math.floor(c / PMD_SIZE) + 1) * PMD_SIZE);
          const pmd = pmd_offset(k, pud, c);
          if (!pmd_none(pmdp_get(k, pmd))) zap_pte_range(tlb, vma, pmd, c, pmd_end, details);
          c = pmd_end;
        }
      }
      b = pud_end;
    }
    a = pgd_end;
  }
}

/** unmap_single_vma(): zap the part of vma inside [start, end). */
function unmap_single_vma(tlb: mmu_gather, vma: vm_area_struct, start_addr: number, end_addr: number, details: zap_details | null): void {
  using _ = ftrace(vma.vm_mm.k, "unmap_single_vma");
  const start = Math.max(vma.vm_start, start_addr);
  const end = Math.min(vma.vm_end, end_addr);
  if (start >= end) return;
  unmap_page_range(tlb, vma, start, end, details);
}

/**
 * unmap_vmas(tlb, vmas, start, end): one MMU_NOTIFY_UNMAP window over [start, end) while every
 * VMA's pages are zapped (munmap, exit). Pages are released by tlb_finish_mmu.
 */
export async function unmap_vmas(tlb: mmu_gather, vmas: vm_area_struct[], start_addr: number, end_addr: number): Promise<void> {
  using _ = ftrace(tlb.mm.k, "unmap_vmas");
  if (!vmas.length) return;
  const range = new mmu_notifier_range();
  mmu_notifier_range_init(range, MMU_NOTIFY_UNMAP, 0, tlb.mm, start_addr, end_addr);
  await mmu_notifier_invalidate_range_start(range);
  for (const v of vmas) unmap_single_vma(tlb, v, start_addr, end_addr, null);
  await mmu_notifier_invalidate_range_end(range);
}

/**
 * zap_page_range_single(vma, address, size, details): zap one range of one VMA inside an
 * MMU_NOTIFY_CLEAR window (madvise(MADV_DONTNEED), truncation).
 */
export async function zap_page_range_single(vma: vm_area_struct, address: number, size: number, details: zap_details | null): Promise<void> {
  using _ = ftrace(vma.vm_mm.k, "zap_page_range_single");
  const end = address + size;
  const mm = vma.vm_mm;
  lru_add_drain();
  const range = new mmu_notifier_range();
  mmu_notifier_range_init(range, MMU_NOTIFY_CLEAR, 0, mm, address, end);
  const tlb = tlb_gather_mmu(mm);
  await mmu_notifier_invalidate_range_start(range);
  unmap_single_vma(tlb, vma, address, end, details);
  await mmu_notifier_invalidate_range_end(range);
  tlb_finish_mmu(tlb);
}

/** zap_vma_ptes(vma, address, size): for drivers that inserted pfns into a VM_PFNMAP VMA. */
export async function zap_vma_ptes(vma: vm_area_struct, address: number, size: number): Promise<void> {
  if (address < vma.vm_start || address + size > vma.vm_end || !(vma.vm_flags & VM_PFNMAP)) return;
  await zap_page_range_single(vma, address, size, null);
}

/**
 * unmap_mapping_range(mapping, holebegin, holelen, even_cows): unmap the file pages of
 * [holebegin, holebegin + holelen) (holelen 0 = to the end) from every VMA mapping them. The
 * mapping's VMAs come from its i_mmap set. Async: each VMA is zapped in a notifier window.
 */
export async function unmap_mapping_range(mapping: address_space, holebegin: number, holelen: number, even_cows: boolean): Promise<void> {
  const i_mmap = (mapping as { i_mmap?: Set<vm_area_struct> }).i_mmap;
  if (!i_mmap) return;
  const first = Math.floor(holebegin / PAGE_SIZE);
  const last = holelen ? first + Math.ceil(holelen / PAGE_SIZE) - 1 : Number.MAX_SAFE_INTEGER;
  const details: zap_details = { even_cows };
  for (const vma of [...i_mmap]) {
    const vstart = vma.vm_pgoff;
    const vlast = vstart + (vma.vm_end - vma.vm_start) / PAGE_SIZE - 1;
    if (vlast < first || vstart > last) continue;
    const s = vma.vm_start + (Math.max(first, vstart) - vstart) * PAGE_SIZE;
    const e = vma.vm_start + (Math.min(last, vlast) - vstart + 1) * PAGE_SIZE;
    await zap_page_range_single(vma, s, e - s, details);
  }
}

// ---- drivers inserting pages ------------------------------------------------------------------------

/**
 * vm_insert_page(vma, addr, page): map a driver-owned page (not anonymous, not typed) into a
 * VMA, which becomes VM_MIXEDMAP. mmap_lock held for writing (from ->mmap). -EFAULT outside the
 * VMA, -EINVAL for a free/anon/typed page, -ENOMEM without page tables, -EBUSY if mapped.
 */
export async function vm_insert_page(vma: vm_area_struct, addr: number, p: page): Promise<number> {
  if (addr < vma.vm_start || addr >= vma.vm_end) return -EFAULT;
  if (!p._refcount) return -EINVAL;
  if (!(vma.vm_flags & VM_MIXEDMAP)) {
    if (vma.vm_flags & VM_PFNMAP) vma.vm_mm.k.BUG("vm_insert_page into a VM_PFNMAP VMA");
    vma.vm_flags |= VM_MIXEDMAP;
  }
  if (PageAnon(p) || page_has_type(p)) return -EINVAL;
  const l = get_locked_pte(vma.vm_mm, addr);
  if (!l) return -ENOMEM;
  try {
    if (!pte_none(ptep_get(vma.vm_mm.k, l.pte))) return -EBUSY;
    get_page(p);
    inc_mm_counter(vma.vm_mm, mm_counter_file(p));
    page_add_file_rmap(p, vma, false);
    set_pte_at(vma.vm_mm, addr, l.pte, mk_pte(p, vma.vm_page_prot));
    return 0;
  } finally {
    pte_unmap_unlock(l.pte, l.ptl);
  }
}

// ---- fork: copy_page_range -------------------------------------------------------------------------

/**
 * try_restore_exclusive_pte() / restore_exclusive_pte(): turn a device-exclusive entry back
 * into the present PTE it replaced. The entry's page reference becomes the mapping's again.
 */
export function restore_exclusive_pte(vma: vm_area_struct, p: page, address: number, ptep: number): void {
  const mm = vma.vm_mm;
  const orig = ptep_get(mm.k, ptep);
  let pte = pte_mkold(mk_pte(p, vma.vm_page_prot));
  if (pte_swp_soft_dirty(orig)) pte = pte_mksoft_dirty(pte);
  const entry = pte_to_swp_entry(orig);
  if (pte_swp_uffd_wp(orig)) pte = pte_mkuffd_wp(pte);
  else if (is_writable_device_exclusive_entry(entry)) pte = maybe_mkwrite(pte_mkdirty(pte), vma);
  mm.k.WARN_ON_ONCE(pte_write(pte) && !(PageAnon(p) && PageAnonExclusive(p)), "restore_exclusive_pte: writable non-exclusive");
  if (PageAnon(p)) page_add_anon_rmap(p, vma, address, RMAP_NONE);
  else mm.k.WARN_ON_ONCE(true, "restore_exclusive_pte: file page");
  set_pte_at(mm, address, ptep, pte);
}

function try_restore_exclusive_pte(ptep: number, vma: vm_area_struct, addr: number): number {
  const p = pfn_swap_entry_to_page(vma.vm_mm.k, pte_to_swp_entry(ptep_get(vma.vm_mm.k, ptep)));
  if (!trylock_page(p)) return -EBUSY;
  restore_exclusive_pte(vma, p, addr, ptep);
  unlock_page(p);
  return 0;
}

/**
 * copy_nonpresent_pte(): migration entries become readable in COW mappings; device-private
 * entries take an extra page reference and, in COW mappings, are made readable on both sides;
 * device-exclusive entries are restored first (-ENOENT: copy as present; -EBUSY: page locked).
 */
function copy_nonpresent_pte(dst_vma: vm_area_struct, src_vma: vm_area_struct, dst_pte: number, src_pte: number, addr: number): number {
  const src_mm = src_vma.vm_mm;
  const orig = ptep_get(src_mm.k, src_pte);
  let entry = pte_to_swp_entry(orig);
  let pte = orig;
  if (!non_swap_entry(entry)) {
    print_bad_pte(src_vma, addr, orig, null);
    return 0;
  }
  if (is_migration_entry(entry)) {
    const p = pfn_swap_entry_to_page(src_mm.k, entry);
    inc_mm_counter(dst_vma.vm_mm, mm_counter(p));
    if (!is_readable_migration_entry(entry) && is_cow_mapping(src_vma.vm_flags)) {
      entry = make_readable_migration_entry(swp_offset(entry));
      pte = swp_entry_to_pte(entry);
      if (pte_swp_soft_dirty(orig)) pte = pte_swp_mksoft_dirty(pte);
      if (pte_swp_uffd_wp(orig)) pte = pte_swp_mkuffd_wp(pte);
      set_pte_at(src_mm, addr, src_pte, pte);
    }
  } else if (is_device_private_entry(entry)) {
    const p = pfn_swap_entry_to_page(src_mm.k, entry);
    get_page(p);
    inc_mm_counter(dst_vma.vm_mm, mm_counter(p));
    page_try_dup_anon_rmap(p, false, src_vma);
    if (is_writable_device_private_entry(entry) && is_cow_mapping(src_vma.vm_flags)) {
      entry = make_readable_device_private_entry(swp_offset(entry));
      pte = swp_entry_to_pte(entry);
      if (pte_swp_uffd_wp(orig)) pte = pte_swp_mkuffd_wp(pte);
      set_pte_at(src_mm, addr, src_pte, pte);
    }
  } else if (is_device_exclusive_entry(entry)) {
    src_mm.k.WARN_ON_ONCE(!is_cow_mapping(src_vma.vm_flags), "device-exclusive entry in a shared mapping");
    if (try_restore_exclusive_pte(src_pte, src_vma, addr)) return -EBUSY;
    return -ENOENT; // now present: copy it as such
  } else if (is_pte_marker_entry(entry)) {
    return 0;
  }
  set_pte_at(dst_vma.vm_mm, addr, dst_pte, pte_swp_clear_uffd_wp(pte));
  return 0;
}

/** copy_present_pte(): share the page; COW mappings are write-protected on both sides. */
function copy_present_pte(dst_vma: vm_area_struct, src_vma: vm_area_struct, dst_pte: number, src_pte: number, addr: number): void {
  const src_mm = src_vma.vm_mm;
  let pte = ptep_get(src_mm.k, src_pte);
  const p = vm_normal_page(src_vma, addr, pte);
  if (p && PageAnon(p)) {
    get_page(p);
    page_try_dup_anon_rmap(p, false, src_vma);
    inc_mm_counter(dst_vma.vm_mm, MM_ANONPAGES);
  } else if (p) {
    get_page(p);
    page_dup_rmap(p, false);
    inc_mm_counter(dst_vma.vm_mm, mm_counter_file(p));
  }
  if (is_cow_mapping(src_vma.vm_flags) && pte_write(pte)) {
    ptep_set_wrprotect(src_mm, addr, src_pte);
    pte = pte_wrprotect(pte);
  }
  if (src_vma.vm_flags & VM_SHARED) pte = pte_mkclean(pte);
  pte = pte_clear_uffd_wp(pte_mkold(pte));
  set_pte_at(dst_vma.vm_mm, addr, dst_pte, pte);
}

/** copy_pte_range() for one PTE table; -ENOMEM or -EBUSY on failure. */
function copy_pte_range(dst_vma: vm_area_struct, src_vma: vm_area_struct, dst_pmd: number, src_pmd: number, addr: number, end: number): number {
  using _ = ftrace(src_vma.vm_mm.k, "copy_pte_range");
  const dst_mm = dst_vma.vm_mm;
  const src_mm = src_vma.vm_mm;
  if (pte_alloc(dst_mm, dst_pmd)) return -ENOMEM;
  const src = pte_offset_map_lock(src_mm, src_pmd, addr);
  if (!src) return 0;
  const dst_pte0 = pte_offset_map(dst_mm, dst_pmd, addr)!;
  spin_lock_nested(dst_mm.page_table_lock, 1); // SINGLE_DEPTH_NESTING: a second mm's PT lock
  let ret = 0;
  try {
    for (let a = addr, s = src.pte, d = dst_pte0; a < end; a += PAGE_SIZE, s += 8, d += 8) {
      const ptent = ptep_get(src_mm.k, s);
      if (pte_none(ptent)) continue;
      if (!pte_present(ptent)) {
        ret = copy_nonpresent_pte(dst_vma, src_vma, d, s, a);
        if (ret === -EBUSY) break;
        if (ret === 0) continue;
        ret = 0; // -ENOENT: the device-exclusive entry was restored; copy the present PTE
      }
      copy_present_pte(dst_vma, src_vma, d, s, a);
    }
  } finally {
    spin_unlock(dst_mm.page_table_lock);
    pte_unmap_unlock(src.pte, src.ptl);
  }
  return ret;
}

/** vma_needs_copy(): shared file mappings without anon pages fault their pages in again. */
function vma_needs_copy(_dst: vm_area_struct, src: vm_area_struct): boolean {
  if (src.vm_flags & (VM_PFNMAP | VM_MIXEDMAP)) return true;
  return src.anon_vma !== null;
}

/**
 * copy_page_range(dst_vma, src_vma): fork's copy of one VMA's page tables. COW mappings are
 * write-protected inside an MMU_NOTIFY_PROTECTION_PAGE window on the parent.
 */
export async function copy_page_range(dst_vma: vm_area_struct, src_vma: vm_area_struct): Promise<number> {
  using _ = ftrace(src_vma.vm_mm.k, "copy_page_range");
  if (!vma_needs_copy(dst_vma, src_vma)) return 0;
  const src_mm = src_vma.vm_mm;
  const is_cow = is_cow_mapping(src_vma.vm_flags);
  const range = new mmu_notifier_range();
  if (is_cow) {
    mmu_notifier_range_init(range, MMU_NOTIFY_PROTECTION_PAGE, 0, src_mm, src_vma.vm_start, src_vma.vm_end);
    await mmu_notifier_invalidate_range_start(range);
  }
  let ret = 0;
  for (let a = src_vma.vm_start; a < src_vma.vm_end && !ret; ) {
    const next = Math.min(src_vma.vm_end, (Math.floor(a / PMD_SIZE) + 1) * PMD_SIZE);
    const src_pmd = mm_find_pmd(src_mm, a);
    if (src_pmd !== null && !pmd_none(pmdp_get(src_mm.k, src_pmd))) {
      const dst_pmd = walk_to_pmd(dst_vma.vm_mm, a);
      ret = dst_pmd === null ? -ENOMEM : copy_pte_range(dst_vma, src_vma, dst_pmd, src_pmd, a, next);
      if (ret === -EBUSY) ret = 0; // a locked device-exclusive page: the child faults it later
    }
    a = next;
  }
  if (is_cow) await mmu_notifier_invalidate_range_end(range);
  return ret;
}

// ---- the fault handler --------------------------------------------------------------------------

function vmf_pte_changed(vmf: vm_fault): boolean {
  const cur = ptep_get(vmf.vma.vm_mm.k, vmf.pte);
  if (vmf.flags & FAULT_FLAG_ORIG_PTE_VALID) return !pte_same(cur, vmf.orig_pte);
  return !pte_none(cur);
}

/** do_anonymous_page(): the zero page for reads, a new zeroed page for writes. */
async function do_anonymous_page(vmf: vm_fault): Promise<number> {
  using _ = ftrace(vmf.vma.vm_mm.k, "do_anonymous_page");
  const vma = vmf.vma;
  const mm = vma.vm_mm;
  if (vma.vm_flags & VM_SHARED) return VM_FAULT_SIGBUS;
  if (pte_alloc(mm, vmf.pmd)) return VM_FAULT_OOM;
  if (!(vmf.flags & FAULT_FLAG_WRITE)) {
    const entry = pte_mkspecial(pfn_pte(my_zero_pfn(vmf.address), vma.vm_page_prot));
    const l = pte_offset_map_lock(mm, vmf.pmd, vmf.address);
    if (!l) return 0;
    vmf.pte = l.pte;
    if (!vmf_pte_changed(vmf)) set_pte_at(mm, vmf.address, vmf.pte, entry);
    pte_unmap_unlock(l.pte, l.ptl);
    return 0;
  }
  if (anon_vma_prepare(vma)) return VM_FAULT_OOM;
  const p = alloc_page_vma(GFP_HIGHUSER_MOVABLE | __GFP_ZERO, vma, vmf.address);
  if (!p) return VM_FAULT_OOM;
  __SetPageUptodate(p);
  let entry = pte_mkyoung(mk_pte(p, vma.vm_page_prot));
  if (vma.vm_flags & VM_WRITE) entry = pte_mkwrite(pte_mkdirty(entry), vma);
  const l = pte_offset_map_lock(mm, vmf.pmd, vmf.address);
  if (!l) {
    put_page(p);
    return 0;
  }
  vmf.pte = l.pte;
  if (vmf_pte_changed(vmf)) {
    pte_unmap_unlock(l.pte, l.ptl);
    put_page(p);
    return 0;
  }
  inc_mm_counter(mm, MM_ANONPAGES);
  page_add_new_anon_rmap(p, vma, vmf.address);
  lru_cache_add(p);
  set_pte_at(mm, vmf.address, vmf.pte, entry);
  pte_unmap_unlock(l.pte, l.ptl);
  return 0;
}

/** __do_fault(): ->fault, then make sure the returned page is locked. */
async function __do_fault(vmf: vm_fault): Promise<number> {
  using _ = ftrace(vmf.vma.vm_mm.k, "__do_fault");
  const ret = await vmf.vma.vm_ops!.fault!(vmf);
  if (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY | VM_FAULT_DONE_COW)) return ret;
  const p = vmf.page!;
  if (PageHWPoison(p)) {
    if (ret & VM_FAULT_LOCKED) unlock_page(p);
    put_page(p);
    vmf.page = null;
    return VM_FAULT_HWPOISON;
  }
  if (!(ret & VM_FAULT_LOCKED)) await lock_page(p);
  else vmf.vma.vm_mm.k.WARN_ON_ONCE(!PageLocked(p), "->fault returned VM_FAULT_LOCKED with an unlocked page");
  return ret;
}

/** set_pte_range() for one page: map it (a COW copy becomes a new anon page). */
function set_pte_one(vmf: vm_fault, p: page, addr: number): void {
  const vma = vmf.vma;
  const write = (vmf.flags & FAULT_FLAG_WRITE) !== 0;
  let entry = pte_mkyoung(mk_pte(p, vma.vm_page_prot));
  if (write) entry = maybe_mkwrite(pte_mkdirty(entry), vma);
  if (write && !(vma.vm_flags & VM_SHARED)) {
    inc_mm_counter(vma.vm_mm, MM_ANONPAGES);
    page_add_new_anon_rmap(p, vma, addr);
    lru_cache_add(p);
  } else {
    inc_mm_counter(vma.vm_mm, mm_counter_file(p));
    page_add_file_rmap(p, vma, false);
  }
  set_pte_at(vma.vm_mm, addr, vmf.pte, entry);
}

/** finish_fault(): install the page from ->fault (or its COW copy) if the PTE is still none. */
function finish_fault(vmf: vm_fault): number {
  const vma = vmf.vma;
  const mm = vma.vm_mm;
  const p = vmf.flags & FAULT_FLAG_WRITE && !(vma.vm_flags & VM_SHARED) ? vmf.cow_page! : vmf.page!;
  if (pmd_none(pmdp_get(mm.k, vmf.pmd)) && pte_alloc(mm, vmf.pmd)) return VM_FAULT_OOM;
  const l = pte_offset_map_lock(mm, vmf.pmd, vmf.address);
  if (!l) return VM_FAULT_NOPAGE;
  vmf.pte = l.pte;
  let ret = 0;
  if (!vmf_pte_changed(vmf)) {
    // The mapping takes over a reference: the COW copy's allocation one, or a new one on the
    // page cache page (->fault's reference is dropped by the caller).
    if (p === vmf.page) get_page(p);
    set_pte_one(vmf, p, vmf.address);
  } else {
    ret = VM_FAULT_NOPAGE;
  }
  pte_unmap_unlock(l.pte, l.ptl);
  return ret;
}

async function do_read_fault(vmf: vm_fault): Promise<number> {
  using _ = ftrace(vmf.vma.vm_mm.k, "do_read_fault");
  let ret = await __do_fault(vmf);
  if (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) return ret;
  const p = vmf.page!;
  ret |= finish_fault(vmf);
  unlock_page(p);
  put_page(p);
  return ret;
}

async function do_cow_fault(vmf: vm_fault): Promise<number> {
  using _ = ftrace(vmf.vma.vm_mm.k, "do_cow_fault");
  const vma = vmf.vma;
  if (anon_vma_prepare(vma)) return VM_FAULT_OOM;
  const cow = alloc_page_vma(GFP_HIGHUSER_MOVABLE, vma, vmf.address);
  if (!cow) return VM_FAULT_OOM;
  vmf.cow_page = cow;
  let ret = await __do_fault(vmf);
  if (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) {
    put_page(cow);
    return ret;
  }
  if (ret & VM_FAULT_DONE_COW) return ret;
  copy_user_highpage(cow, vmf.page!, vmf.address, vma);
  __SetPageUptodate(cow);
  ret |= finish_fault(vmf);
  unlock_page(vmf.page!);
  put_page(vmf.page!);
  if (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) put_page(cow);
  return ret;
}

async function do_shared_fault(vmf: vm_fault): Promise<number> {
  using _ = ftrace(vmf.vma.vm_mm.k, "do_shared_fault");
  const vma = vmf.vma;
  let ret = await __do_fault(vmf);
  if (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) return ret;
  const p = vmf.page!;
  if (vma.vm_ops!.page_mkwrite) {
    unlock_page(p);
    const tmp = await vma.vm_ops!.page_mkwrite(vmf);
    if (tmp & (VM_FAULT_ERROR | VM_FAULT_NOPAGE)) {
      put_page(p);
      return tmp;
    }
    if (!(tmp & VM_FAULT_LOCKED)) await lock_page(p);
  }
  ret |= finish_fault(vmf);
  if (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) {
    unlock_page(p);
    put_page(p);
    return ret;
  }
  // fault_dirty_shared_page(): the page is dirty now; unlock it.
  SetPageDirty(p);
  unlock_page(p);
  put_page(p);
  return ret;
}

/** do_fault(): file-backed (or driver) VMAs go through vm_ops->fault. */
async function do_fault(vmf: vm_fault): Promise<number> {
  using _ = ftrace(vmf.vma.vm_mm.k, "do_fault");
  const vma = vmf.vma;
  const mm = vma.vm_mm;
  if (!vma.vm_ops!.fault) {
    const l = pte_offset_map_lock(mm, vmf.pmd, vmf.address);
    if (!l) return VM_FAULT_SIGBUS;
    const ret = pte_none(ptep_get(mm.k, l.pte)) ? VM_FAULT_SIGBUS : VM_FAULT_NOPAGE;
    pte_unmap_unlock(l.pte, l.ptl);
    return ret;
  }
  if (!(vmf.flags & FAULT_FLAG_WRITE)) return await do_read_fault(vmf);
  if (!(vma.vm_flags & VM_SHARED)) return await do_cow_fault(vmf);
  return await do_shared_fault(vmf);
}

function do_pte_missing(vmf: vm_fault): Promise<number> {
  return vma_is_anonymous(vmf.vma) ? do_anonymous_page(vmf) : do_fault(vmf);
}

/** wp_page_reuse(): the page is ours alone: make the PTE writable in place (PT lock held). */
function wp_page_reuse(vmf: vm_fault): void {
  using _ = ftrace(vmf.vma.vm_mm.k, "wp_page_reuse");
  const vma = vmf.vma;
  const entry = maybe_mkwrite(pte_mkdirty(pte_mkyoung(vmf.orig_pte)), vma);
  ptep_set_access_flags(vma, vmf.address, vmf.pte, entry, true);
  spin_unlock(vma.vm_mm.page_table_lock);
}

/**
 * wp_page_copy(): break COW. Copy (or zero, for the zero page) into a new page, then under an
 * MMU_NOTIFY_CLEAR window clear+flush the old PTE and install the new writable one.
 */
async function wp_page_copy(vmf: vm_fault): Promise<number> {
  using _ = ftrace(vmf.vma.vm_mm.k, "wp_page_copy");
  const vma = vmf.vma;
  const mm = vma.vm_mm;
  const old = vmf.page;
  if (anon_vma_prepare(vma)) {
    if (old) put_page(old);
    return VM_FAULT_OOM;
  }
  const pfn_is_zero = is_zero_pfn(pte_pfn(vmf.orig_pte));
  const np = alloc_page_vma(GFP_HIGHUSER_MOVABLE | (pfn_is_zero ? __GFP_ZERO : 0), vma, vmf.address);
  if (!np) {
    if (old) put_page(old);
    return VM_FAULT_OOM;
  }
  if (!pfn_is_zero && old) copy_user_highpage(np, old, vmf.address, vma);
  __SetPageUptodate(np);
  const range = new mmu_notifier_range();
  mmu_notifier_range_init(range, MMU_NOTIFY_CLEAR, 0, mm, vmf.address, vmf.address + PAGE_SIZE);
  await mmu_notifier_invalidate_range_start(range);
  let to_free: page | null = np;
  const l = pte_offset_map_lock(mm, vmf.pmd, vmf.address);
  if (l && pte_same(ptep_get(mm.k, l.pte), vmf.orig_pte)) {
    if (old && !PageAnon(old)) {
      dec_mm_counter(mm, mm_counter_file(old));
      inc_mm_counter(mm, MM_ANONPAGES);
    } else if (!old) {
      inc_mm_counter(mm, MM_ANONPAGES);
    }
    const entry = maybe_mkwrite(pte_mkdirty(pte_mkyoung(mk_pte(np, vma.vm_page_prot))), vma);
    ptep_clear_flush(vma, vmf.address, l.pte);
    page_add_new_anon_rmap(np, vma, vmf.address);
    lru_cache_add(np);
    set_pte_at(mm, vmf.address, l.pte, entry);
    // Only now that the PTE points at the copy may the old page lose this mapping.
    if (old) page_remove_rmap(old, vma, false);
    to_free = old; // the mapping's reference on the old page
  }
  if (l) pte_unmap_unlock(l.pte, l.ptl);
  await mmu_notifier_invalidate_range_end(range);
  if (to_free) put_page(to_free);
  if (old) put_page(old); // the reference do_wp_page took
  return 0;
}

/** wp_can_reuse_anon_folio(): reuse an anon page nobody else references. */
function wp_can_reuse_anon_page(p: page, vma: vm_area_struct): boolean {
  if (p._refcount !== 1 || !trylock_page(p)) return false;
  const ok = p._refcount === 1;
  // folio_move_anon_rmap(): the page now belongs to this VMA's anon_vma.
  if (ok) p.mapping = vma.anon_vma;
  unlock_page(p);
  return ok;
}

/** do_wp_page(): write fault on a present read-only PTE (PT lock held on entry). */
async function do_wp_page(vmf: vm_fault): Promise<number> {
  using _ = ftrace(vmf.vma.vm_mm.k, "do_wp_page");
  const vma = vmf.vma;
  const unshare = (vmf.flags & FAULT_FLAG_UNSHARE) !== 0;
  const p = vm_normal_page(vma, vmf.address, vmf.orig_pte);
  vmf.page = p;
  if (vma.vm_flags & (VM_SHARED | VM_MAYSHARE)) {
    if (!p) {
      wp_page_reuse(vmf);
      return 0;
    }
    get_page(p);
    wp_page_reuse(vmf);
    await lock_page(p);
    SetPageDirty(p);
    unlock_page(p);
    put_page(p);
    return 0;
  }
  if (p && PageAnon(p) && (PageAnonExclusive(p) || wp_can_reuse_anon_page(p, vma))) {
    if (!PageAnonExclusive(p)) SetPageAnonExclusive(p);
    if (unshare) {
      spin_unlock(vma.vm_mm.page_table_lock);
      return 0;
    }
    wp_page_reuse(vmf);
    return 0;
  }
  if (p) get_page(p);
  spin_unlock(vma.vm_mm.page_table_lock);
  return await wp_page_copy(vmf);
}

/** fault_flag_allow_retry_first(). */
function fault_flag_allow_retry_first(flags: number): boolean {
  return (flags & FAULT_FLAG_ALLOW_RETRY) !== 0 && (flags & FAULT_FLAG_TRIED) === 0;
}

/**
 * folio_lock_or_retry(): 0 with the page locked, or VM_FAULT_RETRY after dropping mmap_lock
 * (and waiting for the page) when the fault may be retried.
 */
async function lock_page_or_retry(p: page, vmf: vm_fault): Promise<number> {
  if (trylock_page(p)) return 0;
  const mm = vmf.vma.vm_mm;
  if (fault_flag_allow_retry_first(vmf.flags)) {
    if (vmf.flags & FAULT_FLAG_RETRY_NOWAIT) return VM_FAULT_RETRY;
    mmap_read_unlock(mm);
    await wait_on_page_locked(p);
    return VM_FAULT_RETRY;
  }
  if (vmf.flags & FAULT_FLAG_KILLABLE) {
    if (await lock_page_killable(p)) {
      mmap_read_unlock(mm);
      return VM_FAULT_RETRY;
    }
    return 0;
  }
  await lock_page(p);
  return 0;
}

/** remove_device_exclusive_entry(): a CPU touch ends a device's exclusive access. */
async function remove_device_exclusive_entry(vmf: vm_fault): Promise<number> {
  using _ = ftrace(vmf.vma.vm_mm.k, "remove_device_exclusive_entry");
  const p = vmf.page!;
  const vma = vmf.vma;
  const mm = vma.vm_mm;
  if (!get_page_unless_zero(p)) return 0;
  const ret = await lock_page_or_retry(p, vmf);
  if (ret) {
    put_page(p);
    return ret;
  }
  const range = new mmu_notifier_range();
  mmu_notifier_range_init_owner(range, MMU_NOTIFY_EXCLUSIVE, 0, mm, vmf.address, vmf.address + PAGE_SIZE, null);
  await mmu_notifier_invalidate_range_start(range);
  const l = pte_offset_map_lock(mm, vmf.pmd, vmf.address);
  if (l && pte_same(ptep_get(mm.k, l.pte), vmf.orig_pte)) restore_exclusive_pte(vma, p, vmf.address, l.pte);
  if (l) pte_unmap_unlock(l.pte, l.ptl);
  unlock_page(p);
  put_page(p);
  await mmu_notifier_invalidate_range_end(range);
  return 0;
}

/**
 * do_swap_page(): a non-present, non-none PTE. kemu has no swap, so only the special entries
 * occur: migration (wait for the page lock, then let the access retry), device-exclusive
 * (restore), device-private (6.1–6.14: get_page, migrate_to_ram without the page lock, put_page).
 */
async function do_swap_page(vmf: vm_fault): Promise<number> {
  using _ = ftrace(vmf.vma.vm_mm.k, "do_swap_page");
  const vma = vmf.vma;
  const mm = vma.vm_mm;
  const entry = pte_to_swp_entry(vmf.orig_pte);
  if (!non_swap_entry(entry)) {
    print_bad_pte(vma, vmf.address, vmf.orig_pte, null);
    return VM_FAULT_SIGBUS;
  }
  if (is_migration_entry(entry)) {
    await migration_entry_wait(mm, vmf.pmd, vmf.address);
    return 0;
  }
  if (is_device_exclusive_entry(entry)) {
    vmf.page = pfn_swap_entry_to_page(mm.k, entry);
    return await remove_device_exclusive_entry(vmf);
  }
  if (is_device_private_entry(entry)) {
    if (vmf.flags & FAULT_FLAG_VMA_LOCK) return VM_FAULT_RETRY;
    const p = pfn_swap_entry_to_page(mm.k, entry);
    vmf.page = p;
    const l = pte_offset_map_lock(mm, vmf.pmd, vmf.address);
    if (!l || !pte_same(ptep_get(mm.k, l.pte), vmf.orig_pte)) {
      if (l) pte_unmap_unlock(l.pte, l.ptl);
      return 0;
    }
    // A reference while the PTE still pins the page, so it cannot be freed under us.
    get_page(p);
    pte_unmap_unlock(l.pte, l.ptl);
    const ret = await p.pgmap!.ops!.migrate_to_ram!(vmf);
    put_page(p);
    return ret;
  }
  if (is_hwpoison_entry(entry)) return VM_FAULT_HWPOISON;
  if (is_pte_marker_entry(entry)) return VM_FAULT_SIGBUS;
  print_bad_pte(vma, vmf.address, vmf.orig_pte, null);
  return VM_FAULT_SIGBUS;
}

/** handle_pte_fault(). */
async function handle_pte_fault(vmf: vm_fault): Promise<number> {
  using _ = ftrace(vmf.vma.vm_mm.k, "handle_pte_fault");
  const vma = vmf.vma;
  const mm = vma.vm_mm;
  if (pmd_none(pmdp_get(mm.k, vmf.pmd))) {
    vmf.pte = 0;
    vmf.flags &= ~FAULT_FLAG_ORIG_PTE_VALID;
  } else {
    const pte = pte_offset_map(mm, vmf.pmd, vmf.address);
    if (pte === null) return 0;
    vmf.pte = pte;
    vmf.orig_pte = ptep_get(mm.k, pte);
    vmf.flags |= FAULT_FLAG_ORIG_PTE_VALID;
    if (pte_none(vmf.orig_pte)) vmf.pte = 0;
  }
  if (!vmf.pte) return await do_pte_missing(vmf);
  if (!pte_present(vmf.orig_pte)) return await do_swap_page(vmf);
  if (pte_protnone(vmf.orig_pte) && vma_is_accessible(vma)) {
    // NUMA hinting faults are not modelled: a PROT_NONE PTE in an accessible VMA is a bug.
    print_bad_pte(vma, vmf.address, vmf.orig_pte, null);
    return VM_FAULT_SIGBUS;
  }
  spin_lock(mm.page_table_lock);
  let entry = vmf.orig_pte;
  if (!pte_same(ptep_get(mm.k, vmf.pte), entry)) {
    spin_unlock(mm.page_table_lock);
    return 0;
  }
  if (vmf.flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) {
    if (!pte_write(entry)) return await do_wp_page(vmf);
    if (vmf.flags & FAULT_FLAG_WRITE) entry = pte_mkdirty(entry);
  }
  entry = pte_mkyoung(entry);
  // x86 ptep_set_access_flags only writes when dirtying; the #PF already dropped the stale
  // TLB entry, so no flush is needed for a spurious fault.
  if (vmf.flags & FAULT_FLAG_WRITE) ptep_set_access_flags(vma, vmf.address, vmf.pte, entry, true);
  spin_unlock(mm.page_table_lock);
  return 0;
}

/** __handle_mm_fault(): allocate the upper levels, then the PTE-level handler. */
async function __handle_mm_fault(vma: vm_area_struct, address: number, flags: number): Promise<number> {
  using _ = ftrace(vma.vm_mm.k, "__handle_mm_fault");
  const mm = vma.vm_mm;
  const addr = Math.floor(address / PAGE_SIZE) * PAGE_SIZE;
  const p4d = p4d_alloc(mm, pgd_offset(mm, address), address);
  const pud = pud_alloc(mm, p4d, address);
  if (pud === null) return VM_FAULT_OOM;
  const pmd = pmd_alloc(mm, pud, address);
  if (pmd === null) return VM_FAULT_OOM;
  const vmf: vm_fault = {
    vma, address: addr, real_address: address, flags, pgoff: linear_page_index(vma, addr), pmd, pte: 0,
    orig_pte: NONE_PTE, page: null, cow_page: null,
  };
  return await handle_pte_fault(vmf);
}

/** sanitize_fault_flags(). */
function sanitize_fault_flags(vma: vm_area_struct, flags: { v: number }): number {
  const k = vma.vm_mm.k;
  if (flags.v & FAULT_FLAG_UNSHARE) {
    if (k.WARN_ON_ONCE(flags.v & FAULT_FLAG_WRITE)) return VM_FAULT_SIGSEGV;
    if (!is_cow_mapping(vma.vm_flags)) flags.v &= ~FAULT_FLAG_UNSHARE;
  } else if (flags.v & FAULT_FLAG_WRITE) {
    if (k.WARN_ON_ONCE(!(vma.vm_flags & VM_MAYWRITE))) return VM_FAULT_SIGSEGV;
    if (k.WARN_ON_ONCE(!(vma.vm_flags & VM_WRITE) && !is_cow_mapping(vma.vm_flags))) return VM_FAULT_SIGSEGV;
  }
  return 0;
}

/** mm_account_fault(): vmstat pgfault and the faulting task's maj_flt/min_flt. */
function mm_account_fault(mm: mm_struct, flags: number, ret: number): void {
  if (ret & VM_FAULT_RETRY) return;
  const pgdat = NODE_DATA(mm.k);
  pgdat.vm_events.pgfault++;
  if (ret & VM_FAULT_ERROR) return;
  const major = (ret & VM_FAULT_MAJOR) !== 0 || (flags & FAULT_FLAG_TRIED) !== 0;
  if (major) pgdat.vm_events.pgmajfault++;
  const t = mm.k.current;
  if (major) t.maj_flt++;
  else t.min_flt++;
}

/**
 * handle_mm_fault(vma, address, flags, regs): resolve one fault with mmap_lock held for
 * reading. With FAULT_FLAG_ALLOW_RETRY the lock may have been dropped when the result has
 * VM_FAULT_RETRY (then the vma must not be used again).
 */
export async function handle_mm_fault(vma: vm_area_struct, address: number, flags: number, _regs: unknown = null): Promise<number> {
  using _ = ftrace(vma.vm_mm.k, "handle_mm_fault");
  const mm = vma.vm_mm;
  const f = { v: flags };
  let ret = sanitize_fault_flags(vma, f);
  if (!ret) ret = await __handle_mm_fault(vma, address, f.v);
  mm_account_fault(mm, f.v, ret);
  return ret;
}

// ---- lock_mm_and_find_vma (6.5+) -------------------------------------------------------------

/**
 * lock_mm_and_find_vma(mm, addr, regs): take mmap_lock for reading and return the VMA that
 * contains addr, growing a stack VMA down to it (which needs the write lock briefly). null (lock
 * released) if there is none.
 */
export async function lock_mm_and_find_vma(mm: mm_struct, addr: number): Promise<vm_area_struct | null> {
  using _ = ftrace(mm.k, "lock_mm_and_find_vma");
  if (!mmap_read_trylock(mm) && (await mmap_read_lock_killable(mm))) return null;
  let vma = find_vma(mm, addr);
  if (vma && vma.vm_start <= addr) return vma;
  if (!vma || !(vma.vm_flags & VM_GROWSDOWN)) {
    mmap_read_unlock(mm);
    return null;
  }
  mmap_read_unlock(mm);
  if (await mmap_write_lock_killable(mm)) return null;
  vma = find_vma(mm, addr);
  if (!vma || (vma.vm_start > addr && (!(vma.vm_flags & VM_GROWSDOWN) || expand_stack_locked(vma, addr)))) {
    mmap_write_unlock(mm);
    return null;
  }
  mmap_write_downgrade(mm);
  return vma;
}

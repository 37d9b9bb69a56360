// Mirrors mm/madvise.c (Linux 6.8): madvise(2) — do_madvise's argument checks, the VMA walk
// (holes → -ENOMEM after handling what is mapped), MADV_DONTNEED (zap_page_range_single),
// MADV_FREE (mark clean anon pages lazily freeable), and the vm_flags advice (NORMAL, RANDOM,
// SEQUENTIAL, DONTFORK, DOFORK, WIPEONFORK, KEEPONFORK, DONTDUMP, DODUMP). WILLNEED, COLD and
// PAGEOUT are accepted hints with nothing to do (no swap, no reclaim). THP, KSM and
// memory-failure advice are invalid, as in a kernel built without those options.

import type { mm_struct, vm_area_struct } from "../include/linux/mm_types.ts";
import { EACCES, EAGAIN, EFAULT, EHWPOISON, EINVAL, EINTR, ENOMEM, EOPNOTSUPP } from "../include/uapi/asm-generic/errno.ts";
import {
  PAGE_ALIGN, PAGE_ALIGNED, VM_LOCKED, VM_MAYWRITE, VM_PFNMAP, VM_HUGETLB, VM_IO, VM_SEQ_READ, VM_RAND_READ, VM_DONTCOPY,
  VM_WIPEONFORK, VM_DONTDUMP, VM_SPECIAL, VM_SHARED, PageAnon, page_mapcount, vma_is_anonymous,
} from "../include/linux/mm.ts";
import * as M from "../include/uapi/asm-generic/mman-common.ts";
import { ptep_get, set_pte_at, ptep_get_and_clear, pte_none, pte_present, pte_dirty, pte_young, pte_mkold, pte_mkclean } from "../arch/x86/include/asm/pgtable.ts";
import { PageSwapBacked, ClearPageSwapBacked, ClearPageDirty, ClearPageReferenced, PageLocked } from "../include/linux/page-flags.ts";
import { zap_page_range_single, vm_normal_page } from "./memory.ts";
import { walk_page_range, type mm_walk } from "./pagewalk.ts";
import { tlb_gather_mmu, tlb_finish_mmu, tlb_remove_tlb_entry, type mmu_gather } from "./mmu_gather.ts";
import {
  mmu_notifier_range, mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
  MMU_NOTIFY_CLEAR,
} from "./mmu_notifier.ts";
import { find_vma, find_vma_prev, split_vma, vma_merge, vma_lookup } from "./mmap.ts";
import { mmap_read_lock_killable, mmap_read_unlock, mmap_write_lock_killable, mmap_write_unlock } from "../include/linux/mmap_lock.ts";
import { faultin_vma_page_range } from "./gup.ts";

/** madvise_behavior_valid(): the advice this kernel configuration knows. */
function madvise_behavior_valid(behavior: number): boolean {
  switch (behavior) {
    case M.MADV_DOFORK: case M.MADV_DONTFORK: case M.MADV_NORMAL: case M.MADV_SEQUENTIAL: case M.MADV_RANDOM:
    case M.MADV_REMOVE: case M.MADV_WILLNEED: case M.MADV_DONTNEED: case M.MADV_DONTNEED_LOCKED: case M.MADV_FREE:
    case M.MADV_COLD: case M.MADV_PAGEOUT: case M.MADV_POPULATE_READ: case M.MADV_POPULATE_WRITE:
    case M.MADV_DONTDUMP: case M.MADV_DODUMP: case M.MADV_WIPEONFORK: case M.MADV_KEEPONFORK:
      return true;
    default:
      return false;
  }
}

/** madvise_need_mmap_write(): advice that changes vm_flags needs the write lock. */
function madvise_need_mmap_write(behavior: number): boolean {
  switch (behavior) {
    case M.MADV_REMOVE: case M.MADV_WILLNEED: case M.MADV_DONTNEED: case M.MADV_DONTNEED_LOCKED: case M.MADV_COLD:
    case M.MADV_PAGEOUT: case M.MADV_FREE: case M.MADV_POPULATE_READ: case M.MADV_POPULATE_WRITE:
      return false;
    default:
      return true;
  }
}

/** madvise_dontneed_free_valid_vma(). */
function dontneed_free_valid_vma(vma: vm_area_struct, behavior: number): boolean {
  if (vma.vm_flags & VM_HUGETLB) return false;
  const forbidden = VM_PFNMAP | (behavior === M.MADV_DONTNEED_LOCKED ? 0 : VM_LOCKED);
  return !(vma.vm_flags & forbidden);
}

/**
 * madvise_free_pte_range(): exclusively mapped anon pages become clean, old and lazily
 * freeable (PG_swapbacked cleared). kemu has no reclaim, so they are never discarded; a later
 * write simply dirties them again.
 */
function madvise_free_pte(ptep: number, addr: number, _next: number, walk: mm_walk): number {
  const tlb = walk.private_ as mmu_gather;
  const vma = walk.vma!;
  const mm = walk.mm;
  const ptent = ptep_get(mm.k, ptep);
  if (pte_none(ptent) || !pte_present(ptent)) return 0;
  const p = vm_normal_page(vma, addr, ptent);
  if (!p || !PageAnon(p) || page_mapcount(p) !== 1 || PageLocked(p)) return 0;
  ClearPageDirty(p);
  if (pte_young(ptent) || pte_dirty(ptent)) {
    ptep_get_and_clear(mm, addr, ptep);
    set_pte_at(mm, addr, ptep, pte_mkclean(pte_mkold(ptent)));
    tlb_remove_tlb_entry(tlb, ptep, addr);
  }
  ClearPageReferenced(p);
  if (PageSwapBacked(p)) ClearPageSwapBacked(p);
  return 0;
}

async function madvise_free_single_vma(vma: vm_area_struct, start: number, end: number): Promise<number> {
  if (!vma_is_anonymous(vma)) return -EINVAL;
  const mm = vma.vm_mm;
  const range = new mmu_notifier_range();
  mmu_notifier_range_init(range, MMU_NOTIFY_CLEAR, 0, mm, Math.max(vma.vm_start, start), Math.min(vma.vm_end, end));
  const tlb = tlb_gather_mmu(mm);
  await mmu_notifier_invalidate_range_start(range);
  await walk_page_range(mm, range.start, range.end, { pte_entry: madvise_free_pte }, tlb);
  await mmu_notifier_invalidate_range_end(range);
  tlb_finish_mmu(tlb);
  return 0;
}

/** madvise_dontneed_free(). */
async function madvise_dontneed_free(vma: vm_area_struct, start: number, end: number, behavior: number): Promise<number> {
  if (!dontneed_free_valid_vma(vma, behavior)) return -EINVAL;
  if (start === end) return 0;
  if (behavior === M.MADV_FREE) return madvise_free_single_vma(vma, start, end);
  await zap_page_range_single(vma, start, end - start, null);
  return 0;
}

/** madvise_update_vma(): set new vm_flags on [start, end) of vma (split, then merge). */
function madvise_update_vma(mm: mm_struct, vma: vm_area_struct, start: number, end: number, new_flags: number): number {
  if (new_flags === vma.vm_flags) return 0;
  if (start > vma.vm_start) {
    const err = split_vma(mm, vma, start, true);
    if (err) return err;
  }
  if (end < vma.vm_end) {
    const err = split_vma(mm, vma, end, false);
    if (err) return err;
  }
  vma.vm_flags = new_flags;
  vma_merge(mm, vma);
  return 0;
}

/**
 * madvise_remove(): punch a hole in a shared file mapping. The checks are the kernel's; the
 * hole punch itself (vfs_fallocate) is not provided by kemu's filesystems: -EOPNOTSUPP.
 */
function madvise_remove(vma: vm_area_struct): number {
  if (vma.vm_flags & VM_LOCKED || !vma.vm_file) return -EINVAL;
  if ((vma.vm_flags & (VM_SHARED | VM_MAYWRITE)) !== (VM_SHARED | VM_MAYWRITE)) return -EACCES;
  return -EOPNOTSUPP;
}

/** madvise_vma_behavior(): one VMA's share of the advice. */
async function madvise_vma_behavior(vma: vm_area_struct, start: number, end: number, behavior: number): Promise<number> {
  const mm = vma.vm_mm;
  let new_flags = vma.vm_flags;
  switch (behavior) {
    case M.MADV_REMOVE:
      return madvise_remove(vma);
    case M.MADV_WILLNEED: case M.MADV_COLD: case M.MADV_PAGEOUT:
      return 0;
    case M.MADV_FREE: case M.MADV_DONTNEED: case M.MADV_DONTNEED_LOCKED:
      return madvise_dontneed_free(vma, start, end, behavior);
    case M.MADV_NORMAL:
      new_flags &= ~(VM_RAND_READ | VM_SEQ_READ);
      break;
    case M.MADV_SEQUENTIAL:
      new_flags = (new_flags & ~VM_RAND_READ) | VM_SEQ_READ;
      break;
    case M.MADV_RANDOM:
      new_flags = (new_flags & ~VM_SEQ_READ) | VM_RAND_READ;
      break;
    case M.MADV_DONTFORK:
      new_flags |= VM_DONTCOPY;
      break;
    case M.MADV_DOFORK:
      if (vma.vm_flags & VM_IO) return -EINVAL;
      new_flags &= ~VM_DONTCOPY;
      break;
    case M.MADV_WIPEONFORK:
      if (vma.vm_file || vma.vm_flags & VM_SHARED) return -EINVAL;
      new_flags |= VM_WIPEONFORK;
      break;
    case M.MADV_KEEPONFORK:
      new_flags &= ~VM_WIPEONFORK;
      break;
    case M.MADV_DONTDUMP:
      new_flags |= VM_DONTDUMP;
      break;
    case M.MADV_DODUMP:
      if (!vma.vm_file && vma.vm_flags & VM_SPECIAL) return -EINVAL;
      new_flags &= ~VM_DONTDUMP;
      break;
  }
  const err = madvise_update_vma(mm, vma, start, end, new_flags);
  // madvise() returns EAGAIN if the kernel ran out of resources splitting.
  return err === -ENOMEM ? -EAGAIN : err;
}

/**
 * madvise_walk_vmas(): apply the advice to every VMA piece of [start, end); a hole makes the
 * result -ENOMEM once the mapped parts are done.
 */
async function madvise_walk_vmas(mm: mm_struct, start: number, end: number, behavior: number): Promise<number> {
  let unmapped_error = 0;
  let { vma } = find_vma_prev(mm, start);
  for (;;) {
    if (!vma) return -ENOMEM;
    if (start < vma.vm_start) {
      unmapped_error = -ENOMEM;
      start = vma.vm_start;
      if (start >= end) break;
    }
    const tmp = Math.min(vma.vm_end, end);
    const error = await madvise_vma_behavior(vma, start, tmp, behavior);
    if (error) return error;
    start = tmp;
    if (start >= end) break;
    vma = find_vma(mm, start);
  }
  return unmapped_error;
}

/**
 * do_madvise(mm, start, len_in, behavior): unknown advice or an unaligned start → -EINVAL; a
 * length that rounds up to wrap → -EINVAL; an empty range → 0.
 */
export async function do_madvise(mm: mm_struct, start: number, len_in: number, behavior: number): Promise<number> {
  if (!madvise_behavior_valid(behavior)) return -EINVAL;
  if (!PAGE_ALIGNED(start) || start < 0) return -EINVAL;
  if (len_in < 0) return -EINVAL;
  const len = PAGE_ALIGN(len_in);
  if (len_in && !len) return -EINVAL;
  const end = start + len;
  if (end < start || end >= 2 ** 64) return -EINVAL; // the unsigned sum wrapped
  if (end === start) return 0;
  if (behavior === M.MADV_POPULATE_READ || behavior === M.MADV_POPULATE_WRITE) return madvise_populate(mm, start, end, behavior === M.MADV_POPULATE_WRITE);
  const write = madvise_need_mmap_write(behavior);
  if (write ? await mmap_write_lock_killable(mm) : await mmap_read_lock_killable(mm)) return -EINTR;
  try {
    return await madvise_walk_vmas(mm, start, end, behavior);
  } finally {
    if (write) mmap_write_unlock(mm);
    else mmap_read_unlock(mm);
  }
}

/** madvise_populate(): prefault the range readable or writable; a hole → -ENOMEM. */
async function madvise_populate(mm: mm_struct, start: number, end: number, write: boolean): Promise<number> {
  if (await mmap_read_lock_killable(mm)) return -EINTR;
  try {
    while (start < end) {
      const vma = vma_lookup(mm, start);
      if (!vma) return -ENOMEM;
      const tmp_end = Math.min(end, vma.vm_end);
      const pages = await faultin_vma_page_range(vma, start, tmp_end, write);
      if (pages < 0) return pages === -EINTR || pages === -EINVAL || pages === -EHWPOISON || pages === -EFAULT ? pages : -ENOMEM;
      start = tmp_end;
    }
    return 0;
  } finally {
    mmap_read_unlock(mm);
  }
}

/** sys_madvise(start, len, behavior). */
export function sys_madvise(mm: mm_struct, start: number, len: number, behavior: number): Promise<number> {
  return do_madvise(mm, start, len, behavior);
}

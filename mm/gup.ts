// Mirrors mm/gup.c (Linux 6.8), the parts kemu needs: __get_user_pages (follow the PTE, fault
// if needed, take a reference), get_user_pages_remote, get_user_pages_fast, __mm_populate
// (MAP_POPULATE / MAP_LOCKED) and access_remote_vm (/proc/<pid>/mem-style access).
// kemu: faults are taken without FAULT_FLAG_ALLOW_RETRY, so mmap_lock is never dropped; there
// are no long-term pins (FOLL_PIN behaves as FOLL_GET).

import type { mm_struct, page, vm_area_struct } from "../include/linux/mm_types.ts";
import { EFAULT, EINTR, EINVAL, ENOMEM } from "../include/uapi/asm-generic/errno.ts";
import {
  PAGE_SIZE, VM_IO, VM_PFNMAP, VM_READ, VM_WRITE, VM_SHARED, VM_MAYREAD, FOLL_WRITE, FOLL_FORCE, FOLL_REMOTE,
  FOLL_GET, FOLL_PIN, FOLL_TOUCH, FOLL_DUMP, FOLL_HWPOISON, FAULT_FLAG_WRITE, FAULT_FLAG_REMOTE, VM_FAULT_ERROR,
  get_page, put_page, is_zero_pfn, is_cow_mapping, vma_is_accessible, vm_fault_to_errno, ZERO_PAGE,
} from "../include/linux/mm.ts";
import { ptep_get, pte_present, pte_write, pte_pfn } from "../arch/x86/include/asm/pgtable.ts";
import { SetPageDirty, SetPageReferenced, PageAnonExclusive } from "../include/linux/page-flags.ts";
import { follow_pte, pte_unmap_unlock } from "./pgtable-generic.ts";
import { vm_normal_page, handle_mm_fault } from "./memory.ts";
import { vma_lookup, find_vma } from "./mmap.ts";
import { mmap_read_lock, mmap_read_lock_killable, mmap_read_unlock } from "../include/linux/mmap_lock.ts";
import { fatal_signal_pending } from "../kernel/sched/wait.ts";
import { memcpy_from_page, memcpy_to_page } from "../include/linux/highmem.ts";

/** check_vma_flags(): may GUP touch this VMA the way gup_flags ask? */
function check_vma_flags(vma: vm_area_struct, gup_flags: number): number {
  const vm_flags = vma.vm_flags;
  if (vm_flags & (VM_IO | VM_PFNMAP)) return -EFAULT;
  if (gup_flags & FOLL_WRITE) {
    if (!(vm_flags & VM_WRITE)) {
      if (!(gup_flags & FOLL_FORCE) || !is_cow_mapping(vm_flags)) return -EFAULT;
    }
  } else if (!(vm_flags & VM_READ)) {
    if (!(gup_flags & FOLL_FORCE) || !(vm_flags & VM_MAYREAD)) return -EFAULT;
  }
  return 0;
}

/** can_follow_write_pte(): writable PTE, or FOLL_FORCE on our own exclusive anon page. */
function can_follow_write_pte(writable: boolean, p: page | null, vma: vm_area_struct, flags: number): boolean {
  if (writable) return true;
  if (!(flags & FOLL_FORCE) || vma.vm_flags & VM_WRITE || !p) return false;
  return PageAnonExclusive(p);
}

/**
 * follow_page_pte(): the page mapped at address with a reference, null if a fault is needed,
 * or -EFAULT for a mapping without a normal page (zero page only with a reference when asked).
 */
function follow_page(vma: vm_area_struct, address: number, flags: number): page | null | number {
  const mm = vma.vm_mm;
  const l = follow_pte(mm, address);
  if (!l) return null;
  try {
    const pte = ptep_get(mm.k, l.pte);
    if (!pte_present(pte)) return null;
    let p = vm_normal_page(vma, address, pte);
    if (flags & FOLL_WRITE && !can_follow_write_pte(pte_write(pte), p, vma, flags)) return null;
    if (!p) {
      if (!is_zero_pfn(pte_pfn(pte)) || flags & FOLL_DUMP) return -EFAULT;
      p = ZERO_PAGE(mm.k, address);
    }
    if (flags & (FOLL_GET | FOLL_PIN)) get_page(p);
    if (flags & FOLL_TOUCH) {
      if (flags & FOLL_WRITE) SetPageDirty(p);
      SetPageReferenced(p);
    }
    return p;
  } finally {
    pte_unmap_unlock(l.pte, l.ptl);
  }
}

/** faultin_page(): one handle_mm_fault for GUP; 0 or -errno. */
async function faultin_page(vma: vm_area_struct, address: number, flags: number): Promise<number> {
  let fault_flags = 0;
  if (flags & FOLL_WRITE) fault_flags |= FAULT_FLAG_WRITE;
  if (flags & FOLL_REMOTE) fault_flags |= FAULT_FLAG_REMOTE;
  const ret = await handle_mm_fault(vma, address, fault_flags, null);
  if (ret & VM_FAULT_ERROR) return vm_fault_to_errno(ret, flags) || -EFAULT;
  return 0;
}

/**
 * __get_user_pages(mm, start, nr_pages, gup_flags, pages): fault in and (with FOLL_GET/PIN)
 * reference nr_pages pages. mmap_lock held. Returns the number done, or -errno if none.
 */
export async function __get_user_pages(mm: mm_struct, start: number, nr_pages: number, gup_flags: number, pages: page[] | null): Promise<number> {
  const k = mm.k;
  let vma: vm_area_struct | null = null;
  let i = 0;
  if (pages) gup_flags |= FOLL_GET;
  for (; nr_pages > 0; nr_pages--, start += PAGE_SIZE) {
    if (!vma || start >= vma.vm_end) {
      vma = vma_lookup(mm, start);
      if (!vma) return i || -EFAULT;
      const err = check_vma_flags(vma, gup_flags);
      if (err) return i || err;
    }
    for (;;) {
      if (fatal_signal_pending(k.current)) return i || -EINTR;
      const p = follow_page(vma, start, gup_flags);
      if (typeof p === "number") return i || p;
      if (p) {
        if (pages) pages.push(p);
        else if (gup_flags & (FOLL_GET | FOLL_PIN)) put_page(p);
        break;
      }
      const err = await faultin_page(vma, start, gup_flags);
      if (err) return i || err;
    }
    i++;
  }
  return i;
}

/** get_user_pages_remote(mm, start, nr_pages, gup_flags, pages, locked): mmap_lock held. */
export function get_user_pages_remote(mm: mm_struct, start: number, nr_pages: number, gup_flags: number, pages: page[] | null): Promise<number> {
  return __get_user_pages(mm, start, nr_pages, gup_flags | FOLL_TOUCH | FOLL_REMOTE, pages);
}

/** get_user_pages_fast(mm, start, nr_pages, gup_flags, pages): takes mmap_lock itself. */
export async function get_user_pages_fast(mm: mm_struct, start: number, nr_pages: number, gup_flags: number, pages: page[]): Promise<number> {
  await mmap_read_lock(mm);
  try {
    return await __get_user_pages(mm, start, nr_pages, gup_flags | FOLL_TOUCH, pages);
  } finally {
    mmap_read_unlock(mm);
  }
}

export const pin_user_pages_fast = (mm: mm_struct, start: number, nr: number, flags: number, pages: page[]): Promise<number> =>
  get_user_pages_fast(mm, start, nr, flags | FOLL_PIN, pages);

/** unpin_user_page(): FOLL_PIN references are plain references in kemu. */
export function unpin_user_page(p: page): void {
  put_page(p);
}

/** populate_vma_page_range(vma, start, end): fault every page in (MAP_POPULATE). */
async function populate_vma_page_range(vma: vm_area_struct, start: number, end: number): Promise<number> {
  let gup_flags = FOLL_TOUCH;
  if ((vma.vm_flags & (VM_WRITE | VM_SHARED)) === VM_WRITE) gup_flags |= FOLL_WRITE;
  if (vma_is_accessible(vma)) gup_flags |= FOLL_FORCE;
  return __get_user_pages(vma.vm_mm, start, (end - start) / PAGE_SIZE, gup_flags, null);
}

/**
 * faultin_vma_page_range(vma, start, end, write): MADV_POPULATE_(READ|WRITE); permission
 * problems are -EINVAL rather than -EFAULT.
 */
export async function faultin_vma_page_range(vma: vm_area_struct, start: number, end: number, write: boolean): Promise<number> {
  const gup_flags = FOLL_TOUCH | FOLL_HWPOISON | (write ? FOLL_WRITE : 0);
  if (check_vma_flags(vma, gup_flags)) return -EINVAL;
  return __get_user_pages(vma.vm_mm, start, (end - start) / PAGE_SIZE, gup_flags, null);
}

/** __mm_populate(mm, start, len, ignore_errors): populate every VMA of the range. */
export async function __mm_populate(mm: mm_struct, start: number, len: number, ignore_errors: boolean): Promise<number> {
  const end = start + len;
  await mmap_read_lock(mm);
  try {
    for (let nstart = start; nstart < end; ) {
      const vma = find_vma(mm, nstart);
      if (!vma || vma.vm_start >= end) break;
      const s = Math.max(nstart, vma.vm_start);
      const nend = Math.min(end, vma.vm_end);
      nstart = nend;
      if (vma.vm_flags & (VM_IO | VM_PFNMAP)) continue;
      const ret = await populate_vma_page_range(vma, s, nend);
      if (ret < 0 && !ignore_errors) return ret === -EFAULT ? -ENOMEM : ret;
    }
  } finally {
    mmap_read_unlock(mm);
  }
  return 0;
}

/**
 * access_remote_vm(mm, addr, buf, len, gup_flags): copy to (FOLL_WRITE) or from another
 * address space through GUP; returns the bytes done.
 */
export async function access_remote_vm(mm: mm_struct, addr: number, buf: Uint8Array, len: number, gup_flags: number): Promise<number> {
  if (await mmap_read_lock_killable(mm)) return 0;
  let done = 0;
  try {
    while (done < len) {
      const pages: page[] = [];
      const a = addr + done;
      if ((await get_user_pages_remote(mm, a, 1, gup_flags, pages)) <= 0) break;
      const off = a % PAGE_SIZE;
      const n = Math.min(len - done, PAGE_SIZE - off);
      if (gup_flags & FOLL_WRITE) {
        memcpy_to_page(pages[0]!, off, buf.subarray(done, done + n), n);
        SetPageDirty(pages[0]!);
      } else {
        memcpy_from_page(buf.subarray(done, done + n), pages[0]!, off, n);
      }
      put_page(pages[0]!);
      done += n;
    }
  } finally {
    mmap_read_unlock(mm);
  }
  return done;
}

// Mirrors mm/mprotect.c (Linux 6.8): mprotect(2) — do_mprotect_pkey's argument checks and
// errnos, mprotect_fixup (split/merge, VM_ACCOUNT) and change_protection, which rewrites the
// PTEs of the range inside an MMU_NOTIFY_PROTECTION_VMA window. Writable migration /
// device-private / device-exclusive entries become readable on any mprotect, as in the kernel.

import type { mm_struct, vm_area_struct } from "../include/linux/mm_types.ts";
import { EACCES, EINTR, EINVAL, ENOMEM } from "../include/uapi/asm-generic/errno.ts";
import {
  PAGE_SIZE, PAGE_ALIGN, offset_in_page, VM_READ, VM_WRITE, VM_EXEC, VM_SHARED, VM_ACCOUNT, VM_HUGETLB, VM_NORESERVE,
  VM_GROWSDOWN, VM_GROWSUP, VM_SOFTDIRTY, PageAnon, vma_is_anonymous,
} from "../include/linux/mm.ts";
import { PROT_READ, PROT_WRITE, PROT_EXEC, PROT_SEM, PROT_GROWSDOWN, PROT_GROWSUP } from "../include/uapi/asm-generic/mman-common.ts";
import {
  ptep_get, set_pte_at, ptep_get_and_clear, pte_none, pte_present, pte_protnone, pte_write, pte_dirty, pte_modify,
  pte_mkwrite, pte_same, pte_soft_dirty, pgd_offset, p4d_offset, pud_offset, pmd_offset, pmdp_get, pudp_get, p4dp_get,
  pmd_none, pud_none, p4d_none,
} from "../arch/x86/include/asm/pgtable.ts";
import { PGDIR_SIZE, PUD_SIZE, PMD_SIZE, type pgprot_t } from "../arch/x86/include/asm/pgtable_types.ts";
import { pte_swp_soft_dirty, pte_swp_mksoft_dirty, pte_swp_uffd_wp, pte_swp_mkuffd_wp } from "../arch/x86/include/asm/pgtable_64.ts";
import {
  is_swap_pte, pte_to_swp_entry, swp_entry_to_pte, swp_offset, is_writable_migration_entry,
  make_readable_exclusive_migration_entry, make_readable_migration_entry, is_writable_device_private_entry,
  make_readable_device_private_entry, is_writable_device_exclusive_entry, make_readable_device_exclusive_entry,
  pfn_swap_entry_to_page,
} from "../include/linux/swapops.ts";
import { PageAnonExclusive } from "../include/linux/page-flags.ts";
import { pte_offset_map_lock, pte_unmap_unlock } from "./pgtable-generic.ts";
import { pte_needs_flush } from "../arch/x86/mm/tlb.ts";
import { tlb_gather_mmu, tlb_finish_mmu, tlb_flush_pte_range, type mmu_gather } from "./mmu_gather.ts";
import {
  mmu_notifier_range, mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
  MMU_NOTIFY_PROTECTION_VMA,
} from "./mmu_notifier.ts";
import { vm_normal_page } from "./memory.ts";
import {
  find_vma, split_vma, vma_merge, vma_set_page_prot, vm_stat_account, calc_vm_prot_bits,
} from "./mmap.ts";
import { mmap_write_lock_killable, mmap_write_unlock } from "../include/linux/mmap_lock.ts";
import { NODE_DATA } from "../include/linux/mmzone.ts";

/** MM_CP_TRY_CHANGE_WRITABLE: map exclusive anon pages writable at once (no COW fault). */
export const MM_CP_TRY_CHANGE_WRITABLE = 1 << 0;
const VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;

/** can_change_pte_writable(). */
function can_change_pte_writable(vma: vm_area_struct, addr: number, pte: ReturnType<typeof ptep_get>): boolean {
  if (!(vma.vm_flags & VM_WRITE) || pte_protnone(pte)) return false;
  // Soft-dirty tracking wants write faults once clear_refs cleared VM_SOFTDIRTY.
  if (!(vma.vm_flags & VM_SOFTDIRTY) && !pte_soft_dirty(pte)) return false;
  if (!(vma.vm_flags & VM_SHARED)) {
    const p = vm_normal_page(vma, addr, pte);
    return p !== null && PageAnon(p) && PageAnonExclusive(p);
  }
  return pte_dirty(pte);
}

/** The new non-present entry for oldpte: writable special entries are made readable. */
function change_nonpresent(vma: vm_area_struct, oldpte: ReturnType<typeof ptep_get>) {
  const k = vma.vm_mm.k;
  const entry = pte_to_swp_entry(oldpte);
  if (is_writable_migration_entry(entry)) {
    const p = pfn_swap_entry_to_page(k, entry);
    const e = PageAnon(p) ? make_readable_exclusive_migration_entry(swp_offset(entry)) : make_readable_migration_entry(swp_offset(entry));
    const n = swp_entry_to_pte(e);
    return pte_swp_soft_dirty(oldpte) ? pte_swp_mksoft_dirty(n) : n;
  }
  if (is_writable_device_private_entry(entry)) {
    const n = swp_entry_to_pte(make_readable_device_private_entry(swp_offset(entry)));
    return pte_swp_uffd_wp(oldpte) ? pte_swp_mkuffd_wp(n) : n;
  }
  if (is_writable_device_exclusive_entry(entry)) {
    let n = swp_entry_to_pte(make_readable_device_exclusive_entry(swp_offset(entry)));
    if (pte_swp_soft_dirty(oldpte)) n = pte_swp_mksoft_dirty(n);
    return pte_swp_uffd_wp(oldpte) ? pte_swp_mkuffd_wp(n) : n;
  }
  return oldpte;
}

/** change_pte_range(): rewrite one PTE table's entries in [addr, end); pages changed. */
function change_pte_range(tlb: mmu_gather, vma: vm_area_struct, pmd: number, addr: number, end: number, newprot: pgprot_t, cp_flags: number): number {
  const mm = vma.vm_mm;
  const l = pte_offset_map_lock(mm, pmd, addr);
  if (!l) return 0;
  let pages = 0;
  try {
    for (let a = addr, ptep = l.pte; a < end; a += PAGE_SIZE, ptep += 8) {
      const oldpte = ptep_get(mm.k, ptep);
      if (pte_none(oldpte)) continue;
      if (pte_present(oldpte)) {
        ptep_get_and_clear(mm, a, ptep); // ptep_modify_prot_start
        let ptent = pte_modify(oldpte, newprot);
        if (cp_flags & MM_CP_TRY_CHANGE_WRITABLE && !pte_write(ptent) && can_change_pte_writable(vma, a, ptent)) ptent = pte_mkwrite(ptent, vma);
        set_pte_at(mm, a, ptep, ptent); // ptep_modify_prot_commit
        if (pte_needs_flush(oldpte, ptent)) tlb_flush_pte_range(tlb, a, PAGE_SIZE);
        pages++;
      } else if (is_swap_pte(oldpte)) {
        const newpte = change_nonpresent(vma, oldpte);
        if (!pte_same(oldpte, newpte)) {
          set_pte_at(mm, a, ptep, newpte);
          pages++;
        }
      }
    }
  } finally {
    pte_unmap_unlock(l.pte, l.ptl);
  }
  return pages;
}

/**
 * change_protection(tlb, vma, start, end, cp_flags): apply vma.vm_page_prot to [start, end).
 * The MMU_NOTIFY_PROTECTION_VMA window opens at the first populated pmd, as change_pmd_range.
 */
export async function change_protection(tlb: mmu_gather, vma: vm_area_struct, start: number, end: number, cp_flags: number): Promise<number> {
  const mm = vma.vm_mm;
  const k = mm.k;
  const range = new mmu_notifier_range();
  let opened = false;
  let pages = 0;
  for (let a = start; a < end; ) {
    const next = Math.min(end, (Math.floor(a / PMD_SIZE) + 1) * PMD_SIZE);
    const p4d = p4d_offset(pgd_offset(mm, a), a);
    if (p4d_none(p4dp_get(k, p4d))) {
      a = Math.min(end, (Math.floor(a / PGDIR_SIZE) + 1) * PGDIR_SIZE);
      continue;
    }
    const pud = pud_offset(k, p4d, a);
    if (pud_none(pudp_get(k, pud))) {
      a = Math.min(end, (Math.floor(a / PUD_SIZE) + 1) * PUD_SIZE);
      continue;
    }
    const pmd = pmd_offset(k, pud, a);
    if (!pmd_none(pmdp_get(k, pmd))) {
      if (!opened) {
        mmu_notifier_range_init(range, MMU_NOTIFY_PROTECTION_VMA, 0, mm, a, end);
        await mmu_notifier_invalidate_range_start(range);
        opened = true;
      }
      pages += change_pte_range(tlb, vma, pmd, a, next, vma.vm_page_prot, cp_flags);
    }
    a = next;
  }
  if (opened) await mmu_notifier_invalidate_range_end(range);
  return pages;
}

/** vma_wants_manual_pte_write_upgrade(): private writable VMAs (shared ones have no writenotify in kemu). */
function vma_wants_manual_pte_write_upgrade(vma: vm_area_struct): boolean {
  if (vma.vm_flags & VM_SHARED) return false;
  return (vma.vm_flags & VM_WRITE) !== 0;
}

/** vma_modify_flags(): split [start, end) out of vma, then merge with neighbours if possible. */
function vma_modify_flags(mm: mm_struct, vma: vm_area_struct, start: number, end: number): vm_area_struct | number {
  if (start > vma.vm_start) {
    const err = split_vma(mm, vma, start, true);
    if (err) return err;
  }
  if (end < vma.vm_end) {
    const err = split_vma(mm, vma, end, false);
    if (err) return err;
  }
  return vma;
}

/** mprotect_fixup(): give [start, end) of vma the new flags and rewrite its PTEs. */
export async function mprotect_fixup(tlb: mmu_gather, vma: vm_area_struct, start: number, end: number, newflags: number): Promise<{ err: number; vma: vm_area_struct }> {
  const mm = vma.vm_mm;
  const oldflags = vma.vm_flags;
  const nrpages = (end - start) / PAGE_SIZE;
  if (newflags === oldflags) return { err: 0, vma };
  if (newflags & VM_WRITE) {
    if (!(oldflags & (VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE))) {
      if (nrpages > NODE_DATA(mm.k).page_alloc.totalram_pages()) return { err: -ENOMEM, vma };
      newflags |= VM_ACCOUNT;
    }
  } else if (oldflags & VM_ACCOUNT && vma_is_anonymous(vma) && !vma.anon_vma) {
    newflags &= ~VM_ACCOUNT;
  }
  const v = vma_modify_flags(mm, vma, start, end);
  if (typeof v === "number") return { err: v, vma };
  v.vm_flags = newflags;
  const cp_flags = vma_wants_manual_pte_write_upgrade(v) ? MM_CP_TRY_CHANGE_WRITABLE : 0;
  vma_set_page_prot(v);
  await change_protection(tlb, v, start, end, cp_flags);
  vm_stat_account(mm, oldflags, -nrpages);
  vm_stat_account(mm, newflags, nrpages);
  return { err: 0, vma: vma_merge(mm, v) };
}

/** arch_validate_prot(): only R/W/X/SEM may be asked for. */
function arch_validate_prot(prot: number): boolean {
  return (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM)) === 0;
}

/** The VMA walk of do_mprotect_pkey with mmap_lock held for writing. */
async function mprotect_vmas(mm: mm_struct, start: number, end: number, prot: number, grows: number): Promise<number> {
  const vma = find_vma(mm, start);
  if (!vma || vma.vm_start >= end) return -ENOMEM;
  if (grows & PROT_GROWSDOWN) {
    start = vma.vm_start;
    if (!(vma.vm_flags & VM_GROWSDOWN)) return -EINVAL;
  } else {
    if (vma.vm_start > start) return -ENOMEM;
    if (grows & PROT_GROWSUP) {
      end = vma.vm_end;
      if (!(vma.vm_flags & VM_GROWSUP)) return -EINVAL;
    }
  }
  const tlb = tlb_gather_mmu(mm);
  let error = 0;
  let nstart = start;
  let tmp = vma.vm_start;
  try {
    for (let v: vm_area_struct | null = vma; v && v.vm_start < end; ) {
      if (v.vm_start !== tmp) {
        error = -ENOMEM;
        break;
      }
      const newflags = calc_vm_prot_bits(prot) | (v.vm_flags & ~VM_ACCESS_FLAGS);
      // newflags >> 4 puts VM_MAY* where VM_* are: every requested right must be allowed.
      if (newflags & ~(newflags >> 4) & VM_ACCESS_FLAGS) {
        error = -EACCES;
        break;
      }
      tmp = Math.min(v.vm_end, end);
      const r = await mprotect_fixup(tlb, v, nstart, tmp, newflags);
      if (r.err) {
        error = r.err;
        break;
      }
      // A merge with the following VMA (already carrying the new flags) ends the walk there.
      tmp = Math.max(tmp, r.vma.vm_end);
      nstart = tmp;
      v = tmp < end ? find_vma(mm, tmp) : null;
    }
  } finally {
    tlb_finish_mmu(tlb);
  }
  if (!error && tmp < end) error = -ENOMEM;
  return error;
}

/**
 * do_mprotect_pkey(mm, start, len, prot, pkey): unaligned start → -EINVAL; len 0 → 0; wrap →
 * -ENOMEM; unknown prot bits → -EINVAL; holes in the range → -ENOMEM; asking for more than
 * VM_MAY* allows → -EACCES. VMAs before the failing one keep their new protection.
 */
export async function do_mprotect_pkey(mm: mm_struct, start: number, len: number, prot: number, _pkey = -1): Promise<number> {
  const grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
  prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP);
  if (grows === (PROT_GROWSDOWN | PROT_GROWSUP)) return -EINVAL;
  if (offset_in_page(start)) return -EINVAL;
  if (!len) return 0;
  len = PAGE_ALIGN(len);
  const end = start + len;
  // unsigned long wrap: start + len reaching 2^64 wraps to end <= start.
  if (end <= start || end >= 2 ** 64) return -ENOMEM;
  if (!arch_validate_prot(prot)) return -EINVAL;
  if (await mmap_write_lock_killable(mm)) return -EINTR;
  try {
    return await mprotect_vmas(mm, start, end, prot, grows);
  } finally {
    mmap_write_unlock(mm);
  }
}

/** sys_mprotect(start, len, prot). */
export function sys_mprotect(mm: mm_struct, start: number, len: number, prot: number): Promise<number> {
  return do_mprotect_pkey(mm, start, len, prot, -1);
}

// Mirrors fs/proc/task_mmu.c (Linux 6.8): the content of /proc/<pid>/maps (show_map_vma) and
// /proc/<pid>/pagemap (pagemap_read, pte_to_pagemap_entry). procfs wires the files; these
// functions only produce the text and the 64-bit entries (little-endian bytes, as read()
// returns them). The reader is taken to be privileged (CAP_SYS_ADMIN), so pfns are shown.

import type { mm_struct, vm_area_struct } from "../../include/linux/mm_types.ts";
import type { file } from "../../include/linux/fs.ts";
import { EINVAL } from "../../include/uapi/asm-generic/errno.ts";
import { PAGE_SIZE, VM_READ, VM_WRITE, VM_EXEC, VM_MAYSHARE, VM_SOFTDIRTY, PageAnon, page_mapcount } from "../../include/linux/mm.ts";
import { MAJOR, MINOR } from "../../include/linux/kdev_t.ts";
import { ptep_get, pte_present, pte_none, pte_pfn, pte_soft_dirty, pte_uffd_wp } from "../../arch/x86/include/asm/pgtable.ts";
import { pte_swp_soft_dirty, pte_swp_uffd_wp } from "../../arch/x86/include/asm/pgtable_64.ts";
import {
  is_swap_pte, pte_to_swp_entry, is_pfn_swap_entry, swp_offset_pfn, swp_offset, swp_type, is_migration_entry,
  pfn_swap_entry_to_page, is_pte_marker_entry, pte_marker_get, PTE_MARKER_UFFD_WP,
} from "../../include/linux/swapops.ts";
import { MAX_SWAPFILES_SHIFT } from "../../include/linux/swap.ts";
import { vm_normal_page } from "../../mm/memory.ts";
import { mm_find_pmd, pte_offset_map_lock, pte_unmap_unlock } from "../../mm/pgtable-generic.ts";
import { find_vma } from "../../mm/mmap.ts";
import { mmget_not_zero, mmput } from "../../kernel/fork.ts";
import { mmap_read_lock, mmap_read_unlock } from "../../include/linux/mmap_lock.ts";

function hex(v: number, width: number): string {
  return v.toString(16).padStart(width, "0");
}

/** vma_is_initial_stack(): the VMA holding mm->start_stack. */
function vma_is_initial_stack(vma: vm_area_struct): boolean {
  const s = vma.vm_mm.start_stack;
  return s !== 0 && vma.vm_start <= s && vma.vm_end >= s;
}

/** show_map_vma(): one line of /proc/<pid>/maps. */
export function show_map_vma(vma: vm_area_struct): string {
  const f = vma.vm_file as file | null;
  let pgoff = 0;
  let dev = 0;
  let ino = 0;
  if (f) {
    const sb = f.f_inode.i_sb as { s_dev?: number };
    dev = sb.s_dev ?? 0;
    ino = f.f_inode.i_ino;
    pgoff = vma.vm_pgoff * PAGE_SIZE;
  }
  const fl = vma.vm_flags;
  const prefix = `${hex(vma.vm_start, 8)}-${hex(vma.vm_end, 8)} ${fl & VM_READ ? "r" : "-"}${fl & VM_WRITE ? "w" : "-"}` +
    `${fl & VM_EXEC ? "x" : "-"}${fl & VM_MAYSHARE ? "s" : "p"} ${hex(pgoff, 8)} ${hex(MAJOR(dev), 2)}:${hex(MINOR(dev), 2)} ${ino} `;
  let name: string | null = null;
  if (f) name = f.path;
  else if (vma.vm_ops?.name) name = vma.vm_ops.name.startsWith("[") ? vma.vm_ops.name : null;
  if (!name && !f && vma_is_initial_stack(vma)) name = "[stack]";
  // seq_pad(): names start at column 25 + 6 * sizeof(void *) - 1.
  return name ? `${prefix.padEnd(72, " ")}${name}\n` : `${prefix}\n`;
}

/** show_map(): the whole of /proc/<pid>/maps (mmap_lock taken for reading). */
export async function show_map(mm: mm_struct): Promise<string> {
  if (!mmget_not_zero(mm)) return "";
  await mmap_read_lock(mm);
  try {
    return mm.vmas.map(show_map_vma).join("");
  } finally {
    mmap_read_unlock(mm);
    await mmput(mm);
  }
}

// pagemap entry bits
export const PM_ENTRY_BYTES = 8;
export const PM_PFRAME_BITS = 55;
export const PM_SOFT_DIRTY_BIT = 55;
export const PM_MMAP_EXCLUSIVE_BIT = 56;
export const PM_UFFD_WP_BIT = 57;
export const PM_FILE_BIT = 61;
export const PM_SWAP_BIT = 62;
export const PM_PRESENT_BIT = 63;

/** A pagemap entry as two 32-bit words. */
export interface pagemap_entry_t {
  lo: number;
  hi: number;
}

/** make_pme(frame, flags): frame in bits 0-54, flag bits are given by bit number. */
function make_pme(frame: number, flags: number[]): pagemap_entry_t {
  const f = frame % 2 ** PM_PFRAME_BITS;
  let lo = f % 2 ** 32;
  let hi = Math.floor(f / 2 ** 32);
  for (const b of flags) {
    if (b < 32) lo |= 1 << b;
    else hi |= 1 << (b - 32);
  }
  return { lo: lo >>> 0, hi: hi >>> 0 };
}

/** pte_to_pagemap_entry() for the page at addr (mmap_lock held). */
export function pagemap_pme(mm: mm_struct, addr: number): pagemap_entry_t {
  const vma = find_vma(mm, addr);
  if (!vma || vma.vm_start > addr) return { lo: 0, hi: 0 };
  const flags: number[] = [];
  if (vma.vm_flags & VM_SOFTDIRTY) flags.push(PM_SOFT_DIRTY_BIT);
  const pmd = mm_find_pmd(mm, addr);
  const l = pmd === null ? null : pte_offset_map_lock(mm, pmd, addr);
  if (!l) return make_pme(0, flags);
  try {
    const pte = ptep_get(mm.k, l.pte);
    if (pte_none(pte)) return make_pme(0, flags);
    let frame = 0;
    let p = null;
    let migration = false;
    if (pte_present(pte)) {
      frame = pte_pfn(pte);
      flags.push(PM_PRESENT_BIT);
      p = vm_normal_page(vma, addr, pte);
      if (pte_soft_dirty(pte)) flags.push(PM_SOFT_DIRTY_BIT);
      if (pte_uffd_wp(pte)) flags.push(PM_UFFD_WP_BIT);
    } else if (is_swap_pte(pte)) {
      if (pte_swp_soft_dirty(pte)) flags.push(PM_SOFT_DIRTY_BIT);
      if (pte_swp_uffd_wp(pte)) flags.push(PM_UFFD_WP_BIT);
      const e = pte_to_swp_entry(pte);
      const offset = is_pfn_swap_entry(e) ? swp_offset_pfn(e) : swp_offset(e);
      frame = swp_type(e) + offset * 2 ** MAX_SWAPFILES_SHIFT;
      flags.push(PM_SWAP_BIT);
      migration = is_migration_entry(e);
      if (is_pfn_swap_entry(e)) p = pfn_swap_entry_to_page(mm.k, e);
      if (is_pte_marker_entry(e) && pte_marker_get(e) & PTE_MARKER_UFFD_WP) flags.push(PM_UFFD_WP_BIT);
    }
    if (p && !PageAnon(p)) flags.push(PM_FILE_BIT);
    if (p && !migration && page_mapcount(p) === 1) flags.push(PM_MMAP_EXCLUSIVE_BIT);
    return make_pme(frame, flags);
  } finally {
    pte_unmap_unlock(l.pte, l.ptl);
  }
}

/**
 * pagemap_read(mm, pos, count): `count` bytes of /proc/<pid>/pagemap from file position `pos`
 * (entry i describes virtual page i). -EINVAL unless both are multiples of 8; an mm that is
 * already gone reads as empty.
 */
export async function pagemap_read(mm: mm_struct, pos: number, count: number): Promise<Uint8Array | number> {
  if (pos % PM_ENTRY_BYTES || count % PM_ENTRY_BYTES || pos < 0 || count < 0) return -EINVAL;
  if (!mmget_not_zero(mm)) return new Uint8Array(0);
  const end_vpn = mm.task_size / PAGE_SIZE;
  const first = pos / PM_ENTRY_BYTES;
  const n = Math.max(0, Math.min(count / PM_ENTRY_BYTES, end_vpn - first));
  const out = new Uint8Array(n * PM_ENTRY_BYTES);
  const dv = new DataView(out.buffer);
  await mmap_read_lock(mm);
  try {
    for (let i = 0; i < n; i++) {
      const e = pagemap_pme(mm, (first + i) * PAGE_SIZE);
      dv.setUint32(i * 8, e.lo, true);
      dv.setUint32(i * 8 + 4, e.hi, true);
    }
  } finally {
    mmap_read_unlock(mm);
    await mmput(mm);
  }
  return out;
}

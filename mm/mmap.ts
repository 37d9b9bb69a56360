// Mirrors mm/mmap.c (Linux 6.8): the VMA set of an address space (lookup, split, merge, insert),
// get_unmapped_area (x86-64 top-down layout, arch/x86/kernel/sys_x86_64.c), do_mmap /
// mmap_region / vm_mmap_pgoff / ksys_mmap_pgoff with the kernel's argument checks and errnos,
// do_vmi_munmap / __vm_munmap, stack expansion, and exit_mmap.
//
// kemu: the maple tree is a sorted array (mm.vmas); where the kernel reads current->mm these
// functions take the mm first. No ASLR (as `setarch -R`): mmap_base = TASK_SIZE - 128 MiB.
// Processes run with CAP_SYS_RAWIO (root), so MAP_FIXED below mmap_min_addr is allowed.

import type { Kernel } from "../kernel/kernel.ts";
import type { mm_struct } from "../include/linux/mm_types.ts";
import { vm_area_struct } from "../include/linux/mm_types.ts";
import {
  EBADF, EEXIST, EFAULT, EINVAL, EINTR, ENODEV, ENOMEM, EOPNOTSUPP, EOVERFLOW, EPERM, EACCES,
} from "../include/uapi/asm-generic/errno.ts";
import {
  PAGE_SIZE, TASK_SIZE, PAGE_ALIGN, offset_in_page, VM_READ, VM_WRITE, VM_EXEC, VM_SHARED, VM_MAYREAD,
  VM_MAYWRITE, VM_MAYEXEC, VM_MAYSHARE, VM_GROWSDOWN, VM_GROWSUP, VM_LOCKED, VM_ACCOUNT, VM_NORESERVE,
  VM_SPECIAL, VM_SOFTDIRTY, VM_STACK, VM_SYNC,
} from "../include/linux/mm.ts";
import {
  MAP_TYPE, MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_ANONYMOUS,
  MAP_GROWSDOWN, MAP_LOCKED, MAP_NORESERVE, MAP_POPULATE, MAP_NONBLOCK, MAP_HUGETLB, MAP_32BIT, MAP_SYNC,
  MAP_DENYWRITE, MAP_EXECUTABLE, MAP_STACK, MAP_UNINITIALIZED, PROT_READ, PROT_WRITE, PROT_EXEC,
} from "../include/uapi/asm-generic/mman.ts";
import { protection_map_get } from "../arch/x86/mm/pgprot.ts";
import type { pgprot_t } from "../arch/x86/include/asm/pgtable_types.ts";
import { mmap_write_lock, mmap_write_lock_killable, mmap_write_unlock, mmap_write_downgrade, mmap_read_unlock, mmap_read_lock } from "../include/linux/mmap_lock.ts";
import { anon_vma_clone, unlink_anon_vmas } from "./rmap.ts";
import { unmap_vmas } from "./memory.ts";
import { free_pgtables } from "./pgtable-generic.ts";
import { tlb_gather_mmu, tlb_finish_mmu } from "./mmu_gather.ts";
import { mmu_notifier_release } from "./mmu_notifier.ts";
import { lru_add_drain } from "./swap.ts";
import { get_file, fput } from "../fs/file_table.ts";
import { fget } from "../fs/file.ts";
import { FMODE_READ, FMODE_WRITE, type file } from "../include/linux/fs.ts";
import { NODE_DATA } from "../include/linux/mmzone.ts";
import { shmem_zero_setup } from "./shmem.ts";
import { __mm_populate } from "./gup.ts";

/** vm.mmap_min_addr default. */
export const mmap_min_addr = 65536;
/** vm.max_map_count default (DEFAULT_MAX_MAP_COUNT). */
export const sysctl_max_map_count = 65530;
/** stack_guard_gap: 256 pages below a VM_GROWSDOWN VMA are kept free. */
export const stack_guard_gap = 256 * PAGE_SIZE;
/** mmap_base() with an 8 MiB stack rlimit and no randomisation: the 128 MiB minimum gap. */
export const MMAP_BASE = TASK_SIZE - 128 * 1024 * 1024;
/** TASK_UNMAPPED_BASE: where bottom-up allocation starts. */
export const TASK_UNMAPPED_BASE = PAGE_ALIGN(TASK_SIZE / 3);
const DEFAULT_MAP_WINDOW = TASK_SIZE;

// ---- lookup ----------------------------------------------------------------------------------

/** Index of the first VMA with addr < vm_end (binary search on the sorted array). */
function vma_index_after(mm: mm_struct, addr: number): number {
  let lo = 0;
  let hi = mm.vmas.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (mm.vmas[mid]!.vm_end <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** find_vma(mm, addr): the first VMA ending above addr (it may start above addr). */
export function find_vma(mm: mm_struct, addr: number): vm_area_struct | null {
  return mm.vmas[vma_index_after(mm, addr)] ?? null;
}

/** vma_lookup(mm, addr): the VMA containing addr, or null. */
export function vma_lookup(mm: mm_struct, addr: number): vm_area_struct | null {
  const v = find_vma(mm, addr);
  return v && v.vm_start <= addr ? v : null;
}

/** find_vma_intersection(mm, start, end): the first VMA overlapping [start, end). */
export function find_vma_intersection(mm: mm_struct, start: number, end: number): vm_area_struct | null {
  const v = find_vma(mm, start);
  return v && v.vm_start < end ? v : null;
}

/** find_vma_prev(): find_vma() and the VMA before it. */
export function find_vma_prev(mm: mm_struct, addr: number): { vma: vm_area_struct | null; prev: vm_area_struct | null } {
  const i = vma_index_after(mm, addr);
  return { vma: mm.vmas[i] ?? null, prev: i > 0 ? mm.vmas[i - 1]! : null };
}

export function vma_prev(mm: mm_struct, vma: vm_area_struct): vm_area_struct | null {
  const i = mm.vmas.indexOf(vma);
  return i > 0 ? mm.vmas[i - 1]! : null;
}

export function vma_next(mm: mm_struct, vma: vm_area_struct): vm_area_struct | null {
  const i = mm.vmas.indexOf(vma);
  return i >= 0 ? (mm.vmas[i + 1] ?? null) : null;
}

/** vm_start_gap(): a growsdown VMA reserves stack_guard_gap below itself. */
export function vm_start_gap(vma: vm_area_struct): number {
  if (!(vma.vm_flags & VM_GROWSDOWN)) return vma.vm_start;
  return Math.max(0, vma.vm_start - stack_guard_gap);
}

export function vm_end_gap(vma: vm_area_struct): number {
  return vma.vm_end;
}

// ---- protections and accounting ---------------------------------------------------------------

/** vm_get_page_prot(vm_flags): protection_map[READ|WRITE|EXEC|SHARED]. */
export function vm_get_page_prot(vm_flags: number): pgprot_t {
  return protection_map_get(vm_flags & (VM_READ | VM_WRITE | VM_EXEC | VM_SHARED));
}

/** vma_set_page_prot(): private writable mappings stay read-only in PTEs until COW. */
export function vma_set_page_prot(vma: vm_area_struct): void {
  vma.vm_page_prot = vm_get_page_prot(vma.vm_flags);
}

function is_exec_mapping(flags: number): boolean {
  return (flags & (VM_EXEC | VM_WRITE | VM_STACK)) === VM_EXEC;
}
function is_stack_mapping(flags: number): boolean {
  return (flags & VM_STACK) === VM_STACK;
}
function is_data_mapping(flags: number): boolean {
  return (flags & (VM_WRITE | VM_SHARED | VM_STACK)) === VM_WRITE;
}

/** vm_stat_account(mm, flags, npages). */
export function vm_stat_account(mm: mm_struct, flags: number, npages: number): void {
  mm.total_vm += npages;
  if (is_exec_mapping(flags)) mm.exec_vm += npages;
  else if (is_stack_mapping(flags)) mm.stack_vm += npages;
  else if (is_data_mapping(flags)) mm.data_vm += npages;
}

// ---- VMA objects and the set ----------------------------------------------------------------------

export function vm_area_alloc(mm: mm_struct): vm_area_struct {
  return new vm_area_struct(mm, 0, 0, 0);
}

/** vm_area_dup(): a copy sharing file and anon identity (the caller fixes references). */
export function vm_area_dup(orig: vm_area_struct): vm_area_struct {
  const v = new vm_area_struct(orig.vm_mm, orig.vm_start, orig.vm_end, orig.vm_flags);
  v.vm_ops = orig.vm_ops;
  v.vm_file = orig.vm_file;
  v.vm_pgoff = orig.vm_pgoff;
  v.anon_vma = orig.anon_vma;
  v.vm_private_data = orig.vm_private_data;
  v.vm_page_prot = orig.vm_page_prot;
  return v;
}

/** vma_link(): insert into the sorted set; -ENOMEM if it would overlap. */
export function vma_link(mm: mm_struct, vma: vm_area_struct): number {
  const i = vma_index_after(mm, vma.vm_start);
  const next = mm.vmas[i];
  if (next && next.vm_start < vma.vm_end) return -ENOMEM;
  mm.vmas.splice(i, 0, vma);
  return 0;
}

export const insert_vm_struct = vma_link;

function vma_unlink(mm: mm_struct, vma: vm_area_struct): void {
  const i = mm.vmas.indexOf(vma);
  if (i >= 0) mm.vmas.splice(i, 1);
}

/** remove_vma(): ->close, drop the file, leave the anon family. */
export function remove_vma(vma: vm_area_struct): void {
  vma.vm_ops?.close?.(vma);
  if (vma.vm_file) fput(vma.vm_file as file);
  unlink_anon_vmas(vma);
}

/**
 * __split_vma(mm, vma, addr, new_below): split at addr; the new VMA takes the part below addr
 * (new_below) or above it. 0 or -ENOMEM / -EINVAL.
 */
export function __split_vma(mm: mm_struct, vma: vm_area_struct, addr: number, new_below: boolean): number {
  if (addr <= vma.vm_start || addr >= vma.vm_end) return -EINVAL;
  if (vma.vm_ops?.may_split) {
    const err = vma.vm_ops.may_split(vma, addr);
    if (err) return err;
  }
  const nv = vm_area_dup(vma);
  if (new_below) {
    nv.vm_end = addr;
    vma.vm_pgoff += (addr - vma.vm_start) / PAGE_SIZE;
    vma.vm_start = addr;
  } else {
    nv.vm_start = addr;
    nv.vm_pgoff += (addr - vma.vm_start) / PAGE_SIZE;
    vma.vm_end = addr;
  }
  nv.anon_vma = null;
  anon_vma_clone(nv, vma);
  if (nv.vm_file) get_file(nv.vm_file as file);
  nv.vm_ops?.open?.(nv);
  return vma_link(mm, nv);
}

/** split_vma(): __split_vma with the max_map_count check. */
export function split_vma(mm: mm_struct, vma: vm_area_struct, addr: number, new_below: boolean): number {
  if (mm.vmas.length >= sysctl_max_map_count) return -ENOMEM;
  return __split_vma(mm, vma, addr, new_below);
}

/** is_mergeable_vma() + the anon_vma / pgoff continuity rules of can_vma_merge_*. */
function can_merge(a: vm_area_struct, b: vm_area_struct): boolean {
  if (a.vm_end !== b.vm_start) return false;
  if ((a.vm_flags ^ b.vm_flags) & ~VM_SOFTDIRTY) return false;
  if (a.vm_flags & VM_SPECIAL) return false;
  if (a.vm_file !== b.vm_file || a.vm_ops !== b.vm_ops || a.vm_private_data !== b.vm_private_data) return false;
  if (a.anon_vma && b.anon_vma && a.anon_vma !== b.anon_vma) return false;
  return a.vm_pgoff + (a.vm_end - a.vm_start) / PAGE_SIZE === b.vm_pgoff;
}

/**
 * vma_merge() (simplified: merge a VMA with its neighbours when every attribute matches and the
 * file/anon page offsets continue); returns the surviving VMA.
 */
export function vma_merge(mm: mm_struct, vma: vm_area_struct): vm_area_struct {
  let v = vma;
  const prev = vma_prev(mm, v);
  if (prev && can_merge(prev, v)) {
    prev.vm_end = v.vm_end;
    if (!prev.anon_vma && v.anon_vma) anon_vma_clone(prev, v);
    vma_unlink(mm, v);
    remove_vma(v);
    v = prev;
  }
  const next = vma_next(mm, v);
  if (next && can_merge(v, next)) {
    v.vm_end = next.vm_end;
    if (!v.anon_vma && next.anon_vma) anon_vma_clone(v, next);
    vma_unlink(mm, next);
    remove_vma(next);
  }
  return v;
}

// ---- get_unmapped_area (arch/x86/kernel/sys_x86_64.c, mm/mmap.c) ----------------------------------

/** Highest gap of `len` bytes inside [low, high), honouring stack guard gaps (unmapped_area_topdown). */
function unmapped_area_topdown(mm: mm_struct, len: number, low: number, high: number): number {
  for (let i = mm.vmas.length; i >= 0; i--) {
    const next = mm.vmas[i];
    const prev = i > 0 ? mm.vmas[i - 1] : undefined;
    const gap_end = Math.min(high, next ? vm_start_gap(next) : high);
    const gap_start = Math.max(low, prev ? vm_end_gap(prev) : low);
    if (gap_end - gap_start >= len) return gap_end - len;
    if (prev && prev.vm_end <= low) break;
  }
  return -ENOMEM;
}

/** Lowest gap of `len` bytes inside [low, high) (unmapped_area). */
function unmapped_area(mm: mm_struct, len: number, low: number, high: number): number {
  for (let i = 0; i <= mm.vmas.length; i++) {
    const next = mm.vmas[i];
    const prev = i > 0 ? mm.vmas[i - 1] : undefined;
    const gap_start = Math.max(low, prev ? vm_end_gap(prev) : low);
    const gap_end = Math.min(high, next ? vm_start_gap(next) : high);
    if (gap_end - gap_start >= len) return gap_start;
    if (next && next.vm_start >= high) break;
  }
  return -ENOMEM;
}

function mmap_address_hint_valid(addr: number, len: number): boolean {
  if (TASK_SIZE - len < addr) return false;
  return addr > DEFAULT_MAP_WINDOW === addr + len > DEFAULT_MAP_WINDOW;
}

function hint_fits(mm: mm_struct, addr: number, len: number): boolean {
  if (!mmap_address_hint_valid(addr, len) || addr < mmap_min_addr) return false;
  const { vma, prev } = find_vma_prev(mm, addr);
  return (!vma || addr + len <= vm_start_gap(vma)) && (!prev || addr >= vm_end_gap(prev));
}

/** arch_get_unmapped_area (bottom-up; MAP_32BIT uses the 1-2 GiB window). */
function arch_get_unmapped_area(mm: mm_struct, addr: number, len: number, flags: number): number {
  const [begin, end] = flags & MAP_32BIT ? [0x40000000, 0x80000000] : [TASK_UNMAPPED_BASE, TASK_SIZE];
  if (len > end) return -ENOMEM;
  if (flags & MAP_FIXED) return addr;
  if (addr) {
    const a = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
    if (end - len >= a && hint_fits(mm, a, len)) return a;
  }
  return unmapped_area(mm, len, begin, end);
}

/** arch_get_unmapped_area_topdown(). */
function arch_get_unmapped_area_topdown(mm: mm_struct, addr: number, len: number, flags: number): number {
  if (len > TASK_SIZE) return -ENOMEM;
  if (flags & MAP_FIXED) return addr;
  if (flags & MAP_32BIT) return arch_get_unmapped_area(mm, addr, len, flags);
  if (addr) {
    const a = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
    if (hint_fits(mm, a, len)) return a;
  }
  const found = unmapped_area_topdown(mm, len, Math.max(PAGE_SIZE, mmap_min_addr), mm.mmap_base || MMAP_BASE);
  if (found >= 0) return found;
  return arch_get_unmapped_area(mm, addr, len, flags);
}

/** get_unmapped_area(file, addr, len, pgoff, flags) → address or -errno. */
export function get_unmapped_area(mm: mm_struct, _file: file | null, addr: number, len: number, _pgoff: number, flags: number): number {
  if (len > TASK_SIZE) return -ENOMEM;
  const a = arch_get_unmapped_area_topdown(mm, addr, len, flags);
  if (a < 0) return a;
  if (a > TASK_SIZE - len) return -ENOMEM;
  if (offset_in_page(a)) return -EINVAL;
  return a;
}

// ---- do_mmap ---------------------------------------------------------------------------------------

/** calc_vm_prot_bits(prot, pkey). */
export function calc_vm_prot_bits(prot: number): number {
  return (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0) | (prot & PROT_EXEC ? VM_EXEC : 0);
}

/** calc_vm_flag_bits(flags). */
export function calc_vm_flag_bits(flags: number): number {
  return (flags & MAP_GROWSDOWN ? VM_GROWSDOWN : 0) | (flags & MAP_LOCKED ? VM_LOCKED : 0) | (flags & MAP_SYNC ? VM_SYNC : 0);
}

/** Flags MAP_SHARED (legacy) keeps; MAP_SHARED_VALIDATE rejects anything else. */
const LEGACY_MAP_MASK = MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_DENYWRITE | MAP_EXECUTABLE |
  MAP_UNINITIALIZED | MAP_GROWSDOWN | MAP_LOCKED | MAP_NORESERVE | MAP_POPULATE | MAP_NONBLOCK | MAP_STACK | MAP_HUGETLB;

/** round_hint_to_min(): hints below mmap_min_addr move up to it. */
function round_hint_to_min(hint: number): number {
  const h = Math.floor(hint / PAGE_SIZE) * PAGE_SIZE;
  return h && h < mmap_min_addr ? PAGE_ALIGN(mmap_min_addr) : h;
}

/** The out parameter `unsigned long *populate` of do_mmap. */
export interface mmap_populate {
  populate: number;
}

/** Validates the file side of do_mmap and returns the adjusted vm_flags, or -errno. */
function do_mmap_file_flags(f: file, flags: number, prot: number, vm_flags: number): number {
  switch (flags & MAP_TYPE) {
    case MAP_SHARED:
    case MAP_SHARED_VALIDATE: {
      // No kemu file has ->mmap_supported_flags (MAP_SYNC is a DAX feature), so only the legacy set.
      const mask = LEGACY_MAP_MASK;
      if ((flags & MAP_TYPE) === MAP_SHARED_VALIDATE && flags & ~mask) return -EOPNOTSUPP;
      if (prot & PROT_WRITE && !(f.f_mode & FMODE_WRITE)) return -EACCES;
      vm_flags |= VM_SHARED | VM_MAYSHARE;
      if (!(f.f_mode & FMODE_WRITE)) vm_flags &= ~(VM_MAYWRITE | VM_SHARED);
      break;
    }
    case MAP_PRIVATE:
      break;
    default:
      return -EINVAL;
  }
  if (!(f.f_mode & FMODE_READ)) return -EACCES;
  if (!f.f_op.mmap) return -ENODEV;
  if (vm_flags & (VM_GROWSDOWN | VM_GROWSUP)) return -EINVAL;
  return vm_flags;
}

/**
 * do_mmap(mm, file, addr, len, prot, flags, vm_flags, pgoff, populate): the caller holds
 * mmap_lock for writing. Returns the address or -errno.
 */
export async function do_mmap(
  mm: mm_struct, f: file | null, addr: number, len: number, prot: number, flags: number, vm_flags: number,
  pgoff: number, populate: mmap_populate,
): Promise<number> {
  populate.populate = 0;
  if (!len) return -EINVAL;
  if (!(flags & MAP_FIXED)) addr = round_hint_to_min(addr);
  // MAP_FIXED_NOREPLACE is MAP_FIXED for get_unmapped_area, then refuses to replace.
  if (flags & MAP_FIXED_NOREPLACE) flags |= MAP_FIXED;
  len = PAGE_ALIGN(len);
  if (!len || len > TASK_SIZE) return -ENOMEM;
  if (pgoff + len / PAGE_SIZE > 2 ** 52) return -EOVERFLOW;
  if (mm.vmas.length > sysctl_max_map_count) return -ENOMEM;
  addr = get_unmapped_area(mm, f, addr, len, pgoff, flags);
  if (addr < 0) return addr;
  if (flags & MAP_FIXED_NOREPLACE && find_vma_intersection(mm, addr, addr + len)) return -EEXIST;
  vm_flags |= calc_vm_prot_bits(prot) | calc_vm_flag_bits(flags) | mm.def_flags | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  if (f) {
    const r = do_mmap_file_flags(f, flags, prot, vm_flags);
    if (r < 0) return r;
    vm_flags = r;
  } else {
    switch (flags & MAP_TYPE) {
      case MAP_SHARED:
        if (vm_flags & (VM_GROWSDOWN | VM_GROWSUP)) return -EINVAL;
        pgoff = 0;
        vm_flags |= VM_SHARED | VM_MAYSHARE;
        break;
      case MAP_PRIVATE:
        pgoff = addr / PAGE_SIZE;
        break;
      default:
        return -EINVAL;
    }
  }
  if (flags & MAP_NORESERVE) vm_flags |= VM_NORESERVE;
  addr = await mmap_region(mm, f, addr, len, vm_flags, pgoff);
  if (addr >= 0 && (vm_flags & VM_LOCKED || (flags & (MAP_POPULATE | MAP_NONBLOCK)) === MAP_POPULATE)) populate.populate = len;
  return addr;
}

/** accountable_mapping(): private writable memory is charged against overcommit. */
function accountable_mapping(vm_flags: number): boolean {
  return (vm_flags & (VM_NORESERVE | VM_SHARED | VM_WRITE)) === VM_WRITE;
}

/** __vm_enough_memory() with the default heuristic overcommit: no single mapping over RAM. */
function vm_enough_memory(mm: mm_struct, pages: number): boolean {
  return pages <= NODE_DATA(mm.k).page_alloc.totalram_pages();
}

/** mmap_region(): replace whatever is at [addr, addr+len) with a new VMA. */
export async function mmap_region(mm: mm_struct, f: file | null, addr: number, len: number, vm_flags: number, pgoff: number): Promise<number> {
  const end = addr + len;
  if (find_vma_intersection(mm, addr, end)) {
    const err = await do_vmi_munmap(mm, addr, len, false);
    if (err) return err;
  }
  if (accountable_mapping(vm_flags)) {
    if (!vm_enough_memory(mm, len / PAGE_SIZE)) return -ENOMEM;
    vm_flags |= VM_ACCOUNT;
  }
  const vma = vm_area_alloc(mm);
  vma.vm_start = addr;
  vma.vm_end = end;
  // New VMAs start soft-dirty (CONFIG_MEM_SOFT_DIRTY): tracking is off until clear_refs.
  vma.vm_flags = vm_flags | VM_SOFTDIRTY;
  vma.vm_pgoff = pgoff;
  vma_set_page_prot(vma);
  if (f) {
    vma.vm_file = get_file(f);
    const err = await f.f_op.mmap!(f, vma);
    if (err) {
      fput(f);
      vma.vm_file = null;
      await unmap_region_of(mm, vma);
      return err;
    }
    vma_set_page_prot(vma);
  } else if (vm_flags & VM_SHARED) {
    const err = shmem_zero_setup(vma);
    if (err) return err;
  }
  if (vma_link(mm, vma)) {
    remove_vma(vma);
    return -ENOMEM;
  }
  vm_stat_account(mm, vm_flags, len / PAGE_SIZE);
  vma_merge(mm, vma);
  return addr;
}

/** Undo what a failing ->mmap may have mapped into a VMA that never got linked. */
async function unmap_region_of(mm: mm_struct, vma: vm_area_struct): Promise<void> {
  const tlb = tlb_gather_mmu(mm);
  await unmap_vmas(tlb, [vma], vma.vm_start, vma.vm_end);
  const { vma: next, prev } = find_vma_prev(mm, vma.vm_start);
  free_pgtables(mm, [vma], prev ? prev.vm_end : 0, next ? next.vm_start : 0);
  tlb_finish_mmu(tlb);
}

/** vm_mmap_pgoff(mm, file, addr, len, prot, flag, pgoff): takes mmap_lock; populates. */
export async function vm_mmap_pgoff(mm: mm_struct, f: file | null, addr: number, len: number, prot: number, flag: number, pgoff: number): Promise<number> {
  const populate: mmap_populate = { populate: 0 };
  if (await mmap_write_lock_killable(mm)) return -EINTR;
  let ret: number;
  try {
    ret = await do_mmap(mm, f, addr, len, prot, flag, 0, pgoff, populate);
  } finally {
    mmap_write_unlock(mm);
  }
  if (ret >= 0 && populate.populate) await __mm_populate(mm, ret, populate.populate, true);
  return ret;
}

/** vm_mmap(file, addr, len, prot, flag, offset): byte offset form for in-kernel users. */
export async function vm_mmap(mm: mm_struct, f: file | null, addr: number, len: number, prot: number, flag: number, offset: number): Promise<number> {
  if (offset + PAGE_ALIGN(len) < offset) return -EINVAL;
  if (offset_in_page(offset)) return -EINVAL;
  return vm_mmap_pgoff(mm, f, addr, len, prot, flag, offset / PAGE_SIZE);
}

/**
 * ksys_mmap_pgoff(mm, addr, len, prot, flags, fd, pgoff): the fd is looked up in the current
 * task's file table. MAP_HUGETLB: kemu has no hugetlb pool, so it fails with -ENOMEM.
 */
export async function ksys_mmap_pgoff(k: Kernel, mm: mm_struct, addr: number, len: number, prot: number, flags: number, fd: number, pgoff: number): Promise<number> {
  let f: file | null = null;
  if (!(flags & MAP_ANONYMOUS)) {
    f = fget(k.current.files, fd);
    if (!f) return -EBADF;
    if (flags & MAP_HUGETLB) {
      fput(f);
      return -EINVAL;
    }
  } else if (flags & MAP_HUGETLB) {
    return -ENOMEM;
  }
  try {
    return await vm_mmap_pgoff(mm, f, addr, len, prot, flags, pgoff);
  } finally {
    if (f) fput(f);
  }
}

/** sys_mmap (arch/x86/kernel/sys_x86_64.c): the offset must be page aligned. */
export async function sys_mmap(k: Kernel, mm: mm_struct, addr: number, len: number, prot: number, flags: number, fd: number, off: number): Promise<number> {
  if (off < 0 || offset_in_page(off)) return -EINVAL;
  return ksys_mmap_pgoff(k, mm, addr, len, prot, flags, fd, off / PAGE_SIZE);
}

// ---- munmap ---------------------------------------------------------------------------------------

/**
 * do_vmi_align_munmap(): split the edge VMAs, detach everything in [start, end), zap it under an
 * MMU_NOTIFY_UNMAP window, free page tables, then drop the VMAs. With `unlock` the write lock is
 * downgraded for the zap and released at the end.
 */
async function do_vmi_align_munmap(mm: mm_struct, vma: vm_area_struct, start: number, end: number, unlock: boolean): Promise<number> {
  if (start > vma.vm_start) {
    if (end < vma.vm_end && mm.vmas.length >= sysctl_max_map_count) return -ENOMEM;
    const err = __split_vma(mm, vma, start, true);
    if (err) return err;
  }
  const last = find_vma(mm, end - 1);
  if (last && last.vm_start < end && last.vm_end > end) {
    const err = __split_vma(mm, last, end, true);
    if (err) return err;
  }
  const victims = mm.vmas.filter((v) => v.vm_start >= start && v.vm_end <= end);
  for (const v of victims) {
    vma_unlink(mm, v);
    vm_stat_account(mm, v.vm_flags, -(v.vm_end - v.vm_start) / PAGE_SIZE);
  }
  const { vma: next, prev } = find_vma_prev(mm, start);
  if (unlock) mmap_write_downgrade(mm);
  lru_add_drain();
  const tlb = tlb_gather_mmu(mm);
  await unmap_vmas(tlb, victims, start, end);
  free_pgtables(mm, victims, prev ? prev.vm_end : 0, next ? next.vm_start : 0);
  tlb_finish_mmu(tlb);
  for (const v of victims) remove_vma(v);
  if (unlock) mmap_read_unlock(mm);
  return 0;
}

/**
 * do_vmi_munmap(mm, start, len, unlock): unaligned start, a range leaving user space or an
 * empty range give -EINVAL; nothing mapped is success.
 */
export async function do_vmi_munmap(mm: mm_struct, start: number, len: number, unlock: boolean): Promise<number> {
  if (offset_in_page(start) || start > TASK_SIZE || len > TASK_SIZE - start) return -EINVAL;
  const end = start + PAGE_ALIGN(len);
  if (end === start) return -EINVAL;
  const vma = find_vma(mm, start);
  if (!vma || vma.vm_start >= end) {
    if (unlock) mmap_write_unlock(mm);
    return 0;
  }
  return do_vmi_align_munmap(mm, vma, start, end, unlock);
}

export const do_munmap = (mm: mm_struct, start: number, len: number): Promise<number> => do_vmi_munmap(mm, start, len, false);

/** __vm_munmap(mm, start, len, unlock): the munmap(2) body. */
export async function __vm_munmap(mm: mm_struct, start: number, len: number, unlock: boolean): Promise<number> {
  if (await mmap_write_lock_killable(mm)) return -EINTR;
  const ret = await do_vmi_munmap(mm, start, len, unlock);
  // With `unlock`, a successful do_vmi_munmap released the (downgraded) lock itself.
  if (ret || !unlock) mmap_write_unlock(mm);
  return ret;
}

export function vm_munmap(mm: mm_struct, start: number, len: number): Promise<number> {
  return __vm_munmap(mm, start, len, false);
}

/** sys_munmap(addr, len). */
export function sys_munmap(mm: mm_struct, addr: number, len: number): Promise<number> {
  return __vm_munmap(mm, addr, len, true);
}

// ---- stack ----------------------------------------------------------------------------------------

/**
 * expand_downwards(vma, address): grow a VM_GROWSDOWN VMA down to address (mmap_lock held for
 * writing). -ENOMEM if it would run into the guard gap of the previous VMA.
 */
export function expand_downwards(vma: vm_area_struct, address: number): number {
  const mm = vma.vm_mm;
  if (!(vma.vm_flags & VM_GROWSDOWN)) return -EFAULT;
  address = Math.floor(address / PAGE_SIZE) * PAGE_SIZE;
  if (address < mmap_min_addr) return -EPERM;
  const prev = vma_prev(mm, vma);
  if (prev && prev.vm_end > address - stack_guard_gap && !(prev.vm_flags & VM_GROWSDOWN)) return -ENOMEM;
  if (address >= vma.vm_start) return 0;
  const grow = (vma.vm_start - address) / PAGE_SIZE;
  vma.vm_pgoff -= grow;
  vma.vm_start = address;
  vm_stat_account(mm, vma.vm_flags, grow);
  return 0;
}

/** expand_stack_locked(vma, addr): true on failure (the 6.5 helper returns an error code). */
export function expand_stack_locked(vma: vm_area_struct, addr: number): number {
  return expand_downwards(vma, addr);
}

/**
 * find_extend_vma_locked(mm, addr): the VMA containing addr, growing a stack VMA down to it if
 * needed (mmap_lock held for writing). null if addr cannot be reached.
 */
export function find_extend_vma_locked(mm: mm_struct, addr: number): vm_area_struct | null {
  addr = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
  const vma = find_vma(mm, addr);
  if (!vma) return null;
  if (vma.vm_start <= addr) return vma;
  if (!(vma.vm_flags & VM_GROWSDOWN)) return null;
  return expand_stack_locked(vma, addr) ? null : vma;
}

/** find_extend_vma(mm, addr) (≤6.4 form; read lock held): as above. */
export const find_extend_vma = find_extend_vma_locked;

// ---- exit -----------------------------------------------------------------------------------------

/**
 * exit_mmap(mm): the last user is gone. Notifier subscribers are released first (before any
 * page is freed), then every VMA is unmapped, the page tables freed and the VMAs dropped.
 */
export async function exit_mmap(mm: mm_struct): Promise<void> {
  await mmu_notifier_release(mm);
  await mmap_read_lock(mm);
  const vmas = [...mm.vmas];
  lru_add_drain();
  const tlb = tlb_gather_mmu(mm, true);
  if (vmas.length) await unmap_vmas(tlb, vmas, 0, TASK_SIZE + PAGE_SIZE);
  mmap_read_unlock(mm);
  await mmap_write_lock(mm);
  free_pgtables(mm, vmas, 0, 0);
  tlb_finish_mmu(tlb);
  for (const v of vmas) remove_vma(v);
  mm.vmas = [];
  mm.total_vm = mm.data_vm = mm.exec_vm = mm.stack_vm = 0;
  mmap_write_unlock(mm);
}

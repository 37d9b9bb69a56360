// Mirrors include/linux/mm.h and include/linux/mm_types.h's vm_fault (Linux 6.8): page-size
// helpers, VMA flags, fault flags and fault results. Addresses and pfns are JS numbers below
// 2^53, so the helpers use arithmetic, never 32-bit bitwise operators.

import type { page, vm_area_struct } from "./mm_types.ts";

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
/** x86-64 4-level paging: user space ends at 2^47 - one page. */
export const TASK_SIZE = 2 ** 47 - PAGE_SIZE;
/** ULONG_MAX as a JS number: the 64-bit value is not representable, 2^64 stands for "all". */
export const ULONG_MAX = 2 ** 64;

export function PFN_DOWN(addr: number): number {
  return Math.floor(addr / PAGE_SIZE);
}
export function PFN_UP(addr: number): number {
  return Math.ceil(addr / PAGE_SIZE);
}
export function PFN_PHYS(pfn: number): number {
  return pfn * PAGE_SIZE;
}
export function PAGE_ALIGN(addr: number): number {
  return Math.ceil(addr / PAGE_SIZE) * PAGE_SIZE;
}
/** addr & PAGE_MASK */
export function PAGE_ALIGN_DOWN(addr: number): number {
  return Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
}
export function offset_in_page(addr: number): number {
  return addr % PAGE_SIZE;
}
export function PAGE_ALIGNED(addr: number): boolean {
  return addr % PAGE_SIZE === 0;
}

// vm_flags (include/linux/mm.h). Flag words, not addresses: bit operators are fine on them.
export const VM_NONE = 0x00000000;
export const VM_READ = 0x00000001;
export const VM_WRITE = 0x00000002;
export const VM_EXEC = 0x00000004;
export const VM_SHARED = 0x00000008;
export const VM_MAYREAD = 0x00000010;
export const VM_MAYWRITE = 0x00000020;
export const VM_MAYEXEC = 0x00000040;
export const VM_MAYSHARE = 0x00000080;
export const VM_GROWSDOWN = 0x00000100;
export const VM_PFNMAP = 0x00000400;
export const VM_LOCKED = 0x00002000;
export const VM_IO = 0x00004000;
export const VM_DONTCOPY = 0x00020000;
export const VM_DONTEXPAND = 0x00040000;
export const VM_ACCOUNT = 0x00100000;
export const VM_NORESERVE = 0x00200000;
export const VM_HUGETLB = 0x00400000;
export const VM_WIPEONFORK = 0x02000000;
export const VM_DONTDUMP = 0x04000000;
export const VM_MIXEDMAP = 0x10000000;
export const VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;

// enum fault_flag
export const FAULT_FLAG_WRITE = 1 << 0;
export const FAULT_FLAG_MKWRITE = 1 << 1;
export const FAULT_FLAG_ALLOW_RETRY = 1 << 2;
export const FAULT_FLAG_RETRY_NOWAIT = 1 << 3;
export const FAULT_FLAG_KILLABLE = 1 << 4;
export const FAULT_FLAG_TRIED = 1 << 5;
export const FAULT_FLAG_USER = 1 << 6;
export const FAULT_FLAG_REMOTE = 1 << 7;
export const FAULT_FLAG_INSTRUCTION = 1 << 8;
export const FAULT_FLAG_INTERRUPTIBLE = 1 << 9;
export const FAULT_FLAG_UNSHARE = 1 << 10;
export const FAULT_FLAG_ORIG_PTE_VALID = 1 << 11;
export const FAULT_FLAG_VMA_LOCK = 1 << 12;
export const FAULT_FLAG_DEFAULT = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE | FAULT_FLAG_INTERRUPTIBLE;

// vm_fault_t
export const VM_FAULT_OOM = 0x000001;
export const VM_FAULT_SIGBUS = 0x000002;
export const VM_FAULT_MAJOR = 0x000004;
export const VM_FAULT_HWPOISON = 0x000010;
export const VM_FAULT_HWPOISON_LARGE = 0x000020;
export const VM_FAULT_SIGSEGV = 0x000040;
export const VM_FAULT_NOPAGE = 0x000100;
export const VM_FAULT_LOCKED = 0x000200;
export const VM_FAULT_RETRY = 0x000400;
export const VM_FAULT_FALLBACK = 0x000800;
export const VM_FAULT_DONE_COW = 0x001000;
export const VM_FAULT_NEEDDSYNC = 0x002000;
export const VM_FAULT_COMPLETED = 0x004000;
export const VM_FAULT_ERROR =
  VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV | VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE | VM_FAULT_FALLBACK;

/** A 64-bit page-table entry as its two 32-bit halves (no BigInt on hot paths). */
export interface pte_t {
  readonly lo: number;
  readonly hi: number;
}

/** struct vm_fault: what the fault handlers pass along. */
export interface vm_fault {
  vma: vm_area_struct;
  /** Page-aligned faulting address. */
  address: number;
  real_address: number;
  flags: number;
  /** Page offset of `address` in the VMA's file (or anon linear index). */
  pgoff: number;
  /** The PTE value read before taking the page-table lock. */
  orig_pte: pte_t;
  /** Physical address of the PTE slot in the page table (the kernel's pte_t *). */
  pte: number;
  /** The device page for migrate_to_ram, or the page a ->fault handler returns. */
  page: page | null;
  cow_page: page | null;
}

// Mirrors include/linux/mm.h and include/linux/mm_types.h's vm_fault (Linux 6.8): page-size
// helpers, VMA flags, fault flags and fault results. Addresses and pfns are JS numbers below
// 2^53, so the helpers use arithmetic, never 32-bit bitwise operators.

import type { address_space, anon_vma, page, vm_area_struct } from "./mm_types.ts";
import type { Kernel } from "../../kernel/kernel.ts";
import { NODE_DATA, ZONE_DEVICE } from "./mmzone.ts";
import { __folio_put } from "../../mm/swap.ts";
import { EFAULT, EHWPOISON, ENOMEM } from "../uapi/asm-generic/errno.ts";

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
  /** Physical address of the pmd entry covering `address` (the kernel's pmd_t *). */
  pmd: number;
  /** Physical address of the PTE slot in the page table (the kernel's pte_t *); 0 when unset. */
  pte: number;
  /** The device page for migrate_to_ram, or the page a ->fault handler returns. */
  page: page | null;
  cow_page: page | null;
}

// ---- struct page references and mappings (include/linux/mm.h) ------------------------------
// Added by the mm core: behaviour that takes only a page reaches its machine through
// page.zone.zone_pgdat (see include/linux/mmzone.ts).

/** Pfn of the shared zero page: the same frame on every kemu machine (pfn 1). */
export const ZERO_PAGE_PFN = 1;

export function is_zero_pfn(pfn: number): boolean {
  return pfn === ZERO_PAGE_PFN;
}

export function my_zero_pfn(_addr: number): number {
  return ZERO_PAGE_PFN;
}

/** ZERO_PAGE(vaddr): kemu passes the machine's Kernel. */
export function ZERO_PAGE(k: Kernel, _vaddr = 0): page {
  return NODE_DATA(k).zero_page!;
}

export function is_zero_page(p: page): boolean {
  return p.pfn === ZERO_PAGE_PFN && p.zone.zone_type !== ZONE_DEVICE;
}

/** get_page(): the caller already holds a reference (a zero count is a bug). */
export function get_page(p: page): void {
  if (p._refcount <= 0) {
    const k = p.zone.zone_pgdat.k;
    k.WARN(true, `get_page: pfn 0x${p.pfn.toString(16)} has refcount ${p._refcount}`);
  }
  p._refcount++;
}

/** get_page_unless_zero() / try_get_page(). */
export function get_page_unless_zero(p: page): boolean {
  if (p._refcount === 0) return false;
  p._refcount++;
  return true;
}

export const try_get_page = get_page_unless_zero;

/**
 * put_page(): drop a reference; at zero the page is freed — ordinary pages back to the buddy
 * allocator, ZONE_DEVICE pages through free_zone_device_page() (pgmap->ops->page_free).
 */
export function put_page(p: page): void {
  if (p._refcount <= 0) {
    const k = p.zone.zone_pgdat.k;
    k.WARN(true, `put_page: refcount underflow on pfn 0x${p.pfn.toString(16)}`);
    return;
  }
  if (--p._refcount === 0) __folio_put(p);
}

export function page_count(p: page): number {
  return p._refcount;
}

/** page_mapcount(): number of page-table mappings (0 for typed pages such as page tables). */
export function page_mapcount(p: page): number {
  return p._mapcount < -1 ? 0 : p._mapcount + 1;
}

export function page_mapped(p: page): boolean {
  return page_mapcount(p) > 0;
}

/** PageAnon(): page->mapping carries the anon tag (an anon_vma). */
export function PageAnon(p: page): boolean {
  return p.mapping !== null && p.mapping.kind === "anon";
}

export function page_anon_vma(p: page): anon_vma | null {
  return PageAnon(p) ? (p.mapping as anon_vma) : null;
}

export function page_mapping(p: page): address_space | null {
  return p.mapping !== null && p.mapping.kind === "file" ? p.mapping : null;
}

// ---- VMA helpers ---------------------------------------------------------------------------

export function vma_is_anonymous(vma: vm_area_struct): boolean {
  return vma.vm_ops === null;
}

/** VM_READ|VM_WRITE|VM_EXEC: PROT_NONE VMAs are not accessible. */
export function vma_is_accessible(vma: vm_area_struct): boolean {
  return (vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC)) !== 0;
}

export function vma_pages(vma: vm_area_struct): number {
  return (vma.vm_end - vma.vm_start) / PAGE_SIZE;
}

/** is_cow_mapping(): private and may become writable. */
export function is_cow_mapping(flags: number): boolean {
  return (flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
}

/** linear_page_index(vma, addr): the file (or anon linear) page index of addr. */
export function linear_page_index(vma: vm_area_struct, addr: number): number {
  return (addr - vma.vm_start) / PAGE_SIZE + vma.vm_pgoff;
}

// VM_STACK / growsup and the MAP_* → VM_* helpers used by mmap.
export const VM_GROWSUP = VM_NONE;
export const VM_STACK = VM_GROWSDOWN;
export const VM_SOFTDIRTY = 0x08000000;
export const VM_SEQ_READ = 0x00008000;
export const VM_RAND_READ = 0x00010000;
export const VM_SYNC = 0x00800000;
export const VM_ARCH_1 = 0x01000000;
export const VM_UFFD_MISSING = 0x00000200;
export const VM_MAYSHARE_OR_SHARED = VM_SHARED | VM_MAYSHARE;
export const VM_DATA_DEFAULT_FLAGS = VM_READ | VM_WRITE | VM_EXEC | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;

/** vm_fault_to_errno(vm_fault, foll_flags). */
export function vm_fault_to_errno(ret: number, foll_flags: number): number {
  if (ret & VM_FAULT_OOM) return -ENOMEM;
  if (ret & (VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE)) return foll_flags & FOLL_HWPOISON ? -EHWPOISON : -EFAULT;
  if (ret & (VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV)) return -EFAULT;
  return 0;
}

// FOLL_* (include/linux/mm_types.h enum) used by GUP.
export const FOLL_WRITE = 1 << 0;
export const FOLL_GET = 1 << 1;
export const FOLL_DUMP = 1 << 2;
export const FOLL_FORCE = 1 << 3;
export const FOLL_NOWAIT = 1 << 4;
export const FOLL_NOFAULT = 1 << 5;
export const FOLL_HWPOISON = 1 << 6;
export const FOLL_ANON = 1 << 7;
export const FOLL_LONGTERM = 1 << 8;
export const FOLL_SPLIT_PMD = 1 << 9;
export const FOLL_PCI_P2PDMA = 1 << 10;
export const FOLL_INTERRUPTIBLE = 1 << 11;
export const FOLL_HONOR_NUMA_FAULT = 1 << 12;
export const FOLL_PIN = 1 << 13;
export const FOLL_FAST_ONLY = 1 << 14;
export const FOLL_TOUCH = 1 << 16;
export const FOLL_REMOTE = 1 << 18;

// Mirrors include/linux/mm_types.h (Linux 6.8): struct page, struct vm_area_struct, struct
// mm_struct — the fields the HMM / device-migration paths use. Behaviour lives in mm/*.ts; this
// file only defines the shapes so every subsystem agrees on them.

import type { Kernel } from "../../kernel/kernel.ts";
import type { rw_semaphore } from "../../kernel/locking/rwsem.ts";
import type { spinlock_t } from "../../kernel/locking/spinlock.ts";
import type { dev_pagemap } from "./memremap.ts";
import type { pte_t, vm_fault } from "./mm.ts";
import type { zone } from "./mmzone.ts";

/** A page-cache owner (tmpfs inode mapping) — see mm/shmem.ts. */
export interface address_space {
  readonly kind: "file";
  /** Page cache: file page index → page. */
  i_pages: Map<number, page>;
  host_name: string;
}

/** Reverse-map root of an anonymous VMA family (shared across fork). */
export class anon_vma {
  readonly kind = "anon";
  /**
   * The VMAs of the whole fork family, kept on the root only (the kernel's anon_vma_chain
   * interval tree, flattened): an rmap walk visits them and checks each PTE.
   */
  readonly rb_root = new Set<vm_area_struct>();
  /** Child anon_vmas (fork) point at the root, as the kernel's anon_vma->root. */
  constructor(readonly root: anon_vma | null = null) {}
}

/**
 * struct page. One object per frame that has ever been handed out (RAM) or per ZONE_DEVICE
 * pfn; untouched RAM has none (sparse memmap). Device fields live on every page so that
 * `page.pgmap` and `page.zone_device_data` read as in the kernel.
 */
export class page {
  /** page_ref_count(): 0 = free. */
  _refcount = 0;
  /** page_mapcount() - 1, as in the kernel: -1 = not mapped. */
  _mapcount = -1;
  /** PG_* bits (include/linux/page-flags.h). */
  flags = 0;
  /** anon_vma for anonymous pages, address_space for page cache, null otherwise. */
  mapping: anon_vma | address_space | null = null;
  /** Page-cache index, or the linear page offset of an anonymous page in its VMA. */
  index = 0;
  /** ZONE_DEVICE: the owning pagemap (null for ordinary RAM). */
  pgmap: dev_pagemap | null = null;
  /** ZONE_DEVICE: the driver's private pointer (amdkfd: svm_range_bo; dmirror: backing page). */
  zone_device_data: unknown = null;
  /** page_private(): the buddy order of a free block head, or a filesystem's cookie. */
  private = 0;
  /**
   * page_owner (mm/page_owner.c, kept in page_ext in the kernel) of an allocated block head:
   * its order (-1 while free), gfp mask and the allocating task, for free checks and leak
   * reports without a side table.
   */
  owner_order = -1;
  owner_gfp = 0;
  owner_comm = "";

  /**
   * `zone` stands for the zone bits the kernel keeps in page->flags (page_zone()); through
   * zone.zone_pgdat it leads to the machine the page belongs to.
   */
  constructor(
    readonly pfn: number,
    readonly zone: zone,
  ) {}
}

export interface vm_operations_struct {
  readonly name?: string;
  open?(vma: vm_area_struct): void;
  close?(vma: vm_area_struct): void;
  /** May the VMA be split at addr? 0 or -errno (e.g. -EINVAL for fixed-size mappings). */
  may_split?(vma: vm_area_struct, addr: number): number;
  /** Fills vmf.page for a file-backed or driver mapping; returns VM_FAULT_* bits. */
  fault?(vmf: vm_fault): Promise<number>;
  page_mkwrite?(vmf: vm_fault): Promise<number>;
}

/** What a VMA maps when it maps a file (tmpfs inode or device file). */
export interface vm_file_ref {
  readonly f_mapping: address_space | null;
  readonly path: string;
}

export class vm_area_struct {
  vm_ops: vm_operations_struct | null = null;
  vm_file: vm_file_ref | null = null;
  /** Offset of vm_start in the file, in pages. */
  vm_pgoff = 0;
  anon_vma: anon_vma | null = null;
  vm_private_data: unknown = null;
  /** Protection bits new PTEs of this VMA get (vm_get_page_prot(vm_flags)). */
  vm_page_prot: pte_t = { lo: 0, hi: 0 };

  constructor(
    public vm_mm: mm_struct,
    public vm_start: number,
    public vm_end: number,
    public vm_flags: number,
  ) {}
}

/** mm_struct: one address space. */
export class mm_struct {
  /** VMAs sorted by vm_start, non-overlapping (the maple tree of the kernel). */
  vmas: vm_area_struct[] = [];
  /** Physical address of the top-level page table (PML4), what CR3 holds. */
  pgd = 0;
  /** Address-space id used to tag TLB entries (PCID). */
  readonly context_id: number;
  /** Users of the address space (threads, mmget); at 0 the mappings are torn down. */
  mm_users = 1;
  /** References to the struct itself (mmgrab); at 0 it is freed. */
  mm_count = 1;
  /** mm_struct->notifier_subscriptions (mm/mmu_notifier.c). */
  notifier_subscriptions: unknown = null;
  /** Resident pages by kind (MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES). */
  readonly rss_stat = [0, 0, 0, 0];
  total_vm = 0;
  /** mm_pgtables_bytes(): bytes of page-table pages (VmPTE in /proc/<pid>/status). */
  pgtables_bytes = 0;
  /** vm_stat_account() buckets, in pages. */
  data_vm = 0;
  exec_vm = 0;
  stack_vm = 0;
  /** VM_* flags every new VMA gets (mlockall(MCL_FUTURE) sets VM_LOCKED). */
  def_flags = 0;
  /** Bottom of the main stack VMA (arg pages), for /proc/<pid>/maps' [stack]. */
  start_stack = 0;
  /** Owning thread group, for /proc and reports. */
  owner_pid = 0;
  mmap_base = 0;
  task_size = 0;

  constructor(
    readonly k: Kernel,
    readonly mmap_lock: rw_semaphore,
    readonly page_table_lock: spinlock_t,
    context_id: number,
  ) {
    this.context_id = context_id;
  }
}

export const MM_FILEPAGES = 0;
export const MM_ANONPAGES = 1;
export const MM_SWAPENTS = 2;
export const MM_SHMEMPAGES = 3;

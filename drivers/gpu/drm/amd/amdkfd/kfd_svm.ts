// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_svm.c and kfd_svm.h (Linux 6.8, with the 6.10 shape of
// svm_range_validate_and_map): shared virtual memory ranges. A process registers address ranges
// and their attributes (AMDKFD_IOC_SVM); each range is an svm_range in the per-process interval
// tree with its own MMU interval notifier. Validation faults the pages in with hmm_range_fault
// under the notifier sequence protocol and writes GPUVM PTEs; CPU invalidations either evict the
// process's queues and restore them from a delayed work (XNACK off) or unmap the GPU PTEs and let
// the GPU retry-fault them back (XNACK on); a CPU munmap splits ranges and defers the tree and
// notifier updates to a worker, because the notifier callback cannot take the mmap or svms locks.
//
// Lock order (../shared/reference/amdkfd.md §6.1): process_info->lock → (flush deferred work) →
// mmap_lock → svms->lock → prange->migrate_mutex → VM reservations → prange->lock → child lock.
//
// The migration half (kfd_migrate.c) is bound through `amdkfd.svm_migrate` when it is built in;
// until then ranges live in system memory and a prefetch to a GPU leaves them there.

import type { Kernel } from "../../../../../kernel/kernel.ts";
import type { mm_struct, vm_area_struct } from "../../../../../include/linux/mm_types.ts";
import type { task_struct } from "../../../../../kernel/sched/core.ts";
import { PAGE_SIZE, VM_IO, VM_MIXEDMAP, VM_PFNMAP, VM_READ, VM_WRITE } from "../../../../../include/linux/mm.ts";
import { mutex, mutex_lock, mutex_lock_nested, mutex_unlock } from "../../../../../kernel/locking/mutex.ts";
import { spinlock_t, spin_lock, spin_unlock } from "../../../../../kernel/locking/spinlock.ts";
import { atomic_t, atomic_cmpxchg, atomic_inc, atomic_inc_return, atomic_read, atomic_set } from "../../../../../include/linux/atomic.ts";
import { kref, kref_get, kref_get_unless_zero, kref_put } from "../../../../../include/linux/kref.ts";
import { delayed_work, work_struct, INIT_DELAYED_WORK, INIT_WORK } from "../../../../../kernel/workqueue.ts";
import { msecs_to_jiffies, NSEC_PER_MSEC } from "../../../../../kernel/time/timekeeping.ts";
import { mmap_read_lock, mmap_read_unlock, mmap_write_downgrade, mmap_write_lock, mmap_write_unlock } from "../../../../../include/linux/mmap_lock.ts";
import { mmget, mmget_not_zero, mmput } from "../../../../../kernel/fork.ts";
import { vma_lookup } from "../../../../../mm/mmap.ts";
import {
  MMU_NOTIFY_MIGRATE, MMU_NOTIFY_RELEASE, MMU_NOTIFY_UNMAP, mmu_interval_notifier, mmu_interval_notifier_insert_locked,
  mmu_interval_notifier_remove, mmu_interval_set_seq, type mmu_interval_notifier_ops, type mmu_notifier_range,
} from "../../../../../mm/mmu_notifier.ts";
import {
  RB_ROOT_CACHED, interval_tree_insert, interval_tree_iter_first, interval_tree_iter_next, interval_tree_node,
  interval_tree_remove, type rb_root_cached,
} from "../../../../../lib/interval_tree.ts";
import { EAGAIN, EACCES, EADDRINUSE, EBUSY, EFAULT, EINVAL, ENOMEM, EPERM } from "../../../../../include/uapi/asm-generic/errno.ts";
import {
  KFD_IOCTL_SVM_ATTR_ACCESS, KFD_IOCTL_SVM_ATTR_ACCESS_IN_PLACE, KFD_IOCTL_SVM_ATTR_CLR_FLAGS,
  KFD_IOCTL_SVM_ATTR_GRANULARITY, KFD_IOCTL_SVM_ATTR_NO_ACCESS, KFD_IOCTL_SVM_ATTR_PREFERRED_LOC,
  KFD_IOCTL_SVM_ATTR_PREFETCH_LOC, KFD_IOCTL_SVM_ATTR_SET_FLAGS, KFD_IOCTL_SVM_FLAG_COHERENT,
  KFD_IOCTL_SVM_FLAG_EXT_COHERENT, KFD_IOCTL_SVM_FLAG_GPU_ALWAYS_MAPPED, KFD_IOCTL_SVM_FLAG_GPU_EXEC,
  KFD_IOCTL_SVM_FLAG_GPU_RO, KFD_IOCTL_SVM_FLAG_HOST_ACCESS, KFD_IOCTL_SVM_LOCATION_SYSMEM,
  KFD_IOCTL_SVM_LOCATION_UNDEFINED, KFD_IOCTL_SVM_OP_GET_ATTR, KFD_IOCTL_SVM_OP_SET_ATTR,
  KFD_IOC_ALLOC_MEM_FLAGS_USERPTR, KFD_MIGRATE_TRIGGER_PAGEFAULT_GPU, KFD_MIGRATE_TRIGGER_PREFETCH,
  KFD_QUEUE_EVICTION_TRIGGER_SVM, KFD_SVM_UNMAP_TRIGGER_MMU_NOTIFY, KFD_SVM_UNMAP_TRIGGER_MMU_NOTIFY_MIGRATE,
  KFD_SVM_UNMAP_TRIGGER_UNMAP_FROM_CPU, type kfd_ioctl_svm_attribute_t,
} from "../../../../../include/uapi/linux/kfd_ioctl.ts";
import {
  DECLARE_BITMAP, KFD_GC_VERSION, MAX_GPU_INSTANCE, TLB_FLUSH_HEAVYWEIGHT, TLB_FLUSH_LEGACY, bitmap_and, bitmap_clear,
  bitmap_copy, bitmap_empty, bitmap_or, bitmap_set, bitmap_zero, find_first_bit, for_each_set_bit, test_bit,
  type gpu_bitmap, type kfd_node, type kfd_process, type kfd_process_device,
} from "./kfd_priv.ts";
import {
  kfd_bind_process_to_device, kfd_flush_tlb, kfd_get_process_mm, kfd_lookup_process_by_mm, kfd_lookup_process_by_pasid,
  kfd_process_device_data_by_id, kfd_process_device_from_gpuidx, kfd_process_gpuid_from_node,
  kfd_process_gpuidx_from_gpuid, kfd_unref_process,
} from "./kfd_process.ts";
import { kgd2kfd_quiesce_mm, kgd2kfd_resume_mm, kfd_node_by_irq_ids } from "./kfd_device.ts";
import {
  kfd_smi_event_page_fault_end, kfd_smi_event_page_fault_start, kfd_smi_event_queue_restore_rescheduled,
  kfd_smi_event_unmap_from_gpu,
} from "./kfd_smi_events.ts";
import { IP_VERSION, type amdgpu_device } from "../amdgpu/amdgpu.ts";
import { amdgpu_amdkfd_reserve_mem_limit, amdgpu_amdkfd_unreserve_mem_limit, drm_priv_to_vm } from "../amdgpu/amdgpu_amdkfd_gpuvm.ts";
import { amdgpu_hmm_range_get_pages, amdgpu_hmm_range_get_pages_done, type hmm_range } from "../amdgpu/amdgpu_hmm.ts";
import { amdgpu_vm_update_pdes, amdgpu_vm_update_range, type amdgpu_vm } from "../amdgpu/amdgpu_vm.ts";
import { amdgpu_bo_reserve, amdgpu_bo_unreserve, type amdgpu_bo } from "../amdgpu/amdgpu_object.ts";
import { amdgpu_gmc_filter_faults_remove, type amdgpu_pte_flags } from "../amdgpu/amdgpu_gmc.ts";
import { amdgpu_ih_wait_on_checkpoint_process_ts } from "../amdgpu/amdgpu_ih.ts";
import {
  AMDGPU_MTYPE_CC, AMDGPU_MTYPE_NC, AMDGPU_MTYPE_RW, AMDGPU_MTYPE_UC, AMDGPU_PTE_EXECUTABLE, AMDGPU_PTE_MTYPE_VG10_HI,
  AMDGPU_PTE_READABLE, AMDGPU_PTE_SNOOPED, AMDGPU_PTE_SYSTEM, AMDGPU_PTE_VALID, AMDGPU_PTE_WRITEABLE,
} from "../include/amdgpu_vm_pte.ts";
import { dma_fence_get, dma_fence_put, dma_fence_wait, type dma_fence } from "../../../../dma-buf/dma-fence.ts";
import { DMA_BIDIRECTIONAL, dma_map_page, dma_mapping_error, dma_unmap_page, type dma_addr_t } from "../../../../../kernel/dma/mapping.ts";
import type { device } from "../../../../base/core.ts";
import { pfn_to_page } from "../../../../../mm/sparse.ts";
import { is_zone_device_page } from "../../../../../include/linux/memremap.ts";
import { hmm_pfn_to_pfn } from "../../../../../mm/hmm.ts";
import { ftrace } from "../../../../../include/linux/ftrace.ts";
import { GFP_KERNEL } from "../../../../../include/linux/gfp_types.ts";

// ---- kfd_svm.h ---------------------------------------------------------------------------------

/** Bit 0 of a dma_addr entry: the page is in VRAM (the rest is its VRAM address). */
export const SVM_RANGE_VRAM_DOMAIN = 1;

/** How long a range stays "just restored": retry faults on it within this window are dropped. */
export const AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING = 2 * NSEC_PER_MSEC;
/** restore_work delay after the first eviction (msecs_to_jiffies(1): one jiffy). */
export const AMDGPU_SVM_RANGE_RESTORE_DELAY_MS = 1;
/** Default migration/fault granularity: 2^9 pages = 2 MiB. */
export const SVM_RANGE_DEFAULT_GRANULARITY = 9;

// enum svm_work_list_ops
export const SVM_OP_NULL = 0;
export const SVM_OP_UNMAP_RANGE = 1;
export const SVM_OP_UPDATE_RANGE_NOTIFIER = 2;
export const SVM_OP_UPDATE_RANGE_NOTIFIER_AND_MAP = 3;
export const SVM_OP_ADD_RANGE = 4;
export const SVM_OP_ADD_RANGE_AND_MAP = 5;

/** struct svm_work_list_item: the deferred op of a range and the mm it holds while queued. */
export class svm_work_list_item {
  op = SVM_OP_NULL;
  mm: mm_struct | null = null;
}

/** prange->it_node: the interval-tree link of a top-level range (container_of = `prange`). */
export class svm_range_it_node extends interval_tree_node {
  constructor(readonly prange: svm_range) {
    super(0, 0);
  }
}

/** prange->notifier: the range's MMU interval notifier (container_of = `prange`). */
export class svm_range_notifier extends mmu_interval_notifier {
  constructor(readonly prange: svm_range) {
    super();
  }
}

/**
 * struct svm_range_bo: the VRAM buffer object behind ranges migrated to a GPU. Filled in by the
 * migration code (svm_range_vram_node_new); this file keeps the reference rules: each range
 * with `ttm_res` holds one reference, and so does each live VRAM device page.
 */
export class svm_range_bo {
  /** The amdgpu BO (VRAM domain, NO_CPU_ACCESS | DISCARDABLE). */
  bo: unknown = null;
  readonly kref: kref;
  /** Ranges sharing this BO (svm_bo_list links). */
  readonly range_list = new Set<svm_range>();
  readonly list_lock: spinlock_t;
  /** The KFD eviction fence attached to the BO's reservation object. */
  eviction_fence: dma_fence | null = null;
  readonly eviction_work = new work_struct();
  readonly release_work = new work_struct();
  evicting = 0;
  /** The node whose VRAM holds the BO. */
  node: kfd_node | null = null;
  /** The BO's TTM resource, what ranges point `ttm_res` at. */
  resource: unknown = null;
  /** Releases the BO and its eviction fence (amdgpu_bo_unref + dma_fence_put), set by its creator. */
  free_bo: (() => void) | null = null;
  /** The process mm (svm_bo->eviction_fence->mm in the kernel): the CPU fault path finds the process by it. */
  mm: mm_struct | null = null;

  constructor(k: Kernel) {
    this.kref = new kref(k);
    svm_bo_of_kref.set(this.kref, this);
    this.list_lock = new spinlock_t(k, "&svm_bo->list_lock");
  }
}

/** container_of(kref, struct svm_range_bo, kref). */
const svm_bo_of_kref = new WeakMap<kref, svm_range_bo>();

/** struct svm_range: one registered virtual address interval [start, last] (in pages). */
export class svm_range {
  readonly migrate_mutex: mutex;
  readonly lock: mutex;
  start: number;
  last: number;
  npages: number;
  readonly it_node = new svm_range_it_node(this);
  readonly notifier = new svm_range_notifier(this);
  readonly work_item = new svm_work_list_item();
  /** dma_addr[gpuidx][page]: 0 none, IOVA of a system page, or VRAM address | SVM_RANGE_VRAM_DOMAIN. */
  readonly dma_addr: Array<dma_addr_t[] | null> = new Array(MAX_GPU_INSTANCE).fill(null);
  vram_pages = 0;
  ttm_res: unknown = null;
  offset = 0;
  svm_bo: svm_range_bo | null = null;
  flags = 0;
  preferred_loc = 0;
  prefetch_loc = 0;
  actual_loc = 0;
  granularity = 0;
  readonly invalid = new atomic_t();
  validate_timestamp = 0;
  mapped_to_gpu = false;
  readonly bitmap_access: gpu_bitmap = DECLARE_BITMAP();
  readonly bitmap_aip: gpu_bitmap = DECLARE_BITMAP();
  /** On a parent: the pieces a CPU munmap split off, not yet in the tree (child_list head). */
  readonly child_list: svm_range[] = [];
  /** On a child: the parent whose child_list holds it (the child_list link). */
  child_parent: svm_range | null = null;
  /** Linked on svms->deferred_range_list (deferred_list is non-empty). */
  deferred_list = false;

  constructor(
    readonly svms: svm_range_list,
    start: number,
    last: number,
  ) {
    const k = svms.process.k;
    this.migrate_mutex = new mutex(k, "&prange->migrate_mutex");
    this.lock = new mutex(k, "&prange->lock");
    this.start = start;
    this.last = last;
    this.npages = last - start + 1;
  }
}

/** struct svm_range_list: a process's ranges (embedded in kfd_process as `svms`). */
export class svm_range_list {
  readonly lock: mutex;
  /** Interval tree of top-level ranges, keyed by it_node. */
  readonly objects: rb_root_cached = RB_ROOT_CACHED();
  /** All top-level ranges, in insertion order. */
  readonly list = new Set<svm_range>();
  readonly deferred_list_work = new work_struct();
  /** Insertion-ordered like the kernel's list_head; O(1) list_del (a worker may drain 10^5 entries). */
  readonly deferred_range_list = new Set<svm_range>();
  readonly deferred_list_lock: spinlock_t;
  readonly evicted_ranges = new atomic_t();
  readonly drain_pagefaults = new atomic_t();
  readonly restore_work = new delayed_work();
  readonly bitmap_supported: gpu_bitmap = DECLARE_BITMAP();
  faulting_task: task_struct | null = null;

  constructor(readonly process: kfd_process) {
    this.lock = new mutex(process.k, "&svms->lock");
    this.deferred_list_lock = new spinlock_t(process.k, "&svms->deferred_list_lock");
  }
}

/** The migration entry points of kfd_migrate.c that kfd_svm.c calls (bound by that file). */
export interface svm_migrate_hooks {
  svm_migrate_to_vram(prange: svm_range, best_loc: number, start: number, last: number, mm: mm_struct, trigger: number): Promise<number>;
  svm_migrate_vram_to_ram(prange: svm_range, mm: mm_struct, start: number, last: number, trigger: number, fault_page: unknown): Promise<number>;
}

/**
 * KFD_IS_SVM_API_SUPPORTED(): GFX9+ with a VRAM pagemap, or (as for GTT-preferred APUs) SVM
 * over system memory only — what kemu devices are until the migration code registers one.
 */
export function KFD_IS_SVM_API_SUPPORTED(adev: amdgpu_device): boolean {
  const gc = adev.ip_versions.gc;
  if (gc[0] < 9) return false;
  return adev.kfd.pgmap?.type !== 0 || adev.kfd.dev?.amdkfd.svm_migrate === null;
}

/** SVM_ADEV_PGMAP_OWNER(): the hive if the GPU is in one, else the device (kemu has no XGMI). */
export function SVM_ADEV_PGMAP_OWNER(adev: amdgpu_device): unknown {
  return adev;
}

/** amdgpu_xgmi_same_hive(): kemu models no XGMI links, so no two devices share a hive. */
function amdgpu_xgmi_same_hive(_a: amdgpu_device, _b: amdgpu_device): boolean {
  return false;
}

/** svm_range_lock()/svm_range_unlock(): the notifier lock (no-reclaim scope in the kernel). */
export async function svm_range_lock(prange: svm_range): Promise<void> {
  await mutex_lock(prange.lock);
}
export function svm_range_unlock(prange: svm_range): void {
  mutex_unlock(prange.lock);
}

function p_of(prange: svm_range): kfd_process {
  return prange.svms.process;
}

function it_range(node: interval_tree_node): svm_range {
  return (node as svm_range_it_node).prange;
}

/** list_empty(&prange->child_list): no children and not linked as a child. */
function child_list_empty(prange: svm_range): boolean {
  return prange.child_list.length === 0 && prange.child_parent === null;
}

function ALIGN_DOWN(x: number, a: number): number {
  return Math.floor(x / a) * a;
}
function ALIGN(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}
function IS_ALIGNED(x: number, a: number): boolean {
  return x % a === 0;
}

/** 2^granularity pages as a number (granularity ≤ 63 stays exact up to 2^53, then saturates harmlessly). */
function granule_pages(g: number): number {
  return 2 ** g;
}

// ---- linking ranges --------------------------------------------------------------------------

/** svm_range_unlink(): out of the svm_bo list, svms->list and the tree (svms->lock held). */
function svm_range_unlink(prange: svm_range): void {
  const bo = prange.svm_bo;
  if (bo) {
    spin_lock(bo.list_lock);
    bo.range_list.delete(prange);
    spin_unlock(bo.list_lock);
  }
  prange.svms.list.delete(prange);
  if (prange.it_node.start !== 0 && prange.it_node.last !== 0) interval_tree_remove(prange.it_node, prange.svms.objects);
}

const svm_range_mn_ops: mmu_interval_notifier_ops = {
  invalidate: (mni, range, cur_seq) => svm_range_cpu_invalidate_pagetables(mni as svm_range_notifier, range, cur_seq),
};

/** svm_range_add_notifier_locked(): register the interval notifier (mmap write lock held). */
async function svm_range_add_notifier_locked(mm: mm_struct, prange: svm_range): Promise<void> {
  await mmu_interval_notifier_insert_locked(prange.notifier, mm, prange.start * PAGE_SIZE, prange.npages * PAGE_SIZE, svm_range_mn_ops);
}

/** svm_range_add_to_svms(): tail of svms->list, it_node = [start, last], into the tree. */
function svm_range_add_to_svms(prange: svm_range): void {
  const svms = prange.svms;
  svms.list.delete(prange);
  svms.list.add(prange);
  prange.it_node.start = prange.start;
  prange.it_node.last = prange.last;
  interval_tree_insert(prange.it_node, svms.objects);
}

/** Registered notifier interval in pages; (0, 0) when not registered. */
function notifier_pages(prange: svm_range): [number, number] {
  const n = prange.notifier;
  if (!n.in_tree && !n.deferred) return [0, 0];
  return [Math.floor(n.start / PAGE_SIZE), Math.floor(n.last / PAGE_SIZE)];
}

async function svm_range_remove_notifier(prange: svm_range): Promise<void> {
  const [s, l] = notifier_pages(prange);
  if (s !== 0 && l !== 0) {
    await mmu_interval_notifier_remove(prange.notifier);
    prange.notifier.start = 0;
    prange.notifier.last = 0;
  }
}

// ---- DMA mappings --------------------------------------------------------------------------

function svm_is_valid_dma_mapping_addr(dev: device, a: dma_addr_t): boolean {
  return a !== 0 && !dma_mapping_error(dev, a) && a % 2 !== SVM_RANGE_VRAM_DOMAIN;
}

/**
 * svm_range_dma_map_dev(): fill one GPU's dma_addr slots for `npages` pages from hmm pfns:
 * device pages become their VRAM address tagged with the domain bit, system pages are
 * dma-mapped for the GPU (an old system mapping in the slot is unmapped first).
 */
function svm_range_dma_map_dev(adev: amdgpu_device, prange: svm_range, offset: number, npages: number, hmm_pfns: number[], gpuidx: number): number {
  const dev = adev.dev;
  let addr = prange.dma_addr[gpuidx];
  if (!addr) {
    addr = new Array<number>(prange.npages).fill(0);
    prange.dma_addr[gpuidx] = addr;
  }
  for (let i = 0; i < npages; i++) {
    const a = addr[offset + i]!;
    if (svm_is_valid_dma_mapping_addr(dev, a)) dma_unmap_page(dev, a, PAGE_SIZE, DMA_BIDIRECTIONAL);
    const pfn = hmm_pfn_to_pfn(hmm_pfns[i]!);
    const page = pfn_to_page(adev.k, pfn);
    if (is_zone_device_page(page)) {
      const bo_adev = prange.svm_bo!.node!.adev;
      addr[offset + i] = pfn * PAGE_SIZE + bo_adev.vm_manager.vram_base_offset - bo_adev.kfd.pgmap.range.start + SVM_RANGE_VRAM_DOMAIN;
      continue;
    }
    addr[offset + i] = dma_map_page(dev, page, 0, PAGE_SIZE, DMA_BIDIRECTIONAL);
    if (dma_mapping_error(dev, addr[offset + i]!)) {
      adev.k.dev_err(adev, `failed ${-ENOMEM} dma_map_page`);
      return -EFAULT;
    }
  }
  return 0;
}

function svm_range_dma_map(prange: svm_range, bitmap: gpu_bitmap, offset: number, npages: number, hmm_pfns: number[]): number {
  const p = p_of(prange);
  let r = 0;
  for (const gpuidx of for_each_set_bit(bitmap)) {
    const pdd = kfd_process_device_from_gpuidx(p, gpuidx);
    if (!pdd) return -EINVAL;
    r = svm_range_dma_map_dev(pdd.dev.adev, prange, offset, npages, hmm_pfns, gpuidx);
    if (r) break;
  }
  return r;
}

/** svm_range_dma_unmap_dev(): unmap the system entries of [offset, offset + npages). */
export function svm_range_dma_unmap_dev(dev: device, dma_addr: dma_addr_t[] | null, offset: number, npages: number): void {
  if (!dma_addr) return;
  for (let i = offset; i < offset + npages; i++) {
    if (!svm_is_valid_dma_mapping_addr(dev, dma_addr[i]!)) continue;
    dma_unmap_page(dev, dma_addr[i]!, PAGE_SIZE, DMA_BIDIRECTIONAL);
    dma_addr[i] = 0;
  }
}

export function svm_range_dma_unmap(prange: svm_range): void {
  const p = p_of(prange);
  for (let gpuidx = 0; gpuidx < MAX_GPU_INSTANCE; gpuidx++) {
    const dma_addr = prange.dma_addr[gpuidx];
    if (!dma_addr) continue;
    const pdd = kfd_process_device_from_gpuidx(p, gpuidx);
    if (!pdd) continue;
    svm_range_dma_unmap_dev(pdd.dev.adev.dev, dma_addr, 0, prange.npages);
  }
}

// ---- allocation ------------------------------------------------------------------------------

function range_bytes(prange: svm_range): number {
  return (prange.last - prange.start + 1) * PAGE_SIZE;
}

/**
 * sizeof(struct svm_range) on x86-64 (6.8), for slab accounting: an estimate (about 950 bytes,
 * 512 of them the dma_addr[MAX_GPU_INSTANCE] pointers), a kmalloc-1k object either way.
 */
const SIZEOF_SVM_RANGE = 952;
/** sizeof(struct svm_validate_context) on x86-64 (6.8, drm_exec included): an estimate. */
const SIZEOF_SVM_VALIDATE_CONTEXT = 104;

/** svm_range_free(): drop VRAM; with do_unmap also the DMA mappings and the xnack-off charge. */
function svm_range_free(prange: svm_range, do_unmap: boolean): void {
  const p = p_of(prange);
  svm_range_vram_node_free_locked_or_not(prange);
  if (do_unmap) svm_range_dma_unmap(prange);
  if (do_unmap && !p.xnack_enabled) amdgpu_amdkfd_unreserve_mem_limit(p.amdkfd, null, range_bytes(prange), KFD_IOC_ALLOC_MEM_FLAGS_USERPTR, 0);
  prange.dma_addr.fill(null);
  p.amdkfd.slab.kfree(prange);
}

function svm_range_set_default_attributes(prange: { preferred_loc: number; prefetch_loc: number; granularity: number; flags: number }): void {
  prange.preferred_loc = KFD_IOCTL_SVM_LOCATION_UNDEFINED;
  prange.prefetch_loc = KFD_IOCTL_SVM_LOCATION_UNDEFINED;
  prange.granularity = SVM_RANGE_DEFAULT_GRANULARITY;
  prange.flags = KFD_IOCTL_SVM_FLAG_HOST_ACCESS + KFD_IOCTL_SVM_FLAG_COHERENT;
}

/**
 * svm_range_new(): a kzalloc'ed range with default attributes. With XNACK off and
 * `update_mem_usage` (brand-new ranges only, not clones or split pieces) its size is charged to
 * the KFD system-memory limit; null when the allocation or that charge fails (the caller
 * reports -ENOMEM, or -EFAULT for a GPU fault on an unregistered address).
 */
function svm_range_new(svms: svm_range_list, start: number, last: number, update_mem_usage: boolean): svm_range | null {
  const p = svms.process;
  const size = last - start + 1;
  const slab = p.amdkfd.slab;
  const prange = slab.kzalloc_obj(new svm_range(svms, start, last), SIZEOF_SVM_RANGE, GFP_KERNEL, "svm_range_new");
  if (!prange) return null;
  if (!p.xnack_enabled && update_mem_usage &&
      amdgpu_amdkfd_reserve_mem_limit(p.amdkfd, null, size * PAGE_SIZE, KFD_IOC_ALLOC_MEM_FLAGS_USERPTR, 0)) {
    p.k.pr_info("SVM mapping failed, exceeds resident system memory limit", "kfd");
    slab.kfree(prange);
    return null;
  }
  atomic_set(prange.invalid, 0);
  if (p.xnack_enabled) bitmap_copy(prange.bitmap_access, svms.bitmap_supported);
  svm_range_set_default_attributes(prange);
  return prange;
}

// ---- VRAM backing references ------------------------------------------------------------------

/** svm_bo_ref_unless_zero(): a reference unless the BO is already being released (for kfd_migrate). */
export function svm_bo_ref_unless_zero(svm_bo: svm_range_bo | null): boolean {
  return !!svm_bo && kref_get_unless_zero(svm_bo.kref) !== 0;
}

export function svm_range_bo_ref(svm_bo: svm_range_bo): svm_range_bo {
  kref_get(svm_bo.kref);
  return svm_bo;
}

/** svm_range_bo_release(): detach the remaining ranges, signal the fence, free the BO. */
function svm_range_bo_release(svm_bo: svm_range_bo): void {
  spin_lock(svm_bo.list_lock);
  const ranges = [...svm_bo.range_list];
  svm_bo.range_list.clear();
  spin_unlock(svm_bo.list_lock);
  for (const prange of ranges) {
    // The kernel takes prange->lock here; the release runs where that mutex cannot be slept on
    // (a put from page_free), and nothing else touches svm_bo of a range with no ttm_res.
    prange.svm_bo = null;
    prange.svms.process.k.WARN_ONCE(prange.actual_loc !== 0, "prange should not hold vram page");
  }
  svm_bo.free_bo?.();
  svm_bo.node?.kfd.amdkfd.slab.kfree(svm_bo);
}

/** svm_range_bo_wq_release(): the last reference went from page_free; release from a worker. */
function svm_range_bo_wq_release(r: kref): void {
  const svm_bo = svm_bo_of_kref.get(r)!;
  INIT_WORK(svm_bo.release_work, () => svm_range_bo_release(svm_bo), "svm_range_bo_wq_release");
  svm_bo.node!.kfd.amdkfd.wqs.schedule_work(svm_bo.release_work);
}

/**
 * svm_range_bo_unref_async(): the last put releases from a worker (page_free may hold mm
 * locks). Called for every freed VRAM page, so it allocates nothing unless it releases.
 */
export function svm_range_bo_unref_async(svm_bo: svm_range_bo): void {
  kref_put(svm_bo.kref, svm_range_bo_wq_release);
}

export function svm_range_bo_unref(svm_bo: svm_range_bo | null): void {
  if (svm_bo) kref_put(svm_bo.kref, () => svm_range_bo_release(svm_bo));
}

/** svm_range_vram_node_free(): if the range holds its svm_bo reference, drop it. */
export async function svm_range_vram_node_free(prange: svm_range): Promise<void> {
  await mutex_lock(prange.lock);
  const held = prange.ttm_res !== null;
  prange.ttm_res = null;
  mutex_unlock(prange.lock);
  if (held) svm_range_bo_unref(prange.svm_bo);
}

/**
 * The svm_range_vram_node_free() of svm_range_free(): ranges being freed are unreachable to
 * every other context (unlinked, notifier removed), so the reference goes without prange->lock.
 */
function svm_range_vram_node_free_locked_or_not(prange: svm_range): void {
  if (prange.ttm_res === null) return;
  prange.ttm_res = null;
  svm_range_bo_unref(prange.svm_bo);
}

export function svm_range_get_node_by_id(prange: svm_range, gpu_id: number): kfd_node | null {
  return kfd_process_device_data_by_id(p_of(prange), gpu_id)?.dev ?? null;
}

// ---- attributes ------------------------------------------------------------------------------

/** svm_range_check_attr(): types known, gpu ids valid and SVM-capable (PREFETCH may not be undefined). */
function svm_range_check_attr(p: kfd_process, nattr: number, attrs: kfd_ioctl_svm_attribute_t[]): number {
  for (let i = 0; i < nattr; i++) {
    const val = attrs[i]!.value;
    let gpuidx = MAX_GPU_INSTANCE;
    switch (attrs[i]!.type) {
      case KFD_IOCTL_SVM_ATTR_PREFERRED_LOC:
        if (val !== KFD_IOCTL_SVM_LOCATION_SYSMEM && val !== KFD_IOCTL_SVM_LOCATION_UNDEFINED) gpuidx = kfd_process_gpuidx_from_gpuid(p, val);
        break;
      case KFD_IOCTL_SVM_ATTR_PREFETCH_LOC:
        if (val !== KFD_IOCTL_SVM_LOCATION_SYSMEM) gpuidx = kfd_process_gpuidx_from_gpuid(p, val);
        break;
      case KFD_IOCTL_SVM_ATTR_ACCESS:
      case KFD_IOCTL_SVM_ATTR_ACCESS_IN_PLACE:
      case KFD_IOCTL_SVM_ATTR_NO_ACCESS:
        gpuidx = kfd_process_gpuidx_from_gpuid(p, val);
        break;
      case KFD_IOCTL_SVM_ATTR_SET_FLAGS:
      case KFD_IOCTL_SVM_ATTR_CLR_FLAGS:
      case KFD_IOCTL_SVM_ATTR_GRANULARITY:
        break;
      default:
        p.k.pr_debug(`unknown attr type 0x${attrs[i]!.type.toString(16)}`, "kfd");
        return -EINVAL;
    }
    if (gpuidx < 0) return -EINVAL;
    if (gpuidx < MAX_GPU_INSTANCE && !test_bit(gpuidx, p.svms.bitmap_supported)) return -EINVAL;
  }
  return 0;
}

/** svm_range_apply_attrs(): in array order; access changes remap only with XNACK off. */
function svm_range_apply_attrs(p: kfd_process, prange: svm_range, nattr: number, attrs: kfd_ioctl_svm_attribute_t[], update: { mapping: boolean }): void {
  for (let i = 0; i < nattr; i++) {
    const { type, value } = attrs[i]!;
    switch (type) {
      case KFD_IOCTL_SVM_ATTR_PREFERRED_LOC:
        prange.preferred_loc = value;
        break;
      case KFD_IOCTL_SVM_ATTR_PREFETCH_LOC:
        prange.prefetch_loc = value;
        break;
      case KFD_IOCTL_SVM_ATTR_ACCESS:
      case KFD_IOCTL_SVM_ATTR_ACCESS_IN_PLACE:
      case KFD_IOCTL_SVM_ATTR_NO_ACCESS: {
        if (!p.xnack_enabled) update.mapping = true;
        const gpuidx = kfd_process_gpuidx_from_gpuid(p, value);
        if (type === KFD_IOCTL_SVM_ATTR_NO_ACCESS) {
          bitmap_clear(prange.bitmap_access, gpuidx, 1);
          bitmap_clear(prange.bitmap_aip, gpuidx, 1);
        } else if (type === KFD_IOCTL_SVM_ATTR_ACCESS) {
          bitmap_set(prange.bitmap_access, gpuidx, 1);
          bitmap_clear(prange.bitmap_aip, gpuidx, 1);
        } else {
          bitmap_clear(prange.bitmap_access, gpuidx, 1);
          bitmap_set(prange.bitmap_aip, gpuidx, 1);
        }
        break;
      }
      case KFD_IOCTL_SVM_ATTR_SET_FLAGS:
        update.mapping = true;
        prange.flags = (prange.flags | value) >>> 0;
        break;
      case KFD_IOCTL_SVM_ATTR_CLR_FLAGS:
        update.mapping = true;
        prange.flags = (prange.flags & ~value) >>> 0;
        break;
      case KFD_IOCTL_SVM_ATTR_GRANULARITY:
        prange.granularity = Math.min(value, 0x3f);
        break;
      default:
        p.k.WARN_ONCE(true, "svm_range_check_attrs wasn't called?");
    }
  }
}

/** svm_range_is_same_attrs(): would applying `attrs` change nothing? A prefetch always counts. */
function svm_range_is_same_attrs(p: kfd_process, prange: svm_range, nattr: number, attrs: kfd_ioctl_svm_attribute_t[]): boolean {
  for (let i = 0; i < nattr; i++) {
    const { type, value } = attrs[i]!;
    switch (type) {
      case KFD_IOCTL_SVM_ATTR_PREFERRED_LOC:
        if (prange.preferred_loc !== value) return false;
        break;
      case KFD_IOCTL_SVM_ATTR_PREFETCH_LOC:
        return false;
      case KFD_IOCTL_SVM_ATTR_ACCESS:
      case KFD_IOCTL_SVM_ATTR_ACCESS_IN_PLACE:
      case KFD_IOCTL_SVM_ATTR_NO_ACCESS: {
        const gpuidx = kfd_process_gpuidx_from_gpuid(p, value);
        if (type === KFD_IOCTL_SVM_ATTR_NO_ACCESS) {
          if (test_bit(gpuidx, prange.bitmap_access) || test_bit(gpuidx, prange.bitmap_aip)) return false;
        } else if (type === KFD_IOCTL_SVM_ATTR_ACCESS) {
          if (!test_bit(gpuidx, prange.bitmap_access)) return false;
        } else if (!test_bit(gpuidx, prange.bitmap_aip)) {
          return false;
        }
        break;
      }
      case KFD_IOCTL_SVM_ATTR_SET_FLAGS:
        if (((prange.flags & value) >>> 0) !== value >>> 0) return false;
        break;
      case KFD_IOCTL_SVM_ATTR_CLR_FLAGS:
        if ((prange.flags & value) !== 0) return false;
        break;
      case KFD_IOCTL_SVM_ATTR_GRANULARITY:
        // The raw (unclamped) value: granularity 64 never matches a stored 63.
        if (prange.granularity !== value) return false;
        break;
      default:
        p.k.WARN_ONCE(true, "svm_range_check_attrs wasn't called?");
    }
  }
  return true;
}

// ---- splitting and cloning ---------------------------------------------------------------------

/**
 * svm_range_split_array(): the new piece gets a copy of its part of the old array (counting
 * its VRAM entries if asked); the old range keeps a copy of the rest.
 */
function svm_range_split_dma(new_: svm_range, old: svm_range, gpuidx: number, old_npages_after: number, count_vram: boolean): void {
  const pold = old.dma_addr[gpuidx];
  if (!pold) return;
  const d = new_.start - old.start;
  const piece = pold.slice(d, d + new_.npages);
  if (count_vram) new_.vram_pages += piece.filter((a) => a % 2 === SVM_RANGE_VRAM_DOMAIN).length;
  const keep_from = new_.start === old.start ? new_.npages : 0;
  old.dma_addr[gpuidx] = pold.slice(keep_from, keep_from + old_npages_after);
  new_.dma_addr[gpuidx] = piece;
}

/** svm_range_split_nodes(): the new piece shares the VRAM BO at its own offset. */
function svm_range_split_nodes(new_: svm_range, old: svm_range, start: number, last: number): void {
  const npages = last - start + 1;
  if (new_.start === old.start) {
    new_.offset = old.offset;
    old.offset += new_.npages;
  } else {
    new_.offset = old.offset + npages;
  }
  new_.svm_bo = svm_range_bo_ref(old.svm_bo!);
  new_.ttm_res = old.ttm_res;
  spin_lock(new_.svm_bo.list_lock);
  new_.svm_bo.range_list.add(new_);
  spin_unlock(new_.svm_bo.list_lock);
}

/**
 * svm_range_split_adjust(): move the DMA addresses (and VRAM share) of `new_`'s pages out of
 * `old`, shrink `old` to [start, last], copy the attributes. `old` changes at once; the tree
 * and notifier are left to the caller.
 */
function svm_range_split_adjust(new_: svm_range, old: svm_range, start: number, last: number): number {
  const k = p_of(old).k;
  if (new_.start < old.start || new_.last > old.last) {
    k.WARN_ONCE(true, "invalid new range start or last");
    return -EINVAL;
  }
  for (let i = 0; i < MAX_GPU_INSTANCE; i++) svm_range_split_dma(new_, old, i, last - start + 1, old.actual_loc !== 0);
  if (old.actual_loc) old.vram_pages -= new_.vram_pages;
  if (old.actual_loc && old.ttm_res) svm_range_split_nodes(new_, old, start, last);
  old.npages = last - start + 1;
  old.start = start;
  old.last = last;
  new_.flags = old.flags;
  new_.preferred_loc = old.preferred_loc;
  new_.prefetch_loc = old.prefetch_loc;
  new_.actual_loc = old.actual_loc;
  new_.granularity = old.granularity;
  new_.mapped_to_gpu = old.mapped_to_gpu;
  bitmap_copy(new_.bitmap_access, old.bitmap_access);
  bitmap_copy(new_.bitmap_aip, old.bitmap_aip);
  return 0;
}

/**
 * svm_range_split(): keep [start, last] in `prange` and return the cut-off piece. Only two
 * shapes: keep the head (start == prange->start) or keep the tail (last == prange->last).
 */
export function svm_range_split(prange: svm_range, start: number, last: number): svm_range | number {
  const old_start = prange.start;
  const old_last = prange.last;
  if (old_start !== start && old_last !== last) return -EINVAL;
  if (start < old_start || last > old_last) return -EINVAL;
  const svms = prange.svms;
  const new_ = old_start === start ? svm_range_new(svms, last + 1, old_last, false) : svm_range_new(svms, old_start, start - 1, false);
  if (!new_) return -ENOMEM;
  const r = svm_range_split_adjust(new_, prange, start, last);
  if (r) {
    svm_range_free(new_, false);
    return r;
  }
  return new_;
}

/** svm_range_split_tail(): cut off [new_last + 1, last]; unaligned cuts need a remap. */
function svm_range_split_tail(prange: svm_range, new_last: number, insert_list: svm_range[], remap_list: svm_range[]): number {
  const tail = svm_range_split(prange, prange.start, new_last);
  if (typeof tail === "number") return tail;
  insert_list.unshift(tail);
  if (!IS_ALIGNED(new_last + 1, granule_pages(prange.granularity))) remap_list.unshift(tail);
  return 0;
}

/** svm_range_split_head(): cut off [start, new_start - 1]. */
function svm_range_split_head(prange: svm_range, new_start: number, insert_list: svm_range[], remap_list: svm_range[]): number {
  const head = svm_range_split(prange, new_start, prange.last);
  if (typeof head === "number") return head;
  insert_list.unshift(head);
  if (!IS_ALIGNED(new_start, granule_pages(prange.granularity))) remap_list.unshift(head);
  return 0;
}

/** svm_range_add_child(): queue a piece split off by a munmap on its parent. */
function svm_range_add_child(prange: svm_range, mm: mm_struct, pchild: svm_range, op: number): void {
  pchild.work_item.mm = mm;
  pchild.work_item.op = op;
  pchild.child_parent = prange;
  prange.child_list.push(pchild);
}

/** svm_range_clone(): same bounds, DMA arrays, VRAM share and attributes; no memory charge. */
function svm_range_clone(old: svm_range): svm_range | null {
  const new_ = svm_range_new(old.svms, old.start, old.last, false);
  if (!new_) return null;
  old.dma_addr.forEach((a, i) => {
    if (a) new_.dma_addr[i] = a.slice();
  });
  if (old.svm_bo) {
    new_.ttm_res = old.ttm_res;
    new_.offset = old.offset;
    new_.svm_bo = svm_range_bo_ref(old.svm_bo);
    spin_lock(new_.svm_bo.list_lock);
    new_.svm_bo.range_list.add(new_);
    spin_unlock(new_.svm_bo.list_lock);
  }
  new_.flags = old.flags;
  new_.preferred_loc = old.preferred_loc;
  new_.prefetch_loc = old.prefetch_loc;
  new_.actual_loc = old.actual_loc;
  new_.granularity = old.granularity;
  new_.mapped_to_gpu = old.mapped_to_gpu;
  new_.vram_pages = old.vram_pages;
  bitmap_copy(new_.bitmap_access, old.bitmap_access);
  bitmap_copy(new_.bitmap_aip, old.bitmap_aip);
  return new_;
}

/**
 * svm_range_set_max_pages(): new ranges are cut at multiples of 1/32 of the smallest VRAM,
 * rounded down to a power of two and clamped to 2 MiB .. 1 GiB.
 */
export function svm_range_set_max_pages(adev: amdgpu_device): void {
  const kfd = adev.kfd.dev!;
  let min_pages = 0;
  for (let i = 0; i < kfd.num_nodes; i++) {
    let pages = Math.floor(adev.gmc.real_vram_size / 2 ** 17);
    pages = Math.min(Math.max(pages, 2 ** 9), 2 ** 18);
    pages = 2 ** Math.floor(Math.log2(pages));
    min_pages = min_pages === 0 ? pages : Math.min(min_pages, pages);
  }
  const g = kfd.amdkfd;
  g.max_svm_range_pages = g.max_svm_range_pages === 0 ? min_pages : Math.min(g.max_svm_range_pages, min_pages || g.max_svm_range_pages);
}

/** svm_range_split_new(): new ranges over [start, last], cut at multiples of max_pages. */
function svm_range_split_new(svms: svm_range_list, start: number, last: number, max_pages: number, insert_list: svm_range[], update_list: svm_range[]): number {
  while (last >= start) {
    const l = Math.min(last, ALIGN_DOWN(start + max_pages, max_pages) - 1);
    const prange = svm_range_new(svms, start, l, true);
    if (!prange) return -ENOMEM;
    insert_list.unshift(prange);
    update_list.unshift(prange);
    start = l + 1;
  }
  return 0;
}

interface svm_add_lists {
  update_list: svm_range[];
  insert_list: svm_range[];
  remove_list: svm_range[];
  remap_list: svm_range[];
}

/**
 * svm_range_add(): resolve overlaps of [start, start + size - 1] with existing ranges as a
 * transaction (svms->lock held). Ranges with the same attributes that are already mapped stay;
 * ranges sticking out are cloned (original → remove list) and the clone's outer parts split off
 * (→ insert list, unaligned cuts → remap list); ranges inside are updated in place; gaps get new
 * ranges. On failure only clones and new ranges are freed: the tree is untouched.
 */
async function svm_range_add(p: kfd_process, start: number, size: number, nattr: number, attrs: kfd_ioctl_svm_attribute_t[], lists: svm_add_lists): Promise<number> {
  const last = start + size - 1;
  const svms = p.svms;
  const new_list: svm_range[] = [];
  const { update_list, insert_list, remove_list, remap_list } = lists;
  const max_pages = p.amdkfd.max_svm_range_pages;
  let r = 0;
  let node = interval_tree_iter_first(svms.objects, start, last);
  while (node) {
    let prange = it_range(node);
    const next = interval_tree_iter_next(node, start, last);
    const next_start = Math.min(node.last, last) + 1;
    if (svm_range_is_same_attrs(p, prange, nattr, attrs) && prange.mapped_to_gpu) {
      // nothing to do
    } else if (node.start < start || node.last > last) {
      const old = prange;
      const clone = svm_range_clone(old);
      if (!clone) {
        r = -ENOMEM;
        break;
      }
      prange = clone;
      remove_list.unshift(old);
      insert_list.unshift(prange);
      update_list.unshift(prange);
      if (node.start < start) {
        r = svm_range_split_head(prange, start, insert_list, remap_list);
        if (r) break;
      }
      if (node.last > last) {
        r = svm_range_split_tail(prange, last, insert_list, remap_list);
        if (r) break;
      }
    } else {
      update_list.unshift(prange);
    }
    if (node.start > start) {
      r = svm_range_split_new(svms, start, node.start - 1, max_pages, new_list, update_list);
      if (r) break;
    }
    node = next;
    start = next_start;
  }
  if (!r && start <= last) r = svm_range_split_new(svms, start, last, max_pages, new_list, update_list);
  if (r) {
    for (const pr of insert_list) svm_range_free(pr, false);
    for (const pr of new_list) svm_range_free(pr, true);
    return r;
  }
  insert_list.unshift(...new_list);
  return 0;
}

/** Re-key the tree node and notifier of a range whose bounds a munmap split changed. */
async function svm_range_update_notifier_and_interval_tree(mm: mm_struct, prange: svm_range): Promise<void> {
  const [start, last] = notifier_pages(prange);
  if (prange.start === start && prange.last === last) return;
  if (start !== 0 && last !== 0) {
    interval_tree_remove(prange.it_node, prange.svms.objects);
    await svm_range_remove_notifier(prange);
  }
  prange.it_node.start = prange.start;
  prange.it_node.last = prange.last;
  interval_tree_insert(prange.it_node, prange.svms.objects);
  await svm_range_add_notifier_locked(mm, prange);
}

/** svm_range_handle_list_op(): apply a deferred op (mmap write lock and svms->lock held). */
async function svm_range_handle_list_op(svms: svm_range_list, prange: svm_range, mm: mm_struct): Promise<void> {
  using _ = ftrace(svms.process.k, "svm_range_handle_list_op");
  switch (prange.work_item.op) {
    case SVM_OP_NULL:
      break;
    case SVM_OP_UNMAP_RANGE:
      svm_range_unlink(prange);
      await svm_range_remove_notifier(prange);
      svm_range_free(prange, true);
      break;
    case SVM_OP_UPDATE_RANGE_NOTIFIER:
    case SVM_OP_UPDATE_RANGE_NOTIFIER_AND_MAP:
      // The _AND_MAP variants never had their mapping half implemented in the kernel either.
      await svm_range_update_notifier_and_interval_tree(mm, prange);
      break;
    case SVM_OP_ADD_RANGE:
    case SVM_OP_ADD_RANGE_AND_MAP:
      svm_range_add_to_svms(prange);
      await svm_range_add_notifier_locked(mm, prange);
      break;
    default:
      svms.process.k.WARN_ONCE(true, `Unknown prange work op ${prange.work_item.op}`);
  }
}

// ---- GPU page tables ----------------------------------------------------------------------------

function svm_nodes_in_same_hive(a: kfd_node, b: kfd_node): boolean {
  return a.adev === b.adev || amdgpu_xgmi_same_hive(a.adev, b.adev);
}

/**
 * svm_range_get_pte_flags(): the PTE flag halves [lo, hi]. VALID; SYSTEM and SNOOPED for
 * system memory; READABLE | WRITEABLE, minus WRITEABLE with GPU_RO; EXECUTABLE with GPU_EXEC;
 * MTYPE: local VRAM on GC 9.4.1/9.4.2 is CC when coherent else RW, a peer's VRAM or system
 * memory is UC when coherent else NC (snooped within a hive). kemu encodes the flags directly
 * in the GFX9 PTE format instead of going through amdgpu_gem_va_map_flags().
 */
export function svm_range_get_pte_flags(node: kfd_node, prange: svm_range, domain: number): amdgpu_pte_flags {
  const flags = prange.flags;
  const vram = domain === SVM_RANGE_VRAM_DOMAIN;
  let snoop = !vram;
  const coherent = (flags & (KFD_IOCTL_SVM_FLAG_COHERENT | KFD_IOCTL_SVM_FLAG_EXT_COHERENT)) !== 0;
  const gc = KFD_GC_VERSION(node);
  let mtype = coherent ? AMDGPU_MTYPE_UC : AMDGPU_MTYPE_NC;
  if ((gc === IP_VERSION(9, 4, 1) || gc === IP_VERSION(9, 4, 2)) && vram) {
    const bo_node = prange.svm_bo!.node!;
    if (bo_node === node) mtype = coherent ? AMDGPU_MTYPE_CC : AMDGPU_MTYPE_RW;
    else if (svm_nodes_in_same_hive(node, bo_node)) snoop = true;
  }
  let lo = AMDGPU_PTE_VALID | AMDGPU_PTE_READABLE | AMDGPU_PTE_WRITEABLE;
  if (!vram) lo |= AMDGPU_PTE_SYSTEM;
  if (snoop) lo |= AMDGPU_PTE_SNOOPED;
  if (flags & KFD_IOCTL_SVM_FLAG_GPU_RO) lo &= ~AMDGPU_PTE_WRITEABLE;
  if (flags & KFD_IOCTL_SVM_FLAG_GPU_EXEC) lo |= AMDGPU_PTE_EXECUTABLE;
  return { lo, hi: AMDGPU_PTE_MTYPE_VG10_HI(mtype) };
}

/** svm_range_unmap_from_gpu(): clear the PTEs of [start, last] (pages) in one VM. */
async function svm_range_unmap_from_gpu(adev: amdgpu_device, vm: amdgpu_vm, start: number, last: number, fence: { f: dma_fence | null }): Promise<number> {
  using _ = ftrace(adev.k, "svm_range_unmap_from_gpu");
  return await amdgpu_vm_update_range(adev, vm, false, true, true, false, null, start, last, { lo: 0, hi: 0 }, 0, 0, null, null, fence);
}

/**
 * svm_range_unmap_from_gpus(): clear [start, last] on every GPU with access (prange->lock
 * held). Only unmapping the whole range clears mapped_to_gpu. Each GPU gets an SMI event,
 * the update fence is waited for and its TLB flushed heavyweight.
 */
export async function svm_range_unmap_from_gpus(prange: svm_range, start: number, last: number, trigger: number): Promise<number> {
  using _ = ftrace(p_of(prange).k, "svm_range_unmap_from_gpus");
  if (!prange.mapped_to_gpu) return 0;
  if (prange.start === start && prange.last === last) prange.mapped_to_gpu = false;
  const bitmap = DECLARE_BITMAP();
  bitmap_or(bitmap, prange.bitmap_access, prange.bitmap_aip);
  const p = p_of(prange);
  let r = 0;
  for (const gpuidx of for_each_set_bit(bitmap)) {
    const pdd = kfd_process_device_from_gpuidx(p, gpuidx);
    if (!pdd) return -EINVAL;
    kfd_smi_event_unmap_from_gpu(pdd.dev, p.lead_thread.pid, start, last, trigger);
    const vm = drm_priv_to_vm(pdd.drm_priv);
    // A process that never acquired a VM on this GPU has nothing mapped there.
    if (!vm) continue;
    const fence: { f: dma_fence | null } = { f: null };
    r = await svm_range_unmap_from_gpu(pdd.dev.adev, vm, start, last, fence);
    if (r) break;
    if (fence.f) {
      r = await dma_fence_wait(fence.f, false);
      dma_fence_put(fence.f);
      if (r) break;
    }
    kfd_flush_tlb(pdd, TLB_FLUSH_HEAVYWEIGHT);
  }
  return r;
}

/**
 * svm_range_map_to_gpu(): write the PTEs of `npages` pages from `offset`, one VM update per run
 * of pages in the same domain (the domain bit is stripped for the call and restored after).
 */
async function svm_range_map_to_gpu(
  pdd: kfd_process_device, prange: svm_range, offset: number, npages: number, readonly: boolean,
  dma_addr: dma_addr_t[], bo_adev: amdgpu_device | null, fence: { f: dma_fence | null } | null, flush_tlb: boolean,
): Promise<number> {
  using _ = ftrace(p_of(prange).k, "svm_range_map_to_gpu");
  const adev = pdd.dev.adev;
  const vm = drm_priv_to_vm(pdd.drm_priv);
  if (!vm) return -EINVAL;
  let last_start = prange.start + offset;
  for (let i = offset; i < offset + npages; i++) {
    const last_domain = dma_addr[i]! % 2;
    dma_addr[i] = dma_addr[i]! - last_domain;
    if (i < offset + npages - 1 && last_domain === dma_addr[i + 1]! % 2) continue;
    const pte_flags = svm_range_get_pte_flags(pdd.dev, prange, last_domain);
    if (readonly) pte_flags.lo &= ~AMDGPU_PTE_WRITEABLE;
    const r = await amdgpu_vm_update_range(adev, vm, false, false, flush_tlb, true, null, last_start, prange.start + i,
      pte_flags, (last_start - prange.start) * PAGE_SIZE, bo_adev ? bo_adev.vm_manager.vram_base_offset : 0, null, dma_addr, null);
    for (let j = last_start - prange.start; j <= i; j++) dma_addr[j] = dma_addr[j]! + last_domain;
    if (r) return r;
    last_start = prange.start + i + 1;
  }
  const r = await amdgpu_vm_update_pdes(adev, vm, false);
  if (r) return r;
  if (fence) fence.f = vm.last_update ? dma_fence_get(vm.last_update) : null;
  return 0;
}

/**
 * svm_range_map_to_gpus(): map to every GPU of `bitmap`, binding the process to the device
 * first; a range with VRAM skips GPUs outside the VRAM owner's hive. Waits for the update
 * fence when asked and flushes each GPU's TLB.
 */
async function svm_range_map_to_gpus(prange: svm_range, offset: number, npages: number, readonly: boolean, bitmap: gpu_bitmap, wait: boolean, flush_tlb: boolean): Promise<number> {
  using _ = ftrace(p_of(prange).k, "svm_range_map_to_gpus");
  let bo_adev: amdgpu_device | null = null;
  if (prange.svm_bo && prange.ttm_res) bo_adev = prange.svm_bo.node!.adev;
  const p = p_of(prange);
  let r = 0;
  for (const gpuidx of for_each_set_bit(bitmap)) {
    let pdd = kfd_process_device_from_gpuidx(p, gpuidx);
    if (!pdd) return -EINVAL;
    const bound = kfd_bind_process_to_device(pdd.dev, p);
    if (typeof bound === "number") return -EINVAL;
    pdd = bound;
    if (bo_adev && pdd.dev.adev !== bo_adev && !amdgpu_xgmi_same_hive(pdd.dev.adev, bo_adev)) continue;
    const fence: { f: dma_fence | null } | null = wait ? { f: null } : null;
    r = await svm_range_map_to_gpu(pdd, prange, offset, npages, readonly, prange.dma_addr[gpuidx]!, bo_adev, fence, flush_tlb);
    if (r) break;
    if (fence?.f) {
      r = await dma_fence_wait(fence.f, false);
      dma_fence_put(fence.f);
      if (r) break;
    }
    kfd_flush_tlb(pdd, TLB_FLUSH_LEGACY);
  }
  return r;
}

/**
 * svm_range_reserve_bos(): reserve the page-directory BO of every target GPU's VM (the kernel
 * locks them together with drm_exec; kemu takes them in gpuidx order, which needs no ww
 * backoff). A GPU without a VM is left to map_to_gpus to refuse. The kernel ignores the result.
 */
async function svm_range_reserve_bos(p: kfd_process, bitmap: gpu_bitmap, intr: boolean): Promise<amdgpu_bo[] | number> {
  const held: amdgpu_bo[] = [];
  for (const gpuidx of for_each_set_bit(bitmap)) {
    const pdd = kfd_process_device_from_gpuidx(p, gpuidx);
    if (!pdd) {
      svm_range_unreserve_bos(held);
      return -EINVAL;
    }
    const root = drm_priv_to_vm(pdd.drm_priv)?.root?.bo;
    if (!root) continue;
    // drm_exec takes the roots under one ww acquire context; kemu's reservations are plain
    // mutexes, so each further root is a lockdep subclass (one VM per GPU, never the same BO).
    if (held.length) {
      await mutex_lock_nested(root.tbo.resv.lock, held.length);
      held.push(root);
      continue;
    }
    const r = await amdgpu_bo_reserve(root, !intr);
    if (r) {
      svm_range_unreserve_bos(held);
      return r;
    }
    held.push(root);
  }
  return held;
}

function svm_range_unreserve_bos(held: amdgpu_bo[]): void {
  for (const bo of held.reverse()) amdgpu_bo_unreserve(bo);
}

/** kfd_svm_page_owner(): the pgmap owner hmm compares device pages against. */
function kfd_svm_page_owner(p: kfd_process, gpuidx: number): unknown {
  const pdd = kfd_process_device_from_gpuidx(p, gpuidx);
  return pdd ? SVM_ADEV_PGMAP_OWNER(pdd.dev.adev) : null;
}

/** The GPUs a validation maps to (step 1 of svm_range_validate_and_map). */
function svm_range_validate_bitmap(p: kfd_process, prange: svm_range, gpuidx: number, bitmap: gpu_bitmap): number {
  if (gpuidx < MAX_GPU_INSTANCE) {
    bitmap_zero(bitmap);
    bitmap_set(bitmap, gpuidx, 1);
    return 0;
  }
  if (!p.xnack_enabled) {
    bitmap_or(bitmap, prange.bitmap_access, prange.bitmap_aip);
    return 0;
  }
  bitmap_copy(bitmap, prange.bitmap_aip);
  // A range prefetched or retry-fault-migrated to a GPU with ACCESS gets mapped there.
  if (prange.actual_loc) {
    const idx = kfd_process_gpuidx_from_gpuid(p, prange.actual_loc);
    if (idx < 0) {
      p.k.WARN_ONCE(true, `failed get device by id 0x${prange.actual_loc.toString(16)}`);
      return -EINVAL;
    }
    if (test_bit(idx, prange.bitmap_access)) bitmap_set(bitmap, idx, 1);
  }
  // Already mapped, or always-mapped: keep the ACCESS GPUs' mappings current.
  if (bitmap_empty(bitmap) && (prange.mapped_to_gpu || prange.flags & KFD_IOCTL_SVM_FLAG_GPU_ALWAYS_MAPPED)) {
    bitmap_copy(bitmap, prange.bitmap_access);
  }
  return 0;
}

/**
 * struct svm_validate_context: the per-call state of svm_range_validate_and_map, kzalloc'ed on
 * entry and freed on every way out. Only its GPU bitmap is modelled (kemu reserves the BOs
 * without a drm_exec).
 */
class svm_validate_context {
  readonly bitmap: gpu_bitmap = DECLARE_BITMAP();
}

/**
 * svm_range_validate_and_map(): make [map_start, map_last] of `prange` GPU-accessible
 * (mmap lock held for reading, migrate_mutex held, prange->lock not held). Per VMA piece:
 * fault the pages in with hmm (as a CPU access would — never-touched pages get populated),
 * DMA-map them, then under prange->lock check that no invalidation or munmap split raced
 * (else -EAGAIN) and write the PTEs. `gpuidx` < MAX_GPU_INSTANCE limits it to one GPU (the
 * fault path). -ENOMEM, before anything else, when the context cannot be allocated.
 */
export async function svm_range_validate_and_map(
  mm: mm_struct, map_start: number, map_last: number, prange: svm_range, gpuidx: number,
  intr: boolean, wait: boolean, flush_tlb: boolean,
): Promise<number> {
  using _ = ftrace(mm.k, "svm_range_validate_and_map");
  const slab = p_of(prange).amdkfd.slab;
  const ctx = slab.kzalloc_obj(new svm_validate_context(), SIZEOF_SVM_VALIDATE_CONTEXT, GFP_KERNEL, "svm_range_validate_and_map");
  if (!ctx) return -ENOMEM;
  try {
    return await svm_range_validate_and_map_ctx(ctx, mm, map_start, map_last, prange, gpuidx, intr, wait, flush_tlb);
  } finally {
    slab.kfree(ctx);
  }
}

/** The body of svm_range_validate_and_map() with its context allocated. */
async function svm_range_validate_and_map_ctx(
  ctx: svm_validate_context, mm: mm_struct, map_start: number, map_last: number, prange: svm_range, gpuidx: number,
  intr: boolean, wait: boolean, flush_tlb: boolean,
): Promise<number> {
  const p = p_of(prange);
  const slab = p.amdkfd.slab;
  const bitmap = ctx.bitmap;
  let r = svm_range_validate_bitmap(p, prange, gpuidx, bitmap);
  if (r || bitmap_empty(bitmap)) return r;
  if (prange.actual_loc && !prange.ttm_res) {
    p.k.WARN_ONCE(true, "VRAM BO missing during validation");
    return -EINVAL;
  }
  const reserved = await svm_range_reserve_bos(p, bitmap, intr);
  if (typeof reserved === "number") return reserved;
  let owner = kfd_svm_page_owner(p, find_first_bit(bitmap));
  for (const idx of for_each_set_bit(bitmap)) {
    if (kfd_svm_page_owner(p, idx) !== owner) {
      owner = null;
      break;
    }
  }
  const start = map_start * PAGE_SIZE;
  const end = (map_last + 1) * PAGE_SIZE;
  for (let addr = start; !r && addr < end;) {
    const vma = vma_lookup(mm, addr);
    let next = 0;
    let npages = 0;
    let offset = 0;
    let readonly = false;
    let range: hmm_range | null = null;
    if (vma) {
      readonly = !(vma.vm_flags & VM_WRITE);
      next = Math.min(vma.vm_end, end);
      npages = (next - addr) / PAGE_SIZE;
      p.svms.faulting_task = p.k.current;
      const got = await amdgpu_hmm_range_get_pages(prange.notifier, addr, npages, readonly, owner, slab);
      p.svms.faulting_task = null;
      if (typeof got === "number") r = got === -EBUSY ? -EAGAIN : got;
      else range = got;
    } else {
      r = -EFAULT;
    }
    if (!r) {
      offset = addr / PAGE_SIZE - prange.start;
      r = svm_range_dma_map(prange, bitmap, offset, npages, range!.hmm_pfns);
    }
    await svm_range_lock(prange);
    // The range is released whenever it was set up; an invalidation only turns success into -EAGAIN.
    if (range && amdgpu_hmm_range_get_pages_done(range, slab) && !r) r = -EAGAIN;
    if (!r && !child_list_empty(prange)) r = -EAGAIN;
    if (!r) {
      const map_start_vma = Math.max(map_start, prange.start + offset);
      const map_last_vma = Math.min(map_last, prange.start + offset + npages - 1);
      if (map_start_vma <= map_last_vma) {
        r = await svm_range_map_to_gpus(prange, map_start_vma - prange.start, map_last_vma - map_start_vma + 1, readonly, bitmap, wait, flush_tlb);
      }
    }
    if (!r && next === end) prange.mapped_to_gpu = true;
    svm_range_unlock(prange);
    addr = next;
  }
  svm_range_unreserve_bos(reserved);
  if (!r) prange.validate_timestamp = p.k.ktime_get();
  return r;
}

// ---- invalidation, eviction, restore -------------------------------------------------------------

/**
 * svm_range_list_lock_and_flush_work(): flush pending deferred work, then take the mmap write
 * lock; if the worker queued more meanwhile, drop the lock and flush again. Returns with the
 * mmap write lock held and the deferred list empty.
 */
export async function svm_range_list_lock_and_flush_work(svms: svm_range_list, mm: mm_struct): Promise<void> {
  const wqs = svms.process.amdkfd.wqs;
  for (;;) {
    await wqs.flush_work(svms.deferred_list_work);
    await mmap_write_lock(mm);
    if (svms.deferred_range_list.size === 0) return;
    mmap_write_unlock(mm);
  }
}

/**
 * svm_range_restore_work(): XNACK-off restore. Revalidate every range with `invalid` set,
 * then, if no new eviction happened meanwhile, resume the process's queues; otherwise (or on a
 * validation error) try again after AMDGPU_SVM_RANGE_RESTORE_DELAY_MS.
 */
async function svm_range_restore_work(svms: svm_range_list): Promise<void> {
  using _ = ftrace(svms.process.k, "svm_range_restore_work");
  let evicted_ranges = atomic_read(svms.evicted_ranges);
  if (!evicted_ranges) return;
  const p = svms.process;
  // Keep the mm while validating; it is gone once the process is released.
  const mm = kfd_get_process_mm(p);
  if (!mm) return;
  const process_info = p.kgd_process_info;
  await mutex_lock(process_info.lock);
  await svm_range_list_lock_and_flush_work(svms, mm);
  await mutex_lock(svms.lock);
  evicted_ranges = atomic_read(svms.evicted_ranges);
  let reschedule = false;
  for (const prange of svms.list) {
    const invalid = atomic_read(prange.invalid);
    if (!invalid) continue;
    await mutex_lock(prange.migrate_mutex);
    const r = await svm_range_validate_and_map(mm, prange.start, prange.last, prange, MAX_GPU_INSTANCE, false, true, false);
    if (r) p.k.pr_debug(`failed ${r} to map 0x${prange.start.toString(16)} to gpus`, "kfd");
    mutex_unlock(prange.migrate_mutex);
    if (r || atomic_cmpxchg(prange.invalid, invalid, 0) !== invalid) {
      reschedule = true;
      break;
    }
  }
  if (!reschedule && atomic_cmpxchg(svms.evicted_ranges, evicted_ranges, 0) !== evicted_ranges) reschedule = true;
  if (!reschedule) {
    evicted_ranges = 0;
    // No recovery from a failed resume: the CP is probably hung.
    const r = await kgd2kfd_resume_mm(p.amdkfd, mm);
    if (r) p.k.pr_debug(`failed ${r} to resume KFD`, "kfd");
  }
  svm_range_debug_check(svms);
  mutex_unlock(svms.lock);
  mmap_write_unlock(mm);
  mutex_unlock(process_info.lock);
  if (evicted_ranges) {
    p.amdkfd.wqs.queue_delayed_work(p.amdkfd.wqs.system_freezable_wq, svms.restore_work, msecs_to_jiffies(AMDGPU_SVM_RANGE_RESTORE_DELAY_MS));
    kfd_smi_event_queue_restore_rescheduled(p.amdkfd, mm);
  }
  await mmput(mm);
}

/**
 * svm_range_evict(): a CPU-side change of [start, last] (prange->lock held). XNACK off (or
 * GPU_ALWAYS_MAPPED): count the invalidation on the mapped range and its children; the first
 * eviction since the last restore stops all the process's queues and schedules restore_work —
 * no PTE changes. XNACK on: unmap the overlap from all GPUs and let them retry-fault.
 */
async function svm_range_evict(prange: svm_range, mm: mm_struct, start: number, last: number, event: number): Promise<number> {
  using _ = ftrace(mm.k, "svm_range_evict");
  const svms = prange.svms;
  const p = svms.process;
  if (!p.xnack_enabled || prange.flags & KFD_IOCTL_SVM_FLAG_GPU_ALWAYS_MAPPED) {
    let mapped = prange.mapped_to_gpu;
    for (const pchild of prange.child_list) {
      if (!pchild.mapped_to_gpu) continue;
      mapped = true;
      await mutex_lock_nested(pchild.lock, 1);
      if (pchild.start <= last && pchild.last >= start) atomic_inc(pchild.invalid);
      mutex_unlock(pchild.lock);
    }
    if (!mapped) return 0;
    if (prange.start <= last && prange.last >= start) atomic_inc(prange.invalid);
    if (atomic_inc_return(svms.evicted_ranges) !== 1) return 0;
    // First eviction: stop the queues.
    const r = await kgd2kfd_quiesce_mm(p.amdkfd, mm, KFD_QUEUE_EVICTION_TRIGGER_SVM);
    if (r) p.k.pr_debug("failed to quiesce KFD", "kfd");
    p.amdkfd.wqs.queue_delayed_work(p.amdkfd.wqs.system_freezable_wq, svms.restore_work, msecs_to_jiffies(AMDGPU_SVM_RANGE_RESTORE_DELAY_MS));
    return r;
  }
  const trigger = event === MMU_NOTIFY_MIGRATE ? KFD_SVM_UNMAP_TRIGGER_MMU_NOTIFY_MIGRATE : KFD_SVM_UNMAP_TRIGGER_MMU_NOTIFY;
  for (const pchild of prange.child_list) {
    await mutex_lock_nested(pchild.lock, 1);
    const s = Math.max(start, pchild.start);
    const l = Math.min(last, pchild.last);
    if (l >= s) await svm_range_unmap_from_gpus(pchild, s, l, trigger);
    mutex_unlock(pchild.lock);
  }
  const s = Math.max(start, prange.start);
  const l = Math.min(last, prange.last);
  if (l >= s) await svm_range_unmap_from_gpus(prange, s, l, trigger);
  return 0;
}

// ---- the deferred list -------------------------------------------------------------------------

/** svm_range_drain_retry_fault(): wait until the IH rings processed the faults queued before now. */
async function svm_range_drain_retry_fault(svms: svm_range_list): Promise<void> {
  const p = svms.process;
  for (;;) {
    const drain = atomic_read(svms.drain_pagefaults);
    if (!drain) return;
    for (const i of for_each_set_bit(svms.bitmap_supported, p.n_pdds)) {
      const pdd = p.pdds[i];
      if (!pdd) continue;
      const irq = pdd.dev.adev.irq;
      await amdgpu_ih_wait_on_checkpoint_process_ts(pdd.dev.adev, irq.retry_cam_enabled ? irq.ih : irq.ih1);
      if (irq.retry_cam_enabled) await amdgpu_ih_wait_on_checkpoint_process_ts(pdd.dev.adev, irq.ih_soft);
    }
    if (atomic_cmpxchg(svms.drain_pagefaults, drain, 0) === drain) return;
  }
}

/**
 * svm_range_deferred_list_work(): apply the ops a CPU munmap queued. Per range: mmap write lock
 * (drain stale retry faults first), dequeue it under that lock, svms->lock, the parent's
 * migrate_mutex for its children's ops, then the parent's own op.
 */
async function svm_range_deferred_list_work(svms: svm_range_list): Promise<void> {
  using _ = ftrace(svms.process.k, "svm_range_deferred_list_work");
  spin_lock(svms.deferred_list_lock);
  while (svms.deferred_range_list.size) {
    const prange = svms.deferred_range_list.values().next().value as svm_range;
    spin_unlock(svms.deferred_list_lock);
    const mm = prange.work_item.mm!;
    for (;;) {
      await mmap_write_lock(mm);
      // Checked under the mmap write lock to serialize with munmap notifiers.
      if (!atomic_read(svms.drain_pagefaults)) break;
      mmap_write_unlock(mm);
      await svm_range_drain_retry_fault(svms);
    }
    // Dequeued under the mmap lock so that neither unmap_from_cpu nor a flusher sees a gap.
    spin_lock(svms.deferred_list_lock);
    svms.deferred_range_list.delete(prange);
    prange.deferred_list = false;
    spin_unlock(svms.deferred_list_lock);
    await mutex_lock(svms.lock);
    await mutex_lock(prange.migrate_mutex);
    while (prange.child_list.length) {
      const pchild = prange.child_list.shift()!;
      pchild.child_parent = null;
      await svm_range_handle_list_op(svms, pchild, mm);
    }
    mutex_unlock(prange.migrate_mutex);
    await svm_range_handle_list_op(svms, prange, mm);
    svm_range_debug_check(svms);
    mutex_unlock(svms.lock);
    mmap_write_unlock(mm);
    // Pairs with the mmget in svm_range_add_list_work.
    await mmput(mm);
    spin_lock(svms.deferred_list_lock);
  }
  spin_unlock(svms.deferred_list_lock);
}

/**
 * svm_range_add_list_work(): queue `prange` with `op`, or update the op of a queued range
 * (UNMAP stays UNMAP; a NULL op changes nothing). A newly queued range holds an mm reference.
 */
export function svm_range_add_list_work(svms: svm_range_list, prange: svm_range, mm: mm_struct, op: number): void {
  spin_lock(svms.deferred_list_lock);
  if (prange.deferred_list) {
    svms.process.k.WARN_ONCE(prange.work_item.mm !== mm, "unmatch mm");
    if (op !== SVM_OP_NULL && prange.work_item.op !== SVM_OP_UNMAP_RANGE) prange.work_item.op = op;
  } else {
    prange.work_item.op = op;
    mmget(mm);
    prange.work_item.mm = mm;
    svms.deferred_range_list.add(prange);
    prange.deferred_list = true;
  }
  spin_unlock(svms.deferred_list_lock);
}

export function schedule_deferred_list_work(svms: svm_range_list): void {
  spin_lock(svms.deferred_list_lock);
  if (svms.deferred_range_list.size) svms.process.amdkfd.wqs.schedule_work(svms.deferred_list_work);
  spin_unlock(svms.deferred_list_lock);
}

/**
 * svm_range_unmap_split(): cut the unmapped part [start, last] out of `prange` (itself or a
 * child of `parent`). `prange` keeps what lies before `start`; the removed piece becomes a child
 * queued UNMAP and, for a hole in the middle, the right remainder a child queued ADD. Split
 * allocation failures are ignored (best effort, as in the kernel).
 */
function svm_range_unmap_split(mm: mm_struct, parent: svm_range, prange: svm_range, start: number, last: number): void {
  using _ = ftrace(mm.k, "svm_range_unmap_split");
  if (prange.work_item.op === SVM_OP_UNMAP_RANGE) return;
  if (start > prange.last || last < prange.start) return;
  let head = prange;
  let tail = prange;
  if (start > prange.start) {
    const t = svm_range_split(prange, prange.start, start - 1);
    if (typeof t !== "number") tail = t;
  }
  if (last < tail.last) {
    const h = svm_range_split(tail, last + 1, tail.last);
    if (typeof h !== "number") head = h;
  }
  if (head !== prange && tail !== prange) {
    svm_range_add_child(parent, mm, head, SVM_OP_UNMAP_RANGE);
    svm_range_add_child(parent, mm, tail, SVM_OP_ADD_RANGE);
  } else if (tail !== prange) {
    svm_range_add_child(parent, mm, tail, SVM_OP_UNMAP_RANGE);
  } else if (head !== prange) {
    svm_range_add_child(parent, mm, head, SVM_OP_UNMAP_RANGE);
  } else if (parent !== prange) {
    prange.work_item.op = SVM_OP_UNMAP_RANGE;
  }
}

/**
 * svm_range_unmap_from_cpu(): a munmap of [start, last] (prange->lock held, mmap write lock
 * held by the caller of the notifier). Unmap the part from the GPUs, split it off the range and
 * its children, and queue the parent for the deferred worker: UNMAP if wholly gone, else
 * UPDATE_RANGE_NOTIFIER.
 */
async function svm_range_unmap_from_cpu(mm: mm_struct, prange: svm_range, start: number, last: number): Promise<void> {
  using _ = ftrace(mm.k, "svm_range_unmap_from_cpu");
  const trigger = KFD_SVM_UNMAP_TRIGGER_UNMAP_FROM_CPU;
  const p = kfd_lookup_process_by_mm(p_of(prange).amdkfd, mm);
  if (!p) return;
  const svms = p.svms;
  // Stale retry faults on the unmapped range are drained by the worker before it frees it.
  atomic_inc(svms.drain_pagefaults);
  const unmap_parent = start <= prange.start && last >= prange.last;
  for (const pchild of [...prange.child_list]) {
    await mutex_lock_nested(pchild.lock, 1);
    const s = Math.max(start, pchild.start);
    const l = Math.min(last, pchild.last);
    if (l >= s) await svm_range_unmap_from_gpus(pchild, s, l, trigger);
    svm_range_unmap_split(mm, prange, pchild, start, last);
    mutex_unlock(pchild.lock);
  }
  const s = Math.max(start, prange.start);
  const l = Math.min(last, prange.last);
  if (l >= s) await svm_range_unmap_from_gpus(prange, s, l, trigger);
  svm_range_unmap_split(mm, prange, prange, start, last);
  svm_range_add_list_work(svms, prange, mm, unmap_parent ? SVM_OP_UNMAP_RANGE : SVM_OP_UPDATE_RANGE_NOTIFIER);
  schedule_deferred_list_work(svms);
  kfd_unref_process(p);
}

/**
 * svm_range_cpu_invalidate_pagetables(): the interval-notifier callback. Ignores RELEASE and a
 * dying mm; under prange->lock bumps the notifier sequence, then munmap → unmap_from_cpu,
 * anything else (clear, protection, migration, ...) → evict. Never refuses; takes neither
 * svms->lock nor migrate_mutex, so migrations holding those can fire it.
 */
async function svm_range_cpu_invalidate_pagetables(mni: svm_range_notifier, range: mmu_notifier_range, cur_seq: number): Promise<boolean> {
  using _ = ftrace(mni.mm!.k, "svm_range_cpu_invalidate_pagetables");
  if (range.event === MMU_NOTIFY_RELEASE) return true;
  const mm = mni.mm!;
  if (!mmget_not_zero(mm)) return true;
  const start = Math.floor(Math.max(mni.start, range.start) / PAGE_SIZE);
  const last = Math.floor(Math.min(mni.last, range.end - 1) / PAGE_SIZE);
  const prange = mni.prange;
  await svm_range_lock(prange);
  mmu_interval_set_seq(mni, cur_seq);
  if (range.event === MMU_NOTIFY_UNMAP) await svm_range_unmap_from_cpu(mm, prange, start, last);
  else await svm_range_evict(prange, mm, start, last, range.event);
  svm_range_unlock(prange);
  await mmput(mm);
  return true;
}

// ---- GPU retry faults ----------------------------------------------------------------------------

/** svm_range_from_addr(): the range (or child of a range) holding page `addr`; svms->lock held. */
export function svm_range_from_addr(svms: svm_range_list, addr: number, parent?: { p: svm_range | null }): svm_range | null {
  const node = interval_tree_iter_first(svms.objects, addr, addr);
  if (!node) return null;
  const prange = it_range(node);
  if (addr >= prange.start && addr <= prange.last) {
    if (parent) parent.p = prange;
    return prange;
  }
  for (const pchild of prange.child_list) {
    if (addr >= pchild.start && addr <= pchild.last) {
      if (parent) parent.p = prange;
      return pchild;
    }
  }
  return null;
}

/**
 * svm_range_best_restore_location(): where a retry fault from `node` should be served.
 * Preferred location if it is this GPU, system memory or a GPU in its hive; else this GPU for
 * ACCESS; for ACCESS_IN_PLACE the current VRAM owner if in the same hive, else system memory;
 * -1 when the GPU has no access.
 */
function svm_range_best_restore_location(prange: svm_range, node: kfd_node, gpuidx_out: { idx: number }): number {
  const p = p_of(prange);
  const ids = kfd_process_gpuid_from_node(p, node);
  if (!ids) return -1;
  gpuidx_out.idx = ids.gpuidx;
  const gpuid = ids.gpuid;
  if (prange.preferred_loc === gpuid || prange.preferred_loc === KFD_IOCTL_SVM_LOCATION_SYSMEM) return prange.preferred_loc;
  if (prange.preferred_loc !== KFD_IOCTL_SVM_LOCATION_UNDEFINED) {
    const preferred_node = svm_range_get_node_by_id(prange, prange.preferred_loc);
    if (preferred_node && svm_nodes_in_same_hive(node, preferred_node)) return prange.preferred_loc;
  }
  if (test_bit(ids.gpuidx, prange.bitmap_access)) return gpuid;
  if (test_bit(ids.gpuidx, prange.bitmap_aip)) {
    if (!prange.actual_loc) return 0;
    const bo_node = svm_range_get_node_by_id(prange, prange.actual_loc);
    return bo_node && svm_nodes_in_same_hive(node, bo_node) ? prange.actual_loc : 0;
  }
  return -1;
}

/** The last tree node starting at or before `addr` (rb_prev of the first one after it). */
function svm_range_prev_node(svms: svm_range_list, addr: number): interval_tree_node | null {
  let n = svms.objects.root;
  let best: interval_tree_node | null = null;
  while (n) {
    if (n.start <= addr) {
      best = n;
      n = n.right;
    } else {
      n = n.left;
    }
  }
  return best;
}

function vma_is_initial_stack(vma: vm_area_struct): boolean {
  const mm = vma.vm_mm;
  return vma.vm_start <= mm.start_stack && vma.vm_end >= mm.start_stack;
}

/**
 * svm_range_get_range_boundaries(): the window an unregistered fault at page `addr` creates —
 * its VMA ∩ the 2 MiB-aligned block around it, trimmed so it reaches into no registered range.
 */
function svm_range_get_range_boundaries(p: kfd_process, mm: mm_struct, addr: number, out: { start: number; last: number; is_heap_stack: boolean }): number {
  const vma = vma_lookup(mm, addr * PAGE_SIZE);
  if (!vma) return -EFAULT;
  // kemu has no brk heap: only the initial stack counts.
  out.is_heap_stack = vma_is_initial_stack(vma);
  let start_limit = Math.max(vma.vm_start / PAGE_SIZE, ALIGN_DOWN(addr, 2 * 2 ** 8));
  let end_limit = Math.min(vma.vm_end / PAGE_SIZE, ALIGN(addr + 1, 2 * 2 ** 8));
  const after = interval_tree_iter_first(p.svms.objects, addr + 1, Number.MAX_SAFE_INTEGER);
  if (after) end_limit = Math.min(end_limit, after.start);
  const before = svm_range_prev_node(p.svms, addr);
  if (before) {
    if (before.last >= addr) {
      p.k.WARN(true, "Overlap with prev node and page fault addr");
      return -EFAULT;
    }
    start_limit = Math.max(start_limit, before.last + 1);
  }
  out.start = start_limit;
  out.last = end_limit - 1;
  return 0;
}

/** The first BO mapping of `vm` overlapping GPU pages [start, last] (the kernel's vm->va tree). */
function amdgpu_vm_mapping_overlapping(vm: amdgpu_vm, start: number, last: number): { start: number; last: number } | null {
  for (const bo_va of vm.bo_vas) {
    for (const m of bo_va.mappings) if (m.start <= last && m.last >= start) return m;
  }
  return null;
}

/**
 * svm_range_check_vm(): -EADDRINUSE if [start, last] (pages) overlaps a GPU VA mapping of a
 * KFD BO in any of the process's VMs; the mapping's bounds are returned in `bo`.
 */
async function svm_range_check_vm(p: kfd_process, start: number, last: number, bo: { s: number; l: number } | null): Promise<number> {
  for (let i = 0; i < p.n_pdds; i++) {
    const vm = drm_priv_to_vm(p.pdds[i]!.drm_priv);
    if (!vm) continue;
    const mapping = amdgpu_vm_mapping_overlapping(vm, start, last);
    if (mapping) {
      if (bo) {
        bo.s = mapping.start;
        bo.l = mapping.last;
      }
      return -EADDRINUSE;
    }
  }
  return 0;
}

/**
 * svm_range_create_unregistered_range(): a range for a retry fault on memory nobody
 * registered (mmap write lock and svms->lock held). Shrinks to the faulting page next to a KFD
 * BO mapping; refuses an address inside one. The initial stack prefers system memory.
 */
async function svm_range_create_unregistered_range(node: kfd_node, p: kfd_process, mm: mm_struct, addr: number): Promise<svm_range | null> {
  const b = { start: 0, last: 0, is_heap_stack: false };
  if (svm_range_get_range_boundaries(p, mm, addr, b)) return null;
  const bo = { s: 0, l: 0 };
  const r = await svm_range_check_vm(p, b.start, b.last, bo);
  if (r === -EADDRINUSE) {
    if (addr >= bo.s && addr <= bo.l) return null;
    b.start = addr;
    b.last = addr;
  }
  const prange = svm_range_new(p.svms, b.start, b.last, true);
  if (!prange) return null;
  if (!kfd_process_gpuid_from_node(p, node)) {
    svm_range_free(prange, true);
    return null;
  }
  if (b.is_heap_stack) prange.preferred_loc = KFD_IOCTL_SVM_LOCATION_SYSMEM;
  svm_range_add_to_svms(prange);
  await svm_range_add_notifier_locked(mm, prange);
  return prange;
}

/**
 * svm_range_skip_recover(): a range queued for UNMAP (stale fault), queued for ADD, or a child
 * not yet in the tree is not recovered now; its faults come back later.
 */
function svm_range_skip_recover(prange: svm_range): boolean {
  const svms = prange.svms;
  spin_lock(svms.deferred_list_lock);
  const idle = !prange.deferred_list && child_list_empty(prange);
  spin_unlock(svms.deferred_list_lock);
  if (idle) return false;
  const op = prange.work_item.op;
  return op === SVM_OP_UNMAP_RANGE || op === SVM_OP_ADD_RANGE || op === SVM_OP_ADD_RANGE_AND_MAP;
}

function svm_range_count_fault(node: kfd_node, p: kfd_process, gpuidx: number): void {
  if (gpuidx === MAX_GPU_INSTANCE) {
    const ids = kfd_process_gpuid_from_node(p, node);
    if (!ids) return;
    gpuidx = ids.gpuidx;
  }
  const pdd = kfd_process_device_from_gpuidx(p, gpuidx);
  if (pdd) pdd.faults++;
}

function svm_fault_allowed(vma: vm_area_struct, write_fault: boolean): boolean {
  const requested = VM_READ | (write_fault ? VM_WRITE : 0);
  return (vma.vm_flags & requested) === requested;
}

/**
 * svm_range_restore_pages(): the GPU retry-fault handler (amdgpu_vm_handle_fault on a compute
 * VM). Finds (or creates) the range of page `addr`, picks where its pages should be, migrates
 * the granularity window if needed and maps it on the faulting GPU only. 0 means handled (the
 * retry will succeed or fault again); anything else makes amdgpu program a no-retry PTE, so
 * the next access raises a fatal fault. XNACK off ⇒ -EFAULT.
 */
export async function svm_range_restore_pages(adev: amdgpu_device, pasid: number, vmid: number, node_id: number, addr: number, write_fault: boolean): Promise<number> {
  using _ = ftrace(adev.k, "svm_range_restore_pages");
  if (!KFD_IS_SVM_API_SUPPORTED(adev)) return -EFAULT;
  const amdkfd = adev.kfd.dev!.amdkfd;
  const p = kfd_lookup_process_by_pasid(amdkfd, pasid);
  if (!p) return 0;
  const r = await svm_range_restore_pages_locked(adev, p, vmid, node_id, addr, write_fault);
  kfd_unref_process(p);
  if (r.err === -EAGAIN) {
    // Recover later: let the hardware's next retry through the fault filter.
    if (r.node) amdgpu_gmc_filter_faults_remove(r.node.adev, addr, pasid);
    return 0;
  }
  return r.err;
}

async function svm_range_restore_pages_locked(adev: amdgpu_device, p: kfd_process, vmid: number, node_id: number, addr: number, write_fault: boolean): Promise<{ err: number; node: kfd_node | null }> {
  const svms = p.svms;
  const timestamp = p.k.ktime_get();
  if (atomic_read(svms.drain_pagefaults)) return { err: 0, node: null };
  if (!p.xnack_enabled) return { err: -EFAULT, node: null };
  const mm = kfd_get_process_mm(p);
  if (!mm) return { err: 0, node: null };
  const node = kfd_node_by_irq_ids(adev, node_id, vmid);
  if (!node) {
    await mmput(mm);
    return { err: -EFAULT, node: null };
  }
  const gpuidx = { idx: MAX_GPU_INSTANCE };
  await mmap_read_lock(mm);
  let write_locked = false;
  let prange: svm_range | null;
  for (;;) {
    await mutex_lock(svms.lock);
    prange = svm_range_from_addr(svms, addr);
    if (prange || write_locked) break;
    // Creating a range registers a notifier: that needs the mmap write lock.
    mutex_unlock(svms.lock);
    mmap_read_unlock(mm);
    await mmap_write_lock(mm);
    write_locked = true;
  }
  if (!prange) {
    prange = await svm_range_create_unregistered_range(node, p, mm, addr);
    if (!prange) {
      mmap_write_downgrade(mm);
      mutex_unlock(svms.lock);
      mmap_read_unlock(mm);
      svm_range_count_fault(node, p, gpuidx.idx);
      await mmput(mm);
      return { err: -EFAULT, node };
    }
  }
  if (write_locked) mmap_write_downgrade(mm);
  await mutex_lock(prange.migrate_mutex);
  const r = await svm_range_restore_range(p, node, prange, mm, addr, write_fault, timestamp, gpuidx);
  mutex_unlock(prange.migrate_mutex);
  mutex_unlock(svms.lock);
  mmap_read_unlock(mm);
  svm_range_count_fault(node, p, gpuidx.idx);
  await mmput(mm);
  return { err: r, node };
}

/** The part of restore_pages under migrate_mutex: checks, migration, mapping on one GPU. */
async function svm_range_restore_range(p: kfd_process, node: kfd_node, prange: svm_range, mm: mm_struct, addr: number, write_fault: boolean, timestamp: number, gpuidx: { idx: number }): Promise<number> {
  if (svm_range_skip_recover(prange)) {
    amdgpu_gmc_filter_faults_remove(node.adev, addr, p.pasid);
    return 0;
  }
  // A duplicate fault on another page of a range just restored.
  if (timestamp < prange.validate_timestamp + AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING) return 0;
  // munmap already removed the VMA: a stale retry fault.
  const vma = vma_lookup(mm, addr * PAGE_SIZE);
  if (!vma) return 0;
  if (!svm_fault_allowed(vma, write_fault)) return -EPERM;
  const best_loc = svm_range_best_restore_location(prange, node, gpuidx);
  if (best_loc === -1) return -EACCES;
  kfd_smi_event_page_fault_start(node, p.lead_thread.pid, addr, write_fault, timestamp);
  const size = granule_pages(prange.granularity);
  const start = Math.max(ALIGN_DOWN(addr, size), prange.start);
  const last = Math.min(ALIGN(addr + 1, size) - 1, prange.last);
  let migration = false;
  let r: number;
  const migrate = p.amdkfd.svm_migrate;
  if (migrate && (prange.actual_loc !== 0 || best_loc !== 0)) {
    migration = true;
    if (best_loc) {
      r = await migrate.svm_migrate_to_vram(prange, best_loc, start, last, mm, KFD_MIGRATE_TRIGGER_PAGEFAULT_GPU);
      // Fall back to system memory when VRAM cannot take it.
      if (r) r = prange.actual_loc && prange.actual_loc !== best_loc
        ? await migrate.svm_migrate_vram_to_ram(prange, mm, start, last, KFD_MIGRATE_TRIGGER_PAGEFAULT_GPU, null) : 0;
    } else {
      r = await migrate.svm_migrate_vram_to_ram(prange, mm, start, last, KFD_MIGRATE_TRIGGER_PAGEFAULT_GPU, null);
    }
    if (r) return r;
  }
  r = await svm_range_validate_and_map(mm, start, last, prange, gpuidx.idx, false, false, false);
  kfd_smi_event_page_fault_end(node, p.lead_thread.pid, addr, migration);
  return r;
}

// ---- XNACK switching, init, fini ------------------------------------------------------------

/**
 * svm_range_switch_xnack_reserve_mem(): XNACK on releases every range's system-memory charge,
 * XNACK off charges them all (undoing on failure, mode unchanged). The mode flips under
 * svms->lock, so the deferred worker's frees account consistently.
 */
export async function svm_range_switch_xnack_reserve_mem(p: kfd_process, xnack_enabled: boolean): Promise<number> {
  let reserved_size = 0;
  let r = 0;
  await mutex_lock(p.svms.lock);
  const charge = (bytes: number): number => {
    if (xnack_enabled) {
      amdgpu_amdkfd_unreserve_mem_limit(p.amdkfd, null, bytes, KFD_IOC_ALLOC_MEM_FLAGS_USERPTR, 0);
      return 0;
    }
    const e = amdgpu_amdkfd_reserve_mem_limit(p.amdkfd, null, bytes, KFD_IOC_ALLOC_MEM_FLAGS_USERPTR, 0);
    if (!e) reserved_size += bytes;
    return e;
  };
  for (const prange of p.svms.list) {
    await svm_range_lock(prange);
    for (const pchild of prange.child_list) {
      r = charge(range_bytes(pchild));
      if (r) break;
    }
    if (!r) r = charge(range_bytes(prange));
    svm_range_unlock(prange);
    if (r) break;
  }
  if (r) amdgpu_amdkfd_unreserve_mem_limit(p.amdkfd, null, reserved_size, KFD_IOC_ALLOC_MEM_FLAGS_USERPTR, 0);
  else p.xnack_enabled = xnack_enabled;
  mutex_unlock(p.svms.lock);
  return r;
}

/**
 * svm_range_list_fini(): at process release. Stop restore_work, finish deferred work, drain
 * pending retry faults, then unlink, unregister and free every range.
 */
export async function svm_range_list_fini(p: kfd_process): Promise<void> {
  using _ = ftrace(p.k, "svm_range_list_fini");
  const wqs = p.amdkfd.wqs;
  await wqs.cancel_delayed_work_sync(p.svms.restore_work);
  await wqs.flush_work(p.svms.deferred_list_work);
  // No retry fault may come in afterwards: the handler would not find the process.
  atomic_inc(p.svms.drain_pagefaults);
  await svm_range_drain_retry_fault(p.svms);
  for (const prange of [...p.svms.list]) {
    svm_range_unlink(prange);
    await svm_range_remove_notifier(prange);
    svm_range_free(prange, true);
  }
}

export function svm_range_list_init(p: kfd_process): number {
  const svms = new svm_range_list(p);
  p.svms = svms;
  atomic_set(svms.evicted_ranges, 0);
  atomic_set(svms.drain_pagefaults, 0);
  INIT_DELAYED_WORK(svms.restore_work, () => svm_range_restore_work(svms), "svm_range_restore_work");
  INIT_WORK(svms.deferred_list_work, () => svm_range_deferred_list_work(svms), "svm_range_deferred_list_work");
  for (let i = 0; i < p.n_pdds; i++) if (KFD_IS_SVM_API_SUPPORTED(p.pdds[i]!.dev.adev)) bitmap_set(svms.bitmap_supported, i, 1);
  return 0;
}

/**
 * svm_range_is_valid(): every page of [start, start + size) (pages) lies in a VMA that is not
 * VM_IO/VM_PFNMAP/VM_MIXEDMAP (else -EFAULT), and no KFD BO mapping overlaps it (-EADDRINUSE).
 */
async function svm_range_is_valid(p: kfd_process, mm: mm_struct, start: number, size: number): Promise<number> {
  const device_vma = VM_IO | VM_PFNMAP | VM_MIXEDMAP;
  let s = start * PAGE_SIZE;
  const end = s + size * PAGE_SIZE;
  do {
    const vma = vma_lookup(mm, s);
    if (!vma || vma.vm_flags & device_vma) return -EFAULT;
    s = Math.min(end, vma.vm_end);
  } while (s < end);
  return svm_range_check_vm(p, start, Math.floor((end - 1) / PAGE_SIZE), null);
}

/**
 * svm_range_best_prefetch_location(): the prefetch location unless a GPU that must reach the
 * range (ACCESS_IN_PLACE with XNACK on; ACCESS or ACCESS_IN_PLACE with it off) is another
 * device outside the target's hive — then system memory.
 */
function svm_range_best_prefetch_location(prange: svm_range): number {
  const p = p_of(prange);
  let best_loc = prange.prefetch_loc;
  if (!best_loc || best_loc === KFD_IOCTL_SVM_LOCATION_UNDEFINED) return best_loc;
  const bo_node = svm_range_get_node_by_id(prange, best_loc);
  if (!bo_node) {
    p.k.WARN_ONCE(true, `failed to get valid kfd node at id${best_loc.toString(16)}`);
    return 0;
  }
  const bitmap = DECLARE_BITMAP();
  if (p.xnack_enabled) bitmap_copy(bitmap, prange.bitmap_aip);
  else bitmap_or(bitmap, prange.bitmap_access, prange.bitmap_aip);
  for (const gpuidx of for_each_set_bit(bitmap)) {
    const pdd = kfd_process_device_from_gpuidx(p, gpuidx);
    if (!pdd || pdd.dev.adev === bo_node.adev) continue;
    if (!svm_nodes_in_same_hive(pdd.dev, bo_node)) {
      best_loc = 0;
      break;
    }
  }
  return best_loc;
}

/**
 * svm_range_trigger_migration(): a prefetch moves the whole range to the best prefetch
 * location (even if actual_loc already names that GPU: only the system pages move).
 */
async function svm_range_trigger_migration(mm: mm_struct, prange: svm_range, migrated: { v: boolean }): Promise<number> {
  using _ = ftrace(mm.k, "svm_range_trigger_migration");
  migrated.v = false;
  const best_loc = svm_range_best_prefetch_location(prange);
  if (best_loc === KFD_IOCTL_SVM_LOCATION_UNDEFINED || (best_loc === 0 && prange.actual_loc === 0)) return 0;
  const migrate = p_of(prange).amdkfd.svm_migrate;
  // Without the migration code every page stays in system memory.
  if (!migrate) return 0;
  const r = best_loc === 0
    ? await migrate.svm_migrate_vram_to_ram(prange, mm, prange.start, prange.last, KFD_MIGRATE_TRIGGER_PREFETCH, null)
    : await migrate.svm_migrate_to_vram(prange, best_loc, prange.start, prange.last, mm, KFD_MIGRATE_TRIGGER_PREFETCH);
  migrated.v = !r;
  return r;
}

// ---- the attribute ioctl ---------------------------------------------------------------------

/**
 * svm_range_set_attr(): AMDKFD_IOC_SVM SET_ATTR on [start, start + size) (pages). Lock sequence:
 * process_info->lock → flush deferred work + mmap write lock → validity → svms->lock → overlap
 * resolution → apply (insert + register notifiers, update attributes, remove originals) →
 * mmap lock downgraded → per updated range under migrate_mutex: migrate for a prefetch and
 * validate+map as needed → per remap range: validate+map. Returns the last per-range error, or
 * the resolution error. No rollback: a failure can leave some ranges updated.
 */
async function svm_range_set_attr(p: kfd_process, mm: mm_struct, start: number, size: number, nattr: number, attrs: kfd_ioctl_svm_attribute_t[]): Promise<number> {
  using _ = ftrace(p.k, "svm_range_set_attr");
  const process_info = p.kgd_process_info;
  let r = svm_range_check_attr(p, nattr, attrs);
  if (r) return r;
  const svms = p.svms;
  await mutex_lock(process_info.lock);
  await svm_range_list_lock_and_flush_work(svms, mm);
  r = await svm_range_is_valid(p, mm, start, size);
  if (r) {
    mmap_write_unlock(mm);
    mutex_unlock(process_info.lock);
    return r;
  }
  await mutex_lock(svms.lock);
  const lists: svm_add_lists = { update_list: [], insert_list: [], remove_list: [], remap_list: [] };
  r = await svm_range_add(p, start, size, nattr, attrs, lists);
  if (r) {
    mutex_unlock(svms.lock);
    mmap_write_unlock(mm);
    mutex_unlock(process_info.lock);
    return r;
  }
  // Apply the changes as a transaction.
  for (const prange of lists.insert_list) {
    svm_range_add_to_svms(prange);
    await svm_range_add_notifier_locked(mm, prange);
  }
  const update = { mapping: false };
  // A GPU losing access keeps its PTEs until the next invalidation (a TODO in the kernel too).
  for (const prange of lists.update_list) svm_range_apply_attrs(p, prange, nattr, attrs, update);
  for (const prange of lists.remove_list) {
    svm_range_unlink(prange);
    await svm_range_remove_notifier(prange);
    svm_range_free(prange, false);
  }
  mmap_write_downgrade(mm);
  const ret = await svm_range_set_attr_map(p, mm, lists, update.mapping);
  svm_range_debug_check(svms);
  mutex_unlock(svms.lock);
  mmap_read_unlock(mm);
  mutex_unlock(process_info.lock);
  return ret;
}

/** Migrate and (re)map the updated and remapped ranges of a set_attr (mmap read lock, svms->lock). */
async function svm_range_set_attr_map(p: kfd_process, mm: mm_struct, lists: svm_add_lists, update_mapping: boolean): Promise<number> {
  let ret = 0;
  for (const prange of lists.update_list) {
    const migrated = { v: false };
    await mutex_lock(prange.migrate_mutex);
    let r = await svm_range_trigger_migration(mm, prange, migrated);
    if (!r) {
      const always = !p.xnack_enabled || (prange.flags & KFD_IOCTL_SVM_FLAG_GPU_ALWAYS_MAPPED) !== 0;
      // Evicted by the migration: restore_work remaps and resumes the queues.
      const restore_remaps = migrated.v && always && prange.mapped_to_gpu;
      if (!restore_remaps && (migrated.v || update_mapping)) {
        const flush_tlb = !migrated.v && update_mapping && prange.mapped_to_gpu;
        r = await svm_range_validate_and_map(mm, prange.start, prange.last, prange, MAX_GPU_INSTANCE, true, true, flush_tlb);
      }
    }
    mutex_unlock(prange.migrate_mutex);
    if (r) ret = r;
  }
  for (const prange of lists.remap_list) {
    await mutex_lock(prange.migrate_mutex);
    const r = await svm_range_validate_and_map(mm, prange.start, prange.last, prange, MAX_GPU_INSTANCE, true, true, prange.mapped_to_gpu);
    mutex_unlock(prange.migrate_mutex);
    if (r) ret = r;
  }
  return ret;
}

/**
 * svm_range_get_attr(): AMDKFD_IOC_SVM GET_ATTR. Folds the attributes of every range that
 * intersects the span (gaps are ignored): locations agree or read UNDEFINED, access bitmaps
 * intersect, SET_FLAGS is the AND and CLR_FLAGS the complement of the OR of the flags,
 * granularity the minimum. With no range at all: the defaults. An ACCESS query gets its type
 * rewritten to ACCESS / ACCESS_IN_PLACE / NO_ACCESS for the gpu_id in its value.
 */
async function svm_range_get_attr(p: kfd_process, mm: mm_struct, start: number, size: number, nattr: number, attrs: kfd_ioctl_svm_attribute_t[]): Promise<number> {
  using _ = ftrace(p.k, "svm_range_get_attr");
  const last = start + size - 1;
  const svms = p.svms;
  // Settle earlier munmaps first; a concurrent one is the application's race.
  await p.amdkfd.wqs.flush_work(svms.deferred_list_work);
  await mmap_read_lock(mm);
  const r = await svm_range_is_valid(p, mm, start, size);
  mmap_read_unlock(mm);
  if (r) return r;
  const want = { preferred: false, prefetch: false, access: false, flags: false, granularity: false };
  for (let i = 0; i < nattr; i++) {
    switch (attrs[i]!.type) {
      case KFD_IOCTL_SVM_ATTR_PREFERRED_LOC: want.preferred = true; break;
      case KFD_IOCTL_SVM_ATTR_PREFETCH_LOC: want.prefetch = true; break;
      case KFD_IOCTL_SVM_ATTR_ACCESS: want.access = true; break;
      case KFD_IOCTL_SVM_ATTR_SET_FLAGS:
      case KFD_IOCTL_SVM_ATTR_CLR_FLAGS: want.flags = true; break;
      case KFD_IOCTL_SVM_ATTR_GRANULARITY: want.granularity = true; break;
      default: return -EINVAL;
    }
  }
  const acc = DECLARE_BITMAP();
  const aip = DECLARE_BITMAP();
  const fold = { location: KFD_IOCTL_SVM_LOCATION_UNDEFINED, prefetch_loc: KFD_IOCTL_SVM_LOCATION_UNDEFINED, granularity: 0xff, flags_and: 0xffffffff, flags_or: 0 };
  await mutex_lock(svms.lock);
  let node = interval_tree_iter_first(svms.objects, start, last);
  if (!node) {
    const d = { preferred_loc: 0, prefetch_loc: 0, granularity: 0, flags: 0 };
    svm_range_set_default_attributes(d);
    fold.location = d.preferred_loc;
    fold.prefetch_loc = d.prefetch_loc;
    fold.granularity = d.granularity;
    fold.flags_and = fold.flags_or = d.flags;
    if (p.xnack_enabled) bitmap_copy(acc, svms.bitmap_supported);
  } else {
    bitmap_copy(acc, svms.bitmap_supported);
    bitmap_copy(aip, svms.bitmap_supported);
  }
  for (; node; node = interval_tree_iter_next(node, start, last)) {
    const prange = it_range(node);
    if (want.preferred) {
      if (prange.preferred_loc === KFD_IOCTL_SVM_LOCATION_UNDEFINED ||
          (fold.location !== KFD_IOCTL_SVM_LOCATION_UNDEFINED && fold.location !== prange.preferred_loc)) {
        fold.location = KFD_IOCTL_SVM_LOCATION_UNDEFINED;
        want.preferred = false;
      } else {
        fold.location = prange.preferred_loc;
      }
    }
    if (want.prefetch) {
      if (prange.prefetch_loc === KFD_IOCTL_SVM_LOCATION_UNDEFINED ||
          (fold.prefetch_loc !== KFD_IOCTL_SVM_LOCATION_UNDEFINED && fold.prefetch_loc !== prange.prefetch_loc)) {
        fold.prefetch_loc = KFD_IOCTL_SVM_LOCATION_UNDEFINED;
        want.prefetch = false;
      } else {
        fold.prefetch_loc = prange.prefetch_loc;
      }
    }
    if (want.access) {
      bitmap_and(acc, acc, prange.bitmap_access);
      bitmap_and(aip, aip, prange.bitmap_aip);
    }
    if (want.flags) {
      fold.flags_and = (fold.flags_and & prange.flags) >>> 0;
      fold.flags_or = (fold.flags_or | prange.flags) >>> 0;
    }
    if (want.granularity && prange.granularity < fold.granularity) fold.granularity = prange.granularity;
  }
  mutex_unlock(svms.lock);
  return svm_range_get_attr_fill(p, nattr, attrs, fold, acc, aip);
}

/** The fill_values part of svm_range_get_attr(); an unknown gpu_id stops it with -EINVAL. */
function svm_range_get_attr_fill(
  p: kfd_process, nattr: number, attrs: kfd_ioctl_svm_attribute_t[],
  fold: { location: number; prefetch_loc: number; granularity: number; flags_and: number; flags_or: number },
  acc: gpu_bitmap, aip: gpu_bitmap,
): number {
  for (let i = 0; i < nattr; i++) {
    const a = attrs[i]!;
    switch (a.type) {
      case KFD_IOCTL_SVM_ATTR_PREFERRED_LOC: a.value = fold.location; break;
      case KFD_IOCTL_SVM_ATTR_PREFETCH_LOC: a.value = fold.prefetch_loc; break;
      case KFD_IOCTL_SVM_ATTR_ACCESS: {
        const gpuidx = kfd_process_gpuidx_from_gpuid(p, a.value);
        if (gpuidx < 0) return -EINVAL;
        if (test_bit(gpuidx, acc)) a.type = KFD_IOCTL_SVM_ATTR_ACCESS;
        else if (test_bit(gpuidx, aip)) a.type = KFD_IOCTL_SVM_ATTR_ACCESS_IN_PLACE;
        else a.type = KFD_IOCTL_SVM_ATTR_NO_ACCESS;
        break;
      }
      case KFD_IOCTL_SVM_ATTR_SET_FLAGS: a.value = fold.flags_and; break;
      case KFD_IOCTL_SVM_ATTR_CLR_FLAGS: a.value = ~fold.flags_or >>> 0; break;
      case KFD_IOCTL_SVM_ATTR_GRANULARITY: a.value = fold.granularity; break;
    }
  }
  return 0;
}

/**
 * svm_ioctl(): bytes → pages and dispatch. An unknown op returns +EINVAL (positive 22): the
 * kernel's own quirk, kept.
 */
export async function svm_ioctl(p: kfd_process, op: number, start: number, size: number, nattrs: number, attrs: kfd_ioctl_svm_attribute_t[]): Promise<number> {
  const mm = p.k.current.mm as mm_struct;
  start = Math.floor(start / PAGE_SIZE);
  size = Math.floor(size / PAGE_SIZE);
  switch (op) {
    case KFD_IOCTL_SVM_OP_SET_ATTR:
      return svm_range_set_attr(p, mm, start, size, nattrs, attrs);
    case KFD_IOCTL_SVM_OP_GET_ATTR:
      return svm_range_get_attr(p, mm, start, size, nattrs, attrs);
    default:
      return EINVAL;
  }
}

// ---- debug-build invariant checks (amdkfd.md §6.2) ------------------------------------------------

/**
 * The data invariants a consistent range list keeps (svms->lock held, deferred work idle for the
 * ranges it looks at). kemu-only: the kernel has no such pass; tests switch it on with
 * amdkfd.svm_debug_checks and any violation WARNs (and so fails the machine's shutdown check).
 */
export function svm_range_debug_check(svms: svm_range_list): void {
  const p = svms.process;
  if (!p.amdkfd.svm_debug_checks) return;
  const k = p.k;
  let prev: svm_range | null = null;
  for (let n = interval_tree_iter_first(svms.objects, 0, Number.MAX_SAFE_INTEGER); n; n = interval_tree_iter_next(n, 0, Number.MAX_SAFE_INTEGER)) {
    const prange = it_range(n);
    // 1. top-level ranges never overlap; the tree and the list agree.
    k.WARN(prev !== null && prev.it_node.last >= n.start, `svm: ranges [0x${prev?.start.toString(16)} 0x${prev?.last.toString(16)}] and [0x${prange.start.toString(16)} 0x${prange.last.toString(16)}] overlap`);
    k.WARN(!svms.list.has(prange), `svm: range [0x${prange.start.toString(16)}] in the tree but not on svms->list`);
    svm_range_check_one(prange, svms);
    prev = prange;
  }
  k.WARN(svms.objects.count !== svms.list.size, "svm: svms->list and the interval tree disagree");
}

function svm_range_check_one(prange: svm_range, svms: svm_range_list): void {
  const k = svms.process.k;
  const name = `svm range [0x${prange.start.toString(16)} 0x${prange.last.toString(16)}]`;
  k.WARN(prange.npages !== prange.last - prange.start + 1, `${name}: npages ${prange.npages}`);
  // 2. it_node and the notifier interval match [start, last] unless a deferred op is pending.
  if (!prange.deferred_list) {
    const [ns, nl] = notifier_pages(prange);
    k.WARN(prange.it_node.start !== prange.start || prange.it_node.last !== prange.last, `${name}: stale it_node`);
    k.WARN(ns !== prange.start || nl !== prange.last, `${name}: notifier covers [0x${ns.toString(16)} 0x${nl.toString(16)}]`);
  }
  // 3. actual_loc needs the VRAM BO; 4. actual_loc == 0 iff vram_pages == 0.
  k.WARN(prange.actual_loc !== 0 && prange.ttm_res === null, `${name}: actual_loc without ttm_res`);
  k.WARN((prange.actual_loc === 0) !== (prange.vram_pages === 0), `${name}: actual_loc ${prange.actual_loc} vram_pages ${prange.vram_pages}`);
  // 7. per GPU, ACCESS and ACCESS_IN_PLACE exclude each other.
  for (let i = 0; i < MAX_GPU_INSTANCE; i++) {
    k.WARN(test_bit(i, prange.bitmap_access) && test_bit(i, prange.bitmap_aip), `${name}: gpu ${i} both ACCESS and ACCESS_IN_PLACE`);
  }
  // 1. children lie inside the parent's original span and outside the tree.
  for (const c of prange.child_list) {
    k.WARN(c.it_node.start !== 0 || c.it_node.last !== 0, `${name}: child in the tree`);
    k.WARN(c.start < prange.it_node.start || c.last > prange.it_node.last, `${name}: child outside the parent's span`);
  }
  for (const a of prange.dma_addr) k.WARN(a !== null && a.length !== prange.npages, `${name}: dma_addr array of ${a?.length} entries`);
}

// ---- KFD BO allocation check (used by kfd_chardev's ALLOC_MEMORY_OF_GPU; issue 10) ------------

/**
 * The SVM side of kfd_ioctl_alloc_memory_of_gpu(): -EADDRINUSE if any SVM range overlaps the
 * pages [start, last] a new KFD BO would take (deferred work flushed first, as the kernel does).
 */
export async function svm_range_check_bo_va(p: kfd_process, start: number, last: number): Promise<number> {
  const svms = p.svms;
  const mm = p.mm;
  if (!svms || !mm) return 0;
  await svm_range_list_lock_and_flush_work(svms, mm);
  await mutex_lock(svms.lock);
  mmap_write_unlock(mm);
  const busy = interval_tree_iter_first(svms.objects, start, last) !== null;
  mutex_unlock(svms.lock);
  if (busy) p.k.pr_err(`Address: 0x${(start * PAGE_SIZE).toString(16)} already allocated by SVM`);
  return busy ? -EADDRINUSE : 0;
}

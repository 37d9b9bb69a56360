// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_migrate.c (Linux 6.8): moving SVM ranges between system
// RAM and VRAM. VRAM is registered as a ZONE_DEVICE pagemap (device-private), so a range's VRAM
// pages are struct pages the core mm can unmap and migrate. RAM → VRAM: allocate the range's
// VRAM BO through TTM (svm_range_vram_node_new), then per VMA migrate_vma_setup (collect the CPU
// pages and unmap them; the MMU notifier unmaps the GPUs or evicts the queues), take device pages
// at the BO's offsets, DMA-map the system pages, copy with SDMA through a GART window
// (svm_migrate_copy_memory_gart), migrate_vma_pages, wait for the copy, migrate_vma_finalize.
// VRAM → RAM is the mirror image, and also the CPU fault handler (migrate_to_ram) of the pagemap.

import type { mm_struct, page, vm_area_struct } from "../../../../../include/linux/mm_types.ts";
import { PAGE_SIZE, VM_FAULT_SIGBUS, put_page, type vm_fault } from "../../../../../include/linux/mm.ts";
import { GFP_HIGHUSER, GFP_KERNEL } from "../../../../../include/linux/gfp_types.ts";
import { EDEADLK, EFAULT, ENODEV, ENOMEM, ENOSPC, ESRCH } from "../../../../../include/uapi/asm-generic/errno.ts";
import {
  KFD_IOC_ALLOC_MEM_FLAGS_VRAM, KFD_MIGRATE_TRIGGER_PAGEFAULT_CPU, KFD_MIGRATE_TRIGGER_TTM_EVICTION,
} from "../../../../../include/uapi/linux/kfd_ioctl.ts";
import { MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE, is_zone_device_page, range_len, type dev_pagemap_ops } from "../../../../../include/linux/memremap.ts";
import { zone_device_page_init } from "../../../../../mm/memremap.ts";
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM,
  migrate_pfn, migrate_pfn_to_page, migrate_vma, migrate_vma_finalize, migrate_vma_pages, migrate_vma_setup, mpfn_test,
} from "../../../../../mm/migrate_device.ts";
import { alloc_page_vma } from "../../../../../mm/page_alloc.ts";
import { lock_page, unlock_page } from "../../../../../mm/filemap.ts";
import { pfn_to_page, page_to_pfn } from "../../../../../mm/sparse.ts";
import { vma_lookup } from "../../../../../mm/mmap.ts";
import { mmget_not_zero, mmput } from "../../../../../kernel/fork.ts";
import { mutex_lock, mutex_lock_nested, mutex_unlock } from "../../../../../kernel/locking/mutex.ts";
import { DMA_BIDIRECTIONAL, dma_map_page, dma_mapping_error, type dma_addr_t } from "../../../../../kernel/dma/mapping.ts";
import {
  dma_fence_context_alloc, dma_fence_init, dma_fence_is_signaled, dma_fence_put, dma_fence_signal, dma_fence_wait, type dma_fence,
} from "../../../../dma-buf/dma-fence.ts";
import { dma_resv_add_fence, dma_resv_reserve_fences, dma_resv_usage } from "../../../../dma-buf/dma-resv.ts";
import { spinlock_t, spin_lock, spin_unlock } from "../../../../../kernel/locking/spinlock.ts";
import { INIT_WORK } from "../../../../../kernel/workqueue.ts";
import { mmap_read_lock, mmap_read_unlock } from "../../../../../include/linux/mmap_lock.ts";
import type { ttm_buffer_object } from "../../ttm/ttm_bo.ts";
import { kref_read } from "../../../../../include/linux/kref.ts";
import { ftrace } from "../../../../../include/linux/ftrace.ts";
import type { amdgpu_device } from "../amdgpu/amdgpu.ts";
import {
  AMDGPU_GTT_MAX_TRANSFER_SIZE, amdgpu_copy_buffer, amdgpu_ttm_domain_start, amdgpu_ttm_write_window_ptes,
} from "../amdgpu/amdgpu_ttm.ts";
import { amdgpu_gart_system_flags } from "../amdgpu/amdgpu_gart.ts";
import { amdgpu_res_cursor, amdgpu_res_first, amdgpu_res_next } from "../amdgpu/amdgpu_res_cursor.ts";
import {
  AMDGPU_GEM_CREATE_DISCARDABLE, AMDGPU_GEM_CREATE_NO_CPU_ACCESS, AMDGPU_GEM_CREATE_VRAM_CLEARED, AMDGPU_GEM_DOMAIN_VRAM,
  amdgpu_bo_create, amdgpu_bo_reserve, amdgpu_bo_sync_wait, amdgpu_bo_unreserve, amdgpu_bo_unref, ttm_to_amdgpu_bo, type amdgpu_bo,
} from "../amdgpu/amdgpu_object.ts";
import { amdgpu_amdkfd_reserve_mem_limit, amdgpu_amdkfd_unreserve_mem_limit } from "../amdgpu/amdgpu_amdkfd_gpuvm.ts";
import { ttm_bo_type } from "../../ttm/ttm_bo.ts";
import { TTM_PL_VRAM } from "../../../../../include/drm/ttm/ttm_placement.ts";
import type { ttm_resource } from "../../ttm/ttm_resource.ts";
import type { kfd_node, kfd_process } from "./kfd_priv.ts";
import type { amdkfd } from "./kfd_module.ts";
import { kfd_lookup_process_by_mm, kfd_process_device_from_gpuidx, kfd_process_gpuidx_from_gpuid, kfd_unref_process } from "./kfd_process.ts";
import { kfd_smi_event_migration_end, kfd_smi_event_migration_start } from "./kfd_smi_events.ts";
import {
  SVM_ADEV_PGMAP_OWNER, SVM_OP_UPDATE_RANGE_NOTIFIER, SVM_OP_UPDATE_RANGE_NOTIFIER_AND_MAP, schedule_deferred_list_work,
  svm_range_add_list_work, svm_range_bo, svm_range_bo_ref, svm_range_bo_unref, svm_range_bo_unref_async, svm_bo_ref_unless_zero,
  svm_range_dma_unmap_dev, svm_range_from_addr, svm_range_get_node_by_id, svm_range_vram_node_free, type svm_range,
} from "./kfd_svm.ts";

// ---- KFD_MIGRATE_TRIGGER_* and the copy direction ---------------------------------------------

/**
 * Bytes per page of the kvcalloc() buffer svm_migrate_vma_to_vram/_to_ram carve migrate.src,
 * migrate.dst and the scratch addresses from (two u64 migrate pfns, a u64, a dma_addr_t). kemu
 * accounts it as one kvcalloc (kmalloc, then the vmalloc fallback), which fault injection can fail.
 */
const SVM_MIGRATE_BUF_BYTES_PER_PAGE = 32;

/** sizeof(struct svm_range_bo) on x86-64 (6.8), for slab accounting. */
const SIZEOF_SVM_RANGE_BO = 168;
const FROM_RAM_TO_VRAM = 0;
const FROM_VRAM_TO_RAM = 1;

function p_of(prange: svm_range): kfd_process {
  return prange.svms.process;
}

/** svm_migrate_addr_to_pfn(): the device pfn of VRAM offset `addr`. */
function svm_migrate_addr_to_pfn(adev: amdgpu_device, addr: number): number {
  return Math.floor((addr + adev.kfd.pgmap.range.start) / PAGE_SIZE);
}

/** svm_migrate_addr(): the VRAM offset of a device page. */
function svm_migrate_addr(adev: amdgpu_device, p: page): number {
  return page_to_pfn(p) * PAGE_SIZE - adev.kfd.pgmap.range.start;
}

/** svm_migrate_direct_mapping_addr(): a VRAM offset as the MC address SDMA uses in VMID 0. */
function svm_migrate_direct_mapping_addr(adev: amdgpu_device, addr: number): number {
  return addr + amdgpu_ttm_domain_start(adev, TTM_PL_VRAM);
}

// ---- the VRAM BO of a range (svm_range_bo) -------------------------------------------------------

/**
 * svm_range_validate_svm_bo(): can the range keep its BO for `node`? Same node and still alive:
 * yes. Otherwise the range's reference goes (a BO on another GPU, or one being evicted).
 */
async function svm_range_validate_svm_bo(node: kfd_node, prange: svm_range): Promise<boolean> {
  await mutex_lock(prange.lock);
  const svm_bo = prange.svm_bo;
  if (!svm_bo || !prange.ttm_res) {
    mutex_unlock(prange.lock);
    return false;
  }
  if (svm_bo.node === node && !svm_bo.evicting && kref_read(svm_bo.kref) > 0) {
    mutex_unlock(prange.lock);
    return true;
  }
  mutex_unlock(prange.lock);
  spin_lock(svm_bo.list_lock);
  svm_bo.range_list.delete(prange);
  spin_unlock(svm_bo.list_lock);
  await svm_range_vram_node_free(prange);
  prange.svm_bo = null;
  return false;
}

/**
 * svm_range_vram_node_new(): a VRAM BO for the whole range (NO_CPU_ACCESS, DISCARDABLE, cleared
 * if asked), owned by the new svm_range_bo; the range holds the first reference at offset 0.
 */
export async function svm_range_vram_node_new(node: kfd_node, prange: svm_range, clear: boolean): Promise<number> {
  const k = node.adev.k;
  using _ = ftrace(k, "svm_range_vram_node_new");
  if (await svm_range_validate_svm_bo(node, prange)) {
    k.pr_debug(`kfd: reuse old bo svms 0x${prange.svms.process.pasid.toString(16)} [0x${prange.start.toString(16)} 0x${prange.last.toString(16)}]`);
    return 0;
  }
  const mm = prange.svms.process.mm;
  if (!mm) return -ESRCH;
  const bo = await amdgpu_bo_create(node.adev, {
    size: prange.npages * PAGE_SIZE, byte_align: PAGE_SIZE, domain: AMDGPU_GEM_DOMAIN_VRAM,
    flags: AMDGPU_GEM_CREATE_NO_CPU_ACCESS | AMDGPU_GEM_CREATE_DISCARDABLE | (clear ? AMDGPU_GEM_CREATE_VRAM_CLEARED : 0),
    type: ttm_bo_type.ttm_bo_type_device,
  });
  if (typeof bo === "number") {
    k.pr_debug(`kfd: failed ${bo} to create bo`);
    return bo;
  }
  // A VRAM-only BO may have landed in GTT: SVM needs device pages, so that is an allocation failure.
  if (bo.tbo.resource?.mem_type !== TTM_PL_VRAM) {
    amdgpu_bo_unref(bo);
    return -ENOMEM;
  }
  // svm_range_bo_new(): the struct is kzalloc'ed (the kernel does it before creating the BO).
  const slab = node.kfd.amdkfd.slab;
  const svm_bo = slab.kzalloc_obj(new svm_range_bo(k), SIZEOF_SVM_RANGE_BO, GFP_KERNEL, "svm_range_bo_new");
  if (!svm_bo) {
    k.pr_debug("kfd: failed to alloc svm bo");
    amdgpu_bo_unref(bo);
    return -ENOMEM;
  }
  svm_bo.bo = bo;
  svm_bo.node = node;
  svm_bo.mm = mm;
  svm_bo.resource = bo.tbo.resource;
  bo.owner = svm_bo;
  svm_range_bo_attach_fence(svm_bo, bo);
  await amdgpu_bo_reserve(bo, true);
  // The SDMA clear must be done before the GPU may map the pages (holes are never copied into).
  if (clear) {
    const w = await amdgpu_bo_sync_wait(bo);
    if (w) {
      amdgpu_bo_unreserve(bo);
      k.pr_debug(`kfd: failed ${w} to sync bo`);
      svm_bo.free_bo!();
      slab.kfree(svm_bo);
      return w;
    }
  }
  dma_resv_reserve_fences(bo.tbo.resv, 1);
  dma_resv_add_fence(bo.tbo.resv, svm_bo.eviction_fence!, dma_resv_usage.DMA_RESV_USAGE_BOOKKEEP);
  amdgpu_bo_unreserve(bo);
  await mutex_lock(prange.lock);
  prange.svm_bo = svm_bo;
  prange.ttm_res = bo.tbo.resource;
  prange.offset = 0;
  mutex_unlock(prange.lock);
  spin_lock(svm_bo.list_lock);
  svm_bo.range_list.add(prange);
  spin_unlock(svm_bo.list_lock);
  return 0;
}

// ---- eviction (VRAM pressure) ----------------------------------------------------------------------

/**
 * The svm_bo's eviction fence (amdgpu_amdkfd_fence_create): TTM waits on it before it may take
 * the BO's VRAM; asking it to signal (enable_signaling) starts the eviction worker, which moves
 * the ranges to RAM and then signals it. The BO is DISCARDABLE, so TTM then drops the VRAM.
 */
function svm_range_bo_attach_fence(svm_bo: svm_range_bo, bo: amdgpu_bo): void {
  const k = bo.adev.k;
  const lock = new spinlock_t(k, "&svm_bo->eviction_fence->lock");
  svm_bo.eviction_fence = dma_fence_init(k, {
    get_driver_name: () => "amdgpu_amdkfd_fence",
    get_timeline_name: () => "svm_range_bo",
    enable_signaling: () => {
      svm_range_schedule_evict_svm_bo(svm_bo);
      return true;
    },
  }, lock, dma_fence_context_alloc(k, 1), 0);
  svm_bo.free_bo = () => {
    const f = svm_bo.eviction_fence!;
    if (!dma_fence_is_signaled(f)) dma_fence_signal(f);
    dma_fence_put(f);
    amdgpu_bo_unref(bo);
  };
}

/** svm_range_schedule_evict_svm_bo(): TTM wants the VRAM; migrate the BO's ranges from a worker. */
function svm_range_schedule_evict_svm_bo(svm_bo: svm_range_bo): void {
  using _ = ftrace(svm_bo.node!.adev.k, "svm_range_schedule_evict_svm_bo");
  const node = svm_bo.node!;
  // A BO already being released has no ranges left: its fence signals on release.
  if (!svm_bo_ref_unless_zero(svm_bo)) return;
  svm_bo.evicting = 1;
  node.adev.k.pr_debug(`kfd: schedule eviction of svm_bo, ${svm_bo.range_list.size} ranges`);
  INIT_WORK(svm_bo.eviction_work, () => svm_range_evict_svm_bo_worker(svm_bo), "svm_range_evict_svm_bo_worker");
  node.kfd.amdkfd.wqs.schedule_work(svm_bo.eviction_work);
}

/**
 * svm_range_evict_svm_bo_worker(): every range on the BO back to RAM (three tries each), then
 * the eviction fence signals and TTM may discard the VRAM.
 */
async function svm_range_evict_svm_bo_worker(svm_bo: svm_range_bo): Promise<void> {
  const k = svm_bo.node!.adev.k;
  using _ = ftrace(k, "svm_range_evict_svm_bo_worker");
  const mm = svm_bo.mm;
  if (!mm || !mmget_not_zero(mm)) {
    dma_fence_signal(svm_bo.eviction_fence!);
    svm_range_bo_unref(svm_bo);
    return;
  }
  await mmap_read_lock(mm);
  let r = 0;
  spin_lock(svm_bo.list_lock);
  while (svm_bo.range_list.size && !r) {
    const prange = svm_bo.range_list.values().next().value as svm_range;
    svm_bo.range_list.delete(prange);
    spin_unlock(svm_bo.list_lock);
    await mutex_lock(prange.migrate_mutex);
    let retries = 3;
    do {
      r = await svm_migrate_vram_to_ram(prange, mm, prange.start, prange.last, KFD_MIGRATE_TRIGGER_TTM_EVICTION, null);
    } while (!r && prange.actual_loc && --retries);
    if (!r && prange.actual_loc) k.pr_info("kfd: Migration failed during eviction");
    if (!prange.actual_loc) {
      await mutex_lock(prange.lock);
      prange.svm_bo = null;
      mutex_unlock(prange.lock);
    }
    mutex_unlock(prange.migrate_mutex);
    spin_lock(svm_bo.list_lock);
  }
  spin_unlock(svm_bo.list_lock);
  mmap_read_unlock(mm);
  mmput(mm);
  dma_fence_signal(svm_bo.eviction_fence!);
  svm_range_bo_unref(svm_bo);
}

/**
 * The KFD part of amdgpu_ttm_bo_eviction_valuable(): a process never evicts its own SVM BOs
 * (amdkfd_fence_check_mm against current->mm) — it needs them resident to run.
 */
export function kfd_svm_bo_eviction_valuable(kfd: amdkfd, tbo: ttm_buffer_object): boolean {
  const svm_bo = ttm_to_amdgpu_bo(tbo)?.owner;
  if (!(svm_bo instanceof svm_range_bo)) return true;
  return svm_bo.mm !== kfd.k.current.mm;
}

// ---- device pages -----------------------------------------------------------------------------

/** svm_migrate_get_vram_page(): hand out a device page; it holds a reference on the svm_bo. */
function svm_migrate_get_vram_page(prange: svm_range, pfn: number): void {
  const p = pfn_to_page(p_of(prange).k, pfn);
  p.zone_device_data = svm_range_bo_ref(prange.svm_bo!);
  zone_device_page_init(p);
}

/** svm_migrate_put_vram_page(): give back a device page that never got mapped. */
function svm_migrate_put_vram_page(adev: amdgpu_device, addr: number): void {
  const p = pfn_to_page(adev.k, svm_migrate_addr_to_pfn(adev, addr));
  unlock_page(p);
  put_page(p);
}

/** svm_migrate_page_free(): the last reference to a VRAM page went; drop its svm_bo reference. */
function svm_migrate_page_free(p: page): void {
  using _ = ftrace(p.zone.zone_pgdat.k, "svm_migrate_page_free");
  const svm_bo = p.zone_device_data as svm_range_bo | null;
  p.zone_device_data = null;
  if (svm_bo) svm_range_bo_unref_async(svm_bo);
}

// ---- SDMA copy through GART ---------------------------------------------------------------------

/**
 * svm_migrate_gart_map(): map `addr` (system DMA addresses) into GART transfer window 0 with one
 * SDMA job; returns the window's GPU address. Read-only when the system pages are the source.
 */
async function svm_migrate_gart_map(adev: amdgpu_device, addr: readonly dma_addr_t[], readonly: boolean): Promise<number> {
  using _ = ftrace(adev.k, "svm_migrate_gart_map");
  const ring = adev.mman.buffer_funcs_ring!;
  const f = await amdgpu_ttm_write_window_ptes(adev, ring, 0, addr, amdgpu_gart_system_flags(adev, readonly));
  if (typeof f === "number") return f;
  dma_fence_put(f);
  return adev.gmc.gart_start;
}

/**
 * svm_migrate_copy_memory_gart(): copy `npages` pages between system pages `sys` and the VRAM
 * run starting at offset `vram0`, in batches of at most one GART window, under the window lock.
 * `mfence.f` ends up as the last copy's fence.
 */
async function svm_migrate_copy_memory_gart(adev: amdgpu_device, sys: dma_addr_t[], vram0: number, direction: number,
  mfence: { f: dma_fence | null }): Promise<number> {
  using _ = ftrace(adev.k, "svm_migrate_copy_memory_gart");
  const ring = adev.mman.buffer_funcs_ring!;
  let r = 0;
  await mutex_lock(adev.mman.gtt_window_lock);
  try {
    for (let done = 0; done < sys.length;) {
      const size = Math.min(AMDGPU_GTT_MAX_TRANSFER_SIZE, sys.length - done);
      const batch = sys.slice(done, done + size);
      const vram = svm_migrate_direct_mapping_addr(adev, vram0 + done * PAGE_SIZE);
      const gart = await svm_migrate_gart_map(adev, batch, direction === FROM_RAM_TO_VRAM);
      if (gart < 0) {
        r = gart;
        break;
      }
      const [src, dst] = direction === FROM_RAM_TO_VRAM ? [gart, vram] : [vram, gart];
      // vm_needs_flush: the window PTEs just changed, so the copy must not use stale GART translations.
      const next = await amdgpu_copy_buffer(ring, src, dst, size * PAGE_SIZE, null, true);
      if (typeof next === "number") {
        adev.k.dev_err(adev, `kfd: failed ${next} to copy memory`);
        r = next;
        break;
      }
      dma_fence_put(mfence.f);
      mfence.f = next;
      done += size;
    }
  } finally {
    mutex_unlock(adev.mman.gtt_window_lock);
  }
  return r;
}

/** svm_migrate_copy_done(): wait for the last SDMA copy (the data must be there before finalize). */
async function svm_migrate_copy_done(mfence: { f: dma_fence | null }): Promise<number> {
  if (!mfence.f) return 0;
  const r = await dma_fence_wait(mfence.f, false);
  dma_fence_put(mfence.f);
  mfence.f = null;
  return r < 0 ? r : 0;
}

/**
 * Batches copies into runs that are contiguous in VRAM; `flush` copies the pending run. kemu's
 * own helper for the j-counter loops of svm_migrate_copy_to_vram/_to_ram.
 */
class copy_batch {
  private sys: dma_addr_t[] = [];
  private vram0 = 0;
  constructor(readonly adev: amdgpu_device, readonly direction: number, readonly mfence: { f: dma_fence | null }) {}

  /** Whether `vram` does not continue the pending batch, which must be flushed first. */
  breaks_at(vram: number): boolean {
    return this.sys.length > 0 && vram !== this.vram0 + this.sys.length * PAGE_SIZE;
  }

  add(sys: dma_addr_t, vram: number): void {
    if (!this.sys.length) this.vram0 = vram;
    this.sys.push(sys);
  }

  async flush(): Promise<number> {
    if (!this.sys.length) return 0;
    const sys = this.sys;
    this.sys = [];
    return svm_migrate_copy_memory_gart(this.adev, sys, this.vram0, this.direction, this.mfence);
  }
}

// ---- RAM → VRAM -----------------------------------------------------------------------------------

/**
 * svm_migrate_copy_to_vram(): every collected page gets the device page at its place in the
 * range's BO (`ttm_res_offset` bytes in); system pages are DMA-mapped into `scratch` and copied.
 * On failure every device page handed out is given back (those pages stay in RAM).
 */
async function svm_migrate_copy_to_vram(node: kfd_node, prange: svm_range, migrate: migrate_vma, mfence: { f: dma_fence | null },
  scratch: dma_addr_t[], ttm_res_offset: number): Promise<number> {
  const adev = node.adev;
  const k = adev.k;
  using _ = ftrace(k, "svm_migrate_copy_to_vram");
  const npages = migrate.npages;
  const dst: number[] = new Array<number>(npages).fill(-1);
  const cursor = new amdgpu_res_cursor();
  amdgpu_res_first(prange.ttm_res as ttm_resource, ttm_res_offset, npages * PAGE_SIZE, cursor);
  const batch = new copy_batch(adev, FROM_RAM_TO_VRAM, mfence);
  let r = 0;
  for (let i = 0; i < npages && !r; i++) {
    const vram = cursor.start;
    if (i < npages - 1) amdgpu_res_next(cursor, PAGE_SIZE);
    if (!mpfn_test(migrate.src![i]!, MIGRATE_PFN_MIGRATE)) continue;
    dst[i] = vram;
    svm_migrate_get_vram_page(prange, svm_migrate_addr_to_pfn(adev, vram));
    migrate.dst![i] = migrate_pfn(svm_migrate_addr_to_pfn(adev, vram));
    const spage = migrate_pfn_to_page(k, migrate.src![i]!);
    // A hole: the cleared VRAM page is all it needs.
    if (!spage || is_zone_device_page(spage)) continue;
    scratch[i] = dma_map_page(adev.dev, spage, 0, PAGE_SIZE, DMA_BIDIRECTIONAL);
    if (dma_mapping_error(adev.dev, scratch[i]!)) {
      scratch[i] = 0;
      k.dev_err(adev, `kfd: fail ${-ENOMEM} dma_map_page`);
      r = -ENOMEM;
      break;
    }
    if (batch.breaks_at(vram)) r = await batch.flush();
    batch.add(scratch[i]!, vram);
  }
  if (!r) r = await batch.flush();
  if (r) {
    k.pr_debug(`kfd: failed ${r} to copy memory to vram`);
    for (let i = 0; i < npages; i++) {
      if (dst[i]! < 0) continue;
      svm_migrate_put_vram_page(adev, dst[i]!);
      migrate.dst![i] = 0;
    }
  }
  return r;
}

function svm_migrate_successful_pages(migrate: migrate_vma): number {
  let n = 0;
  for (let i = 0; i < migrate.npages; i++) {
    if (mpfn_test(migrate.dst![i]!, 1) && mpfn_test(migrate.src![i]!, MIGRATE_PFN_MIGRATE)) n++;
  }
  return n;
}

function svm_migrate_unsuccessful_pages(migrate: migrate_vma): number {
  let n = 0;
  for (let i = 0; i < migrate.npages; i++) {
    if (mpfn_test(migrate.src![i]!, 1) && !mpfn_test(migrate.src![i]!, MIGRATE_PFN_MIGRATE)) n++;
  }
  return n;
}

function new_migrate(vma: vm_area_struct, start: number, end: number, owner: unknown, flags: number): migrate_vma {
  const migrate = new migrate_vma();
  const npages = (end - start) / PAGE_SIZE;
  migrate.vma = vma;
  migrate.start = start;
  migrate.end = end;
  migrate.flags = flags;
  migrate.pgmap_owner = owner;
  migrate.src = new Array<number>(npages).fill(0);
  migrate.dst = new Array<number>(npages).fill(0);
  return migrate;
}

function pdd_of(prange: svm_range, node: kfd_node) {
  const p = p_of(prange);
  const idx = kfd_process_gpuidx_from_gpuid(p, node.id);
  return idx < 0 ? null : kfd_process_device_from_gpuidx(p, idx);
}

/**
 * svm_migrate_vma_to_vram(): one VMA piece. Returns the pages migrated or -errno. The notifier
 * (MMU_NOTIFY_MIGRATE, owner = this GPU) unmaps the GPUs or evicts the queues during setup.
 */
async function svm_migrate_vma_to_vram(node: kfd_node, prange: svm_range, vma: vm_area_struct, start: number, end: number,
  trigger: number, ttm_res_offset: number): Promise<number> {
  const adev = node.adev;
  const k = adev.k;
  const p = p_of(prange);
  using _ = ftrace(k, "svm_migrate_vma_to_vram");
  const npages = (end - start) / PAGE_SIZE;
  const slab = node.kfd.amdkfd.slab;
  const scratch = slab.kvcalloc_obj(new Array<dma_addr_t>(npages).fill(0), npages, SVM_MIGRATE_BUF_BYTES_PER_PAGE, GFP_KERNEL, "svm_migrate_vma_to_vram");
  if (!scratch) return -ENOMEM;
  const migrate = new_migrate(vma, start, end, SVM_ADEV_PGMAP_OWNER(adev), MIGRATE_VMA_SELECT_SYSTEM);
  const mfence: { f: dma_fence | null } = { f: null };
  kfd_smi_event_migration_start(node, p.lead_thread.pid, start / PAGE_SIZE, end / PAGE_SIZE, 0, node.id,
    prange.prefetch_loc, prange.preferred_loc, trigger);
  let r = await migrate_vma_setup(migrate);
  let mpages = 0;
  const cpages = migrate.cpages;
  if (r) {
    k.dev_err(adev, `kfd: failed ${r} prepare migrate svms 0x${p.pasid.toString(16)} [0x${prange.start.toString(16)} 0x${prange.last.toString(16)}]`);
  } else if (!cpages) {
    k.pr_debug("kfd: failed collect migrate sys pages");
  } else {
    k.pr_debug(cpages === npages ? `kfd: 0x${cpages.toString(16)} pages collected` : `kfd: partial migration, 0x${cpages.toString(16)}/0x${npages.toString(16)} pages collected`);
    r = await svm_migrate_copy_to_vram(node, prange, migrate, mfence, scratch, ttm_res_offset);
    await migrate_vma_pages(migrate);
    mpages = svm_migrate_successful_pages(migrate);
    k.pr_debug(`kfd: successful/cpages/npages 0x${mpages.toString(16)}/0x${cpages.toString(16)}/0x${npages.toString(16)}`);
    const w = await svm_migrate_copy_done(mfence);
    r ||= w;
    migrate_vma_finalize(migrate);
  }
  kfd_smi_event_migration_end(node, p.lead_thread.pid, start / PAGE_SIZE, end / PAGE_SIZE, 0, node.id, trigger);
  svm_range_dma_unmap_dev(adev.dev, scratch, 0, npages);
  slab.kfree(scratch);
  if (cpages) {
    const pdd = pdd_of(prange, node);
    if (pdd) pdd.page_in += cpages;
  }
  return r ? r : mpages;
}

/**
 * svm_migrate_ram_to_vram(): [start_mgr, last_mgr] (pages) of `prange` to the VRAM of GPU
 * `best_loc`, VMA by VMA, charged to KFD's VRAM limit while it runs.
 */
async function svm_migrate_ram_to_vram(prange: svm_range, best_loc: number, start_mgr: number, last_mgr: number, mm: mm_struct,
  trigger: number): Promise<number> {
  const node = svm_range_get_node_by_id(prange, best_loc);
  const p = p_of(prange);
  if (!node) {
    p.k.pr_debug(`kfd: failed to get kfd node by id 0x${best_loc.toString(16)}`);
    return -ENODEV;
  }
  using _ = ftrace(p.k, "svm_migrate_ram_to_vram");
  p.k.pr_debug(`kfd: svms 0x${p.pasid.toString(16)} [0x${start_mgr.toString(16)} 0x${last_mgr.toString(16)}] in [0x${prange.start.toString(16)} 0x${prange.last.toString(16)}] to gpu 0x${best_loc.toString(16)}`);
  const start = start_mgr * PAGE_SIZE;
  const end = (last_mgr + 1) * PAGE_SIZE;
  const size = end - start;
  let r = amdgpu_amdkfd_reserve_mem_limit(p.amdkfd, node.adev, size, KFD_IOC_ALLOC_MEM_FLAGS_VRAM, 0);
  if (r) {
    p.k.dev_dbg(node.adev, `kfd: failed to reserve VRAM, r: ${r}`);
    return -ENOSPC;
  }
  r = await svm_range_vram_node_new(node, prange, true);
  if (r) {
    p.k.dev_dbg(node.adev, `kfd: fail ${r} to alloc vram`);
    amdgpu_amdkfd_unreserve_mem_limit(p.amdkfd, node.adev, size, KFD_IOC_ALLOC_MEM_FLAGS_VRAM, 0);
    return r;
  }
  let ttm_res_offset = (start_mgr - prange.start + prange.offset) * PAGE_SIZE;
  let mpages = 0;
  for (let addr = start; addr < end;) {
    const vma = vma_lookup(mm, addr);
    if (!vma) break;
    const next = Math.min(vma.vm_end, end);
    const got = await svm_migrate_vma_to_vram(node, prange, vma, addr, next, trigger, ttm_res_offset);
    if (got < 0) {
      p.k.pr_debug(`kfd: failed ${got} to migrate`);
      r = got;
      break;
    }
    mpages += got;
    ttm_res_offset += next - addr;
    addr = next;
  }
  if (mpages) {
    prange.actual_loc = best_loc;
    prange.vram_pages += mpages;
  } else if (!prange.actual_loc) {
    // Nothing moved and nothing was in VRAM: the BO from svm_range_vram_node_new goes again.
    await svm_range_vram_node_free(prange);
  }
  amdgpu_amdkfd_unreserve_mem_limit(p.amdkfd, node.adev, size, KFD_IOC_ALLOC_MEM_FLAGS_VRAM, 0);
  return r < 0 ? r : 0;
}

// ---- VRAM → RAM -----------------------------------------------------------------------------------

/**
 * svm_migrate_copy_to_ram(): a system page for each collected device page, DMA-mapped into
 * `scratch` and copied from VRAM. Failure gives back every system page (data stays in VRAM).
 */
async function svm_migrate_copy_to_ram(adev: amdgpu_device, migrate: migrate_vma, mfence: { f: dma_fence | null },
  scratch: dma_addr_t[]): Promise<number> {
  const k = adev.k;
  using _ = ftrace(k, "svm_migrate_copy_to_ram");
  const batch = new copy_batch(adev, FROM_VRAM_TO_RAM, mfence);
  const given: page[] = [];
  let r = 0;
  for (let i = 0; i < migrate.npages && !r; i++) {
    const spage = migrate_pfn_to_page(k, migrate.src![i]!);
    if (!spage || !is_zone_device_page(spage) || !mpfn_test(migrate.src![i]!, MIGRATE_PFN_MIGRATE)) continue;
    const vram = svm_migrate_addr(adev, spage);
    const dpage = alloc_page_vma(GFP_HIGHUSER, migrate.vma!, migrate.start + i * PAGE_SIZE);
    if (!dpage) {
      k.pr_debug("kfd: failed get sys page");
      r = -ENOMEM;
      break;
    }
    await lock_page(dpage);
    given.push(dpage);
    scratch[i] = dma_map_page(adev.dev, dpage, 0, PAGE_SIZE, DMA_BIDIRECTIONAL);
    if (dma_mapping_error(adev.dev, scratch[i]!)) {
      scratch[i] = 0;
      k.dev_err(adev, `kfd: fail ${-ENOMEM} dma_map_page`);
      r = -ENOMEM;
      break;
    }
    migrate.dst![i] = migrate_pfn(page_to_pfn(dpage));
    if (batch.breaks_at(vram)) r = await batch.flush();
    batch.add(scratch[i]!, vram);
  }
  if (!r) r = await batch.flush();
  if (r) {
    k.pr_debug(`kfd: failed ${r} copy to ram`);
    migrate.dst!.fill(0);
    for (const dpage of given) {
      unlock_page(dpage);
      put_page(dpage);
    }
  }
  return r;
}

/** svm_migrate_vma_to_ram(): one VMA piece back to RAM; returns pages migrated or -errno. */
async function svm_migrate_vma_to_ram(node: kfd_node, prange: svm_range, vma: vm_area_struct, start: number, end: number,
  trigger: number, fault_page: page | null): Promise<number> {
  const adev = node.adev;
  const k = adev.k;
  const p = p_of(prange);
  using _ = ftrace(k, "svm_migrate_vma_to_ram");
  const npages = (end - start) / PAGE_SIZE;
  const select = adev.kfd.pgmap.type === MEMORY_DEVICE_COHERENT ? MIGRATE_VMA_SELECT_DEVICE_COHERENT : MIGRATE_VMA_SELECT_DEVICE_PRIVATE;
  const slab = node.kfd.amdkfd.slab;
  const scratch = slab.kvcalloc_obj(new Array<dma_addr_t>(npages).fill(0), npages, SVM_MIGRATE_BUF_BYTES_PER_PAGE, GFP_KERNEL, "svm_migrate_vma_to_ram");
  if (!scratch) return -ENOMEM;
  const migrate = new_migrate(vma, start, end, SVM_ADEV_PGMAP_OWNER(adev), select);
  migrate.fault_page = fault_page;
  const mfence: { f: dma_fence | null } = { f: null };
  kfd_smi_event_migration_start(node, p.lead_thread.pid, start / PAGE_SIZE, end / PAGE_SIZE, node.id, 0,
    prange.prefetch_loc, prange.preferred_loc, trigger);
  let r = await migrate_vma_setup(migrate);
  const cpages = migrate.cpages;
  let upages = 0;
  if (r) {
    k.dev_err(adev, `kfd: failed ${r} prepare migrate svms 0x${p.pasid.toString(16)} [0x${prange.start.toString(16)} 0x${prange.last.toString(16)}]`);
  } else if (!cpages) {
    k.pr_debug("kfd: failed collect migrate device pages");
  } else {
    r = await svm_migrate_copy_to_ram(adev, migrate, mfence, scratch);
    await migrate_vma_pages(migrate);
    upages = svm_migrate_unsuccessful_pages(migrate);
    k.pr_debug(`kfd: unsuccessful/cpages/npages 0x${upages.toString(16)}/0x${cpages.toString(16)}/0x${npages.toString(16)}`);
    const w = await svm_migrate_copy_done(mfence);
    r ||= w;
    migrate_vma_finalize(migrate);
  }
  kfd_smi_event_migration_end(node, p.lead_thread.pid, start / PAGE_SIZE, end / PAGE_SIZE, node.id, 0, trigger);
  svm_range_dma_unmap_dev(adev.dev, scratch, 0, npages);
  slab.kfree(scratch);
  if (cpages) {
    const pdd = pdd_of(prange, node);
    if (pdd) pdd.page_out += cpages;
  }
  return r ? r : cpages - upages;
}

/**
 * svm_migrate_vram_to_ram(): [start_mgr, last_mgr] back to system memory. When the range has
 * no VRAM page left its BO reference goes and actual_loc becomes 0.
 */
export async function svm_migrate_vram_to_ram(prange: svm_range, mm: mm_struct, start_mgr: number, last_mgr: number, trigger: number,
  fault_page: unknown): Promise<number> {
  const p = p_of(prange);
  if (!prange.actual_loc) {
    p.k.pr_debug(`kfd: [0x${prange.start.toString(16)} 0x${prange.last.toString(16)}] already migrated to ram`);
    return 0;
  }
  const node = svm_range_get_node_by_id(prange, prange.actual_loc);
  if (!node) {
    p.k.pr_debug(`kfd: failed to get kfd node by id 0x${prange.actual_loc.toString(16)}`);
    return -ENODEV;
  }
  using _ = ftrace(p.k, "svm_migrate_vram_to_ram");
  const start = start_mgr * PAGE_SIZE;
  const end = (last_mgr + 1) * PAGE_SIZE;
  let r = 0;
  let mpages = 0;
  for (let addr = start; addr < end;) {
    const vma = vma_lookup(mm, addr);
    if (!vma) {
      p.k.pr_debug("kfd: failed to find vma for prange");
      r = -EFAULT;
      break;
    }
    const next = Math.min(vma.vm_end, end);
    const got = await svm_migrate_vma_to_ram(node, prange, vma, addr, next, trigger, fault_page as page | null);
    if (got < 0) {
      p.k.pr_debug(`kfd: failed ${got} to migrate prange`);
      r = got;
      break;
    }
    mpages += got;
    addr = next;
  }
  if (r >= 0 && mpages) {
    prange.vram_pages -= mpages;
    // Every page is back in RAM: the range lets go of its BO.
    if (prange.vram_pages <= 0 && prange.ttm_res) {
      prange.vram_pages = 0;
      prange.actual_loc = 0;
      await svm_range_vram_node_free(prange);
    }
  }
  return r < 0 ? r : 0;
}

/**
 * svm_migrate_vram_to_vram(): between two GPUs through system memory (kemu has no XGMI or
 * large-BAR peer path): everything back to RAM (up to three tries), then to the new GPU.
 */
async function svm_migrate_vram_to_vram(prange: svm_range, best_loc: number, start: number, last: number, mm: mm_struct,
  trigger: number): Promise<number> {
  using _ = ftrace(mm.k, "svm_migrate_vram_to_vram");
  p_of(prange).k.pr_debug(`kfd: from gpu 0x${prange.actual_loc.toString(16)} to gpu 0x${best_loc.toString(16)}`);
  let retries = 3;
  do {
    const r = await svm_migrate_vram_to_ram(prange, mm, prange.start, prange.last, trigger, null);
    if (r) return r;
  } while (prange.actual_loc && --retries);
  if (prange.actual_loc) return -EDEADLK;
  return await svm_migrate_ram_to_vram(prange, best_loc, start, last, mm, trigger);
}

/** svm_migrate_to_vram(): the entry point for prefetch and GPU faults. */
export async function svm_migrate_to_vram(prange: svm_range, best_loc: number, start: number, last: number, mm: mm_struct,
  trigger: number): Promise<number> {
  using _ = ftrace(mm.k, "svm_migrate_to_vram");
  if (prange.actual_loc && prange.actual_loc !== best_loc) return await svm_migrate_vram_to_vram(prange, best_loc, start, last, mm, trigger);
  return await svm_migrate_ram_to_vram(prange, best_loc, start, last, mm, trigger);
}

// ---- the CPU fault handler --------------------------------------------------------------------------

/**
 * svm_migrate_to_ram(): a CPU access hit a VRAM page. The granularity window around it goes back
 * to RAM, then the deferred worker updates the notifier (and remaps the GPUs with XNACK on).
 * Not while this task is itself faulting pages in for GPU validation (it would recurse).
 */
async function svm_migrate_to_ram(vmf: vm_fault): Promise<number> {
  const svm_bo = vmf.page!.zone_device_data as svm_range_bo | null;
  const k = vmf.vma.vm_mm.k;
  let addr = vmf.address;
  if (!svm_bo) {
    k.pr_debug(`kfd: failed get device page at addr 0x${addr.toString(16)}`);
    return VM_FAULT_SIGBUS;
  }
  using _ = ftrace(k, "svm_migrate_to_ram");
  const mm = svm_bo.mm;
  if (!mm || !mmget_not_zero(mm)) {
    k.pr_debug(`kfd: addr 0x${addr.toString(16)} of process mm is destroyed`);
    return VM_FAULT_SIGBUS;
  }
  if (mm !== vmf.vma.vm_mm) k.pr_debug(`kfd: addr 0x${addr.toString(16)} is COW mapping in child process`);
  const p = kfd_lookup_process_by_mm(svm_bo.node!.kfd.amdkfd, mm);
  if (!p) {
    k.pr_debug(`kfd: failed find process at fault address 0x${addr.toString(16)}`);
    mmput(mm);
    return VM_FAULT_SIGBUS;
  }
  let r = 0;
  if (p.svms.faulting_task === k.current) {
    k.pr_debug("kfd: skipping ram migration");
  } else {
    addr = Math.floor(addr / PAGE_SIZE);
    r = await svm_migrate_to_ram_locked(p, mm, vmf, addr);
  }
  kfd_unref_process(p);
  mmput(mm);
  return r ? VM_FAULT_SIGBUS : 0;
}

async function svm_migrate_to_ram_locked(p: kfd_process, mm: mm_struct, vmf: vm_fault, addr: number): Promise<number> {
  using _ = ftrace(p.k, "svm_migrate_to_ram_locked");
  const k = p.k;
  await mutex_lock(p.svms.lock);
  const parent: { p: svm_range | null } = { p: null };
  const prange = svm_range_from_addr(p.svms, addr, parent);
  if (!prange) {
    k.pr_debug(`kfd: failed get range svms 0x${p.pasid.toString(16)} addr 0x${addr.toString(16)}`);
    mutex_unlock(p.svms.lock);
    return -EFAULT;
  }
  const top = parent.p!;
  await mutex_lock(top.migrate_mutex);
  if (prange !== top) await mutex_lock_nested(prange.migrate_mutex, 1);
  let r = 0;
  if (prange.actual_loc) {
    const size = 2 ** prange.granularity;
    const start = Math.max(Math.floor(addr / size) * size, prange.start);
    const last = Math.min(Math.floor(addr / size) * size + size - 1, prange.last);
    r = await svm_migrate_vram_to_ram(prange, vmf.vma.vm_mm, start, last, KFD_MIGRATE_TRIGGER_PAGEFAULT_CPU, vmf.page);
    if (r) k.pr_debug(`kfd: failed ${r} migrate svms 0x${p.pasid.toString(16)} [0x${start.toString(16)} 0x${last.toString(16)}]`);
    // XNACK on: the worker remaps the GPUs with ACCESS_IN_PLACE.
    const op = p.xnack_enabled && top === prange ? SVM_OP_UPDATE_RANGE_NOTIFIER_AND_MAP : SVM_OP_UPDATE_RANGE_NOTIFIER;
    svm_range_add_list_work(p.svms, top, mm, op);
    schedule_deferred_list_work(p.svms);
  }
  if (prange !== top) mutex_unlock(prange.migrate_mutex);
  mutex_unlock(top.migrate_mutex);
  mutex_unlock(p.svms.lock);
  return r;
}

// ---- the VRAM pagemap -----------------------------------------------------------------------------

const svm_migrate_pgmap_ops: dev_pagemap_ops = {
  page_free: svm_migrate_page_free,
  migrate_to_ram: svm_migrate_to_ram,
};

/**
 * kgd2kfd_init_zone_device(): register the GPU's VRAM as device memory — COHERENT where the
 * ASIC's VRAM is CPU-coherent (connected to the CPU over XGMI), else PRIVATE in a free physical
 * window of the same size. pfn ↔ VRAM offset: offset = pfn·4096 − pgmap.range.start.
 */
export async function kgd2kfd_init_zone_device(kfd: amdkfd, adev: amdgpu_device): Promise<number> {
  const k = adev.k;
  const pgmap = adev.kfd.pgmap;
  // Page migration needs GFX9 or newer; older GPUs keep SVM ranges in system memory.
  if (adev.ip_versions.gc[0] < 9) return 0;
  const size = adev.gmc.real_vram_size;
  // kemu models no CPU-coherent (XGMI-to-CPU) ASIC, so VRAM is always device-private here.
  const res = kfd.memremap.request_free_mem_region(size, "amdgpu_svm");
  if (typeof res === "number") return res;
  pgmap.range = { start: res.start, end: res.end };
  pgmap.type = MEMORY_DEVICE_PRIVATE;
  pgmap.nr_range = 1;
  pgmap.ops = svm_migrate_pgmap_ops;
  pgmap.owner = SVM_ADEV_PGMAP_OWNER(adev);
  const r = await kfd.memremap.memremap_pages(pgmap, 0);
  if (r < 0) {
    k.pr_err(`failed to register HMM device memory`);
    if (pgmap.type === MEMORY_DEVICE_PRIVATE) kfd.memremap.release_mem_region(pgmap.range.start, range_len(pgmap.range));
    pgmap.type = 0;
    return r;
  }
  k.dev_info(adev, `kfd: HMM registered ${Math.floor(size / (1024 * 1024))}MB device memory`);
  return 0;
}

/** The counterpart at device removal (devm in the kernel): unmap the pagemap, free the region. */
export async function kgd2kfd_fini_zone_device(kfd: amdkfd, adev: amdgpu_device): Promise<void> {
  const pgmap = adev.kfd.pgmap;
  if (!pgmap.type) return;
  await kfd.memremap.memunmap_pages(pgmap);
  if (pgmap.type === MEMORY_DEVICE_PRIVATE) kfd.memremap.release_mem_region(pgmap.range.start, range_len(pgmap.range));
  pgmap.type = 0;
}

/** The hooks kfd_svm.ts calls (amdkfd.svm_migrate). */
export const kfd_migrate_hooks = { svm_migrate_to_vram, svm_migrate_vram_to_ram };

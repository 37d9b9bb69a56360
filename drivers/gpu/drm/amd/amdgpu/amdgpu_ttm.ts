// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_ttm.c and amdgpu_ttm.h (Linux 6.8): amdgpu's TTM
// driver. It sets up the VRAM and GTT managers and the CPU's VRAM aperture (BAR0), binds GTT
// pages into the GART, decides where evicted BOs go, and moves BOs with the SDMA "buffer funcs"
// ring: amdgpu_ttm_copy_mem_to_mem() walks both resources in contiguous pieces (≤ 256 MiB),
// maps what has no GPU address into one of the two GART transfer windows (2 MiB each) with an
// SDMA job that copies PTEs into the GART table, and issues COPY_LINEAR packets through
// amdgpu_copy_buffer(). amdgpu_ttm_access_memory_sdma() is the debugger's one-page VRAM access.

import type { amdgpu_device } from "./amdgpu.ts";
import type { amdgpu_ring } from "./amdgpu_ring.ts";
import { amdgpu_ring_generic_pad_ib } from "./amdgpu_ring.ts";
import {
  amdgpu_bo_create_kernel, amdgpu_bo_free_kernel, amdgpu_bo_gpu_offset, amdgpu_bo_placement_from_domain, ttm_to_amdgpu_bo, amdgpu_bo_kunmap,
  AMDGPU_BO_INVALID_OFFSET, AMDGPU_GEM_CREATE_DISCARDABLE, AMDGPU_GEM_DOMAIN_CPU, AMDGPU_GEM_DOMAIN_GTT, type amdgpu_bo,
} from "./amdgpu_object.ts";
import { amdgpu_vm_bo_invalidate } from "./amdgpu_vm.ts";
import { amdgpu_vram_mgr_fini, amdgpu_vram_mgr_init, type amdgpu_vram_mgr } from "./amdgpu_vram_mgr.ts";
import { amdgpu_gtt_mgr_fini, amdgpu_gtt_mgr_init, amdgpu_gtt_mgr_has_gart_addr, type amdgpu_gtt_mgr } from "./amdgpu_gtt_mgr.ts";
import { amdgpu_res_first, amdgpu_res_next, amdgpu_res_cursor } from "./amdgpu_res_cursor.ts";
import { amdgpu_gart_bind, amdgpu_gart_map, amdgpu_gart_unbind } from "./amdgpu_gart.ts";
import { amdgpu_job_add_dependency, amdgpu_job_alloc_with_ib, amdgpu_job_submit, AMDGPU_FENCE_OWNER_UNDEFINED, type amdgpu_job } from "./amdgpu_job.ts";
import { amdgpu_ib_pool_type, type amdgpu_ib } from "./amdgpu_ib.ts";
import type { amdgpu_pte_flags, pte_sink } from "./amdgpu_gmc.ts";
import { amdgpu_gmc_pd_addr } from "./amdgpu_gmc.ts";
import { ttm_device, ttm_device_fini, ttm_device_init, type ttm_device_funcs } from "../../ttm/ttm_device.ts";
import { ttm_bo_move_null, ttm_bo_wait_ctx, ttm_bo_assign_mem, type ttm_buffer_object, type ttm_operation_ctx, ttm_bo_type } from "../../ttm/ttm_bo.ts";
import { ttm_bo_move_accel_cleanup, ttm_bo_move_memcpy } from "../../ttm/ttm_bo_util.ts";
import { ttm_resource_free, type ttm_resource } from "../../ttm/ttm_resource.ts";
import { ttm_caching, ttm_tt, ttm_tt_populate, ttm_tt_unpopulate, ttm_tt_init } from "../../ttm/ttm_tt.ts";
import {
  TTM_PL_FLAG_TEMPORARY, TTM_PL_SYSTEM, TTM_PL_TT, TTM_PL_VRAM, type ttm_place, type ttm_placement,
} from "../../../../../include/drm/ttm/ttm_placement.ts";
import { dma_fence_put, dma_fence_wait_timeout, type dma_fence } from "../../../../dma-buf/dma-fence.ts";
import { dma_resv_fences, dma_resv_usage, type dma_resv } from "../../../../dma-buf/dma-resv.ts";
import { mutex, mutex_lock, mutex_unlock } from "../../../../../kernel/locking/mutex.ts";
import { iosys_map_iomem, type iosys_map } from "../../../../../include/linux/iosys-map.ts";
import type { iomem } from "../../../../../include/asm-generic/io.ts";
import { pci_ioremap_bar } from "../../../../pci/pci.ts";
import { EACCES, EINVAL, EMULTIHOP, ENODEV, ETIMEDOUT } from "../../../../../include/uapi/asm-generic/errno.ts";
import { msecs_to_jiffies } from "../../../../../kernel/time/timekeeping.ts";
import { AMDGPU_PTE_SNOOPED, AMDGPU_PTE_SYSTEM, AMDGPU_PTE_READABLE, AMDGPU_PTE_VALID, AMDGPU_PTE_WRITEABLE, AMDGPU_PTE_EXECUTABLE, AMDGPU_GPU_PAGE_SIZE } from "../include/amdgpu_vm_pte.ts";
import { ftrace } from "../../../../../include/linux/ftrace.ts";

/** GART pages per transfer window (2 MiB) and the number of windows. */
export const AMDGPU_GTT_MAX_TRANSFER_SIZE = 512;
export const AMDGPU_GTT_NUM_TRANSFER_WINDOWS = 2;
/** Largest piece amdgpu_ttm_copy_mem_to_mem() copies in one job. */
const MAX_COPY_CHUNK = 256 * 1024 * 1024;
const PAGE_SIZE = 4096;

/** The SDMA block's packet builders for TTM (amdgpu_buffer_funcs). */
export interface amdgpu_buffer_funcs {
  copy_max_bytes: number;
  copy_num_dw: number;
  emit_copy_buffer(ib: amdgpu_ib, src_offset: number, dst_offset: number, byte_count: number, copy_flags: number): void;
  fill_max_bytes: number;
  fill_num_dw: number;
  emit_fill_buffer(ib: amdgpu_ib, src_data: number, dst_offset: number, byte_count: number): void;
}

/** struct amdgpu_copy_mem: a piece of a BO's resource. */
export interface amdgpu_copy_mem {
  bo: ttm_buffer_object;
  mem: ttm_resource;
  offset: number;
}

export class amdgpu_mman {
  bdev!: ttm_device;
  initialized = false;
  /** The CPU's mapping of the VRAM aperture (BAR0). */
  aper_base_kaddr: iomem | null = null;
  buffer_funcs: amdgpu_buffer_funcs | null = null;
  buffer_funcs_ring: amdgpu_ring | null = null;
  buffer_funcs_enabled = false;
  /** Serialises users of the GART transfer windows. */
  gtt_window_lock!: mutex;
  vram_mgr!: amdgpu_vram_mgr;
  gtt_mgr!: amdgpu_gtt_mgr;
  /** One-page GTT bounce buffer of amdgpu_ttm_access_memory_sdma(). */
  sdma_access_bo: amdgpu_bo | null = null;
  sdma_access_ptr: iosys_map | null = null;
}

/** amdgpu_ttm_domain_start(): where a memory type begins in VMID 0's address space. */
export function amdgpu_ttm_domain_start(adev: amdgpu_device, type: number): number {
  if (type === TTM_PL_TT) return adev.gmc.gart_start;
  if (type === TTM_PL_VRAM) return adev.gmc.vram_start;
  return 0;
}

/** amdgpu_ttm_tt_pte_flags(): PTE flags for GART mappings of a resource's system pages. */
export function amdgpu_ttm_tt_pte_flags(adev: amdgpu_device, mem: ttm_resource | null): amdgpu_pte_flags {
  let lo = AMDGPU_PTE_VALID | AMDGPU_PTE_READABLE | AMDGPU_PTE_WRITEABLE | AMDGPU_PTE_EXECUTABLE;
  if (mem && mem.mem_type !== TTM_PL_VRAM) lo |= AMDGPU_PTE_SYSTEM | AMDGPU_PTE_SNOOPED;
  return { lo: lo | adev.gart.gart_pte_flags.lo, hi: adev.gart.gart_pte_flags.hi };
}

// ---- tt backend ------------------------------------------------------------------------

/** amdgpu_ttm_backend_bind(): GART entries for the tt's pages at the resource's GART address. */
function amdgpu_ttm_backend_bind(adev: amdgpu_device, tt: ttm_tt, mem: ttm_resource): number {
  if (tt.bound) return 0;
  if (!tt.populated) return -EINVAL;
  if (!amdgpu_gtt_mgr_has_gart_addr(mem)) return 0;
  amdgpu_gart_bind(adev, mem.start * PAGE_SIZE, tt.num_pages, tt.dma_address, amdgpu_ttm_tt_pte_flags(adev, mem));
  tt.bound = true;
  tt_gart_start.set(tt, mem.start);
  return 0;
}

const tt_gart_start = new WeakMap<ttm_tt, number>();

function amdgpu_ttm_backend_unbind(adev: amdgpu_device, tt: ttm_tt): void {
  if (!tt.bound) return;
  amdgpu_gart_unbind(adev, tt_gart_start.get(tt)! * PAGE_SIZE, tt.num_pages);
  tt.bound = false;
}

/** amdgpu_ttm_alloc_gart(): a GTT BO's pages bound at its GART address (kernel BOs need it). */
export function amdgpu_ttm_alloc_gart(tbo: ttm_buffer_object): number {
  const res = tbo.resource;
  if (!res || res.mem_type !== TTM_PL_TT || !tbo.ttm) return 0;
  const adev = ttm_to_amdgpu_bo(tbo).adev;
  return amdgpu_ttm_backend_bind(adev, tbo.ttm, res);
}

// ---- the TTM driver callbacks -------------------------------------------------------------

/** amdgpu_evict_flags(): VRAM goes to GTT (then system), GTT to system; discardable BOs nowhere. */
function amdgpu_evict_flags(adev: amdgpu_device, bo: ttm_buffer_object, placement: ttm_placement): void {
  const abo = ttm_to_amdgpu_bo(bo);
  if (bo.type === ttm_bo_type.ttm_bo_type_sg || abo.flags & AMDGPU_GEM_CREATE_DISCARDABLE) return;
  if (bo.resource?.mem_type === TTM_PL_VRAM && adev.mman.buffer_funcs_enabled) {
    amdgpu_bo_placement_from_domain(abo, AMDGPU_GEM_DOMAIN_GTT | AMDGPU_GEM_DOMAIN_CPU);
    const places = abo.placement.placement;
    Object.assign(placement, { num_placement: places.length, placement: places, num_busy_placement: 1, busy_placement: [places[places.length - 1]!] });
    return;
  }
  amdgpu_bo_placement_from_domain(abo, AMDGPU_GEM_DOMAIN_CPU);
  Object.assign(placement, abo.placement);
}

/**
 * amdgpu_ttm_bo_eviction_valuable(): kernel BOs (page tables, rings) stay; KFD may veto BOs
 * that carry its fences through the hook it registers.
 */
function amdgpu_ttm_bo_eviction_valuable(adev: amdgpu_device, bo: ttm_buffer_object, place: ttm_place): boolean {
  if (bo.type === ttm_bo_type.ttm_bo_type_kernel) return false;
  const veto = adev.kfd?.eviction_valuable;
  return veto ? veto(bo, place) : true;
}

/** amdgpu_move_blit(): SDMA copies the whole BO to its new resource. */
async function amdgpu_move_blit(adev: amdgpu_device, bo: ttm_buffer_object, evict: boolean, new_mem: ttm_resource,
  old_mem: ttm_resource): Promise<number> {
  using _ = ftrace(adev.k, "amdgpu_move_blit");
  const f = await amdgpu_ttm_copy_mem_to_mem(adev, { bo, mem: old_mem, offset: 0 }, { bo, mem: new_mem, offset: 0 }, new_mem.size, bo.resv);
  if (typeof f === "number") return f;
  const r = await ttm_bo_move_accel_cleanup(bo, f, evict, bo.type !== ttm_bo_type.ttm_bo_type_kernel, new_mem);
  dma_fence_put(f);
  return r;
}

/**
 * amdgpu_bo_move_notify(): before the BO's backing changes, the VMs mapping it are told (their
 * PTEs go stale) and the kernel mapping of the old backing is dropped.
 */
function amdgpu_bo_move_notify(bo: ttm_buffer_object, evict: boolean): void {
  const abo = ttm_to_amdgpu_bo(bo);
  if (!abo) return;
  amdgpu_vm_bo_invalidate(abo, evict);
  amdgpu_bo_kunmap(abo);
}

/** amdgpu_bo_move(): null moves, GART (un)binding, multi-hop for system↔VRAM, SDMA blits. */
async function amdgpu_bo_move(adev: amdgpu_device, bo: ttm_buffer_object, evict: boolean, ctx: ttm_operation_ctx,
  new_mem: ttm_resource, hop: ttm_place): Promise<number> {
  using _ = ftrace(adev.k, "amdgpu_bo_move");
  const old_mem = bo.resource;
  if (new_mem.mem_type === TTM_PL_TT && bo.ttm) {
    const r = amdgpu_ttm_backend_bind(adev, bo.ttm, new_mem);
    if (r) return r;
  }
  amdgpu_bo_move_notify(bo, evict);
  if (!old_mem || (old_mem.mem_type === TTM_PL_SYSTEM && !bo.ttm?.populated)) {
    ttm_bo_move_null(bo, new_mem);
    return 0;
  }
  if (old_mem.mem_type === TTM_PL_SYSTEM && new_mem.mem_type === TTM_PL_TT) {
    ttm_bo_move_null(bo, new_mem);
    return 0;
  }
  if (old_mem.mem_type === TTM_PL_TT && new_mem.mem_type === TTM_PL_SYSTEM) {
    const r = await ttm_bo_wait_ctx(bo, ctx);
    if (r) return r;
    if (bo.ttm) amdgpu_ttm_backend_unbind(adev, bo.ttm);
    ttm_resource_free(bo, bo.resource);
    ttm_bo_assign_mem(bo, new_mem);
    return 0;
  }
  if (adev.mman.buffer_funcs_enabled &&
    ((old_mem.mem_type === TTM_PL_SYSTEM && new_mem.mem_type === TTM_PL_VRAM) ||
      (old_mem.mem_type === TTM_PL_VRAM && new_mem.mem_type === TTM_PL_SYSTEM))) {
    Object.assign(hop, { fpfn: 0, lpfn: 0, mem_type: TTM_PL_TT, flags: TTM_PL_FLAG_TEMPORARY });
    return -EMULTIHOP;
  }
  let r = adev.mman.buffer_funcs_enabled ? await amdgpu_move_blit(adev, bo, evict, new_mem, old_mem) : -ENODEV;
  if (r) r = await ttm_bo_move_memcpy(bo, ctx, new_mem);
  if (!r && old_mem.mem_type === TTM_PL_TT && bo.ttm && new_mem.mem_type !== TTM_PL_TT) amdgpu_ttm_backend_unbind(adev, bo.ttm);
  return r;
}

/** amdgpu_ttm_io_mem_reserve(): VRAM is reachable through BAR0 (all of it: a large BAR). */
function amdgpu_ttm_io_mem_reserve(_adev: amdgpu_device, res: ttm_resource): number {
  if (res.mem_type === TTM_PL_VRAM) {
    res.bus.offset = res.start * PAGE_SIZE;
    res.bus.is_iomem = true;
    return 0;
  }
  if (res.mem_type === TTM_PL_SYSTEM || res.mem_type === TTM_PL_TT) return 0;
  return -EINVAL;
}

/** CPU mapping of [offset, offset+size) of a VRAM resource, which must not cross a block. */
function amdgpu_ttm_io_mem_map(adev: amdgpu_device, res: ttm_resource, offset: number, size: number): iosys_map | null {
  if (res.mem_type !== TTM_PL_VRAM || !adev.mman.aper_base_kaddr) return null;
  const cur = new amdgpu_res_cursor();
  amdgpu_res_first(res, offset, size, cur);
  if (cur.size < size) return null;
  return new iosys_map_iomem(adev.mman.aper_base_kaddr, cur.start, size);
}

function amdgpu_bo_driver(adev: amdgpu_device): ttm_device_funcs {
  return {
    ttm_tt_create: (bo) => ttm_tt_init(bo, 0, ttm_caching.ttm_cached),
    ttm_tt_populate: (bdev, tt, bo) => ttm_tt_populate(bo, tt, bdev.dev),
    ttm_tt_unpopulate: (bdev, tt, bo) => {
      amdgpu_ttm_backend_unbind(adev, tt);
      ttm_tt_unpopulate(bo, tt, bdev.dev);
    },
    ttm_tt_destroy: (_bdev, tt) => amdgpu_ttm_backend_unbind(adev, tt),
    eviction_valuable: (bo, place) => amdgpu_ttm_bo_eviction_valuable(adev, bo, place),
    evict_flags: (bo, placement) => amdgpu_evict_flags(adev, bo, placement),
    move: (bo, evict, ctx, new_mem, hop) => amdgpu_bo_move(adev, bo, evict, ctx, new_mem, hop),
    io_mem_reserve: (_bdev, res) => amdgpu_ttm_io_mem_reserve(adev, res),
    io_mem_map: (_bo, res, offset, size) => amdgpu_ttm_io_mem_map(adev, res, offset, size),
  };
}

// ---- init / fini ------------------------------------------------------------------------

/**
 * amdgpu_ttm_init(): the TTM device, the VRAM manager over all VRAM, BAR0 mapped for the CPU,
 * the GTT manager (GTT limit: three quarters of system RAM, at most the GART space).
 */
export function amdgpu_ttm_init(adev: amdgpu_device): number {
  const mman = adev.mman;
  mman.bdev = new ttm_device(adev.k, adev.wq, amdgpu_bo_driver(adev), adev.dev);
  mman.gtt_window_lock = new mutex(adev.k, "&adev->mman.gtt_window_lock");
  let r = ttm_device_init(mman.bdev);
  if (r) return r;
  mman.initialized = true;
  r = amdgpu_vram_mgr_init(adev);
  if (r) {
    adev.k.pr_err("[drm] *ERROR* Failed initializing VRAM heap.");
    return r;
  }
  const aper = pci_ioremap_bar(adev.pdev, 0);
  mman.aper_base_kaddr = typeof aper === "number" ? null : aper;
  adev.k.pr_info(`[drm] amdgpu: ${Math.floor(adev.gmc.real_vram_size / 2 ** 20)}M of VRAM memory ready`);
  const ram = adev.pdev.bus.host.ram_size;
  const gtt_size = Math.min(Math.floor((ram * 3) / 4 / PAGE_SIZE) * PAGE_SIZE, adev.gmc.gart_size);
  r = amdgpu_gtt_mgr_init(adev, gtt_size);
  if (r) {
    adev.k.pr_err("[drm] *ERROR* Failed initializing GTT heap.");
    return r;
  }
  adev.k.pr_info(`[drm] amdgpu: ${Math.floor(gtt_size / 2 ** 20)}M of GTT memory ready.`);
  return 0;
}

/** amdgpu_ttm_fini(): managers and the TTM device go. */
export async function amdgpu_ttm_fini(adev: amdgpu_device): Promise<void> {
  const mman = adev.mman;
  if (!mman.initialized) return;
  if (mman.sdma_access_bo) amdgpu_bo_free_kernel(mman.sdma_access_bo);
  mman.sdma_access_bo = null;
  // Delayed BO destruction runs on the TTM workqueue: let it finish before the managers go.
  await adev.wq.flush_workqueue(mman.bdev.wq);
  amdgpu_vram_mgr_fini(adev);
  amdgpu_gtt_mgr_fini(adev);
  await ttm_device_fini(mman.bdev);
  mman.initialized = false;
}

/**
 * amdgpu_ttm_set_buffer_funcs_status(): SDMA moves on (after the ring test) or off; on first
 * enable the one-page bounce buffer for debugger accesses is created.
 */
export async function amdgpu_ttm_set_buffer_funcs_status(adev: amdgpu_device, enable: boolean): Promise<void> {
  const mman = adev.mman;
  if (!mman.initialized) return;
  mman.buffer_funcs_enabled = enable && !!mman.buffer_funcs_ring?.sched.ready;
  if (mman.buffer_funcs_enabled && !mman.sdma_access_bo) {
    const k = await amdgpu_bo_create_kernel(adev, PAGE_SIZE, PAGE_SIZE, AMDGPU_GEM_DOMAIN_GTT);
    if (typeof k !== "number") {
      mman.sdma_access_bo = k.bo;
      mman.sdma_access_ptr = k.cpu;
    }
  }
}

// ---- SDMA copies and fills ------------------------------------------------------------------

/** amdgpu_ttm_prepare_job(): a job on the buffer funcs ring, after the reservation's fences. */
async function amdgpu_ttm_prepare_job(adev: amdgpu_device, num_dw: number, resv: dma_resv | null, vm_needs_flush: boolean): Promise<amdgpu_job | number> {
  const job = await amdgpu_job_alloc_with_ib(adev, adev.mman.buffer_funcs_ring, AMDGPU_FENCE_OWNER_UNDEFINED, num_dw * 4,
    amdgpu_ib_pool_type.AMDGPU_IB_POOL_DELAYED);
  if (typeof job === "number") return job;
  if (vm_needs_flush) {
    job.vm_pd_addr = amdgpu_gmc_pd_addr(adev, adev.gart.bo!);
    job.vm_needs_flush = true;
  }
  if (resv) for (const f of dma_resv_fences(resv, dma_resv_usage.DMA_RESV_USAGE_BOOKKEEP)) amdgpu_job_add_dependency(job, f);
  return job;
}

/**
 * amdgpu_copy_buffer(): COPY_LINEAR packets (≤ copy_max_bytes each) from `src_offset` to
 * `dst_offset` in VMID 0. Returns the job's fence (the caller puts it) or -errno.
 */
export async function amdgpu_copy_buffer(ring: amdgpu_ring, src_offset: number, dst_offset: number, byte_count: number,
  resv: dma_resv | null, vm_needs_flush: boolean, copy_flags = 0): Promise<dma_fence | number> {
  using _ = ftrace(ring.adev.k, "amdgpu_copy_buffer");
  const adev = ring.adev;
  const funcs = adev.mman.buffer_funcs;
  if (!adev.mman.buffer_funcs_enabled || !funcs) {
    adev.k.pr_err("[drm] *ERROR* Trying to move memory with ring turned off.");
    return -EINVAL;
  }
  const num_loops = Math.ceil(byte_count / funcs.copy_max_bytes);
  const num_dw = Math.ceil((num_loops * funcs.copy_num_dw) / 8) * 8;
  const job = await amdgpu_ttm_prepare_job(adev, num_dw, resv, vm_needs_flush);
  if (typeof job === "number") return job;
  const ib = job.ibs[0]!;
  for (let i = 0; i < num_loops; i++) {
    const cur = Math.min(byte_count, funcs.copy_max_bytes);
    funcs.emit_copy_buffer(ib, src_offset, dst_offset, cur, copy_flags);
    src_offset += cur;
    dst_offset += cur;
    byte_count -= cur;
  }
  amdgpu_ring_generic_pad_ib(ring, ib);
  adev.k.WARN_ON(ib.length_dw > num_dw);
  return await amdgpu_job_submit(job);
}

/**
 * amdgpu_ttm_map_buffer(): the GPU address of the cursor's piece. Resources with a GPU address
 * are used directly; others have up to one window's worth of pages mapped into `window` by an
 * SDMA job that writes the PTEs into the GART table. Returns [address, bytes covered].
 */
async function amdgpu_ttm_map_buffer(adev: amdgpu_device, bo: ttm_buffer_object, mem: ttm_resource, cur: amdgpu_res_cursor,
  window: number, ring: amdgpu_ring, size: number): Promise<[number, number] | number> {
  if (mem.start !== AMDGPU_BO_INVALID_OFFSET && mem.mem_type !== TTM_PL_SYSTEM) {
    return [amdgpu_ttm_domain_start(adev, mem.mem_type) + cur.start, size];
  }
  const offset = cur.start % PAGE_SIZE;
  const num_pages = Math.min(Math.ceil((size + offset) / PAGE_SIZE), AMDGPU_GTT_MAX_TRANSFER_SIZE);
  size = Math.min(size, num_pages * PAGE_SIZE - offset);
  const addr = adev.gmc.gart_start + window * AMDGPU_GTT_MAX_TRANSFER_SIZE * AMDGPU_GPU_PAGE_SIZE + offset;
  const first = Math.floor(cur.start / PAGE_SIZE);
  const dma = bo.ttm?.dma_address.slice(first, first + num_pages) ?? [];
  if (dma.length !== num_pages || dma.some((a) => !a)) return -EINVAL;
  const f = await amdgpu_ttm_write_window_ptes(adev, ring, window, dma, amdgpu_ttm_tt_pte_flags(adev, mem));
  if (typeof f === "number") return f;
  dma_fence_put(f);
  return [addr, size];
}

/**
 * Writes the PTEs for `dma_addr` into GART transfer window `window` with one SDMA job: the PTE
 * values ride in the IB after the commands and a COPY_LINEAR moves them into the table (what
 * amdgpu_ttm_map_buffer and KFD's svm_migrate_gart_map do). Returns the job's fence.
 */
/** The GART entries a window-mapping job carries in its IB, after `base_dw` dwords of packets. */
class ib_pte_sink implements pte_sink {
  constructor(private readonly ptr: Uint32Array, private readonly base_dw: number) {}
  wr32(off: number, v: number): void {
    this.ptr[this.base_dw + off / 4] = v >>> 0;
  }
}

export async function amdgpu_ttm_write_window_ptes(adev: amdgpu_device, ring: amdgpu_ring, window: number,
  dma_addr: readonly number[], flags: amdgpu_pte_flags): Promise<dma_fence | number> {
  const funcs = adev.mman.buffer_funcs!;
  const num_pages = dma_addr.length;
  const num_dw = Math.ceil(funcs.copy_num_dw / 8) * 8;
  const num_bytes = num_pages * 8;
  const job = await amdgpu_job_alloc_with_ib(adev, ring, AMDGPU_FENCE_OWNER_UNDEFINED, num_dw * 4 + num_bytes,
    amdgpu_ib_pool_type.AMDGPU_IB_POOL_DELAYED);
  if (typeof job === "number") return job;
  const ib = job.ibs[0]!;
  const src_addr = ib.gpu_addr + num_dw * 4;
  const dst_addr = amdgpu_bo_gpu_offset(adev.gart.bo!) + window * AMDGPU_GTT_MAX_TRANSFER_SIZE * 8;
  funcs.emit_copy_buffer(ib, src_addr, dst_addr, num_bytes, 0);
  amdgpu_ring_generic_pad_ib(ring, ib);
  adev.k.WARN_ON(ib.length_dw > num_dw);
  amdgpu_gart_map(adev, 0, num_pages, dma_addr, flags, new ib_pte_sink(ib.ptr, num_dw));
  return amdgpu_job_submit(job);
}

/**
 * amdgpu_ttm_copy_mem_to_mem(): copies `size` bytes between two resources in contiguous
 * pieces of at most 256 MiB, mapping system memory into windows 0 (source) and 1 (destination)
 * under the window lock. Returns the last copy's fence or -errno.
 */
export async function amdgpu_ttm_copy_mem_to_mem(adev: amdgpu_device, src: amdgpu_copy_mem, dst: amdgpu_copy_mem, size: number,
  resv: dma_resv | null): Promise<dma_fence | number> {
  using _ = ftrace(adev.k, "amdgpu_ttm_copy_mem_to_mem");
  const ring = adev.mman.buffer_funcs_ring;
  if (!adev.mman.buffer_funcs_enabled || !ring) {
    adev.k.pr_err("[drm] *ERROR* Trying to move memory with ring turned off.");
    return -EINVAL;
  }
  const src_mm = new amdgpu_res_cursor();
  const dst_mm = new amdgpu_res_cursor();
  amdgpu_res_first(src.mem, src.offset, size, src_mm);
  amdgpu_res_first(dst.mem, dst.offset, size, dst_mm);
  let fence: dma_fence | null = null;
  await mutex_lock(adev.mman.gtt_window_lock);
  try {
    while (src_mm.remaining) {
      let cur_size = Math.min(src_mm.size, dst_mm.size, MAX_COPY_CHUNK);
      const from = await amdgpu_ttm_map_buffer(adev, src.bo, src.mem, src_mm, 0, ring, cur_size);
      if (typeof from === "number") return from;
      cur_size = from[1];
      const to = await amdgpu_ttm_map_buffer(adev, dst.bo, dst.mem, dst_mm, 1, ring, cur_size);
      if (typeof to === "number") return to;
      cur_size = to[1];
      const next = await amdgpu_copy_buffer(ring, from[0], to[0], cur_size, resv, true);
      if (typeof next === "number") return next;
      dma_fence_put(fence);
      fence = next;
      amdgpu_res_next(src_mm, cur_size);
      amdgpu_res_next(dst_mm, cur_size);
    }
  } finally {
    mutex_unlock(adev.mman.gtt_window_lock);
  }
  return fence ?? -EINVAL;
}

/** amdgpu_fill_buffer(): fills the whole BO with the dword `src_data` (CONST_FILL packets). */
export async function amdgpu_fill_buffer(bo: amdgpu_bo, src_data: number, resv: dma_resv | null): Promise<dma_fence | number> {
  using _ = ftrace(bo.adev.k, "amdgpu_fill_buffer");
  const adev = bo.adev;
  const ring = adev.mman.buffer_funcs_ring;
  const funcs = adev.mman.buffer_funcs;
  if (!adev.mman.buffer_funcs_enabled || !ring || !funcs) {
    adev.k.pr_err("[drm] *ERROR* Trying to clear memory with ring turned off.");
    return -EINVAL;
  }
  const dst = new amdgpu_res_cursor();
  amdgpu_res_first(bo.tbo.resource, 0, bo.tbo.base_size, dst);
  let fence: dma_fence | null = null;
  await mutex_lock(adev.mman.gtt_window_lock);
  try {
    while (dst.remaining) {
      const want = Math.min(dst.size, MAX_COPY_CHUNK);
      const to = await amdgpu_ttm_map_buffer(adev, bo.tbo, bo.tbo.resource!, dst, 1, ring, want);
      if (typeof to === "number") return to;
      const [addr, cur_size] = to;
      const num_loops = Math.ceil(cur_size / funcs.fill_max_bytes);
      const num_dw = Math.ceil((num_loops * funcs.fill_num_dw) / 8) * 8;
      const job = await amdgpu_ttm_prepare_job(adev, num_dw, resv, true);
      if (typeof job === "number") return job;
      for (let done = 0; done < cur_size; done += funcs.fill_max_bytes) {
        funcs.emit_fill_buffer(job.ibs[0]!, src_data, addr + done, Math.min(funcs.fill_max_bytes, cur_size - done));
      }
      amdgpu_ring_generic_pad_ib(ring, job.ibs[0]!);
      const next = await amdgpu_job_submit(job);
      if (typeof next === "number") return next;
      dma_fence_put(fence);
      fence = next;
      amdgpu_res_next(dst, cur_size);
    }
  } finally {
    mutex_unlock(adev.mman.gtt_window_lock);
  }
  return fence ?? -EINVAL;
}

/**
 * amdgpu_ttm_access_memory_sdma(): reads or writes up to one page of a VRAM BO at `offset`
 * through the GTT bounce buffer with one SDMA copy. 0, -EACCES (no bounce buffer), -ETIMEDOUT.
 */
export async function amdgpu_ttm_access_memory_sdma(bo: amdgpu_bo, offset: number, buf: Uint8Array, write: boolean): Promise<number> {
  const adev = bo.adev;
  const mman = adev.mman;
  const ring = mman.buffer_funcs_ring;
  if (!mman.sdma_access_ptr || !mman.sdma_access_bo || !ring || !mman.buffer_funcs) return -EACCES;
  if (buf.length > PAGE_SIZE || offset + buf.length > bo.tbo.base_size) return -EINVAL;
  if (write) mman.sdma_access_ptr.memcpy_to(0, buf);
  const num_dw = Math.ceil(mman.buffer_funcs.copy_num_dw / 8) * 8;
  const job = await amdgpu_job_alloc_with_ib(adev, ring, AMDGPU_FENCE_OWNER_UNDEFINED, num_dw * 4, amdgpu_ib_pool_type.AMDGPU_IB_POOL_DELAYED);
  if (typeof job === "number") return job;
  const cur = new amdgpu_res_cursor();
  amdgpu_res_first(bo.tbo.resource, offset, buf.length, cur);
  let src = amdgpu_ttm_domain_start(adev, bo.tbo.resource!.mem_type) + cur.start;
  let dst = amdgpu_bo_gpu_offset(mman.sdma_access_bo);
  if (write) [src, dst] = [dst, src];
  mman.buffer_funcs.emit_copy_buffer(job.ibs[0]!, src, dst, buf.length, 0);
  amdgpu_ring_generic_pad_ib(ring, job.ibs[0]!);
  const f = await amdgpu_job_submit(job);
  if (typeof f === "number") return f;
  const left = await dma_fence_wait_timeout(f, false, msecs_to_jiffies(adev.sdma_timeout_ms));
  dma_fence_put(f);
  if (left === 0) return -ETIMEDOUT;
  if (!write) mman.sdma_access_ptr.memcpy_from(buf, 0, buf.length);
  return 0;
}

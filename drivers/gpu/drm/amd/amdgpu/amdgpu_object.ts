// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_object.c and amdgpu_object.h (Linux 6.8): amdgpu
// buffer objects on top of TTM. A BO has preferred and allowed domains (VRAM, GTT, CPU) turned
// into TTM placements, creation flags, a kernel mapping, and a parent (page-table hierarchy).
// amdgpu_bo_create_kernel() is the kernel's one-call helper: create, pin, GART-bind, map.

import type { amdgpu_device } from "./amdgpu.ts";
import {
  ttm_bo_get, ttm_bo_init_reserved, ttm_bo_pin, ttm_bo_put, ttm_bo_reserve, ttm_bo_unpin, ttm_bo_unreserve,
  ttm_bo_validate, ttm_buffer_object, ttm_bo_type, type ttm_operation_ctx,
} from "../../ttm/ttm_bo.ts";
import { ttm_bo_kmap } from "../../ttm/ttm_bo_util.ts";
import {
  TTM_PL_FLAG_CONTIGUOUS, TTM_PL_FLAG_TOPDOWN, TTM_PL_SYSTEM, TTM_PL_TT, TTM_PL_VRAM, type ttm_place, type ttm_placement,
} from "../../../../../include/drm/ttm/ttm_placement.ts";
import type { dma_resv } from "../../../../dma-buf/dma-resv.ts";
import { dma_resv_add_fence, dma_resv_reserve_fences, dma_resv_usage } from "../../../../dma-buf/dma-resv.ts";
import type { amdgpu_bo_va } from "./amdgpu_vm.ts";
import type { iosys_map } from "../../../../../include/linux/iosys-map.ts";
import { EINVAL, ENOMEM, ENOSPC, ERESTARTSYS } from "../../../../../include/uapi/asm-generic/errno.ts";
import { dma_fence_put, dma_fence_wait, type dma_fence } from "../../../../dma-buf/dma-fence.ts";
import { amdgpu_fill_buffer, amdgpu_ttm_alloc_gart } from "./amdgpu_ttm.ts";

export const AMDGPU_GEM_DOMAIN_CPU = 0x1;
export const AMDGPU_GEM_DOMAIN_GTT = 0x2;
export const AMDGPU_GEM_DOMAIN_VRAM = 0x4;

export const AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED = 1 << 0;
export const AMDGPU_GEM_CREATE_NO_CPU_ACCESS = 1 << 1;
export const AMDGPU_GEM_CREATE_CPU_GTT_USWC = 1 << 2;
export const AMDGPU_GEM_CREATE_VRAM_CLEARED = 1 << 3;
export const AMDGPU_GEM_CREATE_VRAM_CONTIGUOUS = 1 << 5;
export const AMDGPU_GEM_CREATE_VM_ALWAYS_VALID = 1 << 6;
export const AMDGPU_GEM_CREATE_EXPLICIT_SYNC = 1 << 7;
export const AMDGPU_GEM_CREATE_VRAM_WIPE_ON_RELEASE = 1 << 9;
export const AMDGPU_GEM_CREATE_DISCARDABLE = 1 << 12;

/** The offset of a resource that has no address in its domain (AMDGPU_BO_INVALID_OFFSET). */
export const AMDGPU_BO_INVALID_OFFSET = Number.MAX_SAFE_INTEGER;

export interface amdgpu_bo_param {
  size: number;
  byte_align: number;
  domain: number;
  preferred_domain?: number;
  flags: number;
  type: ttm_bo_type;
  resv?: dma_resv | null;
  no_wait_gpu?: boolean;
}

export class amdgpu_bo {
  readonly tbo: ttm_buffer_object;
  placement: ttm_placement = { num_placement: 0, placement: [], num_busy_placement: 0, busy_placement: [] };
  preferred_domains = 0;
  allowed_domains = 0;
  flags = 0;
  kmap: iosys_map | null = null;
  parent: amdgpu_bo | null = null;
  /** Driver-private back pointer (the VM of a page-table BO, an svm_range_bo, ...). */
  owner: unknown = null;
  /** The VMs this BO takes part in (amdgpu_vm_bo_base list). */
  readonly vm_bos: amdgpu_bo_va[] = [];

  constructor(
    readonly adev: amdgpu_device,
    type: ttm_bo_type,
    size: number,
  ) {
    this.tbo = new ttm_buffer_object(adev.mman.bdev, type, size);
    bo_of.set(this.tbo, this);
  }
}

const bo_of = new WeakMap<ttm_buffer_object, amdgpu_bo>();

/** ttm_to_amdgpu_bo() */
export function ttm_to_amdgpu_bo(tbo: ttm_buffer_object): amdgpu_bo {
  return bo_of.get(tbo)!;
}

export function amdgpu_bo_size(bo: amdgpu_bo): number {
  return bo.tbo.base_size;
}

export function amdgpu_bo_ref(bo: amdgpu_bo): amdgpu_bo {
  ttm_bo_get(bo.tbo);
  return bo;
}

export function amdgpu_bo_unref(bo: amdgpu_bo | null): void {
  if (bo) ttm_bo_put(bo.tbo);
}

/** amdgpu_bo_placement_from_domain(): VRAM, then GTT, then CPU places for the allowed domains. */
export function amdgpu_bo_placement_from_domain(abo: amdgpu_bo, domain: number): void {
  const places: ttm_place[] = [];
  const flags = abo.flags;
  if (domain & AMDGPU_GEM_DOMAIN_VRAM) {
    let f = 0;
    if (flags & AMDGPU_GEM_CREATE_VRAM_CONTIGUOUS) f |= TTM_PL_FLAG_CONTIGUOUS;
    // Kernel BOs and BOs the CPU never touches go top-down, away from the CPU-visible start.
    if (!(flags & AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED)) f |= TTM_PL_FLAG_TOPDOWN;
    places.push({ fpfn: 0, lpfn: 0, mem_type: TTM_PL_VRAM, flags: f });
  }
  if (domain & AMDGPU_GEM_DOMAIN_GTT) places.push({ fpfn: 0, lpfn: 0, mem_type: TTM_PL_TT, flags: 0 });
  if (domain & AMDGPU_GEM_DOMAIN_CPU) places.push({ fpfn: 0, lpfn: 0, mem_type: TTM_PL_SYSTEM, flags: 0 });
  if (!places.length) places.push({ fpfn: 0, lpfn: 0, mem_type: TTM_PL_SYSTEM, flags: 0 });
  abo.placement = { num_placement: places.length, placement: places, num_busy_placement: places.length, busy_placement: places };
}

/**
 * amdgpu_bo_create(): a BO validated into its preferred domain (falling back to the allowed
 * ones), returned unreserved unless a shared reservation was passed. VRAM_CLEARED BOs in VRAM
 * are cleared by SDMA before they are returned.
 */
export async function amdgpu_bo_create(adev: amdgpu_device, bp: amdgpu_bo_param): Promise<amdgpu_bo | number> {
  const page_align = Math.max(1, Math.ceil(bp.byte_align / 4096));
  const size = Math.ceil(bp.size / 4096) * 4096;
  if (size <= 0) return -EINVAL;
  const bo = new amdgpu_bo(adev, bp.type, size);
  bo.preferred_domains = bp.preferred_domain ?? bp.domain;
  bo.allowed_domains = bo.preferred_domains;
  if (bo.allowed_domains === AMDGPU_GEM_DOMAIN_VRAM && bp.type !== ttm_bo_type.ttm_bo_type_kernel) {
    bo.allowed_domains |= AMDGPU_GEM_DOMAIN_GTT;
  }
  bo.flags = bp.flags;
  amdgpu_bo_placement_from_domain(bo, bo.preferred_domains);
  const ctx: ttm_operation_ctx = { interruptible: bp.type !== ttm_bo_type.ttm_bo_type_kernel, no_wait_gpu: !!bp.no_wait_gpu, resv: bp.resv ?? null };
  let r = await ttm_bo_init_reserved(bo.tbo, bo.placement, page_align, ctx, bp.resv ?? null, () => {});
  if (r && bo.preferred_domains !== bp.domain) {
    // The preferred domain is full: retry with everything allowed (amdgpu_gem_object_create).
    return amdgpu_bo_create(adev, { ...bp, preferred_domain: bp.domain });
  }
  if (r) return r;
  if (bp.flags & AMDGPU_GEM_CREATE_VRAM_CLEARED && bo.tbo.resource?.mem_type === TTM_PL_VRAM) {
    const f = await amdgpu_fill_buffer(bo, 0, bo.tbo.resv);
    if (typeof f === "number") r = f;
    else {
      amdgpu_bo_fence(bo, f, false);
      dma_fence_put(f);
    }
  }
  if (!bp.resv) ttm_bo_unreserve(bo.tbo);
  if (r) {
    amdgpu_bo_unref(bo);
    return r;
  }
  return bo;
}

export async function amdgpu_bo_reserve(bo: amdgpu_bo, no_intr: boolean): Promise<number> {
  const r = await ttm_bo_reserve(bo.tbo, !no_intr, false);
  if (r && r !== -ERESTARTSYS) bo.adev.k.dev_err(bo.adev, `${r} reserve failed`);
  return r;
}

export function amdgpu_bo_unreserve(bo: amdgpu_bo): void {
  ttm_bo_unreserve(bo.tbo);
}

/** amdgpu_bo_pin(): validates into `domain` and pins; GTT BOs also get their GART address. */
export async function amdgpu_bo_pin(bo: amdgpu_bo, domain: number): Promise<number> {
  if (bo.tbo.pin_count) {
    ttm_bo_pin(bo.tbo);
    return 0;
  }
  amdgpu_bo_placement_from_domain(bo, domain & bo.allowed_domains || domain);
  const r = await ttm_bo_validate(bo.tbo, bo.placement, { interruptible: false, no_wait_gpu: false });
  if (r) {
    bo.adev.k.dev_err(bo.adev, `${bo.tbo.base_size} pin failed`);
    return r;
  }
  ttm_bo_pin(bo.tbo);
  return 0;
}

export function amdgpu_bo_unpin(bo: amdgpu_bo): void {
  ttm_bo_unpin(bo.tbo);
}

/** amdgpu_bo_validate(): moves an unpinned BO back into its preferred domain. */
export async function amdgpu_bo_validate(bo: amdgpu_bo): Promise<number> {
  if (bo.tbo.pin_count) return 0;
  amdgpu_bo_placement_from_domain(bo, bo.preferred_domains);
  let r = await ttm_bo_validate(bo.tbo, bo.placement, { interruptible: true, no_wait_gpu: false });
  if (r === -ENOSPC && bo.allowed_domains !== bo.preferred_domains) {
    amdgpu_bo_placement_from_domain(bo, bo.allowed_domains);
    r = await ttm_bo_validate(bo.tbo, bo.placement, { interruptible: true, no_wait_gpu: false });
  }
  return r;
}

/** amdgpu_bo_kmap(): a kernel mapping of the whole BO (VRAM must be contiguous). */
export function amdgpu_bo_kmap(bo: amdgpu_bo): iosys_map | number {
  if (bo.flags & AMDGPU_GEM_CREATE_NO_CPU_ACCESS) return -EINVAL;
  if (bo.kmap) return bo.kmap;
  const m = ttm_bo_kmap(bo.tbo, 0, Math.ceil(bo.tbo.base_size / 4096));
  if (typeof m === "number") return m;
  bo.kmap = m;
  return m;
}

export function amdgpu_bo_kunmap(bo: amdgpu_bo): void {
  bo.kmap = null;
}

/** amdgpu_bo_gpu_offset(): the BO's address in VMID 0 (frame-buffer aperture or GART). */
export function amdgpu_bo_gpu_offset(bo: amdgpu_bo): number {
  const res = bo.tbo.resource;
  const adev = bo.adev;
  if (!res) return AMDGPU_BO_INVALID_OFFSET;
  if (res.mem_type === TTM_PL_VRAM) return adev.gmc.vram_start + res.start * 4096;
  if (res.mem_type === TTM_PL_TT) return res.start === AMDGPU_BO_INVALID_OFFSET ? res.start : adev.gmc.gart_start + res.start * 4096;
  return AMDGPU_BO_INVALID_OFFSET;
}

/** amdgpu_bo_fence(): adds `fence` to the BO's reservation (shared = read, else write). */
export function amdgpu_bo_fence(bo: amdgpu_bo, fence: dma_fence, shared: boolean): void {
  if (dma_resv_reserve_fences(bo.tbo.resv, 1)) return;
  dma_resv_add_fence(bo.tbo.resv, fence, shared ? dma_resv_usage.DMA_RESV_USAGE_READ : dma_resv_usage.DMA_RESV_USAGE_WRITE);
}

export interface amdgpu_kernel_bo {
  bo: amdgpu_bo;
  gpu_addr: number;
  cpu: iosys_map;
}

/**
 * amdgpu_bo_create_reserved(): a kernel BO — contiguous in VRAM, pinned, bound in the GART if
 * in GTT, kernel-mapped — left reserved.
 */
export async function amdgpu_bo_create_reserved(adev: amdgpu_device, size: number, align: number, domain: number): Promise<amdgpu_kernel_bo | number> {
  const bp: amdgpu_bo_param = {
    size, byte_align: align, domain, type: ttm_bo_type.ttm_bo_type_kernel,
    flags: AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED | AMDGPU_GEM_CREATE_VRAM_CONTIGUOUS,
  };
  const bo = await amdgpu_bo_create(adev, bp);
  if (typeof bo === "number") {
    adev.k.dev_err(adev, `(${bo}) failed to allocate kernel bo`);
    return bo;
  }
  let r = await amdgpu_bo_reserve(bo, false);
  if (!r) r = await amdgpu_bo_pin(bo, domain);
  if (!r) r = amdgpu_ttm_alloc_gart(bo.tbo);
  const cpu = r ? r : amdgpu_bo_kmap(bo);
  if (typeof cpu === "number") {
    if (bo.tbo.pin_count) amdgpu_bo_unpin(bo);
    amdgpu_bo_unreserve(bo);
    amdgpu_bo_unref(bo);
    adev.k.dev_err(adev, `(${cpu}) kernel bo setup failed`);
    return cpu || -ENOMEM;
  }
  return { bo, gpu_addr: amdgpu_bo_gpu_offset(bo), cpu };
}

/** amdgpu_bo_create_kernel(): amdgpu_bo_create_reserved() and unreserve. */
export async function amdgpu_bo_create_kernel(adev: amdgpu_device, size: number, align: number, domain: number): Promise<amdgpu_kernel_bo | number> {
  const k = await amdgpu_bo_create_reserved(adev, size, align, domain);
  if (typeof k === "number") return k;
  amdgpu_bo_unreserve(k.bo);
  return k;
}

/**
 * amdgpu_bo_free_kernel(): unmaps, unpins and drops a kernel BO. Called where the reservation
 * cannot be taken (teardown from sync code): kemu unpins without it.
 */
export function amdgpu_bo_free_kernel(bo: amdgpu_bo): void {
  amdgpu_bo_kunmap(bo);
  if (bo.tbo.pin_count) bo.tbo.pin_count--;
  amdgpu_bo_unref(bo);
}

/** Waits for every fence of the BO (amdgpu_bo_sync_wait). */
export async function amdgpu_bo_sync_wait(bo: amdgpu_bo): Promise<number> {
  for (const e of [...bo.tbo.resv.fences]) {
    const r = await dma_fence_wait(e.fence, false);
    if (r) return r;
  }
  return 0;
}

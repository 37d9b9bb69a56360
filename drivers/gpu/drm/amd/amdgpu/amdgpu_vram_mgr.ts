// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_vram_mgr.c (Linux 6.8): the VRAM resource manager on
// a drm_buddy allocator with 4 KiB chunks. A non-contiguous request is allocated in pieces of
// at most 2 GiB, each with a 2 MiB minimum block when the piece is a 2 MiB multiple (else page
// granularity, or the BO's alignment); contiguous requests ask the buddy for one block (trimmed
// to the size); fpfn/lpfn limits become a range allocation, TOPDOWN and VRAM_CLEARED pass
// through. A full allocator returns -ENOSPC, which makes TTM evict and retry.
// kemu runs the allocator without the manager's mutex: nothing in it sleeps, and one context
// runs at a time, so it cannot be interleaved.

import type { amdgpu_device } from "./amdgpu.ts";
import {
  drm_buddy, drm_buddy_alloc_blocks, drm_buddy_block_size, drm_buddy_fini, drm_buddy_free_list, drm_buddy_init,
  drm_buddy_print, DRM_BUDDY_CLEAR_ALLOCATION, DRM_BUDDY_CLEARED, DRM_BUDDY_CONTIGUOUS_ALLOCATION,
  DRM_BUDDY_RANGE_ALLOCATION, DRM_BUDDY_TOPDOWN_ALLOCATION, type drm_buddy_block,
} from "../../drm_buddy.ts";
import {
  ttm_resource, ttm_resource_manager, ttm_resource_manager_init, ttm_resource_manager_set_used,
} from "../../ttm/ttm_resource.ts";
import { ttm_set_driver_manager } from "../../ttm/ttm_device.ts";
import type { ttm_buffer_object } from "../../ttm/ttm_bo.ts";
import { TTM_PL_FLAG_CONTIGUOUS, TTM_PL_FLAG_TOPDOWN, TTM_PL_VRAM, type ttm_place } from "../../../../../include/drm/ttm/ttm_placement.ts";
import { ttm_to_amdgpu_bo, AMDGPU_GEM_CREATE_VRAM_CLEARED } from "./amdgpu_object.ts";

const PAGE_SIZE = 4096;
const SZ_2M = 2 * 1024 * 1024;
const SZ_2G = 2 * 1024 * 1024 * 1024;

/** struct amdgpu_vram_mgr_resource: the resource and its buddy blocks. */
export class amdgpu_vram_mgr_resource extends ttm_resource {
  blocks: drm_buddy_block[] = [];
  flags = 0;
}

export class amdgpu_vram_mgr {
  readonly manager: ttm_resource_manager;
  readonly mm = new drm_buddy();
  default_page_size = PAGE_SIZE;
  constructor(adev: amdgpu_device) {
    this.manager = new ttm_resource_manager(adev.mman.bdev);
  }
}

export function amdgpu_vram_mgr_block_start(block: drm_buddy_block): number {
  return block.offset;
}

function blocks_contiguous(mm: drm_buddy, blocks: drm_buddy_block[]): boolean {
  const sorted = [...blocks].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i - 1]!.offset + drm_buddy_block_size(mm, sorted[i - 1]!) !== sorted[i]!.offset) return false;
  }
  return true;
}

/** amdgpu_vram_mgr_new(): a VRAM resource for `tbo` satisfying `place`. */
function amdgpu_vram_mgr_new(adev: amdgpu_device, man: ttm_resource_manager, tbo: ttm_buffer_object, place: ttm_place): ttm_resource | number {
  const mgr = adev.mman.vram_mgr;
  const mm = mgr.mm;
  const lpfn = place.lpfn || man.size / PAGE_SIZE;
  const fpfn = place.fpfn;
  const contiguous = (place.flags & TTM_PL_FLAG_CONTIGUOUS) !== 0;
  const vres = new amdgpu_vram_mgr_resource(tbo, TTM_PL_VRAM, tbo.base_size, place.flags);
  if (place.flags & TTM_PL_FLAG_TOPDOWN) vres.flags |= DRM_BUDDY_TOPDOWN_ALLOCATION;
  if (contiguous) vres.flags |= DRM_BUDDY_CONTIGUOUS_ALLOCATION;
  if (ttm_to_amdgpu_bo(tbo)?.flags & AMDGPU_GEM_CREATE_VRAM_CLEARED) vres.flags |= DRM_BUDDY_CLEAR_ALLOCATION;
  if (fpfn || lpfn !== man.size / PAGE_SIZE) vres.flags |= DRM_BUDDY_RANGE_ALLOCATION;
  const pages_per_block = contiguous ? 0 : Math.max(SZ_2M / PAGE_SIZE, tbo.page_alignment);
  let remaining = tbo.base_size;
  while (remaining > 0) {
    const size = contiguous ? remaining : Math.min(remaining, SZ_2G);
    let min_block_size = tbo.page_alignment > 1 ? tbo.page_alignment * PAGE_SIZE : mgr.default_page_size;
    if (pages_per_block && size >= pages_per_block * PAGE_SIZE && size % (pages_per_block * PAGE_SIZE) === 0) {
      min_block_size = pages_per_block * PAGE_SIZE;
    }
    const r = drm_buddy_alloc_blocks(mm, fpfn * PAGE_SIZE, lpfn * PAGE_SIZE, size, min_block_size, vres.blocks, vres.flags);
    if (r) {
      drm_buddy_free_list(mm, vres.blocks, 0);
      return r;
    }
    remaining -= size;
  }
  // start: the resource's first page (the whole span for contiguous resources).
  vres.start = Math.min(...vres.blocks.map((b) => b.offset)) / PAGE_SIZE;
  vres.blocks.sort((a, b) => a.offset - b.offset);
  if (blocks_contiguous(mm, vres.blocks)) vres.placement |= TTM_PL_FLAG_CONTIGUOUS;
  return vres;
}

/** amdgpu_vram_mgr_del(): blocks return, marked cleared if the BO's memory was wiped. */
function amdgpu_vram_mgr_del(adev: amdgpu_device, res: ttm_resource): void {
  const vres = res as amdgpu_vram_mgr_resource;
  drm_buddy_free_list(adev.mman.vram_mgr.mm, vres.blocks, vres.flags & DRM_BUDDY_CLEARED);
}

/** amdgpu_vram_mgr_compatible(): every block inside [fpfn, lpfn), contiguous if asked. */
function amdgpu_vram_mgr_compatible(adev: amdgpu_device, res: ttm_resource, place: ttm_place): boolean {
  const vres = res as amdgpu_vram_mgr_resource;
  const mm = adev.mman.vram_mgr.mm;
  const lpfn = place.lpfn || adev.mman.vram_mgr.manager.size / PAGE_SIZE;
  for (const b of vres.blocks) {
    const fpfn = b.offset / PAGE_SIZE;
    const end = fpfn + drm_buddy_block_size(mm, b) / PAGE_SIZE;
    if (fpfn < place.fpfn || end > lpfn) return false;
  }
  return !(place.flags & TTM_PL_FLAG_CONTIGUOUS) || (res.placement & TTM_PL_FLAG_CONTIGUOUS) !== 0;
}

/** amdgpu_vram_mgr_init(): the buddy over all of VRAM and the TTM manager for TTM_PL_VRAM. */
export function amdgpu_vram_mgr_init(adev: amdgpu_device): number {
  const mgr = new amdgpu_vram_mgr(adev);
  adev.mman.vram_mgr = mgr;
  const man = mgr.manager;
  ttm_resource_manager_init(man, adev.gmc.real_vram_size);
  const r = drm_buddy_init(mgr.mm, man.size, PAGE_SIZE);
  if (r) return r;
  man.func = {
    alloc: (m, tbo, place) => amdgpu_vram_mgr_new(adev, m, tbo, place),
    free: (_m, res) => amdgpu_vram_mgr_del(adev, res),
    compatible: (_m, res, place) => amdgpu_vram_mgr_compatible(adev, res, place),
    debug: () => drm_buddy_print(mgr.mm),
  };
  ttm_set_driver_manager(adev.mman.bdev, TTM_PL_VRAM, man);
  ttm_resource_manager_set_used(man, true);
  return 0;
}

/** amdgpu_vram_mgr_fini(): everything must have been freed (drm_buddy_fini checks). */
export function amdgpu_vram_mgr_fini(adev: amdgpu_device): void {
  const mgr = adev.mman.vram_mgr;
  ttm_resource_manager_set_used(mgr.manager, false);
  drm_buddy_fini(mgr.mm, (msg) => adev.k.WARN(true, msg));
  ttm_set_driver_manager(adev.mman.bdev, TTM_PL_VRAM, null);
}

/** amdgpu_vram_mgr_usage(): bytes of VRAM allocated. */
export function amdgpu_vram_mgr_usage(mgr: amdgpu_vram_mgr): number {
  return mgr.mm.size - mgr.mm.avail;
}

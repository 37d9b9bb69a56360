// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_gtt_mgr.c (Linux 6.8): the GTT resource manager.
// A GTT resource is system memory the GPU reaches through the GART; the manager hands out GART
// address space for it (above the transfer windows) and enforces the GTT size limit. Temporary
// resources (bounce buffers of multi-hop moves) get no GART address and are reached through
// the transfer windows instead. kemu allocates GART space with a drm_buddy allocator in
// contiguous mode (the kernel uses drm_mm best fit).

import type { amdgpu_device } from "./amdgpu.ts";
import {
  drm_buddy, drm_buddy_alloc_blocks, drm_buddy_fini, drm_buddy_free_list, drm_buddy_init,
  DRM_BUDDY_CONTIGUOUS_ALLOCATION, type drm_buddy_block,
} from "../../drm_buddy.ts";
import { ttm_resource, ttm_resource_manager, ttm_resource_manager_init, ttm_resource_manager_set_used } from "../../ttm/ttm_resource.ts";
import { ttm_set_driver_manager } from "../../ttm/ttm_device.ts";
import type { ttm_buffer_object } from "../../ttm/ttm_bo.ts";
import { TTM_PL_FLAG_CONTIGUOUS, TTM_PL_FLAG_TEMPORARY, TTM_PL_TT, type ttm_place } from "../../../../../include/drm/ttm/ttm_placement.ts";
import { ENOSPC } from "../../../../../include/uapi/asm-generic/errno.ts";
import { AMDGPU_BO_INVALID_OFFSET } from "./amdgpu_object.ts";
import { AMDGPU_GTT_MAX_TRANSFER_SIZE, AMDGPU_GTT_NUM_TRANSFER_WINDOWS } from "./amdgpu_ttm.ts";

const PAGE_SIZE = 4096;

export class amdgpu_gtt_node extends ttm_resource {
  blocks: drm_buddy_block[] = [];
}

export class amdgpu_gtt_mgr {
  readonly manager: ttm_resource_manager;
  /** GART pages managed, starting right after the transfer windows. */
  readonly mm = new drm_buddy();
  first_page = 0;
  constructor(adev: amdgpu_device) {
    this.manager = new ttm_resource_manager(adev.mman.bdev);
  }
}

/** amdgpu_gtt_mgr_has_gart_addr(): does the resource have a GART address? */
export function amdgpu_gtt_mgr_has_gart_addr(res: ttm_resource): boolean {
  return res.start !== AMDGPU_BO_INVALID_OFFSET;
}

function amdgpu_gtt_mgr_new(adev: amdgpu_device, man: ttm_resource_manager, tbo: ttm_buffer_object, place: ttm_place): ttm_resource | number {
  const mgr = adev.mman.gtt_mgr;
  if (man.usage + tbo.base_size > man.size) return -ENOSPC;
  const node = new amdgpu_gtt_node(tbo, TTM_PL_TT, tbo.base_size, place.flags | TTM_PL_FLAG_CONTIGUOUS);
  if (place.flags & TTM_PL_FLAG_TEMPORARY) {
    node.start = AMDGPU_BO_INVALID_OFFSET;
    return node;
  }
  const r = drm_buddy_alloc_blocks(mgr.mm, 0, mgr.mm.size, tbo.base_size, PAGE_SIZE, node.blocks, DRM_BUDDY_CONTIGUOUS_ALLOCATION);
  if (r) return r;
  node.start = mgr.first_page + Math.min(...node.blocks.map((b) => b.offset)) / PAGE_SIZE;
  return node;
}

function amdgpu_gtt_mgr_del(adev: amdgpu_device, res: ttm_resource): void {
  drm_buddy_free_list(adev.mman.gtt_mgr.mm, (res as amdgpu_gtt_node).blocks, 0);
}

/** amdgpu_gtt_mgr_init(): GART space after the windows, at most `gtt_size` bytes in use. */
export function amdgpu_gtt_mgr_init(adev: amdgpu_device, gtt_size: number): number {
  const mgr = new amdgpu_gtt_mgr(adev);
  adev.mman.gtt_mgr = mgr;
  const man = mgr.manager;
  man.use_tt = true;
  ttm_resource_manager_init(man, gtt_size);
  mgr.first_page = AMDGPU_GTT_MAX_TRANSFER_SIZE * AMDGPU_GTT_NUM_TRANSFER_WINDOWS;
  const r = drm_buddy_init(mgr.mm, adev.gmc.gart_size - mgr.first_page * PAGE_SIZE, PAGE_SIZE);
  if (r) return r;
  man.func = {
    alloc: (m, tbo, place) => amdgpu_gtt_mgr_new(adev, m, tbo, place),
    free: (_m, res) => amdgpu_gtt_mgr_del(adev, res),
  };
  ttm_set_driver_manager(adev.mman.bdev, TTM_PL_TT, man);
  ttm_resource_manager_set_used(man, true);
  return 0;
}

export function amdgpu_gtt_mgr_fini(adev: amdgpu_device): void {
  const mgr = adev.mman.gtt_mgr;
  ttm_resource_manager_set_used(mgr.manager, false);
  drm_buddy_fini(mgr.mm, (msg) => adev.k.WARN(true, msg));
  ttm_set_driver_manager(adev.mman.bdev, TTM_PL_TT, null);
}

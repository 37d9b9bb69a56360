// Mirrors drivers/gpu/drm/ttm/ttm_bo_util.c (Linux 6.8): CPU copies between resources
// (ttm_bo_move_memcpy), finishing an accelerated move (ttm_bo_move_accel_cleanup) and kernel
// CPU mappings of a BO (ttm_bo_kmap). kemu's accel cleanup waits for the copy fence and frees
// the old resource at once, instead of handing it to a ghost object that frees it later.

import type { ttm_buffer_object, ttm_operation_ctx } from "./ttm_bo.ts";
import { ttm_bo_assign_mem, ttm_bo_wait_ctx } from "./ttm_bo.ts";
import { ttm_resource_free, type ttm_resource } from "./ttm_resource.ts";
import { TTM_PL_FLAG_CONTIGUOUS, TTM_PL_SYSTEM } from "../../../../include/drm/ttm/ttm_placement.ts";
import { dma_fence_wait, type dma_fence } from "../../../dma-buf/dma-fence.ts";
import { dma_resv_add_fence, dma_resv_usage } from "../../../dma-buf/dma-resv.ts";
import { iosys_map_pages, type iosys_map } from "../../../../include/linux/iosys-map.ts";
import { NODE_DATA } from "../../../../include/linux/mmzone.ts";
import { EINVAL, ENOMEM } from "../../../../include/uapi/asm-generic/errno.ts";

const PAGE_SIZE = 4096;

/** A CPU view of page `i` of `res` (tt pages, or the driver's I/O mapping). */
function ttm_kmap_page(bo: ttm_buffer_object, res: ttm_resource, i: number): iosys_map | null {
  const man = bo.bdev.man_drv[res.mem_type]!;
  if (man.use_tt) {
    const p = bo.ttm?.pages[i];
    return p ? new iosys_map_pages(NODE_DATA(bo.k).physmem, [p.pfn]) : null;
  }
  return bo.bdev.funcs.io_mem_map(bo, res, i * PAGE_SIZE, PAGE_SIZE);
}

/**
 * ttm_bo_move_memcpy(): the CPU copies every page from the old to the new resource (after the
 * BO is idle). A SYSTEM resource with no pages reads as zeros.
 */
export async function ttm_bo_move_memcpy(bo: ttm_buffer_object, ctx: ttm_operation_ctx, new_mem: ttm_resource): Promise<number> {
  const r = await ttm_bo_wait_ctx(bo, ctx);
  if (r) return r;
  const old = bo.resource!;
  const buf = new Uint8Array(PAGE_SIZE);
  const pages = Math.ceil(bo.base_size / PAGE_SIZE);
  for (let i = 0; i < pages; i++) {
    const dst = ttm_kmap_page(bo, new_mem, i);
    if (!dst) return -ENOMEM;
    const src = old.mem_type === TTM_PL_SYSTEM && !bo.ttm?.populated ? null : ttm_kmap_page(bo, old, i);
    if (src) src.memcpy_from(buf, 0);
    else buf.fill(0);
    dst.memcpy_to(0, buf);
  }
  ttm_resource_free(bo, old);
  ttm_bo_assign_mem(bo, new_mem);
  return 0;
}

/**
 * ttm_bo_move_accel_cleanup(): the GPU copy that `fence` completes moved the data; the fence
 * joins the reservation, and once it signals the old resource is freed and the new one used.
 */
export async function ttm_bo_move_accel_cleanup(bo: ttm_buffer_object, fence: dma_fence, _evict: boolean, _pipeline: boolean,
  new_mem: ttm_resource): Promise<number> {
  dma_resv_add_fence(bo.resv, fence, dma_resv_usage.DMA_RESV_USAGE_KERNEL);
  const r = await dma_fence_wait(fence, false);
  if (r) return r;
  ttm_resource_free(bo, bo.resource);
  ttm_bo_assign_mem(bo, new_mem);
  return 0;
}

/**
 * ttm_bo_kmap(): a kernel mapping of `num_pages` pages from `start_page`. I/O memory must be
 * contiguous (the kernel ioremaps one range); tt pages are vmapped. -EINVAL otherwise.
 */
export function ttm_bo_kmap(bo: ttm_buffer_object, start_page: number, num_pages: number): iosys_map | number {
  const res = bo.resource;
  if (!res || start_page + num_pages > Math.ceil(bo.base_size / PAGE_SIZE)) return -EINVAL;
  const man = bo.bdev.man_drv[res.mem_type]!;
  if (man.use_tt) {
    const pages = bo.ttm?.pages.slice(start_page, start_page + num_pages) ?? [];
    if (pages.length !== num_pages || pages.some((p) => !p)) return -ENOMEM;
    return new iosys_map_pages(NODE_DATA(bo.k).physmem, pages.map((p) => p!.pfn));
  }
  if (!(res.placement & TTM_PL_FLAG_CONTIGUOUS)) return -EINVAL;
  if (bo.bdev.funcs.io_mem_reserve(bo.bdev, res)) return -EINVAL;
  return bo.bdev.funcs.io_mem_map(bo, res, start_page * PAGE_SIZE, num_pages * PAGE_SIZE) ?? -EINVAL;
}

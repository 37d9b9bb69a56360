// Mirrors drivers/gpu/drm/ttm/ttm_tt.c and the page side of ttm_pool.c (Linux 6.8): the system
// pages behind a BO in SYSTEM or TT placement, allocated from the page allocator on populate
// and DMA-mapped for the device, freed on unpopulate.

import type { ttm_buffer_object } from "./ttm_bo.ts";
import type { page } from "../../../../include/linux/mm_types.ts";
import { alloc_page, __free_page } from "../../../../mm/page_alloc.ts";
import { GFP_KERNEL, __GFP_ZERO } from "../../../../include/linux/gfp_types.ts";
import { ENOMEM } from "../../../../include/uapi/asm-generic/errno.ts";
import { dma_map_page, dma_unmap_page, DMA_BIDIRECTIONAL, type dma_addr_t } from "../../../../kernel/dma/mapping.ts";
import type { device } from "../../../base/core.ts";

export const TTM_TT_FLAG_SWAPPED = 1 << 0;
export const TTM_TT_FLAG_ZERO_ALLOC = 1 << 1;
export const TTM_TT_FLAG_EXTERNAL = 1 << 2;

export enum ttm_caching {
  ttm_uncached,
  ttm_write_combined,
  ttm_cached,
}

export class ttm_tt {
  pages: Array<page | null>;
  dma_address: dma_addr_t[];
  page_flags = 0;
  populated = false;
  /** The driver's GART binding state (amdgpu_ttm_tt.bound and its offset). */
  bound = false;

  constructor(
    readonly num_pages: number,
    readonly caching: ttm_caching,
  ) {
    this.pages = new Array<page | null>(num_pages).fill(null);
    this.dma_address = new Array<number>(num_pages).fill(0);
  }
}

/** ttm_tt_init(): an unpopulated tt for the whole BO. */
export function ttm_tt_init(bo: ttm_buffer_object, page_flags: number, caching: ttm_caching): ttm_tt {
  const tt = new ttm_tt(Math.ceil(bo.base_size / 4096), caching);
  tt.page_flags = page_flags;
  return tt;
}

/** ttm_tt_populate() / ttm_pool_alloc(): pages (zeroed) and their DMA addresses. */
export function ttm_tt_populate(bo: ttm_buffer_object, tt: ttm_tt, dev: device): number {
  if (tt.populated) return 0;
  for (let i = 0; i < tt.num_pages; i++) {
    const p = alloc_page(bo.bdev.k, GFP_KERNEL | __GFP_ZERO);
    if (!p) {
      ttm_tt_unpopulate(bo, tt, dev);
      return -ENOMEM;
    }
    tt.pages[i] = p;
    tt.dma_address[i] = dma_map_page(dev, p, 0, 4096, DMA_BIDIRECTIONAL);
  }
  tt.populated = true;
  return 0;
}

/** ttm_tt_unpopulate() / ttm_pool_free(). */
export function ttm_tt_unpopulate(_bo: ttm_buffer_object, tt: ttm_tt, dev: device): void {
  for (let i = 0; i < tt.num_pages; i++) {
    const p = tt.pages[i];
    if (!p) continue;
    dma_unmap_page(dev, tt.dma_address[i]!, 4096, DMA_BIDIRECTIONAL);
    __free_page(p);
    tt.pages[i] = null;
    tt.dma_address[i] = 0;
  }
  tt.populated = false;
}

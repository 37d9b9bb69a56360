// Mirrors kernel/dma/mapping.c with the direct mapping of kernel/dma/direct.c (Linux 6.8):
// streaming mappings of pages for a device's DMA and coherent allocations. Without an IOMMU
// translating for the device, the DMA (bus) address of a page is its physical address; the
// host bridge enforces that device DMA lands in RAM. An IOMMU driver can later interpose its
// own mapping through the PCI host bridge's DMA translator.

import type { Kernel } from "../kernel.ts";
import type { device } from "../../drivers/base/core.ts";
import type { page } from "../../include/linux/mm_types.ts";
import { NODE_DATA } from "../../include/linux/mmzone.ts";
import { alloc_pages, __free_pages } from "../../mm/page_alloc.ts";
import { __GFP_ZERO, type gfp_t } from "../../include/linux/gfp_types.ts";
import { iosys_map_pages } from "../../include/linux/iosys-map.ts";
import { get_order } from "../../include/linux/slab.ts";

export const DMA_BIDIRECTIONAL = 0;
export const DMA_TO_DEVICE = 1;
export const DMA_FROM_DEVICE = 2;
export const DMA_MAPPING_ERROR = 2 ** 64 - 1;

const PAGE_SIZE = 4096;

export type dma_addr_t = number;

/** dma_map_page(): the bus address a device uses for `page` + `offset`. */
export function dma_map_page(_dev: device, p: page, offset: number, _size: number, _dir: number): dma_addr_t {
  return p.pfn * PAGE_SIZE + offset;
}

export function dma_unmap_page(_dev: device, _addr: dma_addr_t, _size: number, _dir: number): void {}

export function dma_mapping_error(_dev: device, addr: dma_addr_t): boolean {
  return addr === DMA_MAPPING_ERROR;
}

/** A coherent allocation: the CPU's view, the device's address, and what to free. */
export interface dma_coherent {
  cpu: iosys_map_pages;
  dma_handle: dma_addr_t;
  page: page;
  order: number;
  size: number;
}

/** dma_alloc_coherent(): zeroed, physically contiguous pages, or null. */
export function dma_alloc_coherent(k: Kernel, _dev: device, size: number, gfp: gfp_t): dma_coherent | null {
  const order = get_order(size);
  const p = alloc_pages(k, gfp | __GFP_ZERO, order);
  if (!p) return null;
  const pfns = Array.from({ length: 2 ** order }, (_, i) => p.pfn + i);
  return { cpu: new iosys_map_pages(NODE_DATA(k).physmem, pfns), dma_handle: p.pfn * PAGE_SIZE, page: p, order, size };
}

export function dma_free_coherent(_dev: device, c: dma_coherent): void {
  __free_pages(c.page, c.order);
}

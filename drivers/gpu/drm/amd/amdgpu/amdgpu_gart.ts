// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_gart.c (Linux 6.8): the GART, VMID 0's flat page
// table over [gart_start, gart_end), kept in a contiguous VRAM BO. amdgpu_gart_map() writes
// PTEs for DMA addresses into any CPU-visible table image (the GART BO itself, or an IB whose
// contents SDMA later copies into the table); bind/unbind also flush VMID 0's TLB on every hub.
// Unbound entries point at the dummy page.

import type { amdgpu_device } from "./amdgpu.ts";
import type { amdgpu_bo } from "./amdgpu_object.ts";
import { amdgpu_bo_create_kernel, amdgpu_bo_free_kernel, AMDGPU_GEM_DOMAIN_VRAM } from "./amdgpu_object.ts";
import { dma_alloc_coherent, dma_free_coherent } from "../../../../../kernel/dma/mapping.ts";
import { GFP_KERNEL } from "../../../../../include/linux/gfp_types.ts";
import { ENOMEM } from "../../../../../include/uapi/asm-generic/errno.ts";
import type { iosys_map } from "../../../../../include/linux/iosys-map.ts";
import { amdgpu_gmc_flush_gpu_tlb, amdgpu_gmc_set_pte_pde, type amdgpu_pte_flags, type pte_sink } from "./amdgpu_gmc.ts";
import { amdgpu_device_flush_hdp } from "./amdgpu_device.ts";
import {
  AMDGPU_PTE_READABLE, AMDGPU_PTE_SNOOPED, AMDGPU_PTE_SYSTEM, AMDGPU_PTE_VALID, AMDGPU_PTE_WRITEABLE, AMDGPU_GPU_PAGE_SIZE,
} from "../include/amdgpu_vm_pte.ts";

export class amdgpu_gart {
  bo: amdgpu_bo | null = null;
  /** CPU view of the table. */
  ptr: iosys_map | null = null;
  table_size = 0;
  num_cpu_pages = 0;
  num_gpu_pages = 0;
  /** Flags every GART PTE carries besides the per-mapping ones (gart_pte_flags). */
  gart_pte_flags: amdgpu_pte_flags = { lo: 0, hi: 0 };
  /** VRAM offset (MC address) of the table. */
  table_addr = 0;
}

/** amdgpu_gart_dummy_page_init(): a zeroed system page for unbound GART entries and faults. */
export function amdgpu_gart_dummy_page_init(adev: amdgpu_device): number {
  if (adev.dummy_page) return 0;
  const p = dma_alloc_coherent(adev.k, adev.dev, 4096, GFP_KERNEL);
  if (!p) return -ENOMEM;
  adev.dummy_page = p;
  adev.dummy_page_addr = p.dma_handle;
  return 0;
}

export function amdgpu_gart_dummy_page_fini(adev: amdgpu_device): void {
  if (!adev.dummy_page) return;
  dma_free_coherent(adev.dev, adev.dummy_page);
  adev.dummy_page = null;
  adev.dummy_page_addr = 0;
}

/** amdgpu_gart_init(): page counts and the dummy page. */
export function amdgpu_gart_init(adev: amdgpu_device): number {
  const gart = adev.gart;
  gart.num_cpu_pages = adev.gmc.gart_size / 4096;
  gart.num_gpu_pages = adev.gmc.gart_size / AMDGPU_GPU_PAGE_SIZE;
  adev.k.pr_info(`[drm] GART: num cpu pages ${gart.num_cpu_pages}, num gpu pages ${gart.num_gpu_pages}`);
  return amdgpu_gart_dummy_page_init(adev);
}

/** amdgpu_gart_table_vram_alloc(): the table BO (8 bytes per GPU page), pinned and mapped. */
export async function amdgpu_gart_table_vram_alloc(adev: amdgpu_device): Promise<number> {
  const gart = adev.gart;
  if (gart.bo) return 0;
  const k = await amdgpu_bo_create_kernel(adev, gart.table_size, 4096, AMDGPU_GEM_DOMAIN_VRAM);
  if (typeof k === "number") return k;
  gart.bo = k.bo;
  gart.ptr = k.cpu;
  gart.table_addr = k.gpu_addr;
  return 0;
}

export function amdgpu_gart_table_vram_free(adev: amdgpu_device): void {
  const gart = adev.gart;
  if (!gart.bo) return;
  amdgpu_bo_free_kernel(gart.bo);
  gart.bo = null;
  gart.ptr = null;
}

/**
 * The flags of a GART mapping of system pages (what svm_migrate_gart_map builds): valid,
 * readable, snooped system memory, writeable unless `readonly`, plus the GART's own flags.
 */
export function amdgpu_gart_system_flags(adev: amdgpu_device, readonly: boolean): amdgpu_pte_flags {
  let lo = AMDGPU_PTE_VALID | AMDGPU_PTE_READABLE | AMDGPU_PTE_SYSTEM | AMDGPU_PTE_SNOOPED;
  if (!readonly) lo |= AMDGPU_PTE_WRITEABLE;
  return { lo: lo | adev.gart.gart_pte_flags.lo, hi: adev.gart.gart_pte_flags.hi };
}

/**
 * amdgpu_gart_map(): PTEs for `pages` pages of DMA addresses starting at GART byte `offset`,
 * written into `dst` (a table image whose entry 0 is GART page 0).
 */
export function amdgpu_gart_map(adev: amdgpu_device, offset: number, pages: number, dma_addr: readonly number[],
  flags: amdgpu_pte_flags, dst: pte_sink): void {
  const t0 = offset / AMDGPU_GPU_PAGE_SIZE;
  for (let i = 0; i < pages; i++) amdgpu_gmc_set_pte_pde(adev, dst, t0 + i, dma_addr[i]!, flags);
}

/** amdgpu_gart_bind(): maps into the live table and flushes VMID 0's TLB. */
export function amdgpu_gart_bind(adev: amdgpu_device, offset: number, pages: number, dma_addr: readonly number[], flags: amdgpu_pte_flags): void {
  if (!adev.gart.ptr) return;
  amdgpu_gart_map(adev, offset, pages, dma_addr, flags, adev.gart.ptr);
  amdgpu_gart_invalidate_tlb(adev);
}

/** amdgpu_gart_unbind(): entries back to the dummy page, TLB flushed. */
export function amdgpu_gart_unbind(adev: amdgpu_device, offset: number, pages: number): void {
  if (!adev.gart.ptr) return;
  const t0 = offset / AMDGPU_GPU_PAGE_SIZE;
  for (let i = 0; i < pages; i++) amdgpu_gmc_set_pte_pde(adev, adev.gart.ptr, t0 + i, adev.dummy_page_addr, adev.gart.gart_pte_flags);
  amdgpu_gart_invalidate_tlb(adev);
}

/** amdgpu_gart_invalidate_tlb(): HDP flush, then a VMID 0 flush on every hub. */
export function amdgpu_gart_invalidate_tlb(adev: amdgpu_device): void {
  if (!adev.gmc.gmc_funcs) return;
  amdgpu_device_flush_hdp(adev);
  for (let hub = 0; hub < adev.vmhub.length; hub++) amdgpu_gmc_flush_gpu_tlb(adev, 0, hub, 0);
}

// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_vm_pt.c (Linux 6.8): the page-table tree of a VM.
// Each node is a 4 KiB VRAM BO of 512 entries sharing the root's reservation; the root (PDB2
// with 4 levels) covers the VA space, PDB1/PDB0 entries are PDEs, PTB entries are PTEs. Walking
// to a page allocates missing tables on the way (amdgpu_vm_pt_alloc), clears them, and points
// the parent's PDE at them. kemu maps 4 KiB pages only (no PDE-as-PTE huge pages).

import type { amdgpu_device } from "./amdgpu.ts";
import type { amdgpu_vm } from "./amdgpu_vm.ts";
import {
  amdgpu_bo_create, amdgpu_bo_gpu_offset, amdgpu_bo_kmap, amdgpu_bo_unref, AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED,
  AMDGPU_GEM_CREATE_VRAM_CONTIGUOUS, AMDGPU_GEM_DOMAIN_VRAM, type amdgpu_bo,
} from "./amdgpu_object.ts";
import { ttm_bo_type } from "../../ttm/ttm_bo.ts";
import { amdgpu_gmc_get_vm_pde } from "./amdgpu_gmc.ts";
import { AMDGPU_PTE_VALID, AMDGPU_VM_PDB0, AMDGPU_VM_PTB, amdgpu_pte_encode } from "../include/amdgpu_vm_pte.ts";
import type { dma_resv } from "../../../../dma-buf/dma-resv.ts";

/** struct amdgpu_vm_bo_base for a page-table node: its BO and children. */
export class amdgpu_vm_pt {
  entries: Array<amdgpu_vm_pt | null>;
  constructor(
    readonly bo: amdgpu_bo,
    readonly level: number,
    readonly parent: amdgpu_vm_pt | null,
    num_entries: number,
  ) {
    this.entries = new Array<amdgpu_vm_pt | null>(num_entries).fill(null);
  }
}

/** amdgpu_vm_pt_level_shift(): page-number bits below a level's index. */
export function amdgpu_vm_pt_level_shift(adev: amdgpu_device, level: number): number {
  if (level === AMDGPU_VM_PTB) return 0;
  return 9 * (AMDGPU_VM_PDB0 - level) + adev.vm_manager.block_size;
}

/** amdgpu_vm_pt_num_entries(): 512 per table; the root covers whatever is left of the VA space. */
export function amdgpu_vm_pt_num_entries(adev: amdgpu_device, level: number): number {
  const shift = amdgpu_vm_pt_level_shift(adev, adev.vm_manager.root_level);
  if (level === adev.vm_manager.root_level) return Math.ceil(adev.vm_manager.max_pfn / 2 ** shift);
  if (level === AMDGPU_VM_PTB) return 2 ** adev.vm_manager.block_size;
  return 512;
}

/** amdgpu_vm_pt_create(): a zeroed page-table BO in VRAM, reachable by the CPU backend. */
export async function amdgpu_vm_pt_create(adev: amdgpu_device, level: number, resv: dma_resv | null): Promise<amdgpu_bo | number> {
  const size = amdgpu_vm_pt_num_entries(adev, level) * 8;
  const bo = await amdgpu_bo_create(adev, {
    size: Math.max(size, 4096), byte_align: 4096, domain: AMDGPU_GEM_DOMAIN_VRAM, type: ttm_bo_type.ttm_bo_type_kernel,
    flags: AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED | AMDGPU_GEM_CREATE_VRAM_CONTIGUOUS, resv,
  });
  if (typeof bo === "number") return bo;
  const map = amdgpu_bo_kmap(bo);
  if (typeof map === "number") {
    amdgpu_bo_unref(bo);
    return map;
  }
  map.memset(0, 0, bo.tbo.base_size);
  return bo;
}

/** amdgpu_vm_pde_update(): points the parent's entry at `pt`'s table. */
function amdgpu_vm_pde_update(adev: amdgpu_device, parent: amdgpu_vm_pt, index: number, pt: amdgpu_vm_pt): void {
  const flags = { lo: AMDGPU_PTE_VALID, hi: 0 };
  const addr = amdgpu_gmc_get_vm_pde(adev, amdgpu_bo_gpu_offset(pt.bo), flags);
  const [lo, hi] = amdgpu_pte_encode(addr, flags.lo, flags.hi);
  const map = amdgpu_bo_kmap(parent.bo);
  if (typeof map === "number") return;
  map.wr32(index * 8, lo);
  map.wr32(index * 8 + 4, hi);
}

/**
 * amdgpu_vm_pt_get_ptb(): the PTB covering GPU page `pfn`, allocating the path down to it
 * when `alloc` (else null for a hole). Returns -errno on allocation failure.
 */
export async function amdgpu_vm_pt_get_ptb(adev: amdgpu_device, vm: amdgpu_vm, pfn: number, alloc: boolean): Promise<amdgpu_vm_pt | null | number> {
  let node = vm.root!;
  while (node.level !== AMDGPU_VM_PTB) {
    const shift = amdgpu_vm_pt_level_shift(adev, node.level);
    const idx = Math.floor(pfn / 2 ** shift) % node.entries.length;
    let child = node.entries[idx] ?? null;
    if (!child) {
      if (!alloc) return null;
      const bo = await amdgpu_vm_pt_create(adev, node.level + 1, vm.root!.bo.tbo.resv);
      if (typeof bo === "number") return bo;
      bo.parent = node.bo;
      bo.owner = vm;
      child = new amdgpu_vm_pt(bo, node.level + 1, node, amdgpu_vm_pt_num_entries(adev, node.level + 1));
      node.entries[idx] = child;
      amdgpu_vm_pde_update(adev, node, idx, child);
    }
    node = child;
  }
  return node;
}

/** amdgpu_vm_pt_free_dfs(): drops every table below (and including) `node`. */
export function amdgpu_vm_pt_free_dfs(node: amdgpu_vm_pt): void {
  for (const c of node.entries) if (c) amdgpu_vm_pt_free_dfs(c);
  node.entries.fill(null);
  node.bo.kmap = null;
  amdgpu_bo_unref(node.bo);
}

/** Number of page tables in the tree (debugfs amdgpu_vm_info-like). */
export function amdgpu_vm_pt_count(node: amdgpu_vm_pt | null): number {
  if (!node) return 0;
  return 1 + node.entries.reduce((n, c) => n + amdgpu_vm_pt_count(c), 0);
}

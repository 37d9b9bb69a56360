// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_vm_cpu.c (Linux 6.8): the CPU backend of page-table
// updates. Page tables are VRAM BOs the CPU reaches through the VRAM BAR; entries are written
// with one bulk copy per run of consecutive entries, and commit() flushes the host data path so
// the GPU sees them (the TLB flush is the caller's decision).

import type { amdgpu_device } from "./amdgpu.ts";
import type { amdgpu_bo } from "./amdgpu_object.ts";
import { amdgpu_bo_kmap } from "./amdgpu_object.ts";
import { amdgpu_device_flush_hdp } from "./amdgpu_device.ts";
import { amdgpu_pte_encode } from "../include/amdgpu_vm_pte.ts";
import type { amdgpu_pte_flags } from "./amdgpu_gmc.ts";
import { EINVAL } from "../../../../../include/uapi/asm-generic/errno.ts";

/** struct amdgpu_vm_update_params, reduced to what the CPU backend needs. */
export interface amdgpu_vm_update_params {
  adev: amdgpu_device;
  /** DMA address of each system page when mapping system memory (else null). */
  pages_addr: readonly number[] | null;
  /** Page index into pages_addr of the first PTE written by the next update() call. */
  pages_base: number;
  needs_flush: boolean;
}

export interface amdgpu_vm_update_funcs {
  prepare(p: amdgpu_vm_update_params): number;
  /**
   * Writes `count` entries starting at entry `pe` of table `bo`: addr + i * incr, or, with
   * pages_addr, the DMA address of each page.
   */
  update(p: amdgpu_vm_update_params, bo: amdgpu_bo, pe: number, addr: number, count: number, incr: number, flags: amdgpu_pte_flags): number;
  commit(p: amdgpu_vm_update_params): number;
}

/** amdgpu_vm_cpu_update(): builds the entries in a host array and writes them with one copy. */
function amdgpu_vm_cpu_update(p: amdgpu_vm_update_params, bo: amdgpu_bo, pe: number, addr: number, count: number, incr: number,
  flags: amdgpu_pte_flags): number {
  const map = amdgpu_bo_kmap(bo);
  if (typeof map === "number") return map;
  if (!count) return 0;
  const buf = new Uint32Array(count * 2);
  for (let i = 0; i < count; i++) {
    const a = p.pages_addr ? p.pages_addr[p.pages_base + i] : addr + i * incr;
    if (a === undefined) return -EINVAL;
    const [lo, hi] = amdgpu_pte_encode(a, flags.lo, flags.hi);
    buf[2 * i] = lo;
    buf[2 * i + 1] = hi;
  }
  map.memcpy_to(pe * 8, new Uint8Array(buf.buffer));
  return 0;
}

export const amdgpu_vm_cpu_funcs: amdgpu_vm_update_funcs = {
  prepare: () => 0,
  update: amdgpu_vm_cpu_update,
  commit: (p) => {
    // The writes went through the BAR: make them visible to the GPU.
    amdgpu_device_flush_hdp(p.adev);
    return 0;
  },
};

// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_trace.h (Linux 6.8), the VM update points:
// amdgpu_vm_update_ptes (a run of PTEs written), amdgpu_vm_bo_map / amdgpu_vm_bo_unmap (a BO
// mapping added or removed), amdgpu_vm_bo_update (a mapping's PTEs rewritten from its BO) and
// amdgpu_vm_flush (a VM flush emitted on a ring). amdgpu_iv is defined per device in
// amdgpu_irq.ts. kemu has no vm_ctx (fence context) and no BO pointer to print.

import { TRACE_EVENT } from "../../../../../include/linux/tracepoint.ts";

const hex = (v: number, w = 10) => v.toString(16).padStart(w, "0");

export const trace_amdgpu_vm_update_ptes = TRACE_EVENT<{ pid: number; start: number; end: number; flags: string; incr: number; dst: number; nptes: number }>(
  "amdgpu", "amdgpu_vm_update_ptes",
  (a) => `pid:${a.pid} start:0x${hex(a.start)} end:0x${hex(a.end)}, flags:0x${a.flags}, incr:${a.incr}, nptes:${a.nptes}, dst:0x${hex(a.dst)}`,
);

interface mapping_args {
  [k: string]: unknown;
  start: number;
  last: number;
  offset: number;
  flags: string;
}

const mapping_fmt = (a: mapping_args) => `start=${a.start.toString(16)}, last=${a.last.toString(16)}, offset=${hex(a.offset)}, flags=${a.flags}`;

export const trace_amdgpu_vm_bo_map = TRACE_EVENT<mapping_args>("amdgpu", "amdgpu_vm_bo_map", mapping_fmt);
export const trace_amdgpu_vm_bo_unmap = TRACE_EVENT<mapping_args>("amdgpu", "amdgpu_vm_bo_unmap", mapping_fmt);

export const trace_amdgpu_vm_bo_update = TRACE_EVENT<{ soffs: number; eoffs: number; flags: string }>(
  "amdgpu", "amdgpu_vm_bo_update", (a) => `soffs=${hex(a.soffs)}, eoffs=${hex(a.eoffs)}, flags=${a.flags}`,
);

export const trace_amdgpu_vm_flush = TRACE_EVENT<{ ring: string; vmid: number; vm_hub: number; pd_addr: number }>(
  "amdgpu", "amdgpu_vm_flush", (a) => `ring=${a.ring}, id=${a.vmid}, hub=${a.vm_hub}, pd_addr=${hex(a.pd_addr)}`,
);

/** 64-bit PTE flags from kemu's {lo, hi} words. */
export function pte_flags_hex(f: { lo: number; hi: number }): string {
  return f.hi ? `${f.hi.toString(16)}${(f.lo >>> 0).toString(16).padStart(8, "0")}` : (f.lo >>> 0).toString(16);
}

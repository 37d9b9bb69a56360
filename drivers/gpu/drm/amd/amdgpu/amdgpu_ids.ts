// Mirrors the PASID allocator of drivers/gpu/drm/amd/amdgpu/amdgpu_ids.c (Linux 6.8): 16-bit
// PASIDs handed out from the upper half of the space [2^15, 2^16), lowest free first. Per
// machine in kemu (the kernel's IDA is global).

import type { Kernel } from "../../../../../kernel/kernel.ts";
import { ENOSPC } from "../../../../../include/uapi/asm-generic/errno.ts";

const used = new WeakMap<Kernel, Set<number>>();

/** amdgpu_pasid_alloc(): a PASID of at most `bits` bits, or -ENOSPC. */
export function amdgpu_pasid_alloc(k: Kernel, bits = 16): number {
  let s = used.get(k);
  if (!s) {
    s = new Set();
    used.set(k, s);
  }
  for (let p = 2 ** (bits - 1); p < 2 ** bits; p++) {
    if (!s.has(p)) {
      s.add(p);
      return p;
    }
  }
  return -ENOSPC;
}

export function amdgpu_pasid_free(k: Kernel, pasid: number): void {
  used.get(k)?.delete(pasid);
}

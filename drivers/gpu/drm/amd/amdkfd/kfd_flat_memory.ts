// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_flat_memory.c (Linux 6.8): the per-device apertures of
// a 64-bit process. GFX9+ (kfd_init_apertures_v9): LDS and scratch live in the non-canonical
// hole (2^48 and 2^49 + 32-bit windows), and the GPUVM aperture — where SVM addresses and KFD
// BOs live — is the lower half of the 48-bit space above the reserved bottom. Creating the
// apertures also creates the process's kfd_process_device for each topology GPU.

import { ENOMEM } from "../../../../../include/uapi/asm-generic/errno.ts";
import { KFD_GC_VERSION, type kfd_process, type kfd_process_device } from "./kfd_priv.ts";
import { kfd_create_process_device_data } from "./kfd_process.ts";
import { kfd_topology_enum_kfd_devices } from "./kfd_topology.ts";

const PAGE_SIZE = 4096;
/** AMDGPU_VA_RESERVED_BOTTOM: the first 64 KiB of every GPU VM stay unmapped. */
export const AMDGPU_VA_RESERVED_BOTTOM = 2 ** 16;
/** KFD_CWSR_TBA_TMA_SIZE: the trap handler pages at the bottom of the SVM aperture. */
export const KFD_CWSR_TBA_TMA_SIZE = PAGE_SIZE * 2;
/** SVM_USER_BASE: where user SVM may start. */
export const SVM_USER_BASE = KFD_CWSR_TBA_TMA_SIZE + 2 * PAGE_SIZE;
/** The GPU VA size KFD advertises: 47 bits, the low half of the 48-bit space (the GMC hole above). */
export const KFD_GPUVM_SIZE = 2 ** 47;

export function MAKE_LDS_APP_BASE_V9(): number {
  return 2 ** 48;
}
export function MAKE_SCRATCH_APP_BASE_V9(): number {
  return 2 * 2 ** 48;
}
/** MAKE_LDS_APP_LIMIT / MAKE_SCRATCH_APP_LIMIT: the base's upper half with all-ones below. */
export function MAKE_APP_LIMIT(base: number): number {
  return Math.floor(base / 2 ** 32) * 2 ** 32 + 0xffffffff;
}

function kfd_init_apertures_v9(pdd: kfd_process_device): void {
  pdd.lds_base = MAKE_LDS_APP_BASE_V9();
  pdd.lds_limit = MAKE_APP_LIMIT(pdd.lds_base);
  pdd.gpuvm_base = Math.max(SVM_USER_BASE, AMDGPU_VA_RESERVED_BOTTOM);
  pdd.gpuvm_limit = KFD_GPUVM_SIZE - 1;
  pdd.scratch_base = MAKE_SCRATCH_APP_BASE_V9();
  pdd.scratch_limit = MAKE_APP_LIMIT(pdd.scratch_base);
}

/** kfd_init_apertures(): one pdd per GPU of the topology, with its apertures. */
export function kfd_init_apertures(process: kfd_process): number {
  for (let id = 0; ; id++) {
    const e = kfd_topology_enum_kfd_devices(process.amdkfd, id);
    if (e === null) break;
    // CPU nodes have no device.
    if (!e.dev) continue;
    const pdd = kfd_create_process_device_data(e.dev, process);
    if (!pdd) {
      process.k.dev_err(e.dev.adev, "Failed to create process device data");
      return -ENOMEM;
    }
    // kemu's KFD only drives GFX9+ parts; older ones are not probed.
    if (KFD_GC_VERSION(e.dev) >= 9 * 65536 + 1) kfd_init_apertures_v9(pdd);
  }
  return 0;
}

// Mirrors drivers/gpu/drm/amd/amdgpu/nv.c (Linux 6.8): the NV "common" IP block and the IP
// block list of Navi1x: common, gmc_v10_0, navi10_ih, gfx_v10_0, sdma_v5_0 (PSP, SMU, display
// and multimedia not modelled).

import type { amd_ip_funcs, amdgpu_device, amdgpu_ip_block_version } from "./amdgpu.ts";
import { amd_ip_block_type, amdgpu_device_ip_block_add } from "./amdgpu.ts";
import { gmc_v10_0_ip_block } from "./gmc_v10_0.ts";
import { navi10_ih_ip_block } from "./navi10_ih.ts";
import { gfx_v10_0_ip_block } from "./gfx_v10_0.ts";
import { sdma_v5_0_ip_block } from "./sdma_v5_0.ts";
import { soc15_common_hw_fini, soc15_common_hw_init } from "./soc15.ts";

/** navi10_doorbell_index_init(), as dword indices. */
function navi10_doorbell_index_init(adev: amdgpu_device): void {
  adev.doorbell_index = {
    kiq: 0x000 * 2,
    mec_ring0: 0x003 * 2,
    sdma_engine: [0x100, 0x10a].map((s) => s * 2),
    ih: 0x178 * 2,
    first_non_cp: 0x180 * 2,
    max_assignment: 0x18f * 2,
  };
}

const nv_common_ip_funcs: amd_ip_funcs = {
  name: "nv_common",
  early_init: (adev) => {
    navi10_doorbell_index_init(adev);
    return 0;
  },
  hw_init: soc15_common_hw_init,
  hw_fini: soc15_common_hw_fini,
};

export const nv_common_ip_block: amdgpu_ip_block_version = {
  type: amd_ip_block_type.AMD_IP_BLOCK_TYPE_COMMON,
  major: 1,
  minor: 0,
  rev: 0,
  funcs: nv_common_ip_funcs,
};

/** nv_set_ip_blocks() */
export function nv_set_ip_blocks(adev: amdgpu_device): number {
  for (const b of [nv_common_ip_block, gmc_v10_0_ip_block, navi10_ih_ip_block, gfx_v10_0_ip_block, sdma_v5_0_ip_block]) {
    amdgpu_device_ip_block_add(adev, b);
  }
  return 0;
}

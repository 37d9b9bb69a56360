// Mirrors drivers/gpu/drm/amd/amdgpu/soc15.c (Linux 6.8): the SOC15 "common" IP block and the
// IP block list of GFX9 parts (what amdgpu_discovery builds from the IP discovery table on
// Aldebaran): common, gmc_v9_0, vega20_ih, gfx_v9_0, sdma_v4_0. PSP, SMU and display are not
// modelled. The common block assigns doorbells and opens the doorbell aperture.

import type { amd_ip_funcs, amdgpu_device, amdgpu_ip_block_version } from "./amdgpu.ts";
import { amd_asic_type, amd_ip_block_type, amdgpu_device_ip_block_add } from "./amdgpu.ts";
import { gmc_v9_0_ip_block } from "./gmc_v9_0.ts";
import { vega20_ih_ip_block } from "./vega20_ih.ts";
import { gfx_v9_0_ip_block } from "./gfx_v9_0.ts";
import { sdma_v4_0_ip_block } from "./sdma_v4_0.ts";
import { sdma_v5_0_ip_block } from "./sdma_v5_0.ts";
import { WREG32 } from "./amdgpu_device.ts";
import { mmBIF_DOORBELL_APER_EN } from "../include/asic_reg/kemu_gpu_regs.ts";

/**
 * vega20_doorbell_index_init(): 64-bit doorbell slots of the kernel's layout, kept here as
 * dword indices (slot << 1) as the rings use them.
 */
function vega20_doorbell_index_init(adev: amdgpu_device): void {
  adev.doorbell_index = {
    kiq: 0x000 * 2,
    mec_ring0: 0x003 * 2,
    sdma_engine: [0x100, 0x10a, 0x114, 0x11e, 0x128, 0x132, 0x13c, 0x146].map((s) => s * 2),
    ih: 0x178 * 2,
    first_non_cp: 0x180 * 2,
    max_assignment: 0x18f * 2,
  };
}

/** The common block's hw_init: doorbells reach the engines (nbio enable_doorbell_aperture). */
export function soc15_common_hw_init(adev: amdgpu_device): number {
  WREG32(adev, mmBIF_DOORBELL_APER_EN, 1);
  return 0;
}

export function soc15_common_hw_fini(adev: amdgpu_device): number {
  WREG32(adev, mmBIF_DOORBELL_APER_EN, 0);
  return 0;
}

const soc15_common_ip_funcs: amd_ip_funcs = {
  name: "soc15_common",
  early_init: (adev) => {
    vega20_doorbell_index_init(adev);
    return 0;
  },
  hw_init: soc15_common_hw_init,
  hw_fini: soc15_common_hw_fini,
};

export const soc15_common_ip_block: amdgpu_ip_block_version = {
  type: amd_ip_block_type.AMD_IP_BLOCK_TYPE_COMMON,
  major: 2,
  minor: 0,
  rev: 0,
  funcs: soc15_common_ip_funcs,
};

/** soc15_set_ip_blocks() */
export function soc15_set_ip_blocks(adev: amdgpu_device): number {
  // Carrizo (vi_set_ip_blocks in Linux: vi_common, gmc_v8_0, cz_ih, gfx_v8_0, sdma_v3_0): kemu's
  // model of it has the GFX9 register set with two SDMA engines on the GFXHUB, which is the
  // sdma_v5_0 block's configuration (same packets), so the soc15 blocks drive it.
  const sdma = adev.asic_type === amd_asic_type.CHIP_CARRIZO ? sdma_v5_0_ip_block : sdma_v4_0_ip_block;
  for (const b of [soc15_common_ip_block, gmc_v9_0_ip_block, vega20_ih_ip_block, gfx_v9_0_ip_block, sdma]) {
    amdgpu_device_ip_block_add(adev, b);
  }
  return 0;
}

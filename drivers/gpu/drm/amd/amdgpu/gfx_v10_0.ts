// Mirrors drivers/gpu/drm/amd/amdgpu/gfx_v10_0.c (Linux 6.8), reduced like gfx_v9_0.ts to the
// compute bring-up KFD needs; on kemu's register map the programming is the same.

import type { amd_ip_funcs, amdgpu_ip_block_version } from "./amdgpu.ts";
import { amd_ip_block_type } from "./amdgpu.ts";
import { gfx_hw_fini_common, gfx_hw_init_common, gfx_sw_init_common } from "./gfx_v9_0.ts";

const gfx_v10_0_ip_funcs: amd_ip_funcs = {
  name: "gfx_v10_0",
  sw_init: gfx_sw_init_common,
  hw_init: gfx_hw_init_common,
  hw_fini: gfx_hw_fini_common,
};

export const gfx_v10_0_ip_block: amdgpu_ip_block_version = {
  type: amd_ip_block_type.AMD_IP_BLOCK_TYPE_GFX,
  major: 10,
  minor: 0,
  rev: 0,
  funcs: gfx_v10_0_ip_funcs,
};

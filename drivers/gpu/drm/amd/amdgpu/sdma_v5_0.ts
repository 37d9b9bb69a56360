// Mirrors drivers/gpu/drm/amd/amdgpu/sdma_v5_0.c (Linux 6.8): the SDMA 5.0 IP block of Navi1x.
// Two instances with IH clients SDMA0/SDMA1; unlike SDMA 4.x its engines translate through the
// GFXHUB, so VM flushes of its rings go to the GFX hub's invalidation engines. Packets (the
// navi10_sdma_pkt_open.h ones kemu uses are bit-identical to SDMA 4.x), ring functions and queue
// start/stop are in amdgpu_sdma.ts.

import type { amd_ip_funcs, amdgpu_ip_block_version } from "./amdgpu.ts";
import { amd_ip_block_type, AMDGPU_GFXHUB_0 } from "./amdgpu.ts";
import { sdma_hw_fini, sdma_hw_init, sdma_sw_fini, sdma_sw_init, type sdma_version } from "./amdgpu_sdma.ts";
import { SOC15_IH_CLIENTID_SDMA0, SOC15_IH_CLIENTID_SDMA1 } from "../include/soc15_ih_clientid.ts";

const sdma_v5_0: sdma_version = {
  name: "sdma_v5_0",
  vmhub: AMDGPU_GFXHUB_0,
  client_ids: [SOC15_IH_CLIENTID_SDMA0, SOC15_IH_CLIENTID_SDMA1],
};

const sdma_v5_0_ip_funcs: amd_ip_funcs = {
  name: "sdma_v5_0",
  sw_init: (adev) => sdma_sw_init(adev, sdma_v5_0, 2),
  hw_init: sdma_hw_init,
  hw_fini: sdma_hw_fini,
  sw_fini: sdma_sw_fini,
};

export const sdma_v5_0_ip_block: amdgpu_ip_block_version = {
  type: amd_ip_block_type.AMD_IP_BLOCK_TYPE_SDMA,
  major: 5,
  minor: 0,
  rev: 0,
  funcs: sdma_v5_0_ip_funcs,
};

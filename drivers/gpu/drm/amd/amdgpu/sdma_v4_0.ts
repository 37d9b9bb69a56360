// Mirrors drivers/gpu/drm/amd/amdgpu/sdma_v4_0.c (Linux 6.8): the SDMA 4.x IP block of GFX9
// parts. Its engines translate through the MMHUB, each instance has its own IH client id
// (Aldebaran: SDMA0, SDMA1 and the reused ids 0x01/0x04/0x05 for instances 2-4), and instance
// 0's GFX queue is TTM's buffer-funcs ring. Packets, ring functions and queue start/stop are in
// amdgpu_sdma.ts.

import type { amd_ip_funcs, amdgpu_ip_block_version } from "./amdgpu.ts";
import { amd_ip_block_type, AMDGPU_MMHUB_0 } from "./amdgpu.ts";
import { sdma_hw_fini, sdma_hw_init, sdma_sw_fini, sdma_sw_init, type sdma_version } from "./amdgpu_sdma.ts";
import {
  SOC15_IH_CLIENTID_SDMA0, SOC15_IH_CLIENTID_SDMA1, SOC15_IH_CLIENTID_SDMA2, SOC15_IH_CLIENTID_SDMA3, SOC15_IH_CLIENTID_SDMA4,
} from "../include/soc15_ih_clientid.ts";

/** sdma_v4_0_seq_to_irq_id() */
const sdma_v4_0: sdma_version = {
  name: "sdma_v4_0",
  vmhub: AMDGPU_MMHUB_0,
  client_ids: [SOC15_IH_CLIENTID_SDMA0, SOC15_IH_CLIENTID_SDMA1, SOC15_IH_CLIENTID_SDMA2, SOC15_IH_CLIENTID_SDMA3, SOC15_IH_CLIENTID_SDMA4],
};

const sdma_v4_0_ip_funcs: amd_ip_funcs = {
  name: "sdma_v4_0",
  // Aldebaran has five SDMA instances.
  sw_init: (adev) => sdma_sw_init(adev, sdma_v4_0, 5),
  hw_init: sdma_hw_init,
  hw_fini: sdma_hw_fini,
  sw_fini: sdma_sw_fini,
};

export const sdma_v4_0_ip_block: amdgpu_ip_block_version = {
  type: amd_ip_block_type.AMD_IP_BLOCK_TYPE_SDMA,
  major: 4,
  minor: 0,
  rev: 0,
  funcs: sdma_v4_0_ip_funcs,
};

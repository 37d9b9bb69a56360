// Mirrors drivers/gpu/drm/amd/amdgpu/gfx_v9_0.c (Linux 6.8), reduced to compute bring-up: the
// CP end-of-pipe interrupt source (vectors of KFD queues are left unhandled so they reach KFD),
// SH_MEM_CONFIG of the KFD VMIDs (gfx_v9_0_init_compute_vmid), and MEC start/halt.

import type { amd_ip_funcs, amdgpu_device, amdgpu_ip_block_version } from "./amdgpu.ts";
import { amd_ip_block_type } from "./amdgpu.ts";
import { amdgpu_irq_add_id } from "./amdgpu_irq.ts";
import { amdgpu_gfx_with_grbm } from "./amdgpu_gfx.ts";
import { WREG32 } from "./amdgpu_device.ts";
import { CP_MEC_CNTL__MEC_ME1_HALT, REG_SET_FIELD, SH_MEM_CONFIG__ALIGNMENT_MODE, mmCP_MEC_CNTL, mmSH_MEM_BASES, mmSH_MEM_CONFIG } from "../include/asic_reg/kemu_gpu_regs.ts";
import { SOC15_IH_CLIENTID_GRBM_CP } from "../include/soc15_ih_clientid.ts";
import { GFX_9_0__SRCID__CP_EOP_INTERRUPT } from "../include/ivsrcid/ivsrcid.ts";

/** SH_MEM_ALIGNMENT_MODE_UNALIGNED */
const SH_MEM_ALIGNMENT_MODE_UNALIGNED = 3;

/** gfx_v9_0_eop_irq(): EOPs of amdgpu's own rings would be processed here; KFD queues' are not. */
function gfx_eop_irq(): number {
  return 0;
}

export async function gfx_sw_init_common(adev: amdgpu_device): Promise<number> {
  adev.gfx.eop_irq.funcs = { process: gfx_eop_irq };
  return amdgpu_irq_add_id(adev, SOC15_IH_CLIENTID_GRBM_CP, GFX_9_0__SRCID__CP_EOP_INTERRUPT, adev.gfx.eop_irq);
}

/** gfx_v9_0_init_compute_vmid() and the MEC un-halt of gfx_v9_0_cp_compute_enable(). */
export async function gfx_hw_init_common(adev: amdgpu_device): Promise<number> {
  const cfg = REG_SET_FIELD(0, SH_MEM_CONFIG__ALIGNMENT_MODE, SH_MEM_ALIGNMENT_MODE_UNALIGNED);
  for (let vmid = adev.vm_manager.first_kfd_vmid; vmid < 16; vmid++) {
    await amdgpu_gfx_with_grbm(adev, 0, 0, 0, vmid, () => {
      WREG32(adev, mmSH_MEM_CONFIG, cfg);
      WREG32(adev, mmSH_MEM_BASES, 0);
    });
  }
  WREG32(adev, mmCP_MEC_CNTL, 0);
  return 0;
}

export function gfx_hw_fini_common(adev: amdgpu_device): number {
  WREG32(adev, mmCP_MEC_CNTL, REG_SET_FIELD(0, CP_MEC_CNTL__MEC_ME1_HALT, 1));
  return 0;
}

const gfx_v9_0_ip_funcs: amd_ip_funcs = {
  name: "gfx_v9_0",
  sw_init: gfx_sw_init_common,
  hw_init: gfx_hw_init_common,
  hw_fini: gfx_hw_fini_common,
};

export const gfx_v9_0_ip_block: amdgpu_ip_block_version = {
  type: amd_ip_block_type.AMD_IP_BLOCK_TYPE_GFX,
  major: 9,
  minor: 0,
  rev: 0,
  funcs: gfx_v9_0_ip_funcs,
};

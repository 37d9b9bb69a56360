// Mirrors drivers/gpu/drm/amd/amdgpu/navi10_ih.c (Linux 6.8): the IH block of Navi1x. One
// hardware ring (Navi1x IH has no ring 1 to route retry faults to, so gmc_v10_0 delegates them
// to the software ring) plus the software ring. Ring programming, wptr overflow recovery and
// rptr updates are those of vega20_ih.ts on kemu's common register map.

import type { amd_ip_funcs, amdgpu_device, amdgpu_ip_block_version } from "./amdgpu.ts";
import { amd_ip_block_type } from "./amdgpu.ts";
import { amdgpu_ih_ring_init, IH_RING_SIZE, IH_SW_RING_SIZE } from "./amdgpu_ih.ts";
import { amdgpu_irq_init } from "./amdgpu_irq.ts";
import { ih_ring_regs, ih_sw_fini_common, vega20_ih_disable_ring, vega20_ih_enable_ring, vega20_ih_funcs } from "./vega20_ih.ts";

async function navi10_ih_sw_init(adev: amdgpu_device): Promise<number> {
  const irq = adev.irq;
  let r = amdgpu_ih_ring_init(adev, irq.ih, IH_RING_SIZE, true);
  if (r) return r;
  irq.ih.regs = ih_ring_regs(0);
  irq.ih.use_doorbell = true;
  irq.ih.doorbell_index = adev.doorbell_index.ih;
  r = amdgpu_ih_ring_init(adev, irq.ih_soft, IH_SW_RING_SIZE, true);
  if (r) return r;
  return amdgpu_irq_init(adev, adev.svc.irq);
}

const navi10_ih_ip_funcs: amd_ip_funcs = {
  name: "navi10_ih",
  early_init: (adev) => {
    adev.irq.ih_funcs = vega20_ih_funcs;
    return 0;
  },
  sw_init: navi10_ih_sw_init,
  hw_init: (adev) => {
    vega20_ih_enable_ring(adev, adev.irq.ih, true);
    adev.irq.ih_soft.enabled = true;
    return 0;
  },
  hw_fini: (adev) => {
    vega20_ih_disable_ring(adev, adev.irq.ih);
    adev.irq.ih_soft.enabled = false;
    return 0;
  },
  sw_fini: ih_sw_fini_common,
};

export const navi10_ih_ip_block: amdgpu_ip_block_version = {
  type: amd_ip_block_type.AMD_IP_BLOCK_TYPE_IH,
  major: 5,
  minor: 0,
  rev: 0,
  funcs: navi10_ih_ip_funcs,
};

// Mirrors drivers/gpu/drm/amd/amdgpu/vega20_ih.c (Linux 6.8): the IH block of Vega20-class
// GFX9 parts (Arcturus, Aldebaran). Besides the main ring and the software ring it programs
// ring 1 and reroutes the retry faults of the VMC and UTCL2 clients there (IH_CLIENT_CFG); ring 1
// announces new vectors with a self-interrupt on ring 0, whose handler schedules ih1_work, so
// retry faults are handled in process context without a software copy. get_wptr() recovers
// from ring overflow by skipping to the oldest vector not yet overwritten.

import type { amd_ip_funcs, amdgpu_device, amdgpu_ip_block_version } from "./amdgpu.ts";
import { amd_ip_block_type } from "./amdgpu.ts";
import {
  amdgpu_ih_decode_iv_helper, amdgpu_ih_decode_iv_ts_helper, amdgpu_ih_ring_fini, amdgpu_ih_ring_init, IH_RING_SIZE,
  IH_SW_RING_SIZE, type amdgpu_ih_funcs, type amdgpu_ih_regs, type amdgpu_ih_ring, type amdgpu_iv_entry,
} from "./amdgpu_ih.ts";
import { amdgpu_irq_add_id, amdgpu_irq_fini_hw, amdgpu_irq_init, type amdgpu_irq_src } from "./amdgpu_irq.ts";
import { RREG32, WDOORBELL32, WREG32 } from "./amdgpu_device.ts";
import {
  IH_CLIENT_CFG_DATA__CLIENT_TYPE, IH_CLIENT_CFG_DATA__RING_ID, IH_DOORBELL_RPTR__ENABLE, IH_DOORBELL_RPTR__OFFSET,
  IH_RB_CNTL__ENABLE_INTR, IH_RB_CNTL__RB_ENABLE, IH_RB_CNTL__RB_SIZE, IH_RB_CNTL__WPTR_OVERFLOW_CLEAR,
  IH_RB_CNTL__WPTR_OVERFLOW_ENABLE, IH_RB_CNTL__WPTR_WRITEBACK_ENABLE, IH_RB_WPTR__RB_OVERFLOW, IH_RING1, REG_GET_FIELD,
  REG_SET_FIELD, lower_32_bits, upper_32_bits, mmIH_CLIENT_CFG_DATA, mmIH_CLIENT_CFG_INDEX, mmIH_DOORBELL_RPTR,
  mmIH_RB_BASE, mmIH_RB_BASE_HI, mmIH_RB_CNTL, mmIH_RB_RPTR, mmIH_RB_WPTR, mmIH_RB_WPTR_ADDR_HI, mmIH_RB_WPTR_ADDR_LO,
} from "../include/asic_reg/kemu_gpu_regs.ts";
import { SOC15_IH_CLIENTID_IH, SOC15_IH_CLIENTID_UTCL2, SOC15_IH_CLIENTID_VMC } from "../include/soc15_ih_clientid.ts";

/** The register set of hardware ring `n` (ih_regs of vega20_ih_init_register_offset). */
export function ih_ring_regs(n: number): amdgpu_ih_regs {
  const d = n * IH_RING1;
  return {
    ih_rb_base: mmIH_RB_BASE + d, ih_rb_base_hi: mmIH_RB_BASE_HI + d, ih_rb_cntl: mmIH_RB_CNTL + d,
    ih_rb_wptr: mmIH_RB_WPTR + d, ih_rb_rptr: mmIH_RB_RPTR + d, ih_doorbell_rptr: mmIH_DOORBELL_RPTR + d,
    ih_rb_wptr_addr_lo: mmIH_RB_WPTR_ADDR_LO + d, ih_rb_wptr_addr_hi: mmIH_RB_WPTR_ADDR_HI + d,
  };
}

function amdgpu_ih_ring_name(adev: amdgpu_device, ih: amdgpu_ih_ring): string {
  return ih === adev.irq.ih ? "ih" : ih === adev.irq.ih1 ? "ih1" : "ih_soft";
}

/** vega20_ih_get_wptr(): from the writeback; on overflow, resynchronise and clear the flag. */
export function vega20_ih_get_wptr(adev: amdgpu_device, ih: amdgpu_ih_ring): number {
  if (ih === adev.irq.ih_soft || !ih.regs) return ih.wptr_cpu() & ih.ptr_mask;
  let wptr = ih.wptr_cpu();
  if (REG_GET_FIELD(wptr, IH_RB_WPTR__RB_OVERFLOW)) {
    wptr = RREG32(adev, ih.regs.ih_rb_wptr);
    if (REG_GET_FIELD(wptr, IH_RB_WPTR__RB_OVERFLOW)) {
      wptr = REG_SET_FIELD(wptr, IH_RB_WPTR__RB_OVERFLOW, 0);
      const tmp = (wptr + 32) & ih.ptr_mask;
      adev.k.dev_warn(adev, `${amdgpu_ih_ring_name(adev, ih)} ring buffer overflow (0x${hex8(wptr)}, 0x${hex8(ih.rptr)}, 0x${hex8(tmp)})`);
      ih.rptr = tmp;
      let cntl = RREG32(adev, ih.regs.ih_rb_cntl);
      cntl = REG_SET_FIELD(cntl, IH_RB_CNTL__WPTR_OVERFLOW_CLEAR, 1);
      WREG32(adev, ih.regs.ih_rb_cntl, cntl);
      WREG32(adev, ih.regs.ih_rb_cntl, REG_SET_FIELD(cntl, IH_RB_CNTL__WPTR_OVERFLOW_CLEAR, 0));
      ih.overflow = true;
    }
  }
  return wptr & ih.ptr_mask;
}

function hex8(v: number): string {
  return (v >>> 0).toString(16).toUpperCase().padStart(8, "0");
}

/** vega20_ih_set_rptr(): through the ring's doorbell when it has one, else the register. */
export function vega20_ih_set_rptr(adev: amdgpu_device, ih: amdgpu_ih_ring): void {
  if (!ih.enabled || !ih.regs) return;
  ih.mem!.cpu.wr32(ih.ring_size + 4, ih.rptr);
  if (ih.use_doorbell) WDOORBELL32(adev, ih.doorbell_index, ih.rptr);
  else WREG32(adev, ih.regs.ih_rb_rptr, ih.rptr);
}

export const vega20_ih_funcs: amdgpu_ih_funcs = {
  get_wptr: vega20_ih_get_wptr,
  decode_iv: (adev, ih, entry) => amdgpu_ih_decode_iv_helper(adev, ih, entry),
  decode_iv_ts: (_adev, ih, rptr, offset) => amdgpu_ih_decode_iv_ts_helper(ih, rptr, offset),
  set_rptr: vega20_ih_set_rptr,
};

/** Programs one hardware ring: base, size, wptr writeback, overflow, doorbell, enable. */
export function vega20_ih_enable_ring(adev: amdgpu_device, ih: amdgpu_ih_ring, intr: boolean): void {
  const r = ih.regs!;
  WREG32(adev, r.ih_rb_base, Math.floor(ih.gpu_addr / 256) % 2 ** 32);
  WREG32(adev, r.ih_rb_base_hi, Math.floor(ih.gpu_addr / 2 ** 40) & 0xff);
  WREG32(adev, r.ih_rb_wptr_addr_lo, lower_32_bits(ih.wptr_addr));
  WREG32(adev, r.ih_rb_wptr_addr_hi, upper_32_bits(ih.wptr_addr) & 0xffff);
  WREG32(adev, r.ih_rb_rptr, 0);
  ih.rptr = 0;
  ih.mem!.cpu.memset(0, 0, ih.ring_size + 8);
  let db = 0;
  if (ih.use_doorbell) {
    db = REG_SET_FIELD(db, IH_DOORBELL_RPTR__OFFSET, ih.doorbell_index);
    db = REG_SET_FIELD(db, IH_DOORBELL_RPTR__ENABLE, 1);
  }
  WREG32(adev, r.ih_doorbell_rptr, db);
  let cntl = REG_SET_FIELD(0, IH_RB_CNTL__RB_SIZE, Math.log2(ih.ring_size / 4));
  cntl = REG_SET_FIELD(cntl, IH_RB_CNTL__WPTR_OVERFLOW_ENABLE, 1);
  cntl = REG_SET_FIELD(cntl, IH_RB_CNTL__WPTR_WRITEBACK_ENABLE, 1);
  cntl = REG_SET_FIELD(cntl, IH_RB_CNTL__ENABLE_INTR, intr ? 1 : 0);
  cntl = REG_SET_FIELD(cntl, IH_RB_CNTL__RB_ENABLE, 1);
  WREG32(adev, r.ih_rb_cntl, cntl);
  ih.enabled = true;
}

export function vega20_ih_disable_ring(adev: amdgpu_device, ih: amdgpu_ih_ring): void {
  if (!ih.regs || !ih.enabled) return;
  WREG32(adev, ih.regs.ih_rb_cntl, 0);
  ih.enabled = false;
}

/** vega20_ih_reroute_ih(): VMC and UTCL2 retry faults go to ring 1. */
function vega20_ih_reroute_ih(adev: amdgpu_device): void {
  for (const client of [SOC15_IH_CLIENTID_VMC, SOC15_IH_CLIENTID_UTCL2]) {
    WREG32(adev, mmIH_CLIENT_CFG_INDEX, client);
    let tmp = RREG32(adev, mmIH_CLIENT_CFG_DATA);
    tmp = REG_SET_FIELD(tmp, IH_CLIENT_CFG_DATA__CLIENT_TYPE, 1);
    tmp = REG_SET_FIELD(tmp, IH_CLIENT_CFG_DATA__RING_ID, 1);
    WREG32(adev, mmIH_CLIENT_CFG_DATA, tmp);
  }
}

/** vega20_ih_self_irq(): ring 1 has new vectors; drain it from its work item. */
function vega20_ih_self_irq(adev: amdgpu_device, _source: amdgpu_irq_src, entry: amdgpu_iv_entry): number {
  if (entry.ring_id === 1) adev.wq.schedule_work(adev.irq.ih1_work);
  return 0;
}

async function vega20_ih_sw_init(adev: amdgpu_device): Promise<number> {
  const irq = adev.irq;
  irq.self_irq.funcs = { process: vega20_ih_self_irq };
  let r = amdgpu_irq_add_id(adev, SOC15_IH_CLIENTID_IH, 0, irq.self_irq);
  if (r) return r;
  r = amdgpu_ih_ring_init(adev, irq.ih, IH_RING_SIZE, true);
  if (r) return r;
  irq.ih.regs = ih_ring_regs(0);
  irq.ih.use_doorbell = true;
  irq.ih.doorbell_index = adev.doorbell_index.ih;
  r = amdgpu_ih_ring_init(adev, irq.ih1, 4096, true);
  if (r) return r;
  irq.ih1.regs = ih_ring_regs(1);
  // Ring 1 takes its rptr through the doorbell after the main ring's (the next 64-bit slot).
  irq.ih1.use_doorbell = true;
  irq.ih1.doorbell_index = adev.doorbell_index.ih + 2;
  r = amdgpu_ih_ring_init(adev, irq.ih_soft, IH_SW_RING_SIZE, true);
  if (r) return r;
  return amdgpu_irq_init(adev, adev.svc.irq);
}

function vega20_ih_hw_init(adev: amdgpu_device): number {
  vega20_ih_enable_ring(adev, adev.irq.ih, true);
  vega20_ih_enable_ring(adev, adev.irq.ih1, false);
  vega20_ih_reroute_ih(adev);
  adev.irq.ih_soft.enabled = true;
  return 0;
}

function vega20_ih_hw_fini(adev: amdgpu_device): number {
  vega20_ih_disable_ring(adev, adev.irq.ih1);
  vega20_ih_disable_ring(adev, adev.irq.ih);
  adev.irq.ih_soft.enabled = false;
  return 0;
}

/** amdgpu_irq_fini_sw() + ring memory. */
export async function ih_sw_fini_common(adev: amdgpu_device): Promise<number> {
  await amdgpu_irq_fini_hw(adev, adev.svc.irq);
  amdgpu_ih_ring_fini(adev, adev.irq.ih_soft);
  amdgpu_ih_ring_fini(adev, adev.irq.ih1);
  amdgpu_ih_ring_fini(adev, adev.irq.ih);
  return 0;
}

const vega20_ih_ip_funcs: amd_ip_funcs = {
  name: "vega20_ih",
  early_init: (adev) => {
    adev.irq.ih_funcs = vega20_ih_funcs;
    return 0;
  },
  sw_init: vega20_ih_sw_init,
  hw_init: vega20_ih_hw_init,
  hw_fini: vega20_ih_hw_fini,
  sw_fini: ih_sw_fini_common,
};

export const vega20_ih_ip_block: amdgpu_ip_block_version = {
  type: amd_ip_block_type.AMD_IP_BLOCK_TYPE_IH,
  major: 4,
  minor: 2,
  rev: 0,
  funcs: vega20_ih_ip_funcs,
};

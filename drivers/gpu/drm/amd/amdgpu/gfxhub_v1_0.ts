// Mirrors drivers/gpu/drm/amd/amdgpu/gfxhub_v1_0.c (Linux 6.8) — and, on kemu's single
// register layout, the same programming of mmhub_v1_0.c, gfxhub_v2_0.c and mmhub_v2_0.c: the
// register table of a VM hub, GART enable (context 0: the GART table, the frame-buffer system
// aperture, L1/L2 on, the dummy page as fault default), the user contexts 1-15 (depth, block
// size, VA range, retry), fault-interrupt enables and the decoded fault-status print.

import type { amdgpu_device } from "./amdgpu.ts";
import type { amdgpu_vmhub } from "./amdgpu_gmc.ts";
import { amdgpu_gmc_pd_addr } from "./amdgpu_gmc.ts";
import { RREG32, WREG32 } from "./amdgpu_device.ts";
import {
  REG_GET_FIELD, REG_SET_FIELD, VM_CONTEXT1_CNTL__ENABLE_CONTEXT, VM_CONTEXT1_CNTL__PAGE_TABLE_BLOCK_SIZE,
  VM_CONTEXT1_CNTL__PAGE_TABLE_DEPTH, VM_CONTEXT1_CNTL__RETRY_PERMISSION_OR_INVALID_PAGE_FAULT, VM_CONTEXT_CNTL__FAULT_INTERRUPT_MASK,
  VM_L2_CNTL__ENABLE_L2_CACHE, MC_VM_MX_L1_TLB_CNTL__ENABLE_L1_TLB, VM_L2_PROTECTION_FAULT_STATUS__CID,
  VM_L2_PROTECTION_FAULT_STATUS__MAPPING_ERROR, VM_L2_PROTECTION_FAULT_STATUS__MORE_FAULTS, VM_L2_PROTECTION_FAULT_STATUS__PERMISSION_FAULTS,
  VM_L2_PROTECTION_FAULT_STATUS__RW, VM_L2_PROTECTION_FAULT_STATUS__WALKER_ERROR, hubMC_VM_MX_L1_TLB_CNTL,
  hubVM_CONTEXT0_CNTL, hubVM_CONTEXT0_PAGE_TABLE_BASE_ADDR_LO32, hubVM_CONTEXT0_PAGE_TABLE_END_ADDR_LO32,
  hubVM_CONTEXT0_PAGE_TABLE_START_ADDR_LO32, hubVM_INVALIDATE_ENG0_ACK, hubVM_INVALIDATE_ENG0_REQ, hubVM_INVALIDATE_ENG0_SEM,
  hubVM_L2_CNTL, hubVM_L2_PROTECTION_FAULT_ADDR_HI32, hubVM_L2_PROTECTION_FAULT_ADDR_LO32, hubVM_L2_PROTECTION_FAULT_CNTL,
  hubVM_L2_PROTECTION_FAULT_DEFAULT_ADDR_HI32, hubVM_L2_PROTECTION_FAULT_DEFAULT_ADDR_LO32, hubVM_L2_PROTECTION_FAULT_STATUS,
  lower_32_bits, mmMC_VM_SYSTEM_APERTURE_HIGH_ADDR, mmMC_VM_SYSTEM_APERTURE_LOW_ADDR, upper_32_bits,
} from "../include/asic_reg/kemu_gpu_regs.ts";

/** gfxhub_client_ids[]: UTCL2 clients by CID (GFX9 order). */
const gfxhub_client_ids = ["CB", "DB", "IA", "WD", "CPF", "CPC", "CPG", "RLC", "TCP", "SQC (inst)", "SQC (data)", "SQG", "PA"];

/** gfxhub_client_ids[] of gfxhub_v2_0 (Navi1x): SDMA translates here on GFX10. */
const gfxhub_v2_0_client_ids = ["CB/DB", "Reserved", "GE1", "GE2", "CPF", "CPC", "CPG", "RLC", "TCP", "SQC (inst)", "SQC (data)",
  "SQG", "Reserved", "SDMA0", "SDMA1", "GCR", "SDMA2", "SDMA3"];

/** kemu's MMHUB client table: SDMA instances start at 0x10. */
function mmhub_client_name(cid: number): string {
  return cid >= 0x10 && cid < 0x18 ? `SDMA${cid - 0x10}` : "unknown";
}

/** Builds the register table of the hub whose registers start at `base` (dword offset). */
export function gfxhub_v1_0_init(name: string, base: number, gfx: boolean, gfx10 = false): amdgpu_vmhub {
  const gfx_ids = gfx10 ? gfxhub_v2_0_client_ids : gfxhub_client_ids;
  return {
    name,
    ctx0_ptb_addr_lo32: base + hubVM_CONTEXT0_PAGE_TABLE_BASE_ADDR_LO32,
    ctx0_ptb_addr_hi32: base + hubVM_CONTEXT0_PAGE_TABLE_BASE_ADDR_LO32 + 1,
    vm_inv_eng0_sem: base + hubVM_INVALIDATE_ENG0_SEM,
    vm_inv_eng0_req: base + hubVM_INVALIDATE_ENG0_REQ,
    vm_inv_eng0_ack: base + hubVM_INVALIDATE_ENG0_ACK,
    vm_context0_cntl: base + hubVM_CONTEXT0_CNTL,
    vm_l2_pro_fault_status: base + hubVM_L2_PROTECTION_FAULT_STATUS,
    vm_l2_pro_fault_cntl: base + hubVM_L2_PROTECTION_FAULT_CNTL,
    vm_l2_pro_fault_addr_lo32: base + hubVM_L2_PROTECTION_FAULT_ADDR_LO32,
    vm_l2_pro_fault_addr_hi32: base + hubVM_L2_PROTECTION_FAULT_ADDR_HI32,
    ctx_distance: 1,
    ctx_addr_distance: 2,
    eng_distance: 1,
    client_name: gfx ? (cid) => gfx_ids[cid] ?? "unknown" : mmhub_client_name,
  };
}

function hub_base(hub: amdgpu_vmhub): number {
  return hub.vm_context0_cntl - hubVM_CONTEXT0_CNTL;
}

/** gfxhub_v1_0_gart_enable(): context 0 for the GART, apertures, caches, user contexts. */
export function gfxhub_v1_0_gart_enable(adev: amdgpu_device, hub: amdgpu_vmhub): number {
  const base = hub_base(hub);
  const gmc = adev.gmc;
  // init_gart_aperture_regs
  const pt_base = amdgpu_gmc_pd_addr(adev, adev.gart.bo!);
  WREG32(adev, hub.ctx0_ptb_addr_lo32, lower_32_bits(pt_base));
  WREG32(adev, hub.ctx0_ptb_addr_hi32, upper_32_bits(pt_base));
  WREG32(adev, base + hubVM_CONTEXT0_PAGE_TABLE_START_ADDR_LO32, lower_32_bits(gmc.gart_start / 4096));
  WREG32(adev, base + hubVM_CONTEXT0_PAGE_TABLE_START_ADDR_LO32 + 1, upper_32_bits(gmc.gart_start / 4096));
  WREG32(adev, base + hubVM_CONTEXT0_PAGE_TABLE_END_ADDR_LO32, lower_32_bits(gmc.gart_end / 4096));
  WREG32(adev, base + hubVM_CONTEXT0_PAGE_TABLE_END_ADDR_LO32 + 1, upper_32_bits(gmc.gart_end / 4096));
  // init_system_aperture_regs: the frame buffer, in 256 KiB units.
  WREG32(adev, mmMC_VM_SYSTEM_APERTURE_LOW_ADDR, Math.floor(gmc.vram_start / 2 ** 18));
  WREG32(adev, mmMC_VM_SYSTEM_APERTURE_HIGH_ADDR, Math.floor(gmc.vram_end / 2 ** 18));
  const dummy = adev.dummy_page_addr / 4096;
  WREG32(adev, base + hubVM_L2_PROTECTION_FAULT_DEFAULT_ADDR_LO32, lower_32_bits(dummy));
  WREG32(adev, base + hubVM_L2_PROTECTION_FAULT_DEFAULT_ADDR_HI32, upper_32_bits(dummy));
  // init_tlb_regs / init_cache_regs
  WREG32(adev, base + hubMC_VM_MX_L1_TLB_CNTL, REG_SET_FIELD(0, MC_VM_MX_L1_TLB_CNTL__ENABLE_L1_TLB, 1));
  WREG32(adev, base + hubVM_L2_CNTL, REG_SET_FIELD(0, VM_L2_CNTL__ENABLE_L2_CACHE, 1));
  // enable_system_domain: context 0, flat, no retry.
  let tmp = REG_SET_FIELD(0, VM_CONTEXT1_CNTL__ENABLE_CONTEXT, 1);
  tmp = REG_SET_FIELD(tmp, VM_CONTEXT1_CNTL__PAGE_TABLE_DEPTH, 0);
  WREG32(adev, hub.vm_context0_cntl, tmp);
  gfxhub_v1_0_setup_vmid_config(adev, hub);
  return 0;
}

/** setup_vmid_config(): contexts 1-15 walk the VM tables: depth, block size, [0, max_pfn), retry. */
function gfxhub_v1_0_setup_vmid_config(adev: amdgpu_device, hub: amdgpu_vmhub): void {
  const base = hub_base(hub);
  const vm = adev.vm_manager;
  for (let i = 1; i < 16; i++) {
    let tmp = RREG32(adev, hub.vm_context0_cntl + i);
    tmp = REG_SET_FIELD(tmp, VM_CONTEXT1_CNTL__ENABLE_CONTEXT, 1);
    tmp = REG_SET_FIELD(tmp, VM_CONTEXT1_CNTL__PAGE_TABLE_DEPTH, vm.num_level);
    tmp = REG_SET_FIELD(tmp, VM_CONTEXT1_CNTL__PAGE_TABLE_BLOCK_SIZE, vm.block_size - 9);
    tmp = REG_SET_FIELD(tmp, VM_CONTEXT1_CNTL__RETRY_PERMISSION_OR_INVALID_PAGE_FAULT, adev.gmc.noretry ? 0 : 1);
    WREG32(adev, hub.vm_context0_cntl + i, tmp);
    WREG32(adev, base + hubVM_CONTEXT0_PAGE_TABLE_START_ADDR_LO32 + 2 * i, 0);
    WREG32(adev, base + hubVM_CONTEXT0_PAGE_TABLE_START_ADDR_LO32 + 2 * i + 1, 0);
    WREG32(adev, base + hubVM_CONTEXT0_PAGE_TABLE_END_ADDR_LO32 + 2 * i, lower_32_bits(vm.max_pfn - 1));
    WREG32(adev, base + hubVM_CONTEXT0_PAGE_TABLE_END_ADDR_LO32 + 2 * i + 1, upper_32_bits(vm.max_pfn - 1));
  }
}

/** gfxhub_v1_0_gart_disable(): every context off, caches off. */
export function gfxhub_v1_0_gart_disable(adev: amdgpu_device, hub: amdgpu_vmhub): void {
  const base = hub_base(hub);
  for (let i = 0; i < 16; i++) WREG32(adev, hub.vm_context0_cntl + i, 0);
  WREG32(adev, base + hubMC_VM_MX_L1_TLB_CNTL, 0);
  WREG32(adev, base + hubVM_L2_CNTL, 0);
}

/** gmc_v9_0_vm_fault_interrupt_state() for one hub: the fault interrupt bits of every context. */
export function gfxhub_v1_0_set_fault_interrupts(adev: amdgpu_device, hub: amdgpu_vmhub, enable: boolean): void {
  for (let i = 0; i < 16; i++) {
    const reg = hub.vm_context0_cntl + i;
    const tmp = RREG32(adev, reg);
    WREG32(adev, reg, enable ? (tmp | VM_CONTEXT_CNTL__FAULT_INTERRUPT_MASK) >>> 0 : (tmp & ~VM_CONTEXT_CNTL__FAULT_INTERRUPT_MASK) >>> 0);
  }
}

/** print_l2_protection_fault_status(): the decoded status as dmesg shows it. */
export function gfxhub_v1_0_print_l2_protection_fault_status(adev: amdgpu_device, hub: amdgpu_vmhub, status: number, reg_name: string): void {
  const cid = REG_GET_FIELD(status, VM_L2_PROTECTION_FAULT_STATUS__CID);
  const k = adev.k;
  k.dev_err(adev, `${reg_name}:0x${status.toString(16).toUpperCase().padStart(8, "0")}`);
  k.dev_err(adev, `\t Faulty UTCL2 client ID: ${hub.client_name(cid)} (0x${cid.toString(16)})`);
  k.dev_err(adev, `\t MORE_FAULTS: 0x${REG_GET_FIELD(status, VM_L2_PROTECTION_FAULT_STATUS__MORE_FAULTS).toString(16)}`);
  k.dev_err(adev, `\t WALKER_ERROR: 0x${REG_GET_FIELD(status, VM_L2_PROTECTION_FAULT_STATUS__WALKER_ERROR).toString(16)}`);
  k.dev_err(adev, `\t PERMISSION_FAULTS: 0x${REG_GET_FIELD(status, VM_L2_PROTECTION_FAULT_STATUS__PERMISSION_FAULTS).toString(16)}`);
  k.dev_err(adev, `\t MAPPING_ERROR: 0x${REG_GET_FIELD(status, VM_L2_PROTECTION_FAULT_STATUS__MAPPING_ERROR).toString(16)}`);
  k.dev_err(adev, `\t RW: 0x${REG_GET_FIELD(status, VM_L2_PROTECTION_FAULT_STATUS__RW).toString(16)}`);
}

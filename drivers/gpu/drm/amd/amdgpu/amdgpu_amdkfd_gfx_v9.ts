// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_amdkfd_gfx_v9.c (Linux 6.8): the kfd2kgd register
// programming KFD uses on GFX9 without the hardware scheduler — per-VMID shader memory
// settings, the VMID→PASID mapping the IH stamps into vectors, a KFD VMID's page-table base on
// both hubs, and loading/destroying a hardware queue descriptor from an MQD (compute HQDs and
// SDMA RLC queues). On kemu's common
// register map GFX10 uses the same functions (amdgpu_amdkfd_gfx_v10.c in the kernel).

import type { amdgpu_device } from "./amdgpu.ts";
import { amdgpu_gfx_with_grbm } from "./amdgpu_gfx.ts";
import { RREG32, WREG32 } from "./amdgpu_device.ts";
import { V9_MQD_CWSR_ORDER, V9_MQD_HQD_ORDER, type v9_mqd } from "../include/v9_structs.ts";
import {
  KFD_PREEMPT_TYPE_WAVEFRONT_DRAIN, KFD_PREEMPT_TYPE_WAVEFRONT_RESET, KFD_PREEMPT_TYPE_WAVEFRONT_SAVE, type kfd_preempt_type,
} from "../include/kgd_kfd_interface.ts";
import {
  CP_HQD_ACTIVE__ACTIVE, CP_HQD_PQ_DOORBELL_CONTROL__DOORBELL_EN, REG_GET_FIELD, REG_SET_FIELD, lower_32_bits, upper_32_bits,
  mmCP_HQD_ACTIVE, mmCP_HQD_DEQUEUE_REQUEST, mmCP_HQD_PERSISTENT_STATE, mmCP_HQD_PQ_BASE, mmCP_HQD_PQ_BASE_HI, mmCP_HQD_PQ_DOORBELL_CONTROL,
  mmIH_VMID_0_LUT, mmSH_MEM_BASES, mmSH_MEM_CONFIG, mmATC_VMID0_PASID_MAPPING, ATC_VMID0_PASID_MAPPING__VALID,
  DRAIN_PIPE, RESET_WAVES, SAVE_WAVES,
} from "../include/asic_reg/kemu_gpu_regs.ts";
import { EINVAL, ETIME } from "../../../../../include/uapi/asm-generic/errno.ts";
import type { v9_sdma_mqd } from "../include/v9_structs.ts";
import {
  SDMA0_RLC0_CONTEXT_STATUS__IDLE, SDMA0_RLC0_DOORBELL__ENABLE, SDMA0_RLC0_RB_CNTL__RB_ENABLE, mmSDMA_RLC, sdmaRLC_CONTEXT_STATUS,
  sdmaRLC_DOORBELL, sdmaRLC_DOORBELL_OFFSET, sdmaRLC_IB_CNTL, sdmaRLC_RB_BASE, sdmaRLC_RB_BASE_HI, sdmaRLC_RB_CNTL, sdmaRLC_RB_RPTR,
  sdmaRLC_RB_RPTR_ADDR_HI, sdmaRLC_RB_RPTR_ADDR_LO, sdmaRLC_RB_RPTR_HI, sdmaRLC_RB_WPTR, sdmaRLC_RB_WPTR_HI,
  sdmaRLC_RB_WPTR_POLL_ADDR_HI, sdmaRLC_RB_WPTR_POLL_ADDR_LO,
} from "../include/asic_reg/kemu_gpu_regs.ts";

/** The HQDs KFD uses live on MEC1. */
const KFD_MEC = 1;

export function amdgpu_amdkfd_is_kfd_vmid(adev: amdgpu_device, vmid: number): boolean {
  return vmid >= adev.vm_manager.first_kfd_vmid && vmid < 16;
}

/** kgd_gfx_v9_program_sh_mem_settings() */
export async function kgd_gfx_v9_program_sh_mem_settings(adev: amdgpu_device, vmid: number, sh_mem_config: number, sh_mem_bases: number): Promise<void> {
  await amdgpu_gfx_with_grbm(adev, 0, 0, 0, vmid, () => {
    WREG32(adev, mmSH_MEM_CONFIG, sh_mem_config);
    WREG32(adev, mmSH_MEM_BASES, sh_mem_bases);
  });
}

/** kgd_gfx_v9_set_pasid_vmid_mapping(): vectors of `vmid` now carry `pasid` (0 unmaps). */
export function kgd_gfx_v9_set_pasid_vmid_mapping(adev: amdgpu_device, pasid: number, vmid: number): number {
  if (vmid < 1 || vmid > 15) return -EINVAL;
  // The ATC mapping: on IOMMUv2 APUs the VMID's accesses then translate through the IOMMU with
  // this PASID (discrete parts have no ATC behind the register).
  WREG32(adev, mmATC_VMID0_PASID_MAPPING + vmid, pasid ? REG_SET_FIELD(pasid, ATC_VMID0_PASID_MAPPING__VALID, 1) : 0);
  WREG32(adev, mmIH_VMID_0_LUT + vmid, pasid & 0xffff);
  return 0;
}

/** kgd_gfx_v9_set_vm_context_page_table_base(): a KFD VMID translates with `page_table_base`. */
export function kgd_gfx_v9_set_vm_context_page_table_base(adev: amdgpu_device, vmid: number, page_table_base: number): void {
  if (!amdgpu_amdkfd_is_kfd_vmid(adev, vmid)) {
    adev.k.pr_err(`amdgpu: trying to set page table base for wrong VMID ${vmid}`);
    return;
  }
  for (const hub of adev.vmhub) {
    WREG32(adev, hub.ctx0_ptb_addr_lo32 + hub.ctx_addr_distance * vmid, lower_32_bits(page_table_base));
    WREG32(adev, hub.ctx0_ptb_addr_hi32 + hub.ctx_addr_distance * vmid, upper_32_bits(page_table_base));
  }
}

/**
 * kgd_gfx_v9_hqd_load(): copies the MQD into HQD (pipe, queue) of MEC1 — ring, pointers and the
 * context save area with its stack offsets (a saved context is restored on activation) —
 * enables its doorbell and activates it.
 */
export async function kgd_gfx_v9_hqd_load(adev: amdgpu_device, mqd: v9_mqd, pipe_id: number, queue_id: number): Promise<number> {
  await amdgpu_gfx_with_grbm(adev, KFD_MEC, pipe_id, queue_id, 0, () => {
    V9_MQD_HQD_ORDER.forEach((field, i) => {
      if (field !== "cp_hqd_active") WREG32(adev, mmCP_HQD_ACTIVE + i, mqd[field]);
    });
    V9_MQD_CWSR_ORDER.forEach((field, i) => WREG32(adev, mmCP_HQD_PERSISTENT_STATE + i, mqd[field]));
    const db = REG_SET_FIELD(mqd.cp_hqd_pq_doorbell_control, CP_HQD_PQ_DOORBELL_CONTROL__DOORBELL_EN, 1);
    WREG32(adev, mmCP_HQD_PQ_DOORBELL_CONTROL, db);
    WREG32(adev, mmCP_HQD_ACTIVE, REG_SET_FIELD(mqd.cp_hqd_active, CP_HQD_ACTIVE__ACTIVE, 1));
  });
  return 0;
}

/** kgd_gfx_v9_hqd_is_occupied(): the HQD is active on the queue at `queue_address`. */
export async function kgd_gfx_v9_hqd_is_occupied(adev: amdgpu_device, queue_address: number, pipe_id: number, queue_id: number): Promise<boolean> {
  let busy = false;
  await amdgpu_gfx_with_grbm(adev, KFD_MEC, pipe_id, queue_id, 0, () => {
    if (!REG_GET_FIELD(RREG32(adev, mmCP_HQD_ACTIVE), CP_HQD_ACTIVE__ACTIVE)) return;
    const base = RREG32(adev, mmCP_HQD_PQ_BASE) * 256 + RREG32(adev, mmCP_HQD_PQ_BASE_HI) * 2 ** 40;
    busy = base === queue_address;
  });
  return busy;
}

/**
 * The enum hqd_dequeue_request_type value for a KFD preemption type (an unknown type drains, as
 * in the kernel); the enum's values are the CP's, in kemu_gpu_regs.ts.
 */
function hqd_dequeue_request_type(reset_type: kfd_preempt_type): number {
  switch (reset_type) {
    case KFD_PREEMPT_TYPE_WAVEFRONT_RESET: return RESET_WAVES;
    case KFD_PREEMPT_TYPE_WAVEFRONT_SAVE: return SAVE_WAVES;
    case KFD_PREEMPT_TYPE_WAVEFRONT_DRAIN:
    default: return DRAIN_PIPE;
  }
}

/**
 * kgd_gfx_v9_hqd_destroy(): dequeue request of the type `reset_type` maps to, then wait
 * (sleeping 1 ms a poll) for the HQD to go inactive; -ETIME after `utimeout` ms.
 */
export async function kgd_gfx_v9_hqd_destroy(adev: amdgpu_device, reset_type: kfd_preempt_type, utimeout: number, pipe_id: number,
  queue_id: number): Promise<number> {
  const type = hqd_dequeue_request_type(reset_type);
  await amdgpu_gfx_with_grbm(adev, KFD_MEC, pipe_id, queue_id, 0, () => WREG32(adev, mmCP_HQD_DEQUEUE_REQUEST, type));
  const end = adev.k.ktime_get() + utimeout * 1e6;
  for (;;) {
    let active = 0;
    await amdgpu_gfx_with_grbm(adev, KFD_MEC, pipe_id, queue_id, 0, () => {
      active = REG_GET_FIELD(RREG32(adev, mmCP_HQD_ACTIVE), CP_HQD_ACTIVE__ACTIVE);
    });
    if (!active) return 0;
    if (adev.k.ktime_get() >= end) {
      adev.k.pr_err("amdgpu: cp queue preemption time out");
      return -ETIME;
    }
    await adev.k.msleep(1);
  }
}

// ---- SDMA user (RLC) queues ---------------------------------------------------------------------

/** get_sdma_rlc_reg_offset(): register `reg` of the RLC queue an SDMA MQD names. */
function sdma_rlc_reg(m: v9_sdma_mqd, reg: number): number {
  return mmSDMA_RLC(m.sdma_engine_id, m.sdma_queue_id, reg);
}

/** The MQD fields in RLC register order from sdmaRLC_RB_CNTL (CONTEXT_STATUS has no field). */
const SDMA_MQD_REGS: ReadonlyArray<[keyof v9_sdma_mqd, number]> = [
  ["sdmax_rlcx_rb_base", sdmaRLC_RB_BASE], ["sdmax_rlcx_rb_base_hi", sdmaRLC_RB_BASE_HI],
  ["sdmax_rlcx_rb_rptr", sdmaRLC_RB_RPTR], ["sdmax_rlcx_rb_rptr_hi", sdmaRLC_RB_RPTR_HI],
  ["sdmax_rlcx_rb_wptr_hi", sdmaRLC_RB_WPTR_HI], ["sdmax_rlcx_rb_wptr", sdmaRLC_RB_WPTR],
  ["sdmax_rlcx_rb_rptr_addr_lo", sdmaRLC_RB_RPTR_ADDR_LO], ["sdmax_rlcx_rb_rptr_addr_hi", sdmaRLC_RB_RPTR_ADDR_HI],
  ["sdmax_rlcx_doorbell_offset", sdmaRLC_DOORBELL_OFFSET], ["sdmax_rlcx_ib_cntl", sdmaRLC_IB_CNTL],
  ["sdmax_rlcx_rb_wptr_poll_addr_lo", sdmaRLC_RB_WPTR_POLL_ADDR_LO], ["sdmax_rlcx_rb_wptr_poll_addr_hi", sdmaRLC_RB_WPTR_POLL_ADDR_HI],
];

/**
 * Waits (sleeping 1 ms a poll, at most `timeout_ms`) for the RLC queue to report idle:
 * the packet in flight when RB_ENABLE was cleared has finished.
 */
async function sdma_rlc_wait_idle(adev: amdgpu_device, m: v9_sdma_mqd, timeout_ms: number): Promise<number> {
  const end = adev.k.ktime_get() + timeout_ms * 1e6;
  while (!REG_GET_FIELD(RREG32(adev, sdma_rlc_reg(m, sdmaRLC_CONTEXT_STATUS)), SDMA0_RLC0_CONTEXT_STATUS__IDLE)) {
    if (adev.k.ktime_get() >= end) return -ETIME;
    await adev.k.msleep(1);
  }
  return 0;
}

/**
 * kgd_gfx_v9_hqd_sdma_load(): stop the RLC queue, wait for it to drain, write the MQD's ring,
 * pointers, write-back and doorbell registers, then enable doorbell and ring.
 */
export async function kgd_gfx_v9_hqd_sdma_load(adev: amdgpu_device, m: v9_sdma_mqd): Promise<number> {
  const cntl = sdma_rlc_reg(m, sdmaRLC_RB_CNTL);
  WREG32(adev, cntl, REG_SET_FIELD(m.sdmax_rlcx_rb_cntl, SDMA0_RLC0_RB_CNTL__RB_ENABLE, 0));
  if (await sdma_rlc_wait_idle(adev, m, 2000)) {
    adev.k.pr_err("amdgpu: SDMA RLC not idle in kgd_hqd_sdma_load");
    return -ETIME;
  }
  for (const [field, reg] of SDMA_MQD_REGS) WREG32(adev, sdma_rlc_reg(m, reg), m[field]);
  WREG32(adev, sdma_rlc_reg(m, sdmaRLC_DOORBELL), REG_SET_FIELD(m.sdmax_rlcx_doorbell, SDMA0_RLC0_DOORBELL__ENABLE, 1));
  WREG32(adev, cntl, REG_SET_FIELD(m.sdmax_rlcx_rb_cntl, SDMA0_RLC0_RB_CNTL__RB_ENABLE, 1));
  return 0;
}

/** kgd_gfx_v9_hqd_sdma_is_occupied(): the RLC queue's ring is enabled. */
export function kgd_gfx_v9_hqd_sdma_is_occupied(adev: amdgpu_device, m: v9_sdma_mqd): boolean {
  return REG_GET_FIELD(RREG32(adev, sdma_rlc_reg(m, sdmaRLC_RB_CNTL)), SDMA0_RLC0_RB_CNTL__RB_ENABLE) === 1;
}

/**
 * kgd_gfx_v9_hqd_sdma_destroy(): clear RB_ENABLE, wait (≤ `utimeout` ms) for the packet in
 * flight to finish, disable the doorbell and save the read and write pointers into the MQD, so
 * a later load resumes where the queue stopped.
 */
export async function kgd_gfx_v9_hqd_sdma_destroy(adev: amdgpu_device, m: v9_sdma_mqd, utimeout: number): Promise<number> {
  const cntl = sdma_rlc_reg(m, sdmaRLC_RB_CNTL);
  WREG32(adev, cntl, REG_SET_FIELD(RREG32(adev, cntl), SDMA0_RLC0_RB_CNTL__RB_ENABLE, 0));
  if (await sdma_rlc_wait_idle(adev, m, utimeout)) {
    adev.k.pr_err("amdgpu: SDMA RLC queue preemption time out");
    return -ETIME;
  }
  WREG32(adev, sdma_rlc_reg(m, sdmaRLC_DOORBELL), 0);
  m.sdmax_rlcx_rb_rptr = RREG32(adev, sdma_rlc_reg(m, sdmaRLC_RB_RPTR));
  m.sdmax_rlcx_rb_rptr_hi = RREG32(adev, sdma_rlc_reg(m, sdmaRLC_RB_RPTR_HI));
  m.sdmax_rlcx_rb_wptr = RREG32(adev, sdma_rlc_reg(m, sdmaRLC_RB_WPTR));
  m.sdmax_rlcx_rb_wptr_hi = RREG32(adev, sdma_rlc_reg(m, sdmaRLC_RB_WPTR_HI));
  return 0;
}

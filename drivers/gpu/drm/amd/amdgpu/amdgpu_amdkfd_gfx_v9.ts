// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_amdkfd_gfx_v9.c (Linux 6.8): the kfd2kgd register
// programming KFD uses on GFX9 without the hardware scheduler — per-VMID shader memory
// settings, the VMID→PASID mapping the IH stamps into vectors, a KFD VMID's page-table base on
// both hubs, and loading/destroying a hardware queue descriptor from an MQD. On kemu's common
// register map GFX10 uses the same functions (amdgpu_amdkfd_gfx_v10.c in the kernel).

import type { amdgpu_device } from "./amdgpu.ts";
import { amdgpu_gfx_with_grbm } from "./amdgpu_gfx.ts";
import { RREG32, WREG32 } from "./amdgpu_device.ts";
import { V9_MQD_HQD_ORDER, type v9_mqd } from "../include/v9_structs.ts";
import {
  CP_HQD_ACTIVE__ACTIVE, CP_HQD_PQ_DOORBELL_CONTROL__DOORBELL_EN, REG_GET_FIELD, REG_SET_FIELD, lower_32_bits, upper_32_bits,
  mmCP_HQD_ACTIVE, mmCP_HQD_DEQUEUE_REQUEST, mmCP_HQD_PQ_BASE, mmCP_HQD_PQ_BASE_HI, mmCP_HQD_PQ_DOORBELL_CONTROL,
  mmIH_VMID_0_LUT, mmSH_MEM_BASES, mmSH_MEM_CONFIG,
} from "../include/asic_reg/kemu_gpu_regs.ts";
import { EINVAL, ETIME } from "../../../../../include/uapi/asm-generic/errno.ts";

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
 * kgd_gfx_v9_hqd_load(): copies the MQD into HQD (pipe, queue) of MEC1, enables its doorbell
 * and activates it.
 */
export async function kgd_gfx_v9_hqd_load(adev: amdgpu_device, mqd: v9_mqd, pipe_id: number, queue_id: number): Promise<number> {
  await amdgpu_gfx_with_grbm(adev, KFD_MEC, pipe_id, queue_id, 0, () => {
    V9_MQD_HQD_ORDER.forEach((field, i) => {
      if (field !== "cp_hqd_active") WREG32(adev, mmCP_HQD_ACTIVE + i, mqd[field]);
    });
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
 * kgd_gfx_v9_hqd_destroy(): dequeue request, then wait (sleeping 1 ms a poll) for the HQD to go
 * inactive; -ETIME after `utimeout` ms.
 */
export async function kgd_gfx_v9_hqd_destroy(adev: amdgpu_device, pipe_id: number, queue_id: number, utimeout: number): Promise<number> {
  await amdgpu_gfx_with_grbm(adev, KFD_MEC, pipe_id, queue_id, 0, () => WREG32(adev, mmCP_HQD_DEQUEUE_REQUEST, 1));
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

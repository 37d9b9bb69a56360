// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_mqd_manager_v9.c (Linux 6.8), compute and SDMA queues: the
// memory queue descriptor of a user queue (ring base and size, read/write pointer addresses,
// doorbell, VMID) and loading it into / unloading it from a hardware queue slot through the
// kfd2kgd functions of amdgpu_amdkfd_gfx_v9.
//
// On a preemption the CP writes the queue's state back for the next load: its read and write
// pointers, and — depending on the preemption type — the waves it saved into the queue's context
// save area (CWSR: the control-stack and workgroup-state offsets move) or, after a drain, the
// workgroup its dispatch resumes from (compute_restart_x). The real CP writes these into the MQD
// in memory; kemu's HQD has no MQD address, so destroy_mqd reads them back from the registers
// (amdgpu's hqd_destroy does not touch the MQD).

import { RREG32 } from "../amdgpu/amdgpu_device.ts";
import { amdgpu_gfx_with_grbm } from "../amdgpu/amdgpu_gfx.ts";
import { kgd_gfx_v9_hqd_destroy, kgd_gfx_v9_hqd_is_occupied, kgd_gfx_v9_hqd_load } from "../amdgpu/amdgpu_amdkfd_gfx_v9.ts";
import type { v9_mqd, v9_sdma_mqd } from "../include/v9_structs.ts";
import type { kfd_preempt_type } from "../include/kgd_kfd_interface.ts";
import { kgd_gfx_v9_hqd_sdma_destroy, kgd_gfx_v9_hqd_sdma_is_occupied, kgd_gfx_v9_hqd_sdma_load } from "../amdgpu/amdgpu_amdkfd_gfx_v9.ts";
import {
  SDMA0_RLC0_DOORBELL_OFFSET__OFFSET, SDMA0_RLC0_IB_CNTL__IB_ENABLE, SDMA0_RLC0_RB_CNTL__RB_SIZE, SDMA0_RLC0_RB_CNTL__RB_VMID,
  SDMA0_RLC0_RB_CNTL__RPTR_WRITEBACK_ENABLE,
  CP_HQD_PERSISTENT_STATE__QSWITCH_MODE, CP_HQD_PQ_CONTROL__QUEUE_SIZE, CP_HQD_PQ_DOORBELL_CONTROL__DOORBELL_OFFSET, REG_SET_FIELD,
  lower_32_bits, upper_32_bits,
  mmCOMPUTE_RESTART_X, mmCP_HQD_CNTL_STACK_OFFSET, mmCP_HQD_PQ_RPTR, mmCP_HQD_PQ_WPTR_HI, mmCP_HQD_PQ_WPTR_LO,
  mmCP_HQD_WG_STATE_OFFSET,
} from "../include/asic_reg/kemu_gpu_regs.ts";
import type { kfd_node, queue_properties } from "./kfd_priv.ts";

/** KFD_UNMAP_LATENCY_MS: how long a preemption may take. */
export const KFD_UNMAP_LATENCY_MS = 4000;
const KFD_MEC = 1;

/**
 * init_mqd(): a fresh descriptor for queue `q` (inactive; update_mqd fills the ring). With CWSR
 * on and a save area from user space, the CP may switch the queue out with its waves saved:
 * the control stack takes the area's first ctl_stack_size bytes (empty: its offset at the top),
 * workgroup state starts right after it.
 */
export function init_mqd(dev: kfd_node, q: queue_properties): v9_mqd {
  const m: v9_mqd = {
    cp_hqd_active: 0, cp_hqd_vmid: 0, cp_hqd_pq_base_lo: 0, cp_hqd_pq_base_hi: 0, cp_hqd_pq_rptr: 0,
    cp_hqd_pq_rptr_report_addr_lo: 0, cp_hqd_pq_rptr_report_addr_hi: 0, cp_hqd_pq_wptr_poll_addr_lo: 0,
    cp_hqd_pq_wptr_poll_addr_hi: 0, cp_hqd_pq_doorbell_control: 0, cp_hqd_pq_control: 0, cp_hqd_pq_wptr_lo: 0,
    cp_hqd_pq_wptr_hi: 0, cp_hqd_persistent_state: 0, cp_hqd_ctx_save_base_addr_lo: 0, cp_hqd_ctx_save_base_addr_hi: 0,
    cp_hqd_ctx_save_size: 0, cp_hqd_cntl_stack_offset: 0, cp_hqd_cntl_stack_size: 0, cp_hqd_wg_state_offset: 0,
    compute_restart_x: 0,
  };
  if (dev.kfd.cwsr_enabled && q.ctx_save_restore_area_address) {
    m.cp_hqd_persistent_state = REG_SET_FIELD(0, CP_HQD_PERSISTENT_STATE__QSWITCH_MODE, 1);
    m.cp_hqd_ctx_save_base_addr_lo = lower_32_bits(q.ctx_save_restore_area_address);
    m.cp_hqd_ctx_save_base_addr_hi = upper_32_bits(q.ctx_save_restore_area_address);
    m.cp_hqd_ctx_save_size = q.ctx_save_restore_area_size;
    m.cp_hqd_cntl_stack_size = q.ctl_stack_size;
    m.cp_hqd_cntl_stack_offset = q.ctl_stack_size;
    m.cp_hqd_wg_state_offset = q.ctl_stack_size;
  }
  update_mqd(m, q);
  return m;
}

/**
 * update_mqd(): ring base (256-byte units), size as log2(dwords) - 1, the user's read/write
 * pointer addresses, the doorbell dword offset and the VMID.
 */
export function update_mqd(m: v9_mqd, q: queue_properties): void {
  const base = q.queue_address / 256;
  m.cp_hqd_pq_base_lo = lower_32_bits(base);
  m.cp_hqd_pq_base_hi = upper_32_bits(base);
  m.cp_hqd_pq_control = REG_SET_FIELD(0, CP_HQD_PQ_CONTROL__QUEUE_SIZE, Math.max(Math.log2(q.queue_size / 4) - 1, 0));
  m.cp_hqd_pq_rptr_report_addr_lo = lower_32_bits(q.read_ptr);
  m.cp_hqd_pq_rptr_report_addr_hi = upper_32_bits(q.read_ptr);
  m.cp_hqd_pq_wptr_poll_addr_lo = lower_32_bits(q.write_ptr);
  m.cp_hqd_pq_wptr_poll_addr_hi = upper_32_bits(q.write_ptr);
  m.cp_hqd_pq_doorbell_control = REG_SET_FIELD(0, CP_HQD_PQ_DOORBELL_CONTROL__DOORBELL_OFFSET, q.doorbell_off);
  m.cp_hqd_vmid = q.vmid;
}

/** load_mqd(): the queue starts fetching from where it left off (the saved pointers). */
export function load_mqd(dev: kfd_node, m: v9_mqd, pipe: number, queue: number): Promise<number> {
  return kgd_gfx_v9_hqd_load(dev.adev, m, pipe, queue);
}

/**
 * destroy_mqd(): preempt the queue the way `type` says, then keep what the CP left for the next
 * load: its pointers, the context-save offsets and the restart workgroup.
 */
export async function destroy_mqd(dev: kfd_node, m: v9_mqd, type: kfd_preempt_type, timeout_ms: number, pipe: number,
  queue: number): Promise<number> {
  const adev = dev.adev;
  const r = await kgd_gfx_v9_hqd_destroy(adev, type, timeout_ms, pipe, queue);
  await amdgpu_gfx_with_grbm(adev, KFD_MEC, pipe, queue, 0, () => {
    m.cp_hqd_pq_rptr = RREG32(adev, mmCP_HQD_PQ_RPTR);
    m.cp_hqd_pq_wptr_lo = RREG32(adev, mmCP_HQD_PQ_WPTR_LO);
    m.cp_hqd_pq_wptr_hi = RREG32(adev, mmCP_HQD_PQ_WPTR_HI);
    m.cp_hqd_cntl_stack_offset = RREG32(adev, mmCP_HQD_CNTL_STACK_OFFSET);
    m.cp_hqd_wg_state_offset = RREG32(adev, mmCP_HQD_WG_STATE_OFFSET);
    m.compute_restart_x = RREG32(adev, mmCOMPUTE_RESTART_X);
  });
  return r;
}

export function is_occupied(dev: kfd_node, queue_address: number, pipe: number, queue: number): Promise<boolean> {
  return kgd_gfx_v9_hqd_is_occupied(dev.adev, queue_address, pipe, queue);
}

// ---- SDMA user queues (v9_sdma_mqd) ------------------------------------------------------------

/** init_mqd_sdma(): a descriptor for SDMA queue `q` on the engine and queue the DQM picked. */
export function init_mqd_sdma(q: queue_properties): v9_sdma_mqd {
  const m: v9_sdma_mqd = {
    sdmax_rlcx_rb_cntl: 0, sdmax_rlcx_rb_base: 0, sdmax_rlcx_rb_base_hi: 0, sdmax_rlcx_rb_rptr: 0, sdmax_rlcx_rb_rptr_hi: 0,
    sdmax_rlcx_rb_wptr: 0, sdmax_rlcx_rb_wptr_hi: 0, sdmax_rlcx_rb_rptr_addr_lo: 0, sdmax_rlcx_rb_rptr_addr_hi: 0,
    sdmax_rlcx_doorbell: 0, sdmax_rlcx_doorbell_offset: 0, sdmax_rlcx_ib_cntl: 0, sdmax_rlcx_rb_wptr_poll_addr_lo: 0,
    sdmax_rlcx_rb_wptr_poll_addr_hi: 0, sdma_engine_id: 0, sdma_queue_id: 0,
  };
  update_mqd_sdma(m, q);
  return m;
}

/**
 * update_mqd_sdma(): ring size as log2(dwords), the VMID, read-pointer write-back to the user's
 * read_ptr, the user's write_ptr as the poll address a resumed queue reloads its wptr from,
 * ring base in 256-byte units, the doorbell dword offset and the engine/queue slot.
 */
export function update_mqd_sdma(m: v9_sdma_mqd, q: queue_properties): void {
  let cntl = REG_SET_FIELD(0, SDMA0_RLC0_RB_CNTL__RB_SIZE, Math.log2(q.queue_size / 4));
  cntl = REG_SET_FIELD(cntl, SDMA0_RLC0_RB_CNTL__RB_VMID, q.vmid);
  m.sdmax_rlcx_rb_cntl = REG_SET_FIELD(cntl, SDMA0_RLC0_RB_CNTL__RPTR_WRITEBACK_ENABLE, 1);
  const base = q.queue_address / 256;
  m.sdmax_rlcx_rb_base = lower_32_bits(base);
  m.sdmax_rlcx_rb_base_hi = upper_32_bits(base);
  m.sdmax_rlcx_rb_rptr_addr_lo = lower_32_bits(q.read_ptr);
  m.sdmax_rlcx_rb_rptr_addr_hi = upper_32_bits(q.read_ptr);
  m.sdmax_rlcx_rb_wptr_poll_addr_lo = lower_32_bits(q.write_ptr);
  m.sdmax_rlcx_rb_wptr_poll_addr_hi = upper_32_bits(q.write_ptr);
  m.sdmax_rlcx_doorbell_offset = REG_SET_FIELD(0, SDMA0_RLC0_DOORBELL_OFFSET__OFFSET, q.doorbell_off);
  m.sdmax_rlcx_ib_cntl = REG_SET_FIELD(0, SDMA0_RLC0_IB_CNTL__IB_ENABLE, 1);
  m.sdma_engine_id = q.sdma_engine_id;
  m.sdma_queue_id = q.sdma_queue_id;
}

/** load_mqd_sdma(): the RLC queue resumes from the MQD's saved pointers. */
export function load_mqd_sdma(dev: kfd_node, m: v9_sdma_mqd): Promise<number> {
  return kgd_gfx_v9_hqd_sdma_load(dev.adev, m);
}

/** destroy_mqd_sdma(): quiesce the RLC queue (the packet in flight drains), saving its pointers. */
export function destroy_mqd_sdma(dev: kfd_node, m: v9_sdma_mqd, timeout_ms: number): Promise<number> {
  return kgd_gfx_v9_hqd_sdma_destroy(dev.adev, m, timeout_ms);
}

export function is_occupied_sdma(dev: kfd_node, m: v9_sdma_mqd): boolean {
  return kgd_gfx_v9_hqd_sdma_is_occupied(dev.adev, m);
}

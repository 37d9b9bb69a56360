// Mirrors drivers/gpu/drm/amd/include/v9_structs.h (Linux 6.8), reduced: the part of the GFX9
// memory queue descriptor (MQD) that hqd_load() copies into the HQD registers of kemu's CP, in
// register order (CP_HQD_ACTIVE .. CP_HQD_PQ_WPTR_HI, then the context-save block
// CP_HQD_PERSISTENT_STATE .. COMPUTE_RESTART_X). KFD fills one per user queue.

export interface v9_mqd {
  cp_hqd_active: number;
  cp_hqd_vmid: number;
  cp_hqd_pq_base_lo: number;
  cp_hqd_pq_base_hi: number;
  cp_hqd_pq_rptr: number;
  cp_hqd_pq_rptr_report_addr_lo: number;
  cp_hqd_pq_rptr_report_addr_hi: number;
  cp_hqd_pq_wptr_poll_addr_lo: number;
  cp_hqd_pq_wptr_poll_addr_hi: number;
  cp_hqd_pq_doorbell_control: number;
  cp_hqd_pq_control: number;
  cp_hqd_pq_wptr_lo: number;
  cp_hqd_pq_wptr_hi: number;
  cp_hqd_persistent_state: number;
  cp_hqd_ctx_save_base_addr_lo: number;
  cp_hqd_ctx_save_base_addr_hi: number;
  cp_hqd_ctx_save_size: number;
  cp_hqd_cntl_stack_offset: number;
  cp_hqd_cntl_stack_size: number;
  cp_hqd_wg_state_offset: number;
  compute_restart_x: number;
}

/** The MQD fields in HQD register order, starting at mmCP_HQD_ACTIVE. */
export const V9_MQD_HQD_ORDER: ReadonlyArray<keyof v9_mqd> = [
  "cp_hqd_active", "cp_hqd_vmid", "cp_hqd_pq_base_lo", "cp_hqd_pq_base_hi", "cp_hqd_pq_rptr",
  "cp_hqd_pq_rptr_report_addr_lo", "cp_hqd_pq_rptr_report_addr_hi", "cp_hqd_pq_wptr_poll_addr_lo",
  "cp_hqd_pq_wptr_poll_addr_hi", "cp_hqd_pq_doorbell_control", "cp_hqd_pq_control", "cp_hqd_pq_wptr_lo",
  "cp_hqd_pq_wptr_hi",
];

/** The context-save fields in HQD register order, starting at mmCP_HQD_PERSISTENT_STATE. */
export const V9_MQD_CWSR_ORDER: ReadonlyArray<keyof v9_mqd> = [
  "cp_hqd_persistent_state", "cp_hqd_ctx_save_base_addr_lo", "cp_hqd_ctx_save_base_addr_hi", "cp_hqd_ctx_save_size",
  "cp_hqd_cntl_stack_offset", "cp_hqd_cntl_stack_size", "cp_hqd_wg_state_offset", "compute_restart_x",
];

/**
 * struct v9_sdma_mqd, reduced: an SDMA user (RLC) queue's registers in kemu's RLC register
 * order (sdmaRLC_RB_CNTL .. sdmaRLC_RB_WPTR_POLL_ADDR_HI, CONTEXT_STATUS excluded) plus the
 * engine and queue it is loaded on.
 */
export interface v9_sdma_mqd {
  sdmax_rlcx_rb_cntl: number;
  sdmax_rlcx_rb_base: number;
  sdmax_rlcx_rb_base_hi: number;
  sdmax_rlcx_rb_rptr: number;
  sdmax_rlcx_rb_rptr_hi: number;
  sdmax_rlcx_rb_wptr: number;
  sdmax_rlcx_rb_wptr_hi: number;
  sdmax_rlcx_rb_rptr_addr_lo: number;
  sdmax_rlcx_rb_rptr_addr_hi: number;
  sdmax_rlcx_doorbell: number;
  sdmax_rlcx_doorbell_offset: number;
  sdmax_rlcx_ib_cntl: number;
  sdmax_rlcx_rb_wptr_poll_addr_lo: number;
  sdmax_rlcx_rb_wptr_poll_addr_hi: number;
  sdma_engine_id: number;
  sdma_queue_id: number;
}

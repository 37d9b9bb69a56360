// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_gfx.c and amdgpu_gfx.h (Linux 6.8), reduced to the
// compute side kemu models: the MEC geometry (queues KFD may use) and the CP interrupt sources.
// amdgpu's own kernel compute rings and the KIQ are not modelled (KFD loads HQDs directly).

import type { amdgpu_device } from "./amdgpu.ts";
import { amdgpu_irq_src } from "./amdgpu_irq.ts";
import { mutex_lock, mutex_unlock } from "../../../../../kernel/locking/mutex.ts";
import { WREG32 } from "./amdgpu_device.ts";
import {
  GRBM_GFX_CNTL__MEID, GRBM_GFX_CNTL__PIPEID, GRBM_GFX_CNTL__QUEUEID, GRBM_GFX_CNTL__VMID, MEC_NUM_PIPES,
  MEC_QUEUES_PER_PIPE, REG_SET_FIELD, mmGRBM_GFX_CNTL,
} from "../include/asic_reg/kemu_gpu_regs.ts";

export class amdgpu_mec {
  num_mec = 1;
  num_pipe_per_mec = MEC_NUM_PIPES;
  num_queue_per_pipe = MEC_QUEUES_PER_PIPE;
}

export class amdgpu_gfx {
  readonly mec = new amdgpu_mec();
  readonly eop_irq = new amdgpu_irq_src();
  /** Compute units reported to KFD topology (kemu's shader engine is one CU). */
  cu_active_number = 1;
}

/** soc15_grbm_select(): banked CP_HQD_* and SH_MEM_* registers now address (me, pipe, queue, vmid). */
export function soc15_grbm_select(adev: amdgpu_device, me: number, pipe: number, queue: number, vmid: number): void {
  let v = REG_SET_FIELD(0, GRBM_GFX_CNTL__MEID, me);
  v = REG_SET_FIELD(v, GRBM_GFX_CNTL__PIPEID, pipe);
  v = REG_SET_FIELD(v, GRBM_GFX_CNTL__QUEUEID, queue);
  v = REG_SET_FIELD(v, GRBM_GFX_CNTL__VMID, vmid);
  WREG32(adev, mmGRBM_GFX_CNTL, v);
}

/** Runs `fn` with the SRBM selection made, under srbm_mutex (the lock/select/unselect dance). */
export async function amdgpu_gfx_with_grbm(adev: amdgpu_device, me: number, pipe: number, queue: number, vmid: number, fn: () => void): Promise<void> {
  await mutex_lock(adev.srbm_mutex);
  try {
    soc15_grbm_select(adev, me, pipe, queue, vmid);
    fn();
  } finally {
    soc15_grbm_select(adev, 0, 0, 0, 0);
    mutex_unlock(adev.srbm_mutex);
  }
}

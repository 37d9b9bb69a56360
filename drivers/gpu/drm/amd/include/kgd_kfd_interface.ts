// Mirrors drivers/gpu/drm/amd/include/kgd_kfd_interface.h (Linux 6.8), reduced to the preemption
// types KFD passes to amdgpu's hqd_destroy (the kfd2kgd call table itself is amdgpu_amdkfd.ts).

/** enum kfd_preempt_type: how a queue leaves its hardware slot. */
export const KFD_PREEMPT_TYPE_WAVEFRONT_DRAIN = 0;
export const KFD_PREEMPT_TYPE_WAVEFRONT_RESET = 1;
export const KFD_PREEMPT_TYPE_WAVEFRONT_SAVE = 2;
export type kfd_preempt_type =
  | typeof KFD_PREEMPT_TYPE_WAVEFRONT_DRAIN | typeof KFD_PREEMPT_TYPE_WAVEFRONT_RESET | typeof KFD_PREEMPT_TYPE_WAVEFRONT_SAVE;

// kemu (no Linux file): the modules a machine can load by name — the emulator's stand-in for the
// kernel's /lib/modules/$(uname -r). Each subsystem adds its loadable drivers here.

import type { ModuleDef } from "./main.ts";
import { test_hmm_module } from "../../lib/test_hmm.ts";
import { amd_iommu_v2_module } from "../../iommu/amd/iommu_v2.ts";
import { amdgpu_module } from "../../drivers/gpu/drm/amd/amdgpu/amdgpu_drv.ts";
import { amdkfd_module } from "../../drivers/gpu/drm/amd/amdkfd/kfd_module.ts";

export function builtin_modules(): ModuleDef[] {
  return [test_hmm_module, amd_iommu_v2_module, amdgpu_module, amdkfd_module];
}

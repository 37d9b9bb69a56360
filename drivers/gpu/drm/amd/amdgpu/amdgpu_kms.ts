// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_kms.c (Linux 6.8): driver load/unload and the
// per-file state of render nodes. Opening /dev/dri/renderD* creates an amdgpu_fpriv with its
// own VM and PASID; the last close tears them down.

import type { amdgpu_device } from "./amdgpu.ts";
import type { amd_asic_type } from "./amdgpu.ts";
import { amdgpu_device_fini_hw, amdgpu_device_fini_sw, amdgpu_device_init } from "./amdgpu_device.ts";
import { amdgpu_vm, amdgpu_vm_fini, amdgpu_vm_init, amdgpu_vm_set_pasid, amdgpu_vm_set_task_info } from "./amdgpu_vm.ts";
import { amdgpu_pasid_alloc, amdgpu_pasid_free } from "./amdgpu_ids.ts";
import type { drm_device } from "../../drm_drv.ts";
import type { drm_file } from "../../drm_file.ts";

/** struct amdgpu_fpriv: what a render-node file owns. */
export class amdgpu_fpriv {
  readonly vm = new amdgpu_vm();
  /** The PASID allocated at open (KFD may rebind the VM to its own). */
  pasid = 0;
}

/** amdgpu_driver_load_kms(): device init; on failure whatever came up is torn down. */
export async function amdgpu_driver_load_kms(adev: amdgpu_device, asic: amd_asic_type): Promise<number> {
  const r = await amdgpu_device_init(adev, asic);
  if (r) {
    adev.k.dev_err(adev, `Fatal error during GPU init`);
    await amdgpu_driver_unload_kms(adev);
  }
  return r;
}

export async function amdgpu_driver_unload_kms(adev: amdgpu_device): Promise<void> {
  await amdgpu_device_fini_hw(adev);
  await amdgpu_device_fini_sw(adev);
}

/** amdgpu_driver_open_kms(): a VM with a PASID for the new file. */
export async function amdgpu_driver_open_kms(dev: drm_device, file: drm_file): Promise<number> {
  const adev = dev.dev_private as amdgpu_device;
  const fpriv = new amdgpu_fpriv();
  const pasid = amdgpu_pasid_alloc(adev.k, 16);
  if (pasid < 0) return pasid;
  let r = await amdgpu_vm_init(adev, fpriv.vm);
  if (!r) r = amdgpu_vm_set_pasid(adev, fpriv.vm, pasid);
  if (r) {
    await amdgpu_vm_fini(adev, fpriv.vm);
    amdgpu_pasid_free(adev.k, pasid);
    return r;
  }
  amdgpu_vm_set_task_info(adev, fpriv.vm);
  fpriv.pasid = pasid;
  file.driver_priv = fpriv;
  return 0;
}

/** amdgpu_driver_postclose_kms() */
export async function amdgpu_driver_postclose_kms(dev: drm_device, file: drm_file): Promise<void> {
  const adev = dev.dev_private as amdgpu_device;
  const fpriv = file.driver_priv as amdgpu_fpriv | null;
  if (!fpriv) return;
  await amdgpu_vm_fini(adev, fpriv.vm);
  if (fpriv.pasid) amdgpu_pasid_free(adev.k, fpriv.pasid);
  file.driver_priv = null;
}

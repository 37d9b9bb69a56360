// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_amdkfd_gpuvm.c (Linux 6.8), the KFD memory side of
// amdgpu: the system/TTM/VRAM limits KFD allocations are charged against (SVM ranges with XNACK
// off are charged as userptr memory), and handing a render node's VM to a KFD process and back
// (the acquire itself is amdgpu_amdkfd.ts's). KFD BOs (AMDKFD_IOC_ALLOC_MEMORY_OF_GPU) and
// their eviction are not modelled.
//
// kemu: `kfd_mem_limit` is a static of the kernel file; it lives on the machine's amdkfd object,
// which the functions take first.

import type { amdkfd } from "../amdkfd/kfd_module.ts";
import type { amdgpu_device } from "./amdgpu.ts";
import type { file } from "../../../../../include/linux/fs.ts";
import { drm_file, drm_file_of } from "../../drm_file.ts";
import { amdgpu_fpriv } from "./amdgpu_kms.ts";
import { amdgpu_vm_set_pasid, type amdgpu_vm } from "./amdgpu_vm.ts";
import { spinlock_t, spin_lock, spin_unlock } from "../../../../../kernel/locking/spinlock.ts";
import { NODE_DATA } from "../../../../../include/linux/mmzone.ts";
import { EINVAL, ENOMEM } from "../../../../../include/uapi/asm-generic/errno.ts";
import {
  KFD_IOC_ALLOC_MEM_FLAGS_DOORBELL, KFD_IOC_ALLOC_MEM_FLAGS_GTT, KFD_IOC_ALLOC_MEM_FLAGS_MMIO_REMAP,
  KFD_IOC_ALLOC_MEM_FLAGS_USERPTR, KFD_IOC_ALLOC_MEM_FLAGS_VRAM,
} from "../../../../../include/uapi/linux/kfd_ioctl.ts";

const PAGE_SIZE = 4096;
/** AMDGPU_RESERVE_MEM_LIMIT: system memory kept back from KFD. */
export const AMDGPU_RESERVE_MEM_LIMIT = 512 * 1024 * 1024;

/** struct kfd_mem_usage_limit. */
export interface kfd_mem_usage_limit {
  max_system_mem_limit: number;
  max_ttm_mem_limit: number;
  system_mem_used: number;
  ttm_mem_used: number;
  readonly mem_limit_lock: spinlock_t;
}

/**
 * amdgpu_amdkfd_gpuvm_init_mem_limits(): KFD may use all RAM but 1/64 and 512 MiB (or half of
 * a small RAM); TTM may use half of RAM (ttm_tt_pages_limit()).
 */
export function amdgpu_amdkfd_gpuvm_init_mem_limits(kfd: amdkfd): void {
  const mem = NODE_DATA(kfd.k).page_alloc.totalram_pages() * PAGE_SIZE;
  let max_system = mem - Math.floor(mem / 64);
  if (max_system < 2 * AMDGPU_RESERVE_MEM_LIMIT) max_system = Math.floor(max_system / 2);
  else max_system -= AMDGPU_RESERVE_MEM_LIMIT;
  kfd.kfd_mem_limit = {
    max_system_mem_limit: max_system,
    max_ttm_mem_limit: Math.floor(mem / PAGE_SIZE / 2) * PAGE_SIZE,
    system_mem_used: 0,
    ttm_mem_used: 0,
    mem_limit_lock: new spinlock_t(kfd.k, "&kfd_mem_limit.mem_limit_lock"),
  };
  kfd.k.pr_debug(`Kernel memory limit ${Math.floor(max_system / 2 ** 20)}M, TTM limit ${Math.floor(kfd.kfd_mem_limit.max_ttm_mem_limit / 2 ** 20)}M`, "kfd");
}

function needs(size: number, alloc_flag: number): { system: number; ttm: number; vram: number } | null {
  if (alloc_flag & KFD_IOC_ALLOC_MEM_FLAGS_GTT) return { system: size, ttm: size, vram: 0 };
  if (alloc_flag & KFD_IOC_ALLOC_MEM_FLAGS_VRAM) return { system: 0, ttm: 0, vram: size };
  if (alloc_flag & KFD_IOC_ALLOC_MEM_FLAGS_USERPTR) return { system: size, ttm: 0, vram: 0 };
  if (alloc_flag & (KFD_IOC_ALLOC_MEM_FLAGS_DOORBELL | KFD_IOC_ALLOC_MEM_FLAGS_MMIO_REMAP)) return { system: 0, ttm: 0, vram: 0 };
  return null;
}

/**
 * amdgpu_amdkfd_reserve_mem_limit(): charge `size` bytes of an allocation of kind `alloc_flag`
 * (VRAM on `adev`, GTT, userptr); -ENOMEM if a limit would be exceeded, nothing charged then.
 */
export function amdgpu_amdkfd_reserve_mem_limit(kfd: amdkfd, adev: amdgpu_device | null, size: number, alloc_flag: number, xcp_id: number): number {
  const n = needs(size, alloc_flag);
  if (!n) {
    kfd.k.pr_err(`amdgpu_amdkfd_reserve_mem_limit: Invalid BO type 0x${alloc_flag.toString(16)}`);
    return -EINVAL;
  }
  const l = kfd.kfd_mem_limit;
  spin_lock(l.mem_limit_lock);
  const vram_used = adev?.kfd.vram_used ?? 0;
  const vram_size = adev?.gmc.real_vram_size ?? 0;
  if (l.system_mem_used + n.system > l.max_system_mem_limit ||
      l.ttm_mem_used + n.ttm > l.max_ttm_mem_limit ||
      (adev && xcp_id >= 0 && vram_used + n.vram > vram_size)) {
    spin_unlock(l.mem_limit_lock);
    return -ENOMEM;
  }
  kfd.k.WARN_ONCE(n.vram !== 0 && !adev, "adev reference can't be null when vram is used");
  if (adev && xcp_id >= 0) adev.kfd.vram_used = vram_used + n.vram;
  l.system_mem_used += n.system;
  l.ttm_mem_used += n.ttm;
  spin_unlock(l.mem_limit_lock);
  return 0;
}

/** amdgpu_amdkfd_unreserve_mem_limit(): give a charge back (WARN on going negative). */
export function amdgpu_amdkfd_unreserve_mem_limit(kfd: amdkfd, adev: amdgpu_device | null, size: number, alloc_flag: number, xcp_id: number): void {
  const n = needs(size, alloc_flag);
  if (!n) {
    kfd.k.pr_err(`amdgpu_amdkfd_unreserve_mem_limit: Invalid BO type 0x${alloc_flag.toString(16)}`);
    return;
  }
  const l = kfd.kfd_mem_limit;
  spin_lock(l.mem_limit_lock);
  if (adev && xcp_id >= 0) {
    adev.kfd.vram_used = (adev.kfd.vram_used ?? 0) - n.vram;
    kfd.k.WARN_ONCE(adev.kfd.vram_used < 0, "KFD VRAM memory accounting unbalanced");
  }
  l.system_mem_used -= n.system;
  l.ttm_mem_used -= n.ttm;
  kfd.k.WARN_ONCE(l.system_mem_used < 0, "KFD system memory accounting unbalanced");
  kfd.k.WARN_ONCE(l.ttm_mem_used < 0, "KFD TTM memory accounting unbalanced");
  spin_unlock(l.mem_limit_lock);
}

// ---- process VMs ---------------------------------------------------------------------------

/**
 * amdgpu_file_to_fpriv() (amdgpu_drv.c): the amdgpu per-file state of an open render node;
 * -EINVAL for any other file.
 */
export function amdgpu_file_to_fpriv(filp: file | null): amdgpu_fpriv | number {
  const priv = filp ? drm_file_of(filp) : null;
  return priv?.driver_priv instanceof amdgpu_fpriv ? priv.driver_priv : -EINVAL;
}

/** drm_priv_to_vm(): the VM behind the drm_file KFD keeps as a process's drm_priv. */
export function drm_priv_to_vm(drm_priv: unknown): amdgpu_vm | null {
  if (!(drm_priv instanceof drm_file)) return null;
  return drm_priv.driver_priv instanceof amdgpu_fpriv ? drm_priv.driver_priv.vm : null;
}

/**
 * amdgpu_amdkfd_gpuvm_release_process_vm(): KFD lets go of a compute VM: it loses KFD's PASID
 * and its compute status; the render-node file's own release frees it later.
 */
export function amdgpu_amdkfd_gpuvm_release_process_vm(adev: amdgpu_device, drm_priv: unknown): void {
  const vm = drm_priv_to_vm(drm_priv);
  if (!vm) return;
  amdgpu_vm_set_pasid(adev, vm, 0);
  vm.is_compute_context = false;
}

// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_amdkfd.c and amdgpu_amdkfd.h (Linux 6.8): the
// interface between amdgpu and amdkfd. In the kernel amdkfd is linked into amdgpu.ko and the
// two call each other's symbols (kgd2kfd_* and svm_range_restore_pages one way, amdgpu_amdkfd_*
// the other). kemu builds amdkfd as its own module, so the kgd2kfd side is a table amdkfd
// registers with amdgpu_amdkfd_register_kfd(): devices already probed get kgd2kfd probe/init
// at once, later ones at their init. This file is the seam docs/amdgpu.md describes.

import type { Kernel } from "../../../../../kernel/kernel.ts";
import type { amdgpu_device } from "./amdgpu.ts";
import type { ttm_buffer_object } from "../../ttm/ttm_bo.ts";
import type { ttm_place } from "../../../../../include/drm/ttm/ttm_placement.ts";
import { amdgpu_gmc_flush_gpu_tlb, amdgpu_gmc_flush_gpu_tlb_pasid } from "./amdgpu_gmc.ts";
import { amdgpu_vm_make_compute, amdgpu_vm_set_pasid, amdgpu_vm_set_task_info, type amdgpu_vm } from "./amdgpu_vm.ts";
import { amdgpu_bo_create_kernel, amdgpu_bo_free_kernel, AMDGPU_GEM_DOMAIN_GTT, type amdgpu_kernel_bo, type amdgpu_bo } from "./amdgpu_object.ts";
import { amdgpu_vram_mgr_usage } from "./amdgpu_vram_mgr.ts";
import type { amdgpu_fpriv } from "./amdgpu_kms.ts";
import type { kfd_dev } from "../amdkfd/kfd_priv.ts";
import { dev_pagemap } from "../../../../../include/linux/memremap.ts";
import { EINVAL } from "../../../../../include/uapi/asm-generic/errno.ts";
import { ftrace } from "../../../../../include/linux/ftrace.ts";

/** What amdkfd provides to amdgpu (the kgd2kfd_* entry points and the SVM fault hook). */
export interface kgd2kfd_calls {
  /** kgd2kfd_probe(): KFD's per-device object, or null if KFD does not drive this GPU. */
  probe(adev: amdgpu_device): kfd_dev | null;
  /** kgd2kfd_device_init(): true when the device is ready for KFD processes. */
  device_init(adev: amdgpu_device, kfd: kfd_dev): Promise<boolean>;
  /** kgd2kfd_device_exit() */
  device_exit(kfd: kfd_dev): Promise<void>;
  /** kgd2kfd_interrupt(): an IV amdgpu did not handle (hard-IRQ context: must not sleep). */
  interrupt(kfd: kfd_dev, ih_ring_entry: Uint32Array): void;
  /**
   * svm_range_restore_pages(): serve a retry fault at GPU page `addr` of `pasid` (process
   * context, may sleep). 0 handled; non-zero makes amdgpu write a no-retry PTE.
   */
  svm_range_restore_pages(adev: amdgpu_device, pasid: number, vmid: number, node_id: number, addr: number, ts: number,
    write_fault: boolean): Promise<number>;
  /** amdgpu_ttm_bo_eviction_valuable()'s KFD check (eviction fences of the current process). */
  eviction_valuable?(bo: ttm_buffer_object, place: ttm_place): boolean;
}

/** adev->kfd */
export class amdgpu_kfd_dev {
  dev: kfd_dev | null = null;
  /** VRAM device pagemap KFD registers for SVM (type 0 = none), as embedded in the kernel's adev->kfd. */
  readonly pgmap = new dev_pagemap();
  /** Bytes of VRAM charged to KFD allocations (amdgpu_amdkfd_gpuvm accounting). */
  vram_used = 0;
  init_complete = false;
  /** Filled from kgd2kfd_calls while amdkfd is loaded. */
  svm_range_restore_pages: kgd2kfd_calls["svm_range_restore_pages"] | null = null;
  eviction_valuable: kgd2kfd_calls["eviction_valuable"] | null = null;
}

interface kfd_registry {
  adevs: amdgpu_device[];
  calls: kgd2kfd_calls | null;
}

const registries = new WeakMap<Kernel, kfd_registry>();

function registry(k: Kernel): kfd_registry {
  let r = registries.get(k);
  if (!r) {
    r = { adevs: [], calls: null };
    registries.set(k, r);
  }
  return r;
}

/** The machine's amdgpu devices, in probe order (what KFD topology enumerates). */
export function amdgpu_amdkfd_devices(k: Kernel): readonly amdgpu_device[] {
  return registry(k).adevs;
}

async function amdgpu_amdkfd_device_probe_init(adev: amdgpu_device, calls: kgd2kfd_calls): Promise<void> {
  adev.kfd.svm_range_restore_pages = calls.svm_range_restore_pages;
  adev.kfd.eviction_valuable = calls.eviction_valuable ?? null;
  adev.kfd.dev = calls.probe(adev);
  if (adev.kfd.dev) adev.kfd.init_complete = await calls.device_init(adev, adev.kfd.dev);
}

async function amdgpu_amdkfd_device_fini(adev: amdgpu_device, calls: kgd2kfd_calls): Promise<void> {
  if (adev.kfd.dev) await calls.device_exit(adev.kfd.dev);
  adev.kfd.dev = null;
  adev.kfd.init_complete = false;
  adev.kfd.svm_range_restore_pages = null;
  adev.kfd.eviction_valuable = null;
}

/** amdgpu side of device init: the device joins the registry (and KFD, if loaded). */
export async function amdgpu_amdkfd_device_init(adev: amdgpu_device): Promise<void> {
  const reg = registry(adev.k);
  reg.adevs.push(adev);
  if (reg.calls) await amdgpu_amdkfd_device_probe_init(adev, reg.calls);
}

/** amdgpu side of device removal. */
export async function amdgpu_amdkfd_device_remove(adev: amdgpu_device): Promise<void> {
  const reg = registry(adev.k);
  if (reg.calls) await amdgpu_amdkfd_device_fini(adev, reg.calls);
  const i = reg.adevs.indexOf(adev);
  if (i >= 0) reg.adevs.splice(i, 1);
}

/** amdkfd's module init: -EINVAL if another KFD is registered. */
export async function amdgpu_amdkfd_register_kfd(k: Kernel, calls: kgd2kfd_calls): Promise<number> {
  const reg = registry(k);
  if (reg.calls) return -EINVAL;
  reg.calls = calls;
  for (const adev of reg.adevs) await amdgpu_amdkfd_device_probe_init(adev, calls);
  return 0;
}

/** amdkfd's module exit. */
export async function amdgpu_amdkfd_unregister_kfd(k: Kernel): Promise<void> {
  const reg = registry(k);
  const calls = reg.calls;
  if (!calls) return;
  for (const adev of reg.adevs) await amdgpu_amdkfd_device_fini(adev, calls);
  reg.calls = null;
}

/** amdgpu_amdkfd_interrupt(): forwards an unhandled IV to KFD. */
export function amdgpu_amdkfd_interrupt(adev: amdgpu_device, ih_ring_entry: Uint32Array): void {
  using _ = ftrace(adev.k, "amdgpu_amdkfd_interrupt");
  const calls = registry(adev.k).calls;
  if (adev.kfd.dev && adev.kfd.init_complete && calls) calls.interrupt(adev.kfd.dev, ih_ring_entry);
}

/** amdgpu_amdkfd_flush_gpu_tlb_vmid(): flush one VMID on hub `vmhub` (the GFX hub if omitted). */
export function amdgpu_amdkfd_flush_gpu_tlb_vmid(adev: amdgpu_device, vmid: number, vmhub = 0): number {
  amdgpu_gmc_flush_gpu_tlb(adev, vmid, vmhub, 0);
  return 0;
}

/** amdgpu_amdkfd_flush_gpu_tlb_pasid(): flush every VMID running `pasid`, on all hubs. */
export function amdgpu_amdkfd_flush_gpu_tlb_pasid(adev: amdgpu_device, pasid: number, flush_type: number): number {
  return amdgpu_gmc_flush_gpu_tlb_pasid(adev, pasid, flush_type, true);
}

/**
 * amdgpu_amdkfd_gpuvm_acquire_process_vm(): KFD takes over the VM of a render-node file
 * (AMDKFD_IOC_ACQUIRE_VM): it becomes a compute VM keyed by KFD's PASID.
 */
export function amdgpu_amdkfd_gpuvm_acquire_process_vm(adev: amdgpu_device, fpriv: amdgpu_fpriv, pasid: number): amdgpu_vm | number {
  const vm = fpriv.vm;
  if (vm.is_compute_context) return -EINVAL;
  let r = amdgpu_vm_set_pasid(adev, vm, 0);
  if (!r) r = amdgpu_vm_set_pasid(adev, vm, pasid);
  if (r) return r;
  amdgpu_vm_make_compute(adev, vm);
  amdgpu_vm_set_task_info(adev, vm);
  return vm;
}

export interface kfd_local_mem_info {
  local_mem_size_public: number;
  local_mem_size_private: number;
  vram_width: number;
  mem_clk_max: number;
}

/** amdgpu_amdkfd_get_local_mem_info() */
export function amdgpu_amdkfd_get_local_mem_info(adev: amdgpu_device): kfd_local_mem_info {
  return { local_mem_size_public: adev.gmc.visible_vram_size, local_mem_size_private: adev.gmc.real_vram_size - adev.gmc.visible_vram_size, vram_width: 4096, mem_clk_max: 1600 };
}

/** VRAM in use (amdgpu_amdkfd_get_vram_usage). */
export function amdgpu_amdkfd_get_vram_usage(adev: amdgpu_device): number {
  return amdgpu_vram_mgr_usage(adev.mman.vram_mgr);
}

/** amdgpu_amdkfd_alloc_gtt_mem(): a pinned, mapped GTT kernel BO (MQDs, EOP buffers). */
export function amdgpu_amdkfd_alloc_gtt_mem(adev: amdgpu_device, size: number): Promise<amdgpu_kernel_bo | number> {
  return amdgpu_bo_create_kernel(adev, size, 4096, AMDGPU_GEM_DOMAIN_GTT);
}

export function amdgpu_amdkfd_free_gtt_mem(bo: amdgpu_bo): void {
  amdgpu_bo_free_kernel(bo);
}

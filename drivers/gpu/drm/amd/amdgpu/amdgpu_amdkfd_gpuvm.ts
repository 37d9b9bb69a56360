// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_amdkfd_gpuvm.c (Linux 6.8), the KFD memory side of
// amdgpu: the system/TTM/VRAM limits KFD allocations are charged against (SVM ranges with XNACK
// off are charged as userptr memory), and handing a render node's VM to a KFD process and back
// (the acquire itself is amdgpu_amdkfd.ts's). KFD BOs (AMDKFD_IOC_ALLOC_MEMORY_OF_GPU) and
// their eviction/restore are at the end of the file.
//
// kemu: `kfd_mem_limit` is a static of the kernel file; it lives on the machine's amdkfd object,
// which the functions take first.

import type { amdkfd } from "../amdkfd/kfd_module.ts";
import type { amdgpu_device } from "./amdgpu.ts";
import type { file } from "../../../../../include/linux/fs.ts";
import { drm_file, drm_file_of } from "../../drm_file.ts";
import { amdgpu_fpriv } from "./amdgpu_kms.ts";
import {
  amdgpu_vm_bo_add, amdgpu_vm_bo_del, amdgpu_vm_bo_map, amdgpu_vm_bo_unmap, amdgpu_vm_bo_update, amdgpu_vm_pte_flags,
  amdgpu_vm_set_pasid, type amdgpu_bo_va, type amdgpu_vm,
} from "./amdgpu_vm.ts";
import type { amdgpu_pte_flags } from "./amdgpu_gmc.ts";
import {
  AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED, AMDGPU_GEM_CREATE_NO_CPU_ACCESS, AMDGPU_GEM_CREATE_VRAM_CLEARED, AMDGPU_GEM_DOMAIN_GTT,
  AMDGPU_GEM_DOMAIN_VRAM, amdgpu_bo_create, amdgpu_bo_pin, amdgpu_bo_reserve, amdgpu_bo_sync_wait, amdgpu_bo_unpin, amdgpu_bo_unref,
  amdgpu_bo_unreserve, amdgpu_bo_validate, type amdgpu_bo,
} from "./amdgpu_object.ts";
import { ttm_bo_type } from "../../ttm/ttm_bo.ts";
import { dma_resv_trylock } from "../../../../dma-buf/dma-resv.ts";
import { mutex_lock, mutex_unlock } from "../../../../../kernel/locking/mutex.ts";
import type { amdkfd_process_info } from "../amdkfd/kfd_priv.ts";
import { spinlock_t, spin_lock, spin_unlock } from "../../../../../kernel/locking/spinlock.ts";
import { NODE_DATA } from "../../../../../include/linux/mmzone.ts";
import { EBUSY, EINVAL, ENOMEM } from "../../../../../include/uapi/asm-generic/errno.ts";
import {
  KFD_IOC_ALLOC_MEM_FLAGS_DOORBELL, KFD_IOC_ALLOC_MEM_FLAGS_GTT, KFD_IOC_ALLOC_MEM_FLAGS_MMIO_REMAP,
  KFD_IOC_ALLOC_MEM_FLAGS_USERPTR, KFD_IOC_ALLOC_MEM_FLAGS_VRAM, KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC,
  KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE, KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE,
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

// ---- KFD buffer objects (AMDKFD_IOC_ALLOC_MEMORY_OF_GPU and friends) -------------------------
//
// kemu: a kgd_mem's VM attachments are kept per VM (the kernel's kfd_mem_attachment list);
// the process_info BO list lives in a WeakMap beside amdkfd_process_info (kfd_priv.ts is not
// this file's). KFD BOs carry no eviction fence: TTM may move an unpinned one at any time and
// amdgpu_amdkfd_gpuvm_restore_process_bos() revalidates and remaps it (see docs/peerdirect.md).

/** struct kgd_mem: one KFD allocation and where it is mapped. */
export class kgd_mem {
  /** VM → the BO's bo_va in it while mapped (kfd_mem_attachment). */
  readonly attachments = new Map<amdgpu_vm, amdgpu_bo_va>();
  mapped_to_gpu_memory = 0;
  /** Pins taken by amdgpu_amdkfd_gpuvm_pin_bo() (peer-direct); a pinned BO never moves. */
  pin_count = 0;
  /**
   * Called before the BO is freed: the old (2016) peer-direct design's free_callback, which
   * makes the RDMA core invalidate the NIC's registration (kfd_peerdirect.ts).
   */
  readonly free_callbacks = new Set<() => Promise<void>>();
  constructor(
    readonly bo: amdgpu_bo,
    readonly va: number,
    readonly size: number,
    readonly alloc_flags: number,
    readonly domain: number,
    readonly process_info: amdkfd_process_info,
  ) {}
}

const process_bos = new WeakMap<amdkfd_process_info, Set<kgd_mem>>();

/** The KFD BOs of a process (process_info->kfd_bo_list). */
export function amdgpu_amdkfd_process_bos(info: amdkfd_process_info): Set<kgd_mem> {
  let s = process_bos.get(info);
  if (!s) process_bos.set(info, (s = new Set()));
  return s;
}

/**
 * amdgpu_amdkfd_gpuvm_alloc_memory_of_gpu(): a VRAM or GTT BO of `size` bytes for GPU VA `va`,
 * charged against the KFD limits. Userptr, doorbell and MMIO BOs are not modelled (-EINVAL).
 */
export async function amdgpu_amdkfd_gpuvm_alloc_memory_of_gpu(kfd: amdkfd, adev: amdgpu_device, va: number, size: number,
  info: amdkfd_process_info, flags: number): Promise<kgd_mem | number> {
  let domain: number;
  if (flags & KFD_IOC_ALLOC_MEM_FLAGS_VRAM) domain = AMDGPU_GEM_DOMAIN_VRAM;
  else if (flags & KFD_IOC_ALLOC_MEM_FLAGS_GTT) domain = AMDGPU_GEM_DOMAIN_GTT;
  else return -EINVAL;
  if (size <= 0 || size % PAGE_SIZE || va % PAGE_SIZE) return -EINVAL;
  const kind = domain === AMDGPU_GEM_DOMAIN_VRAM ? KFD_IOC_ALLOC_MEM_FLAGS_VRAM : KFD_IOC_ALLOC_MEM_FLAGS_GTT;
  const r = amdgpu_amdkfd_reserve_mem_limit(kfd, adev, size, kind, 0);
  if (r) return r;
  let gflags = 0;
  if (flags & KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC) gflags |= AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED;
  else if (domain === AMDGPU_GEM_DOMAIN_VRAM) gflags |= AMDGPU_GEM_CREATE_NO_CPU_ACCESS;
  // KFD VRAM is always handed out cleared (AMDGPU_GEM_CREATE_VRAM_CLEARED since 5.x).
  if (domain === AMDGPU_GEM_DOMAIN_VRAM) gflags |= AMDGPU_GEM_CREATE_VRAM_CLEARED;
  const bo = await amdgpu_bo_create(adev, { size, byte_align: PAGE_SIZE, domain, flags: gflags, type: ttm_bo_type.ttm_bo_type_device });
  if (typeof bo === "number") {
    amdgpu_amdkfd_unreserve_mem_limit(kfd, adev, size, kind, 0);
    return bo;
  }
  // The clear SDMA queued must land before the first GPU or peer access (amdgpu_sync_wait).
  const w = await amdgpu_bo_sync_wait(bo);
  if (w) {
    amdgpu_bo_unref(bo);
    amdgpu_amdkfd_unreserve_mem_limit(kfd, adev, size, kind, 0);
    return w;
  }
  const mem = new kgd_mem(bo, va, size, flags, domain, info);
  bo.owner = mem;
  amdgpu_amdkfd_process_bos(info).add(mem);
  return mem;
}

/**
 * amdgpu_amdkfd_gpuvm_free_memory_of_gpu(): -EBUSY while mapped; otherwise registered free
 * callbacks run, the BO leaves the process list, its charge is given back and KFD's reference
 * dropped. A peer that pinned the BO holds its own reference, so the memory outlives the handle.
 */
export async function amdgpu_amdkfd_gpuvm_free_memory_of_gpu(kfd: amdkfd, adev: amdgpu_device, mem: kgd_mem): Promise<number> {
  if (mem.mapped_to_gpu_memory > 0) return -EBUSY;
  for (const cb of [...mem.free_callbacks]) await cb();
  mem.free_callbacks.clear();
  amdgpu_amdkfd_process_bos(mem.process_info).delete(mem);
  const kind = mem.domain === AMDGPU_GEM_DOMAIN_VRAM ? KFD_IOC_ALLOC_MEM_FLAGS_VRAM : KFD_IOC_ALLOC_MEM_FLAGS_GTT;
  amdgpu_amdkfd_unreserve_mem_limit(kfd, adev, mem.size, kind, 0);
  mem.bo.owner = null;
  amdgpu_bo_unref(mem.bo);
  return 0;
}

function kfd_mem_pte_flags(mem: kgd_mem): amdgpu_pte_flags {
  const write = (mem.alloc_flags & KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE) !== 0;
  const exec = (mem.alloc_flags & KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE) !== 0;
  return amdgpu_vm_pte_flags(true, write, exec, false);
}

/**
 * Runs `fn` with the VM root and the BO reserved (the kernel's bo_vm_reservation_context).
 * kemu's reservations have no ww acquire context, so the second one is only tried; when it is
 * busy both are dropped and the attempt starts over once the BO is free.
 */
async function with_vm_reserved<T>(vm: amdgpu_vm, bo: amdgpu_bo, fn: () => Promise<T>): Promise<T | number> {
  const root = vm.root!.bo;
  for (;;) {
    const r = await amdgpu_bo_reserve(root, true);
    if (r) return r;
    if (root.tbo.resv === bo.tbo.resv || dma_resv_trylock(bo.tbo.resv)) break;
    amdgpu_bo_unreserve(root);
    const e = await amdgpu_bo_reserve(bo, true);
    if (e) return e;
    amdgpu_bo_unreserve(bo);
  }
  try {
    return await fn();
  } finally {
    if (root.tbo.resv !== bo.tbo.resv) amdgpu_bo_unreserve(bo);
    amdgpu_bo_unreserve(root);
  }
}

/**
 * amdgpu_amdkfd_gpuvm_map_memory_to_gpu(): validates the BO (unless pinned) and maps it at its
 * VA in the process's VM on `adev`. Mapping twice into the same VM is a no-op.
 */
export async function amdgpu_amdkfd_gpuvm_map_memory_to_gpu(adev: amdgpu_device, mem: kgd_mem, drm_priv: unknown): Promise<number> {
  const vm = drm_priv_to_vm(drm_priv);
  if (!vm?.root) return -EINVAL;
  if (mem.attachments.has(vm)) return 0;
  const r = await with_vm_reserved(vm, mem.bo, async () => {
    let e = await amdgpu_bo_validate(mem.bo);
    if (e) return e;
    const bo_va = amdgpu_vm_bo_add(adev, vm, mem.bo);
    e = amdgpu_vm_bo_map(adev, bo_va, mem.va, 0, mem.size, kfd_mem_pte_flags(mem));
    if (!e) e = await amdgpu_vm_bo_update(adev, bo_va, false);
    if (e) {
      await amdgpu_vm_bo_del(adev, bo_va);
      return e;
    }
    mem.attachments.set(vm, bo_va);
    mem.mapped_to_gpu_memory++;
    return 0;
  });
  return r;
}

/** amdgpu_amdkfd_gpuvm_unmap_memory_from_gpu(): clears the PTEs in that VM; -EINVAL if not mapped. */
export async function amdgpu_amdkfd_gpuvm_unmap_memory_from_gpu(adev: amdgpu_device, mem: kgd_mem, drm_priv: unknown): Promise<number> {
  const vm = drm_priv_to_vm(drm_priv);
  const bo_va = vm ? mem.attachments.get(vm) : undefined;
  if (!vm || !bo_va) return -EINVAL;
  return with_vm_reserved(vm, mem.bo, async () => {
    const e = await amdgpu_vm_bo_unmap(adev, bo_va, mem.va);
    await amdgpu_vm_bo_del(adev, bo_va);
    mem.attachments.delete(vm);
    mem.mapped_to_gpu_memory--;
    return e;
  });
}

/**
 * amdgpu_amdkfd_gpuvm_pin_bo(): keeps the BO in its allocation domain (peer-direct, the
 * kernel's pin for RDMA); TTM never evicts it while pinned.
 */
export async function amdgpu_amdkfd_gpuvm_pin_bo(mem: kgd_mem): Promise<number> {
  let r = await amdgpu_bo_reserve(mem.bo, true);
  if (r) return r;
  r = await amdgpu_bo_pin(mem.bo, mem.domain);
  amdgpu_bo_unreserve(mem.bo);
  if (r) return r;
  mem.pin_count++;
  // Pinning may have moved it back home: the VMs must see the new place.
  return amdgpu_amdkfd_gpuvm_restore_bo(mem);
}

export async function amdgpu_amdkfd_gpuvm_unpin_bo(mem: kgd_mem): Promise<void> {
  if (!mem.pin_count) return;
  await amdgpu_bo_reserve(mem.bo, true);
  amdgpu_bo_unpin(mem.bo);
  amdgpu_bo_unreserve(mem.bo);
  mem.pin_count--;
}

/** Revalidates one BO and rewrites the PTEs of every VM whose mapping went stale. */
async function amdgpu_amdkfd_gpuvm_restore_bo(mem: kgd_mem): Promise<number> {
  for (const [vm, bo_va] of mem.attachments) {
    const r = await with_vm_reserved(vm, mem.bo, async () => {
      const e = await amdgpu_bo_validate(mem.bo);
      if (e) return e;
      return bo_va.moved ? amdgpu_vm_bo_update(mem.bo.adev, bo_va, false) : 0;
    });
    if (r) return r;
  }
  return 0;
}

/**
 * amdgpu_amdkfd_gpuvm_restore_process_bos(): after an eviction, every KFD BO of the process
 * goes back to its preferred domain where it fits and its mappings are rewritten.
 */
export async function amdgpu_amdkfd_gpuvm_restore_process_bos(info: amdkfd_process_info): Promise<number> {
  await mutex_lock(info.lock);
  let ret = 0;
  for (const mem of amdgpu_amdkfd_process_bos(info)) {
    const r = await amdgpu_amdkfd_gpuvm_restore_bo(mem);
    if (r && !ret) ret = r;
  }
  info.evicted_bos = 0;
  mutex_unlock(info.lock);
  return ret;
}

// ---- the per-pdd handle table (kfd_process.c's pdd->alloc_idr helpers) ---------------------------

interface obj_idr {
  next: number;
  readonly objs: Map<number, kgd_mem>;
}
const alloc_idr = new WeakMap<object, obj_idr>();

function idr_of(pdd: object): obj_idr {
  let idr = alloc_idr.get(pdd);
  if (!idr) alloc_idr.set(pdd, (idr = { next: 0, objs: new Map() }));
  return idr;
}

/** kfd_process_device_create_obj_handle(): the lowest free id for `mem` (idr_alloc from 0). */
export function kfd_process_device_create_obj_handle(pdd: object, mem: kgd_mem): number {
  const idr = idr_of(pdd);
  let id = 0;
  while (idr.objs.has(id)) id++;
  idr.objs.set(id, mem);
  return id;
}

export function kfd_process_device_translate_handle(pdd: object, handle: number): kgd_mem | null {
  return alloc_idr.get(pdd)?.objs.get(handle) ?? null;
}

export function kfd_process_device_remove_obj_handle(pdd: object, handle: number): void {
  alloc_idr.get(pdd)?.objs.delete(handle);
}

/** All BOs of a pdd (kfd_process_device_free_bos walks the IDR). */
export function kfd_process_device_objs(pdd: object): Array<[number, kgd_mem]> {
  return [...(alloc_idr.get(pdd)?.objs ?? [])];
}

/**
 * kfd_process_device_free_bos(): at process teardown every BO is unmapped from every VM of the
 * process and freed; a peer-direct pin keeps the memory until the NIC lets go.
 */
export async function kfd_process_device_free_bos(kfd: amdkfd, pdd: { dev: { adev: amdgpu_device } }, peers: Array<{ dev: { adev: amdgpu_device }; drm_priv: unknown }>): Promise<void> {
  for (const [id, mem] of kfd_process_device_objs(pdd)) {
    for (const peer of peers) {
      if (drm_priv_to_vm(peer.drm_priv) && mem.attachments.has(drm_priv_to_vm(peer.drm_priv)!)) {
        await amdgpu_amdkfd_gpuvm_unmap_memory_from_gpu(peer.dev.adev, mem, peer.drm_priv);
      }
    }
    await amdgpu_amdkfd_gpuvm_free_memory_of_gpu(kfd, pdd.dev.adev, mem);
    kfd_process_device_remove_obj_handle(pdd, id);
  }
}

// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_iommu.c (Linux 6.5; "drm/amdkfd: drop IOMMUv2
// support" deleted it for 6.6) and, from kfd_events.c of the same release, kfd_signal_iommu_event:
// the APU side of IOMMUv2. KFD checks the IOMMU can serve the GPU (ATS, PRI, PASID), limits
// PASIDs to what both support, initialises the device with amd_iommu_init_device on resume,
// installs the invalid-PPR callback (a memory exception for the process, always answered
// INVALID) and the shutdown callback (dequeue the process's queues while the PASID is still
// bound), binds each process's PASID to the device and unbinds it when the process goes away.
//
// kemu: its KFD (kfd_priv.ts ...) mirrors 6.8, where none of this exists. The 6.5-only state —
// kfd->use_iommu_v2, pdd->bound's PDD_BOUND/PDD_BOUND_SUSPENDED, the PASID limit of
// kfd_pasid.c — lives here, keyed by the KFD objects, and the KFD functions kfd_iommu.c calls
// (process lookup by PASID, per-device dequeue, the memory-event signal) are reached through the
// kfd_iommu_host a KFD gives kfd_iommu_attach() for a needs_iommu_device part — kemu's
// amdkfd does so in kfd_device.ts for the APU machine's Carrizo (GC 8.0.1).

import type { pci_dev } from "../../../../../include/linux/pci.ts";
import { PCI_FUNC, PCI_SLOT } from "../../../../../include/linux/pci.ts";
import type { task_struct } from "../../../../../kernel/sched/core.ts";
import type { mutex } from "../../../../../kernel/locking/mutex.ts";
import { mutex_lock, mutex_unlock } from "../../../../../kernel/locking/mutex.ts";
import type { Kernel } from "../../../../../kernel/kernel.ts";
import type { mm_struct } from "../../../../../include/linux/mm_types.ts";
import { EBUSY, EINVAL, ENODEV, ENXIO } from "../../../../../include/uapi/asm-generic/errno.ts";
import { VM_EXEC, VM_WRITE } from "../../../../../include/linux/mm.ts";
import { mmap_read_lock, mmap_read_unlock } from "../../../../../include/linux/mmap_lock.ts";
import { find_vma } from "../../../../../mm/mmap.ts";
import { get_task_mm, mmput } from "../../../../../kernel/fork.ts";
import { ___ratelimit, ratelimit_state } from "../../../../../lib/ratelimit.ts";
import type { value_of } from "../../../../../include/uapi/struct_layout.ts";
import type { kfd_hsa_memory_exception_data } from "../../../../../include/uapi/linux/kfd_ioctl.ts";
import {
  AMD_IOMMU_DEVICE_FLAG_ATS_SUP, AMD_IOMMU_DEVICE_FLAG_PASID_SUP, AMD_IOMMU_DEVICE_FLAG_PRI_SUP,
  AMD_IOMMU_INV_PRI_RSP_INVALID, amd_iommu_device_info,
} from "../../../../../include/linux/amd-iommu.ts";
import { PPR_FAULT_EXEC, PPR_FAULT_WRITE } from "../../../../../iommu/amd/amd_iommu_types.ts";
import type { AmdIommu } from "../../../../../iommu/amd/iommu.ts";
import type { AmdIommuV2 } from "../../../../../iommu/amd/iommu_v2.ts";

export type kfd_memory_exception = value_of<typeof kfd_hsa_memory_exception_data>;

// The fields kfd_iommu.c reads of struct kfd_dev, kfd_node, kfd_process and kfd_process_device.
export interface kfd_iommu_dev {
  readonly adev: { readonly pdev: pci_dev };
}

export interface kfd_iommu_node {
  /** The topology gpu_id. */
  readonly id: number;
  readonly kfd: kfd_iommu_dev;
}

export interface kfd_iommu_process {
  readonly pasid: number;
  readonly lead_thread: task_struct;
  readonly mutex: mutex;
}

export interface kfd_iommu_pdd {
  readonly dev: kfd_iommu_node;
  readonly process: kfd_iommu_process;
}

/** The KFD functions kfd_iommu.c and kfd_signal_iommu_event call. */
export interface kfd_iommu_host<P extends kfd_iommu_process = kfd_iommu_process, D extends kfd_iommu_pdd = kfd_iommu_pdd> {
  readonly k: Kernel;
  /** kfd_device_info.max_pasid_bits */
  readonly max_pasid_bits: number;
  /** KFD_GC_VERSION(dev) as [major, minor, rev]. */
  gc_version(node: kfd_iommu_node): readonly [number, number, number];
  /** kfd_lookup_process_by_pasid(): with a reference. */
  kfd_lookup_process_by_pasid(pasid: number): P | null;
  kfd_unref_process(p: P): void;
  kfd_get_process_device_data(dev: kfd_iommu_node, p: P): D | null;
  /** kfd_process_dequeue_from_device() */
  kfd_process_dequeue_from_device(pdd: D): Promise<void>;
  /** The processes of kfd_processes_table (kfd_bind/unbind_processes_to/from_device walk them). */
  kfd_processes(): readonly P[];
  /** kfd_process_get_user_gpu_id() */
  kfd_process_get_user_gpu_id(p: P, gpu_id: number): number;
  /** lookup_events_by_type_and_signal(p, KFD_EVENT_TYPE_MEMORY, data) */
  kfd_signal_memory_events(p: P, data: kfd_memory_exception): void;
}

// enum kfd_pdd_bound
export const PDD_UNBOUND = 0;
export const PDD_BOUND = 1;
export const PDD_BOUND_SUSPENDED = 2;

interface kfd_iommu_state {
  amd: AmdIommu;
  v2: AmdIommuV2;
  host: kfd_iommu_host<kfd_iommu_process, kfd_iommu_pdd>;
  /** nodes[0]: kfd_iommu.c binds only on the first node of a partitioned device. */
  node: kfd_iommu_node;
  /** kfd_pasid.c's limit: 2^pasid_bits. */
  pasid_limit: number;
}

const use_iommu_v2 = new WeakMap<kfd_iommu_dev, kfd_iommu_state>();
const pdd_bound = new WeakMap<kfd_iommu_pdd, number>();
const by_pdev = new WeakMap<pci_dev, kfd_iommu_state>();
const invalid_ppr_rs = new WeakMap<Kernel, ratelimit_state>();

const required_iommu_flags = AMD_IOMMU_DEVICE_FLAG_ATS_SUP | AMD_IOMMU_DEVICE_FLAG_PRI_SUP | AMD_IOMMU_DEVICE_FLAG_PASID_SUP;

/**
 * kgd2kfd_probe()'s "kfd->use_iommu_v2 = true" for a part whose device_info needs the IOMMU:
 * from then on the kfd_iommu_* calls below act for it.
 */
export function kfd_iommu_attach<P extends kfd_iommu_process, D extends kfd_iommu_pdd>(kfd: kfd_iommu_dev, node: kfd_iommu_node,
  amd: AmdIommu, v2: AmdIommuV2, host: kfd_iommu_host<P, D>): void {
  const st: kfd_iommu_state = { amd, v2, host: host as unknown as kfd_iommu_host, node, pasid_limit: 2 ** host.max_pasid_bits };
  use_iommu_v2.set(kfd, st);
  by_pdev.set(kfd.adev.pdev, st);
}

export function kfd_iommu_detach(kfd: kfd_iommu_dev): void {
  use_iommu_v2.delete(kfd);
  by_pdev.delete(kfd.adev.pdev);
}

export function kfd_uses_iommu_v2(kfd: kfd_iommu_dev): boolean {
  return use_iommu_v2.has(kfd);
}

export function kfd_pdd_bound(pdd: kfd_iommu_pdd): number {
  return pdd_bound.get(pdd) ?? PDD_UNBOUND;
}

/** kfd_set_pasid_limit(): only lowers it, and never below 2 PASIDs. */
function kfd_set_pasid_limit(st: kfd_iommu_state, new_limit: number): boolean {
  if (new_limit < 2) return false;
  while (new_limit < st.pasid_limit) st.pasid_limit /= 2;
  return true;
}

/** kfd_iommu_check_device(): 0 if the IOMMU offers ATS, PRI and PASID for the GPU. */
export function kfd_iommu_check_device(kfd: kfd_iommu_dev): number {
  const st = use_iommu_v2.get(kfd);
  if (!st) return -ENODEV;
  const info = new amd_iommu_device_info();
  if (st.amd.amd_iommu_device_info(kfd.adev.pdev, info) < 0) return -ENODEV;
  return (info.flags & required_iommu_flags) === required_iommu_flags ? 0 : -ENODEV;
}

/** kfd_iommu_device_init(): the IOMMU must serve ATS + PRI + PASID; PASIDs limited to both sides. */
export function kfd_iommu_device_init(kfd: kfd_iommu_dev): number {
  const st = use_iommu_v2.get(kfd);
  if (!st) return 0;
  const k = st.host.k;
  const pdev = kfd.adev.pdev;
  const info = new amd_iommu_device_info();
  if (st.amd.amd_iommu_device_info(pdev, info) < 0) {
    k.dev_err(pdev.dev, "error getting iommu info. is the iommu enabled?");
    return -ENODEV;
  }
  if ((info.flags & required_iommu_flags) !== required_iommu_flags) {
    const has = (f: number) => ((info.flags & f) !== 0 ? 1 : 0);
    k.dev_err(pdev.dev, `error required iommu flags ats ${has(AMD_IOMMU_DEVICE_FLAG_ATS_SUP)}, pri ${has(AMD_IOMMU_DEVICE_FLAG_PRI_SUP)}, pasid ${has(AMD_IOMMU_DEVICE_FLAG_PASID_SUP)}`);
    return -ENODEV;
  }
  const pasid_limit = Math.min(2 ** st.host.max_pasid_bits, info.max_pasids);
  if (!kfd_set_pasid_limit(st, pasid_limit)) {
    k.dev_err(pdev.dev, "error setting pasid limit");
    return -EBUSY;
  }
  return 0;
}

/**
 * kfd_iommu_bind_process_to_device(): the process's PASID now translates through its page
 * tables on this GPU. PDD_BOUND_SUSPENDED here is a driver bug (-EINVAL).
 */
export async function kfd_iommu_bind_process_to_device(pdd: kfd_iommu_pdd): Promise<number> {
  const st = use_iommu_v2.get(pdd.dev.kfd);
  const bound = kfd_pdd_bound(pdd);
  if (!st || bound === PDD_BOUND) return 0;
  if (bound === PDD_BOUND_SUSPENDED) {
    st.host.k.pr_err("amdgpu: Binding PDD_BOUND_SUSPENDED pdd is unexpected!");
    return -EINVAL;
  }
  if (pdd.dev !== st.node) return 0;
  const p = pdd.process;
  const err = await st.v2.amd_iommu_bind_pasid(pdd.dev.kfd.adev.pdev, p.pasid, p.lead_thread);
  if (!err) pdd_bound.set(pdd, PDD_BOUND);
  return err;
}

/** kfd_iommu_unbind_process(): from the process's deferred release work. */
export async function kfd_iommu_unbind_process(p: kfd_iommu_process & { readonly pdds: readonly kfd_iommu_pdd[] }): Promise<void> {
  for (const pdd of p.pdds) {
    const st = use_iommu_v2.get(pdd.dev.kfd);
    if (st && kfd_pdd_bound(pdd) === PDD_BOUND && pdd.dev === st.node) {
      await st.v2.amd_iommu_unbind_pasid(pdd.dev.kfd.adev.pdev, pdd.process.pasid);
      pdd_bound.set(pdd, PDD_UNBOUND);
    }
  }
}

/** kfd_device_by_pci_dev(), for the devices KFD attached. */
function state_by_pci_dev(pdev: pci_dev): kfd_iommu_state | null {
  const st = by_pdev.get(pdev);
  return st && use_iommu_v2.get(st.node.kfd) === st ? st : null;
}

/**
 * iommu_pasid_shutdown_callback(): the mm of a bound process is going away. Dequeue its queues
 * on this GPU while the PASID is still bound (runs from mn_release, before GCR3 is cleared).
 */
async function iommu_pasid_shutdown_callback(pdev: pci_dev, pasid: number): Promise<void> {
  const st = state_by_pci_dev(pdev);
  if (!st) return;
  // No process: it was released through KFD's own notifier first (or it is a bug).
  const p = st.host.kfd_lookup_process_by_pasid(pasid);
  if (!p) return;
  st.host.k.pr_debug(`amdgpu: Unbinding process 0x${pasid.toString(16)} from IOMMU`);
  await mutex_lock(p.mutex);
  const pdd = st.host.kfd_get_process_device_data(st.node, p);
  if (pdd) await st.host.kfd_process_dequeue_from_device(pdd);
  mutex_unlock(p.mutex);
  st.host.kfd_unref_process(p);
}

/** iommu_invalid_ppr_cb(): a ratelimited warning, the memory exception, and always INVALID. */
async function iommu_invalid_ppr_cb(pdev: pci_dev, pasid: number, address: number, flags: number): Promise<number> {
  const st = state_by_pci_dev(pdev);
  const k = pdev.bus.k;
  let rs = invalid_ppr_rs.get(k);
  if (!rs) {
    rs = new ratelimit_state();
    invalid_ppr_rs.set(k, rs);
  }
  if (___ratelimit(rs, "iommu_invalid_ppr_cb", k)) {
    k.dev_warn(pdev.dev, `Invalid PPR device 0:${PCI_SLOT(pdev.devfn).toString(16)}.${PCI_FUNC(pdev.devfn)} pasid 0x${pasid.toString(16)} address 0x${address.toString(16).toUpperCase()} flags 0x${flags.toString(16).toUpperCase()}`);
  }
  if (!k.WARN_ON(!st)) await kfd_signal_iommu_event(st!, st!.node, pasid, address, (flags & PPR_FAULT_WRITE) !== 0, (flags & PPR_FAULT_EXEC) !== 0);
  return AMD_IOMMU_INV_PRI_RSP_INVALID;
}

/**
 * kfd_signal_iommu_event() (kfd_events.c ≤6.5): the process's memory events fire with the
 * faulting address and why — NotPresent unless a VMA covers it, ReadOnly for a write to a
 * non-writable VMA, NoExecute likewise — except on the Raven family (GC 9.1.0, 9.2.2, 9.3.0),
 * which can keep sending stale PPRs after memory was freed and must not be killed for them.
 */
async function kfd_signal_iommu_event(st: kfd_iommu_state, dev: kfd_iommu_node, pasid: number, address: number,
  is_write_requested: boolean, is_execute_requested: boolean): Promise<void> {
  const host = st.host;
  const p = host.kfd_lookup_process_by_pasid(pasid);
  if (!p) return; // presumably the process exited
  // A safe reference to the mm, which may go away while the kfd_process still exists.
  const mm = get_task_mm(p.lead_thread);
  if (!mm) {
    host.kfd_unref_process(p);
    return;
  }
  const user_gpu_id = host.kfd_process_get_user_gpu_id(p, dev.id);
  if (user_gpu_id === -EINVAL) {
    // As in 6.5, this path leaks the mm and process references.
    host.k.WARN_ONCE(true, `Could not get user_gpu_id from dev->id:${dev.id.toString(16)}`);
    return;
  }
  const data = await memory_exception(mm, address, user_gpu_id, is_write_requested, is_execute_requested);
  await mmput(mm);
  const [major, minor, rev] = host.gc_version(dev);
  const raven = major === 9 && ((minor === 1 && rev === 0) || (minor === 2 && rev === 2) || (minor === 3 && rev === 0));
  if (!raven) host.kfd_signal_memory_events(p, data);
  host.kfd_unref_process(p);
}

async function memory_exception(mm: mm_struct, address: number, gpu_id: number, write: boolean, exec: boolean): Promise<kfd_memory_exception> {
  const data: kfd_memory_exception = {
    failure: { NotPresent: 1, ReadOnly: 0, NoExecute: 0, imprecise: 0 }, va: address, gpu_id, ErrorType: 0,
  };
  await mmap_read_lock(mm);
  const vma = find_vma(mm, address);
  if (vma && address >= vma.vm_start) {
    data.failure.NotPresent = 0;
    data.failure.ReadOnly = write && !(vma.vm_flags & VM_WRITE) ? 1 : 0;
    data.failure.NoExecute = exec && !(vma.vm_flags & VM_EXEC) ? 1 : 0;
  }
  mmap_read_unlock(mm);
  return data;
}

/** kfd_bind_processes_to_device(): re-bind every process suspended with the device. */
async function kfd_bind_processes_to_device(st: kfd_iommu_state): Promise<number> {
  for (const p of st.host.kfd_processes()) {
    const pdd = st.host.kfd_get_process_device_data(st.node, p);
    if (st.host.k.WARN_ON(!pdd) || kfd_pdd_bound(pdd!) !== PDD_BOUND_SUSPENDED) continue;
    const err = await st.v2.amd_iommu_bind_pasid(st.node.kfd.adev.pdev, p.pasid, p.lead_thread);
    if (err < 0) {
      st.host.k.pr_err(`amdgpu: Unexpected pasid 0x${p.pasid.toString(16)} binding failure`);
      return err;
    }
    pdd_bound.set(pdd!, PDD_BOUND);
  }
  return 0;
}

/** kfd_unbind_processes_from_device(): bound processes become "bound, suspended". */
function kfd_unbind_processes_from_device(st: kfd_iommu_state): void {
  for (const p of st.host.kfd_processes()) {
    const pdd = st.host.kfd_get_process_device_data(st.node, p);
    if (st.host.k.WARN_ON(!pdd)) continue;
    if (kfd_pdd_bound(pdd!) === PDD_BOUND) pdd_bound.set(pdd!, PDD_BOUND_SUSPENDED);
  }
}

/** kfd_iommu_suspend(): processes marked suspended, callbacks cleared, the device freed (unbinds all). */
export async function kfd_iommu_suspend(kfd: kfd_iommu_dev): Promise<void> {
  const st = use_iommu_v2.get(kfd);
  if (!st) return;
  kfd_unbind_processes_from_device(st);
  st.v2.amd_iommu_set_invalidate_ctx_cb(kfd.adev.pdev, null);
  st.v2.amd_iommu_set_invalid_ppr_cb(kfd.adev.pdev, null);
  await st.v2.amd_iommu_free_device(kfd.adev.pdev);
}

/**
 * kfd_iommu_resume(): amd_iommu_init_device with the PASID limit (-ENXIO on failure), both
 * callbacks, and the suspended processes bound again; any failure undoes it all.
 */
export async function kfd_iommu_resume(kfd: kfd_iommu_dev): Promise<number> {
  const st = use_iommu_v2.get(kfd);
  if (!st) return 0;
  const pdev = kfd.adev.pdev;
  if (await st.v2.amd_iommu_init_device(pdev, st.pasid_limit)) return -ENXIO;
  st.v2.amd_iommu_set_invalidate_ctx_cb(pdev, iommu_pasid_shutdown_callback);
  st.v2.amd_iommu_set_invalid_ppr_cb(pdev, iommu_invalid_ppr_cb);
  const err = await kfd_bind_processes_to_device(st);
  if (err) {
    st.v2.amd_iommu_set_invalidate_ctx_cb(pdev, null);
    st.v2.amd_iommu_set_invalid_ppr_cb(pdev, null);
    await st.v2.amd_iommu_free_device(pdev);
    }
  return err;
}

/** kfd_get_pasid_limit() */
export function kfd_get_pasid_limit(kfd: kfd_iommu_dev): number {
  return use_iommu_v2.get(kfd)?.pasid_limit ?? 0;
}

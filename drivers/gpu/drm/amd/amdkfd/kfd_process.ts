// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_process.c (Linux 6.8): kfd_process, the KFD state of
// one user address space. Created on the first open of /dev/kfd by a process, bound to its mm
// by an MMU notifier (whose release — at exit_mmap — takes the process out of the table and
// stops its queues), with one kfd_process_device per GPU, per-process sysfs under
// /sys/class/kfd/kfd/proc/<pid>/, and eviction/restore of all its queues. The last reference
// frees everything from a workqueue (kfd_process_wq_release).
//
// kemu follows the 2025 fix that dequeues the queues in the notifier release (the GPU must not
// touch memory exit_mmap is about to free), rather than 6.8's dequeue in the release work.

import type { mm_struct } from "../../../../../include/linux/mm_types.ts";
import type { task_struct } from "../../../../../kernel/sched/core.ts";
import { mutex_lock, mutex_unlock } from "../../../../../kernel/locking/mutex.ts";
import { kref_get, kref_put } from "../../../../../include/linux/kref.ts";
import { wait_event, wake_up_all } from "../../../../../kernel/sched/wait.ts";
import { INIT_DELAYED_WORK, INIT_WORK, WQ_FREEZABLE, WQ_MEM_RECLAIM } from "../../../../../kernel/workqueue.ts";
import { mmget_not_zero, mmput } from "../../../../../kernel/fork.ts";
import { mmu_notifier_get, mmu_notifier_put, type mmu_notifier, type mmu_notifier_ops } from "../../../../../mm/mmu_notifier.ts";
import { kobject, type kobj_attribute, type kobj_type } from "../../../../../include/linux/sysfs.ts";
import { kobject_create_and_add, kobject_del, kobject_init_and_add, kobject_put } from "../../../../../lib/kobject.ts";
import { sysfs_create_file, sysfs_remove_file } from "../../../../../fs/sysfs/file.ts";
import { EBUSY, EINVAL, ENODEV, ENOMEM, ENOSPC } from "../../../../../include/uapi/asm-generic/errno.ts";
import type { file } from "../../../../../include/linux/fs.ts";
import { fput } from "../../../../../fs/file_table.ts";
import {
  KFD_GC_VERSION, KFD_IS_SOC15, KFD_SCHED_POLICY_NO_HWS, KFD_SUPPORT_XNACK_PER_PROCESS, MAX_GPU_INSTANCE,
  kfd_process, kfd_process_device, kfd_process_mmu_notifier, type kfd_node,
} from "./kfd_priv.ts";
import type { amdkfd } from "./kfd_module.ts";
import { svm_range_list_fini, svm_range_list_init } from "./kfd_svm.ts";
import { kfd_event_free_process, kfd_event_init_process } from "./kfd_events.ts";
import { pqm_init, pqm_uninit } from "./kfd_process_queue_manager.ts";
import { kfd_init_apertures } from "./kfd_flat_memory.ts";
import { kfd_smi_event_queue_eviction, kfd_smi_event_queue_restore } from "./kfd_smi_events.ts";
import {
  amdgpu_amdkfd_gpuvm_release_process_vm, amdgpu_file_to_fpriv, drm_priv_to_vm, kfd_process_device_free_bos,
} from "../amdgpu/amdgpu_amdkfd_gpuvm.ts";
import { amdgpu_amdkfd_flush_gpu_tlb_pasid, amdgpu_amdkfd_gpuvm_acquire_process_vm } from "../amdgpu/amdgpu_amdkfd.ts";
import { ftrace } from "../../../../../include/linux/ftrace.ts";
import { kfd_iommu_bind_process_to_device, kfd_iommu_unbind_process } from "./kfd_iommu.ts";

// ---- workqueues and procfs ---------------------------------------------------------------------

/** kfd_process_create_wq(): the release and restore workqueues. */
export function kfd_process_create_wq(kfd: amdkfd): number {
  kfd.kfd_process_wq ??= kfd.wqs.alloc_workqueue("kfd_process_wq", 0, 0);
  kfd.kfd_restore_wq ??= kfd.wqs.alloc_ordered_workqueue("kfd_restore_wq", WQ_FREEZABLE | WQ_MEM_RECLAIM);
  return 0;
}

export async function kfd_process_destroy_wq(kfd: amdkfd): Promise<void> {
  if (kfd.kfd_process_wq) await kfd.wqs.destroy_workqueue(kfd.kfd_process_wq);
  if (kfd.kfd_restore_wq) await kfd.wqs.destroy_workqueue(kfd.kfd_restore_wq);
  kfd.kfd_process_wq = null;
  kfd.kfd_restore_wq = null;
}

/** kfd_procfs_init(): /sys/class/kfd/kfd/proc. */
export function kfd_procfs_init(kfd: amdkfd): void {
  if (!kfd.kfd_device) return;
  const kobj = new kobject();
  if (kobject_init_and_add(kobj, null, kfd.kfd_device.kobj, "proc")) {
    kfd.k.pr_warn("Could not create procfs proc folder");
    kobject_put(kobj);
    return;
  }
  kfd.procfs_kobj = kobj;
}

export function kfd_procfs_shutdown(kfd: amdkfd): void {
  if (!kfd.procfs_kobj) return;
  kobject_del(kfd.procfs_kobj);
  kobject_put(kfd.procfs_kobj);
  kfd.procfs_kobj = null;
}

function kfd_sysfs_create_file(kobj: kobject, attrs: kobj_attribute[], name: string, show: () => string): void {
  const attr: kobj_attribute = { name, mode: 0o444, show: () => show() };
  if (sysfs_create_file(kobj, attr)) return;
  attrs.push(attr);
}

/**
 * kfd_procfs_add_sysfs_counters(): proc/<pid>/counters_<gpuid>/{faults,page_in,page_out}, and
 * the stats_<gpuid>/evicted_ms and pasid files user tools read.
 */
function kfd_procfs_add_sysfs_files(p: kfd_process): void {
  const kobj = p.kobj!;
  kfd_sysfs_create_file(kobj, p.sysfs_attrs, "pasid", () => `${p.pasid}\n`);
  for (const pdd of p.pdds) {
    const id = pdd.dev.id;
    pdd.kobj_counters = kobject_create_and_add(`counters_${id}`, kobj);
    if (pdd.kobj_counters) {
      kfd_sysfs_create_file(pdd.kobj_counters, pdd.sysfs_attrs, "faults", () => `${pdd.faults}\n`);
      kfd_sysfs_create_file(pdd.kobj_counters, pdd.sysfs_attrs, "page_in", () => `${pdd.page_in}\n`);
      kfd_sysfs_create_file(pdd.kobj_counters, pdd.sysfs_attrs, "page_out", () => `${pdd.page_out}\n`);
    }
    pdd.kobj_stats = kobject_create_and_add(`stats_${id}`, kobj);
    if (pdd.kobj_stats) {
      kfd_sysfs_create_file(pdd.kobj_stats, pdd.sysfs_attrs, "evicted_ms", () => `${Math.floor(pdd.evict_duration_counter / 1e6)}\n`);
    }
  }
}

function kfd_process_remove_sysfs(p: kfd_process): void {
  if (!p.kobj) return;
  for (const a of p.sysfs_attrs.splice(0)) sysfs_remove_file(p.kobj, a);
  for (const pdd of p.pdds) {
    for (const kobj of [pdd.kobj_counters, pdd.kobj_stats]) {
      if (!kobj) continue;
      for (const a of pdd.sysfs_attrs) sysfs_remove_file(kobj, a);
      kobject_del(kobj);
      kobject_put(kobj);
    }
    pdd.sysfs_attrs.length = 0;
    pdd.kobj_counters = pdd.kobj_stats = null;
  }
  if (p.kobj_queues) {
    kobject_del(p.kobj_queues);
    kobject_put(p.kobj_queues);
    p.kobj_queues = null;
  }
  kobject_del(p.kobj);
  kobject_put(p.kobj);
  p.kobj = null;
}

const procfs_type: kobj_type = {};

// ---- lookup and references -------------------------------------------------------------------

/** find_process_by_mm() (kfd_processes_mutex or SRCU held). */
function find_process_by_mm(kfd: amdkfd, mm: mm_struct | null): kfd_process | null {
  return mm ? kfd.kfd_processes_table.get(mm) ?? null : null;
}

/** kfd_lookup_process_by_mm(): with a reference the caller drops with kfd_unref_process(). */
export function kfd_lookup_process_by_mm(kfd: amdkfd, mm: mm_struct): kfd_process | null {
  const p = find_process_by_mm(kfd, mm);
  if (p) kref_get(p.ref);
  return p;
}

/** kfd_lookup_process_by_pasid(): with a reference. */
export function kfd_lookup_process_by_pasid(kfd: amdkfd, pasid: number): kfd_process | null {
  for (const p of kfd.kfd_processes_table.values()) {
    if (p.pasid === pasid) {
      kref_get(p.ref);
      return p;
    }
  }
  return null;
}

/** kfd_get_process(): the process of a task's mm, without a reference (-EINVAL if none). */
export function kfd_get_process(kfd: amdkfd, thread: task_struct): kfd_process | number {
  const mm = thread.mm as mm_struct | null;
  if (!mm) return -EINVAL;
  return find_process_by_mm(kfd, mm) ?? -EINVAL;
}

/** kfd_unref_process(): the last reference queues the release work. */
export function kfd_unref_process(p: kfd_process): void {
  kref_put(p.ref, () => {
    INIT_WORK(p.release_work, () => kfd_process_wq_release(p), "kfd_process_wq_release");
    p.amdkfd.wqs.queue_work(p.amdkfd.kfd_process_wq!, p.release_work);
  });
}

/** get_task_mm() on the process's lead thread: its mm with a user reference, or null. */
export function kfd_get_process_mm(p: kfd_process): mm_struct | null {
  const mm = p.mm;
  return mm && mmget_not_zero(mm) ? mm : null;
}

// ---- process devices -------------------------------------------------------------------------

export function kfd_get_process_device_data(dev: kfd_node, p: kfd_process): kfd_process_device | null {
  return p.pdds.find((pdd) => pdd.dev === dev) ?? null;
}

/** kfd_create_process_device_data(): the process's state on `dev` (queues need a VM later). */
export function kfd_create_process_device_data(dev: kfd_node, p: kfd_process): kfd_process_device | null {
  if (p.n_pdds >= MAX_GPU_INSTANCE) return null;
  const pdd = new kfd_process_device(dev, p);
  pdd.qpd.pqm_pid = p.lead_thread.pid;
  p.pdds[p.n_pdds++] = pdd;
  return pdd;
}

/**
 * kfd_bind_process_to_device(): the pdd of `dev`, once the process acquired a VM there
 * (-ENODEV before; -ENOMEM without a pdd).
 */
export function kfd_bind_process_to_device(dev: kfd_node, p: kfd_process): kfd_process_device | number {
  const pdd = kfd_get_process_device_data(dev, p);
  if (!pdd) {
    dev.k.dev_err(dev.adev, "Process device data doesn't exist");
    return -ENOMEM;
  }
  if (!pdd.drm_priv) return -ENODEV;
  pdd.bound = true;
  return pdd;
}

/**
 * kfd_bind_process_to_device() as Linux ≤6.5 has it for IOMMUv2 APUs: the process's PASID is
 * bound to the device (kfd_iommu_bind_process_to_device) before the pdd is used. Async because
 * amd_iommu_bind_pasid sleeps; a no-op on other GPUs.
 */
export async function kfd_bind_process_to_device_iommu(dev: kfd_node, p: kfd_process): Promise<kfd_process_device | number> {
  const pdd = kfd_bind_process_to_device(dev, p);
  if (typeof pdd === "number") return pdd;
  const err = await kfd_iommu_bind_process_to_device(pdd);
  if (err) {
    pdd.bound = false;
    return err;
  }
  return pdd;
}

export function kfd_process_device_data_by_id(p: kfd_process, gpu_id: number): kfd_process_device | null {
  if (!gpu_id) return null;
  return p.pdds.slice(0, p.n_pdds).find((pdd) => pdd.user_gpu_id === gpu_id) ?? null;
}

/** kfd_process_gpuidx_from_gpuid(): index into p->pdds, or -EINVAL. */
export function kfd_process_gpuidx_from_gpuid(p: kfd_process, gpu_id: number): number {
  for (let i = 0; i < p.n_pdds; i++) if (p.pdds[i]!.user_gpu_id === gpu_id) return i;
  return -EINVAL;
}

export function kfd_process_device_from_gpuidx(p: kfd_process, gpuidx: number): kfd_process_device | null {
  return gpuidx >= 0 && gpuidx < p.n_pdds ? p.pdds[gpuidx]! : null;
}

/** kfd_process_gpuid_from_node(): the user gpu_id and pdd index of `node` in `p`. */
export function kfd_process_gpuid_from_node(p: kfd_process, node: kfd_node): { gpuid: number; gpuidx: number } | null {
  for (let i = 0; i < p.n_pdds; i++) {
    if (p.pdds[i]!.dev === node) return { gpuid: p.pdds[i]!.user_gpu_id, gpuidx: i };
  }
  return null;
}

/**
 * kfd_process_device_init_vm(): make the render-node file's VM this process's compute VM on
 * the device (AMDKFD_IOC_ACQUIRE_VM). The pdd keeps the file reference on success.
 */
export function kfd_process_device_init_vm(pdd: kfd_process_device, drm_file: file | null): number {
  if (!drm_file) return -EINVAL;
  if (pdd.drm_priv) return -EBUSY;
  const fpriv = amdgpu_file_to_fpriv(drm_file);
  if (typeof fpriv === "number") return fpriv;
  const p = pdd.process;
  // The VM becomes a compute VM keyed by the KFD process's PASID.
  const vm = amdgpu_amdkfd_gpuvm_acquire_process_vm(pdd.dev.adev, fpriv, p.pasid);
  if (typeof vm === "number") {
    p.k.pr_err("Failed to create process VM object");
    return vm;
  }
  pdd.drm_priv = drm_file.private_data;
  pdd.drm_file = drm_file;
  return 0;
}

/** kfd_process_destroy_pdds(): release each VM and its render-node file. */
async function kfd_process_destroy_pdds(p: kfd_process): Promise<void> {
  // KFD BOs first: unmapping them needs every VM still attached (issue 10).
  for (let i = 0; i < p.n_pdds; i++) await kfd_process_device_free_bos(p.amdkfd, p.pdds[i]!, p.pdds.slice(0, p.n_pdds));
  for (let i = 0; i < p.n_pdds; i++) {
    const pdd = p.pdds[i]!;
    if (pdd.drm_file) {
      amdgpu_amdkfd_gpuvm_release_process_vm(pdd.dev.adev, pdd.drm_priv);
      fput(pdd.drm_file);
      pdd.drm_file = null;
      pdd.drm_priv = null;
    }
  }
  p.pdds.length = 0;
  p.n_pdds = 0;
}

/**
 * kfd_flush_tlb(): invalidate the GPU TLB entries of the process's VM. Without HWS the VM is
 * bound to a hardware VMID only while the process has queues; before that nothing is cached.
 * (kemu flushes by PASID: the VMIDs mapped to it, which is the one VMID here.)
 */
export function kfd_flush_tlb(pdd: kfd_process_device, type: number): void {
  const dev = pdd.dev;
  if (!drm_priv_to_vm(pdd.drm_priv)) return;
  if (dev.kfd.amdkfd.sched_policy === KFD_SCHED_POLICY_NO_HWS && !pdd.qpd.vmid) return;
  amdgpu_amdkfd_flush_gpu_tlb_pasid(dev.adev, pdd.process.pasid, type);
}

// ---- XNACK -------------------------------------------------------------------------------------

/**
 * kfd_process_xnack_mode(): can (supported=true) or should (false: the boot default) this
 * process run with XNACK on? Every GFX9+ GPU must agree: GC 9.4.2/9.4.3 can choose per process;
 * GFX10+ cannot take page faults in shaders; others follow their boot-time noretry setting.
 */
export function kfd_process_xnack_mode(p: kfd_process, supported: boolean): boolean {
  for (let i = 0; i < p.n_pdds; i++) {
    const dev = p.pdds[i]!.dev;
    if (!KFD_IS_SOC15(dev)) continue;
    if (supported && KFD_SUPPORT_XNACK_PER_PROCESS(dev)) continue;
    if (KFD_GC_VERSION(dev) >= 10 * 65536 + 1 * 256 + 1) return false;
    if (dev.kfd.noretry) return false;
  }
  return true;
}

// ---- creation and release --------------------------------------------------------------------

/**
 * kfd_process_mmu_notifier_ops: one table per amdkfd instance (module), so alloc_notifier finds
 * processes in that machine's table — the kernel's table is a global of amdgpu.ko.
 */
function kfd_process_mmu_notifier_ops(kfd: amdkfd): mmu_notifier_ops {
  kfd.process_mmu_notifier_ops ??= {
    release: (mn, mm) => kfd_process_notifier_release(mn as kfd_process_mmu_notifier, mm),
    // Runs from mmu_notifier_get(); the process already sits in the table. The reference the
    // notifier holds is create_process()'s initial one, dropped by free_notifier.
    alloc_notifier: (mm) => find_process_by_mm(kfd, mm)?.mmu_notifier ?? null,
    free_notifier: (mn) => kfd_unref_process((mn as kfd_process_mmu_notifier).process),
  };
  return kfd.process_mmu_notifier_ops;
}

/**
 * create_process(): a new kfd_process for `thread`'s mm: events, PASID, queue manager, one pdd
 * per topology device with its apertures, the XNACK default, the SVM range list, then the MMU
 * notifier (last: it cannot be unwound; its put triggers the cleanup).
 */
async function create_process(kfd: amdkfd, thread: task_struct): Promise<kfd_process | number> {
  const mm = thread.mm as mm_struct;
  const ops = kfd_process_mmu_notifier_ops(kfd);
  const p = new kfd_process(kfd, mm, leader_of(kfd, thread), ops);
  INIT_DELAYED_WORK(p.eviction_work, () => evict_process_worker(p), "evict_process_worker");
  INIT_DELAYED_WORK(p.restore_work, () => restore_process_worker(p), "restore_process_worker");
  p.last_restore_timestamp = kfd.k.jiffies;
  kfd_event_init_process(p);
  p.pasid = kfd.kfd_pasid_alloc();
  if (p.pasid === 0) return -ENOSPC;
  pqm_init(p.pqm, p);
  let err = kfd_init_apertures(p);
  if (err) {
    kfd.kfd_pasid_free(p.pasid);
    return err;
  }
  p.xnack_enabled = kfd_process_xnack_mode(p, false);
  svm_range_list_init(p);
  kfd.kfd_processes_table.set(mm, p);
  // Hold the process while the notifier registers (free_notifier drops one reference).
  kref_get(p.ref);
  const mn = await mmu_notifier_get(ops, mm);
  if (typeof mn === "number") {
    err = mn;
    kfd.kfd_processes_table.delete(mm);
    await svm_range_list_fini(p);
    await kfd_process_destroy_pdds(p);
    kfd_event_free_process(p);
    kfd.kfd_pasid_free(p.pasid);
    return err;
  }
  kfd.k.WARN_ON(mn !== p.mmu_notifier);
  kfd_unref_process(p);
  return p;
}

function leader_of(kfd: amdkfd, thread: task_struct): task_struct {
  return thread.pid === thread.tgid ? thread : kfd.k.sched.find_task_by_pid(thread.tgid) ?? thread;
}

/**
 * kfd_create_process(): the process of `thread`'s mm, creating it (and its sysfs directory) on
 * first use; returns it with a reference for the open file.
 */
export async function kfd_create_process(kfd: amdkfd, thread: task_struct): Promise<kfd_process | number> {
  const mm = thread.mm as mm_struct | null;
  if (!mm || !mmget_not_zero(mm)) return -EINVAL;
  // A process that just exec'ed may still have its old kfd_process in the release queue.
  await kfd.wqs.flush_workqueue(kfd.kfd_process_wq!);
  await mutex_lock(kfd.kfd_processes_mutex);
  let process: kfd_process | number;
  if (kfd.kfd_locked > 0) {
    process = -EINVAL;
  } else {
    process = find_process_by_mm(kfd, mm) ?? (await create_process(kfd, thread));
    if (typeof process !== "number" && !process.kobj && kfd.procfs_kobj) kfd_process_add_sysfs(kfd, process);
  }
  if (typeof process !== "number") kref_get(process.ref);
  mutex_unlock(kfd.kfd_processes_mutex);
  await mmput(mm);
  return process;
}

function kfd_process_add_sysfs(kfd: amdkfd, p: kfd_process): void {
  const kobj = new kobject();
  if (kobject_init_and_add(kobj, procfs_type, kfd.procfs_kobj, `${p.lead_thread.pid}`)) {
    kfd.k.pr_warn("Creating procfs pid directory failed");
    kobject_put(kobj);
    return;
  }
  p.kobj = kobj;
  p.kobj_queues = kobject_create_and_add("queues", kobj);
  kfd_procfs_add_sysfs_files(p);
}

/** kfd_process_notifier_release(): the mm is going away (exit_mmap). */
async function kfd_process_notifier_release(mn: kfd_process_mmu_notifier, mm: mm_struct): Promise<void> {
  const p = mn.process;
  const kfd = p.amdkfd;
  if (kfd.k.WARN_ON(p.mm !== mm)) return;
  await mutex_lock(kfd.kfd_processes_mutex);
  if (kfd.kfd_processes_table.size === 0) {
    mutex_unlock(kfd.kfd_processes_mutex);
    return;
  }
  kfd.kfd_processes_table.delete(mm);
  kfd.releases_in_flight++;
  mutex_unlock(kfd.kfd_processes_mutex);
  await kfd_process_notifier_release_internal(p);
  if (--kfd.releases_in_flight === 0) wake_up_all(kfd.releases_wq);
}

async function kfd_process_notifier_release_internal(p: kfd_process): Promise<void> {
  const wqs = p.amdkfd.wqs;
  await wqs.cancel_delayed_work_sync(p.eviction_work);
  await wqs.cancel_delayed_work_sync(p.restore_work);
  // exit_mmap frees the process's memory next: the GPU must stop touching it now.
  await kfd_process_dequeue_from_all_devices(p);
  pqm_uninit(p.pqm);
  // Tell other users the mm is no longer valid.
  p.mm = null;
  mmu_notifier_put(p.mmu_notifier as mmu_notifier);
}

/** kfd_process_dequeue_from_all_devices(): destroy every queue of the process, per device. */
export async function kfd_process_dequeue_from_all_devices(p: kfd_process): Promise<void> {
  for (let i = 0; i < p.n_pdds; i++) await kfd_process_dequeue_from_device(p.pdds[i]!);
}

/** kfd_process_dequeue_from_device(): the process's queues on one device (once). */
export async function kfd_process_dequeue_from_device(pdd: kfd_process_device): Promise<void> {
  if (pdd.already_dequeued) return;
  await pdd.dev.dqm.ops.process_termination(pdd.dev.dqm, pdd.qpd);
  pdd.already_dequeued = true;
}

/**
 * kfd_process_wq_release(): the last reference is gone: sysfs, SVM ranges, VMs, events, PASID.
 */
async function kfd_process_wq_release(p: kfd_process): Promise<void> {
  using _ = ftrace(p.k, "kfd_process_wq_release");
  const kfd = p.amdkfd;
  // A process whose mm never released (e.g. create failed halfway) still has queues.
  await kfd_process_dequeue_from_all_devices(p);
  pqm_uninit(p.pqm);
  kfd_process_remove_sysfs(p);
  // ≤6.5, IOMMUv2 APUs: the PASID leaves the device before the process's memory is torn down.
  await kfd_iommu_unbind_process(p);
  await svm_range_list_fini(p);
  await kfd_process_destroy_pdds(p);
  kfd_event_free_process(p);
  kfd.kfd_pasid_free(p.pasid);
}

// ---- eviction and restore of all queues ---------------------------------------------------------

/**
 * kfd_process_evict_queues(): stop every queue of the process on every device; on failure the
 * ones already evicted are restored. The SMI layer reports each device's eviction.
 */
export async function kfd_process_evict_queues(p: kfd_process, trigger: number): Promise<number> {
  using _ = ftrace(p.k, "kfd_process_evict_queues");
  let r = 0;
  let n_evicted = 0;
  for (let i = 0; i < p.n_pdds; i++) {
    const pdd = p.pdds[i]!;
    kfd_smi_event_queue_eviction(pdd.dev, p.lead_thread.pid, trigger);
    r = await pdd.dev.dqm.ops.evict_process_queues(pdd.dev.dqm, pdd.qpd);
    if (r) {
      p.k.pr_err(`Failed to evict process queues`);
      break;
    }
    n_evicted++;
  }
  if (!r) return 0;
  for (let i = 0; i < n_evicted; i++) {
    const pdd = p.pdds[i]!;
    kfd_smi_event_queue_restore(pdd.dev, p.lead_thread.pid);
    await pdd.dev.dqm.ops.restore_process_queues(pdd.dev.dqm, pdd.qpd);
  }
  return r;
}

/** kfd_process_restore_queues(): restart the queues on every device; returns the first error. */
export async function kfd_process_restore_queues(p: kfd_process): Promise<number> {
  using _ = ftrace(p.k, "kfd_process_restore_queues");
  let ret = 0;
  for (let i = 0; i < p.n_pdds; i++) {
    const pdd = p.pdds[i]!;
    kfd_smi_event_queue_restore(pdd.dev, p.lead_thread.pid);
    const r = await pdd.dev.dqm.ops.restore_process_queues(pdd.dev.dqm, pdd.qpd);
    if (r) {
      p.k.pr_err(`Failed to restore process queues`);
      if (!ret) ret = r;
    }
  }
  return ret;
}

/** The KFD BO eviction worker: KFD BOs are not modelled, so this only cycles the queues. */
async function evict_process_worker(p: kfd_process): Promise<void> {
  const r = await kfd_process_evict_queues(p, 2 /* KFD_QUEUE_EVICTION_TRIGGER_TTM */);
  if (!r) p.amdkfd.wqs.queue_delayed_work(p.amdkfd.kfd_restore_wq!, p.restore_work, 0);
}

async function restore_process_worker(p: kfd_process): Promise<void> {
  p.last_restore_timestamp = p.k.jiffies;
  await kfd_process_restore_queues(p);
}

/** kfd_cleanup_processes(): at module exit, release every remaining process. */
export async function kfd_cleanup_processes(kfd: amdkfd): Promise<void> {
  for (const [mm, p] of [...kfd.kfd_processes_table]) {
    kfd.kfd_processes_table.delete(mm);
    await kfd_process_notifier_release_internal(p);
  }
  // An exit_mmap that took its process out of the table first may still be releasing it.
  await wait_event(kfd.releases_wq, () => kfd.releases_in_flight === 0);
  await kfd.wqs.flush_workqueue(kfd.kfd_process_wq!);
}

/** The number of live processes (tests and the leak report). */
export function kfd_process_count(kfd: amdkfd): number {
  return kfd.kfd_processes_table.size;
}


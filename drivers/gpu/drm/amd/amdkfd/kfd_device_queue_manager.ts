// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_device_queue_manager.c and kfd_device_queue_manager_v9.c
// (Linux 6.8), the no-HWS policy (sched_policy=2, "no CP scheduling"): KFD itself binds each
// process to a hardware VMID while it has queues (PASID mapping, page-table base, shader
// memory config with the per-process XNACK setting) and loads each user queue into its own
// hardware queue slot. Eviction preempts every active queue of a process and marks it evicted
// (with CWSR its waves are saved to the queue's context save area, else they drain); restore
// loads them again and the CP resumes them mid-dispatch. Destroying a queue resets its waves.
// kemu's CP runs no scheduler firmware, so HWS is not modelled.
//
// SDMA user queues take an RLC queue of an SDMA engine from the DQM's SDMA bitmap (-ENOMEM when
// none is left) and load through an SDMA MQD; eviction quiesces them like compute queues (the
// packet in flight drains, their pointers are saved in the MQD). kemu has no XGMI SDMA engines,
// so an SDMA_XGMI queue always finds its bitmap empty.

import { mutex, mutex_lock, mutex_unlock } from "../../../../../kernel/locking/mutex.ts";
import { EBUSY, EINVAL, ENOMEM, ENOSPC, EPERM, ESRCH } from "../../../../../include/uapi/asm-generic/errno.ts";
import {
  KFD_MAX_NUM_OF_QUEUES_PER_PROCESS, KFD_QUEUE_TYPE_COMPUTE, KFD_QUEUE_TYPE_SDMA, KFD_SCHED_POLICY_NO_HWS, KFD_SUPPORT_XNACK_PER_PROCESS, TLB_FLUSH_LEGACY,
  type kfd_node, type qcm_process_device, type queue,
} from "./kfd_priv.ts";
import {
  destroy_mqd, destroy_mqd_sdma, init_mqd, init_mqd_sdma, load_mqd, load_mqd_sdma, update_mqd, update_mqd_sdma, KFD_UNMAP_LATENCY_MS,
} from "./kfd_mqd_manager_v9.ts";
import {
  kfd_alloc_process_doorbells, kfd_doorbell_init, kfd_free_process_doorbells, kfd_get_doorbell_dw_offset_in_bar,
  type kfd_doorbell_state,
} from "./kfd_doorbell.ts";
import { kfd_flush_tlb } from "./kfd_process.ts";
import {
  kgd_gfx_v9_program_sh_mem_settings, kgd_gfx_v9_set_pasid_vmid_mapping, kgd_gfx_v9_set_vm_context_page_table_base,
} from "../amdgpu/amdgpu_amdkfd_gfx_v9.ts";
import { amdgpu_gmc_pd_addr } from "../amdgpu/amdgpu_gmc.ts";
import { drm_priv_to_vm } from "../amdgpu/amdgpu_amdkfd_gpuvm.ts";
import { REG_SET_FIELD, SH_MEM_CONFIG__ALIGNMENT_MODE, SH_MEM_CONFIG__RETRY_DISABLE } from "../include/asic_reg/kemu_gpu_regs.ts";
import type { v9_mqd, v9_sdma_mqd } from "../include/v9_structs.ts";
import {
  KFD_PREEMPT_TYPE_WAVEFRONT_DRAIN, KFD_PREEMPT_TYPE_WAVEFRONT_RESET, KFD_PREEMPT_TYPE_WAVEFRONT_SAVE, type kfd_preempt_type,
} from "../include/kgd_kfd_interface.ts";
import { ftrace } from "../../../../../include/linux/ftrace.ts";

/** SH_MEM_ALIGNMENT_MODE_UNALIGNED */
const SH_MEM_ALIGNMENT_MODE_UNALIGNED = 3;

export interface device_queue_manager_ops {
  create_queue(dqm: device_queue_manager, q: queue, qpd: qcm_process_device): Promise<number>;
  destroy_queue(dqm: device_queue_manager, qpd: qcm_process_device, q: queue): Promise<number>;
  register_process(dqm: device_queue_manager, qpd: qcm_process_device): Promise<number>;
  unregister_process(dqm: device_queue_manager, qpd: qcm_process_device): Promise<number>;
  evict_process_queues(dqm: device_queue_manager, qpd: qcm_process_device): Promise<number>;
  restore_process_queues(dqm: device_queue_manager, qpd: qcm_process_device): Promise<number>;
  process_termination(dqm: device_queue_manager, qpd: qcm_process_device): Promise<number>;
  start(dqm: device_queue_manager): number;
  stop(dqm: device_queue_manager): number;
}

/** struct device_queue_manager (no-HWS). */
export class device_queue_manager {
  ops!: device_queue_manager_ops;
  readonly sched_policy = KFD_SCHED_POLICY_NO_HWS;
  readonly lock_hidden: mutex;
  /** Registered processes' queue sets. */
  readonly queues: qcm_process_device[] = [];
  processes_count = 0;
  active_queue_count = 0;
  total_queue_count = 0;
  /** Free hardware queues per MEC pipe (bit set = free). */
  readonly allocated_queues: Set<number>[];
  next_pipe_to_allocate = 0;
  /** Free SDMA queue slots (bit b = engine b % engines, RLC queue b / engines), lowest first. */
  readonly sdma_bitmap: Set<number>;
  /** XGMI SDMA engines' slots: kemu has none. */
  readonly xgmi_sdma_bitmap = new Set<number>();
  /** vmid_pasid[vmid]: the PASID bound to each KFD VMID (0 = free). */
  readonly vmid_pasid = new Array<number>(16).fill(0);
  sched_running = false;
  readonly doorbells: kfd_doorbell_state;

  constructor(readonly dev: kfd_node) {
    this.lock_hidden = new mutex(dev.k, "&dqm->lock_hidden");
    const mec = dev.adev.gfx.mec;
    this.allocated_queues = Array.from({ length: mec.num_pipe_per_mec }, () => new Set(Array.from({ length: mec.num_queue_per_pipe }, (_, i) => i)));
    this.doorbells = kfd_doorbell_init(dev.adev.doorbell_size);
    this.sdma_bitmap = new Set(Array.from({ length: get_num_sdma_queues(dev) }, (_, i) => i));
  }
}

/** kfd_get_num_sdma_engines(): the SDMA engines whose RLC queues KFD hands out. */
export function kfd_get_num_sdma_engines(dev: kfd_node): number {
  return dev.adev.sdma.num_instances;
}

/** get_num_sdma_queues(): engines times the non-reserved RLC queues of each. */
export function get_num_sdma_queues(dev: kfd_node): number {
  const info = dev.kfd.device_info;
  return kfd_get_num_sdma_engines(dev) * (info.num_sdma_queues_per_engine - info.num_reserved_sdma_queues_per_engine);
}

function dqm_lock(dqm: device_queue_manager): Promise<void> {
  return mutex_lock(dqm.lock_hidden);
}
function dqm_unlock(dqm: device_queue_manager): void {
  mutex_unlock(dqm.lock_hidden);
}

/** update_qpd_v9(): unaligned accesses; no retry for XNACK-off processes or noretry parts. */
function update_qpd_v9(dqm: device_queue_manager, qpd: qcm_process_device): void {
  const pdd = qpd.pdd;
  let cfg = REG_SET_FIELD(0, SH_MEM_CONFIG__ALIGNMENT_MODE, SH_MEM_ALIGNMENT_MODE_UNALIGNED);
  if (dqm.dev.kfd.noretry) cfg = REG_SET_FIELD(cfg, SH_MEM_CONFIG__RETRY_DISABLE, 1);
  if (KFD_SUPPORT_XNACK_PER_PROCESS(dqm.dev)) cfg = REG_SET_FIELD(cfg, SH_MEM_CONFIG__RETRY_DISABLE, pdd.process.xnack_enabled ? 0 : 1);
  else if (!pdd.process.xnack_enabled) cfg = REG_SET_FIELD(cfg, SH_MEM_CONFIG__RETRY_DISABLE, 1);
  qpd.sh_mem_config = cfg;
  // SH_MEM_BASES: the private (scratch) and shared (LDS) aperture bases, bits 63:48.
  qpd.sh_mem_bases = ((Math.floor(pdd.scratch_base / 2 ** 48) & 0xffff) * 65536 + (Math.floor(pdd.lds_base / 2 ** 48) & 0xffff)) >>> 0;
}

/**
 * allocate_vmid(): bind the process to a free KFD VMID: IH vectors of that VMID carry its PASID,
 * its shader memory settings and page-table base are programmed, its TLB flushed.
 */
async function allocate_vmid(dqm: device_queue_manager, qpd: qcm_process_device, q: queue): Promise<number> {
  const dev = dqm.dev;
  const { first_vmid_kfd, last_vmid_kfd } = dev.vm_info;
  let vmid = -1;
  for (let i = first_vmid_kfd; i <= last_vmid_kfd; i++) {
    if (!dqm.vmid_pasid[i]) {
      vmid = i;
      break;
    }
  }
  if (vmid < 0) return -ENOSPC;
  const p = q.process;
  dqm.vmid_pasid[vmid] = p.pasid;
  const r = kgd_gfx_v9_set_pasid_vmid_mapping(dev.adev, p.pasid, vmid);
  if (r) {
    dqm.vmid_pasid[vmid] = 0;
    return r;
  }
  qpd.vmid = vmid;
  q.properties.vmid = vmid;
  update_qpd_v9(dqm, qpd);
  await kgd_gfx_v9_program_sh_mem_settings(dev.adev, vmid, qpd.sh_mem_config, qpd.sh_mem_bases);
  const vm = drm_priv_to_vm(qpd.pdd.drm_priv);
  qpd.page_table_base = vm?.root ? amdgpu_gmc_pd_addr(dev.adev, vm.root.bo) : 0;
  kgd_gfx_v9_set_vm_context_page_table_base(dev.adev, vmid, qpd.page_table_base);
  kfd_flush_tlb(qpd.pdd, TLB_FLUSH_LEGACY);
  return 0;
}

async function deallocate_vmid(dqm: device_queue_manager, qpd: qcm_process_device, q: queue): Promise<void> {
  kfd_flush_tlb(qpd.pdd, TLB_FLUSH_LEGACY);
  kgd_gfx_v9_set_pasid_vmid_mapping(dqm.dev.adev, 0, qpd.vmid);
  dqm.vmid_pasid[qpd.vmid] = 0;
  qpd.vmid = 0;
  q.properties.vmid = 0;
}

/** allocate_hqd(): round-robin over the pipes for a free hardware queue. */
function allocate_hqd(dqm: device_queue_manager, q: queue): number {
  const pipes = dqm.allocated_queues.length;
  for (let i = 0, pipe = dqm.next_pipe_to_allocate; i < pipes; i++, pipe = (pipe + 1) % pipes) {
    const free = dqm.allocated_queues[pipe]!;
    if (!free.size) continue;
    const bit = Math.min(...free);
    free.delete(bit);
    q.pipe = pipe;
    q.queue = bit;
    dqm.next_pipe_to_allocate = (pipe + 1) % pipes;
    return 0;
  }
  return -EBUSY;
}

function deallocate_hqd(dqm: device_queue_manager, q: queue): void {
  dqm.allocated_queues[q.pipe]!.add(q.queue);
  q.pipe = q.queue = -1;
}

function is_sdma(q: queue): boolean {
  return q.properties.type !== KFD_QUEUE_TYPE_COMPUTE;
}

/** allocate_sdma_queue(): the lowest free slot of the queue type's bitmap; -ENOMEM when empty. */
function allocate_sdma_queue(dqm: device_queue_manager, q: queue): number {
  const bitmap = q.properties.type === KFD_QUEUE_TYPE_SDMA ? dqm.sdma_bitmap : dqm.xgmi_sdma_bitmap;
  if (!bitmap.size) {
    dqm.dev.k.dev_err(dqm.dev.adev, "No more SDMA queue to allocate");
    return -ENOMEM;
  }
  const bit = Math.min(...bitmap);
  bitmap.delete(bit);
  const engines = kfd_get_num_sdma_engines(dqm.dev);
  q.sdma_id = bit;
  q.properties.sdma_engine_id = bit % engines;
  q.properties.sdma_queue_id = Math.floor(bit / engines);
  q.pipe = q.properties.sdma_engine_id;
  q.queue = q.properties.sdma_queue_id;
  return 0;
}

function deallocate_sdma_queue(dqm: device_queue_manager, q: queue): void {
  (q.properties.type === KFD_QUEUE_TYPE_SDMA ? dqm.sdma_bitmap : dqm.xgmi_sdma_bitmap).add(q.sdma_id);
  q.pipe = q.queue = -1;
}

/** The queue's hardware slot: an MEC HQD for compute, an SDMA RLC queue otherwise. */
function allocate_slot(dqm: device_queue_manager, q: queue): number {
  return is_sdma(q) ? allocate_sdma_queue(dqm, q) : allocate_hqd(dqm, q);
}

function deallocate_slot(dqm: device_queue_manager, q: queue): void {
  if (is_sdma(q)) deallocate_sdma_queue(dqm, q);
  else deallocate_hqd(dqm, q);
}

/** Loads the queue's MQD into its slot. */
function load_queue(dqm: device_queue_manager, q: queue): Promise<number> {
  if (is_sdma(q)) return load_mqd_sdma(dqm.dev, q.mqd as v9_sdma_mqd);
  return load_mqd(dqm.dev, q.mqd as v9_mqd, q.pipe, q.queue);
}

/**
 * Preempts the queue the way `type` says (an SDMA queue always drains its packet in flight),
 * saving its state in the MQD.
 */
function unload_queue(dqm: device_queue_manager, q: queue, type: kfd_preempt_type): Promise<number> {
  if (is_sdma(q)) return destroy_mqd_sdma(dqm.dev, q.mqd as v9_sdma_mqd, KFD_UNMAP_LATENCY_MS);
  return destroy_mqd(dqm.dev, q.mqd as v9_mqd, type, KFD_UNMAP_LATENCY_MS, q.pipe, q.queue);
}

/** A queue switched out to come back later keeps its waves (CWSR) or, without CWSR, drains them. */
function preempt_type_keep(dqm: device_queue_manager): kfd_preempt_type {
  return dqm.dev.kfd.cwsr_enabled ? KFD_PREEMPT_TYPE_WAVEFRONT_SAVE : KFD_PREEMPT_TYPE_WAVEFRONT_DRAIN;
}

/** allocate_doorbell(): a doorbell id in the process's slice. */
function allocate_doorbell(dqm: device_queue_manager, qpd: qcm_process_device, q: queue): number {
  const r = kfd_alloc_process_doorbells(dqm.doorbells, qpd.pdd);
  if (r) return r;
  for (let id = 0; id < KFD_MAX_NUM_OF_QUEUES_PER_PROCESS; id++) {
    if (qpd.doorbell_bitmap.has(id)) continue;
    qpd.doorbell_bitmap.add(id);
    q.doorbell_id = id;
    q.properties.doorbell_off = kfd_get_doorbell_dw_offset_in_bar(qpd.pdd, id);
    return 0;
  }
  return -EBUSY;
}

function deallocate_doorbell(qpd: qcm_process_device, q: queue): void {
  qpd.doorbell_bitmap.delete(q.doorbell_id);
}

/**
 * create_queue_nocpsch(): the first queue binds a VMID; then a hardware slot, a doorbell and an
 * MQD; an active queue of a process that is not evicted is loaded at once.
 */
async function create_queue_nocpsch(dqm: device_queue_manager, q: queue, qpd: qcm_process_device): Promise<number> {
  await dqm_lock(dqm);
  try {
    if (dqm.total_queue_count >= KFD_MAX_NUM_OF_QUEUES_PER_PROCESS * 16) return -EPERM;
    let r = 0;
    if (qpd.queues_list.length === 0) {
      r = await allocate_vmid(dqm, qpd, q);
      if (r) return r;
    }
    q.properties.vmid = qpd.vmid;
    q.properties.is_evicted = qpd.evicted > 0;
    q.properties.is_active = q.properties.queue_size > 0 && q.properties.queue_address !== 0 && q.properties.queue_percent > 0 && !q.properties.is_evicted;
    r = allocate_slot(dqm, q);
    if (!r) r = allocate_doorbell(dqm, qpd, q);
    if (r) {
      if (q.pipe >= 0) deallocate_slot(dqm, q);
      if (qpd.queues_list.length === 0) await deallocate_vmid(dqm, qpd, q);
      return r;
    }
    q.mqd = is_sdma(q) ? init_mqd_sdma(q.properties) : init_mqd(dqm.dev, q.properties);
    if (q.properties.is_active) {
      r = await load_queue(dqm, q);
      if (r) {
        deallocate_doorbell(qpd, q);
        deallocate_slot(dqm, q);
        if (qpd.queues_list.length === 0) await deallocate_vmid(dqm, qpd, q);
        return r;
      }
      dqm.active_queue_count++;
    }
    qpd.queues_list.push(q);
    qpd.queue_count++;
    dqm.total_queue_count++;
    return 0;
  } finally {
    dqm_unlock(dqm);
  }
}

/** destroy_queue_nocpsch_locked(): unload, free the slot and doorbell; the last queue frees the VMID. */
async function destroy_queue_nocpsch_locked(dqm: device_queue_manager, qpd: qcm_process_device, q: queue): Promise<number> {
  let r = 0;
  if (q.properties.is_active) {
    // The queue is going away: its waves are killed, not saved.
    r = await unload_queue(dqm, q, KFD_PREEMPT_TYPE_WAVEFRONT_RESET);
    dqm.active_queue_count--;
    q.properties.is_active = false;
  }
  deallocate_slot(dqm, q);
  deallocate_doorbell(qpd, q);
  const i = qpd.queues_list.indexOf(q);
  if (i >= 0) qpd.queues_list.splice(i, 1);
  qpd.queue_count--;
  dqm.total_queue_count--;
  if (qpd.queues_list.length === 0) {
    await deallocate_vmid(dqm, qpd, q);
    kfd_free_process_doorbells(dqm.doorbells, qpd.pdd);
  }
  return r;
}

async function destroy_queue_nocpsch(dqm: device_queue_manager, qpd: qcm_process_device, q: queue): Promise<number> {
  await dqm_lock(dqm);
  try {
    return await destroy_queue_nocpsch_locked(dqm, qpd, q);
  } finally {
    dqm_unlock(dqm);
  }
}

/**
 * evict_process_queues_nocpsch(): the first eviction preempts every active queue of the
 * process (later ones only count); returns the first preemption error.
 */
async function evict_process_queues_nocpsch(dqm: device_queue_manager, qpd: qcm_process_device): Promise<number> {
  using _ = ftrace(dqm.dev.k, "evict_process_queues_nocpsch");
  await dqm_lock(dqm);
  let ret = 0;
  try {
    if (qpd.evicted++ > 0) return 0;
    qpd.pdd.last_evict_timestamp = dqm.dev.k.ktime_get();
    for (const q of qpd.queues_list) {
      q.properties.is_evicted = true;
      if (!q.properties.is_active) continue;
      q.properties.is_active = false;
      dqm.active_queue_count--;
      const r = await unload_queue(dqm, q, preempt_type_keep(dqm));
      // Return the first error but keep going: the eviction state must stay consistent.
      if (r && !ret) ret = r;
    }
    return ret;
  } finally {
    dqm_unlock(dqm);
  }
}

/**
 * restore_process_queues_nocpsch(): when the last eviction is undone, reprogram the VMID's
 * page-table base (the VM may have new page tables), flush its TLB and reload every queue that
 * can run.
 */
async function restore_process_queues_nocpsch(dqm: device_queue_manager, qpd: qcm_process_device): Promise<number> {
  using _ = ftrace(dqm.dev.k, "restore_process_queues_nocpsch");
  await dqm_lock(dqm);
  let ret = 0;
  try {
    if (qpd.evicted === 0) return 0;
    if (qpd.evicted > 1) {
      qpd.evicted--;
      return 0;
    }
    const pdd = qpd.pdd;
    if (qpd.vmid) {
      // The process may have switched XNACK or page tables while evicted.
      update_qpd_v9(dqm, qpd);
      await kgd_gfx_v9_program_sh_mem_settings(dqm.dev.adev, qpd.vmid, qpd.sh_mem_config, qpd.sh_mem_bases);
      kgd_gfx_v9_set_vm_context_page_table_base(dqm.dev.adev, qpd.vmid, qpd.page_table_base);
      kfd_flush_tlb(pdd, TLB_FLUSH_LEGACY);
    }
    for (const q of qpd.queues_list) {
      q.properties.is_evicted = false;
      if (!(q.properties.queue_size > 0 && q.properties.queue_address !== 0 && q.properties.queue_percent > 0)) continue;
      q.properties.is_active = true;
      dqm.active_queue_count++;
      const r = await load_queue(dqm, q);
      if (r && !ret) ret = r;
    }
    qpd.evicted = 0;
    pdd.evict_duration_counter += dqm.dev.k.ktime_get() - pdd.last_evict_timestamp;
    return ret;
  } finally {
    dqm_unlock(dqm);
  }
}

async function register_process(dqm: device_queue_manager, qpd: qcm_process_device): Promise<number> {
  await dqm_lock(dqm);
  dqm.queues.push(qpd);
  dqm.processes_count++;
  update_qpd_v9(dqm, qpd);
  dqm_unlock(dqm);
  return 0;
}

async function unregister_process(dqm: device_queue_manager, qpd: qcm_process_device): Promise<number> {
  await dqm_lock(dqm);
  const i = dqm.queues.indexOf(qpd);
  let r = -EINVAL;
  if (i >= 0) {
    dqm.queues.splice(i, 1);
    dqm.processes_count--;
    r = 0;
  }
  dqm_unlock(dqm);
  return r;
}

/** process_termination_nocpsch(): destroy every queue of the process and unregister it. */
async function process_termination_nocpsch(dqm: device_queue_manager, qpd: qcm_process_device): Promise<number> {
  await dqm_lock(dqm);
  let ret = 0;
  try {
    while (qpd.queues_list.length) {
      const r = await destroy_queue_nocpsch_locked(dqm, qpd, qpd.queues_list[0]!);
      if (r && !ret) ret = r;
    }
    const i = dqm.queues.indexOf(qpd);
    if (i >= 0) {
      dqm.queues.splice(i, 1);
      dqm.processes_count--;
    }
    return ret;
  } finally {
    dqm_unlock(dqm);
  }
}

const nocpsch_ops: device_queue_manager_ops = {
  create_queue: create_queue_nocpsch,
  destroy_queue: destroy_queue_nocpsch,
  register_process,
  unregister_process,
  evict_process_queues: evict_process_queues_nocpsch,
  restore_process_queues: restore_process_queues_nocpsch,
  process_termination: process_termination_nocpsch,
  start: (dqm) => {
    dqm.sched_running = true;
    return 0;
  },
  stop: (dqm) => {
    dqm.sched_running = false;
    return 0;
  },
};

/** device_queue_manager_init(): the no-HWS manager of `dev`. */
export function device_queue_manager_init(dev: kfd_node): device_queue_manager | null {
  const dqm = new device_queue_manager(dev);
  dqm.ops = nocpsch_ops;
  return dqm;
}

/**
 * kfd_dqm_evict_pasid(): after a fatal GPU fault the process's queues stop (until its restore).
 */
export async function kfd_dqm_evict_pasid(dqm: device_queue_manager, pasid: number): Promise<number> {
  using _ = ftrace(dqm.dev.k, "kfd_dqm_evict_pasid");
  const qpd = dqm.queues.find((q) => q.pdd.process.pasid === pasid);
  if (!qpd) return -ESRCH;
  return await dqm.ops.evict_process_queues(dqm, qpd);
}

/** Update a queue's MQD after user space changed its ring (pqm_update_queue_properties). */
export async function dqm_update_queue(dqm: device_queue_manager, q: queue): Promise<number> {
  await dqm_lock(dqm);
  try {
    const was_active = q.properties.is_active;
    if (was_active) {
      const r = await unload_queue(dqm, q, preempt_type_keep(dqm));
      if (r) return r;
      dqm.active_queue_count--;
    }
    if (is_sdma(q)) update_mqd_sdma(q.mqd as v9_sdma_mqd, q.properties);
    else update_mqd(q.mqd as v9_mqd, q.properties);
    q.properties.is_active = q.properties.queue_size > 0 && q.properties.queue_address !== 0 && q.properties.queue_percent > 0 && !q.properties.is_evicted;
    if (q.properties.is_active) {
      dqm.active_queue_count++;
      return await load_queue(dqm, q);
    }
    return 0;
  } finally {
    dqm_unlock(dqm);
  }
}


// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_priv.h (Linux 6.8): the KFD's own objects — the
// device (kfd_dev) and its compute nodes (kfd_node), the process (kfd_process) with one
// kfd_process_device per GPU, user queues and their properties, the per-process queue manager —
// and the constants and small helpers the driver files share.
//
// kemu: `struct kfd_process` embeds `struct svm_range_list svms` (kfd_svm.ts); container_of()
// becomes the `svms.process` back-pointer. Bitmaps of MAX_GPU_INSTANCE bits are byte arrays
// with the kernel's bitmap_* helper names (a 64-bit word cannot take 32-bit operators).

import type { Kernel } from "../../../../../kernel/kernel.ts";
import type { task_struct } from "../../../../../kernel/sched/core.ts";
import type { mm_struct } from "../../../../../include/linux/mm_types.ts";
import { mutex } from "../../../../../kernel/locking/mutex.ts";
import { spinlock_t } from "../../../../../kernel/locking/spinlock.ts";
import { kref } from "../../../../../include/linux/kref.ts";
import { delayed_work, work_struct } from "../../../../../kernel/workqueue.ts";
import { mmu_notifier, type mmu_notifier_ops } from "../../../../../mm/mmu_notifier.ts";
import { kobject, type kobj_attribute } from "../../../../../include/linux/sysfs.ts";
import type { amdgpu_device } from "../amdgpu/amdgpu.ts";
import type { file } from "../../../../../include/linux/fs.ts";
import type { amdkfd } from "./kfd_module.ts";
import type { svm_range_list } from "./kfd_svm.ts";
import type { kfd_event_state } from "./kfd_events.ts";
import type { device_queue_manager } from "./kfd_device_queue_manager.ts";
import type { kfd_smi_client } from "./kfd_smi_events.ts";

/** MAX_GPU_INSTANCE: width of the per-range GPU bitmaps and dma_addr slots. */
export const MAX_GPU_INSTANCE = 64;

/** gpu_id width: topology hashes the device identity into 16 bits. */
export const KFD_GPU_ID_HASH_WIDTH = 16;

// enum kfd_sched_policy
export const KFD_SCHED_POLICY_HWS = 0;
export const KFD_SCHED_POLICY_HWS_NO_OVERSUBSCRIPTION = 1;
export const KFD_SCHED_POLICY_NO_HWS = 2;

// enum kfd_queue_type
export const KFD_QUEUE_TYPE_COMPUTE = 0;
export const KFD_QUEUE_TYPE_SDMA = 1;
export const KFD_QUEUE_TYPE_HIQ = 2;
export const KFD_QUEUE_TYPE_DIQ = 3;
export const KFD_QUEUE_TYPE_SDMA_XGMI = 4;

// enum kfd_queue_format
export const KFD_QUEUE_FORMAT_PM4 = 0;
export const KFD_QUEUE_FORMAT_AQL = 1;

// TLB flush types (enum TLB_FLUSH_TYPE)
export const TLB_FLUSH_LEGACY = 0;
export const TLB_FLUSH_LIGHTWEIGHT = 1;
export const TLB_FLUSH_HEAVYWEIGHT = 2;

/** mmap offsets of /dev/kfd: the type in bits 62..63 and the GPU id in bits 46..61. */
export const KFD_MMAP_TYPE_SHIFT = 62;
export const KFD_MMAP_TYPE_DOORBELL = 3 * 2 ** KFD_MMAP_TYPE_SHIFT;
export const KFD_MMAP_TYPE_EVENTS = 2 * 2 ** KFD_MMAP_TYPE_SHIFT;
export const KFD_MMAP_GPU_ID_SHIFT = 46;
export function KFD_MMAP_GPU_ID(gpu_id: number): number {
  return (gpu_id % 2 ** KFD_GPU_ID_HASH_WIDTH) * 2 ** KFD_MMAP_GPU_ID_SHIFT;
}

/** The number of queues a process may create (max_num_of_queues_per_process). */
export const KFD_MAX_NUM_OF_QUEUES_PER_PROCESS = 1024;

/** KFD_GC_VERSION(): the node's graphics IP version as IP_VERSION(maj, min, rev). */
export function KFD_GC_VERSION(node: kfd_node): number {
  const [a, b, c] = node.adev.ip_versions.gc;
  return a * 65536 + b * 256 + c;
}

/** KFD_IS_SOC15(): GFX9 and later — the parts with 48-bit VAs and SVM. */
export function KFD_IS_SOC15(node: kfd_node): boolean {
  return KFD_GC_VERSION(node) >= 9 * 65536 + 1;
}

/** KFD_SUPPORT_XNACK_PER_PROCESS(): GC 9.4.2 and 9.4.3 can choose XNACK per process. */
export function KFD_SUPPORT_XNACK_PER_PROCESS(node: kfd_node): boolean {
  const v = KFD_GC_VERSION(node);
  return v === 9 * 65536 + 4 * 256 + 2 || v === 9 * 65536 + 4 * 256 + 3;
}

// ---- bitmaps of MAX_GPU_INSTANCE bits (include/linux/bitmap.h names) ---------------------------

export type gpu_bitmap = Uint8Array;

export function DECLARE_BITMAP(): gpu_bitmap {
  return new Uint8Array(MAX_GPU_INSTANCE);
}
export function test_bit(nr: number, b: gpu_bitmap): boolean {
  return nr >= 0 && nr < MAX_GPU_INSTANCE && b[nr] === 1;
}
export function bitmap_set(b: gpu_bitmap, start: number, len: number): void {
  for (let i = start; i < start + len && i < MAX_GPU_INSTANCE; i++) if (i >= 0) b[i] = 1;
}
export function bitmap_clear(b: gpu_bitmap, start: number, len: number): void {
  for (let i = start; i < start + len && i < MAX_GPU_INSTANCE; i++) if (i >= 0) b[i] = 0;
}
export function bitmap_zero(b: gpu_bitmap): void {
  b.fill(0);
}
export function bitmap_copy(dst: gpu_bitmap, src: gpu_bitmap): void {
  dst.set(src);
}
export function bitmap_or(dst: gpu_bitmap, a: gpu_bitmap, b: gpu_bitmap): void {
  for (let i = 0; i < MAX_GPU_INSTANCE; i++) dst[i] = a[i]! | b[i]!;
}
export function bitmap_and(dst: gpu_bitmap, a: gpu_bitmap, b: gpu_bitmap): void {
  for (let i = 0; i < MAX_GPU_INSTANCE; i++) dst[i] = a[i]! & b[i]!;
}
export function bitmap_empty(b: gpu_bitmap): boolean {
  return b.every((x) => x === 0);
}
export function bitmap_equal(a: gpu_bitmap, b: gpu_bitmap): boolean {
  return a.every((x, i) => x === b[i]);
}
/** find_first_bit(): MAX_GPU_INSTANCE when no bit is set. */
export function find_first_bit(b: gpu_bitmap): number {
  const i = b.indexOf(1);
  return i < 0 ? MAX_GPU_INSTANCE : i;
}
/** for_each_set_bit(bit, b, size). */
export function* for_each_set_bit(b: gpu_bitmap, size = MAX_GPU_INSTANCE): Generator<number> {
  for (let i = 0; i < size && i < MAX_GPU_INSTANCE; i++) if (b[i]) yield i;
}

// ---- devices -----------------------------------------------------------------------------------

/** struct kfd_vmid_info: the VMIDs the KFD may hand to processes (8..15 on GFX9). */
export interface kfd_vmid_info {
  first_vmid_kfd: number;
  last_vmid_kfd: number;
  vmid_num_kfd: number;
}

/** struct kfd_device_info: per-ASIC constants. */
export interface kfd_device_info {
  ih_ring_entry_size: number;
  doorbell_size: number;
  mqd_size_aligned: number;
  needs_iommu_device: boolean;
  supports_cwsr: boolean;
  needs_pci_atomics: boolean;
  num_sdma_queues_per_engine: number;
  num_reserved_sdma_queues_per_engine: number;
  event_interrupt_class: string;
}

/** struct kfd_dev: the KFD side of one amdgpu device. */
export class kfd_dev {
  readonly nodes: kfd_node[] = [];
  num_nodes = 0;
  init_complete = false;
  /** amdgpu_gmc noretry: XNACK (retry faults) disabled at boot for this device. */
  noretry = true;
  /** kfd_cwsr_init(): queues are preempted with their waves saved (cwsr_enable and an ASIC that supports it). */
  cwsr_enabled = false;
  /** Hash id of the device for the topology (part of gpu_id). */
  id = 0;
  /** Doorbell dword index of the first user-queue doorbell. */
  doorbell_base_dw_offset = 0;

  constructor(
    readonly amdkfd: amdkfd,
    readonly adev: amdgpu_device,
    readonly device_info: kfd_device_info,
  ) {}
}

/** struct kfd_node: a compute partition of a device (one per device on non-partitioned parts). */
export class kfd_node {
  /** The topology gpu_id (set when the node joins the topology). */
  id = 0;
  node_id = 0;
  dqm!: device_queue_manager;
  readonly vm_info: kfd_vmid_info;
  /** The KFD interrupt ring: raw IVs copied in hard-IRQ context, handled by interrupt_work. */
  readonly ih_fifo: Uint32Array[] = [];
  interrupts_active = false;
  readonly interrupt_lock: spinlock_t;
  readonly interrupt_work: work_struct;
  /** SMI event readers (kfd_smi_events.ts). */
  readonly smi_clients: kfd_smi_client[] = [];
  max_proc_per_quantum = 0;
  /** KFD_CRAT-level numbers the topology reports. */
  xcp: null = null;

  constructor(
    readonly kfd: kfd_dev,
    readonly adev: amdgpu_device,
    vm_info: kfd_vmid_info,
  ) {
    this.vm_info = vm_info;
    this.interrupt_lock = new spinlock_t(adev.k, "&node->interrupt_lock");
    this.interrupt_work = new work_struct();
  }

  get k(): Kernel {
    return this.adev.k;
  }
}

// ---- queues ----------------------------------------------------------------------------------

/** struct queue_properties: what user space asked for plus the driver's bookkeeping. */
export class queue_properties {
  type = KFD_QUEUE_TYPE_COMPUTE;
  format = KFD_QUEUE_FORMAT_AQL;
  queue_id = 0;
  queue_address = 0;
  queue_size = 0;
  priority = 0;
  queue_percent = 0;
  read_ptr = 0;
  write_ptr = 0;
  doorbell_off = 0;
  is_interop = false;
  is_evicted = false;
  is_active = false;
  is_gws = false;
  vmid = 0;
  sdma_engine_id = 0;
  sdma_queue_id = 0;
  eop_ring_buffer_address = 0;
  eop_ring_buffer_size = 0;
  ctx_save_restore_area_address = 0;
  ctx_save_restore_area_size = 0;
  ctl_stack_size = 0;
}

/** struct queue: one user queue. `mqd` is kemu's decoded memory queue descriptor. */
export class queue {
  readonly properties = new queue_properties();
  /** Hardware slot: MEC pipe/queue for compute, engine/queue for SDMA; -1 when not loaded. */
  pipe = -1;
  queue = -1;
  sdma_id = 0;
  doorbell_id = 0;
  mqd: unknown = null;

  constructor(
    readonly process: kfd_process,
    readonly device: kfd_node,
  ) {}
}

/** struct qcm_process_device: a process's queues on one device. */
export class qcm_process_device {
  readonly queues_list: queue[] = [];
  queue_count = 0;
  /** Eviction nesting count: queues run only while it is 0. */
  evicted = 0;
  vmid = 0;
  is_debug = false;
  sh_mem_config = 0;
  sh_mem_bases = 0;
  page_table_base = 0;
  /** Doorbell ids in use, indexes into the process's doorbell page. */
  readonly doorbell_bitmap = new Set<number>();
  pqm_pid = 0;

  constructor(readonly pdd: kfd_process_device) {}
}

/** struct process_queue_node. */
export interface process_queue_node {
  q: queue;
}

/** struct process_queue_manager: a process's user queues by queue id. */
export class process_queue_manager {
  readonly queues: process_queue_node[] = [];
  /** queue_slot_bitmap: ids in use. */
  readonly queue_slot_bitmap = new Set<number>();

  constructor(readonly process: kfd_process) {}
}

// ---- processes ---------------------------------------------------------------------------------

/** struct amdkfd_process_info (amdgpu_amdkfd.h): the KFD BO eviction/restore state; `lock` is PI. */
export class amdkfd_process_info {
  readonly lock: mutex;
  evicted_bos = 0;

  constructor(k: Kernel) {
    this.lock = new mutex(k, "&process_info->lock");
  }
}

/** struct kfd_process_device: a process's state on one GPU. */
export class kfd_process_device {
  readonly qpd: qcm_process_device;
  /** The render-node file whose VM became the process's compute VM (AMDKFD_IOC_ACQUIRE_VM). */
  drm_priv: unknown = null;
  /** The render-node file itself; the pdd holds a reference while the VM is acquired. */
  drm_file: file | null = null;
  lds_base = 0;
  lds_limit = 0;
  scratch_base = 0;
  scratch_limit = 0;
  gpuvm_base = 0;
  gpuvm_limit = 0;
  /** The process's doorbell slice in the BAR (kfd_doorbell.ts), -1 until its first queue. */
  doorbell_index = -1;
  /** Set once the process is bound to the device (kfd_bind_process_to_device). */
  bound = false;
  already_dequeued = false;
  /** Counters shown in sysfs proc/<pid>/counters_<gpuid>/. */
  faults = 0;
  page_in = 0;
  page_out = 0;
  /** The gpu_id user space sees (differs from dev->id only after CRIU restore). */
  user_gpu_id = 0;
  /** Time the queues of this device were last evicted, for stats_<gpuid>/evicted_ms. */
  last_evict_timestamp = 0;
  evict_duration_counter = 0;
  kobj_stats: kobject | null = null;
  kobj_counters: kobject | null = null;
  readonly sysfs_attrs: kobj_attribute[] = [];

  constructor(
    readonly dev: kfd_node,
    readonly process: kfd_process,
  ) {
    this.qpd = new qcm_process_device(this);
    this.user_gpu_id = dev.id;
  }
}

/** struct kfd_process: the KFD state of one user process (one mm). */
export class kfd_process {
  readonly ref: kref;
  readonly mutex: mutex;
  readonly pdds: kfd_process_device[] = [];
  n_pdds = 0;
  pasid = 0;
  xnack_enabled = false;
  is_32bit_user_mode = false;
  /** The process's MMU notifier (release tears the process down). */
  readonly mmu_notifier: mmu_notifier;
  readonly pqm: process_queue_manager;
  svms!: svm_range_list;
  events!: kfd_event_state;
  readonly kgd_process_info: amdkfd_process_info;
  /** Work that evicts/restores all queues of the process (KFD BO eviction path). */
  readonly eviction_work = new delayed_work();
  readonly restore_work = new delayed_work();
  readonly release_work = new work_struct();
  last_restore_timestamp = 0;
  last_evict_timestamp = 0;
  queues_paused = false;
  /** Set by the mmu notifier's release: the mm is going away. */
  released = false;
  kobj: kobject | null = null;
  kobj_queues: kobject | null = null;
  readonly sysfs_attrs: kobj_attribute[] = [];

  /** The process's mm; null once its MMU notifier released (exit_mmap). */
  mm: mm_struct | null;

  constructor(
    readonly amdkfd: amdkfd,
    mm: mm_struct,
    readonly lead_thread: task_struct,
    notifier_ops: mmu_notifier_ops,
  ) {
    this.mm = mm;
    this.ref = new kref(amdkfd.k);
    this.mutex = new mutex(amdkfd.k, "&p->mutex");
    this.mmu_notifier = new kfd_process_mmu_notifier(notifier_ops, this);
    this.pqm = new process_queue_manager(this);
    this.kgd_process_info = new amdkfd_process_info(amdkfd.k);
  }

  get k(): Kernel {
    return this.amdkfd.k;
  }
}

/** The process's embedded mmu_notifier: container_of() is this back-pointer. */
export class kfd_process_mmu_notifier extends mmu_notifier {
  constructor(
    ops: mmu_notifier_ops,
    readonly process: kfd_process,
  ) {
    super(ops);
  }
}

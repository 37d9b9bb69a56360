// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_chardev.c (Linux 6.8): /dev/kfd. Opening it creates
// (or finds) the caller's kfd_process; every ioctl goes through kfd_ioctl(), which checks the
// request against its own table, copies the argument struct in with the size the request
// number carries (zero-extended to the kernel's size), calls the handler and copies it back.
// Only the process that opened the file may use it (a forked child gets -EBADF).
//
// Requests kemu does not implement (userptr/doorbell BOs, debugger, CRIU, dma-buf, CU masks, scratch, tile
// config, memory policy, GWS) have no handler and fail with -EINVAL like a NULL table entry.

import type { file, file_operations, inode } from "../../../../../include/linux/fs.ts";
import { MINOR } from "../../../../../include/linux/kdev_t.ts";
import { MKDEV } from "../../../../../include/linux/kdev_t.ts";
import { mutex_lock, mutex_unlock } from "../../../../../kernel/locking/mutex.ts";
import { fget } from "../../../../../fs/file.ts";
import { fput } from "../../../../../fs/file_table.ts";
import { access_ok, copy_from_user, copy_to_user } from "../../../../../include/linux/uaccess.ts";
import {
  EAGAIN, EBADF, EBUSY, EFAULT, EINVAL, ENODEV, ENOTSUPP, EPERM, ESRCH,
} from "../../../../../include/uapi/asm-generic/errno.ts";
import { IOC_IN, IOC_OUT, _IOC_NR, _IOC_SIZE } from "../../../../../include/uapi/asm-generic/ioctl.ts";
import { layout_decode_into, layout_encode, struct_size, type struct_layout } from "../../../../../include/uapi/struct_layout.ts";
import {
  AMDKFD_COMMAND_END, AMDKFD_COMMAND_START, AMDKFD_IOC_ACQUIRE_VM, AMDKFD_IOC_AVAILABLE_MEMORY, AMDKFD_IOC_CREATE_EVENT,
  AMDKFD_IOC_CREATE_QUEUE, AMDKFD_IOC_DESTROY_EVENT, AMDKFD_IOC_DESTROY_QUEUE, AMDKFD_IOC_GET_CLOCK_COUNTERS,
  AMDKFD_IOC_GET_PROCESS_APERTURES, AMDKFD_IOC_GET_PROCESS_APERTURES_NEW, AMDKFD_IOC_GET_VERSION, AMDKFD_IOC_RESET_EVENT,
  AMDKFD_IOC_SET_EVENT, AMDKFD_IOC_SET_XNACK_MODE, AMDKFD_IOC_SMI_EVENTS, AMDKFD_IOC_SVM, AMDKFD_IOC_UPDATE_QUEUE,
  AMDKFD_IOC_WAIT_EVENTS, AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, AMDKFD_IOC_FREE_MEMORY_OF_GPU, AMDKFD_IOC_MAP_MEMORY_TO_GPU,
  AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU,
  KFD_IOCTL_MAJOR_VERSION, KFD_IOCTL_MINOR_VERSION, KFD_IOC_QUEUE_TYPE_COMPUTE, KFD_IOC_QUEUE_TYPE_COMPUTE_AQL,
  KFD_IOC_QUEUE_TYPE_SDMA, KFD_IOC_QUEUE_TYPE_SDMA_XGMI, KFD_MAX_QUEUE_PERCENTAGE, KFD_MAX_QUEUE_PRIORITY,
  NUM_OF_SUPPORTED_GPUS, kfd_ioctl_svm_args, kfd_process_device_apertures,
} from "../../../../../include/uapi/linux/kfd_ioctl.ts";
import { ioctl_layout } from "../../../../../include/uapi/struct_layout.ts";
import {
  KFD_QUEUE_FORMAT_AQL, KFD_QUEUE_FORMAT_PM4, KFD_QUEUE_TYPE_COMPUTE, KFD_QUEUE_TYPE_SDMA, KFD_QUEUE_TYPE_SDMA_XGMI,
  queue_properties, type kfd_process,
} from "./kfd_priv.ts";
import type { amdkfd } from "./kfd_module.ts";
import {
  kfd_bind_process_to_device, kfd_bind_process_to_device_iommu, kfd_create_process, kfd_process_device_data_by_id, kfd_process_device_init_vm,
  kfd_process_xnack_mode, kfd_unref_process,
} from "./kfd_process.ts";
import { pqm_create_queue, pqm_destroy_queue, pqm_update_queue_properties } from "./kfd_process_queue_manager.ts";
import {
  kfd_event_create, kfd_event_destroy, kfd_kmap_event_page, kfd_reset_event, kfd_set_event, kfd_wait_on_events,
} from "./kfd_events.ts";
import { svm_ioctl, svm_range_check_bo_va, svm_range_switch_xnack_reserve_mem } from "./kfd_svm.ts";
import {
  amdgpu_amdkfd_gpuvm_alloc_memory_of_gpu, amdgpu_amdkfd_gpuvm_free_memory_of_gpu, amdgpu_amdkfd_gpuvm_map_memory_to_gpu,
  amdgpu_amdkfd_gpuvm_unmap_memory_from_gpu, kfd_process_device_create_obj_handle, kfd_process_device_remove_obj_handle,
  kfd_process_device_translate_handle, type kgd_mem,
} from "../amdgpu/amdgpu_amdkfd_gpuvm.ts";
import { kfd_smi_event_open } from "./kfd_smi_events.ts";
import { amdgpu_amdkfd_get_vram_usage } from "../amdgpu/amdgpu_amdkfd.ts";

const PAGE_SIZE = 4096;
const kfd_dev_name = "kfd";

type args_t = Record<string, unknown>;
type amdkfd_ioctl_t = (filep: file, p: kfd_process, args: args_t) => Promise<number> | number;

interface amdkfd_ioctl_desc {
  cmd: number;
  func: amdkfd_ioctl_t;
  /** Checks the copied-in argument against the size the request carried (variable-size args). */
  validate?: (args: args_t, usize: number) => number;
  name: string;
}

// ---- open / release --------------------------------------------------------------------------

async function kfd_open(kfd: amdkfd, inode: inode, filep: file): Promise<number> {
  if (MINOR(inode.i_rdev) !== 0) return -ENODEV;
  const process = await kfd_create_process(kfd, kfd.k.current);
  if (typeof process === "number") return process;
  if (kfd.kfd_locked > 0) {
    kfd_unref_process(process);
    return -EAGAIN;
  }
  // The file owns the reference kfd_create_process() returned.
  filep.private_data = process;
  return 0;
}

function kfd_release(_inode: inode, filep: file): number {
  const process = filep.private_data as kfd_process | null;
  if (process) kfd_unref_process(process);
  return 0;
}

// ---- handlers ----------------------------------------------------------------------------------

function kfd_ioctl_get_version(_f: file, _p: kfd_process, args: args_t): number {
  args.major_version = KFD_IOCTL_MAJOR_VERSION;
  args.minor_version = KFD_IOCTL_MINOR_VERSION;
  return 0;
}

function is_power_of_2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** set_queue_properties_from_user(): validates the request and fills the properties. */
function set_queue_properties_from_user(q: queue_properties, a: args_t): number {
  const num = (k: string): number => a[k] as number;
  if (num("queue_percentage") > KFD_MAX_QUEUE_PERCENTAGE) return -EINVAL;
  if (num("queue_priority") > KFD_MAX_QUEUE_PRIORITY) return -EINVAL;
  if (num("ring_base_address") && !access_ok(num("ring_base_address"), 8)) return -EFAULT;
  if (!is_power_of_2(num("ring_size")) && num("ring_size") !== 0) return -EINVAL;
  if (!access_ok(num("read_pointer_address"), 4)) return -EFAULT;
  if (!access_ok(num("write_pointer_address"), 4)) return -EFAULT;
  if (num("eop_buffer_address") && !access_ok(num("eop_buffer_address"), 4)) return -EFAULT;
  if (num("ctx_save_restore_address") && !access_ok(num("ctx_save_restore_address"), 4)) return -EFAULT;
  q.queue_percent = num("queue_percentage") & 0xff;
  q.priority = num("queue_priority");
  q.queue_address = num("ring_base_address");
  q.queue_size = num("ring_size");
  q.read_ptr = num("read_pointer_address");
  q.write_ptr = num("write_pointer_address");
  q.eop_ring_buffer_address = num("eop_buffer_address");
  q.eop_ring_buffer_size = num("eop_buffer_size");
  q.ctx_save_restore_area_address = num("ctx_save_restore_address");
  q.ctx_save_restore_area_size = num("ctx_save_restore_size");
  q.ctl_stack_size = num("ctl_stack_size");
  const type = num("queue_type");
  if (type === KFD_IOC_QUEUE_TYPE_COMPUTE || type === KFD_IOC_QUEUE_TYPE_COMPUTE_AQL) q.type = KFD_QUEUE_TYPE_COMPUTE;
  else if (type === KFD_IOC_QUEUE_TYPE_SDMA) q.type = KFD_QUEUE_TYPE_SDMA;
  else if (type === KFD_IOC_QUEUE_TYPE_SDMA_XGMI) q.type = KFD_QUEUE_TYPE_SDMA_XGMI;
  else return -ENOTSUPP;
  q.format = type === KFD_IOC_QUEUE_TYPE_COMPUTE_AQL ? KFD_QUEUE_FORMAT_AQL : KFD_QUEUE_FORMAT_PM4;
  return 0;
}

/**
 * kfd_ioctl_create_queue(): needs the GPU's VM acquired first (-ESRCH). doorbell_offset is the
 * doorbell's byte offset in BAR2 (the kernel's mmap cookie with type and gpu_id bits cannot be
 * held by a JS number; see kfd_doorbell.ts).
 */
async function kfd_ioctl_create_queue(_f: file, p: kfd_process, args: args_t): Promise<number> {
  const props = new queue_properties();
  let err = set_queue_properties_from_user(props, args);
  if (err) return err;
  await mutex_lock(p.mutex);
  try {
    const pdd0 = kfd_process_device_data_by_id(p, args.gpu_id as number);
    if (!pdd0) return -EINVAL;
    // ≤6.5: binding also binds the PASID on IOMMUv2 APUs (kfd_iommu_bind_process_to_device).
    const pdd = await kfd_bind_process_to_device_iommu(pdd0.dev, p);
    if (typeof pdd === "number") return -ESRCH;
    const r = await pqm_create_queue(p.pqm, pdd.dev, props);
    if (typeof r === "number") return r;
    args.queue_id = r.qid;
    args.doorbell_offset = r.doorbell_off * 4;
    err = 0;
  } finally {
    mutex_unlock(p.mutex);
  }
  return err;
}

async function kfd_ioctl_destroy_queue(_f: file, p: kfd_process, args: args_t): Promise<number> {
  await mutex_lock(p.mutex);
  const r = await pqm_destroy_queue(p.pqm, args.queue_id as number);
  mutex_unlock(p.mutex);
  return r;
}

async function kfd_ioctl_update_queue(_f: file, p: kfd_process, args: args_t): Promise<number> {
  const num = (k: string): number => args[k] as number;
  if (num("queue_percentage") > KFD_MAX_QUEUE_PERCENTAGE) return -EINVAL;
  if (num("queue_priority") > KFD_MAX_QUEUE_PRIORITY) return -EINVAL;
  if (num("ring_base_address") && !access_ok(num("ring_base_address"), 8)) return -EFAULT;
  if (!is_power_of_2(num("ring_size")) && num("ring_size") !== 0) return -EINVAL;
  await mutex_lock(p.mutex);
  const r = await pqm_update_queue_properties(p.pqm, num("queue_id"), {
    queue_address: num("ring_base_address"), queue_size: num("ring_size"), queue_percent: num("queue_percentage"), priority: num("queue_priority"),
  });
  mutex_unlock(p.mutex);
  return r;
}

function kfd_ioctl_get_clock_counters(_f: file, p: kfd_process, args: args_t): number {
  const pdd = kfd_process_device_data_by_id(p, args.gpu_id as number);
  const ns = p.k.ktime_get();
  // The GPU reference clock runs at 100 MHz (the IH timestamp's).
  args.gpu_clock_counter = pdd ? Math.floor(ns / 10) : 0;
  args.cpu_clock_counter = ns;
  args.system_clock_counter = ns;
  args.system_clock_freq = 1000000000;
  return 0;
}

function aperture_of(pdd: kfd_process['pdds'][number]): Record<string, number> {
  return {
    lds_base: pdd.lds_base, lds_limit: pdd.lds_limit, scratch_base: pdd.scratch_base, scratch_limit: pdd.scratch_limit,
    gpuvm_base: pdd.gpuvm_base, gpuvm_limit: pdd.gpuvm_limit, gpu_id: pdd.user_gpu_id, pad: 0,
  };
}

/** The deprecated fixed-size form (at most NUM_OF_SUPPORTED_GPUS). */
async function kfd_ioctl_get_process_apertures(_f: file, p: kfd_process, args: args_t): Promise<number> {
  await mutex_lock(p.mutex);
  const n = Math.min(p.n_pdds, NUM_OF_SUPPORTED_GPUS);
  args.process_apertures = Array.from({ length: NUM_OF_SUPPORTED_GPUS }, (_, i) => (i < n ? aperture_of(p.pdds[i]!) : {}));
  args.num_of_nodes = n;
  mutex_unlock(p.mutex);
  return 0;
}

/**
 * kfd_ioctl_get_process_apertures_new(): num_of_nodes 0 asks for the count; else up to that
 * many entries are copied to the user array.
 */
async function kfd_ioctl_get_process_apertures_new(_f: file, p: kfd_process, args: args_t): Promise<number> {
  await mutex_lock(p.mutex);
  if (args.num_of_nodes === 0 || !p.n_pdds) {
    args.num_of_nodes = args.num_of_nodes === 0 ? p.n_pdds : 0;
    mutex_unlock(p.mutex);
    return 0;
  }
  const n = Math.min(p.n_pdds, args.num_of_nodes as number);
  const buf = new Uint8Array(n * kfd_process_device_apertures.size);
  for (let i = 0; i < n; i++) buf.set(layout_encode(kfd_process_device_apertures, aperture_of(p.pdds[i]!)), i * kfd_process_device_apertures.size);
  mutex_unlock(p.mutex);
  args.num_of_nodes = n;
  return (await copy_to_user(p.k, args.kfd_process_device_apertures_ptr as number, buf, buf.length)) ? -EFAULT : 0;
}

async function kfd_ioctl_create_event(_f: file, p: kfd_process, args: args_t): Promise<number> {
  // dGPU runtimes name their own signal page with the first call (kfd_events.ts).
  if (args.event_page_offset) {
    await mutex_lock(p.mutex);
    const err = await kfd_kmap_event_page(p, args.event_page_offset as number);
    mutex_unlock(p.mutex);
    if (err) return err;
  }
  // kfd_event_create() writes the page offset and slot only for signal events.
  const out = { event_id: 0, event_trigger_data: 0, event_page_offset: args.event_page_offset as number, event_slot_index: args.event_slot_index as number };
  const err = await kfd_event_create(p, args.event_type as number, args.auto_reset !== 0, args.node_id as number, out);
  if (!err) Object.assign(args, out);
  return err;
}

function kfd_ioctl_destroy_event(_f: file, p: kfd_process, args: args_t): Promise<number> {
  return kfd_event_destroy(p, args.event_id as number);
}

function kfd_ioctl_set_event(_f: file, p: kfd_process, args: args_t): Promise<number> {
  return kfd_set_event(p, args.event_id as number);
}

function kfd_ioctl_reset_event(_f: file, p: kfd_process, args: args_t): Promise<number> {
  return kfd_reset_event(p, args.event_id as number);
}

async function kfd_ioctl_wait_events(_f: file, p: kfd_process, args: args_t): Promise<number> {
  const io = { timeout_ms: args.timeout as number, wait_result: 0 };
  const r = await kfd_wait_on_events(p, args.num_events as number, args.events_ptr as number, args.wait_for_all !== 0, io);
  args.timeout = io.timeout_ms;
  args.wait_result = io.wait_result;
  return r;
}

/**
 * kfd_ioctl_acquire_vm(): the VM of an open render node of this GPU becomes the process's
 * compute VM. The same file again is fine; another one -EBUSY.
 */
async function kfd_ioctl_acquire_vm(_f: file, p: kfd_process, args: args_t): Promise<number> {
  const drm_file = fget(p.k.current.files, args.drm_fd as number);
  if (!drm_file) return -EINVAL;
  await mutex_lock(p.mutex);
  let ret: number;
  const pdd = kfd_process_device_data_by_id(p, args.gpu_id as number);
  if (!pdd) {
    ret = -EINVAL;
  } else if (pdd.drm_file) {
    ret = pdd.drm_file === drm_file ? 0 : -EBUSY;
  } else {
    ret = kfd_process_device_init_vm(pdd, drm_file);
    if (!ret) {
      // On success the pdd keeps the file reference.
      mutex_unlock(p.mutex);
      return 0;
    }
  }
  mutex_unlock(p.mutex);
  fput(drm_file);
  return ret;
}

function kfd_ioctl_get_available_memory(_f: file, p: kfd_process, args: args_t): number {
  const pdd = kfd_process_device_data_by_id(p, args.gpu_id as number);
  if (!pdd) return -EINVAL;
  const adev = pdd.dev.adev;
  args.available = Math.max(0, adev.gmc.real_vram_size - amdgpu_amdkfd_get_vram_usage(adev));
  return 0;
}

function kfd_ioctl_smi_events(_f: file, p: kfd_process, args: args_t): number {
  const pdd = kfd_process_device_data_by_id(p, args.gpuid as number);
  if (!pdd) return -EINVAL;
  const fd = kfd_smi_event_open(pdd.dev);
  if (fd < 0) return fd;
  args.anon_fd = fd;
  return 0;
}

/**
 * kfd_ioctl_set_xnack_mode(): < 0 queries; otherwise refused with user queues alive (-EBUSY),
 * -EPERM if a GPU cannot take XNACK on, then the system-memory charges of all ranges switch.
 * (The kernel compares the bool mode with the raw int, so a value like 2 would "switch" an
 * enabled process again and unbalance the accounting; kemu compares booleans.)
 */
async function kfd_ioctl_set_xnack_mode(_f: file, p: kfd_process, args: args_t): Promise<number> {
  const want = args.xnack_enabled as number;
  let r = 0;
  await mutex_lock(p.mutex);
  if (want >= 0) {
    if (p.pqm.queues.length) r = -EBUSY;
    else if (p.xnack_enabled !== want > 0) {
      if (want > 0 && !kfd_process_xnack_mode(p, true)) r = -EPERM;
      else r = await svm_range_switch_xnack_reserve_mem(p, want > 0);
    }
  } else {
    args.xnack_enabled = p.xnack_enabled ? 1 : 0;
  }
  mutex_unlock(p.mutex);
  return r;
}

/** kfd_ioctl_svm_validate(): the size the request carried must hold all `nattr` attributes. */
function kfd_ioctl_svm_validate(args: args_t, usize: number): number {
  const expected = struct_size(kfd_ioctl_svm_args, args.nattr as number);
  return usize < expected ? -EINVAL : 0;
}

/** kfd_ioctl_svm(): page-aligned, non-empty span; then svm_ioctl (without p->mutex). */
async function kfd_ioctl_svm(_f: file, p: kfd_process, args: args_t): Promise<number> {
  const start = args.start_addr as number;
  const size = args.size as number;
  if (start % PAGE_SIZE || size % PAGE_SIZE) return -EINVAL;
  if (!start || !size) return -EINVAL;
  const attrs = args.attrs as Array<{ type: number; value: number }>;
  return svm_ioctl(p, args.op as number, start, size, args.nattr as number, attrs);
}

// ---- KFD memory objects (issue 10) ----------------------------------------------------------------
//
// A BO handle is MAKE_HANDLE(gpu_id, idr id): the GPU id in the high 32 bits. The per-pdd IDR
// (pdd->alloc_idr) lives in amdgpu_amdkfd_gpuvm.ts (kfd_process_device_*_obj_handle), so
// kfd_priv.ts keeps its shape.

function MAKE_HANDLE(gpu_id: number, idr_handle: number): number {
  return gpu_id * 2 ** 32 + idr_handle;
}
const GET_GPU_ID = (handle: number): number => Math.floor(handle / 2 ** 32);
const GET_IDR_HANDLE = (handle: number): number => handle % 2 ** 32;

/**
 * kfd_ioctl_alloc_memory_of_gpu(): a VRAM or GTT BO at va_addr on gpu_id. -EADDRINUSE when an
 * SVM range already covers part of the span; -EINVAL for a bad GPU, size or kind.
 */
async function kfd_ioctl_alloc_memory_of_gpu(_f: file, p: kfd_process, args: args_t): Promise<number> {
  const va = args.va_addr as number;
  const size = args.size as number;
  const flags = args.flags as number;
  if (!size) return -EINVAL;
  const r = await svm_range_check_bo_va(p, Math.floor(va / PAGE_SIZE), Math.floor((va + size - 1) / PAGE_SIZE));
  if (r) return r;
  await mutex_lock(p.mutex);
  try {
    const pdd0 = kfd_process_device_data_by_id(p, args.gpu_id as number);
    if (!pdd0) return -EINVAL;
    const pdd = kfd_bind_process_to_device(pdd0.dev, p);
    if (typeof pdd === "number" || !pdd.drm_priv) return -EINVAL;
    const mem = await amdgpu_amdkfd_gpuvm_alloc_memory_of_gpu(p.amdkfd, pdd.dev.adev, va, size, p.kgd_process_info, flags);
    if (typeof mem === "number") return mem;
    const id = kfd_process_device_create_obj_handle(pdd, mem);
    args.handle = MAKE_HANDLE(args.gpu_id as number, id);
    args.mmap_offset = 0;
    return 0;
  } finally {
    mutex_unlock(p.mutex);
  }
}

/** kfd_ioctl_free_memory_of_gpu(): -EINVAL for an unknown handle, -EBUSY while mapped. */
async function kfd_ioctl_free_memory_of_gpu(_f: file, p: kfd_process, args: args_t): Promise<number> {
  const handle = args.handle as number;
  await mutex_lock(p.mutex);
  try {
    const pdd = kfd_process_device_data_by_id(p, GET_GPU_ID(handle));
    const mem = pdd ? kfd_process_device_translate_handle(pdd, GET_IDR_HANDLE(handle)) : null;
    if (!pdd || !mem) return -EINVAL;
    const r = await amdgpu_amdkfd_gpuvm_free_memory_of_gpu(p.amdkfd, pdd.dev.adev, mem);
    if (!r) kfd_process_device_remove_obj_handle(pdd, GET_IDR_HANDLE(handle));
    return r;
  } finally {
    mutex_unlock(p.mutex);
  }
}

/** The gpu_ids user space passed for a (un)map; null when the array is unreadable or empty. */
async function read_device_ids(p: kfd_process, args: args_t): Promise<number[] | number> {
  const n = args.n_devices as number;
  if (!n || (args.n_success as number) > n) return -EINVAL;
  const buf = new Uint8Array(n * 4);
  if (await copy_from_user(p.k, buf, args.device_ids_array_ptr as number, buf.length)) return -EFAULT;
  const dv = new DataView(buf.buffer);
  return Array.from({ length: n }, (_, i) => dv.getUint32(i * 4, true));
}

type map_op = (adev: kfd_process["pdds"][number]["dev"]["adev"], mem: kgd_mem, drm_priv: unknown) => Promise<number>;

/**
 * The common loop of MAP_MEMORY_TO_GPU and UNMAP_MEMORY_FROM_GPU: devices [n_success, n) in
 * order; n_success counts the done ones so a retry resumes after a failure.
 */
async function kfd_ioctl_map_common(p: kfd_process, args: args_t, op: map_op, bind: boolean): Promise<number> {
  const ids = await read_device_ids(p, args);
  if (typeof ids === "number") return ids;
  const handle = args.handle as number;
  await mutex_lock(p.mutex);
  try {
    const pdd = kfd_process_device_data_by_id(p, GET_GPU_ID(handle));
    const mem = pdd ? kfd_process_device_translate_handle(pdd, GET_IDR_HANDLE(handle)) : null;
    if (!pdd || !mem) return -EINVAL;
    for (let i = args.n_success as number; i < ids.length; i++) {
      const peer0 = kfd_process_device_data_by_id(p, ids[i]!);
      if (!peer0) return -EINVAL;
      const peer = bind ? kfd_bind_process_to_device(peer0.dev, p) : peer0;
      if (typeof peer === "number" || !peer.drm_priv) return -EINVAL;
      const r = await op(peer.dev.adev, mem, peer.drm_priv);
      if (r) return r;
      args.n_success = i + 1;
    }
    return 0;
  } finally {
    mutex_unlock(p.mutex);
  }
}

function kfd_ioctl_map_memory_to_gpu(_f: file, p: kfd_process, args: args_t): Promise<number> {
  return kfd_ioctl_map_common(p, args, amdgpu_amdkfd_gpuvm_map_memory_to_gpu, true);
}

function kfd_ioctl_unmap_memory_from_gpu(_f: file, p: kfd_process, args: args_t): Promise<number> {
  return kfd_ioctl_map_common(p, args, amdgpu_amdkfd_gpuvm_unmap_memory_from_gpu, false);
}

// ---- the table and the dispatcher --------------------------------------------------------------

function AMDKFD_IOCTL_DEF(cmd: number, func: amdkfd_ioctl_t, name: string, validate?: amdkfd_ioctl_desc["validate"]): [number, amdkfd_ioctl_desc] {
  return [_IOC_NR(cmd), { cmd, func, validate, name }];
}

const amdkfd_ioctls = new Map<number, amdkfd_ioctl_desc>([
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_GET_VERSION, kfd_ioctl_get_version, "AMDKFD_IOC_GET_VERSION"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_CREATE_QUEUE, kfd_ioctl_create_queue, "AMDKFD_IOC_CREATE_QUEUE"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_DESTROY_QUEUE, kfd_ioctl_destroy_queue, "AMDKFD_IOC_DESTROY_QUEUE"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_GET_CLOCK_COUNTERS, kfd_ioctl_get_clock_counters, "AMDKFD_IOC_GET_CLOCK_COUNTERS"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_GET_PROCESS_APERTURES, kfd_ioctl_get_process_apertures, "AMDKFD_IOC_GET_PROCESS_APERTURES"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_UPDATE_QUEUE, kfd_ioctl_update_queue, "AMDKFD_IOC_UPDATE_QUEUE"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_CREATE_EVENT, kfd_ioctl_create_event, "AMDKFD_IOC_CREATE_EVENT"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_DESTROY_EVENT, kfd_ioctl_destroy_event, "AMDKFD_IOC_DESTROY_EVENT"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_SET_EVENT, kfd_ioctl_set_event, "AMDKFD_IOC_SET_EVENT"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_RESET_EVENT, kfd_ioctl_reset_event, "AMDKFD_IOC_RESET_EVENT"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_WAIT_EVENTS, kfd_ioctl_wait_events, "AMDKFD_IOC_WAIT_EVENTS"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_GET_PROCESS_APERTURES_NEW, kfd_ioctl_get_process_apertures_new, "AMDKFD_IOC_GET_PROCESS_APERTURES_NEW"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_ACQUIRE_VM, kfd_ioctl_acquire_vm, "AMDKFD_IOC_ACQUIRE_VM"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, kfd_ioctl_alloc_memory_of_gpu, "AMDKFD_IOC_ALLOC_MEMORY_OF_GPU"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_FREE_MEMORY_OF_GPU, kfd_ioctl_free_memory_of_gpu, "AMDKFD_IOC_FREE_MEMORY_OF_GPU"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_MAP_MEMORY_TO_GPU, kfd_ioctl_map_memory_to_gpu, "AMDKFD_IOC_MAP_MEMORY_TO_GPU"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU, kfd_ioctl_unmap_memory_from_gpu, "AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_SMI_EVENTS, kfd_ioctl_smi_events, "AMDKFD_IOC_SMI_EVENTS"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_SVM, kfd_ioctl_svm, "AMDKFD_IOC_SVM", kfd_ioctl_svm_validate),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_SET_XNACK_MODE, kfd_ioctl_set_xnack_mode, "AMDKFD_IOC_SET_XNACK_MODE"),
  AMDKFD_IOCTL_DEF(AMDKFD_IOC_AVAILABLE_MEMORY, kfd_ioctl_get_available_memory, "AMDKFD_IOC_AVAILABLE_MEMORY"),
]);

/**
 * kfd_ioctl(): the kernel's copy-in/copy-out around the handler. The argument buffer is the
 * larger of the user's size and the kernel's; bytes the user did not supply are zero.
 */
async function kfd_ioctl(filep: file, cmd: number, arg: number): Promise<number> {
  const nr = _IOC_NR(cmd);
  if (nr < AMDKFD_COMMAND_START || nr >= AMDKFD_COMMAND_END) return -EINVAL;
  const ioctl = amdkfd_ioctls.get(nr);
  const process = filep.private_data as kfd_process;
  const k = process.k;
  // Only the process that opened /dev/kfd may use the fd; children make their own.
  if (process.lead_thread.tgid !== k.current.tgid) return -EBADF;
  if (!ioctl) return -EINVAL;
  const usize = _IOC_SIZE(cmd);
  const kcmd = ioctl.cmd;
  const asize = Math.max(usize, _IOC_SIZE(kcmd));
  const kdata = new Uint8Array(asize);
  if (kcmd & IOC_IN) {
    if (await copy_from_user(k, kdata, arg, usize)) return -EFAULT;
  }
  const layout = ioctl_layout(kcmd) as struct_layout;
  const args: args_t = {};
  layout_decode_into(layout, kdata, args);
  if (ioctl.validate) {
    const r = ioctl.validate(args, usize);
    if (r) return r;
  }
  let retcode = await ioctl.func(filep, process, args);
  if (kcmd & IOC_OUT) {
    const out = new Uint8Array(asize);
    out.set(layout_encode(layout, args).subarray(0, asize));
    if (await copy_to_user(k, arg, out, usize)) retcode = -EFAULT;
  }
  return retcode;
}

// ---- the character device ------------------------------------------------------------------------

function kfd_fops(kfd: amdkfd): file_operations {
  return {
    owner: "amdkfd",
    unlocked_ioctl: (f, cmd, arg) => kfd_ioctl(f, cmd, arg),
    open: (inode, f) => kfd_open(kfd, inode, f),
    release: kfd_release,
  };
}

/** kfd_chardev_init(): major "kfd", class "kfd", device "kfd" → /dev/kfd and /sys/class/kfd/kfd. */
export async function kfd_chardev_init(kfd: amdkfd): Promise<number> {
  const major = kfd.chrdev.register_chrdev(0, kfd_dev_name, kfd_fops(kfd));
  if (major < 0) return major;
  kfd.kfd_char_dev_major = major;
  const cls = kfd.core.class_create(kfd_dev_name);
  if (typeof cls === "number") {
    kfd.chrdev.unregister_chrdev(major, kfd_dev_name);
    return cls;
  }
  kfd.kfd_class = cls;
  const dev = await kfd.core.device_create(cls, null, MKDEV(major, 0), null, kfd_dev_name);
  if (typeof dev === "number") {
    kfd.core.class_destroy(cls);
    kfd.chrdev.unregister_chrdev(major, kfd_dev_name);
    return dev;
  }
  kfd.kfd_device = dev;
  return 0;
}

export async function kfd_chardev_exit(kfd: amdkfd): Promise<void> {
  if (kfd.kfd_class) await kfd.core.device_destroy(kfd.kfd_class, MKDEV(kfd.kfd_char_dev_major, 0));
  kfd.core.class_destroy(kfd.kfd_class);
  if (kfd.kfd_char_dev_major >= 0) kfd.chrdev.unregister_chrdev(kfd.kfd_char_dev_major, kfd_dev_name);
  kfd.kfd_class = null;
  kfd.kfd_device = null;
  kfd.kfd_char_dev_major = -1;
}


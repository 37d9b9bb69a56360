// Mirrors include/uapi/linux/kfd_ioctl.h (Linux 6.8): the user ABI of /dev/kfd — argument
// structs (as kemu struct layouts, include/uapi/struct_layout.ts), request numbers, queue and
// event types, the SVM attribute interface and the SMI event enums. Field names are the C
// header's, so user space passes `{ start_addr, size, op, nattr, attrs: [{ type, value }] }`.
//
// Interface 1.14 is what 6.8 reports (1.5 added SVM, 1.10 the SMI profiler events that
// kfdtest's HMMProfilingEvent needs).

import { _IOC, _IOC_DIR, _IOC_NR, _IOC_TYPE, _IOR, _IOW, _IOWR } from "../asm-generic/ioctl.ts";
import { array, flex_array, register_ioctl_layout, register_ioctl_total_size, s32, struct, struct_size, u32, u64 } from "../struct_layout.ts";

export const KFD_IOCTL_MAJOR_VERSION = 1;
export const KFD_IOCTL_MINOR_VERSION = 14;

export const kfd_ioctl_get_version_args = struct("kfd_ioctl_get_version_args", {
  major_version: u32,
  minor_version: u32,
});

// ---- queues ------------------------------------------------------------------------------------

export const KFD_IOC_QUEUE_TYPE_COMPUTE = 0x0;
export const KFD_IOC_QUEUE_TYPE_SDMA = 0x1;
export const KFD_IOC_QUEUE_TYPE_COMPUTE_AQL = 0x2;
export const KFD_IOC_QUEUE_TYPE_SDMA_XGMI = 0x3;

export const KFD_MAX_QUEUE_PERCENTAGE = 100;
export const KFD_MAX_QUEUE_PRIORITY = 15;

export const kfd_ioctl_create_queue_args = struct("kfd_ioctl_create_queue_args", {
  ring_base_address: u64,
  write_pointer_address: u64,
  read_pointer_address: u64,
  doorbell_offset: u64,
  ring_size: u32,
  gpu_id: u32,
  queue_type: u32,
  queue_percentage: u32,
  queue_priority: u32,
  queue_id: u32,
  eop_buffer_address: u64,
  eop_buffer_size: u64,
  ctx_save_restore_address: u64,
  ctx_save_restore_size: u32,
  ctl_stack_size: u32,
});

export const kfd_ioctl_destroy_queue_args = struct("kfd_ioctl_destroy_queue_args", {
  queue_id: u32,
  pad: u32,
});

export const kfd_ioctl_update_queue_args = struct("kfd_ioctl_update_queue_args", {
  ring_base_address: u64,
  queue_id: u32,
  ring_size: u32,
  queue_percentage: u32,
  queue_priority: u32,
});

export const kfd_ioctl_set_cu_mask_args = struct("kfd_ioctl_set_cu_mask_args", {
  queue_id: u32,
  num_cu_mask: u32,
  cu_mask_ptr: u64,
});

export const kfd_ioctl_get_queue_wave_state_args = struct("kfd_ioctl_get_queue_wave_state_args", {
  ctl_stack_address: u64,
  ctl_stack_used_size: u32,
  save_area_used_size: u32,
  queue_id: u32,
  pad: u32,
});

export const kfd_ioctl_get_available_memory_args = struct("kfd_ioctl_get_available_memory_args", {
  available: u64,
  gpu_id: u32,
  pad: u32,
});

// ---- memory policy, clocks, apertures ----------------------------------------------------------

export const KFD_IOC_CACHE_POLICY_COHERENT = 0;
export const KFD_IOC_CACHE_POLICY_NONCOHERENT = 1;

export const kfd_ioctl_set_memory_policy_args = struct("kfd_ioctl_set_memory_policy_args", {
  alternate_aperture_base: u64,
  alternate_aperture_size: u64,
  gpu_id: u32,
  default_policy: u32,
  alternate_policy: u32,
  pad: u32,
});

export const kfd_ioctl_get_clock_counters_args = struct("kfd_ioctl_get_clock_counters_args", {
  gpu_clock_counter: u64,
  cpu_clock_counter: u64,
  system_clock_counter: u64,
  system_clock_freq: u64,
  gpu_id: u32,
  pad: u32,
});

export const kfd_process_device_apertures = struct("kfd_process_device_apertures", {
  lds_base: u64,
  lds_limit: u64,
  scratch_base: u64,
  scratch_limit: u64,
  gpuvm_base: u64,
  gpuvm_limit: u64,
  gpu_id: u32,
  pad: u32,
});

/** AMDKFD_IOC_GET_PROCESS_APERTURES is deprecated (at most 7 GPUs); use the _NEW form. */
export const NUM_OF_SUPPORTED_GPUS = 7;
export const kfd_ioctl_get_process_apertures_args = struct("kfd_ioctl_get_process_apertures_args", {
  process_apertures: array(kfd_process_device_apertures, NUM_OF_SUPPORTED_GPUS),
  num_of_nodes: u32,
  pad: u32,
});

/**
 * kfd_process_device_apertures_ptr: a user array of kfd_process_device_apertures;
 * num_of_nodes: in, its capacity (0 asks for the count only); out, entries filled.
 */
export const kfd_ioctl_get_process_apertures_new_args = struct("kfd_ioctl_get_process_apertures_new_args", {
  kfd_process_device_apertures_ptr: u64,
  num_of_nodes: u32,
  pad: u32,
});

export const MAX_ALLOWED_NUM_POINTS = 100;
export const MAX_ALLOWED_AW_BUFF_SIZE = 4096;
export const MAX_ALLOWED_WAC_BUFF_SIZE = 128;

export const kfd_ioctl_dbg_register_args = struct("kfd_ioctl_dbg_register_args", { gpu_id: u32, pad: u32 });
export const kfd_ioctl_dbg_unregister_args = struct("kfd_ioctl_dbg_unregister_args", { gpu_id: u32, pad: u32 });
export const kfd_ioctl_dbg_address_watch_args = struct("kfd_ioctl_dbg_address_watch_args", {
  content_ptr: u64,
  gpu_id: u32,
  buf_size_in_bytes: u32,
});
export const kfd_ioctl_dbg_wave_control_args = struct("kfd_ioctl_dbg_wave_control_args", {
  content_ptr: u64,
  gpu_id: u32,
  buf_size_in_bytes: u32,
});

export const KFD_INVALID_FD = 0xffffffff;

// ---- events --------------------------------------------------------------------------------

/** Matching HSA_EVENTTYPE. */
export const KFD_IOC_EVENT_SIGNAL = 0;
export const KFD_IOC_EVENT_NODECHANGE = 1;
export const KFD_IOC_EVENT_DEVICESTATECHANGE = 2;
export const KFD_IOC_EVENT_HW_EXCEPTION = 3;
export const KFD_IOC_EVENT_SYSTEM_EVENT = 4;
export const KFD_IOC_EVENT_DEBUG_EVENT = 5;
export const KFD_IOC_EVENT_PROFILE_EVENT = 6;
export const KFD_IOC_EVENT_QUEUE_EVENT = 7;
export const KFD_IOC_EVENT_MEMORY = 8;

export const KFD_IOC_WAIT_RESULT_COMPLETE = 0;
export const KFD_IOC_WAIT_RESULT_TIMEOUT = 1;
export const KFD_IOC_WAIT_RESULT_FAIL = 2;

export const KFD_SIGNAL_EVENT_LIMIT = 4096;

export const KFD_HW_EXCEPTION_WHOLE_GPU_RESET = 0;
export const KFD_HW_EXCEPTION_PER_ENGINE_RESET = 1;
export const KFD_HW_EXCEPTION_GPU_HANG = 0;
export const KFD_HW_EXCEPTION_ECC = 1;

export const KFD_MEM_ERR_NO_RAS = 0;
export const KFD_MEM_ERR_SRAM_ECC = 1;
export const KFD_MEM_ERR_POISON_CONSUMED = 2;
export const KFD_MEM_ERR_GPU_HANG = 3;

export const kfd_ioctl_create_event_args = struct("kfd_ioctl_create_event_args", {
  event_page_offset: u64,
  event_trigger_data: u32,
  event_type: u32,
  auto_reset: u32,
  node_id: u32,
  event_id: u32,
  event_slot_index: u32,
});

export const kfd_ioctl_destroy_event_args = struct("kfd_ioctl_destroy_event_args", { event_id: u32, pad: u32 });
export const kfd_ioctl_set_event_args = struct("kfd_ioctl_set_event_args", { event_id: u32, pad: u32 });
export const kfd_ioctl_reset_event_args = struct("kfd_ioctl_reset_event_args", { event_id: u32, pad: u32 });

export const kfd_memory_exception_failure = struct("kfd_memory_exception_failure", {
  NotPresent: u32,
  ReadOnly: u32,
  NoExecute: u32,
  imprecise: u32,
});

export const kfd_hsa_memory_exception_data = struct("kfd_hsa_memory_exception_data", {
  failure: kfd_memory_exception_failure,
  va: u64,
  gpu_id: u32,
  ErrorType: u32,
});

export const kfd_hsa_hw_exception_data = struct("kfd_hsa_hw_exception_data", {
  reset_type: u32,
  reset_cause: u32,
  memory_lost: u32,
  gpu_id: u32,
});

export const kfd_hsa_signal_event_data = struct("kfd_hsa_signal_event_data", {
  last_event_age: u64,
});

/**
 * struct kfd_event_data. The C struct opens with a union of the memory-exception, hw-exception
 * and signal data; struct layouts have no unions, so the union is laid out as its largest
 * member (memory_exception_data, 32 bytes). The other views read the same bytes:
 * signal_event_data.last_event_age is failure.NotPresent + failure.ReadOnly * 2^32, and
 * hw_exception_data is the four `failure` words. Use kfd_event_data_union() to read them.
 */
export const kfd_event_data = struct("kfd_event_data", {
  memory_exception_data: kfd_hsa_memory_exception_data,
  kfd_event_data_ext: u64,
  event_id: u32,
  pad: u32,
});

export const kfd_ioctl_wait_events_args = struct("kfd_ioctl_wait_events_args", {
  events_ptr: u64,
  num_events: u32,
  wait_for_all: u32,
  timeout: u32,
  wait_result: u32,
});

export const kfd_ioctl_set_scratch_backing_va_args = struct("kfd_ioctl_set_scratch_backing_va_args", {
  va_addr: u64,
  gpu_id: u32,
  pad: u32,
});

export const kfd_ioctl_get_tile_config_args = struct("kfd_ioctl_get_tile_config_args", {
  tile_config_ptr: u64,
  macro_tile_config_ptr: u64,
  num_tile_configs: u32,
  num_macro_tile_configs: u32,
  gpu_id: u32,
  gb_addr_config: u32,
  num_banks: u32,
  num_ranks: u32,
});

export const kfd_ioctl_set_trap_handler_args = struct("kfd_ioctl_set_trap_handler_args", {
  tba_addr: u64,
  tma_addr: u64,
  gpu_id: u32,
  pad: u32,
});

/** drm_fd: an open /dev/dri/renderD* of the GPU whose VM becomes the process's compute VM. */
export const kfd_ioctl_acquire_vm_args = struct("kfd_ioctl_acquire_vm_args", {
  drm_fd: u32,
  gpu_id: u32,
});

// ---- memory allocation (KFD BOs) -------------------------------------------------------------

export const KFD_IOC_ALLOC_MEM_FLAGS_VRAM = 1 << 0;
export const KFD_IOC_ALLOC_MEM_FLAGS_GTT = 1 << 1;
export const KFD_IOC_ALLOC_MEM_FLAGS_USERPTR = 1 << 2;
export const KFD_IOC_ALLOC_MEM_FLAGS_DOORBELL = 1 << 3;
export const KFD_IOC_ALLOC_MEM_FLAGS_MMIO_REMAP = 1 << 4;
export const KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE = 2 ** 31;
export const KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE = 1 << 30;
export const KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC = 1 << 29;
export const KFD_IOC_ALLOC_MEM_FLAGS_NO_SUBSTITUTE = 1 << 28;
export const KFD_IOC_ALLOC_MEM_FLAGS_AQL_QUEUE_MEM = 1 << 27;
export const KFD_IOC_ALLOC_MEM_FLAGS_COHERENT = 1 << 26;
export const KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED = 1 << 25;
export const KFD_IOC_ALLOC_MEM_FLAGS_EXT_COHERENT = 1 << 24;

export const kfd_ioctl_alloc_memory_of_gpu_args = struct("kfd_ioctl_alloc_memory_of_gpu_args", {
  va_addr: u64,
  size: u64,
  handle: u64,
  mmap_offset: u64,
  gpu_id: u32,
  flags: u32,
});

export const kfd_ioctl_free_memory_of_gpu_args = struct("kfd_ioctl_free_memory_of_gpu_args", { handle: u64 });

export const kfd_ioctl_map_memory_to_gpu_args = struct("kfd_ioctl_map_memory_to_gpu_args", {
  handle: u64,
  device_ids_array_ptr: u64,
  n_devices: u32,
  n_success: u32,
});

export const kfd_ioctl_unmap_memory_from_gpu_args = struct("kfd_ioctl_unmap_memory_from_gpu_args", {
  handle: u64,
  device_ids_array_ptr: u64,
  n_devices: u32,
  n_success: u32,
});

export const kfd_ioctl_alloc_queue_gws_args = struct("kfd_ioctl_alloc_queue_gws_args", {
  queue_id: u32,
  num_gws: u32,
  first_gws: u32,
  pad: u32,
});

export const kfd_ioctl_get_dmabuf_info_args = struct("kfd_ioctl_get_dmabuf_info_args", {
  size: u64,
  metadata_ptr: u64,
  metadata_size: u32,
  gpu_id: u32,
  flags: u32,
  dmabuf_fd: u32,
});

export const kfd_ioctl_import_dmabuf_args = struct("kfd_ioctl_import_dmabuf_args", {
  va_addr: u64,
  handle: u64,
  gpu_id: u32,
  dmabuf_fd: u32,
});

export const kfd_ioctl_export_dmabuf_args = struct("kfd_ioctl_export_dmabuf_args", {
  handle: u64,
  flags: u32,
  dmabuf_fd: u32,
});

// ---- SMI events ----------------------------------------------------------------------------------

/** enum kfd_smi_event: event ids start at 1; ALL_PROCESS is a mask flag, not an event. */
export const KFD_SMI_EVENT_NONE = 0;
export const KFD_SMI_EVENT_VMFAULT = 1;
export const KFD_SMI_EVENT_THERMAL_THROTTLE = 2;
export const KFD_SMI_EVENT_GPU_PRE_RESET = 3;
export const KFD_SMI_EVENT_GPU_POST_RESET = 4;
export const KFD_SMI_EVENT_MIGRATE_START = 5;
export const KFD_SMI_EVENT_MIGRATE_END = 6;
export const KFD_SMI_EVENT_PAGE_FAULT_START = 7;
export const KFD_SMI_EVENT_PAGE_FAULT_END = 8;
export const KFD_SMI_EVENT_QUEUE_EVICTION = 9;
export const KFD_SMI_EVENT_QUEUE_RESTORE = 10;
export const KFD_SMI_EVENT_UNMAP_FROM_GPU = 11;
export const KFD_SMI_EVENT_ALL_PROCESS = 64;

// enum KFD_MIGRATE_TRIGGERS
export const KFD_MIGRATE_TRIGGER_PREFETCH = 0;
export const KFD_MIGRATE_TRIGGER_PAGEFAULT_GPU = 1;
export const KFD_MIGRATE_TRIGGER_PAGEFAULT_CPU = 2;
export const KFD_MIGRATE_TRIGGER_TTM_EVICTION = 3;

// enum KFD_QUEUE_EVICTION_TRIGGERS
export const KFD_QUEUE_EVICTION_TRIGGER_SVM = 0;
export const KFD_QUEUE_EVICTION_TRIGGER_USERPTR = 1;
export const KFD_QUEUE_EVICTION_TRIGGER_TTM = 2;
export const KFD_QUEUE_EVICTION_TRIGGER_SUSPEND = 3;
export const KFD_QUEUE_EVICTION_CRIU_CHECKPOINT = 4;
export const KFD_QUEUE_EVICTION_CRIU_RESTORE = 5;

// enum KFD_SVM_UNMAP_TRIGGERS
export const KFD_SVM_UNMAP_TRIGGER_MMU_NOTIFY = 0;
export const KFD_SVM_UNMAP_TRIGGER_MMU_NOTIFY_MIGRATE = 1;
export const KFD_SVM_UNMAP_TRIGGER_UNMAP_FROM_CPU = 2;

/** KFD_SMI_EVENT_MASK_FROM_INDEX(i): the 64-bit mask bit of event i (as a number; i ≤ 64). */
export function KFD_SMI_EVENT_MASK_FROM_INDEX(i: number): number {
  return 2 ** (i - 1);
}
export const KFD_SMI_EVENT_MSG_SIZE = 96;

/** gpuid: the GPU to watch; anon_fd: out, a readable descriptor delivering event text lines. */
export const kfd_ioctl_smi_events_args = struct("kfd_ioctl_smi_events_args", {
  gpuid: u32,
  anon_fd: u32,
});

// ---- CRIU ----------------------------------------------------------------------------------------

export const KFD_CRIU_OP_PROCESS_INFO = 0;
export const KFD_CRIU_OP_CHECKPOINT = 1;
export const KFD_CRIU_OP_UNPAUSE = 2;
export const KFD_CRIU_OP_RESTORE = 3;
export const KFD_CRIU_OP_RESUME = 4;

export const kfd_ioctl_criu_args = struct("kfd_ioctl_criu_args", {
  devices: u64,
  bos: u64,
  priv_data: u64,
  priv_data_size: u64,
  num_devices: u32,
  num_bos: u32,
  num_objects: u32,
  pid: u32,
  op: u32,
});

// ---- SVM -----------------------------------------------------------------------------------------

/** Guarantee host access to memory. */
export const KFD_IOCTL_SVM_FLAG_HOST_ACCESS = 0x00000001;
/** Fine-grained coherency between all devices with access. */
export const KFD_IOCTL_SVM_FLAG_COHERENT = 0x00000002;
/** Use any GPU in the same hive as the preferred device. */
export const KFD_IOCTL_SVM_FLAG_HIVE_LOCAL = 0x00000004;
/** GPUs only read, allows replication. */
export const KFD_IOCTL_SVM_FLAG_GPU_RO = 0x00000008;
/** Allow execution on the GPU. */
export const KFD_IOCTL_SVM_FLAG_GPU_EXEC = 0x00000010;
/** GPUs mostly read. */
export const KFD_IOCTL_SVM_FLAG_GPU_READ_MOSTLY = 0x00000020;
/** Keep the GPU mapping always valid, as if XNACK were off. */
export const KFD_IOCTL_SVM_FLAG_GPU_ALWAYS_MAPPED = 0x00000040;
/** Fine-grained coherency using device-scope atomics. */
export const KFD_IOCTL_SVM_FLAG_EXT_COHERENT = 0x00000080;

// enum kfd_ioctl_svm_op
export const KFD_IOCTL_SVM_OP_SET_ATTR = 0;
export const KFD_IOCTL_SVM_OP_GET_ATTR = 1;

// enum kfd_ioctl_svm_location
export const KFD_IOCTL_SVM_LOCATION_SYSMEM = 0;
export const KFD_IOCTL_SVM_LOCATION_UNDEFINED = 0xffffffff;

// enum kfd_ioctl_svm_attr_type
export const KFD_IOCTL_SVM_ATTR_PREFERRED_LOC = 0;
export const KFD_IOCTL_SVM_ATTR_PREFETCH_LOC = 1;
export const KFD_IOCTL_SVM_ATTR_ACCESS = 2;
export const KFD_IOCTL_SVM_ATTR_ACCESS_IN_PLACE = 3;
export const KFD_IOCTL_SVM_ATTR_NO_ACCESS = 4;
export const KFD_IOCTL_SVM_ATTR_SET_FLAGS = 5;
export const KFD_IOCTL_SVM_ATTR_CLR_FLAGS = 6;
export const KFD_IOCTL_SVM_ATTR_GRANULARITY = 7;

export const kfd_ioctl_svm_attribute = struct("kfd_ioctl_svm_attribute", {
  type: u32,
  value: u32,
});

/**
 * struct kfd_ioctl_svm_args: a 24-byte header and `nattr` attributes. The ioctl's size field
 * carries the total size, 24 + 8 * nattr, and the kernel copies exactly that much in and back
 * out (GET_ATTR results return in place).
 */
export const kfd_ioctl_svm_args = struct("kfd_ioctl_svm_args", {
  start_addr: u64,
  size: u64,
  op: u32,
  nattr: u32,
  attrs: flex_array(kfd_ioctl_svm_attribute, "nattr"),
});

/**
 * xnack_enabled: in, 0 = off, > 0 = on, < 0 = only query; out, the (new) current mode.
 * Changing the mode is refused while the process has user queues.
 */
export const kfd_ioctl_set_xnack_mode_args = struct("kfd_ioctl_set_xnack_mode_args", {
  xnack_enabled: s32,
});

// ---- runtime enable (debugger API; only the layout is provided) --------------------------------

export const kfd_ioctl_runtime_enable_args = struct("kfd_ioctl_runtime_enable_args", {
  r_debug: u64,
  mode_mask: u32,
  capabilities_mask: u32,
});

/** kfd_ioctl_dbg_trap_args: pid, op, and a 32-byte union of per-operation arguments. */
export const kfd_ioctl_dbg_trap_args = struct("kfd_ioctl_dbg_trap_args", {
  pid: u32,
  op: u32,
  data: array(u64, 4),
});

// ---- request numbers -----------------------------------------------------------------------------

export const AMDKFD_IOCTL_BASE = "K";

export const AMDKFD_IOC_GET_VERSION = _IOR(AMDKFD_IOCTL_BASE, 0x01, kfd_ioctl_get_version_args);
export const AMDKFD_IOC_CREATE_QUEUE = _IOWR(AMDKFD_IOCTL_BASE, 0x02, kfd_ioctl_create_queue_args);
export const AMDKFD_IOC_DESTROY_QUEUE = _IOWR(AMDKFD_IOCTL_BASE, 0x03, kfd_ioctl_destroy_queue_args);
export const AMDKFD_IOC_SET_MEMORY_POLICY = _IOW(AMDKFD_IOCTL_BASE, 0x04, kfd_ioctl_set_memory_policy_args);
export const AMDKFD_IOC_GET_CLOCK_COUNTERS = _IOWR(AMDKFD_IOCTL_BASE, 0x05, kfd_ioctl_get_clock_counters_args);
export const AMDKFD_IOC_GET_PROCESS_APERTURES = _IOR(AMDKFD_IOCTL_BASE, 0x06, kfd_ioctl_get_process_apertures_args);
export const AMDKFD_IOC_UPDATE_QUEUE = _IOW(AMDKFD_IOCTL_BASE, 0x07, kfd_ioctl_update_queue_args);
export const AMDKFD_IOC_CREATE_EVENT = _IOWR(AMDKFD_IOCTL_BASE, 0x08, kfd_ioctl_create_event_args);
export const AMDKFD_IOC_DESTROY_EVENT = _IOW(AMDKFD_IOCTL_BASE, 0x09, kfd_ioctl_destroy_event_args);
export const AMDKFD_IOC_SET_EVENT = _IOW(AMDKFD_IOCTL_BASE, 0x0a, kfd_ioctl_set_event_args);
export const AMDKFD_IOC_RESET_EVENT = _IOW(AMDKFD_IOCTL_BASE, 0x0b, kfd_ioctl_reset_event_args);
export const AMDKFD_IOC_WAIT_EVENTS = _IOWR(AMDKFD_IOCTL_BASE, 0x0c, kfd_ioctl_wait_events_args);
export const AMDKFD_IOC_DBG_REGISTER_DEPRECATED = _IOW(AMDKFD_IOCTL_BASE, 0x0d, kfd_ioctl_dbg_register_args);
export const AMDKFD_IOC_DBG_UNREGISTER_DEPRECATED = _IOW(AMDKFD_IOCTL_BASE, 0x0e, kfd_ioctl_dbg_unregister_args);
export const AMDKFD_IOC_DBG_ADDRESS_WATCH_DEPRECATED = _IOW(AMDKFD_IOCTL_BASE, 0x0f, kfd_ioctl_dbg_address_watch_args);
export const AMDKFD_IOC_DBG_WAVE_CONTROL_DEPRECATED = _IOW(AMDKFD_IOCTL_BASE, 0x10, kfd_ioctl_dbg_wave_control_args);
export const AMDKFD_IOC_SET_SCRATCH_BACKING_VA = _IOWR(AMDKFD_IOCTL_BASE, 0x11, kfd_ioctl_set_scratch_backing_va_args);
export const AMDKFD_IOC_GET_TILE_CONFIG = _IOWR(AMDKFD_IOCTL_BASE, 0x12, kfd_ioctl_get_tile_config_args);
export const AMDKFD_IOC_SET_TRAP_HANDLER = _IOW(AMDKFD_IOCTL_BASE, 0x13, kfd_ioctl_set_trap_handler_args);
export const AMDKFD_IOC_GET_PROCESS_APERTURES_NEW = _IOWR(AMDKFD_IOCTL_BASE, 0x14, kfd_ioctl_get_process_apertures_new_args);
export const AMDKFD_IOC_ACQUIRE_VM = _IOW(AMDKFD_IOCTL_BASE, 0x15, kfd_ioctl_acquire_vm_args);
export const AMDKFD_IOC_ALLOC_MEMORY_OF_GPU = _IOWR(AMDKFD_IOCTL_BASE, 0x16, kfd_ioctl_alloc_memory_of_gpu_args);
export const AMDKFD_IOC_FREE_MEMORY_OF_GPU = _IOW(AMDKFD_IOCTL_BASE, 0x17, kfd_ioctl_free_memory_of_gpu_args);
export const AMDKFD_IOC_MAP_MEMORY_TO_GPU = _IOWR(AMDKFD_IOCTL_BASE, 0x18, kfd_ioctl_map_memory_to_gpu_args);
export const AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU = _IOWR(AMDKFD_IOCTL_BASE, 0x19, kfd_ioctl_unmap_memory_from_gpu_args);
export const AMDKFD_IOC_SET_CU_MASK = _IOW(AMDKFD_IOCTL_BASE, 0x1a, kfd_ioctl_set_cu_mask_args);
export const AMDKFD_IOC_GET_QUEUE_WAVE_STATE = _IOWR(AMDKFD_IOCTL_BASE, 0x1b, kfd_ioctl_get_queue_wave_state_args);
export const AMDKFD_IOC_GET_DMABUF_INFO = _IOWR(AMDKFD_IOCTL_BASE, 0x1c, kfd_ioctl_get_dmabuf_info_args);
export const AMDKFD_IOC_IMPORT_DMABUF = _IOWR(AMDKFD_IOCTL_BASE, 0x1d, kfd_ioctl_import_dmabuf_args);
export const AMDKFD_IOC_ALLOC_QUEUE_GWS = _IOWR(AMDKFD_IOCTL_BASE, 0x1e, kfd_ioctl_alloc_queue_gws_args);
export const AMDKFD_IOC_SMI_EVENTS = _IOWR(AMDKFD_IOCTL_BASE, 0x1f, kfd_ioctl_smi_events_args);
export const AMDKFD_IOC_SVM = _IOWR(AMDKFD_IOCTL_BASE, 0x20, kfd_ioctl_svm_args);
export const AMDKFD_IOC_SET_XNACK_MODE = _IOWR(AMDKFD_IOCTL_BASE, 0x21, kfd_ioctl_set_xnack_mode_args);
// libhsakmt puts the whole kfd_ioctl_svm_args size in the request (see AMDKFD_IOC_SVM_SIZED).
register_ioctl_total_size(AMDKFD_IOC_SVM);

export const AMDKFD_IOC_CRIU_OP = _IOWR(AMDKFD_IOCTL_BASE, 0x22, kfd_ioctl_criu_args);
export const AMDKFD_IOC_AVAILABLE_MEMORY = _IOWR(AMDKFD_IOCTL_BASE, 0x23, kfd_ioctl_get_available_memory_args);
export const AMDKFD_IOC_EXPORT_DMABUF = _IOWR(AMDKFD_IOCTL_BASE, 0x24, kfd_ioctl_export_dmabuf_args);
export const AMDKFD_IOC_RUNTIME_ENABLE = _IOWR(AMDKFD_IOCTL_BASE, 0x25, kfd_ioctl_runtime_enable_args);
export const AMDKFD_IOC_DBG_TRAP = _IOWR(AMDKFD_IOCTL_BASE, 0x26, kfd_ioctl_dbg_trap_args);

export const AMDKFD_COMMAND_START = 0x01;
export const AMDKFD_COMMAND_END = 0x27;

/**
 * The AMDKFD_IOC_SVM request for `nattr` attributes: the size field holds 24 + 8 * nattr, as
 * libhsakmt computes it (AMDKFD_IOC_SVM + (nattr * sizeof(attr) << _IOC_SIZESHIFT)).
 */
export function AMDKFD_IOC_SVM_SIZED(nattr: number): number {
  const request = _IOC(_IOC_DIR(AMDKFD_IOC_SVM), _IOC_TYPE(AMDKFD_IOC_SVM), _IOC_NR(AMDKFD_IOC_SVM),
    struct_size(kfd_ioctl_svm_args, nattr));
  // The same argument struct, so the runtime can marshal a plain object for this number too.
  register_ioctl_layout(request, kfd_ioctl_svm_args);
  return request;
}

/** The plain objects user space passes for the SVM requests. */
export interface kfd_ioctl_svm_attribute_t {
  type: number;
  value: number;
}
export interface kfd_ioctl_svm_args_t {
  start_addr: number;
  size: number;
  op: number;
  nattr: number;
  attrs: kfd_ioctl_svm_attribute_t[];
}

/** The views of the kfd_event_data union (see kfd_event_data above). */
export function kfd_event_data_union(d: { memory_exception_data: { failure: { NotPresent: number; ReadOnly: number; NoExecute: number; imprecise: number } } }): {
  last_event_age: number;
  hw_exception_data: { reset_type: number; reset_cause: number; memory_lost: number; gpu_id: number };
} {
  const f = d.memory_exception_data.failure;
  return {
    last_event_age: f.NotPresent + f.ReadOnly * 2 ** 32,
    hw_exception_data: { reset_type: f.NotPresent, reset_cause: f.ReadOnly, memory_lost: f.NoExecute, gpu_id: f.imprecise },
  };
}

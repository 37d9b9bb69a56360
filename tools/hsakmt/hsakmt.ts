// kemu user space: a libhsakmt-like thunk (ROCm's ROCT-Thunk-Interface, now ROCR-Runtime's
// libhsakmt) over /dev/kfd, for one Process. It keeps the library's entry points, argument
// checks and status codes — hsaKmtOpenKFD/CloseKFD, the topology snapshot, hsaKmtSVMSetAttr/
// GetAttr with node-id <-> gpu-id translation, XNACK mode, user queues and events — so that
// kfdtest-style suites read like the C originals. The library state libhsakmt keeps in globals
// (the KFD fd, the node table, the events page) lives in one HsaKmt object per Process.
//
// Where kemu differs (docs/kfd.md, "The thunk"):
// - The events page and queue control memory are ordinary anonymous memory registered as SVM
//   ranges (libhsakmt allocates KFD BOs; kemu's KFD has no BO ioctls). The first event passes
//   the page's address in event_page_offset.
// - Doorbells: kemu's CPU cannot map device MMIO into a process, so ringDoorbell() performs the
//   64-bit store to the doorbell BAR through the machine's PCI host bridge, the transaction the
//   runtime's store to its mapped doorbell page would produce.
// - Compute queues get a context save/restore (CWSR) area sized as libhsakmt sizes it from the
//   node's topology, in the same SVM-registered memory; no EOP buffer (kemu's CP uses none).

import type { Process } from "../runtime/process.ts";
import { SyscallError } from "../runtime/process.ts";
import { PCI_HOST } from "../../kernel/tokens.ts";
import { EPERM } from "../../include/uapi/asm-generic/errno.ts";
import { O_CLOEXEC, O_RDWR } from "../../include/uapi/asm-generic/fcntl.ts";
import { MADV_DONTFORK, MAP_ANONYMOUS, MAP_POPULATE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../include/uapi/asm-generic/mman.ts";
import { layout_decode, layout_encode } from "../../include/uapi/struct_layout.ts";
import * as K from "../../include/uapi/linux/kfd_ioctl.ts";
import {
  FAMILY_AI, FAMILY_NV, HSAKMT_STATUS, HSA_EVENTID_MEMORY_FATAL_PROCESS, HSA_EVENTTYPE_DEBUG_EVENT, HSA_EVENTTYPE_MAXID,
  HSA_EVENTTYPE_MEMORY, HSA_EVENTTYPE_SIGNAL, HSA_HEAPTYPE_FRAME_BUFFER_PRIVATE, HSA_HEAPTYPE_FRAME_BUFFER_PUBLIC,
  HSA_QUEUE_COMPUTE, HSA_QUEUE_COMPUTE_AQL, HSA_QUEUE_PRIORITY_MAXIMUM, HSA_QUEUE_PRIORITY_MINIMUM, HSA_QUEUE_SDMA,
  HSA_SVM_FLAG_COHERENT, HSA_SVM_FLAG_GPU_ALWAYS_MAPPED, HSA_SVM_FLAG_GPU_EXEC, HSA_SVM_FLAG_HOST_ACCESS, INVALID_NODEID,
  type HSA_SVM_ATTRIBUTE, type HsaEvent, type HsaEventDescriptor, type HsaMemoryProperties, type HsaNodeProperties,
  type HsaQueueResource, type HsaSystemProperties, type HsaVersionInfo,
} from "./hsakmttypes.ts";

const PAGE_SIZE = 4096;
const TOPOLOGY = "/sys/class/kfd/kfd/topology";
/** KFD_SIGNAL_EVENT_LIMIT slots of 8 bytes. */
const EVENTS_PAGE_SIZE = K.KFD_SIGNAL_EVENT_LIMIT * 8;
/** libhsakmt's priority_map: HSA priorities -3..3 to KFD's 0..15. */
const PRIORITY_MAP = [0, 3, 5, 7, 9, 11, 15];
/** PCI config offset of BAR2 (the doorbell BAR, 64-bit). */
const PCI_BAR2 = 0x18;
/** What the thunk maps for a PM4/SDMA queue's read and write indices. */
const QUEUE_PTRS_SIZE = PAGE_SIZE;
/** libhsakmt's per-CU context data (SGPRs, LDS, hardware registers; VGPRs by ASIC below). */
const SGPR_SIZE_PER_CU = 0x4000;
const LDS_SIZE_PER_CU = 0x10000;
const HWREG_SIZE_PER_CU = 0x1000;
/** sizeof(HsaUserContextSaveAreaHeader), at the start of the control stack page. */
const CTX_SAVE_AREA_HEADER_SIZE = 40;
const DEBUGGER_BYTES_PER_WAVE = 32;
const DEBUGGER_BYTES_ALIGN = 64;
/** gfx_target_version of Carrizo (the first ASIC with CWSR) and of Navi10 (12-byte control-stack entries). */
const GFX_VERSION_CARRIZO = 80001;
const GFX_VERSION_NAVI10 = 100100;

/** One topology node as the thunk snapshots it from sysfs. */
interface NodeInfo {
  gpu_id: number;
  name: string;
  props: Map<string, number>;
  mem: HsaMemoryProperties[];
}

/** A queue the thunk created: what it needs to ring and destroy it. */
interface ThunkQueue {
  node: number;
  doorbell_offset: number;
  /** Thunk-owned index memory (PM4/SDMA queues), unmapped on destroy. */
  own_ptrs: number;
  /** The context save/restore area and its debugger tail (compute queues), unmapped on destroy. */
  ctx_save_restore: number;
  ctx_save_restore_alloc: number;
}

/** What update_ctx_save_restore_size() works out for a compute queue. */
interface CtxSaveSizes {
  ctl_stack_size: number;
  ctx_save_restore_size: number;
  debug_memory_size: number;
}

function align_up(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

/** VGPR bytes per CU: the CDNA parts with 512 VGPRs per lane (Arcturus, Aldebaran, Aqua Vanjaram) double it. */
function vgpr_size_per_cu(gfxv: number): number {
  return gfxv === 90008 || gfxv === 90010 || Math.floor(gfxv / 100) === 904 ? 0x80000 : 0x40000;
}

const instances = new WeakMap<Process, HsaKmt>();

/** Parses a sysfs `key value` property file. */
function parse_props(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) m.set(k, Number(v));
  }
  return m;
}

export class HsaKmt {
  private kfd_fd = -1;
  private open_count = 0;
  private version: HsaVersionInfo = { KernelInterfaceMajorVersion: 0, KernelInterfaceMinorVersion: 0 };
  private nodes: NodeInfo[] = [];
  private system: HsaSystemProperties | null = null;
  private events_page = 0;
  /** Serialises hsaKmtCreateEvent (libhsakmt's hsakmt_mutex around the events page). */
  private event_mutex: Promise<void> = Promise.resolve();
  /** Free one-page user buffers for kfd_event_data arrays: each concurrent wait takes its own. */
  private readonly wait_bufs: number[] = [];
  private readonly queues = new Map<number, ThunkQueue>();
  /** Render-node descriptors by minor (libhsakmt's drm_render_fds). */
  private readonly render_fds = new Map<number, number>();

  private constructor(readonly proc: Process) {}

  /** The thunk of a process (libhsakmt's per-process globals). A forked child gets its own. */
  static of(proc: Process): HsaKmt {
    let t = instances.get(proc);
    if (!t) {
      t = new HsaKmt(proc);
      instances.set(proc, t);
    }
    return t;
  }

  /** The /dev/kfd descriptor while open, else -1. */
  get fd(): number {
    return this.kfd_fd;
  }

  // ---- open / close (openclose.c) ----------------------------------------------------------

  /**
   * hsaKmtOpenKFD(): opens /dev/kfd, checks the interface version, snapshots the topology and
   * acquires each GPU's VM through its render node. A second open only counts.
   */
  async hsaKmtOpenKFD(): Promise<HSAKMT_STATUS> {
    if (this.open_count > 0) {
      this.open_count++;
      return HSAKMT_STATUS.KERNEL_ALREADY_OPENED;
    }
    const fd = await this.proc.open("/dev/kfd", O_RDWR | O_CLOEXEC);
    if (fd < 0) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
    this.kfd_fd = fd;
    const v = { major_version: 0, minor_version: 0 };
    if ((await this.proc.ioctl(fd, K.AMDKFD_IOC_GET_VERSION, v)) < 0 || v.major_version !== K.KFD_IOCTL_MAJOR_VERSION) {
      await this.close_all();
      return HSAKMT_STATUS.DRIVER_MISMATCH;
    }
    this.version = { KernelInterfaceMajorVersion: v.major_version, KernelInterfaceMinorVersion: v.minor_version };
    let r = await this.read_topology();
    if (r === HSAKMT_STATUS.SUCCESS) r = await this.init_process_apertures();
    if (r !== HSAKMT_STATUS.SUCCESS) {
      await this.close_all();
      return r;
    }
    this.open_count = 1;
    return HSAKMT_STATUS.SUCCESS;
  }

  /**
   * hsaKmtCloseKFD(): the last close closes /dev/kfd (the render nodes stay open, and the KFD
   * process with its queues and ranges lives on until the process exits).
   */
  async hsaKmtCloseKFD(): Promise<HSAKMT_STATUS> {
    if (this.open_count === 0) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
    if (--this.open_count === 0) await this.close_all();
    return HSAKMT_STATUS.SUCCESS;
  }

  hsaKmtGetVersion(out: HsaVersionInfo): HSAKMT_STATUS {
    if (this.open_count === 0) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
    Object.assign(out, this.version);
    return HSAKMT_STATUS.SUCCESS;
  }

  private async close_all(): Promise<void> {
    if (this.kfd_fd >= 0) await this.proc.close(this.kfd_fd);
    this.kfd_fd = -1;
    this.nodes = [];
    this.system = null;
    this.queues.clear();
  }

  /** fmm_init_process_apertures(): apertures of every GPU, then ACQUIRE_VM with its render node. */
  private async init_process_apertures(): Promise<HSAKMT_STATUS> {
    const gpus = this.nodes.filter((n) => n.gpu_id);
    const ap = { kfd_process_device_apertures_ptr: 0, num_of_nodes: 0, pad: 0 };
    if ((await this.proc.ioctl(this.kfd_fd, K.AMDKFD_IOC_GET_PROCESS_APERTURES_NEW, ap)) < 0 || ap.num_of_nodes !== gpus.length) {
      return HSAKMT_STATUS.ERROR;
    }
    for (const n of gpus) {
      const drm_fd = await this.open_drm_render_device(n.props.get("drm_render_minor") ?? 0);
      if (drm_fd < 0) return HSAKMT_STATUS.ERROR;
      if ((await this.proc.ioctl(this.kfd_fd, K.AMDKFD_IOC_ACQUIRE_VM, { drm_fd, gpu_id: n.gpu_id })) < 0) return HSAKMT_STATUS.ERROR;
    }
    return HSAKMT_STATUS.SUCCESS;
  }

  /**
   * open_drm_render_device(): render nodes stay open for the life of the process (across
   * CloseKFD/OpenKFD), so a re-open acquires the VM with the same file KFD already holds.
   */
  private async open_drm_render_device(minor: number): Promise<number> {
    const cached = this.render_fds.get(minor);
    if (cached !== undefined) return cached;
    const fd = await this.proc.open(`/dev/dri/renderD${minor}`, O_RDWR | O_CLOEXEC);
    if (fd >= 0) this.render_fds.set(minor, fd);
    return fd;
  }

  // ---- topology (topology.c) -------------------------------------------------------------

  /** Reads nodes/0, nodes/1, ... until one is missing (libhsakmt counts the directories). */
  private async read_topology(): Promise<HSAKMT_STATUS> {
    const nodes: NodeInfo[] = [];
    let sys: Map<string, number>;
    try {
      sys = parse_props(await this.proc.readFile(`${TOPOLOGY}/system_properties`));
      for (let i = 0; ; i++) {
        const dir = `${TOPOLOGY}/nodes/${i}`;
        let gpu_id: number;
        try {
          gpu_id = Number((await this.proc.readFile(`${dir}/gpu_id`)).trim());
        } catch (e) {
          if (e instanceof SyscallError) break;
          throw e;
        }
        const props = parse_props(await this.proc.readFile(`${dir}/properties`));
        const name = (await this.proc.readFile(`${dir}/name`)).trim();
        const mem: HsaMemoryProperties[] = [];
        for (let b = 0; b < (props.get("mem_banks_count") ?? 0); b++) {
          const m = parse_props(await this.proc.readFile(`${dir}/mem_banks/${b}/properties`));
          mem.push({ HeapType: m.get("heap_type") ?? 0, SizeInBytes: m.get("size_in_bytes") ?? 0, Flags: m.get("flags") ?? 0,
            Width: m.get("width") ?? 0, MemoryClockMax: m.get("mem_clk_max") ?? 0 });
        }
        nodes.push({ gpu_id, name, props, mem });
      }
    } catch (e) {
      if (e instanceof SyscallError) return HSAKMT_STATUS.ERROR;
      throw e;
    }
    this.nodes = nodes;
    this.system = { NumNodes: nodes.length, PlatformOem: sys.get("platform_oem") ?? 0, PlatformId: sys.get("platform_id") ?? 0,
      PlatformRev: sys.get("platform_rev") ?? 0 };
    return HSAKMT_STATUS.SUCCESS;
  }

  /** hsaKmtAcquireSystemProperties(): the node count of the snapshot. */
  hsaKmtAcquireSystemProperties(out: HsaSystemProperties): HSAKMT_STATUS {
    if (this.open_count === 0 || !this.system) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
    Object.assign(out, this.system);
    return HSAKMT_STATUS.SUCCESS;
  }

  /** hsaKmtReleaseSystemProperties(): the snapshot stays for the thunk's own use while open. */
  hsaKmtReleaseSystemProperties(): HSAKMT_STATUS {
    return this.open_count === 0 ? HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED : HSAKMT_STATUS.SUCCESS;
  }

  /** hsaKmtGetNodeProperties(): the sysfs properties in libhsakmt's field names. */
  hsaKmtGetNodeProperties(NodeId: number, out: Partial<HsaNodeProperties>): HSAKMT_STATUS {
    const st = this.check_node(NodeId);
    if (st !== HSAKMT_STATUS.SUCCESS) return st;
    const n = this.nodes[NodeId]!;
    const g = (k: string): number => n.props.get(k) ?? 0;
    const gfx = g("gfx_target_version");
    const major = Math.floor(gfx / 10000);
    Object.assign(out, {
      NumCPUCores: g("cpu_cores_count"), NumFComputeCores: g("simd_count"), NumMemoryBanks: g("mem_banks_count"),
      NumCaches: g("caches_count"), NumIOLinks: g("io_links_count"), CComputeIdLo: g("cpu_core_id_base"),
      FComputeIdLo: g("simd_id_base"), Capability: g("capability"), MaxWavesPerSIMD: g("max_waves_per_simd"),
      LDSSizeInKB: g("lds_size_in_kb"), GDSSizeInKB: g("gds_size_in_kb"), WaveFrontSize: g("wave_front_size"),
      NumShaderBanks: g("array_count"), NumArrays: g("simd_arrays_per_engine"), NumCUPerArray: g("cu_per_simd_array"),
      NumSIMDPerCU: g("simd_per_cu"), MaxSlotsScratchCU: g("max_slots_scratch_cu"), VendorId: g("vendor_id"),
      DeviceId: g("device_id"), LocationId: g("location_id"), Domain: g("domain"), DrmRenderMinor: g("drm_render_minor"),
      HiveID: g("hive_id"), NumSdmaEngines: g("num_sdma_engines"), NumSdmaXgmiEngines: g("num_sdma_xgmi_engines"),
      NumSdmaQueuesPerEngine: g("num_sdma_queues_per_engine"), NumCpQueues: g("num_cp_queues"), NumGws: g("num_gws"),
      MaxEngineClockMhzFCompute: g("max_engine_clk_fcompute"), MaxEngineClockMhzCCompute: g("max_engine_clk_ccompute"),
      UniqueID: g("unique_id"), Integrated: 0, KFDGpuID: n.gpu_id,
      LocalMemSize: n.mem.filter((m) => m.HeapType === HSA_HEAPTYPE_FRAME_BUFFER_PUBLIC || m.HeapType === HSA_HEAPTYPE_FRAME_BUFFER_PRIVATE)
        .reduce((s, m) => s + m.SizeInBytes, 0),
      EngineId: { uCode: g("fw_version"), Major: major, Minor: Math.floor(gfx / 100) % 100, Stepping: gfx % 100 },
      FamilyID: !n.gpu_id ? 0 : major >= 10 ? FAMILY_NV : FAMILY_AI,
      MarketingName: n.name, AMDName: n.gpu_id ? `GFX${gfx.toString(16)}` : "CPU",
    } satisfies Partial<HsaNodeProperties>);
    return HSAKMT_STATUS.SUCCESS;
  }

  /** hsaKmtGetNodeMemoryProperties(): the node's memory banks. */
  hsaKmtGetNodeMemoryProperties(NodeId: number, NumBanks: number, out: HsaMemoryProperties[]): HSAKMT_STATUS {
    const st = this.check_node(NodeId);
    if (st !== HSAKMT_STATUS.SUCCESS) return st;
    out.length = 0;
    out.push(...this.nodes[NodeId]!.mem.slice(0, NumBanks).map((m) => ({ ...m })));
    return HSAKMT_STATUS.SUCCESS;
  }

  /** Node ids of the GPU nodes (a convenience the tests use instead of scanning properties). */
  gpuNodes(): number[] {
    return this.nodes.flatMap((n, i) => (n.gpu_id ? [i] : []));
  }

  private check_node(NodeId: number): HSAKMT_STATUS {
    if (this.open_count === 0) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
    return NodeId < this.nodes.length ? HSAKMT_STATUS.SUCCESS : HSAKMT_STATUS.INVALID_NODE_UNIT;
  }

  /** validate_nodeid(): node -> gpu id (0 for a CPU node). */
  private validate_nodeid(NodeId: number): { r: HSAKMT_STATUS; gpu_id: number } {
    if (NodeId >= this.nodes.length) return { r: HSAKMT_STATUS.INVALID_NODE_UNIT, gpu_id: 0 };
    return { r: HSAKMT_STATUS.SUCCESS, gpu_id: this.nodes[NodeId]!.gpu_id };
  }

  /** gpuid_to_nodeid() */
  private gpuid_to_nodeid(gpu_id: number): { r: HSAKMT_STATUS; node: number } {
    const node = this.nodes.findIndex((n) => n.gpu_id === gpu_id && gpu_id !== 0);
    return node < 0 ? { r: HSAKMT_STATUS.INVALID_NODE_UNIT, node: 0 } : { r: HSAKMT_STATUS.SUCCESS, node };
  }

  /** CHECK_KFD_OPEN() + CHECK_KFD_MINOR_VERSION(minor). */
  private check_open(minor: number): HSAKMT_STATUS {
    if (this.open_count === 0) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
    return this.version.KernelInterfaceMinorVersion < minor ? HSAKMT_STATUS.NOT_SUPPORTED : HSAKMT_STATUS.SUCCESS;
  }

  // ---- SVM (svm.c) ------------------------------------------------------------------------

  private check_svm_range(start_addr: number, size: number): HSAKMT_STATUS {
    const st = this.check_open(5);
    if (st !== HSAKMT_STATUS.SUCCESS) return st;
    if (!start_addr || !size || start_addr % PAGE_SIZE || size % PAGE_SIZE) return HSAKMT_STATUS.INVALID_PARAMETER;
    return HSAKMT_STATUS.SUCCESS;
  }

  /**
   * hsaKmtSVMSetAttr(): location and access values are node ids, sent as gpu ids (node 0, the
   * CPU, is system memory); the CPU cannot be an access target; preferred INVALID_NODEID means
   * "undefined". Any ioctl failure is HSAKMT_STATUS_ERROR.
   */
  async hsaKmtSVMSetAttr(start_addr: number, size: number, nattr: number, attrs: HSA_SVM_ATTRIBUTE[]): Promise<HSAKMT_STATUS> {
    let st = this.check_svm_range(start_addr, size);
    if (st !== HSAKMT_STATUS.SUCCESS) return st;
    const out: HSA_SVM_ATTRIBUTE[] = attrs.slice(0, nattr).map((a) => ({ type: a.type, value: a.value }));
    for (const a of out) {
      const access = is_access_attr(a.type);
      if (!access && !is_location_attr(a.type)) continue;
      if (a.type === K.KFD_IOCTL_SVM_ATTR_PREFERRED_LOC && a.value === INVALID_NODEID) {
        a.value = K.KFD_IOCTL_SVM_LOCATION_UNDEFINED;
        continue;
      }
      const v = this.validate_nodeid(a.value);
      if (v.r !== HSAKMT_STATUS.SUCCESS) return v.r;
      if (!v.gpu_id && access) return HSAKMT_STATUS.INVALID_NODE_UNIT;
      a.value = v.gpu_id;
    }
    st = HSAKMT_STATUS.SUCCESS;
    const args = { start_addr, size, op: K.KFD_IOCTL_SVM_OP_SET_ATTR, nattr, attrs: out };
    if ((await this.proc.ioctl(this.kfd_fd, K.AMDKFD_IOC_SVM_SIZED(nattr), args)) !== 0) st = HSAKMT_STATUS.ERROR;
    return st;
  }

  /**
   * hsaKmtSVMGetAttr(): access entries name a GPU node on input; on output locations and access
   * values come back as node ids (system memory 0, undefined INVALID_NODEID) and the access
   * entries' types say ACCESS, ACCESS_IN_PLACE or NO_ACCESS. Results are written into `attrs`.
   */
  async hsaKmtSVMGetAttr(start_addr: number, size: number, nattr: number, attrs: HSA_SVM_ATTRIBUTE[]): Promise<HSAKMT_STATUS> {
    const st = this.check_svm_range(start_addr, size);
    if (st !== HSAKMT_STATUS.SUCCESS) return st;
    const out: HSA_SVM_ATTRIBUTE[] = attrs.slice(0, nattr).map((a) => ({ type: a.type, value: a.value }));
    for (const a of out) {
      if (!is_access_attr(a.type)) continue;
      const v = this.validate_nodeid(a.value);
      if (v.r !== HSAKMT_STATUS.SUCCESS) return v.r;
      if (!v.gpu_id) return HSAKMT_STATUS.INVALID_NODE_UNIT;
      a.value = v.gpu_id;
    }
    const args = { start_addr, size, op: K.KFD_IOCTL_SVM_OP_GET_ATTR, nattr, attrs: out };
    if ((await this.proc.ioctl(this.kfd_fd, K.AMDKFD_IOC_SVM_SIZED(nattr), args)) !== 0) return HSAKMT_STATUS.ERROR;
    for (let i = 0; i < nattr; i++) {
      const a = args.attrs[i]!;
      attrs[i] = { type: a.type, value: a.value };
      if (!is_access_attr(a.type) && !is_location_attr(a.type)) continue;
      if (a.value === K.KFD_IOCTL_SVM_LOCATION_SYSMEM) attrs[i]!.value = 0;
      else if (a.value === K.KFD_IOCTL_SVM_LOCATION_UNDEFINED) attrs[i]!.value = INVALID_NODEID;
      else {
        const n = this.gpuid_to_nodeid(a.value);
        if (n.r !== HSAKMT_STATUS.SUCCESS) return n.r;
        attrs[i]!.value = n.node;
      }
    }
    return HSAKMT_STATUS.SUCCESS;
  }

  /** hsaKmtSetXNACKMode(): -EPERM (not switchable) is NOT_SUPPORTED, -EBUSY (queues) ERROR. */
  async hsaKmtSetXNACKMode(enable: number): Promise<HSAKMT_STATUS> {
    return (await this.set_get_xnack(enable)).r;
  }

  /** hsaKmtGetXNACKMode(): the same ioctl with -1. */
  async hsaKmtGetXNACKMode(out: { enable: number }): Promise<HSAKMT_STATUS> {
    const { r, enable } = await this.set_get_xnack(-1);
    if (r === HSAKMT_STATUS.SUCCESS) out.enable = enable;
    return r;
  }

  private async set_get_xnack(enable: number): Promise<{ r: HSAKMT_STATUS; enable: number }> {
    const st = this.check_open(5);
    if (st !== HSAKMT_STATUS.SUCCESS) return { r: st, enable };
    const args = { xnack_enabled: enable };
    const ret = await this.proc.ioctl(this.kfd_fd, K.AMDKFD_IOC_SET_XNACK_MODE, args);
    if (ret === -EPERM) return { r: HSAKMT_STATUS.NOT_SUPPORTED, enable };
    if (ret < 0) return { r: HSAKMT_STATUS.ERROR, enable };
    return { r: HSAKMT_STATUS.SUCCESS, enable: args.xnack_enabled };
  }

  // ---- memory the thunk and its callers use -----------------------------------------------

  /** Anonymous memory a fork does not copy (libhsakmt's own mappings are MADV_DONTFORK). */
  private async map_private(len: number, populate = false): Promise<number> {
    const addr = await this.proc.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0));
    if (addr >= 0) await this.proc.madvise(addr, len, MADV_DONTFORK);
    return addr;
  }

  /**
   * Anonymous memory registered as an SVM range the GPU node may access (system memory,
   * HOST_ACCESS|COHERENT, plus GPU_EXEC when `exec`; `flags` replaces the flags), faulted in
   * at once when `populate` (MAP_POPULATE), not inherited by fork. Stands in for
   * hsaKmtAllocMemory for the thunk's and the dispatch helper's own buffers: kemu's KFD has no
   * BO allocation ioctls. Test data should be mapped by the test and registered with
   * hsaKmtSVMSetAttr, as kfdtest's HsaSVMRange does.
   */
  async allocSvm(size: number, NodeId: number, opts: { exec?: boolean; flags?: number; populate?: boolean } = {}): Promise<number> {
    const len = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    const addr = await this.map_private(len, opts.populate);
    if (addr < 0 || this.isIommuV2Apu(NodeId)) return addr;
    const flags = (opts.flags ?? HSA_SVM_FLAG_HOST_ACCESS | HSA_SVM_FLAG_COHERENT) | (opts.exec ? HSA_SVM_FLAG_GPU_EXEC : 0);
    const st = await this.hsaKmtSVMSetAttr(addr, len, 4, [
      { type: K.KFD_IOCTL_SVM_ATTR_PREFERRED_LOC, value: 0 },
      { type: K.KFD_IOCTL_SVM_ATTR_PREFETCH_LOC, value: 0 },
      { type: K.KFD_IOCTL_SVM_ATTR_SET_FLAGS, value: flags },
      { type: K.KFD_IOCTL_SVM_ATTR_ACCESS, value: NodeId },
    ]);
    if (st !== HSAKMT_STATUS.SUCCESS) {
      await this.proc.munmap(addr, len);
      return -1;
    }
    return addr;
  }

  /**
   * libhsakmt's !is_dgpu case: a Kaveri or Carrizo APU (its device-id table) reaches the whole
   * process address space through the IOMMU (IOMMUv2, the process's PASID), so host memory
   * needs no registration with KFD.
   */
  isIommuV2Apu(NodeId: number): boolean {
    const n = this.nodes[NodeId];
    const id = n?.gpu_id ? (n.props.get("device_id") ?? 0) : 0;
    return (id >= 0x1304 && id <= 0x131d) || (id >= 0x9870 && id <= 0x9877);
  }

  /** Grants every GPU node ACCESS to [addr, addr+size) (used for the events page). */
  private async grant_all_gpus(addr: number, size: number): Promise<HSAKMT_STATUS> {
    for (const node of this.gpuNodes()) {
      if (this.isIommuV2Apu(node)) continue;
      const st = await this.hsaKmtSVMSetAttr(addr, size, 2, [
        { type: K.KFD_IOCTL_SVM_ATTR_SET_FLAGS, value: HSA_SVM_FLAG_HOST_ACCESS | HSA_SVM_FLAG_COHERENT },
        { type: K.KFD_IOCTL_SVM_ATTR_ACCESS, value: node },
      ]);
      if (st !== HSAKMT_STATUS.SUCCESS) return st;
    }
    return HSAKMT_STATUS.SUCCESS;
  }

  // ---- queues (queues.c) ------------------------------------------------------------------

  /**
   * hsaKmtCreateQueue(): a compute (PM4), AQL or SDMA user queue of `QueueSizeInBytes` at
   * `QueueAddress`. For AQL queues the caller's QueueRptrValue/QueueWptrValue name its index
   * words; for the others the thunk provides them and returns their addresses.
   */
  async hsaKmtCreateQueue(NodeId: number, Type: number, QueuePercentage: number, Priority: number, QueueAddress: number,
    QueueSizeInBytes: number, _Event: HsaEvent | null, QueueResource: HsaQueueResource): Promise<HSAKMT_STATUS> {
    const st = this.check_node(NodeId);
    if (st !== HSAKMT_STATUS.SUCCESS) return st;
    const gpu_id = this.nodes[NodeId]!.gpu_id;
    if (!gpu_id) return HSAKMT_STATUS.INVALID_NODE_UNIT;
    if (Priority < HSA_QUEUE_PRIORITY_MINIMUM || Priority > HSA_QUEUE_PRIORITY_MAXIMUM) return HSAKMT_STATUS.INVALID_PARAMETER;
    const queue_type = Type === HSA_QUEUE_COMPUTE ? K.KFD_IOC_QUEUE_TYPE_COMPUTE
      : Type === HSA_QUEUE_COMPUTE_AQL ? K.KFD_IOC_QUEUE_TYPE_COMPUTE_AQL
      : Type === HSA_QUEUE_SDMA ? K.KFD_IOC_QUEUE_TYPE_SDMA : -1;
    if (queue_type < 0) return HSAKMT_STATUS.INVALID_PARAMETER;
    const q: ThunkQueue = { node: NodeId, doorbell_offset: 0, own_ptrs: 0, ctx_save_restore: 0, ctx_save_restore_alloc: 0 };
    if (Type !== HSA_QUEUE_COMPUTE_AQL) {
      q.own_ptrs = await this.allocSvm(QUEUE_PTRS_SIZE, NodeId);
      if (q.own_ptrs < 0) return HSAKMT_STATUS.NO_MEMORY;
      QueueResource.QueueRptrValue = q.own_ptrs;
      QueueResource.QueueWptrValue = q.own_ptrs + 8;
    }
    const cwsr = Type === HSA_QUEUE_SDMA ? null : this.update_ctx_save_restore_size(NodeId);
    if (cwsr) {
      // The area plus the debugger's tail. The CP saves waves without retrying faults or waiting
      // for page requests, so the area is populated and stays GPU-mapped whatever the XNACK
      // mode (libhsakmt allocates it non-paged).
      q.ctx_save_restore_alloc = align_up(cwsr.ctx_save_restore_size + cwsr.debug_memory_size, PAGE_SIZE);
      q.ctx_save_restore = await this.allocSvm(q.ctx_save_restore_alloc, NodeId,
        { flags: HSA_SVM_FLAG_HOST_ACCESS | HSA_SVM_FLAG_COHERENT | HSA_SVM_FLAG_GPU_ALWAYS_MAPPED, populate: true });
      if (q.ctx_save_restore < 0) {
        await this.free_queue_memory(q);
        return HSAKMT_STATUS.NO_MEMORY;
      }
    }
    const args = {
      write_pointer_address: QueueResource.QueueWptrValue, read_pointer_address: QueueResource.QueueRptrValue,
      doorbell_offset: 0, ring_size: QueueSizeInBytes, gpu_id, queue_type, queue_percentage: QueuePercentage,
      queue_priority: PRIORITY_MAP[Priority - HSA_QUEUE_PRIORITY_MINIMUM]!, queue_id: 0, eop_buffer_address: 0,
      eop_buffer_size: 0, ctx_save_restore_address: q.ctx_save_restore,
      ctx_save_restore_size: cwsr?.ctx_save_restore_size ?? 0, ctl_stack_size: cwsr?.ctl_stack_size ?? 0,
      ring_base_address: QueueAddress,
    };
    if ((await this.proc.ioctl(this.kfd_fd, K.AMDKFD_IOC_CREATE_QUEUE, args)) !== 0) {
      await this.free_queue_memory(q);
      return HSAKMT_STATUS.ERROR;
    }
    q.doorbell_offset = args.doorbell_offset;
    this.queues.set(args.queue_id, q);
    QueueResource.QueueId = args.queue_id;
    QueueResource.QueueDoorBell = args.doorbell_offset;
    return HSAKMT_STATUS.SUCCESS;
  }

  /** hsaKmtDestroyQueue() */
  async hsaKmtDestroyQueue(QueueId: number): Promise<HSAKMT_STATUS> {
    if (this.open_count === 0) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
    const q = this.queues.get(QueueId);
    if (!q) return HSAKMT_STATUS.INVALID_HANDLE;
    if ((await this.proc.ioctl(this.kfd_fd, K.AMDKFD_IOC_DESTROY_QUEUE, { queue_id: QueueId, pad: 0 })) !== 0) return HSAKMT_STATUS.ERROR;
    this.queues.delete(QueueId);
    await this.free_queue_memory(q);
    return HSAKMT_STATUS.SUCCESS;
  }

  /**
   * hsaKmtUpdateQueue(): new percentage, priority and ring for a queue (AMDKFD_IOC_UPDATE_QUEUE).
   * A percentage of 0 makes the queue inactive — KFD preempts it, saving its waves with CWSR —
   * and a non-zero one loads it again. `Event` is unused, as in libhsakmt.
   */
  async hsaKmtUpdateQueue(QueueId: number, QueuePercentage: number, Priority: number, QueueAddress: number, QueueSize: number,
    _Event: HsaEvent | null): Promise<HSAKMT_STATUS> {
    if (this.open_count === 0) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
    if (Priority < HSA_QUEUE_PRIORITY_MINIMUM || Priority > HSA_QUEUE_PRIORITY_MAXIMUM) return HSAKMT_STATUS.INVALID_PARAMETER;
    if (!this.queues.has(QueueId)) return HSAKMT_STATUS.INVALID_PARAMETER;
    const args = {
      ring_base_address: QueueAddress, queue_id: QueueId, ring_size: QueueSize, queue_percentage: QueuePercentage,
      queue_priority: PRIORITY_MAP[Priority - HSA_QUEUE_PRIORITY_MINIMUM]!,
    };
    return (await this.proc.ioctl(this.kfd_fd, K.AMDKFD_IOC_UPDATE_QUEUE, args)) === 0 ? HSAKMT_STATUS.SUCCESS : HSAKMT_STATUS.ERROR;
  }

  /** The queue's thunk-owned memory: index words and the context save area. */
  private async free_queue_memory(q: ThunkQueue): Promise<void> {
    if (q.own_ptrs > 0) await this.proc.munmap(q.own_ptrs, QUEUE_PTRS_SIZE);
    if (q.ctx_save_restore > 0) await this.proc.munmap(q.ctx_save_restore, q.ctx_save_restore_alloc);
  }

  /**
   * update_ctx_save_restore_size(): room to save every wave the node can run — a control stack
   * (after the save-area header) of 8 bytes a wave (12 from Navi10), workgroup data of every CU —
   * and the debugger's 32 bytes a wave; null where the GPU has no CWSR.
   */
  private update_ctx_save_restore_size(NodeId: number): CtxSaveSizes | null {
    const node: Partial<HsaNodeProperties> = {};
    if (this.hsaKmtGetNodeProperties(NodeId, node) !== HSAKMT_STATUS.SUCCESS) return null;
    const e = node.EngineId!;
    const gfxv = e.Major * 10000 + e.Minor * 100 + e.Stepping;
    if (gfxv < GFX_VERSION_CARRIZO || !node.NumFComputeCores || !node.NumSIMDPerCU) return null;
    const cu_num = node.NumFComputeCores / node.NumSIMDPerCU;
    const navi = gfxv >= GFX_VERSION_NAVI10;
    const wave_num = navi ? cu_num * 32 : Math.min(cu_num * 40, (node.NumShaderBanks! / node.NumArrays!) * 512);
    let ctl_stack_size = align_up(CTX_SAVE_AREA_HEADER_SIZE + wave_num * (navi ? 12 : 8) + 8, PAGE_SIZE);
    // GFX10 hardware limits the control stack to 0x7000 bytes.
    if (e.Major === 10) ctl_stack_size = Math.min(ctl_stack_size, 0x7000);
    const wg_data_size = cu_num * (vgpr_size_per_cu(gfxv) + SGPR_SIZE_PER_CU + LDS_SIZE_PER_CU + HWREG_SIZE_PER_CU);
    return {
      ctl_stack_size, ctx_save_restore_size: ctl_stack_size + align_up(wg_data_size, PAGE_SIZE),
      debug_memory_size: align_up(wave_num * DEBUGGER_BYTES_PER_WAVE, DEBUGGER_BYTES_ALIGN),
    };
  }

  /**
   * The runtime's 64-bit store of the new write index to the queue's doorbell (see the file
   * comment): BAR2 of the node's GPU plus the doorbell offset KFD returned.
   */
  ringDoorbell(QueueId: number, value: number): HSAKMT_STATUS {
    const q = this.queues.get(QueueId);
    if (!q) return HSAKMT_STATUS.INVALID_HANDLE;
    const host = this.proc.machine.symbol(PCI_HOST);
    const devfn = this.nodes[q.node]!.props.get("location_id") ?? 0;
    const lo = host.config_read32(devfn, PCI_BAR2);
    const bar2 = (lo - (lo % 16)) + host.config_read32(devfn, PCI_BAR2 + 4) * 2 ** 32;
    const ok = host.mmio_write64(bar2 + q.doorbell_offset, value % 2 ** 32, Math.floor(value / 2 ** 32));
    return ok ? HSAKMT_STATUS.SUCCESS : HSAKMT_STATUS.ERROR;
  }

  // ---- events (events.c) ------------------------------------------------------------------

  /**
   * hsaKmtCreateEvent(): the first event hands KFD the events page (KFD_SIGNAL_EVENT_LIMIT
   * 8-byte slots the GPUs may write); a signal event's HWData2 is its slot's address, the
   * mailbox an amd_signal_t names.
   */
  async hsaKmtCreateEvent(EventDesc: HsaEventDescriptor, ManualReset: boolean, IsSignaled: boolean, out: { event: HsaEvent | null }): Promise<HSAKMT_STATUS> {
    // libhsakmt holds hsakmt_mutex here: two threads' first events must not both hand KFD a page.
    const prev = this.event_mutex;
    let release = () => {};
    this.event_mutex = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await this.create_event_locked(EventDesc, ManualReset, IsSignaled, out);
    } finally {
      release();
    }
  }

  private async create_event_locked(EventDesc: HsaEventDescriptor, ManualReset: boolean, IsSignaled: boolean,
    out: { event: HsaEvent | null }): Promise<HSAKMT_STATUS> {
    if (this.open_count === 0) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
    out.event = null;
    if (EventDesc.EventType >= HSA_EVENTTYPE_MAXID) return HSAKMT_STATUS.INVALID_PARAMETER;
    const args = { event_page_offset: 0, event_trigger_data: 0, event_type: EventDesc.EventType, auto_reset: ManualReset ? 0 : 1,
      node_id: EventDesc.NodeId, event_id: 0, event_slot_index: 0 };
    let new_page = 0;
    if (!this.events_page) {
      new_page = await this.map_private(EVENTS_PAGE_SIZE);
      if (new_page < 0 || (await this.grant_all_gpus(new_page, EVENTS_PAGE_SIZE)) !== HSAKMT_STATUS.SUCCESS) return HSAKMT_STATUS.ERROR;
      args.event_page_offset = new_page;
    }
    if ((await this.proc.ioctl(this.kfd_fd, K.AMDKFD_IOC_CREATE_EVENT, args)) !== 0) {
      if (new_page) await this.proc.munmap(new_page, EVENTS_PAGE_SIZE);
      return HSAKMT_STATUS.ERROR;
    }
    if (new_page) this.events_page = new_page;
    // As libhsakmt: a slot address whenever KFD answered with a page offset and a valid slot.
    const signal = args.event_page_offset > 0 && args.event_slot_index < K.KFD_SIGNAL_EVENT_LIMIT;
    const e: HsaEvent = {
      EventId: args.event_id,
      EventData: {
        EventType: EventDesc.EventType, EventData: EventDesc.SyncVar ? { SyncVar: { ...EventDesc.SyncVar } } : {},
        HWData1: args.event_id, HWData2: signal ? this.events_page + args.event_slot_index * 8 : 0, HWData3: args.event_trigger_data,
      },
    };
    if (IsSignaled && !is_system_event(EventDesc.EventType)) {
      await this.proc.ioctl(this.kfd_fd, K.AMDKFD_IOC_SET_EVENT, { event_id: args.event_id, pad: 0 });
    }
    out.event = e;
    return HSAKMT_STATUS.SUCCESS;
  }

  async hsaKmtDestroyEvent(Event: HsaEvent | null): Promise<HSAKMT_STATUS> {
    if (this.open_count === 0) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
    if (!Event) return HSAKMT_STATUS.INVALID_HANDLE;
    const r = await this.proc.ioctl(this.kfd_fd, K.AMDKFD_IOC_DESTROY_EVENT, { event_id: Event.EventId, pad: 0 });
    return r === 0 ? HSAKMT_STATUS.SUCCESS : HSAKMT_STATUS.ERROR;
  }

  async hsaKmtSetEvent(Event: HsaEvent): Promise<HSAKMT_STATUS> {
    if (this.open_count === 0) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
    if (is_system_event(Event.EventData.EventType)) return HSAKMT_STATUS.ERROR;
    const r = await this.proc.ioctl(this.kfd_fd, K.AMDKFD_IOC_SET_EVENT, { event_id: Event.EventId, pad: 0 });
    return r === 0 ? HSAKMT_STATUS.SUCCESS : HSAKMT_STATUS.ERROR;
  }

  async hsaKmtResetEvent(Event: HsaEvent): Promise<HSAKMT_STATUS> {
    if (this.open_count === 0) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
    if (is_system_event(Event.EventData.EventType)) return HSAKMT_STATUS.ERROR;
    const r = await this.proc.ioctl(this.kfd_fd, K.AMDKFD_IOC_RESET_EVENT, { event_id: Event.EventId, pad: 0 });
    return r === 0 ? HSAKMT_STATUS.SUCCESS : HSAKMT_STATUS.ERROR;
  }

  hsaKmtWaitOnEvent(Event: HsaEvent, Milliseconds: number): Promise<HSAKMT_STATUS> {
    return this.hsaKmtWaitOnMultipleEvents([Event], 1, true, Milliseconds);
  }

  /**
   * hsaKmtWaitOnMultipleEvents(): one WAIT_EVENTS over a kfd_event_data array in the process's
   * memory; a memory event that fired gets its MemoryAccessFault filled in from the kernel's
   * memory_exception_data (address, node, failure bits).
   */
  async hsaKmtWaitOnMultipleEvents(Events: HsaEvent[], NumEvents: number, WaitOnAll: boolean, Milliseconds: number): Promise<HSAKMT_STATUS> {
    if (this.open_count === 0) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
    if (!Events.length || NumEvents > Events.length) return HSAKMT_STATUS.INVALID_PARAMETER;
    const sz = K.kfd_event_data.size;
    const buf = await this.take_wait_buffer(NumEvents * sz);
    if (buf < 0) return HSAKMT_STATUS.NO_MEMORY;
    try {
      return await this.wait_events(buf, Events, NumEvents, WaitOnAll, Milliseconds);
    } finally {
      await this.give_wait_buffer(buf, NumEvents * sz);
    }
  }

  private async wait_events(buf: number, Events: HsaEvent[], NumEvents: number, WaitOnAll: boolean, Milliseconds: number): Promise<HSAKMT_STATUS> {
    const sz = K.kfd_event_data.size;
    const bytes = new Uint8Array(NumEvents * sz);
    for (let i = 0; i < NumEvents; i++) {
      bytes.set(layout_encode(K.kfd_event_data, {
        memory_exception_data: { failure: { NotPresent: 0, ReadOnly: 0, NoExecute: 0, imprecise: 0 }, va: 0, gpu_id: 0, ErrorType: 0 },
        kfd_event_data_ext: 0, event_id: Events[i]!.EventId, pad: 0,
      }), i * sz);
    }
    await this.proc.write(buf, bytes);
    const args = { events_ptr: buf, num_events: NumEvents, wait_for_all: WaitOnAll ? 1 : 0, timeout: Milliseconds, wait_result: 0 };
    if ((await this.proc.ioctl(this.kfd_fd, K.AMDKFD_IOC_WAIT_EVENTS, args)) !== 0) return HSAKMT_STATUS.ERROR;
    if (args.wait_result === K.KFD_IOC_WAIT_RESULT_TIMEOUT) return HSAKMT_STATUS.WAIT_TIMEOUT;
    const back = await this.proc.read(buf, NumEvents * sz);
    for (let i = 0; i < NumEvents; i++) {
      const ev = Events[i]!;
      const d = layout_decode(K.kfd_event_data, back.subarray(i * sz, (i + 1) * sz)).memory_exception_data;
      if (ev.EventData.EventType !== HSA_EVENTTYPE_MEMORY || !d.gpu_id) continue;
      const n = this.gpuid_to_nodeid(d.gpu_id);
      if (n.r !== HSAKMT_STATUS.SUCCESS) return n.r;
      ev.EventData.EventData.MemoryAccessFault = {
        NodeId: n.node, VirtualAddress: d.va,
        Failure: { NotPresent: d.failure.NotPresent ? 1 : 0, ReadOnly: d.failure.ReadOnly ? 1 : 0, NoExecute: d.failure.NoExecute ? 1 : 0,
          GpuAccess: 0, ECC: d.ErrorType === 1 ? 1 : 0, Imprecise: d.failure.imprecise ? 1 : 0, ErrorType: d.ErrorType },
        Flags: HSA_EVENTID_MEMORY_FATAL_PROCESS,
      };
    }
    return HSAKMT_STATUS.SUCCESS;
  }

  private take_wait_buffer(size: number): Promise<number> {
    if (size <= PAGE_SIZE && this.wait_bufs.length) return Promise.resolve(this.wait_bufs.pop()!);
    return this.map_private(Math.ceil(size / PAGE_SIZE) * PAGE_SIZE);
  }

  private async give_wait_buffer(addr: number, size: number): Promise<void> {
    if (size <= PAGE_SIZE) this.wait_bufs.push(addr);
    else await this.proc.munmap(addr, Math.ceil(size / PAGE_SIZE) * PAGE_SIZE);
  }

  // ---- SMI (smi_events) -------------------------------------------------------------------

  /** hsaKmtOpenSMI(): an SMI event file for the node's GPU (write a mask, read event lines). */
  async hsaKmtOpenSMI(NodeId: number, out: { fd: number }): Promise<HSAKMT_STATUS> {
    if (this.open_count === 0) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
    const v = this.validate_nodeid(NodeId);
    if (v.r !== HSAKMT_STATUS.SUCCESS) return v.r;
    const args = { gpuid: v.gpu_id, anon_fd: 0 };
    if ((await this.proc.ioctl(this.kfd_fd, K.AMDKFD_IOC_SMI_EVENTS, args)) !== 0) return HSAKMT_STATUS.ERROR;
    out.fd = args.anon_fd;
    return HSAKMT_STATUS.SUCCESS;
  }
}

function is_access_attr(type: number): boolean {
  return type === K.KFD_IOCTL_SVM_ATTR_ACCESS || type === K.KFD_IOCTL_SVM_ATTR_ACCESS_IN_PLACE || type === K.KFD_IOCTL_SVM_ATTR_NO_ACCESS;
}

function is_location_attr(type: number): boolean {
  return type === K.KFD_IOCTL_SVM_ATTR_PREFERRED_LOC || type === K.KFD_IOCTL_SVM_ATTR_PREFETCH_LOC;
}

/** IsSystemEventType(): events the runtime cannot set or reset itself (debug events act as signals). */
function is_system_event(type: number): boolean {
  return type !== HSA_EVENTTYPE_SIGNAL && type !== HSA_EVENTTYPE_DEBUG_EVENT;
}

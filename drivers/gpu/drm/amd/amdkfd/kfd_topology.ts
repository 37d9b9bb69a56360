// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_topology.c and kfd_topology.h (Linux 6.8), with the
// virtual CRAT of kfd_crat.c reduced to what kemu's machines have: one CPU node (node 0, all
// system memory) and one node per GPU, linked by PCIe. The topology is what the runtime reads
// from sysfs at /sys/class/kfd/kfd/topology: generation_id, system_properties, and per node
// nodes/N/{gpu_id,name,properties} with mem_banks/, caches/, io_links/, p2p_links/, perf/.

import { down_read, down_write, up_read, up_write } from "../../../../../kernel/locking/rwsem.ts";
import { kobject, type kobj_attribute } from "../../../../../include/linux/sysfs.ts";
import { kobject_create_and_add, kobject_del, kobject_init_and_add, kobject_put } from "../../../../../lib/kobject.ts";
import { sysfs_create_file } from "../../../../../fs/sysfs/file.ts";
import { ENOMEM } from "../../../../../include/uapi/asm-generic/errno.ts";
import { NODE_DATA } from "../../../../../include/linux/mmzone.ts";
import { KFD_GPU_ID_HASH_WIDTH, type kfd_node } from "./kfd_priv.ts";
import type { amdkfd } from "./kfd_module.ts";
import { KFD_IS_SVM_API_SUPPORTED } from "./kfd_svm.ts";
import { kfd_get_num_sdma_engines } from "./kfd_device_queue_manager.ts";

const PAGE_SIZE = 4096;

// HSA_CAP_* (kfd_topology.h)
export const HSA_CAP_HOT_PLUGGABLE = 0x00000001;
export const HSA_CAP_ATS_PRESENT = 0x00000002;
export const HSA_CAP_SHARED_WITH_GRAPHICS = 0x00000004;
export const HSA_CAP_QUEUE_SIZE_POW2 = 0x00000008;
export const HSA_CAP_QUEUE_SIZE_32BIT = 0x00000010;
export const HSA_CAP_QUEUE_IDLE_EVENT = 0x00000020;
export const HSA_CAP_VA_LIMIT = 0x00000040;
export const HSA_CAP_WATCH_POINTS_SUPPORTED = 0x00000080;
export const HSA_CAP_DOORBELL_TYPE_TOTALBITS_SHIFT = 12;
export const HSA_CAP_DOORBELL_TYPE_2_0 = 0x2;
export const HSA_CAP_AQL_QUEUE_DOUBLE_MAP = 0x00004000;
export const HSA_CAP_SVMAPI_SUPPORTED = 0x08000000;
export const HSA_CAP_FLAGS_COHERENTHOSTACCESS = 0x10000000;

// Memory heap types (HSA_MEM_HEAP_TYPE_*) and IO link types.
export const HSA_MEM_HEAP_TYPE_SYSTEM = 0;
export const HSA_MEM_HEAP_TYPE_FB_PUBLIC = 1;
export const HSA_MEM_HEAP_TYPE_FB_PRIVATE = 2;
export const HSA_IOLINKTYPE_PCIEXPRESS = 2;

/** struct kfd_node_properties: the values `properties` prints, in its order. */
export interface kfd_node_properties {
  cpu_cores_count: number;
  simd_count: number;
  mem_banks_count: number;
  caches_count: number;
  io_links_count: number;
  p2p_links_count: number;
  cpu_core_id_base: number;
  simd_id_base: number;
  max_waves_per_simd: number;
  lds_size_in_kb: number;
  gds_size_in_kb: number;
  num_gws: number;
  wave_front_size: number;
  array_count: number;
  simd_arrays_per_engine: number;
  cu_per_simd_array: number;
  simd_per_cu: number;
  max_slots_scratch_cu: number;
  gfx_target_version: number;
  vendor_id: number;
  device_id: number;
  location_id: number;
  domain: number;
  drm_render_minor: number;
  hive_id: number;
  num_sdma_engines: number;
  num_sdma_xgmi_engines: number;
  num_sdma_queues_per_engine: number;
  num_cp_queues: number;
  max_engine_clk_fcompute: number;
  local_mem_size: number;
  fw_version: number;
  capability: number;
  debug_prop: number;
  sdma_fw_version: number;
  unique_id: number;
  num_xcc: number;
  max_engine_clk_ccompute: number;
  name: string;
}

export interface kfd_mem_properties {
  heap_type: number;
  size_in_bytes: number;
  flags: number;
  width: number;
  mem_clk_max: number;
}

export interface kfd_iolink_properties {
  iolink_type: number;
  version_major: number;
  version_minor: number;
  node_from: number;
  node_to: number;
  weight: number;
  min_latency: number;
  max_latency: number;
  min_bandwidth: number;
  max_bandwidth: number;
  rec_transfer_size: number;
  flags: number;
}

/** struct kfd_topology_device: one node. */
export class kfd_topology_device {
  gpu_id = 0;
  gpu: kfd_node | null = null;
  proximity_domain = 0;
  node_props!: kfd_node_properties;
  readonly mem_props: kfd_mem_properties[] = [];
  readonly io_link_props: kfd_iolink_properties[] = [];
  kobj_node: kobject | null = null;
  readonly kobjs: kobject[] = [];
}

/** struct kfd_system_properties: the topology root's sysfs state. */
export interface kfd_system_properties {
  num_devices: number;
  generation_count: number;
  platform_oem: number;
  platform_id: number;
  platform_rev: number;
  kobj_topology: kobject | null;
  kobj_nodes: kobject | null;
}

// ---- sysfs ---------------------------------------------------------------------------------

function props_text(entries: Array<[string, number]>): string {
  return entries.map(([k, v]) => `${k} ${v}\n`).join("");
}

/** node_show(): `properties` of a node, in the kernel's order. */
function node_properties_text(dev: kfd_topology_device): string {
  const p = dev.node_props;
  const gpu = dev.gpu !== null;
  const e: Array<[string, number]> = [
    ["cpu_cores_count", p.cpu_cores_count], ["simd_count", gpu ? p.simd_count : 0], ["mem_banks_count", p.mem_banks_count],
    ["caches_count", p.caches_count], ["io_links_count", p.io_links_count], ["p2p_links_count", p.p2p_links_count],
    ["cpu_core_id_base", p.cpu_core_id_base], ["simd_id_base", p.simd_id_base], ["max_waves_per_simd", p.max_waves_per_simd],
    ["lds_size_in_kb", p.lds_size_in_kb], ["gds_size_in_kb", p.gds_size_in_kb], ["num_gws", p.num_gws],
    ["wave_front_size", p.wave_front_size], ["array_count", gpu ? p.array_count : 0], ["simd_arrays_per_engine", p.simd_arrays_per_engine],
    ["cu_per_simd_array", p.cu_per_simd_array], ["simd_per_cu", p.simd_per_cu], ["max_slots_scratch_cu", p.max_slots_scratch_cu],
    ["gfx_target_version", p.gfx_target_version], ["vendor_id", p.vendor_id], ["device_id", p.device_id],
    ["location_id", p.location_id], ["domain", p.domain], ["drm_render_minor", p.drm_render_minor], ["hive_id", p.hive_id],
    ["num_sdma_engines", p.num_sdma_engines], ["num_sdma_xgmi_engines", p.num_sdma_xgmi_engines],
    ["num_sdma_queues_per_engine", p.num_sdma_queues_per_engine], ["num_cp_queues", p.num_cp_queues],
  ];
  if (gpu) {
    e.push(["max_engine_clk_fcompute", p.max_engine_clk_fcompute], ["local_mem_size", 0], ["fw_version", p.fw_version],
      ["capability", p.capability], ["debug_prop", p.debug_prop], ["sdma_fw_version", p.sdma_fw_version],
      ["unique_id", p.unique_id], ["num_xcc", p.num_xcc]);
  }
  e.push(["max_engine_clk_ccompute", p.max_engine_clk_ccompute]);
  return props_text(e);
}

function add_file(kobj: kobject, name: string, show: () => string): number {
  const attr: kobj_attribute = { name, mode: 0o444, show: () => show() };
  return sysfs_create_file(kobj, attr);
}

function child(dev: kfd_topology_device, name: string, parent: kobject): kobject | null {
  const k = kobject_create_and_add(name, parent);
  if (k) dev.kobjs.push(k);
  return k;
}

/** kfd_build_sysfs_node_entry(): nodes/<id>/ and its subdirectories. */
function kfd_build_sysfs_node_entry(dev: kfd_topology_device, id: number, nodes: kobject): number {
  const kobj = new kobject();
  if (kobject_init_and_add(kobj, null, nodes, `${id}`)) {
    kobject_put(kobj);
    return -ENOMEM;
  }
  dev.kobj_node = kobj;
  const mem = child(dev, "mem_banks", kobj);
  const caches = child(dev, "caches", kobj);
  const links = child(dev, "io_links", kobj);
  const p2p = child(dev, "p2p_links", kobj);
  const perf = child(dev, "perf", kobj);
  if (!mem || !caches || !links || !p2p || !perf) return -ENOMEM;
  add_file(kobj, "gpu_id", () => `${dev.gpu_id}\n`);
  add_file(kobj, "name", () => `${dev.node_props.name}\n`);
  add_file(kobj, "properties", () => node_properties_text(dev));
  dev.mem_props.forEach((m, i) => {
    const k = child(dev, `${i}`, mem);
    if (k) add_file(k, "properties", () => props_text([["heap_type", m.heap_type], ["size_in_bytes", m.size_in_bytes], ["flags", m.flags], ["width", m.width], ["mem_clk_max", m.mem_clk_max]]));
  });
  dev.io_link_props.forEach((l, i) => {
    const k = child(dev, `${i}`, links);
    if (k) {
      add_file(k, "properties", () => props_text([["type", l.iolink_type], ["version_major", l.version_major], ["version_minor", l.version_minor],
        ["node_from", l.node_from], ["node_to", l.node_to], ["weight", l.weight], ["min_latency", l.min_latency],
        ["max_latency", l.max_latency], ["min_bandwidth", l.min_bandwidth], ["max_bandwidth", l.max_bandwidth],
        ["recommended_transfer_size", l.rec_transfer_size], ["flags", l.flags]]));
    }
  });
  return 0;
}

function kfd_remove_sysfs_node_entry(dev: kfd_topology_device): void {
  for (const k of dev.kobjs.splice(0).reverse()) {
    kobject_del(k);
    kobject_put(k);
  }
  if (dev.kobj_node) {
    kobject_del(dev.kobj_node);
    kobject_put(dev.kobj_node);
    dev.kobj_node = null;
  }
}

/**
 * kfd_topology_update_sysfs(): (re)build topology/ — nodes are numbered by list position, so
 * every node directory is rebuilt when the list changes, as the kernel does.
 */
function kfd_topology_update_sysfs(kfd: amdkfd): number {
  const sp = kfd.sys_props!;
  if (!sp.kobj_topology) {
    const topo = new kobject();
    if (kobject_init_and_add(topo, null, kfd.kfd_device!.kobj, "topology")) {
      kobject_put(topo);
      return -ENOMEM;
    }
    sp.kobj_topology = topo;
    sp.kobj_nodes = kobject_create_and_add("nodes", topo);
    add_file(topo, "generation_id", () => `${sp.generation_count}\n`);
    add_file(topo, "system_properties", () => props_text([["platform_oem", sp.platform_oem], ["platform_id", sp.platform_id], ["platform_rev", sp.platform_rev]]));
  }
  for (const dev of kfd.topology_device_list) kfd_remove_sysfs_node_entry(dev);
  let r = 0;
  kfd.topology_device_list.forEach((dev, i) => {
    if (!r) r = kfd_build_sysfs_node_entry(dev, i, sp.kobj_nodes!);
  });
  return r;
}

function kfd_topology_release_sysfs(kfd: amdkfd): void {
  const sp = kfd.sys_props;
  if (!sp?.kobj_topology) return;
  for (const dev of kfd.topology_device_list) kfd_remove_sysfs_node_entry(dev);
  for (const k of [sp.kobj_nodes, sp.kobj_topology]) {
    if (!k) continue;
    kobject_del(k);
    kobject_put(k);
  }
  sp.kobj_nodes = sp.kobj_topology = null;
}

// ---- nodes -----------------------------------------------------------------------------------

function empty_props(name: string): kfd_node_properties {
  return {
    cpu_cores_count: 0, simd_count: 0, mem_banks_count: 0, caches_count: 0, io_links_count: 0, p2p_links_count: 0,
    cpu_core_id_base: 0, simd_id_base: 0, max_waves_per_simd: 0, lds_size_in_kb: 0, gds_size_in_kb: 0, num_gws: 0,
    wave_front_size: 0, array_count: 0, simd_arrays_per_engine: 0, cu_per_simd_array: 0, simd_per_cu: 0,
    max_slots_scratch_cu: 0, gfx_target_version: 0, vendor_id: 0, device_id: 0, location_id: 0, domain: 0,
    drm_render_minor: 0, hive_id: 0, num_sdma_engines: 0, num_sdma_xgmi_engines: 0, num_sdma_queues_per_engine: 0,
    num_cp_queues: 0, max_engine_clk_fcompute: 0, local_mem_size: 0, fw_version: 0, capability: 0, debug_prop: 0,
    sdma_fw_version: 0, unique_id: 0, num_xcc: 0, max_engine_clk_ccompute: 0, name,
  };
}

/** The CPU node of the virtual CRAT (kfd_create_vcrat_image_cpu): one core, all of RAM. */
function kfd_create_cpu_node(kfd: amdkfd): kfd_topology_device {
  const dev = new kfd_topology_device();
  dev.node_props = empty_props("");
  dev.node_props.cpu_cores_count = 1;
  dev.node_props.mem_banks_count = 1;
  dev.node_props.max_engine_clk_ccompute = 3000;
  dev.mem_props.push({ heap_type: HSA_MEM_HEAP_TYPE_SYSTEM, size_in_bytes: NODE_DATA(kfd.k).page_alloc.totalram_pages() * PAGE_SIZE, flags: 0, width: 64, mem_clk_max: 3200 });
  return dev;
}

/** kfd_topology_init(): the topology with its CPU node, and its sysfs tree. */
export async function kfd_topology_init(kfd: amdkfd): Promise<number> {
  kfd.sys_props = { num_devices: 0, generation_count: 0, platform_oem: 0, platform_id: 0, platform_rev: 0, kobj_topology: null, kobj_nodes: null };
  await down_write(kfd.topology_lock);
  kfd.topology_device_list.push(kfd_create_cpu_node(kfd));
  kfd.sys_props.num_devices = 1;
  kfd.sys_props.generation_count++;
  const r = kfd.kfd_device ? kfd_topology_update_sysfs(kfd) : 0;
  up_write(kfd.topology_lock);
  return r;
}

export async function kfd_topology_shutdown(kfd: amdkfd): Promise<void> {
  await down_write(kfd.topology_lock);
  kfd_topology_release_sysfs(kfd);
  kfd.topology_device_list.length = 0;
  up_write(kfd.topology_lock);
}

/** crc16() of lib/crc16.c: CRC-16 (polynomial 0x8005, reflected) over bytes. */
function crc16(crc: number, bytes: Uint8Array): number {
  for (const b of bytes) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc & 0xffff;
}

/** kfd_generate_gpu_id(): a 16-bit hash of the device's identity, made unique. */
function kfd_generate_gpu_id(kfd: amdkfd, gpu: kfd_node): number {
  const pdev = gpu.adev.pdev;
  const mem = gpu.adev.gmc.real_vram_size;
  const buf = new Uint32Array([pdev.devfn, pdev.subsystem_vendor + pdev.subsystem_device * 65536, 0, pdev.device, 0,
    mem % 2 ** 32, Math.floor(mem / 2 ** 32), 1 * 65536]);
  let gpu_id = crc16(0, new Uint8Array(buf.buffer)) % 2 ** KFD_GPU_ID_HASH_WIDTH;
  for (;;) {
    if (!gpu_id) gpu_id = 1;
    if (!kfd.topology_device_list.some((d) => d.gpu && d.gpu_id === gpu_id)) return gpu_id;
    gpu_id = (gpu_id + 1) % 2 ** KFD_GPU_ID_HASH_WIDTH;
  }
}

/** gfx_target_version (kfd_device.c's table): major*10000 + minor*100 + stepping. */
function gfx_target_version(gpu: kfd_node): number {
  const [a, b, c] = gpu.adev.ip_versions.gc;
  // GC 9.4.2 (gfx90a) and 10.1.10 (gfx1010) name their stepping differently from the IP rev.
  if (a === 9 && b === 4 && c === 2) return 90010;
  if (a === 10 && b === 1) return 100100;
  return a * 10000 + b * 100 + c;
}

/** The GPU's node properties (kfd_topology_add_device + kfd_fill_gpu_* of kfd_crat.c). */
function kfd_fill_gpu_props(dev: kfd_topology_device, gpu: kfd_node): void {
  const adev = gpu.adev;
  const p = empty_props(adev.asic_name);
  const cus = adev.gfx.cu_active_number;
  const mec = adev.gfx.mec;
  p.simd_per_cu = 4;
  p.simd_count = cus * p.simd_per_cu;
  p.max_waves_per_simd = 8;
  p.lds_size_in_kb = 64;
  p.wave_front_size = 64;
  p.array_count = 1;
  p.simd_arrays_per_engine = 1;
  p.cu_per_simd_array = cus;
  p.max_slots_scratch_cu = 32;
  p.gfx_target_version = gfx_target_version(gpu);
  p.vendor_id = adev.pdev.vendor;
  p.device_id = adev.pdev.device;
  p.location_id = adev.pdev.devfn;
  p.drm_render_minor = 128 + adev.instance;
  // Every SDMA engine offers KFD its RLC queues (kemu has no XGMI SDMA engines).
  p.num_sdma_engines = kfd_get_num_sdma_engines(gpu);
  p.num_sdma_xgmi_engines = 0;
  p.num_sdma_queues_per_engine = gpu.kfd.device_info.num_sdma_queues_per_engine - gpu.kfd.device_info.num_reserved_sdma_queues_per_engine;
  p.num_cp_queues = mec.num_pipe_per_mec * mec.num_queue_per_pipe;
  p.max_engine_clk_fcompute = 1700;
  p.max_engine_clk_ccompute = 3000;
  p.fw_version = 1;
  p.num_xcc = 1;
  p.unique_id = gpu.id;
  p.mem_banks_count = 1;
  p.io_links_count = 1;
  p.capability = HSA_CAP_QUEUE_SIZE_POW2 | HSA_CAP_QUEUE_SIZE_32BIT | HSA_CAP_AQL_QUEUE_DOUBLE_MAP |
    (HSA_CAP_DOORBELL_TYPE_2_0 * 2 ** HSA_CAP_DOORBELL_TYPE_TOTALBITS_SHIFT) |
    (KFD_IS_SVM_API_SUPPORTED(adev) ? HSA_CAP_SVMAPI_SUPPORTED : 0);
  dev.node_props = p;
  const large_bar = adev.gmc.visible_vram_size >= adev.gmc.real_vram_size;
  dev.mem_props.push({ heap_type: large_bar ? HSA_MEM_HEAP_TYPE_FB_PUBLIC : HSA_MEM_HEAP_TYPE_FB_PRIVATE, size_in_bytes: adev.gmc.real_vram_size, flags: 0, width: 4096, mem_clk_max: 1600 });
  dev.io_link_props.push({ iolink_type: HSA_IOLINKTYPE_PCIEXPRESS, version_major: 4, version_minor: 0, node_from: 0, node_to: 0, weight: 20,
    min_latency: 0, max_latency: 0, min_bandwidth: 0, max_bandwidth: 0, rec_transfer_size: 0, flags: 0 });
}

/** kfd_topology_add_device(): a node for `gpu`, its gpu_id, a new sysfs tree generation. */
export async function kfd_topology_add_device(gpu: kfd_node): Promise<number> {
  const kfd = gpu.kfd.amdkfd;
  await down_write(kfd.topology_lock);
  const dev = new kfd_topology_device();
  dev.gpu = gpu;
  gpu.id = kfd_generate_gpu_id(kfd, gpu);
  dev.gpu_id = gpu.id;
  dev.proximity_domain = kfd.topology_device_list.length;
  kfd_fill_gpu_props(dev, gpu);
  dev.io_link_props[0]!.node_from = dev.proximity_domain;
  kfd.topology_device_list.push(dev);
  kfd.sys_props!.num_devices++;
  kfd.sys_props!.generation_count++;
  const r = kfd_topology_update_sysfs(kfd);
  up_write(kfd.topology_lock);
  return r;
}

/** kfd_topology_remove_device(): the node goes; the others are renumbered. */
export async function kfd_topology_remove_device(gpu: kfd_node): Promise<void> {
  const kfd = gpu.kfd.amdkfd;
  await down_write(kfd.topology_lock);
  const i = kfd.topology_device_list.findIndex((d) => d.gpu === gpu);
  if (i >= 0) {
    kfd_remove_sysfs_node_entry(kfd.topology_device_list[i]!);
    kfd.topology_device_list.splice(i, 1);
    kfd.sys_props!.num_devices--;
    kfd.sys_props!.generation_count++;
    kfd_topology_update_sysfs(kfd);
  }
  up_write(kfd.topology_lock);
}

/** kfd_topology_enum_kfd_devices(): the idx-th node's device (null dev for a CPU), or null past the end. */
export function kfd_topology_enum_kfd_devices(kfd: amdkfd, idx: number): { dev: kfd_node | null } | null {
  const d = kfd.topology_device_list[idx];
  return d ? { dev: d.gpu } : null;
}

/** kfd_device_by_id(): the node with this gpu_id. */
export async function kfd_device_by_id(kfd: amdkfd, gpu_id: number): Promise<kfd_node | null> {
  await down_read(kfd.topology_lock);
  const d = kfd.topology_device_list.find((t) => t.gpu && t.gpu_id === gpu_id) ?? null;
  up_read(kfd.topology_lock);
  return d?.gpu ?? null;
}

/** kfd_topology_device_by_id() (topology_lock held by the caller). */
export function kfd_topology_device_by_id(kfd: amdkfd, gpu_id: number): kfd_topology_device | null {
  return kfd.topology_device_list.find((t) => t.gpu_id === gpu_id) ?? null;
}

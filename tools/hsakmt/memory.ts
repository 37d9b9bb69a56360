// libhsakmt's KFD buffer-object calls (memory.c / fmm.c): hsaKmtAllocMemory, hsaKmtFreeMemory,
// hsaKmtMapMemoryToGPU, hsaKmtUnmapMemoryToGPU. As on a dGPU, the thunk reserves the CPU VA
// range itself (an inaccessible anonymous mapping) and uses the same address as the BO's GPU VA,
// so SVM ranges and BOs never collide by accident. hsaKmtRegisterMemory/hsaKmtDeregisterMemory
// take the SVM path newer libhsakmt uses when KFD has the SVM API (no userptr BO).

import type { HsaKmt } from "./hsakmt.ts";
import {
  HSAKMT_STATUS, HSA_SVM_ATTR_ACCESS_IN_PLACE, HSA_SVM_ATTR_NO_ACCESS, HSA_SVM_ATTR_SET_FLAGS, HSA_SVM_FLAG_COHERENT,
  HSA_SVM_FLAG_HOST_ACCESS,
} from "./hsakmttypes.ts";
import * as K from "../../include/uapi/linux/kfd_ioctl.ts";
import { MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE } from "../../include/uapi/asm-generic/mman.ts";

const PAGE = 4096;

/** HsaMemFlags, reduced to what the KFD BO path looks at. */
export interface HsaMemFlags {
  /** Host (GTT) memory instead of the node's VRAM. */
  HostAccess?: boolean;
  NonPaged?: boolean;
  ReadOnly?: boolean;
  ExecuteAccess?: boolean;
  /** VRAM the CPU may see through the BAR (KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC). */
  Public?: boolean;
}

interface BoRecord {
  handle: number;
  size: number;
  gpu_id: number;
}
const bos = new WeakMap<HsaKmt, Map<number, BoRecord>>();

function records(kmt: HsaKmt): Map<number, BoRecord> {
  let m = bos.get(kmt);
  if (!m) bos.set(kmt, (m = new Map()));
  return m;
}

function gpu_id_of(kmt: HsaKmt, node: number): number {
  const props: { KFDGpuID?: number } = {};
  return kmt.hsaKmtGetNodeProperties(node, props) === HSAKMT_STATUS.SUCCESS ? props.KFDGpuID ?? 0 : 0;
}

/** The BO handle behind a thunk allocation (tests and peer-direct users need it). */
export function hsaKmtBoHandle(kmt: HsaKmt, addr: number): number | null {
  return records(kmt).get(addr)?.handle ?? null;
}

/** hsaKmtAllocMemory(): a VRAM (or, with HostAccess, GTT) BO of `size` bytes on `node`. */
export async function hsaKmtAllocMemory(kmt: HsaKmt, node: number, size: number, flags: HsaMemFlags, out: { addr: number }): Promise<HSAKMT_STATUS> {
  if (kmt.fd < 0) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
  if (!size || size % PAGE) return HSAKMT_STATUS.INVALID_PARAMETER;
  const gpu_id = gpu_id_of(kmt, node);
  if (!gpu_id) return HSAKMT_STATUS.INVALID_NODE_UNIT;
  const va = await kmt.proc.mmap(0, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
  if (va < 0) return HSAKMT_STATUS.NO_MEMORY;
  let kflags = flags.HostAccess ? K.KFD_IOC_ALLOC_MEM_FLAGS_GTT : K.KFD_IOC_ALLOC_MEM_FLAGS_VRAM;
  if (!flags.ReadOnly) kflags |= K.KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE;
  if (flags.ExecuteAccess) kflags |= K.KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE;
  if (flags.Public) kflags |= K.KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC;
  kflags = kflags >>> 0;
  const args = { va_addr: va, size, handle: 0, mmap_offset: 0, gpu_id, flags: kflags };
  if ((await kmt.proc.ioctl(kmt.fd, K.AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, args)) !== 0) {
    await kmt.proc.munmap(va, size);
    return HSAKMT_STATUS.ERROR;
  }
  records(kmt).set(va, { handle: args.handle, size, gpu_id });
  out.addr = va;
  return HSAKMT_STATUS.SUCCESS;
}

/** hsaKmtFreeMemory(): frees the BO (the kernel refuses while it is mapped) and its VA. */
export async function hsaKmtFreeMemory(kmt: HsaKmt, addr: number): Promise<HSAKMT_STATUS> {
  const bo = records(kmt).get(addr);
  if (!bo) return HSAKMT_STATUS.INVALID_PARAMETER;
  if ((await kmt.proc.ioctl(kmt.fd, K.AMDKFD_IOC_FREE_MEMORY_OF_GPU, { handle: bo.handle })) !== 0) return HSAKMT_STATUS.ERROR;
  records(kmt).delete(addr);
  await kmt.proc.munmap(addr, bo.size);
  return HSAKMT_STATUS.SUCCESS;
}

async function map_op(kmt: HsaKmt, addr: number, cmd: number): Promise<HSAKMT_STATUS> {
  const bo = records(kmt).get(addr);
  if (!bo) return HSAKMT_STATUS.INVALID_PARAMETER;
  const ids = await kmt.proc.mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  if (ids < 0) return HSAKMT_STATUS.NO_MEMORY;
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, bo.gpu_id, true);
  await kmt.proc.write(ids, b);
  const r = await kmt.proc.ioctl(kmt.fd, cmd, { handle: bo.handle, device_ids_array_ptr: ids, n_devices: 1, n_success: 0 });
  await kmt.proc.munmap(ids, PAGE);
  return r === 0 ? HSAKMT_STATUS.SUCCESS : HSAKMT_STATUS.ERROR;
}

/** hsaKmtMapMemoryToGPU(): maps the BO at its VA on the GPU it lives on. */
export function hsaKmtMapMemoryToGPU(kmt: HsaKmt, addr: number): Promise<HSAKMT_STATUS> {
  return map_op(kmt, addr, K.AMDKFD_IOC_MAP_MEMORY_TO_GPU);
}

/** hsaKmtUnmapMemoryToGPU(): the reverse. */
export function hsaKmtUnmapMemoryToGPU(kmt: HsaKmt, addr: number): Promise<HSAKMT_STATUS> {
  return map_op(kmt, addr, K.AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU);
}

// ---- user memory registration on the SVM API (fmm.c's SVM path) ----------------------------------

/** Registered user buffers of a thunk: address → size in bytes (as the caller gave them). */
const userptrs = new WeakMap<HsaKmt, Map<number, number>>();

function userptr_records(kmt: HsaKmt): Map<number, number> {
  let m = userptrs.get(kmt);
  if (!m) userptrs.set(kmt, (m = new Map()));
  return m;
}

async function set_all_gpus(kmt: HsaKmt, start: number, end: number, type: number, flags: number): Promise<HSAKMT_STATUS> {
  for (const node of kmt.gpuNodes()) {
    const attrs = [{ type, value: node }];
    if (flags) attrs.push({ type: HSA_SVM_ATTR_SET_FLAGS, value: flags });
    const st = await kmt.hsaKmtSVMSetAttr(start, end - start, attrs.length, attrs);
    if (st !== HSAKMT_STATUS.SUCCESS) return st;
  }
  return HSAKMT_STATUS.SUCCESS;
}

/**
 * hsaKmtRegisterMemory() where KFD has the SVM API: the pages covering [addr, addr+size) become
 * an SVM range every GPU may access in place (coherent system memory), not a userptr BO. A
 * registration of a span that was deregistered before grants the access again.
 */
export async function hsaKmtRegisterMemory(kmt: HsaKmt, addr: number, size: number): Promise<HSAKMT_STATUS> {
  if (kmt.fd < 0) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
  if (!addr || !size) return HSAKMT_STATUS.INVALID_PARAMETER;
  const start = Math.floor(addr / PAGE) * PAGE;
  const end = Math.ceil((addr + size) / PAGE) * PAGE;
  const st = await set_all_gpus(kmt, start, end, HSA_SVM_ATTR_ACCESS_IN_PLACE, HSA_SVM_FLAG_HOST_ACCESS | HSA_SVM_FLAG_COHERENT);
  if (st === HSAKMT_STATUS.SUCCESS) userptr_records(kmt).set(addr, size);
  return st;
}

/**
 * hsaKmtDeregisterMemory(): revokes the GPUs' access (NO_ACCESS) to the pages the registration
 * covered whole. A partly covered first or last page keeps its access: the rest of that page may
 * belong to someone else the allocator packed alongside.
 */
export async function hsaKmtDeregisterMemory(kmt: HsaKmt, addr: number): Promise<HSAKMT_STATUS> {
  if (kmt.fd < 0) return HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED;
  const size = userptr_records(kmt).get(addr);
  if (size === undefined) return HSAKMT_STATUS.MEMORY_NOT_REGISTERED;
  userptr_records(kmt).delete(addr);
  const start = Math.ceil(addr / PAGE) * PAGE;
  const end = Math.floor((addr + size) / PAGE) * PAGE;
  return end > start ? set_all_gpus(kmt, start, end, HSA_SVM_ATTR_NO_ACCESS, 0) : HSAKMT_STATUS.SUCCESS;
}

// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_peerdirect.c and kfd_rdma.c (ROCK-Kernel-Driver,
// ROCm 6.x; not in upstream Linux): amdkfd as a PeerDirect "peer memory client" of the RDMA
// core, so a NIC can register and DMA to KFD buffer objects (never SVM ranges).
//
// kfd_rdma part — amd_rdma_interface: get_pages() finds the KFD BO of the process that holds
// the whole range, pins it in its domain and builds the DMA list (VRAM through the GPU's BAR,
// peer-to-peer; GTT through its system pages); put_pages() unpins and frees the list.
// kfd_peerdirect part — the client callbacks: acquire() claims a range that lies inside one KFD
// BO of the calling process and takes a BO reference; get_pages() checks the range and pins
// through amd_rdma; dma_map() hands out the list; dma_unmap(); put_pages() unpins; release()
// drops the reference.
//
// Two designs, switchable per machine (kfd_init_peer_direct's `mode`):
// - "pinning" (current ROCm): no invalidate callback. The pin and the BO reference keep the
//   memory in place until the NIC deregisters, even if the process frees the BO meanwhile.
// - "invalidate" (the 2016 design): amdkfd registers with the core's invalidate callback and no
//   BO reference; freeing a BO that a NIC registered fires free_callback, the core invalidates
//   the MR (the NIC stops using it) and unpins, and the VRAM is freed at once.
//
// kemu: DMA addresses are not mapped for the NIC's device (kemu's machine has no IOMMU on this
// path: bus address == physical / BAR address).

import type { amdkfd } from "./kfd_module.ts";
import type { kfd_process } from "./kfd_priv.ts";
import type { mm_struct } from "../../../../../include/linux/mm_types.ts";
import { kfd_lookup_process_by_mm, kfd_unref_process } from "./kfd_process.ts";
import { kref_get } from "../../../../../include/linux/kref.ts";
import {
  amdgpu_amdkfd_gpuvm_pin_bo, amdgpu_amdkfd_gpuvm_unpin_bo, kfd_process_device_objs, type kgd_mem,
} from "../amdgpu/amdgpu_amdkfd_gpuvm.ts";
import { AMDGPU_GEM_DOMAIN_VRAM, amdgpu_bo_ref, amdgpu_bo_unref } from "../amdgpu/amdgpu_object.ts";
import { amdgpu_res_cursor, amdgpu_res_first, amdgpu_res_next } from "../amdgpu/amdgpu_res_cursor.ts";
import type { device } from "../../../../base/core.ts";
import { EINVAL, ENOMEM } from "../../../../../include/uapi/asm-generic/errno.ts";
import type { amd_p2p_info, amd_rdma_interface } from "../../../../../include/drm/amd_rdma.ts";
import { sg_table, type invalidate_peer_memory, type peer_memory_client } from "../../../../../include/rdma/peer_mem.ts";
import {
  ib_register_peer_memory_client, ib_unregister_peer_memory_client, type ib_peer_memory_client,
} from "../../../../infiniband/core/peer_mem.ts";

const PAGE_SIZE = 4096;
const AMD_PEER_BRIDGE_DRIVER_NAME = "amdkfd";
const AMD_PEER_BRIDGE_DRIVER_VERSION = "1.0";

export type kfd_peerdirect_mode = "pinning" | "invalidate";

// ---- kfd_rdma: the amd_rdma_interface ---------------------------------------------------------

/** What amdkfd keeps per pinned range (kfd_rdma.c's rdma_cb / the p2p priv). */
interface rdma_priv {
  readonly p: kfd_process;
  readonly mem: kgd_mem;
  readonly free_cb: (() => Promise<void>) | null;
}

/** The process with thread-group id `pid`, with a reference (kfd_lookup_process_by_pid). */
function kfd_lookup_process_by_pid(kfd: amdkfd, pid: number): kfd_process | null {
  for (const p of kfd.kfd_processes_table.values()) {
    if (p.lead_thread.tgid === pid) {
      kref_get(p.ref);
      return p;
    }
  }
  return null;
}

/**
 * The KFD BO of `p` that holds all of [addr, addr+size); null for an empty or overflowing range
 * or one that is not inside a single BO (kfd_process_find_bo_from_interval).
 */
function kfd_find_bo(p: kfd_process, addr: number, size: number): kgd_mem | null {
  if (size <= 0 || addr < 0 || !Number.isSafeInteger(addr + size)) return null;
  for (let i = 0; i < p.n_pdds; i++) {
    for (const [, mem] of kfd_process_device_objs(p.pdds[i]!)) {
      if (mem.va <= addr && addr + size <= mem.va + mem.size) return mem;
    }
  }
  return null;
}

/**
 * The DMA list of [offset, offset+size) of a pinned BO: VRAM through the BAR (-EINVAL for VRAM
 * beyond the CPU-visible part, which no peer can reach), GTT through its pages.
 */
function kfd_bo_dma_list(mem: kgd_mem, offset: number, size: number): sg_table | number {
  const bo = mem.bo;
  const adev = bo.adev;
  const res = bo.tbo.resource;
  const sg = new sg_table();
  if (!res) return -EINVAL;
  if (mem.domain === AMDGPU_GEM_DOMAIN_VRAM) {
    const cur = new amdgpu_res_cursor();
    for (amdgpu_res_first(res, offset, size, cur); cur.remaining; amdgpu_res_next(cur, cur.size)) {
      if (cur.start + cur.size > adev.gmc.visible_vram_size) return -EINVAL;
      sg.sgl.push({ dma_address: adev.gmc.aper_base + cur.start, length: cur.size });
    }
    return sg;
  }
  const pages = bo.tbo.ttm?.dma_address;
  if (!pages) return -ENOMEM;
  for (let off = offset; off < offset + size;) {
    const len = Math.min(PAGE_SIZE - (off % PAGE_SIZE), offset + size - off);
    sg.sgl.push({ dma_address: pages[Math.floor(off / PAGE_SIZE)]! + (off % PAGE_SIZE), length: len });
    off += len;
  }
  return sg;
}

/** get_pages(): pin the BO holding the range and build its DMA list. */
async function rdma_get_pages(kfd: amdkfd, address: number, length: number, pid: number, _dma_dev: device | null,
  out: { p2p: amd_p2p_info | null }, free_callback: ((client_priv: unknown) => Promise<void>) | null, client_priv: unknown): Promise<number> {
  const p = kfd_lookup_process_by_pid(kfd, pid);
  if (!p) return -EINVAL;
  const mem = kfd_find_bo(p, address, length);
  if (!mem) {
    kfd_unref_process(p);
    return -EINVAL;
  }
  const r = await amdgpu_amdkfd_gpuvm_pin_bo(mem);
  if (r) {
    kfd_unref_process(p);
    return r;
  }
  const sg = kfd_bo_dma_list(mem, address - mem.va, length);
  if (typeof sg === "number") {
    await amdgpu_amdkfd_gpuvm_unpin_bo(mem);
    kfd_unref_process(p);
    return sg;
  }
  const free_cb = free_callback ? () => free_callback(client_priv) : null;
  if (free_cb) mem.free_callbacks.add(free_cb);
  const priv: rdma_priv = { p, mem, free_cb };
  out.p2p = { va: address, size: length, pid, pages: sg, priv };
  return 0;
}

/** put_pages(): unpin, forget the free callback, drop the process reference. */
async function rdma_put_pages(data: { p2p: amd_p2p_info | null }): Promise<number> {
  const info = data.p2p;
  if (!info) return -EINVAL;
  const priv = info.priv as rdma_priv;
  if (priv.free_cb) priv.mem.free_callbacks.delete(priv.free_cb);
  await amdgpu_amdkfd_gpuvm_unpin_bo(priv.mem);
  kfd_unref_process(priv.p);
  info.pages.sgl = [];
  data.p2p = null;
  return 0;
}

function rdma_is_gpu_address(kfd: amdkfd, address: number, pid: number): number {
  const p = kfd_lookup_process_by_pid(kfd, pid);
  if (!p) return 0;
  const found = kfd_find_bo(p, address, 1) !== null;
  kfd_unref_process(p);
  return found ? 1 : 0;
}

/** get_page_size(): KFD maps GPU memory with 4 KiB pages for peers. */
function rdma_get_page_size(kfd: amdkfd, address: number, length: number, pid: number, page_size: { size: number }): number {
  const p = kfd_lookup_process_by_pid(kfd, pid);
  if (!p) return -EINVAL;
  const found = kfd_find_bo(p, address, length) !== null;
  kfd_unref_process(p);
  if (!found) return -EINVAL;
  page_size.size = PAGE_SIZE;
  return 0;
}

/** amdkfd_query_rdma_interface(): the interface of this machine's amdkfd. */
export function amdkfd_query_rdma_interface(kfd: amdkfd): amd_rdma_interface {
  return {
    get_pages: (a, l, pid, dev, out, cb, priv) => rdma_get_pages(kfd, a, l, pid, dev, out, cb, priv),
    put_pages: rdma_put_pages,
    is_gpu_address: (a, pid) => rdma_is_gpu_address(kfd, a, pid),
    get_page_size: (a, l, pid, ps) => rdma_get_page_size(kfd, a, l, pid, ps),
  };
}

// ---- kfd_peerdirect: the peer memory client ----------------------------------------------------

/** struct amd_mem_context: one acquired range. */
class amd_mem_context {
  /** The pinned range while get_pages..put_pages. */
  readonly p2p: { p2p: amd_p2p_info | null } = { p2p: null };
  core_context = 0;
  constructor(
    readonly va: number,
    readonly size: number,
    readonly pid: number,
    /** The BO reference the pinning design holds from acquire to release (null: invalidate). */
    readonly bo_ref: kgd_mem | null,
  ) {}
}

interface peerdirect_state {
  readonly mode: kfd_peerdirect_mode;
  readonly rdma: amd_rdma_interface;
  reg_handle: ib_peer_memory_client | null;
  invalidate: invalidate_peer_memory | null;
  /** Contexts alive, for the shutdown check. */
  readonly contexts: Set<amd_mem_context>;
}

const peerdirect = new WeakMap<amdkfd, peerdirect_state>();

/** acquire(): claim the range if it lies inside one KFD BO of the calling process. */
function amd_acquire(kfd: amdkfd, st: peerdirect_state, addr: number, size: number): ReturnType<peer_memory_client["acquire"]> {
  const mm = kfd.k.current.mm as mm_struct | null;
  const p = mm ? kfd_lookup_process_by_mm(kfd, mm) : null;
  if (!p) return { mine: 0 };
  const mem = kfd_find_bo(p, addr, size);
  const pid = p.lead_thread.tgid;
  kfd_unref_process(p);
  if (!mem) return { mine: 0 };
  if (st.mode === "pinning") amdgpu_bo_ref(mem.bo);
  const ctx = new amd_mem_context(addr, size, pid, st.mode === "pinning" ? mem : null);
  st.contexts.add(ctx);
  return { mine: 1, client_context: ctx };
}

/** get_pages(): the range must be the acquired one; pin it (and, old design, watch for a free). */
async function amd_get_pages(st: peerdirect_state, addr: number, size: number, ctx: amd_mem_context, core_context: number): Promise<number> {
  if (addr !== ctx.va || size !== ctx.size || ctx.p2p.p2p) return -EINVAL;
  ctx.core_context = core_context;
  const cb = st.invalidate ? () => amd_free_callback(st, ctx) : null;
  return st.rdma.get_pages(addr, size, ctx.pid, null, ctx.p2p, cb, ctx);
}

/** free_callback (old design): the BO is being freed; make the core take the MR back. */
async function amd_free_callback(st: peerdirect_state, ctx: amd_mem_context): Promise<void> {
  if (st.invalidate && st.reg_handle) await st.invalidate(st.reg_handle, ctx.core_context);
}

function amd_dma_map(sg_head: sg_table, ctx: amd_mem_context, nmap: { n: number }): number {
  const info = ctx.p2p.p2p;
  if (!info) return -EINVAL;
  sg_head.sgl = info.pages.sgl.map((e) => ({ ...e }));
  nmap.n = sg_head.nents;
  return 0;
}

function amd_dma_unmap(sg_head: sg_table): number {
  sg_head.sgl = [];
  return 0;
}

async function amd_put_pages(st: peerdirect_state, ctx: amd_mem_context): Promise<void> {
  if (ctx.p2p.p2p) await st.rdma.put_pages(ctx.p2p);
}

function amd_release(st: peerdirect_state, ctx: amd_mem_context): void {
  if (ctx.bo_ref) amdgpu_bo_unref(ctx.bo_ref.bo);
  st.contexts.delete(ctx);
}

function amd_peer_client(kfd: amdkfd, st: peerdirect_state): peer_memory_client {
  return {
    name: AMD_PEER_BRIDGE_DRIVER_NAME,
    version: AMD_PEER_BRIDGE_DRIVER_VERSION,
    acquire: (addr, size) => amd_acquire(kfd, st, addr, size),
    get_pages: (addr, size, _w, _f, _sg, ctx, core) => amd_get_pages(st, addr, size, ctx as amd_mem_context, core),
    dma_map: (sg, ctx, _dev, _sync, nmap) => amd_dma_map(sg, ctx as amd_mem_context, nmap),
    dma_unmap: (sg) => amd_dma_unmap(sg),
    put_pages: (_sg, ctx) => amd_put_pages(st, ctx as amd_mem_context),
    get_page_size: () => PAGE_SIZE,
    release: (ctx) => amd_release(st, ctx as amd_mem_context),
  };
}

/** kfd_init_peer_direct(): register with the RDMA core (in `mode`); 0 or an errno. */
export async function kfd_init_peer_direct(kfd: amdkfd, mode: kfd_peerdirect_mode = "pinning"): Promise<number> {
  if (peerdirect.has(kfd)) return 0;
  const st: peerdirect_state = { mode, rdma: amdkfd_query_rdma_interface(kfd), reg_handle: null, invalidate: null, contexts: new Set() };
  const r = await ib_register_peer_memory_client(kfd.k, amd_peer_client(kfd, st), mode === "invalidate");
  if (typeof r === "number") return r;
  st.reg_handle = r.reg_handle;
  st.invalidate = r.invalidate;
  peerdirect.set(kfd, st);
  kfd.k.pr_info(`amdkfd: PeerDirect support was initialized successfully (${mode})`);
  return 0;
}

/** kfd_close_peer_direct(): unregister; contexts still alive are reported by the core. */
export async function kfd_close_peer_direct(kfd: amdkfd): Promise<void> {
  const st = peerdirect.get(kfd);
  if (!st?.reg_handle) return;
  await ib_unregister_peer_memory_client(kfd.k, st.reg_handle);
  peerdirect.delete(kfd);
}

/** Acquired ranges not yet released (leak checks). */
export function kfd_peerdirect_contexts(kfd: amdkfd): number {
  return peerdirect.get(kfd)?.contexts.size ?? 0;
}

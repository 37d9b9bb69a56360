// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_ib.c and the suballocator of amdgpu_sa.c /
// drm_suballoc.c (Linux 6.8): indirect buffers. An IB is a slice of a pool BO (GTT) handed out
// in ring order; a slice freed with a fence is reused only once that fence signals, and an
// allocation that finds the pool full waits for the oldest fence. amdgpu_ib_schedule() writes
// one submission to a ring: VM flush if the job needs it, the IBs, the fence, commit.
// kemu builds IB contents in a host array and writes it to the pool memory with one copy at
// submission (the kernel writes through a write-combined CPU mapping as it goes).

import type { amdgpu_device } from "./amdgpu.ts";
import type { amdgpu_ring } from "./amdgpu_ring.ts";
import { amdgpu_ring_alloc, amdgpu_ring_commit, amdgpu_ring_undo } from "./amdgpu_ring.ts";
import type { amdgpu_job } from "./amdgpu_job.ts";
import { amdgpu_fence_emit, type amdgpu_fence } from "./amdgpu_fence.ts";
import { amdgpu_bo_create_kernel, amdgpu_bo_free_kernel, AMDGPU_GEM_DOMAIN_GTT, type amdgpu_bo } from "./amdgpu_object.ts";
import { dma_fence_get, dma_fence_is_signaled, dma_fence_put, dma_fence_wait, type dma_fence } from "../../../../dma-buf/dma-fence.ts";
import type { iosys_map } from "../../../../../include/linux/iosys-map.ts";
import { EINVAL, ENOMEM } from "../../../../../include/uapi/asm-generic/errno.ts";
import { amdgpu_vm_flush } from "./amdgpu_vm.ts";

export enum amdgpu_ib_pool_type {
  AMDGPU_IB_POOL_DELAYED,
  AMDGPU_IB_POOL_IMMEDIATE,
  AMDGPU_IB_POOL_DIRECT,
  AMDGPU_IB_POOL_MAX,
}

/** Bytes per IB pool (AMDGPU_IB_POOL_SIZE). */
export const AMDGPU_IB_POOL_SIZE = 1024 * 1024;
const SA_ALIGN = 256;

/** One slice of a pool (drm_suballoc). */
export class amdgpu_sa_bo {
  fence: dma_fence | null = null;
  freed = false;
  constructor(
    readonly manager: amdgpu_ib_pool,
    readonly soffset: number,
    readonly eoffset: number,
  ) {}
}

export class amdgpu_ib_pool {
  bo: amdgpu_bo | null = null;
  gpu_addr = 0;
  cpu: iosys_map | null = null;
  size = 0;
  /** Live slices in allocation order; the ring of the suballocator. */
  olist: amdgpu_sa_bo[] = [];
  /** Next free offset (head of the ring). */
  head = 0;
}

export class amdgpu_ib {
  sa_bo: amdgpu_sa_bo | null = null;
  length_dw = 0;
  gpu_addr = 0;
  /** The IB's dwords as the CPU builds them. */
  ptr = new Uint32Array(0);
  flags = 0;
}

/** amdgpu_ib_pool_init(): one pool BO per pool type. */
export async function amdgpu_ib_pool_init(adev: amdgpu_device): Promise<number> {
  for (let i = 0; i < amdgpu_ib_pool_type.AMDGPU_IB_POOL_MAX; i++) {
    const pool = new amdgpu_ib_pool();
    const k = await amdgpu_bo_create_kernel(adev, AMDGPU_IB_POOL_SIZE, 4096, AMDGPU_GEM_DOMAIN_GTT);
    if (typeof k === "number") return k;
    pool.bo = k.bo;
    pool.gpu_addr = k.gpu_addr;
    pool.cpu = k.cpu;
    pool.size = AMDGPU_IB_POOL_SIZE;
    adev.ib_pools.push(pool);
  }
  return 0;
}

export function amdgpu_ib_pool_fini(adev: amdgpu_device): void {
  for (const pool of adev.ib_pools) {
    for (const sa of pool.olist) dma_fence_put(sa.fence);
    pool.olist = [];
    if (pool.bo) amdgpu_bo_free_kernel(pool.bo);
    pool.bo = null;
  }
  adev.ib_pools.length = 0;
}

/** Drops slices from the tail of the ring whose fences signalled. */
function sa_retire(pool: amdgpu_ib_pool): void {
  while (pool.olist.length) {
    const sa = pool.olist[0]!;
    if (!sa.freed || (sa.fence && !dma_fence_is_signaled(sa.fence))) break;
    dma_fence_put(sa.fence);
    pool.olist.shift();
  }
  if (!pool.olist.length) pool.head = 0;
}

/** Where a slice of `size` bytes fits at the head of the ring, or -1. */
function sa_fit(pool: amdgpu_ib_pool, size: number): number {
  const tail = pool.olist.length ? pool.olist[0]!.soffset : 0;
  const head = pool.head;
  if (!pool.olist.length) return size <= pool.size ? 0 : -1;
  if (head > tail || (head === tail && pool.olist.length === 0)) {
    if (head + size <= pool.size) return head;
    if (size <= tail) return 0;
    return -1;
  }
  return head + size <= tail ? head : -1;
}

/** amdgpu_sa_bo_new(): a slice, waiting for the oldest busy slice's fence while the pool is full. */
async function amdgpu_sa_bo_new(pool: amdgpu_ib_pool, size: number): Promise<amdgpu_sa_bo | number> {
  size = Math.ceil(size / SA_ALIGN) * SA_ALIGN;
  if (size > pool.size) return -EINVAL;
  for (;;) {
    sa_retire(pool);
    const off = sa_fit(pool, size);
    if (off >= 0) {
      const sa = new amdgpu_sa_bo(pool, off, off + size);
      pool.olist.push(sa);
      pool.head = off + size;
      return sa;
    }
    const oldest = pool.olist.find((s) => s.fence && !dma_fence_is_signaled(s.fence)) ?? null;
    if (!oldest) return -ENOMEM;
    const f = dma_fence_get(oldest.fence!);
    await dma_fence_wait(f, false);
    dma_fence_put(f);
  }
}

/** amdgpu_ib_get(): an IB of `size` bytes from pool `pool_type`. */
export async function amdgpu_ib_get(adev: amdgpu_device, size: number, pool_type: amdgpu_ib_pool_type, ib: amdgpu_ib): Promise<number> {
  if (size) {
    const pool = adev.ib_pools[pool_type];
    if (!pool) return -EINVAL;
    const sa = await amdgpu_sa_bo_new(pool, size);
    if (typeof sa === "number") {
      adev.k.dev_err(adev, `failed to get a new IB (${sa})`);
      return sa;
    }
    ib.sa_bo = sa;
    ib.gpu_addr = pool.gpu_addr + sa.soffset;
    ib.ptr = new Uint32Array(Math.ceil(size / 4));
  }
  ib.length_dw = 0;
  return 0;
}

/** amdgpu_ib_free(): the slice returns once `f` (the job's fence) signals. */
export function amdgpu_ib_free(ib: amdgpu_ib, f: dma_fence | null): void {
  const sa = ib.sa_bo;
  if (!sa) return;
  sa.fence = f ? dma_fence_get(f) : null;
  sa.freed = true;
  ib.sa_bo = null;
  sa_retire(sa.manager);
}

/**
 * Writes the IB's buffer to its pool memory: the commands and whatever the builder placed after
 * them (amdgpu_ttm_map_buffer puts PTE data behind the packets for SDMA to copy).
 */
function amdgpu_ib_write_out(ib: amdgpu_ib): void {
  const sa = ib.sa_bo;
  if (!sa || !ib.ptr.length) return;
  sa.manager.cpu!.memcpy_to(sa.soffset, new Uint8Array(ib.ptr.buffer, ib.ptr.byteOffset, ib.ptr.byteLength));
}

/**
 * amdgpu_ib_schedule(): one submission on `ring` (whose lock the caller holds): VM flush when
 * the job asks, the IBs, a fence with interrupt. Returns the hardware fence or -errno.
 */
export async function amdgpu_ib_schedule(ring: amdgpu_ring, ibs: amdgpu_ib[], job: amdgpu_job | null): Promise<amdgpu_fence | number> {
  const adev = ring.adev;
  if (!ibs.length) return -EINVAL;
  if (!ring.sched.ready) {
    adev.k.dev_err(adev, `couldn't schedule ib on ring <${ring.name}>`);
    return -EINVAL;
  }
  for (const ib of ibs) amdgpu_ib_write_out(ib);
  const alloc_size = ring.funcs.emit_frame_size + ibs.length * ring.funcs.emit_ib_size;
  let r = amdgpu_ring_alloc(ring, alloc_size);
  if (r) {
    adev.k.dev_err(adev, `scheduling IB failed (${r}).`);
    return r;
  }
  if (job && ring.funcs.emit_vm_flush) {
    r = amdgpu_vm_flush(ring, job);
    if (r) {
      amdgpu_ring_undo(ring);
      return r;
    }
  }
  if (ring.funcs.emit_hdp_flush) ring.funcs.emit_hdp_flush(ring);
  for (const ib of ibs) ring.funcs.emit_ib(ring, job, ib, 0);
  const fence = await amdgpu_fence_emit(ring, 0);
  amdgpu_ring_commit(ring);
  return fence;
}

/** amdgpu_ib_ring_tests(): every ready ring runs its IB test. */
export async function amdgpu_ib_ring_tests(adev: amdgpu_device): Promise<number> {
  let ret = 0;
  for (const ring of adev.rings) {
    if (!ring.sched.ready || !ring.funcs.test_ib) continue;
    const r = await ring.funcs.test_ib(ring, 1000);
    if (r) {
      ring.sched.ready = false;
      adev.k.dev_err(adev, `IB test failed on ${ring.name} (${r}).`);
      ret = r;
    }
  }
  return ret;
}

// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_ring.c and amdgpu_ring.h (Linux 6.8): command rings
// in GPU-visible memory. The CPU writes dwords at wptr (masked into the buffer), pads to the
// engine's alignment with NOPs and hands wptr to the engine (set_wptr: doorbell or register);
// the engine reports its rptr by writeback. Each ring has a fence driver and a lock that
// serialises submissions (the work drm_sched's single thread per ring does in the kernel).

import type { amdgpu_device } from "./amdgpu.ts";
import type { amdgpu_bo } from "./amdgpu_object.ts";
import { amdgpu_bo_create_kernel, amdgpu_bo_free_kernel } from "./amdgpu_object.ts";
import { AMDGPU_GEM_DOMAIN_GTT } from "./amdgpu_object.ts";
import type { amdgpu_irq_src } from "./amdgpu_irq.ts";
import type { amdgpu_ib } from "./amdgpu_ib.ts";
import type { amdgpu_job } from "./amdgpu_job.ts";
import { amdgpu_fence_driver, amdgpu_fence_driver_init_ring, amdgpu_fence_driver_start_ring } from "./amdgpu_fence.ts";
import { amdgpu_device_wb_free, amdgpu_device_wb_get } from "./amdgpu_device.ts";
import type { iosys_map } from "../../../../../include/linux/iosys-map.ts";
import { mutex } from "../../../../../kernel/locking/mutex.ts";
import { ENOMEM } from "../../../../../include/uapi/asm-generic/errno.ts";

export enum amdgpu_ring_type {
  AMDGPU_RING_TYPE_GFX,
  AMDGPU_RING_TYPE_COMPUTE,
  AMDGPU_RING_TYPE_SDMA,
  AMDGPU_RING_TYPE_KIQ,
}

/** Default number of jobs a ring holds in flight (amdgpu_sched_hw_submission). */
export const amdgpu_sched_hw_submission = 2;
export const AMDGPU_FENCE_FLAG_64BIT = 1 << 0;
export const AMDGPU_FENCE_FLAG_INT = 1 << 1;

export interface amdgpu_ring_funcs {
  type: amdgpu_ring_type;
  align_mask: number;
  nop: number;
  support_64bit_ptrs: boolean;
  vmhub: number;
  /** Extra dwords the ring buffer needs past its end (wrap-around packets). */
  extra_dw?: number;
  get_rptr(ring: amdgpu_ring): number;
  get_wptr(ring: amdgpu_ring): number;
  set_wptr(ring: amdgpu_ring): void;
  /** Worst-case dwords per submission (excluding IBs) and per IB. */
  emit_frame_size: number;
  emit_ib_size: number;
  emit_ib(ring: amdgpu_ring, job: amdgpu_job | null, ib: amdgpu_ib, flags: number): void;
  emit_fence(ring: amdgpu_ring, addr: number, seq: number, flags: number): void;
  emit_vm_flush?(ring: amdgpu_ring, vmid: number, pd_addr: number): void;
  emit_hdp_flush?(ring: amdgpu_ring): void;
  emit_wreg?(ring: amdgpu_ring, reg: number, val: number): void;
  emit_reg_wait?(ring: amdgpu_ring, reg: number, val: number, mask: number): void;
  test_ring(ring: amdgpu_ring): Promise<number>;
  test_ib(ring: amdgpu_ring, timeout: number): Promise<number>;
  insert_nop(ring: amdgpu_ring, count: number): void;
  pad_ib(ring: amdgpu_ring, ib: amdgpu_ib): void;
}

/** What the kernel's drm_gpu_scheduler provides per ring, reduced to readiness and the TDR timeout. */
export interface amdgpu_ring_sched {
  ready: boolean;
  /** Job timeout (drm_sched timeout), ms. */
  timeout_ms: number;
  name: string;
}

export class amdgpu_ring {
  funcs!: amdgpu_ring_funcs;
  ring_obj: amdgpu_bo | null = null;
  /** CPU view of the ring buffer. */
  ring: iosys_map | null = null;
  gpu_addr = 0;
  ring_size = 0;
  buf_mask = 0;
  ptr_mask = 0;
  /** Write pointer in dwords; monotonic on 64-bit-pointer rings. */
  wptr = 0;
  wptr_old = 0;
  count_dw = 0;
  max_dw = 0;
  rptr_offs = 0;
  rptr_gpu_addr = 0;
  wptr_offs = 0;
  wptr_gpu_addr = 0;
  readonly fence_drv: amdgpu_fence_driver;
  readonly sched: amdgpu_ring_sched = { ready: false, timeout_ms: 10000, name: "" };
  /** Serialises writers of the ring (submissions, tests). */
  readonly lock: mutex;
  idx = 0;
  me = 0;
  pipe = 0;
  queue = 0;
  use_doorbell = false;
  doorbell_index = 0;
  vm_hub = 0;
  /** Invalidation engine this ring's VM flushes use (amdgpu_gmc_allocate_vm_inv_eng). */
  vm_inv_eng = 17;

  constructor(
    readonly adev: amdgpu_device,
    public name: string,
  ) {
    this.fence_drv = new amdgpu_fence_driver(this);
    this.lock = new mutex(adev.k, "&ring->lock");
  }
}

/**
 * amdgpu_ring_init(): the ring buffer (a pinned GTT BO, ring_size a power of two fitting
 * max_dw * hw submissions), rptr/wptr writeback slots, and the fence driver.
 */
export async function amdgpu_ring_init(adev: amdgpu_device, ring: amdgpu_ring, max_dw: number, irq_src: amdgpu_irq_src,
  irq_type: number): Promise<number> {
  ring.idx = adev.rings.length;
  adev.rings.push(ring);
  ring.sched.name = ring.name;
  let r = amdgpu_fence_driver_init_ring(ring);
  if (r) return r;
  const rptr = amdgpu_device_wb_get(adev);
  const wptr = amdgpu_device_wb_get(adev);
  const fence = amdgpu_device_wb_get(adev);
  if (rptr < 0 || wptr < 0 || fence < 0) return -ENOMEM;
  ring.rptr_offs = rptr;
  ring.rptr_gpu_addr = adev.wb.gpu_addr + rptr * 4;
  ring.wptr_offs = wptr;
  ring.wptr_gpu_addr = adev.wb.gpu_addr + wptr * 4;
  ring.fence_drv.wb_offs = fence;
  let size = 4 * max_dw * amdgpu_sched_hw_submission;
  size = 2 ** Math.ceil(Math.log2(size));
  ring.ring_size = size;
  ring.max_dw = max_dw;
  ring.buf_mask = size / 4 - 1;
  ring.ptr_mask = ring.funcs.support_64bit_ptrs ? Number.MAX_SAFE_INTEGER : ring.buf_mask;
  if (!ring.ring_obj) {
    const k = await amdgpu_bo_create_kernel(adev, ring.ring_size + 4 * (ring.funcs.extra_dw ?? 0), 4096, AMDGPU_GEM_DOMAIN_GTT);
    if (typeof k === "number") {
      adev.k.dev_err(adev, `(${k}) ring create failed`);
      return k;
    }
    ring.ring_obj = k.bo;
    ring.gpu_addr = k.gpu_addr;
    ring.ring = k.cpu;
    amdgpu_ring_clear_ring(ring);
  }
  ring.vm_hub = ring.funcs.vmhub;
  r = amdgpu_fence_driver_start_ring(ring, irq_src, irq_type);
  return r;
}

/** amdgpu_ring_fini(): frees the buffer and writeback slots. */
export function amdgpu_ring_fini(ring: amdgpu_ring): void {
  const adev = ring.adev;
  if (!ring.ring_obj) return;
  ring.sched.ready = false;
  amdgpu_device_wb_free(adev, ring.rptr_offs);
  amdgpu_device_wb_free(adev, ring.wptr_offs);
  amdgpu_device_wb_free(adev, ring.fence_drv.wb_offs);
  amdgpu_bo_free_kernel(ring.ring_obj);
  ring.ring_obj = null;
  ring.ring = null;
  const i = adev.rings.indexOf(ring);
  if (i >= 0) adev.rings.splice(i, 1);
}

/** Fills the buffer with NOPs (amdgpu_ring_clear_ring). */
export function amdgpu_ring_clear_ring(ring: amdgpu_ring): void {
  for (let i = 0; i <= ring.buf_mask; i++) ring.ring!.wr32(4 * i, ring.funcs.nop);
}

/**
 * amdgpu_ring_alloc(): reserves `ndw` dwords (rounded up to the alignment) for the caller.
 * -ENOMEM (with a WARN) if more than the ring's per-submission maximum is asked for.
 */
export function amdgpu_ring_alloc(ring: amdgpu_ring, ndw: number): number {
  ndw = (ndw + ring.funcs.align_mask) & ~ring.funcs.align_mask;
  if (ring.adev.k.WARN_ON(ndw > ring.max_dw, `amdgpu_ring_alloc: ${ndw} dwords > max_dw ${ring.max_dw} on ${ring.name}`)) return -ENOMEM;
  ring.count_dw = ndw;
  ring.wptr_old = ring.wptr;
  return 0;
}

export function amdgpu_ring_write(ring: amdgpu_ring, v: number): void {
  if (ring.count_dw <= 0) ring.adev.k.pr_err(`amdgpu: writing more dwords to the ring than expected!`);
  ring.ring!.wr32(4 * (ring.wptr % (ring.buf_mask + 1)), v >>> 0);
  ring.wptr = (ring.wptr + 1) % (ring.ptr_mask + 1);
  ring.count_dw--;
}

/** amdgpu_ring_insert_nop(): `count` NOP dwords. */
export function amdgpu_ring_insert_nop(ring: amdgpu_ring, count: number): void {
  for (let i = 0; i < count; i++) amdgpu_ring_write(ring, ring.funcs.nop);
}

/** amdgpu_ring_commit(): pads to the alignment and tells the engine about the new wptr. */
export function amdgpu_ring_commit(ring: amdgpu_ring): void {
  const align = ring.funcs.align_mask;
  const count = (align + 1 - ((ring.wptr + align + 1) % (align + 1))) % (align + 1);
  ring.funcs.insert_nop(ring, count);
  ring.funcs.set_wptr(ring);
}

/** amdgpu_ring_undo(): forgets what was written since amdgpu_ring_alloc(). */
export function amdgpu_ring_undo(ring: amdgpu_ring): void {
  ring.wptr = ring.wptr_old;
}

/** amdgpu_ring_generic_pad_ib(): NOPs until the IB length is a multiple of 8 dwords. */
export function amdgpu_ring_generic_pad_ib(ring: amdgpu_ring, ib: amdgpu_ib): void {
  while (ib.length_dw % 8) ib.ptr[ib.length_dw++] = ring.funcs.nop;
}

/** The rptr the engine last wrote back (in the ring's pointer units). */
export function amdgpu_ring_get_rptr(ring: amdgpu_ring): number {
  return ring.funcs.get_rptr(ring);
}

/** amdgpu_ring_test_helper(): runs the ring test and marks the ring ready on success. */
export async function amdgpu_ring_test_helper(ring: amdgpu_ring): Promise<number> {
  const r = await ring.funcs.test_ring(ring);
  if (r) ring.adev.k.dev_err(ring.adev, `ring ${ring.name} test failed (${r})`);
  else ring.adev.k.dev_dbg(ring.adev, `ring test on ${ring.name} succeeded`);
  ring.sched.ready = !r;
  return r;
}

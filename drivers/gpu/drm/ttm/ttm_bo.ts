// Mirrors drivers/gpu/drm/ttm/ttm_bo.c and include/drm/ttm/ttm_bo.h (Linux 6.8): buffer
// objects, validation into a placement, and eviction. ttm_bo_validate() keeps a compatible
// resource or finds space: first the preferred places, then the busy places, where it evicts
// least-recently-used BOs of the manager (skipping pinned ones, ones it cannot trylock, and ones
// the driver says are not worth evicting) until the allocation fits. A move the driver cannot do
// directly (-EMULTIHOP) bounces through the temporary placement it names. The last reference
// releases the backing at once if the BO is idle, else from a work item once its fences signal.

import type { Kernel } from "../../../../kernel/kernel.ts";
import { kref, kref_get, kref_put } from "../../../../include/linux/kref.ts";
import { EBUSY, EINVAL, EMULTIHOP, ENOMEM, ENOSPC, ERESTARTSYS } from "../../../../include/uapi/asm-generic/errno.ts";
import { INIT_WORK, work_struct } from "../../../../kernel/workqueue.ts";
import {
  dma_resv, dma_resv_fini, dma_resv_lock, dma_resv_lock_interruptible, dma_resv_test_signaled, dma_resv_trylock,
  dma_resv_unlock, dma_resv_usage, dma_resv_wait_timeout, dma_resv_assert_held,
} from "../../../dma-buf/dma-resv.ts";
import type { ttm_device } from "./ttm_device.ts";
import {
  ttm_resource_alloc, ttm_resource_compatible, ttm_resource_free, ttm_resource_manager_lru_walk,
  ttm_resource_move_to_lru_tail, type ttm_resource,
} from "./ttm_resource.ts";
import type { ttm_tt } from "./ttm_tt.ts";
import type { ttm_place, ttm_placement } from "../../../../include/drm/ttm/ttm_placement.ts";
import { TTM_PL_SYSTEM } from "../../../../include/drm/ttm/ttm_placement.ts";
import { msecs_to_jiffies } from "../../../../kernel/time/timekeeping.ts";

export enum ttm_bo_type {
  ttm_bo_type_device,
  ttm_bo_type_kernel,
  ttm_bo_type_sg,
}

export interface ttm_operation_ctx {
  interruptible: boolean;
  no_wait_gpu: boolean;
  /** Allow evicting BOs that share `resv` (already locked by the caller). */
  allow_res_evict?: boolean;
  resv?: dma_resv | null;
  bytes_moved?: number;
}

export class ttm_buffer_object {
  readonly kref: kref;
  resource: ttm_resource | null = null;
  ttm: ttm_tt | null = null;
  priority = 0;
  pin_count = 0;
  deleted = false;
  page_alignment = 1;
  /** The BO's own reservation unless it shares one (bo->base._resv). */
  readonly _resv: dma_resv;
  /** bo->base.resv */
  resv: dma_resv;
  /** Called once the BO is gone (the driver frees its wrapper). */
  destroy: ((bo: ttm_buffer_object) => void) | null = null;
  readonly delayed_delete = new work_struct();

  constructor(
    readonly bdev: ttm_device,
    readonly type: ttm_bo_type,
    /** bo->base.size: bytes, page aligned. */
    readonly base_size: number,
  ) {
    this.kref = new kref(bdev.k);
    this._resv = new dma_resv(bdev.k);
    this.resv = this._resv;
  }

  get k(): Kernel {
    return this.bdev.k;
  }
}

export function ttm_bo_get(bo: ttm_buffer_object): ttm_buffer_object {
  kref_get(bo.kref);
  return bo;
}

export function ttm_bo_put(bo: ttm_buffer_object): void {
  kref_put(bo.kref, () => ttm_bo_release(bo));
}

/** ttm_bo_reserve(): takes the reservation (trylock with no_wait); 0, -EBUSY or -EINTR. */
export async function ttm_bo_reserve(bo: ttm_buffer_object, interruptible: boolean, no_wait: boolean): Promise<number> {
  if (no_wait) return dma_resv_trylock(bo.resv) ? 0 : -EBUSY;
  if (interruptible) return dma_resv_lock_interruptible(bo.resv);
  return dma_resv_lock(bo.resv);
}

/** ttm_bo_unreserve(): bumps the BO on its LRU and drops the reservation. */
export function ttm_bo_unreserve(bo: ttm_buffer_object): void {
  ttm_bo_move_to_lru_tail(bo);
  dma_resv_unlock(bo.resv);
}

export function ttm_bo_move_to_lru_tail(bo: ttm_buffer_object): void {
  if (bo.resource) ttm_resource_move_to_lru_tail(bo.resource);
}

export function ttm_bo_assign_mem(bo: ttm_buffer_object, new_mem: ttm_resource): void {
  bo.resource = new_mem;
}

/** ttm_bo_move_null(): the new resource needs no data movement. */
export function ttm_bo_move_null(bo: ttm_buffer_object, new_mem: ttm_resource): void {
  ttm_resource_free(bo, bo.resource);
  ttm_bo_assign_mem(bo, new_mem);
}

/** ttm_bo_pin(): keeps the BO where it is (off the LRU, never evicted). */
export function ttm_bo_pin(bo: ttm_buffer_object): void {
  dma_resv_assert_held(bo.resv);
  bo.pin_count++;
  ttm_bo_move_to_lru_tail(bo);
}

export function ttm_bo_unpin(bo: ttm_buffer_object): void {
  dma_resv_assert_held(bo.resv);
  if (bo.k.WARN_ON_ONCE(!bo.pin_count)) return;
  bo.pin_count--;
  ttm_bo_move_to_lru_tail(bo);
}

/** ttm_bo_wait_ctx(): waits for all fences (15 s at most); -EBUSY when busy and not waiting. */
export async function ttm_bo_wait_ctx(bo: ttm_buffer_object, ctx: ttm_operation_ctx): Promise<number> {
  if (ctx.no_wait_gpu) return dma_resv_test_signaled(bo.resv, dma_resv_usage.DMA_RESV_USAGE_BOOKKEEP) ? 0 : -EBUSY;
  const r = await dma_resv_wait_timeout(bo.resv, dma_resv_usage.DMA_RESV_USAGE_BOOKKEEP, ctx.interruptible, msecs_to_jiffies(15000));
  if (r < 0) return r;
  return r === 0 ? -EBUSY : 0;
}

function ttm_tt_create(bo: ttm_buffer_object): number {
  if (bo.ttm) return 0;
  bo.ttm = bo.bdev.funcs.ttm_tt_create(bo, 0);
  return bo.ttm ? 0 : -ENOMEM;
}

function ttm_bo_tt_destroy(bo: ttm_buffer_object): void {
  if (!bo.ttm) return;
  bo.bdev.funcs.ttm_tt_unpopulate(bo.bdev, bo.ttm, bo);
  bo.bdev.funcs.ttm_tt_destroy(bo.bdev, bo.ttm);
  bo.ttm = null;
}

/** ttm_bo_handle_move_mem(): gets the tt ready if the target needs one, then the driver moves. */
async function ttm_bo_handle_move_mem(bo: ttm_buffer_object, mem: ttm_resource, evict: boolean, ctx: ttm_operation_ctx,
  hop: ttm_place): Promise<number> {
  const bdev = bo.bdev;
  const new_use_tt = bdev.man_drv[mem.mem_type]!.use_tt;
  if (new_use_tt) {
    let r = ttm_tt_create(bo);
    if (!r && mem.mem_type !== TTM_PL_SYSTEM) r = bdev.funcs.ttm_tt_populate(bdev, bo.ttm!, bo, ctx);
    if (r) {
      ttm_resource_free(bo, mem);
      return r;
    }
  }
  const r = await bdev.funcs.move(bo, evict, ctx, mem, hop);
  if (r) {
    if (r !== -EMULTIHOP) ttm_resource_free(bo, mem);
    return r;
  }
  ctx.bytes_moved = (ctx.bytes_moved ?? 0) + bo.base_size;
  return 0;
}

/** ttm_bo_bounce_temp_buffer(): first move into the driver's hop placement. */
async function ttm_bo_bounce_temp_buffer(bo: ttm_buffer_object, ctx: ttm_operation_ctx, hop: ttm_place): Promise<number> {
  const placement: ttm_placement = { num_placement: 1, placement: [hop], num_busy_placement: 1, busy_placement: [hop] };
  const tmp = await ttm_bo_mem_space(bo, placement, ctx);
  if (typeof tmp === "number") return tmp;
  return ttm_bo_handle_move_mem(bo, tmp, false, ctx, { fpfn: 0, lpfn: 0, mem_type: 0, flags: 0 });
}

/** A move with the driver's multi-hop protocol: bounce, then retry the real move. */
async function ttm_bo_move_with_hops(bo: ttm_buffer_object, placement: ttm_placement, mem: ttm_resource, evict: boolean,
  ctx: ttm_operation_ctx): Promise<number> {
  for (;;) {
    const hop: ttm_place = { fpfn: 0, lpfn: 0, mem_type: 0, flags: 0 };
    const r = await ttm_bo_handle_move_mem(bo, mem, evict, ctx, hop);
    if (r !== -EMULTIHOP) return r;
    ttm_resource_free(bo, mem);
    const b = await ttm_bo_bounce_temp_buffer(bo, ctx, hop);
    if (b) return b;
    const again = await ttm_bo_mem_space(bo, placement, ctx);
    if (typeof again === "number") return again;
    mem = again;
  }
}

/**
 * ttm_bo_evict_swapout_allowable(): a BO may be evicted if the caller already holds its
 * reservation through ctx.resv, or if it can be trylocked here.
 */
function ttm_bo_evict_swapout_allowable(bo: ttm_buffer_object, ctx: ttm_operation_ctx): { ok: boolean; locked: boolean } {
  if (ctx.allow_res_evict && ctx.resv && bo.resv === ctx.resv) return { ok: true, locked: false };
  if (bo.deleted) return { ok: false, locked: false };
  const locked = dma_resv_trylock(bo.resv);
  return { ok: locked, locked };
}

/** ttm_bo_evict(): moves the BO where the driver's evict_flags say, or drops its backing. */
async function ttm_bo_evict(bo: ttm_buffer_object, ctx: ttm_operation_ctx): Promise<number> {
  const placement: ttm_placement = { num_placement: 0, placement: [], num_busy_placement: 0, busy_placement: [] };
  bo.bdev.funcs.evict_flags(bo, placement);
  if (!placement.num_placement && !placement.num_busy_placement) {
    const r = await ttm_bo_wait_ctx(bo, ctx);
    if (r) return r;
    return ttm_bo_pipeline_gutting(bo);
  }
  const mem = await ttm_bo_mem_space(bo, placement, ctx);
  if (typeof mem === "number") {
    if (mem !== -ERESTARTSYS) bo.k.pr_err(`[TTM] Failed to find memory space for buffer (${bo.base_size} bytes) eviction`);
    return mem;
  }
  const r = await ttm_bo_move_with_hops(bo, placement, mem, true, ctx);
  if (r && r !== -ERESTARTSYS) bo.k.pr_err(`[TTM] Buffer eviction failed`);
  return r;
}

/**
 * ttm_mem_evict_first(): evicts the least recently used evictable BO of `place`'s manager.
 * -EBUSY when there is nothing left to evict.
 */
async function ttm_mem_evict_first(bo_for: ttm_buffer_object, place: ttm_place, ctx: ttm_operation_ctx): Promise<number> {
  const man = bo_for.bdev.man_drv[place.mem_type]!;
  for (const res of ttm_resource_manager_lru_walk(man)) {
    const bo = res.bo;
    if (bo === bo_for || !res.on_lru) continue;
    const a = ttm_bo_evict_swapout_allowable(bo, ctx);
    if (!a.ok) continue;
    if (!bo.bdev.funcs.eviction_valuable(bo, place)) {
      if (a.locked) dma_resv_unlock(bo.resv);
      continue;
    }
    ttm_bo_get(bo);
    let r: number;
    try {
      r = await ttm_bo_evict(bo, ctx);
    } finally {
      if (a.locked) dma_resv_unlock(bo.resv);
      ttm_bo_put(bo);
    }
    return r;
  }
  return -EBUSY;
}

/** ttm_bo_mem_force_space(): allocate, evicting from the place's manager until it fits. */
async function ttm_bo_mem_force_space(bo: ttm_buffer_object, place: ttm_place, ctx: ttm_operation_ctx): Promise<ttm_resource | number> {
  for (;;) {
    const res = ttm_resource_alloc(bo, place);
    if (typeof res !== "number") return res;
    if (res !== -ENOSPC) return res;
    const r = await ttm_mem_evict_first(bo, place, ctx);
    if (r) return r === -EBUSY ? -ENOSPC : r;
  }
}

/** ttm_bo_mem_space(): a resource for `bo` in one of the placement's places (-ENOSPC if none). */
export async function ttm_bo_mem_space(bo: ttm_buffer_object, placement: ttm_placement, ctx: ttm_operation_ctx): Promise<ttm_resource | number> {
  const bdev = bo.bdev;
  for (const place of placement.placement) {
    if (!bdev.man_drv[place.mem_type]?.use_type) continue;
    const res = ttm_resource_alloc(bo, place);
    if (typeof res !== "number") return res;
    if (res !== -ENOSPC) return res;
  }
  for (const place of placement.busy_placement) {
    if (!bdev.man_drv[place.mem_type]?.use_type) continue;
    const res = await ttm_bo_mem_force_space(bo, place, ctx);
    if (typeof res !== "number") return res;
    if (res !== -ENOSPC) return res;
  }
  return -ENOSPC;
}

/** ttm_bo_pipeline_gutting(): the BO loses its backing (an empty SYSTEM resource remains). */
export function ttm_bo_pipeline_gutting(bo: ttm_buffer_object): number {
  ttm_bo_tt_destroy(bo);
  const sys = ttm_resource_alloc(bo, { fpfn: 0, lpfn: 0, mem_type: TTM_PL_SYSTEM, flags: 0 });
  if (typeof sys === "number") return sys;
  ttm_bo_move_null(bo, sys);
  return 0;
}

/**
 * ttm_bo_validate(): makes the BO's backing satisfy `placement`, moving (and evicting other
 * BOs) as needed. The reservation must be held. 0, -EINVAL (pinned elsewhere), -ENOSPC/-ENOMEM.
 */
export async function ttm_bo_validate(bo: ttm_buffer_object, placement: ttm_placement, ctx: ttm_operation_ctx): Promise<number> {
  dma_resv_assert_held(bo.resv);
  if (!placement.num_placement && !placement.num_busy_placement) return ttm_bo_pipeline_gutting(bo);
  if (bo.resource && ttm_resource_compatible(bo.resource, placement)) {
    if (bo.resource.mem_type === TTM_PL_SYSTEM || bo.bdev.man_drv[bo.resource.mem_type]!.use_tt) {
      if (ttm_tt_create(bo)) return -ENOMEM;
    }
    return 0;
  }
  if (bo.pin_count) return -EINVAL;
  const mem = await ttm_bo_mem_space(bo, placement, ctx);
  if (typeof mem === "number") return mem;
  return ttm_bo_move_with_hops(bo, placement, mem, false, ctx);
}

/**
 * ttm_bo_init_reserved(): a new BO, validated into `placement` and returned reserved. On
 * failure the BO is released (destroy runs) and the error returned.
 */
export async function ttm_bo_init_reserved(bo: ttm_buffer_object, placement: ttm_placement, alignment: number,
  ctx: ttm_operation_ctx, resv: dma_resv | null, destroy: (bo: ttm_buffer_object) => void): Promise<number> {
  bo.destroy = destroy;
  bo.page_alignment = alignment || 1;
  if (resv) bo.resv = resv;
  else dma_resv_trylock(bo.resv);
  INIT_WORK(bo.delayed_delete, () => ttm_bo_delayed_delete(bo), "ttm_bo_delayed_delete");
  const sys = ttm_resource_alloc(bo, { fpfn: 0, lpfn: 0, mem_type: TTM_PL_SYSTEM, flags: 0 });
  if (typeof sys === "number") return sys;
  bo.resource = sys;
  const r = await ttm_bo_validate(bo, placement, ctx);
  if (r) {
    if (!resv) dma_resv_unlock(bo.resv);
    ttm_bo_put(bo);
    return r;
  }
  return 0;
}

/** Frees the backing and calls the driver's destroy (ttm_bo_cleanup_memtype_use + release). */
function ttm_bo_cleanup(bo: ttm_buffer_object): void {
  bo.bdev.funcs.delete_mem_notify?.(bo);
  ttm_bo_tt_destroy(bo);
  ttm_resource_free(bo, bo.resource);
  bo.resource = null;
  dma_resv_fini(bo._resv);
  bo.destroy?.(bo);
}

async function ttm_bo_delayed_delete(bo: ttm_buffer_object): Promise<void> {
  await dma_resv_wait_timeout(bo.resv, dma_resv_usage.DMA_RESV_USAGE_BOOKKEEP, false, Number.MAX_SAFE_INTEGER);
  await dma_resv_lock(bo.resv);
  ttm_bo_cleanup(bo);
  dma_resv_unlock(bo.resv);
}

/** ttm_bo_release(): the last reference went; clean up now if idle, else once it is. */
function ttm_bo_release(bo: ttm_buffer_object): void {
  if (!bo.deleted) {
    bo.bdev.funcs.release_notify?.(bo);
    bo.deleted = true;
  }
  if (bo.resource) {
    bo.pin_count = 0;
    ttm_resource_move_to_lru_tail(bo.resource);
  }
  if (!dma_resv_test_signaled(bo.resv, dma_resv_usage.DMA_RESV_USAGE_BOOKKEEP) || !dma_resv_trylock(bo.resv)) {
    bo.bdev.wqs.queue_work(bo.bdev.wq, bo.delayed_delete);
    return;
  }
  ttm_bo_cleanup(bo);
  dma_resv_unlock(bo.resv);
}

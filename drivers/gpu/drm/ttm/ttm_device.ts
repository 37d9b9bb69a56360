// Mirrors drivers/gpu/drm/ttm/ttm_device.c and include/drm/ttm/ttm_device.h (Linux 6.8): a TTM
// device: the driver's callbacks (tt creation, moves, eviction policy, CPU access to resources)
// and one resource manager per memory type. The SYSTEM manager is TTM's own.

import type { Kernel } from "../../../../kernel/kernel.ts";
import type { Workqueues, workqueue_struct } from "../../../../kernel/workqueue.ts";
import type { ttm_buffer_object, ttm_operation_ctx } from "./ttm_bo.ts";
import { ttm_resource, ttm_resource_manager, ttm_resource_manager_init, ttm_resource_manager_set_used } from "./ttm_resource.ts";
import type { ttm_tt } from "./ttm_tt.ts";
import type { ttm_place, ttm_placement } from "../../../../include/drm/ttm/ttm_placement.ts";
import { TTM_NUM_MEM_TYPES, TTM_PL_SYSTEM } from "../../../../include/drm/ttm/ttm_placement.ts";
import type { iosys_map } from "../../../../include/linux/iosys-map.ts";
import type { device } from "../../../base/core.ts";

export interface ttm_device_funcs {
  ttm_tt_create(bo: ttm_buffer_object, page_flags: number): ttm_tt | null;
  ttm_tt_populate(bdev: ttm_device, tt: ttm_tt, bo: ttm_buffer_object, ctx: ttm_operation_ctx): number;
  ttm_tt_unpopulate(bdev: ttm_device, tt: ttm_tt, bo: ttm_buffer_object): void;
  ttm_tt_destroy(bdev: ttm_device, tt: ttm_tt): void;
  /** May TTM evict `bo` to make room for `place`? */
  eviction_valuable(bo: ttm_buffer_object, place: ttm_place): boolean;
  /** Where an evicted `bo` should go (empty: just drop the backing). */
  evict_flags(bo: ttm_buffer_object, placement: ttm_placement): void;
  /** Moves `bo` into `new_mem`; -EMULTIHOP asks for a bounce through `hop`. */
  move(bo: ttm_buffer_object, evict: boolean, ctx: ttm_operation_ctx, new_mem: ttm_resource, hop: ttm_place): Promise<number>;
  /** Fills res.bus for CPU access; -EINVAL if the CPU cannot reach it. */
  io_mem_reserve(bdev: ttm_device, res: ttm_resource): number;
  /**
   * kemu: a CPU mapping of bytes [offset, offset + size) of an io resource, which must be
   * physically contiguous (the kernel builds it from io_mem_pfn and ioremap); null if the CPU
   * cannot reach it.
   */
  io_mem_map(bo: ttm_buffer_object, res: ttm_resource, offset: number, size: number): iosys_map | null;
  release_notify?(bo: ttm_buffer_object): void;
  delete_mem_notify?(bo: ttm_buffer_object): void;
}

export class ttm_device {
  readonly man_drv: Array<ttm_resource_manager | null> = new Array(TTM_NUM_MEM_TYPES).fill(null);
  readonly sysman: ttm_resource_manager;
  /** Runs delayed destruction of BOs still busy when their last reference went. */
  wq!: workqueue_struct;

  constructor(
    readonly k: Kernel,
    readonly wqs: Workqueues,
    readonly funcs: ttm_device_funcs,
    /** The device DMA mappings are made for. */
    readonly dev: device,
  ) {
    this.sysman = new ttm_resource_manager(this);
  }
}

/** The SYSTEM manager: pages come with the tt, the resource only records the placement. */
const ttm_sys_manager_func = {
  alloc(_man: ttm_resource_manager, bo: ttm_buffer_object, place: ttm_place): ttm_resource {
    return new ttm_resource(bo, TTM_PL_SYSTEM, bo.base_size, place.flags);
  },
  free(): void {},
};

/** ttm_device_init(): the SYSTEM manager and the delayed-destroy workqueue. */
export function ttm_device_init(bdev: ttm_device): number {
  const man = bdev.sysman;
  man.use_tt = true;
  man.func = ttm_sys_manager_func;
  ttm_resource_manager_init(man, 0);
  ttm_set_driver_manager(bdev, TTM_PL_SYSTEM, man);
  ttm_resource_manager_set_used(man, true);
  bdev.wq = bdev.wqs.alloc_workqueue("ttm", 0, 16);
  return 0;
}

export async function ttm_device_fini(bdev: ttm_device): Promise<void> {
  await bdev.wqs.destroy_workqueue(bdev.wq);
  ttm_resource_manager_set_used(bdev.sysman, false);
  ttm_set_driver_manager(bdev, TTM_PL_SYSTEM, null);
}

export function ttm_set_driver_manager(bdev: ttm_device, type: number, man: ttm_resource_manager | null): void {
  bdev.man_drv[type] = man;
}

export function ttm_manager_type(bdev: ttm_device, type: number): ttm_resource_manager | null {
  return bdev.man_drv[type] ?? null;
}

// Mirrors drivers/gpu/drm/ttm/ttm_resource.c and include/drm/ttm/ttm_resource.h (Linux 6.8):
// resources (a BO's backing in one memory type) and resource managers (one per memory type,
// with a driver allocator and an LRU per priority that eviction walks, oldest first).

import type { ttm_buffer_object } from "./ttm_bo.ts";
import type { ttm_device } from "./ttm_device.ts";
import type { ttm_place, ttm_placement } from "../../../../include/drm/ttm/ttm_placement.ts";
import { TTM_PL_FLAG_CONTIGUOUS } from "../../../../include/drm/ttm/ttm_placement.ts";

export const TTM_MAX_BO_PRIORITY = 4;

/** struct ttm_bus_placement: where the CPU reaches the resource (a BAR offset for VRAM). */
export interface ttm_bus_placement {
  offset: number;
  is_iomem: boolean;
}

export class ttm_resource {
  /** First page in the manager's space, for managers whose resources are one range. */
  start = 0;
  readonly bus: ttm_bus_placement = { offset: 0, is_iomem: false };
  /** On an LRU list (unpinned) or off it (pinned, or being freed). */
  on_lru = false;

  constructor(
    readonly bo: ttm_buffer_object,
    readonly mem_type: number,
    /** Size in bytes. */
    readonly size: number,
    /** TTM_PL_FLAG_* of the place it was allocated for. */
    public placement: number,
  ) {}
}

export interface ttm_resource_manager_func {
  /** Returns a resource or -ENOSPC (the manager is full) / another -errno. */
  alloc(man: ttm_resource_manager, bo: ttm_buffer_object, place: ttm_place): ttm_resource | number;
  free(man: ttm_resource_manager, res: ttm_resource): void;
  /** Does `res` satisfy `place` (range and contiguity)? */
  compatible?(man: ttm_resource_manager, res: ttm_resource, place: ttm_place, size: number): boolean;
  debug?(man: ttm_resource_manager): string[];
}

export class ttm_resource_manager {
  use_type = false;
  use_tt = false;
  size = 0;
  func: ttm_resource_manager_func | null = null;
  /** Bytes handed out (ttm_resource_manager_usage). */
  usage = 0;
  readonly lru: ttm_resource[][] = Array.from({ length: TTM_MAX_BO_PRIORITY }, () => []);

  constructor(readonly bdev: ttm_device) {}
}

/** ttm_resource_manager_init(): an empty manager of `size` (bytes or pages as the driver likes). */
export function ttm_resource_manager_init(man: ttm_resource_manager, size: number): void {
  man.size = size;
  man.usage = 0;
  for (const l of man.lru) l.length = 0;
}

export function ttm_resource_manager_set_used(man: ttm_resource_manager, used: boolean): void {
  man.use_type = used;
}

export function ttm_resource_manager_usage(man: ttm_resource_manager): number {
  return man.usage;
}

/** ttm_resource_alloc(): asks the manager of `place.mem_type`. */
export function ttm_resource_alloc(bo: ttm_buffer_object, place: ttm_place): ttm_resource | number {
  const man = bo.bdev.man_drv[place.mem_type]!;
  const res = man.func!.alloc(man, bo, place);
  if (typeof res === "number") return res;
  man.usage += res.size;
  ttm_resource_add_bulk_move(res, bo);
  return res;
}

/** ttm_resource_free(): gives the resource back and takes it off the LRU. */
export function ttm_resource_free(bo: ttm_buffer_object, res: ttm_resource | null): void {
  if (!res) return;
  const man = bo.bdev.man_drv[res.mem_type]!;
  ttm_resource_del_bulk_move(res, bo);
  man.usage -= res.size;
  man.func!.free(man, res);
}

function lru_remove(res: ttm_resource, bo: ttm_buffer_object): void {
  const list = bo.bdev.man_drv[res.mem_type]!.lru[bo.priority]!;
  const i = list.indexOf(res);
  if (i >= 0) list.splice(i, 1);
  res.on_lru = false;
}

/** Puts the resource at the LRU tail (most recently used); pinned BOs stay off the LRU. */
export function ttm_resource_move_to_lru_tail(res: ttm_resource): void {
  const bo = res.bo;
  lru_remove(res, bo);
  if (bo.pin_count) return;
  bo.bdev.man_drv[res.mem_type]!.lru[bo.priority]!.push(res);
  res.on_lru = true;
}

function ttm_resource_add_bulk_move(res: ttm_resource, _bo: ttm_buffer_object): void {
  ttm_resource_move_to_lru_tail(res);
}

function ttm_resource_del_bulk_move(res: ttm_resource, bo: ttm_buffer_object): void {
  lru_remove(res, bo);
}

/** ttm_resource_compatible(): does `res` satisfy one of the placement's preferred places? */
export function ttm_resource_compatible(res: ttm_resource, placement: ttm_placement): boolean {
  return placement.placement.some((place) => ttm_resource_places_compat(res, place));
}

export function ttm_resource_places_compat(res: ttm_resource, place: ttm_place): boolean {
  if (res.mem_type !== place.mem_type) return false;
  if (place.flags & TTM_PL_FLAG_CONTIGUOUS && !(res.placement & TTM_PL_FLAG_CONTIGUOUS)) return false;
  const man = res.bo.bdev.man_drv[res.mem_type]!;
  return man.func?.compatible ? man.func.compatible(man, res, place, res.size) : true;
}

/** The resources on a manager's LRUs, lowest priority first, oldest first. */
export function ttm_resource_manager_lru_walk(man: ttm_resource_manager): ttm_resource[] {
  return man.lru.flatMap((l) => [...l]);
}

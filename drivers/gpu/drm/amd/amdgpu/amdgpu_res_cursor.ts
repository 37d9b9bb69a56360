// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_res_cursor.h (Linux 6.8): walking a resource in
// physically contiguous pieces. For VRAM the pieces are the buddy blocks in list order; `start`
// is the absolute VRAM byte offset of the current position, `size` the bytes left in the current
// piece (never more than `remaining`). For GTT the resource is one GART range, for SYSTEM (or no
// resource) plain offsets.

import type { ttm_resource } from "../../ttm/ttm_resource.ts";
import { TTM_PL_SYSTEM, TTM_PL_TT, TTM_PL_VRAM } from "../../../../../include/drm/ttm/ttm_placement.ts";
import type { amdgpu_vram_mgr_resource } from "./amdgpu_vram_mgr.ts";
import { drm_buddy_block_is_clear, type drm_buddy_block } from "../../drm_buddy.ts";

export class amdgpu_res_cursor {
  start = 0;
  size = 0;
  remaining = 0;
  mem_type = TTM_PL_SYSTEM;
  /** Index of the current block (VRAM). */
  node = 0;
  blocks: readonly drm_buddy_block[] = [];
  chunk_size = 4096;
}

function block_size(cur: amdgpu_res_cursor, b: drm_buddy_block): number {
  return cur.chunk_size * 2 ** b.order;
}

/** amdgpu_res_first(): positions the cursor `start` bytes into `res`, for `size` bytes. */
export function amdgpu_res_first(res: ttm_resource | null, start: number, size: number, cur: amdgpu_res_cursor): void {
  cur.remaining = size;
  if (!res || (res.mem_type !== TTM_PL_VRAM && res.mem_type !== TTM_PL_TT)) {
    cur.start = start;
    cur.size = size;
    cur.mem_type = res?.mem_type ?? TTM_PL_SYSTEM;
    return;
  }
  cur.mem_type = res.mem_type;
  if (res.mem_type === TTM_PL_TT) {
    cur.start = res.start * 4096 + start;
    cur.size = size;
    return;
  }
  const vres = res as amdgpu_vram_mgr_resource;
  cur.blocks = vres.blocks;
  let i = 0;
  while (i < cur.blocks.length && start >= block_size(cur, cur.blocks[i]!)) {
    start -= block_size(cur, cur.blocks[i]!);
    i++;
  }
  cur.node = i;
  const b = cur.blocks[i];
  cur.start = b ? b.offset + start : 0;
  cur.size = b ? Math.min(block_size(cur, b) - start, size) : 0;
}

/** amdgpu_res_next(): advances `size` bytes (at most the current piece). */
export function amdgpu_res_next(cur: amdgpu_res_cursor, size: number): void {
  cur.remaining -= size;
  if (!cur.remaining) return;
  cur.size -= size;
  if (cur.size) {
    cur.start += size;
    return;
  }
  if (cur.mem_type === TTM_PL_VRAM) {
    cur.node++;
    const b = cur.blocks[cur.node];
    if (!b) return;
    cur.start = b.offset;
    cur.size = Math.min(block_size(cur, b), cur.remaining);
  } else {
    cur.start += size;
    cur.size = cur.remaining;
  }
}

/** amdgpu_res_cleared(): the current VRAM piece is known to be zeroed. */
export function amdgpu_res_cleared(cur: amdgpu_res_cursor): boolean {
  if (cur.mem_type !== TTM_PL_VRAM) return false;
  const b = cur.blocks[cur.node];
  return !!b && drm_buddy_block_is_clear(b);
}

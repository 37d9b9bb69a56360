// Mirrors drivers/gpu/drm/drm_buddy.c and include/drm/drm_buddy.h (Linux 6.10): the binary buddy
// allocator amdgpu's VRAM manager sits on. Power-of-two blocks in a forest of roots (one root per
// set bit of the managed size), per-order free lists kept sorted by offset, clear/dirty tracking
// with merges only between blocks of the same state (force-merged when nothing else fits), range
// ("bias") allocation, top-down allocation, contiguous allocation with the try-harder fallback,
// and trimming. Addresses are JS numbers: offsets stay below 2^53, hence DRM_BUDDY_MAX_ORDER.

import { EINVAL, ENOMEM, ENOSPC } from "../../../include/uapi/asm-generic/errno.ts";

export const DRM_BUDDY_RANGE_ALLOCATION = 1 << 0;
export const DRM_BUDDY_TOPDOWN_ALLOCATION = 1 << 1;
export const DRM_BUDDY_CONTIGUOUS_ALLOCATION = 1 << 2;
export const DRM_BUDDY_CLEAR_ALLOCATION = 1 << 3;
export const DRM_BUDDY_CLEARED = 1 << 4;
export const DRM_BUDDY_TRIM_DISABLE = 1 << 5;

export const DRM_BUDDY_ALLOCATED = 1;
export const DRM_BUDDY_FREE = 2;
export const DRM_BUDDY_SPLIT = 3;

/**
 * The kernel's header keeps the offset in bits 63:12, so the largest order is 63 - PAGE_SHIFT.
 * kemu offsets are exact JS integers (< 2^53): the largest block is 2^52 bytes.
 */
export const DRM_BUDDY_MAX_ORDER = 52 - 12;

export class drm_buddy_block {
  /** Byte offset inside the managed space (the header's offset bits). */
  offset: number;
  order: number;
  state = 0;
  /** DRM_BUDDY_HEADER_CLEAR: the block's memory is known to be zeroed. */
  clear = false;
  left: drm_buddy_block | null = null;
  right: drm_buddy_block | null = null;
  parent: drm_buddy_block | null;

  constructor(parent: drm_buddy_block | null, order: number, offset: number) {
    this.parent = parent;
    this.order = order;
    this.offset = offset;
  }
}

export class drm_buddy {
  /** Per order: free blocks sorted by ascending offset. */
  free_list: drm_buddy_block[][] = [];
  roots: drm_buddy_block[] = [];
  n_roots = 0;
  max_order = 0;
  chunk_size = 0;
  size = 0;
  avail = 0;
  clear_avail = 0;
}

// ---- include/drm/drm_buddy.h helpers --------------------------------------------------------

export function drm_buddy_block_offset(block: drm_buddy_block): number {
  return block.offset;
}

export function drm_buddy_block_order(block: drm_buddy_block): number {
  return block.order;
}

export function drm_buddy_block_state(block: drm_buddy_block): number {
  return block.state;
}

export function drm_buddy_block_is_allocated(block: drm_buddy_block): boolean {
  return block.state === DRM_BUDDY_ALLOCATED;
}

export function drm_buddy_block_is_clear(block: drm_buddy_block): boolean {
  return block.clear;
}

export function drm_buddy_block_is_free(block: drm_buddy_block): boolean {
  return block.state === DRM_BUDDY_FREE;
}

export function drm_buddy_block_is_split(block: drm_buddy_block): boolean {
  return block.state === DRM_BUDDY_SPLIT;
}

export function drm_buddy_block_size(mm: drm_buddy, block: drm_buddy_block): number {
  return mm.chunk_size * 2 ** block.order;
}

// ---- integer helpers on 53-bit values (no 32-bit bitwise operators on sizes) -----------------

/** Floor of log2 for a positive integer, exact near powers of two. */
export function ilog2(x: number): number {
  let e = Math.floor(Math.log2(x));
  if (2 ** e > x) e--;
  if (2 ** (e + 1) <= x) e++;
  return e;
}

export function is_power_of_2(x: number): boolean {
  return x > 0 && 2 ** ilog2(x) === x;
}

function roundup_pow_of_two(x: number): number {
  return is_power_of_2(x) ? x : 2 ** (ilog2(x) + 1);
}

function rounddown_pow_of_two(x: number): number {
  return 2 ** ilog2(x);
}

function is_aligned(x: number, a: number): boolean {
  return x % a === 0;
}

function round_up(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

function round_down(x: number, a: number): number {
  return Math.floor(x / a) * a;
}

/** hweight64(): the number of set bits, i.e. the number of roots of a managed size. */
function hweight(x: number): number {
  let n = 0;
  while (x > 0) {
    x -= 2 ** ilog2(x);
    n++;
  }
  return n;
}

/** fls(pages) - 1 for a page count. */
function top_order(pages: number): number {
  return ilog2(pages);
}

function overlaps(s1: number, e1: number, s2: number, e2: number): boolean {
  return s1 <= e2 && e1 >= s2;
}

function contains(s1: number, e1: number, s2: number, e2: number): boolean {
  return s1 <= s2 && e1 >= e2;
}

// ---- free lists -------------------------------------------------------------------------------

function list_index(list: drm_buddy_block[], offset: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.offset < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function list_insert_sorted(mm: drm_buddy, block: drm_buddy_block): void {
  const list = mm.free_list[block.order]!;
  list.splice(list_index(list, block.offset), 0, block);
}

function list_remove(mm: drm_buddy, block: drm_buddy_block): void {
  const list = mm.free_list[block.order]!;
  const i = list_index(list, block.offset);
  if (list[i] === block) list.splice(i, 1);
}

function clear_reset(block: drm_buddy_block): void {
  block.clear = false;
}

function mark_cleared(block: drm_buddy_block): void {
  block.clear = true;
}

function mark_allocated(mm: drm_buddy, block: drm_buddy_block): void {
  if (block.state === DRM_BUDDY_FREE) list_remove(mm, block);
  block.state = DRM_BUDDY_ALLOCATED;
}

function mark_free(mm: drm_buddy, block: drm_buddy_block): void {
  block.state = DRM_BUDDY_FREE;
  list_insert_sorted(mm, block);
}

function mark_split(mm: drm_buddy, block: drm_buddy_block): void {
  if (block.state === DRM_BUDDY_FREE) list_remove(mm, block);
  block.state = DRM_BUDDY_SPLIT;
}

function __get_buddy(block: drm_buddy_block): drm_buddy_block | null {
  const parent = block.parent;
  if (!parent) return null;
  return parent.left === block ? parent.right : parent.left;
}

/** drm_get_buddy(): the block's buddy, or null for a root that cannot merge further. */
export function drm_get_buddy(block: drm_buddy_block): drm_buddy_block | null {
  return __get_buddy(block);
}

/** Frees upwards, merging with free buddies of the same clear state (any state if forced). */
function __drm_buddy_free(mm: drm_buddy, block: drm_buddy_block, force_merge: boolean): number {
  let parent: drm_buddy_block | null;
  while ((parent = block.parent)) {
    const buddy = __get_buddy(block)!;
    if (!drm_buddy_block_is_free(buddy)) break;
    if (!force_merge) {
      if (block.clear !== buddy.clear) break;
      if (block.clear) mark_cleared(parent);
    }
    list_remove(mm, buddy);
    if (force_merge && buddy.clear) mm.clear_avail -= drm_buddy_block_size(mm, buddy);
    parent.left = null;
    parent.right = null;
    block = parent;
  }
  mark_free(mm, block);
  return block.order;
}

/** Merges free buddies of different clear state below `min_order` inside [start, end]. */
function __force_merge(mm: drm_buddy, start: number, end: number, min_order: number): number {
  if (!min_order) return -ENOMEM;
  if (min_order > mm.max_order) return -EINVAL;
  for (let i = min_order - 1; i >= 0; i--) {
    const list = mm.free_list[i]!;
    for (let j = list.length - 1; j >= 0; j--) {
      const block = list[j];
      if (!block || !block.parent) continue;
      const bs = block.offset;
      const be = bs + drm_buddy_block_size(mm, block) - 1;
      if (!contains(start, end, bs, be)) continue;
      const buddy = __get_buddy(block)!;
      if (!drm_buddy_block_is_free(buddy)) continue;
      list_remove(mm, block);
      if (block.clear) mm.clear_avail -= drm_buddy_block_size(mm, block);
      const order = __drm_buddy_free(mm, block, true);
      if (order >= min_order) return 0;
      // The list shrank by one or two entries below j; restart from its (new) end.
      j = Math.min(j, list.length);
    }
  }
  return -ENOMEM;
}

/** drm_buddy_init(): manages `size` bytes (rounded down to `chunk_size`) as power-of-two roots. */
export function drm_buddy_init(mm: drm_buddy, size: number, chunk_size: number): number {
  if (size < chunk_size) return -EINVAL;
  if (chunk_size < 4096) return -EINVAL;
  if (!is_power_of_2(chunk_size)) return -EINVAL;
  size = round_down(size, chunk_size);
  mm.size = size;
  mm.avail = size;
  mm.clear_avail = 0;
  mm.chunk_size = chunk_size;
  mm.max_order = ilog2(size) - ilog2(chunk_size);
  if (mm.max_order > DRM_BUDDY_MAX_ORDER) return -EINVAL;
  mm.free_list = [];
  for (let i = 0; i <= mm.max_order; i++) mm.free_list.push([]);
  mm.n_roots = hweight(size);
  mm.roots = [];
  let offset = 0;
  while (size > 0) {
    const order = ilog2(size) - ilog2(chunk_size);
    const root_size = chunk_size * 2 ** order;
    const root = new drm_buddy_block(null, order, offset);
    mark_free(mm, root);
    mm.roots.push(root);
    offset += root_size;
    size -= root_size;
  }
  return 0;
}

/**
 * drm_buddy_fini(): force-merges each root back and checks that everything was returned.
 * Returns the number of problems found (the kernel WARNs); `warn` receives each message.
 */
export function drm_buddy_fini(mm: drm_buddy, warn?: (msg: string) => void): number {
  let size = mm.size;
  let problems = 0;
  for (const root of mm.roots) {
    const order = ilog2(size) - ilog2(mm.chunk_size);
    __force_merge(mm, root.offset, root.offset + size, order);
    if (!drm_buddy_block_is_free(root)) {
      problems++;
      warn?.(`drm_buddy_fini: root at ${root.offset} not free`);
    }
    size -= mm.chunk_size * 2 ** order;
  }
  if (mm.avail !== mm.size) {
    problems++;
    warn?.(`drm_buddy_fini: avail ${mm.avail} != size ${mm.size}`);
  }
  mm.roots = [];
  mm.free_list = [];
  return problems;
}

function split_block(mm: drm_buddy, block: drm_buddy_block): number {
  const order = block.order - 1;
  const offset = block.offset;
  block.left = new drm_buddy_block(block, order, offset);
  block.right = new drm_buddy_block(block, order, offset + mm.chunk_size * 2 ** order);
  mark_free(mm, block.left);
  mark_free(mm, block.right);
  if (block.clear) {
    mark_cleared(block.left);
    mark_cleared(block.right);
    clear_reset(block);
  }
  mark_split(mm, block);
  return 0;
}

/** drm_buddy_free_block(): returns one allocated block. */
export function drm_buddy_free_block(mm: drm_buddy, block: drm_buddy_block): void {
  if (!drm_buddy_block_is_allocated(block)) throw new Error("drm_buddy_free_block: block not allocated");
  mm.avail += drm_buddy_block_size(mm, block);
  if (block.clear) mm.clear_avail += drm_buddy_block_size(mm, block);
  __drm_buddy_free(mm, block, false);
}

function __drm_buddy_free_list(mm: drm_buddy, objects: drm_buddy_block[], mark_clear: boolean, mark_dirty: boolean): void {
  for (const block of objects) {
    if (mark_clear) mark_cleared(block);
    else if (mark_dirty) clear_reset(block);
    drm_buddy_free_block(mm, block);
  }
  objects.length = 0;
}

/** Frees a partial allocation without touching the clear bits (still internal to the allocator). */
function drm_buddy_free_list_internal(mm: drm_buddy, objects: drm_buddy_block[]): void {
  __drm_buddy_free_list(mm, objects, false, false);
}

/** drm_buddy_free_list(): frees every block, marked cleared with DRM_BUDDY_CLEARED, else dirty. */
export function drm_buddy_free_list(mm: drm_buddy, objects: drm_buddy_block[], flags = 0): void {
  const mark_clear = (flags & DRM_BUDDY_CLEARED) !== 0;
  __drm_buddy_free_list(mm, objects, mark_clear, !mark_clear);
}

function block_incompatible(block: drm_buddy_block, flags: number): boolean {
  const needs_clear = (flags & DRM_BUDDY_CLEAR_ALLOCATION) !== 0;
  return needs_clear !== block.clear;
}

type alloc_result = drm_buddy_block | number;

function __alloc_range_bias(mm: drm_buddy, start: number, end: number, order: number, flags: number,
  fallback: boolean): alloc_result {
  const req_size = mm.chunk_size * 2 ** order;
  end = end - 1;
  const dfs: drm_buddy_block[] = [...mm.roots].reverse();
  while (dfs.length) {
    const block = dfs.pop()!;
    if (block.order < order) continue;
    const bs = block.offset;
    const be = bs + drm_buddy_block_size(mm, block) - 1;
    if (!overlaps(start, end, bs, be)) continue;
    if (drm_buddy_block_is_allocated(block)) continue;
    if (bs < start || be > end) {
      const adj_start = Math.max(bs, start);
      const adj_end = Math.min(be, end);
      if (round_down(adj_end + 1, req_size) <= round_up(adj_start, req_size)) continue;
    }
    if (!fallback && block_incompatible(block, flags)) continue;
    if (contains(start, end, bs, be) && order === block.order) {
      if (drm_buddy_block_is_free(block)) return block;
      continue;
    }
    if (!drm_buddy_block_is_split(block)) split_block(mm, block);
    dfs.push(block.right!, block.left!);
  }
  return -ENOSPC;
}

function __drm_buddy_alloc_range_bias(mm: drm_buddy, start: number, end: number, order: number, flags: number): alloc_result {
  const block = __alloc_range_bias(mm, start, end, order, flags, false);
  if (typeof block === "number") return __alloc_range_bias(mm, start, end, order, flags, true);
  return block;
}

/** The highest-offset compatible free block of any order >= `order` (top-down allocation). */
function get_maxblock(mm: drm_buddy, order: number, flags: number): drm_buddy_block | null {
  let max_block: drm_buddy_block | null = null;
  for (let i = order; i <= mm.max_order; i++) {
    const list = mm.free_list[i]!;
    let block: drm_buddy_block | null = null;
    for (let j = list.length - 1; j >= 0; j--) {
      if (block_incompatible(list[j]!, flags)) continue;
      block = list[j]!;
      break;
    }
    if (!block) continue;
    if (!max_block || block.offset > max_block.offset) max_block = block;
  }
  return max_block;
}

function alloc_from_freelist(mm: drm_buddy, order: number, flags: number): alloc_result {
  let block: drm_buddy_block | null = null;
  let tmp = order;
  if (flags & DRM_BUDDY_TOPDOWN_ALLOCATION) {
    block = get_maxblock(mm, order, flags);
    if (block) tmp = block.order;
  } else {
    for (tmp = order; tmp <= mm.max_order && !block; tmp++) {
      const list = mm.free_list[tmp]!;
      for (let j = list.length - 1; j >= 0; j--) {
        if (block_incompatible(list[j]!, flags)) continue;
        block = list[j]!;
        break;
      }
    }
    if (block) tmp--;
  }
  if (!block) {
    // Fallback: any free block, clear or dirty.
    for (tmp = order; tmp <= mm.max_order; tmp++) {
      const list = mm.free_list[tmp]!;
      if (list.length) {
        block = list[list.length - 1]!;
        break;
      }
    }
    if (!block) return -ENOSPC;
  }
  while (tmp !== order) {
    split_block(mm, block);
    block = block.right!;
    tmp--;
  }
  return block;
}

/**
 * Depth-first over `dfs`, allocates every free block inside [start, start+size). With
 * `total_on_err`, a -ENOSPC keeps what was allocated and reports how much (try-harder path).
 */
function __alloc_range(mm: drm_buddy, dfs: drm_buddy_block[], start: number, size: number,
  blocks: drm_buddy_block[], total_on_err: { filled: number } | null): number {
  const allocated: drm_buddy_block[] = [];
  let total = 0;
  const end = start + size - 1;
  let err = 0;
  while (dfs.length) {
    const block = dfs.pop()!;
    const bs = block.offset;
    const be = bs + drm_buddy_block_size(mm, block) - 1;
    if (!overlaps(start, end, bs, be)) continue;
    if (drm_buddy_block_is_allocated(block)) {
      err = -ENOSPC;
      break;
    }
    if (contains(start, end, bs, be)) {
      if (drm_buddy_block_is_free(block)) {
        mark_allocated(mm, block);
        total += drm_buddy_block_size(mm, block);
        mm.avail -= drm_buddy_block_size(mm, block);
        if (block.clear) mm.clear_avail -= drm_buddy_block_size(mm, block);
        allocated.push(block);
        continue;
      } else if (!mm.clear_avail) {
        err = -ENOSPC;
        break;
      }
    }
    if (!drm_buddy_block_is_split(block)) split_block(mm, block);
    dfs.push(block.right!, block.left!);
  }
  if (!err && total < size) err = -ENOSPC;
  if (!err) {
    blocks.push(...allocated);
    return 0;
  }
  if (err === -ENOSPC && total_on_err) {
    blocks.push(...allocated);
    total_on_err.filled = total;
  } else {
    drm_buddy_free_list_internal(mm, allocated);
  }
  return err;
}

function __drm_buddy_alloc_range(mm: drm_buddy, start: number, size: number,
  total_on_err: { filled: number } | null, blocks: drm_buddy_block[]): number {
  return __alloc_range(mm, [...mm.roots].reverse(), start, size, blocks, total_on_err);
}

/** Contiguous space made of non-buddy neighbours: grow right from a free block, then left. */
function __alloc_contig_try_harder(mm: drm_buddy, size: number, min_block_size: number, blocks: drm_buddy_block[]): number {
  const modify_size = rounddown_pow_of_two(size);
  const order = top_order(modify_size / mm.chunk_size);
  if (order === 0) return -ENOSPC;
  const list = mm.free_list[order]!;
  if (!list.length) return -ENOSPC;
  for (const block of [...list].reverse()) {
    const rhs_offset = block.offset;
    const got = { filled: 0 };
    const tried: drm_buddy_block[] = [];
    let err = __drm_buddy_alloc_range(mm, rhs_offset, size, got, tried);
    if (!err) {
      blocks.push(...tried);
      return 0;
    }
    if (err !== -ENOSPC) return err;
    let lhs_size = Math.max(size - got.filled, min_block_size);
    if (!is_aligned(lhs_size, min_block_size)) lhs_size = round_up(lhs_size, min_block_size);
    const lhs_offset = block.offset - lhs_size;
    const lhs: drm_buddy_block[] = [];
    err = lhs_offset < 0 ? -ENOSPC : __drm_buddy_alloc_range(mm, lhs_offset, lhs_size, null, lhs);
    if (!err) {
      blocks.push(...lhs, ...tried);
      return 0;
    }
    drm_buddy_free_list_internal(mm, tried);
    if (err !== -ENOSPC) return err;
  }
  return -ENOSPC;
}

/**
 * drm_buddy_block_trim(): shrinks a single allocated block to `new_size` (from `start`, default
 * the block's own offset), returning the unused tail to the allocator. `blocks` must hold exactly
 * that one block; on success it holds the blocks that make up the new size, in ascending order.
 */
export function drm_buddy_block_trim(mm: drm_buddy, start: number | null, new_size: number, blocks: drm_buddy_block[]): number {
  if (blocks.length !== 1) return -EINVAL;
  const block = blocks[0]!;
  const block_start = block.offset;
  const block_end = block_start + drm_buddy_block_size(mm, block);
  if (!drm_buddy_block_is_allocated(block)) return -EINVAL;
  if (new_size > drm_buddy_block_size(mm, block)) return -EINVAL;
  if (!new_size || !is_aligned(new_size, mm.chunk_size)) return -EINVAL;
  if (new_size === drm_buddy_block_size(mm, block)) return 0;
  let new_start = block_start;
  if (start !== null) {
    new_start = start;
    if (new_start < block_start || !is_aligned(new_start, mm.chunk_size)) return -EINVAL;
    if (new_start + new_size > block_end) return -EINVAL;
  }
  blocks.length = 0;
  mark_free(mm, block);
  mm.avail += drm_buddy_block_size(mm, block);
  if (block.clear) mm.clear_avail += drm_buddy_block_size(mm, block);
  // Detach from the parent so the partial free below cannot merge past this block.
  const parent = block.parent;
  block.parent = null;
  const err = __alloc_range(mm, [block], new_start, new_size, blocks, null);
  if (err) {
    mark_allocated(mm, block);
    mm.avail -= drm_buddy_block_size(mm, block);
    if (block.clear) mm.clear_avail -= drm_buddy_block_size(mm, block);
    blocks.unshift(block);
  }
  block.parent = parent;
  return err;
}

function __drm_buddy_alloc_blocks(mm: drm_buddy, start: number, end: number, order: number, flags: number): alloc_result {
  if (flags & DRM_BUDDY_RANGE_ALLOCATION) return __drm_buddy_alloc_range_bias(mm, start, end, order, flags);
  return alloc_from_freelist(mm, order, flags);
}

/**
 * drm_buddy_alloc_blocks(): allocates `size` bytes as power-of-two blocks of at least
 * `min_block_size`, inside [start, end) for range allocations, appending them to `blocks`.
 * An exact [start, start+size) == [start, end) request is a fixed-range allocation.
 * Returns 0, -EINVAL for bad arguments or -ENOSPC.
 */
export function drm_buddy_alloc_blocks(mm: drm_buddy, start: number, end: number, size: number, min_block_size: number,
  blocks: drm_buddy_block[], flags = 0): number {
  const cs = mm.chunk_size;
  if (size < cs) return -EINVAL;
  if (min_block_size < cs) return -EINVAL;
  if (!is_power_of_2(min_block_size)) return -EINVAL;
  if (!is_aligned(start, cs) || !is_aligned(end, cs) || !is_aligned(size, cs)) return -EINVAL;
  if (end > mm.size) return -EINVAL;
  if (start + size > mm.size) return -EINVAL;

  if (start + size === end) {
    if (!is_aligned(start, min_block_size) || !is_aligned(end, min_block_size)) return -EINVAL;
    return __drm_buddy_alloc_range(mm, start, size, null, blocks);
  }

  const original_size = size;
  const original_min_size = min_block_size;
  if (flags & DRM_BUDDY_CONTIGUOUS_ALLOCATION) {
    size = roundup_pow_of_two(size);
    min_block_size = size;
  } else if (!is_aligned(size, min_block_size)) {
    size = round_up(size, min_block_size);
  }
  if (ilog2(min_block_size) - ilog2(cs) > mm.max_order) return -EINVAL;

  let pages = size / cs;
  let order = top_order(pages);
  const min_order = ilog2(min_block_size) - ilog2(cs);
  const allocated: drm_buddy_block[] = [];
  for (;;) {
    order = Math.min(order, top_order(pages), mm.max_order);
    let block: alloc_result;
    for (;;) {
      block = __drm_buddy_alloc_blocks(mm, start, end, order, flags);
      if (typeof block !== "number") break;
      if (order-- === min_order) {
        if (mm.clear_avail && !__force_merge(mm, start, end, min_order)) {
          block = __drm_buddy_alloc_blocks(mm, start, end, min_order, flags);
          if (typeof block !== "number") {
            order = min_order;
            break;
          }
        }
        drm_buddy_free_list_internal(mm, allocated);
        if (flags & DRM_BUDDY_CONTIGUOUS_ALLOCATION && !(flags & DRM_BUDDY_RANGE_ALLOCATION)) {
          return __alloc_contig_try_harder(mm, original_size, original_min_size, blocks);
        }
        return -ENOSPC;
      }
    }
    mark_allocated(mm, block);
    mm.avail -= drm_buddy_block_size(mm, block);
    if (block.clear) mm.clear_avail -= drm_buddy_block_size(mm, block);
    allocated.push(block);
    pages -= 2 ** order;
    if (!pages) break;
  }

  if (!(flags & DRM_BUDDY_TRIM_DISABLE) && original_size !== size) {
    if (allocated.length === 1) {
      drm_buddy_block_trim(mm, null, original_size, allocated);
    } else {
      const last = allocated.pop()!;
      const trim_list = [last];
      drm_buddy_block_trim(mm, null, drm_buddy_block_size(mm, last) - (size - original_size), trim_list);
      allocated.push(...trim_list);
    }
  }
  blocks.push(...allocated);
  return 0;
}

/** drm_buddy_print(): the allocator state as drm_printf lines (debugfs amdgpu_vram_mm). */
export function drm_buddy_print(mm: drm_buddy): string[] {
  const out = [`chunk_size: ${mm.chunk_size / 1024}KiB, total: ${Math.floor(mm.size / 2 ** 20)}MiB, ` +
    `free: ${Math.floor(mm.avail / 2 ** 20)}MiB, clear_free: ${Math.floor(mm.clear_avail / 2 ** 20)}MiB`];
  for (let order = mm.max_order; order >= 0; order--) {
    const count = mm.free_list[order]!.length;
    const free = count * mm.chunk_size * 2 ** order;
    const amount = free < 2 ** 20 ? `${String(Math.floor(free / 1024)).padStart(8)} KiB` : `${String(Math.floor(free / 2 ** 20)).padStart(8)} MiB`;
    out.push(`order-${String(order).padStart(2)} free: ${amount}, blocks: ${count}`);
  }
  return out;
}

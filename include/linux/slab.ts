// Mirrors include/linux/slab.h (Linux 6.8, SLUB, x86-64): cache flags, the kmalloc size limits
// and ZERO_SIZE_PTR. The allocator itself is the Slab service in mm/slab_common.ts.

// asm/page_types.h values, kept local: include/linux/mm.ts pulls in most of mm/.
const PAGE_SHIFT = 12;
const PAGE_SIZE = 4096;

// Cache creation flags (a flag word: bit operators are fine).
export const SLAB_CONSISTENCY_CHECKS = 0x00000100;
export const SLAB_RED_ZONE = 0x00000400;
export const SLAB_POISON = 0x00000800;
export const SLAB_KMALLOC = 0x00001000;
export const SLAB_HWCACHE_ALIGN = 0x00002000;
export const SLAB_CACHE_DMA = 0x00004000;
export const SLAB_CACHE_DMA32 = 0x00008000;
export const SLAB_STORE_USER = 0x00010000;
export const SLAB_PANIC = 0x00040000;
export const SLAB_TYPESAFE_BY_RCU = 0x00080000;
export const SLAB_MEM_SPREAD = 0x00100000;
export const SLAB_TRACE = 0x00200000;
export const SLAB_NOLEAKTRACE = 0x00800000;
export const SLAB_NO_USER_FLAGS = 0x01000000;
/** Fault injection targets this cache when failslab/cache-filter is Y. */
export const SLAB_FAILSLAB = 0x02000000;
export const SLAB_ACCOUNT = 0x04000000;
export const SLAB_RECLAIM_ACCOUNT = 0x00020000;

/** x86 L1 cache line, the SLAB_HWCACHE_ALIGN unit. */
export const L1_CACHE_BYTES = 64;
export const ARCH_KMALLOC_MINALIGN = 8;
export const KMALLOC_MIN_SIZE = 8;
/** MAX_PAGE_ORDER (formerly MAX_ORDER) on x86-64: 4 MiB buddy blocks. */
export const MAX_PAGE_ORDER = 10;
/** PAGE_ALLOC_COSTLY_ORDER: SLUB's slub_max_order default. */
export const PAGE_ALLOC_COSTLY_ORDER = 3;
/** Larger kmalloc()s bypass the caches and go to the page allocator. */
export const KMALLOC_MAX_CACHE_SIZE = 2 * PAGE_SIZE;
/** Largest kmalloc() that can succeed. */
export const KMALLOC_MAX_SIZE = 2 ** (MAX_PAGE_ORDER + PAGE_SHIFT);

/**
 * kmalloc(0) returns ZERO_SIZE_PTR: non-NULL, holds nothing, and kfree() ignores it. In kemu
 * it is one shared empty buffer.
 */
export const ZERO_SIZE_PTR: Uint8Array = new Uint8Array(0);

export function ZERO_OR_NULL_PTR(p: unknown): boolean {
  return p === null || p === undefined || p === ZERO_SIZE_PTR;
}

/** get_order(): the smallest order with PAGE_SIZE << order >= size. */
export function get_order(size: number): number {
  let order = 0;
  while (PAGE_SIZE * 2 ** order < size) order++;
  return order;
}

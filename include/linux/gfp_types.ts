// Mirrors include/linux/gfp_types.h and gfpflags_allow_blocking() of include/linux/gfp.h
// (Linux 6.8, CONFIG_LOCKDEP=y, CONFIG_KASAN_HW_TAGS=n): the allocation flag bits, their
// composites, and the flag-name table of include/trace/events/mmflags.h used to print them.
// gfp_t is a 32-bit flag word, so bit operators are fine on it (it is never an address).

export type gfp_t = number;

// ---- single bits ------------------------------------------------------------------------
export const __GFP_DMA: gfp_t = 0x01;
export const __GFP_HIGHMEM: gfp_t = 0x02;
export const __GFP_DMA32: gfp_t = 0x04;
/** ZONE_MOVABLE allowed; also a mobility hint. */
export const __GFP_MOVABLE: gfp_t = 0x08;
export const __GFP_RECLAIMABLE: gfp_t = 0x10;
/** High priority: may dip into the atomic reserves. */
export const __GFP_HIGH: gfp_t = 0x20;
/** May start physical I/O. */
export const __GFP_IO: gfp_t = 0x40;
/** May call into the filesystem. */
export const __GFP_FS: gfp_t = 0x80;
export const __GFP_ZERO: gfp_t = 0x100;
// 0x200 is unused since __GFP_ATOMIC went away (6.3).
/** The caller may enter direct reclaim, i.e. may sleep. */
export const __GFP_DIRECT_RECLAIM: gfp_t = 0x400;
/** Wake kswapd when below the low watermark. */
export const __GFP_KSWAPD_RECLAIM: gfp_t = 0x800;
export const __GFP_WRITE: gfp_t = 0x1000;
/** Suppress allocation-failure reports (and fault-injection messages). */
export const __GFP_NOWARN: gfp_t = 0x2000;
export const __GFP_RETRY_MAYFAIL: gfp_t = 0x4000;
/** Must not fail: fault injection never hits it. */
export const __GFP_NOFAIL: gfp_t = 0x8000;
export const __GFP_NORETRY: gfp_t = 0x10000;
export const __GFP_MEMALLOC: gfp_t = 0x20000;
export const __GFP_COMP: gfp_t = 0x40000;
export const __GFP_NOMEMALLOC: gfp_t = 0x80000;
export const __GFP_HARDWALL: gfp_t = 0x100000;
export const __GFP_THISNODE: gfp_t = 0x200000;
/** Charge the allocation to the memory cgroup (kmalloc-cg-* caches). */
export const __GFP_ACCOUNT: gfp_t = 0x400000;
export const __GFP_ZEROTAGS: gfp_t = 0x800000;
/** 0 without CONFIG_KASAN_HW_TAGS, as on x86. */
export const __GFP_SKIP_ZERO: gfp_t = 0;
export const __GFP_SKIP_KASAN: gfp_t = 0;
/** Lockdep is configured in kemu, so the bit exists. */
export const __GFP_NOLOCKDEP: gfp_t = 0x4000000;

export const __GFP_BITS_SHIFT = 27;
export const __GFP_BITS_MASK: gfp_t = (1 << __GFP_BITS_SHIFT) - 1;

export const GFP_ZONEMASK: gfp_t = __GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE;
export const __GFP_RECLAIM: gfp_t = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM;

// ---- composites -------------------------------------------------------------------------
/** Cannot sleep; may use the atomic reserves. */
export const GFP_ATOMIC: gfp_t = __GFP_HIGH | __GFP_KSWAPD_RECLAIM;
/** The usual kernel allocation: may sleep, do I/O and call into filesystems. */
export const GFP_KERNEL: gfp_t = __GFP_RECLAIM | __GFP_IO | __GFP_FS;
export const GFP_KERNEL_ACCOUNT: gfp_t = GFP_KERNEL | __GFP_ACCOUNT;
/** Cannot sleep and has no reserves: likely to fail under pressure. */
export const GFP_NOWAIT: gfp_t = __GFP_KSWAPD_RECLAIM;
export const GFP_NOIO: gfp_t = __GFP_RECLAIM;
export const GFP_NOFS: gfp_t = __GFP_RECLAIM | __GFP_IO;
export const GFP_USER: gfp_t = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL;
export const GFP_DMA: gfp_t = __GFP_DMA;
export const GFP_DMA32: gfp_t = __GFP_DMA32;
export const GFP_HIGHUSER: gfp_t = GFP_USER | __GFP_HIGHMEM;
export const GFP_HIGHUSER_MOVABLE: gfp_t = GFP_HIGHUSER | __GFP_MOVABLE | __GFP_SKIP_KASAN;
export const GFP_TRANSHUGE_LIGHT: gfp_t =
  (GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC | __GFP_NOWARN) & ~__GFP_RECLAIM;
export const GFP_TRANSHUGE: gfp_t = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM;

/** gfpflags_allow_blocking(): may an allocation with these flags sleep? */
export function gfpflags_allow_blocking(gfp: gfp_t): boolean {
  return (gfp & __GFP_DIRECT_RECLAIM) !== 0;
}

/**
 * The name table of include/trace/events/mmflags.h (__def_gfpflag_names): composites with
 * most bits first, then the single bits, so the first match wins and leftovers print alone.
 */
const gfpflag_names: ReadonlyArray<readonly [gfp_t, string]> = [
  [GFP_TRANSHUGE, "GFP_TRANSHUGE"],
  [GFP_TRANSHUGE_LIGHT, "GFP_TRANSHUGE_LIGHT"],
  [GFP_HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"],
  [GFP_HIGHUSER, "GFP_HIGHUSER"],
  [GFP_USER, "GFP_USER"],
  [GFP_KERNEL_ACCOUNT, "GFP_KERNEL_ACCOUNT"],
  [GFP_KERNEL, "GFP_KERNEL"],
  [GFP_NOFS, "GFP_NOFS"],
  [GFP_ATOMIC, "GFP_ATOMIC"],
  [GFP_NOIO, "GFP_NOIO"],
  [GFP_NOWAIT, "GFP_NOWAIT"],
  [GFP_DMA, "GFP_DMA"],
  [GFP_DMA32, "GFP_DMA32"],
  [__GFP_RECLAIM, "__GFP_RECLAIM"],
  [__GFP_DMA, "__GFP_DMA"],
  [__GFP_HIGHMEM, "__GFP_HIGHMEM"],
  [__GFP_DMA32, "__GFP_DMA32"],
  [__GFP_MOVABLE, "__GFP_MOVABLE"],
  [__GFP_RECLAIMABLE, "__GFP_RECLAIMABLE"],
  [__GFP_HIGH, "__GFP_HIGH"],
  [__GFP_IO, "__GFP_IO"],
  [__GFP_FS, "__GFP_FS"],
  [__GFP_ZERO, "__GFP_ZERO"],
  [__GFP_DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"],
  [__GFP_KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM"],
  [__GFP_WRITE, "__GFP_WRITE"],
  [__GFP_NOWARN, "__GFP_NOWARN"],
  [__GFP_RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL"],
  [__GFP_NOFAIL, "__GFP_NOFAIL"],
  [__GFP_NORETRY, "__GFP_NORETRY"],
  [__GFP_MEMALLOC, "__GFP_MEMALLOC"],
  [__GFP_COMP, "__GFP_COMP"],
  [__GFP_NOMEMALLOC, "__GFP_NOMEMALLOC"],
  [__GFP_HARDWALL, "__GFP_HARDWALL"],
  [__GFP_THISNODE, "__GFP_THISNODE"],
  [__GFP_ACCOUNT, "__GFP_ACCOUNT"],
  [__GFP_ZEROTAGS, "__GFP_ZEROTAGS"],
  [__GFP_NOLOCKDEP, "__GFP_NOLOCKDEP"],
];

/** The %pGg format: "GFP_KERNEL|__GFP_ZERO"; unnamed leftover bits print as hex. */
export function gfp_flags_string(gfp: gfp_t): string {
  const parts: string[] = [];
  let rest = gfp >>> 0;
  for (const [mask, name] of gfpflag_names) {
    if (rest === 0) break;
    if ((rest & mask) === mask) {
      parts.push(name);
      rest = (rest & ~mask) >>> 0;
    }
  }
  if (rest) parts.push(`0x${rest.toString(16)}`);
  return parts.join("|");
}

// Mirrors mm/slab_common.c (Linux 6.8) with the parts of mm/slub.c, mm/kmemleak.c and
// mm/kasan/report.c that make allocation observable: kmalloc caches and size classes, cache
// lifecycle, failslab, /proc/slabinfo, kmemleak-style leak reports, KASAN-style double-free
// reports. JavaScript memory is garbage collected, so the allocator is about ACCOUNTING and
// FAILURE: kmalloc() hands out a byte buffer, kmalloc_obj() accounts an object the caller built,
// and every live allocation is listed at shutdown. Addresses are fake direct-map addresses,
// given per slab with SLUB's LIFO reuse, so reports look and behave like the kernel's.

import { inject, injectable } from "tsyringe";
import { FAULT_INJECT, KERNEL } from "../kernel/tokens.ts";
import type { Kernel } from "../kernel/kernel.ts";
import type { KernelService } from "../kernel/machine.ts";
import { LOGLEVEL_ERR } from "../kernel/printk/printk.ts";
import { stack_trace_save, type stack_trace } from "../kernel/stacktrace.ts";
import type { FaultInjection } from "../lib/fault-inject.ts";
import { dump_stack, dump_stack_lvl, print_tainted } from "../lib/dump_stack.ts";
import {
  __GFP_ACCOUNT, __GFP_BITS_MASK, __GFP_COMP, __GFP_DMA, __GFP_DMA32, __GFP_HIGHMEM, __GFP_NORETRY, __GFP_NOWARN,
  __GFP_RECLAIMABLE, __GFP_ZERO, gfp_flags_string, gfpflags_allow_blocking, type gfp_t,
} from "../include/linux/gfp_types.ts";
import {
  ARCH_KMALLOC_MINALIGN, KMALLOC_MAX_CACHE_SIZE, KMALLOC_MAX_SIZE, L1_CACHE_BYTES, MAX_PAGE_ORDER,
  PAGE_ALLOC_COSTLY_ORDER, SLAB_ACCOUNT, SLAB_HWCACHE_ALIGN, SLAB_KMALLOC, SLAB_PANIC, ZERO_OR_NULL_PTR,
  ZERO_SIZE_PTR, get_order,
} from "../include/linux/slab.ts";

/** Flags a slab page must not be allocated with (GFP_SLAB_BUG_MASK). */
const GFP_SLAB_BUG_MASK = __GFP_DMA32 | __GFP_HIGHMEM | ~__GFP_BITS_MASK;
/** Anything but these selects a non-normal kmalloc cache type. */
const KMALLOC_NOT_NORMAL_BITS = __GFP_RECLAIMABLE | __GFP_DMA | __GFP_ACCOUNT;
/** asm/page_types.h, kept local: include/linux/mm.ts pulls in most of mm/. */
const PAGE_SIZE = 4096;
/** Freed objects remembered for double-free detection. */
const QUARANTINE_OBJECTS = 1024;
/** The direct map starts at 0xffff888000000000; slab memory lives above it. */
const DIRECT_MAP_HI = 0xffff8881;

export class kmem_cache {
  /** Objects handed out and not yet freed. */
  active_objs = 0;
  /** Slabs ever populated (SLUB keeps empty slabs on the partial list; kemu never returns them). */
  nr_slabs = 0;
  total_allocs = 0;
  total_frees = 0;
  /** Allocations refused by fault injection. */
  alloc_fail = 0;
  /** kmem_cache_destroy() ran; a cache that still had objects is left behind, as in the kernel. */
  dead = false;
  /** Free object addresses, reused last-freed-first like SLUB's per-slab freelist. */
  readonly freelist: number[] = [];

  constructor(
    readonly name: string,
    /** What the creator asked for. */
    readonly object_size: number,
    /** Aligned slot size (s->size): what ksize() reports and slabinfo prints as <objsize>. */
    readonly size: number,
    readonly align: number,
    readonly flags: number,
    readonly order: number,
  ) {}

  get objs_per_slab(): number {
    return Math.floor((PAGE_SIZE * 2 ** this.order) / this.size);
  }

  get num_objs(): number {
    return this.nr_slabs * this.objs_per_slab;
  }
}

/** One live allocation: what kmemleak and KASAN know about it. */
interface alloc_record {
  cache: kmem_cache | null;
  addr: number;
  /** Requested bytes. */
  size: number;
  /** ksize(): the slot size, or the pages of a large kmalloc. */
  alloc_size: number;
  gfp: gfp_t;
  site: string | null;
  trace: stack_trace | null;
  pid: number;
  comm: string;
  jiffies: number;
}

interface free_record {
  alloc: alloc_record;
  trace: stack_trace | null;
  pid: number;
}

export interface SlabStats {
  objects: number;
  bytes_requested: number;
  bytes_allocated: number;
  allocs: number;
  frees: number;
  failures: number;
}

/** "ffff888100001000": the 64-bit address as the kernel prints it, built from two halves. */
function fmt_addr(off: number): string {
  const hi = DIRECT_MAP_HI + Math.floor(off / 2 ** 32);
  const lo = off % 2 ** 32;
  return hi.toString(16) + lo.toString(16).padStart(8, "0");
}

/** kmalloc size class name: 8..96..8k. */
function kmalloc_size_name(size: number): string {
  return size >= 1024 ? `${size / 1024}k` : `${size}`;
}

/** The kmalloc size classes of x86 SLUB (KMALLOC_MIN_SIZE 8, plus 96 and 192). */
const KMALLOC_SIZES = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];

/** kmalloc_index(): the position in KMALLOC_SIZES of the smallest class holding `size`. */
function kmalloc_index(size: number): number {
  let i = 0;
  while (KMALLOC_SIZES[i]! < size) i++;
  return i;
}

type kmalloc_cache_type = "" | "rcl-" | "cg-" | "dma-";

/** kmalloc_type(): which family of kmalloc caches serves these flags. */
function kmalloc_type(gfp: gfp_t): kmalloc_cache_type {
  if ((gfp & KMALLOC_NOT_NORMAL_BITS) === 0) return "";
  if (gfp & __GFP_DMA) return "dma-";
  return gfp & __GFP_RECLAIMABLE ? "rcl-" : "cg-";
}

/**
 * calculate_order() of SLUB for one CPU (min_objects 8, slub_max_order 3): the smallest order
 * whose leftover is at most 1/16 of the slab, relaxing to 1/8 and 1/4.
 */
function calculate_order(size: number): number {
  const objects_in = (order: number) => Math.floor((PAGE_SIZE * 2 ** order) / size);
  const min_objects = Math.min(8, Math.max(objects_in(PAGE_ALLOC_COSTLY_ORDER), 1));
  const min_order = get_order(min_objects * size);
  for (let fraction = 16; fraction > 2; fraction /= 2) {
    for (let order = min_order; order <= PAGE_ALLOC_COSTLY_ORDER; order++) {
      const slab = PAGE_SIZE * 2 ** order;
      if (slab % size <= slab / fraction) return order;
    }
  }
  return Math.min(Math.max(min_order, get_order(size)), MAX_PAGE_ORDER);
}

/** calculate_alignment() + SLUB's rounding of the slot size. */
function slot_layout(size: number, align: number, flags: number): { size: number; align: number } {
  let a = Math.max(align, ARCH_KMALLOC_MINALIGN);
  if (flags & SLAB_HWCACHE_ALIGN) {
    let ralign = L1_CACHE_BYTES;
    while (size <= ralign / 2) ralign /= 2;
    a = Math.max(a, ralign);
  }
  return { size: Math.ceil(Math.max(size, 8) / a) * a, align: a };
}

/** The first frame outside the allocator: the call site a report or counter is keyed by. */
function caller_site(trace: stack_trace | null): string {
  const frames = trace?.frames(16) ?? [];
  return frames.find((f) => !f.includes("mm/slab_common.ts")) ?? "?";
}

/** vm_area_alloc_pages(): pages asked of the bulk allocator per request. */
const VMALLOC_BULK_PAGES = 100;

@injectable()
export class Slab implements KernelService {
  /** Every live allocation by the object handed out; kept strongly so leaks can be listed. */
  private readonly live = new Map<object, alloc_record>();
  /**
   * Recently freed objects, oldest first, for double-free reports: a bounded quarantine like
   * KASAN's (a WeakMap of every freed object costs far more in garbage collection).
   */
  private readonly freed = new Map<object, free_record>();
  /** The quarantine's objects in freeing order (a ring), so the oldest can be evicted. */
  private readonly quarantine: Array<object | undefined> = new Array(QUARANTINE_OBJECTS);
  private quarantine_next = 0;
  /** slab_caches, newest first as /proc/slabinfo lists them. */
  private readonly caches: kmem_cache[] = [];
  /** kmalloc_caches[type][kmalloc_index(size)], created on first use. */
  private readonly kmalloc_caches: Record<kmalloc_cache_type, Array<kmem_cache | undefined>> = {
    "": [], "rcl-": [], "cg-": [], "dma-": [],
  };
  /** Next unused fake virtual address offset (bytes above DIRECT_MAP_HI << 32). */
  private next_va = 0;
  private readonly totals: SlabStats = {
    objects: 0, bytes_requested: 0, bytes_allocated: 0, allocs: 0, frees: 0, failures: 0,
  };
  /**
   * Save the allocating call stack of every object (kmemleak's backtrace, KASAN's "Allocated
   * by"). Costs a few microseconds per allocation; a `site` label replaces it for free.
   */
  track_stacks = true;
  /**
   * Also save the freeing call stack (KASAN's "Freed by" in a double-free report). Off by
   * default: it doubles the cost of every kfree.
   */
  track_free_stacks = false;

  constructor(
    @inject(KERNEL) private readonly k: Kernel,
    @inject(FAULT_INJECT) private readonly fi: FaultInjection,
  ) {
    // create_kmalloc_caches(): the normal family exists from boot; the others appear on first use.
    for (let i = 0; i < KMALLOC_SIZES.length; i++) this.kmalloc_cache("", i);
  }

  init(): void {
    this.k.pr_info(`SLUB: HWalign=${L1_CACHE_BYTES}, Order=0-${PAGE_ALLOC_COSTLY_ORDER}, MinObjects=0, CPUs=1, Nodes=1`);
  }

  // ---- kmalloc family --------------------------------------------------------------------

  /** kmalloc(): `size` bytes (zero-filled, as with init_on_alloc=1), or null on failure. */
  kmalloc(size: number, gfp: gfp_t, site?: string): Uint8Array | null {
    return this.__do_kmalloc<Uint8Array>(size, gfp, site ?? null, null, "kmalloc");
  }

  kzalloc(size: number, gfp: gfp_t, site?: string): Uint8Array | null {
    return this.__do_kmalloc<Uint8Array>(size, gfp | __GFP_ZERO, site ?? null, null, "kzalloc");
  }

  /** kmalloc_array(): null without a warning when n * size overflows size_t. */
  kmalloc_array(n: number, size: number, gfp: gfp_t, site?: string): Uint8Array | null {
    const bytes = n * size;
    if (bytes >= 2 ** 64) return null;
    return this.__do_kmalloc<Uint8Array>(bytes, gfp, site ?? null, null, "kmalloc_array");
  }

  kcalloc(n: number, size: number, gfp: gfp_t, site?: string): Uint8Array | null {
    return this.kmalloc_array(n, size, gfp | __GFP_ZERO, site);
  }

  /**
   * Accounts `obj` as a kmalloc(size) allocation and returns it, or null if the allocation
   * fails — so kernel code reads `const f = slab.kzalloc_obj(new fault(), SIZEOF, GFP_ATOMIC);
   * if (!f) return -ENOMEM;`. kfree(obj) releases it. A size below 1 counts as 1.
   */
  kmalloc_obj<T extends object>(obj: T, size: number, gfp: gfp_t, site?: string): T | null {
    return this.__do_kmalloc(Math.max(size, 1), gfp, site ?? null, obj, "kmalloc");
  }

  kzalloc_obj<T extends object>(obj: T, size: number, gfp: gfp_t, site?: string): T | null {
    return this.__do_kmalloc(Math.max(size, 1), gfp | __GFP_ZERO, site ?? null, obj, "kzalloc");
  }

  /** kcalloc() for an array object the caller built (e.g. `new Array<foo>(n)`). */
  kcalloc_obj<T extends object>(obj: T, n: number, size: number, gfp: gfp_t, site?: string): T | null {
    const bytes = n * size;
    if (bytes >= 2 ** 64) return null;
    return this.__do_kmalloc(Math.max(bytes, 1), gfp | __GFP_ZERO, site ?? null, obj, "kcalloc");
  }

  /**
   * kvcalloc() for an array object (mm/util.c kvmalloc_node): kmalloc first — beyond a page
   * quietly and without trying hard — then vmalloc's fallback. Released with kfree (kvfree).
   */
  kvcalloc_obj<T extends object>(obj: T, n: number, size: number, gfp: gfp_t, site?: string): T | null {
    return this.kvmalloc_array_node(obj, n, size, gfp, __GFP_ZERO, site ?? null, "kvcalloc");
  }

  /** kvmalloc_array() for an array object: kvcalloc_obj without __GFP_ZERO on the kmalloc try. */
  kvmalloc_array_obj<T extends object>(obj: T, n: number, size: number, gfp: gfp_t, site?: string): T | null {
    return this.kvmalloc_array_node(obj, n, size, gfp, 0, site ?? null, "kvmalloc_array");
  }

  private kvmalloc_array_node<T extends object>(obj: T, n: number, size: number, gfp: gfp_t, zero: gfp_t, site: string | null, fn: string): T | null {
    const bytes = n * size;
    if (bytes >= 2 ** 64) return null;
    const kgfp = bytes > PAGE_SIZE ? gfp | __GFP_NOWARN | __GFP_NORETRY : gfp;
    const p = this.__do_kmalloc(Math.max(bytes, 1), kgfp | zero, site, obj, fn);
    if (p || bytes <= PAGE_SIZE) return p;
    return this.vmalloc_obj(obj, bytes, gfp, site);
  }

  /**
   * __vmalloc_node(): order-0 pages taken with the bulk allocator in requests of up to 100
   * pages (vm_area_alloc_pages), each request a fault-injection point, then a virtual range.
   */
  private vmalloc_obj<T extends object>(obj: T, bytes: number, gfp: gfp_t, site: string | null): T | null {
    if (gfpflags_allow_blocking(gfp)) this.k.might_sleep("vmalloc");
    const npages = Math.ceil(bytes / PAGE_SIZE);
    for (let done = 0; done < npages; done += VMALLOC_BULK_PAGES) {
      if (this.fi.should_fail_alloc_page(gfp, 0)) {
        this.totals.failures++;
        if (!(gfp & __GFP_NOWARN)) this.k.pr_warn(`${this.k.current.comm}: vmalloc error: size ${bytes}, failed to allocate pages, mode:0x${(gfp >>> 0).toString(16)}(${gfp_flags_string(gfp)})`);
        return null;
      }
    }
    if (this.live.has(obj)) return this.overlap(obj);
    this.track(obj, null, this.alloc_va(npages * PAGE_SIZE), bytes, npages * PAGE_SIZE, gfp, site);
    return obj;
  }

  /**
   * krealloc(): a buffer that still fits its slot keeps its slot and address (the returned
   * array replaces the old one); otherwise a new allocation gets the old contents and the old
   * one is freed. On failure the old allocation is untouched. An accounted object is
   * re-accounted in place.
   */
  krealloc<T extends object>(p: T | null, new_size: number, gfp: gfp_t): T | Uint8Array | null {
    if (new_size <= 0) {
      this.kfree(p);
      return ZERO_SIZE_PTR;
    }
    if (ZERO_OR_NULL_PTR(p)) return this.__do_kmalloc<Uint8Array>(new_size, gfp, null, null, "krealloc");
    const obj = p as T;
    const rec = this.live.get(obj);
    if (!rec) {
      this.kasan_report(this.freed.has(obj) ? "use-after-free" : "invalid-access", "krealloc", obj);
      return null;
    }
    if (!(obj instanceof Uint8Array)) return this.realloc_obj(obj, rec, new_size, gfp);
    if (new_size <= rec.alloc_size) {
      if (new_size === obj.length) return obj;
      // Same slot and address; a shorter view shares the memory, a longer one copies it.
      const q = new_size < obj.length ? obj.subarray(0, new_size) : new Uint8Array(new_size);
      if (q.buffer !== obj.buffer) q.set(obj);
      this.live.delete(obj);
      this.live.set(q, rec);
      this.totals.bytes_requested += new_size - rec.size;
      rec.size = new_size;
      return q;
    }
    const n = this.__do_kmalloc<Uint8Array>(new_size, gfp, rec.site, null, "krealloc");
    if (!n) return null;
    n.set(obj);
    this.kfree(obj);
    return n;
  }

  private realloc_obj<T extends object>(obj: T, old: alloc_record, new_size: number, gfp: gfp_t): T | null {
    if (new_size <= old.alloc_size) {
      this.totals.bytes_requested += new_size - old.size;
      old.size = new_size;
      return obj;
    }
    this.live.delete(obj);
    if (!this.__do_kmalloc(new_size, gfp, old.site, obj, "krealloc")) {
      this.live.set(obj, old);
      return null;
    }
    this.release(old);
    return obj;
  }

  /** kfree(): NULL and ZERO_SIZE_PTR are ignored; anything else must be live. */
  kfree(obj: unknown): void {
    if (ZERO_OR_NULL_PTR(obj) || typeof obj !== "object") return;
    const o = obj as object;
    const rec = this.live.get(o);
    if (!rec) {
      this.kasan_report(this.freed.has(o) ? "double-free" : "invalid-free", "kfree", o);
      return;
    }
    this.slab_free(o, rec);
  }

  /** ksize(): the usable size — the slot of the object's cache, or a large kmalloc's pages. */
  ksize(obj: unknown): number {
    if (ZERO_OR_NULL_PTR(obj) || typeof obj !== "object") return 0;
    return this.live.get(obj as object)?.alloc_size ?? 0;
  }

  // ---- kmem_cache ------------------------------------------------------------------------

  /**
   * kmem_cache_create(): a cache of `size`-byte objects, or null (with the kernel's warning)
   * for a bad name or size. Takes slab_mutex in the kernel, so it may sleep.
   */
  kmem_cache_create(name: string, size: number, align = 0, flags = 0): kmem_cache | null {
    this.k.might_sleep("kmem_cache_create");
    const insane = !name || this.k.sched.in_interrupt() || size > KMALLOC_MAX_SIZE;
    if (insane) this.k.pr_err(`kmem_cache_create(${name}) integrity check failed`);
    if (insane || !(size > 0)) {
      if (flags & SLAB_PANIC) {
        this.k.pr_emerg(`Kernel panic - not syncing: kmem_cache_create: Failed to create slab '${name}'. Error -22`);
        this.k.BUG();
      }
      this.k.pr_warn(`kmem_cache_create(${name}) failed with error -22`);
      dump_stack(this.k);
      return null;
    }
    return this.create_cache(name, size, align, flags);
  }

  private create_cache(name: string, size: number, align: number, flags: number): kmem_cache {
    const l = slot_layout(size, align, flags);
    const s = new kmem_cache(name, size, l.size, l.align, flags, calculate_order(l.size));
    this.caches.unshift(s);
    return s;
  }

  kmem_cache_alloc(s: kmem_cache, gfp: gfp_t, site?: string): Uint8Array | null {
    return this.cache_alloc<Uint8Array>(s, gfp, site ?? null, null, "kmem_cache_alloc");
  }

  kmem_cache_zalloc(s: kmem_cache, gfp: gfp_t, site?: string): Uint8Array | null {
    return this.cache_alloc<Uint8Array>(s, gfp | __GFP_ZERO, site ?? null, null, "kmem_cache_zalloc");
  }

  /** kmem_cache_alloc() accounting an object the caller built. */
  kmem_cache_alloc_obj<T extends object>(s: kmem_cache, obj: T, gfp: gfp_t, site?: string): T | null {
    return this.cache_alloc(s, gfp, site ?? null, obj, "kmem_cache_alloc");
  }

  kmem_cache_zalloc_obj<T extends object>(s: kmem_cache, obj: T, gfp: gfp_t, site?: string): T | null {
    return this.cache_alloc(s, gfp | __GFP_ZERO, site ?? null, obj, "kmem_cache_zalloc");
  }

  private cache_alloc<T extends object>(s: kmem_cache, gfp: gfp_t, site: string | null, obj: T | null, fn: string): T | null {
    if (s.dead) {
      this.kasan_report("use-after-free", fn, s);
      return null;
    }
    return this.slab_alloc(s, gfp, s.object_size, site, obj, fn);
  }

  /** kmem_cache_free(): an object of another cache is freed to its own, after a warning. */
  kmem_cache_free(s: kmem_cache, obj: unknown): void {
    const rec = typeof obj === "object" && obj !== null ? this.live.get(obj) : undefined;
    if (!rec) {
      if (typeof obj === "object" && obj !== null && this.freed.has(obj)) this.kasan_report("double-free", "kmem_cache_free", obj);
      else this.k.WARN_ONCE(true, "virt_to_cache: Object is not a Slab page!");
      return;
    }
    if (rec.cache !== s) {
      this.k.WARN_ONCE(true, `cache_from_obj: Wrong slab cache. ${s.name} but object is from ${rec.cache?.name ?? "(large kmalloc)"}`);
    }
    this.slab_free(obj as object, rec);
  }

  /**
   * kmem_cache_destroy(): shuts the cache down (kemu never merges caches, so there is one
   * reference). Objects still allocated make SLUB report each of them and the cache stays
   * (leaked), as in the kernel.
   */
  kmem_cache_destroy(s: kmem_cache | null): void {
    if (!s) return;
    this.k.might_sleep("kmem_cache_destroy");
    if (s.dead) {
      this.kasan_report("use-after-free", "kmem_cache_destroy", s);
      return;
    }
    s.dead = true;
    if (s.active_objs === 0) {
      this.caches.splice(this.caches.indexOf(s), 1);
      return;
    }
    this.list_slab_objects(s);
    this.k.WARN(true, `kmem_cache_destroy ${s.name}: Slab cache still has objects when called from ${caller_site(stack_trace_save())}`);
  }

  /** SLUB's slab_err() + list_slab_objects() for a cache shut down with objects in it. */
  private list_slab_objects(s: kmem_cache): void {
    const k = this.k;
    k.pr_err("=============================================================================");
    k.pr_err(`BUG ${s.name} (${print_tainted(k.taint)}): Objects remaining in ${s.name} on __kmem_cache_shutdown()`);
    k.pr_err("-----------------------------------------------------------------------------");
    k.pr_err("");
    for (const rec of this.live.values()) {
      if (rec.cache === s) k.pr_err(`Object 0x${fmt_addr(rec.addr)} @offset=${rec.addr % (PAGE_SIZE * 2 ** s.order)}`);
    }
  }

  // ---- the allocation core -----------------------------------------------------------------

  private __do_kmalloc<T extends object>(size: number, gfp: gfp_t, site: string | null, obj: T | null, fn: string): T | null {
    const sz = Number.isFinite(size) && size >= 0 ? Math.ceil(size) : Infinity;
    if (sz > KMALLOC_MAX_CACHE_SIZE) return this.kmalloc_large(sz, gfp, site, obj, fn);
    if (sz === 0) return ZERO_SIZE_PTR as unknown as T;
    const type = kmalloc_type(gfp);
    return this.slab_alloc(this.kmalloc_cache(type, kmalloc_index(sz)), gfp, sz, site, obj, fn);
  }

  private kmalloc_cache(type: kmalloc_cache_type, index: number): kmem_cache {
    let s = this.kmalloc_caches[type][index];
    if (!s) {
      const size = KMALLOC_SIZES[index]!;
      const name = `${type === "dma-" ? "dma-" : ""}kmalloc-${type === "dma-" ? "" : type}${kmalloc_size_name(size)}`;
      s = this.create_cache(name, size, 0, SLAB_KMALLOC | (type === "cg-" ? SLAB_ACCOUNT : 0));
      this.kmalloc_caches[type][index] = s;
    }
    return s;
  }

  /** slab_pre_alloc_hook() (might_alloc, failslab), the allocation, then kmemleak's record. */
  private slab_alloc<T extends object>(s: kmem_cache, gfp: gfp_t, size: number, site: string | null, obj: T | null, fn: string): T | null {
    if (gfpflags_allow_blocking(gfp)) this.k.might_sleep(fn);
    if (this.fi.should_failslab(s.object_size, gfp, s.flags)) {
      s.alloc_fail++;
      this.totals.failures++;
      return null;
    }
    if (obj && this.live.has(obj)) return this.overlap(obj);
    if (s.freelist.length === 0) this.new_slab(s, gfp);
    const addr = s.freelist.pop()!;
    s.active_objs++;
    s.total_allocs++;
    const p = obj ?? (new Uint8Array(size) as unknown as T);
    this.track(p, s, addr, size, s.size, gfp, site);
    return p;
  }

  /** allocate_slab(): a fresh slab's objects go on the freelist, lowest address first out. */
  private new_slab(s: kmem_cache, gfp: gfp_t): void {
    if (gfp & GFP_SLAB_BUG_MASK) this.kmalloc_fix_flags(gfp);
    const bytes = PAGE_SIZE * 2 ** s.order;
    const base = this.alloc_va(bytes);
    for (let i = s.objs_per_slab - 1; i >= 0; i--) s.freelist.push(base + i * s.size);
    s.nr_slabs++;
  }

  /** kmalloc_fix_flags(): a caller passed zone flags slab pages cannot honour. */
  private kmalloc_fix_flags(gfp: gfp_t): void {
    const fixed = gfp & ~GFP_SLAB_BUG_MASK;
    const hex = (g: gfp_t) => `0x${(g >>> 0).toString(16)}`;
    this.k.pr_warn(`Unexpected gfp: ${hex(gfp & GFP_SLAB_BUG_MASK)} (${gfp_flags_string(gfp & GFP_SLAB_BUG_MASK)}). Fixing up to gfp: ${hex(fixed)} (${gfp_flags_string(fixed)}). Fix your code!`);
    dump_stack(this.k);
  }

  /** __kmalloc_large_node(): whole pages from the page allocator (fail_page_alloc applies). */
  private kmalloc_large<T extends object>(size: number, gfp: gfp_t, site: string | null, obj: T | null, fn: string): T | null {
    const order = size > KMALLOC_MAX_SIZE ? MAX_PAGE_ORDER + 1 : get_order(size);
    // WARN_ON_ONCE_GFP(order > MAX_PAGE_ORDER) in __alloc_pages(): __GFP_NOWARN silences it.
    if (order > MAX_PAGE_ORDER) {
      if (!(gfp & __GFP_NOWARN)) this.k.WARN_ON_ONCE(true);
      this.totals.failures++;
      return null;
    }
    if (gfp & GFP_SLAB_BUG_MASK) this.kmalloc_fix_flags(gfp);
    if (gfpflags_allow_blocking(gfp)) this.k.might_sleep(fn);
    if (this.fi.should_fail_alloc_page(gfp | __GFP_COMP, order)) {
      this.totals.failures++;
      return null;
    }
    if (obj && this.live.has(obj)) return this.overlap(obj);
    const bytes = PAGE_SIZE * 2 ** order;
    const p = obj ?? (new Uint8Array(size) as unknown as T);
    this.track(p, null, this.alloc_va(bytes), size, bytes, gfp, site);
    return p;
  }

  private alloc_va(bytes: number): number {
    const va = Math.ceil(this.next_va / PAGE_SIZE) * PAGE_SIZE;
    this.next_va = va + bytes;
    return va;
  }

  /** kmemleak_alloc(): remember who allocated what. */
  private track(p: object, cache: kmem_cache | null, addr: number, size: number, alloc_size: number, gfp: gfp_t, site: string | null): void {
    const t = this.k.current;
    // create_object(): interrupt contexts are recorded as "hardirq"/"softirq" with pid 0.
    const irq = t.hardirq_count > 0 ? "hardirq" : t.softirq_count % 2 === 1 ? "softirq" : null;
    this.live.set(p, {
      cache, addr, size, alloc_size, gfp, site,
      trace: this.track_stacks && !site ? stack_trace_save() : null,
      pid: irq || t.pid < 0 ? 0 : t.pid, comm: irq ?? t.comm, jiffies: this.k.jiffies,
    });
    const c = this.totals;
    c.objects++;
    c.allocs++;
    c.bytes_requested += size;
    c.bytes_allocated += alloc_size;
  }

  /** kmemleak's complaint when an object is accounted twice; the first record stays. */
  private overlap<T extends object>(obj: T): T {
    const rec = this.live.get(obj)!;
    this.k.WARN_ONCE(true, `kmemleak: Cannot insert 0x${fmt_addr(rec.addr)} into the object search tree (overlaps existing)`);
    return obj;
  }

  private slab_free(obj: object, rec: alloc_record): void {
    this.live.delete(obj);
    this.release(rec);
    const evicted = this.quarantine[this.quarantine_next];
    if (evicted !== undefined) this.freed.delete(evicted);
    this.quarantine[this.quarantine_next] = obj;
    this.quarantine_next = (this.quarantine_next + 1) % QUARANTINE_OBJECTS;
    this.freed.set(obj, { alloc: rec, trace: this.track_free_stacks ? stack_trace_save() : null, pid: this.k.current.pid });
  }

  /** Returns an allocation's slot and takes it out of the counters. */
  private release(rec: alloc_record): void {
    const s = rec.cache;
    if (s) {
      s.active_objs--;
      s.total_frees++;
      s.freelist.push(rec.addr);
      if (s.dead && s.active_objs === 0) this.caches.splice(this.caches.indexOf(s), 1);
    }
    const c = this.totals;
    c.objects--;
    c.frees++;
    c.bytes_requested -= rec.size;
    c.bytes_allocated -= rec.alloc_size;
  }

  // ---- reports -----------------------------------------------------------------------------

  /** A KASAN-style report (mm/kasan/report.c) for a bad free or an access to freed memory. */
  private kasan_report(bug: "double-free" | "invalid-free" | "use-after-free" | "invalid-access", fn: string, obj: object): void {
    const k = this.k;
    const t = k.current;
    const f = this.freed.get(obj);
    const what = f ? `addr ${fmt_addr(f.alloc.addr)}`
      : obj instanceof kmem_cache ? `kmem_cache ${obj.name} (destroyed)`
        : `object ${obj.constructor?.name ?? "?"} (not from the slab allocator)`;
    k.pr_err("==================================================================");
    k.pr_err(`BUG: KASAN: ${bug} in ${fn}`);
    k.pr_err(`${bug.endsWith("free") ? "Free of" : "Access to"} ${what} by task ${t.comm}/${t.pid}`);
    k.pr_err("");
    dump_stack_lvl(k, LOGLEVEL_ERR);
    if (f) {
      k.pr_err("");
      k.pr_err(`Allocated by task ${f.alloc.pid}:`);
      for (const l of this.backtrace_lines(f.alloc.trace, f.alloc.site, 1)) k.pr_err(l);
      k.pr_err("");
      k.pr_err(`Freed by task ${f.pid}:`);
      if (f.trace) for (const l of this.backtrace_lines(f.trace, null, 1)) k.pr_err(l);
      else k.pr_err(" (stack not saved: set Slab.track_free_stacks to record it)");
      k.pr_err("");
      k.pr_err(`The buggy address belongs to the object at ${fmt_addr(f.alloc.addr)}`);
      k.pr_err(` which belongs to the cache ${f.alloc.cache?.name ?? "(large kmalloc)"} of size ${f.alloc.alloc_size}`);
    }
    k.pr_err("==================================================================");
    k.taint |= 1 << 5; // TAINT_BAD_PAGE, as end_report() adds
    k.record_splat("warn", `KASAN: ${bug} in ${fn}`);
  }

  private backtrace_lines(trace: stack_trace | null, site: string | null, indent: number): string[] {
    const pad = " ".repeat(indent);
    if (site) return [`${pad}${site}`];
    const frames = (trace?.frames(16) ?? []).filter((f) => !f.includes("mm/slab_common.ts"));
    return frames.length ? frames.map((f) => pad + f) : [`${pad}(no stack saved)`];
  }

  /** kmemleak's report of one unreferenced object (print_unreferenced). */
  private unreferenced(obj: object, rec: alloc_record): string {
    const lines = [
      `unreferenced object 0x${fmt_addr(rec.addr)} (size ${rec.size}):`,
      `  comm "${rec.comm}", pid ${rec.pid}, jiffies ${rec.jiffies}`,
    ];
    if (obj instanceof Uint8Array) lines.push("  hex dump (first 32 bytes):", ...hex_dump(obj.subarray(0, 32), "    "));
    else lines.push(`  object: ${obj.constructor?.name ?? typeof obj}`);
    lines.push("  backtrace:", ...this.backtrace_lines(rec.trace, rec.site, 4));
    return lines.join("\n");
  }

  /**
   * Shutdown check: every live allocation as a kmemleak entry, and every cache a module
   * created but never destroyed.
   */
  leak_report(): string[] {
    const leaks = [...this.live].map(([obj, rec]) => this.unreferenced(obj, rec));
    if (leaks.length) this.k.pr_info(`kmemleak: ${leaks.length} new suspected memory leaks (see /sys/kernel/debug/kmemleak)`);
    const caches = this.caches
      .filter((s) => !(s.flags & SLAB_KMALLOC) && !s.dead)
      .map((s) => `kmem_cache ${s.name} was never destroyed`);
    return [...leaks, ...caches];
  }

  /** /sys/kernel/debug/kmemleak: the live allocations in kmemleak's format. */
  kmemleak_report(): string {
    return [...this.live].map(([obj, rec]) => this.unreferenced(obj, rec) + "\n").join("");
  }

  /** /proc/slabinfo (version 2.1), SLUB flavour: no tunables, slabs never shrink. */
  slabinfo(): string {
    const out = [
      "slabinfo - version: 2.1",
      "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>",
    ];
    for (const s of this.caches) {
      out.push(`${s.name.padEnd(17)} ${pad(s.active_objs, 6)} ${pad(s.num_objs, 6)} ${pad(s.size, 6)} ${pad(s.objs_per_slab, 4)} ${pad(2 ** s.order, 4)}` +
        ` : tunables ${pad(0, 4)} ${pad(0, 4)} ${pad(0, 4)} : slabdata ${pad(s.nr_slabs, 6)} ${pad(s.nr_slabs, 6)} ${pad(0, 6)}`);
    }
    return out.join("\n") + "\n";
  }

  /** The caches in /proc/slabinfo order. */
  kmem_caches(): readonly kmem_cache[] {
    return this.caches;
  }

  find_cache(name: string): kmem_cache | undefined {
    return this.caches.find((s) => s.name === name);
  }

  /** Machine-wide counters: live objects and bytes, and cumulative calls. */
  stats(): Readonly<SlabStats> {
    return this.totals;
  }

  /** Live objects and bytes per call site (the `site` label, else the first caller frame). */
  site_stats(): Map<string, { objects: number; bytes: number }> {
    const m = new Map<string, { objects: number; bytes: number }>();
    for (const rec of this.live.values()) {
      const key = rec.site ?? caller_site(rec.trace);
      const e = m.get(key) ?? { objects: 0, bytes: 0 };
      e.objects++;
      e.bytes += rec.alloc_size;
      m.set(key, e);
    }
    return m;
  }

  /** Is `obj` a live allocation? */
  is_live(obj: object): boolean {
    return this.live.has(obj);
  }

  /** The kernel address of a live allocation as %px prints it ("ffff888100001000"), or null. */
  kmem_addr(obj: object): string | null {
    const rec = this.live.get(obj);
    return rec ? fmt_addr(rec.addr) : null;
  }
}

function pad(n: number, w: number): string {
  return String(n).padStart(w);
}

/** seq_hex_dump(…, rowsize 16, groupsize 1, ascii): "6b 6b ...  kk..". */
function hex_dump(b: Uint8Array, prefix: string): string[] {
  const rows: string[] = [];
  for (let i = 0; i < b.length; i += 16) {
    const row = b.subarray(i, i + 16);
    const hex = Array.from(row, (x) => x.toString(16).padStart(2, "0")).join(" ");
    const ascii = Array.from(row, (x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : ".")).join("");
    rows.push(`${prefix}${hex.padEnd(47)}  ${ascii}`);
  }
  return rows;
}

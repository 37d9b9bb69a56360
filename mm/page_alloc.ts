// Mirrors mm/page_alloc.c (Linux 6.8): the buddy allocator over the machine's RAM pfns, GFP
// semantics (might-sleep, __GFP_ZERO, __GFP_NOWARN, __GFP_NOFAIL), fail_page_alloc injection,
// the "page allocation failure" report, free-page checks ("Bad page state") and accounting.
// The per-machine node (pglist_data), its zones and memmap are built here (free_area_init).
//
// kemu simplifications: one node, one RAM zone (ZONE_NORMAL spanning all RAM, no DMA32/Movable
// split), no per-cpu lists, no watermarks or reclaim (an allocation either succeeds at once or
// fails). Boot is lazy: pfns above `free_frontier` are free and never touched, so a 1 TiB
// machine boots as fast as a 1 GiB one. Freed frames are reported to the host (free page
// reporting) and read as zeros afterwards, which also makes the page allocator init_on_free.

import "reflect-metadata";
import { inject, injectable } from "tsyringe";
import { CPU_MMU, FAULT_INJECT, KERNEL, MACHINE_SPEC, PHYSMEM } from "../kernel/tokens.ts";
import type { Kernel } from "../kernel/kernel.ts";
import type { KernelService } from "../kernel/machine.ts";
import type { MachineSpec } from "../kernel/machine_spec.ts";
import type { FaultInjection } from "../lib/fault-inject.ts";
import type { PhysMem } from "../hw/physmem.ts";
import type { CpuMmu } from "../hw/cpu_mmu.ts";
import { page, type vm_area_struct } from "../include/linux/mm_types.ts";
import {
  MAX_ORDER, NODE_DATA, ZONE_NORMAL, pglist_data, register_node, type zone,
} from "../include/linux/mmzone.ts";
import {
  __GFP_NOWARN, __GFP_ZERO, gfp_flags_string, gfpflags_allow_blocking, type gfp_t,
} from "../include/linux/gfp_types.ts";
import { PAGE_FLAGS_CHECK_AT_FREE, PG_reserved, page_has_type } from "../include/linux/page-flags.ts";
import { init_page_count, page_ref_count, page_ref_dec_and_test } from "../include/linux/page_ref.ts";
import { mem_section_map } from "./sparse.ts";
import { dump_page, dump_page_lines } from "./debug.ts";
import { dump_stack } from "../lib/dump_stack.ts";
import { ratelimit_state, ___ratelimit } from "../lib/ratelimit.ts";

const PAGE_SIZE = 4096;
/** pfn 0 is firmware-reserved and pfn 1 holds the zero page (the kernel's empty_zero_page). */
const FIRST_FREE_PFN = 2;
const ZERO_PAGE_PFN = 1;

@injectable()
export class PageAlloc implements KernelService {
  readonly pgdat: pglist_data;
  readonly zone: zone;
  private nr_allocated = 0;
  private readonly nopage_rs = new ratelimit_state();
  /** Pages still allocated at shutdown that are expected to be (none by default). */
  private readonly boot_pfns = new Set<number>();

  constructor(
    @inject(KERNEL) readonly k: Kernel,
    @inject(PHYSMEM) readonly physmem: PhysMem,
    @inject(CPU_MMU) cpu: CpuMmu,
    @inject(FAULT_INJECT) readonly fi: FaultInjection,
    @inject(MACHINE_SPEC) spec: MachineSpec,
  ) {
    const ram_pages = Math.floor((spec.ram_size ?? 0) / PAGE_SIZE);
    physmem.reserve(ram_pages * PAGE_SIZE);
    const memmap = new mem_section_map();
    this.pgdat = new pglist_data(k, physmem, cpu, memmap);
    this.pgdat.page_alloc = this;
    register_node(k, this.pgdat);
    const z = this.pgdat.node_zones[ZONE_NORMAL]!;
    z.zone_start_pfn = 0;
    z.spanned_pages = ram_pages;
    z.present_pages = ram_pages;
    z.managed_pages = Math.max(0, ram_pages - FIRST_FREE_PFN);
    z.free_frontier = FIRST_FREE_PFN;
    this.zone = z;
    this.pgdat.node_present_pages = ram_pages;
    this.pgdat.node_spanned_pages = ram_pages;
    memmap.init_ram(0, ram_pages, z);
    this.setup_reserved();
  }

  /** memblock reservations: the firmware page and the zero page never enter the buddy. */
  private setup_reserved(): void {
    const mm = this.pgdat.mem_section;
    const fw = mm.lookup(0);
    if (fw) fw.flags |= 1 << PG_reserved;
    const zp = mm.lookup(ZERO_PAGE_PFN);
    if (zp) {
      zp.flags |= 1 << PG_reserved;
      init_page_count(zp);
      this.pgdat.zero_page = zp;
    }
  }

  // ---- buddy core ---------------------------------------------------------------------------

  /** __rmqueue(): smallest free block of at least `order`, split down (expand()). */
  private rmqueue(order: number): number | null {
    const z = this.zone;
    for (let o = order; o <= MAX_ORDER; o++) {
      const list = z.free_area[o]!.free_list;
      const first = list.values().next();
      if (first.done) continue;
      const pfn = first.value;
      list.delete(pfn);
      for (let cur = o; cur > order; cur--) z.free_area[cur - 1]!.free_list.add(pfn + 2 ** (cur - 1));
      return pfn;
    }
    return this.carve_frontier(order);
  }

  /** Takes an aligned block from the never-used part of the zone, freeing the alignment gap. */
  private carve_frontier(order: number): number | null {
    const z = this.zone;
    const size = 2 ** order;
    const aligned = Math.ceil(z.free_frontier / size) * size;
    if (aligned + size > z.zone_end_pfn()) return null;
    let gap = z.free_frontier;
    while (gap < aligned) {
      let o = 0;
      while (o < MAX_ORDER && gap % 2 ** (o + 1) === 0 && gap + 2 ** (o + 1) <= aligned) o++;
      z.free_area[o]!.free_list.add(gap);
      gap += 2 ** o;
    }
    z.free_frontier = aligned + size;
    return aligned;
  }

  /** __free_one_page(): merge with free buddies, then give the tail back to the frontier. */
  private free_one_block(pfn: number, order: number): void {
    const z = this.zone;
    while (order < MAX_ORDER) {
      const size = 2 ** order;
      const buddy = Math.floor(pfn / size) % 2 === 0 ? pfn + size : pfn - size;
      if (!z.free_area[order]!.free_list.delete(buddy)) break;
      pfn = Math.min(pfn, buddy);
      order++;
    }
    if (pfn + 2 ** order !== z.free_frontier) {
      z.free_area[order]!.free_list.add(pfn);
      return;
    }
    z.free_frontier = pfn;
    for (let again = true; again; ) {
      again = false;
      for (let o = 0; o <= MAX_ORDER; o++) {
        const cand = z.free_frontier - 2 ** o;
        if (cand >= 0 && z.free_area[o]!.free_list.delete(cand)) {
          z.free_frontier = cand;
          again = true;
        }
      }
    }
  }

  // ---- allocation ---------------------------------------------------------------------------

  /** warn_alloc(): the ratelimited "page allocation failure" report. */
  warn_alloc(gfp: gfp_t, order: number): void {
    if (gfp & __GFP_NOWARN) return;
    if (!___ratelimit(this.nopage_rs, "warn_alloc", this.k)) return;
    const comm = this.k.current.comm;
    this.k.pr_warn(
      `${comm}: page allocation failure: order:${order}, mode:0x${(gfp >>> 0).toString(16)}(${gfp_flags_string(gfp)}), nodemask=(null),cpuset=/,mems_allowed=0`,
    );
    dump_stack(this.k);
    this.k.pr_warn(`Node 0 Normal free:${this.nr_free_pages() * 4}kB managed:${this.zone.managed_pages * 4}kB`);
  }

  /** alloc_pages(gfp, order): a block of 2^order pages, head page returned, or null. */
  alloc_pages(gfp: gfp_t, order: number): page | null {
    if (gfpflags_allow_blocking(gfp)) this.k.might_sleep("alloc_pages");
    if (order > MAX_ORDER) {
      this.k.WARN_ON_ONCE(!(gfp & __GFP_NOWARN), `alloc_pages: order ${order} > MAX_ORDER`);
      return null;
    }
    if (this.fi.should_fail_alloc_page(gfp, order)) {
      this.warn_alloc(gfp, order);
      return null;
    }
    const pfn = this.rmqueue(order);
    if (pfn === null) {
      this.warn_alloc(gfp, order);
      return null;
    }
    return this.prep_new_page(pfn, order, gfp);
  }

  private prep_new_page(pfn: number, order: number, gfp: gfp_t): page {
    const p = this.pgdat.mem_section.lookup(pfn)!;
    p.flags = 0;
    p._mapcount = -1;
    p.mapping = null;
    p.index = 0;
    p.private = 0;
    init_page_count(p);
    const n = 2 ** order;
    // Frames come back from the allocator zeroed (free page reporting); __GFP_ZERO still
    // clears, as clear_highpage would, for frames written since.
    if (gfp & __GFP_ZERO) this.physmem.fill(pfn * PAGE_SIZE, n * PAGE_SIZE, 0);
    p.owner_order = order;
    p.owner_gfp = gfp;
    p.owner_comm = this.k.current.comm;
    this.nr_allocated += n;
    this.pgdat.vm_events.pgalloc += n;
    return p;
  }

  /** free_pages_prepare()'s checks: a page freed while mapped or flagged is a kernel bug. */
  private free_page_is_bad(p: page): string {
    if (p._mapcount !== -1 && !page_has_type(p)) return "nonzero mapcount";
    if (p.mapping !== null) return "non-NULL mapping";
    if (page_ref_count(p) !== 0) return "nonzero _refcount";
    if (p.flags & PAGE_FLAGS_CHECK_AT_FREE) return "PAGE_FLAGS_CHECK_AT_FREE flag(s) set";
    return "";
  }

  private bad_page(p: page, reason: string): void {
    this.k.pr_alert(`BUG: Bad page state in process ${this.k.current.comm}  pfn:${p.pfn.toString(16).padStart(5, "0")}`);
    for (const l of dump_page_lines(p, reason)) this.k.pr_alert(l);
    dump_stack(this.k);
    this.k.taint |= 1 << 5; // TAINT_BAD_PAGE
    this.k.record_splat("bug", `Bad page state: ${reason}`);
  }

  /** free_the_page() / __free_pages_ok(): the block goes back to the buddy. */
  free_the_page(p: page, order: number): void {
    const alloc_order = p.owner_order;
    if (alloc_order < 0) {
      this.bad_page(p, "freeing a page the allocator did not hand out");
      return;
    }
    if (alloc_order !== order) this.k.WARN(true, `__free_pages: pfn 0x${p.pfn.toString(16)} allocated at order ${alloc_order}, freed at order ${order}`);
    const bad = this.free_page_is_bad(p);
    if (bad) {
      this.bad_page(p, bad);
      return;
    }
    p.flags = 0;
    p.private = 0;
    p._mapcount = -1;
    const n = 2 ** alloc_order;
    p.owner_order = -1;
    this.nr_allocated -= n;
    this.pgdat.vm_events.pgfree += n;
    for (let i = 0; i < n; i++) this.physmem.report_free_frame(p.pfn + i);
    this.free_one_block(p.pfn, alloc_order);
  }

  /** __free_pages(page, order): drop the caller's reference; free the block at zero. */
  __free_pages(p: page, order: number): void {
    if (page_ref_count(p) <= 0) {
      dump_page(p, "__free_pages: refcount already zero");
      this.k.WARN(true, "page refcount underflow");
      return;
    }
    if (page_ref_dec_and_test(p)) this.free_the_page(p, order);
  }

  /** Order of an allocated block whose head is `pfn` (0 if unknown). */
  allocation_order(pfn: number): number {
    return Math.max(0, this.pgdat.mem_section.peek(pfn)?.owner_order ?? 0);
  }

  is_allocated(pfn: number): boolean {
    return (this.pgdat.mem_section.peek(pfn)?.owner_order ?? -1) >= 0;
  }

  // ---- accounting -----------------------------------------------------------------------------

  nr_free_pages(): number {
    return this.zone.managed_pages - this.nr_allocated;
  }

  nr_allocated_pages(): number {
    return this.nr_allocated;
  }

  totalram_pages(): number {
    return this.zone.managed_pages;
  }

  /** Allocations made during boot that are meant to live until power-off. */
  mark_boot_allocation(p: page): void {
    this.boot_pfns.add(p.pfn);
  }

  leak_report(): string[] {
    if (this.nr_allocated === 0) return [];
    const leaked: page[] = [];
    for (const p of this.pgdat.mem_section.built_pages(this.zone.zone_start_pfn, this.zone.zone_start_pfn + this.zone.spanned_pages)) {
      if (p.owner_order >= 0 && !this.boot_pfns.has(p.pfn)) leaked.push(p);
    }
    if (!leaked.length) return [];
    const pages = leaked.reduce((n, p) => n + 2 ** p.owner_order, 0);
    const lines = [`page_alloc: ${pages} page(s) in ${leaked.length} block(s) still allocated at shutdown`];
    for (const p of leaked.slice(0, 16)) {
      lines.push(`  order:${p.owner_order} mode:0x${p.owner_gfp.toString(16)}(${gfp_flags_string(p.owner_gfp)}) by ${p.owner_comm}: ${dump_page_lines(p, "")[0]}`);
    }
    if (leaked.length > 16) lines.push(`  ... and ${leaked.length - 16} more`);
    return lines;
  }
}

// ---- the kernel's free functions (kemu: machine from `k` or from the page) -------------------

function allocator(k: Kernel): PageAlloc {
  return NODE_DATA(k).page_alloc;
}

export function alloc_pages(k: Kernel, gfp: gfp_t, order: number): page | null {
  return allocator(k).alloc_pages(gfp, order);
}

export function alloc_page(k: Kernel, gfp: gfp_t): page | null {
  return allocator(k).alloc_pages(gfp, 0);
}

/** alloc_page_vma(gfp, vma, addr): the machine comes from the vma's mm. */
export function alloc_page_vma(gfp: gfp_t, vma: vm_area_struct, _addr: number): page | null {
  return allocator(vma.vm_mm.k).alloc_pages(gfp, 0);
}

/** __get_free_pages() returns a kernel virtual address; kemu has no linear map, so it returns
 *  the physical address of the block (0 on failure). */
export function __get_free_pages(k: Kernel, gfp: gfp_t, order: number): number {
  const p = alloc_pages(k, gfp, order);
  return p ? p.pfn * PAGE_SIZE : 0;
}

export function get_zeroed_page(k: Kernel, gfp: gfp_t): number {
  return __get_free_pages(k, gfp | __GFP_ZERO, 0);
}

export function __free_pages(p: page, order: number): void {
  p.zone.zone_pgdat.page_alloc.__free_pages(p, order);
}

export function __free_page(p: page): void {
  __free_pages(p, 0);
}

/** free_pages(addr, order): takes what __get_free_pages returned. */
export function free_pages(k: Kernel, addr: number, order: number): void {
  if (addr === 0) return;
  const p = NODE_DATA(k).mem_section.lookup(Math.floor(addr / PAGE_SIZE));
  if (p) __free_pages(p, order);
}

export function free_page(k: Kernel, addr: number): void {
  free_pages(k, addr, 0);
}

/** free_unref_page(): the last reference of an order-0 (or recorded-order) page went away. */
export function free_unref_page(p: page): void {
  const pa = p.zone.zone_pgdat.page_alloc;
  pa.free_the_page(p, pa.allocation_order(p.pfn));
}

export function nr_free_pages(k: Kernel): number {
  return allocator(k).nr_free_pages();
}

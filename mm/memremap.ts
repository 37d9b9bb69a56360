// Mirrors mm/memremap.c (Linux 6.8, the 6.1–6.14 refcount model of mm.md §2.1): ZONE_DEVICE
// pagemaps. memremap_pages() validates the pagemap (mm.md §2.1 checks and errnos), records it
// in the pfn → pgmap map and hot-adds struct pages for its ranges (built lazily in kemu, with
// refcount 0 for PRIVATE/COHERENT). memunmap_pages() kills the pgmap ref and waits until every
// allocated device page has been freed. free_zone_device_page() is the refcount-0 path.

import "reflect-metadata";
import { inject, injectable } from "tsyringe";
import { IOMEM, KERNEL, PAGE_ALLOC } from "../kernel/tokens.ts";
import type { Kernel } from "../kernel/kernel.ts";
import type { KernelService } from "../kernel/machine.ts";
import type { PageAlloc } from "./page_alloc.ts";
import {
  type ResourceTree, type resource, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE, REGION_DISJOINT, REGION_MIXED,
} from "../kernel/resource.ts";
import type { page } from "../include/linux/mm_types.ts";
import { ZONE_DEVICE, NODE_DATA } from "../include/linux/mmzone.ts";
import {
  dev_pagemap, MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_GENERIC,
  MEMORY_DEVICE_PCI_P2PDMA, range_len,
} from "../include/linux/memremap.ts";
import {
  percpu_ref_init, percpu_ref_kill, percpu_ref_put, percpu_ref_put_many, percpu_ref_get_many, percpu_ref_tryget_live,
  percpu_ref_exit,
} from "../include/linux/percpu-refcount.ts";
import { completion, init_completion, complete_all, wait_for_completion } from "../kernel/sched/completion.ts";
import { EINVAL, ENOMEM, ENXIO } from "../include/uapi/asm-generic/errno.ts";
import { PAGE_SIZE, PageAnon } from "../include/linux/mm.ts";
import { ClearPageAnonExclusive, PG_reserved } from "../include/linux/page-flags.ts";
import { set_page_count } from "../include/linux/page_ref.ts";
import { trylock_page } from "./filemap.ts";
import { PAGES_PER_SUBSECTION } from "./sparse.ts";
import { MAX_PHYSMEM_BITS } from "../arch/x86/include/asm/pgtable_types.ts";
import { ftrace } from "../include/linux/ftrace.ts";

/** One pgmap_array entry: the pfns of one range of one pagemap. */
interface pgmap_span {
  start_pfn: number;
  end_pfn: number; // inclusive
  pgmap: dev_pagemap;
}

const pagemaps = new WeakMap<Kernel, pgmap_span[]>();

function pgmap_array(k: Kernel): pgmap_span[] {
  let a = pagemaps.get(k);
  if (!a) {
    a = [];
    pagemaps.set(k, a);
  }
  return a;
}

function pgmap_lookup(k: Kernel, pfn: number): dev_pagemap | null {
  return pgmap_array(k).find((s) => pfn >= s.start_pfn && pfn <= s.end_pfn)?.pgmap ?? null;
}

/** get_dev_pagemap(pfn): the live pagemap covering pfn with a reference, or null. */
export function get_dev_pagemap(k: Kernel, pfn: number): dev_pagemap | null {
  const pgmap = pgmap_lookup(k, pfn);
  return pgmap && percpu_ref_tryget_live(pgmap.ref) ? pgmap : null;
}

export function put_dev_pagemap(pgmap: dev_pagemap | null): void {
  if (pgmap) percpu_ref_put(pgmap.ref);
}

function pfn_len(pgmap: dev_pagemap, i: number): number {
  return range_len(pgmap.ranges[i]!) / PAGE_SIZE;
}

/**
 * zone_device_page_init(page): hand a free device page out — one pgmap reference (WARN if the
 * pagemap is dying), refcount 1, page locked.
 */
export function zone_device_page_init(p: page): void {
  const k = p.zone.zone_pgdat.k;
  k.WARN_ON_ONCE(!percpu_ref_tryget_live(p.pgmap!.ref), "zone_device_page_init: pagemap is being unmapped");
  set_page_count(p, 1);
  k.WARN_ON_ONCE(!trylock_page(p), "zone_device_page_init: page already locked");
}

/**
 * free_zone_device_page(): the last reference went. PRIVATE/COHERENT: ops->page_free once, then
 * the pgmap reference from zone_device_page_init is dropped; other types go back to refcount 1.
 */
export function free_zone_device_page(p: page): void {
  const k = p.zone.zone_pgdat.k;
  using _ = ftrace(k, "free_zone_device_page");
  const pgmap = p.pgmap!;
  const page_free = pgmap.ops?.page_free;
  if (k.WARN_ON_ONCE(!page_free, "free_zone_device_page: no page_free") || !page_free) return;
  if (PageAnon(p)) ClearPageAnonExclusive(p);
  // A stale anon mapping must not make a recycled page look anonymous.
  p.mapping = null;
  page_free.call(pgmap.ops, p);
  if (pgmap.type !== MEMORY_DEVICE_PRIVATE && pgmap.type !== MEMORY_DEVICE_COHERENT) set_page_count(p, 1);
  else put_dev_pagemap(pgmap);
}

@injectable()
export class MemRemap implements KernelService {
  constructor(
    @inject(KERNEL) private readonly k: Kernel,
    // The allocator builds NODE_DATA (and its ZONE_DEVICE zone) that pagemaps hot-add into.
    @inject(PAGE_ALLOC) _pa: PageAlloc,
    @inject(IOMEM) private readonly iomem: ResourceTree,
  ) {}

  private warn_einval(msg: string): number {
    this.k.WARN(true, msg);
    return -EINVAL;
  }

  /** The type checks of memremap_pages(); 0 or -EINVAL (with the kernel's WARN). */
  private check_type(pgmap: dev_pagemap): number {
    const k = this.k;
    switch (pgmap.type) {
      case MEMORY_DEVICE_PRIVATE:
        if (!pgmap.ops?.migrate_to_ram) return this.warn_einval("Missing migrate_to_ram method");
        if (!pgmap.ops.page_free) return this.warn_einval("Missing page_free method");
        if (!pgmap.owner) return this.warn_einval("Missing owner");
        return 0;
      case MEMORY_DEVICE_COHERENT:
        if (!pgmap.ops?.page_free) return this.warn_einval("Missing page_free method");
        if (!pgmap.owner) return this.warn_einval("Missing owner");
        return 0;
      case MEMORY_DEVICE_FS_DAX:
      case MEMORY_DEVICE_GENERIC:
      case MEMORY_DEVICE_PCI_P2PDMA:
        return 0;
      default:
        k.WARN(true, `Invalid pgmap type ${pgmap.type}`);
        return 0;
    }
  }

  /** pagemap_range(): validate and hot-add one range; 0 or -errno. */
  private pagemap_range(pgmap: dev_pagemap, i: number): number {
    const k = this.k;
    const r = pgmap.ranges[i]!;
    const start_pfn = Math.floor(r.start / PAGE_SIZE);
    const end_pfn = Math.floor(r.end / PAGE_SIZE);
    if (pgmap_lookup(k, start_pfn) || pgmap_lookup(k, end_pfn)) {
      k.WARN(true, "Conflicting mapping in same section");
      return -ENOMEM;
    }
    const is_ram = this.iomem.region_intersects(r.start, range_len(r), IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE);
    if (is_ram !== REGION_DISJOINT) {
      k.WARN_ONCE(true, `attempted on ${is_ram === REGION_MIXED ? "mixed" : "ram"} region 0x${r.start.toString(16)}-0x${r.end.toString(16)}`);
      return -ENXIO;
    }
    const limit = 2 ** MAX_PHYSMEM_BITS;
    if (!(r.start < r.end + 1 && r.end < limit)) {
      k.pr_warn(`Hotplug memory [0x${r.start.toString(16)}-0x${(r.end + 1).toString(16)}] exceeds maximum addressable range [0x0-0x${(limit - 1).toString(16)}]`);
      return -EINVAL;
    }
    const nr = range_len(r) / PAGE_SIZE;
    // check_pfn_span(): hotplug works in whole subsections (2 MiB).
    if (start_pfn % PAGES_PER_SUBSECTION || nr % PAGES_PER_SUBSECTION || !Number.isInteger(nr)) return -EINVAL;
    pgmap_array(k).push({ start_pfn, end_pfn, pgmap });
    const zone = NODE_DATA(k).node_zones[ZONE_DEVICE]!;
    zone.spanned_pages += nr;
    NODE_DATA(k).mem_section.add_device_range(start_pfn, nr, zone, pgmap, (p) => this.init_zone_device_page(p, pgmap));
    if (pgmap.type !== MEMORY_DEVICE_PRIVATE && pgmap.type !== MEMORY_DEVICE_COHERENT) percpu_ref_get_many(pgmap.ref, nr);
    return 0;
  }

  /** __init_zone_device_page(): reserved, pgmap set; PRIVATE/COHERENT start free (refcount 0). */
  private init_zone_device_page(p: page, pgmap: dev_pagemap): void {
    p.flags |= 1 << PG_reserved;
    p.pgmap = pgmap;
    p.zone_device_data = null;
    set_page_count(p, pgmap.type === MEMORY_DEVICE_PRIVATE || pgmap.type === MEMORY_DEVICE_COHERENT ? 0 : 1);
  }

  /**
   * memremap_pages(pgmap, nid): 0-based returns the physical start of range 0 (the kernel
   * returns its linear-map address; kemu has no linear map), or -errno.
   */
  async memremap_pages(pgmap: dev_pagemap, _nid = -1): Promise<number> {
    const k = this.k;
    using _ = ftrace(k, "memremap_pages");
    k.might_sleep("memremap_pages");
    const nr_range = pgmap.nr_range;
    if (k.WARN_ONCE(nr_range <= 0, "nr_range must be specified")) return -EINVAL;
    const err = this.check_type(pgmap);
    if (err) return err;
    pgmap.done = new completion(k, "&pgmap->done");
    init_completion(pgmap.done);
    percpu_ref_init(pgmap.ref, () => complete_all(pgmap.done!));
    pgmap.nr_range = 0;
    let error = 0;
    for (let i = 0; i < nr_range; i++) {
      error = this.pagemap_range(pgmap, i);
      if (error) break;
      pgmap.nr_range++;
    }
    if (error) {
      await this.memunmap_pages(pgmap);
      pgmap.nr_range = nr_range;
      return error;
    }
    return pgmap.ranges[0]!.start;
  }

  /** pageunmap_range(): the struct pages and the pfn → pgmap entry of one range go away. */
  private pageunmap_range(pgmap: dev_pagemap, i: number): void {
    const r = pgmap.ranges[i]!;
    const start_pfn = Math.floor(r.start / PAGE_SIZE);
    const nr = range_len(r) / PAGE_SIZE;
    const pgdat = NODE_DATA(this.k);
    pgdat.mem_section.remove_device_range(start_pfn, nr);
    pgdat.node_zones[ZONE_DEVICE]!.spanned_pages -= nr;
    const arr = pgmap_array(this.k);
    const idx = arr.findIndex((s) => s.pgmap === pgmap && s.start_pfn === start_pfn);
    if (idx >= 0) arr.splice(idx, 1);
  }

  /**
   * memunmap_pages(pgmap): kill the ref, then block until every allocated page of the pagemap
   * has been freed (page_free called), then remove the struct pages.
   */
  async memunmap_pages(pgmap: dev_pagemap): Promise<void> {
    using _ = ftrace(this.k, "memunmap_pages");
    this.k.might_sleep("memunmap_pages");
    percpu_ref_kill(pgmap.ref);
    if (pgmap.type !== MEMORY_DEVICE_PRIVATE && pgmap.type !== MEMORY_DEVICE_COHERENT) {
      for (let i = 0; i < pgmap.nr_range; i++) percpu_ref_put_many(pgmap.ref, pfn_len(pgmap, i));
    }
    await wait_for_completion(pgmap.done!);
    for (let i = 0; i < pgmap.nr_range; i++) this.pageunmap_range(pgmap, i);
    percpu_ref_exit(pgmap.ref);
  }

  get_dev_pagemap(pfn: number): dev_pagemap | null {
    return get_dev_pagemap(this.k, pfn);
  }

  /** request_free_mem_region(&iomem_resource, size, name). */
  request_free_mem_region(size: number, name: string): resource | number {
    return this.iomem.request_free_mem_region(size, name);
  }

  release_mem_region(start: number, n: number): void {
    this.iomem.release_mem_region(start, n);
  }

  /** Every registered pagemap (one entry per pagemap, in registration order). */
  pagemaps(): dev_pagemap[] {
    return [...new Set(pgmap_array(this.k).map((s) => s.pgmap))];
  }

  leak_report(): string[] {
    return pgmap_array(this.k).map((s) =>
      `memremap: pagemap [pfn 0x${s.start_pfn.toString(16)}-0x${s.end_pfn.toString(16)}] type ${s.pgmap.type} still mapped at shutdown`);
  }
}

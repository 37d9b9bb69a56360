// Mirrors mm/sparse.c and the SPARSEMEM parts of include/linux/mmzone.h (Linux 6.8): the memmap
// (struct page array) is kept per memory section of 2^27 bytes, and sections that hold no memory
// have none. kemu goes one step further: inside a present section, struct pages are built on
// first use in blocks of one subsection (512 pages, 2 MiB), so a 1 TiB machine costs nothing
// until its pages are used. pfn_to_page() therefore always returns the same object for a pfn.

import { page } from "../include/linux/mm_types.ts";
import type { zone } from "../include/linux/mmzone.ts";
import type { dev_pagemap } from "../include/linux/memremap.ts";
import type { Kernel } from "../kernel/kernel.ts";
import { NODE_DATA } from "../include/linux/mmzone.ts";

export const SECTION_SIZE_BITS = 27;
export const PFN_SECTION_SHIFT = SECTION_SIZE_BITS - 12;
export const PAGES_PER_SECTION = 2 ** PFN_SECTION_SHIFT;
/** Subsections (2 MiB) are the hotplug granularity of ZONE_DEVICE ranges. */
export const PAGES_PER_SUBSECTION = 512;
const SUBSECTIONS_PER_SECTION = PAGES_PER_SECTION / PAGES_PER_SUBSECTION;

export function pfn_to_section_nr(pfn: number): number {
  return Math.floor(pfn / PAGES_PER_SECTION);
}
export function section_nr_to_pfn(nr: number): number {
  return nr * PAGES_PER_SECTION;
}

/** How a lazily built struct page of a subsection is initialised (memmap_init_zone_device). */
export type page_init_fn = (p: page) => void;

interface subsection {
  zone: zone;
  pgmap: dev_pagemap | null;
  init: page_init_fn | null;
  pages: (page | undefined)[] | null;
}

export class mem_section {
  /** Populated subsections (the kernel's subsection_map + section_mem_map). */
  readonly subsections: (subsection | undefined)[] = new Array(SUBSECTIONS_PER_SECTION);
  constructor(readonly section_nr: number) {}
}

/** The machine's memmap: every mem_section, and the System RAM span that is present. */
export class mem_section_map {
  private readonly sections = new Map<number, mem_section>();
  private ram_start_pfn = 0;
  private ram_end_pfn = 0;
  private ram_zone: zone | null = null;
  /** struct page objects built so far (for the metadata budget). */
  nr_struct_pages = 0;
  // The subsections of the last two lookups: migrations walk source and destination pfns in
  // step (RAM and device), and device pfns are past 2^31, where `%` and Map keys are slow.
  private cache_nr: [number, number] = [-1, -1];
  private cache_ss: [subsection | undefined, subsection | undefined] = [undefined, undefined];
  private cache_next = 0;

  /** memblock → sparse_init(): RAM sections are present but nothing is built yet. */
  init_ram(start_pfn: number, end_pfn: number, z: zone): void {
    this.ram_start_pfn = start_pfn;
    this.ram_end_pfn = end_pfn;
    this.ram_zone = z;
  }

  private is_ram(pfn: number): boolean {
    return pfn >= this.ram_start_pfn && pfn < this.ram_end_pfn;
  }

  private subsection_of(pfn: number, create_ram: boolean): subsection | undefined {
    const nr = pfn_to_section_nr(pfn);
    let ms = this.sections.get(nr);
    const idx = Math.floor((pfn % PAGES_PER_SECTION) / PAGES_PER_SUBSECTION);
    let ss = ms?.subsections[idx];
    if (ss || !create_ram || !this.is_ram(pfn)) return ss;
    if (!ms) {
      ms = new mem_section(nr);
      this.sections.set(nr, ms);
    }
    ss = { zone: this.ram_zone!, pgmap: null, init: null, pages: null };
    ms.subsections[idx] = ss;
    return ss;
  }

  pfn_valid(pfn: number): boolean {
    if (!Number.isInteger(pfn) || pfn < 0) return false;
    return this.is_ram(pfn) || this.subsection_of(pfn, false) !== undefined;
  }

  /** The struct page of a valid pfn, built on first use; null for an invalid pfn. */
  lookup(pfn: number): page | null {
    const ss_nr = Math.floor(pfn / PAGES_PER_SUBSECTION);
    let ss = ss_nr === this.cache_nr[0] ? this.cache_ss[0] : ss_nr === this.cache_nr[1] ? this.cache_ss[1] : undefined;
    if (!ss) {
      ss = this.subsection_of(pfn, true);
      if (!ss) return null;
      this.cache_nr[this.cache_next] = ss_nr;
      this.cache_ss[this.cache_next] = ss;
      this.cache_next ^= 1;
    }
    ss.pages ??= new Array<page | undefined>(PAGES_PER_SUBSECTION);
    const i = pfn - ss_nr * PAGES_PER_SUBSECTION;
    let p = ss.pages[i];
    if (!p) {
      p = new page(pfn, ss.zone);
      p.pgmap = ss.pgmap;
      ss.init?.(p);
      ss.pages[i] = p;
      this.nr_struct_pages++;
    }
    return p;
  }

  private forget_cached(): void {
    this.cache_nr = [-1, -1];
    this.cache_ss = [undefined, undefined];
  }

  /** The struct page if it was ever built (no allocation), for scans such as leak reports. */
  peek(pfn: number): page | undefined {
    const ss = this.subsection_of(pfn, false);
    return ss?.pages?.[pfn % PAGES_PER_SUBSECTION];
  }

  /**
   * sparse_add_section() for a ZONE_DEVICE range (add_pages / move_pfn_range_to_zone): the
   * range must be subsection aligned; struct pages are built lazily with `init`.
   */
  add_device_range(start_pfn: number, nr_pages: number, z: zone, pgmap: dev_pagemap, init: page_init_fn): void {
    this.forget_cached();
    for (let pfn = start_pfn; pfn < start_pfn + nr_pages; pfn += PAGES_PER_SUBSECTION) {
      const nr = pfn_to_section_nr(pfn);
      let ms = this.sections.get(nr);
      if (!ms) {
        ms = new mem_section(nr);
        this.sections.set(nr, ms);
      }
      const idx = Math.floor((pfn % PAGES_PER_SECTION) / PAGES_PER_SUBSECTION);
      ms.subsections[idx] = { zone: z, pgmap, init, pages: null };
    }
  }

  /** sparse_remove_section(): the struct pages of the range go away. */
  remove_device_range(start_pfn: number, nr_pages: number): void {
    this.forget_cached();
    for (let pfn = start_pfn; pfn < start_pfn + nr_pages; pfn += PAGES_PER_SUBSECTION) {
      const nr = pfn_to_section_nr(pfn);
      const ms = this.sections.get(nr);
      if (!ms) continue;
      const idx = Math.floor((pfn % PAGES_PER_SECTION) / PAGES_PER_SUBSECTION);
      const ss = ms.subsections[idx];
      if (ss?.pages) this.nr_struct_pages -= ss.pages.filter((p) => p).length;
      ms.subsections[idx] = undefined;
      if (ms.subsections.every((s) => !s)) this.sections.delete(nr);
    }
  }

  /** Every struct page built so far in [start, end), in pfn order (sparse scan). */
  *built_pages(start_pfn: number, end_pfn: number): Generator<page> {
    const nrs = [...this.sections.keys()].sort((a, b) => a - b);
    for (const nr of nrs) {
      const ms = this.sections.get(nr)!;
      for (const ss of ms.subsections) {
        for (const p of ss?.pages ?? []) if (p && p.pfn >= start_pfn && p.pfn < end_pfn) yield p;
      }
    }
  }
}

/** pfn_valid(): the pfn has a struct page (System RAM or an added ZONE_DEVICE range). */
export function pfn_valid(k: Kernel, pfn: number): boolean {
  return NODE_DATA(k).mem_section.pfn_valid(pfn);
}

/**
 * pfn_to_page(). kemu passes the machine's Kernel because there is no global memmap. An invalid
 * pfn is a kernel bug (the kernel would return a wild pointer): it oopses.
 */
export function pfn_to_page(k: Kernel, pfn: number): page {
  const p = NODE_DATA(k).mem_section.lookup(pfn);
  if (!p) k.BUG(`pfn_to_page: invalid pfn 0x${pfn.toString(16)}`);
  return p;
}

export function page_to_pfn(p: page): number {
  return p.pfn;
}

/** page_to_phys(). */
export function page_to_phys(p: page): number {
  return p.pfn * 4096;
}

export function phys_to_page(k: Kernel, pa: number): page {
  return pfn_to_page(k, Math.floor(pa / 4096));
}

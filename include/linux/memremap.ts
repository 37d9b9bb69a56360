// Mirrors include/linux/memremap.h (Linux 6.8, the 6.1–6.14 model of mm.md §0): ZONE_DEVICE
// pagemaps. Free device-private/coherent pages have refcount 0; zone_device_page_init() makes
// them 1 and locked; the transition back to 0 calls ops->page_free once.

import type { page } from "./mm_types.ts";
import type { vm_fault } from "./mm.ts";
import { percpu_ref } from "./percpu-refcount.ts";
import type { completion } from "../../kernel/sched/completion.ts";
import { is_zone_device_page } from "./mmzone.ts";

// enum memory_type: 0 is deliberately unused so an uninitialised pagemap is caught.
export const MEMORY_DEVICE_PRIVATE = 1;
export const MEMORY_DEVICE_COHERENT = 2;
export const MEMORY_DEVICE_FS_DAX = 3;
export const MEMORY_DEVICE_GENERIC = 4;
export const MEMORY_DEVICE_PCI_P2PDMA = 5;
export type memory_type = 1 | 2 | 3 | 4 | 5;

/** pgmap->flags */
export const PGMAP_ALTMAP_VALID = 1 << 0;

/** struct range: inclusive end, as in include/linux/range.h. */
export interface range {
  start: number;
  end: number;
}

export function range_len(r: range): number {
  return r.end - r.start + 1;
}

export interface dev_pagemap_ops {
  /** Called when a PRIVATE/COHERENT/P2PDMA page's refcount drops to 0. */
  page_free?(p: page): void;
  /** PRIVATE only: migrate vmf.page back to system RAM; returns VM_FAULT_* bits. */
  migrate_to_ram?(vmf: vm_fault): Promise<number>;
  /** Optional poison handler (≈5.19+); -EOPNOTSUPP falls back to the generic path. */
  memory_failure?(pgmap: dev_pagemap, pfn: number, nr_pages: number, mf_flags: number): number;
}

export class dev_pagemap {
  type: memory_type | 0 = 0;
  flags = 0;
  vmemmap_shift = 0;
  ops: dev_pagemap_ops | null = null;
  /** Identity of the managing entity; compared by ===. Mandatory for PRIVATE/COHERENT. */
  owner: unknown = null;
  nr_range = 0;
  /** range / ranges[]: ranges[0] is the kernel's `range` union member. */
  ranges: range[] = [];
  /** Liveness of the whole pagemap: one reference per allocated PRIVATE/COHERENT page. */
  readonly ref = new percpu_ref();
  /** Completed when `ref` drops to zero after memunmap_pages killed it. */
  done: completion | null = null;

  /** `pgmap->range`, the single-range form. */
  get range(): range {
    return this.ranges[0]!;
  }
  set range(r: range) {
    this.ranges[0] = r;
  }
}

export function is_device_private_page(p: page): boolean {
  return is_zone_device_page(p) && p.pgmap?.type === MEMORY_DEVICE_PRIVATE;
}

export function is_device_coherent_page(p: page): boolean {
  return is_zone_device_page(p) && p.pgmap?.type === MEMORY_DEVICE_COHERENT;
}

export function is_pci_p2pdma_page(p: page): boolean {
  return is_zone_device_page(p) && p.pgmap?.type === MEMORY_DEVICE_PCI_P2PDMA;
}

export function is_fsdax_page(p: page): boolean {
  return is_zone_device_page(p) && p.pgmap?.type === MEMORY_DEVICE_FS_DAX;
}

export function folio_is_device_private(p: page): boolean {
  return is_device_private_page(p);
}

export function folio_is_device_coherent(p: page): boolean {
  return is_device_coherent_page(p);
}

/** page_pgmap() (6.14 accessor name). */
export function page_pgmap(p: page): dev_pagemap | null {
  return p.pgmap;
}

export { is_zone_device_page };

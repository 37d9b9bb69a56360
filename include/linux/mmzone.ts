// Mirrors include/linux/mmzone.h (Linux 6.8): zones and the node (pglist_data). kemu has one
// node per machine. The kernel reaches node 0 through a global (contig_page_data); kemu keeps one
// per machine, found from the machine's Kernel with NODE_DATA(k), or from a page through
// page_zone(page).zone_pgdat — that is how free functions such as put_page() reach the machine.

import type { Kernel } from "../../kernel/kernel.ts";
import type { PhysMem } from "../../hw/physmem.ts";
import type { CpuMmu } from "../../hw/cpu_mmu.ts";
import type { page } from "./mm_types.ts";
import type { mem_section_map } from "../../mm/sparse.ts";
import type { wait_queue_head_t } from "../../kernel/sched/wait.ts";
import type { PageAlloc } from "../../mm/page_alloc.ts";

// enum zone_type
export const ZONE_DMA = 0;
export const ZONE_DMA32 = 1;
export const ZONE_NORMAL = 2;
export const ZONE_MOVABLE = 3;
export const ZONE_DEVICE = 4;
export const MAX_NR_ZONES = 5;
const zone_names = ["DMA", "DMA32", "Normal", "Movable", "Device"];

/** Buddy orders 0..MAX_ORDER (6.8 names it MAX_PAGE_ORDER; 4 MiB blocks on x86). */
export const MAX_ORDER = 10;
export const NR_PAGE_ORDERS = MAX_ORDER + 1;

export class free_area {
  /** Head pfns of free blocks of this order (the kernel's free_list). */
  readonly free_list = new Set<number>();
  get nr_free(): number {
    return this.free_list.size;
  }
}

export class zone {
  readonly name: string;
  zone_start_pfn = 0;
  spanned_pages = 0;
  present_pages = 0;
  /** Pages the buddy allocator manages (present minus reserved). */
  managed_pages = 0;
  readonly free_area: free_area[] = Array.from({ length: NR_PAGE_ORDERS }, () => new free_area());
  /** NR_FREE_PAGES of the zone's vmstat. */
  nr_free = 0;
  /**
   * Lazy buddy initialisation: pfns in [free_frontier, zone_end) are free and have never been
   * handed out, so boot never walks RAM (cf. deferred struct page init).
   */
  free_frontier = 0;

  constructor(
    readonly zone_pgdat: pglist_data,
    readonly zone_type: number,
  ) {
    this.name = zone_names[zone_type]!;
  }

  zone_end_pfn(): number {
    return this.zone_start_pfn + this.spanned_pages;
  }

  zone_idx(): number {
    return this.zone_type;
  }
}

/** Global vm events (include/linux/vm_event_item.h), kept per node in kemu. */
export interface vm_event_states {
  pgfault: number;
  pgmajfault: number;
  pgalloc: number;
  pgfree: number;
  thp_fault_alloc: number;
}

export class pglist_data {
  readonly node_id = 0;
  readonly node_zones: zone[];
  node_start_pfn = 0;
  node_present_pages = 0;
  node_spanned_pages = 0;
  /** The shared zero page (ZERO_PAGE(0)): read faults on anonymous memory map it. */
  zero_page: page | null = null;
  /** Hashed page wait queues (mm/filemap.c page_wait_table), created on first use. */
  readonly page_wait_table = new Map<number, wait_queue_head_t>();
  readonly vm_events: vm_event_states = { pgfault: 0, pgmajfault: 0, pgalloc: 0, pgfree: 0, thp_fault_alloc: 0 };
  /** PCID / context id allocator for new mm_structs (0 is init_mm). */
  next_context_id = 1;
  /** The machine's page allocator (mm/page_alloc.ts), set when it builds this node. */
  page_alloc!: PageAlloc;

  constructor(
    readonly k: Kernel,
    readonly physmem: PhysMem,
    readonly cpu: CpuMmu,
    readonly mem_section: mem_section_map,
  ) {
    this.node_zones = Array.from({ length: MAX_NR_ZONES }, (_, i) => new zone(this, i));
  }
}

const nodes = new WeakMap<Kernel, pglist_data>();
// Every PTE access asks for the node; one process usually drives one machine at a time, so the
// last answer is kept (a WeakRef would cost more than the map lookup it saves).
let last_k: Kernel | null = null;
let last_node: pglist_data | null = null;

/** NODE_DATA(nid) of the machine `k` runs (kemu: one node, so the nid is implied). */
export function NODE_DATA(k: Kernel): pglist_data {
  if (k === last_k) return last_node!;
  const n = nodes.get(k);
  if (!n) throw new Error("NODE_DATA: the machine has no memory node (PAGE_ALLOC service not built)");
  last_k = k;
  last_node = n;
  return n;
}

/** Called once by the page allocator service when it builds the machine's node. */
export function register_node(k: Kernel, pgdat: pglist_data): void {
  nodes.set(k, pgdat);
}

export function page_zone(p: page): zone {
  return p.zone;
}

export function page_pgdat(p: page): pglist_data {
  return p.zone.zone_pgdat;
}

export function page_zonenum(p: page): number {
  return p.zone.zone_type;
}

export function is_zone_device_page(p: page): boolean {
  return p.zone.zone_type === ZONE_DEVICE;
}

// Mirrors the page-release part of mm/swap.c (Linux 6.8): __folio_put(), reached when the last
// reference to a page goes away. kemu has no LRU lists, swap or memcg: releasing a page means
// clearing its LRU state and returning it to its allocator.

import type { page } from "../include/linux/mm_types.ts";
import { is_zone_device_page } from "../include/linux/mmzone.ts";
import { ClearPageLRU, ClearPageAnonExclusive, SetPageLRU } from "../include/linux/page-flags.ts";
import { free_unref_page } from "./page_alloc.ts";
import { free_zone_device_page } from "./memremap.ts";

/** __folio_put(): ZONE_DEVICE pages go to their pagemap, the rest to the buddy allocator. */
export function __folio_put(p: page): void {
  if (is_zone_device_page(p)) {
    free_zone_device_page(p);
    return;
  }
  // __page_cache_release(): off the LRU. free_pages_prepare() drops the anon tag; a page-cache
  // page must already have left its mapping (else "Bad page state").
  ClearPageLRU(p);
  ClearPageAnonExclusive(p);
  if (p.mapping?.kind === "anon") p.mapping = null;
  free_unref_page(p);
}

/** lru_add_drain(): kemu has no per-CPU LRU batches, so there is nothing to drain. */
export function lru_add_drain(): void {}

/** folio_add_lru() / lru_cache_add(): mark the page as on the LRU. */
export function lru_cache_add(p: page): void {
  SetPageLRU(p);
}

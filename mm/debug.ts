// Mirrors mm/debug.c (Linux 6.8): dump_page() and the %pGp page-flag names of
// include/trace/events/mmflags.h, for "Bad page state" and VM_BUG_ON_PAGE reports.

import type { page } from "../include/linux/mm_types.ts";
import * as PF from "../include/linux/page-flags.ts";

const flag_names: ReadonlyArray<readonly [number, string]> = [
  [PF.PG_locked, "locked"], [PF.PG_waiters, "waiters"], [PF.PG_error, "error"], [PF.PG_referenced, "referenced"],
  [PF.PG_uptodate, "uptodate"], [PF.PG_dirty, "dirty"], [PF.PG_lru, "lru"], [PF.PG_active, "active"],
  [PF.PG_workingset, "workingset"], [PF.PG_slab, "slab"], [PF.PG_owner_priv_1, "owner_priv_1"], [PF.PG_arch_1, "arch_1"],
  [PF.PG_reserved, "reserved"], [PF.PG_private, "private"], [PF.PG_private_2, "private_2"],
  [PF.PG_writeback, "writeback"], [PF.PG_head, "head"], [PF.PG_mappedtodisk, "mappedtodisk"],
  [PF.PG_reclaim, "reclaim"], [PF.PG_swapbacked, "swapbacked"], [PF.PG_unevictable, "unevictable"],
  [PF.PG_mlocked, "mlocked"], [PF.PG_hwpoison, "hwpoison"],
];

/** %pGp: "uptodate|dirty|lru". */
export function page_flags_string(flags: number): string {
  return flag_names.filter(([bit]) => flags & (1 << bit)).map(([, n]) => n).join("|");
}

/** The lines dump_page() prints. */
export function dump_page_lines(p: page, reason: string): string[] {
  const mapping = p.mapping === null ? "0000000000000000" : p.mapping.kind === "anon" ? "anon" : `file:${p.mapping.host_name}`;
  const lines = [
    `page:${p.pfn.toString(16).padStart(16, "0")} refcount:${p._refcount} mapcount:${p._mapcount + 1} mapping:${mapping} index:0x${p.index.toString(16)} pfn:0x${p.pfn.toString(16)}`,
  ];
  if (p.pgmap) lines.push(`pgmap:${String(p.pgmap.type)} zone_device_data:${p.zone_device_data === null ? "0" : "set"}`);
  lines.push(`flags: 0x${(p.flags >>> 0).toString(16)}(${page_flags_string(p.flags)}${p.zone.name ? `|zone=${p.zone.zone_type}` : ""})`);
  if (reason) lines.push(`page dumped because: ${reason}`);
  return lines;
}

export function dump_page(p: page, reason: string): void {
  const k = p.zone.zone_pgdat.k;
  for (const l of dump_page_lines(p, reason)) k.pr_warn(l);
}

// Mirrors fs/proc/meminfo.c (Linux 6.8): /proc/meminfo, from the page allocator's counters.
// kemu has no swap, no reclaimable caches and no highmem; those lines print 0 as on such a box.

import type { seq_file } from "../seq_file.ts";
import { seq_puts } from "../seq_file.ts";

export interface meminfo_source {
  totalram_pages(): number;
  nr_free_pages(): number;
  nr_shmem_pages(): number;
}

function show_val_kb(m: seq_file, name: string, pages: number): void {
  seq_puts(m, `${name.padEnd(16)}${String(pages * 4).padStart(8)} kB\n`);
}

/** meminfo_proc_show() */
export function meminfo_proc_show(m: seq_file, src: meminfo_source): void {
  const total = src.totalram_pages();
  const free = src.nr_free_pages();
  const shmem = src.nr_shmem_pages();
  show_val_kb(m, "MemTotal:", total);
  show_val_kb(m, "MemFree:", free);
  show_val_kb(m, "MemAvailable:", free);
  show_val_kb(m, "Buffers:", 0);
  show_val_kb(m, "Cached:", shmem);
  show_val_kb(m, "SwapCached:", 0);
  show_val_kb(m, "Active:", total - free);
  show_val_kb(m, "Inactive:", 0);
  show_val_kb(m, "Unevictable:", 0);
  show_val_kb(m, "Mlocked:", 0);
  show_val_kb(m, "SwapTotal:", 0);
  show_val_kb(m, "SwapFree:", 0);
  show_val_kb(m, "Dirty:", 0);
  show_val_kb(m, "Writeback:", 0);
  show_val_kb(m, "Shmem:", shmem);
}

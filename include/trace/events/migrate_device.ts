// kemu addition (Linux 6.8 has no tracepoints in mm/migrate_device.c; later proposals use the
// same system name): one event per step of a device migration, system "migrate_device":
//   migrate_vma_setup   — collected and unmapped: npages in the range, cpages collected
//   migrate_vma_pages   — struct page identities moved: how many still migrate
//   migrate_vma_finalize — done: how many migrated, how many were restored
//   migrate_device_range — eviction by pfn collected this many allocated device pages

import { TRACE_EVENT } from "../../linux/tracepoint.ts";

interface step_args {
  [k: string]: unknown;
  start: number;
  end: number;
  npages: number;
  count: number;
}

const fmt = (what: string) => (a: step_args) => `start=0x${a.start.toString(16)} end=0x${a.end.toString(16)} npages=${a.npages} ${what}=${a.count}`;

export const trace_migrate_vma_setup = TRACE_EVENT<step_args & { flags: number; owner: string }>(
  "migrate_device", "migrate_vma_setup",
  (a) => `${fmt("cpages")(a)} flags=0x${a.flags.toString(16)} owner=${a.owner}`,
);
export const trace_migrate_vma_pages = TRACE_EVENT<step_args>("migrate_device", "migrate_vma_pages", fmt("migrating"));
export const trace_migrate_vma_finalize = TRACE_EVENT<step_args & { restored: number }>(
  "migrate_device", "migrate_vma_finalize", (a) => `${fmt("migrated")(a)} restored=${a.restored}`,
);
export const trace_migrate_device_range = TRACE_EVENT<{ start_pfn: number; npages: number; count: number }>(
  "migrate_device", "migrate_device_range",
  (a) => `start_pfn=0x${a.start_pfn.toString(16)} npages=${a.npages} collected=${a.count}`,
);

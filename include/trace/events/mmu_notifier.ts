// kemu addition (Linux 6.8 has no mmu-notifier tracepoints): what mm/mmu_notifier.c does at its
// entry points, for following invalidations in a trace. System "mmu_notifier":
//   invalidate_range_start / invalidate_range_end — a window opens / closes (event, owner, span)
//   interval_invalidate — one interval subscription's ->invalidate was called (and its answer)
//   release — exit_mmap tells the subscribers the mm is going away

import { TRACE_EVENT } from "../../linux/tracepoint.ts";

/** Names of enum mmu_notifier_event, by value (include/linux/mmu_notifier.h). */
export const mmu_notifier_event_names = [
  "UNMAP", "CLEAR", "PROTECTION_VMA", "PROTECTION_PAGE", "SOFT_DIRTY", "RELEASE", "MIGRATE", "EXCLUSIVE",
];

function event_name(e: number): string {
  return mmu_notifier_event_names[e] ?? String(e);
}

interface range_args {
  [k: string]: unknown;
  mm: number;
  start: number;
  end: number;
  event: number;
  owner: string;
  blockable: boolean;
}

const range_fmt = (a: range_args) =>
  `mm=${a.mm} start=0x${a.start.toString(16)} end=0x${a.end.toString(16)} event=${event_name(a.event)} owner=${a.owner} ${a.blockable ? "blockable" : "nonblock"}`;

export const trace_mmu_notifier_invalidate_range_start = TRACE_EVENT<range_args>("mmu_notifier", "invalidate_range_start", range_fmt);
export const trace_mmu_notifier_invalidate_range_end = TRACE_EVENT<range_args>("mmu_notifier", "invalidate_range_end", range_fmt);

export const trace_mmu_interval_invalidate = TRACE_EVENT<{ start: number; last: number; event: number; seq: number; ret: boolean }>(
  "mmu_notifier", "interval_invalidate",
  (a) => `interval=[0x${a.start.toString(16)}, 0x${a.last.toString(16)}] event=${event_name(a.event)} seq=${a.seq} ret=${a.ret}`,
);

export const trace_mmu_notifier_release = TRACE_EVENT<{ mm: number; intervals: number; subscribers: number }>(
  "mmu_notifier", "release", (a) => `mm=${a.mm} intervals=${a.intervals} subscribers=${a.subscribers}`,
);

/** How an owner cookie shows in events: its type name, or "null". */
export function owner_name(owner: unknown): string {
  if (owner === null || owner === undefined) return "null";
  return typeof owner === "object" ? (owner.constructor?.name ?? "object") : String(owner);
}

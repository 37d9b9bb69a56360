// kemu tooling: the built-in scenarios, one per call chain of the reference specs
// (../shared/reference/mm.md §3, amdkfd.md §3, iommu-and-selftests.md §1.6).

import type { Scenario } from "../scenario.ts";
import dmirror_migrate from "./dmirror_migrate.ts";
import cpu_fault_device_private from "./cpu_fault_device_private.ts";
import hmm_mirror from "./hmm_mirror.ts";
import munmap_device_pages from "./munmap_device_pages.ts";
import process_exit_device from "./process_exit_device.ts";
import dmirror_evict from "./dmirror_evict.ts";
import fork_cow from "./fork_cow.ts";
import pri_fault from "./pri_fault.ts";
import gpu_retry_fault from "./gpu_retry_fault.ts";
import partial_munmap from "./partial_munmap.ts";
import xnack_off_eviction from "./xnack_off_eviction.ts";
import cpu_fault_vram from "./cpu_fault_vram.ts";
import prefetch from "./prefetch.ts";
import vram_eviction from "./vram_eviction.ts";

export const builtin_scenarios: readonly Scenario[] = [
  dmirror_migrate,
  cpu_fault_device_private,
  hmm_mirror,
  munmap_device_pages,
  process_exit_device,
  dmirror_evict,
  fork_cow,
  pri_fault,
  gpu_retry_fault,
  partial_munmap,
  xnack_off_eviction,
  cpu_fault_vram,
  prefetch,
  vram_eviction,
];

export function find_scenario(name: string): Scenario | undefined {
  return builtin_scenarios.find((s) => s.name === name);
}

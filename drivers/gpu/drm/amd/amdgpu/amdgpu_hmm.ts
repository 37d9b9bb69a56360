// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_hmm.c (Linux 6.8), the HMM helpers amdgpu's userptr
// BOs and amdkfd's SVM ranges share: fault a user address range in with hmm_range_fault()
// under an interval notifier's sequence and report, later and under the driver lock, whether
// an invalidation raced with it. (The userptr BO notifier half of the file is not modelled.)
// The caller holds the mmap lock for reading, as hmm_range_fault() requires.

import { PAGE_SIZE } from "../../../../../include/linux/mm.ts";
import { EBUSY, ENOMEM } from "../../../../../include/uapi/asm-generic/errno.ts";
import { msecs_to_jiffies, time_after } from "../../../../../kernel/time/timekeeping.ts";
import {
  HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_RANGE_DEFAULT_TIMEOUT, hmm_range, hmm_range_fault,
} from "../../../../../mm/hmm.ts";
import { mmu_interval_read_begin, mmu_interval_read_retry, type mmu_interval_notifier } from "../../../../../mm/mmu_notifier.ts";
import { ftrace } from "../../../../../include/linux/ftrace.ts";
import { GFP_KERNEL } from "../../../../../include/linux/gfp_types.ts";
import type { Slab } from "../../../../../mm/slab_common.ts";

export { hmm_range } from "../../../../../mm/hmm.ts";

/** MAX_WALK_BYTE: hmm_range_fault() is called on at most 2 GiB at a time. */
export const MAX_WALK_BYTE = 2 * 1024 * 1024 * 1024;

/** sizeof(struct hmm_range) on x86-64 (6.8): eight pointer-sized fields, for slab accounting. */
const SIZEOF_HMM_RANGE = 64;
/** sizeof(unsigned long), one hmm_pfns entry. */
const SIZEOF_HMM_PFN = 8;

/**
 * amdgpu_hmm_range_get_pages(): fault in [start, start + npages pages) (writable unless
 * `readonly`), device-private pages of `owner` reported as such. Retries -EBUSY within a budget
 * of one HMM_RANGE_DEFAULT_TIMEOUT per 64 MiB (at least one); returns 0 and the range, whose
 * hmm_pfns hold the result, or -errno. The range (kzalloc) and its pfn array (kvmalloc_array)
 * are failable allocations (-ENOMEM); `slab` is the allocator the caller's driver service holds
 * (the kernel's kzalloc needs no handle).
 */
export async function amdgpu_hmm_range_get_pages(
  notifier: mmu_interval_notifier, start: number, npages: number, readonly: boolean, owner: unknown, slab: Slab,
): Promise<hmm_range | number> {
  const k = notifier.mm!.k;
  using _ = ftrace(k, "amdgpu_hmm_range_get_pages");
  const range = slab.kzalloc_obj(new hmm_range(), SIZEOF_HMM_RANGE, GFP_KERNEL, "amdgpu_hmm_range_get_pages");
  if (!range) return -ENOMEM;
  // kvmalloc_array() refuses more than INT_MAX bytes; kemu checks before building the array.
  const pfns = npages * SIZEOF_HMM_PFN <= 2 ** 31 - 1
    ? slab.kvmalloc_array_obj(new Array<number>(npages).fill(0), npages, SIZEOF_HMM_PFN, GFP_KERNEL, "amdgpu_hmm_range_get_pages")
    : null;
  if (!pfns) {
    slab.kfree(range);
    return -ENOMEM;
  }
  range.notifier = notifier;
  range.default_flags = HMM_PFN_REQ_FAULT + (readonly ? 0 : HMM_PFN_REQ_WRITE);
  range.dev_private_owner = owner;
  const end = start + npages * PAGE_SIZE;
  for (let s = start; s < end;) {
    range.start = s;
    range.end = Math.min(s + MAX_WALK_BYTE, end);
    range.hmm_pfns = pfns.slice((s - start) / PAGE_SIZE, (range.end - start) / PAGE_SIZE);
    // Assume 64 MiB takes at most a second to fault.
    const budget = Math.max(Math.floor((range.end - range.start) / 2 ** 26), 1) * HMM_RANGE_DEFAULT_TIMEOUT;
    const timeout = k.jiffies + msecs_to_jiffies(budget);
    let r: number;
    for (;;) {
      range.notifier_seq = await mmu_interval_read_begin(notifier);
      r = await hmm_range_fault(range);
      if (r !== -EBUSY || time_after(k.jiffies, timeout)) break;
    }
    if (r) {
      slab.kfree(pfns);
      slab.kfree(range);
      return r;
    }
    for (let i = 0; i < range.hmm_pfns.length; i++) pfns[(s - start) / PAGE_SIZE + i] = range.hmm_pfns[i]!;
    s = range.end;
    if (s < end) await k.schedule();
  }
  // The sequence of the last chunk stands for the whole range, as in the kernel.
  range.start = start;
  range.end = end;
  range.hmm_pfns = pfns;
  return range;
}

/** amdgpu_hmm_range_get_pages_done(): true if the pages were invalidated since; frees the range. */
export function amdgpu_hmm_range_get_pages_done(range: hmm_range, slab: Slab): boolean {
  const r = mmu_interval_read_retry(range.notifier, range.notifier_seq);
  slab.kfree(range.hmm_pfns);
  range.hmm_pfns = [];
  slab.kfree(range);
  return r;
}

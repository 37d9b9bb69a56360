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

export { hmm_range } from "../../../../../mm/hmm.ts";

/** MAX_WALK_BYTE: hmm_range_fault() is called on at most 2 GiB at a time. */
export const MAX_WALK_BYTE = 2 * 1024 * 1024 * 1024;

/**
 * amdgpu_hmm_range_get_pages(): fault in [start, start + npages pages) (writable unless
 * `readonly`), device-private pages of `owner` reported as such. Retries -EBUSY within a budget
 * of one HMM_RANGE_DEFAULT_TIMEOUT per 64 MiB (at least one); returns 0 and the range, whose
 * hmm_pfns hold the result, or -errno.
 */
export async function amdgpu_hmm_range_get_pages(
  notifier: mmu_interval_notifier, start: number, npages: number, readonly: boolean, owner: unknown,
): Promise<hmm_range | number> {
  const k = notifier.mm!.k;
  using _ = ftrace(k, "amdgpu_hmm_range_get_pages");
  const range = new hmm_range();
  if (npages > 2 ** 32) return -ENOMEM;
  const pfns = new Array<number>(npages).fill(0);
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
    if (r) return r;
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
export function amdgpu_hmm_range_get_pages_done(range: hmm_range): boolean {
  const r = mmu_interval_read_retry(range.notifier, range.notifier_seq);
  range.hmm_pfns = [];
  return r;
}

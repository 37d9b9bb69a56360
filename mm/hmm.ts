// Mirrors mm/hmm.c and include/linux/hmm.h (Linux 6.8): hmm_range_fault(), the page-table
// snapshot a device driver mirrors under the interval-notifier sequence protocol. It takes no
// page references and pins nothing; results are valid until the next invalidation.
//
// kemu: the HMM_PFN_* flags sit at bits 52..50 (the kernel uses 63..61) and the map order at
// bits 45..49, because a JS number holds 53 bits exactly; the pfn keeps bits 0..44.

import { EBUSY, EFAULT, EPERM } from "../include/uapi/asm-generic/errno.ts";
import type { mm_struct, vm_area_struct } from "../include/linux/mm_types.ts";
import {
  PAGE_SIZE, VM_IO, VM_PFNMAP, VM_READ, VM_WRITE, FAULT_FLAG_REMOTE, FAULT_FLAG_WRITE, VM_FAULT_ERROR, is_zero_pfn,
} from "../include/linux/mm.ts";
import {
  ptep_get, pmdp_get, pmd_none, pmd_present, pmd_trans_huge, pte_none, pte_present, pte_protnone, pte_write,
  pte_pfn, pte_special,
} from "../arch/x86/include/asm/pgtable.ts";
import {
  pte_to_swp_entry, is_device_private_entry, is_writable_device_private_entry, pfn_swap_entry_to_page,
  non_swap_entry, is_device_exclusive_entry, is_migration_entry, swp_offset_pfn,
} from "../include/linux/swapops.ts";
import { pte_offset_map_lock, pte_unmap_unlock } from "./pgtable-generic.ts";
import { walk_page_range, mm_walk, type mm_walk_ops } from "./pagewalk.ts";
import { mmap_assert_locked } from "../include/linux/mmap_lock.ts";
import { handle_mm_fault } from "./memory.ts";
import { migration_entry_wait } from "./migrate.ts";
import { mmu_interval_check_retry, type mmu_interval_notifier } from "./mmu_notifier.ts";
import { ftrace } from "../include/linux/ftrace.ts";
import { trace_hmm_range_fault } from "../include/trace/events/hmm.ts";

const PFN_SPAN = 2 ** 45;
export const HMM_PFN_VALID = 2 ** 52;
export const HMM_PFN_WRITE = 2 ** 51;
export const HMM_PFN_ERROR = 2 ** 50;
export const HMM_PFN_ORDER_SHIFT = 45;
/** Input flags (the kernel aliases them to the output bits). */
export const HMM_PFN_REQ_FAULT = HMM_PFN_VALID;
export const HMM_PFN_REQ_WRITE = HMM_PFN_WRITE;
/** HMM_RANGE_DEFAULT_TIMEOUT: the conventional retry budget, in ms. */
export const HMM_RANGE_DEFAULT_TIMEOUT = 1000;

const HMM_NEED_FAULT = 1 << 0;
const HMM_NEED_WRITE_FAULT = 1 << 1;

function has(e: number, flag: number): boolean {
  return Math.floor(e / flag) % 2 === 1;
}

/** hmm_pfn_to_page() needs the machine in kemu: the pfn part of an output entry. */
export function hmm_pfn_to_pfn(e: number): number {
  return e % PFN_SPAN;
}

export function hmm_pfn_is_valid(e: number): boolean {
  return has(e, HMM_PFN_VALID);
}

export function hmm_pfn_is_write(e: number): boolean {
  return has(e, HMM_PFN_WRITE);
}

export function hmm_pfn_is_error(e: number): boolean {
  return has(e, HMM_PFN_ERROR);
}

/** log2 of the CPU mapping size in pages (always 0: kemu maps only 4 KiB pages). */
export function hmm_pfn_to_map_order(e: number): number {
  return Math.floor(e / 2 ** HMM_PFN_ORDER_SHIFT) % 32;
}

export class hmm_range {
  notifier!: mmu_interval_notifier;
  notifier_seq = 0;
  start = 0;
  /** Exclusive. */
  end = 0;
  /** (end - start) / PAGE_SIZE entries: input request flags, output pfn | flags. */
  hmm_pfns: number[] = [];
  default_flags = 0;
  pfn_flags_mask = 0;
  dev_private_owner: unknown = null;
}

interface hmm_vma_walk {
  range: hmm_range;
  /** Restart point: entries below it hold outputs, the rest still hold inputs. */
  last: number;
}

/** Whether the effective request, (in & pfn_flags_mask) | default_flags, has `flag`. */
function req_has(range: hmm_range, pfn_req_flags: number, flag: number): boolean {
  return (has(pfn_req_flags, flag) && has(range.pfn_flags_mask, flag)) || has(range.default_flags, flag);
}

/** hmm_pte_need_fault(): which fault, if any, the request needs given the CPU entry's flags. */
function hmm_pte_need_fault(hw: hmm_vma_walk, pfn_req_flags: number, cpu_flags: number): number {
  if (!req_has(hw.range, pfn_req_flags, HMM_PFN_REQ_FAULT)) return 0;
  if (req_has(hw.range, pfn_req_flags, HMM_PFN_REQ_WRITE) && !has(cpu_flags, HMM_PFN_WRITE)) return HMM_NEED_FAULT | HMM_NEED_WRITE_FAULT;
  if (!has(cpu_flags, HMM_PFN_VALID)) return HMM_NEED_FAULT;
  return 0;
}

function hmm_range_need_fault(hw: hmm_vma_walk, first: number, npages: number, cpu_flags: number): number {
  const range = hw.range;
  // Per-page inputs are ignored when the mask is 0: one check covers the whole span.
  if (!range.pfn_flags_mask) return hmm_pte_need_fault(hw, 0, cpu_flags);
  let required = 0;
  for (let i = 0; i < npages; i++) {
    required |= hmm_pte_need_fault(hw, range.hmm_pfns[first + i]!, cpu_flags);
    if (required === (HMM_NEED_FAULT | HMM_NEED_WRITE_FAULT)) break;
  }
  return required;
}

function index_of(range: hmm_range, addr: number): number {
  return (addr - range.start) / PAGE_SIZE;
}

function hmm_pfns_fill(addr: number, end: number, range: hmm_range, value: number): number {
  for (let i = index_of(range, addr); addr < end; addr += PAGE_SIZE, i++) range.hmm_pfns[i] = value;
  return 0;
}

/** hmm_vma_fault(): faults every page of [addr, end) and makes the walk restart at addr. */
async function hmm_vma_fault(addr: number, end: number, required: number, walk: mm_walk): Promise<number> {
  using _ = ftrace(walk.mm.k, "hmm_vma_fault");
  const hw = walk.private_ as hmm_vma_walk;
  const vma = walk.vma!;
  let fault_flags = FAULT_FLAG_REMOTE;
  hw.last = addr;
  if (required & HMM_NEED_WRITE_FAULT) {
    if (!(vma.vm_flags & VM_WRITE)) return -EPERM;
    fault_flags |= FAULT_FLAG_WRITE;
  }
  for (; addr < end; addr += PAGE_SIZE) {
    if ((await handle_mm_fault(vma, addr, fault_flags, null)) & VM_FAULT_ERROR) return -EFAULT;
  }
  return -EBUSY;
}

async function hmm_vma_walk_hole(addr: number, end: number, _depth: number, walk: mm_walk): Promise<number> {
  const hw = walk.private_ as hmm_vma_walk;
  const range = hw.range;
  const required = hmm_range_need_fault(hw, index_of(range, addr), (end - addr) / PAGE_SIZE, 0);
  if (!walk.vma) {
    if (required) return -EFAULT;
    return hmm_pfns_fill(addr, end, range, HMM_PFN_ERROR);
  }
  if (required) return hmm_vma_fault(addr, end, required, walk);
  return hmm_pfns_fill(addr, end, range, 0);
}

function pte_to_hmm_pfn_flags(pte: ReturnType<typeof ptep_get>): number {
  if (pte_none(pte) || !pte_present(pte) || pte_protnone(pte)) return 0;
  return pte_write(pte) ? HMM_PFN_VALID + HMM_PFN_WRITE : HMM_PFN_VALID;
}

type PteResult = { kind: "done" } | { kind: "fault"; required: number } | { kind: "error"; err: number } | { kind: "migration" };

/** hmm_vma_handle_pte(), the decision part: runs under the PT lock. */
function hmm_vma_handle_pte(walk: mm_walk, addr: number, ptep: number, i: number): PteResult {
  const hw = walk.private_ as hmm_vma_walk;
  const range = hw.range;
  const k = walk.mm.k;
  const req = range.hmm_pfns[i]!;
  const pte = ptep_get(k, ptep);

  if (pte_none(pte)) {
    const required = hmm_pte_need_fault(hw, req, 0);
    if (required) return { kind: "fault", required };
    range.hmm_pfns[i] = 0;
    return { kind: "done" };
  }

  if (!pte_present(pte)) {
    const entry = pte_to_swp_entry(pte);
    // A device-private page of the caller's own device is reported as is, never faulted.
    if (is_device_private_entry(entry) && pfn_swap_entry_to_page(k, entry).pgmap?.owner === range.dev_private_owner) {
      const flags = is_writable_device_private_entry(entry) ? HMM_PFN_VALID + HMM_PFN_WRITE : HMM_PFN_VALID;
      range.hmm_pfns[i] = swp_offset_pfn(entry) + flags;
      return { kind: "done" };
    }
    const required = hmm_pte_need_fault(hw, req, 0);
    if (!required) {
      range.hmm_pfns[i] = 0;
      return { kind: "done" };
    }
    if (!non_swap_entry(entry) || is_device_private_entry(entry) || is_device_exclusive_entry(entry)) {
      return { kind: "fault", required };
    }
    if (is_migration_entry(entry)) return { kind: "migration" };
    return { kind: "error", err: -EFAULT };
  }

  const cpu_flags = pte_to_hmm_pfn_flags(pte);
  const required = hmm_pte_need_fault(hw, req, cpu_flags);
  if (required) return { kind: "fault", required };
  if (pte_special(pte) && !is_zero_pfn(pte_pfn(pte))) {
    if (hmm_pte_need_fault(hw, req, 0)) return { kind: "error", err: -EFAULT };
    range.hmm_pfns[i] = HMM_PFN_ERROR;
    return { kind: "done" };
  }
  range.hmm_pfns[i] = pte_pfn(pte) + cpu_flags;
  return { kind: "done" };
}

/** hmm_vma_walk_pmd(): one page table's worth of PTEs; faults leave the PT lock first. */
async function hmm_vma_walk_pmd(pmdp: number, start: number, end: number, walk: mm_walk): Promise<number> {
  using _ = ftrace(walk.mm.k, "hmm_vma_walk_pmd");
  const hw = walk.private_ as hmm_vma_walk;
  const range = hw.range;
  const pmd = pmdp_get(walk.mm.k, pmdp);
  if (pmd_none(pmd)) return await hmm_vma_walk_hole(start, end, -1, walk);
  if (!pmd_present(pmd) || pmd_trans_huge(pmd)) {
    // kemu maps no huge pages: a PMD that is neither a table nor none is a bug we report.
    if (hmm_range_need_fault(hw, index_of(range, start), (end - start) / PAGE_SIZE, 0)) return -EFAULT;
    return hmm_pfns_fill(start, end, range, HMM_PFN_ERROR);
  }
  const l = pte_offset_map_lock(walk.mm, pmdp, start);
  if (!l) {
    hw.last = start;
    return -EBUSY;
  }
  let outcome: PteResult = { kind: "done" };
  let addr = start;
  try {
    for (let ptep = l.pte, i = index_of(range, start); addr < end; addr += PAGE_SIZE, ptep += 8, i++) {
      outcome = hmm_vma_handle_pte(walk, addr, ptep, i);
      if (outcome.kind !== "done") break;
    }
  } finally {
    pte_unmap_unlock(l.pte, l.ptl);
  }
  switch (outcome.kind) {
    case "done":
      return 0;
    case "fault":
      return await hmm_vma_fault(addr, end, outcome.required, walk);
    case "migration":
      hw.last = addr;
      await migration_entry_wait(walk.mm, pmdp, addr);
      return -EBUSY;
    case "error":
      return outcome.err;
  }
}

/** hmm_vma_walk_test(): IO/PFN-map or unreadable VMAs are never faulted. */
function hmm_vma_walk_test(start: number, end: number, walk: mm_walk): number {
  const hw = walk.private_ as hmm_vma_walk;
  const vma = walk.vma as vm_area_struct;
  if (!(vma.vm_flags & (VM_IO | VM_PFNMAP)) && vma.vm_flags & VM_READ) return 0;
  if (hmm_range_need_fault(hw, index_of(hw.range, start), (end - start) / PAGE_SIZE, 0)) return -EFAULT;
  hmm_pfns_fill(start, end, hw.range, HMM_PFN_ERROR);
  return 1;
}

const hmm_walk_ops: mm_walk_ops = {
  pmd_entry: hmm_vma_walk_pmd,
  pte_hole: hmm_vma_walk_hole,
  test_walk: hmm_vma_walk_test,
};

/**
 * hmm_range_fault(): fills range.hmm_pfns, faulting what the request requires. Returns 0,
 * -EBUSY (an invalidation collided: read_begin again and retry), -EFAULT or -EPERM.
 */
export async function hmm_range_fault(range: hmm_range): Promise<number> {
  const mm: mm_struct = range.notifier.mm!;
  const hw: hmm_vma_walk = { range, last: range.start };
  using _ = ftrace(mm.k, "hmm_range_fault");
  mmap_assert_locked(mm);
  let ret: number;
  do {
    if (mmu_interval_check_retry(range.notifier, range.notifier_seq)) {
      ret = -EBUSY;
      break;
    }
    ret = await walk_page_range(mm, hw.last, range.end, hmm_walk_ops, hw);
  } while (ret === -EBUSY);
  if (trace_hmm_range_fault.enabled) {
    const flags = [has(range.default_flags, HMM_PFN_REQ_FAULT) && "REQ_FAULT", has(range.default_flags, HMM_PFN_REQ_WRITE) && "REQ_WRITE"];
    trace_hmm_range_fault.trace(mm.k, { start: range.start, end: range.end, default_flags: flags.filter(Boolean).join("|") || "0", ret });
  }
  return ret;
}

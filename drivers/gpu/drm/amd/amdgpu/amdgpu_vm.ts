// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_vm.c and amdgpu_vm.h (Linux 6.8): GPU virtual
// memory per process. A VM has a page-table tree (amdgpu_vm_pt.ts), a PASID (the key IH
// vectors and KFD use), task info for fault messages, BO mappings (bo_va) and a TLB sequence.
// amdgpu_vm_update_range() writes PTEs for [start, last] from a resource (VRAM or GTT) or an
// array of DMA addresses, through the CPU backend, and flushes the TLBs of the VMIDs that run
// the PASID when asked. amdgpu_vm_handle_fault() is where retry faults land: compute VMs go to
// KFD's svm_range_restore_pages() (through the hook amdkfd registers); otherwise, or if KFD
// cannot serve it, the page gets a no-retry PTE so the next access faults for good.

import type { amdgpu_device } from "./amdgpu.ts";
import type { amdgpu_ring } from "./amdgpu_ring.ts";
import type { amdgpu_job } from "./amdgpu_job.ts";
import { amdgpu_bo_reserve, amdgpu_bo_unreserve, amdgpu_bo_ref, amdgpu_bo_unref, type amdgpu_bo } from "./amdgpu_object.ts";
import { amdgpu_vm_pt, amdgpu_vm_pt_create, amdgpu_vm_pt_free_dfs, amdgpu_vm_pt_get_ptb, amdgpu_vm_pt_num_entries } from "./amdgpu_vm_pt.ts";
import { amdgpu_vm_cpu_funcs, type amdgpu_vm_update_params } from "./amdgpu_vm_cpu.ts";
import { amdgpu_res_cursor, amdgpu_res_first, amdgpu_res_next } from "./amdgpu_res_cursor.ts";
import { amdgpu_gmc_flush_gpu_tlb_pasid, type amdgpu_pte_flags } from "./amdgpu_gmc.ts";
import type { ttm_resource } from "../../ttm/ttm_resource.ts";
import { TTM_PL_VRAM } from "../../../../../include/drm/ttm/ttm_placement.ts";
import {
  AMDGPU_PTE_PRT_HI, AMDGPU_PTE_VALID, AMDGPU_VM_NORETRY_FLAGS_HI, AMDGPU_VM_NORETRY_FLAGS_LO, AMDGPU_VM_PDB0,
  AMDGPU_VM_PDB1, AMDGPU_VM_PDB2, AMDGPU_PTE_EXECUTABLE, AMDGPU_PTE_READABLE, AMDGPU_PTE_SNOOPED, AMDGPU_PTE_SYSTEM,
  AMDGPU_PTE_WRITEABLE,
} from "../include/amdgpu_vm_pte.ts";
import { dma_resv_assert_held, type dma_resv } from "../../../../dma-buf/dma-resv.ts";
import type { dma_fence } from "../../../../dma-buf/dma-fence.ts";
import { EINVAL, ENOENT } from "../../../../../include/uapi/asm-generic/errno.ts";
import { ftrace } from "../../../../../include/linux/ftrace.ts";
import {
  pte_flags_hex, trace_amdgpu_vm_bo_map, trace_amdgpu_vm_bo_unmap, trace_amdgpu_vm_bo_update, trace_amdgpu_vm_flush,
  trace_amdgpu_vm_update_ptes,
} from "./amdgpu_trace.ts";

export const AMDGPU_VM_FAULT_STOP_NEVER = 0;
export const AMDGPU_VM_FAULT_STOP_FIRST = 1;
export const AMDGPU_VM_FAULT_STOP_ALWAYS = 2;

export class amdgpu_vm_manager {
  num_level = 0;
  block_size = 0;
  fragment_size = 0;
  root_level = AMDGPU_VM_PDB2;
  /** Number of GPU pages of the VA space. */
  max_pfn = 0;
  vram_base_offset = 0;
  /** PASID → VM (adev->vm_manager.pasids). */
  readonly pasids = new Map<number, amdgpu_vm>();
  /** VMIDs 8..15 belong to KFD (first_kfd_vmid). */
  first_kfd_vmid = 8;

  constructor(readonly adev: amdgpu_device) {}
}

export interface amdgpu_task_info {
  process_name: string;
  tgid: number;
  task_name: string;
  pid: number;
}

/** The last fault of a VM (amdgpu_vm_fault_info). */
export interface amdgpu_vm_fault_info {
  addr: number;
  status: number;
  vmhub: number;
}

export class amdgpu_bo_va_mapping {
  constructor(
    /** First and last GPU page, inclusive. */
    public start: number,
    public last: number,
    /** Byte offset into the BO. */
    public offset: number,
    public flags: amdgpu_pte_flags,
  ) {}
}

export class amdgpu_bo_va {
  readonly mappings: amdgpu_bo_va_mapping[] = [];
  /** The BO moved since its PTEs were last written (amdgpu_vm_bo_invalidate). */
  moved = false;
  constructor(
    readonly vm: amdgpu_vm,
    readonly bo: amdgpu_bo,
  ) {}
}

export class amdgpu_vm {
  root: amdgpu_vm_pt | null = null;
  pasid = 0;
  is_compute_context = false;
  /** kemu always updates page tables with the CPU (vm_update_mode CPU for everyone). */
  readonly use_cpu_for_update = true;
  readonly update_funcs = amdgpu_vm_cpu_funcs;
  task_info: amdgpu_task_info | null = null;
  fault_info: amdgpu_vm_fault_info | null = null;
  /** Bumped on every update that flushed the TLB. */
  tlb_seq = 0;
  /** Fence of the last page-table update (always null with the CPU backend). */
  last_update: dma_fence | null = null;
  readonly bo_vas: amdgpu_bo_va[] = [];
}

// ---- the manager ----------------------------------------------------------------------------

/**
 * amdgpu_vm_adjust_size(): the VA space and page-table geometry: `max_level` directory levels
 * above the PTB, 9 bits a level, `max_bits` of VA.
 */
export function amdgpu_vm_adjust_size(adev: amdgpu_device, _min_vm_size_gb: number, fragment_size_default: number, max_level: number, max_bits: number): void {
  const m = adev.vm_manager;
  m.num_level = max_level;
  m.block_size = 9;
  m.fragment_size = fragment_size_default;
  m.max_pfn = 2 ** max_bits / 4096;
  m.root_level = max_level === 3 ? AMDGPU_VM_PDB2 : max_level === 2 ? AMDGPU_VM_PDB1 : AMDGPU_VM_PDB0;
  adev.k.dev_info(adev, `vm size is ${2 ** max_bits / 2 ** 30} GB, ${max_level + 1} levels, block size is ${m.block_size}-bit, fragment size is ${m.fragment_size}-bit`);
}

export function amdgpu_vm_manager_init(_adev: amdgpu_device): number {
  return 0;
}

export async function amdgpu_vm_manager_fini(adev: amdgpu_device): Promise<void> {
  adev.vm_manager.pasids.clear();
}

// ---- VM lifecycle --------------------------------------------------------------------------

/** amdgpu_vm_init(): an empty VM with its root directory in VRAM. */
export async function amdgpu_vm_init(adev: amdgpu_device, vm: amdgpu_vm): Promise<number> {
  const level = adev.vm_manager.root_level;
  const bo = await amdgpu_vm_pt_create(adev, level, null);
  if (typeof bo === "number") return bo;
  bo.owner = vm;
  vm.root = new amdgpu_vm_pt(bo, level, null, amdgpu_vm_pt_num_entries(adev, level));
  return 0;
}

/** amdgpu_vm_make_compute(): the VM now serves KFD (retry faults go to svm_range_restore_pages). */
export function amdgpu_vm_make_compute(_adev: amdgpu_device, vm: amdgpu_vm): number {
  vm.is_compute_context = true;
  return 0;
}

/** amdgpu_vm_set_pasid(): binds (or with 0 unbinds) the VM's PASID; -EBUSY-free in kemu. */
export function amdgpu_vm_set_pasid(adev: amdgpu_device, vm: amdgpu_vm, pasid: number): number {
  const map = adev.vm_manager.pasids;
  if (vm.pasid) map.delete(vm.pasid);
  vm.pasid = pasid;
  if (pasid) {
    if (map.has(pasid)) return -EINVAL;
    map.set(pasid, vm);
  }
  return 0;
}

/** amdgpu_vm_set_task_info(): remembers the current task for fault messages. */
export function amdgpu_vm_set_task_info(adev: amdgpu_device, vm: amdgpu_vm): void {
  const t = adev.k.current;
  vm.task_info = { process_name: t.comm, tgid: t.tgid, task_name: t.comm, pid: t.pid };
}

export function amdgpu_vm_get_task_info_pasid(adev: amdgpu_device, pasid: number): amdgpu_task_info | null {
  return adev.vm_manager.pasids.get(pasid)?.task_info ?? null;
}

/** amdgpu_vm_update_fault_cache(): the last fault of the PASID's VM, for KFD's debugger queries. */
export function amdgpu_vm_update_fault_cache(adev: amdgpu_device, pasid: number, addr: number, status: number, vmhub: number): void {
  const vm = adev.vm_manager.pasids.get(pasid);
  if (vm) vm.fault_info = { addr: addr - (addr % 4096), status, vmhub };
}

/** amdgpu_vm_fini(): mappings, tables and the PASID go. */
export async function amdgpu_vm_fini(adev: amdgpu_device, vm: amdgpu_vm): Promise<void> {
  amdgpu_vm_set_pasid(adev, vm, 0);
  vm.bo_vas.length = 0;
  if (vm.root) amdgpu_vm_pt_free_dfs(vm.root);
  vm.root = null;
}

// ---- page-table updates --------------------------------------------------------------------

/**
 * amdgpu_vm_ptes_update(): writes PTEs for pages [start, end), one run per page table. With
 * params.pages_addr the address of each page comes from that array.
 */
async function amdgpu_vm_ptes_update(adev: amdgpu_device, vm: amdgpu_vm, p: amdgpu_vm_update_params, start: number, end: number,
  dst: number, flags: amdgpu_pte_flags): Promise<number> {
  using _ = ftrace(adev.k, "amdgpu_vm_ptes_update");
  const ptb_entries = 2 ** adev.vm_manager.block_size;
  const alloc = (flags.lo & AMDGPU_PTE_VALID) !== 0 || (flags.hi & (AMDGPU_VM_NORETRY_FLAGS_HI | AMDGPU_PTE_PRT_HI)) !== 0;
  let pfn = start;
  while (pfn < end) {
    const n = Math.min(end - pfn, ptb_entries - (pfn % ptb_entries));
    const pt = await amdgpu_vm_pt_get_ptb(adev, vm, pfn, alloc);
    if (typeof pt === "number") return pt;
    if (pt) {
      const r = vm.update_funcs.update(p, pt.bo, pfn % ptb_entries, dst + (pfn - start) * 4096, n, 4096, flags);
      if (r) return r;
      if (trace_amdgpu_vm_update_ptes.enabled) {
        trace_amdgpu_vm_update_ptes.trace(adev.k, {
          pid: vm.task_info?.pid ?? 0, start: pfn, end: pfn + n, flags: pte_flags_hex(flags), incr: 4096,
          dst: p.pages_addr ? (p.pages_addr[p.pages_base] ?? 0) : dst + (pfn - start) * 4096, nptes: n,
        });
      }
    }
    if (p.pages_addr) p.pages_base += n;
    pfn += n;
  }
  return 0;
}

/**
 * amdgpu_vm_update_range(): maps GPU pages [start, last] (inclusive) with `flags` — from `res`
 * at byte `offset` (VRAM: vram_base + offset), or from `pages_addr` (DMA addresses, one per
 * page, starting at page offset/4096), or clears them (flags without VALID). The root's
 * reservation must be held unless `unlocked`. Flushes the PASID's TLBs if `flush_tlb`. The CPU
 * backend completes the update before returning, so `fence` (if given) is set to null.
 */
export async function amdgpu_vm_update_range(adev: amdgpu_device, vm: amdgpu_vm, _immediate: boolean, unlocked: boolean,
  flush_tlb: boolean, _allow_override: boolean, _resv: dma_resv | null, start: number, last: number, flags: amdgpu_pte_flags,
  offset: number, vram_base: number, res: ttm_resource | null, pages_addr: readonly number[] | null,
  fence: { f: dma_fence | null } | null): Promise<number> {
  using _ = ftrace(adev.k, "amdgpu_vm_update_range");
  if (!vm.root) return -EINVAL;
  if (start > last || last >= adev.vm_manager.max_pfn) return -EINVAL;
  if (!unlocked) dma_resv_assert_held(vm.root.bo.tbo.resv);
  const p: amdgpu_vm_update_params = { adev, pages_addr: null, pages_base: 0, needs_flush: flush_tlb };
  let r = vm.update_funcs.prepare(p);
  if (r) return r;
  const cursor = new amdgpu_res_cursor();
  amdgpu_res_first(pages_addr ? null : res, offset, (last - start + 1) * 4096, cursor);
  while (cursor.remaining) {
    const num_entries = cursor.size / 4096;
    let addr = 0;
    if (pages_addr) {
      p.pages_addr = pages_addr;
      p.pages_base = Math.floor(cursor.start / 4096);
    } else if (flags.lo & AMDGPU_PTE_VALID) {
      addr = (res?.mem_type === TTM_PL_VRAM ? vram_base : 0) + cursor.start;
    }
    r = await amdgpu_vm_ptes_update(adev, vm, p, start, start + num_entries, addr, flags);
    if (r) return r;
    amdgpu_res_next(cursor, num_entries * 4096);
    start += num_entries;
  }
  r = vm.update_funcs.commit(p);
  if (r) return r;
  if (fence) fence.f = null;
  if (flush_tlb) {
    vm.tlb_seq++;
    if (vm.pasid) amdgpu_gmc_flush_gpu_tlb_pasid(adev, vm.pasid, 0, true);
  }
  return 0;
}

/** amdgpu_vm_update_pdes(): PDEs are written as tables are allocated; nothing is pending. */
export async function amdgpu_vm_update_pdes(_adev: amdgpu_device, _vm: amdgpu_vm, _immediate: boolean): Promise<number> {
  return 0;
}

/** amdgpu_vm_tlb_flush(): a full TLB flush of the VM's VMIDs on every hub. */
export function amdgpu_vm_flush_compute_tlb(adev: amdgpu_device, vm: amdgpu_vm, flush_type: number): number {
  using _ = ftrace(adev.k, "amdgpu_vm_flush_compute_tlb");
  vm.tlb_seq++;
  return vm.pasid ? amdgpu_gmc_flush_gpu_tlb_pasid(adev, vm.pasid, flush_type, true) : 0;
}

/** amdgpu_vm_flush(): emits the job's VM flush on its ring when it needs one. */
export function amdgpu_vm_flush(ring: amdgpu_ring, job: amdgpu_job): number {
  using _ = ftrace(ring.adev.k, "amdgpu_vm_flush");
  if (!job.vm_needs_flush || !ring.funcs.emit_vm_flush) return 0;
  trace_amdgpu_vm_flush.trace(ring.adev.k, { ring: ring.name, vmid: job.vmid, vm_hub: ring.vm_hub, pd_addr: job.vm_pd_addr });
  ring.funcs.emit_vm_flush(ring, job.vmid, job.vm_pd_addr);
  job.vm_needs_flush = false;
  return 0;
}

// ---- BO mappings -----------------------------------------------------------------------------

/** amdgpu_gem_va_map_flags(): PTE flags of a readable/writeable/executable mapping. */
export function amdgpu_vm_pte_flags(read: boolean, write: boolean, exec: boolean, system: boolean): amdgpu_pte_flags {
  let lo = AMDGPU_PTE_VALID;
  if (read) lo |= AMDGPU_PTE_READABLE;
  if (write) lo |= AMDGPU_PTE_WRITEABLE;
  if (exec) lo |= AMDGPU_PTE_EXECUTABLE;
  if (system) lo |= AMDGPU_PTE_SYSTEM | AMDGPU_PTE_SNOOPED;
  return { lo, hi: 0 };
}

/** amdgpu_vm_bo_add(): the BO takes part in the VM (no mapping yet). */
export function amdgpu_vm_bo_add(_adev: amdgpu_device, vm: amdgpu_vm, bo: amdgpu_bo): amdgpu_bo_va {
  const bo_va = new amdgpu_bo_va(vm, amdgpu_bo_ref(bo));
  vm.bo_vas.push(bo_va);
  bo.vm_bos.push(bo_va);
  return bo_va;
}

/**
 * amdgpu_vm_bo_map(): maps [saddr, saddr+size) to the BO from byte `offset`. -EINVAL for
 * unaligned or out-of-range arguments or an overlap with an existing mapping of the VM.
 */
export function amdgpu_vm_bo_map(adev: amdgpu_device, bo_va: amdgpu_bo_va, saddr: number, offset: number, size: number,
  flags: amdgpu_pte_flags): number {
  using _ = ftrace(adev.k, "amdgpu_vm_bo_map");
  if (saddr % 4096 || offset % 4096 || size % 4096 || size <= 0) return -EINVAL;
  if (offset + size > bo_va.bo.tbo.base_size) return -EINVAL;
  const start = saddr / 4096;
  const last = start + size / 4096 - 1;
  if (last >= adev.vm_manager.max_pfn) return -EINVAL;
  for (const other of bo_va.vm.bo_vas) {
    for (const m of other.mappings) if (m.start <= last && start <= m.last) return -EINVAL;
  }
  bo_va.mappings.push(new amdgpu_bo_va_mapping(start, last, offset, flags));
  trace_amdgpu_vm_bo_map.trace(adev.k, { start, last, offset, flags: pte_flags_hex(flags) });
  return 0;
}

/** amdgpu_vm_bo_unmap(): forgets the mapping at `saddr` (PTEs clear at the next update); -ENOENT. */
export async function amdgpu_vm_bo_unmap(adev: amdgpu_device, bo_va: amdgpu_bo_va, saddr: number): Promise<number> {
  using _ = ftrace(adev.k, "amdgpu_vm_bo_unmap");
  const i = bo_va.mappings.findIndex((m) => m.start === saddr / 4096);
  if (i < 0) return -ENOENT;
  const [m] = bo_va.mappings.splice(i, 1);
  trace_amdgpu_vm_bo_unmap.trace(adev.k, { start: m!.start, last: m!.last, offset: m!.offset, flags: pte_flags_hex(m!.flags) });
  return await amdgpu_vm_update_range(adev, bo_va.vm, false, false, true, false, null, m!.start, m!.last, { lo: 0, hi: 0 }, 0, 0, null, null, null);
}

/**
 * amdgpu_vm_bo_update(): writes the PTEs of every mapping from the BO's current placement
 * (or clears them with `clear`). The VM root must be reserved.
 */
export async function amdgpu_vm_bo_update(adev: amdgpu_device, bo_va: amdgpu_bo_va, clear: boolean): Promise<number> {
  using _ = ftrace(adev.k, "amdgpu_vm_bo_update");
  const bo = bo_va.bo;
  const res = bo.tbo.resource;
  const system = !!res && res.mem_type !== TTM_PL_VRAM;
  const pages = system ? bo.tbo.ttm?.dma_address ?? null : null;
  for (const m of bo_va.mappings) {
    const flags = clear ? { lo: 0, hi: 0 } : system ? { lo: m.flags.lo | AMDGPU_PTE_SYSTEM | AMDGPU_PTE_SNOOPED, hi: m.flags.hi } : m.flags;
    trace_amdgpu_vm_bo_update.trace(adev.k, { soffs: m.start, eoffs: m.last + 1, flags: pte_flags_hex(flags) });
    const r = await amdgpu_vm_update_range(adev, bo_va.vm, false, false, true, false, null, m.start, m.last, flags, m.offset,
      adev.vm_manager.vram_base_offset, clear ? null : res, clear ? null : pages, null);
    if (r) return r;
  }
  if (!clear) bo_va.moved = false;
  return 0;
}

/**
 * amdgpu_vm_bo_invalidate(): the BO is moving; every VM it is mapped in must rewrite its PTEs
 * (amdgpu_vm_bo_update) before the GPU uses it again. KFD's restore worker does that for
 * compute VMs after an eviction.
 */
export function amdgpu_vm_bo_invalidate(bo: amdgpu_bo, _evicted: boolean): void {
  for (const bo_va of bo.vm_bos) bo_va.moved = true;
}

/** amdgpu_vm_bo_del(): the BO leaves the VM; its PTEs are cleared. */
export async function amdgpu_vm_bo_del(adev: amdgpu_device, bo_va: amdgpu_bo_va): Promise<void> {
  await amdgpu_vm_bo_update(adev, bo_va, true);
  const i = bo_va.vm.bo_vas.indexOf(bo_va);
  if (i >= 0) bo_va.vm.bo_vas.splice(i, 1);
  const j = bo_va.bo.vm_bos.indexOf(bo_va);
  if (j >= 0) bo_va.bo.vm_bos.splice(j, 1);
  bo_va.mappings.length = 0;
  amdgpu_bo_unref(bo_va.bo);
}

// ---- retry faults ---------------------------------------------------------------------------

/**
 * amdgpu_vm_handle_fault(): a retry fault of `pasid` at byte address `addr`. True if it was
 * handled (KFD mapped the page); otherwise the page gets the no-retry PTE (compute VMs) or the
 * dummy page (vm_fault_stop=never), and false makes the caller report the fault.
 */
export async function amdgpu_vm_handle_fault(adev: amdgpu_device, pasid: number, vmid: number, node_id: number, addr: number,
  ts: number, write_fault: boolean): Promise<boolean> {
  using _ = ftrace(adev.k, "amdgpu_vm_handle_fault");
  const vm = adev.vm_manager.pasids.get(pasid);
  if (!vm?.root) return false;
  const root = amdgpu_bo_ref(vm.root.bo);
  const is_compute_context = vm.is_compute_context;
  const pfn = Math.floor(addr / 4096);
  try {
    const restore = adev.kfd.svm_range_restore_pages;
    if (is_compute_context && restore && (await restore(adev, pasid, vmid, node_id, pfn, ts, write_fault)) === 0) return true;
    let r = await amdgpu_bo_reserve(root, true);
    if (r) return false;
    try {
      // The VM may have been torn down while we slept.
      if (adev.vm_manager.pasids.get(pasid) !== vm) return false;
      let flags: amdgpu_pte_flags;
      let value = 0;
      if (is_compute_context) {
        // An invalid PTE with the no-retry combination: the next access faults for good.
        flags = { lo: AMDGPU_VM_NORETRY_FLAGS_LO, hi: AMDGPU_VM_NORETRY_FLAGS_HI };
      } else if (adev.params.vm_fault_stop === AMDGPU_VM_FAULT_STOP_NEVER) {
        value = adev.dummy_page_addr;
        flags = { lo: AMDGPU_PTE_VALID | AMDGPU_PTE_SNOOPED | AMDGPU_PTE_SYSTEM | AMDGPU_PTE_EXECUTABLE | AMDGPU_PTE_READABLE | AMDGPU_PTE_WRITEABLE, hi: 0 };
      } else {
        flags = { lo: AMDGPU_PTE_VALID | AMDGPU_PTE_SNOOPED | AMDGPU_PTE_SYSTEM, hi: 0 };
      }
      r = await amdgpu_vm_update_range(adev, vm, true, false, false, false, null, pfn, pfn, flags, 0, 0, null, [value], null);
      if (!r) r = await amdgpu_vm_update_pdes(adev, vm, true);
      if (r < 0) adev.k.pr_err(`[drm] *ERROR* Can't handle page fault (${r})`);
    } finally {
      amdgpu_bo_unreserve(root);
    }
    return false;
  } finally {
    amdgpu_bo_unref(root);
  }
}

// kemu hardware: a GPU VM hub — the GFXHUB with its UTCL2, or the MMHUB (not a kernel file).
// Sixteen VM contexts (VMIDs), each with a page-table base, a VA range and a control word. VMID 0
// is the kernel context: its system aperture maps the frame buffer directly and its flat page
// table is the GART. VMIDs 1-15 walk the GFX9 multi-level format (PDB2 → PDB1 → PDB0 → PTB, 9
// index bits a level, PDEs marked PDE_PTE are huge pages) stored in VRAM (or system memory for
// entries with the SYSTEM bit). Translations are cached in a set-associative TLB (typed arrays,
// one generation number per VMID so a flush is O(1)) that only an invalidation engine request
// flushes. A failed translation is either a retry fault (the access stalls, a
// retry IV goes to the IH, the requester replays later) or a no-retry fault (the status and
// address are latched in VM_L2_PROTECTION_FAULT_STATUS/ADDR, an IV is raised, and the access is
// redirected to the default page so the requester can go on).

import type { Kernel } from "../../kernel/kernel.ts";
import type { GpuCostModel } from "./cost_model.ts";
import type { IhBlock, IvCookie } from "./ih.ts";
import type { GpuMemBus, GpuPhys } from "./mem.ts";
import type { HubId } from "./asic.ts";
import type { AtcPort, AtcTranslation } from "../amd_iommu/atc.ts";
import {
  AMDGPU_PDE_PTE_HI, AMDGPU_PTE_EXECUTABLE, AMDGPU_PTE_READABLE, AMDGPU_PTE_SYSTEM, AMDGPU_PTE_TF_HI,
  AMDGPU_PTE_VALID, AMDGPU_PTE_WRITEABLE, amdgpu_pte_addr,
} from "../../drivers/gpu/drm/amd/include/amdgpu_vm_pte.ts";
import {
  HUB_SIZE, NUM_INVALIDATE_ENGINES, PERM_FAULT_EXECUTE, PERM_FAULT_READ, PERM_FAULT_VALID, PERM_FAULT_WRITE,
  REG_GET_FIELD, REG_SET_FIELD, VM_CONTEXT1_CNTL__ENABLE_CONTEXT, VM_CONTEXT1_CNTL__EXECUTE_PROTECTION_FAULT_ENABLE_INTERRUPT,
  VM_CONTEXT1_CNTL__PAGE_TABLE_BLOCK_SIZE, VM_CONTEXT1_CNTL__PAGE_TABLE_DEPTH, VM_CONTEXT1_CNTL__PDE0_PROTECTION_FAULT_ENABLE_INTERRUPT,
  VM_CONTEXT1_CNTL__RANGE_PROTECTION_FAULT_ENABLE_INTERRUPT, VM_CONTEXT1_CNTL__READ_PROTECTION_FAULT_ENABLE_INTERRUPT,
  VM_CONTEXT1_CNTL__RETRY_PERMISSION_OR_INVALID_PAGE_FAULT, VM_CONTEXT1_CNTL__VALID_PROTECTION_FAULT_ENABLE_INTERRUPT,
  VM_CONTEXT1_CNTL__WRITE_PROTECTION_FAULT_ENABLE_INTERRUPT, VM_INVALIDATE_ENG0_REQ__PER_VMID_INVALIDATE_REQ,
  VM_L2_PROTECTION_FAULT_CNTL__CLEAR_PROTECTION_FAULT_STATUS_ADDR, VM_L2_PROTECTION_FAULT_STATUS__ATOMIC,
  VM_L2_PROTECTION_FAULT_STATUS__CID, VM_L2_PROTECTION_FAULT_STATUS__MAPPING_ERROR, VM_L2_PROTECTION_FAULT_STATUS__MORE_FAULTS,
  VM_L2_PROTECTION_FAULT_STATUS__PERMISSION_FAULTS, VM_L2_PROTECTION_FAULT_STATUS__RW, VM_L2_PROTECTION_FAULT_STATUS__VMID,
  VM_L2_PROTECTION_FAULT_STATUS__WALKER_ERROR, WALKER_ERROR_NONE, WALKER_ERROR_PDE_INVALID, WALKER_ERROR_RANGE,
  hubVM_INVALIDATE_ENG0_ACK, hubVM_INVALIDATE_ENG0_REQ, hubVM_INVALIDATE_ENG0_SEM,
  hubVM_L2_PROTECTION_FAULT_ADDR_HI32, hubVM_L2_PROTECTION_FAULT_ADDR_LO32, hubVM_L2_PROTECTION_FAULT_CNTL,
  hubVM_L2_PROTECTION_FAULT_DEFAULT_ADDR_HI32, hubVM_L2_PROTECTION_FAULT_DEFAULT_ADDR_LO32,
  hubVM_L2_PROTECTION_FAULT_STATUS, hubVM_CONTEXT_CNTL, hubVM_CONTEXT_PAGE_TABLE_BASE_ADDR_LO32,
  hubVM_CONTEXT_PAGE_TABLE_END_ADDR_LO32, hubVM_CONTEXT_PAGE_TABLE_START_ADDR_LO32,
} from "../../drivers/gpu/drm/amd/include/asic_reg/kemu_gpu_regs.ts";
import { SOC15_IH_CLIENTID_UTCL2, SOC15_IH_CLIENTID_VMC } from "../../drivers/gpu/drm/amd/include/soc15_ih_clientid.ts";
import { UTCL2_1_0__SRCID__FAULT, VMC_1_0__SRCID__VM_FAULT } from "../../drivers/gpu/drm/amd/include/ivsrcid/ivsrcid.ts";

const PAGE = 4096;
/** Per-VMID TLB capacity: TLB_SETS sets of TLB_WAYS ways, the oldest way of a set goes first. */
export const TLB_WAYS = 8;
export const TLB_SETS = 1024;
export const TLB_ENTRIES_PER_VMID = TLB_SETS * TLB_WAYS;

export type GpuAccess = "read" | "write" | "exec";

/** The MC address map the VBIOS and driver set up, shared by both hubs. */
export interface McAperture {
  fb_start: number;
  fb_end: number;
  sys_low: number;
  sys_high: number;
}

export interface XlateRequest {
  vmid: number;
  va: number;
  access: GpuAccess;
  /** UTCL2/VM client id reported in the fault status (CID). */
  cid: number;
  /** The requester can stall and replay (e.g. shader with XNACK); SDMA and CP fetch cannot. */
  can_retry: boolean;
  atomic?: boolean;
}

export type XlateResult =
  /** `span`: bytes from `va` that translate contiguously (at least to the end of the page). */
  | { kind: "ok"; phys: GpuPhys; span: number }
  /** Stalled on a retry fault; the IV went out, replay later. */
  | { kind: "retry" }
  /** No-retry fault: latched and reported; the access goes to the default page. */
  | { kind: "fault"; phys: GpuPhys; span: number };

const RETRY: XlateResult = Object.freeze({ kind: "retry" });
/** A TLB entry's flag bit for a system-memory page (above the 12 PTE flag bits kept). */
const TLB_SYS = 1 << 12;

interface tlb_entry {
  phys_page: number;
  sys: boolean;
  flags: number;
}

/** Why a walk failed; `cls` is the bit number of the context's matching interrupt-enable bit. */
/** The PERMISSION_FAULTS bit of an access kind. */
function perm_bit(access: GpuAccess): number {
  return access === "read" ? PERM_FAULT_READ : access === "write" ? PERM_FAULT_WRITE : PERM_FAULT_EXECUTE;
}

type walk_fail = { readonly ok: false; walker: number; perm: number; mapping: boolean; noretry: boolean; cls: number };
type walk_result = { ok: true; e: tlb_entry } | walk_fail;

// The walker's failures carry no per-walk data: shared, read-only results (a retried access to a
// missing page walks again every replay, so these are built once, not per walk).
const RANGE_FAULT: walk_fail = Object.freeze({ ok: false, walker: WALKER_ERROR_RANGE, perm: 0, mapping: true, noretry: true, cls: VM_CONTEXT1_CNTL__RANGE_PROTECTION_FAULT_ENABLE_INTERRUPT[0] });
const PDE_INVALID: walk_fail = Object.freeze({ ok: false, walker: WALKER_ERROR_PDE_INVALID, perm: 0, mapping: false, noretry: false, cls: VM_CONTEXT1_CNTL__PDE0_PROTECTION_FAULT_ENABLE_INTERRUPT[0] });
const PTE_INVALID: walk_fail = Object.freeze({ ok: false, walker: WALKER_ERROR_NONE, perm: PERM_FAULT_VALID, mapping: false, noretry: false, cls: VM_CONTEXT1_CNTL__VALID_PROTECTION_FAULT_ENABLE_INTERRUPT[0] });
/** An invalid PTE carrying TF: a no-retry fault (AMDGPU_VM_NORETRY_FLAGS). */
const PTE_INVALID_NORETRY: walk_fail = Object.freeze({ ...PTE_INVALID, noretry: true });

export interface HubStats {
  tlb_hits: number;
  tlb_misses: number;
  walks: number;
  invalidations: number;
  retry_faults: number;
  noretry_faults: number;
}

export class VmHub {
  readonly regs = new Uint32Array(HUB_SIZE);
  // The TLB of all 16 VMIDs, entry (vmid, set, way) at (vmid * TLB_SETS + set) * TLB_WAYS + way.
  // An entry is live while its generation is its VMID's: a flush bumps the VMID's generation.
  private readonly tlb_vpn = new Float64Array(16 * TLB_ENTRIES_PER_VMID);
  private readonly tlb_phys = new Float64Array(16 * TLB_ENTRIES_PER_VMID);
  /** PTE flag bits (0xfff), plus TLB_SYS for a system-memory page. */
  private readonly tlb_flags = new Int32Array(16 * TLB_ENTRIES_PER_VMID);
  private readonly tlb_gen = new Uint32Array(16 * TLB_ENTRIES_PER_VMID);
  private readonly vmid_gen = new Uint32Array(16).fill(1);
  /** Per (vmid, set), the way the next insertion replaces. */
  private readonly tlb_next = new Uint8Array(16 * TLB_SETS);
  /** Virtual time each invalidation engine's last request completes. */
  private readonly inv_done_at = new Float64Array(NUM_INVALIDATE_ENGINES);
  private readonly inv_mask = new Uint32Array(NUM_INVALIDATE_ENGINES);
  private readonly inv_listeners: Array<(vmid_mask: number) => void> = [];
  readonly stats: HubStats = { tlb_hits: 0, tlb_misses: 0, walks: 0, invalidations: 0, retry_faults: 0, noretry_faults: 0 };
  private atc: AtcPort | null = null;

  constructor(
    readonly id: HubId,
    private readonly k: Kernel,
    private readonly cost: GpuCostModel,
    private readonly mem: GpuMemBus,
    private readonly ih: IhBlock,
    private readonly mc: McAperture,
  ) {
    const mm = id === "mm";
    this.fault_cookie = {
      client_id: mm ? SOC15_IH_CLIENTID_VMC : SOC15_IH_CLIENTID_UTCL2, src_id: mm ? VMC_1_0__SRCID__VM_FAULT : UTCL2_1_0__SRCID__FAULT,
      vmid: 0, vmid_src: mm ? 1 : 0, src_data: [0, 0, 0, 0], retry_fault: false,
    };
  }

  /** Requesters stalled on retry faults replay when their VMID is invalidated. */
  on_invalidate(fn: (vmid_mask: number) => void): void {
    this.inv_listeners.push(fn);
  }

  /** APUs: the ATC in front of this hub; its PRI responses replay stalled requesters too. */
  attach_atc(atc: AtcPort): void {
    this.atc = atc;
    atc.on_replay((mask) => {
      for (const fn of this.inv_listeners) fn(mask);
    });
  }

  /**
   * An ATC outcome as the hub reports it: a pending page request stalls the requester like a
   * retry fault (without a GPU fault IV: the IOMMU's PPR path serves it); a refused one goes to
   * the default page. The GPUVM was never walked, so the UTCL2 latches nothing and posts no VM
   * fault IV: the IOMMU already reported the error (invalid-PPR callback → KFD memory event).
   */
  private atc_result(r: XlateRequest, a: AtcTranslation): XlateResult {
    const span = PAGE - (r.va % PAGE);
    if (a.kind === "ok") return { kind: "ok", phys: { sys: true, addr: a.pa }, span };
    if (a.kind === "pending") return { kind: "retry" };
    this.stats.noretry_faults++;
    return { kind: "fault", phys: { sys: true, addr: this.default_page_addr() + (r.va % PAGE) }, span };
  }

  /** VM_L2_PROTECTION_FAULT_DEFAULT_ADDR as a byte address. */
  private default_page_addr(): number {
    const dlo = this.regs[hubVM_L2_PROTECTION_FAULT_DEFAULT_ADDR_LO32]!;
    const dhi = this.regs[hubVM_L2_PROTECTION_FAULT_DEFAULT_ADDR_HI32]!;
    return (dlo + (dhi % 16) * 2 ** 32) * PAGE;
  }

  // ---- registers -------------------------------------------------------------------------

  reg_read(off: number): number {
    if (off >= hubVM_INVALIDATE_ENG0_ACK && off < hubVM_INVALIDATE_ENG0_ACK + NUM_INVALIDATE_ENGINES) {
      const eng = off - hubVM_INVALIDATE_ENG0_ACK;
      // The acknowledge becomes visible once the invalidation has had its time.
      return this.k.ktime_get() >= this.inv_done_at[eng]! ? this.inv_mask[eng]! : 0;
    }
    if (off >= hubVM_INVALIDATE_ENG0_SEM && off < hubVM_INVALIDATE_ENG0_SEM + NUM_INVALIDATE_ENGINES) return 1;
    return off >= 0 && off < HUB_SIZE ? this.regs[off]! : 0;
  }

  reg_write(off: number, value: number): void {
    if (off < 0 || off >= HUB_SIZE) return;
    if (off >= hubVM_INVALIDATE_ENG0_REQ && off < hubVM_INVALIDATE_ENG0_REQ + NUM_INVALIDATE_ENGINES) {
      this.invalidate(off - hubVM_INVALIDATE_ENG0_REQ, value);
      return;
    }
    if (off === hubVM_L2_PROTECTION_FAULT_CNTL) {
      if (REG_GET_FIELD(value, VM_L2_PROTECTION_FAULT_CNTL__CLEAR_PROTECTION_FAULT_STATUS_ADDR)) {
        this.regs[hubVM_L2_PROTECTION_FAULT_STATUS] = 0;
        this.regs[hubVM_L2_PROTECTION_FAULT_ADDR_LO32] = 0;
        this.regs[hubVM_L2_PROTECTION_FAULT_ADDR_HI32] = 0;
      }
      this.regs[off] = value & ~1;
      return;
    }
    if (off === hubVM_L2_PROTECTION_FAULT_STATUS) return; // read-only
    this.regs[off] = value;
  }

  /** An invalidation engine request: drops the TLB entries of every VMID in the mask. */
  private invalidate(eng: number, req: number): void {
    const mask = REG_GET_FIELD(req, VM_INVALIDATE_ENG0_REQ__PER_VMID_INVALIDATE_REQ);
    for (let v = 0; v < 16; v++) if (mask & (1 << v)) this.tlb_flush(v);
    this.stats.invalidations++;
    this.inv_mask[eng] = mask;
    this.inv_done_at[eng] = this.k.ktime_get() + this.cost.tlb_invalidate_ns;
    for (const fn of this.inv_listeners) fn(mask);
  }

  // ---- context state --------------------------------------------------------------------------

  private cntl(vmid: number): number {
    return this.regs[hubVM_CONTEXT_CNTL(vmid)]!;
  }

  /** Page-table start of a context, in pages. */
  private range_start(vmid: number): number {
    const r = hubVM_CONTEXT_PAGE_TABLE_START_ADDR_LO32(vmid);
    return this.regs[r]! + (this.regs[r + 1]! & 0xf) * 2 ** 32;
  }

  /** Page-table end of a context, in pages. */
  private range_end(vmid: number): number {
    const r = hubVM_CONTEXT_PAGE_TABLE_END_ADDR_LO32(vmid);
    return this.regs[r]! + (this.regs[r + 1]! & 0xf) * 2 ** 32;
  }

  /** Whether faults of `vmid` retry (the context's RETRY_PERMISSION_OR_INVALID_PAGE_FAULT). */
  context_retries(vmid: number): boolean {
    return REG_GET_FIELD(this.cntl(vmid), VM_CONTEXT1_CNTL__RETRY_PERMISSION_OR_INVALID_PAGE_FAULT) === 1;
  }

  // ---- translation ------------------------------------------------------------------------

  translate(r: XlateRequest): XlateResult {
    const va = r.va;
    // APU: a VMID the ATC maps to a PASID translates through the IOMMU (hw/amd_iommu/atc.ts).
    const atc = this.atc?.translate(r.vmid, va, r.access);
    if (atc) return this.atc_result(r, atc);
    if (r.vmid === 0 && va >= this.mc.sys_low && va <= this.mc.sys_high && va >= this.mc.fb_start && va <= this.mc.fb_end) {
      return { kind: "ok", phys: { sys: false, addr: va - this.mc.fb_start }, span: this.mc.fb_end + 1 - va };
    }
    const vpn = Math.floor(va / PAGE);
    const span = PAGE - (va % PAGE);
    const vmid = r.vmid & 0xf;
    const hit = this.tlb_lookup(vmid, vpn);
    if (hit >= 0 && this.permitted(this.tlb_flags[hit]!, r.access)) {
      this.stats.tlb_hits++;
      return { kind: "ok", phys: { sys: (this.tlb_flags[hit]! & TLB_SYS) !== 0, addr: this.tlb_phys[hit]! + (va % PAGE) }, span };
    }
    if (hit >= 0) this.tlb_gen[hit] = 0;
    this.stats.tlb_misses++;
    const w = this.walk(vmid, vpn);
    if (w.ok && this.permitted(w.e.flags, r.access)) {
      const e = w.e;
      this.tlb_insert(vmid, vpn, e);
      return { kind: "ok", phys: { sys: e.sys, addr: e.phys_page + (va % PAGE) }, span };
    }
    // An invalid entry on the way (PDE or PTE) reports VALID plus the kind of access.
    if (w.ok) return this.fault(r, this.perm_failure(w.e.flags, r.access), -1);
    return this.fault(r, w, w.walker === WALKER_ERROR_RANGE ? w.perm : PERM_FAULT_VALID | perm_bit(r.access));
  }

  /** Drops every entry of `vmid`; a generation that wraps clears the entries instead. */
  private tlb_flush(vmid: number): void {
    if (++this.vmid_gen[vmid]! !== 0) return;
    this.tlb_gen.fill(0, vmid * TLB_ENTRIES_PER_VMID, (vmid + 1) * TLB_ENTRIES_PER_VMID);
    this.vmid_gen[vmid] = 1;
  }

  /** The set `vpn` maps to in `vmid`'s TLB, numbered across all VMIDs. */
  private tlb_set(vmid: number, vpn: number): number {
    return vmid * TLB_SETS + (vpn - Math.floor(vpn / TLB_SETS) * TLB_SETS);
  }

  /** Index of `vpn`'s live entry in `vmid`'s TLB, or -1. */
  private tlb_lookup(vmid: number, vpn: number): number {
    const base = this.tlb_set(vmid, vpn) * TLB_WAYS;
    const gen = this.vmid_gen[vmid]!;
    for (let i = base; i < base + TLB_WAYS; i++) {
      if (this.tlb_vpn[i] === vpn && this.tlb_gen[i] === gen) return i;
    }
    return -1;
  }

  /** Caches a translation in the set's oldest way (first in, first out within a set). */
  private tlb_insert(vmid: number, vpn: number, e: tlb_entry): void {
    const set = this.tlb_set(vmid, vpn);
    const way = this.tlb_next[set]!;
    const i = set * TLB_WAYS + way;
    this.tlb_vpn[i] = vpn;
    this.tlb_phys[i] = e.phys_page;
    this.tlb_flags[i] = e.flags | (e.sys ? TLB_SYS : 0);
    this.tlb_gen[i] = this.vmid_gen[vmid]!;
    this.tlb_next[set] = (way + 1) % TLB_WAYS;
  }

  private permitted(flags: number, access: GpuAccess): boolean {
    if (!(flags & AMDGPU_PTE_VALID)) return false;
    if (access === "read") return (flags & AMDGPU_PTE_READABLE) !== 0;
    if (access === "write") return (flags & AMDGPU_PTE_WRITEABLE) !== 0;
    return (flags & AMDGPU_PTE_EXECUTABLE) !== 0;
  }

  private perm_failure(flags: number, access: GpuAccess): walk_fail {
    const perm = perm_bit(access);
    const cls = access === "read" ? VM_CONTEXT1_CNTL__READ_PROTECTION_FAULT_ENABLE_INTERRUPT
      : access === "write" ? VM_CONTEXT1_CNTL__WRITE_PROTECTION_FAULT_ENABLE_INTERRUPT
        : VM_CONTEXT1_CNTL__EXECUTE_PROTECTION_FAULT_ENABLE_INTERRUPT;
    return { ok: false, walker: WALKER_ERROR_NONE, perm: flags & AMDGPU_PTE_VALID ? perm : PERM_FAULT_VALID | perm, mapping: false, noretry: false, cls: cls[0] };
  }

  /** Reads the 64-bit entry `index` of a table into walk_lo/walk_hi. */
  private read_entry(table: number, sys: boolean, index: number): void {
    const a = table + index * 8;
    this.walk_lo = this.mem.read32_at(sys, a);
    this.walk_hi = this.mem.read32_at(sys, a + 4);
  }

  private walk_lo = 0;
  private walk_hi = 0;

  /** Walks the context's tables for page `vpn`. */
  private walk(vmid: number, vpn: number): walk_result {
    this.stats.walks++;
    const cntl = this.cntl(vmid);
    if (!REG_GET_FIELD(cntl, VM_CONTEXT1_CNTL__ENABLE_CONTEXT)) return RANGE_FAULT;
    const start = this.range_start(vmid);
    if (vpn < start || vpn > this.range_end(vmid)) return RANGE_FAULT;
    const rel = vpn - start;
    const depth = REG_GET_FIELD(cntl, VM_CONTEXT1_CNTL__PAGE_TABLE_DEPTH);
    const ptb_bits = 9 + REG_GET_FIELD(cntl, VM_CONTEXT1_CNTL__PAGE_TABLE_BLOCK_SIZE);
    const base = hubVM_CONTEXT_PAGE_TABLE_BASE_ADDR_LO32(vmid);
    const blo = this.regs[base]!;
    let table = amdgpu_pte_addr(blo, this.regs[base + 1]!);
    let sys = (blo & AMDGPU_PTE_SYSTEM) !== 0;
    if (depth === 0) {
      this.read_entry(table, sys, rel);
      return this.leaf(0);
    }
    for (let level = depth; level >= 1; level--) {
      const shift = ptb_bits + 9 * (level - 1);
      const idx = Math.floor(rel / 2 ** shift) % (level === depth ? 2 ** 20 : 512);
      this.read_entry(table, sys, idx);
      const lo = this.walk_lo;
      const hi = this.walk_hi;
      if (!(lo & AMDGPU_PTE_VALID)) return PDE_INVALID;
      if (hi & AMDGPU_PDE_PTE_HI) return this.leaf(rel % 2 ** shift);
      table = amdgpu_pte_addr(lo, hi);
      sys = (lo & AMDGPU_PTE_SYSTEM) !== 0;
    }
    this.read_entry(table, sys, rel % 2 ** ptb_bits);
    return this.leaf(0);
  }

  /** The leaf entry just read (PTE, or a PDE acting as one, `sub` pages into its span). */
  private leaf(sub: number): walk_result {
    const lo = this.walk_lo;
    const hi = this.walk_hi;
    // An invalid PTE carrying TF asks for a no-retry fault (AMDGPU_VM_NORETRY_FLAGS).
    if (!(lo & AMDGPU_PTE_VALID)) return hi & AMDGPU_PTE_TF_HI ? PTE_INVALID_NORETRY : PTE_INVALID;
    return { ok: true, e: { phys_page: amdgpu_pte_addr(lo, hi) + sub * PAGE, sys: (lo & AMDGPU_PTE_SYSTEM) !== 0, flags: lo & 0xfff } };
  }

  /** `perm`: the PERMISSION_FAULTS bits to latch (-1: the failure's own). */
  private fault(r: XlateRequest, f: walk_fail, perm: number): XlateResult {
    const cntl = this.cntl(r.vmid);
    const retry = r.can_retry && !f.noretry && this.context_retries(r.vmid);
    const irq_enabled = (cntl & (1 << f.cls)) !== 0;
    if (retry) {
      this.stats.retry_faults++;
      if (irq_enabled) this.post_fault_iv(r, true);
      return RETRY;
    }
    this.stats.noretry_faults++;
    this.latch(r, f, perm < 0 ? f.perm : perm);
    if (irq_enabled) this.post_fault_iv(r, false);
    return { kind: "fault", phys: { sys: true, addr: this.default_page_addr() + (r.va % PAGE) }, span: PAGE - (r.va % PAGE) };
  }

  /** The first no-retry fault is latched; later ones only set MORE_FAULTS until cleared. */
  private latch(r: XlateRequest, f: walk_fail, perm: number): void {
    const st = this.regs[hubVM_L2_PROTECTION_FAULT_STATUS]!;
    if (st !== 0) {
      this.regs[hubVM_L2_PROTECTION_FAULT_STATUS] = REG_SET_FIELD(st, VM_L2_PROTECTION_FAULT_STATUS__MORE_FAULTS, 1);
      return;
    }
    let s = 0;
    s = REG_SET_FIELD(s, VM_L2_PROTECTION_FAULT_STATUS__WALKER_ERROR, f.walker);
    s = REG_SET_FIELD(s, VM_L2_PROTECTION_FAULT_STATUS__PERMISSION_FAULTS, perm);
    s = REG_SET_FIELD(s, VM_L2_PROTECTION_FAULT_STATUS__MAPPING_ERROR, f.mapping ? 1 : 0);
    s = REG_SET_FIELD(s, VM_L2_PROTECTION_FAULT_STATUS__CID, r.cid);
    s = REG_SET_FIELD(s, VM_L2_PROTECTION_FAULT_STATUS__RW, r.access === "write" ? 1 : 0);
    s = REG_SET_FIELD(s, VM_L2_PROTECTION_FAULT_STATUS__ATOMIC, r.atomic ? 1 : 0);
    s = REG_SET_FIELD(s, VM_L2_PROTECTION_FAULT_STATUS__VMID, r.vmid);
    this.regs[hubVM_L2_PROTECTION_FAULT_STATUS] = s;
    const vpn = Math.floor(r.va / PAGE);
    this.regs[hubVM_L2_PROTECTION_FAULT_ADDR_LO32] = vpn % 2 ** 32;
    this.regs[hubVM_L2_PROTECTION_FAULT_ADDR_HI32] = Math.floor(vpn / 2 ** 32) & 0xf;
  }

  /**
   * The fault IV: client VMC (MMHUB) or UTCL2 (GFXHUB), source 0, src_data[0] = address bits
   * 43:12, src_data[1] = bits 47:44 in [3:0], write in bit 5, retry in bit 7.
   */
  private post_fault_iv(r: XlateRequest, retry: boolean): void {
    const vpn = Math.floor(r.va / PAGE);
    const c = this.fault_cookie;
    c.vmid = r.vmid;
    c.src_data[0] = vpn % 2 ** 32;
    c.src_data[1] = (Math.floor(vpn / 2 ** 32) & 0xf) | (r.access === "write" ? 0x20 : 0) | (retry ? 0x80 : 0);
    c.retry_fault = retry;
    this.ih.post(c);
  }

  /** The hub's fault IV, refilled per fault (the IH copies it into the ring at once). */
  private readonly fault_cookie: IvCookie & { src_data: number[] };

  /** Number of cached translations of a VMID (tests and debugfs). */
  tlb_size(vmid: number): number {
    const v = vmid & 0xf;
    const gen = this.vmid_gen[v]!;
    let n = 0;
    for (let i = v * TLB_ENTRIES_PER_VMID; i < (v + 1) * TLB_ENTRIES_PER_VMID; i++) if (this.tlb_gen[i] === gen) n++;
    return n;
  }

}

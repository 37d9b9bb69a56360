// kemu hardware: one AMD IOMMU unit (not a kernel file), in the shape of QEMU's
// hw/i386/amd_iommu.c but with the IOMMUv2 half QEMU leaves out: guest (GCR3/PASID) translation
// of ATS requests, PRI page requests written to the PPR log, and COMPLETE_PPR responses.
//
// The driver sees MMIO registers (value + read-only + write-1-to-clear semantics), and memory
// shared by physical address: the device table, the command buffer, the event log, the PPR log,
// the GCR3 tables and the process page tables (the same x86-64 tables the CPU MMU walks — "one
// page table, two walkers"). The command buffer runs synchronously whenever the tail register is
// written, so a COMPLETION_WAIT semaphore is stored before the driver polls it. Translations are
// cached in an IOTLB tagged (domain id, PASID, page), device-table entries in a DTE cache and
// PASID→CR3 lookups in a GCR3 cache; only INVALIDATE_* commands drop them, so a missing flush in
// the driver is a visible bug. PCIe functions with ATS/PRI (see ats.ts) connect by DeviceID: the
// IOMMU sends them ATS invalidations (INVALIDATE_IOTLB_PAGES) and PRG responses (COMPLETE_PPR).
// Interrupts (PPR, event log, completion wait) go out as the function's MSI, a short
// cost-model delay after a status bit rises with its interrupt enabled.

import type { Kernel } from "../../kernel/kernel.ts";
import { timer_list } from "../../kernel/time/timer.ts";
import type { PhysMem } from "../physmem.ts";
import type { PciBarDesc, PciDevicePort, PciFunctionModel } from "../pci.ts";
import {
  CMD_COMPL_WAIT, CMD_COMPL_WAIT_INT_MASK, CMD_COMPL_WAIT_STORE_MASK, CMD_COMPLETE_PPR, CMD_INV_ALL, CMD_INV_DEV_ENTRY,
  CMD_INV_IOMMU_PAGES, CMD_INV_IOMMU_PAGES_GN_MASK, CMD_INV_IOMMU_PAGES_PDE_MASK, CMD_INV_IOMMU_PAGES_SIZE_MASK,
  CMD_INV_IOTLB_PAGES, CMD_INV_IRT, CMD_PREFETCH_IOMMU_PAGES, CONTROL_CMDBUF_EN, CONTROL_COMWAIT_EN, CONTROL_EVT_INT_EN,
  CONTROL_EVT_LOG_EN, CONTROL_IOMMU_EN, CONTROL_PPR_EN, CONTROL_PPRINT_EN, CONTROL_PPRLOG_EN,
  DEV_DOMID_MASK, DEV_ENTRY_MODE_MASK, DEV_ENTRY_MODE_SHIFT, DEV_TABLE_ENTRY_SIZE, DTE_FLAG_GV_HI, DTE_FLAG_IOTLB_HI,
  DTE_FLAG_IR_HI, DTE_FLAG_IW_HI, DTE_FLAG_TV, DTE_FLAG_V, DTE_GLX_MASK, DTE_GLX_SHIFT_HI,
  EVENT_TYPE_ILL_CMD, EVENT_TYPE_ILL_DEV, EVENT_TYPE_INV_DEV_REQ, EVENT_TYPE_INV_PPR_REQ, EVENT_TYPE_PAGE_TAB_ERR,
  FEATURE_GLXVAL_SHIFT, FEATURE_GT_BIT, FEATURE_IA_BIT, FEATURE_NX_BIT, FEATURE_PASID_SHIFT, FEATURE_PPR_BIT,
  FEATURE_PREFETCH_BIT, GCR3_VALID, MMIO_CMD_BUF_OFFSET, MMIO_CMD_HEAD_OFFSET, MMIO_CMD_TAIL_OFFSET, MMIO_CONTROL_OFFSET,
  MMIO_DEV_TABLE_OFFSET, MMIO_EVT_BUF_OFFSET, MMIO_EVT_HEAD_OFFSET, MMIO_EVT_TAIL_OFFSET, MMIO_EXT_FEATURES,
  MMIO_PPR_HEAD_OFFSET, MMIO_PPR_LOG_OFFSET, MMIO_PPR_TAIL_OFFSET,
  MMIO_REGION_LENGTH, MMIO_STATUS_CMDBUF_RUN_MASK, MMIO_STATUS_COM_WAIT_INT_MASK, MMIO_STATUS_EVT_INT_MASK,
  MMIO_STATUS_EVT_OVERFLOW_INT_MASK, MMIO_STATUS_EVT_RUN_MASK, MMIO_STATUS_GALOG_INT_MASK, MMIO_STATUS_OFFSET,
  MMIO_STATUS_PPR_INT_MASK, MMIO_STATUS_PPR_OVERFLOW_MASK, MMIO_STATUS_PPR_RUN_MASK, PPR_FAULT_EXEC, PPR_FAULT_GN,
  PPR_FAULT_READ, PPR_FAULT_RSVD, PPR_FAULT_USER, PPR_FAULT_WRITE, PPR_REQ_FAULT, dte_gcr3_root, ppr_entry_word0,
  reg64_test,
} from "../../iommu/amd/amd_iommu_types.ts";

const PAGE = 4096;
/** Bits of an x86-64 paging entry the walker reads (arch/x86/include/asm/pgtable_types.h). */
const P = 1 << 0;
const RW = 1 << 1;
const US = 1 << 2;
const A = 1 << 5;
const D = 1 << 6;
const PS = 1 << 7;
const NX_HI = 0x80000000;
const ADDR_HI_MASK = 0x000fffff;
const LEVEL_SHIFTS = [39, 30, 21, 12];
/** IOTLB capacity; FIFO eviction keeps runs deterministic. */
export const IOTLB_ENTRIES = 4096;

export interface AmdIommuCost {
  /** A status bit rising until the interrupt reaches the CPU, ns. */
  msi_latency_ns: number;
  /** COMPLETE_PPR executed until the PRG Response message reaches the device, ns. */
  prg_response_ns: number;
}

// No §C row isolates these; kemu's choices keep one PRI round trip (interrupt, worker,
// response) near the 5 µs floor Vesely et al. (ISPASS 2016, anchors.md §C1 "GPU page fault via
// IOMMU PPR") measured on a Kaveri APU.
export const DEFAULT_AMD_IOMMU_COST: Readonly<AmdIommuCost> = Object.freeze({
  msi_latency_ns: 1_000,
  prg_response_ns: 1_000,
});

/** The ACPI IVHD facts firmware reports for a unit (what init.c reads from the IVRS table). */
export interface IvhdInfo {
  pci_seg: number;
  /** The IOMMU's own DeviceID (bus << 8 | devfn), 00:00.2 on AMD platforms. */
  devid: number;
  /** Extended Feature Register, as {lo, hi}. */
  efr_lo: number;
  efr_hi: number;
}

/** An ATS Translation Request from a device (PCIe 6.x §10.2.2), kemu's structured form. */
export interface AtsRequest {
  /** PASID prefix, or null for a request without one. */
  pasid: number | null;
  va: number;
  /** No-Write hint cleared: the device intends to write. */
  write: boolean;
  exec: boolean;
  /** Privileged Mode Requested. */
  priv: boolean;
}

/** An ATS Translation Completion: the page's physical base and the rights granted ("ur" = Unsupported Request). */
export type AtsCompletion =
  | { status: "ok"; pa: number; r: boolean; w: boolean; x: boolean }
  | { status: "ur" };

/** A PRI Page Request Message (PCIe §10.4.1). */
export interface PageRequestMsg {
  pasid: number | null;
  va: number;
  read: boolean;
  write: boolean;
  exec: boolean;
  priv: boolean;
  /** Page Request Group index, 9 bits. */
  prg_index: number;
  /** "Last Request in PRG". */
  last: boolean;
  /** A reserved field of the message was non-zero (the IOMMU flags the entry RSVD). */
  rsvd?: boolean;
}

/** What the IOMMU sends back to a function over PCIe. */
export interface AtsEndpoint {
  /** ATS Invalidate Request for [start, end) of `pasid` (null: untranslated-address entries). */
  ats_invalidate(pasid: number | null, start: number, end: number): void;
  /** PRG Response message; `pasid` is present only when the response carries one. */
  prg_response(pasid: number | null, prg_index: number, code: number): void;
}

export interface AmdIommuStats {
  ats_requests: number;
  iotlb_hits: number;
  iotlb_misses: number;
  walks: number;
  page_requests: number;
  ppr_logged: number;
  ppr_overflows: number;
  ppr_dropped: number;
  commands: number;
  complete_ppr: number;
  inv_iommu_pages: number;
  inv_iotlb_pages: number;
  completion_waits: number;
  events: number;
  interrupts: number;
}

interface dte {
  v: boolean;
  tv: boolean;
  mode: number;
  ir: boolean;
  iw: boolean;
  gv: boolean;
  glx: number;
  gcr3_root: number;
  domid: number;
  iotlb: boolean;
}

interface iotlb_entry {
  pfn: number;
  r: boolean;
  w: boolean;
  x: boolean;
  dirty: boolean;
}

type walk_result = { ok: true; e: iotlb_entry } | { ok: false; rsvd: boolean };

/** The default EFR: PPR, guest translation, NX, INVALIDATE_ALL, 2-level GCR3, 16-bit PASIDs. */
export function default_efr(): { lo: number; hi: number } {
  const lo = (1 << FEATURE_PREFETCH_BIT) | (1 << FEATURE_PPR_BIT) | (1 << FEATURE_NX_BIT) | (1 << FEATURE_GT_BIT) |
    (1 << FEATURE_IA_BIT) | (1 << FEATURE_GLXVAL_SHIFT);
  return { lo: lo >>> 0, hi: 15 << (FEATURE_PASID_SHIFT - 32) };
}

/** The EFR as IvhdInfo fields. */
export function efr_words(efr: { lo: number; hi: number }): { efr_lo: number; efr_hi: number } {
  return { efr_lo: efr.lo, efr_hi: efr.hi };
}

function reg_index(off: number): number {
  return off / 4;
}

/** PCI identity: AMD Family 15h (Models 60h-6fh, Carrizo) I/O Memory Management Unit. */
export const PCI_VENDOR_ID_AMD = 0x1022;
export const AMD_IOMMU_PCI_DEVICE_ID = 0x1577;
/** PCI_CLASS_SYSTEM_IOMMU << 8 */
export const PCI_CLASS_SYSTEM_IOMMU = 0x080600;
/** Where AMD platforms put the IOMMU function: 00:00.2. */
export const AMD_IOMMU_DEVFN = 0x02;

export class AmdIommuHw implements PciFunctionModel {
  readonly vendor_id = PCI_VENDOR_ID_AMD;
  readonly device_id = AMD_IOMMU_PCI_DEVICE_ID;
  readonly revision = 0;
  readonly class_code = PCI_CLASS_SYSTEM_IOMMU;
  readonly subsystem_vendor_id = PCI_VENDOR_ID_AMD;
  readonly subsystem_id = AMD_IOMMU_PCI_DEVICE_ID;
  /**
   * kemu decodes the MMIO window as BAR0 of the IOMMU's PCI function; real parts report its
   * base in the IOMMU capability's base-address registers and the ACPI IVHD entry.
   */
  readonly bars: ReadonlyArray<PciBarDesc | null> = [{ size: MMIO_REGION_LENGTH, is64: true, prefetch: false }, null, null, null, null, null];
  readonly regs = new Uint32Array(MMIO_REGION_LENGTH / 4);
  readonly stats: AmdIommuStats = {
    ats_requests: 0, iotlb_hits: 0, iotlb_misses: 0, walks: 0, page_requests: 0, ppr_logged: 0, ppr_overflows: 0,
    ppr_dropped: 0, commands: 0, complete_ppr: 0, inv_iommu_pages: 0, inv_iotlb_pages: 0, completion_waits: 0,
    events: 0, interrupts: 0,
  };
  private readonly endpoints = new Map<number, AtsEndpoint>();
  private readonly dte_cache = new Map<number, dte>();
  /** (domid, pasid) → CR3 of the bound address space. */
  private readonly gcr3_cache = new Map<number, number>();
  /** (domid, pasid) → vpn → translation. */
  private readonly iotlb = new Map<number, Map<number, iotlb_entry>>();
  private iotlb_count = 0;
  /** Control bits 31:0 as last seen with IOMMU_EN set, to find enable edges. */
  private ctrl_seen = 0;
  private port: PciDevicePort | null = null;
  /** The MSI write in flight (one interrupt covers every source raised meanwhile). */
  private readonly msi_timer = new timer_list(() => {
    this.stats.interrupts++;
    this.port?.raise_msi();
  }, "amd_iommu_msi", "hw");

  constructor(
    private readonly k: Kernel,
    private readonly mem: PhysMem,
    readonly ivhd: IvhdInfo,
    readonly cost: AmdIommuCost = { ...DEFAULT_AMD_IOMMU_COST },
  ) {
    this.regs[reg_index(MMIO_EXT_FEATURES)] = ivhd.efr_lo >>> 0;
    this.regs[reg_index(MMIO_EXT_FEATURES) + 1] = ivhd.efr_hi >>> 0;
  }

  /** A PCIe function with ATS/PRI below this IOMMU, by DeviceID. */
  connect_endpoint(devid: number, ep: AtsEndpoint): void {
    this.endpoints.set(devid & 0xffff, ep);
  }

  /** The machine clock, for devices that timestamp what they receive. */
  ktime_get(): number {
    return this.k.ktime_get();
  }

  disconnect_endpoint(devid: number): void {
    this.endpoints.delete(devid & 0xffff);
  }

  // ---- register helpers ------------------------------------------------------------------------

  private reg(off: number): number {
    return this.regs[reg_index(off)]!;
  }

  private set_reg(off: number, v: number): void {
    this.regs[reg_index(off)] = v >>> 0;
  }

  private ctrl(bit: number): boolean {
    return reg64_test(this.reg(MMIO_CONTROL_OFFSET), this.reg(MMIO_CONTROL_OFFSET + 4), bit);
  }

  private status_set(mask: number): void {
    this.set_reg(MMIO_STATUS_OFFSET, this.reg(MMIO_STATUS_OFFSET) | mask);
  }

  private status_clear(mask: number): void {
    this.set_reg(MMIO_STATUS_OFFSET, this.reg(MMIO_STATUS_OFFSET) & ~mask);
  }

  /** Physical base of a ring/table register: bits 51:12. */
  private base_of(off: number): number {
    return ((this.reg(off) & 0xfffff000) >>> 0) + (this.reg(off + 4) & ADDR_HI_MASK) * 2 ** 32;
  }

  /** Ring size in bytes from the 4-bit length code in bits 59:56 (2^code 16-byte entries). */
  private ring_bytes(off: number): number {
    const code = (this.reg(off + 4) >>> 24) & 0xf;
    return code < 8 ? 0 : 2 ** code * 16;
  }

  // ---- MMIO (BAR0) -----------------------------------------------------------------------------

  /** The port carries the MSI; the IOMMU's own table and log accesses go straight to RAM. */
  attach(port: PciDevicePort): void {
    this.port = port;
  }

  mmio_read32(bar: number, off: number): number {
    return bar === 0 ? this.reg_read(off) : 0xffffffff;
  }

  mmio_write32(bar: number, off: number, value: number): void {
    if (bar === 0) this.reg_write(off, value);
  }

  /** writeq(): a 64-bit register written in one transaction (the high half latches first). */
  mmio_write64(bar: number, off: number, lo: number, hi: number): void {
    if (bar !== 0) return;
    this.reg_write(off + 4, hi);
    this.reg_write(off, lo);
  }

  mmio_read_bytes(bar: number, off: number, dst: Uint8Array): void {
    const dv = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
    for (let i = 0; i + 4 <= dst.length; i += 4) dv.setUint32(i, this.mmio_read32(bar, off + i), true);
  }

  /** memcpy_toio() of whole dwords (how init.c programs the 64-bit base registers). */
  mmio_write_bytes(bar: number, off: number, src: Uint8Array): void {
    const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
    for (let i = 0; i + 4 <= src.length; i += 4) this.mmio_write32(bar, off + i, dv.getUint32(i, true));
  }

  reg_read(off: number): number {
    if (off < 0 || off % 4 || off >= MMIO_REGION_LENGTH) return 0xffffffff;
    return this.reg(off);
  }

  reg_write(off: number, value: number): void {
    if (off < 0 || off % 4 || off >= MMIO_REGION_LENGTH) return;
    value >>>= 0;
    switch (off) {
      case MMIO_EXT_FEATURES:
      case MMIO_EXT_FEATURES + 4:
      case MMIO_STATUS_OFFSET + 4:
        return; // read-only
      case MMIO_STATUS_OFFSET: {
        const w1c = MMIO_STATUS_EVT_OVERFLOW_INT_MASK | MMIO_STATUS_EVT_INT_MASK | MMIO_STATUS_COM_WAIT_INT_MASK |
          MMIO_STATUS_PPR_OVERFLOW_MASK | MMIO_STATUS_PPR_INT_MASK | MMIO_STATUS_GALOG_INT_MASK;
        this.status_clear(value & w1c);
        return;
      }
      case MMIO_CMD_HEAD_OFFSET:
      case MMIO_CMD_TAIL_OFFSET:
      case MMIO_EVT_HEAD_OFFSET:
      case MMIO_EVT_TAIL_OFFSET:
      case MMIO_PPR_HEAD_OFFSET:
      case MMIO_PPR_TAIL_OFFSET:
        // Ring pointers: byte offsets, 16-byte aligned, bits 18:4.
        this.set_reg(off, value & 0x7fff0);
        if (off === MMIO_CMD_TAIL_OFFSET) this.process_commands();
        return;
      default:
        this.set_reg(off, value);
        if (off === MMIO_CONTROL_OFFSET || off === MMIO_CONTROL_OFFSET + 4) this.control_changed();
    }
  }

  /** Run bits follow the enables (set on a 0→1 edge, cleared with the enable); CmdBufEn starts fetching. */
  private control_changed(): void {
    const now = this.ctrl(CONTROL_IOMMU_EN) ? this.reg(MMIO_CONTROL_OFFSET) : 0;
    const rising = now & ~this.ctrl_seen;
    this.ctrl_seen = now;
    const follow = (bit: number, mask: number) => {
      if (!(now & (1 << bit))) this.status_clear(mask);
      else if (rising & (1 << bit)) this.status_set(mask);
    };
    follow(CONTROL_EVT_LOG_EN, MMIO_STATUS_EVT_RUN_MASK);
    follow(CONTROL_PPRLOG_EN, MMIO_STATUS_PPR_RUN_MASK);
    follow(CONTROL_CMDBUF_EN, MMIO_STATUS_CMDBUF_RUN_MASK);
    this.process_commands();
  }

  // ---- interrupts --------------------------------------------------------------------------------

  /** Raises `mask` in MMIO_STATUS; a 0→1 edge with the source enabled sends the MSI. */
  private signal(mask: number, enable_bit: number): void {
    const was = (this.reg(MMIO_STATUS_OFFSET) & mask) !== 0;
    this.status_set(mask);
    if (was || !this.ctrl(enable_bit) || !this.port) return;
    if (!this.k.timers.timer_pending(this.msi_timer)) this.k.timers.add_timer_in(this.msi_timer, this.cost.msi_latency_ns);
  }

  // ---- logs ----------------------------------------------------------------------------------------

  /** Appends a 16-byte entry to the ring at `base_off`; false (and overflow) when it is full. */
  private ring_append(base_off: number, head_off: number, tail_off: number, words: readonly number[]): boolean {
    const size = this.ring_bytes(base_off);
    if (!size) return false;
    const tail = this.reg(tail_off) % size;
    const next = (tail + 16) % size;
    if (next === this.reg(head_off) % size) return false;
    const pa = this.base_of(base_off) + tail;
    words.forEach((w, i) => this.mem.write32(pa + 4 * i, w >>> 0));
    this.set_reg(tail_off, next);
    return true;
  }

  /** Writes an event log entry: type in bits 31:28 of dword 1. */
  /**
   * Writes an event log entry: DeviceID in dword 0 bits 15:0, type in dword 1 bits 31:28, flags
   * in dword 1 bits 27:16, the address in dwords 2-3. The PASID sits in dword 1 bits 15:0 with
   * PASID[19:16] in dword 0 bits 19:16 — except INVALID_PPR_REQUEST, which copies the PPR
   * entry's layout (PASID in dword 0 bits 31:16 and dword 1 bits 13:10, tag in dword 1 bits 9:0).
   */
  private log_event(type: number, devid: number, pasid: number, flags: number, addr: number, tag = 0): void {
    this.stats.events++;
    if (!this.ctrl(CONTROL_IOMMU_EN) || !(this.reg(MMIO_STATUS_OFFSET) & MMIO_STATUS_EVT_RUN_MASK)) return;
    const ppr = type === EVENT_TYPE_INV_PPR_REQ;
    const lo16 = pasid % 0x10000;
    const hi4 = Math.floor(pasid / 0x10000) & 0xf;
    const w0 = ((devid & 0xffff) | (ppr ? lo16 << 16 : hi4 << 16)) >>> 0;
    const w1 = (((flags & 0xfff) << 16) | ((type & 0xf) << 28) | (ppr ? (tag & 0x3ff) | (hi4 << 10) : lo16)) >>> 0;
    const ok = this.ring_append(MMIO_EVT_BUF_OFFSET, MMIO_EVT_HEAD_OFFSET, MMIO_EVT_TAIL_OFFSET,
      [w0, w1, addr % 2 ** 32, Math.floor(addr / 2 ** 32)]);
    if (ok) {
      this.signal(MMIO_STATUS_EVT_INT_MASK, CONTROL_EVT_INT_EN);
      return;
    }
    // Overflow stops event logging until the driver re-enables it.
    this.status_clear(MMIO_STATUS_EVT_RUN_MASK);
    this.signal(MMIO_STATUS_EVT_OVERFLOW_INT_MASK, CONTROL_EVT_INT_EN);
  }

  /**
   * Writes a raw PPR log entry (word 0 and the address word) and raises PPRInt. Also the
   * error-injection port tests use to log malformed entries. False if PPR logging is off or the
   * log overflowed (the request is lost, PPROverflow is set).
   */
  log_ppr_raw(w0_lo: number, w0_hi: number, addr: number): boolean {
    const on = this.ctrl(CONTROL_IOMMU_EN) && this.ctrl(CONTROL_PPR_EN) && this.ctrl(CONTROL_PPRLOG_EN) &&
      (this.reg(MMIO_STATUS_OFFSET) & MMIO_STATUS_PPR_RUN_MASK) !== 0;
    if (!on) {
      this.stats.ppr_dropped++;
      return false;
    }
    const ok = this.ring_append(MMIO_PPR_LOG_OFFSET, MMIO_PPR_HEAD_OFFSET, MMIO_PPR_TAIL_OFFSET,
      [w0_lo, w0_hi, addr % 2 ** 32, Math.floor(addr / 2 ** 32)]);
    if (!ok) {
      // The request is lost and PPR logging stops (PPRLogRun clears) until PPRLogEn is toggled.
      this.stats.ppr_overflows++;
      this.status_clear(MMIO_STATUS_PPR_RUN_MASK);
      this.signal(MMIO_STATUS_PPR_OVERFLOW_MASK, CONTROL_PPRINT_EN);
      return false;
    }
    this.stats.ppr_logged++;
    this.signal(MMIO_STATUS_PPR_INT_MASK, CONTROL_PPRINT_EN);
    return true;
  }

  // ---- the upstream side: ATS and PRI from devices ------------------------------------------

  /** A PRI Page Request Message: logged in the PPR log if the requester has a valid DTE. */
  page_request(devid: number, m: PageRequestMsg): boolean {
    this.stats.page_requests++;
    const flags = (m.exec ? PPR_FAULT_EXEC : 0) | (m.read ? PPR_FAULT_READ : 0) | (m.write ? PPR_FAULT_WRITE : 0) |
      (m.priv ? 0 : PPR_FAULT_USER) | (m.pasid !== null ? PPR_FAULT_GN : 0) | (m.rsvd ? PPR_FAULT_RSVD : 0);
    const tag = (m.prg_index & 0x1ff) | (m.last ? 0x200 : 0);
    const e = this.dte(devid);
    if (!e?.v) {
      this.log_event(EVENT_TYPE_INV_PPR_REQ, devid, m.pasid ?? 0, flags, m.va, tag);
      this.stats.ppr_dropped++;
      return false;
    }
    const w0 = ppr_entry_word0(devid, m.pasid ?? 0, tag, flags, PPR_REQ_FAULT);
    return this.log_ppr_raw(w0.lo, w0.hi, m.va - (m.va % PAGE));
  }

  /** An ATS Translation Request; the completion carries the page's rights (none: use PRI). */
  ats_translate(devid: number, req: AtsRequest): AtsCompletion {
    this.stats.ats_requests++;
    if (!this.ctrl(CONTROL_IOMMU_EN)) return { status: "ur" };
    const e = this.dte(devid);
    if (!e?.v || !e.tv) {
      this.log_event(EVENT_TYPE_ILL_DEV, devid, req.pasid ?? 0, 0, req.va);
      return { status: "ur" };
    }
    // DTE.I (IOTLB enable): without it the IOMMU does not answer ATS requests of the device.
    if (!e.iotlb) return { status: "ur" };
    if (req.pasid === null) {
      // kemu models only the "direct map" host table (mode 0): untranslated addresses pass.
      if (e.mode !== 0) return { status: "ur" };
      return { status: "ok", pa: req.va - (req.va % PAGE), r: e.ir, w: e.iw, x: false };
    }
    if (!e.gv) {
      this.log_event(EVENT_TYPE_INV_DEV_REQ, devid, req.pasid, 0, req.va);
      return { status: "ur" };
    }
    const t = this.guest_translate(e, req);
    if (!t) return { status: "ok", pa: 0, r: false, w: false, x: false };
    return { status: "ok", pa: t.pfn * PAGE, r: t.r, w: t.w, x: t.x };
  }

  private static tag(domid: number, pasid: number): number {
    return domid * 2 ** 20 + pasid;
  }

  /** IOTLB lookup, or a walk of GCR3[pasid] → the x86-64 tables; null when nothing is mapped. */
  private guest_translate(e: dte, req: AtsRequest): iotlb_entry | null {
    const tag = AmdIommuHw.tag(e.domid, req.pasid!);
    const vpn = Math.floor(req.va / PAGE);
    const cached = this.iotlb.get(tag)?.get(vpn);
    const user = !req.priv;
    if (cached && this.sufficient(cached, req)) {
      this.stats.iotlb_hits++;
      return cached;
    }
    this.stats.iotlb_misses++;
    const cr3 = this.gcr3_of(e, req.pasid!);
    if (cr3 === null) return null;
    const w = this.walk(cr3, req.va, req.write, user);
    if (!w.ok) {
      if (w.rsvd) this.log_event(EVENT_TYPE_PAGE_TAB_ERR, 0, req.pasid!, 0, req.va);
      return null;
    }
    this.fill(tag, vpn, w.e);
    return w.e;
  }

  /** A cached entry serves the request unless it lacks a right or a write needs the Dirty bit. */
  private sufficient(t: iotlb_entry, req: AtsRequest): boolean {
    if (!t.r) return false;
    if (req.exec && !t.x) return false;
    if (req.write) return t.w && t.dirty;
    return true;
  }

  private fill(tag: number, vpn: number, e: iotlb_entry): void {
    let m = this.iotlb.get(tag);
    if (!m) {
      m = new Map();
      this.iotlb.set(tag, m);
    }
    if (!m.has(vpn)) {
      if (this.iotlb_count >= IOTLB_ENTRIES) this.evict_one();
      this.iotlb_count++;
    }
    m.set(vpn, e);
  }

  private evict_one(): void {
    for (const [tag, m] of this.iotlb) {
      const first = m.keys().next();
      if (first.done) continue;
      m.delete(first.value);
      if (!m.size) this.iotlb.delete(tag);
      this.iotlb_count--;
      return;
    }
  }

  /** GCR3 table walk: `glx` + 1 levels of 512 entries indexed by 9-bit slices of the PASID. */
  private gcr3_of(e: dte, pasid: number): number | null {
    const key = AmdIommuHw.tag(e.domid, pasid);
    const hit = this.gcr3_cache.get(key);
    if (hit !== undefined) return hit;
    let table = e.gcr3_root;
    for (let level = e.glx; level >= 0; level--) {
      const idx = Math.floor(pasid / 512 ** level) % 512;
      const lo = this.mem.read32(table + idx * 8);
      const hi = this.mem.read32(table + idx * 8 + 4);
      if (!(lo & GCR3_VALID)) return null;
      table = ((lo & 0xfffff000) >>> 0) + (hi & ADDR_HI_MASK) * 2 ** 32;
    }
    this.gcr3_cache.set(key, table);
    return table;
  }

  /**
   * The x86-64 walk the CPU MMU also does: rights are the AND of R/W and U/S over the levels and
   * the OR of NX; Accessed is set on every level and Dirty on the leaf for a granted write.
   */
  private walk(cr3: number, va: number, write: boolean, user: boolean): walk_result {
    this.stats.walks++;
    if (va < 0 || va >= 2 ** 47) return { ok: false, rsvd: false };
    let table = cr3;
    let rw = true;
    let us = true;
    let nx = false;
    const entries: number[] = [];
    let lo = 0;
    for (const shift of LEVEL_SHIFTS) {
      const ep = table + (Math.floor(va / 2 ** shift) % 512) * 8;
      lo = this.mem.read32(ep);
      const hi = this.mem.read32(ep + 4);
      if (!(lo & P)) return { ok: false, rsvd: false };
      // kemu's mm maps 4 KiB pages only; a large-page bit is a page-table error here.
      if (shift !== 12 && lo & PS) return { ok: false, rsvd: true };
      rw &&= (lo & RW) !== 0;
      us &&= (lo & US) !== 0;
      nx ||= (hi & NX_HI) !== 0;
      entries.push(ep);
      table = ((lo & 0xfffff000) >>> 0) + (hi & ADDR_HI_MASK) * 2 ** 32;
    }
    const r = !user || us;
    const e: iotlb_entry = { pfn: table / PAGE, r, w: r && rw, x: r && !nx, dirty: (lo & D) !== 0 };
    if (!r) return { ok: false, rsvd: false };
    for (const ep of entries) {
      const v = this.mem.read32(ep);
      if (!(v & A)) this.mem.write32(ep, v | A);
    }
    if (write && e.w) {
      const leaf = entries[3]!;
      this.mem.write32(leaf, this.mem.read32(leaf) | D);
      e.dirty = true;
    }
    return { ok: true, e };
  }

  // ---- device table ------------------------------------------------------------------------------

  /** The (cached) device-table entry of `devid`, or null beyond the table. */
  private dte(devid: number): dte | null {
    devid &= 0xffff;
    const hit = this.dte_cache.get(devid);
    if (hit) return hit;
    const dt = this.reg(MMIO_DEV_TABLE_OFFSET);
    const entries = ((dt & 0x1ff) + 1) * (PAGE / DEV_TABLE_ENTRY_SIZE);
    if (devid >= entries) return null;
    const pa = this.base_of(MMIO_DEV_TABLE_OFFSET) + devid * DEV_TABLE_ENTRY_SIZE;
    const w0lo = this.mem.read32(pa);
    const w0hi = this.mem.read32(pa + 4);
    const w1lo = this.mem.read32(pa + 8);
    const w1hi = this.mem.read32(pa + 12);
    const e: dte = {
      v: (w0lo & DTE_FLAG_V) !== 0,
      tv: (w0lo & DTE_FLAG_TV) !== 0,
      mode: (w0lo >>> DEV_ENTRY_MODE_SHIFT) & DEV_ENTRY_MODE_MASK,
      ir: (w0hi & DTE_FLAG_IR_HI) !== 0,
      iw: (w0hi & DTE_FLAG_IW_HI) !== 0,
      gv: (w0hi & DTE_FLAG_GV_HI) !== 0,
      glx: (w0hi >>> DTE_GLX_SHIFT_HI) & DTE_GLX_MASK,
      gcr3_root: dte_gcr3_root(w0hi, w1lo, w1hi),
      domid: w1lo & DEV_DOMID_MASK,
      iotlb: (w1hi & DTE_FLAG_IOTLB_HI) !== 0,
    };
    this.dte_cache.set(devid, e);
    return e;
  }

  // ---- the command buffer --------------------------------------------------------------------

  /** Executes commands from head to tail; an illegal one halts the buffer (CmdBufRun clears). */
  private process_commands(): void {
    if (!this.ctrl(CONTROL_IOMMU_EN) || !this.ctrl(CONTROL_CMDBUF_EN)) return;
    if (!(this.reg(MMIO_STATUS_OFFSET) & MMIO_STATUS_CMDBUF_RUN_MASK)) return;
    const size = this.ring_bytes(MMIO_CMD_BUF_OFFSET);
    if (!size) return;
    const base = this.base_of(MMIO_CMD_BUF_OFFSET);
    let head = this.reg(MMIO_CMD_HEAD_OFFSET) % size;
    const tail = this.reg(MMIO_CMD_TAIL_OFFSET) % size;
    while (head !== tail) {
      const pa = base + head;
      const cmd = [0, 1, 2, 3].map((i) => this.mem.read32(pa + 4 * i));
      if (!this.execute(cmd, pa)) {
        this.status_clear(MMIO_STATUS_CMDBUF_RUN_MASK);
        return;
      }
      head = (head + 16) % size;
      this.set_reg(MMIO_CMD_HEAD_OFFSET, head);
    }
  }

  private illegal(pa: number): boolean {
    this.log_event(EVENT_TYPE_ILL_CMD, 0, 0, 0, pa);
    return false;
  }

  private execute(c: number[], pa: number): boolean {
    this.stats.commands++;
    const [d0, d1, d2, d3] = c as [number, number, number, number];
    switch (d1 >>> 28) {
      case CMD_COMPL_WAIT: return this.cmd_completion_wait(d0, d1, d2, d3);
      case CMD_INV_DEV_ENTRY:
        this.dte_cache.delete(d0 & 0xffff);
        return true;
      case CMD_INV_IOMMU_PAGES: return this.cmd_inv_iommu_pages(d0, d1, d2, d3) || this.illegal(pa);
      case CMD_INV_IOTLB_PAGES: return this.cmd_inv_iotlb_pages(d0, d1, d2, d3);
      case CMD_INV_IRT:
      case CMD_PREFETCH_IOMMU_PAGES:
        return true;
      case CMD_COMPLETE_PPR: return this.cmd_complete_ppr(d0, d1, d2, d3) || this.illegal(pa);
      case CMD_INV_ALL:
        this.dte_cache.clear();
        this.gcr3_cache.clear();
        this.iotlb.clear();
        this.iotlb_count = 0;
        return true;
      default:
        return this.illegal(pa);
    }
  }

  /** COMPLETION_WAIT: every earlier command is done; optionally store a 64-bit value and interrupt. */
  private cmd_completion_wait(d0: number, d1: number, d2: number, d3: number): boolean {
    this.stats.completion_waits++;
    if (d0 & CMD_COMPL_WAIT_STORE_MASK) {
      const sem = ((d0 & 0xfffffff8) >>> 0) + (d1 & ADDR_HI_MASK) * 2 ** 32;
      this.mem.write32(sem, d2);
      this.mem.write32(sem + 4, d3);
    }
    if (d0 & CMD_COMPL_WAIT_INT_MASK) this.signal(MMIO_STATUS_COM_WAIT_INT_MASK, CONTROL_COMWAIT_EN);
    return true;
  }

  /**
   * The range an INVALIDATE_* command names: one page, or with S=1 a naturally aligned block
   * whose size is given by the lowest clear address bit from bit 12 up (bit ≥ 51: everything).
   */
  static inv_range(lo: number, hi: number, s: boolean): [number, number] {
    const addr = ((lo & 0xfffff000) >>> 0) + hi * 2 ** 32;
    if (!s) return [addr, addr + PAGE];
    for (let n = 12; n < 51; n++) {
      const bit = n < 32 ? (lo >>> n) & 1 : (hi >>> (n - 32)) & 1;
      if (bit === 0) {
        const size = 2 ** (n + 1);
        const start = Math.floor(addr / size) * size;
        return [start, start + size];
      }
    }
    return [0, Infinity];
  }

  private cmd_inv_iommu_pages(d0: number, d1: number, d2: number, d3: number): boolean {
    this.stats.inv_iommu_pages++;
    if (d1 & 0x0fff0000 || d2 & 0xff8) return false;
    const pasid = d0 & 0xfffff;
    const domid = d1 & 0xffff;
    if (!(d2 & CMD_INV_IOMMU_PAGES_GN_MASK)) return true; // host (v1) translations are not cached
    const tag = AmdIommuHw.tag(domid, pasid);
    if (d2 & CMD_INV_IOMMU_PAGES_PDE_MASK) this.gcr3_cache.delete(tag);
    const [start, end] = AmdIommuHw.inv_range(d2, d3, (d2 & CMD_INV_IOMMU_PAGES_SIZE_MASK) !== 0);
    const m = this.iotlb.get(tag);
    if (!m) return true;
    for (const vpn of [...m.keys()]) {
      if (vpn * PAGE >= start && vpn * PAGE < end) {
        m.delete(vpn);
        this.iotlb_count--;
      }
    }
    if (!m.size) this.iotlb.delete(tag);
    return true;
  }

  /** INVALIDATE_IOTLB_PAGES: forwarded to the device as an ATS Invalidate Request. */
  private cmd_inv_iotlb_pages(d0: number, d1: number, d2: number, d3: number): boolean {
    this.stats.inv_iotlb_pages++;
    const devid = d0 & 0xffff;
    const pasid = ((d0 >>> 16) & 0xff) * 256 + ((d1 >>> 16) & 0xff);
    const gn = (d2 & CMD_INV_IOMMU_PAGES_GN_MASK) !== 0;
    const [start, end] = AmdIommuHw.inv_range(d2, d3, (d2 & CMD_INV_IOMMU_PAGES_SIZE_MASK) !== 0);
    const e = this.dte(devid);
    if (e?.v && e.iotlb) this.endpoints.get(devid)?.ats_invalidate(gn ? pasid : null, start, end);
    return true;
  }

  /** COMPLETE_PPR_REQUEST: a PRG Response to the device, after the link latency. */
  private cmd_complete_ppr(d0: number, d1: number, d2: number, d3: number): boolean {
    if (d0 & 0xffff0000 || d1 & 0x0ff00000 || d2 & ~CMD_INV_IOMMU_PAGES_GN_MASK || d3 & 0xffff0e00) return false;
    this.stats.complete_ppr++;
    const devid = d0 & 0xffff;
    const pasid = d2 & CMD_INV_IOMMU_PAGES_GN_MASK ? d1 & 0xfffff : null;
    const prg = d3 & 0x1ff;
    const code = (d3 >>> 12) & 0xf;
    const ep = this.endpoints.get(devid);
    if (!ep) return true;
    const t = new timer_list(() => ep.prg_response(pasid, prg, code), "amd_iommu_prg_response", "hw");
    this.k.timers.add_timer_in(t, this.cost.prg_response_ns);
    return true;
  }

  // ---- inspection (tests, debugfs) ---------------------------------------------------------

  /** Is (domid, pasid, va) cached in the IOTLB? */
  iotlb_has(domid: number, pasid: number, va: number): boolean {
    return this.iotlb.get(AmdIommuHw.tag(domid, pasid))?.has(Math.floor(va / PAGE)) ?? false;
  }

  iotlb_entries(): number {
    return this.iotlb_count;
  }
}

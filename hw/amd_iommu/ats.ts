// kemu hardware: the ATS, PRI and PASID side of a PCIe function (not a kernel file) — what a
// device such as an APU's GPU carries to take part in IOMMUv2 shared virtual memory:
//
// - the three PCIe extended capabilities (ATS 0x0F, Page Request 0x13, PASID 0x1B) as config
//   registers at 0x100/0x110/0x120, which drivers/pci/ats.c-style code enables;
// - an Address Translation Cache (ATC) of IOMMU translations per (PASID, page), dropped only by
//   ATS Invalidate Requests from the IOMMU (INVALIDATE_IOTLB_PAGES);
// - the page-request engine: a translation the IOMMU grants no (or too few) rights for becomes a
//   PRI Page Request in a Page Request Group (PRG); the access stays pending until the PRG
//   Response arrives. SUCCESS → retry the translation; INVALID → the access fails; Response
//   Failure → the function stops using PRI (status RF) until PRI is reset. A request the IOMMU
//   never answers stays outstanding forever, holding one of the allocated request credits.
//
// The device's engines call translate() per access and register a listener to replay stalled
// accesses when a response arrives.

import type { AmdIommuHw, AtsEndpoint } from "./iommu.ts";

const PAGE = 4096;

// Extended capability layout (include/uapi/linux/pci_regs.h offsets within each capability).
export const ATS_CAP_OFFSET = 0x100;
export const PRI_CAP_OFFSET = 0x110;
export const PASID_CAP_OFFSET = 0x120;
export const PCI_EXT_CAP_ID_ATS = 0x0f;
export const PCI_EXT_CAP_ID_PRI = 0x13;
export const PCI_EXT_CAP_ID_PASID = 0x1b;
export const PCI_ATS_CAP = 0x04;
export const PCI_ATS_CTRL = 0x06;
export const PCI_ATS_CTRL_ENABLE = 0x8000;
export const PCI_PRI_CTRL = 0x04;
export const PCI_PRI_CTRL_ENABLE = 0x0001;
export const PCI_PRI_CTRL_RESET = 0x0002;
export const PCI_PRI_STATUS = 0x06;
export const PCI_PRI_STATUS_RF = 0x0001;
export const PCI_PRI_STATUS_UPRGI = 0x0002;
export const PCI_PRI_STATUS_STOPPED = 0x0100;
export const PCI_PRI_STATUS_PASID = 0x8000;
export const PCI_PRI_MAX_REQ = 0x08;
export const PCI_PRI_ALLOC_REQ = 0x0c;
export const PCI_PASID_CAP = 0x04;
export const PCI_PASID_CTRL = 0x06;
export const PCI_PASID_CAP_EXEC = 0x0002;
export const PCI_PASID_CAP_PRIV = 0x0004;
export const PCI_PASID_CTRL_ENABLE = 0x0001;
export const PCI_PASID_CTRL_EXEC = 0x0002;
export const PCI_PASID_CTRL_PRIV = 0x0004;

/** PRG Response codes (PCIe §10.4.2.1). */
export const PRG_RESPONSE_SUCCESS = 0x0;
export const PRG_RESPONSE_INVALID = 0x1;
export const PRG_RESPONSE_FAILURE = 0xf;

/** ATC capacity; FIFO eviction keeps runs deterministic. */
export const ATC_ENTRIES = 1024;

export type AtsAccess = "read" | "write" | "exec";

export type AtcResult =
  | { kind: "ok"; pa: number }
  /** Waiting for a PRG Response (or for a request credit): replay on the next response. */
  | { kind: "pending" }
  /** The access failed: INVALID response, Response Failure, or ATS/PRI unusable. */
  | { kind: "fault"; reason: "invalid" | "failure" | "disabled" | "unsupported" };

export interface AtsFunctionConfig {
  /** The function's DeviceID on the IOMMU's segment. */
  devid: number;
  /** Max PASID Width (bits). */
  pasid_width: number;
  /** Outstanding Page Request Capacity. */
  pri_capacity: number;
  /** ATS Invalidate Queue Depth (0 encodes 32). */
  inv_queue_depth: number;
  exec_supported: boolean;
  priv_supported: boolean;
  /** "PRG Response PASID Required": responses must carry the PASID. */
  prg_resp_pasid_required: boolean;
}

interface outstanding {
  pasid: number;
  pages: Set<number>;
  write: boolean;
  exec: boolean;
}

interface atc_entry {
  pfn: number;
  r: boolean;
  w: boolean;
  x: boolean;
}

/** One PRG Response as the function received it (`expected` = it matched an outstanding group). */
export interface PrgResponseRecord {
  pasid: number | null;
  prg_index: number;
  code: number;
  expected: boolean;
  at_ns: number;
}

/** The response log keeps the latest entries only. */
export const RESPONSE_LOG_ENTRIES = 256;

export interface AtsFunctionStats {
  translations: number;
  atc_hits: number;
  ats_requests: number;
  page_requests: number;
  responses_success: number;
  responses_invalid: number;
  responses_failure: number;
  unexpected_responses: number;
  invalidations: number;
}

export class AtsPriFunction implements AtsEndpoint {
  private ats_ctrl = 0;
  private pri_ctrl = 0;
  private pri_status = PCI_PRI_STATUS_STOPPED;
  private pri_alloc = 0;
  private pasid_ctrl = 0;
  private readonly atc = new Map<string, atc_entry>();
  /** Outstanding page request groups by PRG index. */
  private readonly prgs = new Map<number, outstanding>();
  /** Page requests in flight (a group counts one per page). */
  private in_flight = 0;
  /** Pages whose last PRG Response said the access cannot be satisfied. */
  private readonly failed = new Set<string>();
  private next_prg = 0;
  private readonly listeners: Array<(pasid: number) => void> = [];
  /** Recent PRG Responses, oldest first (for tests and debugfs-style inspection). */
  readonly response_log: PrgResponseRecord[] = [];
  /** Virtual time source for the log (the machine clock). */
  now: () => number = () => 0;
  readonly stats: AtsFunctionStats = {
    translations: 0, atc_hits: 0, ats_requests: 0, page_requests: 0, responses_success: 0, responses_invalid: 0,
    responses_failure: 0, unexpected_responses: 0, invalidations: 0,
  };

  constructor(
    readonly cfg: AtsFunctionConfig,
    private iommu: AmdIommuHw | null = null,
  ) {
    if (cfg.prg_resp_pasid_required) this.pri_status |= PCI_PRI_STATUS_PASID;
    if (iommu) this.connect(iommu);
  }

  /** Wires the function below an IOMMU (what the PCIe topology does at power-on). */
  connect(iommu: AmdIommuHw): void {
    this.iommu = iommu;
    this.now = () => iommu.ktime_get();
    iommu.connect_endpoint(this.cfg.devid, this);
  }

  /** Replays stalled accesses: called with the PASID of every PRG Response. */
  on_response(fn: (pasid: number) => void): void {
    this.listeners.push(fn);
  }

  // ---- extended configuration space ---------------------------------------------------------

  private static header(id: number, next: number): number {
    return ((next << 20) | (1 << 16) | id) >>> 0;
  }

  /** Dword reads of the extended capabilities; other offsets read as 0 (no capability). */
  ext_config_read32(where: number): number {
    const c = this.cfg;
    switch (where) {
      case ATS_CAP_OFFSET: return AtsPriFunction.header(PCI_EXT_CAP_ID_ATS, PRI_CAP_OFFSET);
      case ATS_CAP_OFFSET + PCI_ATS_CAP: return ((c.inv_queue_depth & 0x1f) | (this.ats_ctrl << 16)) >>> 0;
      case PRI_CAP_OFFSET: return AtsPriFunction.header(PCI_EXT_CAP_ID_PRI, PASID_CAP_OFFSET);
      case PRI_CAP_OFFSET + PCI_PRI_CTRL: return (this.pri_ctrl | (this.pri_status << 16)) >>> 0;
      case PRI_CAP_OFFSET + PCI_PRI_MAX_REQ: return c.pri_capacity >>> 0;
      case PRI_CAP_OFFSET + PCI_PRI_ALLOC_REQ: return this.pri_alloc >>> 0;
      case PASID_CAP_OFFSET: return AtsPriFunction.header(PCI_EXT_CAP_ID_PASID, 0);
      case PASID_CAP_OFFSET + PCI_PASID_CAP: {
        const cap = (c.exec_supported ? PCI_PASID_CAP_EXEC : 0) | (c.priv_supported ? PCI_PASID_CAP_PRIV : 0) |
          ((c.pasid_width & 0x1f) << 8);
        return (cap | (this.pasid_ctrl << 16)) >>> 0;
      }
      default: return 0;
    }
  }

  ext_config_write32(where: number, value: number): void {
    const hi = (value >>> 16) & 0xffff;
    switch (where) {
      case ATS_CAP_OFFSET + PCI_ATS_CAP:
        this.set_ats_ctrl(hi);
        return;
      case PRI_CAP_OFFSET + PCI_PRI_CTRL:
        this.set_pri_ctrl(value & 0xffff, hi);
        return;
      case PRI_CAP_OFFSET + PCI_PRI_ALLOC_REQ:
        // Only while PRI is off (PCIe: changing the allocation of an enabled PRI is undefined).
        if (!(this.pri_ctrl & PCI_PRI_CTRL_ENABLE)) this.pri_alloc = value >>> 0;
        return;
      case PASID_CAP_OFFSET + PCI_PASID_CAP:
        this.pasid_ctrl = hi & (PCI_PASID_CTRL_ENABLE | (this.cfg.exec_supported ? PCI_PASID_CTRL_EXEC : 0) |
          (this.cfg.priv_supported ? PCI_PASID_CTRL_PRIV : 0));
        return;
    }
  }

  private set_ats_ctrl(v: number): void {
    const was = this.ats_ctrl & PCI_ATS_CTRL_ENABLE;
    this.ats_ctrl = v & (PCI_ATS_CTRL_ENABLE | 0x1f);
    // Turning ATS off (or on) drops every cached translation.
    if (was !== (this.ats_ctrl & PCI_ATS_CTRL_ENABLE)) this.atc.clear();
  }

  /** PRI control and the RW1C status bits (RF, UPRGI) sharing the dword. */
  private set_pri_ctrl(ctrl: number, status_w1c: number): void {
    this.pri_status &= ~(status_w1c & (PCI_PRI_STATUS_RF | PCI_PRI_STATUS_UPRGI));
    if (ctrl & PCI_PRI_CTRL_RESET && !(this.pri_ctrl & PCI_PRI_CTRL_ENABLE)) {
      this.pri_status &= ~(PCI_PRI_STATUS_RF | PCI_PRI_STATUS_UPRGI);
      this.prgs.clear();
      this.in_flight = 0;
      this.failed.clear();
    }
    this.pri_ctrl = ctrl & PCI_PRI_CTRL_ENABLE;
    // Stopped: PRI disabled and no request outstanding.
    if (this.pri_ctrl || this.in_flight) this.pri_status &= ~PCI_PRI_STATUS_STOPPED;
    else this.pri_status |= PCI_PRI_STATUS_STOPPED;
  }

  ats_enabled(): boolean {
    return (this.ats_ctrl & PCI_ATS_CTRL_ENABLE) !== 0;
  }

  pri_enabled(): boolean {
    return (this.pri_ctrl & PCI_PRI_CTRL_ENABLE) !== 0;
  }

  pasid_enabled(): boolean {
    return (this.pasid_ctrl & PCI_PASID_CTRL_ENABLE) !== 0;
  }

  /** PRI Status: Response Failure was received. */
  response_failure(): boolean {
    return (this.pri_status & PCI_PRI_STATUS_RF) !== 0;
  }

  outstanding_requests(): number {
    return this.in_flight;
  }

  // ---- the device's accesses ------------------------------------------------------------------

  private static key(pasid: number, vpn: number): string {
    return `${pasid}:${vpn}`;
  }

  private static allows(e: atc_entry, access: AtsAccess): boolean {
    return access === "read" ? e.r : access === "write" ? e.w : e.x;
  }

  /**
   * One access of the function with `pasid`: a physical address, pending on PRI, or a fault.
   * Without "Execute Permission Enable" in the PASID control, an instruction fetch is requested
   * as a read (the function may not ask for execute rights).
   */
  translate(pasid: number, va: number, access: AtsAccess): AtcResult {
    this.stats.translations++;
    if (!this.iommu || !this.ats_enabled() || !this.pasid_enabled()) return { kind: "fault", reason: "disabled" };
    if (access === "exec" && !(this.pasid_ctrl & PCI_PASID_CTRL_EXEC)) access = "read";
    const vpn = Math.floor(va / PAGE);
    const key = AtsPriFunction.key(pasid, vpn);
    const cached = this.atc.get(key);
    if (cached && AtsPriFunction.allows(cached, access)) {
      this.stats.atc_hits++;
      return { kind: "ok", pa: cached.pfn * PAGE + (va % PAGE) };
    }
    if (this.failed.delete(key)) return { kind: "fault", reason: this.response_failure() ? "failure" : "invalid" };
    if (this.waiting_on(pasid, vpn, access)) return { kind: "pending" };
    const t = this.ats_request(pasid, va, access);
    if (t === null) return { kind: "fault", reason: "unsupported" };
    if (AtsPriFunction.allows(t, access)) {
      this.atc_fill(key, t);
      return { kind: "ok", pa: t.pfn * PAGE + (va % PAGE) };
    }
    return this.request_pages(pasid, [va], access);
  }

  private waiting_on(pasid: number, vpn: number, access: AtsAccess): boolean {
    for (const g of this.prgs.values()) {
      if (g.pasid !== pasid || !g.pages.has(vpn)) continue;
      if (access === "write" && !g.write) continue;
      if (access === "exec" && !g.exec) continue;
      return true;
    }
    return false;
  }

  /** Translation Request; privileged mode only if the PASID control enables it (kemu's engines never ask). */
  private ats_request(pasid: number, va: number, access: AtsAccess): atc_entry | null {
    this.stats.ats_requests++;
    const c = this.iommu!.ats_translate(this.cfg.devid, { pasid, va, write: access === "write", exec: access === "exec", priv: false });
    if (c.status === "ur") return null;
    return { pfn: c.pa / PAGE, r: c.r, w: c.w, x: c.x };
  }

  private atc_fill(key: string, e: atc_entry): void {
    if (!this.atc.has(key) && this.atc.size >= ATC_ENTRIES) this.atc.delete(this.atc.keys().next().value!);
    this.atc.set(key, e);
  }

  /**
   * Sends one Page Request Group for `vas` (one request per page, "last" on the final one).
   * Pending if no credit is free; a fault if PRI is off or stopped by a Response Failure.
   */
  request_pages(pasid: number, vas: readonly number[], access: AtsAccess): AtcResult {
    if (!this.pri_enabled()) return { kind: "fault", reason: "disabled" };
    if (this.response_failure()) return { kind: "fault", reason: "failure" };
    if (this.in_flight + vas.length > this.pri_alloc) return { kind: "pending" };
    const prg = this.alloc_prg();
    if (prg < 0) return { kind: "pending" };
    const g: outstanding = { pasid, pages: new Set(), write: access === "write", exec: access === "exec" };
    this.prgs.set(prg, g);
    vas.forEach((va, i) => {
      g.pages.add(Math.floor(va / PAGE));
      this.in_flight++;
      this.stats.page_requests++;
      this.iommu!.page_request(this.cfg.devid, {
        pasid, va, read: access !== "exec", write: access === "write", exec: access === "exec", priv: false,
        prg_index: prg, last: i === vas.length - 1,
      });
    });
    return { kind: "pending" };
  }

  /** The lowest free PRG index at or after the last one used, or -1 if all 512 are outstanding. */
  private alloc_prg(): number {
    for (let i = 0; i < 512; i++) {
      const prg = (this.next_prg + i) % 512;
      if (!this.prgs.has(prg)) {
        this.next_prg = (prg + 1) % 512;
        return prg;
      }
    }
    return -1;
  }

  // ---- messages from the IOMMU ---------------------------------------------------------------

  ats_invalidate(pasid: number | null, start: number, end: number): void {
    this.stats.invalidations++;
    const all = end === Infinity;
    for (const k of [...this.atc.keys()]) {
      const [p, v] = k.split(":").map(Number) as [number, number];
      if (pasid !== null && p !== pasid) continue;
      if (all || (v * PAGE >= start && v * PAGE < end)) this.atc.delete(k);
    }
  }

  prg_response(pasid: number | null, prg_index: number, code: number): void {
    const g = this.prgs.get(prg_index);
    const expected = !!g && (!this.cfg.prg_resp_pasid_required || pasid === g.pasid);
    if (this.response_log.length >= RESPONSE_LOG_ENTRIES) this.response_log.shift();
    this.response_log.push({ pasid, prg_index, code, expected, at_ns: this.now() });
    if (!g || !expected) {
      // Unexpected PRG Index: no such group outstanding.
      this.stats.unexpected_responses++;
      this.pri_status |= PCI_PRI_STATUS_UPRGI;
      return;
    }
    this.prgs.delete(prg_index);
    this.in_flight -= g.pages.size;
    if (code === PRG_RESPONSE_SUCCESS) {
      this.stats.responses_success++;
    } else {
      if (code === PRG_RESPONSE_INVALID) this.stats.responses_invalid++;
      else {
        // Response Failure (and every reserved code): stop issuing page requests.
        this.stats.responses_failure++;
        this.pri_status |= PCI_PRI_STATUS_RF;
      }
      for (const vpn of g.pages) this.failed.add(AtsPriFunction.key(g.pasid, vpn));
    }
    if (!this.pri_enabled() && !this.in_flight) this.pri_status |= PCI_PRI_STATUS_STOPPED;
    for (const fn of this.listeners) fn(g.pasid);
  }
}

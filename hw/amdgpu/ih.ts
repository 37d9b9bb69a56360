// kemu hardware: the IH (interrupt handler) block of the GPU (not a kernel file). Engines hand
// it interrupt cookies; it stamps the 48-bit reference-clock timestamp and the PASID of the
// VMID (from the IH_VMID_LUT registers), writes the 8-dword interrupt vector (IV) into a ring in
// system memory by DMA, writes the new write pointer back to memory, and signals MSI. When the
// ring is full it keeps writing over the oldest unread vectors and sets RB_OVERFLOW in the write
// pointer until the driver clears it. GFX9-class parts have a second ring that retry-fault IVs
// of chosen clients are routed to (IH_CLIENT_CFG_DATA); ring 1 signals through a self-interrupt
// IV on ring 0.
//
// IV layout (soc15, as amdgpu_ih_decode_iv_helper reads it):
//   dw0: client_id [7:0], src_id [15:8], ring_id [23:16], vmid [27:24], vmid_src [31]
//   dw1: timestamp [31:0]      dw2: timestamp [47:32] in [15:0], timestamp_src [31]
//   dw3: pasid [15:0], node_id [23:16]       dw4..dw7: src_data[0..3]

import type { Kernel } from "../../kernel/kernel.ts";
import { timer_list } from "../../kernel/time/timer.ts";
import type { PciDevicePort } from "../pci.ts";
import type { GpuCostModel } from "./cost_model.ts";
import { SOC15_IH_CLIENTID_IH } from "../../drivers/gpu/drm/amd/include/soc15_ih_clientid.ts";
import {
  IH_CLIENT_CFG_DATA__CLIENT_TYPE, IH_CLIENT_CFG_DATA__RING_ID, IH_DOORBELL_RPTR__ENABLE, IH_DOORBELL_RPTR__OFFSET,
  IH_RB_CNTL__ENABLE_INTR, IH_RB_CNTL__RB_ENABLE, IH_RB_CNTL__RB_SIZE, IH_RB_CNTL__WPTR_OVERFLOW_CLEAR,
  IH_RB_CNTL__WPTR_OVERFLOW_ENABLE, IH_RB_CNTL__WPTR_WRITEBACK_ENABLE, IH_RING1, REG_GET_FIELD,
  mmIH_CLIENT_CFG_DATA, mmIH_CLIENT_CFG_INDEX, mmIH_DOORBELL_RPTR, mmIH_RB_BASE, mmIH_RB_BASE_HI, mmIH_RB_CNTL,
  mmIH_RB_RPTR, mmIH_RB_WPTR, mmIH_RB_WPTR_ADDR_HI, mmIH_RB_WPTR_ADDR_LO, mmIH_VMID_0_LUT, IH_BASE,
} from "../../drivers/gpu/drm/amd/include/asic_reg/kemu_gpu_regs.ts";

export const IV_DWORDS = 8;
export const IV_BYTES = 32;
/** The IH timestamp counts the 100 MHz reference clock: one tick per 10 ns of virtual time. */
export const IH_TIMESTAMP_NS = 10;

/** What an engine asks the IH to deliver. */
export interface IvCookie {
  client_id: number;
  src_id: number;
  ring_id?: number;
  vmid?: number;
  /** 1 when the VMID is an MMHUB one. */
  vmid_src?: number;
  node_id?: number;
  src_data?: readonly number[];
  /** A retry-fault IV: eligible for routing to ring 1. */
  retry_fault?: boolean;
}

export interface IhStats {
  posted: number;
  overflows: number;
  dropped_disabled: number;
  msis: number;
}

class IhRing {
  regs = new Uint32Array(IH_RING1);
  /** Byte offset of the next IV the hardware writes. */
  wptr = 0;
  overflow = false;
  msi_pending = false;
  /** Ring 1 only: a self-interrupt was sent on ring 0 since the driver last moved rptr. */
  self_notified = false;
  /** The MSI of a burst (armed once per burst, reused). */
  msi_timer: timer_list | null = null;

  get cntl(): number {
    return this.regs[mmIH_RB_CNTL - IH_BASE]!;
  }
  // Decoded register state, refreshed by sync() after every register or doorbell write: the
  // hardware latches its configuration, and post() runs once per IV of a retry storm.
  enabled = false;
  size_bytes = 4;
  base = 0;
  wb_addr = 0;
  wb_enable = false;
  overflow_enable = false;
  intr_enable = false;
  /** The doorbell index that moves this ring's rptr, or -1. */
  db_match = -1;

  sync(): void {
    const cntl = this.cntl;
    const db = this.regs[mmIH_DOORBELL_RPTR - IH_BASE]!;
    this.db_match = REG_GET_FIELD(db, IH_DOORBELL_RPTR__ENABLE) ? REG_GET_FIELD(db, IH_DOORBELL_RPTR__OFFSET) : -1;
    this.enabled = REG_GET_FIELD(cntl, IH_RB_CNTL__RB_ENABLE) === 1;
    this.size_bytes = 4 * 2 ** REG_GET_FIELD(cntl, IH_RB_CNTL__RB_SIZE);
    this.wb_enable = REG_GET_FIELD(cntl, IH_RB_CNTL__WPTR_WRITEBACK_ENABLE) === 1;
    this.overflow_enable = REG_GET_FIELD(cntl, IH_RB_CNTL__WPTR_OVERFLOW_ENABLE) === 1;
    this.intr_enable = REG_GET_FIELD(cntl, IH_RB_CNTL__ENABLE_INTR) === 1;
    this.base = this.regs[mmIH_RB_BASE - IH_BASE]! * 256 + this.regs[mmIH_RB_BASE_HI - IH_BASE]! * 2 ** 40;
    this.wb_addr = this.regs[mmIH_RB_WPTR_ADDR_LO - IH_BASE]! + this.regs[mmIH_RB_WPTR_ADDR_HI - IH_BASE]! * 2 ** 32;
  }
  get rptr(): number {
    return this.regs[mmIH_RB_RPTR - IH_BASE]! % this.size_bytes;
  }
  get wptr_reg(): number {
    return (this.wptr + (this.overflow ? 0x80000000 : 0)) >>> 0;
  }
}

export class IhBlock {
  readonly rings: IhRing[];
  private readonly vmid_lut = new Uint32Array(16);
  private readonly client_cfg = new Uint32Array(32);
  private client_cfg_index = 0;
  private port: PciDevicePort | null = null;
  readonly stats: IhStats = { posted: 0, overflows: 0, dropped_disabled: 0, msis: 0 };
  private readonly dw = new Uint32Array(IV_DWORDS);
  private readonly bytes = new Uint8Array(this.dw.buffer);

  constructor(
    private readonly k: Kernel,
    private readonly cost: GpuCostModel,
    num_rings: number,
    private readonly name: string,
  ) {
    this.rings = Array.from({ length: num_rings }, () => new IhRing());
  }

  attach(port: PciDevicePort): void {
    this.port = port;
  }

  /** The 48-bit IH timestamp now. */
  timestamp(): number {
    return Math.floor(this.k.ktime_get() / IH_TIMESTAMP_NS) % 2 ** 48;
  }

  pasid_of(vmid: number): number {
    return vmid ? this.vmid_lut[vmid]! & 0xffff : 0;
  }

  // ---- registers -----------------------------------------------------------------------------

  reg_read(reg: number): number {
    if (reg >= mmIH_VMID_0_LUT && reg < mmIH_VMID_0_LUT + 16) return this.vmid_lut[reg - mmIH_VMID_0_LUT]!;
    if (reg === mmIH_CLIENT_CFG_INDEX) return this.client_cfg_index;
    if (reg === mmIH_CLIENT_CFG_DATA) return this.client_cfg[this.client_cfg_index]!;
    const { ring, off } = this.ring_reg(reg);
    if (!ring) return 0;
    if (off === mmIH_RB_WPTR - IH_BASE) return ring.wptr_reg;
    return ring.regs[off]!;
  }

  reg_write(reg: number, value: number): void {
    if (reg >= mmIH_VMID_0_LUT && reg < mmIH_VMID_0_LUT + 16) {
      this.vmid_lut[reg - mmIH_VMID_0_LUT] = value;
      return;
    }
    if (reg === mmIH_CLIENT_CFG_INDEX) {
      this.client_cfg_index = value % 32;
      return;
    }
    if (reg === mmIH_CLIENT_CFG_DATA) {
      this.client_cfg[this.client_cfg_index] = value;
      return;
    }
    const { ring, off } = this.ring_reg(reg);
    if (!ring) return;
    if (off === mmIH_RB_WPTR - IH_BASE) return; // read-only
    if (off === mmIH_RB_CNTL - IH_BASE) {
      if (REG_GET_FIELD(value, IH_RB_CNTL__WPTR_OVERFLOW_CLEAR)) ring.overflow = false;
      value = (value & 0x7fffffff) >>> 0;
      const was = ring.enabled;
      ring.regs[off] = value;
      ring.sync();
      if (!was && ring.enabled) {
        ring.wptr = 0;
        ring.overflow = false;
      }
      return;
    }
    ring.regs[off] = value;
    // The driver's rptr updates (one per drained burst) change nothing sync() decodes.
    if (off === mmIH_RB_RPTR - IH_BASE) this.rptr_moved(ring);
    else ring.sync();
  }

  private ring_reg(reg: number): { ring: IhRing | null; off: number } {
    const off = reg - IH_BASE;
    if (off >= 0 && off < IH_RING1) return { ring: this.rings[0]!, off };
    if (off >= IH_RING1 && off < 2 * IH_RING1) return { ring: this.rings[1] ?? null, off: off - IH_RING1 };
    return { ring: null, off: 0 };
  }

  /** A doorbell write that matches a ring's IH_DOORBELL_RPTR moves its read pointer. */
  doorbell(index: number, value: number): boolean {
    for (const ring of this.rings) {
      if (ring.db_match === index) {
        ring.regs[mmIH_RB_RPTR - IH_BASE] = value;
        this.rptr_moved(ring);
        return true;
      }
    }
    return false;
  }

  /** Unread vectors left after the driver moved rptr get their own interrupt. */
  private rptr_moved(ring: IhRing): void {
    ring.self_notified = false;
    if (ring.enabled && ring.rptr !== ring.wptr) {
      if (ring === this.rings[0]) this.schedule_msi(ring);
      else this.notify_self(ring);
    }
  }

  /**
   * Ring 1 has no MSI of its own: new vectors there raise a self-interrupt IV (client IH,
   * source 0, ring_id = 1) on ring 0, once until the driver moves ring 1's rptr.
   */
  private notify_self(ring: IhRing): void {
    if (ring.self_notified) return;
    ring.self_notified = true;
    this.post({ client_id: SOC15_IH_CLIENTID_IH, src_id: 0, ring_id: this.rings.indexOf(ring) });
  }

  // ---- delivering vectors ----------------------------------------------------------------------

  /** Which ring a cookie goes to: ring 1 when its client is routed there (retry faults only if asked). */
  private route(c: IvCookie): IhRing {
    const cfg = this.client_cfg[c.client_id % 32]!;
    const ring_id = REG_GET_FIELD(cfg, IH_CLIENT_CFG_DATA__RING_ID);
    const only_retry = REG_GET_FIELD(cfg, IH_CLIENT_CFG_DATA__CLIENT_TYPE) === 1;
    const r1 = this.rings[1];
    if (ring_id === 1 && r1?.enabled && (!only_retry || c.retry_fault)) return r1;
    return this.rings[0]!;
  }

  /** Writes one IV; returns false when the target ring is off (the IV is lost, as in hardware). */
  post(c: IvCookie): boolean {
    const ring = this.route(c);
    if (!ring.enabled || !this.port) {
      this.stats.dropped_disabled++;
      return false;
    }
    const ts = this.timestamp();
    const vmid = c.vmid ?? 0;
    const dw = this.dw;
    dw[0] = ((c.client_id & 0xff) | ((c.src_id & 0xff) << 8) | (((c.ring_id ?? 0) & 0xff) << 16) |
      ((vmid & 0xf) << 24) | ((c.vmid_src ?? 0) << 31)) >>> 0;
    dw[1] = ts % 2 ** 32;
    dw[2] = Math.floor(ts / 2 ** 32) & 0xffff;
    dw[3] = (this.pasid_of(vmid) | (((c.node_id ?? 0) & 0xff) << 16)) >>> 0;
    const sd = c.src_data;
    for (let i = 0; i < 4; i++) dw[4 + i] = sd ? (sd[i] ?? 0) >>> 0 : 0;

    const size = ring.size_bytes;
    if ((ring.wptr + IV_BYTES) % size === ring.rptr && ring.overflow_enable) {
      // Full: the oldest unread vector is overwritten and the overflow is flagged.
      ring.overflow = true;
      this.stats.overflows++;
    }
    this.port.dma_write(ring.base + ring.wptr, this.bytes);
    ring.wptr = (ring.wptr + IV_BYTES) % size;
    if (ring.wb_enable) this.port.dma_write32(ring.wb_addr, ring.wptr_reg);
    this.stats.posted++;
    if (ring === this.rings[0]) this.schedule_msi(ring);
    else this.notify_self(ring);
    return true;
  }

  /** One MSI per burst: the driver re-reads wptr until it catches up, so bursts coalesce. */
  private schedule_msi(ring: IhRing): void {
    if (ring.msi_pending || !ring.intr_enable) return;
    ring.msi_pending = true;
    ring.msi_timer ??= new timer_list(() => this.msi(ring), `${this.name}_ih_msi`, "hw");
    this.k.timers.add_timer_in(ring.msi_timer, this.cost.ih_delivery_ns);
  }

  private msi(ring: IhRing): void {
    ring.msi_pending = false;
    if (!ring.enabled) return;
    this.stats.msis++;
    this.port?.raise_msi();
  }
}

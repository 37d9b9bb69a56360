// kemu hardware: one SDMA (system DMA) engine with its GFX queue (not a kernel file). The driver
// gives it a ring in GPU memory (RB_BASE, RB_CNTL), moves the write pointer by doorbell or
// register, and the engine decodes packets from its read pointer in virtual time, charging each
// packet from the cost model: NOP, COPY_LINEAR (up to 4 MiB), WRITE_LINEAR, CONST_FILL, FENCE,
// TRAP, POLL_REGMEM (memory or register), SRBM_WRITE and INDIRECT buffers (executed in the VMID
// given in the packet). Ring fetches use VMID 0 (GART or the frame-buffer aperture) through the
// engine's hub. The read pointer is written back to memory after every packet. A packet the
// engine cannot execute stops it: the header and position are latched in the debug registers,
// STATUS_REG.PACKET_ERROR is set and an illegal-instruction IV goes to the IH. A packet's memory
// effects happen when it starts; the next packet starts once the packet's time has passed.

import type { Kernel } from "../../kernel/kernel.ts";
import { timer_list } from "../../kernel/time/timer.ts";
import type { GpuCostModel } from "./cost_model.ts";
import type { IhBlock } from "./ih.ts";
import type { GpuAccess, VmHub, XlateResult } from "./gmc.ts";
import type { GpuMemBus, GpuPhys } from "./mem.ts";
import {
  REG_GET_FIELD, REG_SET_FIELD, SDMA0_CNTL__TRAP_ENABLE, SDMA0_F32_CNTL__HALT, SDMA0_GFX_DOORBELL__ENABLE,
  SDMA0_GFX_DOORBELL_OFFSET__OFFSET, SDMA0_GFX_IB_CNTL__IB_ENABLE, SDMA0_GFX_RB_CNTL__RB_ENABLE,
  SDMA0_GFX_RB_CNTL__RB_SIZE, SDMA0_GFX_RB_CNTL__RPTR_WRITEBACK_ENABLE, SDMA0_STATUS_REG__IDLE,
  SDMA0_STATUS_REG__PACKET_ERROR, SDMA0_STATUS_REG__PAGE_FAULT, SDMA_STRIDE, sdmaCNTL, sdmaDBG_PACKET_HEADER,
  sdmaDBG_PACKET_RPTR, sdmaF32_CNTL, sdmaGFX_DOORBELL, sdmaGFX_DOORBELL_OFFSET, sdmaGFX_IB_CNTL, sdmaGFX_RB_BASE,
  sdmaGFX_RB_BASE_HI, sdmaGFX_RB_CNTL, sdmaGFX_RB_RPTR, sdmaGFX_RB_RPTR_ADDR_HI, sdmaGFX_RB_RPTR_ADDR_LO,
  sdmaGFX_RB_RPTR_HI, sdmaGFX_RB_WPTR, sdmaGFX_RB_WPTR_HI, sdmaSTATUS_REG,
} from "../../drivers/gpu/drm/amd/include/asic_reg/kemu_gpu_regs.ts";
import {
  SDMA_GET_OP, SDMA_GET_SUB_OP, SDMA_OP_CONST_FILL, SDMA_OP_COPY, SDMA_OP_FENCE, SDMA_OP_INDIRECT, SDMA_OP_NOP,
  SDMA_OP_POLL_REGMEM, SDMA_OP_SRBM_WRITE, SDMA_OP_TRAP, SDMA_OP_WRITE, SDMA_PKT_INDIRECT_GET_VMID,
  SDMA_PKT_NOP_GET_COUNT, SDMA_SUBOP_COPY_LINEAR, SDMA_SUBOP_WRITE_LINEAR,
} from "../../drivers/gpu/drm/amd/amdgpu/vega10_sdma_pkt_open.ts";
import { SDMA0_4_0__SRCID__SDMA_SRBMWRITE, SDMA0_4_0__SRCID__SDMA_TRAP } from "../../drivers/gpu/drm/amd/include/ivsrcid/ivsrcid.ts";

/** POLL_REGMEM interval unit. */
const POLL_INTERVAL_NS = 160;
/** Fault-status client id of SDMA instance i on its hub (kemu's CID table, docs/amdgpu.md). */
export const SDMA_CID_BASE = 0x10;

/** Register access the engine has inside the GPU (SRBM bus): for POLL_REGMEM and SRBM_WRITE. */
export interface SrbmBus {
  reg_read(reg: number): number;
  reg_write(reg: number, value: number): void;
}

interface ib_state {
  base: number;
  size_dw: number;
  vmid: number;
  pos_dw: number;
}

export interface SdmaStats {
  packets: number;
  bytes_copied: number;
  traps: number;
  errors: number;
}

/** cost: done, next packet after `cost` ns; wait: retry this packet later; stall: wait for more dwords. */
type exec_result = { cost: number } | { wait: number } | { error: string } | { stall: true };

export class SdmaEngine {
  readonly regs = new Uint32Array(SDMA_STRIDE);
  /** Read and write pointers in bytes, monotonically increasing (64-bit pointer mode). */
  rptr = 0;
  wptr = 0;
  private ib: ib_state | null = null;
  private running = false;
  private poll_attempts = 0;
  private readonly timer: timer_list;
  readonly stats: SdmaStats = { packets: 0, bytes_copied: 0, traps: 0, errors: 0 };
  /** The last decode error, for dmesg-independent inspection by tests. */
  last_error = "";
  private readonly scratch = new Uint32Array(8);

  constructor(
    private readonly k: Kernel,
    private readonly cost: GpuCostModel,
    readonly instance: number,
    private readonly hub: VmHub,
    private readonly mem: GpuMemBus,
    private readonly ih: IhBlock,
    private readonly client_id: number,
    private readonly srbm: SrbmBus,
    /** CID of this engine's requests at its hub's UTCL2 (see AsicInfo.sdma_utcl2_cids). */
    private readonly utcl2_cid: number = SDMA_CID_BASE + instance,
  ) {
    this.timer = new timer_list(() => this.step(), `sdma${instance}`, "hw");
    this.regs[sdmaF32_CNTL] = REG_SET_FIELD(0, SDMA0_F32_CNTL__HALT, 1);
  }

  private get rb_cntl(): number {
    return this.regs[sdmaGFX_RB_CNTL]!;
  }
  private get ring_bytes(): number {
    return 4 * 2 ** REG_GET_FIELD(this.rb_cntl, SDMA0_GFX_RB_CNTL__RB_SIZE);
  }
  private get ring_base(): number {
    return this.regs[sdmaGFX_RB_BASE]! * 256 + this.regs[sdmaGFX_RB_BASE_HI]! * 2 ** 40;
  }
  private get halted(): boolean {
    return REG_GET_FIELD(this.regs[sdmaF32_CNTL]!, SDMA0_F32_CNTL__HALT) === 1;
  }
  private get enabled(): boolean {
    return REG_GET_FIELD(this.rb_cntl, SDMA0_GFX_RB_CNTL__RB_ENABLE) === 1;
  }
  get idle(): boolean {
    return !this.running;
  }

  // ---- registers ---------------------------------------------------------------------------

  reg_read(off: number): number {
    switch (off) {
      case sdmaGFX_RB_RPTR: return this.rptr % 2 ** 32;
      case sdmaGFX_RB_RPTR_HI: return Math.floor(this.rptr / 2 ** 32);
      case sdmaGFX_RB_WPTR: return this.wptr % 2 ** 32;
      case sdmaGFX_RB_WPTR_HI: return Math.floor(this.wptr / 2 ** 32);
      case sdmaSTATUS_REG: return REG_SET_FIELD(this.regs[sdmaSTATUS_REG]!, SDMA0_STATUS_REG__IDLE, this.running ? 0 : 1);
      default: return off >= 0 && off < SDMA_STRIDE ? this.regs[off]! : 0;
    }
  }

  reg_write(off: number, value: number): void {
    if (off < 0 || off >= SDMA_STRIDE) return;
    const was_enabled = this.enabled;
    switch (off) {
      case sdmaGFX_RB_RPTR:
        if (!was_enabled) this.rptr = Math.floor(this.rptr / 2 ** 32) * 2 ** 32 + value;
        return;
      case sdmaGFX_RB_RPTR_HI:
        if (!was_enabled) this.rptr = (this.rptr % 2 ** 32) + value * 2 ** 32;
        return;
      case sdmaGFX_RB_WPTR:
        this.wptr = Math.floor(this.wptr / 2 ** 32) * 2 ** 32 + value;
        this.kick();
        return;
      case sdmaGFX_RB_WPTR_HI:
        this.wptr = (this.wptr % 2 ** 32) + value * 2 ** 32;
        return;
      case sdmaSTATUS_REG:
      case sdmaDBG_PACKET_HEADER:
      case sdmaDBG_PACKET_RPTR:
        return;
    }
    this.regs[off] = value;
    if (off === sdmaGFX_RB_CNTL && !was_enabled && this.enabled) {
      // Enabling the ring clears a previous packet error; the engine restarts at rptr.
      this.regs[sdmaSTATUS_REG] = 0;
      this.ib = null;
    }
    if (off === sdmaGFX_RB_CNTL || off === sdmaF32_CNTL) this.kick();
  }

  /** A doorbell write: if it is this queue's doorbell, the value is the new wptr (bytes). */
  doorbell(index: number, lo: number, hi: number): boolean {
    const db = this.regs[sdmaGFX_DOORBELL]!;
    if (!REG_GET_FIELD(db, SDMA0_GFX_DOORBELL__ENABLE)) return false;
    if (REG_GET_FIELD(this.regs[sdmaGFX_DOORBELL_OFFSET]!, SDMA0_GFX_DOORBELL_OFFSET__OFFSET) !== index) return false;
    this.wptr = lo + hi * 2 ** 32;
    this.kick();
    return true;
  }

  private kick(): void {
    if (this.running || this.halted || !this.enabled || this.stopped_on_error()) return;
    if (this.rptr === this.wptr && !this.ib) return;
    this.running = true;
    this.k.timers.add_timer_in(this.timer, this.cost.doorbell_latency_ns);
  }

  private stopped_on_error(): boolean {
    return REG_GET_FIELD(this.regs[sdmaSTATUS_REG]!, SDMA0_STATUS_REG__PACKET_ERROR) === 1;
  }

  // ---- the packet loop ------------------------------------------------------------------------

  /** Runs packets until one takes time (then continues from a timer) or the queue is empty. */
  private step(): void {
    for (;;) {
      if (this.halted || !this.enabled || this.stopped_on_error()) break;
      if (!this.ib && this.rptr === this.wptr) break;
      const r = this.exec_one();
      this.writeback_rptr();
      if ("error" in r) {
        this.fail(r.error);
        break;
      }
      if ("stall" in r) break;
      if ("wait" in r) {
        this.k.timers.add_timer_in(this.timer, r.wait);
        return;
      }
      this.stats.packets++;
      if (r.cost > 0) {
        this.k.timers.add_timer_in(this.timer, r.cost);
        return;
      }
    }
    this.running = false;
  }

  private writeback_rptr(): void {
    if (!REG_GET_FIELD(this.rb_cntl, SDMA0_GFX_RB_CNTL__RPTR_WRITEBACK_ENABLE)) return;
    const addr = this.regs[sdmaGFX_RB_RPTR_ADDR_LO]! + this.regs[sdmaGFX_RB_RPTR_ADDR_HI]! * 2 ** 32;
    this.write32(0, addr, this.rptr % 2 ** 32);
    this.write32(0, addr + 4, Math.floor(this.rptr / 2 ** 32));
  }

  /** Dwords available in the current stream from the packet start. */
  private available(): number {
    if (this.ib) return this.ib.size_dw - this.ib.pos_dw;
    return (this.wptr - this.rptr) / 4;
  }

  /** Reads `n` dwords of the current packet into the scratch buffer (ring wraps at its end). */
  private fetch(n: number, into: Uint32Array = this.scratch): void {
    for (let i = 0; i < n; i++) {
      if (this.ib) into[i] = this.read32(this.ib.vmid, this.ib.base + (this.ib.pos_dw + i) * 4);
      else into[i] = this.read32(0, this.ring_base + ((this.rptr + 4 * i) % this.ring_bytes));
    }
  }

  private advance(n: number): void {
    if (this.ib) {
      this.ib.pos_dw += n;
      if (this.ib.pos_dw >= this.ib.size_dw) this.ib = null;
    } else {
      this.rptr += 4 * n;
    }
  }

  /** Length in dwords of the packet whose header is `h`, or 0 if the engine does not know it. */
  private packet_len(h: number): number {
    switch (SDMA_GET_OP(h)) {
      case SDMA_OP_NOP: return 1 + SDMA_PKT_NOP_GET_COUNT(h);
      case SDMA_OP_COPY: return SDMA_GET_SUB_OP(h) === SDMA_SUBOP_COPY_LINEAR ? 7 : 0;
      case SDMA_OP_WRITE: return SDMA_GET_SUB_OP(h) === SDMA_SUBOP_WRITE_LINEAR ? 4 : 0;
      case SDMA_OP_INDIRECT: return 6;
      case SDMA_OP_FENCE: return 4;
      case SDMA_OP_TRAP: return 2;
      case SDMA_OP_POLL_REGMEM: return 6;
      case SDMA_OP_CONST_FILL: return 5;
      case SDMA_OP_SRBM_WRITE: return 3;
      default: return 0;
    }
  }

  private exec_one(): exec_result {
    if (this.available() < 1) return { stall: true };
    this.fetch(1);
    const h = this.scratch[0]!;
    this.regs[sdmaDBG_PACKET_HEADER] = h;
    this.regs[sdmaDBG_PACKET_RPTR] = (this.ib ? this.ib.pos_dw * 4 : this.rptr % this.ring_bytes) >>> 0;
    const len = this.packet_len(h);
    if (len === 0) return { error: `unknown packet` };
    if (this.available() < len) {
      if (this.ib) return { error: `packet of ${len} dwords runs past the end of the IB` };
      return { stall: true }; // the rest of the packet is not committed yet
    }
    const d = this.scratch;
    this.fetch(Math.min(len, d.length));
    const vmid = this.ib?.vmid ?? 0;
    switch (SDMA_GET_OP(h)) {
      case SDMA_OP_NOP:
        this.advance(len);
        return { cost: 0 };
      case SDMA_OP_COPY: return this.op_copy(vmid, len);
      case SDMA_OP_WRITE: return this.op_write(vmid);
      case SDMA_OP_CONST_FILL: return this.op_fill(vmid, len);
      case SDMA_OP_FENCE:
        this.write32(vmid, d[1]! + d[2]! * 2 ** 32, d[3]!);
        this.advance(len);
        return { cost: this.cost.sdma_packet_ns };
      case SDMA_OP_TRAP:
        this.advance(len);
        if (REG_GET_FIELD(this.regs[sdmaCNTL]!, SDMA0_CNTL__TRAP_ENABLE)) {
          this.stats.traps++;
          this.ih.post({ client_id: this.client_id, src_id: SDMA0_4_0__SRCID__SDMA_TRAP, ring_id: 0, src_data: [d[1]! & 0x0fffffff] });
        }
        return { cost: 0 };
      case SDMA_OP_POLL_REGMEM: return this.op_poll(vmid, len);
      case SDMA_OP_SRBM_WRITE:
        this.srbm.reg_write(d[1]! & 0x3ffff, d[2]!);
        this.advance(len);
        return { cost: this.cost.sdma_packet_ns };
      case SDMA_OP_INDIRECT: return this.op_indirect(len);
      default: return { error: "unknown packet" };
    }
  }

  private op_copy(vmid: number, len: number): exec_result {
    const d = this.scratch;
    if (d[1]! > 0x3fffff) return { error: `COPY_LINEAR count 0x${d[1]!.toString(16)} exceeds the 22-bit field (4 MiB)` };
    const bytes = d[1]! + 1;
    const src = d[3]! + d[4]! * 2 ** 32;
    const dst = d[5]! + d[6]! * 2 ** 32;
    this.advance(len);
    // Translate each side only when its current contiguous span runs out.
    let done = 0;
    let s = this.xlate(vmid, src, "read");
    let t = this.xlate(vmid, dst, "write");
    let s_used = 0;
    let t_used = 0;
    while (done < bytes) {
      if (s_used === s.span) {
        s = this.xlate(vmid, src + done, "read");
        s_used = 0;
      }
      if (t_used === t.span) {
        t = this.xlate(vmid, dst + done, "write");
        t_used = 0;
      }
      const n = Math.min(bytes - done, s.span - s_used, t.span - t_used);
      this.mem.copy_at(t.phys, t_used, s.phys, s_used, n);
      s_used += n;
      t_used += n;
      done += n;
    }
    this.stats.bytes_copied += bytes;
    return { cost: this.cost.sdma_packet_ns + bytes / this.cost.sdma_bytes_per_ns };
  }

  private op_write(vmid: number): exec_result {
    const d = this.scratch;
    const dst = d[1]! + d[2]! * 2 ** 32;
    const count = d[3]! + 1;
    if (this.available() < 4 + count) {
      return this.ib ? { error: `WRITE_LINEAR of ${count} dwords runs past the end of the IB` } : { stall: true };
    }
    const data = new Uint32Array(4 + count);
    this.fetch(4 + count, data);
    this.advance(4 + count);
    for (let i = 0; i < count; i++) this.write32(vmid, dst + 4 * i, data[4 + i]!);
    return { cost: this.cost.sdma_packet_ns + (4 * count) / this.cost.sdma_bytes_per_ns };
  }

  private op_fill(vmid: number, len: number): exec_result {
    const d = this.scratch;
    if (d[4]! > 0x3fffff) return { error: `CONST_FILL count 0x${d[4]!.toString(16)} exceeds the 22-bit field (4 MiB)` };
    const bytes = d[4]! + 1;
    const dst = d[1]! + d[2]! * 2 ** 32;
    // The data dword repeats over the span (amdgpu leaves FILLSIZE 0 and passes dword data).
    const value = d[3]!;
    this.advance(len);
    let done = 0;
    while (done < bytes) {
      const t = this.xlate(vmid, dst + done, "write");
      const n = Math.min(bytes - done, t.span);
      this.mem.fill32(t.phys, value >>> 0, n);
      done += n;
    }
    return { cost: this.cost.sdma_packet_ns + bytes / this.cost.sdma_bytes_per_ns };
  }

  private op_poll(vmid: number, len: number): exec_result {
    const d = this.scratch;
    const h = d[0]!;
    const hdp_flush = (h >>> 26) & 1;
    const func = (h >>> 28) & 7;
    const mem_poll = h >>> 31;
    // Register polls carry the register's byte address (dword offset << 2).
    const value = hdp_flush ? d[3]! : mem_poll ? this.read32(vmid, d[1]! + d[2]! * 2 ** 32) : this.srbm.reg_read((d[1]! >>> 2) & 0x3ffff);
    const masked = (value & d[4]!) >>> 0;
    const ref = d[3]! >>> 0;
    const ok = [true, masked < ref, masked <= ref, masked === ref, masked !== ref, masked >= ref, masked > ref, false][func]!;
    const retries = (d[5]! >>> 16) & 0xfff;
    if (ok || (retries !== 0xfff && this.poll_attempts >= retries)) {
      this.poll_attempts = 0;
      this.advance(len);
      return { cost: this.cost.sdma_packet_ns };
    }
    this.poll_attempts++;
    return { wait: Math.max(1, d[5]! & 0xffff) * POLL_INTERVAL_NS };
  }

  private op_indirect(len: number): exec_result {
    const d = this.scratch;
    if (this.ib) return { error: "INDIRECT inside an indirect buffer" };
    if (!REG_GET_FIELD(this.regs[sdmaGFX_IB_CNTL]!, SDMA0_GFX_IB_CNTL__IB_ENABLE)) return { error: "INDIRECT with IB_CNTL.IB_ENABLE clear" };
    const base = d[1]! + d[2]! * 2 ** 32;
    if (base % 32) return { error: `INDIRECT buffer address 0x${base.toString(16)} not 32-byte aligned` };
    this.advance(len);
    if (d[3]! > 0) this.ib = { base, size_dw: d[3]!, vmid: SDMA_PKT_INDIRECT_GET_VMID(d[0]!), pos_dw: 0 };
    return { cost: this.cost.sdma_packet_ns };
  }

  /** Stops the engine on a bad packet and reports it (latched header, IV with header and position). */
  private fail(why: string): void {
    const h = this.regs[sdmaDBG_PACKET_HEADER]!;
    this.stats.errors++;
    this.last_error = `sdma${this.instance}: ${why}: header 0x${h.toString(16).padStart(8, "0")} at ${this.ib ? "IB" : "ring"} offset 0x${this.regs[sdmaDBG_PACKET_RPTR]!.toString(16)}`;
    this.regs[sdmaSTATUS_REG] = REG_SET_FIELD(this.regs[sdmaSTATUS_REG]!, SDMA0_STATUS_REG__PACKET_ERROR, 1);
    this.ih.post({
      client_id: this.client_id, src_id: SDMA0_4_0__SRCID__SDMA_SRBMWRITE, ring_id: 0,
      src_data: [h, this.regs[sdmaDBG_PACKET_RPTR]!, this.ib ? 1 : 0, 0],
    });
    this.running = false;
  }

  // ---- memory through the hub -----------------------------------------------------------------

  private xlate(vmid: number, va: number, access: GpuAccess): { phys: GpuPhys; span: number } {
    const r: XlateResult = this.hub.translate({ vmid, va, access, cid: this.utcl2_cid, can_retry: false });
    if (r.kind === "retry") throw new Error("SDMA requests never retry");
    if (r.kind === "fault") this.regs[sdmaSTATUS_REG] = REG_SET_FIELD(this.regs[sdmaSTATUS_REG]!, SDMA0_STATUS_REG__PAGE_FAULT, 1);
    return r;
  }

  private read32(vmid: number, va: number): number {
    return this.mem.read32(this.xlate(vmid, va, "read").phys);
  }

  private write32(vmid: number, va: number, value: number): void {
    this.mem.write32(this.xlate(vmid, va, "write").phys, value);
  }
}

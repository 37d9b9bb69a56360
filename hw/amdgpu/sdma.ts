// kemu hardware: one SDMA (system DMA) engine with its GFX (kernel) queue and user (RLC) queues
// (not a kernel file). The driver gives it a ring in GPU memory (RB_BASE, RB_CNTL), moves the
// write pointer by doorbell or register, and the engine decodes packets from its read pointer in virtual time, charging each
// packet from the cost model: NOP, COPY_LINEAR (up to 4 MiB), WRITE_LINEAR, CONST_FILL, FENCE,
// TRAP, POLL_REGMEM (memory or register), SRBM_WRITE and INDIRECT buffers (executed in the VMID
// given in the packet). Ring fetches use VMID 0 (GART or the frame-buffer aperture) through the
// engine's hub. The read pointer is written back to memory after every packet. A packet the
// engine cannot execute stops it: the header and position are latched in the debug registers,
// STATUS_REG.PACKET_ERROR is set and an illegal-instruction IV goes to the IH. A packet's memory
// effects happen when it starts; the next packet starts once the packet's time has passed.
//
// User (RLC) queues: besides the GFX queue each engine has SDMA_RLC_QUEUES user queues that KFD
// loads from SDMA MQDs. An RLC queue's ring, write-back address and IBs translate in the queue's
// VMID (the process's GPU VM); a page fault in a VMID whose context and SH_MEM_CONFIG allow
// retry stalls the packet (a retry IV goes out) and replays it after the retry interval, so the
// packet's memory effects are idempotent and the read pointer only moves once they are done.
// The engine serves its queues round robin, one packet at a time. Clearing RB_ENABLE stops a
// queue after the packet in flight; CONTEXT_STATUS.IDLE reads 1 once that packet's time passed.

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
  sdmaDBG_PACKET_RPTR, sdmaF32_CNTL, sdmaGFX_RB_CNTL, sdmaSTATUS_REG,
  SDMA_RLC_BASE, SDMA_RLC_QUEUES, SDMA_RLC_STRIDE, SDMA0_RLC0_CONTEXT_STATUS__IDLE, SDMA0_RLC0_CONTEXT_STATUS__PACKET_ERROR,
  SDMA0_RLC0_RB_CNTL__RB_VMID, sdmaRLC_CONTEXT_STATUS, sdmaRLC_DOORBELL, sdmaRLC_DOORBELL_OFFSET, sdmaRLC_IB_CNTL, sdmaRLC_RB_BASE,
  sdmaRLC_RB_BASE_HI, sdmaRLC_RB_CNTL, sdmaRLC_RB_RPTR, sdmaRLC_RB_RPTR_ADDR_HI, sdmaRLC_RB_RPTR_ADDR_LO, sdmaRLC_RB_RPTR_HI,
  sdmaRLC_RB_WPTR, sdmaRLC_RB_WPTR_HI, sdmaRLC_RB_WPTR_POLL_ADDR_HI, sdmaRLC_RB_WPTR_POLL_ADDR_LO,
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

/**
 * One queue of the engine: the GFX queue (id -1, registers from sdmaGFX_RB_CNTL) or RLC queue
 * `id` (registers from SDMA_RLC_BASE + SDMA_RLC_STRIDE * id). Both blocks share one layout
 * (sdmaRLC_* offsets from `base`). Pointers are bytes, monotonically increasing.
 */
interface sdma_queue {
  id: number;
  base: number;
  rptr: number;
  wptr: number;
  ib: ib_state | null;
  poll_attempts: number;
  /** When the packet being replayed first stalled on a retry fault (-1: not stalled). */
  stalled_since: number;
  /** The doorbell index the queue answers (its DOORBELL/DOORBELL_OFFSET decoded), or -1. */
  db_match: number;
}

/** Thrown by a translation that stalled on a retry fault; the packet replays later. */
class retry_stall {}

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
  /** RLC queues disabled while enabled (KFD preempting or destroying a user queue). */
  rlc_disables: number;
}

/** cost: done, next packet after `cost` ns; wait: retry this packet later; stall: wait for more dwords. */
type exec_result = { cost: number } | { wait: number } | { error: string } | { stall: true };

/** The translation that ended a copy side's last run: the next run starts with it. */
interface xlate_ahead {
  va: number;
  phys: GpuPhys | null;
  span: number;
}

export class SdmaEngine {
  readonly regs = new Uint32Array(SDMA_STRIDE);
  /** queues[0] is the GFX (kernel) queue, queues[1 + i] RLC queue i. */
  private readonly queues: sdma_queue[];
  /** The queue whose packet is executing (its memory effects done, its time not yet passed). */
  private inflight: sdma_queue | null = null;
  private last_served = 0;
  private running = false;
  private readonly timer: timer_list;
  readonly stats: SdmaStats = { packets: 0, bytes_copied: 0, traps: 0, errors: 0, rlc_disables: 0 };
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
    /** Whether a fault in `vmid` may retry (context and SH_MEM_CONFIG of the VMID). */
    private readonly retry_allowed: (vmid: number) => boolean = () => false,
  ) {
    const q = (id: number, base: number): sdma_queue => ({ id, base, rptr: 0, wptr: 0, ib: null, poll_attempts: 0, stalled_since: -1, db_match: -1 });
    this.queues = [q(-1, sdmaGFX_RB_CNTL), ...Array.from({ length: SDMA_RLC_QUEUES }, (_, i) => q(i, SDMA_RLC_BASE + SDMA_RLC_STRIDE * i))];
    this.timer = new timer_list(() => this.step(), `sdma${instance}`, "hw");
    this.regs[sdmaF32_CNTL] = REG_SET_FIELD(0, SDMA0_F32_CNTL__HALT, 1);
  }

  private reg(q: sdma_queue, r: number): number {
    return this.regs[q.base + r]!;
  }
  private ring_bytes(q: sdma_queue): number {
    return 4 * 2 ** REG_GET_FIELD(this.reg(q, sdmaRLC_RB_CNTL), SDMA0_GFX_RB_CNTL__RB_SIZE);
  }
  private ring_base(q: sdma_queue): number {
    return this.reg(q, sdmaRLC_RB_BASE) * 256 + this.reg(q, sdmaRLC_RB_BASE_HI) * 2 ** 40;
  }
  /** The VMID a queue's ring, write-back and IBs translate in (the GFX ring: VMID 0). */
  private ring_vmid(q: sdma_queue): number {
    return q.id < 0 ? 0 : REG_GET_FIELD(this.reg(q, sdmaRLC_RB_CNTL), SDMA0_RLC0_RB_CNTL__RB_VMID);
  }
  private get halted(): boolean {
    return REG_GET_FIELD(this.regs[sdmaF32_CNTL]!, SDMA0_F32_CNTL__HALT) === 1;
  }
  private enabled(q: sdma_queue): boolean {
    return REG_GET_FIELD(this.reg(q, sdmaRLC_RB_CNTL), SDMA0_GFX_RB_CNTL__RB_ENABLE) === 1;
  }
  get idle(): boolean {
    return !this.running;
  }

  private queue_of(off: number): sdma_queue | null {
    return this.queues.find((q) => off >= q.base && off < q.base + SDMA_RLC_STRIDE && off - q.base <= sdmaRLC_RB_WPTR_POLL_ADDR_HI) ?? null;
  }

  /** An RLC queue is idle when no packet of it is in flight and it has nothing to run. */
  private context_idle(q: sdma_queue): boolean {
    return this.inflight !== q && !(this.runnable(q) && this.running);
  }

  // ---- registers ---------------------------------------------------------------------------

  reg_read(off: number): number {
    if (off === sdmaSTATUS_REG) return REG_SET_FIELD(this.regs[sdmaSTATUS_REG]!, SDMA0_STATUS_REG__IDLE, this.running ? 0 : 1);
    const q = this.queue_of(off);
    if (q) {
      switch (off - q.base) {
        case sdmaRLC_RB_RPTR: return q.rptr % 2 ** 32;
        case sdmaRLC_RB_RPTR_HI: return Math.floor(q.rptr / 2 ** 32);
        case sdmaRLC_RB_WPTR: return q.wptr % 2 ** 32;
        case sdmaRLC_RB_WPTR_HI: return Math.floor(q.wptr / 2 ** 32);
        case sdmaRLC_CONTEXT_STATUS:
          if (q.id < 0) break;
          return REG_SET_FIELD(this.regs[off]!, SDMA0_RLC0_CONTEXT_STATUS__IDLE, this.context_idle(q) ? 1 : 0);
      }
    }
    return off >= 0 && off < SDMA_STRIDE ? this.regs[off]! : 0;
  }

  reg_write(off: number, value: number): void {
    if (off < 0 || off >= SDMA_STRIDE) return;
    if (off === sdmaSTATUS_REG || off === sdmaDBG_PACKET_HEADER || off === sdmaDBG_PACKET_RPTR) return;
    const q = this.queue_of(off);
    if (q) {
      const was_enabled = this.enabled(q);
      switch (off - q.base) {
        case sdmaRLC_RB_RPTR:
          if (!was_enabled) q.rptr = Math.floor(q.rptr / 2 ** 32) * 2 ** 32 + value;
          return;
        case sdmaRLC_RB_RPTR_HI:
          if (!was_enabled) q.rptr = (q.rptr % 2 ** 32) + value * 2 ** 32;
          return;
        case sdmaRLC_RB_WPTR:
          q.wptr = Math.floor(q.wptr / 2 ** 32) * 2 ** 32 + value;
          this.kick();
          return;
        case sdmaRLC_RB_WPTR_HI:
          q.wptr = (q.wptr % 2 ** 32) + value * 2 ** 32;
          return;
        case sdmaRLC_CONTEXT_STATUS:
          if (q.id >= 0) return;
      }
      this.regs[off] = value;
      // The doorbell decode runs on every doorbell write of the device (IH rptr updates too):
      // latch it as a compare when the queue's doorbell registers change.
      if (off - q.base === sdmaRLC_DOORBELL || off - q.base === sdmaRLC_DOORBELL_OFFSET) {
        const on = REG_GET_FIELD(this.reg(q, sdmaRLC_DOORBELL), SDMA0_GFX_DOORBELL__ENABLE);
        q.db_match = on ? REG_GET_FIELD(this.reg(q, sdmaRLC_DOORBELL_OFFSET), SDMA0_GFX_DOORBELL_OFFSET__OFFSET) : -1;
      }
      if (off - q.base === sdmaRLC_RB_CNTL && !was_enabled && this.enabled(q)) {
        // Enabling the ring clears a previous packet error; the queue restarts at rptr.
        this.clear_error(q);
        q.ib = null;
        q.poll_attempts = 0;
        q.stalled_since = -1;
        if (q.id >= 0) this.poll_wptr(q);
      }
      if (off - q.base === sdmaRLC_RB_CNTL && q.id >= 0 && was_enabled && !this.enabled(q)) this.stats.rlc_disables++;
      if (off - q.base === sdmaRLC_RB_CNTL) this.kick();
      return;
    }
    this.regs[off] = value;
    if (off === sdmaF32_CNTL) this.kick();
  }

  /** A doorbell write: if it is one of this engine's queues' doorbells, the value is its new wptr (bytes). */
  doorbell(index: number, lo: number, hi: number): boolean {
    for (const q of this.queues) {
      if (q.db_match !== index) continue;
      q.wptr = lo + hi * 2 ** 32;
      this.kick();
      return true;
    }
    return false;
  }

  /** An enabled RLC queue with a WPTR_POLL address takes its write pointer from memory. */
  private poll_wptr(q: sdma_queue): void {
    const addr = this.reg(q, sdmaRLC_RB_WPTR_POLL_ADDR_LO) + this.reg(q, sdmaRLC_RB_WPTR_POLL_ADDR_HI) * 2 ** 32;
    if (!addr) return;
    try {
      const lo = this.read32(q, this.ring_vmid(q), addr);
      const hi = this.read32(q, this.ring_vmid(q), addr + 4);
      // A pointer behind the read pointer is not a write pointer (e.g. an unmapped default page).
      if (lo + hi * 2 ** 32 >= q.rptr) q.wptr = lo + hi * 2 ** 32;
    } catch (e) {
      // Unmapped: keep the loaded pointer; the next doorbell write brings the queue up to date.
      if (!(e instanceof retry_stall)) throw e;
    }
  }

  private kick(): void {
    if (this.running || !this.queues.some((q) => this.runnable(q))) return;
    this.running = true;
    this.k.timers.add_timer_in(this.timer, this.cost.doorbell_latency_ns);
  }

  private runnable(q: sdma_queue): boolean {
    return !this.halted && this.enabled(q) && !this.stopped_on_error(q) && (q.ib !== null || q.rptr !== q.wptr);
  }

  private stopped_on_error(q: sdma_queue): boolean {
    if (q.id < 0) return REG_GET_FIELD(this.regs[sdmaSTATUS_REG]!, SDMA0_STATUS_REG__PACKET_ERROR) === 1;
    return REG_GET_FIELD(this.reg(q, sdmaRLC_CONTEXT_STATUS), SDMA0_RLC0_CONTEXT_STATUS__PACKET_ERROR) === 1;
  }

  private clear_error(q: sdma_queue): void {
    if (q.id < 0) this.regs[sdmaSTATUS_REG] = 0;
    else this.regs[q.base + sdmaRLC_CONTEXT_STATUS] = 0;
  }

  // ---- the packet loop ------------------------------------------------------------------------

  /** The next queue with work after the last one served (round robin), skipping `stalled`. */
  private pick(stalled: Set<sdma_queue> | null): sdma_queue | null {
    const n = this.queues.length;
    for (let i = 1; i <= n; i++) {
      const idx = (this.last_served + i) % n;
      const q = this.queues[idx]!;
      if (stalled?.has(q) || !this.runnable(q)) continue;
      this.last_served = idx;
      return q;
    }
    return null;
  }

  /** Runs packets until one takes time (then continues from a timer) or every queue is empty. */
  private step(): void {
    this.inflight = null;
    // Queues whose next packet is not complete yet (rare: built only when one is).
    let stalled: Set<sdma_queue> | null = null;
    for (;;) {
      const q = this.pick(stalled);
      if (!q) break;
      let r: exec_result;
      try {
        r = this.exec_one(q);
      } catch (e) {
        if (!(e instanceof retry_stall)) throw e;
        // A retry fault: the packet has not completed; replay it after the retry interval.
        r = { wait: this.cost.retry_interval_ns };
      }
      this.writeback_rptr(q);
      if ("error" in r) {
        this.fail(q, r.error);
        continue;
      }
      if ("stall" in r) {
        (stalled ??= new Set<sdma_queue>()).add(q);
        continue;
      }
      if ("wait" in r) {
        this.k.timers.add_timer_in(this.timer, r.wait);
        return;
      }
      this.stats.packets++;
      q.stalled_since = -1;
      if (r.cost > 0) {
        this.inflight = q;
        this.k.timers.add_timer_in(this.timer, r.cost);
        return;
      }
    }
    this.running = false;
  }

  private writeback_rptr(q: sdma_queue): void {
    if (!REG_GET_FIELD(this.reg(q, sdmaRLC_RB_CNTL), SDMA0_GFX_RB_CNTL__RPTR_WRITEBACK_ENABLE)) return;
    const addr = this.reg(q, sdmaRLC_RB_RPTR_ADDR_LO) + this.reg(q, sdmaRLC_RB_RPTR_ADDR_HI) * 2 ** 32;
    try {
      this.write32(q, this.ring_vmid(q), addr, q.rptr % 2 ** 32);
      this.write32(q, this.ring_vmid(q), addr + 4, Math.floor(q.rptr / 2 ** 32));
    } catch (e) {
      // A write-back that stalls is dropped; the next packet writes the pointer again.
      if (!(e instanceof retry_stall)) throw e;
    }
  }

  /** Dwords available in the current stream from the packet start. */
  private available(q: sdma_queue): number {
    if (q.ib) return q.ib.size_dw - q.ib.pos_dw;
    return (q.wptr - q.rptr) / 4;
  }

  /** Reads `n` dwords of the current packet into the scratch buffer (ring wraps at its end). */
  private fetch(q: sdma_queue, n: number, into: Uint32Array = this.scratch): void {
    const ib = q.ib;
    const vmid = ib ? ib.vmid : this.ring_vmid(q);
    const base = ib ? ib.base + ib.pos_dw * 4 : this.ring_base(q);
    const size = ib ? Infinity : this.ring_bytes(q);
    const start = ib ? 0 : q.rptr;
    // The fetcher translates once per page it reads from, not once per dword.
    let page = -1;
    let phys: GpuPhys | null = null;
    for (let i = 0; i < n; i++) {
      const va = base + ((start + 4 * i) % size);
      const pg = Math.floor(va / 4096);
      if (pg !== page || !phys) {
        const t = this.xlate(q, vmid, va, "read").phys;
        phys = { sys: t.sys, addr: t.addr - (va % 4096) };
        page = pg;
      }
      into[i] = this.mem.read32_at(phys.sys, phys.addr + (va % 4096));
    }
  }

  private advance(q: sdma_queue, n: number): void {
    if (q.ib) {
      q.ib.pos_dw += n;
      if (q.ib.pos_dw >= q.ib.size_dw) q.ib = null;
    } else {
      q.rptr += 4 * n;
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

  private exec_one(q: sdma_queue): exec_result {
    if (this.available(q) < 1) return { stall: true };
    this.fetch(q, 1);
    const h = this.scratch[0]!;
    this.regs[sdmaDBG_PACKET_HEADER] = h;
    this.regs[sdmaDBG_PACKET_RPTR] = (q.ib ? q.ib.pos_dw * 4 : q.rptr % this.ring_bytes(q)) >>> 0;
    const len = this.packet_len(h);
    if (len === 0) return { error: `unknown packet` };
    if (this.available(q) < len) {
      if (q.ib) return { error: `packet of ${len} dwords runs past the end of the IB` };
      return { stall: true }; // the rest of the packet is not committed yet
    }
    const d = this.scratch;
    this.fetch(q, Math.min(len, d.length));
    // GFX queue: VMID 0 unless in an IB; an RLC queue's packets all run in its VMID.
    const vmid = q.ib?.vmid ?? this.ring_vmid(q);
    switch (SDMA_GET_OP(h)) {
      case SDMA_OP_NOP:
        this.advance(q, len);
        return { cost: 0 };
      case SDMA_OP_COPY: return this.op_copy(q, vmid, len);
      case SDMA_OP_WRITE: return this.op_write(q, vmid);
      case SDMA_OP_CONST_FILL: return this.op_fill(q, vmid, len);
      case SDMA_OP_FENCE:
        this.write32(q, vmid, d[1]! + d[2]! * 2 ** 32, d[3]!);
        this.advance(q, len);
        return { cost: this.cost.sdma_packet_ns };
      case SDMA_OP_TRAP:
        this.advance(q, len);
        if (REG_GET_FIELD(this.regs[sdmaCNTL]!, SDMA0_CNTL__TRAP_ENABLE)) {
          this.stats.traps++;
          // The IH stamps the PASID of an RLC queue's VMID, so KFD finds the process.
          this.ih.post({ client_id: this.client_id, src_id: SDMA0_4_0__SRCID__SDMA_TRAP, ring_id: this.ring_id(q), vmid: q.id < 0 ? 0 : vmid, src_data: [d[1]! & 0x0fffffff] });
        }
        return { cost: 0 };
      case SDMA_OP_POLL_REGMEM: return this.op_poll(q, vmid, len);
      case SDMA_OP_SRBM_WRITE:
        // Register writes are privileged: only the kernel queue may make them.
        if (q.id >= 0) return { error: "SRBM_WRITE on a user queue" };
        this.srbm.reg_write(d[1]! & 0x3ffff, d[2]!);
        this.advance(q, len);
        return { cost: this.cost.sdma_packet_ns };
      case SDMA_OP_INDIRECT: return this.op_indirect(q, len);
      default: return { error: "unknown packet" };
    }
  }

  // The ops below make their memory effects before moving the read pointer: a retry stall
  // (thrown from xlate) replays the whole packet, and replaying a copy, fill or write is harmless.

  private op_copy(q: sdma_queue, vmid: number, len: number): exec_result {
    const d = this.scratch;
    if (d[1]! > 0x3fffff) return { error: `COPY_LINEAR count 0x${d[1]!.toString(16)} exceeds the 22-bit field (4 MiB)` };
    const bytes = d[1]! + 1;
    const src = d[3]! + d[4]! * 2 ** 32;
    const dst = d[5]! + d[6]! * 2 ** 32;
    // Translate each side only when its current physically contiguous run is used up.
    let done = 0;
    const s_ahead: xlate_ahead = { va: -1, phys: null, span: 0 };
    const t_ahead: xlate_ahead = { va: -1, phys: null, span: 0 };
    let s = this.xlate_run(q, vmid, src, "read", bytes, s_ahead);
    let t = this.xlate_run(q, vmid, dst, "write", bytes, t_ahead);
    let s_used = 0;
    let t_used = 0;
    while (done < bytes) {
      if (s_used === s.span) {
        s = this.xlate_run(q, vmid, src + done, "read", bytes - done, s_ahead);
        s_used = 0;
      }
      if (t_used === t.span) {
        t = this.xlate_run(q, vmid, dst + done, "write", bytes - done, t_ahead);
        t_used = 0;
      }
      const n = Math.min(bytes - done, s.span - s_used, t.span - t_used);
      this.mem.copy_at(t.phys, t_used, s.phys, s_used, n);
      s_used += n;
      t_used += n;
      done += n;
    }
    this.advance(q, len);
    this.stats.bytes_copied += bytes;
    return { cost: this.cost.sdma_packet_ns + bytes / this.cost.sdma_bytes_per_ns };
  }

  private op_write(q: sdma_queue, vmid: number): exec_result {
    const d = this.scratch;
    const dst = d[1]! + d[2]! * 2 ** 32;
    const count = d[3]! + 1;
    if (this.available(q) < 4 + count) {
      return q.ib ? { error: `WRITE_LINEAR of ${count} dwords runs past the end of the IB` } : { stall: true };
    }
    const data = new Uint32Array(4 + count);
    this.fetch(q, 4 + count, data);
    for (let i = 0; i < count; i++) this.write32(q, vmid, dst + 4 * i, data[4 + i]!);
    this.advance(q, 4 + count);
    return { cost: this.cost.sdma_packet_ns + (4 * count) / this.cost.sdma_bytes_per_ns };
  }

  private op_fill(q: sdma_queue, vmid: number, len: number): exec_result {
    const d = this.scratch;
    if (d[4]! > 0x3fffff) return { error: `CONST_FILL count 0x${d[4]!.toString(16)} exceeds the 22-bit field (4 MiB)` };
    const bytes = d[4]! + 1;
    const dst = d[1]! + d[2]! * 2 ** 32;
    // The data dword repeats over the span (amdgpu leaves FILLSIZE 0 and passes dword data).
    const value = d[3]!;
    let done = 0;
    while (done < bytes) {
      const t = this.xlate(q, vmid, dst + done, "write");
      const n = Math.min(bytes - done, t.span);
      this.mem.fill32(t.phys, value >>> 0, n);
      done += n;
    }
    this.advance(q, len);
    return { cost: this.cost.sdma_packet_ns + bytes / this.cost.sdma_bytes_per_ns };
  }

  private op_poll(q: sdma_queue, vmid: number, len: number): exec_result {
    const d = this.scratch;
    const h = d[0]!;
    const hdp_flush = (h >>> 26) & 1;
    const func = (h >>> 28) & 7;
    const mem_poll = h >>> 31;
    if (!hdp_flush && !mem_poll && q.id >= 0) return { error: "register POLL_REGMEM on a user queue" };
    // Register polls carry the register's byte address (dword offset << 2).
    const value = hdp_flush ? d[3]! : mem_poll ? this.read32(q, vmid, d[1]! + d[2]! * 2 ** 32) : this.srbm.reg_read((d[1]! >>> 2) & 0x3ffff);
    const masked = (value & d[4]!) >>> 0;
    const ref = d[3]! >>> 0;
    const ok = [true, masked < ref, masked <= ref, masked === ref, masked !== ref, masked >= ref, masked > ref, false][func]!;
    const retries = (d[5]! >>> 16) & 0xfff;
    if (ok || (retries !== 0xfff && q.poll_attempts >= retries)) {
      q.poll_attempts = 0;
      this.advance(q, len);
      return { cost: this.cost.sdma_packet_ns };
    }
    q.poll_attempts++;
    return { wait: Math.max(1, d[5]! & 0xffff) * POLL_INTERVAL_NS };
  }

  private op_indirect(q: sdma_queue, len: number): exec_result {
    const d = this.scratch;
    if (q.ib) return { error: "INDIRECT inside an indirect buffer" };
    if (!REG_GET_FIELD(this.reg(q, sdmaRLC_IB_CNTL), SDMA0_GFX_IB_CNTL__IB_ENABLE)) return { error: "INDIRECT with IB_CNTL.IB_ENABLE clear" };
    const base = d[1]! + d[2]! * 2 ** 32;
    if (base % 32) return { error: `INDIRECT buffer address 0x${base.toString(16)} not 32-byte aligned` };
    this.advance(q, len);
    // A user queue's IBs run in the queue's VMID whatever the packet says.
    const vmid = q.id < 0 ? SDMA_PKT_INDIRECT_GET_VMID(d[0]!) : this.ring_vmid(q);
    if (d[3]! > 0) q.ib = { base, size_dw: d[3]!, vmid, pos_dw: 0 };
    return { cost: this.cost.sdma_packet_ns };
  }

  /**
   * Stops a queue on a bad packet and reports it (latched header, IV with header and position).
   * The GFX queue's error is STATUS_REG.PACKET_ERROR, an RLC queue's its CONTEXT_STATUS bit.
   */
  private fail(q: sdma_queue, why: string): void {
    const h = this.regs[sdmaDBG_PACKET_HEADER]!;
    this.stats.errors++;
    const where = q.id < 0 ? "" : ` rlc${q.id}`;
    this.last_error = `sdma${this.instance}${where}: ${why}: header 0x${h.toString(16).padStart(8, "0")} at ${q.ib ? "IB" : "ring"} offset 0x${this.regs[sdmaDBG_PACKET_RPTR]!.toString(16)}`;
    if (q.id < 0) this.regs[sdmaSTATUS_REG] = REG_SET_FIELD(this.regs[sdmaSTATUS_REG]!, SDMA0_STATUS_REG__PACKET_ERROR, 1);
    else this.regs[q.base + sdmaRLC_CONTEXT_STATUS] = REG_SET_FIELD(0, SDMA0_RLC0_CONTEXT_STATUS__PACKET_ERROR, 1);
    this.ih.post({
      client_id: this.client_id, src_id: SDMA0_4_0__SRCID__SDMA_SRBMWRITE, ring_id: this.ring_id(q), vmid: q.id < 0 ? 0 : this.ring_vmid(q),
      src_data: [h, this.regs[sdmaDBG_PACKET_RPTR]!, q.ib ? 1 : 0, 0],
    });
  }

  /** The IV ring_id of a queue: 0 for the GFX queue, 2 + q for RLC queue q (kemu's numbering). */
  private ring_id(q: sdma_queue): number {
    return q.id < 0 ? 0 : 2 + q.id;
  }

  // ---- memory through the hub -----------------------------------------------------------------

  /**
   * Kernel-queue requests never retry; a user queue's retry when its VMID allows it, until the
   * packet has stalled for `retry_timeout_ns` (then the fault turns no-retry, as for the CP).
   */
  private xlate(q: sdma_queue, vmid: number, va: number, access: GpuAccess): { phys: GpuPhys; span: number } {
    const now = this.k.ktime_get();
    const timed_out = q.stalled_since >= 0 && now - q.stalled_since >= this.cost.retry_timeout_ns;
    const can_retry = q.id >= 0 && !timed_out && this.retry_allowed(vmid);
    const r: XlateResult = this.hub.translate({ vmid, va, access, cid: this.utcl2_cid, can_retry });
    if (r.kind === "retry") {
      if (q.stalled_since < 0) q.stalled_since = now;
      throw new retry_stall();
    }
    if (r.kind === "fault") this.regs[sdmaSTATUS_REG] = REG_SET_FIELD(this.regs[sdmaSTATUS_REG]!, SDMA0_STATUS_REG__PAGE_FAULT, 1);
    return r;
  }

  /**
   * Translates `va` and the pages after it while they stay physically contiguous (up to `want`
   * bytes), so a copy moves each run with one memory operation. Every page is translated once:
   * the page that ended a run is kept in `ahead` and starts the next one.
   */
  private xlate_run(q: sdma_queue, vmid: number, va: number, access: GpuAccess, want: number, ahead: xlate_ahead): { phys: GpuPhys; span: number } {
    const first = ahead.va === va && ahead.phys ? { phys: ahead.phys, span: ahead.span } : this.xlate(q, vmid, va, access);
    ahead.va = -1;
    let span = first.span;
    while (span < want) {
      const next = this.xlate(q, vmid, va + span, access);
      if (next.phys.sys !== first.phys.sys || next.phys.addr !== first.phys.addr + span) {
        ahead.va = va + span;
        ahead.phys = next.phys;
        ahead.span = next.span;
        break;
      }
      span += next.span;
    }
    return span === first.span ? first : { phys: first.phys, span };
  }

  private read32(q: sdma_queue, vmid: number, va: number): number {
    return this.mem.read32(this.xlate(q, vmid, va, "read").phys);
  }

  private write32(q: sdma_queue, vmid: number, va: number, value: number): void {
    this.mem.write32(this.xlate(q, vmid, va, "write").phys, value);
  }
}

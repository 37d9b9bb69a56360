// kemu hardware: the compute command processor (MEC1) and a shader engine (not a kernel file).
// 4 pipes x 8 hardware queue descriptors (HQDs), programmed through the banked CP_HQD_*
// registers (GRBM_GFX_CNTL selects ME/pipe/queue) as the kernel's hqd_load does. An active HQD
// fetches 64-byte AQL packets from its ring at the read index, up to the write index its
// doorbell carries (or, right after the queue is loaded, that its WPTR poll address holds), and
// runs KERNEL_DISPATCH packets as one wave per workgroup executing kemu's
// ISA (hw/amdgpu/isa.ts, docs/gpu-isa.md). BARRIER_AND packets wait for their signals. When a
// dispatch ends the CP decrements the completion signal and, if the signal has an event mailbox,
// writes the event id there and raises a CP end-of-pipe IV. Every access — packet fetch,
// instruction fetch, loads, stores, atomics, copies, signal updates — goes through the GFXHUB
// (UTCL2) in the queue's VMID: a retry fault stalls the queue and replays the access after the
// retry interval or when the VMID's TLB is invalidated; a no-retry fault goes to the default page.
//
// CP_HQD_DEQUEUE_REQUEST takes the driver's dequeue type. RESET_WAVES discards the wave and
// dispatch in flight. SAVE_WAVES writes them (dispatch progress, the wave's pc, scalar registers,
// partial copy progress and retry-stall state) into the queue's context save area through its
// VMID, and the next activation restores them and carries on mid-dispatch (kemu's save layout:
// docs/amdgpu.md, "Queue preemption"). DRAIN_PIPE stops launching workgroups, lets the wave in
// flight finish and keeps the workgroup the dispatch resumes from in COMPUTE_RESTART_X. A queue
// without a save area that is asked to save drains instead.

import type { Kernel } from "../../kernel/kernel.ts";
import { timer_list } from "../../kernel/time/timer.ts";
import type { GpuCostModel } from "./cost_model.ts";
import type { IhBlock } from "./ih.ts";
import type { GpuAccess, VmHub, XlateRequest } from "./gmc.ts";
import type { GpuMemBus, GpuPhys } from "./mem.ts";
import {
  AMD_SIGNAL_VALUE, AQL_PACKET_BYTES, HSA_PACKET_TYPE_BARRIER_AND,
  HSA_PACKET_TYPE_KERNEL_DISPATCH, INSTR_BYTES, NUM_SREGS, Op, SREG_GRID_SIZE, SREG_KERNARG, SREG_WORKGROUP_ID,
  SREG_WORKGROUP_SIZE, op_name,
} from "./isa.ts";
import {
  CP_HQD_ACTIVE__ACTIVE, CP_HQD_PQ_CONTROL__QUEUE_SIZE, CP_HQD_PQ_DOORBELL_CONTROL__DOORBELL_EN,
  CP_HQD_PQ_DOORBELL_CONTROL__DOORBELL_OFFSET, CP_MEC_CNTL__MEC_ME1_HALT, MEC_NUM_PIPES, MEC_QUEUES_PER_PIPE,
  REG_GET_FIELD, SH_MEM_CONFIG__RETRY_DISABLE, mmCP_HQD_ACTIVE, mmCP_HQD_DEQUEUE_REQUEST, mmCP_HQD_PQ_BASE,
  mmCP_HQD_PQ_BASE_HI, mmCP_HQD_PQ_CONTROL, mmCP_HQD_PQ_DOORBELL_CONTROL, mmCP_HQD_PQ_RPTR,
  mmCP_HQD_PQ_RPTR_REPORT_ADDR, mmCP_HQD_PQ_RPTR_REPORT_ADDR_HI, mmCP_HQD_PQ_WPTR_HI, mmCP_HQD_PQ_WPTR_LO,
  mmCP_HQD_PQ_WPTR_POLL_ADDR, mmCP_HQD_PQ_WPTR_POLL_ADDR_HI,
  mmCP_HQD_STATUS0, mmCP_HQD_VMID, mmCP_MEC_CNTL, mmSH_MEM_BASES, mmSH_MEM_CONFIG,
  CP_HQD_PERSISTENT_STATE__QSWITCH_MODE, DRAIN_PIPE, NO_ACTION, RESET_WAVES, SAVE_WAVES, mmCOMPUTE_RESTART_X,
  mmCP_HQD_CNTL_STACK_OFFSET, mmCP_HQD_CNTL_STACK_SIZE, mmCP_HQD_CTX_SAVE_BASE_ADDR_HI, mmCP_HQD_CTX_SAVE_BASE_ADDR_LO,
  mmCP_HQD_CTX_SAVE_SIZE, mmCP_HQD_PERSISTENT_STATE, mmCP_HQD_WG_STATE_OFFSET,
} from "../../drivers/gpu/drm/amd/include/asic_reg/kemu_gpu_regs.ts";
import { SOC15_IH_CLIENTID_GRBM_CP, SOC15_IH_CLIENTID_SE0SH } from "../../drivers/gpu/drm/amd/include/soc15_ih_clientid.ts";
import { GFX_9_0__SRCID__CP_EOP_INTERRUPT, GFX_9_0__SRCID__SQ_INTERRUPT_ID } from "../../drivers/gpu/drm/amd/include/ivsrcid/ivsrcid.ts";

/** UTCL2 client ids in the fault status (gfxhub client table of docs/amdgpu.md). */
export const CID_CPF = 0x4;
export const CID_CPC = 0x5;
export const CID_TCP = 0x8;
export const CID_SQC_INST = 0x9;

/** Instructions whose result lands in s[d]: values must stay integers in [0, 2^53). */
const WRITES_D = new Set<number>([Op.S_MOV_B64, Op.S_MOV, Op.S_ADD, Op.S_ADDI, Op.S_SUB, Op.S_MUL, Op.S_MULI,
  Op.GLOBAL_LOAD_DWORD, Op.GLOBAL_LOAD_DWORDX2, Op.GLOBAL_ATOMIC_ADD]);

/** Longest stretch of virtual time a queue runs before yielding to other hardware events. */
const QUANTUM_NS = 10_000;
const HQD_REGS = 0x20;
const HQD_REG_BASE = mmCP_HQD_ACTIVE;

/** kemu's context save layout, version 1 (docs/amdgpu.md): "KCWS" opens the control-stack record. */
export const CTX_SAVE_MAGIC = 0x5357434b;
export const CTX_SAVE_VERSION = 1;
/** The control-stack record (the dispatch), pushed just below the top of the control stack. */
export const CTX_CTL_BYTES = 64;
/** The wave record at the start of the workgroup state: header words, then the scalar registers. */
export const CTX_WAVE_BYTES = 32 + NUM_SREGS * 8;
/** Control-stack record flag: a wave record was saved with the dispatch. */
export const CTX_FLAG_WAVE = 1;
const ACCESS_CODE: readonly GpuAccess[] = ["read", "write", "exec"];

/** GRBM_GFX_CNTL selection for the banked registers. */
export interface GrbmSelect {
  me: number;
  pipe: number;
  queue: number;
  vmid: number;
}

interface dispatch_state {
  header: number;
  wg_size: number;
  grid: number;
  kernel_object: number;
  kernarg: number;
  signal: number;
  n_wg: number;
  next_wg: number;
}

interface wave_state {
  pc: number;
  s: Float64Array;
  wg_id: number;
  /** Bytes of the current BUFFER_COPY/FILL already done (survives a stall). */
  partial: number;
}

type step = { cost: number } | { stall: true } | { error: string };
const STALL: step = Object.freeze({ stall: true });

export interface HqdStats {
  dispatches: number;
  waves: number;
  instructions: number;
  retry_stalls: number;
  /** Dequeues that saved a dispatch in flight to the save area, and activations that restored one. */
  ctx_saves: number;
  ctx_restores: number;
  /** Dequeues that drained a dispatch in flight (its remainder kept in COMPUTE_RESTART_X). */
  drains: number;
}

export class Hqd {
  readonly regs = new Uint32Array(HQD_REGS);
  /** Read and write indices in AQL packets. */
  rptr = 0;
  wptr = 0;
  private dispatch: dispatch_state | null = null;
  private wave: wave_state | null = null;
  private running = false;
  /** Set on activation: fetch the write index once from the WPTR poll address. */
  private poll_wptr = false;
  private stalled_since = -1;
  private stalled_page = -1;
  private stalled_access: GpuAccess = "read";
  private force_noretry = false;
  /** DRAIN_PIPE in progress: no new workgroups; the queue goes inactive when the wave ends. */
  private draining = false;
  /** Activated with a saved context in its save area: restore it before anything else. */
  private restore_pending = false;
  /** Set when the queue stopped on an error (illegal instruction, bad packet, context save/restore fault). */
  error = "";
  readonly stats: HqdStats = { dispatches: 0, waves: 0, instructions: 0, retry_stalls: 0, ctx_saves: 0, ctx_restores: 0, drains: 0 };
  private readonly timer: timer_list;
  private readonly pkt = new Uint32Array(AQL_PACKET_BYTES / 4);
  private readonly ins = new Uint32Array(INSTR_BYTES / 4);
  private readonly tmp = new Uint8Array(8);
  private readonly ins_bytes = new Uint8Array(this.ins.buffer);
  private readonly tmp_dv = new DataView(this.tmp.buffer);
  /** The UTCL2 request of the access being translated (the hub reads it and keeps nothing). */
  private readonly req: XlateRequest = { vmid: 0, va: 0, access: "read", cid: 0, can_retry: false, atomic: false };

  constructor(
    readonly pipe: number,
    readonly queue: number,
    private readonly cp: CpBlock,
  ) {
    this.timer = new timer_list(() => this.run(), `cp_hqd${pipe}.${queue}`, "hw");
  }

  reg(r: number): number {
    return this.regs[r - HQD_REG_BASE]!;
  }

  get active(): boolean {
    return REG_GET_FIELD(this.reg(mmCP_HQD_ACTIVE), CP_HQD_ACTIVE__ACTIVE) === 1;
  }
  get vmid(): number {
    return this.reg(mmCP_HQD_VMID) & 0xf;
  }
  get stalled(): boolean {
    return this.stalled_since >= 0;
  }
  private get base(): number {
    return this.reg(mmCP_HQD_PQ_BASE) * 256 + this.reg(mmCP_HQD_PQ_BASE_HI) * 2 ** 40;
  }
  private get n_packets(): number {
    return (4 * 2 ** (REG_GET_FIELD(this.reg(mmCP_HQD_PQ_CONTROL), CP_HQD_PQ_CONTROL__QUEUE_SIZE) + 1)) / AQL_PACKET_BYTES;
  }
  get doorbell_index(): number {
    const c = this.reg(mmCP_HQD_PQ_DOORBELL_CONTROL);
    return REG_GET_FIELD(c, CP_HQD_PQ_DOORBELL_CONTROL__DOORBELL_EN) ? REG_GET_FIELD(c, CP_HQD_PQ_DOORBELL_CONTROL__DOORBELL_OFFSET) : -1;
  }

  read_reg(r: number): number {
    if (r === mmCP_HQD_PQ_RPTR) return this.rptr % 2 ** 32;
    if (r === mmCP_HQD_PQ_WPTR_LO) return this.wptr % 2 ** 32;
    if (r === mmCP_HQD_PQ_WPTR_HI) return Math.floor(this.wptr / 2 ** 32);
    if (r === mmCP_HQD_STATUS0) return (this.stalled ? 1 : 0) | (this.error ? 2 : 0);
    return this.reg(r);
  }

  /** The doorbell index this HQD answers (active queues with doorbells on), else -1. */
  db_match = -1;

  write_reg(r: number, v: number): void {
    this.write_reg_raw(r, v);
    // Doorbell decode runs on every doorbell write of the device: keep it a compare.
    this.db_match = this.active ? this.doorbell_index : -1;
  }

  private write_reg_raw(r: number, v: number): void {
    const was = this.active;
    if (r === mmCP_HQD_DEQUEUE_REQUEST) {
      this.dequeue(v);
      return;
    }
    if (r === mmCP_HQD_STATUS0) return;
    if (r === mmCP_HQD_PQ_RPTR) {
      if (!was) this.rptr = v;
      return;
    }
    if (r === mmCP_HQD_PQ_WPTR_LO) this.wptr = Math.floor(this.wptr / 2 ** 32) * 2 ** 32 + v;
    if (r === mmCP_HQD_PQ_WPTR_HI) this.wptr = (this.wptr % 2 ** 32) + v * 2 ** 32;
    this.regs[r - HQD_REG_BASE] = v;
    if (r === mmCP_HQD_ACTIVE && !was && this.active) {
      // Nothing on the pipe belongs to the queue loaded now: it starts at its read index, or
      // inside the dispatch its own save area holds.
      this.discard();
      this.error = "";
      this.restore_pending = this.has_saved_context();
      this.poll_wptr = this.wptr_poll_addr !== 0;
      this.kick(0);
    }
  }

  /** Forgets the wave and dispatch in flight and any retry stall. */
  private discard(): void {
    this.wave = null;
    this.dispatch = null;
    this.draining = false;
    this.stalled_since = -1;
    this.stalled_page = -1;
    this.force_noretry = false;
  }

  private deactivate(): void {
    this.regs[mmCP_HQD_ACTIVE - HQD_REG_BASE] = 0;
    this.db_match = -1;
  }

  /**
   * CP_HQD_DEQUEUE_REQUEST. A queue with nothing in flight (or stopped on an error, or whose
   * saved context was not restored yet) goes inactive at once, whatever the type.
   */
  private dequeue(type: number): void {
    if (!this.active || type === NO_ACTION) return;
    if (type === RESET_WAVES) {
      this.discard();
      this.reset_ctx_stack();
      this.reg_set(mmCOMPUTE_RESTART_X, 0);
      this.deactivate();
    } else if (this.error || this.restore_pending || (!this.wave && !this.dispatch)) {
      this.deactivate();
    } else if (type === SAVE_WAVES && this.save_area_fits()) {
      this.save_context();
    } else if (type === SAVE_WAVES || type === DRAIN_PIPE) {
      this.draining = true;
      this.kick(0);
    }
  }

  /** The end of a drain: the dispatch's undispatched workgroups wait in COMPUTE_RESTART_X. */
  private finish_drain(): step {
    if (this.dispatch) {
      this.reg_set(mmCOMPUTE_RESTART_X, this.dispatch.next_wg);
      this.stats.drains++;
    }
    this.discard();
    this.deactivate();
    return { cost: -1 };
  }

  doorbell(lo: number, hi: number): void {
    this.wptr = lo + hi * 2 ** 32;
    this.kick(this.cp.cost.doorbell_latency_ns);
  }

  kick(delay: number): void {
    if (this.running) return;
    this.running = true;
    this.cp.k.timers.add_timer_in(this.timer, delay);
  }

  /** The VMID was invalidated: a stalled access replays now. */
  replay_now(): void {
    if (this.stalled && this.running) this.cp.k.timers.mod_timer(this.timer, this.cp.k.ktime_get());
  }

  // ---- the queue loop ------------------------------------------------------------------------

  private run(): void {
    let spent = 0;
    while (spent < QUANTUM_NS) {
      if (!this.active || this.cp.halted() || this.error) break;
      const r = this.step();
      if ("error" in r) {
        this.fail(r.error);
        break;
      }
      if ("stall" in r) {
        this.cp.k.timers.add_timer_in(this.timer, spent + this.cp.cost.retry_interval_ns);
        return;
      }
      if (r.cost < 0) break; // idle
      spent += r.cost;
    }
    if (spent >= QUANTUM_NS && this.active && !this.error) {
      this.cp.k.timers.add_timer_in(this.timer, spent);
      return;
    }
    this.running = false;
  }

  private get wptr_poll_addr(): number {
    return this.reg(mmCP_HQD_PQ_WPTR_POLL_ADDR) + this.reg(mmCP_HQD_PQ_WPTR_POLL_ADDR_HI) * 2 ** 32;
  }

  /**
   * The one-shot WPTR poll of a (re)loaded queue: writes made while it was unloaded rang no
   * doorbell, so the CP reads the user's 64-bit write index from memory before fetching.
   */
  private poll_write_index(): step {
    if (!this.read(this.wptr_poll_addr, this.tmp, CID_CPF, "read")) return STALL;
    const dv = this.tmp_dv;
    this.wptr = Math.max(this.wptr, dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32);
    this.poll_wptr = false;
    return { cost: this.cp.cost.shader_instruction_ns };
  }

  /** One unit of work; cost -1 means nothing to do. */
  private step(): step {
    if (this.restore_pending) return this.restore_context();
    if (this.poll_wptr) return this.poll_write_index();
    if (this.draining && !this.wave) return this.finish_drain();
    if (this.wave) return this.wave_step(this.wave);
    if (this.dispatch) return this.dispatch_step(this.dispatch);
    if (this.rptr >= this.wptr) return { cost: -1 };
    return this.fetch_packet();
  }

  private fetch_packet(): step {
    const addr = this.base + (this.rptr % this.n_packets) * AQL_PACKET_BYTES;
    const bytes = new Uint8Array(this.pkt.buffer);
    if (!this.read(addr, bytes, CID_CPF, "read")) return STALL;
    const p = this.pkt;
    const type = p[0]! & 0xff;
    if (type === HSA_PACKET_TYPE_BARRIER_AND) return this.barrier(p);
    if (type !== HSA_PACKET_TYPE_KERNEL_DISPATCH) return { error: `AQL packet type ${type} at read index ${this.rptr} is not executable` };
    const wg_size = (p[1]! & 0xffff) || 1;
    const grid = p[3]!;
    // A drained dispatch resumes at its restart workgroup; the restart point is used up.
    const restart = this.reg(mmCOMPUTE_RESTART_X);
    this.reg_set(mmCOMPUTE_RESTART_X, 0);
    const n_wg = Math.ceil(grid / wg_size);
    this.dispatch = {
      header: p[0]!, wg_size, grid,
      kernel_object: p[8]! + p[9]! * 2 ** 32,
      kernarg: p[10]! + p[11]! * 2 ** 32,
      signal: p[14]! + p[15]! * 2 ** 32,
      n_wg, next_wg: Math.min(restart, n_wg),
    };
    if (!restart) this.stats.dispatches++;
    return { cost: this.cp.cost.shader_instruction_ns };
  }

  /** BARRIER_AND: waits until each of its (up to five) dependency signals reads zero. */
  private barrier(p: Uint32Array): step {
    for (let i = 0; i < 5; i++) {
      const sig = p[2 + 2 * i]! + p[3 + 2 * i]! * 2 ** 32;
      if (!sig) continue;
      if (!this.read(sig + AMD_SIGNAL_VALUE, this.tmp, CID_CPC, "read")) return STALL;
      const dv = this.tmp_dv;
      if (dv.getUint32(0, true) !== 0 || dv.getUint32(4, true) !== 0) return { cost: this.cp.cost.retry_interval_ns };
    }
    const sig = p[14]! + p[15]! * 2 ** 32;
    if (sig && !this.signal_decrement(sig)) return STALL;
    this.packet_done();
    return { cost: this.cp.cost.shader_instruction_ns };
  }

  private dispatch_step(d: dispatch_state): step {
    if (d.next_wg < d.n_wg) {
      const s = new Float64Array(NUM_SREGS);
      s[SREG_WORKGROUP_ID] = d.next_wg;
      s[SREG_KERNARG] = d.kernarg;
      s[SREG_GRID_SIZE] = d.grid;
      s[SREG_WORKGROUP_SIZE] = d.wg_size;
      this.wave = { pc: d.kernel_object, s, wg_id: d.next_wg, partial: 0 };
      d.next_wg++;
      this.stats.waves++;
      return { cost: 0 };
    }
    if (d.signal && !this.signal_decrement(d.signal)) return STALL;
    this.dispatch = null;
    this.packet_done();
    return { cost: this.cp.cost.shader_instruction_ns };
  }

  /** The packet is consumed: the read index moves and is reported to memory. */
  private packet_done(): void {
    this.rptr++;
    const rep = this.reg(mmCP_HQD_PQ_RPTR_REPORT_ADDR) + this.reg(mmCP_HQD_PQ_RPTR_REPORT_ADDR_HI) * 2 ** 32;
    if (rep) {
      const dv = this.tmp_dv;
      dv.setUint32(0, this.rptr % 2 ** 32, true);
      dv.setUint32(4, Math.floor(this.rptr / 2 ** 32), true);
      this.write(rep, this.tmp, CID_CPC);
    }
  }

  /** Decrements the signal's 64-bit value; with an event mailbox, posts the event. */
  private signal_decrement(sig: number): boolean {
    const buf = new Uint8Array(24);
    if (!this.read(sig + AMD_SIGNAL_VALUE, buf, CID_CPC, "write")) return false;
    const dv = new DataView(buf.buffer);
    const mailbox = dv.getUint32(8, true) + dv.getUint32(12, true) * 2 ** 32;
    // The mailbox must translate before the value changes: a stall replays the whole update.
    if (mailbox && !this.xlate(mailbox, "write", CID_CPC)) return false;
    const value = dv.getUint32(0, true) + dv.getInt32(4, true) * 2 ** 32 - 1;
    dv.setUint32(0, ((value % 2 ** 32) + 2 ** 32) % 2 ** 32, true);
    dv.setInt32(4, Math.floor(value / 2 ** 32), true);
    if (!this.write(sig + AMD_SIGNAL_VALUE, buf.subarray(0, 8), CID_CPC)) return false;
    if (mailbox) {
      const event_id = dv.getUint32(16, true);
      const w = new Uint8Array(4);
      new DataView(w.buffer).setUint32(0, event_id, true);
      if (!this.write(mailbox, w, CID_CPC)) return false;
      this.cp.ih.post({
        client_id: SOC15_IH_CLIENTID_GRBM_CP, src_id: GFX_9_0__SRCID__CP_EOP_INTERRUPT,
        ring_id: (this.queue << 4) | (1 << 2) | this.pipe, vmid: this.vmid, src_data: [event_id & 0x0fffffff],
      });
    }
    return true;
  }

  // ---- waves ----------------------------------------------------------------------------------

  private wave_step(w: wave_state): step {
    if (!this.read(w.pc, this.ins_bytes, CID_SQC_INST, "exec")) return STALL;
    const dw0 = this.ins[0]!;
    const op = dw0 & 0xff;
    const d = (dw0 >>> 8) & 0xf;
    const a = (dw0 >>> 16) & 0xf;
    const b = (dw0 >>> 24) & 0xf;
    const imm = this.ins[2]! + this.ins[3]! * 2 ** 32;
    const simm = this.ins[2]! | 0;
    const s = w.s;
    const c = this.cp.cost.shader_instruction_ns;
    let next = w.pc + INSTR_BYTES;
    let cost = c;
    switch (op) {
      case Op.S_ENDPGM:
        this.wave = null;
        this.stats.instructions++;
        return { cost: c };
      case Op.S_MOV_B64: s[d] = imm; break;
      case Op.S_MOV: s[d] = s[a]!; break;
      case Op.S_ADD: s[d] = s[a]! + s[b]!; break;
      case Op.S_ADDI: s[d] = s[a]! + simm; break;
      case Op.S_SUB: s[d] = s[a]! - s[b]!; break;
      case Op.S_MUL: s[d] = s[a]! * s[b]!; break;
      case Op.S_MULI: s[d] = s[a]! * simm; break;
      case Op.GLOBAL_LOAD_DWORD:
      case Op.GLOBAL_LOAD_DWORDX2: {
        const n = op === Op.GLOBAL_LOAD_DWORD ? 4 : 8;
        const t = this.tmp.subarray(0, n);
        if (!this.read(s[a]! + simm, t, CID_TCP, "read")) return STALL;
        const dv = this.tmp_dv;
        s[d] = n === 4 ? dv.getUint32(0, true) : dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
        break;
      }
      case Op.GLOBAL_STORE_DWORD:
      case Op.GLOBAL_STORE_DWORDX2: {
        const n = op === Op.GLOBAL_STORE_DWORD ? 4 : 8;
        const dv = this.tmp_dv;
        dv.setUint32(0, s[b]! % 2 ** 32, true);
        dv.setUint32(4, Math.floor(s[b]! / 2 ** 32) % 2 ** 32, true);
        if (!this.write(s[a]! + simm, this.tmp.subarray(0, n), CID_TCP)) return STALL;
        break;
      }
      case Op.GLOBAL_ATOMIC_ADD: {
        const va = s[a]! + simm;
        const t = this.xlate(va, "write", CID_TCP, true);
        if (!t) return STALL;
        const old = this.cp.mem.read32(t.phys);
        this.cp.mem.write32(t.phys, (old + s[b]!) % 2 ** 32);
        s[d] = old;
        break;
      }
      case Op.BUFFER_COPY:
      case Op.BUFFER_FILL: {
        const r = op === Op.BUFFER_COPY ? this.bulk_copy(w, s[d]!, s[a]!, s[b]!) : this.bulk_fill(w, s[d]!, s[a]!, s[b]!);
        if (r < 0) return STALL;
        cost += r;
        break;
      }
      case Op.S_BRANCH: next += simm * INSTR_BYTES; break;
      case Op.S_CBRANCH_LT: if (s[a]! < s[b]!) next += simm * INSTR_BYTES; break;
      case Op.S_CBRANCH_EQ: if (s[a]! === s[b]!) next += simm * INSTR_BYTES; break;
      case Op.S_CBRANCH_NE: if (s[a]! !== s[b]!) next += simm * INSTR_BYTES; break;
      case Op.S_SLEEP: cost += imm; break;
      default:
        return this.illegal(w, op, `${op_name(op)}`);
    }
    if (WRITES_D.has(op) && !(Number.isSafeInteger(s[d]) && s[d]! >= 0)) return this.illegal(w, op, `result out of range in s${d}`);
    w.pc = next;
    w.partial = 0;
    this.stats.instructions++;
    return { cost };
  }

  /** Copies `len` bytes page span by page span; returns the cost or -1 on a stall (progress kept). */
  private bulk_copy(w: wave_state, dst: number, src: number, len: number): number {
    let cost = 0;
    while (w.partial < len) {
      const st = this.xlate(src + w.partial, "read", CID_TCP);
      if (!st) return -1;
      const dt = this.xlate(dst + w.partial, "write", CID_TCP);
      if (!dt) return -1;
      const n = Math.min(len - w.partial, st.span, dt.span);
      this.cp.mem.copy(dt.phys, st.phys, n);
      cost += this.bytes_cost(st.phys, n) + this.bytes_cost(dt.phys, n);
      w.partial += n;
    }
    return cost;
  }

  private bulk_fill(w: wave_state, dst: number, value: number, len: number): number {
    let cost = 0;
    while (w.partial < len) {
      const dt = this.xlate(dst + w.partial, "write", CID_TCP);
      if (!dt) return -1;
      const n = Math.min(len - w.partial, dt.span);
      this.cp.mem.fill32(dt.phys, value % 2 ** 32, n);
      cost += this.bytes_cost(dt.phys, n);
      w.partial += n;
    }
    return cost;
  }

  private bytes_cost(p: GpuPhys, n: number): number {
    return n / (p.sys ? this.cp.cost.pcie_bytes_per_ns : this.cp.cost.vram_bytes_per_ns);
  }

  private illegal(w: wave_state, op: number, what: string): step {
    this.cp.ih.post({
      client_id: SOC15_IH_CLIENTID_SE0SH, src_id: GFX_9_0__SRCID__SQ_INTERRUPT_ID, vmid: this.vmid,
      ring_id: (this.queue << 4) | (1 << 2) | this.pipe, src_data: [w.pc % 2 ** 32, Math.floor(w.pc / 2 ** 32), op, 0],
    });
    return { error: `wave ${w.wg_id} at pc 0x${w.pc.toString(16)}: ${what}` };
  }

  private fail(why: string): void {
    this.error = why;
    this.wave = null;
    this.dispatch = null;
    this.running = false;
  }

  // ---- context save / restore (CWSR) ----------------------------------------------------------

  private reg_set(r: number, v: number): void {
    this.regs[r - HQD_REG_BASE] = v;
  }

  private get ctx_base(): number {
    return this.reg(mmCP_HQD_CTX_SAVE_BASE_ADDR_LO) + this.reg(mmCP_HQD_CTX_SAVE_BASE_ADDR_HI) * 2 ** 32;
  }

  private get qswitch(): boolean {
    return REG_GET_FIELD(this.reg(mmCP_HQD_PERSISTENT_STATE), CP_HQD_PERSISTENT_STATE__QSWITCH_MODE) === 1;
  }

  /** The control stack holds a record: the save area has a context to restore. */
  private has_saved_context(): boolean {
    return this.qswitch && this.reg(mmCP_HQD_CNTL_STACK_OFFSET) < this.reg(mmCP_HQD_CNTL_STACK_SIZE);
  }

  /** An empty save area with room for a control-stack record and a wave record. */
  private save_area_fits(): boolean {
    const stack = this.reg(mmCP_HQD_CNTL_STACK_SIZE);
    return this.qswitch && this.ctx_base !== 0 && stack >= CTX_CTL_BYTES && this.reg(mmCP_HQD_CTX_SAVE_SIZE) >= stack + CTX_WAVE_BYTES &&
      this.reg(mmCP_HQD_CNTL_STACK_OFFSET) === stack && this.reg(mmCP_HQD_WG_STATE_OFFSET) === stack;
  }

  /** Both stacks empty: the control stack's offset at its top, workgroup state right after it. */
  private reset_ctx_stack(): void {
    this.reg_set(mmCP_HQD_CNTL_STACK_OFFSET, this.reg(mmCP_HQD_CNTL_STACK_SIZE));
    this.reg_set(mmCP_HQD_WG_STATE_OFFSET, this.reg(mmCP_HQD_CNTL_STACK_SIZE));
  }

  /**
   * SAVE_WAVES: the dispatch goes on the control stack, the wave into the workgroup state, the
   * offsets move and the queue goes inactive. A save that faults cannot complete: the queue
   * stops on the error and stays active, so the driver's dequeue times out.
   */
  private save_context(): void {
    const d = this.dispatch!;
    const w = this.wave;
    const stack = this.reg(mmCP_HQD_CNTL_STACK_SIZE);
    const ctl = this.encode_dispatch(d, w ? CTX_FLAG_WAVE : 0);
    const ok = this.ctx_xfer(this.ctx_base + stack - CTX_CTL_BYTES, ctl, "write") &&
      (!w || this.ctx_xfer(this.ctx_base + stack, this.encode_wave(w), "write"));
    this.discard();
    if (!ok) {
      this.error = `context save to 0x${this.ctx_base.toString(16)} faulted`;
      return;
    }
    this.reg_set(mmCP_HQD_CNTL_STACK_OFFSET, stack - CTX_CTL_BYTES);
    this.reg_set(mmCP_HQD_WG_STATE_OFFSET, stack + (w ? CTX_WAVE_BYTES : 0));
    this.stats.ctx_saves++;
    this.deactivate();
  }

  private encode_dispatch(d: dispatch_state, flags: number): Uint8Array {
    const b = new Uint8Array(CTX_CTL_BYTES);
    const dv = new DataView(b.buffer);
    const words = [CTX_SAVE_MAGIC, CTX_SAVE_VERSION, flags, d.header, d.wg_size, d.grid];
    words.forEach((v, i) => dv.setUint32(i * 4, v, true));
    [d.kernel_object, d.kernarg, d.signal].forEach((v, i) => put64(dv, 24 + i * 8, v));
    dv.setUint32(48, d.n_wg, true);
    dv.setUint32(52, d.next_wg, true);
    return b;
  }

  private encode_wave(w: wave_state): Uint8Array {
    const b = new Uint8Array(CTX_WAVE_BYTES);
    const dv = new DataView(b.buffer);
    put64(dv, 0, w.pc);
    dv.setUint32(8, w.wg_id, true);
    dv.setUint32(12, w.partial, true);
    const stalled = this.stalled_since >= 0;
    dv.setUint32(16, (stalled ? 1 : 0) | (this.force_noretry ? 2 : 0) | (ACCESS_CODE.indexOf(this.stalled_access) << 2), true);
    put64(dv, 20, Math.max(this.stalled_page, 0));
    dv.setUint32(28, stalled ? Math.min(this.cp.k.ktime_get() - this.stalled_since, 2 ** 32 - 1) : 0, true);
    w.s.forEach((v, i) => put64(dv, 32 + i * 8, v));
    return b;
  }

  /**
   * An activation found a saved context: the dispatch and wave come back from the save area,
   * the area is marked empty (magic cleared, offsets reset) and the queue carries on mid-dispatch.
   */
  private restore_context(): step {
    this.restore_pending = false;
    const stack = this.reg(mmCP_HQD_CNTL_STACK_SIZE);
    const ctl_va = this.ctx_base + this.reg(mmCP_HQD_CNTL_STACK_OFFSET);
    const ctl = new Uint8Array(CTX_CTL_BYTES);
    if (!this.ctx_xfer(ctl_va, ctl, "read")) return { error: `context restore from 0x${ctl_va.toString(16)} faulted` };
    const dv = new DataView(ctl.buffer);
    if (dv.getUint32(0, true) !== CTX_SAVE_MAGIC || dv.getUint32(4, true) !== CTX_SAVE_VERSION) {
      return { error: `context restore: no saved context at 0x${ctl_va.toString(16)}` };
    }
    const wave = new Uint8Array((dv.getUint32(8, true) & CTX_FLAG_WAVE) ? CTX_WAVE_BYTES : 0);
    if (!this.ctx_xfer(this.ctx_base + stack, wave, "read") || !this.ctx_xfer(ctl_va, new Uint8Array(4), "write")) {
      return { error: `context restore from 0x${this.ctx_base.toString(16)} faulted` };
    }
    this.dispatch = {
      header: dv.getUint32(12, true), wg_size: dv.getUint32(16, true), grid: dv.getUint32(20, true),
      kernel_object: get64(dv, 24), kernarg: get64(dv, 32), signal: get64(dv, 40),
      n_wg: dv.getUint32(48, true), next_wg: dv.getUint32(52, true),
    };
    if (wave.length) this.decode_wave(new DataView(wave.buffer));
    this.reset_ctx_stack();
    this.stats.ctx_restores++;
    return { cost: this.cp.cost.shader_instruction_ns };
  }

  private decode_wave(dv: DataView): void {
    const s = new Float64Array(NUM_SREGS);
    for (let i = 0; i < NUM_SREGS; i++) s[i] = get64(dv, 32 + i * 8);
    this.wave = { pc: get64(dv, 0), s, wg_id: dv.getUint32(8, true), partial: dv.getUint32(12, true) };
    const stall = dv.getUint32(16, true);
    this.force_noretry = (stall & 2) !== 0;
    if (!(stall & 1)) return;
    this.stalled_access = ACCESS_CODE[(stall >>> 2) & 3] ?? "read";
    this.stalled_page = get64(dv, 20);
    this.stalled_since = this.cp.k.ktime_get() - dv.getUint32(28, true);
  }

  /**
   * Save-area traffic through the queue's VMID without retry (the area must be resident, as the
   * thunk's non-paged allocation is): false when a page does not translate.
   */
  private ctx_xfer(va: number, buf: Uint8Array, access: GpuAccess): boolean {
    const req = this.req;
    for (let done = 0; done < buf.length;) {
      Object.assign(req, { vmid: this.vmid, va: va + done, access, cid: CID_CPC, can_retry: false, atomic: false });
      const t = this.cp.gfxhub.translate(req);
      if (t.kind !== "ok") return false;
      const n = Math.min(buf.length - done, t.span);
      if (access === "write") this.cp.mem.write(t.phys, buf, done, n);
      else this.cp.mem.read(t.phys, buf, done, n);
      done += n;
    }
    return true;
  }

  // ---- memory through UTCL2 ------------------------------------------------------------------

  /**
   * Translates one access; null means the queue stalls on a retry fault. The stall (and its
   * retry timeout) belongs to the faulting access: only that access translating ends it, not the
   * instruction fetch or other accesses the replay makes first.
   */
  private xlate(va: number, access: GpuAccess, cid: number, atomic = false): { phys: GpuPhys; span: number } | null {
    const req = this.req;
    req.vmid = this.vmid;
    req.va = va;
    req.access = access;
    req.cid = cid;
    req.can_retry = !this.force_noretry && this.cp.retry_allowed(req.vmid);
    req.atomic = atomic;
    const r = this.cp.gfxhub.translate(req);
    const page = Math.floor(va / 4096);
    const same = page === this.stalled_page && access === this.stalled_access;
    if (r.kind === "retry") {
      const now = this.cp.k.ktime_get();
      if (this.stalled_since < 0 || !same) {
        this.stalled_since = now;
        this.stalled_page = page;
        this.stalled_access = access;
        this.stats.retry_stalls++;
      } else if (now - this.stalled_since >= this.cp.cost.retry_timeout_ns) {
        this.force_noretry = true;
      }
      return null;
    }
    if (this.stalled_since < 0 || same) {
      this.stalled_since = -1;
      this.force_noretry = false;
    }
    return r;
  }

  /** Reads `dst.length` bytes; false on a stall (nothing read). */
  private read(va: number, dst: Uint8Array, cid: number, access: GpuAccess): boolean {
    if (dst.length <= 4096 - (va % 4096)) {
      // Within one page (every instruction fetch and scalar access): one translation.
      const t = this.xlate(va, access, cid);
      if (!t) return false;
      this.cp.mem.read(t.phys, dst, 0, dst.length);
      return true;
    }
    const spans: Array<{ phys: GpuPhys; n: number }> = [];
    for (let done = 0; done < dst.length;) {
      const t = this.xlate(va + done, access, cid);
      if (!t) return false;
      const n = Math.min(dst.length - done, t.span);
      spans.push({ phys: t.phys, n });
      done += n;
    }
    let off = 0;
    for (const sp of spans) {
      this.cp.mem.read(sp.phys, dst, off, sp.n);
      off += sp.n;
    }
    return true;
  }

  private write(va: number, src: Uint8Array, cid: number): boolean {
    const spans: Array<{ phys: GpuPhys; n: number }> = [];
    for (let done = 0; done < src.length;) {
      const t = this.xlate(va + done, "write", cid);
      if (!t) return false;
      const n = Math.min(src.length - done, t.span);
      spans.push({ phys: t.phys, n });
      done += n;
    }
    let off = 0;
    for (const sp of spans) {
      this.cp.mem.write(sp.phys, src, off, sp.n);
      off += sp.n;
    }
    return true;
  }
}

function put64(dv: DataView, off: number, v: number): void {
  dv.setUint32(off, v % 2 ** 32, true);
  dv.setUint32(off + 4, Math.floor(v / 2 ** 32), true);
}

function get64(dv: DataView, off: number): number {
  return dv.getUint32(off, true) + dv.getUint32(off + 4, true) * 2 ** 32;
}

export class CpBlock {
  readonly hqds: Hqd[] = [];
  private mec_cntl = 0;
  private readonly sh_mem_config = new Uint32Array(16);
  private readonly sh_mem_bases = new Uint32Array(16);

  constructor(
    readonly k: Kernel,
    readonly cost: GpuCostModel,
    readonly gfxhub: VmHub,
    readonly mem: GpuMemBus,
    readonly ih: IhBlock,
  ) {
    // MEC1 starts halted until the driver's compute init releases it.
    this.mec_cntl = 1 << CP_MEC_CNTL__MEC_ME1_HALT[0];
    for (let p = 0; p < MEC_NUM_PIPES; p++) for (let q = 0; q < MEC_QUEUES_PER_PIPE; q++) this.hqds.push(new Hqd(p, q, this));
    gfxhub.on_invalidate((mask) => {
      for (const h of this.hqds) if (mask & (1 << h.vmid)) h.replay_now();
    });
  }

  halted(): boolean {
    return REG_GET_FIELD(this.mec_cntl, CP_MEC_CNTL__MEC_ME1_HALT) === 1;
  }

  /** Shader accesses retry only if the context retries and the VMID's SH_MEM_CONFIG allows it. */
  retry_allowed(vmid: number): boolean {
    return !REG_GET_FIELD(this.sh_mem_config[vmid]!, SH_MEM_CONFIG__RETRY_DISABLE) && this.gfxhub.context_retries(vmid);
  }

  hqd(sel: GrbmSelect): Hqd | null {
    if (sel.me !== 1 || sel.pipe >= MEC_NUM_PIPES || sel.queue >= MEC_QUEUES_PER_PIPE) return null;
    return this.hqds[sel.pipe * MEC_QUEUES_PER_PIPE + sel.queue]!;
  }

  reg_read(reg: number, sel: GrbmSelect): number {
    if (reg === mmCP_MEC_CNTL) return this.mec_cntl;
    if (reg === mmSH_MEM_CONFIG) return this.sh_mem_config[sel.vmid]!;
    if (reg === mmSH_MEM_BASES) return this.sh_mem_bases[sel.vmid]!;
    if (reg >= HQD_REG_BASE && reg < HQD_REG_BASE + HQD_REGS) return this.hqd(sel)?.read_reg(reg) ?? 0;
    return 0;
  }

  reg_write(reg: number, value: number, sel: GrbmSelect): void {
    if (reg === mmCP_MEC_CNTL) {
      const was = this.halted();
      this.mec_cntl = value;
      if (was && !this.halted()) for (const h of this.hqds) if (h.active) h.kick(0);
      return;
    }
    if (reg === mmSH_MEM_CONFIG) this.sh_mem_config[sel.vmid] = value;
    else if (reg === mmSH_MEM_BASES) this.sh_mem_bases[sel.vmid] = value;
    else if (reg >= HQD_REG_BASE && reg < HQD_REG_BASE + HQD_REGS) this.hqd(sel)?.write_reg(reg, value);
  }

  doorbell(index: number, lo: number, hi: number): boolean {
    for (const h of this.hqds) {
      if (h.db_match === index) {
        h.doorbell(lo, hi);
        return true;
      }
    }
    return false;
  }
}

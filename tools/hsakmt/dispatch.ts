// kemu user space: a small dispatch helper on top of the thunk — what kfdtest's Dispatch class
// and the ROCm runtime do for one kernel launch, reduced to kemu's GPU: an AQL user queue on a
// GPU node, a code object in kemu's instruction set (hw/amdgpu/isa.ts, docs/kfd-dispatch.md),
// a kernel-argument block, and an amd_signal_t whose event mailbox is a KFD signal event's slot.
// run() writes the program and a KERNEL_DISPATCH packet, rings the doorbell and waits on the
// signal event and a memory-exception event together: a completed dispatch ends with the
// signal at 0, a GPU memory violation with the fault the runtime would be told about.

import type { HsaKmt } from "./hsakmt.ts";
import { HSAKMT_STATUS, HSA_QUEUE_COMPUTE_AQL, type HsaMemoryAccessFault } from "./hsakmttypes.ts";
import { UserQueue, type UserQueueLayout } from "./user_queue.ts";
import {
  AMD_SIGNAL_EVENT_ID, AMD_SIGNAL_EVENT_MAILBOX_PTR, AMD_SIGNAL_VALUE, AQL_PACKET_BYTES, SREG_KERNARG, SREG_WORKGROUP_ID,
  aql_kernel_dispatch, assemble, buffer_copy, buffer_fill, global_atomic_add, global_load_dword, global_load_dwordx2,
  global_store_dword, s_add, s_branch, s_cbranch_ne, s_endpgm, s_mov_b64, s_mul, s_muli, s_sleep, type Instr,
} from "../../hw/amdgpu/isa.ts";

/** The queue's control block, one SVM range: ring, indices, signal, kernargs, code. */
const RING_PACKETS = 64;
const RING_OFF = 0;
const RPTR_OFF = 0x1000;
const WPTR_OFF = 0x1008;
const SIGNAL_OFF = 0x1040;
const SIGNAL_BYTES = 64;
const KERNARG_OFF = 0x2000;
const KERNARG_BYTES = 0x1000;
const CODE_OFF = 0x3000;
const CTRL_SIZE = 0x10000;
const LAYOUT: UserQueueLayout = {
  type: HSA_QUEUE_COMPUTE_AQL, ctrl_size: CTRL_SIZE, exec: true, ring_off: RING_OFF, ring_bytes: RING_PACKETS * AQL_PACKET_BYTES,
  rptr_off: RPTR_OFF, wptr_off: WPTR_OFF,
};
/** amd_signal_t.kind: AMD_SIGNAL_KIND_USER. */
const AMD_SIGNAL_KIND_USER = 1;
const DEFAULT_TIMEOUT_MS = 10_000;

export interface DispatchOptions {
  /** 64-bit kernel arguments, in order, at the kernarg address (s1 of every wave). */
  kernargs?: number[];
  /** Work-items in the grid and per workgroup; one wave runs per workgroup. */
  grid?: number;
  workgroup?: number;
  /** How long to wait (virtual ms) before reporting WAIT_TIMEOUT. */
  timeoutMs?: number;
}

export interface DispatchResult {
  /** SUCCESS when the dispatch completed or faulted; WAIT_TIMEOUT or an error otherwise. */
  status: HSAKMT_STATUS;
  completed: boolean;
  /** The memory exception the GPU raised instead of completing (the process's queues are now evicted). */
  fault: HsaMemoryAccessFault | null;
}

function u64le(values: number[]): Uint8Array {
  const b = new Uint8Array(values.length * 8);
  const dv = new DataView(b.buffer);
  values.forEach((v, i) => {
    dv.setUint32(i * 8, v % 2 ** 32, true);
    dv.setUint32(i * 8 + 4, Math.floor(v / 2 ** 32), true);
  });
  return b;
}

/** An AQL queue with its control memory and events, ready to run programs. */
export class GpuDispatcher extends UserQueue {
  private write_index = 0;

  /** Creates the queue on GPU node `NodeId` (the thunk must be open). */
  static async create(kmt: HsaKmt, NodeId: number): Promise<GpuDispatcher | HSAKMT_STATUS> {
    const parts = await UserQueue.open(kmt, NodeId, LAYOUT);
    return typeof parts === "number" ? parts : new GpuDispatcher(kmt, NodeId, LAYOUT, parts);
  }

  get code_address(): number {
    return this.ctrl + CODE_OFF;
  }

  /** Runs `program` once over the grid and waits for completion or a memory exception. */
  async run(program: readonly Instr[] | Uint8Array, opts: DispatchOptions = {}): Promise<DispatchResult> {
    const st = await this.submit(program, opts);
    if (st !== HSAKMT_STATUS.SUCCESS) return { status: st, completed: false, fault: null };
    return this.sync(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  /** kfdtest's Dispatch::Submit: writes the packet and rings the doorbell, without waiting. */
  async submit(program: readonly Instr[] | Uint8Array, opts: DispatchOptions = {}): Promise<HSAKMT_STATUS> {
    const p = this.kmt.proc;
    const code = program instanceof Uint8Array ? program : assemble(program);
    const args = opts.kernargs ?? [];
    if (code.length > CTRL_SIZE - CODE_OFF || args.length * 8 > KERNARG_BYTES) return HSAKMT_STATUS.INVALID_PARAMETER;
    await p.write(this.code_address, code);
    if (args.length) await p.write(this.ctrl + KERNARG_OFF, u64le(args));
    // amd_signal_t: value 1, the CP decrements it and posts the event id to the mailbox.
    const sig = new Uint8Array(SIGNAL_BYTES);
    const dv = new DataView(sig.buffer);
    dv.setUint32(0, AMD_SIGNAL_KIND_USER, true);
    sig.set(u64le([1]), AMD_SIGNAL_VALUE);
    sig.set(u64le([this.signal_event.EventData.HWData2]), AMD_SIGNAL_EVENT_MAILBOX_PTR);
    dv.setUint32(AMD_SIGNAL_EVENT_ID, this.signal_event.EventData.HWData3, true);
    await p.write(this.ctrl + SIGNAL_OFF, sig);
    const pkt = aql_kernel_dispatch({
      workgroup_size_x: opts.workgroup ?? 1, grid_size_x: opts.grid ?? 1, kernel_object: this.code_address,
      kernarg_address: this.ctrl + KERNARG_OFF, completion_signal: this.ctrl + SIGNAL_OFF,
    });
    await p.write(this.ctrl + RING_OFF + (this.write_index % RING_PACKETS) * AQL_PACKET_BYTES, pkt);
    this.write_index++;
    await p.write(this.queue.QueueWptrValue, u64le([this.write_index]));
    return this.kmt.ringDoorbell(this.queue.QueueId, this.write_index);
  }

  /** kfdtest's Dispatch::SyncWithStatus: waits for the last submitted dispatch or a memory exception. */
  async sync(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<DispatchResult> {
    delete this.memory_event.EventData.EventData.MemoryAccessFault;
    for (;;) {
      const st = await this.kmt.hsaKmtWaitOnMultipleEvents([this.signal_event, this.memory_event], 2, false, timeoutMs);
      if (st !== HSAKMT_STATUS.SUCCESS) return { status: st, completed: false, fault: null };
      const fault = this.memory_event.EventData.EventData.MemoryAccessFault ?? null;
      if (fault) return { status: HSAKMT_STATUS.SUCCESS, completed: false, fault };
      if ((await this.signal_value()) === 0) return { status: HSAKMT_STATUS.SUCCESS, completed: true, fault: null };
    }
  }

  /** The completion signal's current value (CPU load). */
  async signal_value(): Promise<number> {
    const b = await this.kmt.proc.read(this.ctrl + SIGNAL_OFF + AMD_SIGNAL_VALUE, 8);
    const dv = new DataView(b.buffer, b.byteOffset, 8);
    return dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  }
}

// ---- ready-made programs ------------------------------------------------------------------

/** kfdtest's CopyDwordIsa: kernargs [src, dst]; one dword from src to dst. */
export function copyDwordIsa(): Instr[] {
  return [
    global_load_dwordx2(4, SREG_KERNARG, 0),
    global_load_dwordx2(5, SREG_KERNARG, 8),
    global_load_dword(6, 4, 0),
    global_store_dword(5, 6, 0),
    s_endpgm(),
  ];
}

/** kernargs [dst, value]: one dword store. */
export function writeDwordIsa(): Instr[] {
  return [
    global_load_dwordx2(4, SREG_KERNARG, 0),
    global_load_dwordx2(5, SREG_KERNARG, 8),
    global_store_dword(4, 5, 0),
    s_endpgm(),
  ];
}

/**
 * kernargs [dst, src, bytes_per_wave]: each workgroup k copies its slice k (what kfdtest uses
 * SDMA linear copies for).
 */
export function copyBufferIsa(): Instr[] {
  return [
    global_load_dwordx2(4, SREG_KERNARG, 0),
    global_load_dwordx2(5, SREG_KERNARG, 8),
    global_load_dwordx2(6, SREG_KERNARG, 16),
    s_mul(7, SREG_WORKGROUP_ID, 6), // this wave's byte offset
    s_add(4, 4, 7),
    s_add(5, 5, 7),
    buffer_copy(4, 5, 6),
    s_endpgm(),
  ];
}

/** kernargs [dst, dword_value, bytes_per_wave]: each workgroup k fills its slice k. */
export function fillBufferIsa(): Instr[] {
  return [
    global_load_dwordx2(4, SREG_KERNARG, 0),
    global_load_dwordx2(5, SREG_KERNARG, 8),
    global_load_dwordx2(6, SREG_KERNARG, 16),
    s_mul(7, SREG_WORKGROUP_ID, 6),
    s_add(4, 4, 7),
    buffer_fill(4, 5, 6),
    s_endpgm(),
  ];
}

/**
 * kernargs [counters]: each workgroup adds 1 to the dword at counters, works for `sleep_ns`, then
 * adds 1 to the next dword — a kernel that must not run a workgroup twice (preemption tests).
 */
export function countTwiceIsa(sleep_ns: number): Instr[] {
  return [
    global_load_dwordx2(4, SREG_KERNARG, 0),
    s_mov_b64(6, 1),
    global_atomic_add(7, 4, 6),
    s_sleep(sleep_ns),
    global_atomic_add(7, 4, 6, 4),
    s_endpgm(),
  ];
}

/** The value IterateIsa's waves stop at once it is in input[0]. */
export const ITERATE_STOP = 0x1234_5678;

/**
 * kfdtest's IterateIsa (KFDCWSRTest), kernargs [input, output]: each workgroup's wave reads its
 * output dword into a register once, then until input[0] holds ITERATE_STOP writes that register
 * back every `iter_ns` — a context save/restore that mangled the register shows in output.
 */
export function iterateIsa(iter_ns: number): Instr[] {
  return [
    global_load_dwordx2(4, SREG_KERNARG, 0),
    global_load_dwordx2(5, SREG_KERNARG, 8),
    s_muli(6, SREG_WORKGROUP_ID, 4),
    s_add(5, 5, 6),
    global_load_dword(7, 5, 0),
    s_mov_b64(8, ITERATE_STOP),
    global_store_dword(5, 7, 0), // loop:
    s_sleep(iter_ns),
    global_load_dword(9, 4, 0),
    s_cbranch_ne(9, 8, -4),
    s_endpgm(),
  ];
}

/** kfdtest's InfiniteLoopIsa: a wave that never ends (it sleeps `iter_ns` a turn). */
export function infiniteLoopIsa(iter_ns: number): Instr[] {
  return [s_sleep(iter_ns), s_branch(-2), s_endpgm()];
}

// kemu user space: a small SDMA helper on top of the thunk — what the ROCm runtime's BlitSdma
// does for a copy or fill, reduced: an SDMA user queue (HSA_QUEUE_SDMA) on a GPU node, its ring
// in an SVM range, COPY_LINEAR / CONST_FILL packets (≤ 4 MiB each) followed by a FENCE that
// writes a sequence number to user memory and a TRAP whose context is a KFD signal event's id.
// wait() sleeps on that event (and a memory-exception event) and checks the fence value; the
// event is only a wake-up, the fence in memory is the truth (as with ROCr's signals).

import type { HsaKmt } from "./hsakmt.ts";
import { HSAKMT_STATUS, HSA_QUEUE_SDMA } from "./hsakmttypes.ts";
import { UserQueue, type UserQueueLayout } from "./user_queue.ts";
import {
  SDMA_COPY_MAX_BYTES, SDMA_OP_CONST_FILL, SDMA_OP_COPY, SDMA_OP_FENCE, SDMA_OP_TRAP, SDMA_PKT_HEADER_OP, SDMA_PKT_HEADER_SUB_OP,
  SDMA_PKT_TRAP_INT_CONTEXT_INT_CONTEXT, SDMA_SUBOP_COPY_LINEAR,
} from "../../drivers/gpu/drm/amd/amdgpu/vega10_sdma_pkt_open.ts";

/** The queue's control block, one SVM range: the ring, then the fence dword. */
const RING_BYTES = 4096;
const FENCE_OFF = 0x1000;
const CTRL_SIZE = 0x2000;
const LAYOUT: UserQueueLayout = { type: HSA_QUEUE_SDMA, ctrl_size: CTRL_SIZE, exec: false, ring_off: 0, ring_bytes: RING_BYTES };
const DEFAULT_TIMEOUT_MS = 10_000;

function lo(v: number): number {
  return v % 2 ** 32;
}
function hi(v: number): number {
  return Math.floor(v / 2 ** 32);
}

/** COPY_LINEAR packets (≤ 4 MiB each) copying `bytes` from `src` to `dst`. */
export function sdma_copy_packets(dst: number, src: number, bytes: number): number[] {
  const pkts: number[] = [];
  for (let done = 0; done < bytes; done += SDMA_COPY_MAX_BYTES) {
    const n = Math.min(SDMA_COPY_MAX_BYTES, bytes - done);
    pkts.push(SDMA_PKT_HEADER_OP(SDMA_OP_COPY) | SDMA_PKT_HEADER_SUB_OP(SDMA_SUBOP_COPY_LINEAR), n - 1, 0,
      lo(src + done), hi(src + done), lo(dst + done), hi(dst + done));
  }
  return pkts;
}

/** CONST_FILL packets (≤ 4 MiB each) filling `bytes` at `dst` with the dword `value`. */
export function sdma_fill_packets(dst: number, value: number, bytes: number): number[] {
  const pkts: number[] = [];
  for (let done = 0; done < bytes; done += SDMA_COPY_MAX_BYTES) {
    const n = Math.min(SDMA_COPY_MAX_BYTES, bytes - done);
    pkts.push(SDMA_PKT_HEADER_OP(SDMA_OP_CONST_FILL), lo(dst + done), hi(dst + done), value >>> 0, n - 1);
  }
  return pkts;
}

/** An SDMA user queue with its ring, fence and events. */
export class SdmaQueue extends UserQueue {
  /** Bytes written to the ring so far (the queue's write pointer). */
  private wptr = 0;
  private seq = 0;

  /** Creates an SDMA queue on GPU node `NodeId`; the KFD status if none can be had. */
  static async create(kmt: HsaKmt, NodeId: number): Promise<SdmaQueue | HSAKMT_STATUS> {
    const parts = await UserQueue.open(kmt, NodeId, LAYOUT);
    return typeof parts === "number" ? parts : new SdmaQueue(kmt, NodeId, LAYOUT, parts);
  }

  /** Copies `bytes` from `src` to `dst` (GPU virtual addresses of this process) and waits. */
  copy(dst: number, src: number, bytes: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<HSAKMT_STATUS> {
    return this.run(sdma_copy_packets(dst, src, bytes), timeoutMs);
  }

  /** Fills `bytes` at `dst` with the dword `value` and waits. */
  fill(dst: number, value: number, bytes: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<HSAKMT_STATUS> {
    return this.run(sdma_fill_packets(dst, value, bytes), timeoutMs);
  }

  /** Submits `pkts` plus the fence and trap without waiting; `seq` is the fence value to wait for. */
  async submit(pkts: readonly number[]): Promise<{ status: HSAKMT_STATUS; seq: number }> {
    const seq = ++this.seq;
    const fence = this.ctrl + FENCE_OFF;
    const all = [...pkts, SDMA_PKT_HEADER_OP(SDMA_OP_FENCE), lo(fence), hi(fence), seq,
      SDMA_PKT_HEADER_OP(SDMA_OP_TRAP), SDMA_PKT_TRAP_INT_CONTEXT_INT_CONTEXT(this.signal_event.EventData.HWData3)];
    if (all.length * 4 > RING_BYTES) return { status: HSAKMT_STATUS.INVALID_PARAMETER, seq };
    const p = this.kmt.proc;
    for (const dw of all) {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, dw >>> 0, true);
      await p.write(this.ctrl + (this.wptr % RING_BYTES), b);
      this.wptr += 4;
    }
    // The write pointer in memory (a resumed queue reloads it), then the doorbell.
    const w = new Uint8Array(8);
    new DataView(w.buffer).setUint32(0, lo(this.wptr), true);
    new DataView(w.buffer).setUint32(4, hi(this.wptr), true);
    await p.write(this.queue.QueueWptrValue, w);
    return { status: this.kmt.ringDoorbell(this.queue.QueueId, this.wptr), seq };
  }

  /**
   * Waits until the fence reached `seq`: WAIT_TIMEOUT after `timeoutMs`, ERROR on a memory
   * exception of the process (its queues are then evicted).
   */
  async wait(seq: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<HSAKMT_STATUS> {
    delete this.memory_event.EventData.EventData.MemoryAccessFault;
    const k = this.kmt.proc.machine.k;
    const end = k.ktime_get() + timeoutMs * 1e6;
    for (;;) {
      if ((await this.fence_value()) >= seq) return HSAKMT_STATUS.SUCCESS;
      const left = Math.ceil((end - k.ktime_get()) / 1e6);
      if (left <= 0) return HSAKMT_STATUS.WAIT_TIMEOUT;
      // Short waits: the trap wakes us, but a missed wake-up only costs a millisecond.
      const st = await this.kmt.hsaKmtWaitOnMultipleEvents([this.signal_event, this.memory_event], 2, false, Math.min(left, 1));
      if (st !== HSAKMT_STATUS.SUCCESS && st !== HSAKMT_STATUS.WAIT_TIMEOUT) return st;
      if (this.memory_event.EventData.EventData.MemoryAccessFault) return HSAKMT_STATUS.ERROR;
    }
  }

  private async run(pkts: readonly number[], timeoutMs: number): Promise<HSAKMT_STATUS> {
    const { status, seq } = await this.submit(pkts);
    if (status !== HSAKMT_STATUS.SUCCESS) return status;
    return this.wait(seq, timeoutMs);
  }

  /** The fence dword (CPU load). */
  async fence_value(): Promise<number> {
    const b = await this.kmt.proc.read(this.ctrl + FENCE_OFF, 4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
  }

  /** The queue's read pointer as the engine wrote it back (bytes). */
  async read_pointer(): Promise<number> {
    const b = await this.kmt.proc.read(this.queue.QueueRptrValue, 8);
    const dv = new DataView(b.buffer, b.byteOffset, 8);
    return dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  }
}

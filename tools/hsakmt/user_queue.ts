// kemu user space: what the dispatch and SDMA helpers share (not a kernel file) — a user queue
// with its control block in an SVM range, a signal event its completions raise and a memory
// event a GPU memory exception raises, created together and freed together as the runtime does.

import type { HsaKmt } from "./hsakmt.ts";
import {
  HSAKMT_STATUS, HSA_EVENTTYPE_MEMORY, HSA_EVENTTYPE_SIGNAL, HSA_QUEUE_PERCENTAGE_MAX, HSA_QUEUE_PRIORITY_NORMAL,
  type HsaEvent, type HsaQueueResource,
} from "./hsakmttypes.ts";

/** The queue's shape: its type, control block and where in it the ring and indices sit. */
export interface UserQueueLayout {
  type: number;
  ctrl_size: number;
  exec: boolean;
  ring_off: number;
  ring_bytes: number;
  /** Read and write index offsets in the control block; none for queues whose thunk keeps them. */
  rptr_off?: number;
  wptr_off?: number;
}

export interface UserQueueParts {
  ctrl: number;
  queue: HsaQueueResource;
  signal_event: HsaEvent;
  memory_event: HsaEvent;
}

export class UserQueue {
  protected constructor(
    readonly kmt: HsaKmt,
    readonly NodeId: number,
    private readonly layout: UserQueueLayout,
    parts: UserQueueParts,
  ) {
    this.ctrl = parts.ctrl;
    this.queue = parts.queue;
    this.signal_event = parts.signal_event;
    this.memory_event = parts.memory_event;
  }

  readonly ctrl: number;
  readonly queue: HsaQueueResource;
  readonly signal_event: HsaEvent;
  readonly memory_event: HsaEvent;

  /** The control block, both events and the queue on GPU node `NodeId`; undone on failure. */
  protected static async open(kmt: HsaKmt, NodeId: number, l: UserQueueLayout): Promise<UserQueueParts | HSAKMT_STATUS> {
    const ctrl = await kmt.allocSvm(l.ctrl_size, NodeId, { exec: l.exec });
    if (ctrl < 0) return HSAKMT_STATUS.NO_MEMORY;
    const sig: { event: HsaEvent | null } = { event: null };
    const mem: { event: HsaEvent | null } = { event: null };
    let st = await kmt.hsaKmtCreateEvent({ EventType: HSA_EVENTTYPE_SIGNAL, NodeId }, false, false, sig);
    if (st === HSAKMT_STATUS.SUCCESS) st = await kmt.hsaKmtCreateEvent({ EventType: HSA_EVENTTYPE_MEMORY, NodeId }, false, false, mem);
    const queue: HsaQueueResource = {
      QueueId: 0, QueueDoorBell: 0,
      QueueRptrValue: l.rptr_off === undefined ? 0 : ctrl + l.rptr_off, QueueWptrValue: l.wptr_off === undefined ? 0 : ctrl + l.wptr_off,
    };
    if (st === HSAKMT_STATUS.SUCCESS) {
      st = await kmt.hsaKmtCreateQueue(NodeId, l.type, HSA_QUEUE_PERCENTAGE_MAX, HSA_QUEUE_PRIORITY_NORMAL, ctrl + l.ring_off, l.ring_bytes, null, queue);
    }
    if (st !== HSAKMT_STATUS.SUCCESS) {
      await kmt.hsaKmtDestroyEvent(sig.event);
      await kmt.hsaKmtDestroyEvent(mem.event);
      await kmt.proc.munmap(ctrl, l.ctrl_size);
      return st;
    }
    return { ctrl, queue, signal_event: sig.event!, memory_event: mem.event! };
  }

  /**
   * kfdtest's BaseQueue::Update: a new queue percentage and priority for this queue's ring (0 %
   * makes KFD preempt it, saving its waves with CWSR; a non-zero percentage loads it again).
   */
  update(QueuePercentage: number, Priority: number = HSA_QUEUE_PRIORITY_NORMAL): Promise<HSAKMT_STATUS> {
    return this.kmt.hsaKmtUpdateQueue(this.queue.QueueId, QueuePercentage, Priority, this.ctrl + this.layout.ring_off, this.layout.ring_bytes, null);
  }

  /** Destroys the queue and events and frees the control block. */
  async destroy(): Promise<HSAKMT_STATUS> {
    const st = await this.kmt.hsaKmtDestroyQueue(this.queue.QueueId);
    await this.kmt.hsaKmtDestroyEvent(this.signal_event);
    await this.kmt.hsaKmtDestroyEvent(this.memory_event);
    await this.kmt.proc.munmap(this.ctrl, this.layout.ctrl_size);
    return st;
  }
}

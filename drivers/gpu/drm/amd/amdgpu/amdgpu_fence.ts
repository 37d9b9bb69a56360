// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_fence.c (Linux 6.8): hardware fences. Each
// submission ends with a FENCE packet that writes a sequence number to the ring's writeback
// slot and raises an interrupt; amdgpu_fence_process() reads the slot and signals every fence up
// to it. A fallback timer polls the slot in case an interrupt goes missing. A ring keeps
// num_fences_mask + 1 fence slots.

import type { amdgpu_device } from "./amdgpu.ts";
import type { amdgpu_ring } from "./amdgpu_ring.ts";
import { amdgpu_sched_hw_submission, AMDGPU_FENCE_FLAG_INT } from "./amdgpu_ring.ts";
import { amdgpu_irq_get, amdgpu_irq_put, type amdgpu_irq_src } from "./amdgpu_irq.ts";
import {
  dma_fence, dma_fence_context_alloc, dma_fence_get, dma_fence_put, dma_fence_set_error, dma_fence_signal,
  dma_fence_wait, dma_fence_wait_timeout, dma_fence_is_signaled, type dma_fence_ops,
} from "../../../../dma-buf/dma-fence.ts";
import { spinlock_t } from "../../../../../kernel/locking/spinlock.ts";
import { timer_list } from "../../../../../kernel/time/timer.ts";
import { HZ } from "../../../../../kernel/time/timekeeping.ts";
import { EINVAL, ETIMEDOUT } from "../../../../../include/uapi/asm-generic/errno.ts";
import { iosys_map_offset, type iosys_map } from "../../../../../include/linux/iosys-map.ts";

/** AMDGPU_FENCE_JIFFIES_TIMEOUT: the fallback poll interval (HZ / 2). */
export const AMDGPU_FENCE_JIFFIES_TIMEOUT = HZ / 2;
const NSEC_PER_JIFFY = 1e9 / HZ;

export class amdgpu_fence extends dma_fence {
  constructor(
    readonly ring: amdgpu_ring,
    seq: number,
  ) {
    super(ring.adev.k, amdgpu_fence_ops, ring.fence_drv.lock, ring.fence_drv.context, seq);
  }
}

const amdgpu_fence_ops: dma_fence_ops = {
  get_driver_name: () => "amdgpu",
  get_timeline_name: (f) => (f as amdgpu_fence).ring.name,
  /** Signalling comes from the fence interrupt; make sure the fallback poll is armed. */
  enable_signaling: (f) => {
    const drv = (f as amdgpu_fence).ring.fence_drv;
    if (!f.k.timers.timer_pending(drv.fallback_timer)) amdgpu_fence_schedule_fallback((f as amdgpu_fence).ring);
    return true;
  },
};

export class amdgpu_fence_driver {
  /** Writeback slot (dword index) the engine writes the sequence number to. */
  wb_offs = 0;
  gpu_addr = 0;
  cpu_addr: iosys_map | null = null;
  /** Last sequence number emitted. */
  sync_seq = 0;
  /** Last sequence number seen signalled. */
  last_seq = 0;
  initialized = false;
  irq_src: amdgpu_irq_src | null = null;
  irq_type = 0;
  num_fences_mask = 0;
  fences: Array<amdgpu_fence | null> = [];
  readonly lock: spinlock_t;
  readonly fallback_timer: timer_list;
  context = 0;

  constructor(readonly ring: amdgpu_ring) {
    this.lock = new spinlock_t(ring.adev.k, "&ring->fence_drv.lock");
    this.fallback_timer = new timer_list(() => amdgpu_fence_fallback(ring), "amdgpu_fence_fallback");
  }
}

/** amdgpu_fence_driver_init_ring(): the fence slots and the ring's fence context. */
export function amdgpu_fence_driver_init_ring(ring: amdgpu_ring): number {
  const drv = ring.fence_drv;
  const n = 2 * amdgpu_sched_hw_submission;
  drv.num_fences_mask = n - 1;
  drv.fences = new Array<amdgpu_fence | null>(n).fill(null);
  drv.context = dma_fence_context_alloc(ring.adev.k, 1);
  drv.sync_seq = 0;
  drv.last_seq = 0;
  return 0;
}

/** amdgpu_fence_driver_start_ring(): where the engine writes the sequence, which IRQ signals it. */
export function amdgpu_fence_driver_start_ring(ring: amdgpu_ring, irq_src: amdgpu_irq_src, irq_type: number): number {
  const adev = ring.adev;
  const drv = ring.fence_drv;
  drv.cpu_addr = iosys_map_offset(adev.wb.cpu!, drv.wb_offs * 4);
  drv.gpu_addr = adev.wb.gpu_addr + drv.wb_offs * 4;
  drv.cpu_addr.wr32(0, drv.sync_seq % 2 ** 32);
  drv.irq_src = irq_src;
  drv.irq_type = irq_type;
  drv.initialized = true;
  return 0;
}

/** The sequence number the engine last wrote back, extended past 32-bit wrap. */
function amdgpu_fence_read(ring: amdgpu_ring): number {
  const drv = ring.fence_drv;
  const v = drv.cpu_addr!.rd32(0);
  const base = drv.last_seq - (drv.last_seq % 2 ** 32);
  let seq = base + v;
  if (seq < drv.last_seq) seq += 2 ** 32;
  return Math.min(seq, drv.sync_seq);
}

function amdgpu_fence_write(ring: amdgpu_ring, seq: number): void {
  ring.fence_drv.cpu_addr?.wr32(0, seq % 2 ** 32);
}

/**
 * amdgpu_fence_emit(): the next sequence number, its FENCE packet (with interrupt), and the
 * fence object. Called with the ring being written. If the slot still holds an older fence,
 * waits for it first (the scheduler normally keeps fewer jobs in flight).
 */
export async function amdgpu_fence_emit(ring: amdgpu_ring, flags: number): Promise<amdgpu_fence> {
  const drv = ring.fence_drv;
  const seq = ++drv.sync_seq;
  const fence = new amdgpu_fence(ring, seq);
  ring.funcs.emit_fence(ring, drv.gpu_addr, seq, flags | AMDGPU_FENCE_FLAG_INT);
  const slot = seq & drv.num_fences_mask;
  const old = drv.fences[slot];
  if (old && !dma_fence_is_signaled(old)) await dma_fence_wait(old, false);
  if (drv.fences[slot]) dma_fence_put(drv.fences[slot]!);
  drv.fences[slot] = dma_fence_get(fence) as amdgpu_fence;
  return fence;
}

/** amdgpu_fence_schedule_fallback(): poll in AMDGPU_FENCE_JIFFIES_TIMEOUT if fences are pending. */
function amdgpu_fence_schedule_fallback(ring: amdgpu_ring): void {
  ring.adev.k.timers.add_timer_in(ring.fence_drv.fallback_timer, AMDGPU_FENCE_JIFFIES_TIMEOUT * NSEC_PER_JIFFY);
}

/**
 * amdgpu_fence_process(): signals every fence the engine completed. Returns true if any
 * progress was made. Interrupt or timer context.
 */
export function amdgpu_fence_process(ring: amdgpu_ring): boolean {
  const drv = ring.fence_drv;
  if (!drv.initialized) return false;
  const k = ring.adev.k;
  const last = drv.last_seq;
  const seq = amdgpu_fence_read(ring);
  if (seq !== drv.sync_seq) amdgpu_fence_schedule_fallback(ring);
  else k.timers.del_timer(drv.fallback_timer);
  if (seq <= last) return false;
  drv.last_seq = seq;
  for (let s = last + 1; s <= seq; s++) {
    const slot = s & drv.num_fences_mask;
    const f = drv.fences[slot];
    if (!f || f.seqno !== s) continue;
    drv.fences[slot] = null;
    dma_fence_signal(f);
    dma_fence_put(f);
  }
  return true;
}

function amdgpu_fence_fallback(ring: amdgpu_ring): void {
  if (amdgpu_fence_process(ring)) ring.adev.k.dev_warn(ring.adev, `Fence fallback timer expired on ring ${ring.name}`);
}

/** amdgpu_fence_wait_empty(): waits (≤ 1 s here) until the last emitted fence signals. */
export async function amdgpu_fence_wait_empty(ring: amdgpu_ring, timeout_jiffies = HZ): Promise<number> {
  const drv = ring.fence_drv;
  const f = drv.fences[drv.sync_seq & drv.num_fences_mask];
  if (!drv.sync_seq || !f || f.seqno !== drv.sync_seq) return 0;
  dma_fence_get(f);
  const r = await dma_fence_wait_timeout(f, false, timeout_jiffies);
  dma_fence_put(f);
  return r === 0 ? -ETIMEDOUT : r < 0 ? r : 0;
}

/** amdgpu_fence_count_emitted(): fences emitted and not yet signalled. */
export function amdgpu_fence_count_emitted(ring: amdgpu_ring): number {
  amdgpu_fence_process(ring);
  return ring.fence_drv.sync_seq - ring.fence_drv.last_seq;
}

/**
 * amdgpu_fence_driver_force_completion(): pretends the engine finished everything (after a
 * hang); unfinished fences get `error` (e.g. -ETIME) before they signal.
 */
export function amdgpu_fence_driver_force_completion(ring: amdgpu_ring, error = 0): void {
  const drv = ring.fence_drv;
  if (error) {
    for (const f of drv.fences) if (f && f.seqno > drv.last_seq && !dma_fence_is_signaled(f)) dma_fence_set_error(f, error);
  }
  amdgpu_fence_write(ring, drv.sync_seq);
  amdgpu_fence_process(ring);
}

/** amdgpu_fence_driver_hw_init(): every ring's fence interrupt on. */
export function amdgpu_fence_driver_hw_init(adev: amdgpu_device): void {
  for (const ring of adev.rings) {
    const drv = ring.fence_drv;
    if (drv.initialized && drv.irq_src) amdgpu_irq_get(adev, drv.irq_src, drv.irq_type);
  }
}

/** amdgpu_fence_driver_hw_fini(): waits for idle (else forces completion), interrupts off. */
export async function amdgpu_fence_driver_hw_fini(adev: amdgpu_device): Promise<void> {
  for (const ring of adev.rings) {
    const drv = ring.fence_drv;
    if (!drv.initialized) continue;
    const r = adev.shutdown ? -EINVAL : await amdgpu_fence_wait_empty(ring);
    if (r) amdgpu_fence_driver_force_completion(ring);
    if (drv.irq_src && adev.irq.installed) amdgpu_irq_put(adev, drv.irq_src, drv.irq_type);
    adev.k.timers.del_timer(drv.fallback_timer);
  }
}

/** amdgpu_fence_driver_sw_fini(): drops the remaining fence references. */
export function amdgpu_fence_driver_sw_fini(adev: amdgpu_device): void {
  for (const ring of adev.rings) {
    const drv = ring.fence_drv;
    for (let i = 0; i < drv.fences.length; i++) {
      dma_fence_put(drv.fences[i] ?? null);
      drv.fences[i] = null;
    }
    drv.initialized = false;
  }
}

// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_ih.c and amdgpu_ih.h (Linux 6.8): interrupt-handler
// rings. The hardware rings (ih, ih1) live in coherent system memory the IH writes by DMA, with
// the write pointer written back after the ring; the software ring (ih_soft) is the same shape
// but only the CPU writes it (amdgpu_irq_delegate). amdgpu_ih_process() dispatches the vectors
// between rptr and the hardware wptr, at most AMDGPU_IH_MAX_NUM_IVS per pass, re-reading wptr
// until it has caught up, and wakes whoever waits for processing to reach a timestamp.

import type { amdgpu_device } from "./amdgpu.ts";
import { dma_alloc_coherent, dma_free_coherent, type dma_coherent } from "../../../../../kernel/dma/mapping.ts";
import { GFP_KERNEL } from "../../../../../include/linux/gfp_types.ts";
import { wait_queue_head_t, wake_up_all, wait_event_interruptible_timeout } from "../../../../../kernel/sched/wait.ts";
import { EINVAL, ENOMEM, ETIMEDOUT } from "../../../../../include/uapi/asm-generic/errno.ts";
import { msecs_to_jiffies } from "../../../../../kernel/time/timekeeping.ts";
import { amdgpu_irq_dispatch } from "./amdgpu_irq.ts";
import { IRQ_HANDLED, IRQ_NONE, type irqreturn_t } from "../../../../../kernel/irq/manage.ts";
import { ftrace } from "../../../../../include/linux/ftrace.ts";

/** Size of the main IH ring (256 KiB) and the software ring (16 KiB). */
export const IH_RING_SIZE = 256 * 1024;
export const IH_SW_RING_SIZE = 16 * 1024;
/** Vectors dispatched per pass before wptr is re-read. */
export const AMDGPU_IH_MAX_NUM_IVS = 32;
export const AMDGPU_IH_CLIENTID_LEGACY = 0;

/** Register offsets (dwords) of one hardware ring, per ASIC (amdgpu_ih_regs). */
export interface amdgpu_ih_regs {
  ih_rb_base: number;
  ih_rb_base_hi: number;
  ih_rb_cntl: number;
  ih_rb_wptr: number;
  ih_rb_rptr: number;
  ih_doorbell_rptr: number;
  ih_rb_wptr_addr_lo: number;
  ih_rb_wptr_addr_hi: number;
}

/** amdgpu_ih_funcs: the ASIC's ring accessors. */
export interface amdgpu_ih_funcs {
  get_wptr(adev: amdgpu_device, ih: amdgpu_ih_ring): number;
  decode_iv(adev: amdgpu_device, ih: amdgpu_ih_ring, entry: amdgpu_iv_entry): void;
  decode_iv_ts(adev: amdgpu_device, ih: amdgpu_ih_ring, rptr: number, offset: number): number;
  set_rptr(adev: amdgpu_device, ih: amdgpu_ih_ring): void;
}

export class amdgpu_iv_entry {
  ih: amdgpu_ih_ring | null = null;
  client_id = 0;
  src_id = 0;
  ring_id = 0;
  vmid = 0;
  vmid_src = 0;
  timestamp = 0;
  timestamp_src = 0;
  pasid = 0;
  node_id = 0;
  src_data: number[] = [0, 0, 0, 0];
  /** The raw vector (8 dwords), what KFD receives. */
  iv_entry = new Uint32Array(8);
}

export class amdgpu_ih_ring {
  ring_size = 0;
  ptr_mask = 0;
  /** Byte offset of the next vector to process. */
  rptr = 0;
  enabled = false;
  overflow = false;
  use_bus_addr = true;
  use_doorbell = false;
  doorbell_index = 0;
  gpu_addr = 0;
  /** Bus address of the wptr writeback dword (right after the ring). */
  wptr_addr = 0;
  rptr_addr = 0;
  /** Largest timestamp dispatched so far. */
  processed_timestamp = 0;
  mem: dma_coherent | null = null;
  regs: amdgpu_ih_regs | null = null;
  wait_process: wait_queue_head_t;
  /**
   * kemu: the decoded vector amdgpu_irq_dispatch() works on — the kernel's on-stack entry. One
   * per ring is enough: a ring is drained by one context at a time, one vector after another.
   */
  readonly iv = new amdgpu_iv_entry();

  constructor(
    adev: amdgpu_device,
    readonly name: string,
  ) {
    this.wait_process = new wait_queue_head_t(adev.k, `${name}_wait_process`);
  }

  /** *ih->wptr_cpu */
  wptr_cpu(): number {
    return this.mem!.cpu.rd32(this.ring_size);
  }

  set_wptr_cpu(v: number): void {
    this.mem!.cpu.wr32(this.ring_size, v);
  }

  /** The ring dword at byte offset `off`. */
  rd(off: number): number {
    return this.mem!.cpu.rd32(off);
  }
}

/** amdgpu_ih_ring_init(): coherent memory for the ring plus wptr and rptr dwords after it. */
export function amdgpu_ih_ring_init(adev: amdgpu_device, ih: amdgpu_ih_ring, ring_size: number, use_bus_addr: boolean): number {
  const rb_bufsz = Math.log2(ring_size / 4);
  if (!Number.isInteger(rb_bufsz)) return -EINVAL;
  ih.ring_size = ring_size;
  ih.ptr_mask = ring_size - 1;
  ih.rptr = 0;
  ih.use_bus_addr = use_bus_addr;
  const mem = dma_alloc_coherent(adev.k, adev.dev, ring_size + 8, GFP_KERNEL);
  if (!mem) return -ENOMEM;
  ih.mem = mem;
  ih.gpu_addr = mem.dma_handle;
  ih.wptr_addr = mem.dma_handle + ring_size;
  ih.rptr_addr = mem.dma_handle + ring_size + 4;
  return 0;
}

export function amdgpu_ih_ring_fini(adev: amdgpu_device, ih: amdgpu_ih_ring): void {
  if (!ih.mem) return;
  dma_free_coherent(adev.dev, ih.mem);
  ih.mem = null;
  ih.ring_size = 0;
}

/**
 * amdgpu_ih_ring_write(): the CPU appends `num_dw` dwords (the software ring). The new wptr is
 * committed only if it does not run into rptr; a full ring drops the vector.
 */
export function amdgpu_ih_ring_write(adev: amdgpu_device, ih: amdgpu_ih_ring, iv: Uint32Array, num_dw: number): void {
  if (!ih.mem) return;
  const wptr = ih.wptr_cpu();
  for (let i = 0; i < num_dw; i++) ih.mem.cpu.wr32((wptr + 4 * i) % ih.ring_size, iv[i]!);
  const next = (wptr + 4 * num_dw) & ih.ptr_mask;
  if (next !== ih.rptr) ih.set_wptr_cpu(next);
  else adev.k.pr_debug(`amdgpu: ${ih.name} full, vector dropped`);
}

/** amdgpu_ih_ts_after(): timestamp t2 is after t1, allowing for the 48-bit wrap. */
export function amdgpu_ih_ts_after(t1: number, t2: number): boolean {
  const d = (t2 - t1 + 2 ** 48) % 2 ** 48;
  return d > 0 && d < 2 ** 47;
}

/**
 * amdgpu_ih_wait_on_checkpoint_process_ts(): waits (up to 1 s) until every vector present now
 * has been processed; 0, -ETIMEDOUT or -ERESTARTSYS.
 */
export async function amdgpu_ih_wait_on_checkpoint_process_ts(adev: amdgpu_device, ih: amdgpu_ih_ring): Promise<number> {
  if (!ih.enabled || adev.shutdown) return -ENOMEM;
  const funcs = adev.irq.ih_funcs!;
  const wptr = funcs.get_wptr(adev, ih);
  if (wptr === ih.rptr) return 0;
  const checkpoint_ts = funcs.decode_iv_ts(adev, ih, wptr, -1);
  const ret = await wait_event_interruptible_timeout(ih.wait_process,
    () => !amdgpu_ih_ts_after(ih.processed_timestamp, checkpoint_ts) || ih.rptr === funcs.get_wptr(adev, ih),
    msecs_to_jiffies(1000));
  return ret === 0 ? -ETIMEDOUT : ret < 0 ? ret : 0;
}

/** amdgpu_ih_decode_iv_helper(): the soc15 vector layout (hw/amdgpu/ih.ts documents it). */
export function amdgpu_ih_decode_iv_helper(_adev: amdgpu_device, ih: amdgpu_ih_ring, entry: amdgpu_iv_entry): void {
  const ring_index = ih.rptr;
  const dw = entry.iv_entry;
  for (let i = 0; i < 8; i++) dw[i] = ih.rd(ring_index + 4 * i);
  entry.client_id = dw[0]! & 0xff;
  entry.src_id = (dw[0]! >>> 8) & 0xff;
  entry.ring_id = (dw[0]! >>> 16) & 0xff;
  entry.vmid = (dw[0]! >>> 24) & 0xf;
  entry.vmid_src = dw[0]! >>> 31;
  entry.timestamp = dw[1]! + (dw[2]! & 0xffff) * 2 ** 32;
  entry.timestamp_src = dw[2]! >>> 31;
  entry.pasid = dw[3]! & 0xffff;
  entry.node_id = (dw[3]! >>> 16) & 0xff;
  const sd = entry.src_data;
  sd[0] = dw[4]!;
  sd[1] = dw[5]!;
  sd[2] = dw[6]!;
  sd[3] = dw[7]!;
  // wptr/rptr are in bytes; one vector is 32 of them.
  ih.rptr = (ring_index + 32) & ih.ptr_mask;
}

/** amdgpu_ih_decode_iv_ts_helper(): the timestamp of the vector `offset` entries from `rptr`. */
export function amdgpu_ih_decode_iv_ts_helper(ih: amdgpu_ih_ring, rptr: number, offset: number): number {
  const index = (rptr + offset * 32 + ih.ring_size) & ih.ptr_mask;
  return ih.rd(index + 4) + (ih.rd(index + 8) & 0xffff) * 2 ** 32;
}

/**
 * amdgpu_ih_process() for the hard-IRQ path (the main ring): every IRQ source it reaches runs
 * in atomic context, so a sleeping source (one returning a promise) is a driver bug.
 */
export function amdgpu_ih_process_irq(adev: amdgpu_device, ih: amdgpu_ih_ring): irqreturn_t {
  using _ = ftrace(adev.k, "amdgpu_ih_process");
  if (!ih.enabled || adev.shutdown) return IRQ_NONE;
  const funcs = adev.irq.ih_funcs!;
  let wptr = funcs.get_wptr(adev, ih);
  for (;;) {
    let count = AMDGPU_IH_MAX_NUM_IVS;
    while (ih.rptr !== wptr && --count) {
      const r = amdgpu_irq_dispatch(adev, ih);
      adev.k.WARN_ON(r instanceof Promise, "amdgpu: IRQ source slept in hard-IRQ context");
      ih.rptr &= ih.ptr_mask;
    }
    funcs.set_rptr(adev, ih);
    wake_up_all(ih.wait_process);
    wptr = funcs.get_wptr(adev, ih);
    if (wptr === ih.rptr || ih.overflow) break;
  }
  ih.overflow = false;
  return IRQ_HANDLED;
}

/** amdgpu_ih_process() for the rings processed by work items (ih1, ih_soft): sources may sleep. */
export async function amdgpu_ih_process(adev: amdgpu_device, ih: amdgpu_ih_ring): Promise<irqreturn_t> {
  using _ = ftrace(adev.k, "amdgpu_ih_process");
  if (!ih.enabled || adev.shutdown) return IRQ_NONE;
  const funcs = adev.irq.ih_funcs!;
  let wptr = funcs.get_wptr(adev, ih);
  for (;;) {
    let count = AMDGPU_IH_MAX_NUM_IVS;
    while (ih.rptr !== wptr && --count) {
      const r = amdgpu_irq_dispatch(adev, ih);
      if (r instanceof Promise) await r;
      ih.rptr &= ih.ptr_mask;
    }
    funcs.set_rptr(adev, ih);
    wake_up_all(ih.wait_process);
    wptr = funcs.get_wptr(adev, ih);
    if (wptr === ih.rptr || ih.overflow) break;
  }
  ih.overflow = false;
  return IRQ_HANDLED;
}

// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_interrupt.c (Linux 6.8): interrupt vectors amdgpu did
// not handle reach kgd2kfd_interrupt() in hard-IRQ context. A node that wants the vector (the
// ASIC's isr decides) copies it into its ring and schedules its interrupt work, which runs the
// ASIC's handler in process context (signals events, reports VM faults).

import { spin_lock_irqsave, spin_unlock_irqrestore, type spinlock_t } from "../../../../../kernel/locking/spinlock.ts";
import { INIT_WORK } from "../../../../../kernel/workqueue.ts";
import type { kfd_dev, kfd_node } from "./kfd_priv.ts";
import { event_interrupt_isr_v9, event_interrupt_wq_v9 } from "./kfd_int_process_v9.ts";
import { ftrace } from "../../../../../include/linux/ftrace.ts";

/** KFD_IH_NUM_ENTRIES: the ring's capacity in vectors. */
const KFD_IH_NUM_ENTRIES = 8192;

function interrupt_lock(node: kfd_node): spinlock_t {
  return node.interrupt_lock;
}

/** interrupt_wq(): drain the node's ring. */
async function interrupt_wq(node: kfd_node): Promise<void> {
  using _ = ftrace(node.k, "interrupt_wq");
  for (;;) {
    const flags = spin_lock_irqsave(interrupt_lock(node));
    const ih = node.ih_fifo.shift();
    spin_unlock_irqrestore(interrupt_lock(node), flags);
    if (!ih) return;
    await event_interrupt_wq_v9(node, ih);
  }
}

export function kfd_interrupt_init(node: kfd_node): number {
  INIT_WORK(node.interrupt_work, () => interrupt_wq(node), "interrupt_wq");
  node.interrupts_active = true;
  return 0;
}

/** kfd_interrupt_exit(): stop taking vectors and finish what was queued. */
export async function kfd_interrupt_exit(node: kfd_node): Promise<void> {
  const flags = spin_lock_irqsave(interrupt_lock(node));
  node.interrupts_active = false;
  spin_unlock_irqrestore(interrupt_lock(node), flags);
  await node.kfd.amdkfd.wqs.flush_work(node.interrupt_work);
  node.ih_fifo.length = 0;
}

/** enqueue_ih_ring_entry(): false (and a rate-limited complaint) when the ring is full. */
function enqueue_ih_ring_entry(node: kfd_node, ih_ring_entry: Uint32Array): boolean {
  if (node.ih_fifo.length >= KFD_IH_NUM_ENTRIES) {
    node.k.dev_warn(node.adev, "KFD: Interrupt ring overflow, dropping interrupt");
    return false;
  }
  node.ih_fifo.push(ih_ring_entry.slice());
  return true;
}

/** kgd2kfd_interrupt(): hard-IRQ context, must not sleep. */
export function kgd2kfd_interrupt(kfd: kfd_dev, ih_ring_entry: Uint32Array): void {
  if (!kfd.init_complete) return;
  for (const node of kfd.nodes) {
    const flags = spin_lock_irqsave(interrupt_lock(node));
    const patched = ih_ring_entry.slice();
    const wanted = node.interrupts_active && event_interrupt_isr_v9(node, ih_ring_entry, patched);
    if (wanted && enqueue_ih_ring_entry(node, patched)) {
      kfd.amdkfd.wqs.queue_work(kfd.amdkfd.kfd_ih_wq!, node.interrupt_work);
      spin_unlock_irqrestore(interrupt_lock(node), flags);
      return;
    }
    spin_unlock_irqrestore(interrupt_lock(node), flags);
  }
}

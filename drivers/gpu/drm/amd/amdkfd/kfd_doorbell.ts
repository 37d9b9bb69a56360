// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_doorbell.c (Linux 6.8): each process gets a slice of
// the GPU's doorbell BAR on first use — room for KFD_MAX_NUM_OF_QUEUES_PER_PROCESS 64-bit
// doorbells — and each user queue one doorbell in it. The kernel's own rings keep the first
// page of the BAR.
//
// kemu: the slice is an index into the BAR rather than a doorbell BO, and user space is told
// the doorbell's byte offset in the BAR (kemu's CPU has no MMIO mappings of BARs for user
// processes; the thunk writes doorbells through the PCI host bridge at BAR2 + that offset).

import { ENOSPC } from "../../../../../include/uapi/asm-generic/errno.ts";
import { KFD_MAX_NUM_OF_QUEUES_PER_PROCESS, type kfd_process_device } from "./kfd_priv.ts";

/** SOC15 doorbells are 64-bit. */
export const KFD_DOORBELL_SIZE = 8;
/** kfd_doorbell_process_slice(): bytes of BAR per process (8 KiB, two pages). */
export const KFD_DOORBELL_PROCESS_SLICE = KFD_DOORBELL_SIZE * KFD_MAX_NUM_OF_QUEUES_PER_PROCESS;

/** Per-device state: which slices are taken (kfd->doorbell_bitmap), and how many there are. */
export class kfd_doorbell_state {
  readonly slices = new Set<number>();
  constructor(readonly nr_slices: number) {}
}

export function kfd_doorbell_init(doorbell_bar_size: number): kfd_doorbell_state {
  // Slice 0 is the kernel's page(s).
  return new kfd_doorbell_state(Math.floor(doorbell_bar_size / KFD_DOORBELL_PROCESS_SLICE) - 1);
}

/** kfd_alloc_process_doorbells(): a slice for `pdd` (idempotent). */
export function kfd_alloc_process_doorbells(st: kfd_doorbell_state, pdd: kfd_process_device): number {
  if (pdd.doorbell_index >= 0) return 0;
  for (let i = 1; i <= st.nr_slices; i++) {
    if (st.slices.has(i)) continue;
    st.slices.add(i);
    pdd.doorbell_index = i;
    return 0;
  }
  return -ENOSPC;
}

export function kfd_free_process_doorbells(st: kfd_doorbell_state, pdd: kfd_process_device): void {
  if (pdd.doorbell_index < 0) return;
  st.slices.delete(pdd.doorbell_index);
  pdd.doorbell_index = -1;
}

/** kfd_get_doorbell_dw_offset_in_bar(): the dword index of doorbell `doorbell_id` of `pdd`. */
export function kfd_get_doorbell_dw_offset_in_bar(pdd: kfd_process_device, doorbell_id: number): number {
  return (pdd.doorbell_index * KFD_DOORBELL_PROCESS_SLICE + doorbell_id * KFD_DOORBELL_SIZE) / 4;
}

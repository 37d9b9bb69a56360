// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_int_process_v9.c (Linux 6.8): which vectors KFD takes
// (its own VMIDs only; without HWS the PASID is patched in from the VMID table) and what they
// mean: a CP end-of-pipe or SDMA trap sets a signal event; a VM fault on a KFD VMID is a memory
// violation — the process's queues stop and its memory-exception events fire with the faulting
// address; an SQ exception (illegal instruction) stops the queues too.

import {
  SOC15_IH_CLIENTID_GRBM_CP, SOC15_IH_CLIENTID_SDMA0, SOC15_IH_CLIENTID_SDMA1, SOC15_IH_CLIENTID_SE0SH,
  SOC15_IH_CLIENTID_UTCL2, SOC15_IH_CLIENTID_VMC, SOC15_IH_CLIENTID_VMC1,
} from "../include/soc15_ih_clientid.ts";
import {
  GFX_9_0__SRCID__CP_EOP_INTERRUPT, GFX_9_0__SRCID__SQ_INTERRUPT_ID, SDMA0_4_0__SRCID__SDMA_TRAP,
} from "../include/ivsrcid/ivsrcid.ts";
import { KFD_SCHED_POLICY_NO_HWS, type kfd_node } from "./kfd_priv.ts";
import { kfd_signal_event_interrupt, kfd_signal_vm_fault_event, kfd_vm_fault_exception_data } from "./kfd_events.ts";
import { kfd_dqm_evict_pasid } from "./kfd_device_queue_manager.ts";
import { kfd_smi_event_update_vmfault } from "./kfd_smi_events.ts";
import { ftrace } from "../../../../../include/linux/ftrace.ts";

// SOC15_*_FROM_IH_ENTRY(): fields of the 8-dword vector.
const client_id_of = (e: Uint32Array): number => e[0]! & 0xff;
const source_id_of = (e: Uint32Array): number => (e[0]! >>> 8) & 0xff;
const vmid_of = (e: Uint32Array): number => (e[0]! >>> 24) & 0xf;
const pasid_of = (e: Uint32Array): number => e[3]! & 0xffff;

function is_vm_fault_client(client_id: number): boolean {
  return client_id === SOC15_IH_CLIENTID_VMC || client_id === SOC15_IH_CLIENTID_VMC1 || client_id === SOC15_IH_CLIENTID_UTCL2;
}

/**
 * event_interrupt_isr_v9(): hard-IRQ filter. Only vectors of KFD VMIDs; without HWS the
 * vector's PASID field is empty, so it is patched from the VMID→PASID table.
 */
export function event_interrupt_isr_v9(dev: kfd_node, ih_ring_entry: Uint32Array, patched: Uint32Array): boolean {
  const vmid = vmid_of(ih_ring_entry);
  if (vmid < dev.vm_info.first_vmid_kfd || vmid > dev.vm_info.last_vmid_kfd) return false;
  let pasid = pasid_of(ih_ring_entry);
  if (!pasid && dev.dqm.sched_policy === KFD_SCHED_POLICY_NO_HWS) {
    pasid = dev.dqm.vmid_pasid[vmid]!;
    patched[3] = ((patched[3]! & 0xffff0000) | pasid) >>> 0;
  }
  if (dev.k.WARN_ONCE(pasid === 0, `Bug: No PASID in KFD interrupt`)) return false;
  const source_id = source_id_of(ih_ring_entry);
  const client_id = client_id_of(ih_ring_entry);
  return source_id === GFX_9_0__SRCID__CP_EOP_INTERRUPT || source_id === SDMA0_4_0__SRCID__SDMA_TRAP ||
    source_id === GFX_9_0__SRCID__SQ_INTERRUPT_ID || is_vm_fault_client(client_id);
}

/** event_interrupt_wq_v9(): process context. */
export async function event_interrupt_wq_v9(dev: kfd_node, e: Uint32Array): Promise<void> {
  using _ = ftrace(dev.k, "event_interrupt_wq_v9");
  const client_id = client_id_of(e);
  const source_id = source_id_of(e);
  const pasid = pasid_of(e);
  const context_id0 = e[4]!;
  if (client_id === SOC15_IH_CLIENTID_GRBM_CP || client_id === SOC15_IH_CLIENTID_SE0SH) {
    if (source_id === GFX_9_0__SRCID__CP_EOP_INTERRUPT) {
      kfd_signal_event_interrupt(dev, pasid, context_id0, 32);
    } else if (source_id === GFX_9_0__SRCID__SQ_INTERRUPT_ID) {
      dev.k.dev_err(dev.adev, `KFD: SQ exception (illegal instruction) in pasid 0x${pasid.toString(16)}: queues stopped`);
      await kfd_dqm_evict_pasid(dev.dqm, pasid);
    }
  } else if (client_id === SOC15_IH_CLIENTID_SDMA0 || client_id === SOC15_IH_CLIENTID_SDMA1) {
    if (source_id === SDMA0_4_0__SRCID__SDMA_TRAP) kfd_signal_event_interrupt(dev, pasid, context_id0 & 0xfffffff, 28);
  } else if (is_vm_fault_client(client_id)) {
    // The faulting page: src_data[0] has address bits 43:12, src_data[1] bits 47:44 and the
    // write bit (5) — the same words gmc_v9 decodes.
    const page_addr = e[4]! + (e[5]! & 0xf) * 2 ** 32;
    const write = (e[5]! & 0x20) !== 0;
    const data = kfd_vm_fault_exception_data(dev, page_addr, write, write);
    // A memory violation is fatal to the process's queues (kfd_set_dbg_ev_from_interrupt
    // for a process no debugger watches).
    await kfd_dqm_evict_pasid(dev.dqm, pasid);
    kfd_signal_vm_fault_event(dev, pasid, data);
    kfd_smi_event_update_vmfault(dev, pasid);
  }
}

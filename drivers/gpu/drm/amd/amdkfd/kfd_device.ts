// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_device.c (Linux 6.8): the kgd2kfd_* entry points
// amdgpu calls per device — probe (does KFD drive this GPU?), init (node, queue manager,
// interrupts, topology), exit — and the mm-level quiesce/resume that SVM eviction uses.

import { ESRCH } from "../../../../../include/uapi/asm-generic/errno.ts";
import type { mm_struct } from "../../../../../include/linux/mm_types.ts";
import type { amdgpu_device } from "../amdgpu/amdgpu.ts";
import { kfd_dev, kfd_node, type kfd_device_info } from "./kfd_priv.ts";
import type { amdkfd } from "./kfd_module.ts";
import { device_queue_manager_init } from "./kfd_device_queue_manager.ts";
import { kfd_interrupt_exit, kfd_interrupt_init } from "./kfd_interrupt.ts";
import { kfd_topology_add_device, kfd_topology_remove_device } from "./kfd_topology.ts";
import { kfd_lookup_process_by_mm, kfd_process_evict_queues, kfd_process_restore_queues, kfd_unref_process } from "./kfd_process.ts";
import { svm_range_set_max_pages } from "./kfd_svm.ts";

/** The ASICs KFD drives in kemu: GFX9 (gfx90a) and GFX10 (navi10), both SOC15. */
function kfd_device_info_init(adev: amdgpu_device): kfd_device_info | null {
  const gc = adev.ip_versions.gc;
  if (gc[0] !== 9 && gc[0] !== 10) return null;
  return {
    ih_ring_entry_size: 8 * 4,
    doorbell_size: 8,
    mqd_size_aligned: 1024,
    needs_iommu_device: false,
    supports_cwsr: true,
    needs_pci_atomics: gc[0] === 10,
    num_sdma_queues_per_engine: 8,
    num_reserved_sdma_queues_per_engine: 0,
    event_interrupt_class: "event_interrupt_class_v9",
  };
}

/** kgd2kfd_probe(): the KFD device of `adev`, or null for a GPU KFD does not drive. */
export function kgd2kfd_probe(kfd: amdkfd, adev: amdgpu_device): kfd_dev | null {
  const info = kfd_device_info_init(adev);
  if (!info) {
    adev.k.dev_warn(adev, `kfd: skipped device ${adev.pdev.vendor.toString(16)}:${adev.pdev.device.toString(16)}, PCI rejects atomics`);
    return null;
  }
  const dev = new kfd_dev(kfd, adev, info);
  dev.noretry = adev.gmc.noretry !== 0;
  return dev;
}

/**
 * kgd2kfd_device_init(): one compute node with the KFD VMIDs (first_kfd_vmid..15), its queue
 * manager and interrupt handling, a topology node (its gpu_id), the SVM range chunk size.
 */
export async function kgd2kfd_device_init(kfd: kfd_dev): Promise<boolean> {
  const adev = kfd.adev;
  const amdkfd = kfd.amdkfd;
  const first = adev.vm_manager.first_kfd_vmid;
  const node = new kfd_node(kfd, adev, { first_vmid_kfd: first, last_vmid_kfd: 15, vmid_num_kfd: 16 - first });
  amdkfd.kfd_ih_wq ??= amdkfd.wqs.alloc_workqueue("KFD IH", 0, 0);
  const dqm = device_queue_manager_init(node);
  if (!dqm) {
    adev.k.dev_err(adev, "kfd: Error initializing queue manager");
    return false;
  }
  node.dqm = dqm;
  kfd.nodes.push(node);
  kfd.num_nodes = 1;
  if (kfd_interrupt_init(node)) return false;
  dqm.ops.start(dqm);
  if (await kfd_topology_add_device(node)) {
    adev.k.dev_err(adev, "kfd: Error adding device to topology");
    await kfd_interrupt_exit(node);
    kfd.nodes.length = 0;
    kfd.num_nodes = 0;
    return false;
  }
  svm_range_set_max_pages(adev);
  amdkfd.devices.push(kfd);
  kfd.init_complete = true;
  adev.k.dev_info(adev, `kfd: added device ${adev.pdev.vendor.toString(16)}:${adev.pdev.device.toString(16)}`);
  return true;
}

/** kgd2kfd_device_exit(): the node leaves the topology; interrupts stop. */
export async function kgd2kfd_device_exit(kfd: kfd_dev): Promise<void> {
  if (!kfd.init_complete) return;
  for (const node of kfd.nodes) {
    node.dqm.ops.stop(node.dqm);
    await kfd_interrupt_exit(node);
    await kfd_topology_remove_device(node);
  }
  kfd.nodes.length = 0;
  kfd.num_nodes = 0;
  kfd.init_complete = false;
  const i = kfd.amdkfd.devices.indexOf(kfd);
  if (i >= 0) kfd.amdkfd.devices.splice(i, 1);
}

/** kgd2kfd_quiesce_mm(): stop every queue of the process of `mm` (SVM eviction). */
export async function kgd2kfd_quiesce_mm(kfd: amdkfd, mm: mm_struct, trigger: number): Promise<number> {
  const p = kfd_lookup_process_by_mm(kfd, mm);
  if (!p) return -ESRCH;
  const r = await kfd_process_evict_queues(p, trigger);
  kfd_unref_process(p);
  return r;
}

/** kgd2kfd_resume_mm(): restart them (SVM restore). */
export async function kgd2kfd_resume_mm(kfd: amdkfd, mm: mm_struct): Promise<number> {
  const p = kfd_lookup_process_by_mm(kfd, mm);
  if (!p) return -ESRCH;
  const r = await kfd_process_restore_queues(p);
  kfd_unref_process(p);
  return r;
}

/** kfd_node_by_irq_ids(): the node of a vector; kemu's devices are not partitioned. */
export function kfd_node_by_irq_ids(adev: amdgpu_device, _node_id: number, _vmid: number): kfd_node | null {
  const kfd = adev.kfd.dev as kfd_dev | null;
  return kfd?.nodes[0] ?? null;
}

// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_device.c (Linux 6.8): the kgd2kfd_* entry points
// amdgpu calls per device — probe (does KFD drive this GPU?), init (node, queue manager,
// interrupts, topology), exit — and the mm-level quiesce/resume that SVM eviction uses.

import { EINVAL, ENODEV, ESRCH } from "../../../../../include/uapi/asm-generic/errno.ts";
import type { mm_struct } from "../../../../../include/linux/mm_types.ts";
import type { amdgpu_device } from "../amdgpu/amdgpu.ts";
import { kfd_dev, kfd_node, type kfd_device_info, type kfd_process, type kfd_process_device } from "./kfd_priv.ts";
import type { amdkfd } from "./kfd_module.ts";
import { device_queue_manager_init } from "./kfd_device_queue_manager.ts";
import { kfd_interrupt_exit, kfd_interrupt_init } from "./kfd_interrupt.ts";
import { kfd_topology_add_device, kfd_topology_remove_device } from "./kfd_topology.ts";
import { kfd_lookup_process_by_mm, kfd_process_evict_queues, kfd_process_restore_queues, kfd_unref_process } from "./kfd_process.ts";
import { svm_range_set_max_pages } from "./kfd_svm.ts";
import { kgd2kfd_fini_zone_device, kgd2kfd_init_zone_device } from "./kfd_migrate.ts";
import { ftrace } from "../../../../../include/linux/ftrace.ts";
import { amd_iommu_v2_get, amd_iommu_v2_put } from "../../../../../iommu/amd/iommu_v2.ts";
import {
  kfd_iommu_attach, kfd_iommu_detach, kfd_iommu_device_init, kfd_iommu_resume, kfd_iommu_suspend, kfd_uses_iommu_v2,
  type kfd_iommu_host,
} from "./kfd_iommu.ts";
import {
  kfd_get_process_device_data, kfd_lookup_process_by_pasid, kfd_process_dequeue_from_device,
} from "./kfd_process.ts";
import { KFD_EVENT_TYPE_MEMORY, lookup_events_by_type_and_signal } from "./kfd_events.ts";

/**
 * The ASICs KFD drives in kemu: GFX9 (gfx90a) and GFX10 (navi10), both SOC15, and the Carrizo
 * APU (GC 8.0.1), which as in Linux ≤6.5 needs the IOMMU (IOMMUv2: its GPU uses process memory
 * through the PASID). kemu's Carrizo model speaks the GFX9 register and IV formats.
 */
function kfd_device_info_init(adev: amdgpu_device): kfd_device_info | null {
  const gc = adev.ip_versions.gc;
  const carrizo = gc[0] === 8 && gc[1] === 0 && gc[2] === 1;
  if (gc[0] !== 9 && gc[0] !== 10 && !carrizo) return null;
  return {
    ih_ring_entry_size: 8 * 4,
    doorbell_size: 8,
    mqd_size_aligned: 1024,
    needs_iommu_device: carrizo,
    supports_cwsr: true,
    needs_pci_atomics: gc[0] === 10,
    // kemu's SDMA engines have SDMA_RLC_QUEUES (2) user queues each, as Vega10's do.
    num_sdma_queues_per_engine: 2,
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
 * kfd_cwsr_init(): queues are preempted with their waves saved when the cwsr_enable parameter
 * and the ASIC allow it. kemu's CP saves and restores waves itself: no trap handler is copied.
 */
function kfd_cwsr_init(kfd: kfd_dev): void {
  kfd.cwsr_enabled = Boolean(kfd.amdkfd.cwsr_enable) && kfd.device_info.supports_cwsr;
}

/**
 * kgd2kfd_device_init(): one compute node with the KFD VMIDs (first_kfd_vmid..15), its queue
 * manager and interrupt handling, a topology node (its gpu_id), the SVM range chunk size.
 */
export async function kgd2kfd_device_init(kfd: kfd_dev): Promise<boolean> {
  const adev = kfd.adev;
  const amdkfd = kfd.amdkfd;
  const first = adev.vm_manager.first_kfd_vmid;
  kfd_cwsr_init(kfd);
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
  if (kfd.device_info.needs_iommu_device && kfd_iommu_init(kfd, node)) {
    kfd.nodes.length = 0;
    kfd.num_nodes = 0;
    return false;
  }
  if (kfd_interrupt_init(node)) {
    kfd_iommu_fini(kfd);
    return false;
  }
  dqm.ops.start(dqm);
  // The VRAM pagemap for SVM migration (before the topology reports HSA_CAP_SVMAPI_SUPPORTED);
  // without it ranges simply stay in system memory.
  if (amdkfd.svm_migrate && (await kgd2kfd_init_zone_device(amdkfd, adev))) adev.k.dev_warn(adev, "kfd: SVM VRAM migration disabled");
  // kfd_resume() → kfd_resume_iommu(): amd_iommu_init_device and the two callbacks.
  const iommu_err = await kfd_iommu_resume(kfd);
  if (iommu_err) adev.k.dev_err(adev, `kfd: Failed to resume IOMMU for device ${adev.pdev.vendor.toString(16)}:${adev.pdev.device.toString(16)}`);
  if (iommu_err || (await kfd_topology_add_device(node))) {
    if (!iommu_err) adev.k.dev_err(adev, "kfd: Error adding device to topology");
    await kgd2kfd_fini_zone_device(amdkfd, adev);
    await kfd_interrupt_exit(node);
    kfd_iommu_fini(kfd);
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
  await kgd2kfd_fini_zone_device(kfd.amdkfd, kfd.adev);
  // amd_iommu_free_device before the device goes (kfd_iommu_suspend's teardown).
  await kfd_iommu_suspend(kfd);
  kfd_iommu_fini(kfd);
  kfd.nodes.length = 0;
  kfd.num_nodes = 0;
  kfd.init_complete = false;
  const i = kfd.amdkfd.devices.indexOf(kfd);
  if (i >= 0) kfd.amdkfd.devices.splice(i, 1);
}

/** kgd2kfd_quiesce_mm(): stop every queue of the process of `mm` (SVM eviction). */
export async function kgd2kfd_quiesce_mm(kfd: amdkfd, mm: mm_struct, trigger: number): Promise<number> {
  using _ = ftrace(mm.k, "kgd2kfd_quiesce_mm");
  const p = kfd_lookup_process_by_mm(kfd, mm);
  if (!p) return -ESRCH;
  const r = await kfd_process_evict_queues(p, trigger);
  kfd_unref_process(p);
  return r;
}

/** kgd2kfd_resume_mm(): restart them (SVM restore). */
export async function kgd2kfd_resume_mm(kfd: amdkfd, mm: mm_struct): Promise<number> {
  using _ = ftrace(mm.k, "kgd2kfd_resume_mm");
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

// ---- IOMMUv2 APUs (Linux ≤6.5) -------------------------------------------------------------

/** The KFD functions kfd_iommu.ts calls back into (see kfd_iommu_host there). */
function kfd_iommu_host_of(amdkfd: amdkfd): kfd_iommu_host<kfd_process, kfd_process_device> {
  return {
    k: amdkfd.k,
    max_pasid_bits: 16,
    gc_version: (node) => (node as kfd_node).adev.ip_versions.gc,
    kfd_lookup_process_by_pasid: (pasid) => kfd_lookup_process_by_pasid(amdkfd, pasid),
    kfd_unref_process,
    kfd_get_process_device_data: (dev, p) => kfd_get_process_device_data(dev as kfd_node, p),
    kfd_process_dequeue_from_device,
    kfd_processes: () => [...amdkfd.kfd_processes_table.values()],
    kfd_process_get_user_gpu_id: (p, gpu_id) => p.pdds.find((pdd) => pdd.dev.id === gpu_id)?.user_gpu_id ?? -EINVAL,
    kfd_signal_memory_events: (p, data) => lookup_events_by_type_and_signal(p, KFD_EVENT_TYPE_MEMORY, data),
  };
}

/**
 * kgd2kfd_probe()'s use_iommu_v2 and kfd_iommu_device_init(): take the amd_iommu_v2 module (the
 * symbols 6.5's amdkfd links against) and check the IOMMU serves this GPU. Non-zero: no KFD.
 */
function kfd_iommu_init(kfd: kfd_dev, node: kfd_node): number {
  const amdkfd = kfd.amdkfd;
  const v2 = amd_iommu_v2_get(amdkfd.loader);
  if (!v2) {
    amdkfd.k.dev_err(kfd.adev, "kfd: Error initializing iommuv2");
    return -ENODEV;
  }
  kfd_iommu_attach(kfd, node, amdkfd.amd_iommu, v2, kfd_iommu_host_of(amdkfd));
  const err = kfd_iommu_device_init(kfd);
  if (err) {
    amdkfd.k.dev_err(kfd.adev, "kfd: Error initializing iommuv2");
    kfd_iommu_fini(kfd);
  }
  return err;
}

/** Drops what kfd_iommu_init took. */
function kfd_iommu_fini(kfd: kfd_dev): void {
  if (!kfd_uses_iommu_v2(kfd)) return;
  kfd_iommu_detach(kfd);
  amd_iommu_v2_put(kfd.amdkfd.loader);
}

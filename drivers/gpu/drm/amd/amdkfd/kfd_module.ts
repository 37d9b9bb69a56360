// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_module.c (Linux 6.8): kgd2kfd_init()/kgd2kfd_exit(),
// amdkfd's init and exit — the character device, the topology, the process workqueues and the
// procfs directory — and the kgd2kfd entry points amdgpu calls.
//
// kemu builds amdkfd as its own module (as Linux did before 4.20): its init registers the
// kgd2kfd table with amdgpu (amdgpu_amdkfd_register_kfd), which probes and initialises every
// amdgpu device already up and each one that comes later. The module-scope statics of the
// amdkfd files (the chardev, the topology list, the process table, the PASID allocator, the
// KFD memory limits of amdgpu_amdkfd_gpuvm.c) are the fields of the module object, one per
// machine; every KFD object reaches it through its device or process. Module parameters
// (sched_policy, svm_debug_checks) are fields too.

import { inject, injectable } from "tsyringe";
import type { KernelModule, ModuleDef, ModuleLoader, ModuleParams } from "../../../../../kernel/module/main.ts";
import { AMD_IOMMU, CHRDEV, DRIVER_CORE, KERNEL, MEMREMAP, MODULES, SLAB, SYSFS, VFS, WORKQUEUE } from "../../../../../kernel/tokens.ts";
import type { Slab } from "../../../../../mm/slab_common.ts";
import type { AmdIommu } from "../../../../../iommu/amd/iommu.ts";
import type { MemRemap } from "../../../../../mm/memremap.ts";
import { kfd_migrate_hooks, kfd_svm_bo_eviction_valuable } from "./kfd_migrate.ts";
import type { Vfs } from "../../../../../fs/namespace.ts";
import { flush_delayed_fput } from "../../../../../fs/file_table.ts";
import type { Kernel } from "../../../../../kernel/kernel.ts";
import type { Workqueues, workqueue_struct } from "../../../../../kernel/workqueue.ts";
import type { CharDevices } from "../../../../../fs/char_dev.ts";
import type { DriverCore, class_, device } from "../../../../base/core.ts";
import type { Sysfs } from "../../../../../fs/sysfs/mount.ts";
import type { mm_struct } from "../../../../../include/linux/mm_types.ts";
import type { kobject } from "../../../../../include/linux/sysfs.ts";
import type { mmu_notifier_ops } from "../../../../../mm/mmu_notifier.ts";
import { mutex } from "../../../../../kernel/locking/mutex.ts";
import { rw_semaphore } from "../../../../../kernel/locking/rwsem.ts";
import { wait_queue_head_t } from "../../../../../kernel/sched/wait.ts";
import { KFD_SCHED_POLICY_NO_HWS, type kfd_dev, type kfd_process } from "./kfd_priv.ts";
import type { svm_migrate_hooks } from "./kfd_svm.ts";
import type { kfd_topology_device, kfd_system_properties } from "./kfd_topology.ts";
import { kfd_chardev_exit, kfd_chardev_init } from "./kfd_chardev.ts";
import { kfd_topology_init, kfd_topology_shutdown } from "./kfd_topology.ts";
import {
  kfd_cleanup_processes, kfd_procfs_init, kfd_procfs_shutdown, kfd_process_create_wq, kfd_process_destroy_wq,
} from "./kfd_process.ts";
import { kgd2kfd_device_exit, kgd2kfd_device_init, kgd2kfd_probe } from "./kfd_device.ts";
import { kgd2kfd_interrupt } from "./kfd_interrupt.ts";
import { svm_range_restore_pages } from "./kfd_svm.ts";
import { amdgpu_amdkfd_register_kfd, amdgpu_amdkfd_unregister_kfd, type kgd2kfd_calls } from "../amdgpu/amdgpu_amdkfd.ts";
import { amdgpu_amdkfd_gpuvm_init_mem_limits, type kfd_mem_usage_limit } from "../amdgpu/amdgpu_amdkfd_gpuvm.ts";

/** The PASIDs KFD hands out: 16 bits, 0 reserved (amdgpu_pasid_alloc(16)). */
const KFD_PASID_BITS = 16;

@injectable()
export class amdkfd implements KernelModule {
  params?: ModuleParams;
  // module parameters (amdgpu_drv.c)
  /** sched_policy: kemu's CP has no HWS firmware, so queues are loaded directly (NO_HWS). */
  sched_policy = KFD_SCHED_POLICY_NO_HWS;
  /** amdgpu.noretry: -1 follows the ASIC default. */
  noretry = -1;
  /** cwsr_enable: preempt compute queues with their waves saved (CWSR) where the ASIC supports it. */
  cwsr_enable = 1;
  /** kemu debug builds: check the §6.2 SVM invariants after each structural change. */
  svm_debug_checks = false;

  // kfd_chardev.c
  kfd_char_dev_major = -1;
  kfd_class: class_ | null = null;
  kfd_device: device | null = null;

  // kfd_topology.c
  readonly topology_device_list: kfd_topology_device[] = [];
  readonly topology_lock: rw_semaphore;
  sys_props: kfd_system_properties | null = null;
  topology_crat_proximity_domain = 0;

  // kfd_process.c
  /** kfd_process_mmu_notifier_ops (per module instance: alloc_notifier looks in this table). */
  process_mmu_notifier_ops: mmu_notifier_ops | null = null;
  /** kfd_processes_table: processes by mm. */
  readonly kfd_processes_table = new Map<mm_struct, kfd_process>();
  readonly kfd_processes_mutex: mutex;
  /**
   * Notifier releases taken out of the table but not finished (kemu: module exit waits for them,
   * the part of mmu_notifier_synchronize() that covers an exit_mmap racing with rmmod).
   */
  releases_in_flight = 0;
  readonly releases_wq: wait_queue_head_t;
  kfd_process_wq: workqueue_struct | null = null;
  kfd_restore_wq: workqueue_struct | null = null;
  /** kfd->ih_wq (one per device in the kernel): runs the nodes' interrupt work. */
  kfd_ih_wq: workqueue_struct | null = null;
  procfs_kobj: kobject | null = null;
  private readonly pasids = new Set<number>();
  private next_pasid = 1;

  // kfd_device.c
  readonly devices: kfd_dev[] = [];
  kfd_locked = 0;
  readonly kfd_processes_lock_for_suspend: mutex;

  // kfd_svm.c
  max_svm_range_pages = 0;
  /** The migration code (kfd_migrate.c) when it is built in; null means system memory only. */
  svm_migrate: svm_migrate_hooks | null = null;

  // amdgpu_amdkfd_gpuvm.c
  kfd_mem_limit!: kfd_mem_usage_limit;

  constructor(
    @inject(KERNEL) readonly k: Kernel,
    @inject(WORKQUEUE) readonly wqs: Workqueues,
    @inject(CHRDEV) readonly chrdev: CharDevices,
    @inject(DRIVER_CORE) readonly core: DriverCore,
    @inject(SYSFS) readonly sysfs: Sysfs,
    @inject(VFS) readonly vfs: Vfs,
    /** IOMMUv2 APUs (≤6.5): the AMD IOMMU driver and, through the loader, amd_iommu_v2. */
    @inject(AMD_IOMMU) readonly amd_iommu: AmdIommu,
    @inject(MODULES) readonly loader: ModuleLoader,
    @inject(MEMREMAP) readonly memremap: MemRemap,
    /** kzalloc/kfree of the driver's structs that are fault-injection sites (svm_range_bo). */
    @inject(SLAB) readonly slab: Slab,
  ) {
    this.topology_lock = new rw_semaphore(k, "topology_lock");
    this.kfd_processes_mutex = new mutex(k, "kfd_processes_mutex");
    this.releases_wq = new wait_queue_head_t(k, "kfd_process_releases");
    this.kfd_processes_lock_for_suspend = new mutex(k, "kfd_mutex");
  }

  /** kfd_pasid_alloc(): the lowest free PASID, 0 when exhausted. */
  kfd_pasid_alloc(): number {
    for (let i = 0; i < 2 ** KFD_PASID_BITS - 1; i++) {
      const pasid = ((this.next_pasid - 1 + i) % (2 ** KFD_PASID_BITS - 1)) + 1;
      if (this.pasids.has(pasid)) continue;
      this.pasids.add(pasid);
      this.next_pasid = pasid + 1;
      return pasid;
    }
    return 0;
  }

  kfd_pasid_free(pasid: number): void {
    this.pasids.delete(pasid);
  }

  /** PASIDs still allocated (the leak check). */
  pasids_in_use(): number {
    return this.pasids.size;
  }

  init(): Promise<number> {
    return amdkfd_init(this);
  }

  exit(): Promise<void> {
    return amdkfd_exit(this);
  }
}

/**
 * kfd_init(): chardev, topology, process workqueues, /sys/class/kfd/kfd/proc. The kernel also
 * sets up debugfs here; kemu's KFD has no debugfs files.
 */
async function kfd_init(kfd: amdkfd): Promise<number> {
  let err = await kfd_chardev_init(kfd);
  if (err < 0) return err;
  err = await kfd_topology_init(kfd);
  if (err < 0) {
    await kfd_chardev_exit(kfd);
    return err;
  }
  err = kfd_process_create_wq(kfd);
  if (err < 0) {
    await kfd_topology_shutdown(kfd);
    await kfd_chardev_exit(kfd);
    return err;
  }
  kfd_procfs_init(kfd);
  amdgpu_amdkfd_gpuvm_init_mem_limits(kfd);
  return 0;
}

async function kfd_exit(kfd: amdkfd): Promise<void> {
  kfd_procfs_shutdown(kfd);
  await kfd_process_destroy_wq(kfd);
  await kfd_topology_shutdown(kfd);
  await kfd_chardev_exit(kfd);
}

/** The kgd2kfd table amdgpu calls through (amdgpu_amdkfd.h's kgd2kfd_* declarations). */
function kgd2kfd_calls_of(kfd: amdkfd): kgd2kfd_calls {
  return {
    probe: (adev) => kgd2kfd_probe(kfd, adev),
    device_init: (_adev, dev) => kgd2kfd_device_init(dev as kfd_dev),
    device_exit: (dev) => kgd2kfd_device_exit(dev as kfd_dev),
    interrupt: (dev, ih_ring_entry) => kgd2kfd_interrupt(dev as kfd_dev, ih_ring_entry),
    svm_range_restore_pages: (adev, pasid, vmid, node_id, addr, _ts, write_fault) => svm_range_restore_pages(adev, pasid, vmid, node_id, addr, write_fault),
    // amdgpu_ttm_bo_eviction_valuable()'s KFD fence check (SVM BOs of the current process stay).
    eviction_valuable: (bo) => kfd_svm_bo_eviction_valuable(kfd, bo),
  };
}

/** kgd2kfd_init() + registration with amdgpu (module_init). */
async function amdkfd_init(kfd: amdkfd): Promise<number> {
  kfd.svm_debug_checks = kfd.params?.svm_debug_checks === true || kfd.params?.svm_debug_checks === 1;
  kfd.cwsr_enable = Number(kfd.params?.cwsr_enable ?? 1);
  // kfd_migrate.c is built in (CONFIG_HSA_AMD_SVM): SVM ranges can live in VRAM.
  kfd.svm_migrate = kfd_migrate_hooks;
  const r = await kfd_init(kfd);
  if (r) return r;
  const reg = await amdgpu_amdkfd_register_kfd(kfd.k, kgd2kfd_calls_of(kfd));
  if (reg) {
    await kfd_exit(kfd);
    return reg;
  }
  return 0;
}

/**
 * module_exit, in amdgpu_exit()'s order: remaining processes are released first
 * (kfd_cleanup_processes), then the devices leave KFD, then the rest of kgd2kfd_exit(). The
 * render-node files the processes held must be gone before amdgpu may go: in Linux their module
 * reference keeps amdgpu loaded; kemu's shutdown unloads regardless, so KFD waits for them.
 */
async function amdkfd_exit(kfd: amdkfd): Promise<void> {
  await kfd_cleanup_processes(kfd);
  await flush_delayed_fput(kfd.vfs);
  await amdgpu_amdkfd_unregister_kfd(kfd.k);
  await kfd_exit(kfd);
  if (kfd.kfd_ih_wq) await kfd.wqs.destroy_workqueue(kfd.kfd_ih_wq);
  kfd.kfd_ih_wq = null;
}

/** The loadable module: `insmod("amdkfd")` after amdgpu (or before: devices join when they come). */
export const amdkfd_module: ModuleDef = {
  name: "amdkfd",
  cls: amdkfd,
  params: { svm_debug_checks: 0, cwsr_enable: 1 },
  description: "AMD HSA Kernel Fusion Driver (compute, SVM)",
};

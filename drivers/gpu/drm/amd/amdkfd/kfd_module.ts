// Mirrors drivers/gpu/drm/amd/amdkfd/kfd_module.c (Linux 6.8): kgd2kfd_init()/kgd2kfd_exit(),
// amdkfd's init and exit inside amdgpu.ko — the character device, the topology, the process
// workqueues and procfs directory.
//
// kemu: the module-scope statics of the amdkfd files (the chardev, the topology list, the
// process hash table, the PASID allocator, the KFD memory limits of amdgpu_amdkfd_gpuvm.c)
// are the fields of one `amdkfd` object per machine; amdgpu gets it injected (token AMDKFD)
// and hands it to kgd2kfd_probe(), and every KFD object reaches it through its device or
// process. The kernel's module parameters (sched_policy, noretry, ...) are fields too.

import { inject, injectable, type InjectionToken } from "tsyringe";
import { CHRDEV, DRIVER_CORE, KERNEL, SYSFS, VFS, WORKQUEUE } from "../../../../../kernel/tokens.ts";
import type { Vfs } from "../../../../../fs/namespace.ts";
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
import { KFD_SCHED_POLICY_NO_HWS, type kfd_dev, type kfd_process } from "./kfd_priv.ts";
import type { svm_migrate_hooks } from "./kfd_svm.ts";
import type { kfd_topology_device, kfd_system_properties } from "./kfd_topology.ts";
import { kfd_chardev_exit, kfd_chardev_init } from "./kfd_chardev.ts";
import { kfd_topology_init, kfd_topology_shutdown } from "./kfd_topology.ts";
import { kfd_procfs_init, kfd_procfs_shutdown, kfd_process_create_wq, kfd_process_destroy_wq } from "./kfd_process.ts";
import { amdgpu_amdkfd_gpuvm_init_mem_limits, type kfd_mem_usage_limit } from "../amdgpu/amdgpu_amdkfd_gpuvm.ts";

/** The PASIDs KFD hands out: 16 bits, 0 reserved (amdgpu_pasid_alloc(16)). */
const KFD_PASID_BITS = 16;

@injectable()
export class amdkfd {
  // module parameters (amdgpu_drv.c)
  /** sched_policy: kemu's CP has no HWS firmware, so queues are loaded directly (NO_HWS). */
  sched_policy = KFD_SCHED_POLICY_NO_HWS;
  /** amdgpu.noretry: -1 follows the ASIC default. */
  noretry = -1;
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
  ) {
    this.topology_lock = new rw_semaphore(k, "topology_lock");
    this.kfd_processes_mutex = new mutex(k, "kfd_processes_mutex");
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
}

/** How amdgpu asks for the machine's amdkfd: a class token, one instance per amdgpu module. */
export const AMDKFD: InjectionToken<amdkfd> = amdkfd;

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

/** kgd2kfd_init(): amdgpu's module init calls this first. */
export function kgd2kfd_init(kfd: amdkfd): Promise<number> {
  return kfd_init(kfd);
}

/** kgd2kfd_exit(): amdgpu's module exit, after every device is gone. */
export function kgd2kfd_exit(kfd: amdkfd): Promise<void> {
  return kfd_exit(kfd);
}

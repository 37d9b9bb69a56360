// kemu: injection tokens of the per-machine kernel services (ARCHITECTURE.md §6).
// Each replaceable service has its interface or class and its token side by side.

import type { InjectionToken } from "tsyringe";
import type { Clock } from "./time/timekeeping.ts";
import type { TimerBase } from "./time/timer.ts";
import type { Printk } from "./printk/printk.ts";
import type { Scheduler } from "./sched/core.ts";
import type { Kernel } from "./kernel.ts";
import type { Lockdep } from "./locking/lockdep.ts";
import type { Workqueues } from "./workqueue.ts";
import type { IrqCore } from "./irq/manage.ts";
import type { FaultInjection } from "../lib/fault-inject.ts";
import type { Slab } from "../mm/slab_common.ts";
import type { Tracing } from "./trace/trace.ts";
import type { ModuleLoader } from "./module/main.ts";
import type { MachineSpec } from "./machine_spec.ts";
import type { Vfs } from "../fs/namespace.ts";
import type { Sysfs } from "../fs/sysfs/mount.ts";
import type { Devtmpfs } from "../drivers/base/devtmpfs.ts";
import type { DriverCore } from "../drivers/base/core.ts";
import type { CharDevices } from "../fs/char_dev.ts";
import type { MiscDevices } from "../drivers/char/misc.ts";
import type { Shmem } from "../mm/shmem.ts";
import type { Debugfs } from "../fs/debugfs/inode.ts";
import type { Tracefs } from "../fs/tracefs/inode.ts";
import type { Procfs } from "../fs/proc/root.ts";
import type { Syscalls } from "../arch/x86/entry/syscall_64.ts";
import type { PhysMem } from "../hw/physmem.ts";
import type { CpuMmu } from "../hw/cpu_mmu.ts";
import type { ResourceTree } from "./resource.ts";
import type { PageAlloc } from "../mm/page_alloc.ts";
import type { MemRemap } from "../mm/memremap.ts";
import type { iommu_core } from "../iommu/iommu.ts";
import type { AmdIommu } from "../iommu/amd/iommu.ts";
import type { PciHostBridge } from "../hw/pci.ts";
import type { PciBus } from "../drivers/pci/probe.ts";

export const MACHINE_SPEC: InjectionToken<MachineSpec> = Symbol("MACHINE_SPEC");
export const CLOCK: InjectionToken<Clock> = Symbol("CLOCK");
export const TIMERS: InjectionToken<TimerBase> = Symbol("TIMERS");
export const PRINTK: InjectionToken<Printk> = Symbol("PRINTK");
export const SCHED: InjectionToken<Scheduler> = Symbol("SCHED");
export const KERNEL: InjectionToken<Kernel> = Symbol("KERNEL");
export const LOCKDEP: InjectionToken<Lockdep> = Symbol("LOCKDEP");
export const WORKQUEUE: InjectionToken<Workqueues> = Symbol("WORKQUEUE");
export const IRQ: InjectionToken<IrqCore> = Symbol("IRQ");
export const FAULT_INJECT: InjectionToken<FaultInjection> = Symbol("FAULT_INJECT");
export const SLAB: InjectionToken<Slab> = Symbol("SLAB");
export const TRACE: InjectionToken<Tracing> = Symbol("TRACE");
export const MODULES: InjectionToken<ModuleLoader> = Symbol("MODULES");
// mm: physical memory, the CPU MMU, iomem resources, the page allocator, ZONE_DEVICE pagemaps.
export const PHYSMEM: InjectionToken<PhysMem> = Symbol("PHYSMEM");
export const CPU_MMU: InjectionToken<CpuMmu> = Symbol("CPU_MMU");
export const IOMEM: InjectionToken<ResourceTree> = Symbol("IOMEM");
export const PAGE_ALLOC: InjectionToken<PageAlloc> = Symbol("PAGE_ALLOC");
export const MEMREMAP: InjectionToken<MemRemap> = Symbol("MEMREMAP");
// fs and the driver core: VFS, char devices, pseudo filesystems, tmpfs, the device model,
// misc devices, and the system-call table user space enters through.
export const VFS: InjectionToken<Vfs> = Symbol("VFS");
export const SYSFS: InjectionToken<Sysfs> = Symbol("SYSFS");
export const DEVTMPFS: InjectionToken<Devtmpfs> = Symbol("DEVTMPFS");
export const DRIVER_CORE: InjectionToken<DriverCore> = Symbol("DRIVER_CORE");
export const CHRDEV: InjectionToken<CharDevices> = Symbol("CHRDEV");
export const MISC: InjectionToken<MiscDevices> = Symbol("MISC");
export const SHMEM: InjectionToken<Shmem> = Symbol("SHMEM");
export const DEBUGFS: InjectionToken<Debugfs> = Symbol("DEBUGFS");
export const TRACEFS: InjectionToken<Tracefs> = Symbol("TRACEFS");
export const PROCFS: InjectionToken<Procfs> = Symbol("PROCFS");
export const SYSCALLS: InjectionToken<Syscalls> = Symbol("SYSCALLS");
// PCI: the host bridge (hardware: the machine's PCI functions) and the kernel's PCI core.
export const PCI_HOST: InjectionToken<PciHostBridge> = Symbol("PCI_HOST");
export const PCI: InjectionToken<PciBus> = Symbol("PCI");
// IOMMU: the generic IOMMU core (groups and domains) and the AMD IOMMU driver.
export const IOMMU_CORE: InjectionToken<iommu_core> = Symbol("IOMMU_CORE");
export const AMD_IOMMU: InjectionToken<AmdIommu> = Symbol("AMD_IOMMU");

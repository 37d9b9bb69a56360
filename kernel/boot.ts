// Mirrors init/main.c start_kernel() and do_initcalls() (Linux 6.8), as kemu's composition root:
// the one place that touches the tsyringe container. Each machine gets a child container; every
// service is registered by token (spec overrides replace them), resolved in initcall order, and
// the spec's modules are loaded. The result is the Machine of ARCHITECTURE.md §10.

import "reflect-metadata";
import { container, Lifecycle, type DependencyContainer, type InjectionToken } from "tsyringe";
import { Clock } from "./time/timekeeping.ts";
import { TimerBase } from "./time/timer.ts";
import { Printk } from "./printk/printk.ts";
import { Scheduler } from "./sched/core.ts";
import { Kernel } from "./kernel.ts";
import { Lockdep } from "./locking/lockdep.ts";
import { Workqueues } from "./workqueue.ts";
import { IrqCore } from "./irq/manage.ts";
import { FaultInjection } from "../lib/fault-inject.ts";
import { Slab } from "../mm/slab_common.ts";
import { PhysMem } from "../hw/physmem.ts";
import { CpuMmu } from "../hw/cpu_mmu.ts";
import { ResourceTree } from "./resource.ts";
import { PageAlloc } from "../mm/page_alloc.ts";
import { MemRemap } from "../mm/memremap.ts";
import { Tracing } from "./trace/trace.ts";
import { ModuleLoader, type ModuleDef } from "./module/main.ts";
import { Vfs } from "../fs/namespace.ts";
import { Sysfs } from "../fs/sysfs/mount.ts";
import { Devtmpfs } from "../drivers/base/devtmpfs.ts";
import { DriverCore } from "../drivers/base/core.ts";
import { CharDevices } from "../fs/char_dev.ts";
import { MiscDevices } from "../drivers/char/misc.ts";
import { Shmem } from "../mm/shmem.ts";
import { Debugfs } from "../fs/debugfs/inode.ts";
import { Tracefs } from "../fs/tracefs/inode.ts";
import { Procfs } from "../fs/proc/root.ts";
import { Syscalls } from "../arch/x86/entry/syscall_64.ts";
import { builtin_modules } from "./module/catalogue.ts";
import { resolve_spec, type MachineSpec } from "./machine_spec.ts";
import { Machine, type KernelService } from "./machine.ts";
import { PciHostBridge } from "../hw/pci.ts";
import { PciBus } from "../drivers/pci/probe.ts";
import { iommu_core } from "../iommu/iommu.ts";
import { AmdIommu } from "../iommu/amd/iommu.ts";
import * as T from "./tokens.ts";

type Ctor = new (...args: never[]) => unknown;

/**
 * The services of every machine in initcall order (core → postcore → arch → subsys → fs →
 * device → late). Later entries may depend on earlier ones; overrides keep the position.
 */
const SERVICES: Array<[InjectionToken<unknown>, Ctor]> = [
  [T.CLOCK, Clock],
  [T.TIMERS, TimerBase],
  [T.PRINTK, Printk],
  [T.SCHED, Scheduler],
  [T.LOCKDEP, Lockdep],
  [T.KERNEL, Kernel],
  [T.FAULT_INJECT, FaultInjection],
  [T.PHYSMEM, PhysMem],
  [T.CPU_MMU, CpuMmu],
  [T.IOMEM, ResourceTree],
  [T.PAGE_ALLOC, PageAlloc],
  [T.MEMREMAP, MemRemap],
  [T.SLAB, Slab],
  [T.TRACE, Tracing],
  [T.WORKQUEUE, Workqueues],
  [T.IRQ, IrqCore],
  [T.VFS, Vfs],
  [T.SYSFS, Sysfs],
  [T.DEVTMPFS, Devtmpfs],
  [T.DRIVER_CORE, DriverCore],
  // subsys: the PCI bus (scanned at its initcall), then the IOMMU (pci_iommu_init runs after it).
  [T.PCI_HOST, PciHostBridge],
  [T.PCI, PciBus],
  [T.IOMMU_CORE, iommu_core],
  [T.AMD_IOMMU, AmdIommu],
  [T.CHRDEV, CharDevices],
  [T.MISC, MiscDevices],
  [T.SHMEM, Shmem],
  [T.DEBUGFS, Debugfs],
  [T.TRACEFS, Tracefs],
  [T.PROCFS, Procfs],
  [T.SYSCALLS, Syscalls],
  [T.MODULES, ModuleLoader],
];

/** "Who built what": the object graph as tsyringe resolved it, for readers of the wiring. */
export interface BuiltEntry {
  token: string;
  type: string;
}

function register_services(c: DependencyContainer, spec: MachineSpec, built: BuiltEntry[]): void {
  const overrides = new Map((spec.overrides ?? []).map((o) => [o.token, o]));
  for (const [token, cls] of SERVICES) {
    const o = overrides.get(token);
    if (o?.useValue !== undefined) c.register(token, { useValue: o.useValue });
    else c.register(token, { useClass: (o?.useClass ?? cls) as Ctor }, { lifecycle: Lifecycle.ContainerScoped });
    c.afterResolution(token, (_t, result) => {
      built.push({ token: String(token.toString()), type: (result as object)?.constructor?.name ?? typeof result });
    }, { frequency: "Once" });
  }
  for (const o of spec.overrides ?? []) {
    if (SERVICES.some(([t]) => t === o.token)) continue;
    if (o.useValue !== undefined) c.register(o.token, { useValue: o.useValue });
    else if (o.useClass) c.register(o.token, { useClass: o.useClass as Ctor }, { lifecycle: Lifecycle.ContainerScoped });
  }
}

/**
 * The modules loaded at boot: the spec's, with the GPU driver first when the machine has GPUs
 * (as udev would load it for their PCI ids) unless the command line blacklists it
 * (modprobe.blacklist=amdgpu) or the spec lists it itself. amdkfd comes with it — in Linux it
 * is part of amdgpu.ko — unless it is listed or blacklisted too.
 */
function boot_modules(s: MachineSpec): Array<string | ModuleDef> {
  const mods = [...(s.modules ?? [])];
  const listed = (name: string) => mods.some((m) => (typeof m === "string" ? m : m.name) === name);
  const blacklisted = (name: string) => new RegExp(`(^|\\s)modprobe\\.blacklist=(\\S*,)?${name}(,|\\s|$)`).test(s.cmdline ?? "");
  if ((s.gpus ?? []).length && !listed("amdgpu") && !blacklisted("amdgpu")) {
    mods.unshift(...(listed("amdkfd") || blacklisted("amdkfd") ? ["amdgpu"] : ["amdgpu", "amdkfd"]));
  }
  // amdkfd of IOMMUv2 APUs uses amd_iommu_v2's symbols (≤6.5): modprobe loads it first.
  const v2 = mods.findIndex((m) => (typeof m === "string" ? m : m.name) === "amd_iommu_v2");
  if (v2 > 0) mods.unshift(...mods.splice(v2, 1));
  return mods;
}

/** start_kernel(): builds the machine's kernel and runs its initcalls and boot-time modules. */
export async function boot(spec?: MachineSpec): Promise<Machine> {
  const s = resolve_spec(spec);
  const c = container.createChildContainer();
  const built: BuiltEntry[] = [];
  c.register(T.MACHINE_SPEC, { useValue: s });
  register_services(c, s, built);

  const services = SERVICES.map(([token]) => c.resolve(token) as KernelService);
  const k = c.resolve(T.KERNEL);
  k.log.machine_name = s.name;
  const loader = c.resolve(T.MODULES);
  loader.set_instantiator(<X>(cls: new (...args: never[]) => X) => c.resolve(cls as never) as X);
  loader.set_module_kset(c.resolve(T.SYSFS).module_kobj);
  for (const def of builtin_modules()) loader.register(def);

  const machine = new Machine(s, k, services, loader, <X>(token: InjectionToken<X>) => c.resolve(token), built);
  await k.sched.kthread_run(async () => {
    k.pr_notice(`Linux version 6.8.0-kemu (kemu) #1 SMP PREEMPT_DYNAMIC`);
    k.pr_info(`Command line: ${s.cmdline ?? ""}`.trimEnd());
    k.pr_info(`Memory: ${Math.floor(s.ram_size / 1024)}K available, seed ${s.seed}`);
    for (const svc of services) await svc.init?.();
    for (const m of boot_modules(s)) {
      const ret = await loader.insmod(m);
      if (ret) k.pr_err(`kemu: failed to load module ${typeof m === "string" ? m : m.name}: ${ret}`);
    }
    k.pr_info("Run /sbin/init as init process");
  }, "swapper/0");
  return machine;
}

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

// kemu: the Machine handle a script holds (ARCHITECTURE.md §10). Not a kernel file: it is the
// "front panel" — boot returns it, and every call enters the kernel as a scheduled context.

import type { InjectionToken } from "tsyringe";
import type { Kernel, SplatKind } from "./kernel.ts";
import type { ModuleDef, ModuleLoader, ModuleParams } from "./module/main.ts";
import type { MachineSpec } from "./machine_spec.ts";
import type { BuiltEntry } from "./boot.ts";

/** What a machine-wide service may implement: an initcall and a shutdown leak check. */
export interface KernelService {
  init?(): Promise<void> | void;
  /** Lines describing what is still allocated, pending or held; empty when clean. */
  leak_report?(): string[];
}

export class MachineLeakError extends Error {
  constructor(public readonly failures: string[]) {
    super(`machine shutdown found problems:\n  ${failures.join("\n  ")}`);
    this.name = "MachineLeakError";
  }
}

export interface ShutdownOptions {
  /** Splat kinds the caller provoked on purpose; they do not count as failures. */
  expected_splats?: SplatKind[];
  /** Return the report instead of throwing. */
  report_only?: boolean;
}

export class Machine {
  private down = false;

  constructor(
    readonly spec: MachineSpec,
    readonly k: Kernel,
    private readonly services: KernelService[],
    private readonly loader: ModuleLoader,
    private readonly symbols: <T>(token: InjectionToken<T>) => T,
    /** The object graph as built at boot, in resolution order. */
    readonly built: readonly BuiltEntry[],
  ) {}

  get name(): string {
    return this.spec.name ?? "default";
  }

  /** symbol_get(): a kernel service by token, for in-kernel tests and tools. */
  symbol<T>(token: InjectionToken<T>): T {
    return this.symbols(token);
  }

  dmesg(): string[] {
    return this.k.log.dmesg();
  }

  /** Runs `fn` in a fresh kernel thread and resolves with its result. */
  run_kthread<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.k.sched.kthread_run(fn, name);
  }

  insmod(what: string | ModuleDef, params?: ModuleParams): Promise<number> {
    return this.run_kthread("insmod", () => this.loader.insmod(what, params));
  }

  rmmod(name: string): Promise<number> {
    return this.run_kthread("rmmod", () => this.loader.rmmod(name));
  }

  /** Runs the machine until nothing is runnable and no timer is pending. */
  settle(): Promise<void> {
    return this.k.sched.settle();
  }

  /**
   * Unloads modules in reverse order, lets background work finish, then reports what leaked:
   * memory, pending work or timers, held locks, live tasks, unexpected splats. Throws a
   * MachineLeakError listing them unless `report_only`.
   */
  async shutdown(opts: ShutdownOptions = {}): Promise<string[]> {
    if (this.down) return [];
    const failures: string[] = [];
    if (!this.k.sched.halted) {
      failures.push(...(await this.run_kthread("shutdown", () => this.loader.unload_all())));
      await this.settle();
    }
    this.down = true;
    for (const svc of this.services) failures.push(...(svc.leak_report?.() ?? []));
    failures.push(...this.k.sched.describe_contexts().map((c) => `live task: ${c}`));
    const expected = new Set([...(opts.expected_splats ?? []), ...this.k.expected_splats]);
    for (const s of this.k.splats) if (!expected.has(s.kind)) failures.push(`unexpected ${s.kind} splat: ${s.title}`);
    this.k.pr_info(`reboot: Power down${failures.length ? ` (${failures.length} problems)` : ""}`);
    if (failures.length && !opts.report_only) throw new MachineLeakError(failures);
    return failures;
  }
}

// kemu: the Machine handle a script holds (ARCHITECTURE.md §10). Not a kernel file: it is the
// "front panel" — boot returns it, and every call enters the kernel as a scheduled context.

import type { InjectionToken } from "tsyringe";
import type { Kernel, SplatKind } from "./kernel.ts";
import type { ModuleDef, ModuleLoader, ModuleParams } from "./module/main.ts";
import type { MachineSpec } from "./machine_spec.ts";
import type { BuiltEntry } from "./boot.ts";
import { errname } from "../include/uapi/asm-generic/errno.ts";
import { PF_EXITING } from "./sched/core.ts";
import { create_user_process } from "./fork.ts";
import { SIGKILL } from "./exit.ts";
import { exit_to_user_mode } from "./entry/common.ts";
import { Process } from "../tools/runtime/process.ts";

/** What a machine-wide service may implement: an initcall and a shutdown leak check. */
export interface KernelService {
  init?(): Promise<void> | void;
  /** Lines describing what is still allocated, pending or held; empty when clean. */
  leak_report?(): string[];
  /**
   * Power-off teardown once processes are gone and modules unloaded (unmounting filesystems,
   * disabling IOMMUs). Runs in a kernel thread, so it may sleep (free_irq).
   */
  power_off?(): void | Promise<void>;
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

  /** A new user process with an empty address space and no open files (ARCHITECTURE.md §10). */
  async spawn(name = "a.out"): Promise<Process> {
    const t = create_user_process(this.k, name);
    if (typeof t === "number") throw new Error(`spawn ${name}: ${errname(t)}`);
    return new Process(this, t);
  }

  /** Power-off as init does it: every user process gets SIGKILL and dies on its way to user mode. */
  private async kill_user_processes(): Promise<void> {
    const sched = this.k.sched;
    const users = sched.all_tasks().filter((t) => t.kind === "user" && !(t.flags & PF_EXITING));
    for (const t of users) t.pending_signals.add(SIGKILL);
    await Promise.allSettled(users.filter((t) => !t.busy).map((t) => sched.run_task(t, () => exit_to_user_mode(this.k))));
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
      await this.kill_user_processes();
      failures.push(...(await this.run_kthread("shutdown", () => this.loader.unload_all())));
      await this.settle();
      await this.run_kthread("power_off", async () => {
        for (const svc of [...this.services].reverse()) await svc.power_off?.();
      });
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

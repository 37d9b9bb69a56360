// Mirrors kernel/module/main.c (Linux 6.8): load_module/do_init_module and delete_module,
// reduced to what an emulated machine needs: a catalogue of loadable modules ("the .ko files"),
// parameters, init/exit, reference counts and the -EEXIST/-ENOENT/-EBUSY rules. Each loaded
// module has its /sys/module/<name> directory (kernel/module/sysfs.ts).

import { inject, injectable } from "tsyringe";
import { EBUSY, EEXIST, ENOENT, errname } from "../../include/uapi/asm-generic/errno.ts";
import { KERNEL } from "../tokens.ts";
import type { Kernel } from "../kernel.ts";
import type { kobject } from "../../include/linux/sysfs.ts";
import { mod_sysfs_setup, mod_sysfs_teardown } from "./sysfs.ts";

export type ModuleParams = Record<string, string | number | boolean>;

/** What a loadable module's class implements (module_init / module_exit). */
export interface KernelModule {
  /** Filled from the definition's defaults and insmod's arguments before init() runs. */
  params?: ModuleParams;
  init(): Promise<number>;
  exit(): Promise<void>;
}

export interface ModuleDef {
  name: string;
  /** Built by the composition root, so its constructor's @inject tokens are honoured. */
  cls: new (...args: never[]) => KernelModule;
  params?: ModuleParams;
  description?: string;
}

export interface module {
  name: string;
  def: ModuleDef;
  instance: KernelModule;
  /** try_module_get()/module_put() holders; rmmod refuses while non-zero. */
  refcnt: number;
  state: "coming" | "live" | "going";
  /** /sys/module/<name> and its parameters/ directory (kernel/module/sysfs.ts, kernel/params.ts). */
  mkobj: kobject | null;
  params_kobj: kobject | null;
}

export type Instantiator = <T>(cls: new (...args: never[]) => T) => T;

@injectable()
export class ModuleLoader {
  private catalogue = new Map<string, ModuleDef>();
  private loaded = new Map<string, module>();
  /** Load order; shutdown unloads in reverse. */
  private order: string[] = [];
  private instantiate: Instantiator | null = null;

  /** /sys/module (param_sysfs_init's module_kset), set by the composition root once sysfs exists. */
  private module_kset: kobject | null = null;

  constructor(@inject(KERNEL) private k: Kernel) {}

  /** Set once by the composition root: the only place that may build objects from the container. */
  set_instantiator(fn: Instantiator): void {
    this.instantiate = fn;
  }

  set_module_kset(kset: kobject): void {
    this.module_kset = kset;
  }

  /** Makes a module loadable by name (like installing its .ko under /lib/modules). */
  register(def: ModuleDef): void {
    this.catalogue.set(def.name, def);
  }

  find_module(name: string): module | undefined {
    return this.loaded.get(name);
  }

  loaded_modules(): string[] {
    return [...this.order];
  }

  available(): string[] {
    return [...this.catalogue.keys()].sort();
  }

  async insmod(what: string | ModuleDef, args: ModuleParams = {}): Promise<number> {
    const def = typeof what === "string" ? this.catalogue.get(what) : what;
    if (!def) {
      this.k.pr_err(`insmod: ERROR: could not load module ${String(what)}: No such file or directory`);
      return -ENOENT;
    }
    if (this.loaded.has(def.name)) return -EEXIST;
    if (!this.instantiate) throw new Error("module loader used before boot wired it");
    const instance = this.instantiate(def.cls);
    instance.params = { ...(def.params ?? {}), ...args };
    const mod: module = { name: def.name, def, instance, refcnt: 0, state: "coming", mkobj: null, params_kobj: null };
    const err = this.module_kset ? mod_sysfs_setup(mod, this.module_kset) : 0;
    if (err) return err;
    this.loaded.set(def.name, mod);
    const ret = await instance.init();
    if (ret !== 0) {
      this.loaded.delete(def.name);
      mod_sysfs_teardown(mod);
      this.k.pr_warn(`${def.name}: module init failed: ${ret} (${errname(ret)})`);
      return ret;
    }
    mod.state = "live";
    this.order.push(def.name);
    return 0;
  }

  async rmmod(name: string): Promise<number> {
    const mod = this.loaded.get(name);
    if (!mod || mod.state !== "live") return -ENOENT;
    if (mod.refcnt > 0) return -EBUSY;
    mod.state = "going";
    await mod.instance.exit();
    this.loaded.delete(name);
    mod_sysfs_teardown(mod);
    this.order = this.order.filter((n) => n !== name);
    return 0;
  }

  try_module_get(name: string): boolean {
    const mod = this.loaded.get(name);
    if (!mod || mod.state !== "live") return false;
    mod.refcnt++;
    return true;
  }

  module_put(name: string): void {
    const mod = this.loaded.get(name);
    if (mod && mod.refcnt > 0) mod.refcnt--;
  }

  /** Unloads everything in reverse load order (shutdown). */
  async unload_all(): Promise<string[]> {
    const failures: string[] = [];
    for (const name of [...this.order].reverse()) {
      const mod = this.loaded.get(name)!;
      mod.refcnt = 0;
      const ret = await this.rmmod(name);
      if (ret) failures.push(`rmmod ${name}: ${errname(ret)}`);
    }
    return failures;
  }
}

// Mirrors kernel/module/sysfs.c (Linux 6.8): a loaded module's directory /sys/module/<name>/ with
// its initstate ("coming", "live", "going") and refcnt, and its parameters (kernel/params.ts).
// Created before the module's init runs and removed once it has gone, as load_module and
// free_module do.

import type { kobj_attribute, kobject } from "../../include/linux/sysfs.ts";
import { kobject_create_and_add, kobject_put } from "../../lib/kobject.ts";
import { sysfs_create_file } from "../../fs/sysfs/file.ts";
import { module_param_sysfs_remove, module_param_sysfs_setup } from "../params.ts";
import type { module } from "./main.ts";
import { EEXIST } from "../../include/uapi/asm-generic/errno.ts";

/** mod_sysfs_setup(): a name already under /sys/module fails the load with -EEXIST. */
export function mod_sysfs_setup(mod: module, module_kset: kobject): number {
  const mkobj = kobject_create_and_add(mod.name, module_kset);
  if (!mkobj) return -EEXIST;
  const attrs: kobj_attribute[] = [
    { name: "initstate", mode: 0o444, show: () => `${mod.state}\n` },
    { name: "refcnt", mode: 0o444, show: () => `${mod.refcnt}\n` },
  ];
  for (const a of attrs) sysfs_create_file(mkobj, a);
  mod.mkobj = mkobj;
  mod.params_kobj = module_param_sysfs_setup(mkobj, mod.instance.params ?? {});
  return 0;
}

/** mod_sysfs_teardown(). */
export function mod_sysfs_teardown(mod: module): void {
  module_param_sysfs_remove(mod.params_kobj);
  mod.params_kobj = null;
  if (mod.mkobj) kobject_put(mod.mkobj);
  mod.mkobj = null;
}

// Mirrors kernel/params.c (Linux 6.8), the sysfs half: a module's parameters as files of
// /sys/module/<name>/parameters/, each printed by the getter of its type (param_get_int,
// param_get_bool's "Y"/"N", param_get_charp). kemu's module definitions give no permissions, so
// every parameter is read-only (0444), what the kernel's drivers mostly declare; the value shown
// is the one the module was loaded with.

import type { kobject, kobj_attribute } from "../include/linux/sysfs.ts";
import { kobject_create_and_add, kobject_put } from "../lib/kobject.ts";
import { sysfs_create_file } from "../fs/sysfs/file.ts";
import type { ModuleParams } from "./module/main.ts";

/** The text a parameter's getter writes (with the newline sysfs files end with). */
export function param_get(v: ModuleParams[string]): string {
  if (typeof v === "boolean") return v ? "Y\n" : "N\n";
  return `${v}\n`;
}

/**
 * module_param_sysfs_setup(): the "parameters" directory under the module's kobject with one
 * file per parameter; null when the module has none (the kernel creates no directory then).
 */
export function module_param_sysfs_setup(mkobj: kobject, params: ModuleParams): kobject | null {
  const names = Object.keys(params).sort();
  if (names.length === 0) return null;
  const dir = kobject_create_and_add("parameters", mkobj);
  if (!dir) return null;
  for (const name of names) {
    const attr: kobj_attribute = { name, mode: 0o444, show: () => param_get(params[name]!) };
    sysfs_create_file(dir, attr);
  }
  return dir;
}

/** module_param_sysfs_remove(). */
export function module_param_sysfs_remove(dir: kobject | null): void {
  if (dir) kobject_put(dir);
}

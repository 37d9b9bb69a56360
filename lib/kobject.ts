// Mirrors lib/kobject.c (Linux 6.8): kobjects as sysfs directories with a reference count. A
// kobject is added under a parent kobject (kemu's top-level parents — /sys/kernel, /sys/devices,
// /sys/class, ... — belong to the Sysfs service); the last kobject_put() removes its directory
// and calls the ktype's release.

import { EINVAL, ENOENT } from "../include/uapi/asm-generic/errno.ts";
import { kobject, type kobj_type } from "../include/linux/sysfs.ts";
import { sysfs_create_dir_ns, sysfs_path, sysfs_remove_dir } from "../fs/sysfs/dir.ts";
import { sysfs_create_groups, sysfs_remove_groups } from "../fs/sysfs/file.ts";

export function kobject_init(kobj: kobject, ktype: kobj_type | null): void {
  kobj.ktype = ktype;
  kobj.kref = 1;
  kobj.state_initialized = true;
  kobj.state_in_sysfs = false;
}

/** kobject_add(): names the kobject and creates its directory under `parent`. */
export function kobject_add(kobj: kobject, parent: kobject | null, name: string): number {
  if (!kobj.state_initialized || !name) return -EINVAL;
  // A kobject without a parent would sit at /sys/<name>; kemu's drivers always have one.
  if (!parent?.sd) return -ENOENT;
  kobj.name = name;
  kobj.parent = kobject_get(parent);
  let err = sysfs_create_dir_ns(kobj);
  if (!err) {
    err = sysfs_create_groups(kobj, kobj.ktype?.default_groups);
    if (err) sysfs_remove_dir(kobj);
  }
  if (err) {
    kobject_put(parent);
    kobj.parent = null;
    return err;
  }
  kobj.state_in_sysfs = true;
  return 0;
}

export function kobject_init_and_add(kobj: kobject, ktype: kobj_type | null, parent: kobject | null, name: string): number {
  kobject_init(kobj, ktype);
  return kobject_add(kobj, parent, name);
}

/** kobject_create_and_add(): a bare directory kobject; null on failure. */
export function kobject_create_and_add(name: string, parent: kobject | null): kobject | null {
  const kobj = new kobject();
  kobject_init(kobj, null);
  if (kobject_add(kobj, parent, name)) return null;
  return kobj;
}

/** kobject_del(): unlinks from sysfs; the object lives on while referenced. */
export function kobject_del(kobj: kobject): void {
  if (!kobj.state_in_sysfs) return;
  sysfs_remove_groups(kobj, kobj.ktype?.default_groups);
  sysfs_remove_dir(kobj);
  kobj.state_in_sysfs = false;
  const parent = kobj.parent;
  kobj.parent = null;
  if (parent) kobject_put(parent);
}

export function kobject_get(kobj: kobject): kobject {
  kobj.kref++;
  return kobj;
}

/** kobject_put(): the last reference removes the directory (if still there) and releases. */
export function kobject_put(kobj: kobject): void {
  if (kobj.kref <= 0 || --kobj.kref > 0) return;
  kobject_del(kobj);
  kobj.ktype?.release?.(kobj);
}

/** kobject_get_path(): "/devices/virtual/kfd/kfd" — the path below /sys. */
export function kobject_get_path(kobj: kobject): string | null {
  return kobj.sd ? sysfs_path(kobj.sd) : null;
}

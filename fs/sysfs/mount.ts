// Mirrors fs/sysfs/mount.c (Linux 6.8) plus the top-level kobjects other subsystems create at
// boot (kernel_kobj in kernel/ksysfs.c, devices_kset and class_kset in drivers/base/core.c and
// class.c, the /sys/dev/char directory): the sysfs instance of one machine, mounted on /sys.
// Drivers hang their kobjects below these roots with lib/kobject.ts and add attribute files
// with fs/sysfs/file.ts.

import { inject, injectable } from "tsyringe";
import { VFS } from "../../kernel/tokens.ts";
import type { Vfs } from "../namespace.ts";
import { kobject, type kobj_type } from "../../include/linux/sysfs.ts";
import type { file_system_type } from "../../include/linux/fs.ts";
import { kobject_create_and_add, kobject_init } from "../../lib/kobject.ts";
import { sysfs_create_mount_point } from "./dir.ts";

export const SYSFS_MAGIC = 0x62656572;

const sysfs_fs_type: file_system_type = { name: "sysfs" };

@injectable()
export class Sysfs {
  /** The kobject standing for /sys itself. */
  readonly sysfs_root_kobj = new kobject();
  /** /sys/kernel */
  readonly kernel_kobj: kobject;
  /** /sys/devices (devices_kset) */
  readonly devices_kobj: kobject;
  /** /sys/devices/virtual: devices without a parent, grouped by class. */
  readonly virtual_kobj: kobject;
  /** /sys/class (class_kset) */
  readonly class_kobj: kobject;
  /** /sys/bus */
  readonly bus_kobj: kobject;
  /** /sys/module */
  readonly module_kobj: kobject;
  /** /sys/dev/char: "major:minor" links to each char device */
  readonly sysfs_dev_char_kobj: kobject;

  constructor(@inject(VFS) readonly vfs: Vfs) {
    const sb = vfs.sget(sysfs_fs_type, SYSFS_MAGIC);
    sb.s_fs_info = this;
    vfs.make_root(sb);
    kobject_init(this.sysfs_root_kobj, null as kobj_type | null);
    this.sysfs_root_kobj.sd = sb.s_root;
    this.sysfs_root_kobj.state_in_sysfs = true;
    const top = (name: string, parent: kobject = this.sysfs_root_kobj) => kobject_create_and_add(name, parent)!;
    this.devices_kobj = top("devices");
    this.virtual_kobj = top("virtual", this.devices_kobj);
    this.bus_kobj = top("bus");
    this.class_kobj = top("class");
    this.kernel_kobj = top("kernel");
    this.module_kobj = top("module");
    this.sysfs_dev_char_kobj = top("char", top("dev"));
    top("fs");
    // debugfs and tracefs mount on these (sysfs_create_mount_point in their init).
    sysfs_create_mount_point(this.kernel_kobj, "debug");
    sysfs_create_mount_point(this.kernel_kobj, "tracing");
    vfs.mount(sb, "/sys");
  }
}

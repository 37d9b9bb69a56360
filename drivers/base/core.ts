// Mirrors drivers/base/core.c and drivers/base/class.c (Linux 6.8): struct device, device
// classes and their sysfs presence. device_add() puts the device under /sys/devices (classed
// devices without a parent under /sys/devices/virtual/<class>/), links it from
// /sys/class/<class>/<name> and /sys/dev/char/<major:minor>, adds its attribute groups and a
// "dev" file, and has devtmpfs create /dev/<name> for a device with a number.

import { inject, injectable } from "tsyringe";
import { EEXIST, EINVAL, EIO, ENOMEM } from "../../include/uapi/asm-generic/errno.ts";
import { format_dev_t, type dev_t } from "../../include/linux/kdev_t.ts";
import { kobject, type attribute, type attribute_group, type kobj_type, type sysfs_ops } from "../../include/linux/sysfs.ts";
import type { DevPrintTarget, Kernel } from "../../kernel/kernel.ts";
import { DEVTMPFS, KERNEL, SYSFS } from "../../kernel/tokens.ts";
import type { Sysfs } from "../../fs/sysfs/mount.ts";
import type { Devtmpfs } from "./devtmpfs.ts";
import { kobject_add, kobject_create_and_add, kobject_del, kobject_get, kobject_init, kobject_put } from "../../lib/kobject.ts";
import { sysfs_create_link, sysfs_create_link_sd, sysfs_remove_link } from "../../fs/sysfs/dir.ts";
import { sysfs_create_file, sysfs_create_groups, sysfs_remove_file, sysfs_remove_groups } from "../../fs/sysfs/file.ts";

/** struct device_driver, as far as naming goes (the bus code binds drivers). */
export interface device_driver {
  readonly name: string;
  readonly owner?: string;
}

export interface bus_type {
  readonly name: string;
}

export interface device_type {
  readonly name?: string;
  readonly groups?: readonly attribute_group[];
}

/** struct device_attribute: show/store receive the device. */
export interface device_attribute extends attribute {
  show?(dev: device, attr: device_attribute): Promise<string | number> | string | number;
  store?(dev: device, attr: device_attribute, buf: string, count: number): Promise<number> | number;
}

/** What devtmpfs names the node and which mode it gets (class->devnode, misc's mode). */
export interface devnode_info {
  name?: string;
  mode?: number;
}

export class class_ {
  /** /sys/class/<name> */
  p: kobject | null = null;
  /** /sys/devices/virtual/<name>: parent of this class's parentless devices. */
  glue: kobject | null = null;
  readonly devices = new Set<device>();

  constructor(
    readonly name: string,
    readonly dev_groups: readonly attribute_group[] = [],
    readonly devnode: ((dev: device) => devnode_info) | null = null,
  ) {}
}

export class device implements DevPrintTarget {
  readonly kobj = new kobject();
  parent: device | null = null;
  init_name: string | null = null;
  driver: device_driver | null = null;
  bus: bus_type | null = null;
  class: class_ | null = null;
  type: device_type | null = null;
  devt: dev_t = 0;
  driver_data: unknown = null;
  groups: readonly attribute_group[] | null = null;
  release: ((dev: device) => void) | null = null;

  /** dev_name(): the name the device was added under. */
  dev_name(): string {
    return this.kobj.name || this.init_name || "";
  }

  /** dev_driver_string(): the bound driver, else the bus, else the class name. */
  driver_name(): string {
    return this.driver?.name ?? this.bus?.name ?? this.class?.name ?? "";
  }
}

export function dev_name(dev: device): string {
  return dev.dev_name();
}

export function dev_set_name(dev: device, name: string): void {
  dev.init_name = name;
}

export function dev_get_drvdata(dev: device): unknown {
  return dev.driver_data;
}

export function dev_set_drvdata(dev: device, data: unknown): void {
  dev.driver_data = data;
}

/** kobject → device: the device embedding a kobject (container_of). */
const kobj_to_dev = new WeakMap<kobject, device>();

export function kobj_to_device(kobj: kobject): device | undefined {
  return kobj_to_dev.get(kobj);
}

/** dev_sysfs_ops: device attributes get the device. */
const dev_sysfs_ops: sysfs_ops = {
  show: (kobj, attr) => {
    const a = attr as device_attribute;
    return a.show ? a.show(kobj_to_dev.get(kobj)!, a) : -EIO;
  },
  store: (kobj, attr, buf, count) => {
    const a = attr as device_attribute;
    return a.store ? a.store(kobj_to_dev.get(kobj)!, a, buf, count) : -EIO;
  },
};

const device_ktype: kobj_type = {
  sysfs_ops: dev_sysfs_ops,
  release: (kobj) => {
    const dev = kobj_to_dev.get(kobj);
    dev?.release?.(dev);
  },
};

const dev_attr_dev: device_attribute = {
  name: "dev",
  mode: 0o444,
  show: (dev) => `${format_dev_t(dev.devt)}\n`,
};

const dev_attr_uevent: device_attribute = {
  name: "uevent",
  mode: 0o644,
  show: (dev) => {
    const lines = [`MAJOR=${Math.floor(dev.devt / 2 ** 20)}`, `MINOR=${dev.devt % 2 ** 20}`];
    return `${dev.devt ? `${lines.join("\n")}\n` : ""}DEVNAME=${dev.dev_name()}\n`;
  },
  store: (_dev, _attr, _buf, count) => count,
};

@injectable()
export class DriverCore {
  constructor(
    @inject(KERNEL) private readonly k: Kernel,
    @inject(SYSFS) readonly sysfs: Sysfs,
    @inject(DEVTMPFS) private readonly devtmpfs: Devtmpfs,
  ) {}

  // ---- classes (drivers/base/class.c) ----------------------------------------------------

  /** class_register(): /sys/class/<name>. */
  class_register(cls: class_): number {
    const p = kobject_create_and_add(cls.name, this.sysfs.class_kobj);
    if (!p) return -EEXIST;
    cls.p = p;
    return 0;
  }

  /** class_create(): a class object registered at once; -errno on failure. */
  class_create(name: string, devnode: ((dev: device) => devnode_info) | null = null): class_ | number {
    const cls = new class_(name, [], devnode);
    const err = this.class_register(cls);
    return err || cls;
  }

  class_unregister(cls: class_): void {
    if (cls.glue) kobject_put(cls.glue);
    cls.glue = null;
    if (cls.p) kobject_put(cls.p);
    cls.p = null;
  }

  class_destroy(cls: class_ | number | null): void {
    if (cls && typeof cls !== "number") this.class_unregister(cls);
  }

  // ---- devices ----------------------------------------------------------------------------

  device_initialize(dev: device): void {
    kobject_init(dev.kobj, device_ktype);
    kobj_to_dev.set(dev.kobj, dev);
  }

  /** get_device_parent(): where in /sys/devices the device directory goes. */
  private get_device_parent(dev: device): kobject | null {
    if (dev.parent) return dev.parent.kobj;
    const cls = dev.class;
    if (!cls) return this.sysfs.devices_kobj;
    if (!cls.glue) cls.glue = kobject_create_and_add(cls.name, this.sysfs.virtual_kobj);
    return cls.glue;
  }

  /** device_add(): sysfs directory, attributes, class links, the /dev node. */
  async device_add(dev: device): Promise<number> {
    this.k.might_sleep("device_add");
    const name = dev.init_name;
    if (!name) return -EINVAL;
    const parent = this.get_device_parent(dev);
    if (!parent) return -ENOMEM;
    let err = kobject_add(dev.kobj, parent, name);
    if (err) return err;
    err = this.device_add_attrs(dev);
    if (!err) err = this.device_add_class_symlinks(dev);
    if (!err && dev.devt) {
      err = sysfs_create_file(dev.kobj, dev_attr_dev);
      if (!err) sysfs_create_link(this.sysfs.sysfs_dev_char_kobj, dev.kobj, format_dev_t(dev.devt));
      if (!err) err = await this.devtmpfs.devtmpfs_create_node(dev);
    }
    if (err) {
      this.device_remove_class_symlinks(dev);
      kobject_del(dev.kobj);
      return err;
    }
    dev.class?.devices.add(dev);
    if (dev.parent) kobject_get(dev.parent.kobj);
    return 0;
  }

  private device_add_attrs(dev: device): number {
    const err = sysfs_create_file(dev.kobj, dev_attr_uevent);
    if (err) return err;
    for (const groups of [dev.class?.dev_groups, dev.type?.groups, dev.groups]) {
      const e = sysfs_create_groups(dev.kobj, groups ?? undefined);
      if (e) return e;
    }
    return 0;
  }

  private device_add_class_symlinks(dev: device): number {
    const cls = dev.class;
    if (!cls?.p) return 0;
    let err = sysfs_create_link(dev.kobj, cls.p, "subsystem");
    if (!err && dev.parent) err = sysfs_create_link(dev.kobj, dev.parent.kobj, "device");
    if (!err) err = sysfs_create_link_sd(cls.p.sd, dev.kobj, dev.dev_name());
    return err;
  }

  private device_remove_class_symlinks(dev: device): void {
    const cls = dev.class;
    if (!cls?.p) return;
    sysfs_remove_link(cls.p, dev.dev_name());
    sysfs_remove_link(dev.kobj, "device");
    sysfs_remove_link(dev.kobj, "subsystem");
  }

  /** device_del(): the /dev node, links and sysfs directory go; the struct lives on. */
  async device_del(dev: device): Promise<void> {
    this.k.might_sleep("device_del");
    if (dev.devt) {
      await this.devtmpfs.devtmpfs_delete_node(dev);
      sysfs_remove_link(this.sysfs.sysfs_dev_char_kobj, format_dev_t(dev.devt));
      sysfs_remove_file(dev.kobj, dev_attr_dev);
    }
    this.device_remove_class_symlinks(dev);
    for (const groups of [dev.class?.dev_groups, dev.type?.groups, dev.groups]) sysfs_remove_groups(dev.kobj, groups ?? undefined);
    dev.class?.devices.delete(dev);
    kobject_del(dev.kobj);
    if (dev.parent) kobject_put(dev.parent.kobj);
  }

  async device_register(dev: device): Promise<number> {
    this.device_initialize(dev);
    return this.device_add(dev);
  }

  async device_unregister(dev: device): Promise<void> {
    await this.device_del(dev);
    put_device(dev);
  }

  /**
   * device_create(): a class device with a number (and so a /dev node) in one call. Returns
   * the device or -errno.
   */
  async device_create(cls: class_, parent: device | null, devt: dev_t, drvdata: unknown, name: string): Promise<device | number> {
    const dev = new device();
    this.device_initialize(dev);
    dev.devt = devt;
    dev.class = cls;
    dev.parent = parent;
    dev.driver_data = drvdata;
    dev.init_name = name;
    const err = await this.device_add(dev);
    if (err) {
      put_device(dev);
      return err;
    }
    return dev;
  }

  /** device_destroy(): unregisters the class device with number `devt`. */
  async device_destroy(cls: class_, devt: dev_t): Promise<void> {
    const dev = [...cls.devices].find((d) => d.devt === devt);
    if (dev) await this.device_unregister(dev);
  }

  device_create_file(dev: device, attr: device_attribute): number {
    return sysfs_create_file(dev.kobj, attr);
  }

  device_remove_file(dev: device, attr: device_attribute): void {
    sysfs_remove_file(dev.kobj, attr);
  }
}

export function get_device(dev: device): device {
  kobject_get(dev.kobj);
  return dev;
}

/** put_device(): the last reference runs dev->release. */
export function put_device(dev: device): void {
  kobject_put(dev.kobj);
}

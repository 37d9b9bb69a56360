// Mirrors drivers/char/misc.c (Linux 6.8): miscellaneous character devices, all on major 10.
// misc_register() picks a minor (dynamic ones from 127 down), creates the class device and with
// it /dev/<name>; opening the node runs misc_open(), which stores the miscdevice in
// file->private_data and switches to the driver's file_operations.

import { inject, injectable } from "tsyringe";
import { EBUSY, ENODEV } from "../../include/uapi/asm-generic/errno.ts";
import { MINOR, MKDEV } from "../../include/linux/kdev_t.ts";
import type { file, file_operations, inode } from "../../include/linux/fs.ts";
import type { attribute_group } from "../../include/linux/sysfs.ts";
import { CHRDEV, DRIVER_CORE, KERNEL } from "../../kernel/tokens.ts";
import type { Kernel } from "../../kernel/kernel.ts";
import type { KernelService } from "../../kernel/machine.ts";
import type { CharDevices } from "../../fs/char_dev.ts";
import { fops_get, replace_fops } from "../../fs/file_table.ts";
import { noop_llseek } from "../../fs/libfs.ts";
import type { class_, device, DriverCore } from "../base/core.ts";

export const MISC_MAJOR = 10;
export const MISC_DYNAMIC_MINOR = 255;
const DYNAMIC_MINORS = 128;

/** struct miscdevice */
export interface miscdevice {
  minor: number;
  readonly name: string;
  readonly fops: file_operations;
  parent?: device | null;
  /** Set by misc_register(). */
  this_device?: device | null;
  readonly groups?: readonly attribute_group[];
  readonly nodename?: string;
  /** Mode of the /dev node (0 = devtmpfs default 0600). */
  readonly mode?: number;
}

@injectable()
export class MiscDevices implements KernelService {
  private readonly misc_list: miscdevice[] = [];
  private readonly dynamic_used = new Set<number>();
  private misc_class: class_ | null = null;

  private readonly misc_fops: file_operations = {
    open: (inode, f) => this.misc_open(inode, f),
    llseek: noop_llseek,
  };

  constructor(
    @inject(KERNEL) private readonly k: Kernel,
    @inject(CHRDEV) private readonly chrdev: CharDevices,
    @inject(DRIVER_CORE) private readonly core: DriverCore,
  ) {}

  /** misc_init(): the "misc" class and major 10. */
  init(): void {
    const cls = this.core.class_create("misc", (dev) => {
      const c = dev.driver_data as miscdevice;
      return { name: c.nodename, mode: c.mode || undefined };
    });
    if (typeof cls === "number" || this.chrdev.register_chrdev(MISC_MAJOR, "misc", this.misc_fops)) {
      this.k.pr_err("unable to get major 10 for misc devices");
      return;
    }
    this.misc_class = cls;
  }

  /** misc_open(): the registered miscdevice for the minor, then the driver's ->open. */
  private async misc_open(inode: inode, f: file): Promise<number> {
    const c = this.misc_list.find((m) => m.minor === MINOR(inode.i_rdev));
    if (!c) return -ENODEV;
    const new_fops = fops_get(inode, c.fops);
    if (!new_fops) return -ENODEV;
    // The driver's open (and every later call) finds its miscdevice here.
    f.private_data = c;
    replace_fops(f, new_fops);
    return new_fops.open ? new_fops.open(inode, f) : 0;
  }

  private misc_minor_alloc(): number {
    for (let i = DYNAMIC_MINORS - 1; i >= 0; i--) {
      if (!this.dynamic_used.has(i) && !this.misc_list.some((m) => m.minor === i)) {
        this.dynamic_used.add(i);
        return i;
      }
    }
    return -EBUSY;
  }

  /** misc_register(): 0, -EBUSY for a taken minor, or device_create()'s error. */
  async misc_register(misc: miscdevice): Promise<number> {
    this.k.might_sleep("misc_register");
    if (!this.misc_class) return -ENODEV;
    const dynamic = misc.minor === MISC_DYNAMIC_MINOR;
    if (dynamic) {
      const minor = this.misc_minor_alloc();
      if (minor < 0) return minor;
      misc.minor = minor;
    } else if (this.misc_list.some((m) => m.minor === misc.minor)) {
      return -EBUSY;
    }
    const dev = await this.core.device_create(this.misc_class, misc.parent ?? null, MKDEV(MISC_MAJOR, misc.minor), misc, misc.name);
    if (typeof dev === "number") {
      if (dynamic) {
        this.dynamic_used.delete(misc.minor);
        misc.minor = MISC_DYNAMIC_MINOR;
      }
      return dev;
    }
    misc.this_device = dev;
    this.misc_list.unshift(misc);
    return 0;
  }

  /** misc_deregister(): the node and class device go; open files keep working. */
  async misc_deregister(misc: miscdevice): Promise<void> {
    this.k.might_sleep("misc_deregister");
    const i = this.misc_list.indexOf(misc);
    if (this.k.WARN_ON(i < 0, `misc_deregister of unregistered ${misc.name}`)) return;
    this.misc_list.splice(i, 1);
    await this.core.device_destroy(this.misc_class!, MKDEV(MISC_MAJOR, misc.minor));
    if (this.dynamic_used.delete(misc.minor)) misc.minor = MISC_DYNAMIC_MINOR;
    misc.this_device = null;
  }

  /** /proc/misc: "minor name" per device. */
  proc_misc(): string[] {
    return this.misc_list.map((m) => `${String(m.minor).padStart(3)} ${m.name}`);
  }
}

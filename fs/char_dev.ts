// Mirrors fs/char_dev.c (Linux 6.8): character-device number regions and struct cdev. A driver
// reserves numbers (register_chrdev_region / alloc_chrdev_region), initialises a cdev with its
// file_operations and adds it; opening a /dev node with that number runs chrdev_open(), which
// swaps the file's operations for the cdev's and calls their ->open.

import { inject, injectable } from "tsyringe";
import { EBUSY, EINVAL, ENXIO } from "../include/uapi/asm-generic/errno.ts";
import { MAJOR, MINOR, MINORMASK, MKDEV, type dev_t } from "../include/linux/kdev_t.ts";
import type { file, file_operations, inode } from "../include/linux/fs.ts";
import { DRIVER_CORE, VFS } from "../kernel/tokens.ts";
import type { Vfs } from "./namespace.ts";
import type { DriverCore, device } from "../drivers/base/core.ts";
import { fops_get, replace_fops } from "./file_table.ts";

export const CHRDEV_MAJOR_MAX = 512;
/** Dynamic majors: 254 down to 234, then 511 down to 384. */
const CHRDEV_MAJOR_DYN_END = 234;
const CHRDEV_MAJOR_DYN_EXT_START = 511;
const CHRDEV_MAJOR_DYN_EXT_END = 384;

/** struct char_device_struct: one registered range of minors under a major. */
interface char_device_struct {
  major: number;
  baseminor: number;
  minorct: number;
  name: string;
  cdev: cdev | null;
}

export class cdev {
  ops: file_operations | null = null;
  owner: string | undefined = undefined;
  dev: dev_t = 0;
  count = 0;
  /** The struct device this cdev was added with (cdev_device_add), if any. */
  parent_device: device | null = null;
}

/** cdev_init(): zeroes the cdev and attaches the operations. */
export function cdev_init(c: cdev, fops: file_operations): void {
  c.ops = fops;
  c.owner = fops.owner;
  c.dev = 0;
  c.count = 0;
}

export function cdev_alloc(): cdev {
  return new cdev();
}

/** chrdev_open(): find the cdev for i_rdev, switch to its fops, call their ->open. */
export async function chrdev_open(inode: inode, filp: file): Promise<number> {
  const p = inode.i_sb.s_vfs.cdev_map.lookup(inode.i_rdev) as cdev | null;
  if (!p?.ops) return -ENXIO;
  const fops = fops_get(inode, p.ops);
  if (!fops) return -ENXIO;
  replace_fops(filp, fops);
  return fops.open ? fops.open(inode, filp) : 0;
}

/** def_chr_fops: what every character-device inode starts with. */
export const def_chr_fops: file_operations = {
  open: chrdev_open,
};

@injectable()
export class CharDevices {
  /** chrdevs[]: registered regions, by major. */
  private readonly chrdevs = new Map<number, char_device_struct[]>();

  constructor(
    @inject(VFS) private readonly vfs: Vfs,
    @inject(DRIVER_CORE) private readonly core: DriverCore,
  ) {}

  private find_dynamic_major(): number {
    for (let i = 254; i >= CHRDEV_MAJOR_DYN_END; i--) if (!this.chrdevs.has(i)) return i;
    for (let i = CHRDEV_MAJOR_DYN_EXT_START; i >= CHRDEV_MAJOR_DYN_EXT_END; i--) if (!this.chrdevs.has(i)) return i;
    return -EBUSY;
  }

  /** __register_chrdev_region(): major 0 asks for a dynamic one; overlaps give -EBUSY. */
  private __register_chrdev_region(major: number, baseminor: number, minorct: number, name: string): char_device_struct | number {
    if (major >= CHRDEV_MAJOR_MAX || major < 0) return -EINVAL;
    if (minorct <= 0 || minorct > MINORMASK + 1 - baseminor) return -EINVAL;
    if (major === 0) {
      major = this.find_dynamic_major();
      if (major < 0) return major;
    }
    const list = this.chrdevs.get(major) ?? [];
    const end = baseminor + minorct;
    if (list.some((c) => baseminor < c.baseminor + c.minorct && c.baseminor < end)) return -EBUSY;
    const cd: char_device_struct = { major, baseminor, minorct, name, cdev: null };
    list.push(cd);
    this.chrdevs.set(major, list);
    return cd;
  }

  private __unregister_chrdev_region(major: number, baseminor: number, minorct: number): char_device_struct | null {
    const list = this.chrdevs.get(major);
    const i = list?.findIndex((c) => c.baseminor === baseminor && c.minorct === minorct) ?? -1;
    if (!list || i < 0) return null;
    const [cd] = list.splice(i, 1);
    if (list.length === 0) this.chrdevs.delete(major);
    return cd!;
  }

  /** register_chrdev_region(): reserves [from, from + count), possibly across majors. */
  register_chrdev_region(from: dev_t, count: number, name: string): number {
    const to = from + count;
    const done: Array<[number, number, number]> = [];
    for (let n = from; n < to; n = MKDEV(MAJOR(n) + 1, 0)) {
      const next = Math.min(MKDEV(MAJOR(n) + 1, 0), to);
      const cd = this.__register_chrdev_region(MAJOR(n), MINOR(n), next - n, name);
      if (typeof cd === "number") {
        for (const [ma, mi, ct] of done) this.__unregister_chrdev_region(ma, mi, ct);
        return cd;
      }
      done.push([MAJOR(n), MINOR(n), next - n]);
    }
    return 0;
  }

  /** alloc_chrdev_region(): a dynamic major; returns the first dev_t (> 0) or -errno. */
  alloc_chrdev_region(baseminor: number, count: number, name: string): dev_t | number {
    const cd = this.__register_chrdev_region(0, baseminor, count, name);
    return typeof cd === "number" ? cd : MKDEV(cd.major, cd.baseminor);
  }

  unregister_chrdev_region(from: dev_t, count: number): void {
    const to = from + count;
    for (let n = from; n < to; n = MKDEV(MAJOR(n) + 1, 0)) {
      const next = Math.min(MKDEV(MAJOR(n) + 1, 0), to);
      this.__unregister_chrdev_region(MAJOR(n), MINOR(n), next - n);
    }
  }

  /**
   * __register_chrdev(): a region plus a cdev running `fops`. Returns the major (dynamic when
   * `major` is 0) or 0 for a fixed major, or -errno.
   */
  __register_chrdev(major: number, baseminor: number, count: number, name: string, fops: file_operations): number {
    const cd = this.__register_chrdev_region(major, baseminor, count, name);
    if (typeof cd === "number") return cd;
    const c = cdev_alloc();
    cdev_init(c, fops);
    this.cdev_add(c, MKDEV(cd.major, baseminor), count);
    cd.cdev = c;
    return major ? 0 : cd.major;
  }

  /** register_chrdev(): all 256 minors of a major (the classic interface, e.g. /dev/kfd). */
  register_chrdev(major: number, name: string, fops: file_operations): number {
    return this.__register_chrdev(major, 0, 256, name, fops);
  }

  unregister_chrdev(major: number, _name: string): void {
    this.__unregister_chrdev(major, 0, 256);
  }

  __unregister_chrdev(major: number, baseminor: number, count: number): void {
    const cd = this.__unregister_chrdev_region(major, baseminor, count);
    if (cd?.cdev) this.cdev_del(cd.cdev);
  }

  /** cdev_add(): the device is live; opens of its numbers reach it from now on. */
  cdev_add(p: cdev, dev: dev_t, count: number): number {
    if (count <= 0) return -EINVAL;
    p.dev = dev;
    p.count = count;
    this.vfs.cdev_map.map(dev, count, p);
    return 0;
  }

  /** cdev_del(): new opens fail with -ENXIO; files already open keep working. */
  cdev_del(p: cdev): void {
    this.vfs.cdev_map.unmap(p.dev, p.count, p);
  }

  /** cdev_device_add(): cdev_add plus device_add, so the /dev node appears when the cdev is live. */
  async cdev_device_add(c: cdev, dev: device): Promise<number> {
    if (dev.devt) {
      c.parent_device = dev;
      const rc = this.cdev_add(c, dev.devt, 1);
      if (rc) return rc;
    }
    const rc = await this.core.device_add(dev);
    if (rc && dev.devt) this.cdev_del(c);
    return rc;
  }

  async cdev_device_del(c: cdev, dev: device): Promise<void> {
    await this.core.device_del(dev);
    if (dev.devt) this.cdev_del(c);
  }

  /** /proc/devices "Character devices:" lines. */
  proc_devices(): string[] {
    const majors = [...this.chrdevs.keys()].sort((a, b) => a - b);
    return majors.flatMap((m) => [...new Set(this.chrdevs.get(m)!.map((c) => c.name))].map((n) => `${String(m).padStart(3)} ${n}`));
  }
}

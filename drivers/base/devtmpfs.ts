// Mirrors drivers/base/devtmpfs.c (Linux 6.8): the /dev filesystem the kernel fills itself.
// device_add() of a device with a number creates a character-device node (mode 0600 unless the
// class's devnode says otherwise), with parent directories for names such as "dri/card0";
// device_del() removes it and the directories it created once empty.

import { inject, injectable } from "tsyringe";
import { EEXIST } from "../../include/uapi/asm-generic/errno.ts";
import { S_IFCHR, S_IFDIR } from "../../include/uapi/linux/stat.ts";
import type { dentry } from "../../include/linux/dcache.ts";
import { KERNEL, VFS } from "../../kernel/tokens.ts";
import type { Kernel } from "../../kernel/kernel.ts";
import type { Vfs } from "../../fs/namespace.ts";
import { def_chr_fops } from "../../fs/char_dev.ts";
import { simple_new_entry, simple_remove_recursive } from "../../fs/libfs.ts";
import type { device } from "./core.ts";

const DEVTMPFS_MAGIC = 0x01021994;

@injectable()
export class Devtmpfs {
  readonly root: dentry;
  /** Directories devtmpfs made for nested names; removed again when empty. */
  private readonly made_dirs = new Set<dentry>();

  constructor(
    @inject(KERNEL) private readonly k: Kernel,
    @inject(VFS) vfs: Vfs,
  ) {
    const sb = vfs.sget({ name: "devtmpfs" }, DEVTMPFS_MAGIC);
    sb.s_fs_info = this;
    this.root = vfs.make_root(sb);
    vfs.mount(sb, "/dev");
  }

  /** device_get_devnode(): the node name below /dev and its mode. */
  private devnode(dev: device): { name: string; mode: number } {
    const info = dev.class?.devnode?.(dev) ?? {};
    return { name: info.name ?? dev.dev_name(), mode: info.mode ?? 0o600 };
  }

  /** dev_mkdir()/create_path(): the directories above a nested node name. */
  private create_path(parts: string[]): dentry | number {
    let dir = this.root;
    for (const p of parts) {
      const existing = dir.d_subdirs.get(p);
      if (existing) {
        dir = existing;
        continue;
      }
      const d = simple_new_entry(dir, p, S_IFDIR | 0o755);
      if (typeof d === "number") return d;
      this.made_dirs.add(d);
      dir = d;
    }
    return dir;
  }

  /** devtmpfs_create_node(): /dev/<name> as a char device numbered dev->devt. */
  async devtmpfs_create_node(dev: device): Promise<number> {
    this.k.might_sleep("devtmpfs_create_node");
    const { name, mode } = this.devnode(dev);
    const parts = name.split("/").filter(Boolean);
    const dir = this.create_path(parts.slice(0, -1));
    if (typeof dir === "number") return dir;
    const d = simple_new_entry(dir, parts[parts.length - 1]!, S_IFCHR | (mode & 0o7777));
    // A stale node of the same name (udev-style rename races) is not an error for device_add.
    if (d === -EEXIST) return 0;
    if (typeof d === "number") return d;
    const i = d.d_inode!;
    i.i_rdev = dev.devt;
    i.i_fop = def_chr_fops;
    return 0;
  }

  /** devtmpfs_delete_node(): removes the node if it is still this device's. */
  async devtmpfs_delete_node(dev: device): Promise<void> {
    this.k.might_sleep("devtmpfs_delete_node");
    const parts = this.devnode(dev).name.split("/").filter(Boolean);
    let dir: dentry | undefined = this.root;
    for (const p of parts.slice(0, -1)) dir = dir?.d_subdirs.get(p);
    const d = dir?.d_subdirs.get(parts[parts.length - 1]!);
    if (!d?.d_inode || d.d_inode.i_rdev !== dev.devt) return;
    simple_remove_recursive(d);
    // delete_path(): drop now-empty directories devtmpfs created.
    for (let x = dir; x && x !== this.root && this.made_dirs.has(x) && x.d_subdirs.size === 0; x = x.d_parent) {
      this.made_dirs.delete(x);
      simple_remove_recursive(x);
    }
  }
}

// Mirrors fs/sysfs/dir.c and fs/sysfs/symlink.c (Linux 6.8): a kobject's directory, symlinks
// between kobjects, and empty mount points. kemu keeps sysfs nodes as dentries of the sysfs
// superblock instead of a separate kernfs_node tree (see docs/fidelity.md).

import { EEXIST, EINVAL, ENOENT } from "../../include/uapi/asm-generic/errno.ts";
import { S_IFDIR, S_IFLNK } from "../../include/uapi/linux/stat.ts";
import type { dentry } from "../../include/linux/dcache.ts";
import type { kobject } from "../../include/linux/sysfs.ts";
import { simple_new_entry, simple_remove_recursive, simple_symlink_inode_operations } from "../libfs.ts";

/** sysfs_create_dir_ns(): the kobject's directory under its parent's. */
export function sysfs_create_dir_ns(kobj: kobject): number {
  const parent = kobj.parent?.sd;
  if (!parent) return -ENOENT;
  const d = simple_new_entry(parent, kobj.name, S_IFDIR | 0o755);
  if (typeof d === "number") {
    if (d === -EEXIST) sysfs_warn_dup(parent, kobj.name);
    return d;
  }
  d.d_fsdata = kobj;
  kobj.sd = d;
  return 0;
}

/** sysfs_warn_dup(): the kernel's "cannot create duplicate filename" warning. */
export function sysfs_warn_dup(parent: dentry, name: string): void {
  const vfs = parent.d_sb.s_vfs;
  vfs.k.WARN(true, `sysfs: cannot create duplicate filename '${sysfs_path(parent)}/${name}'`);
}

/** sysfs_remove_dir(): the directory and everything in it go away. */
export function sysfs_remove_dir(kobj: kobject): void {
  const d = kobj.sd;
  kobj.sd = null;
  if (d) simple_remove_recursive(d);
}

/** The path of a sysfs node below /sys ("/devices/virtual/kfd/kfd"). */
export function sysfs_path(d: dentry): string {
  const parts: string[] = [];
  for (let x = d; x.d_parent !== x; x = x.d_parent) parts.push(x.d_name);
  return `/${parts.reverse().join("/")}`;
}

/** The relative link text from directory `from` to node `to`, as sysfs symlinks carry. */
function relative_link(from: dentry, to: dentry): string {
  const a = sysfs_path(from).split("/").filter(Boolean);
  const b = sysfs_path(to).split("/").filter(Boolean);
  let common = 0;
  while (common < a.length && common < b.length && a[common] === b[common]) common++;
  return [...Array(a.length - common).fill(".."), ...b.slice(common)].join("/");
}

/** sysfs_create_link(): `name` in kobj's directory pointing at target's directory. */
export function sysfs_create_link(kobj: kobject, target: kobject, name: string): number {
  return sysfs_create_link_sd(kobj.sd, target, name);
}

/** sysfs_do_create_link_sd(): a link in an arbitrary sysfs directory. */
export function sysfs_create_link_sd(parent: dentry | null, target: kobject, name: string): number {
  if (!parent || !target.sd) return -ENOENT;
  const to = target.sd;
  const d = simple_new_entry(parent, name, S_IFLNK | 0o777);
  if (typeof d === "number") {
    if (d === -EEXIST) sysfs_warn_dup(parent, name);
    return d;
  }
  d.d_inode!.i_op = simple_symlink_inode_operations(() => (to.d_hashed ? relative_link(parent, to) : null));
  return 0;
}

export function sysfs_remove_link(kobj: kobject, name: string): void {
  const d = kobj.sd?.d_subdirs.get(name);
  if (d) simple_remove_recursive(d);
}

/** sysfs_create_mount_point(): an empty directory another filesystem mounts on. */
export function sysfs_create_mount_point(parent: kobject, name: string): number {
  if (!parent.sd) return -EINVAL;
  const d = simple_new_entry(parent.sd, name, S_IFDIR | 0o755);
  return typeof d === "number" ? d : 0;
}

// Mirrors fs/sysfs/file.c, fs/sysfs/group.c and the kernfs file side (fs/kernfs/file.c) that
// sysfs files use (Linux 6.8): attribute files whose text is generated at read time by ->show
// and parsed at write time by ->store, through the kobject's sysfs_ops.

import { EACCES, EEXIST, EINVAL, EIO, ENODEV } from "../../include/uapi/asm-generic/errno.ts";
import { S_IFDIR, S_IFREG, S_IRUGO, S_IWUGO } from "../../include/uapi/linux/stat.ts";
import { d_unhashed, type dentry } from "../../include/linux/dcache.ts";
import { FMODE_READ, FMODE_WRITE, type file, type file_operations, type inode, type kiocb } from "../../include/linux/fs.ts";
import type { attribute, attribute_group, kobj_attribute, kobject, sysfs_ops } from "../../include/linux/sysfs.ts";
import type { iov_iter } from "../../include/linux/uio.ts";
import { seq_lseek, seq_puts, seq_read_iter, single_open, single_release, type seq_file } from "../seq_file.ts";
import { simple_new_entry, simple_remove_recursive, simple_write_iter_text } from "../libfs.ts";
import { sysfs_warn_dup } from "./dir.ts";

const PAGE_SIZE = 4096;

/** What a sysfs attribute inode points at (kernfs_node->priv). */
interface sysfs_node {
  kobj: kobject;
  attr: attribute;
}

/** kobj_sysfs_ops: plain kobjects dispatch to the kobj_attribute's own show/store. */
export const kobj_sysfs_ops: sysfs_ops = {
  show: (kobj, attr) => {
    const ka = attr as kobj_attribute;
    return ka.show ? ka.show(kobj, ka) : -EIO;
  },
  store: (kobj, attr, buf, count) => {
    const ka = attr as kobj_attribute;
    return ka.store ? ka.store(kobj, ka, buf, count) : -EIO;
  },
};

function sysfs_ops_of(kobj: kobject): sysfs_ops {
  return kobj.ktype?.sysfs_ops ?? kobj_sysfs_ops;
}

/** sysfs_kf_seq_show(): runs ->show; output beyond PAGE_SIZE is cut as the kernel does. */
async function sysfs_kf_seq_show(m: seq_file): Promise<number> {
  const f = m.file;
  if (d_unhashed(f.f_path.dentry)) return -ENODEV;
  const { kobj, attr } = m.private_ as sysfs_node;
  const ret = await sysfs_ops_of(kobj).show!(kobj, attr);
  if (typeof ret === "number") return ret < 0 ? ret : 0;
  if (ret.length >= PAGE_SIZE) {
    const vfs = f.f_inode.i_sb.s_vfs;
    vfs.k.pr_warn(`fill_read_buffer: ${attr.name} returned bad count`);
  }
  seq_puts(m, ret.length > PAGE_SIZE ? ret.slice(0, PAGE_SIZE) : ret);
  return 0;
}

/** kernfs_fop_open(): read needs a readable mode and ->show, write a writable mode and ->store. */
function sysfs_kf_open(inode: inode, f: file): number {
  const n = inode.i_private as sysfs_node;
  const ops = sysfs_ops_of(n.kobj);
  if ((f.f_mode & FMODE_WRITE) && (!(inode.i_mode & S_IWUGO) || !ops.store)) return -EACCES;
  if ((f.f_mode & FMODE_READ) && (!(inode.i_mode & S_IRUGO) || !ops.show)) return -EACCES;
  return single_open(f, sysfs_kf_seq_show, n);
}

/** kernfs_fop_write_iter(): one ->store call with at most PAGE_SIZE bytes of text. */
async function sysfs_kf_write_iter(iocb: kiocb, from: iov_iter): Promise<number> {
  const f = iocb.ki_filp;
  if (d_unhashed(f.f_path.dentry)) return -ENODEV;
  const { kobj, attr } = f.f_inode.i_private as sysfs_node;
  const text = await simple_write_iter_text(from, PAGE_SIZE);
  if (typeof text === "number") return text;
  const ret = await sysfs_ops_of(kobj).store!(kobj, attr, text, text.length);
  if (ret > 0) iocb.ki_pos += ret;
  return ret;
}

export const sysfs_file_operations: file_operations = {
  open: sysfs_kf_open,
  read_iter: seq_read_iter,
  write_iter: sysfs_kf_write_iter,
  llseek: seq_lseek,
  release: single_release,
};

/** sysfs_add_file_mode_ns(): one attribute file in directory `parent`. */
function sysfs_add_file_mode(parent: dentry, kobj: kobject, attr: attribute, mode: number): number {
  const d = simple_new_entry(parent, attr.name, S_IFREG | (mode & 0o777));
  if (typeof d === "number") {
    if (d === -EEXIST) sysfs_warn_dup(parent, attr.name);
    return d;
  }
  const i = d.d_inode!;
  i.i_size = PAGE_SIZE;
  i.i_fop = sysfs_file_operations;
  i.i_private = { kobj, attr } satisfies sysfs_node;
  return 0;
}

/** sysfs_create_file(): an attribute file in the kobject's directory. */
export function sysfs_create_file(kobj: kobject, attr: attribute): number {
  if (!kobj.sd) return -EINVAL;
  return sysfs_add_file_mode(kobj.sd, kobj, attr, attr.mode);
}

export function sysfs_create_files(kobj: kobject, attrs: readonly attribute[]): number {
  for (let i = 0; i < attrs.length; i++) {
    const err = sysfs_create_file(kobj, attrs[i]!);
    if (err) {
      for (let j = 0; j < i; j++) sysfs_remove_file(kobj, attrs[j]!);
      return err;
    }
  }
  return 0;
}

/** sysfs_remove_file(): the file goes; readers holding it open get -ENODEV. */
export function sysfs_remove_file(kobj: kobject, attr: attribute): void {
  const d = kobj.sd?.d_subdirs.get(attr.name);
  if (d) simple_remove_recursive(d);
}

export function sysfs_remove_files(kobj: kobject, attrs: readonly attribute[]): void {
  for (const a of attrs) sysfs_remove_file(kobj, a);
}

/** sysfs_create_group(): the group's files, in a subdirectory if the group is named. */
export function sysfs_create_group(kobj: kobject, grp: attribute_group): number {
  if (!kobj.sd) return -EINVAL;
  let dir = kobj.sd;
  if (grp.name) {
    const d = simple_new_entry(kobj.sd, grp.name, S_IFDIR | 0o755);
    if (typeof d === "number") {
      if (d === -EEXIST) sysfs_warn_dup(kobj.sd, grp.name);
      return d;
    }
    dir = d;
  }
  for (let n = 0; n < grp.attrs.length; n++) {
    const attr = grp.attrs[n]!;
    const mode = grp.is_visible ? grp.is_visible(kobj, attr, n) : attr.mode;
    if (!mode) continue;
    const err = sysfs_add_file_mode(dir, kobj, attr, mode);
    if (err) {
      sysfs_remove_group(kobj, grp);
      return err;
    }
  }
  return 0;
}

export function sysfs_create_groups(kobj: kobject, groups: readonly attribute_group[] | undefined): number {
  for (let i = 0; i < (groups?.length ?? 0); i++) {
    const err = sysfs_create_group(kobj, groups![i]!);
    if (err) {
      for (let j = 0; j < i; j++) sysfs_remove_group(kobj, groups![j]!);
      return err;
    }
  }
  return 0;
}

export function sysfs_remove_group(kobj: kobject, grp: attribute_group): void {
  const dir = kobj.sd;
  if (!dir) return;
  if (grp.name) {
    const d = dir.d_subdirs.get(grp.name);
    if (d) simple_remove_recursive(d);
    return;
  }
  for (const a of grp.attrs) sysfs_remove_file(kobj, a);
}

export function sysfs_remove_groups(kobj: kobject, groups: readonly attribute_group[] | undefined): void {
  for (const g of groups ?? []) sysfs_remove_group(kobj, g);
}

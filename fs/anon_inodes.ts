// Mirrors fs/anon_inodes.c (Linux 6.8): files without a path of their own, all sharing the one
// inode of the internal anon_inodefs mount (event fds, the KFD SMI event fd, ...). The file
// pins the fops' owner module as an open would.

import { ENFILE, ENOENT } from "../include/uapi/asm-generic/errno.ts";
import { O_ACCMODE, O_NONBLOCK } from "../include/uapi/asm-generic/fcntl.ts";
import {
  FMODE_CAN_READ, FMODE_CAN_WRITE, FMODE_OPENED, FMODE_READ, FMODE_WRITE, type file, type file_operations,
} from "../include/linux/fs.ts";
import type { Vfs } from "./namespace.ts";
import { alloc_empty_file } from "./file_table.ts";
import { OPEN_FMODE } from "./open.ts";
import { fd_install, get_unused_fd_flags, put_unused_fd } from "./file.ts";

/** anon_inode_getfile(): an open file on the anonymous inode; `name` is its "[name]". */
export function anon_inode_getfile(vfs: Vfs, _name: string, fops: file_operations, priv: unknown, flags: number): file | number {
  const dentry = vfs.anon_mnt.mnt_root;
  const inode = dentry.d_inode;
  if (!inode) return -ENFILE;
  if (fops.owner && !vfs.modules.try_module_get(fops.owner)) return -ENOENT;
  const f = alloc_empty_file({ mnt: vfs.anon_mnt, dentry }, inode, flags & (O_ACCMODE | O_NONBLOCK), OPEN_FMODE(flags) | FMODE_OPENED, fops);
  // alloc_file(): what the fops can do, as do_dentry_open() decides for a path open.
  if (f.f_mode & FMODE_READ && (fops.read || fops.read_iter)) f.f_mode |= FMODE_CAN_READ;
  if (f.f_mode & FMODE_WRITE && (fops.write || fops.write_iter)) f.f_mode |= FMODE_CAN_WRITE;
  f.private_data = priv;
  return f;
}

/** anon_inode_getfd(): the same, installed in the current task's descriptor table. */
export function anon_inode_getfd(vfs: Vfs, name: string, fops: file_operations, priv: unknown, flags: number): number {
  const files = vfs.k.current.files;
  if (!files) return -ENFILE;
  const fd = get_unused_fd_flags(files, flags);
  if (fd < 0) return fd;
  const f = anon_inode_getfile(vfs, name, fops, priv, flags);
  if (typeof f === "number") {
    put_unused_fd(files, fd);
    return f;
  }
  fd_install(files, fd, f);
  return fd;
}

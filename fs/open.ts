// Mirrors fs/open.c (Linux 6.8): open(2)/openat(2)/close(2), build_open_flags() and
// do_dentry_open(). A descriptor is reserved first, the file is opened, then installed, so a
// failed open leaves the table as it was.

import { EBADF, EINTR, EINVAL, EMFILE, ENODEV, ENXIO, EPERM, ERESTARTSYS } from "../include/uapi/asm-generic/errno.ts";
import {
  AT_FDCWD, O_ACCMODE, O_CREAT, O_PATH, O_TMPFILE, O_TMPFILE_MASK, O_TRUNC, __O_TMPFILE,
} from "../include/uapi/asm-generic/fcntl.ts";
import type { dentry, path } from "../include/linux/dcache.ts";
import {
  ATTR_SIZE, FMODE_ATOMIC_POS, FMODE_CAN_READ, FMODE_CAN_WRITE, FMODE_LSEEK, FMODE_OPENED, FMODE_PREAD, FMODE_PWRITE,
  FMODE_READ, FMODE_WRITE, inode_lock, inode_unlock, iput, MAY_OPEN, MAY_READ, MAY_WRITE, type file,
} from "../include/linux/fs.ts";
import { S_ISDIR, S_ISREG } from "../include/uapi/linux/stat.ts";
import type { Vfs } from "./namespace.ts";
import { alloc_empty_file, fops_get, fops_put, fput } from "./file_table.ts";
import { close_fd, fd_install, fget, get_unused_fd_flags, put_unused_fd } from "./file.ts";
import { do_filp_open } from "./namei.ts";

/** struct open_flags: build_open_flags()' digest of the open(2) arguments. */
export interface open_flags {
  open_flag: number;
  mode: number;
  acc_mode: number;
  intent: number;
}

/** OPEN_FMODE(): O_RDONLY→READ, O_WRONLY→WRITE, O_RDWR→both, 3→neither (ioctl-only opens). */
export function OPEN_FMODE(flags: number): number {
  return ((flags & O_ACCMODE) + 1) & O_ACCMODE;
}

/** ACC_MODE(): the permission an access mode needs. */
function ACC_MODE(flags: number): number {
  return [MAY_READ, MAY_WRITE, MAY_READ | MAY_WRITE, MAY_READ | MAY_WRITE][flags & O_ACCMODE]!;
}

/** build_open_flags(): validates the flag combination; -EINVAL for the ones open(2) rejects. */
export function build_open_flags(flags: number, mode: number): open_flags | number {
  const with_mode = (flags & O_CREAT) !== 0 || (flags & __O_TMPFILE) !== 0;
  let acc_mode = ACC_MODE(flags);
  if (flags & __O_TMPFILE) {
    if ((flags & O_TMPFILE_MASK) !== O_TMPFILE) return -EINVAL;
    if (!(acc_mode & MAY_WRITE)) return -EINVAL;
  }
  // O_PATH descriptors (no I/O, only a position in the tree) are not modelled.
  if (flags & O_PATH) return -EINVAL;
  if (flags & O_TRUNC) acc_mode |= MAY_WRITE;
  return { open_flag: flags, mode: with_mode ? mode & 0o7777 : 0, acc_mode: acc_mode | MAY_OPEN, intent: 0 };
}

/** A file that never reached FMODE_OPENED goes away without ->release. */
function discard_unopened(f: file): void {
  f.f_inode.i_sb.s_vfs.live_files.delete(f);
  iput(f.f_inode);
}

/**
 * do_dentry_open(): allocates the struct file, pins ->owner, runs ->open and sets what the file
 * can do. Returns the file (holding one reference) or -errno.
 */
export async function do_dentry_open(vfs: Vfs, p: path, op: open_flags, extra_mode = 0): Promise<file | number> {
  const inode = p.dentry.d_inode!;
  let mode = OPEN_FMODE(op.open_flag) | FMODE_LSEEK | FMODE_PREAD | FMODE_PWRITE | extra_mode;
  if (S_ISREG(inode.i_mode) || S_ISDIR(inode.i_mode)) mode |= FMODE_ATOMIC_POS;
  const fops = fops_get(inode, inode.i_fop);
  if (!fops) return inode.i_fop ? -ENODEV : -ENXIO;
  const f = alloc_empty_file(p, inode, op.open_flag & ~(O_CREAT | O_TRUNC), mode, fops);
  const err = fops.open ? await fops.open(inode, f) : 0;
  if (err) {
    // ->open may have swapped the fops (chrdev_open): release whatever the file holds now.
    fops_put(inode, f.f_op);
    discard_unopened(f);
    return err;
  }
  f.f_mode |= FMODE_OPENED;
  if ((f.f_mode & FMODE_READ) && (f.f_op.read || f.f_op.read_iter)) f.f_mode |= FMODE_CAN_READ;
  if ((f.f_mode & FMODE_WRITE) && (f.f_op.write || f.f_op.write_iter)) f.f_mode |= FMODE_CAN_WRITE;
  return f;
}

/** filp_open(): open by name from kernel code; no descriptor. */
export async function filp_open(vfs: Vfs, name: string, flags: number, mode = 0): Promise<file | number> {
  const op = build_open_flags(flags, mode);
  if (typeof op === "number") return op;
  return do_filp_open(vfs, name, op);
}

/** do_sys_openat2(): reserve a descriptor, open, install. */
export async function do_sys_open(vfs: Vfs, dfd: number, filename: string, flags: number, mode: number): Promise<number> {
  const op = build_open_flags(flags, mode);
  if (typeof op === "number") return op;
  // Every kemu process works in "/"; a relative name with a real dfd would need fd-relative walks.
  if (!filename.startsWith("/") && dfd !== AT_FDCWD) return -EBADF;
  const files = vfs.k.current.files;
  // Kernel threads own no descriptor table in kemu; they use filp_open().
  if (!files) return -EMFILE;
  const fd = get_unused_fd_flags(files, flags);
  if (fd < 0) return fd;
  const f = await do_filp_open(vfs, filename, op);
  if (typeof f === "number") {
    put_unused_fd(files, fd);
    return f;
  }
  fd_install(files, fd, f);
  return fd;
}

/** close(2): an interrupted ->flush still closed the descriptor, so it must not be retried. */
export async function sys_close_fd(vfs: Vfs, fd: number): Promise<number> {
  const files = vfs.k.current.files;
  if (!files) return -EBADF;
  const ret = await close_fd(files, fd);
  if (ret === -ERESTARTSYS) return -EINTR;
  return ret;
}

/** do_truncate(): a new size under the inode lock. */
export async function do_truncate(d: dentry, length: number): Promise<number> {
  const inode = d.d_inode!;
  if (length < 0) return -EINVAL;
  if (!inode.i_op.setattr) return -EPERM;
  await inode_lock(inode);
  try {
    return await inode.i_op.setattr(d, { ia_valid: ATTR_SIZE, ia_size: length });
  } finally {
    inode_unlock(inode);
  }
}

/** do_sys_ftruncate(): a regular file opened for writing gets a new size. */
export async function do_sys_ftruncate(vfs: Vfs, fd: number, length: number): Promise<number> {
  if (length < 0) return -EINVAL;
  const f = fget(vfs.k.current.files, fd);
  if (!f) return -EBADF;
  try {
    const inode = f.f_inode;
    if (!S_ISREG(inode.i_mode) || !(f.f_mode & FMODE_WRITE)) return -EINVAL;
    return await do_truncate(f.f_path.dentry, length);
  } finally {
    fput(f);
  }
}

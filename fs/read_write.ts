// Mirrors fs/read_write.c (Linux 6.8): read(2), write(2), pread64/pwrite64, lseek(2), and
// kernel_read()/kernel_write() for kernel callers. A file is read through ->read (user buffer)
// when it has one, else through ->read_iter with an iov_iter over the user buffer.

import { EBADF, EFAULT, EINVAL, ESPIPE } from "../include/uapi/asm-generic/errno.ts";
import {
  FMODE_CAN_READ, FMODE_CAN_WRITE, FMODE_LSEEK, FMODE_PREAD, FMODE_PWRITE, FMODE_READ, FMODE_WRITE,
  SEEK_END, type file, type kiocb, type loff_ptr,
} from "../include/linux/fs.ts";
import { ITER_DEST, ITER_SOURCE, iov_iter } from "../include/linux/uio.ts";
import { access_ok } from "../include/linux/uaccess.ts";
import type { Vfs } from "./namespace.ts";
import { fget } from "./file.ts";
import { fput } from "./file_table.ts";

/** MAX_RW_COUNT: INT_MAX & PAGE_MASK, the most one call moves. */
export const MAX_RW_COUNT = 2 ** 31 - 4096;

/** rw_verify_area(): a negative or overflowing position is -EINVAL. */
function rw_verify_area(pos: number, count: number): number {
  if (pos < 0 || pos + count < pos) return -EINVAL;
  return 0;
}

function init_sync_kiocb(f: file, pos: number): kiocb {
  return { ki_filp: f, ki_pos: pos, ki_flags: 0 };
}

/** vfs_read(): reads into user memory at `buf`. */
export async function vfs_read(vfs: Vfs, f: file, buf: number, count: number, pos: loff_ptr): Promise<number> {
  if (!(f.f_mode & FMODE_READ)) return -EBADF;
  if (!(f.f_mode & FMODE_CAN_READ)) return -EINVAL;
  if (!access_ok(buf, count)) return -EFAULT;
  const err = rw_verify_area(pos.pos, count);
  if (err) return err;
  count = Math.min(count, MAX_RW_COUNT);
  if (f.f_op.read) return f.f_op.read(f, buf, count, pos);
  // new_sync_read()
  const iocb = init_sync_kiocb(f, pos.pos);
  const ret = await f.f_op.read_iter!(iocb, iov_iter.ubuf(ITER_DEST, buf, count, vfs.uaccess()));
  pos.pos = iocb.ki_pos;
  return ret;
}

/** vfs_write(): writes from user memory at `buf`. */
export async function vfs_write(vfs: Vfs, f: file, buf: number, count: number, pos: loff_ptr): Promise<number> {
  if (!(f.f_mode & FMODE_WRITE)) return -EBADF;
  if (!(f.f_mode & FMODE_CAN_WRITE)) return -EINVAL;
  if (!access_ok(buf, count)) return -EFAULT;
  const err = rw_verify_area(pos.pos, count);
  if (err) return err;
  count = Math.min(count, MAX_RW_COUNT);
  if (f.f_op.write) return f.f_op.write(f, buf, count, pos);
  // new_sync_write()
  const iocb = init_sync_kiocb(f, pos.pos);
  const ret = await f.f_op.write_iter!(iocb, iov_iter.ubuf(ITER_SOURCE, buf, count, vfs.uaccess()));
  pos.pos = iocb.ki_pos;
  return ret;
}

/** kernel_read(): into a kernel buffer; needs ->read_iter as the kernel's __kernel_read does. */
export async function kernel_read(f: file, buf: Uint8Array, count: number, pos: loff_ptr): Promise<number> {
  if (!(f.f_mode & FMODE_READ)) return -EBADF;
  if (!(f.f_mode & FMODE_CAN_READ) || !f.f_op.read_iter) return -EINVAL;
  const err = rw_verify_area(pos.pos, count);
  if (err) return err;
  const iocb = init_sync_kiocb(f, pos.pos);
  const ret = await f.f_op.read_iter(iocb, iov_iter.kvec(ITER_DEST, buf, Math.min(count, MAX_RW_COUNT)));
  pos.pos = iocb.ki_pos;
  return ret;
}

/** kernel_write(): from a kernel buffer, through ->write_iter. */
export async function kernel_write(f: file, buf: Uint8Array, count: number, pos: loff_ptr): Promise<number> {
  if (!(f.f_mode & FMODE_WRITE)) return -EBADF;
  if (!(f.f_mode & FMODE_CAN_WRITE) || !f.f_op.write_iter) return -EINVAL;
  const err = rw_verify_area(pos.pos, count);
  if (err) return err;
  const iocb = init_sync_kiocb(f, pos.pos);
  const ret = await f.f_op.write_iter(iocb, iov_iter.kvec(ITER_SOURCE, buf, Math.min(count, MAX_RW_COUNT)));
  pos.pos = iocb.ki_pos;
  return ret;
}

/** ksys_read(): read(2) at and advancing the file position. */
export async function ksys_read(vfs: Vfs, fd: number, buf: number, count: number): Promise<number> {
  const f = fget(vfs.k.current.files, fd);
  if (!f) return -EBADF;
  try {
    const pos = { pos: f.f_pos };
    const ret = await vfs_read(vfs, f, buf, count, pos);
    if (ret >= 0) f.f_pos = pos.pos;
    return ret;
  } finally {
    fput(f);
  }
}

export async function ksys_write(vfs: Vfs, fd: number, buf: number, count: number): Promise<number> {
  const f = fget(vfs.k.current.files, fd);
  if (!f) return -EBADF;
  try {
    const pos = { pos: f.f_pos };
    const ret = await vfs_write(vfs, f, buf, count, pos);
    if (ret >= 0) f.f_pos = pos.pos;
    return ret;
  } finally {
    fput(f);
  }
}

/** ksys_pread64(): at `offset`, the file position untouched; -ESPIPE for unseekable files. */
export async function ksys_pread64(vfs: Vfs, fd: number, buf: number, count: number, offset: number): Promise<number> {
  if (offset < 0) return -EINVAL;
  const f = fget(vfs.k.current.files, fd);
  if (!f) return -EBADF;
  try {
    if (!(f.f_mode & FMODE_PREAD)) return -ESPIPE;
    return await vfs_read(vfs, f, buf, count, { pos: offset });
  } finally {
    fput(f);
  }
}

export async function ksys_pwrite64(vfs: Vfs, fd: number, buf: number, count: number, offset: number): Promise<number> {
  if (offset < 0) return -EINVAL;
  const f = fget(vfs.k.current.files, fd);
  if (!f) return -EBADF;
  try {
    if (!(f.f_mode & FMODE_PWRITE)) return -ESPIPE;
    return await vfs_write(vfs, f, buf, count, { pos: offset });
  } finally {
    fput(f);
  }
}

/** vfs_llseek(): the file's ->llseek; files without one cannot seek. */
export function vfs_llseek(f: file, offset: number, whence: number): number {
  if (!(f.f_mode & FMODE_LSEEK) || !f.f_op.llseek) return -ESPIPE;
  return f.f_op.llseek(f, offset, whence);
}

export function ksys_lseek(vfs: Vfs, fd: number, offset: number, whence: number): number {
  if (whence < 0 || whence > SEEK_END) return -EINVAL;
  const f = fget(vfs.k.current.files, fd);
  if (!f) return -EBADF;
  try {
    return vfs_llseek(f, offset, whence);
  } finally {
    fput(f);
  }
}

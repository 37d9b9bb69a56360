// Mirrors fs/ioctl.c (Linux 6.8): ioctl(2). A few generic requests (close-on-exec, non-blocking,
// bytes readable) are handled by the VFS; everything else goes to the driver's ->unlocked_ioctl.
// No ->unlocked_ioctl, or a driver answering -ENOIOCTLCMD, means -ENOTTY; a bad fd is -EBADF.

import { EBADF, EFAULT, ENOIOCTLCMD, ENOTTY } from "../include/uapi/asm-generic/errno.ts";
import { FIOASYNC, FIOCLEX, FIONBIO, FIONCLEX, FIONREAD, FIOQSIZE } from "../include/uapi/asm-generic/ioctls.ts";
import { FASYNC, O_NONBLOCK } from "../include/uapi/asm-generic/fcntl.ts";
import { S_ISDIR, S_ISLNK, S_ISREG } from "../include/uapi/linux/stat.ts";
import type { file } from "../include/linux/fs.ts";
import type { Vfs } from "./namespace.ts";
import { fget } from "./file.ts";
import { fput } from "./file_table.ts";
import { copy_to_user, get_user_u32, put_user_u32 } from "../include/linux/uaccess.ts";

/** ioctl's `unsigned int cmd`: whatever the caller passed, reduced to 32 bits. */
function ioctl_cmd(request: number): number {
  const r = Math.trunc(request) % 2 ** 32;
  return r < 0 ? r + 2 ** 32 : r;
}

/** vfs_ioctl(): the driver's ->unlocked_ioctl. */
export async function vfs_ioctl(f: file, cmd: number, arg: number): Promise<number> {
  if (!f.f_op.unlocked_ioctl) return -ENOTTY;
  const error = await f.f_op.unlocked_ioctl(f, cmd, arg);
  return error === -ENOIOCTLCMD ? -ENOTTY : error;
}

async function put_user_u64(vfs: Vfs, v: number, addr: number): Promise<number> {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, v % 2 ** 32, true);
  dv.setUint32(4, Math.floor(v / 2 ** 32), true);
  return (await copy_to_user(vfs.k, addr, b, 8)) ? -EFAULT : 0;
}

/** ioctl_fionbio()/ioctl_fioasync(): set or clear a status flag from an int in user memory. */
async function ioctl_set_flag(vfs: Vfs, f: file, arg: number, flag: number): Promise<number> {
  const on = await get_user_u32(vfs.k, arg);
  if (typeof on !== "number") return on.err;
  f.f_flags = on ? f.f_flags | flag : f.f_flags & ~flag;
  return 0;
}

/** do_vfs_ioctl(): the generic requests; -ENOIOCTLCMD hands the rest to the driver. */
async function do_vfs_ioctl(vfs: Vfs, f: file, fd: number, cmd: number, arg: number): Promise<number> {
  const inode = f.f_inode;
  const files = vfs.k.current.files!;
  switch (cmd) {
    case FIOCLEX:
      files.close_on_exec.add(fd);
      return 0;
    case FIONCLEX:
      files.close_on_exec.delete(fd);
      return 0;
    case FIONBIO:
      return ioctl_set_flag(vfs, f, arg, O_NONBLOCK);
    case FIOASYNC:
      return ioctl_set_flag(vfs, f, arg, FASYNC);
    case FIOQSIZE:
      if (S_ISDIR(inode.i_mode) || S_ISREG(inode.i_mode) || S_ISLNK(inode.i_mode)) return put_user_u64(vfs, inode.i_size, arg);
      return -ENOTTY;
    case FIONREAD:
      if (!S_ISREG(inode.i_mode)) return vfs_ioctl(f, cmd, arg);
      return put_user_u32(vfs.k, Math.max(0, inode.i_size - f.f_pos), arg);
    default:
      return -ENOIOCTLCMD;
  }
}

/** sys_ioctl(): look the descriptor up, try the generic requests, then the driver. */
export async function sys_ioctl(vfs: Vfs, fd: number, request: number, arg: number): Promise<number> {
  const f = fget(vfs.k.current.files, fd);
  if (!f) return -EBADF;
  const cmd = ioctl_cmd(request);
  try {
    const error = await do_vfs_ioctl(vfs, f, fd, cmd, arg);
    return error === -ENOIOCTLCMD ? await vfs_ioctl(f, cmd, arg) : error;
  } finally {
    fput(f);
  }
}

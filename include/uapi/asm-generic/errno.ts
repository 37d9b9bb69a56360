// Mirrors include/uapi/asm-generic/errno-base.h and errno.h (Linux 6.8): kernel error numbers.

export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const E2BIG = 7;
export const ENOEXEC = 8;
export const EBADF = 9;
export const ECHILD = 10;
export const EAGAIN = 11;
export const EWOULDBLOCK = EAGAIN;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const ENOTBLK = 15;
export const EBUSY = 16;
export const EEXIST = 17;
export const EXDEV = 18;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOTTY = 25;
export const ETXTBSY = 26;
export const EFBIG = 27;
export const ENOSPC = 28;
export const ESPIPE = 29;
export const EROFS = 30;
export const EMLINK = 31;
export const EPIPE = 32;
export const EDOM = 33;
export const ERANGE = 34;
export const EDEADLK = 35;
export const ENAMETOOLONG = 36;
export const ENOLCK = 37;
export const ENOSYS = 38;
export const ENOTEMPTY = 39;
export const ELOOP = 40;
export const ENOMSG = 42;
export const EIDRM = 43;
export const ENODATA = 61;
export const ETIME = 62;
export const EMULTIHOP = 72;
export const EOVERFLOW = 75;
export const EBADFD = 77;
export const EILSEQ = 84;
export const EOPNOTSUPP = 95;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ENOBUFS = 105;
export const ETIMEDOUT = 110;
export const EALREADY = 114;
export const EINPROGRESS = 115;
export const ECANCELED = 125;
export const EHWPOISON = 133;

// Kernel-internal codes (include/linux/errno.h), never seen by user space.
export const ERESTARTSYS = 512;
/** A driver does not know this ioctl; the VFS turns it into -ENOTTY. */
export const ENOIOCTLCMD = 515;
export const ENOTSUPP = 524;

const names: Record<number, string> = {};
for (const [k, v] of Object.entries({
  EPERM, ENOENT, ESRCH, EINTR, EIO, ENXIO, E2BIG, ENOEXEC, EBADF, ECHILD, EAGAIN, ENOMEM, EACCES,
  EFAULT, ENOTBLK, EBUSY, EEXIST, EXDEV, ENODEV, ENOTDIR, EISDIR, EINVAL, ENFILE, EMFILE, ENOTTY,
  ETXTBSY, EFBIG, ENOSPC, ESPIPE, EROFS, EMLINK, EPIPE, EDOM, ERANGE, EDEADLK, ENAMETOOLONG,
  ENOLCK, ENOSYS, ENOTEMPTY, ELOOP, ENOMSG, EIDRM, ENODATA, ETIME, EMULTIHOP, EOVERFLOW, EBADFD, EILSEQ,
  EOPNOTSUPP, EADDRINUSE, EADDRNOTAVAIL, ENOBUFS, ETIMEDOUT, EALREADY, EINPROGRESS, ECANCELED,
  EHWPOISON, ERESTARTSYS, ENOIOCTLCMD, ENOTSUPP,
})) {
  names[v] ??= k;
}

/** "EINVAL" for 22 or -22; "E?123" for an unknown number. */
export function errname(err: number): string {
  return names[Math.abs(err)] ?? `E?${Math.abs(err)}`;
}

/** include/linux/err.h: an ERR_PTR is represented by a negative errno number. */
export function IS_ERR_VALUE(x: unknown): x is number {
  return typeof x === "number" && x < 0 && x >= -4095;
}

// Mirrors include/uapi/asm-generic/fcntl.h (Linux 6.8, the x86-64 values): open(2) flags.
// Flag words, not addresses: bit operators are fine on them.

export const O_ACCMODE = 0o00000003;
export const O_RDONLY = 0o00000000;
export const O_WRONLY = 0o00000001;
export const O_RDWR = 0o00000002;
export const O_CREAT = 0o00000100;
export const O_EXCL = 0o00000200;
export const O_NOCTTY = 0o00000400;
export const O_TRUNC = 0o00001000;
export const O_APPEND = 0o00002000;
export const O_NONBLOCK = 0o00004000;
export const O_DSYNC = 0o00010000;
export const FASYNC = 0o00020000;
export const O_DIRECT = 0o00040000;
export const O_LARGEFILE = 0o00100000;
export const O_DIRECTORY = 0o00200000;
export const O_NOFOLLOW = 0o00400000;
export const O_NOATIME = 0o01000000;
export const O_CLOEXEC = 0o02000000;
export const __O_SYNC = 0o04000000;
export const O_SYNC = __O_SYNC | O_DSYNC;
export const O_PATH = 0o10000000;
export const __O_TMPFILE = 0o20000000;
/** An unnamed file in the given directory; O_DIRECTORY is part of it so old kernels fail safely. */
export const O_TMPFILE = __O_TMPFILE | O_DIRECTORY;
export const O_TMPFILE_MASK = __O_TMPFILE | O_DIRECTORY | O_CREAT;
export const O_NDELAY = O_NONBLOCK;

export const F_DUPFD = 0;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;

/** include/uapi/linux/fcntl.h: "relative to the current directory" for the *at() calls. */
export const AT_FDCWD = -100;

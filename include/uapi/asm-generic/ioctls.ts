// Mirrors include/uapi/asm-generic/ioctls.h (Linux 6.8): the generic file ioctls do_vfs_ioctl()
// handles before a driver sees the request.

export const FIONREAD = 0x541b;
export const FIONBIO = 0x5421;
export const FIONCLEX = 0x5450;
export const FIOCLEX = 0x5451;
export const FIOASYNC = 0x5452;
export const FIOQSIZE = 0x5460;

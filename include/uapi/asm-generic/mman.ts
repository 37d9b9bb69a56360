// Mirrors include/uapi/asm-generic/mman.h, include/uapi/linux/mman.h and
// arch/x86/include/uapi/asm/mman.h (Linux 6.8): the rest of the mmap flags, as x86-64 sees them.

export * from "./mman-common.ts";

export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_SHARED_VALIDATE = 0x03;

export const MAP_GROWSDOWN = 0x0100;
export const MAP_DENYWRITE = 0x0800;
export const MAP_EXECUTABLE = 0x1000;
export const MAP_LOCKED = 0x2000;
export const MAP_NORESERVE = 0x4000;
/** x86: only give out 32-bit addresses. */
export const MAP_32BIT = 0x40;
export const MAP_ABOVE4G = 0x80;

export const MCL_CURRENT = 1;
export const MCL_FUTURE = 2;
export const MCL_ONFAULT = 4;

/** mmap's failure value is (void *)-1; kemu's syscalls return -errno, so -1 never collides. */
export const MAP_FAILED = -1;

// Mirrors arch/x86/include/generated/uapi/asm/unistd_64.h (Linux 6.8, from syscall_64.tbl): the
// x86-64 system-call numbers kemu implements.

export const __NR_read = 0;
export const __NR_write = 1;
export const __NR_open = 2;
export const __NR_close = 3;
export const __NR_lseek = 8;
export const __NR_mmap = 9;
export const __NR_mprotect = 10;
export const __NR_munmap = 11;
export const __NR_ioctl = 16;
export const __NR_pread64 = 17;
export const __NR_pwrite64 = 18;
export const __NR_madvise = 28;
export const __NR_getpid = 39;
export const __NR_clone = 56;
export const __NR_fork = 57;
export const __NR_exit = 60;
export const __NR_ftruncate = 77;
export const __NR_mkdir = 83;
export const __NR_unlink = 87;
export const __NR_gettid = 186;
export const __NR_exit_group = 231;
export const __NR_openat = 257;

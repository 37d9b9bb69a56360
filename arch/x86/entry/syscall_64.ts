// Mirrors arch/x86/entry/syscall_64.c and common.c do_syscall_64() (Linux 6.8): the system-call
// table and the entry user space comes through. Every call runs in the calling task's context
// (tools/runtime puts it there) with the arguments as the six register values, and leaves
// through exit_to_user_mode() (task work, fatal signals). Unknown numbers give -ENOSYS. The
// SYSCALL_DEFINE bodies live with their subsystems (fs/open.c → fs/open.ts, mm/mmap.c → ...).

import { inject, injectable } from "tsyringe";
import { KERNEL, VFS } from "../../../kernel/tokens.ts";
import type { Kernel } from "../../../kernel/kernel.ts";
import type { Vfs } from "../../../fs/namespace.ts";
import type { mm_struct } from "../../../include/linux/mm_types.ts";
import { ENOSYS } from "../../../include/uapi/asm-generic/errno.ts";
import { AT_FDCWD } from "../../../include/uapi/asm-generic/fcntl.ts";
import * as NR from "../include/uapi/asm/unistd_64.ts";
import { exit_to_user_mode } from "../../../kernel/entry/common.ts";
import { sys_exit, sys_exit_group } from "../../../kernel/exit.ts";
import { kernel_clone, CLONE_FILES, CLONE_SIGHAND, CLONE_THREAD, CLONE_VM, CLONE_FS, SIGCHLD } from "../../../kernel/fork.ts";
import { do_sys_ftruncate, do_sys_open, sys_close_fd } from "../../../fs/open.ts";
import { do_mkdirat, do_unlinkat, getname } from "../../../fs/namei.ts";
import { ksys_lseek, ksys_pread64, ksys_pwrite64, ksys_read, ksys_write } from "../../../fs/read_write.ts";
import { sys_ioctl } from "../../../fs/ioctl.ts";
import { sys_mmap, sys_munmap } from "../../../mm/mmap.ts";
import { sys_mprotect } from "../../../mm/mprotect.ts";
import { sys_madvise } from "../../../mm/madvise.ts";

type syscall_fn = (a: number[]) => Promise<number> | number;

/** The flags pthread_create() clones with: one address space, one file table, one group. */
export const CLONE_THREAD_FLAGS = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;

@injectable()
export class Syscalls {
  readonly sys_call_table: ReadonlyMap<number, syscall_fn>;

  constructor(
    @inject(KERNEL) private readonly k: Kernel,
    @inject(VFS) private readonly vfs: Vfs,
  ) {
    this.sys_call_table = this.build_table();
  }

  private mm(): mm_struct {
    return this.k.current.mm as mm_struct;
  }

  /** A path argument: a user pointer to a NUL-terminated string. */
  private async with_name(uptr: number, fn: (name: string) => Promise<number>): Promise<number> {
    const name = await getname(this.vfs, uptr);
    return typeof name === "number" ? name : fn(name);
  }

  private build_table(): Map<number, syscall_fn> {
    const k = this.k;
    const vfs = this.vfs;
    return new Map<number, syscall_fn>([
      [NR.__NR_read, (a) => ksys_read(vfs, a[0]!, a[1]!, a[2]!)],
      [NR.__NR_write, (a) => ksys_write(vfs, a[0]!, a[1]!, a[2]!)],
      [NR.__NR_open, (a) => this.with_name(a[0]!, (n) => do_sys_open(vfs, AT_FDCWD, n, a[1]!, a[2]!))],
      [NR.__NR_openat, (a) => this.with_name(a[1]!, (n) => do_sys_open(vfs, a[0]!, n, a[2]!, a[3]!))],
      [NR.__NR_close, (a) => sys_close_fd(vfs, a[0]!)],
      [NR.__NR_lseek, (a) => ksys_lseek(vfs, a[0]!, a[1]!, a[2]!)],
      [NR.__NR_pread64, (a) => ksys_pread64(vfs, a[0]!, a[1]!, a[2]!, a[3]!)],
      [NR.__NR_pwrite64, (a) => ksys_pwrite64(vfs, a[0]!, a[1]!, a[2]!, a[3]!)],
      [NR.__NR_ioctl, (a) => sys_ioctl(vfs, a[0]!, a[1]!, a[2]!)],
      [NR.__NR_ftruncate, (a) => do_sys_ftruncate(vfs, a[0]!, a[1]!)],
      [NR.__NR_unlink, (a) => this.with_name(a[0]!, (n) => do_unlinkat(vfs, n))],
      [NR.__NR_mkdir, (a) => this.with_name(a[0]!, (n) => do_mkdirat(vfs, n, a[1]!))],
      [NR.__NR_mmap, (a) => sys_mmap(k, this.mm(), a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!)],
      [NR.__NR_munmap, (a) => sys_munmap(this.mm(), a[0]!, a[1]!)],
      [NR.__NR_mprotect, (a) => sys_mprotect(this.mm(), a[0]!, a[1]!, a[2]!)],
      [NR.__NR_madvise, (a) => sys_madvise(this.mm(), a[0]!, a[1]!, a[2]!)],
      [NR.__NR_getpid, () => k.current.tgid],
      [NR.__NR_gettid, () => k.current.pid],
      [NR.__NR_fork, () => kernel_clone(k, SIGCHLD)],
      [NR.__NR_clone, (a) => kernel_clone(k, a[0]!)],
      [NR.__NR_exit, async (a) => {
        await sys_exit(k, a[0]!);
        return 0;
      }],
      [NR.__NR_exit_group, async (a) => {
        await sys_exit_group(k, a[0]!);
        return 0;
      }],
    ]);
  }

  /** do_syscall_64(): runs system call `nr` for the current task; each call checks its arguments. */
  async do_syscall_64(nr: number, args: readonly number[]): Promise<number> {
    const fn = this.sys_call_table.get(nr);
    const ret = fn ? await fn([...args, 0, 0, 0, 0, 0, 0].slice(0, 6)) : -ENOSYS;
    if (nr !== NR.__NR_exit && nr !== NR.__NR_exit_group) await exit_to_user_mode(this.k);
    return ret;
  }
}

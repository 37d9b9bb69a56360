// Mirrors fs/file.c (Linux 6.8): the per-process descriptor table. Descriptors are allocated
// lowest-free first; threads share one files_struct, fork copies it (each file gains a
// reference), and the last user closes every file.

import { EBADF, EMFILE } from "../include/uapi/asm-generic/errno.ts";
import { O_CLOEXEC } from "../include/uapi/asm-generic/fcntl.ts";
import type { file } from "../include/linux/fs.ts";
import type { task_struct } from "../kernel/sched/core.ts";
import { fput, get_file } from "./file_table.ts";

/** RLIMIT_NOFILE's default soft limit: fds at or above it give -EMFILE. */
export const NR_OPEN_DEFAULT_RLIMIT = 1024;

export class files_struct {
  /** Tasks sharing this table (CLONE_FILES threads). */
  count = 1;
  /** fdt->fd[]: the installed file of each descriptor. */
  readonly fd: (file | null)[] = [];
  /** fdt->open_fds: descriptors allocated (installed or reserved by get_unused_fd). */
  readonly open_fds: boolean[] = [];
  readonly close_on_exec = new Set<number>();
  /** Lowest descriptor that may be free (the kernel's next_fd hint). */
  next_fd = 0;
  /** current->signal->rlim[RLIMIT_NOFILE].rlim_cur */
  rlimit_nofile = NR_OPEN_DEFAULT_RLIMIT;
}

/** alloc_fd(): the lowest free descriptor >= start, below `end`; -EMFILE when none. */
export function alloc_fd(files: files_struct, start: number, end: number, flags: number): number {
  let fd = Math.max(start, files.next_fd);
  while (files.open_fds[fd]) fd++;
  if (fd >= end) return -EMFILE;
  files.open_fds[fd] = true;
  files.fd[fd] = null;
  if (start <= files.next_fd) files.next_fd = fd + 1;
  if (flags & O_CLOEXEC) files.close_on_exec.add(fd);
  else files.close_on_exec.delete(fd);
  return fd;
}

/** get_unused_fd_flags(): reserves a descriptor in the current task's table. */
export function get_unused_fd_flags(files: files_struct, flags: number): number {
  return alloc_fd(files, 0, files.rlimit_nofile, flags);
}

function __put_unused_fd(files: files_struct, fd: number): void {
  files.open_fds[fd] = false;
  files.close_on_exec.delete(fd);
  if (fd < files.next_fd) files.next_fd = fd;
}

/** put_unused_fd(): gives back a reserved descriptor that was never installed. */
export function put_unused_fd(files: files_struct, fd: number): void {
  __put_unused_fd(files, fd);
}

/** fd_install(): makes a reserved descriptor refer to `f` (consuming the caller's reference). */
export function fd_install(files: files_struct, fd: number, f: file): void {
  files.fd[fd] = f;
}

/** files_lookup_fd_raw(): the file installed at `fd`, without taking a reference. */
export function files_lookup_fd_raw(files: files_struct, fd: number): file | null {
  if (!Number.isInteger(fd) || fd < 0 || fd >= files.fd.length) return null;
  return files.fd[fd] ?? null;
}

/** fget(): the file at `fd` with a reference the caller drops with fput(), or null. */
export function fget(files: files_struct | null, fd: number): file | null {
  const f = files ? files_lookup_fd_raw(files, fd) : null;
  return f && f.f_count > 0 ? get_file(f) : null;
}

/** file_close_fd(): removes the descriptor and returns its file (the caller closes it). */
export function file_close_fd(files: files_struct, fd: number): file | null {
  const f = files_lookup_fd_raw(files, fd);
  if (!f) return null;
  files.fd[fd] = null;
  __put_unused_fd(files, fd);
  return f;
}

/** filp_close(): ->flush then drop the descriptor's reference. */
export async function filp_close(f: file): Promise<number> {
  const ret = f.f_op.flush ? await f.f_op.flush(f) : 0;
  fput(f);
  return ret;
}

/** close_fd(): close(2) without the errno massaging. */
export async function close_fd(files: files_struct, fd: number): Promise<number> {
  const f = file_close_fd(files, fd);
  if (!f) return -EBADF;
  return filp_close(f);
}

/** dup_fd(): fork without CLONE_FILES copies the table; every open file gains a reference. */
export function dup_fd(old: files_struct): files_struct {
  const n = new files_struct();
  n.rlimit_nofile = old.rlimit_nofile;
  old.fd.forEach((f, fd) => {
    if (!old.open_fds[fd] || !f) return;
    n.fd[fd] = get_file(f);
    n.open_fds[fd] = true;
    if (old.close_on_exec.has(fd)) n.close_on_exec.add(fd);
  });
  n.next_fd = 0;
  return n;
}

/** close_files(): the last user of the table closes every descriptor. */
async function close_files(files: files_struct): Promise<void> {
  for (let fd = 0; fd < files.fd.length; fd++) {
    const f = files.fd[fd];
    files.fd[fd] = null;
    files.open_fds[fd] = false;
    if (f) await filp_close(f);
  }
  files.close_on_exec.clear();
  files.next_fd = 0;
}

export async function put_files_struct(files: files_struct): Promise<void> {
  if (--files.count === 0) await close_files(files);
}

/** exit_files(): the exiting task lets go of its table. */
export async function exit_files(tsk: task_struct): Promise<void> {
  const files = tsk.files;
  if (!files) return;
  tsk.files = null;
  await put_files_struct(files);
}

/** Descriptors currently open, for /proc/<pid>/fd-style reports. */
export function open_fd_numbers(files: files_struct): number[] {
  const out: number[] = [];
  files.fd.forEach((f, fd) => {
    if (f) out.push(fd);
  });
  return out;
}

// Mirrors fs/file_table.c (Linux 6.8): allocating struct file and dropping the last reference.
// The final __fput() (->release, module_put of ->owner, iput) is deferred as in the kernel: a
// user task runs it as task work on its way out of the system call; kernel threads and atomic
// contexts hand it to a "delayed_fput" worker context.

import { FMODE_OPENED, file as file_struct, ihold, iput, type file, type file_operations, type inode } from "../include/linux/fs.ts";
import type { path } from "../include/linux/dcache.ts";
import { task_work_add } from "../kernel/task_work.ts";
import type { Vfs } from "./namespace.ts";

/** alloc_empty_file() + the path/inode part of do_dentry_open(): a file not yet opened. */
export function alloc_empty_file(p: path, inode: inode, flags: number, mode: number, fops: file_operations): file {
  const f = new file_struct(p, inode, flags, mode, fops);
  ihold(inode);
  inode.i_sb.s_vfs.live_files.add(f);
  return f;
}

/** get_file(): one more reference (dup across fork, a VMA mapping the file). */
export function get_file(f: file): file {
  f.f_count++;
  return f;
}

/** get_file_rcu()/atomic_long_inc_not_zero(): a reference unless the file is already dying. */
export function get_file_active(f: file): file | null {
  return f.f_count > 0 ? get_file(f) : null;
}

/** fput(): drops a reference; the last one schedules __fput(). */
export function fput(f: file): void {
  const vfs = f.f_inode.i_sb.s_vfs;
  if (vfs.k.WARN_ON(f.f_count <= 0, `fput of a released file ${f.path}`)) return;
  if (--f.f_count > 0) return;
  const t = vfs.k.current;
  if (!vfs.k.sched.in_interrupt() && t.kind === "user" && task_work_add(t, () => __fput(f)) === 0) return;
  // schedule_delayed_work(&delayed_fput_work): a worker context runs the release soon.
  const pending = delayed_fputs(vfs);
  const work: Promise<void> = vfs.k.sched.kthread_run(() => __fput(f), "delayed_fput").catch((e: unknown) => {
    vfs.k.pr_err(`delayed_fput: ${String(e)}`);
  }).finally(() => pending.delete(work));
  pending.add(work);
}

/** The releases handed to delayed_fput workers and not finished, per VFS (delayed_fput_list). */
const delayed_fput_lists = new WeakMap<Vfs, Set<Promise<void>>>();

function delayed_fputs(vfs: Vfs): Set<Promise<void>> {
  let s = delayed_fput_lists.get(vfs);
  if (!s) delayed_fput_lists.set(vfs, (s = new Set()));
  return s;
}

/**
 * flush_delayed_fput(): waits until every release handed to the delayed_fput worker has run
 * (a module whose objects hold other modules' files calls it before those modules may go).
 */
export async function flush_delayed_fput(vfs: Vfs): Promise<void> {
  const pending = delayed_fputs(vfs);
  while (pending.size) await vfs.k.sched.wait_for(Promise.allSettled([...pending]), "flush_delayed_fput");
}

/** __fput_sync(): for kernel threads that must see ->release done before going on. */
export async function __fput_sync(f: file): Promise<void> {
  const vfs = f.f_inode.i_sb.s_vfs;
  if (vfs.k.WARN_ON(f.f_count <= 0, `fput of a released file ${f.path}`)) return;
  if (--f.f_count === 0) await __fput(f);
}

/** __fput(): ->release, unpin the owner module, drop the inode. */
export async function __fput(f: file): Promise<void> {
  const inode = f.f_inode;
  const vfs = inode.i_sb.s_vfs;
  if ((f.f_mode & FMODE_OPENED) !== 0) {
    await f.f_op.release?.(inode, f);
    if (f.f_op.owner) vfs.modules.module_put(f.f_op.owner);
  }
  vfs.live_files.delete(f);
  iput(inode);
}

/** fops_get(): pins the owner module; null when it is going away (open then fails -ENODEV). */
export function fops_get(inode: inode, fops: file_operations | null): file_operations | null {
  if (!fops) return null;
  if (fops.owner && !inode.i_sb.s_vfs.modules.try_module_get(fops.owner)) return null;
  return fops;
}

export function fops_put(inode: inode, fops: file_operations | null): void {
  if (fops?.owner) inode.i_sb.s_vfs.modules.module_put(fops.owner);
}

/** replace_fops(): the file now runs `fops` (already pinned); the old table's pin goes. */
export function replace_fops(f: file, fops: file_operations): void {
  fops_put(f.f_inode, f.f_op);
  f.f_op = fops;
}

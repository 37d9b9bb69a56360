// Mirrors fs/libfs.c and the llseek helpers of fs/read_write.c (Linux 6.8): the small building
// blocks pseudo filesystems share — static directories, reading from a kernel buffer, seeking.

import { EEXIST, EFAULT, EINVAL, EISDIR, ENOENT } from "../include/uapi/asm-generic/errno.ts";
import {
  clear_nlink, drop_nlink, inc_nlink, iput, MAX_LFS_FILESIZE, new_inode, SEEK_CUR, SEEK_END, SEEK_SET,
  type file, type file_operations, type inode, type inode_operations, type kiocb,
} from "../include/linux/fs.ts";
import { d_add, d_alloc, d_drop, type dentry } from "../include/linux/dcache.ts";
import { S_ISDIR } from "../include/uapi/linux/stat.ts";
import { copy_from_iter, copy_to_iter } from "../lib/iov_iter.ts";
import type { iov_iter } from "../include/linux/uio.ts";

/** vfs_setpos(): validates and sets the new position. */
export function vfs_setpos(f: file, offset: number, maxsize: number): number {
  if (offset < 0 || offset > maxsize) return -EINVAL;
  f.f_pos = offset;
  return offset;
}

/** generic_file_llseek_size(): SEEK_SET/CUR/END against `eof`. */
export function generic_file_llseek_size(f: file, offset: number, whence: number, maxsize: number, eof: number): number {
  switch (whence) {
    case SEEK_SET:
      return vfs_setpos(f, offset, maxsize);
    case SEEK_CUR:
      return vfs_setpos(f, f.f_pos + offset, maxsize);
    case SEEK_END:
      return vfs_setpos(f, eof + offset, maxsize);
    default:
      return -EINVAL;
  }
}

/** generic_file_llseek(): seeking a regular file of size i_size. */
export function generic_file_llseek(f: file, offset: number, whence: number): number {
  return generic_file_llseek_size(f, offset, whence, MAX_LFS_FILESIZE, f.f_inode.i_size);
}

/** default_llseek(): for files without a size (pseudo files): SEEK_END is relative to i_size. */
export function default_llseek(f: file, offset: number, whence: number): number {
  return generic_file_llseek(f, offset, whence);
}

/** noop_llseek(): the position never moves; the call succeeds. */
export function noop_llseek(f: file): number {
  return f.f_pos;
}

/** generic_read_dir(): read(2) on a directory. */
export function generic_read_dir(): number {
  return -EISDIR;
}

/** simple_lookup(): names not in the dcache do not exist. */
export function simple_lookup(_dir: inode, d: dentry): number {
  d_add(d, null);
  return 0;
}

export const simple_dir_operations: file_operations = {
  llseek: generic_file_llseek,
  read: generic_read_dir,
};

export const simple_dir_inode_operations: inode_operations = {
  lookup: simple_lookup,
};

/** simple_open(): hands the inode's private pointer to the file (debugfs, drivers). */
export function simple_open(inode: inode, f: file): number {
  if (inode.i_private !== null) f.private_data = inode.i_private;
  return 0;
}

/**
 * simple_read_from_buffer() for ->read_iter: copies `from[ki_pos..]` into the iterator and
 * advances the position; returns bytes copied (a fault part-way gives a short count).
 */
export async function simple_read_iter_from_buffer(iocb: kiocb, to: iov_iter, from: Uint8Array): Promise<number> {
  const pos = iocb.ki_pos;
  if (pos < 0) return -EINVAL;
  if (pos >= from.length || to.count === 0) return 0;
  const n = await copy_to_iter(from.subarray(pos), from.length - pos, to);
  iocb.ki_pos = pos + n;
  return n;
}

/** The whole of a write as text (kernfs/proc "store" handlers parse it), at most `max` bytes. */
export async function simple_write_iter_text(from: iov_iter, max: number): Promise<string | number> {
  const n = Math.min(from.count, max);
  const buf = new Uint8Array(n);
  const got = await copy_from_iter(buf, n, from);
  if (got === 0 && n > 0) return -EFAULT;
  return new TextDecoder().decode(buf.subarray(0, got));
}

export const text_encoder = new TextEncoder();

/**
 * The common part of creating a pseudo-filesystem entry (debugfs start_creating(), kernfs
 * kernfs_new_node()): a hashed dentry `name` under `parent` with a fresh inode of `mode`.
 * -EEXIST when the name is taken, -ENOENT when the parent was removed.
 */
export function simple_new_entry(parent: dentry, name: string, mode: number): dentry | number {
  if (!parent.d_hashed) return -ENOENT;
  if (!name || name.includes("/")) return -EINVAL;
  if (parent.d_subdirs.has(name)) return -EEXIST;
  const sb = parent.d_sb;
  const i = S_ISDIR(mode) ? sb.s_vfs.new_dir_inode(sb, mode) : new_inode(sb);
  i.i_mode = mode;
  i.i_mtime = i.i_ctime = sb.s_vfs.k.ktime_get();
  const d = d_alloc(parent, name);
  d_add(d, i);
  if (S_ISDIR(mode)) inc_nlink(parent.d_inode!);
  return d;
}

/** Removes an entry and everything below it; open files see it as gone (d_unhashed). */
export function simple_remove_recursive(d: dentry): void {
  for (const child of [...d.d_subdirs.values()]) simple_remove_recursive(child);
  const i = d.d_inode;
  d_drop(d);
  if (!i) return;
  if (S_ISDIR(i.i_mode)) drop_nlink(d.d_parent.d_inode!);
  clear_nlink(i);
  iput(i);
}

/** A symlink inode whose target is fixed text (sysfs and debugfs links, /proc/self). */
export function simple_symlink_inode_operations(target: () => string | null): inode_operations {
  return { get_link: () => target() };
}

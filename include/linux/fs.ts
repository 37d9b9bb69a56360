// Mirrors include/linux/fs.h (Linux 6.8): struct file, struct inode, struct super_block,
// file_system_type and the operation tables drivers and filesystems fill in. Behaviour lives in
// fs/*.ts; this file defines the shapes every filesystem and driver agrees on.
//
// A driver's file_operations use the kernel's member names. Methods that may sleep return a
// Promise (plain numbers are accepted too; the VFS awaits whatever comes back). User buffers are
// user virtual addresses (`char __user *` is a number); `loff_t *ppos` is a { pos } cell.

import type { address_space, vm_area_struct, vm_file_ref } from "./mm_types.ts";
import { d_path, type dentry, type path } from "./dcache.ts";
import type { iov_iter } from "./uio.ts";
import type { dev_t } from "./kdev_t.ts";
import type { Vfs } from "../../fs/namespace.ts";
import { down_write, rw_semaphore, up_write } from "../../kernel/locking/rwsem.ts";

export type loff_t = number;

/** `loff_t *`: the position a ->read/->write advances. */
export interface loff_ptr {
  pos: loff_t;
}

// f_mode bits (FMODE_*). Flag words: bit operators are fine.
export const FMODE_READ = 0x1;
export const FMODE_WRITE = 0x2;
export const FMODE_LSEEK = 0x4;
export const FMODE_PREAD = 0x8;
export const FMODE_PWRITE = 0x10;
export const FMODE_EXEC = 0x20;
export const FMODE_ATOMIC_POS = 0x8000;
export const FMODE_CAN_READ = 0x20000;
export const FMODE_CAN_WRITE = 0x40000;
export const FMODE_OPENED = 0x80000;
export const FMODE_CREATED = 0x100000;
export const FMODE_NOWAIT = 0x8000000;

// may_open() access bits.
export const MAY_EXEC = 0x1;
export const MAY_WRITE = 0x2;
export const MAY_READ = 0x4;
export const MAY_OPEN = 0x20;

// whence for ->llseek (include/uapi/linux/fs.h)
export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SEEK_END = 2;
/** MAX_LFS_FILESIZE on 64-bit is LLONG_MAX; JS numbers stop at 2^53. */
export const MAX_LFS_FILESIZE = Number.MAX_SAFE_INTEGER;

/** struct kiocb: the position and file of one ->read_iter/->write_iter call. */
export interface kiocb {
  ki_filp: file;
  ki_pos: loff_t;
  ki_flags: number;
}

type ret<T = number> = Promise<T> | T;

export interface file_operations {
  /** THIS_MODULE: the owning module's name; open pins it (try_module_get) until release. */
  readonly owner?: string;
  llseek?(file: file, offset: loff_t, whence: number): loff_t;
  read?(file: file, buf: number, count: number, ppos: loff_ptr): ret;
  write?(file: file, buf: number, count: number, ppos: loff_ptr): ret;
  read_iter?(iocb: kiocb, to: iov_iter): ret;
  write_iter?(iocb: kiocb, from: iov_iter): ret;
  /** Returns the EPOLL* mask that is ready now. */
  poll?(file: file): number;
  unlocked_ioctl?(file: file, cmd: number, arg: number): ret;
  mmap?(file: file, vma: vm_area_struct): ret;
  /** MAP_SHARED_VALIDATE flags beyond the legacy set this file accepts (MAP_SYNC). */
  readonly mmap_supported_flags?: number;
  open?(inode: inode, file: file): ret;
  flush?(file: file): ret;
  release?(inode: inode, file: file): ret;
}

/** struct iattr, reduced to what truncate needs. */
export interface iattr {
  ia_valid: number;
  ia_size: loff_t;
}
export const ATTR_SIZE = 1 << 3;

export interface inode_operations {
  /** Looks `d.d_name` up in `dir`; fills `d` with d_add() (leaving it negative when absent). */
  lookup?(dir: inode, d: dentry): ret<number>;
  create?(dir: inode, d: dentry, mode: number, excl: boolean): ret<number>;
  /** O_TMPFILE: an unnamed inode instantiated on the unhashed dentry `d`. */
  tmpfile?(dir: inode, d: dentry, mode: number): ret<number>;
  mkdir?(dir: inode, d: dentry, mode: number): ret<number>;
  unlink?(dir: inode, d: dentry): ret<number>;
  rmdir?(dir: inode, d: dentry): ret<number>;
  /** Symlink target, relative to the link's directory or absolute. */
  get_link?(d: dentry, inode: inode): string | null;
  setattr?(d: dentry, attr: iattr): ret<number>;
}

export interface super_operations {
  /** The last reference to the inode is gone: free what it owns (page cache). */
  evict_inode?(inode: inode): void;
  put_super?(sb: super_block): void;
}

export interface file_system_type {
  readonly name: string;
  /** The filesystem's teardown at unmount (kill_litter_super and friends). */
  kill_sb?(sb: super_block): void;
}

export class super_block {
  s_root!: dentry;
  s_op: super_operations = {};
  /** Filesystem-private: the service owning this filesystem instance. */
  s_fs_info: unknown = null;
  /** Every inode of this superblock that is still referenced. */
  readonly s_inodes = new Set<inode>();
  private next_ino = 1;

  constructor(
    readonly s_type: file_system_type,
    readonly s_magic: number,
    /** The machine's VFS this superblock belongs to (what the kernel reaches through globals). */
    readonly s_vfs: Vfs,
  ) {}

  get_next_ino(): number {
    return this.next_ino++;
  }
}

export class inode {
  i_mode = 0;
  i_uid = 0;
  i_gid = 0;
  i_rdev: dev_t = 0;
  i_size: loff_t = 0;
  i_nlink = 1;
  /** References: the dentry tree's one plus one per open file (and internal holders). */
  i_count = 1;
  i_op: inode_operations = {};
  i_fop: file_operations | null = null;
  /** The page cache of a regular file (tmpfs), null for pseudo files and devices. */
  i_mapping: address_space | null = null;
  i_private: unknown = null;
  /** ns since boot (virtual clock). */
  i_mtime = 0;
  i_ctime = 0;
  /** inode_lock(): serialises writes and truncation; made on first use. */
  i_rwsem: rw_semaphore | null = null;

  constructor(
    readonly i_sb: super_block,
    readonly i_ino: number,
  ) {}
}

/** new_inode(): a fresh inode on `sb`, holding one reference. */
export function new_inode(sb: super_block): inode {
  const i = new inode(sb, sb.get_next_ino());
  sb.s_inodes.add(i);
  return i;
}

/** inode_lock(): one lockdep class per filesystem type, as the kernel's i_mutex_key. */
export async function inode_lock(i: inode): Promise<void> {
  i.i_rwsem ??= new rw_semaphore(i.i_sb.s_vfs.k, `&sb->s_type->i_mutex_key#${i.i_sb.s_type.name}`);
  await down_write(i.i_rwsem);
}

export function inode_unlock(i: inode): void {
  if (i.i_rwsem) up_write(i.i_rwsem);
}

export function ihold(i: inode): void {
  i.i_count++;
}

/** iput(): drops a reference; the last one evicts the inode (frees its page cache). */
export function iput(i: inode): void {
  if (i.i_count <= 0) return;
  if (--i.i_count > 0) return;
  i.i_sb.s_op.evict_inode?.(i);
  i.i_sb.s_inodes.delete(i);
}

export function inc_nlink(i: inode): void {
  i.i_nlink++;
}
export function drop_nlink(i: inode): void {
  if (i.i_nlink > 0) i.i_nlink--;
}
export function clear_nlink(i: inode): void {
  i.i_nlink = 0;
}

export class file implements vm_file_ref {
  /** Open references: fds (also across fork), VMAs mapping it, in-flight syscalls. */
  f_count = 1;
  f_pos: loff_t = 0;
  f_op: file_operations;
  /** Driver-private state, set by ->open (misc devices get their miscdevice here). */
  private_data: unknown = null;
  readonly f_mapping: address_space | null;

  constructor(
    readonly f_path: path,
    readonly f_inode: inode,
    public f_flags: number,
    public f_mode: number,
    fops: file_operations,
  ) {
    this.f_op = fops;
    this.f_mapping = f_inode.i_mapping;
  }

  /** The name /proc/<pid>/maps prints for a mapping of this file. */
  get path(): string {
    return d_path(this.f_path);
  }
}

export function file_inode(f: file): inode {
  return f.f_inode;
}

// Mirrors fs/namei.c (Linux 6.8): path walking and the last step of open(2). Names are walked one
// component at a time from "/" (every kemu process has "/" as root and cwd), crossing mounts,
// following symlinks (at most 40), revalidating cached dentries of dynamic directories (procfs
// pid dirs), and asking ->lookup for names the dcache does not have.

import {
  EACCES, EBUSY, EEXIST, EISDIR, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR, EOPNOTSUPP, EPERM,
} from "../include/uapi/asm-generic/errno.ts";
import { O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_TRUNC, __O_TMPFILE } from "../include/uapi/asm-generic/fcntl.ts";
import { S_IFMT, S_IFREG, S_ISDIR, S_ISLNK, S_ISREG } from "../include/uapi/linux/stat.ts";
import { d_alloc, d_drop, d_lookup, IS_ROOT, type dentry, type path } from "../include/linux/dcache.ts";
import { FMODE_CREATED, MAY_WRITE, type file } from "../include/linux/fs.ts";
import type { Vfs } from "./namespace.ts";
import { do_dentry_open, do_truncate, type open_flags } from "./open.ts";
import { fput } from "./file_table.ts";
import { strncpy_from_user } from "../include/linux/uaccess.ts";

export const PATH_MAX = 4096;
export const NAME_MAX = 255;
export const MAXSYMLINKS = 40;

/** Symlinks followed so far in one walk. */
interface nameidata {
  depth: number;
}

/** follow_mount(): steps onto the root of whatever is mounted on `p`. */
function follow_mount(vfs: Vfs, p: path): path {
  for (let m = vfs.lookup_mnt(p.dentry); m; m = vfs.lookup_mnt(p.dentry)) p = { mnt: m, dentry: m.mnt_root };
  return p;
}

/** follow_dotdot(): "..", leaving a mount from its root back to the mount point's parent. */
function follow_dotdot(vfs: Vfs, p: path): path {
  while (p.dentry === p.mnt.mnt_root && p.mnt.mnt_parent && p.mnt.mnt_mountpoint) {
    p = { mnt: p.mnt.mnt_parent, dentry: p.mnt.mnt_mountpoint };
  }
  if (p.dentry === vfs.root.dentry || IS_ROOT(p.dentry)) return p;
  return follow_mount(vfs, { mnt: p.mnt, dentry: p.dentry.d_parent });
}

/** lookup_fast()/lookup_slow(): one name under a directory; a negative path when absent. */
async function lookup_component(vfs: Vfs, parent: path, name: string): Promise<path | number> {
  if (name === ".") return parent;
  if (name === "..") return follow_dotdot(vfs, parent);
  if (name.length > NAME_MAX) return -ENAMETOOLONG;
  const dir = parent.dentry.d_inode!;
  let d = d_lookup(parent.dentry, name);
  if (d?.d_op?.d_revalidate && !d.d_op.d_revalidate(d)) {
    d_drop(d);
    d = null;
  }
  if (!d) {
    d = d_alloc(parent.dentry, name);
    if (dir.i_op.lookup) {
      const err = await dir.i_op.lookup(dir, d);
      if (err < 0) return err;
    }
  }
  return follow_mount(vfs, { mnt: parent.mnt, dentry: d });
}

/**
 * Walks `name` from `start` (or "/" for absolute names). The last component may come back
 * negative (d_inode null) so that O_CREAT can create it; `follow_last` follows a final symlink.
 */
async function walk(vfs: Vfs, start: path, name: string, follow_last: boolean, nd: nameidata): Promise<path | number> {
  if (name.length === 0) return -ENOENT;
  if (name.length >= PATH_MAX) return -ENAMETOOLONG;
  const comps = name.split("/").filter((c) => c.length > 0);
  let cur = name.startsWith("/") ? vfs.root : start;
  for (let i = 0; i < comps.length; i++) {
    if (!S_ISDIR(cur.dentry.d_inode!.i_mode)) return -ENOTDIR;
    const next = await lookup_component(vfs, cur, comps[i]!);
    if (typeof next === "number") return next;
    const last = i === comps.length - 1;
    const inode = next.dentry.d_inode;
    if (!inode) return last ? next : -ENOENT;
    if (S_ISLNK(inode.i_mode) && (!last || follow_last)) {
      if (++nd.depth > MAXSYMLINKS) return -ELOOP;
      const target = inode.i_op.get_link?.(next.dentry, inode);
      if (!target) return -ENOENT;
      const r = await walk(vfs, cur, target, true, nd);
      if (typeof r === "number") return r;
      if (!r.dentry.d_inode && !last) return -ENOENT;
      cur = r;
      continue;
    }
    cur = next;
  }
  // A trailing slash demands a directory.
  if (name.endsWith("/") && cur.dentry.d_inode && !S_ISDIR(cur.dentry.d_inode.i_mode)) return -ENOTDIR;
  return cur;
}

/** filename_lookup(): resolves a name to an existing position, following symlinks. */
export async function kern_path(vfs: Vfs, name: string, follow = true): Promise<path | number> {
  const p = await walk(vfs, vfs.root, name, follow, { depth: 0 });
  if (typeof p === "number") return p;
  return p.dentry.d_inode ? p : -ENOENT;
}

/** vfs_create() via ->create; a directory without ->create refuses with -EACCES. */
async function lookup_open_create(parent: dentry, d: dentry, mode: number, excl: boolean): Promise<number> {
  const dir = parent.d_inode!;
  if (!dir.i_op.create) return -EACCES;
  return dir.i_op.create(dir, d, (mode & ~S_IFMT) | S_IFREG, excl);
}

/** vfs_tmpfile(): an unnamed file in the directory at `p` (O_TMPFILE). */
async function do_tmpfile(vfs: Vfs, name: string, op: open_flags): Promise<file | number> {
  const p = await kern_path(vfs, name);
  if (typeof p === "number") return p;
  const dir = p.dentry.d_inode!;
  if (!S_ISDIR(dir.i_mode)) return -ENOTDIR;
  if (!dir.i_op.tmpfile) return -EOPNOTSUPP;
  const d = d_alloc(p.dentry, "");
  const err = await dir.i_op.tmpfile(dir, d, (op.mode & ~S_IFMT) | S_IFREG);
  if (err) return err;
  return do_dentry_open(vfs, { mnt: p.mnt, dentry: d }, op, FMODE_CREATED);
}

/**
 * path_openat(): resolves `name` for open(2) — existence checks of O_CREAT/O_EXCL, the
 * directory rules, creation — then opens it, truncating for O_TRUNC.
 */
export async function do_filp_open(vfs: Vfs, name: string, op: open_flags): Promise<file | number> {
  const flags = op.open_flag;
  if (flags & __O_TMPFILE) return do_tmpfile(vfs, name, op);
  const excl_create = (flags & O_CREAT) !== 0 && (flags & O_EXCL) !== 0;
  const follow = (flags & O_NOFOLLOW) === 0 && !excl_create;
  const p = await walk(vfs, vfs.root, name, follow, { depth: 0 });
  if (typeof p === "number") return p;
  let created = 0;
  if (!p.dentry.d_inode) {
    if (!(flags & O_CREAT)) return -ENOENT;
    if (name.endsWith("/")) return -EISDIR;
    const err = await lookup_open_create(p.dentry.d_parent, p.dentry, op.mode, excl_create);
    if (err) return err;
    created = FMODE_CREATED;
  } else if (excl_create) {
    return -EEXIST;
  }
  const inode = p.dentry.d_inode!;
  if (S_ISLNK(inode.i_mode)) return -ELOOP;
  if (S_ISDIR(inode.i_mode) && ((flags & O_CREAT) || (op.acc_mode & MAY_WRITE))) return -EISDIR;
  if ((flags & O_DIRECTORY) && !S_ISDIR(inode.i_mode)) return -ENOTDIR;
  const f = await do_dentry_open(vfs, p, op, created);
  if (typeof f === "number" || created || !(flags & O_TRUNC) || !S_ISREG(inode.i_mode)) return f;
  return handle_truncate(p.dentry, f);
}

/** handle_truncate(): O_TRUNC empties a regular file once it is open. */
async function handle_truncate(d: dentry, f: file): Promise<file | number> {
  const err = d.d_inode!.i_op.setattr ? await do_truncate(d, 0) : 0;
  if (!err) return f;
  fput(f);
  return err;
}

/**
 * getname(): copies a NUL-terminated path from user memory. -EFAULT when it cannot be read,
 * -ENAMETOOLONG without a NUL in PATH_MAX bytes, -ENOENT for an empty name.
 */
export async function getname(vfs: Vfs, uptr: number): Promise<string | number> {
  const buf = new Uint8Array(PATH_MAX);
  const len = await strncpy_from_user(vfs.k, buf, uptr, PATH_MAX);
  if (len < 0) return len;
  if (len === PATH_MAX) return -ENAMETOOLONG;
  if (len === 0) return -ENOENT;
  return new TextDecoder().decode(buf.subarray(0, len));
}

/** do_unlinkat(): removes a name; directories need rmdir (-EISDIR). */
export async function do_unlinkat(vfs: Vfs, name: string): Promise<number> {
  const p = await walk(vfs, vfs.root, name, false, { depth: 0 });
  if (typeof p === "number") return p;
  const inode = p.dentry.d_inode;
  if (!inode) return -ENOENT;
  if (S_ISDIR(inode.i_mode)) return -EISDIR;
  if (vfs.lookup_mnt(p.dentry) || p.dentry === p.mnt.mnt_root) return -EBUSY;
  const dir = p.dentry.d_parent.d_inode!;
  if (!dir.i_op.unlink) return -EPERM;
  return dir.i_op.unlink(dir, p.dentry);
}

/** do_mkdirat(): a new directory; -EEXIST when the name is taken. */
export async function do_mkdirat(vfs: Vfs, name: string, mode: number): Promise<number> {
  const p = await walk(vfs, vfs.root, name, false, { depth: 0 });
  if (typeof p === "number") return p;
  if (p.dentry.d_inode) return -EEXIST;
  const dir = p.dentry.d_parent.d_inode!;
  if (!dir.i_op.mkdir) return -EPERM;
  return dir.i_op.mkdir(dir, p.dentry, mode & 0o7777);
}

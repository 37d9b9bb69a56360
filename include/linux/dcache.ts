// Mirrors include/linux/dcache.h, include/linux/path.h and include/linux/mount.h (Linux 6.8): the
// name cache (struct dentry), a position in the tree (struct path: mount + dentry) and mounts.
// A dentry's children map stands in for the dcache hash plus the d_children list.

import type { inode, super_block } from "./fs.ts";

export const DCACHE_MOUNTED = 0x00010000;

export interface dentry_operations {
  /** Returns false when the cached dentry no longer names a live object (procfs pid dirs). */
  d_revalidate?(dentry: dentry): boolean;
  /** Extra text for d_path(), e.g. "/dev/zero (deleted)" of an unlinked shmem file. */
  d_dname?(dentry: dentry): string;
}

export class dentry {
  d_inode: inode | null = null;
  d_flags = 0;
  d_op: dentry_operations | null = null;
  /** Filesystem-private data (kernfs node, proc entry, ...). */
  d_fsdata: unknown = null;
  /** Children by name: the part of the dcache hash that hangs under this directory. */
  readonly d_subdirs = new Map<string, dentry>();
  /** Hashed dentries are reachable by name; unlinked and O_TMPFILE ones are not. */
  d_hashed = false;
  d_parent: dentry;

  constructor(
    public d_name: string,
    parent: dentry | null,
    readonly d_sb: super_block,
  ) {
    // A root dentry is its own parent, as in the kernel.
    this.d_parent = parent ?? this;
  }
}

export function IS_ROOT(d: dentry): boolean {
  return d.d_parent === d;
}

export function d_unhashed(d: dentry): boolean {
  return !d.d_hashed;
}

export function d_really_is_negative(d: dentry): boolean {
  return d.d_inode === null;
}

/** d_alloc(): a negative child dentry, not yet hashed. */
export function d_alloc(parent: dentry, name: string): dentry {
  return new dentry(name, parent, parent.d_sb);
}

/** d_add(): attaches the inode (or none) and makes the dentry findable under its parent. */
export function d_add(d: dentry, i: inode | null): void {
  d.d_inode = i;
  if (i === null || IS_ROOT(d)) return;
  d.d_parent.d_subdirs.set(d.d_name, d);
  d.d_hashed = true;
}

/** d_instantiate(): attaches the inode to an already-hashed or about-to-be-hashed dentry. */
export function d_instantiate(d: dentry, i: inode): void {
  d.d_inode = i;
}

/** d_drop()/d_delete(): the name stops resolving; open files keep the dentry and its inode. */
export function d_drop(d: dentry): void {
  if (d.d_hashed && d.d_parent.d_subdirs.get(d.d_name) === d) d.d_parent.d_subdirs.delete(d.d_name);
  d.d_hashed = false;
}

/** Looks a name up among the hashed children (d_lookup). */
export function d_lookup(parent: dentry, name: string): dentry | null {
  return parent.d_subdirs.get(name) ?? null;
}

export class vfsmount {
  /** Where this mount is attached: parent mount and its dentry; null for the root and internal mounts. */
  mnt_parent: vfsmount | null = null;
  mnt_mountpoint: dentry | null = null;

  constructor(
    readonly mnt_root: dentry,
    readonly mnt_sb: super_block,
  ) {}
}

export interface path {
  mnt: vfsmount;
  dentry: dentry;
}

/**
 * d_path(): the absolute name of a position, crossing mount points upwards. Unhashed dentries
 * get " (deleted)"; dentries with ->d_dname (anonymous shmem files) name themselves.
 */
export function d_path(p: path): string {
  if (p.dentry.d_op?.d_dname) return p.dentry.d_op.d_dname(p.dentry);
  const parts: string[] = [];
  let mnt: vfsmount | null = p.mnt;
  let d = p.dentry;
  while (mnt) {
    if (d === mnt.mnt_root) {
      if (!mnt.mnt_parent || !mnt.mnt_mountpoint) break;
      d = mnt.mnt_mountpoint;
      mnt = mnt.mnt_parent;
      continue;
    }
    parts.push(d.d_name);
    d = d.d_parent;
  }
  const name = `/${parts.reverse().join("/")}`;
  return d_unhashed(p.dentry) && !IS_ROOT(p.dentry) ? `${name} (deleted)` : name;
}

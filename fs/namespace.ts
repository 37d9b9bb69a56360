// Mirrors fs/namespace.c (Linux 6.8): the mount tree. kemu has one mount namespace per machine:
// a root filesystem holding the mount points (/dev, /tmp, /proc, /sys), and the pseudo
// filesystems each mount themselves there from their initcall (devtmpfs, tmpfs, procfs, sysfs,
// debugfs). `Vfs` is also where machine-wide VFS state lives: the number of open struct files
// (files_stat.nr_files) and the module loader that pins a file's ->owner.

import { inject, injectable } from "tsyringe";
import { KERNEL, MODULES } from "../kernel/tokens.ts";
import type { Kernel } from "../kernel/kernel.ts";
import type { ModuleLoader } from "../kernel/module/main.ts";
import type { KernelService } from "../kernel/machine.ts";
import { DCACHE_MOUNTED, d_add, d_alloc, dentry, vfsmount, type path } from "../include/linux/dcache.ts";
import { new_inode, super_block, type file, type file_system_type, type inode } from "../include/linux/fs.ts";
import { S_IFDIR } from "../include/uapi/linux/stat.ts";
import type { user_access } from "../include/linux/uio.ts";
import { copy_from_user, copy_to_user } from "../include/linux/uaccess.ts";
import { kobj_map } from "../drivers/base/map.ts";
import { simple_dir_inode_operations, simple_dir_operations } from "./libfs.ts";

const RAMFS_MAGIC = 0x858458f6;
const ANON_INODE_FS_MAGIC = 0x09041934;

const rootfs_fs_type: file_system_type = { name: "rootfs" };
const anon_inode_fs_type: file_system_type = { name: "anon_inodefs" };

@injectable()
export class Vfs implements KernelService {
  /** The namespace root: "/" of every process (no chroot, no per-process namespaces). */
  readonly root: path;
  /** The internal mount of anonymous inodes (anon_inode_getfile). */
  readonly anon_mnt: vfsmount;
  /** lookup_mnt(): mounts keyed by the dentry they cover. */
  private readonly mount_hashtable = new Map<dentry, vfsmount>();
  /** Mounts in mount order; unmounted in reverse at shutdown. */
  private readonly mounts: vfsmount[] = [];
  /** files_stat.nr_files: the struct files allocated and not yet released. */
  readonly live_files = new Set<file>();
  /** cdev_map (fs/char_dev.c): char-device numbers → struct cdev, for chrdev_open(). */
  readonly cdev_map = new kobj_map<unknown>();

  constructor(
    @inject(KERNEL) readonly k: Kernel,
    @inject(MODULES) readonly modules: ModuleLoader,
  ) {
    const sb = this.sget(rootfs_fs_type, RAMFS_MAGIC);
    this.make_root(sb);
    this.root = { mnt: new vfsmount(sb.s_root, sb), dentry: sb.s_root };
    for (const name of ["dev", "tmp", "proc", "sys", "run"]) this.rootfs_mkdir(name);
    const anon = this.sget(anon_inode_fs_type, ANON_INODE_FS_MAGIC);
    this.make_root(anon);
    this.anon_mnt = this.kern_mount(anon);
  }

  /** sget_fc() reduced: a new superblock of `type`, owned by this machine. */
  sget(type: file_system_type, magic: number): super_block {
    return new super_block(type, magic, this);
  }

  /** d_make_root(): a directory inode and the root dentry of `sb`. */
  make_root(sb: super_block, mode = S_IFDIR | 0o755): dentry {
    const i = this.new_dir_inode(sb, mode);
    sb.s_root = new dentry("/", null, sb);
    sb.s_root.d_inode = i;
    sb.s_root.d_hashed = true;
    return sb.s_root;
  }

  /** An empty, static directory inode (libfs simple_dir_operations). */
  new_dir_inode(sb: super_block, mode = S_IFDIR | 0o755): inode {
    const i = new_inode(sb);
    i.i_mode = mode;
    i.i_nlink = 2;
    i.i_op = simple_dir_inode_operations;
    i.i_fop = simple_dir_operations;
    i.i_mtime = i.i_ctime = this.k.ktime_get();
    return i;
  }

  private rootfs_mkdir(name: string): void {
    const sb = this.root.dentry.d_sb;
    d_add(d_alloc(sb.s_root, name), this.new_dir_inode(sb));
  }

  /** The current task's user memory, for ITER_UBUF iterators and the VFS's own user copies. */
  uaccess(): user_access {
    const k = this.k;
    return {
      copy_to_user: (to, from, n) => copy_to_user(k, to, from, n),
      copy_from_user: (to, from, n) => copy_from_user(k, to, from, n),
    };
  }

  /** kern_mount(): an internal mount, reachable only through the returned vfsmount. */
  kern_mount(sb: super_block): vfsmount {
    return new vfsmount(sb.s_root, sb);
  }

  /**
   * do_new_mount() for the fixed boot-time layout: attaches `sb` over the directory `where`
   * (an absolute path whose parent must already resolve without crossing dynamic directories).
   */
  mount(sb: super_block, where: string): vfsmount {
    const mp = this.resolve_static(where);
    const mnt = new vfsmount(sb.s_root, sb);
    mnt.mnt_parent = mp.mnt;
    mnt.mnt_mountpoint = mp.dentry;
    mp.dentry.d_flags |= DCACHE_MOUNTED;
    this.mount_hashtable.set(mp.dentry, mnt);
    this.mounts.push(mnt);
    return mnt;
  }

  /** lookup_mnt(): the mount sitting on `d`, if any. */
  lookup_mnt(d: dentry): vfsmount | undefined {
    return (d.d_flags & DCACHE_MOUNTED) !== 0 ? this.mount_hashtable.get(d) : undefined;
  }

  /** Walks hashed names only (boot-time mount points), crossing mounts. */
  private resolve_static(where: string): path {
    let p = this.root;
    for (const name of where.split("/").filter(Boolean)) {
      const child = p.dentry.d_subdirs.get(name);
      if (!child) throw new Error(`mount point ${where} does not exist`);
      p = { mnt: p.mnt, dentry: child };
      for (let m = this.lookup_mnt(p.dentry); m; m = this.lookup_mnt(p.dentry)) p = { mnt: m, dentry: m.mnt_root };
    }
    return p;
  }

  /** Power-off: unmounts everything in reverse order (kill_sb of each filesystem). */
  power_off(): void {
    for (const mnt of this.mounts.splice(0).reverse()) {
      if (mnt.mnt_mountpoint) {
        mnt.mnt_mountpoint.d_flags &= ~DCACHE_MOUNTED;
        this.mount_hashtable.delete(mnt.mnt_mountpoint);
      }
      mnt.mnt_sb.s_type.kill_sb?.(mnt.mnt_sb);
    }
  }

  leak_report(): string[] {
    return [...this.live_files].map((f) => `file still open: ${f.path} (f_count ${f.f_count})`);
  }
}

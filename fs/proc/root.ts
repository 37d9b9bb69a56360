// Mirrors fs/proc/root.c and fs/proc/generic.c (Linux 6.8): procfs, mounted on /proc. The root
// holds the pid directories (looked up on demand, fs/proc/base.ts), /proc/self, and the entries
// subsystems register with proc_create()/proc_create_single()/proc_mkdir(): here meminfo,
// interrupts, slabinfo, iomem, devices and misc. Every text file is generated when read.

import { inject, injectable } from "tsyringe";
import { EEXIST, EINVAL, ENOENT } from "../../include/uapi/asm-generic/errno.ts";
import { S_IFDIR, S_IFLNK, S_IFREG } from "../../include/uapi/linux/stat.ts";
import type { dentry } from "../../include/linux/dcache.ts";
import type { file, file_operations, inode, kiocb, loff_ptr } from "../../include/linux/fs.ts";
import type { vm_area_struct } from "../../include/linux/mm_types.ts";
import type { iov_iter } from "../../include/linux/uio.ts";
import {
  CHRDEV, FAULT_INJECT, IOMEM, IRQ, KERNEL, MISC, PAGE_ALLOC, SHMEM, SLAB, VFS,
} from "../../kernel/tokens.ts";
import type { Kernel } from "../../kernel/kernel.ts";
import type { FaultInjection } from "../../lib/fault-inject.ts";
import type { Slab } from "../../mm/slab_common.ts";
import type { IrqCore } from "../../kernel/irq/manage.ts";
import type { ResourceTree } from "../../kernel/resource.ts";
import type { PageAlloc } from "../../mm/page_alloc.ts";
import type { Shmem } from "../../mm/shmem.ts";
import type { CharDevices } from "../char_dev.ts";
import type { MiscDevices } from "../../drivers/char/misc.ts";
import type { Vfs } from "../namespace.ts";
import { simple_new_entry, simple_remove_recursive, simple_symlink_inode_operations } from "../libfs.ts";
import { seq_lseek, seq_puts, seq_read_iter, single_open, single_release, type seq_show_fn } from "../seq_file.ts";
import { proc_pid_lookup } from "./base.ts";
import { meminfo_proc_show } from "./meminfo.ts";

export const PROC_SUPER_MAGIC = 0x9fa0;

/** struct proc_ops (5.6+): what proc_create() takes instead of file_operations. */
export interface proc_ops {
  proc_open?(inode: inode, f: file): Promise<number> | number;
  proc_read?(f: file, buf: number, count: number, ppos: loff_ptr): Promise<number> | number;
  proc_read_iter?(iocb: kiocb, to: iov_iter): Promise<number> | number;
  proc_write?(f: file, buf: number, count: number, ppos: loff_ptr): Promise<number> | number;
  proc_lseek?(f: file, offset: number, whence: number): number;
  proc_release?(inode: inode, f: file): Promise<number> | number;
  proc_ioctl?(f: file, cmd: number, arg: number): Promise<number> | number;
  proc_mmap?(f: file, vma: vm_area_struct): Promise<number> | number;
}

/** proc_reg_*: the file_operations a proc_ops entry runs with. */
function proc_reg_fops(ops: proc_ops): file_operations {
  return {
    open: ops.proc_open,
    read: ops.proc_read,
    read_iter: ops.proc_read_iter,
    write: ops.proc_write,
    llseek: ops.proc_lseek,
    release: ops.proc_release,
    unlocked_ioctl: ops.proc_ioctl,
    mmap: ops.proc_mmap,
  };
}

/** single_open() entry whose ->show gets PDE_DATA. */
function proc_single_fops(show: seq_show_fn): file_operations {
  return {
    open: (_i: inode, f: file) => single_open(f, show, null),
    read_iter: seq_read_iter,
    llseek: seq_lseek,
    release: single_release,
  };
}

@injectable()
export class Procfs {
  readonly root: dentry;

  constructor(
    @inject(KERNEL) readonly k: Kernel,
    @inject(VFS) readonly vfs: Vfs,
    @inject(FAULT_INJECT) readonly fi: FaultInjection,
    @inject(SLAB) private readonly slab: Slab,
    @inject(IRQ) private readonly irq: IrqCore,
    @inject(IOMEM) private readonly iomem: ResourceTree,
    @inject(PAGE_ALLOC) private readonly pa: PageAlloc,
    @inject(SHMEM) private readonly shmem: Shmem,
    @inject(CHRDEV) private readonly chrdev: CharDevices,
    @inject(MISC) private readonly misc: MiscDevices,
  ) {
    const sb = vfs.sget({ name: "proc" }, PROC_SUPER_MAGIC);
    sb.s_fs_info = this;
    this.root = vfs.make_root(sb, S_IFDIR | 0o555);
    this.root.d_inode!.i_op = { lookup: (_dir, d) => proc_pid_lookup(this, d) };
    this.proc_symlink_fn("self", () => String(this.k.current.tgid));
    this.proc_symlink_fn("thread-self", () => `${this.k.current.tgid}/task/${this.k.current.pid}`);
    this.create_core_entries();
    vfs.mount(sb, "/proc");
  }

  private create_core_entries(): void {
    const pa = this.pa;
    const shmem = this.shmem;
    this.proc_create_single("meminfo", 0o444, null, (m) => meminfo_proc_show(m, {
      totalram_pages: () => pa.totalram_pages(),
      nr_free_pages: () => pa.nr_free_pages(),
      nr_shmem_pages: () => shmem.nr_shmem_pages(),
    }));
    this.proc_create_single("interrupts", 0o444, null, (m) => seq_puts(m, this.irq.proc_interrupts()));
    this.proc_create_single("slabinfo", 0o400, null, (m) => seq_puts(m, this.slab.slabinfo()));
    this.proc_create_single("iomem", 0o400, null, (m) => seq_puts(m, this.iomem.iomem_show()));
    this.proc_create_single("devices", 0o444, null, (m) => seq_puts(m, `Character devices:\n${this.chrdev.proc_devices().map((l) => `${l}\n`).join("")}`));
    this.proc_create_single("misc", 0o444, null, (m) => seq_puts(m, this.misc.proc_misc().map((l) => `${l}\n`).join("")));
  }

  private parent_or_root(parent: dentry | null): dentry {
    return parent ?? this.root;
  }

  private proc_symlink_fn(name: string, target: () => string): void {
    const d = simple_new_entry(this.root, name, S_IFLNK | 0o777);
    if (typeof d !== "number") d.d_inode!.i_op = simple_symlink_inode_operations(target);
  }

  /** proc_mkdir(): a directory under /proc (or under `parent`). */
  proc_mkdir(name: string, parent: dentry | null): dentry | number {
    return simple_new_entry(this.parent_or_root(parent), name, S_IFDIR | 0o555);
  }

  /** proc_create_data(): a file running `ops`; `data` is what PDE_DATA(inode) returns. */
  proc_create_data(name: string, mode: number, parent: dentry | null, ops: proc_ops, data: unknown): dentry | number {
    if (!name) return -EINVAL;
    const d = simple_new_entry(this.parent_or_root(parent), name, S_IFREG | (mode & 0o777 || 0o444));
    if (typeof d === "number") {
      if (d === -EEXIST) this.k.WARN(true, `proc_dir_entry '${name}' already registered`);
      return d;
    }
    d.d_inode!.i_private = data;
    d.d_inode!.i_fop = proc_reg_fops(ops);
    return d;
  }

  proc_create(name: string, mode: number, parent: dentry | null, ops: proc_ops): dentry | number {
    return this.proc_create_data(name, mode, parent, ops, null);
  }

  /** proc_create_single(): a seq_file text entry. */
  proc_create_single(name: string, mode: number, parent: dentry | null, show: seq_show_fn): dentry | number {
    const d = simple_new_entry(this.parent_or_root(parent), name, S_IFREG | (mode & 0o777 || 0o444));
    if (typeof d === "number") return d;
    d.d_inode!.i_fop = proc_single_fops(show);
    return d;
  }

  /** proc_symlink(): a fixed link. */
  proc_symlink(name: string, parent: dentry | null, dest: string): dentry | number {
    const d = simple_new_entry(this.parent_or_root(parent), name, S_IFLNK | 0o777);
    if (typeof d !== "number") d.d_inode!.i_op = simple_symlink_inode_operations(() => dest);
    return d;
  }

  /** remove_proc_entry(): the entry (and anything below it) disappears. */
  remove_proc_entry(name: string, parent: dentry | null): number {
    const d = this.parent_or_root(parent).d_subdirs.get(name);
    if (!d) {
      this.k.WARN(true, `remove_proc_entry: name '${name}'`);
      return -ENOENT;
    }
    simple_remove_recursive(d);
    return 0;
  }
}

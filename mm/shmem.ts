// Mirrors mm/shmem.c (Linux 6.8): tmpfs. File data lives in page-cache pages (i_pages: index →
// page) allocated from the page allocator on first write or first fault, zero-filled; the page
// cache holds one reference per page, and evicting the inode (last close of an unlinked file,
// or unmount at power-off) gives them back. Named files live in /tmp; shmem_file_setup() makes
// unnamed ones on an internal mount (shared anonymous mappings via shmem_zero_setup()).
//
// kemu simplifications (docs/fidelity.md): no swap (pages never leave RAM), no huge pages, no
// size limits (nr_blocks/nr_inodes), no xattrs/ACLs; the VMAs mapping a file are tracked by the
// vm_operations open/close hooks instead of the i_mmap interval tree.

import { inject, injectable } from "tsyringe";
import { KERNEL, PAGE_ALLOC, VFS } from "../kernel/tokens.ts";
import type { Kernel } from "../kernel/kernel.ts";
import type { PageAlloc } from "./page_alloc.ts";
import { alloc_page } from "./page_alloc.ts";
import { EFAULT, EFBIG, EINVAL, ENOMEM, ENOTEMPTY } from "../include/uapi/asm-generic/errno.ts";
import { O_APPEND, O_RDWR } from "../include/uapi/asm-generic/fcntl.ts";
import { S_IFDIR, S_IFMT, S_IFREG, S_ISDIR } from "../include/uapi/linux/stat.ts";
import { GFP_HIGHUSER_MOVABLE, __GFP_ZERO } from "../include/linux/gfp_types.ts";
import type { address_space, page, vm_area_struct, vm_operations_struct } from "../include/linux/mm_types.ts";
import { PAGE_SIZE, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_SHARED, put_page, get_page, type vm_fault } from "../include/linux/mm.ts";
import { NODE_DATA } from "../include/linux/mmzone.ts";
import { SetPageDirty, SetPageUptodate, __SetPageSwapBacked } from "../include/linux/page-flags.ts";
import { d_add, d_alloc, d_drop, d_instantiate, type dentry, type vfsmount } from "../include/linux/dcache.ts";
import {
  ATTR_SIZE, MAX_LFS_FILESIZE, clear_nlink, drop_nlink, inc_nlink, inode_lock, inode_unlock, iput, new_inode,
  type file, type file_operations, type iattr, type inode, type inode_operations, type kiocb, type super_block,
} from "../include/linux/fs.ts";
import type { iov_iter } from "../include/linux/uio.ts";
import { copy_from_iter, copy_to_iter } from "../lib/iov_iter.ts";
import type { Vfs } from "../fs/namespace.ts";
import { generic_file_llseek, simple_lookup } from "../fs/libfs.ts";
import { alloc_empty_file, fput } from "../fs/file_table.ts";
import { FMODE_OPENED, FMODE_READ, FMODE_WRITE, FMODE_CAN_READ, FMODE_CAN_WRITE } from "../include/linux/fs.ts";
import { unmap_mapping_range } from "./memory.ts";

export const TMPFS_MAGIC = 0x01021994;

/** struct address_space of a shmem inode: the page cache plus the VMAs mapping it. */
export class shmem_mapping implements address_space {
  readonly kind = "file";
  readonly i_pages = new Map<number, page>();
  /** i_mmap: VMAs mapping this file (kept by shmem_vm_ops open/close and shmem_mmap). */
  readonly i_mmap = new Set<vm_area_struct>();

  constructor(readonly host: inode) {}

  get host_name(): string {
    return `shmem:${this.host.i_ino}`;
  }

  get nrpages(): number {
    return this.i_pages.size;
  }
}

function SHMEM_MAPPING(i: inode): shmem_mapping {
  return i.i_mapping as shmem_mapping;
}

function shmem_k(i: inode): Kernel {
  return i.i_sb.s_vfs.k;
}

// ---- page cache ----------------------------------------------------------------------------

/**
 * shmem_get_folio(): the page at `index`, allocated zeroed and added to the cache when absent
 * and `create` is set. null with `create` unset means a hole; -ENOMEM when allocation fails.
 */
function shmem_get_page(i: inode, index: number, create: boolean): page | null | number {
  const mapping = SHMEM_MAPPING(i);
  const cached = mapping.i_pages.get(index);
  if (cached || !create) return cached ?? null;
  const p = alloc_page(shmem_k(i), GFP_HIGHUSER_MOVABLE | __GFP_ZERO);
  if (!p) return -ENOMEM;
  // The allocation's reference becomes the page cache's.
  p.mapping = mapping;
  p.index = index;
  __SetPageSwapBacked(p);
  SetPageUptodate(p);
  mapping.i_pages.set(index, p);
  return p;
}

/** Drops the page cache from page `start` on: cache references go, mapped pages live on. */
function shmem_undo_range(i: inode, start: number): void {
  const mapping = SHMEM_MAPPING(i);
  for (const [index, p] of [...mapping.i_pages]) {
    if (index < start) continue;
    mapping.i_pages.delete(index);
    p.mapping = null;
    put_page(p);
  }
}

/** Zeroes the tail of the last partial page past a new, smaller size. */
function shmem_zero_tail(i: inode, size: number): void {
  const off = size % PAGE_SIZE;
  if (off === 0) return;
  const p = SHMEM_MAPPING(i).i_pages.get(Math.floor(size / PAGE_SIZE));
  if (p) NODE_DATA(shmem_k(i)).physmem.fill(p.pfn * PAGE_SIZE + off, PAGE_SIZE - off, 0);
}

/** shmem_truncate_range() + truncate_pagecache(): mappings past the end go first, then pages. */
async function shmem_truncate(i: inode, newsize: number): Promise<void> {
  const holebegin = Math.ceil(newsize / PAGE_SIZE) * PAGE_SIZE;
  await unmap_mapping_range(SHMEM_MAPPING(i), holebegin, 0, true);
  shmem_zero_tail(i, newsize);
  shmem_undo_range(i, holebegin / PAGE_SIZE);
}

/** shmem_setattr(): only size changes are modelled. */
async function shmem_setattr(d: dentry, attr: iattr): Promise<number> {
  const i = d.d_inode!;
  if (!(attr.ia_valid & ATTR_SIZE)) return 0;
  if (attr.ia_size < 0) return -EINVAL;
  if (attr.ia_size > MAX_LFS_FILESIZE) return -EFBIG;
  if (attr.ia_size < i.i_size) await shmem_truncate(i, attr.ia_size);
  i.i_size = attr.ia_size;
  i.i_mtime = i.i_ctime = shmem_k(i).ktime_get();
  return 0;
}

/** shmem_evict_inode(): the last reference to the inode is gone; free its pages. */
function shmem_evict_inode(i: inode): void {
  if (i.i_mapping) shmem_undo_range(i, 0);
}

// ---- read / write --------------------------------------------------------------------------

/** shmem_file_read_iter(): copies from the cache; holes read as zeros; stops at i_size. */
async function shmem_file_read_iter(iocb: kiocb, to: iov_iter): Promise<number> {
  const i = iocb.ki_filp.f_inode;
  const physmem = NODE_DATA(shmem_k(i)).physmem;
  let copied = 0;
  while (to.count > 0 && iocb.ki_pos < i.i_size) {
    const index = Math.floor(iocb.ki_pos / PAGE_SIZE);
    const offset = iocb.ki_pos % PAGE_SIZE;
    const nr = Math.min(PAGE_SIZE - offset, i.i_size - iocb.ki_pos, to.count);
    const p = shmem_get_page(i, index, false) as page | null;
    const data = p ? physmem.read(p.pfn * PAGE_SIZE + offset, nr) : new Uint8Array(nr);
    // The bytes are already copied out of the frame, so a racing truncate cannot change them.
    const ret = await copy_to_iter(data, nr, to);
    copied += ret;
    iocb.ki_pos += ret;
    if (ret < nr) return copied || -EFAULT;
  }
  return copied;
}

/** generic_file_write_iter(): under the inode lock, so truncation cannot interleave. */
async function shmem_file_write_iter(iocb: kiocb, from: iov_iter): Promise<number> {
  const i = iocb.ki_filp.f_inode;
  await inode_lock(i);
  try {
    return await shmem_perform_write(iocb, from);
  } finally {
    inode_unlock(i);
  }
}

/** generic_perform_write() into shmem pages; O_APPEND writes at i_size. */
async function shmem_perform_write(iocb: kiocb, from: iov_iter): Promise<number> {
  const f = iocb.ki_filp;
  const i = f.f_inode;
  const physmem = NODE_DATA(shmem_k(i)).physmem;
  if (f.f_flags & O_APPEND) iocb.ki_pos = i.i_size;
  if (iocb.ki_pos + from.count > MAX_LFS_FILESIZE) return -EFBIG;
  let written = 0;
  while (from.count > 0) {
    const index = Math.floor(iocb.ki_pos / PAGE_SIZE);
    const offset = iocb.ki_pos % PAGE_SIZE;
    const nr = Math.min(PAGE_SIZE - offset, from.count);
    const p = shmem_get_page(i, index, true);
    if (typeof p === "number") return written || p;
    const buf = new Uint8Array(nr);
    const got = await copy_from_iter(buf, nr, from);
    if (got > 0) {
      physmem.write(p!.pfn * PAGE_SIZE + offset, buf, 0, got);
      SetPageDirty(p!);
    }
    written += got;
    iocb.ki_pos += got;
    if (iocb.ki_pos > i.i_size) i.i_size = iocb.ki_pos;
    if (got < nr) return written || -EFAULT;
  }
  if (written) i.i_mtime = i.i_ctime = shmem_k(i).ktime_get();
  return written;
}

// ---- mmap ----------------------------------------------------------------------------------

/**
 * shmem_fault(): the page at vmf->pgoff, allocated zeroed on first touch. Returns it in
 * vmf.page with a reference for the caller (unlocked: the core locks it). Beyond EOF: SIGBUS.
 */
async function shmem_fault(vmf: vm_fault): Promise<number> {
  const f = vmf.vma.vm_file as file;
  const i = f.f_inode;
  if (vmf.pgoff * PAGE_SIZE >= i.i_size) return VM_FAULT_SIGBUS;
  const p = shmem_get_page(i, vmf.pgoff, true);
  if (typeof p === "number") return VM_FAULT_OOM;
  get_page(p!);
  vmf.page = p;
  return 0;
}

export const shmem_vm_ops: vm_operations_struct = {
  name: "shmem",
  fault: shmem_fault,
  /** A VMA split or copied by fork also maps the file. */
  open: (vma) => {
    SHMEM_MAPPING((vma.vm_file as file).f_inode).i_mmap.add(vma);
  },
  close: (vma) => {
    SHMEM_MAPPING((vma.vm_file as file).f_inode).i_mmap.delete(vma);
  },
};

/** shmem_mmap(): installs the fault handler; the file's pages back the mapping. */
function shmem_mmap(f: file, vma: vm_area_struct): number {
  vma.vm_ops = shmem_vm_ops;
  SHMEM_MAPPING(f.f_inode).i_mmap.add(vma);
  return 0;
}

export const shmem_file_operations: file_operations = {
  mmap: shmem_mmap,
  llseek: generic_file_llseek,
  read_iter: shmem_file_read_iter,
  write_iter: shmem_file_write_iter,
};

// ---- inodes and the namespace --------------------------------------------------------------

/** The machine's tmpfs, for callers that only hold a VMA (do_mmap's shmem_zero_setup). */
const shmem_of = new WeakMap<Kernel, Shmem>();

/** shmem_zero_setup(): see Shmem.shmem_zero_setup. */
export function shmem_zero_setup(vma: vm_area_struct): number {
  const sh = shmem_of.get(vma.vm_mm.k);
  return sh ? sh.shmem_zero_setup(vma) : -ENOMEM;
}

@injectable()
export class Shmem {
  /** The tmpfs mounted on /tmp. */
  readonly tmp_sb: super_block;
  /** shm_mnt: the internal tmpfs of shmem_file_setup(). */
  readonly shm_mnt: vfsmount;

  private readonly dir_iops: inode_operations = {
    lookup: simple_lookup,
    create: (dir, d, mode) => this.shmem_mknod(dir, d, mode),
    tmpfile: (dir, d, mode) => this.shmem_tmpfile(dir, d, mode),
    mkdir: (dir, d, mode) => this.shmem_mknod(dir, d, (mode & ~S_IFMT) | S_IFDIR),
    unlink: (dir, d) => this.shmem_unlink(dir, d),
    rmdir: (dir, d) => this.shmem_rmdir(dir, d),
  };

  private readonly file_iops: inode_operations = {
    setattr: shmem_setattr,
  };

  constructor(
    @inject(KERNEL) private readonly k: Kernel,
    @inject(VFS) private readonly vfs: Vfs,
    // The page allocator builds NODE_DATA; tmpfs allocates from it.
    @inject(PAGE_ALLOC) _pa: PageAlloc,
  ) {
    this.tmp_sb = this.new_sb();
    this.shm_mnt = vfs.kern_mount(this.new_sb());
    vfs.mount(this.tmp_sb, "/tmp");
    shmem_of.set(k, this);
  }

  private new_sb(): super_block {
    const sb = this.vfs.sget({ name: "tmpfs", kill_sb: (s) => this.kill_sb(s) }, TMPFS_MAGIC);
    sb.s_fs_info = this;
    sb.s_op = { evict_inode: shmem_evict_inode };
    const root = this.vfs.make_root(sb, S_IFDIR | 0o1777);
    root.d_inode!.i_op = this.dir_iops;
    return sb;
  }

  /** shmem_get_inode(): a regular file with an empty page cache, or a directory. */
  shmem_get_inode(sb: super_block, mode: number): inode {
    if (S_ISDIR(mode)) {
      const dir = this.vfs.new_dir_inode(sb, mode);
      dir.i_op = this.dir_iops;
      return dir;
    }
    const i = new_inode(sb);
    i.i_mode = mode;
    i.i_mtime = i.i_ctime = this.k.ktime_get();
    i.i_op = this.file_iops;
    i.i_fop = shmem_file_operations;
    i.i_mapping = new shmem_mapping(i);
    return i;
  }

  /** shmem_mknod(): a new file or directory under `dir`, named by the negative dentry `d`. */
  private shmem_mknod(dir: inode, d: dentry, mode: number): number {
    const i = this.shmem_get_inode(dir.i_sb, mode);
    if (S_ISDIR(mode)) inc_nlink(dir);
    d_add(d, i);
    dir.i_mtime = dir.i_ctime = this.k.ktime_get();
    return 0;
  }

  /** shmem_tmpfile(): an unnamed file (i_nlink 0); the open file is its only reference. */
  private shmem_tmpfile(dir: inode, d: dentry, mode: number): number {
    const i = this.shmem_get_inode(dir.i_sb, mode);
    clear_nlink(i);
    d.d_name = `#${i.i_ino}`;
    d_instantiate(d, i);
    // d_tmpfile(): the dentry's inode reference is handed to the file being opened.
    i.i_count--;
    return 0;
  }

  /** shmem_unlink(): the name goes; open files and mappings keep the data until released. */
  private shmem_unlink(dir: inode, d: dentry): number {
    const i = d.d_inode!;
    drop_nlink(i);
    d_drop(d);
    dir.i_mtime = dir.i_ctime = this.k.ktime_get();
    iput(i);
    return 0;
  }

  private shmem_rmdir(dir: inode, d: dentry): number {
    if (d.d_subdirs.size) return -ENOTEMPTY;
    drop_nlink(dir);
    return this.shmem_unlink(dir, d);
  }

  /**
   * shmem_file_setup(): an unlinked tmpfs file of `size` bytes on the internal mount, opened
   * read-write (the caller owns the reference). Used for shared anonymous memory.
   */
  shmem_file_setup(name: string, size: number, _flags: number): file | number {
    if (size < 0 || size > MAX_LFS_FILESIZE) return -EINVAL;
    const sb = this.shm_mnt.mnt_sb;
    const i = this.shmem_get_inode(sb, S_IFREG | 0o777);
    i.i_size = size;
    clear_nlink(i);
    const d = d_alloc(sb.s_root, name);
    d_instantiate(d, i);
    // Anonymous shared memory prints as "/dev/zero (deleted)" in /proc/<pid>/maps.
    d.d_op = { d_dname: () => `/${name} (deleted)` };
    const f = alloc_empty_file({ mnt: this.shm_mnt, dentry: d }, i, O_RDWR, FMODE_READ | FMODE_WRITE, shmem_file_operations);
    // The file's own reference replaces the one new_inode() handed out.
    iput(i);
    f.f_mode |= FMODE_OPENED | FMODE_CAN_READ | FMODE_CAN_WRITE;
    return f;
  }

  /**
   * shmem_zero_setup(): MAP_SHARED|MAP_ANONYMOUS — the VMA maps a fresh "dev/zero" shmem file
   * the size of the VMA, so that fork shares the pages.
   */
  shmem_zero_setup(vma: vm_area_struct): number {
    const f = this.shmem_file_setup("dev/zero", vma.vm_end - vma.vm_start, 0);
    if (typeof f === "number") return f;
    if (vma.vm_file) fput(vma.vm_file as file);
    vma.vm_file = f;
    vma.vm_ops = shmem_vm_ops;
    vma.vm_flags |= VM_SHARED;
    SHMEM_MAPPING(f.f_inode).i_mmap.add(vma);
    return 0;
  }

  /** kill_litter_super(): at unmount every inode goes, and with it the page cache. */
  private kill_sb(sb: super_block): void {
    for (const i of [...sb.s_inodes]) {
      shmem_evict_inode(i);
      sb.s_inodes.delete(i);
    }
  }

  /** Pages held by tmpfs page caches (Shmem: in /proc/meminfo). */
  nr_shmem_pages(): number {
    let n = 0;
    for (const sb of [this.tmp_sb, this.shm_mnt.mnt_sb]) for (const i of sb.s_inodes) n += (i.i_mapping as shmem_mapping | null)?.nrpages ?? 0;
    return n;
  }
}


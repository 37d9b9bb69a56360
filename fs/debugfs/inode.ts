// Mirrors fs/debugfs/inode.c and fs/debugfs/file.c (Linux 6.8): debugfs, mounted on
// /sys/kernel/debug. Drivers create directories, files with their own file_operations, and the
// number/bool helper files; removal makes files still open answer -EIO (the full_proxy_fops
// guard). The fault-injection capabilities of lib/fault-inject.ts appear as
// /sys/kernel/debug/<cap>/<knob> directories, looked up from that service when first named.

import { inject, injectable } from "tsyringe";
import { EACCES, EIO, ENODEV } from "../../include/uapi/asm-generic/errno.ts";
import { S_IFDIR, S_IFLNK, S_IFREG, S_IWUGO } from "../../include/uapi/linux/stat.ts";
import { d_add, d_unhashed, type dentry } from "../../include/linux/dcache.ts";
import {
  FMODE_WRITE, type file, type file_operations, type inode, type kiocb, type loff_ptr,
} from "../../include/linux/fs.ts";
import type { iov_iter } from "../../include/linux/uio.ts";
import { FAULT_INJECT, VFS } from "../../kernel/tokens.ts";
import type { Vfs } from "../namespace.ts";
import type { FaultInjection } from "../../lib/fault-inject.ts";
import { kstrtobool, kstrtoull } from "../../lib/kstrtox.ts";
import {
  simple_new_entry, simple_open, simple_remove_recursive, simple_symlink_inode_operations, simple_write_iter_text,
} from "../libfs.ts";
import { seq_lseek, seq_puts, seq_read_iter, single_open, single_release } from "../seq_file.ts";

export const DEBUGFS_MAGIC = 0x64626720;

/** A number a debugfs helper file shows and sets: obj[key]. */
type num_key<T> = { [K in keyof T]: T[K] extends number ? K : never }[keyof T];
type bool_key<T> = { [K in keyof T]: T[K] extends boolean ? K : never }[keyof T];

/** full_proxy_fops: every call first checks that the file was not removed. */
function full_proxy(fops: file_operations): file_operations {
  const gone = (f: file) => d_unhashed(f.f_path.dentry);
  const p: { -readonly [K in keyof file_operations]: file_operations[K] } = {
    owner: fops.owner,
    open: async (inode: inode, f: file) => (gone(f) ? -ENODEV : ((await fops.open?.(inode, f)) ?? 0)),
    release: fops.release,
    llseek: fops.llseek,
  };
  if (fops.read) p.read = (f: file, buf: number, n: number, pos: loff_ptr) => (gone(f) ? -EIO : fops.read!(f, buf, n, pos));
  if (fops.write) p.write = (f: file, buf: number, n: number, pos: loff_ptr) => (gone(f) ? -EIO : fops.write!(f, buf, n, pos));
  if (fops.read_iter) p.read_iter = (iocb: kiocb, to: iov_iter) => (gone(iocb.ki_filp) ? -EIO : fops.read_iter!(iocb, to));
  if (fops.write_iter) p.write_iter = (iocb: kiocb, from: iov_iter) => (gone(iocb.ki_filp) ? -EIO : fops.write_iter!(iocb, from));
  if (fops.unlocked_ioctl) p.unlocked_ioctl = (f: file, cmd: number, arg: number) => (gone(f) ? -EIO : fops.unlocked_ioctl!(f, cmd, arg));
  if (fops.mmap) p.mmap = fops.mmap;
  if (fops.poll) p.poll = fops.poll;
  return p;
}

/**
 * DEFINE_DEBUGFS_ATTRIBUTE()/simple_attr: text "get()\n" on read; a write parses an integer
 * (base 0) and calls set, or -EACCES when there is none.
 */
function simple_attr_fops(get: () => string, set: ((text: string) => number) | null): file_operations {
  return {
    open: (_inode: inode, f: file) => single_open(f, (m) => seq_puts(m, get()), null),
    read_iter: seq_read_iter,
    llseek: seq_lseek,
    release: single_release,
    write_iter: async (iocb: kiocb, from: iov_iter) => {
      if (!set) return -EACCES;
      const text = await simple_write_iter_text(from, 24);
      if (typeof text === "number") return text;
      const err = set(text);
      if (err) return err;
      iocb.ki_pos += text.length;
      return text.length;
    },
  };
}

@injectable()
export class Debugfs {
  readonly root: dentry;

  constructor(
    @inject(VFS) private readonly vfs: Vfs,
    @inject(FAULT_INJECT) private readonly fi: FaultInjection,
  ) {
    const sb = vfs.sget({ name: "debugfs" }, DEBUGFS_MAGIC);
    sb.s_fs_info = this;
    this.root = vfs.make_root(sb, S_IFDIR | 0o700);
    this.root.d_inode!.i_op = { lookup: (dir, d) => this.fault_attr_lookup(dir, d) };
    vfs.mount(sb, "/sys/kernel/debug");
  }

  private parent_or_root(parent: dentry | null): dentry {
    return parent ?? this.root;
  }

  /** debugfs_create_dir(): returns the new directory's dentry or -errno. */
  debugfs_create_dir(name: string, parent: dentry | null): dentry | number {
    return simple_new_entry(this.parent_or_root(parent), name, S_IFDIR | 0o755);
  }

  /** debugfs_create_file(): `fops` run behind the removal guard; `data` is i_private. */
  debugfs_create_file(name: string, mode: number, parent: dentry | null, data: unknown, fops: file_operations): dentry | number {
    const d = simple_new_entry(this.parent_or_root(parent), name, S_IFREG | (mode & 0o777));
    if (typeof d === "number") return d;
    const i = d.d_inode!;
    i.i_private = data;
    i.i_fop = full_proxy({ ...fops, open: fops.open ?? simple_open });
    return d;
  }

  /** debugfs_create_symlink(): `name` pointing at `target` (text, relative or absolute). */
  debugfs_create_symlink(name: string, parent: dentry | null, target: string): dentry | number {
    const d = simple_new_entry(this.parent_or_root(parent), name, S_IFLNK | 0o777);
    if (typeof d === "number") return d;
    d.d_inode!.i_op = simple_symlink_inode_operations(() => target);
    return d;
  }

  /** debugfs_lookup(): a child by name, or null. */
  debugfs_lookup(name: string, parent: dentry | null): dentry | null {
    return this.parent_or_root(parent).d_subdirs.get(name) ?? null;
  }

  /** debugfs_remove() (== debugfs_remove_recursive): the entry and its subtree. */
  debugfs_remove(d: dentry | number | null): void {
    if (d && typeof d !== "number") simple_remove_recursive(d);
  }

  private number_file<T extends object>(name: string, mode: number, parent: dentry | null, obj: T, key: num_key<T>,
    fmt: (v: number) => string, max: number): dentry | number {
    const get = () => fmt(obj[key] as number);
    const set = (text: string) => {
      const v = kstrtoull(text, 0);
      if (v < 0) return v;
      // Stored truncated to the field's width, as *(u32 *)data = val does.
      (obj as Record<PropertyKey, unknown>)[key as PropertyKey] = v % (max + 1);
      return 0;
    };
    const fops = simple_attr_fops(get, mode & S_IWUGO ? set : null);
    return this.debugfs_create_file(name, mode, parent, obj, fops);
  }

  debugfs_create_u32<T extends object>(name: string, mode: number, parent: dentry | null, obj: T, key: num_key<T>): dentry | number {
    return this.number_file(name, mode, parent, obj, key, (v) => `${v}\n`, 2 ** 32 - 1);
  }

  debugfs_create_u64<T extends object>(name: string, mode: number, parent: dentry | null, obj: T, key: num_key<T>): dentry | number {
    return this.number_file(name, mode, parent, obj, key, (v) => `${v}\n`, 2 ** 64 - 1);
  }

  debugfs_create_ulong<T extends object>(name: string, mode: number, parent: dentry | null, obj: T, key: num_key<T>): dentry | number {
    return this.debugfs_create_u64(name, mode, parent, obj, key);
  }

  debugfs_create_x32<T extends object>(name: string, mode: number, parent: dentry | null, obj: T, key: num_key<T>): dentry | number {
    return this.number_file(name, mode, parent, obj, key, (v) => `0x${v.toString(16).padStart(8, "0")}\n`, 2 ** 32 - 1);
  }

  debugfs_create_x64<T extends object>(name: string, mode: number, parent: dentry | null, obj: T, key: num_key<T>): dentry | number {
    return this.number_file(name, mode, parent, obj, key, (v) => `0x${v.toString(16).padStart(16, "0")}\n`, 2 ** 64 - 1);
  }

  /** debugfs_create_bool(): "Y\n"/"N\n"; writes take kstrtobool() text. */
  debugfs_create_bool<T extends object>(name: string, mode: number, parent: dentry | null, obj: T, key: bool_key<T>): dentry | number {
    const get = () => ((obj[key] as boolean) ? "Y\n" : "N\n");
    const set = (text: string) => {
      const v = kstrtobool(text);
      if (typeof v === "number") return v;
      (obj as Record<PropertyKey, unknown>)[key as PropertyKey] = v;
      return 0;
    };
    return this.debugfs_create_file(name, mode, parent, obj, simple_attr_fops(get, mode & S_IWUGO ? set : null));
  }

  /** debugfs_create_devm_seqfile()-like: read-only text generated at read time. */
  debugfs_create_seqfile(name: string, parent: dentry | null, show: () => string | Promise<string>): dentry | number {
    const fops: file_operations = {
      open: (_inode: inode, f: file) => {
        if (f.f_mode & FMODE_WRITE) return -EACCES;
        return single_open(f, async (m) => seq_puts(m, await show()), null);
      },
      read_iter: seq_read_iter,
      llseek: seq_lseek,
      release: single_release,
    };
    return this.debugfs_create_file(name, 0o444, parent, null, fops);
  }

  // ---- fault_create_debugfs_attr() directories of lib/fault-inject.ts ------------------------

  /** Names under the root that a fault-injection capability owns, built on first lookup. */
  private fault_attr_lookup(_dir: inode, d: dentry): number {
    const cap = d.d_name;
    const knobs = this.fi.knobs(cap);
    if (!knobs) {
      d_add(d, null);
      return 0;
    }
    const dir = this.vfs.new_dir_inode(this.root.d_sb);
    d_add(d, dir);
    d.d_op = { d_revalidate: () => this.fi.knobs(cap) !== null };
    for (const knob of knobs) {
      const get = () => {
        const v = this.fi.read_knob(cap, knob);
        return typeof v === "number" ? "" : v;
      };
      const fops = simple_attr_fops(get, (text) => this.fi.write_knob(cap, knob, text));
      const f = simple_new_entry(d, knob, S_IFREG | 0o600);
      if (typeof f !== "number") f.d_inode!.i_fop = full_proxy(fops);
    }
    return 0;
  }
}

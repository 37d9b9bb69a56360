// Mirrors fs/proc/base.c and the status part of fs/proc/array.c (Linux 6.8): the /proc/<pid>
// directories. A pid directory exists while its task does (its dentry is revalidated on every
// walk); each file looks the task up again when used, so a file of an exited task gives -ESRCH.
// /proc/<pid>/task/<tid> holds the per-thread files.

import { EFAULT, ESRCH } from "../../include/uapi/asm-generic/errno.ts";
import { S_IFDIR, S_IFREG } from "../../include/uapi/linux/stat.ts";
import { d_add, type dentry } from "../../include/linux/dcache.ts";
import {
  new_inode, type file, type file_operations, type inode, type kiocb, type loff_ptr, type super_block,
} from "../../include/linux/fs.ts";
import { copy_to_user } from "../../include/linux/uaccess.ts";
import { mmdrop, mmget_not_zero, mmgrab, mmput } from "../../kernel/fork.ts";
import { pagemap_read, show_map } from "./task_mmu.ts";
import type { mm_struct } from "../../include/linux/mm_types.ts";
import type { iov_iter } from "../../include/linux/uio.ts";
import {
  TASK_DEAD, TASK_IDLE, TASK_INTERRUPTIBLE, TASK_RUNNING, TASK_UNINTERRUPTIBLE, type task_struct,
} from "../../kernel/sched/core.ts";
import { kstrtoint, kstrtouint } from "../../lib/kstrtox.ts";
import { default_llseek, simple_read_iter_from_buffer, simple_write_iter_text, text_encoder } from "../libfs.ts";
import { seq_lseek, seq_puts, seq_read_iter, single_open, single_release, type seq_file } from "../seq_file.ts";
import type { Procfs } from "./root.ts";

/** PROC_NUMBUF: the text buffer of number files. */
const PROC_NUMBUF = 13;
const TASK_COMM_LEN = 16;

/** What a /proc/<pid> inode names: the task by pid, looked up at every use. */
interface proc_inode {
  pid: number;
  procfs: Procfs;
}

function PROC_I(i: inode): proc_inode {
  return i.i_private as proc_inode;
}

/** get_proc_task(): the live task of a proc inode, or null once it exited. */
export function get_proc_task(i: inode): task_struct | null {
  const { pid, procfs } = PROC_I(i);
  const t = procfs.k.sched.find_task_by_pid(pid);
  return t && t.__state !== TASK_DEAD ? t : null;
}

/** A seq_file ->show over the task, -ESRCH when it is gone. */
function task_seq_fops(show: (m: seq_file, t: task_struct, procfs: Procfs) => void | Promise<void>): file_operations {
  return {
    open: (i: inode, f: file) =>
      single_open(f, async (m) => {
        const t = get_proc_task(i);
        if (!t) return -ESRCH;
        await show(m, t, PROC_I(i).procfs);
      }, null),
    read_iter: seq_read_iter,
    llseek: seq_lseek,
    release: single_release,
  };
}

/** A small number file: text from `read`, parsed by `write` (0 or -errno). */
function task_number_fops(read: (t: task_struct) => string, write: (t: task_struct, text: string, p: Procfs) => number, max: number): file_operations {
  return {
    read_iter: async (iocb: kiocb, to: iov_iter) => {
      const t = get_proc_task(iocb.ki_filp.f_inode);
      if (!t) return -ESRCH;
      return simple_read_iter_from_buffer(iocb, to, text_encoder.encode(read(t)));
    },
    write_iter: async (iocb: kiocb, from: iov_iter) => {
      const n = from.count;
      const text = await simple_write_iter_text(from, max);
      if (typeof text === "number") return text;
      const i = iocb.ki_filp.f_inode;
      const t = get_proc_task(i);
      if (!t) return -ESRCH;
      const err = write(t, text, PROC_I(i).procfs);
      return err < 0 ? err : n;
    },
    llseek: default_llseek,
  };
}

// ---- the files ------------------------------------------------------------------------------

/** proc_fail_nth_read/write(): arm "fail the n-th injectable call of this task". */
const proc_fail_nth_operations = task_number_fops(
  (t) => `${t.fail_nth}\n`,
  (t, text, p) => {
    const n = kstrtouint(text, 0);
    return n < 0 ? n : p.fi.set_fail_nth(t, n);
  },
  24,
);

/** proc_fault_inject_read/write(): /proc/<pid>/make-it-fail, 0 or 1. */
const proc_fault_inject_operations = task_number_fops(
  (t) => `${t.make_it_fail ? 1 : 0}\n`,
  (t, text, p) => {
    const v = kstrtoint(text.trim(), 0);
    if (typeof v === "number") return v;
    return p.fi.set_make_it_fail(t, v.value);
  },
  PROC_NUMBUF - 1,
);

/** comm_write()/comm_show(): the task's name, cut to TASK_COMM_LEN - 1. */
const proc_pid_set_comm_operations = task_number_fops(
  (t) => `${t.comm}\n`,
  (t, text) => {
    t.comm = text.replace(/\n$/, "").slice(0, TASK_COMM_LEN - 1);
    return 0;
  },
  TASK_COMM_LEN - 1,
);

function task_state(t: task_struct): string {
  switch (t.__state) {
    case TASK_RUNNING:
      return "R (running)";
    case TASK_INTERRUPTIBLE:
      return "S (sleeping)";
    case TASK_UNINTERRUPTIBLE:
      return "D (disk sleep)";
    case TASK_IDLE:
      return "I (idle)";
    default:
      return "X (dead)";
  }
}

function kb(pages: number): string {
  return `${String(pages * 4).padStart(8)} kB`;
}

/** task_mem(): the VmSize/VmRSS/Rss lines from the mm counters. */
function task_mem(m: seq_file, mm: mm_struct): void {
  const [file, anon, swap, shmem] = mm.rss_stat as [number, number, number, number];
  seq_puts(m, `VmSize:\t${kb(mm.total_vm)}\n`);
  seq_puts(m, `VmRSS:\t${kb(file + anon + shmem)}\n`);
  seq_puts(m, `RssAnon:\t${kb(anon)}\n`);
  seq_puts(m, `RssFile:\t${kb(file)}\n`);
  seq_puts(m, `RssShmem:\t${kb(shmem)}\n`);
  seq_puts(m, `VmSwap:\t${kb(swap)}\n`);
}

/** proc_pid_status() */
function proc_pid_status(m: seq_file, t: task_struct, p: Procfs): void {
  const threads = p.k.sched.all_tasks().filter((x) => x.tgid === t.tgid && x.__state !== TASK_DEAD).length;
  seq_puts(m, `Name:\t${t.comm}\nUmask:\t0022\nState:\t${task_state(t)}\n`);
  seq_puts(m, `Tgid:\t${t.tgid}\nNgid:\t0\nPid:\t${t.pid}\nPPid:\t${t.real_parent?.tgid ?? 0}\nTracerPid:\t0\n`);
  seq_puts(m, `Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t${Math.max(64, t.files?.fd.length ?? 0)}\nGroups:\t\n`);
  if (t.mm) task_mem(m, t.mm as mm_struct);
  seq_puts(m, `Threads:\t${threads}\n`);
}

interface pid_entry {
  name: string;
  mode: number;
  fops?: file_operations;
  /** A directory whose names are looked up (task/). */
  lookup?: (p: Procfs, dir: inode, d: dentry) => number;
}

/** proc_pid_maps_operations: show_map() of the task's mm at read time (empty without one). */
const proc_pid_maps_operations = task_seq_fops(async (m, t) => {
  const mm = t.mm as mm_struct | null;
  if (mm && mmget_not_zero(mm)) {
    try {
      seq_puts(m, await show_map(mm));
    } finally {
      await mmput(mm);
    }
  }
});

/**
 * proc_pagemap_operations: 8-byte entries, entry i for virtual page i (read at offset
 * vaddr / 4096 * 8). The mm is pinned at open (mmgrab), as proc_mem_open() does.
 */
const proc_pagemap_operations: file_operations = {
  open: (i: inode, f: file) => {
    const t = get_proc_task(i);
    if (!t) return -ESRCH;
    const mm = t.mm as mm_struct | null;
    if (mm) mmgrab(mm);
    f.private_data = mm;
    return 0;
  },
  read: async (f: file, buf: number, count: number, ppos: loff_ptr) => {
    const mm = f.private_data as mm_struct | null;
    if (!mm) return 0;
    const data = await pagemap_read(mm, ppos.pos, count);
    if (typeof data === "number") return data;
    const k = f.f_inode.i_sb.s_vfs.k;
    if (await copy_to_user(k, buf, data, data.length)) return -EFAULT;
    ppos.pos += data.length;
    return data.length;
  },
  llseek: default_llseek,
  release: (_i: inode, f: file) => {
    const mm = f.private_data as mm_struct | null;
    if (mm) mmdrop(mm);
    return 0;
  },
};

function tid_base_stuff(_p: Procfs): pid_entry[] {
  return [
    { name: "maps", mode: S_IFREG | 0o444, fops: proc_pid_maps_operations },
    { name: "pagemap", mode: S_IFREG | 0o400, fops: proc_pagemap_operations },
    { name: "status", mode: S_IFREG | 0o444, fops: task_seq_fops(proc_pid_status) },
    { name: "comm", mode: S_IFREG | 0o644, fops: proc_pid_set_comm_operations },
    { name: "make-it-fail", mode: S_IFREG | 0o644, fops: proc_fault_inject_operations },
    { name: "fail-nth", mode: S_IFREG | 0o644, fops: proc_fail_nth_operations },
  ];
}

function tgid_base_stuff(p: Procfs): pid_entry[] {
  return [{ name: "task", mode: S_IFDIR | 0o555, lookup: proc_task_lookup }, ...tid_base_stuff(p)];
}

/** proc_pident_instantiate(): one entry of a pid directory. */
function proc_pident_instantiate(p: Procfs, sb: super_block, pid: number, e: pid_entry): inode {
  const i = e.lookup || e.mode & S_IFDIR ? p.vfs.new_dir_inode(sb, e.mode) : new_inode(sb);
  i.i_mode = e.mode;
  i.i_private = { pid, procfs: p } satisfies proc_inode;
  if (e.fops) i.i_fop = e.fops;
  if (e.lookup) i.i_op = { lookup: (dir, d) => e.lookup!(p, dir, d) };
  return i;
}

/** A pid (or tid) directory with `entries`, revalidated against the task's life. */
function proc_pid_make_dir(p: Procfs, d: dentry, pid: number, entries: pid_entry[]): void {
  const sb = d.d_sb;
  const dir = p.vfs.new_dir_inode(sb, S_IFDIR | 0o555);
  dir.i_private = { pid, procfs: p } satisfies proc_inode;
  dir.i_op = {
    lookup: (_dir, child) => {
      const e = entries.find((x) => x.name === child.d_name);
      d_add(child, e ? proc_pident_instantiate(p, sb, pid, e) : null);
      return 0;
    },
  };
  d_add(d, dir);
  d.d_op = { d_revalidate: () => get_proc_task(dir) !== null };
}

/** proc_pid_lookup(): /proc/<n> for any live task id (threads too, as the kernel allows). */
export function proc_pid_lookup(p: Procfs, d: dentry): number {
  const pid = /^[1-9][0-9]*$/.test(d.d_name) ? Number(d.d_name) : NaN;
  const t = Number.isSafeInteger(pid) ? p.k.sched.find_task_by_pid(pid) : undefined;
  if (!t || t.__state === TASK_DEAD) {
    d_add(d, null);
    return 0;
  }
  proc_pid_make_dir(p, d, pid, tgid_base_stuff(p));
  return 0;
}

/** proc_task_lookup(): /proc/<pid>/task/<tid> for threads of the same group. */
function proc_task_lookup(p: Procfs, dir: inode, d: dentry): number {
  const leader = get_proc_task(dir);
  const tid = /^[1-9][0-9]*$/.test(d.d_name) ? Number(d.d_name) : NaN;
  const t = Number.isSafeInteger(tid) ? p.k.sched.find_task_by_pid(tid) : undefined;
  if (!leader || !t || t.tgid !== leader.tgid || t.__state === TASK_DEAD) {
    d_add(d, null);
    return 0;
  }
  proc_pid_make_dir(p, d, tid, tid_base_stuff(p));
  return 0;
}


// Mirrors kernel/fork.c (Linux 6.8): mm_struct allocation and lifetime
// (mm_alloc, mmget/mmput, mmgrab/mmdrop) and fork's address-space copy (dup_mm / dup_mmap).
// The page-table copy itself is copy_page_range() in mm/memory.ts.

import type { Kernel } from "./kernel.ts";
import { mm_struct, MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS } from "../include/linux/mm_types.ts";
import { rw_semaphore } from "./locking/rwsem.ts";
import { spinlock_t } from "./locking/spinlock.ts";
import { NODE_DATA } from "../include/linux/mmzone.ts";
import { TASK_SIZE, VM_DONTCOPY, VM_WIPEONFORK, VM_LOCKED } from "../include/linux/mm.ts";
import { EINTR, EINVAL, ENOMEM } from "../include/uapi/asm-generic/errno.ts";
import { pgd_alloc, pgd_free } from "../arch/x86/mm/pgtable.ts";
import { flush_tlb_mm } from "../arch/x86/mm/tlb.ts";
import { __mmu_notifier_subscriptions_destroy } from "../mm/mmu_notifier.ts";
import { mmap_write_lock_nested, mmap_write_lock_killable, mmap_write_unlock } from "../include/linux/mmap_lock.ts";
import { MMAP_BASE, vm_area_dup, vm_stat_account, vma_link, exit_mmap } from "../mm/mmap.ts";
import { anon_vma_fork } from "../mm/rmap.ts";
import { copy_page_range } from "../mm/memory.ts";
import { get_file } from "../fs/file_table.ts";
import type { file } from "../include/linux/fs.ts";
import { PF_EXITING, PF_KTHREAD, type task_struct } from "./sched/core.ts";
import { dup_fd, exit_files, files_struct } from "../fs/file.ts";
import { ftrace } from "../include/linux/ftrace.ts";
import { trace_task_newtask } from "../include/trace/events/task.ts";

const resident_page_types = ["MM_FILEPAGES", "MM_ANONPAGES", "MM_SWAPENTS", "MM_SHMEMPAGES"];

/** mm_alloc(): a fresh, empty address space with its own pgd; null on -ENOMEM. */
export function mm_alloc(k: Kernel): mm_struct | null {
  const pgdat = NODE_DATA(k);
  const mm = new mm_struct(k, new rw_semaphore(k, "&mm->mmap_lock"), new spinlock_t(k, "&mm->page_table_lock"), pgdat.next_context_id++);
  mm.pgd = pgd_alloc(mm);
  if (!mm.pgd) return null;
  mm.task_size = TASK_SIZE;
  mm.mmap_base = MMAP_BASE;
  return mm;
}

/** mmget(): one more user of the address space (a thread, a driver's mmget_not_zero pin). */
export function mmget(mm: mm_struct): void {
  mm.mm_users++;
}

/** mmget_not_zero(): pin the address space unless it is already being torn down. */
export function mmget_not_zero(mm: mm_struct): boolean {
  if (mm.mm_users === 0) return false;
  mm.mm_users++;
  return true;
}

/** mmgrab(): pin the mm_struct itself (not its mappings). */
export function mmgrab(mm: mm_struct): void {
  mm.mm_count++;
}

/** check_mm(): rss counters and page-table bytes must be zero when the mm is freed. */
function check_mm(mm: mm_struct): void {
  for (const i of [MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES]) {
    const v = mm.rss_stat[i]!;
    if (v) {
      mm.k.pr_alert(`BUG: Bad rss-counter state mm:${mm.context_id} type:${resident_page_types[i]} val:${v} Comm:${mm.k.current.comm} Pid:${mm.owner_pid}`);
      mm.k.record_splat("bug", "Bad rss-counter state");
    }
  }
  if (mm.pgtables_bytes !== 0) {
    mm.k.pr_alert(`BUG: non-zero pgtables_bytes on freeing mm: ${mm.pgtables_bytes}`);
    mm.k.record_splat("bug", "non-zero pgtables_bytes on freeing mm");
  }
}

/** __mmdrop(): the mm_struct goes: its pgd, its notifier state. */
function __mmdrop(mm: mm_struct): void {
  check_mm(mm);
  pgd_free(mm, mm.pgd);
  mm.pgd = 0;
  __mmu_notifier_subscriptions_destroy(mm);
}

/** mmdrop(): drop an mmgrab reference; the last one frees the mm_struct. */
export function mmdrop(mm: mm_struct): void {
  if (mm.k.WARN_ON(mm.mm_count <= 0, "mmdrop: mm_count underflow")) return;
  if (--mm.mm_count === 0) __mmdrop(mm);
}

/** mmput(): drop a user; the last one tears the address space down (exit_mmap) and mmdrops. */
export async function mmput(mm: mm_struct): Promise<void> {
  using _ = ftrace(mm.k, "mmput");
  mm.k.might_sleep("mmput");
  if (mm.k.WARN_ON(mm.mm_users <= 0, "mmput: mm_users underflow")) return;
  if (--mm.mm_users > 0) return;
  await exit_mmap(mm);
  mmdrop(mm);
}

/**
 * dup_mmap(mm, oldmm): copy every VMA (VM_DONTCOPY ones are skipped, VM_WIPEONFORK ones come
 * back empty) and its page tables; the parent's TLB is flushed after write-protecting.
 */
async function dup_mmap(mm: mm_struct, oldmm: mm_struct): Promise<number> {
  using _ = ftrace(oldmm.k, "dup_mmap");
  if (await mmap_write_lock_killable(oldmm)) return -EINTR;
  await mmap_write_lock_nested(mm, 1); // SINGLE_DEPTH_NESTING
  let retval = 0;
  mm.total_vm = oldmm.total_vm;
  mm.data_vm = oldmm.data_vm;
  mm.exec_vm = oldmm.exec_vm;
  mm.stack_vm = oldmm.stack_vm;
  mm.mmap_base = oldmm.mmap_base;
  mm.start_stack = oldmm.start_stack;
  for (const mpnt of oldmm.vmas) {
    if (mpnt.vm_flags & VM_DONTCOPY) {
      vm_stat_account(mm, mpnt.vm_flags, -(mpnt.vm_end - mpnt.vm_start) / 4096);
      continue;
    }
    const tmp = vm_area_dup(mpnt);
    tmp.vm_mm = mm;
    if (tmp.vm_flags & VM_WIPEONFORK) tmp.anon_vma = null;
    else if (anon_vma_fork(tmp, mpnt)) {
      retval = -ENOMEM;
      break;
    }
    tmp.vm_flags &= ~VM_LOCKED;
    if (tmp.vm_file) get_file(tmp.vm_file as file);
    vma_link(mm, tmp);
    if (!(tmp.vm_flags & VM_WIPEONFORK)) retval = await copy_page_range(tmp, mpnt);
    tmp.vm_ops?.open?.(tmp);
    if (retval) break;
  }
  mmap_write_unlock(mm);
  flush_tlb_mm(oldmm);
  mmap_write_unlock(oldmm);
  return retval;
}

/**
 * dup_mm(tsk, oldmm): the child's address space for fork(); null (-ENOMEM) on failure, after
 * tearing down whatever was copied.
 */
export async function dup_mm(oldmm: mm_struct): Promise<mm_struct | null> {
  using _ = ftrace(oldmm.k, "dup_mm");
  const mm = mm_alloc(oldmm.k);
  if (!mm) return null;
  const err = await dup_mmap(mm, oldmm);
  if (err) {
    await mmput(mm);
    return null;
  }
  return mm;
}

// ---- the task side of kernel/fork.c: copy_process() and kernel_clone() ------------------------
// (fs/runtime engineer) A new task copies or shares the parent's address space and file table
// as clone_flags say; kemu has no signal handlers, credentials or namespaces to copy.

export const CSIGNAL = 0x000000ff;
export const CLONE_VM = 0x00000100;
export const CLONE_FS = 0x00000200;
export const CLONE_FILES = 0x00000400;
export const CLONE_SIGHAND = 0x00000800;
export const CLONE_PARENT = 0x00008000;
export const CLONE_THREAD = 0x00010000;
export const SIGCHLD = 17;

/** copy_files(): share the table (CLONE_FILES) or copy it. */
function copy_files(clone_flags: number, tsk: task_struct, parent: task_struct): void {
  const oldf = parent.files;
  if (!oldf) return;
  if (clone_flags & CLONE_FILES) {
    oldf.count++;
    tsk.files = oldf;
  } else {
    tsk.files = dup_fd(oldf);
  }
}

/** copy_mm(): share the address space (CLONE_VM: a thread) or duplicate it (fork). */
async function copy_mm(clone_flags: number, tsk: task_struct, parent: task_struct): Promise<number> {
  const oldmm = parent.mm as mm_struct | null;
  if (!oldmm) return 0;
  using _ = ftrace(oldmm.k, "copy_mm");
  if (clone_flags & CLONE_VM) {
    mmget(oldmm);
    tsk.mm = oldmm;
    return 0;
  }
  const mm = await dup_mm(oldmm);
  if (!mm) return -ENOMEM;
  mm.owner_pid = tsk.tgid;
  tsk.mm = mm;
  return 0;
}

/**
 * copy_process(): a new user task cloned from `parent` (the current task for fork/clone; the
 * runtime passes a process's main task when it adds a thread). Returns the task or -errno.
 */
export async function copy_process(k: Kernel, parent: task_struct, clone_flags: number): Promise<task_struct | number> {
  using _ = ftrace(k, "copy_process");
  if ((clone_flags & CLONE_THREAD) && !(clone_flags & CLONE_SIGHAND)) return -EINVAL;
  if ((clone_flags & CLONE_SIGHAND) && !(clone_flags & CLONE_VM)) return -EINVAL;
  if (parent.kind !== "user" || parent.flags & PF_EXITING) return -EINVAL;
  const p = k.sched.alloc_task(parent.comm, "user", clone_flags & CLONE_THREAD ? parent.tgid : undefined);
  p.real_parent = clone_flags & (CLONE_PARENT | CLONE_THREAD) ? parent.real_parent : parent;
  p.make_it_fail = parent.make_it_fail;
  copy_files(clone_flags, p, parent);
  const err = await copy_mm(clone_flags, p, parent);
  if (err) {
    await exit_files(p);
    k.sched.release_task(p);
    return err;
  }
  trace_task_newtask.trace(k, { pid: p.pid, comm: p.comm, clone_flags, oom_score_adj: 0 });
  return p;
}

/** kernel_clone(): fork/clone from the current task; the child's pid or -errno. */
export async function kernel_clone(k: Kernel, clone_flags: number): Promise<number> {
  using _ = ftrace(k, "kernel_clone");
  const p = await copy_process(k, k.current, clone_flags);
  return typeof p === "number" ? p : p.pid;
}

/**
 * kemu: a new process with an empty address space and an empty file table — what a fork from
 * init followed by execve() of a program that maps nothing leaves. Machine.spawn() uses it.
 */
export function create_user_process(k: Kernel, comm: string): task_struct | number {
  const mm = mm_alloc(k);
  if (!mm) return -ENOMEM;
  const t = k.sched.alloc_task(comm, "user");
  mm.owner_pid = t.tgid;
  t.mm = mm;
  t.files = new files_struct();
  return t;
}

/**
 * get_task_mm(): the task's address space with a user reference (mmget), or null for a kernel
 * thread or a task whose mm is already gone (exit_mm cleared it). The caller mmput()s it.
 */
export function get_task_mm(task: task_struct): mm_struct | null {
  const mm = task.mm as mm_struct | null;
  if (!mm || task.flags & PF_KTHREAD) return null;
  mmget(mm);
  return mm;
}

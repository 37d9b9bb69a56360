// Mirrors include/linux/mmap_lock.h (Linux 6.8): the mmap_lock wrappers around the mm's
// rw_semaphore ("&mm->mmap_lock"). Readers: faults, page walks, hmm_range_fault, migrate_vma_*.
// Writers: VMA changes (mmap, munmap, mprotect), mmu_notifier_register.

import type { mm_struct } from "./mm_types.ts";
import {
  down_read, down_read_killable, down_read_trylock, up_read, down_write, down_write_killable, down_write_nested, up_write,
  downgrade_write, rwsem_is_locked,
} from "../../kernel/locking/rwsem.ts";
import { lockdep_assert_held, lockdep_assert_held_write } from "../../kernel/locking/lockdep.ts";

export async function mmap_read_lock(mm: mm_struct): Promise<void> {
  await down_read(mm.mmap_lock);
}

/** 0, or -EINTR when a fatal signal arrives while waiting. */
export async function mmap_read_lock_killable(mm: mm_struct): Promise<number> {
  return down_read_killable(mm.mmap_lock);
}

export function mmap_read_trylock(mm: mm_struct): boolean {
  return down_read_trylock(mm.mmap_lock);
}

export function mmap_read_unlock(mm: mm_struct): void {
  up_read(mm.mmap_lock);
}

export async function mmap_write_lock(mm: mm_struct): Promise<void> {
  await down_write(mm.mmap_lock);
}

/** mmap_write_lock_nested(): a second mm's lock while holding one (dup_mmap). */
export async function mmap_write_lock_nested(mm: mm_struct, subclass: number): Promise<void> {
  await down_write_nested(mm.mmap_lock, subclass);
}

export async function mmap_write_lock_killable(mm: mm_struct): Promise<number> {
  return down_write_killable(mm.mmap_lock);
}

export function mmap_write_unlock(mm: mm_struct): void {
  up_write(mm.mmap_lock);
}

/** mmap_write_downgrade(): keep the lock, as a reader. */
export function mmap_write_downgrade(mm: mm_struct): void {
  downgrade_write(mm.mmap_lock);
}

/** mmap_assert_locked(): the caller holds mmap_lock in either mode. */
export function mmap_assert_locked(mm: mm_struct): void {
  lockdep_assert_held(mm.mmap_lock);
  mm.k.WARN_ON_ONCE(!rwsem_is_locked(mm.mmap_lock), "mmap_assert_locked: mmap_lock not held");
}

export function mmap_assert_write_locked(mm: mm_struct): void {
  lockdep_assert_held_write(mm.mmap_lock);
}

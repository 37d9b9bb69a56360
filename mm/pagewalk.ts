// Mirrors mm/pagewalk.c and include/linux/pagewalk.h (Linux 6.8): the generic page-table walker
// (walk_page_range) that hmm_range_fault and migrate_vma_collect are built on. Entry pointers are
// physical addresses of entries in emulated RAM (read them with ptep_get(walk.mm.k, p)).
// pte_entry runs with the PT lock held and must be synchronous; the other callbacks may sleep
// (hmm's pmd_entry calls handle_mm_fault) and so may return a Promise.

import type { mm_struct, vm_area_struct } from "../include/linux/mm_types.ts";
import { EINVAL } from "../include/uapi/asm-generic/errno.ts";
import { VM_PFNMAP } from "../include/linux/mm.ts";
import {
  pgd_offset, p4d_offset, pud_offset, pmd_offset, pmdp_get, pudp_get, p4dp_get, pmd_none, pud_none, p4d_none,
} from "../arch/x86/include/asm/pgtable.ts";
import { PGDIR_SIZE, PUD_SIZE, PMD_SIZE } from "../arch/x86/include/asm/pgtable_types.ts";
import { pte_offset_map_lock, pte_unmap_unlock } from "./pgtable-generic.ts";
import { find_vma } from "./mmap.ts";
import { mmap_assert_locked, mmap_assert_write_locked } from "../include/linux/mmap_lock.ts";

const PAGE_SIZE = 4096;

type MaybeAsync<T> = T | Promise<T>;

// enum page_walk_action
export const ACTION_SUBTREE = 0;
export const ACTION_CONTINUE = 1;
export const ACTION_AGAIN = 2;

// enum page_walk_lock
export const PGWALK_RDLOCK = 0;
export const PGWALK_WRLOCK = 1;
export const PGWALK_WRLOCK_VERIFY = 2;

export interface mm_walk_ops {
  pgd_entry?(pgd: number, addr: number, next: number, walk: mm_walk): MaybeAsync<number>;
  p4d_entry?(p4d: number, addr: number, next: number, walk: mm_walk): MaybeAsync<number>;
  pud_entry?(pud: number, addr: number, next: number, walk: mm_walk): MaybeAsync<number>;
  pmd_entry?(pmd: number, addr: number, next: number, walk: mm_walk): MaybeAsync<number>;
  /** Called for every PTE slot (none ones included) with the PT lock held. */
  pte_entry?(pte: number, addr: number, next: number, walk: mm_walk): number;
  /** depth: -1 no VMA, 0 pgd, 1 p4d, 2 pud, 3 pmd. */
  pte_hole?(addr: number, next: number, depth: number, walk: mm_walk): MaybeAsync<number>;
  /** 0 walk the VMA, 1 skip it, < 0 abort with that error. */
  test_walk?(addr: number, next: number, walk: mm_walk): MaybeAsync<number>;
  pre_vma?(start: number, end: number, walk: mm_walk): MaybeAsync<number>;
  post_vma?(walk: mm_walk): void;
  walk_lock?: number;
}

export class mm_walk {
  vma: vm_area_struct | null = null;
  action = ACTION_SUBTREE;
  no_vma = false;
  constructor(
    readonly ops: mm_walk_ops,
    readonly mm: mm_struct,
    /** The walk's private data (walk->private). */
    readonly private_: unknown,
  ) {}
}

async function call<T>(r: MaybeAsync<T>): Promise<T> {
  return r instanceof Promise ? await r : r;
}

function boundary(addr: number, size: number, end: number): number {
  return Math.min(end, (Math.floor(addr / size) + 1) * size);
}

function walk_pte_range(pmd: number, addr: number, end: number, walk: mm_walk): number {
  const l = pte_offset_map_lock(walk.mm, pmd, addr);
  if (!l) {
    walk.action = ACTION_AGAIN;
    return 0;
  }
  let err = 0;
  try {
    for (let a = addr, pte = l.pte; a < end; a += PAGE_SIZE, pte += 8) {
      err = walk.ops.pte_entry!(pte, a, a + PAGE_SIZE, walk);
      if (err) break;
    }
  } finally {
    pte_unmap_unlock(l.pte, l.ptl);
  }
  return err;
}

async function walk_pmd_range(pud: number, addr: number, end: number, walk: mm_walk): Promise<number> {
  const ops = walk.ops;
  const k = walk.mm.k;
  let err = 0;
  for (let next: number; addr < end; addr = next) {
    next = boundary(addr, PMD_SIZE, end);
    const pmd = pmd_offset(k, pud, addr);
    for (;;) {
      if (pmd_none(pmdp_get(k, pmd))) {
        if (ops.pte_hole) err = await call(ops.pte_hole(addr, next, 3, walk));
        break;
      }
      walk.action = ACTION_SUBTREE;
      if (ops.pmd_entry) err = await call(ops.pmd_entry(pmd, addr, next, walk));
      if (err) break;
      if (walk.action === ACTION_AGAIN) continue;
      if (walk.action === ACTION_CONTINUE || !ops.pte_entry) break;
      err = walk_pte_range(pmd, addr, next, walk);
      if (err || walk.action !== ACTION_AGAIN) break;
    }
    if (err) break;
  }
  return err;
}

async function walk_pud_range(p4d: number, addr: number, end: number, walk: mm_walk): Promise<number> {
  const ops = walk.ops;
  const k = walk.mm.k;
  let err = 0;
  for (let next: number; addr < end; addr = next) {
    next = boundary(addr, PUD_SIZE, end);
    const pud = pud_offset(k, p4d, addr);
    if (pud_none(pudp_get(k, pud))) {
      if (ops.pte_hole) err = await call(ops.pte_hole(addr, next, 2, walk));
      if (err) break;
      continue;
    }
    walk.action = ACTION_SUBTREE;
    if (ops.pud_entry) err = await call(ops.pud_entry(pud, addr, next, walk));
    if (err) break;
    if (walk.action === ACTION_CONTINUE) continue;
    if (ops.pmd_entry || ops.pte_entry) err = await walk_pmd_range(pud, addr, next, walk);
    if (err) break;
  }
  return err;
}

async function walk_pgd_range(addr: number, end: number, walk: mm_walk): Promise<number> {
  const ops = walk.ops;
  const k = walk.mm.k;
  let err = 0;
  for (let next: number; addr < end; addr = next) {
    next = boundary(addr, PGDIR_SIZE, end);
    const pgd = pgd_offset(walk.mm, addr);
    const p4d = p4d_offset(pgd, addr);
    if (p4d_none(p4dp_get(k, p4d))) {
      if (ops.pte_hole) err = await call(ops.pte_hole(addr, next, 0, walk));
      if (err) break;
      continue;
    }
    if (ops.pgd_entry) err = await call(ops.pgd_entry(pgd, addr, next, walk));
    if (!err && ops.p4d_entry) err = await call(ops.p4d_entry(p4d, addr, next, walk));
    if (err) break;
    if (ops.pud_entry || ops.pmd_entry || ops.pte_entry) err = await walk_pud_range(p4d, addr, next, walk);
    if (err) break;
  }
  return err;
}

async function __walk_page_range(start: number, end: number, walk: mm_walk): Promise<number> {
  const ops = walk.ops;
  if (ops.pre_vma) {
    const err = await call(ops.pre_vma(start, end, walk));
    if (err) return err;
  }
  const err = await walk_pgd_range(start, end, walk);
  ops.post_vma?.(walk);
  return err;
}

/** walk_page_test(): test_walk, or skip VM_PFNMAP VMAs (reporting them as a hole). */
async function walk_page_test(start: number, end: number, walk: mm_walk): Promise<number> {
  const ops = walk.ops;
  if (ops.test_walk) return call(ops.test_walk(start, end, walk));
  if (walk.vma!.vm_flags & VM_PFNMAP) {
    const err = ops.pte_hole ? await call(ops.pte_hole(start, end, -1, walk)) : 0;
    return err ? err : 1;
  }
  return 0;
}

function process_mm_walk_lock(mm: mm_struct, walk_lock: number): void {
  if (walk_lock === PGWALK_RDLOCK) mmap_assert_locked(mm);
  else mmap_assert_write_locked(mm);
}

/**
 * walk_page_range(mm, start, end, ops, private): walk [start, end) VMA by VMA; gaps without a
 * VMA go to pte_hole(depth -1). mmap_lock must be held. Returns 0 or the first non-zero
 * callback result.
 */
export async function walk_page_range(mm: mm_struct, start: number, end: number, ops: mm_walk_ops, private_: unknown = null): Promise<number> {
  if (start >= end) return -EINVAL;
  const walk = new mm_walk(ops, mm, private_);
  process_mm_walk_lock(mm, ops.walk_lock ?? PGWALK_RDLOCK);
  let vma = find_vma(mm, start);
  let err = 0;
  for (let next: number; start < end; start = next) {
    if (!vma || start < vma.vm_start) {
      walk.vma = null;
      next = vma ? Math.min(end, vma.vm_start) : end;
      if (ops.pte_hole) err = await call(ops.pte_hole(start, next, -1, walk));
    } else {
      walk.vma = vma;
      next = Math.min(end, vma.vm_end);
      vma = find_vma(mm, vma.vm_end);
      err = await walk_page_test(start, next, walk);
      if (err > 0) {
        err = 0;
        continue;
      }
      if (err < 0) break;
      err = await __walk_page_range(start, next, walk);
    }
    if (err) break;
  }
  return err;
}

/** walk_page_vma(vma, ops, private): the whole VMA. */
export async function walk_page_vma(vma: vm_area_struct, ops: mm_walk_ops, private_: unknown = null): Promise<number> {
  const walk = new mm_walk(ops, vma.vm_mm, private_);
  process_mm_walk_lock(vma.vm_mm, ops.walk_lock ?? PGWALK_RDLOCK);
  walk.vma = vma;
  const err = await walk_page_test(vma.vm_start, vma.vm_end, walk);
  if (err > 0) return 0;
  if (err < 0) return err;
  return __walk_page_range(vma.vm_start, vma.vm_end, walk);
}

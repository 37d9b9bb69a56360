// KUnit suite for the address-space side of mm: anonymous faults (zero page then a private
// page), fork's copy-on-write isolation, mprotect → SIGSEGV naming the address, the mmap /
// munmap / mprotect / madvise argument errnos, MADV_DONTNEED re-zeroing, stack growth,
// /proc/<pid>/maps and pagemap content, copy_{from,to}_user and teardown accounting.

import {
  KUNIT_CASE, KUNIT_CASE_PARAM, KUNIT_ARRAY_PARAM, KUNIT_EXPECT_EQ, KUNIT_EXPECT_TRUE, KUNIT_EXPECT_FALSE, KUNIT_ASSERT_TRUE,
  KUNIT_ASSERT_EQ, KUNIT_ASSERT_GE, kunit_skip, type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";
import type { mm_struct } from "../../../include/linux/mm_types.ts";
import { MM_ANONPAGES } from "../../../include/linux/mm_types.ts";
import { PAGE_SIZE, TASK_SIZE, is_zero_pfn, VM_GROWSDOWN, VM_READ, VM_WRITE, VM_MAYREAD, VM_MAYWRITE, VM_MAYEXEC } from "../../../include/linux/mm.ts";
import { EINVAL, ENOMEM, EEXIST, EBADF } from "../../../include/uapi/asm-generic/errno.ts";
import {
  PROT_READ, PROT_WRITE, PROT_EXEC, PROT_NONE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE,
  MAP_POPULATE, MAP_SHARED_VALIDATE, MADV_DONTNEED, MADV_FREE, MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED,
  MADV_HUGEPAGE, MADV_DONTFORK,
} from "../../../include/uapi/asm-generic/mman.ts";
import { vm_mmap_pgoff, sys_munmap, sys_mmap, find_vma, vma_lookup, vm_area_alloc, vma_link, MMAP_BASE } from "../../../mm/mmap.ts";
import { sys_mprotect } from "../../../mm/mprotect.ts";
import { sys_madvise } from "../../../mm/madvise.ts";
import { dup_mm, mmput } from "../../../kernel/fork.ts";
import { cpu_user_read, cpu_user_write, SigError, SIGSEGV, SEGV_ACCERR, SEGV_MAPERR } from "../../../arch/x86/mm/fault.ts";
import { copy_from_user, copy_to_user } from "../../../arch/x86/lib/usercopy_64.ts";
import { show_map, pagemap_read, PM_PRESENT_BIT } from "../../../fs/proc/task_mmu.ts";
import { pte_pfn, pte_write } from "../../../arch/x86/include/asm/pgtable.ts";
import { PAGE_ALLOC, SHMEM } from "../../../kernel/tokens.ts";
import { fput } from "../../../fs/file_table.ts";
import type { file } from "../../../include/linux/fs.ts";
import { mmap_write_lock, mmap_write_unlock } from "../../../include/linux/mmap_lock.ts";
import { new_mm, anon_map, pte_of } from "./util.ts";

async function as_user<T>(test: kunit, mm: mm_struct, fn: () => Promise<T>): Promise<T> {
  const t = test.k.current;
  const old = t.mm;
  t.mm = mm;
  try {
    return await fn();
  } finally {
    t.mm = old;
  }
}

const rd = (test: kunit, mm: mm_struct, a: number, n: number) => as_user(test, mm, () => cpu_user_read(test.k, a, n));
const wr = (test: kunit, mm: mm_struct, a: number, b: number[]) => as_user(test, mm, () => cpu_user_write(test.k, a, new Uint8Array(b)));

async function expect_sig(test: kunit, p: Promise<unknown>, signo: number, code: number, addr: number): Promise<void> {
  try {
    await p;
    KUNIT_ASSERT_TRUE(test, false, "the access should have raised a signal");
  } catch (e) {
    KUNIT_ASSERT_TRUE(test, e instanceof SigError, String(e));
    const s = e as SigError;
    KUNIT_EXPECT_EQ(test, s.signo, signo);
    KUNIT_EXPECT_EQ(test, s.si_code, code);
    KUNIT_EXPECT_EQ(test, s.addr, addr);
  }
}

async function zero_page_then_private_page(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const a = await anon_map(mm, 2);
  KUNIT_EXPECT_EQ(test, (await rd(test, mm, a + 10, 4)).every((b) => b === 0), true);
  const z = pte_of(mm, a)!;
  KUNIT_EXPECT_TRUE(test, is_zero_pfn(pte_pfn(z)), "a read fault maps the zero page");
  KUNIT_EXPECT_FALSE(test, pte_write(z));
  KUNIT_EXPECT_EQ(test, mm.rss_stat[MM_ANONPAGES], 0);
  await wr(test, mm, a + 10, [5, 6]);
  const w = pte_of(mm, a)!;
  KUNIT_EXPECT_FALSE(test, is_zero_pfn(pte_pfn(w)), "the write fault replaces it with a private page");
  KUNIT_EXPECT_TRUE(test, pte_write(w));
  KUNIT_EXPECT_EQ(test, Array.from(await rd(test, mm, a + 9, 4)).join(","), "0,5,6,0");
  KUNIT_EXPECT_EQ(test, mm.rss_stat[MM_ANONPAGES], 1);
  KUNIT_EXPECT_TRUE(test, test.k.current.min_flt >= 2);
  await mmput(mm);
}

async function fork_cow_isolation(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const a = await anon_map(mm, 3);
  await wr(test, mm, a, [1]);
  await wr(test, mm, a + PAGE_SIZE, [2]);
  const child = (await dup_mm(mm))!;
  KUNIT_EXPECT_EQ(test, pte_pfn(pte_of(child, a)!), pte_pfn(pte_of(mm, a)!), "fork shares the page");
  KUNIT_EXPECT_FALSE(test, pte_write(pte_of(mm, a)!), "and write-protects the parent");
  await wr(test, mm, a, [10]);
  await wr(test, child, a, [20]);
  await wr(test, child, a + 2 * PAGE_SIZE, [30]);
  KUNIT_EXPECT_EQ(test, (await rd(test, mm, a, 1))[0], 10);
  KUNIT_EXPECT_EQ(test, (await rd(test, child, a, 1))[0], 20);
  KUNIT_EXPECT_EQ(test, (await rd(test, mm, a + PAGE_SIZE, 1))[0], 2);
  KUNIT_EXPECT_EQ(test, (await rd(test, child, a + PAGE_SIZE, 1))[0], 2);
  KUNIT_EXPECT_EQ(test, (await rd(test, mm, a + 2 * PAGE_SIZE, 1))[0], 0);
  await mmput(child);
  // The parent is the only mapper left: its next write reuses the page in place.
  const before = pte_pfn(pte_of(mm, a + PAGE_SIZE)!);
  await wr(test, mm, a + PAGE_SIZE, [3]);
  KUNIT_EXPECT_EQ(test, pte_pfn(pte_of(mm, a + PAGE_SIZE)!), before);
  await mmput(mm);
}

async function mprotect_makes_writes_segfault(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const a = await anon_map(mm, 4);
  await wr(test, mm, a + 2 * PAGE_SIZE, [1]);
  KUNIT_ASSERT_EQ(test, await sys_mprotect(mm, a + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ), 0);
  await expect_sig(test, wr(test, mm, a + 2 * PAGE_SIZE + 17, [2]), SIGSEGV, SEGV_ACCERR, a + 2 * PAGE_SIZE + 17);
  KUNIT_EXPECT_EQ(test, (await rd(test, mm, a + 2 * PAGE_SIZE, 1))[0], 1, "reads still work");
  await wr(test, mm, a + 3 * PAGE_SIZE, [4]);
  KUNIT_EXPECT_EQ(test, mm.vmas.length, 3, "the VMA was split around the read-only page");
  KUNIT_ASSERT_EQ(test, await sys_mprotect(mm, a, 4 * PAGE_SIZE, PROT_NONE), 0);
  await expect_sig(test, rd(test, mm, a + 5, 1), SIGSEGV, SEGV_ACCERR, a + 5);
  KUNIT_ASSERT_EQ(test, await sys_mprotect(mm, a, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE), 0);
  KUNIT_EXPECT_EQ(test, mm.vmas.length, 1, "and merged back");
  KUNIT_EXPECT_EQ(test, (await rd(test, mm, a + 3 * PAGE_SIZE, 1))[0], 4);
  await expect_sig(test, rd(test, mm, 0x1000, 1), SIGSEGV, SEGV_MAPERR, 0x1000);
  KUNIT_EXPECT_TRUE(test, test.machine.dmesg().some((l) => l.includes(`segfault at ${(a + 2 * PAGE_SIZE + 17).toString(16)}`)));
  await mmput(mm);
}

interface errno_case {
  name: string;
  run: (mm: mm_struct, a: number) => Promise<number>;
  want: number;
  /** The kernel applies the change to the VMAs before it finds the hole (a documented quirk). */
  partial?: boolean;
}

const P = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const ERRNO_CASES: errno_case[] = [
  { name: "munmap unaligned", run: (mm, a) => sys_munmap(mm, a + 1, PAGE_SIZE), want: -EINVAL },
  { name: "munmap zero length", run: (mm, a) => sys_munmap(mm, a, 0), want: -EINVAL },
  { name: "munmap wraps", run: (mm) => sys_munmap(mm, TASK_SIZE - PAGE_SIZE, 4 * PAGE_SIZE), want: -EINVAL },
  { name: "munmap beyond TASK_SIZE", run: (mm) => sys_munmap(mm, TASK_SIZE + PAGE_SIZE, PAGE_SIZE), want: -EINVAL },
  { name: "munmap nothing mapped", run: (mm) => sys_munmap(mm, 0x10000, PAGE_SIZE), want: 0 },
  { name: "mmap zero length", run: (mm) => vm_mmap_pgoff(mm, null, 0, 0, P, ANON, 0), want: -EINVAL },
  { name: "mmap no type", run: (mm) => vm_mmap_pgoff(mm, null, 0, PAGE_SIZE, P, MAP_ANONYMOUS, 0), want: -EINVAL },
  { name: "mmap anon shared_validate", run: (mm) => vm_mmap_pgoff(mm, null, 0, PAGE_SIZE, P, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, 0), want: -EINVAL },
  { name: "mmap fixed unaligned", run: (mm) => vm_mmap_pgoff(mm, null, 0x10001, PAGE_SIZE, P, ANON | MAP_FIXED, 0), want: -EINVAL },
  { name: "mmap too long", run: (mm) => vm_mmap_pgoff(mm, null, 0, TASK_SIZE + PAGE_SIZE, P, ANON, 0), want: -ENOMEM },
  { name: "mmap fixed past TASK_SIZE", run: (mm) => vm_mmap_pgoff(mm, null, TASK_SIZE - PAGE_SIZE, 2 * PAGE_SIZE, P, ANON | MAP_FIXED, 0), want: -ENOMEM },
  { name: "mmap fixed_noreplace busy", run: (mm, a) => vm_mmap_pgoff(mm, null, a, PAGE_SIZE, P, ANON | MAP_FIXED_NOREPLACE, 0), want: -EEXIST },
  { name: "mmap bad fd", run: (mm) => sys_mmap(mm.k, mm, 0, PAGE_SIZE, P, MAP_PRIVATE, 99, 0), want: -EBADF },
  { name: "mmap unaligned offset", run: (mm) => sys_mmap(mm.k, mm, 0, PAGE_SIZE, P, ANON, -1, 5), want: -EINVAL },
  { name: "mprotect unaligned", run: (mm, a) => sys_mprotect(mm, a + 8, PAGE_SIZE, PROT_READ), want: -EINVAL },
  { name: "mprotect zero length", run: (mm, a) => sys_mprotect(mm, a, 0, PROT_READ), want: 0 },
  { name: "mprotect bad prot", run: (mm, a) => sys_mprotect(mm, a, PAGE_SIZE, 0x40), want: -EINVAL },
  { name: "mprotect hole", run: (mm, a) => sys_mprotect(mm, a, 8 * PAGE_SIZE, PROT_READ), want: -ENOMEM, partial: true },
  { name: "mprotect unmapped", run: (mm) => sys_mprotect(mm, 0x10000, PAGE_SIZE, PROT_READ), want: -ENOMEM },
  { name: "mprotect wrap", run: (mm, a) => sys_mprotect(mm, a, 2 ** 64 - a, PROT_READ), want: -ENOMEM },
  { name: "madvise bad advice", run: (mm, a) => sys_madvise(mm, a, PAGE_SIZE, 999), want: -EINVAL },
  { name: "madvise unaligned", run: (mm, a) => sys_madvise(mm, a + 1, PAGE_SIZE, MADV_DONTNEED), want: -EINVAL },
  { name: "madvise hugepage (no THP)", run: (mm, a) => sys_madvise(mm, a, PAGE_SIZE, MADV_HUGEPAGE), want: -EINVAL },
  { name: "madvise hole", run: (mm, a) => sys_madvise(mm, a, 8 * PAGE_SIZE, MADV_WILLNEED), want: -ENOMEM },
  { name: "madvise empty", run: (mm, a) => sys_madvise(mm, a, 0, MADV_DONTNEED), want: 0 },
  { name: "madvise normal/random/sequential", run: async (mm, a) => (await sys_madvise(mm, a, PAGE_SIZE, MADV_RANDOM)) || (await sys_madvise(mm, a, PAGE_SIZE, MADV_SEQUENTIAL)) || sys_madvise(mm, a, PAGE_SIZE, MADV_NORMAL), want: 0 },
];

/** Each bad call returns the kernel's errno and leaves the mapping and its data unchanged. */
async function syscall_errnos(test: kunit): Promise<void> {
  const c = test.param_value as errno_case;
  const mm = new_mm(test.k);
  const a = await anon_map(mm, 4);
  await wr(test, mm, a, [42]);
  const before = mm.vmas.map((v) => `${v.vm_start}-${v.vm_end}:${v.vm_flags}`).join(";");
  const ret = await as_user(test, mm, () => c.run(mm, a));
  KUNIT_EXPECT_EQ(test, ret, c.want, c.name);
  if (c.want !== 0 && !c.partial) KUNIT_EXPECT_EQ(test, mm.vmas.map((v) => `${v.vm_start}-${v.vm_end}:${v.vm_flags}`).join(";"), before);
  KUNIT_EXPECT_EQ(test, (await rd(test, mm, a, 1))[0], 42);
  await mmput(mm);
}

async function munmap_splits_and_faults(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const a = await anon_map(mm, 4);
  for (let i = 0; i < 4; i++) await wr(test, mm, a + i * PAGE_SIZE, [i + 1]);
  KUNIT_ASSERT_EQ(test, await sys_munmap(mm, a + PAGE_SIZE, 2 * PAGE_SIZE - 100), 0);
  KUNIT_EXPECT_EQ(test, mm.vmas.length, 2);
  await expect_sig(test, rd(test, mm, a + 2 * PAGE_SIZE, 1), SIGSEGV, SEGV_MAPERR, a + 2 * PAGE_SIZE);
  KUNIT_EXPECT_EQ(test, (await rd(test, mm, a + 3 * PAGE_SIZE, 1))[0], 4);
  KUNIT_EXPECT_EQ(test, mm.rss_stat[MM_ANONPAGES], 2);
  await mmput(mm);
}

async function madvise_dontneed_rezeroes(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const a = await anon_map(mm, 2);
  await wr(test, mm, a, [7, 7]);
  await wr(test, mm, a + PAGE_SIZE, [8]);
  KUNIT_ASSERT_EQ(test, await sys_madvise(mm, a, PAGE_SIZE, MADV_DONTNEED), 0);
  KUNIT_EXPECT_EQ(test, Array.from(await rd(test, mm, a, 2)).join(","), "0,0");
  KUNIT_EXPECT_EQ(test, (await rd(test, mm, a + PAGE_SIZE, 1))[0], 8);
  KUNIT_EXPECT_EQ(test, mm.rss_stat[MM_ANONPAGES], 1);
  // MADV_FREE keeps data until reclaim (kemu never reclaims); a new write is kept too.
  KUNIT_ASSERT_EQ(test, await sys_madvise(mm, a + PAGE_SIZE, PAGE_SIZE, MADV_FREE), 0);
  await wr(test, mm, a + PAGE_SIZE + 1, [9]);
  KUNIT_EXPECT_EQ(test, Array.from(await rd(test, mm, a + PAGE_SIZE, 2)).join(","), "8,9");
  await mmput(mm);
}

async function populate_and_dontfork(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const a = await vm_mmap_pgoff(mm, null, 0, 4 * PAGE_SIZE, P, ANON | MAP_POPULATE, 0);
  KUNIT_ASSERT_GE(test, a, 0);
  KUNIT_EXPECT_EQ(test, mm.rss_stat[MM_ANONPAGES], 4, "MAP_POPULATE faults every page in");
  KUNIT_ASSERT_EQ(test, await sys_madvise(mm, a, 2 * PAGE_SIZE, MADV_DONTFORK), 0);
  const child = (await dup_mm(mm))!;
  KUNIT_EXPECT_EQ(test, child.vmas.length, 1, "the DONTFORK half is not copied");
  KUNIT_EXPECT_EQ(test, child.vmas[0]!.vm_start, a + 2 * PAGE_SIZE);
  await mmput(child);
  await mmput(mm);
}

/** MAP_SHARED|MAP_ANONYMOUS is shmem-backed: fork shares the pages, both sides see writes. */
async function shared_anon_survives_fork(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const a = await vm_mmap_pgoff(mm, null, 0, 2 * PAGE_SIZE, P, MAP_SHARED | MAP_ANONYMOUS, 0);
  if (a === -ENOMEM) {
    await mmput(mm);
    kunit_skip(test, "no tmpfs service on this machine");
  }
  KUNIT_ASSERT_GE(test, a, 0);
  await wr(test, mm, a, [1]);
  const child = (await dup_mm(mm))!;
  await wr(test, child, a, [2]);
  await wr(test, child, a + PAGE_SIZE, [3]);
  KUNIT_EXPECT_EQ(test, (await rd(test, mm, a, 1))[0], 2, "the parent sees the child's write");
  KUNIT_EXPECT_EQ(test, (await rd(test, mm, a + PAGE_SIZE, 1))[0], 3);
  KUNIT_EXPECT_TRUE(test, (await show_map(mm)).includes("/dev/zero (deleted)"));
  await mmput(child);
  await mmput(mm);
}

/**
 * File mappings through ->mmap / vm_ops->fault (a tmpfs file): MAP_SHARED writes reach the page
 * cache and other mappings; MAP_PRIVATE reads the file and copies on write without touching it.
 */
async function file_mapping_faults(test: kunit): Promise<void> {
  const k = test.k;
  const sh = test.machine.symbol(SHMEM);
  const f = sh.shmem_file_setup("kunit-file", 2 * PAGE_SIZE, 0);
  if (typeof f === "number") kunit_skip(test, `shmem_file_setup: ${f}`);
  const mm = new_mm(k);
  const s = await vm_mmap_pgoff(mm, f, 0, 2 * PAGE_SIZE, P, MAP_SHARED, 0);
  const p = await vm_mmap_pgoff(mm, f, 0, 2 * PAGE_SIZE, P, MAP_PRIVATE, 0);
  KUNIT_ASSERT_GE(test, s, 0);
  KUNIT_ASSERT_GE(test, p, 0);
  await wr(test, mm, s + 5, [0x11]);
  KUNIT_EXPECT_EQ(test, (await rd(test, mm, p + 5, 1))[0], 0x11, "a private mapping reads the file");
  KUNIT_EXPECT_FALSE(test, pte_write(pte_of(mm, p)!), "mapped read-only until the first write");
  await wr(test, mm, p + 5, [0x22]);
  KUNIT_EXPECT_EQ(test, (await rd(test, mm, s + 5, 1))[0], 0x11, "the COW copy does not reach the file");
  KUNIT_EXPECT_EQ(test, (await rd(test, mm, p + 5, 1))[0], 0x22);
  await wr(test, mm, s + PAGE_SIZE, [0x33]);
  KUNIT_EXPECT_EQ(test, (await rd(test, mm, p + PAGE_SIZE, 1))[0], 0x33);
  KUNIT_EXPECT_TRUE(test, (await show_map(mm)).includes("kunit-file"));
  await mmput(mm);
  fput(f as file);
}

async function stack_grows_down(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const top = MMAP_BASE - 16 * 1024 * 1024;
  const vma = vm_area_alloc(mm);
  vma.vm_start = top - PAGE_SIZE;
  vma.vm_end = top;
  vma.vm_flags = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_GROWSDOWN;
  vma.vm_pgoff = vma.vm_start / PAGE_SIZE;
  vma.vm_page_prot = { lo: 0x27, hi: 0x80000000 };
  await mmap_write_lock(mm);
  vma_link(mm, vma);
  mmap_write_unlock(mm);
  mm.start_stack = top - 8;
  await wr(test, mm, top - 3 * PAGE_SIZE, [1]);
  KUNIT_EXPECT_EQ(test, vma.vm_start, top - 3 * PAGE_SIZE, "a fault below a growsdown VMA extends it");
  KUNIT_EXPECT_TRUE(test, (await show_map(mm)).includes("[stack]"));
  await mmput(mm);
}

async function proc_maps_and_pagemap(test: kunit): Promise<void> {
  const mm = new_mm(test.k);
  const a = await anon_map(mm, 2);
  await vm_mmap_pgoff(mm, null, a - 4 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_EXEC, ANON | MAP_FIXED, 0);
  await wr(test, mm, a + PAGE_SIZE, [1]);
  const maps = await show_map(mm);
  const hex = (v: number) => v.toString(16).padStart(8, "0");
  KUNIT_EXPECT_EQ(test, maps,
    `${hex(a - 4 * PAGE_SIZE)}-${hex(a - 3 * PAGE_SIZE)} r-xp 00000000 00:00 0 \n${hex(a)}-${hex(a + 2 * PAGE_SIZE)} rw-p 00000000 00:00 0 \n`);
  const buf = await pagemap_read(mm, (a / PAGE_SIZE) * 8, 16);
  KUNIT_ASSERT_TRUE(test, buf instanceof Uint8Array);
  const dv = new DataView((buf as Uint8Array).buffer);
  KUNIT_EXPECT_EQ(test, dv.getUint32(4, true) >>> (PM_PRESENT_BIT - 32), 0, "untouched page: not present");
  KUNIT_EXPECT_EQ(test, dv.getUint32(12, true) >>> (PM_PRESENT_BIT - 32), 1, "touched page: present");
  KUNIT_EXPECT_EQ(test, dv.getUint32(8, true) + (dv.getUint32(12, true) & 0x7fffff) * 2 ** 32, pte_pfn(pte_of(mm, a + PAGE_SIZE)!));
  KUNIT_EXPECT_EQ(test, await pagemap_read(mm, 4, 8), -EINVAL);
  await mmput(mm);
}

async function usercopy_faults_in_and_fixes_up(test: kunit): Promise<void> {
  const k = test.k;
  const mm = new_mm(k);
  const a = await anon_map(mm, 2);
  const out = new Uint8Array([1, 2, 3, 4]);
  KUNIT_EXPECT_EQ(test, await as_user(test, mm, () => copy_to_user(k, a + PAGE_SIZE - 2, out, 4)), 0);
  const back = new Uint8Array(4);
  KUNIT_EXPECT_EQ(test, await as_user(test, mm, () => copy_from_user(k, back, a + PAGE_SIZE - 2, 4)), 0);
  KUNIT_EXPECT_EQ(test, Array.from(back).join(","), "1,2,3,4");
  // Past the end of the mapping the copy stops: bytes not copied, the tail zeroed.
  const big = new Uint8Array(8).fill(0xff);
  KUNIT_EXPECT_EQ(test, await as_user(test, mm, () => copy_from_user(k, big, a + 2 * PAGE_SIZE - 4, 8)), 4);
  KUNIT_EXPECT_EQ(test, Array.from(big.subarray(4)).join(","), "0,0,0,0");
  KUNIT_ASSERT_EQ(test, await sys_mprotect(mm, a, PAGE_SIZE, PROT_READ), 0);
  KUNIT_EXPECT_EQ(test, await as_user(test, mm, () => copy_to_user(k, a, out, 4)), 4, "a read-only page refuses kernel writes");
  KUNIT_EXPECT_EQ(test, await as_user(test, mm, () => copy_to_user(k, TASK_SIZE, out, 4)), 4, "access_ok");
  await mmput(mm);
}

async function teardown_frees_everything(test: kunit): Promise<void> {
  const pa = test.machine.symbol(PAGE_ALLOC);
  const before = pa.nr_allocated_pages();
  const mm = new_mm(test.k);
  for (let i = 0; i < 3; i++) {
    const a = await anon_map(mm, 16);
    for (let j = 0; j < 16; j += 3) await wr(test, mm, a + j * PAGE_SIZE, [j]);
  }
  const child = (await dup_mm(mm))!;
  await wr(test, child, find_vma(child, 0)!.vm_start, [1]);
  KUNIT_EXPECT_TRUE(test, vma_lookup(child, find_vma(child, 0)!.vm_start) !== null);
  await mmput(mm);
  await mmput(child);
  KUNIT_EXPECT_EQ(test, pa.nr_allocated_pages(), before, "pages and page tables are all freed");
}

export const mm_memory_suite: kunit_suite = {
  name: "mm_memory",
  test_cases: [
    KUNIT_CASE(zero_page_then_private_page),
    KUNIT_CASE(fork_cow_isolation),
    KUNIT_CASE(mprotect_makes_writes_segfault),
    KUNIT_CASE_PARAM(syscall_errnos, KUNIT_ARRAY_PARAM(ERRNO_CASES, (c) => c.name)),
    KUNIT_CASE(munmap_splits_and_faults),
    KUNIT_CASE(madvise_dontneed_rezeroes),
    KUNIT_CASE(populate_and_dontfork),
    KUNIT_CASE(shared_anon_survives_fork),
    KUNIT_CASE(file_mapping_faults),
    KUNIT_CASE(stack_grows_down),
    KUNIT_CASE(proc_maps_and_pagemap),
    KUNIT_CASE(usercopy_faults_in_and_fixes_up),
    KUNIT_CASE(teardown_frees_everything),
  ],
};

// KUnit suite for the per-process memory files of procfs and for shared memory across fork,
// driven from kernel code: a user process is created, its mm mapped with vm_mmap_pgoff, and CPU
// loads/stores run in the process's own task. /proc/<pid>/maps lists the VMA, pagemap shows the
// page present once touched, and a MAP_SHARED|MAP_ANONYMOUS page (shmem) is the same page in
// parent and child after fork.

import { EINVAL } from "../../../include/uapi/asm-generic/errno.ts";
import { O_RDONLY } from "../../../include/uapi/asm-generic/fcntl.ts";
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from "../../../include/uapi/asm-generic/mman.ts";
import type { mm_struct } from "../../../include/linux/mm_types.ts";
import type { task_struct } from "../../../kernel/sched/core.ts";
import { copy_process, create_user_process, SIGCHLD } from "../../../kernel/fork.ts";
import { do_exit } from "../../../kernel/exit.ts";
import { vm_mmap_pgoff } from "../../../mm/mmap.ts";
import { cpu_user_read, cpu_user_write } from "../../../arch/x86/mm/fault.ts";
import { filp_open } from "../../../fs/open.ts";
import { kernel_read } from "../../../fs/read_write.ts";
import { __fput_sync } from "../../../fs/file_table.ts";
import {
  KUNIT_ASSERT_GT, KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_TRUE, kunit_add_action,
  type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";
import { kcat, vfs_of } from "./fs_test_util.ts";

const PAGE = 4096;

/** Runs `fn` as task `t` (a user process's context) and waits for it. */
function in_task<T>(test: kunit, t: task_struct, fn: () => Promise<T>): Promise<T> {
  return test.k.sched.wait_for(test.k.sched.run_task(t, fn), `task ${t.pid}`);
}

/** A user process that exits when the case ends. */
function new_process(test: kunit, comm: string): task_struct {
  const t = create_user_process(test.k, comm);
  KUNIT_ASSERT_TRUE(test, typeof t !== "number");
  const task = t as task_struct;
  kunit_add_action(test, () => in_task(test, task, () => do_exit(test.k, 0)));
  return task;
}

function hex8(x: number): string {
  return x.toString(16).padStart(8, "0");
}

async function maps_lists_new_vma(test: kunit): Promise<void> {
  const t = new_process(test, "kunit-maps");
  const mm = t.mm as mm_struct;
  const addr = await vm_mmap_pgoff(mm, null, 0, 3 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, 0);
  KUNIT_ASSERT_GT(test, addr, 0);
  const maps = await kcat(test, `/proc/${t.pid}/maps`);
  KUNIT_EXPECT_TRUE(test, typeof maps === "string" && maps.includes(`${hex8(addr)}-${hex8(addr + 3 * PAGE)} r--p 00000000 00:00 0`),
    `maps: ${String(maps)}`);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/proc/self/maps"), "", "a kernel thread has no mm");
}

async function pagemap_present_after_touch(test: kunit): Promise<void> {
  const t = new_process(test, "kunit-pagemap");
  const mm = t.mm as mm_struct;
  const addr = await vm_mmap_pgoff(mm, null, 0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0);
  KUNIT_ASSERT_GT(test, addr, 0);
  await in_task(test, t, () => cpu_user_write(test.k, addr, Uint8Array.of(1)));
  const f = await filp_open(vfs_of(test), `/proc/${t.pid}/pagemap`, O_RDONLY);
  KUNIT_ASSERT_TRUE(test, typeof f !== "number");
  if (typeof f === "number") return;
  // pagemap has ->read (user buffer) only: read it as the process would.
  const entries = await in_task(test, t, async () => {
    const buf = await vm_mmap_pgoff(mm, null, 0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0);
    const n = await f.f_op.read!(f, buf, 16, { pos: (addr / PAGE) * 8 });
    return n === 16 ? cpu_user_read(test.k, buf, 16) : new Uint8Array(0);
  });
  KUNIT_EXPECT_EQ(test, await kernel_read(f, new Uint8Array(8), 8, { pos: 0 }), -EINVAL, "no ->read_iter: not for kernel_read");
  await __fput_sync(f);
  KUNIT_EXPECT_EQ(test, entries.length, 16);
  KUNIT_EXPECT_EQ(test, entries[7]! & 0x80, 0x80, "the touched page is present (bit 63)");
  KUNIT_EXPECT_EQ(test, entries[15]! & 0x80, 0, "the untouched one is not");
}

async function shmem_shared_after_fork(test: kunit): Promise<void> {
  const parent = new_process(test, "kunit-parent");
  const mm = parent.mm as mm_struct;
  const addr = await vm_mmap_pgoff(mm, null, 0, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, 0);
  KUNIT_ASSERT_GT(test, addr, 0);
  await in_task(test, parent, () => cpu_user_write(test.k, addr, Uint8Array.of(1, 2)));
  const c = await copy_process(test.k, parent, SIGCHLD);
  KUNIT_ASSERT_TRUE(test, typeof c !== "number");
  const child = c as task_struct;
  kunit_add_action(test, () => in_task(test, child, () => do_exit(test.k, 0)));
  KUNIT_EXPECT_EQ(test, child.real_parent, parent);
  await in_task(test, child, () => cpu_user_write(test.k, addr + 2, Uint8Array.of(3)));
  const seen = await in_task(test, parent, () => cpu_user_read(test.k, addr, 3));
  KUNIT_EXPECT_EQ(test, Array.from(seen).join(","), "1,2,3", "the child's store is visible to the parent");
  const maps = await kcat(test, `/proc/${child.pid}/maps`);
  KUNIT_EXPECT_TRUE(test, typeof maps === "string" && maps.includes(" rw-s ") && maps.includes("/dev/zero (deleted)"));
}

export const fs_proc_task_mmu_test_suite: kunit_suite = {
  name: "fs_proc_task_mmu",
  test_cases: [
    KUNIT_CASE(maps_lists_new_vma),
    KUNIT_CASE(pagemap_present_after_touch),
    KUNIT_CASE(shmem_shared_after_fork),
  ],
};

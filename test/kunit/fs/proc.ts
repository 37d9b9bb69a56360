// KUnit suite for procfs (fs/proc): /proc/<pid>/fail-nth arms the fault-injection countdown and
// reads back, make-it-fail takes 0 or 1, /proc/self names the reader, status reports the task,
// pid directories vanish with their task (open files then give -ESRCH), and the global text
// files (meminfo, interrupts, slabinfo) come from their subsystems. maps/pagemap have their own
// cases in test/kunit/fs/proc_task_mmu.ts.

import { EINVAL, ENOENT, ESRCH } from "../../../include/uapi/asm-generic/errno.ts";
import { O_RDONLY } from "../../../include/uapi/asm-generic/fcntl.ts";
import { GFP_ATOMIC } from "../../../include/linux/gfp_types.ts";
import { PROCFS, SLAB } from "../../../kernel/tokens.ts";
import { filp_open } from "../../../fs/open.ts";
import { kernel_read } from "../../../fs/read_write.ts";
import { __fput_sync } from "../../../fs/file_table.ts";
import { seq_puts } from "../../../fs/seq_file.ts";
import {
  KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_TRUE, type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";
import { kcat, kecho, vfs_of } from "./fs_test_util.ts";

async function fail_nth_read_back(test: kunit): Promise<void> {
  const me = test.k.current;
  const path = `/proc/${me.pid}/fail-nth`;
  KUNIT_EXPECT_EQ(test, await kcat(test, path), "0\n");
  KUNIT_EXPECT_EQ(test, await kecho(test, path, "2\n"), 2);
  KUNIT_EXPECT_EQ(test, me.fail_nth, 2);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/proc/self/fail-nth"), "2\n", "/proc/self is the reader");
  const slab = test.machine.symbol(SLAB);
  const a = slab.kmalloc(8, GFP_ATOMIC);
  const b = slab.kmalloc(8, GFP_ATOMIC);
  KUNIT_EXPECT_TRUE(test, a !== null && b === null, "the 2nd injectable call failed");
  if (a) slab.kfree(a);
  KUNIT_EXPECT_EQ(test, await kcat(test, path), "0\n", "reads 0 once the failure was injected");
  KUNIT_EXPECT_EQ(test, await kecho(test, path, "-1"), -EINVAL);
  KUNIT_EXPECT_EQ(test, await kecho(test, path, "abc"), -EINVAL);
  KUNIT_EXPECT_EQ(test, await kcat(test, `/proc/${me.pid}/task/${me.pid}/fail-nth`), "0\n");
}

async function make_it_fail_values(test: kunit): Promise<void> {
  const me = test.k.current;
  KUNIT_EXPECT_EQ(test, await kcat(test, "/proc/self/make-it-fail"), "0\n");
  KUNIT_EXPECT_EQ(test, await kecho(test, "/proc/self/make-it-fail", "1"), 1);
  KUNIT_EXPECT_TRUE(test, me.make_it_fail);
  KUNIT_EXPECT_EQ(test, await kecho(test, "/proc/self/make-it-fail", "2"), -EINVAL);
  KUNIT_EXPECT_EQ(test, await kecho(test, "/proc/self/make-it-fail", "0"), 1);
  KUNIT_EXPECT_TRUE(test, !me.make_it_fail);
}

async function status_and_comm(test: kunit): Promise<void> {
  const me = test.k.current;
  const status = await kcat(test, "/proc/self/status");
  KUNIT_ASSERT_TRUE(test, typeof status === "string");
  KUNIT_EXPECT_TRUE(test, (status as string).startsWith(`Name:\t${me.comm}\n`));
  KUNIT_EXPECT_TRUE(test, (status as string).includes(`\nPid:\t${me.pid}\n`));
  KUNIT_EXPECT_TRUE(test, (status as string).includes("\nState:\tR (running)\n"));
  KUNIT_EXPECT_EQ(test, await kecho(test, "/proc/self/comm", "kunit-renamed-and-too-long\n"), 27);
  KUNIT_EXPECT_EQ(test, me.comm, "kunit-renamed-a", "cut to TASK_COMM_LEN - 1");
}

async function pid_dir_follows_task_life(test: kunit): Promise<void> {
  let pid = 0;
  let held: Awaited<ReturnType<typeof filp_open>> = -ENOENT;
  // A helper thread opens its own status file and exits while the file stays open.
  await test.k.sched.wait_for(test.machine.run_kthread("kunit-short", async () => {
    pid = test.k.current.pid;
    held = await filp_open(vfs_of(test), "/proc/self/status", O_RDONLY);
  }));
  KUNIT_ASSERT_TRUE(test, typeof held !== "number");
  if (typeof held === "number") return;
  KUNIT_EXPECT_EQ(test, await kcat(test, `/proc/${pid}/status`), -ENOENT, "the pid directory went with the task");
  KUNIT_EXPECT_EQ(test, await kernel_read(held, new Uint8Array(64), 64, { pos: 0 }), -ESRCH);
  await __fput_sync(held);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/proc/0x10/status"), -ENOENT);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/proc/99999/status"), -ENOENT);
}

async function global_files(test: kunit): Promise<void> {
  const meminfo = await kcat(test, "/proc/meminfo");
  KUNIT_EXPECT_TRUE(test, typeof meminfo === "string" && /^MemTotal: +\d+ kB\n/.test(meminfo));
  const interrupts = await kcat(test, "/proc/interrupts");
  KUNIT_EXPECT_TRUE(test, typeof interrupts === "string" && interrupts.includes("CPU0"));
  const slabinfo = await kcat(test, "/proc/slabinfo");
  KUNIT_EXPECT_TRUE(test, typeof slabinfo === "string" && slabinfo.startsWith("slabinfo - version: 2.1"));
}

async function proc_create_single_entry(test: kunit): Promise<void> {
  const procfs = test.machine.symbol(PROCFS);
  let n = 0;
  const dir = procfs.proc_mkdir("kunit", null);
  KUNIT_ASSERT_TRUE(test, typeof dir !== "number");
  if (typeof dir === "number") return;
  procfs.proc_create_single("counter", 0o444, dir, (m) => seq_puts(m, `${++n}\n`));
  KUNIT_EXPECT_EQ(test, await kcat(test, "/proc/kunit/counter"), "1\n");
  KUNIT_EXPECT_EQ(test, await kcat(test, "/proc/kunit/counter"), "2\n", "generated anew by each read");
  KUNIT_EXPECT_EQ(test, procfs.remove_proc_entry("kunit", null), 0);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/proc/kunit/counter"), -ENOENT);
}

export const fs_proc_test_suite: kunit_suite = {
  name: "fs_proc",
  test_cases: [
    KUNIT_CASE(fail_nth_read_back),
    KUNIT_CASE(make_it_fail_values),
    KUNIT_CASE(status_and_comm),
    KUNIT_CASE(pid_dir_follows_task_life),
    KUNIT_CASE(global_files),
    KUNIT_CASE(proc_create_single_entry),
  ],
};

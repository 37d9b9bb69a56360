// KUnit suite for mm/shmem.ts (tmpfs): data written through the page cache reads back, holes
// read as zeros, truncate drops the pages past the new end and zeroes a partial tail, O_TMPFILE
// files are unnamed and freed on last close, unlinking keeps the data for open files, and
// unmount at power-off frees what named files still hold.

import { ENOENT } from "../../../include/uapi/asm-generic/errno.ts";
import { O_CREAT, O_RDWR, O_TMPFILE, O_TRUNC, O_WRONLY, O_APPEND } from "../../../include/uapi/asm-generic/fcntl.ts";
import { ATTR_SIZE, type file } from "../../../include/linux/fs.ts";
import { PAGE_ALLOC } from "../../../kernel/tokens.ts";
import { filp_open } from "../../../fs/open.ts";
import { kernel_read, kernel_write } from "../../../fs/read_write.ts";
import { __fput_sync } from "../../../fs/file_table.ts";
import { do_unlinkat } from "../../../fs/namei.ts";
import type { shmem_mapping } from "../../../mm/shmem.ts";
import {
  KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_MEMEQ, KUNIT_EXPECT_TRUE,
  type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";
import { kcat, vfs_of } from "./fs_test_util.ts";

async function open_or_fail(test: kunit, path: string, flags: number): Promise<file> {
  const f = await filp_open(vfs_of(test), path, flags, 0o600);
  KUNIT_ASSERT_TRUE(test, typeof f !== "number", `open ${path}: ${String(f)}`);
  return f as file;
}

function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
}

async function tmpfs_write_read_holes(test: kunit): Promise<void> {
  const f = await open_or_fail(test, "/tmp/data", O_CREAT | O_RDWR);
  const data = pattern(5000, 3);
  KUNIT_EXPECT_EQ(test, await kernel_write(f, data, data.length, { pos: 10000 }), 5000);
  KUNIT_EXPECT_EQ(test, f.f_inode.i_size, 15000);
  KUNIT_EXPECT_EQ(test, (f.f_mapping as shmem_mapping).nrpages, 2, "only the written pages exist (pages 2 and 3)");
  const back = new Uint8Array(15000);
  KUNIT_EXPECT_EQ(test, await kernel_read(f, back, back.length, { pos: 0 }), 15000);
  KUNIT_EXPECT_MEMEQ(test, back.subarray(10000), data, 5000);
  KUNIT_EXPECT_TRUE(test, back.subarray(0, 10000).every((b) => b === 0), "the hole reads as zeros");
  KUNIT_EXPECT_EQ(test, await kernel_read(f, back, 100, { pos: 15000 }), 0, "EOF");
  await __fput_sync(f);
  KUNIT_EXPECT_EQ(test, await do_unlinkat(vfs_of(test), "/tmp/data"), 0);
}

async function tmpfs_truncate(test: kunit): Promise<void> {
  const pa = test.machine.symbol(PAGE_ALLOC);
  const before = pa.nr_allocated_pages();
  const f = await open_or_fail(test, "/tmp/trunc", O_CREAT | O_RDWR);
  const data = pattern(3 * 4096, 9);
  KUNIT_EXPECT_EQ(test, await kernel_write(f, data, data.length, { pos: 0 }), data.length);
  KUNIT_EXPECT_EQ(test, pa.nr_allocated_pages() - before, 3);
  const inode = f.f_inode;
  KUNIT_EXPECT_EQ(test, await inode.i_op.setattr!(f.f_path.dentry, { ia_valid: ATTR_SIZE, ia_size: 4096 + 100 }), 0);
  KUNIT_EXPECT_EQ(test, inode.i_size, 4196);
  KUNIT_EXPECT_EQ(test, pa.nr_allocated_pages() - before, 2, "the third page went");
  KUNIT_EXPECT_EQ(test, await inode.i_op.setattr!(f.f_path.dentry, { ia_valid: ATTR_SIZE, ia_size: 3 * 4096 }), 0);
  const back = new Uint8Array(3 * 4096);
  KUNIT_EXPECT_EQ(test, await kernel_read(f, back, back.length, { pos: 0 }), back.length);
  KUNIT_EXPECT_MEMEQ(test, back.subarray(0, 4196), data.subarray(0, 4196), 4196);
  KUNIT_EXPECT_TRUE(test, back.subarray(4196).every((b) => b === 0), "growing again shows zeros, not old data");
  await __fput_sync(f);
  // O_TRUNC on open empties the file.
  const g = await open_or_fail(test, "/tmp/trunc", O_WRONLY | O_TRUNC);
  KUNIT_EXPECT_EQ(test, g.f_inode.i_size, 0);
  await __fput_sync(g);
  KUNIT_EXPECT_EQ(test, pa.nr_allocated_pages() - before, 0, "O_TRUNC freed the rest");
  KUNIT_EXPECT_EQ(test, await do_unlinkat(vfs_of(test), "/tmp/trunc"), 0);
}

async function tmpfs_append(test: kunit): Promise<void> {
  const f = await open_or_fail(test, "/tmp/log", O_CREAT | O_WRONLY | O_APPEND);
  const a = new TextEncoder().encode("one\n");
  KUNIT_EXPECT_EQ(test, await kernel_write(f, a, a.length, { pos: 0 }), 4);
  KUNIT_EXPECT_EQ(test, await kernel_write(f, a, a.length, { pos: 0 }), 4, "O_APPEND ignores the position");
  await __fput_sync(f);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/tmp/log"), "one\none\n");
  KUNIT_EXPECT_EQ(test, await do_unlinkat(vfs_of(test), "/tmp/log"), 0);
}

async function tmpfs_tmpfile_and_unlink(test: kunit): Promise<void> {
  const pa = test.machine.symbol(PAGE_ALLOC);
  const before = pa.nr_allocated_pages();
  const t = await open_or_fail(test, "/tmp", O_TMPFILE | O_RDWR);
  KUNIT_EXPECT_EQ(test, t.path, `/tmp/#${t.f_inode.i_ino} (deleted)`);
  KUNIT_EXPECT_EQ(test, t.f_inode.i_nlink, 0);
  const d = pattern(4096, 1);
  KUNIT_EXPECT_EQ(test, await kernel_write(t, d, d.length, { pos: 0 }), 4096);
  // A named file, unlinked while open: the data stays until the last close.
  const n = await open_or_fail(test, "/tmp/named", O_CREAT | O_RDWR);
  KUNIT_EXPECT_EQ(test, await kernel_write(n, d, d.length, { pos: 0 }), 4096);
  KUNIT_EXPECT_EQ(test, await do_unlinkat(vfs_of(test), "/tmp/named"), 0);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/tmp/named"), -ENOENT);
  const back = new Uint8Array(4096);
  KUNIT_EXPECT_EQ(test, await kernel_read(n, back, 4096, { pos: 0 }), 4096);
  KUNIT_EXPECT_MEMEQ(test, back, d, 4096);
  KUNIT_EXPECT_EQ(test, pa.nr_allocated_pages() - before, 2);
  await __fput_sync(t);
  await __fput_sync(n);
  KUNIT_EXPECT_EQ(test, pa.nr_allocated_pages() - before, 0, "last close freed both page caches");
}

async function tmpfs_left_behind_is_freed_at_poweroff(test: kunit): Promise<void> {
  const f = await open_or_fail(test, "/tmp/stays", O_CREAT | O_RDWR);
  const d = pattern(8192, 5);
  KUNIT_EXPECT_EQ(test, await kernel_write(f, d, d.length, { pos: 0 }), 8192);
  await __fput_sync(f);
  // Not unlinked: the machine's shutdown unmounts /tmp, and the leak check must stay clean.
}

export const fs_shmem_test_suite: kunit_suite = {
  name: "fs_shmem",
  test_cases: [
    KUNIT_CASE(tmpfs_write_read_holes),
    KUNIT_CASE(tmpfs_truncate),
    KUNIT_CASE(tmpfs_append),
    KUNIT_CASE(tmpfs_tmpfile_and_unlink),
    KUNIT_CASE(tmpfs_left_behind_is_freed_at_poweroff),
  ],
};

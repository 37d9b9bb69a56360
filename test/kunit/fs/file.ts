// KUnit suite for fs/file.ts, fs/open.ts and fs/ioctl.ts: descriptors are allocated lowest-free,
// RLIMIT_NOFILE gives -EMFILE, open(2)'s errnos (ENOENT, EEXIST, EISDIR, EINVAL, EMFILE, EACCES,
// ENOTDIR, ELOOP), close of a bad descriptor, and ioctl's -ENOTTY / -EBADF rules.

import { EACCES, EBADF, EEXIST, EINVAL, EISDIR, ELOOP, EMFILE, ENOENT, ENOIOCTLCMD, ENOTDIR, ENOTTY } from "../../../include/uapi/asm-generic/errno.ts";
import {
  AT_FDCWD, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_RDONLY, O_RDWR, O_TMPFILE, O_WRONLY,
} from "../../../include/uapi/asm-generic/fcntl.ts";
import { FIOCLEX, FIONCLEX } from "../../../include/uapi/asm-generic/ioctls.ts";
import { _IO } from "../../../include/uapi/asm-generic/ioctl.ts";
import { MISC } from "../../../kernel/tokens.ts";
import { MISC_DYNAMIC_MINOR, type miscdevice } from "../../../drivers/char/misc.ts";
import { alloc_fd, fd_install, files_struct, get_unused_fd_flags, files_lookup_fd_raw } from "../../../fs/file.ts";
import { do_sys_open, sys_close_fd } from "../../../fs/open.ts";
import { sys_ioctl } from "../../../fs/ioctl.ts";
import type { file } from "../../../include/linux/fs.ts";
import {
  KUNIT_ASSERT_EQ, KUNIT_ASSERT_GE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_GE, KUNIT_EXPECT_TRUE,
  type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";
import { kunit_give_files, vfs_of } from "./fs_test_util.ts";

function open(test: kunit, path: string, flags: number, mode = 0o644): Promise<number> {
  return do_sys_open(vfs_of(test), AT_FDCWD, path, flags, mode);
}

function fd_alloc_lowest_free(test: kunit): void {
  const files = new files_struct();
  const fds = [0, 1, 2, 3].map(() => get_unused_fd_flags(files, 0));
  KUNIT_EXPECT_EQ(test, fds.join(","), "0,1,2,3");
  files.open_fds[1] = false;
  files.next_fd = 1;
  KUNIT_EXPECT_EQ(test, get_unused_fd_flags(files, 0), 1, "the hole is reused first");
  KUNIT_EXPECT_EQ(test, get_unused_fd_flags(files, 0), 4);
  KUNIT_EXPECT_EQ(test, alloc_fd(files, 10, 1024, 0), 10, "F_DUPFD-style minimum");
  KUNIT_EXPECT_EQ(test, get_unused_fd_flags(files, 0), 5, "a minimum does not move next_fd");
}

function fd_alloc_emfile_at_rlimit(test: kunit): void {
  const files = new files_struct();
  files.rlimit_nofile = 3;
  for (let i = 0; i < 3; i++) KUNIT_EXPECT_EQ(test, get_unused_fd_flags(files, 0), i);
  KUNIT_EXPECT_EQ(test, get_unused_fd_flags(files, 0), -EMFILE);
  KUNIT_EXPECT_EQ(test, files_lookup_fd_raw(files, 1), null, "a reserved descriptor holds no file");
  KUNIT_EXPECT_EQ(test, files_lookup_fd_raw(files, -1), null);
}

async function open_close_reuses_lowest(test: kunit): Promise<void> {
  kunit_give_files(test);
  const a = await open(test, "/tmp/a", O_CREAT | O_RDWR);
  const b = await open(test, "/tmp/b", O_CREAT | O_RDWR);
  const c = await open(test, "/tmp/a", O_RDONLY);
  KUNIT_EXPECT_EQ(test, `${a},${b},${c}`, "0,1,2");
  KUNIT_EXPECT_EQ(test, await sys_close_fd(vfs_of(test), b), 0);
  KUNIT_EXPECT_EQ(test, await open(test, "/tmp/b", O_RDONLY), 1, "closed descriptor 1 is the lowest free");
  KUNIT_EXPECT_EQ(test, await sys_close_fd(vfs_of(test), b), 0);
  KUNIT_EXPECT_EQ(test, await sys_close_fd(vfs_of(test), b), -EBADF, "closing twice");
  KUNIT_EXPECT_EQ(test, await sys_close_fd(vfs_of(test), 999), -EBADF);
  KUNIT_EXPECT_EQ(test, await sys_close_fd(vfs_of(test), -1), -EBADF);
}

async function open_errnos(test: kunit): Promise<void> {
  kunit_give_files(test);
  KUNIT_EXPECT_EQ(test, await open(test, "/tmp/missing", O_RDONLY), -ENOENT);
  KUNIT_EXPECT_EQ(test, await open(test, "/nodir/file", O_CREAT | O_RDWR), -ENOENT);
  KUNIT_EXPECT_EQ(test, await open(test, "", O_RDONLY), -ENOENT);
  const fd = await open(test, "/tmp/x", O_CREAT | O_EXCL | O_RDWR);
  KUNIT_ASSERT_GE(test, fd, 0);
  KUNIT_EXPECT_EQ(test, await open(test, "/tmp/x", O_CREAT | O_EXCL | O_RDWR), -EEXIST);
  KUNIT_EXPECT_EQ(test, await open(test, "/tmp", O_WRONLY), -EISDIR);
  KUNIT_EXPECT_EQ(test, await open(test, "/tmp", O_CREAT | O_RDONLY), -EISDIR);
  KUNIT_EXPECT_GE(test, await open(test, "/tmp", O_RDONLY), 0, "a directory opens read-only");
  KUNIT_EXPECT_EQ(test, await open(test, "/tmp/x/y", O_RDONLY), -ENOTDIR);
  KUNIT_EXPECT_EQ(test, await open(test, "/tmp/x", O_RDONLY | O_DIRECTORY), -ENOTDIR);
  KUNIT_EXPECT_EQ(test, await open(test, "/tmp", O_TMPFILE | O_RDONLY), -EINVAL, "O_TMPFILE needs write access");
  KUNIT_EXPECT_EQ(test, await open(test, "/tmp", O_TMPFILE | O_CREAT | O_RDWR), -EINVAL, "O_TMPFILE with O_CREAT");
  KUNIT_EXPECT_EQ(test, await open(test, "/proc/newfile", O_CREAT | O_RDWR), -EACCES, "procfs has no ->create");
  KUNIT_EXPECT_EQ(test, await open(test, "/sys/newfile", O_CREAT | O_RDWR), -EACCES);
  KUNIT_EXPECT_EQ(test, await open(test, "/proc/self", O_RDONLY | O_NOFOLLOW), -ELOOP);
}

async function open_emfile_leaves_table_unchanged(test: kunit): Promise<void> {
  const files = kunit_give_files(test);
  files.rlimit_nofile = 2;
  KUNIT_EXPECT_EQ(test, await open(test, "/tmp/f", O_CREAT | O_RDWR), 0);
  KUNIT_EXPECT_EQ(test, await open(test, "/tmp/f", O_RDWR), 1);
  KUNIT_EXPECT_EQ(test, await open(test, "/tmp/f", O_RDWR), -EMFILE);
  KUNIT_EXPECT_EQ(test, await open(test, "/tmp/missing", O_RDWR), -EMFILE, "EMFILE comes before the lookup");
  files.rlimit_nofile = 3;
  KUNIT_EXPECT_EQ(test, await open(test, "/tmp/missing", O_RDWR), -ENOENT);
  KUNIT_EXPECT_EQ(test, await open(test, "/tmp/f", O_RDWR), 2, "a failed open did not consume descriptor 2");
}

async function ioctl_enotty_and_ebadf(test: kunit): Promise<void> {
  const files = kunit_give_files(test);
  const vfs = vfs_of(test);
  const fd = await open(test, "/tmp/plain", O_CREAT | O_RDWR);
  KUNIT_ASSERT_EQ(test, fd, 0);
  KUNIT_EXPECT_EQ(test, await sys_ioctl(vfs, fd, _IO("T", 1), 0), -ENOTTY, "tmpfs files have no ->unlocked_ioctl");
  KUNIT_EXPECT_EQ(test, await sys_ioctl(vfs, 7, _IO("T", 1), 0), -EBADF);
  KUNIT_EXPECT_EQ(test, await sys_ioctl(vfs, -3, _IO("T", 1), 0), -EBADF);
  KUNIT_EXPECT_EQ(test, await sys_ioctl(vfs, fd, FIOCLEX, 0), 0);
  KUNIT_EXPECT_TRUE(test, files.close_on_exec.has(fd));
  KUNIT_EXPECT_EQ(test, await sys_ioctl(vfs, fd, FIONCLEX, 0), 0);
  KUNIT_EXPECT_FALSE(test, files.close_on_exec.has(fd));
}

async function ioctl_reaches_driver(test: kunit): Promise<void> {
  kunit_give_files(test);
  const vfs = vfs_of(test);
  const seen: Array<[number, number]> = [];
  const md: miscdevice = {
    minor: MISC_DYNAMIC_MINOR,
    name: "kunit_ioctl",
    fops: {
      unlocked_ioctl: (_f: file, cmd: number, arg: number) => {
        seen.push([cmd, arg]);
        return cmd === _IO("K", 2) ? -ENOIOCTLCMD : 42;
      },
    },
  };
  const misc = test.machine.symbol(MISC);
  KUNIT_ASSERT_EQ(test, await misc.misc_register(md), 0);
  const fd = await open(test, "/dev/kunit_ioctl", O_RDWR);
  KUNIT_ASSERT_GE(test, fd, 0);
  KUNIT_EXPECT_EQ(test, await sys_ioctl(vfs, fd, _IO("K", 1), 0x1234), 42);
  KUNIT_EXPECT_EQ(test, await sys_ioctl(vfs, fd, _IO("K", 2), 0), -ENOTTY, "-ENOIOCTLCMD becomes -ENOTTY");
  KUNIT_EXPECT_EQ(test, await sys_ioctl(vfs, fd, _IO("K", 1) + 2 ** 32, 0), 42, "cmd is an unsigned int");
  KUNIT_EXPECT_EQ(test, seen.length, 3);
  KUNIT_EXPECT_EQ(test, seen[0]![1], 0x1234);
  KUNIT_EXPECT_EQ(test, await sys_close_fd(vfs, fd), 0);
  await misc.misc_deregister(md);
}

function fd_install_then_lookup(test: kunit): void {
  const files = new files_struct();
  const fd = get_unused_fd_flags(files, 0);
  const sentinel = { f_count: 1 } as unknown as file;
  fd_install(files, fd, sentinel);
  KUNIT_EXPECT_TRUE(test, files_lookup_fd_raw(files, fd) === sentinel);
}

export const fs_file_test_suite: kunit_suite = {
  name: "fs_file",
  test_cases: [
    KUNIT_CASE(fd_alloc_lowest_free),
    KUNIT_CASE(fd_alloc_emfile_at_rlimit),
    KUNIT_CASE(fd_install_then_lookup),
    KUNIT_CASE(open_close_reuses_lowest),
    KUNIT_CASE(open_errnos),
    KUNIT_CASE(open_emfile_leaves_table_unchanged),
    KUNIT_CASE(ioctl_enotty_and_ebadf),
    KUNIT_CASE(ioctl_reaches_driver),
  ],
};

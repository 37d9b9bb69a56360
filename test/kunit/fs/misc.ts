// KUnit suite for drivers/char/misc.ts and fs/char_dev.ts: misc_register creates /dev/<name>
// and its sysfs class device; open reaches the driver with file->private_data = the miscdevice;
// ->release runs once, on the last reference (dup'ed files share it); the node disappears on
// misc_deregister while open files keep working; char regions refuse overlaps.

import { EBUSY, EINVAL, ENOENT, ENXIO } from "../../../include/uapi/asm-generic/errno.ts";
import { O_RDONLY, O_RDWR } from "../../../include/uapi/asm-generic/fcntl.ts";
import { MKDEV, MAJOR } from "../../../include/linux/kdev_t.ts";
import { CHRDEV, DRIVER_CORE, MISC } from "../../../kernel/tokens.ts";
import { MISC_DYNAMIC_MINOR, MISC_MAJOR, type miscdevice } from "../../../drivers/char/misc.ts";
import { cdev, cdev_init } from "../../../fs/char_dev.ts";
import { filp_open } from "../../../fs/open.ts";
import { __fput_sync, get_file } from "../../../fs/file_table.ts";
import type { file, inode } from "../../../include/linux/fs.ts";
import {
  KUNIT_ASSERT_EQ, KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_GT, KUNIT_EXPECT_TRUE,
  type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";
import { kcat, vfs_of } from "./fs_test_util.ts";

interface counting_dev {
  md: miscdevice;
  opens: number;
  releases: number;
  private_seen: unknown[];
}

function counting_misc(name: string): counting_dev {
  const d: counting_dev = { md: null as unknown as miscdevice, opens: 0, releases: 0, private_seen: [] };
  d.md = {
    minor: MISC_DYNAMIC_MINOR,
    name,
    fops: {
      open: (_i: inode, f: file) => {
        d.opens++;
        d.private_seen.push(f.private_data);
        return 0;
      },
      release: () => {
        d.releases++;
        return 0;
      },
    },
  };
  return d;
}

async function misc_open_release_refcount(test: kunit): Promise<void> {
  const misc = test.machine.symbol(MISC);
  const d = counting_misc("kunit_misc");
  KUNIT_ASSERT_EQ(test, await misc.misc_register(d.md), 0);
  KUNIT_EXPECT_TRUE(test, d.md.minor !== MISC_DYNAMIC_MINOR && d.md.minor < 128, "a dynamic minor below 128");
  const f1 = await filp_open(vfs_of(test), "/dev/kunit_misc", O_RDWR);
  const f2 = await filp_open(vfs_of(test), "/dev/kunit_misc", O_RDONLY);
  KUNIT_ASSERT_TRUE(test, typeof f1 !== "number" && typeof f2 !== "number");
  KUNIT_EXPECT_EQ(test, d.opens, 2);
  KUNIT_EXPECT_TRUE(test, d.private_seen.every((p) => p === d.md), "misc_open stores the miscdevice");
  const f1f = f1 as file;
  get_file(f1f); // a second descriptor on the same open file (dup or fork)
  await __fput_sync(f1f);
  KUNIT_EXPECT_EQ(test, d.releases, 0, "release waits for the last reference");
  await __fput_sync(f1f);
  KUNIT_EXPECT_EQ(test, d.releases, 1);
  await __fput_sync(f2 as file);
  KUNIT_EXPECT_EQ(test, d.releases, 2);
  await misc.misc_deregister(d.md);
}

async function misc_node_and_sysfs(test: kunit): Promise<void> {
  const misc = test.machine.symbol(MISC);
  const d = counting_misc("kunit_node");
  KUNIT_ASSERT_EQ(test, await misc.misc_register(d.md), 0);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/class/misc/kunit_node/dev"), `${MISC_MAJOR}:${d.md.minor}\n`);
  KUNIT_EXPECT_EQ(test, await kcat(test, `/sys/dev/char/${MISC_MAJOR}:${d.md.minor}/dev`), `${MISC_MAJOR}:${d.md.minor}\n`);
  const procmisc = await kcat(test, "/proc/misc");
  KUNIT_EXPECT_TRUE(test, typeof procmisc === "string" && procmisc.includes(`${d.md.minor} kunit_node`));
  const held = await filp_open(vfs_of(test), "/dev/kunit_node", O_RDONLY);
  KUNIT_ASSERT_TRUE(test, typeof held !== "number");
  await misc.misc_deregister(d.md);
  KUNIT_EXPECT_EQ(test, await filp_open(vfs_of(test), "/dev/kunit_node", O_RDONLY), -ENOENT, "the node is gone");
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/class/misc/kunit_node/dev"), -ENOENT);
  KUNIT_EXPECT_EQ(test, d.releases, 0, "deregistering does not close open files");
  await __fput_sync(held as file);
  KUNIT_EXPECT_EQ(test, d.releases, 1);
}

async function misc_fixed_minor_busy(test: kunit): Promise<void> {
  const misc = test.machine.symbol(MISC);
  const a = counting_misc("kunit_a");
  const b = counting_misc("kunit_b");
  a.md.minor = 200;
  b.md.minor = 200;
  KUNIT_ASSERT_EQ(test, await misc.misc_register(a.md), 0);
  KUNIT_EXPECT_EQ(test, await misc.misc_register(b.md), -EBUSY);
  await misc.misc_deregister(a.md);
}

async function chrdev_regions_and_cdev(test: kunit): Promise<void> {
  const chr = test.machine.symbol(CHRDEV);
  const core = test.machine.symbol(DRIVER_CORE);
  const dev = chr.alloc_chrdev_region(0, 4, "kunit_chr");
  KUNIT_EXPECT_GT(test, dev, 0);
  KUNIT_EXPECT_EQ(test, chr.register_chrdev_region(dev + 2, 4, "overlap"), -EBUSY);
  KUNIT_EXPECT_EQ(test, chr.register_chrdev_region(MKDEV(600, 0), 1, "too big"), -EINVAL);
  const proc = await kcat(test, "/proc/devices");
  KUNIT_EXPECT_TRUE(test, typeof proc === "string" && proc.includes(`${MAJOR(dev)} kunit_chr`));
  // A class device with the number but no cdev yet: the node exists, opening says -ENXIO.
  const cls = core.class_create("kunit_class");
  KUNIT_ASSERT_TRUE(test, typeof cls !== "number");
  if (typeof cls === "number") return;
  const d = await core.device_create(cls, null, dev, null, "kunitchr0");
  KUNIT_ASSERT_TRUE(test, typeof d !== "number");
  KUNIT_EXPECT_EQ(test, await filp_open(vfs_of(test), "/dev/kunitchr0", O_RDONLY), -ENXIO);
  let opened = 0;
  const c = new cdev();
  cdev_init(c, { open: () => ++opened && 0 });
  KUNIT_EXPECT_EQ(test, chr.cdev_add(c, dev, 4), 0);
  const f = await filp_open(vfs_of(test), "/dev/kunitchr0", O_RDONLY);
  KUNIT_EXPECT_EQ(test, opened, 1);
  if (typeof f !== "number") await __fput_sync(f);
  chr.cdev_del(c);
  KUNIT_EXPECT_EQ(test, await filp_open(vfs_of(test), "/dev/kunitchr0", O_RDONLY), -ENXIO);
  await core.device_destroy(cls, dev);
  core.class_destroy(cls);
  chr.unregister_chrdev_region(dev, 4);
  KUNIT_EXPECT_EQ(test, chr.register_chrdev_region(dev, 4, "again"), 0, "the region is free again");
  chr.unregister_chrdev_region(dev, 4);
}

export const fs_misc_test_suite: kunit_suite = {
  name: "fs_misc",
  test_cases: [
    KUNIT_CASE(misc_open_release_refcount),
    KUNIT_CASE(misc_node_and_sysfs),
    KUNIT_CASE(misc_fixed_minor_busy),
    KUNIT_CASE(chrdev_regions_and_cdev),
  ],
};

// KUnit suite for sysfs (fs/sysfs, lib/kobject.ts) and debugfs: attribute text generated at read
// time, stores parsed at write time, -EACCES for opening a read-only attribute for writing,
// -ENODEV from a file removed while open, duplicate names warned about, class symlinks, and
// debugfs number files and the fault-injection knobs.

import { EACCES, EEXIST, EINVAL, ENODEV, ENOENT } from "../../../include/uapi/asm-generic/errno.ts";
import { O_RDONLY, O_WRONLY } from "../../../include/uapi/asm-generic/fcntl.ts";
import { DEBUGFS, DRIVER_CORE, FAULT_INJECT, SYSFS } from "../../../kernel/tokens.ts";
import { kobject_create_and_add, kobject_put } from "../../../lib/kobject.ts";
import { sysfs_create_file, sysfs_create_group, sysfs_remove_file } from "../../../fs/sysfs/file.ts";
import type { kobj_attribute, kobject } from "../../../include/linux/sysfs.ts";
import { filp_open } from "../../../fs/open.ts";
import { kernel_read } from "../../../fs/read_write.ts";
import { __fput_sync } from "../../../fs/file_table.ts";
import type { device_attribute } from "../../../drivers/base/core.ts";
import { kstrtoint } from "../../../lib/kstrtox.ts";
import {
  KUNIT_ASSERT_NOT_NULL, KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_TRUE,
  kunit_expect_splat, type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";
import { kcat, kecho, vfs_of } from "./fs_test_util.ts";

/** A kobject under /sys/kernel with one read-write integer attribute. */
function int_kobj(test: kunit, name: string): { kobj: kobject; state: { v: number } } {
  const state = { v: 7 };
  const kobj = kobject_create_and_add(name, test.machine.symbol(SYSFS).kernel_kobj);
  KUNIT_ASSERT_NOT_NULL(test, kobj);
  const attr: kobj_attribute = {
    name: "value",
    mode: 0o644,
    show: () => `${state.v}\n`,
    store: (_k, _a, buf, count) => {
      const r = kstrtoint(buf, 0);
      if (typeof r === "number") return r;
      state.v = r.value;
      return count;
    },
  };
  KUNIT_EXPECT_EQ(test, sysfs_create_file(kobj!, attr), 0);
  KUNIT_EXPECT_EQ(test, sysfs_create_file(kobj!, { name: "ro", mode: 0o444, show: () => "fixed\n" } as kobj_attribute), 0);
  return { kobj: kobj!, state };
}

async function sysfs_show_store(test: kunit): Promise<void> {
  const { kobj, state } = int_kobj(test, "kunit_obj");
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/kernel/kunit_obj/value"), "7\n");
  KUNIT_EXPECT_EQ(test, await kecho(test, "/sys/kernel/kunit_obj/value", "42\n"), 3);
  KUNIT_EXPECT_EQ(test, state.v, 42);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/kernel/kunit_obj/value"), "42\n", "text is generated at read time");
  KUNIT_EXPECT_EQ(test, await kecho(test, "/sys/kernel/kunit_obj/value", "forty"), -EINVAL, "store's errno comes back");
  KUNIT_EXPECT_EQ(test, state.v, 42);
  KUNIT_EXPECT_EQ(test, await kecho(test, "/sys/kernel/kunit_obj/ro", "1"), -EACCES, "no write mode, no store");
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/kernel/kunit_obj/ro"), "fixed\n");
  kobject_put(kobj);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/kernel/kunit_obj/value"), -ENOENT, "the directory went with the kobject");
}

async function sysfs_removed_while_open(test: kunit): Promise<void> {
  const { kobj } = int_kobj(test, "kunit_gone");
  const f = await filp_open(vfs_of(test), "/sys/kernel/kunit_gone/value", O_RDONLY);
  KUNIT_ASSERT_TRUE(test, typeof f !== "number");
  if (typeof f === "number") return;
  sysfs_remove_file(kobj, { name: "value", mode: 0 });
  KUNIT_EXPECT_EQ(test, await kernel_read(f, new Uint8Array(16), 16, { pos: 0 }), -ENODEV);
  await __fput_sync(f);
  kobject_put(kobj);
}

function sysfs_duplicate_warns(test: kunit): void {
  kunit_expect_splat(test, "warn");
  const { kobj } = int_kobj(test, "kunit_dup");
  KUNIT_EXPECT_EQ(test, sysfs_create_file(kobj, { name: "value", mode: 0o444 }), -EEXIST);
  KUNIT_EXPECT_TRUE(test, test.machine.dmesg().some((l) => l.includes("cannot create duplicate filename '/kernel/kunit_dup/value'")));
  kobject_put(kobj);
}

async function sysfs_groups_and_device_attrs(test: kunit): Promise<void> {
  const core = test.machine.symbol(DRIVER_CORE);
  const cls = core.class_create("kunit_cls");
  KUNIT_ASSERT_TRUE(test, typeof cls !== "number");
  if (typeof cls === "number") return;
  const dev = await core.device_create(cls, null, 0, { n: 5 }, "kunitdev");
  KUNIT_ASSERT_TRUE(test, typeof dev !== "number");
  if (typeof dev === "number") return;
  const attr: device_attribute = { name: "n", mode: 0o444, show: (d) => `${(d.driver_data as { n: number }).n}\n` };
  KUNIT_EXPECT_EQ(test, core.device_create_file(dev, attr), 0);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/class/kunit_cls/kunitdev/n"), "5\n", "through the class symlink");
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/devices/virtual/kunit_cls/kunitdev/n"), "5\n");
  const grp_attr: device_attribute = { name: "a", mode: 0o444, show: (d) => `${d.dev_name()}\n` };
  KUNIT_EXPECT_EQ(test, sysfs_create_group(dev.kobj, { name: "props", attrs: [grp_attr] }), 0);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/class/kunit_cls/kunitdev/props/a"), "kunitdev\n", "a named group is a subdirectory");
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/class/kunit_cls/kunitdev/props/missing"), -ENOENT);
  KUNIT_EXPECT_EQ(test, await filp_open(vfs_of(test), "/dev/kunitdev", O_RDONLY), -ENOENT, "no number, no /dev node");
  await core.device_unregister(dev);
  core.class_destroy(cls);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/class/kunit_cls/kunitdev/n"), -ENOENT);
}

async function debugfs_number_files(test: kunit): Promise<void> {
  const dfs = test.machine.symbol(DEBUGFS);
  const dir = dfs.debugfs_create_dir("kunit", null);
  KUNIT_ASSERT_TRUE(test, typeof dir !== "number");
  if (typeof dir === "number") return;
  const knobs = { count: 3, mask: 0xff, on: false };
  dfs.debugfs_create_u32("count", 0o644, dir, knobs, "count");
  dfs.debugfs_create_x32("mask", 0o444, dir, knobs, "mask");
  dfs.debugfs_create_bool("on", 0o644, dir, knobs, "on");
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/kernel/debug/kunit/count"), "3\n");
  KUNIT_EXPECT_EQ(test, await kecho(test, "/sys/kernel/debug/kunit/count", "0x10\n"), 5);
  KUNIT_EXPECT_EQ(test, knobs.count, 16);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/kernel/debug/kunit/mask"), "0x000000ff\n");
  KUNIT_EXPECT_EQ(test, await kecho(test, "/sys/kernel/debug/kunit/mask", "1"), -EACCES, "read-only attribute");
  KUNIT_EXPECT_EQ(test, await kecho(test, "/sys/kernel/debug/kunit/on", "Y"), 1);
  KUNIT_EXPECT_EQ(test, knobs.on, true);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/kernel/debug/kunit/on"), "Y\n");
  const held = await filp_open(vfs_of(test), "/sys/kernel/debug/kunit/count", O_WRONLY);
  dfs.debugfs_remove(dir);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/kernel/debug/kunit/count"), -ENOENT);
  if (typeof held !== "number") await __fput_sync(held);
}

async function debugfs_fault_injection_knobs(test: kunit): Promise<void> {
  const fi = test.machine.symbol(FAULT_INJECT);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/kernel/debug/failslab/probability"), "0\n");
  KUNIT_EXPECT_EQ(test, await kecho(test, "/sys/kernel/debug/failslab/probability", "100\n"), 4);
  KUNIT_EXPECT_EQ(test, fi.failslab.attr.probability, 100);
  KUNIT_EXPECT_EQ(test, await kecho(test, "/sys/kernel/debug/failslab/times", "x"), -EINVAL);
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait"), "Y\n");
  fi.failslab.attr.probability = 0;
  fi.register_fault_point("kunit_point");
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/kernel/debug/kunit_point/interval"), "1\n", "points registered later appear");
  fi.unregister_fault_point("kunit_point");
  KUNIT_EXPECT_EQ(test, await kcat(test, "/sys/kernel/debug/kunit_point/interval"), -ENOENT, "and disappear");
}

export const fs_sysfs_test_suite: kunit_suite = {
  name: "fs_sysfs",
  test_cases: [
    KUNIT_CASE(sysfs_show_store),
    KUNIT_CASE(sysfs_removed_while_open),
    KUNIT_CASE(sysfs_duplicate_warns),
    KUNIT_CASE(sysfs_groups_and_device_attrs),
    KUNIT_CASE(debugfs_number_files),
    KUNIT_CASE(debugfs_fault_injection_knobs),
  ],
};

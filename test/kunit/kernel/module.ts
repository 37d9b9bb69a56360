// KUnit suite for loadable modules in sysfs (kernel/module/sysfs.ts, kernel/params.ts): a loaded
// module's /sys/module/<name> with initstate, refcnt and its parameters as read-only files holding
// the values it was loaded with, and the directory gone once the module is unloaded.

import { EACCES, ENOENT } from "../../../include/uapi/asm-generic/errno.ts";
import { O_WRONLY } from "../../../include/uapi/asm-generic/fcntl.ts";
import { MODULES } from "../../../kernel/tokens.ts";
import { filp_open } from "../../../fs/open.ts";
import { __fput_sync } from "../../../fs/file_table.ts";
import { param_get } from "../../../kernel/params.ts";
import { KUNIT_ASSERT_EQ, KUNIT_CASE, KUNIT_EXPECT_EQ, type kunit, type kunit_suite } from "../../../lib/kunit/test.ts";
import { kcat, vfs_of } from "../fs/fs_test_util.ts";

const DIR = "/sys/module/test_hmm";

/** insmod with parameters: each shows in parameters/; initstate and refcnt follow the module. */
async function module_dir_follows_the_module(test: kunit): Promise<void> {
  const loader = test.machine.symbol(MODULES);
  KUNIT_EXPECT_EQ(test, await kcat(test, `${DIR}/initstate`), -ENOENT, "not loaded: no directory");
  KUNIT_ASSERT_EQ(test, await loader.insmod("test_hmm", { spm_addr_dev0: 0x1000 }), 0);
  KUNIT_EXPECT_EQ(test, await kcat(test, `${DIR}/initstate`), "live\n");
  KUNIT_EXPECT_EQ(test, await kcat(test, `${DIR}/parameters/spm_addr_dev0`), "4096\n", "the value insmod gave");
  KUNIT_EXPECT_EQ(test, await kcat(test, `${DIR}/parameters/spm_addr_dev1`), "0\n", "the definition's default");
  KUNIT_EXPECT_EQ(test, await kcat(test, `${DIR}/refcnt`), "0\n");
  KUNIT_ASSERT_EQ(test, loader.try_module_get("test_hmm"), true);
  KUNIT_EXPECT_EQ(test, await kcat(test, `${DIR}/refcnt`), "1\n", "a holder shows in refcnt");
  loader.module_put("test_hmm");
  KUNIT_ASSERT_EQ(test, await loader.rmmod("test_hmm"), 0);
  KUNIT_EXPECT_EQ(test, await kcat(test, `${DIR}/parameters/spm_addr_dev0`), -ENOENT, "gone with the module");
  KUNIT_EXPECT_EQ(test, await kcat(test, `${DIR}/initstate`), -ENOENT);
}

/** Parameters are 0444: opening one for writing is refused. */
async function parameters_are_read_only(test: kunit): Promise<void> {
  const loader = test.machine.symbol(MODULES);
  KUNIT_ASSERT_EQ(test, await loader.insmod("test_hmm"), 0);
  const f = await filp_open(vfs_of(test), `${DIR}/parameters/spm_addr_dev0`, O_WRONLY);
  if (typeof f !== "number") __fput_sync(f);
  KUNIT_EXPECT_EQ(test, f, -EACCES);
  KUNIT_ASSERT_EQ(test, await loader.rmmod("test_hmm"), 0);
}

/** param_get_bool prints Y/N, the others their value. */
function param_get_formats(test: kunit): void {
  KUNIT_EXPECT_EQ(test, param_get(true), "Y\n");
  KUNIT_EXPECT_EQ(test, param_get(false), "N\n");
  KUNIT_EXPECT_EQ(test, param_get(3), "3\n");
  KUNIT_EXPECT_EQ(test, param_get("auto"), "auto\n");
}

export const module_sysfs_test_suite: kunit_suite = {
  name: "module_sysfs",
  test_cases: [
    KUNIT_CASE(module_dir_follows_the_module),
    KUNIT_CASE(parameters_are_read_only),
    KUNIT_CASE(param_get_formats),
  ],
};

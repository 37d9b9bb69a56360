// KUnit suite for lib/test_hmm.ts as a module: what loading and unloading the dmirror driver
// does to the machine — the device nodes, the device-memory chunks (pagemaps and iomem regions),
// the coherent devices that appear only with the reserved-memory parameters, and init's error
// unwinding. The user-visible behaviour is covered by test/selftests/mm/hmm-tests.ts and the
// driver contract (test/conformance/dmirror.test.ts).

import { MEMREMAP, MODULES, VFS } from "../../../kernel/tokens.ts";
import { GiB } from "../../../kernel/machine_spec.ts";
import { kern_path } from "../../../fs/namei.ts";
import { ENOENT, ENXIO } from "../../../include/uapi/asm-generic/errno.ts";
import { MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE } from "../../../include/linux/memremap.ts";
import { DEVMEM_CHUNK_SIZE } from "../../../lib/test_hmm.ts";
import {
  KUNIT_ASSERT_EQ, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_TRUE, kunit_expect_splat, type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";
import { kcat } from "../fs/fs_test_util.ts";

function insmod(test: kunit, params = {}): Promise<number> {
  return test.machine.symbol(MODULES).insmod("test_hmm", params);
}

function rmmod(test: kunit): Promise<number> {
  return test.machine.symbol(MODULES).rmmod("test_hmm");
}

async function node_exists(test: kunit, path: string): Promise<boolean> {
  return typeof (await kern_path(test.machine.symbol(VFS), path)) !== "number";
}

function pagemap_types(test: kunit): number[] {
  return test.machine.symbol(MEMREMAP).pagemaps().map((p) => p.type);
}

async function dmirror_regions(test: kunit): Promise<number> {
  const iomem = await kcat(test, "/proc/iomem");
  return typeof iomem === "number" ? -1 : iomem.split("\n").filter((l) => l.endsWith(": hmm_dmirror")).length;
}

/** Reserved memory for the coherent devices: above the machine's RAM. */
function spm(test: kunit): { spm_addr_dev0: number; spm_addr_dev1: number } {
  const base = Math.ceil((test.machine.spec.ram_size ?? GiB) / GiB) * GiB + GiB;
  return { spm_addr_dev0: base, spm_addr_dev1: base + DEVMEM_CHUNK_SIZE };
}

async function load_makes_two_private_devices(test: kunit): Promise<void> {
  KUNIT_ASSERT_EQ(test, await insmod(test), 0);
  for (const n of [0, 1]) KUNIT_EXPECT_TRUE(test, await node_exists(test, `/dev/hmm_dmirror${n}`));
  for (const n of [2, 3]) KUNIT_EXPECT_TRUE(test, !(await node_exists(test, `/dev/hmm_dmirror${n}`)));
  // One 256 MiB chunk per device, in free physical address space.
  KUNIT_EXPECT_EQ(test, pagemap_types(test).join(","), `${MEMORY_DEVICE_PRIVATE},${MEMORY_DEVICE_PRIVATE}`);
  KUNIT_EXPECT_EQ(test, await dmirror_regions(test), 2);
  KUNIT_EXPECT_TRUE(test, test.machine.dmesg().some((l) => l.includes("HMM test module loaded. This is only for testing HMM.")));
  KUNIT_EXPECT_EQ(test, await rmmod(test), 0);
}

async function spm_params_add_coherent_devices(test: kunit): Promise<void> {
  KUNIT_ASSERT_EQ(test, await insmod(test, spm(test)), 0);
  for (const n of [0, 1, 2, 3]) KUNIT_EXPECT_TRUE(test, await node_exists(test, `/dev/hmm_dmirror${n}`));
  const P = MEMORY_DEVICE_PRIVATE;
  const C = MEMORY_DEVICE_COHERENT;
  KUNIT_EXPECT_EQ(test, pagemap_types(test).join(","), `${P},${P},${C},${C}`);
  // Coherent chunks sit at the reserved addresses and claim no free region.
  KUNIT_EXPECT_EQ(test, await dmirror_regions(test), 2);
  const starts = test.machine.symbol(MEMREMAP).pagemaps().slice(2).map((p) => p.range.start);
  KUNIT_EXPECT_EQ(test, starts.join(","), `${spm(test).spm_addr_dev0},${spm(test).spm_addr_dev1}`);
  KUNIT_EXPECT_EQ(test, await rmmod(test), 0);
}

async function unload_releases_everything(test: kunit): Promise<void> {
  KUNIT_ASSERT_EQ(test, await insmod(test, spm(test)), 0);
  KUNIT_ASSERT_EQ(test, await rmmod(test), 0);
  for (const n of [0, 1, 2, 3]) KUNIT_EXPECT_TRUE(test, !(await node_exists(test, `/dev/hmm_dmirror${n}`)));
  KUNIT_EXPECT_EQ(test, pagemap_types(test).length, 0);
  KUNIT_EXPECT_EQ(test, await dmirror_regions(test), 0);
  KUNIT_EXPECT_EQ(test, await rmmod(test), -ENOENT);
  // And it loads again.
  KUNIT_EXPECT_EQ(test, await insmod(test), 0);
  KUNIT_EXPECT_EQ(test, await rmmod(test), 0);
}

/** Reserved memory that is really System RAM: memremap_pages() refuses, init unwinds. */
async function coherent_chunk_on_ram_fails_cleanly(test: kunit): Promise<void> {
  kunit_expect_splat(test, "warn");
  KUNIT_EXPECT_EQ(test, await insmod(test, { spm_addr_dev0: GiB / 2, spm_addr_dev1: GiB / 2 + DEVMEM_CHUNK_SIZE }), -ENXIO);
  for (const n of [0, 1, 2, 3]) KUNIT_EXPECT_TRUE(test, !(await node_exists(test, `/dev/hmm_dmirror${n}`)));
  KUNIT_EXPECT_EQ(test, pagemap_types(test).length, 0);
  KUNIT_EXPECT_EQ(test, await dmirror_regions(test), 0);
}

export const test_hmm_test_suite: kunit_suite = {
  name: "test_hmm",
  test_cases: [
    KUNIT_CASE(load_makes_two_private_devices),
    KUNIT_CASE(spm_params_add_coherent_devices),
    KUNIT_CASE(unload_releases_everything),
    KUNIT_CASE(coherent_chunk_on_ram_fails_cleanly),
  ],
};

// kfdtest's SVM migration cases (ROCT-Thunk-Interface tests/kfdtest/src/KFDSVMRangeTest.cpp:
// MigrateTest, MigrateGranularityTest, MigratePolicyTest, PrefetchTest, MigrateAccessInPlaceTest)
// on the thunk, each for XNACK off and on. Beside upstream's data checks they look at what the
// emulator can see: the page_in/page_out counters of /sys/class/kfd/kfd/proc/<pid>, and that no
// VRAM is left allocated once the process is gone.

import {
  ASSERT_EQ, ASSERT_TRUE, EXPECT_EQ, EXPECT_TRUE, FIXTURE, FIXTURE_VARIANT_ADD, SKIP, TEST, TEST_F, kselftest, type Fixture,
  type KselftestProgram,
} from "../../../tools/testing/selftests/kselftest_harness.ts";
import { GpuDispatcher, copyBufferIsa, copyDwordIsa } from "../../../tools/hsakmt/dispatch.ts";
import {
  HSAKMT_STATUS, HSA_SVM_ATTR_ACCESS, HSA_SVM_ATTR_ACCESS_IN_PLACE, HSA_SVM_ATTR_GRANULARITY, HSA_SVM_ATTR_PREFERRED_LOC, HSA_SVM_ATTR_PREFETCH_LOC,
} from "../../../tools/hsakmt/hsakmttypes.ts";
import { amdgpu_amdkfd_get_vram_usage } from "../../../drivers/gpu/drm/amd/amdgpu/amdgpu_amdkfd.ts";
import type { Machine } from "../../../kernel/machine.ts";
import {
  KFD_SELFTEST_MACHINE, PAGE, anon, kfd_close, kfd_module, kfd_open, read32, register_svm, write32, type KfdSelf, type XnackVariant,
} from "./kfd_util.ts";

export const kfd_svm_migrate = kselftest("kfd_svm_migrate", { machine: KFD_SELFTEST_MACHINE });

interface MigSelf extends KfdSelf {
  gpu: GpuDispatcher;
  machine: Machine;
  vram_before: number;
}

function vram_used(machine: Machine): number {
  return amdgpu_amdkfd_get_vram_usage(kfd_module(machine).devices[0]!.adev);
}

/**
 * A fixture opening KFD in the variant's XNACK mode (off and on), and checking after the case
 * that every VRAM page went back with the process: no svm_range_bo survives it.
 */
function migration_fixture(prog: KselftestProgram, name: string): Fixture<MigSelf, XnackVariant> {
  const f = FIXTURE<MigSelf, XnackVariant>(prog, name, {
    self: () => ({}) as MigSelf,
    setup: async (self, variant, metadata) => {
      self.machine = metadata.machine;
      self.vram_before = vram_used(metadata.machine);
      await kfd_open(self, metadata.machine, variant.xnack);
    },
    teardown: async (self) => {
      await self.gpu?.destroy();
      await kfd_close(self);
      await self.machine.settle();
      EXPECT_EQ(self.vram_before, vram_used(self.machine), "VRAM leaked by the case");
    },
  });
  FIXTURE_VARIANT_ADD(f, "xnack_off", { xnack: 0 as const });
  FIXTURE_VARIANT_ADD(f, "xnack_on", { xnack: 1 as const });
  return f;
}

const mig = migration_fixture(kfd_svm_migrate, "migrate");

async function dispatcher(self: MigSelf): Promise<GpuDispatcher> {
  const d = await GpuDispatcher.create(self.kmt, self.node);
  ASSERT_TRUE(typeof d !== "number");
  self.gpu = d as GpuDispatcher;
  return self.gpu;
}

async function gpu_copy(self: MigSelf, src: number, dst: number): Promise<void> {
  const r = await self.gpu.run(copyDwordIsa(), { kernargs: [src, dst] });
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, r.status);
  ASSERT_EQ(null, r.fault);
  ASSERT_TRUE(r.completed);
}

async function counter(self: MigSelf, name: "faults" | "page_in" | "page_out"): Promise<number> {
  return Number((await self.proc.readFile(`/sys/class/kfd/kfd/proc/${self.proc.pid}/counters_${self.gpu_id}/${name}`)).trim());
}

function set(self: MigSelf, addr: number, size: number, type: number, value: number): Promise<HSAKMT_STATUS> {
  return self.kmt.hsaKmtSVMSetAttr(addr, size, 1, [{ type, value }]);
}

// MigrateTest: prefetch to VRAM, the GPU reads it there, the CPU faults it back intact.
TEST_F(mig, "prefetch_to_vram_and_cpu_fault_back", async (self) => {
  await dispatcher(self);
  const n = 16;
  const buf = await anon(self.proc, n);
  const dst = await anon(self.proc, 1);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, buf, n * PAGE));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, dst, PAGE));
  for (let i = 0; i < n; i++) await write32(self.proc, buf + i * PAGE, 0x5a000000 + i);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await set(self, buf, n * PAGE, HSA_SVM_ATTR_PREFETCH_LOC, self.node));
  EXPECT_EQ(n, await counter(self, "page_in"), "every page migrated to VRAM");
  EXPECT_TRUE(vram_used(self.machine) >= self.vram_before + n * PAGE, "the range's BO is in VRAM");
  await gpu_copy(self, buf + 5 * PAGE, dst);
  EXPECT_EQ(0x5a000005, await read32(self.proc, dst), "the GPU read the VRAM copy");
  for (let i = 0; i < n; i++) EXPECT_EQ(0x5a000000 + i, await read32(self.proc, buf + i * PAGE), `page ${i} after the CPU fault`);
  EXPECT_EQ(n, await counter(self, "page_out"), "every page came back");
});

// MigrateTest, the other way: prefetch back to system memory explicitly.
TEST_F(mig, "prefetch_round_trip", async (self) => {
  const n = 8;
  const buf = await anon(self.proc, n);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, buf, n * PAGE));
  for (let i = 0; i < n; i++) await write32(self.proc, buf + i * PAGE, 0xc0de0000 + i);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await set(self, buf, n * PAGE, HSA_SVM_ATTR_PREFETCH_LOC, self.node));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await set(self, buf, n * PAGE, HSA_SVM_ATTR_PREFETCH_LOC, 0));
  EXPECT_EQ(n, await counter(self, "page_in"));
  EXPECT_EQ(n, await counter(self, "page_out"));
  for (let i = 0; i < n; i++) EXPECT_EQ(0xc0de0000 + i, await read32(self.proc, buf + i * PAGE));
});

// MigrateGranularityTest: a CPU fault brings back only its granularity window.
TEST_F(mig, "cpu_fault_granularity", async (self) => {
  const n = 16;
  const buf = await anon(self.proc, n);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, buf, n * PAGE));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await set(self, buf, n * PAGE, HSA_SVM_ATTR_GRANULARITY, 2));
  for (let i = 0; i < n; i++) await write32(self.proc, buf + i * PAGE, i);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await set(self, buf, n * PAGE, HSA_SVM_ATTR_PREFETCH_LOC, self.node));
  EXPECT_EQ(9, await read32(self.proc, buf + 9 * PAGE));
  EXPECT_EQ(4, await counter(self, "page_out"), "granularity 2: one 4-page window");
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await set(self, buf, n * PAGE, HSA_SVM_ATTR_PREFETCH_LOC, 0));
  EXPECT_EQ(n, await counter(self, "page_out"), "the rest on the prefetch back");
});

// MigratePolicyTest: preferred location = GPU steers GPU retry faults into VRAM (XNACK on).
TEST_F(mig, "gpu_fault_migrates_to_preferred", async (self, variant) => {
  await dispatcher(self);
  const src = await anon(self.proc, 4);
  const dst = await anon(self.proc, 1);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, dst, PAGE));
  await write32(self.proc, src + 2 * PAGE, 0x12345678);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, src, 4 * PAGE, self.node));
  const before = await counter(self, "page_in");
  // XNACK off: registration with PREFETCH_LOC already migrated (upstream's same expectation).
  if (!variant.xnack) EXPECT_EQ(4, before);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await set(self, src, 4 * PAGE, HSA_SVM_ATTR_PREFETCH_LOC, 0));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await set(self, src, 4 * PAGE, HSA_SVM_ATTR_PREFERRED_LOC, self.node));
  await gpu_copy(self, src + 2 * PAGE, dst);
  EXPECT_EQ(0x12345678, await read32(self.proc, dst));
  const after = await counter(self, "page_in");
  if (variant.xnack) {
    EXPECT_TRUE(after > before, `retry fault migrated to VRAM (${before} → ${after})`);
    EXPECT_TRUE((await counter(self, "faults")) > 0);
  } else {
    EXPECT_EQ(before, after, "XNACK off: mapped in RAM at set_attr, no fault");
  }
  EXPECT_EQ(0x12345678, await read32(self.proc, src + 2 * PAGE), "CPU reads it back");
});

// A GPU write fault on never-touched pages that prefer VRAM: the holes become cleared VRAM pages
// (the clear must finish before the GPU maps them), the shader's data reaches the CPU.
TEST_F(mig, "gpu_write_fault_into_vram_holes", async (self, variant) => {
  await dispatcher(self);
  const n = 32;
  const src = await anon(self.proc, n);
  const dst = await anon(self.proc, n);
  for (let i = 0; i < n; i++) await write32(self.proc, src + i * PAGE, 0x77000000 + i);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, src, n * PAGE));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, dst, n * PAGE, self.node));
  const r = await self.gpu.run(copyBufferIsa(), { kernargs: [dst, src, n * PAGE], grid: 1 });
  ASSERT_TRUE(r.completed);
  ASSERT_EQ(null, r.fault);
  for (let i = 0; i < n; i++) EXPECT_EQ(0x77000000 + i, await read32(self.proc, dst + i * PAGE), `page ${i}`);
  EXPECT_EQ(n, await counter(self, "page_out"), "the CPU faulted every page back");
  if (variant.xnack) EXPECT_TRUE((await counter(self, "faults")) > 0);
});

// MigrateAccessInPlaceTest: ACCESS_IN_PLACE maps system memory, never migrates on a fault.
TEST_F(mig, "access_in_place_no_migration", async (self) => {
  await dispatcher(self);
  const src = await anon(self.proc, 2);
  const dst = await anon(self.proc, 1);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, dst, PAGE));
  await write32(self.proc, src, 0xabcd);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtSVMSetAttr(src, 2 * PAGE, 2, [
    { type: HSA_SVM_ATTR_PREFERRED_LOC, value: 0 },
    { type: HSA_SVM_ATTR_ACCESS_IN_PLACE, value: self.node },
  ]));
  await gpu_copy(self, src, dst);
  EXPECT_EQ(0xabcd, await read32(self.proc, dst));
  EXPECT_EQ(0, await counter(self, "page_in"));
});

// Exit with pages still in VRAM: everything is released with the mm.
TEST_F(mig, "exit_with_vram_pages", async (self) => {
  const n = 32;
  const buf = await anon(self.proc, n);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, buf, n * PAGE, self.node));
  EXPECT_EQ(n, await counter(self, "page_in"));
});

// ---- KFDSVMEvictTest: VRAM pressure ------------------------------------------------------------

/** A GPU with little VRAM, so two processes' ranges cannot both stay there. */
const SMALL_VRAM = { ...KFD_SELFTEST_MACHINE, name: "kfd-evict", gpus: [{ asic: "gfx90a" as const, vram_size: 64 * 1024 * 1024 }] };

export const kfd_svm_evict = kselftest("kfd_svm_evict", { machine: SMALL_VRAM });

const evict = migration_fixture(kfd_svm_evict, "evict");

// Another process's prefetch needs the VRAM: TTM evicts this process's svm_bo, the worker moves
// its pages to RAM (page_out), the fence signals, and the data is intact in system memory.
TEST_F(evict, "other_process_evicts_svm_bo", async (self, variant) => {
  const bytes = 40 * 1024 * 1024;
  const n = bytes / PAGE;
  const a = await anon(self.proc, n);
  for (let i = 0; i < n; i += 512) await write32(self.proc, a + i * PAGE, 0xe0000000 + i);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, a, bytes, self.node));
  EXPECT_EQ(n, await counter(self, "page_in"));
  const other = {} as MigSelf;
  await kfd_open(other, self.machine, variant.xnack);
  const b = await anon(other.proc, n);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(other, b, bytes, other.node));
  await self.machine.settle();
  EXPECT_EQ(n, await counter(other, "page_in"), "the second process got its VRAM");
  // Only as many of the first process's BOs go as the second one needs room for.
  const out = await counter(self, "page_out");
  EXPECT_TRUE(out > 0 && out <= n, `the first process's ranges were evicted to RAM (${out} pages)`);
  for (let i = 0; i < n; i += 512) EXPECT_EQ(0xe0000000 + i, await read32(self.proc, a + i * PAGE), `page ${i} after eviction`);
  await kfd_close(other);
});

// ---- two GPUs: VRAM → VRAM through system memory ------------------------------------------------

const TWO_GPUS = { ...KFD_SELFTEST_MACHINE, name: "kfd-2gpu", gpus: [{ asic: "gfx90a" as const, vram_size: 1024 ** 3 }, { asic: "gfx90a" as const, vram_size: 1024 ** 3 }] };

export const kfd_svm_multi_gpu = kselftest("kfd_svm_multi_gpu", { machine: TWO_GPUS });

const multi = FIXTURE<MigSelf, XnackVariant>(kfd_svm_multi_gpu, "multi", {
  self: () => ({}) as MigSelf,
  setup: async (self, variant, metadata) => {
    self.machine = metadata.machine;
    await kfd_open(self, metadata.machine, variant.xnack);
  },
  teardown: async (self) => {
    await kfd_close(self);
  },
});

FIXTURE_VARIANT_ADD(multi, "xnack_off", { xnack: 0 as const });
FIXTURE_VARIANT_ADD(multi, "xnack_on", { xnack: 1 as const });

// MigrateTest across GPUs: prefetch to GPU 1, then to GPU 2 — out of the first VRAM, into the second.
// XNACK off: a range two GPUs outside one hive both access stays in system memory
// (svm_range_best_prefetch_location), so nothing moves.
TEST_F(multi, "prefetch_vram_to_vram", async (self, variant) => {
  const nodes = self.kmt.gpuNodes();
  if (nodes.length < 2) SKIP("needs two GPUs");
  const ids = nodes.map((n) => {
    const props: { KFDGpuID?: number } = {};
    self.kmt.hsaKmtGetNodeProperties(n, props);
    return props.KFDGpuID!;
  });
  const n = 8;
  const buf = await anon(self.proc, n);
  for (let i = 0; i < n; i++) await write32(self.proc, buf + i * PAGE, 0xabc00000 + i);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtSVMSetAttr(buf, n * PAGE, 2, [
    { type: HSA_SVM_ATTR_ACCESS, value: nodes[0]! }, { type: HSA_SVM_ATTR_ACCESS, value: nodes[1]! },
  ]));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await set(self, buf, n * PAGE, HSA_SVM_ATTR_PREFETCH_LOC, nodes[0]!));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await set(self, buf, n * PAGE, HSA_SVM_ATTR_PREFETCH_LOC, nodes[1]!));
  const ctr = async (gpu: number, name: string) =>
    Number((await self.proc.readFile(`/sys/class/kfd/kfd/proc/${self.proc.pid}/counters_${gpu}/${name}`)).trim());
  const want = variant.xnack ? n : 0;
  EXPECT_EQ(want, await ctr(ids[0]!, "page_in"));
  EXPECT_EQ(want, await ctr(ids[0]!, "page_out"), "out of the first GPU's VRAM");
  EXPECT_EQ(want, await ctr(ids[1]!, "page_in"), "into the second GPU's VRAM");
  for (let i = 0; i < n; i++) EXPECT_EQ(0xabc00000 + i, await read32(self.proc, buf + i * PAGE));
});

// ---- allocation failure on the migration paths ---------------------------------------------------

export const kfd_svm_migrate_fail_nth = kselftest("kfd_svm_migrate_fail_nth", { machine: KFD_SELFTEST_MACHINE });

/**
 * fail-nth over a prefetch to VRAM and over the CPU faults back: the nth failable allocation of
 * the task fails, for every n until the operation no longer reaches it. Each run must end with
 * the data intact (wherever it lives) or a clean error, and no VRAM left over after the process.
 * With the default fail_page_alloc settings the prefetch path reaches two failable calls and the
 * CPU fault path none in the task (its page allocations are highmem ones, which are skipped).
 */
TEST(kfd_svm_migrate_fail_nth, "prefetch_and_cpu_fault_every_n", async (metadata) => {
  const machine = metadata.machine;
  const vram0 = vram_used(machine);
  const injector = await machine.spawn("injector");
  const n = 8;
  for (const phase of ["prefetch", "cpu_fault"] as const) {
    for (let nth = 1; nth < 400; nth++) {
      const self = {} as MigSelf;
      await kfd_open(self, machine, 1);
      const buf = await anon(self.proc, n);
      for (let i = 0; i < n; i++) await write32(self.proc, buf + i * PAGE, 0x600d0000 + i);
      ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, buf, n * PAGE));
      if (phase === "cpu_fault") ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await set(self, buf, n * PAGE, HSA_SVM_ATTR_PREFETCH_LOC, self.node));
      ASSERT_EQ(1, await injector.writeFile(`/proc/${self.proc.pid}/fail-nth`, String(nth)));
      if (phase === "prefetch") {
        const st = await set(self, buf, n * PAGE, HSA_SVM_ATTR_PREFETCH_LOC, self.node);
        EXPECT_TRUE(st === HSAKMT_STATUS.SUCCESS || st === HSAKMT_STATUS.ERROR, `fail-nth ${nth}: prefetch status ${st}`);
      }
      // The CPU reads every page (in the cpu_fault phase under injection: a SIGBUS would kill it).
      const vals: number[] = [];
      for (let i = 0; i < n; i++) vals.push(await read32(self.proc, buf + i * PAGE).catch(() => -1));
      const left = Number((await injector.readFile(`/proc/${self.proc.pid}/fail-nth`)).trim());
      await injector.writeFile(`/proc/${self.proc.pid}/fail-nth`, "0");
      for (let i = 0; i < n; i++) {
        if (vals[i] === -1) continue;
        EXPECT_EQ(0x600d0000 + i, vals[i], `${phase} fail-nth ${nth}: page ${i}`);
      }
      await kfd_close(self);
      await machine.settle();
      EXPECT_EQ(vram0, vram_used(machine), `${phase} fail-nth ${nth}: VRAM leaked`);
      // The operation finished before the nth call: every site on the path has been failed once.
      if (left > 0) break;
    }
  }
  await injector.exit();
});

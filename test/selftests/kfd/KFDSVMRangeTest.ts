// Port of ROCm kfdtest's KFDSVMRangeTest (libhsakmt/tests/kfdtest/src/KFDSVMRangeTest.cpp and
// the 2026 add-ons KFDSVMRangeReGrant_test.cpp / KFDSVMRangePartialPage_test.cpp; catalogue in
// ../shared/reference/peer-tests.md §1) onto kemu's thunk. Test names are upstream's; gtest's
// parameter (XNACK 0/1) is the variant, on a one-GPU and a two-GPU gfx90a machine. Per-GPU
// cases run their body on every GPU at once like KFDTestLaunch; a case upstream would skip on
// this hardware SKIPs with upstream's reason. Beside upstream's assertions each case checks what
// the emulator can see: the per-process fault and migration counters, SMI events, and — in the
// fixture's teardown — that no VRAM and no system page outlived the process.
//
// Sizes (upstream → here, to keep the whole suite within CI time; the semantics are kept):
// - VRAM is 64 MiB (kfdtest_svm_util.ts), so VRAM-relative sizes shrink by themselves.
// - MigrateTest: three 16 MiB ranges → 4 MiB. MigrateLargeBufTest: min(1 GiB, ¾ VRAM) → min(16 MiB,
//   ¾ VRAM) (the SDMA copies stay chunked at upstream's 128 MiB, so they are single chunks here).
// - MigrateGranularityTest: 16384 pages → 16 (granularities 4..0 instead of 14..0), so each
//   pass's CPU faults can be counted from SMI events without overflowing KFD's 1 KiB event FIFO.
// - MultiThreadMigrationTest: 2 × 128 MiB → 2 × 8 MiB.
// - VramOvercommit*: over-commit 1 GiB → 64 MiB (= VRAM), range unit 512 MiB → 16 MiB.
// Where kemu lacks a primitive: processes have no stack (EvictSystemRangeTest's "stack" pages
// are an anonymous mapping) and no kill(2)/waitpid(2) (the forked child ends with exit).
// VramOvercommitTest and VramOvercommitGiantRangeTest are XFAIL (reason at their XFAIL_ADD);
// VAHighAddr skips (no 57-bit GPU VA on gfx90a).

import {
  ASSERT_EQ, ASSERT_GE, ASSERT_TRUE, EXPECT_EQ, EXPECT_GE, EXPECT_GT, EXPECT_NE, EXPECT_TRUE, SKIP, TEST_F,
  XFAIL_ADD, kselftest,
} from "../../../tools/testing/selftests/kselftest_harness.ts";
import { copyDwordIsa } from "../../../tools/hsakmt/dispatch.ts";
import { sdma_copy_packets, sdma_fill_packets } from "../../../tools/hsakmt/sdma.ts";
import { HsaKmt } from "../../../tools/hsakmt/hsakmt.ts";
import { hsaKmtDeregisterMemory, hsaKmtRegisterMemory } from "../../../tools/hsakmt/memory.ts";
import {
  FAMILY_AI, HSAKMT_STATUS, HSA_EVENTTYPE_MEMORY, HSA_QUEUE_COMPUTE, HSA_SVM_ATTR_ACCESS, HSA_SVM_ATTR_ACCESS_IN_PLACE,
  HSA_SVM_ATTR_GRANULARITY, HSA_SVM_ATTR_NO_ACCESS, HSA_SVM_ATTR_PREFERRED_LOC, HSA_SVM_ATTR_PREFETCH_LOC, HSA_SVM_ATTR_SET_FLAGS,
  HSA_SVM_FLAG_COHERENT, HSA_SVM_FLAG_GPU_EXEC, HSA_SVM_FLAG_HOST_ACCESS, INVALID_NODEID, type HSA_SVM_ATTRIBUTE, type HsaEvent,
  type HsaQueueResource,
} from "../../../tools/hsakmt/hsakmttypes.ts";
import {
  KFD_MIGRATE_TRIGGER_PAGEFAULT_CPU, KFD_MIGRATE_TRIGGER_PREFETCH, KFD_QUEUE_EVICTION_TRIGGER_SVM, KFD_SMI_EVENT_MASK_FROM_INDEX,
  KFD_SMI_EVENT_MIGRATE_START, KFD_SMI_EVENT_MSG_SIZE, KFD_SMI_EVENT_QUEUE_EVICTION, KFD_SMI_EVENT_QUEUE_RESTORE,
  KFD_SMI_EVENT_UNMAP_FROM_GPU, KFD_SVM_UNMAP_TRIGGER_UNMAP_FROM_CPU,
} from "../../../include/uapi/linux/kfd_ioctl.ts";
import { MAP_SHARED, PROT_READ, PROT_WRITE } from "../../../include/uapi/asm-generic/mman.ts";
import { O_CREAT, O_EXCL, O_RDONLY, O_RDWR } from "../../../include/uapi/asm-generic/fcntl.ts";
import type { Process } from "../../../tools/runtime/process.ts";
import {
  destroy_queue, dispatcher, fill_dwords, first_mismatch, GetSysMemSize, GetVramSize, gpu_id, HsaSVMRange,
  kfd_counter, kfdtest_fixture, KFDTestLaunch, type KfdtestSelf, mmap_anon, node_props, PAGE_SIZE,
  read_dwords, RegisterSVMRange, sdma_queue, svm_ranges_of, SVMRangeGetPrefetchNode, SVMRangeMapInPlaceToNode,
  SVMRangeMapToNode, SVMRangePrefetchToNode, SVMRangSetGranularity, vram_used_gpu,
} from "./kfdtest_svm_util.ts";

export const KFDSVMRangeTest = kselftest("KFDSVMRangeTest");

const F = kfdtest_fixture(KFDSVMRangeTest, "KFDSVMRangeTest", [1, 2]);

const DEFAULT_FLAGS = HSA_SVM_FLAG_HOST_ACCESS | HSA_SVM_FLAG_COHERENT;

function family_check(self: KfdtestSelf, node: number): void {
  const fam = node_props(self.kmt, node).FamilyID ?? 0;
  if (fam < FAMILY_AI) SKIP(`Skipping test: No svm range support for family ID 0x${fam.toString(16)}.`);
}

function vram_check(self: KfdtestSelf, node: number): number {
  const vram = GetVramSize(self.kmt, node);
  if (!vram) SKIP("Skipping test: No VRAM found.");
  return vram;
}

/** Dispatch CopyDword src → dst and Sync: the dispatch must complete without a memory exception. */
async function copy_dword(d: Awaited<ReturnType<typeof dispatcher>>, src: number, dst: number): Promise<void> {
  const r = await d.run(copyDwordIsa(), { kernargs: [src, dst] });
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, r.status);
  ASSERT_EQ(null, r.fault);
  ASSERT_TRUE(r.completed);
}

async function read32(proc: Process, addr: number): Promise<number> {
  return (await read_dwords(proc, addr, 4))[0]!;
}

const ctr = (self: KfdtestSelf, node: number, name: "faults" | "page_in" | "page_out") => kfd_counter(self.proc, gpu_id(self.kmt, node), name);

// ---- 1. BasicSystemMemTest ----------------------------------------------------------------------

TEST_F(F, "BasicSystemMemTest", (self) => KFDTestLaunch(self, async (node) => {
  vram_check(self, node);
  const d = await dispatcher(self, node);
  const src = await HsaSVMRange(self, PAGE_SIZE, node);
  const dst = await HsaSVMRange(self, PAGE_SIZE, node);
  await fill_dwords(self.proc, src, PAGE_SIZE, () => 0x01010101);
  await copy_dword(d, src, dst);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await destroy_queue(self, d));
  EXPECT_EQ(0x01010101, await read32(self.proc, dst));
  // XNACK off: mapped at registration, no fault; on: ranges prefetched to RAM are mapped lazily.
  if (self.xnack) EXPECT_GT(await ctr(self, node, "faults"), 0, "XNACK on: the GPU access took retry faults");
  else EXPECT_EQ(0, await ctr(self, node, "faults"));
  EXPECT_EQ(0, await ctr(self, node, "page_in"), "system memory ranges never migrate");
}));

// ---- 2. SetGetAttributesTest -------------------------------------------------------------------

TEST_F(F, "SetGetAttributesTest", (self) => KFDTestLaunch(self, async (node) => {
  family_check(self, node);
  const size = PAGE_SIZE;
  const buf = await mmap_anon(self.proc, size);
  const input: HSA_SVM_ATTRIBUTE[] = [
    { type: HSA_SVM_ATTR_PREFETCH_LOC, value: node }, { type: HSA_SVM_ATTR_PREFERRED_LOC, value: node },
    { type: HSA_SVM_ATTR_SET_FLAGS, value: HSA_SVM_FLAG_HOST_ACCESS | HSA_SVM_FLAG_GPU_EXEC | HSA_SVM_FLAG_COHERENT },
    { type: HSA_SVM_ATTR_GRANULARITY, value: 0x3f }, { type: HSA_SVM_ATTR_ACCESS, value: node },
  ];
  const mode = { enable: -1 };
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtGetXNACKMode(mode));
  const defaults = [INVALID_NODEID, INVALID_NODEID, DEFAULT_FLAGS, 9, mode.enable ? HSA_SVM_ATTR_ACCESS : HSA_SVM_ATTR_NO_ACCESS];
  const is_access = (t: number) => t === HSA_SVM_ATTR_ACCESS || t === HSA_SVM_ATTR_ACCESS_IN_PLACE || t === HSA_SVM_ATTR_NO_ACCESS;
  let out = input.map((a) => ({ ...a }));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtSVMGetAttr(buf, size, out.length, out));
  out.forEach((a, i) => {
    // The default granularity is a module parameter: upstream does not check it.
    if (a.type === HSA_SVM_ATTR_GRANULARITY) return;
    EXPECT_EQ(defaults[i], is_access(a.type) ? a.type : a.value, `default of attribute ${i}`);
  });
  out = input.map((a) => ({ ...a }));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtSVMSetAttr(buf, size, input.length, input));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtSVMGetAttr(buf, size, out.length, out));
  out.forEach((a, i) => {
    if (is_access(a.type)) EXPECT_EQ(input[i]!.type, a.type, `attribute ${i}`);
    else EXPECT_EQ(input[i]!.value, a.value, `attribute ${i}`);
  });
  ASSERT_EQ(0, await self.proc.munmap(buf, size));
}));

// ---- 3. XNACKModeTest ---------------------------------------------------------------------------

/** PM4Queue.Create(node): a compute queue (ring in an SVM range the GPU may access). */
async function pm4_create(self: KfdtestSelf, node: number): Promise<{ q: HsaQueueResource; ring: number } | null> {
  const ring = await self.kmt.allocSvm(PAGE_SIZE, node);
  if (ring < 0) return null;
  const q: HsaQueueResource = { QueueId: 0, QueueDoorBell: 0, QueueRptrValue: 0, QueueWptrValue: 0 };
  const st = await self.kmt.hsaKmtCreateQueue(node, HSA_QUEUE_COMPUTE, 100, 0, ring, PAGE_SIZE, null, q);
  if (st !== HSAKMT_STATUS.SUCCESS) {
    await self.proc.munmap(ring, PAGE_SIZE);
    return null;
  }
  return { q, ring };
}

TEST_F(F, "XNACKModeTest", async (self) => {
  const mode = { enable: 0 };
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtGetXNACKMode(mode));
  let enable = mode.enable;
  let switched = 0;
  for (let i = 0; i < 2; i++) {
    enable = enable ? 0 : 1;
    const r = await self.kmt.hsaKmtSetXNACKMode(enable);
    if (r === HSAKMT_STATUS.NOT_SUPPORTED) continue;
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, r, `XNACK mode ${enable}`);
    switched++;
    for (const node of self.gpuNodes) {
      const pm4 = await pm4_create(self, node);
      ASSERT_TRUE(pm4 !== null, `queue on node ${node}`);
      EXPECT_EQ(HSAKMT_STATUS.ERROR, await self.kmt.hsaKmtSetXNACKMode(enable), "a queue exists: -EBUSY");
      EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtDestroyQueue(pm4!.q.QueueId));
      await self.proc.munmap(pm4!.ring, PAGE_SIZE);
    }
  }
  // gfx90a switches per process (GC 9.4.2): both flips took, the mode is back where it started.
  EXPECT_EQ(2, switched);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtGetXNACKMode(mode));
  EXPECT_EQ(self.xnack, mode.enable);
});

// ---- 4. InvalidRangeTest ------------------------------------------------------------------------

TEST_F(F, "InvalidRangeTest", (self) => KFDTestLaunch(self, async (node) => {
  // Nothing is mapped at 64 KiB: -EFAULT from the kernel, HSAKMT_STATUS_ERROR from the thunk.
  EXPECT_NE(HSAKMT_STATUS.SUCCESS, await RegisterSVMRange(self.kmt, node, 0x10000, 0x1000, 0, DEFAULT_FLAGS));
}));

// ---- 5. SplitSystemRangeTest, 9. SplitVramRangeTest --------------------------------------------

/** The seven overlap patterns: [mapping pages, registrations as [first page, pages], munmap first?]. */
const SPLIT_CASES: Array<{ name: string; pages: number; regs: Array<[number, number]>; unmap_first?: boolean }> = [
  { name: "1 middle", pages: 16, regs: [[0, 16], [2, 1]] },
  { name: "2.1 head", pages: 16, regs: [[0, 16], [1, 15]] },
  { name: "2.2 overlap past the end", pages: 18, regs: [[0, 16], [2, 16]] },
  { name: "3 tail", pages: 16, regs: [[0, 16], [0, 14]] },
  { name: "4.1 identical", pages: 16, regs: [[0, 16], [0, 16]] },
  { name: "4.2 superset", pages: 18, regs: [[0, 16], [0, 18]] },
  { name: "5 two islands", pages: 32, regs: [[2, 2], [8, 2], [0, 32]] },
  { name: "6 unregister after free", pages: 16, regs: [[2, 2]], unmap_first: true },
];

async function SplitRangeTest(self: KfdtestSelf, node: number, loc: number): Promise<void> {
  for (const c of SPLIT_CASES) {
    const base = await mmap_anon(self.proc, c.pages * PAGE_SIZE);
    for (const [off, n] of c.regs) {
      EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await RegisterSVMRange(self.kmt, node, base + off * PAGE_SIZE, n * PAGE_SIZE, loc), `case ${c.name}`);
    }
    // Every page registered reads back the registration's attributes (the pieces agree).
    for (const [off, n] of c.regs) {
      const q = [{ type: HSA_SVM_ATTR_PREFERRED_LOC, value: 0 }, { type: HSA_SVM_ATTR_ACCESS, value: node }];
      EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtSVMGetAttr(base + off * PAGE_SIZE, n * PAGE_SIZE, 2, q));
      EXPECT_EQ(loc, q[0]!.value, `case ${c.name}: preferred location`);
      EXPECT_EQ(HSA_SVM_ATTR_ACCESS, q[1]!.type, `case ${c.name}: access`);
    }
    if (loc) {
      const first = base / PAGE_SIZE;
      const mine = svm_ranges_of(self.machine, self.proc).filter(([s, l]) => l >= first && s < first + c.pages);
      EXPECT_EQ(c.unmap_first ? 2 : c.pages, mine.reduce((n, [, , v]) => n + v, 0), `case ${c.name}: every registered page is in VRAM`);
    }
    ASSERT_EQ(0, await self.proc.munmap(base, c.pages * PAGE_SIZE));
    // With another GPU's body running, its next mmap may reuse this span at once.
    if (self.gpuNodes.length > 1) continue;
    // The span has no VMA any more; the query flushed the deferred unmap work: no range is left.
    EXPECT_EQ(HSAKMT_STATUS.ERROR, await self.kmt.hsaKmtSVMGetAttr(base, PAGE_SIZE, 1, [{ type: HSA_SVM_ATTR_PREFETCH_LOC, value: 0 }]));
    const first = base / PAGE_SIZE;
    EXPECT_EQ(0, svm_ranges_of(self.machine, self.proc).filter(([s, l]) => l >= first && s < first + c.pages).length,
      `case ${c.name}: munmap removed every range`);
  }
}

TEST_F(F, "SplitSystemRangeTest", (self) => KFDTestLaunch(self, async (node) => {
  family_check(self, node);
  await SplitRangeTest(self, node, 0);
  EXPECT_EQ(0, await ctr(self, node, "page_in"));
}));

// ---- 6. EvictSystemRangeTest --------------------------------------------------------------------

TEST_F(F, "EvictSystemRangeTest", (self) => KFDTestLaunch(self, async (node) => {
  family_check(self, node);
  // kfdtest's 32 KiB stack array: A (global data), B = A + 2 pages (dst), C = B + 4 pages (sdma).
  const stack = await mmap_anon(self.proc, 8 * PAGE_SIZE);
  const A = stack;
  const B = stack + 2 * PAGE_SIZE;
  const C = B + 4 * PAGE_SIZE;
  await fill_dwords(self.proc, A, 4, () => 0xdeadbeef);
  for (const p of [A, B, C]) EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await RegisterSVMRange(self.kmt, node, p, PAGE_SIZE, 0));
  // Queues exist before fork + COW, so the eviction must quiesce and restore them.
  const pm4 = await dispatcher(self, node);
  const sdma = await sdma_queue(self, node);
  await copy_dword(pm4, A, B);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await sdma.fill(C, 0x12345678, 4));
  EXPECT_EQ(0x12345678, await read32(self.proc, C));
  const child = await self.proc.fork();
  self.others.push(child);
  // The parent writes first: copy-on-write gives it new pages, the GPU mappings must follow.
  await fill_dwords(self.proc, A, 4, () => 0xd00bed00);
  await fill_dwords(self.proc, B, 4, () => 0xdeadbeef);
  await fill_dwords(self.proc, C, 4, () => 0xdeadbeef);
  // The child kept the pages the GPU wrote before the fork.
  EXPECT_EQ(0xdeadbeef, await read32(child, B));
  EXPECT_EQ(0x12345678, await read32(child, C));
  await child.exit();
  self.others = self.others.filter((p) => p !== child);
  await copy_dword(pm4, A, B);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await sdma.fill(C, 0xd0bed0be, 4));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await destroy_queue(self, pm4));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await destroy_queue(self, sdma));
  EXPECT_EQ(0xd00bed00, await read32(self.proc, A));
  EXPECT_EQ(0xd00bed00, await read32(self.proc, B), "the GPU read the parent's new A and wrote its new B");
  EXPECT_EQ(0xd0bed0be, await read32(self.proc, C), "SDMA wrote the parent's new C");
}));

// ---- 7. PartialUnmapSysMemTest ------------------------------------------------------------------

TEST_F(F, "PartialUnmapSysMemTest", (self) => KFDTestLaunch(self, async (node) => {
  const size = 16 * PAGE_SIZE;
  const d = await dispatcher(self, node);
  const dst = await HsaSVMRange(self, size, node);
  const buf = await mmap_anon(self.proc, size);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await RegisterSVMRange(self.kmt, node, buf, size, 0));
  await fill_dwords(self.proc, buf, size, () => 0x01010101);
  const hole = buf + 2 * PAGE_SIZE;
  const hole_size = 4 * PAGE_SIZE;
  const after = hole + hole_size;
  ASSERT_EQ(0, await self.proc.munmap(hole, hole_size));
  await copy_dword(d, after, dst);
  EXPECT_EQ(0x01010101, await read32(self.proc, dst));
  await copy_dword(d, buf, dst);
  EXPECT_EQ(0x01010101, await read32(self.proc, dst));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await destroy_queue(self, d));
  // The hole has no range any more (the deferred unmap work ran before the query).
  EXPECT_EQ(HSAKMT_STATUS.ERROR, await self.kmt.hsaKmtSVMGetAttr(hole, hole_size, 1, [{ type: HSA_SVM_ATTR_PREFETCH_LOC, value: 0 }]));
  ASSERT_EQ(0, await self.proc.munmap(buf, 2 * PAGE_SIZE));
  ASSERT_EQ(0, await self.proc.munmap(after, size - 2 * PAGE_SIZE - hole_size));
}));

// ---- 8. BasicVramTest ---------------------------------------------------------------------------

TEST_F(F, "BasicVramTest", (self) => KFDTestLaunch(self, async (node) => {
  vram_check(self, node);
  const d = await dispatcher(self, node);
  const src = await HsaSVMRange(self, PAGE_SIZE, node);
  const loc = await HsaSVMRange(self, PAGE_SIZE, node, node);
  const dst = await HsaSVMRange(self, PAGE_SIZE, node);
  await fill_dwords(self.proc, src, PAGE_SIZE, () => 0x01010101);
  await copy_dword(d, src, loc);
  await copy_dword(d, loc, dst);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await destroy_queue(self, d));
  EXPECT_EQ(0x01010101, await read32(self.proc, dst));
  EXPECT_EQ(1, await ctr(self, node, "page_in"), "registration with prefetch = GPU migrated loc to VRAM");
  EXPECT_EQ(0, await ctr(self, node, "page_out"), "loc stayed in VRAM: the CPU never touched it");
}));

TEST_F(F, "SplitVramRangeTest", (self) => KFDTestLaunch(self, async (node) => {
  family_check(self, node);
  await SplitRangeTest(self, node, node);
  EXPECT_GT(await ctr(self, node, "page_in"), 0, "the registrations migrated to VRAM");
}));

// ---- 10. PrefetchTest ---------------------------------------------------------------------------

TEST_F(F, "PrefetchTest", (self) => KFDTestLaunch(self, async (node) => {
  const size = 16 << 10;
  let buf = await HsaSVMRange(self, size, node);
  ASSERT_EQ(0, await self.proc.munmap(buf, size));
  // After munmap the range is not accessible: the query fails or does not name this GPU.
  const attr = [{ type: HSA_SVM_ATTR_ACCESS, value: 0 }];
  if ((await self.kmt.hsaKmtSVMGetAttr(buf, size, 1, attr)) === HSAKMT_STATUS.SUCCESS) EXPECT_NE(node, attr[0]!.value);
  buf = await HsaSVMRange(self, size, node);
  const loc = buf + size / 2;
  const out = { node: -1 };
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangeGetPrefetchNode(self.kmt, buf, size, out));
  EXPECT_EQ(0, out.node);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangePrefetchToNode(self.kmt, loc, size / 2, node));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangeGetPrefetchNode(self.kmt, loc, size / 2, out));
  EXPECT_EQ(node, out.node);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangeGetPrefetchNode(self.kmt, buf, size, out));
  EXPECT_EQ(INVALID_NODEID, out.node, "the halves disagree");
  ASSERT_EQ(0, await self.proc.munmap(buf, size));
}));

// ---- 11. MigrateTest ----------------------------------------------------------------------------

TEST_F(F, "MigrateTest", (self) => KFDTestLaunch(self, async (node) => {
  family_check(self, node);
  vram_check(self, node);
  const size = 4 << 20;
  const npages = size / PAGE_SIZE;
  const idx = (i: number) => i;
  const data = await HsaSVMRange(self, size, node);
  const buf = await HsaSVMRange(self, size, node);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangePrefetchToNode(self.kmt, buf, size, 0));
  const buf2 = await HsaSVMRange(self, size, node);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangePrefetchToNode(self.kmt, buf2, size, 0));
  const q = await sdma_queue(self, node);
  await fill_dwords(self.proc, data, size, idx);
  for (let rep = 1; rep <= 8; rep++) {
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangePrefetchToNode(self.kmt, buf, size, node));
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangePrefetchToNode(self.kmt, buf2, size, node));
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await q.copy(buf, data, size));
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await q.copy(buf2, data, size));
    // CPU faults bring both back from VRAM with what SDMA wrote there.
    ASSERT_EQ(-1, first_mismatch(await read_dwords(self.proc, buf, size), idx), `pass ${rep}: buf`);
    ASSERT_EQ(-1, first_mismatch(await read_dwords(self.proc, buf2, size), idx), `pass ${rep}: buf2`);
    EXPECT_EQ(2 * npages * rep, await ctr(self, node, "page_in"), `pass ${rep}: both ranges went to VRAM`);
    EXPECT_EQ(2 * npages * rep, await ctr(self, node, "page_out"), `pass ${rep}: and came back on CPU faults`);
  }
  const faults = await ctr(self, node, "faults");
  // buf is in RAM again: XNACK off, the GPU mapping already points there; on, a retry fault
  // maps it (preferred location RAM: no migration).
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await q.copy(buf, data, size));
  ASSERT_EQ(-1, first_mismatch(await read_dwords(self.proc, buf, size), idx));
  EXPECT_EQ(2 * npages * 8, await ctr(self, node, "page_in"), "the last copy did not migrate");
  if (self.xnack) EXPECT_GT(await ctr(self, node, "faults"), faults, "XNACK on: the GPU re-faulted the RAM pages in");
  else EXPECT_EQ(0, await ctr(self, node, "faults"));
}));

// ---- 12. MigrateAccessInPlaceTest ---------------------------------------------------------------

TEST_F(F, "MigrateAccessInPlaceTest", (self) => KFDTestLaunch(self, async (node) => {
  family_check(self, node);
  const vram = vram_check(self, node);
  const size = Math.min(256 << 20, vram / 2);
  const q = await sdma_queue(self, node);
  const data = await HsaSVMRange(self, size, node);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangeMapInPlaceToNode(self.kmt, data, size, node));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangePrefetchToNode(self.kmt, data, size, node));
  const npages = size / PAGE_SIZE;
  EXPECT_EQ(npages, await ctr(self, node, "page_in"));
  // One CPU store per page: each faults its granularity window back to RAM.
  for (let i = 0; i < size / 4; i += 1024) await fill_dwords(self.proc, data + i * 4, 4, () => i);
  EXPECT_EQ(npages, await ctr(self, node, "page_out"), "every page came back to RAM");
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await q.fill(data, 0x55aaaa55, size));
  ASSERT_EQ(-1, first_mismatch(await read_dwords(self.proc, data, size), () => 0x55aaaa55, 1024));
  EXPECT_EQ(npages, await ctr(self, node, "page_in"), "ACCESS_IN_PLACE: the SDMA fill did not migrate anything");
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await destroy_queue(self, q));
}));

// ---- 13. MigrateGranularityTest -----------------------------------------------------------------

/** Opens an SMI event file for `node` with `mask`; returns its fd. */
async function open_smi(self: KfdtestSelf, node: number, mask: number): Promise<number> {
  const out = { fd: -1 };
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtOpenSMI(node, out));
  const m = new Uint8Array(8);
  new DataView(m.buffer).setUint32(0, mask % 2 ** 32, true);
  new DataView(m.buffer).setUint32(4, Math.floor(mask / 2 ** 32), true);
  ASSERT_EQ(8, await self.proc.writeFd(out.fd, m));
  return out.fd;
}

async function read_smi_lines(self: KfdtestSelf, fd: number): Promise<string[]> {
  const r = await self.proc.readFd(fd, 64 * 1024);
  if (typeof r === "number") return [];
  return new TextDecoder().decode(r).split("\n").filter((l) => l);
}

TEST_F(F, "MigrateGranularityTest", (self) => KFDTestLaunch(self, async (node) => {
  family_check(self, node);
  vram_check(self, node);
  // 16 pages: one pass's events at granularity 0 must fit KFD's 1 KiB SMI FIFO.
  const pages = 16;
  const size = pages * PAGE_SIZE;
  const buf = await HsaSVMRange(self, size, node);
  const buf2 = await HsaSVMRange(self, size, node);
  const q = await sdma_queue(self, node);
  let g = 0;
  while (2 ** g <= pages) g++;
  for (let i = 0; i < pages; i++) await fill_dwords(self.proc, buf2 + i * PAGE_SIZE, 4, () => i);
  const smi = await open_smi(self, node, KFD_SMI_EVENT_MASK_FROM_INDEX(KFD_SMI_EVENT_MIGRATE_START));
  while (g--) {
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangePrefetchToNode(self.kmt, buf, size, node));
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangSetGranularity(self.kmt, buf, size, g));
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await q.copy(buf, buf2, size));
    await read_smi_lines(self, smi);
    for (let i = 0; i < pages; i++) ASSERT_EQ(i, await read32(self.proc, buf + i * PAGE_SIZE), `granularity ${g}, page ${i}`);
    // What upstream leaves to dmesg: one CPU-fault migration per 2^g-page window, never more.
    const cpu = (await read_smi_lines(self, smi)).map((l) => /^5 \d+ -\d+ @([0-9a-f]+)\(([0-9a-f]+)\) \S+ \S+ (\d+)$/.exec(l))
      .filter((m) => m !== null && Number(m[3]) === KFD_MIGRATE_TRIGGER_PAGEFAULT_CPU).map((m) => [parseInt(m![1]!, 16), parseInt(m![2]!, 16)] as const);
    const windows = new Set(Array.from({ length: pages }, (_, i) => Math.floor((buf / PAGE_SIZE + i) / 2 ** g)));
    EXPECT_EQ(windows.size, cpu.length, `granularity ${g}: one CPU-fault migration per window`);
    EXPECT_EQ(pages, cpu.reduce((s, [, n]) => s + n, 0), `granularity ${g}: the windows cover the range once`);
    EXPECT_TRUE(cpu.every(([, n]) => n <= 2 ** g), `granularity ${g}: no window is larger than 2^g pages`);
  }
  await self.proc.close(smi);
}));

// ---- 14. MigrateLargeBufTest --------------------------------------------------------------------

TEST_F(F, "MigrateLargeBufTest", (self) => KFDTestLaunch(self, async (node) => {
  const vram = vram_check(self, node);
  const size = Math.min(16 << 20, (vram * 3) / 4);
  if (size * 2 > GetSysMemSize(self.kmt) / 2) SKIP("Skipping test: Not enough system memory.");
  const npages = size / PAGE_SIZE;
  const sys = await HsaSVMRange(self, size, node);
  await fill_dwords(self.proc, sys, size, () => 1);
  const sys2 = await HsaSVMRange(self, size, node);
  await fill_dwords(self.proc, sys2, size, () => 2);
  // Registering sys's address again with prefetch = GPU migrates it: "local" is sys in VRAM.
  const local = sys;
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await RegisterSVMRange(self.kmt, node, local, size, node));
  EXPECT_EQ(npages, await ctr(self, node, "page_in"));
  const q = await sdma_queue(self, node);
  const chunk = 128 << 20;
  const copy = async (dst: number, src: number) => {
    for (let i = 0; i < size; i += chunk) EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await q.copy(dst + i, src + i, Math.min(chunk, size - i)));
  };
  await copy(sys2, local);
  ASSERT_EQ(-1, first_mismatch(await read_dwords(self.proc, sys2, size), () => 1, 1024));
  await fill_dwords(self.proc, sys2, size, () => 3);
  await copy(local, sys2);
  EXPECT_EQ(0, await ctr(self, node, "page_out"), "the SDMA write went to VRAM");
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangSetGranularity(self.kmt, sys, size, 30));
  ASSERT_EQ(-1, first_mismatch(await read_dwords(self.proc, sys, size), () => 3, 1024));
  EXPECT_EQ(npages, await ctr(self, node, "page_out"), "granularity 30: the CPU fault brought the whole range back");
  await fill_dwords(self.proc, sys, size, () => 4);
  await copy(sys2, local);
  ASSERT_EQ(-1, first_mismatch(await read_dwords(self.proc, sys2, size), () => 4, 1024));
  // XNACK off: the GPU mapping already points at RAM. On: the retry fault follows the preferred
  // location (the GPU, from the second registration) and migrates the range to VRAM again.
  EXPECT_EQ(self.xnack ? 2 * npages : npages, await ctr(self, node, "page_in"), "placement of the last SDMA read");
}));

// ---- 15. MigratePolicyTest ----------------------------------------------------------------------

TEST_F(F, "MigratePolicyTest", (self) => KFDTestLaunch(self, async (node) => {
  family_check(self, node);
  vram_check(self, node);
  const size = 1 << 20;
  // 64-bit elements below 2^32: the low dword holds the value, the high one 0.
  const lo = (v: (i: number) => number) => (d: number) => (d % 2 ? 0 : v(d / 2));
  const data = await HsaSVMRange(self, size, node);
  const buf = await HsaSVMRange(self, size, node);
  const q = await sdma_queue(self, node);
  await fill_dwords(self.proc, data, size, lo((i) => i));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangePrefetchToNode(self.kmt, buf, size, node));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await q.copy(buf, data, size, 600_000));
  ASSERT_EQ(-1, first_mismatch(await read_dwords(self.proc, buf, size), lo((i) => i)));
  await fill_dwords(self.proc, buf, size, lo((i) => i + 1));
  const page_in = await ctr(self, node, "page_in");
  EXPECT_EQ(size / PAGE_SIZE, await ctr(self, node, "page_out"));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await q.copy(data, buf, size, 600_000));
  ASSERT_EQ(-1, first_mismatch(await read_dwords(self.proc, data, size), lo((i) => i + 1), 1024));
  // Preferred location is RAM (registered with 0): neither mode moves buf for the SDMA read.
  EXPECT_EQ(page_in, await ctr(self, node, "page_in"));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await destroy_queue(self, q));
}));

// ---- 16. MultiGPUMigrationTest, 17. MultiGPUAccessInPlaceTest -----------------------------------

/** The SVM-capable GPUs (all of kemu's gfx90a are); upstream skips with fewer than two. */
function svm_gpus(self: KfdtestSelf): number[] {
  family_check(self, self.defaultGPUNode);
  if (self.gpuNodes.length < 2) SKIP("Skipping test: at least two SVM supported GPUs needed.");
  return self.gpuNodes;
}

async function MultiGPUTest(self: KfdtestSelf, in_place: boolean): Promise<void> {
  const nodes = svm_gpus(self);
  const size = 1 << 20;
  const npages = size / PAGE_SIZE;
  const qw = (d: number) => (d % 2 ? 0 : d / 2);
  const buf = await HsaSVMRange(self, size, self.defaultGPUNode);
  const data = await HsaSVMRange(self, size, self.defaultGPUNode);
  await fill_dwords(self.proc, buf, size, qw);
  const map = in_place ? SVMRangeMapInPlaceToNode : SVMRangeMapToNode;
  for (const node of nodes) {
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await map(self.kmt, buf, size, node));
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangePrefetchToNode(self.kmt, buf, size, node));
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await map(self.kmt, data, size, node));
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangePrefetchToNode(self.kmt, data, size, node));
  }
  // The GPUs are not in one XGMI hive: a range two of them must reach in place, or (XNACK off)
  // at all, stays in system memory (svm_range_best_prefetch_location); only XNACK on with
  // migration allowed follows the prefetch into the last GPU's VRAM.
  const last = nodes[nodes.length - 1]!;
  const into_last = self.xnack && !in_place ? 2 * npages : 0;
  EXPECT_EQ(into_last, await ctr(self, last, "page_in"), "placement after the last prefetch");
  for (const node of nodes) {
    const q = await sdma_queue(self, node);
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await q.copy(data, buf, size));
    ASSERT_EQ(-1, first_mismatch(await read_dwords(self.proc, data, size), qw, 1024), `copy on node ${node}`);
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await destroy_queue(self, q));
  }
  for (const node of nodes) {
    EXPECT_EQ(await ctr(self, node, "page_in"), await ctr(self, node, "page_out"), `node ${node}: everything left its VRAM again`);
  }
}

TEST_F(F, "MultiGPUMigrationTest", (self) => MultiGPUTest(self, false));
TEST_F(F, "MultiGPUAccessInPlaceTest", (self) => MultiGPUTest(self, true));

// ---- 18. MultiThreadMigrationTest ---------------------------------------------------------------

TEST_F(F, "MultiThreadMigrationTest", (self) => KFDTestLaunch(self, async (node) => {
  family_check(self, node);
  const size = 8 << 20;
  const qw = (d: number) => (d % 2 ? 0 : d / 2);
  const buf = await HsaSVMRange(self, size, node);
  const data = await HsaSVMRange(self, size, node);
  const q = await sdma_queue(self, node);
  await fill_dwords(self.proc, buf, size, qw);
  for (let loop = 0; loop < 2; loop++) {
    // SDMA reads buf (GPU faults with XNACK on) while another thread prefetches it to VRAM.
    const sub = await q.submit([...sdma_copy_packets(data, buf, size)]);
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, sub.status);
    const [waited, prefetched] = await Promise.all([q.wait(sub.seq), SVMRangePrefetchToNode(self.kmt, buf, size, node)]);
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, waited);
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, prefetched);
    // Not checked upstream: the copy saw buf's data wherever it lived at the time.
    EXPECT_EQ(-1, first_mismatch(await read_dwords(self.proc, data, size), qw, 1024), `loop ${loop}: data`);
    // A thread CPU-reads buf (CPU faults) while this one prefetches it back to RAM.
    const [vals, back] = await Promise.all([read_dwords(self.proc, buf, size), SVMRangePrefetchToNode(self.kmt, buf, size, 0)]);
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, back);
    ASSERT_EQ(-1, first_mismatch(vals, qw, 1024), `loop ${loop}: buf`);
  }
  // All of buf is back in RAM. page_out counts collected pages (svm_migrate_vma_to_ram), so a
  // page whose prefetch migration lost the race to the CPU fault holding it is counted twice.
  const first = buf / PAGE_SIZE;
  const left = svm_ranges_of(self.machine, self.proc).filter(([s, l]) => l >= first && s < first + size / PAGE_SIZE);
  EXPECT_EQ(0, left.reduce((n, [, , v]) => n + v, 0), "no page of buf is left in VRAM");
  EXPECT_GE(await ctr(self, node, "page_out"), await ctr(self, node, "page_in"));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await destroy_queue(self, q));
}));

// ---- 19. MigrateFileBackedRangeTest -------------------------------------------------------------

TEST_F(F, "MigrateFileBackedRangeTest", (self) => KFDTestLaunch(self, async (node) => {
  family_check(self, node);
  const name = `/tmp/kfdtest-${self.proc.pid}-${node}`;
  let fd = await self.proc.open(name, O_RDWR | O_CREAT | O_EXCL, 0o600);
  ASSERT_GE(fd, 0);
  const size = PAGE_SIZE;
  ASSERT_EQ(size, await self.proc.writeFd(fd, new Uint8Array(size).fill(0x30)));
  const file = await self.proc.mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_TRUE(file > 0);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await RegisterSVMRange(self.kmt, node, file, size, node));
  // Page-cache pages cannot become device-private: the range stays in RAM.
  EXPECT_EQ(0, await ctr(self, node, "page_in"));
  const q = await sdma_queue(self, node);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await q.fill(file, 0x33333333, size));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await destroy_queue(self, q));
  ASSERT_EQ(0, await self.proc.munmap(file, size));
  EXPECT_EQ(0, await self.proc.close(fd));
  fd = await self.proc.open(name, O_RDONLY);
  ASSERT_GE(fd, 0);
  const back = await self.proc.pread(fd, size, 0);
  ASSERT_TRUE(typeof back !== "number" && back.length === size);
  EXPECT_EQ(0x33, (back as Uint8Array)[0]);
  EXPECT_EQ(0, await self.proc.close(fd));
  EXPECT_EQ(0, await self.proc.unlink(name));
}));

// ---- 20. ReadOnlyRangeTest ----------------------------------------------------------------------

/** The forked child's part; its return value is the child's exit status. */
async function read_only_child(self: KfdtestSelf, child: Process, node: number): Promise<number> {
  const kmt = HsaKmt.of(child);
  // TearDown(); SetUp(): the child opens KFD for itself and takes the variant's XNACK mode.
  if ((await kmt.hsaKmtOpenKFD()) !== HSAKMT_STATUS.SUCCESS) return 1;
  if ((await kmt.hsaKmtSetXNACKMode(self.xnack)) !== HSAKMT_STATUS.SUCCESS) return 1;
  const c = { ...self, proc: child, kmt, queues: [] } as KfdtestSelf;
  const inb = await HsaSVMRange(c, 2 * PAGE_SIZE, node);
  await child.write(inb, new Uint8Array(PAGE_SIZE).fill(0x55));
  ASSERT_EQ(0, await child.mprotect(inb, PAGE_SIZE, PROT_READ));
  const out = await HsaSVMRange(c, PAGE_SIZE, node);
  const ev: { event: HsaEvent | null } = { event: null };
  if ((await kmt.hsaKmtCreateEvent({ EventType: HSA_EVENTTYPE_MEMORY, NodeId: node }, true, false, ev)) !== HSAKMT_STATUS.SUCCESS) return 2;
  const q = await sdma_queue(c, node);
  let ret = 0;
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await q.copy(out, inb, PAGE_SIZE));
  const first = (await child.read(out, 1))[0];
  EXPECT_EQ(0x55, first);
  if (first === 0x55) {
    await child.write(out, new Uint8Array(PAGE_SIZE).fill(0xaa));
    // The SDMA write to the read-only page must fault (this is the last step: the queues die).
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, (await q.submit([...sdma_copy_packets(inb, out, PAGE_SIZE)])).status);
    const st = await kmt.hsaKmtWaitOnEvent(ev.event!, 10_000);
    const fault = ev.event!.EventData.EventData.MemoryAccessFault;
    if (st !== HSAKMT_STATUS.SUCCESS) ret = st;
    else if (ev.event!.EventData.EventType !== HSA_EVENTTYPE_MEMORY) ret = HSAKMT_STATUS.ERROR;
    else if (fault?.VirtualAddress !== inb) ret = HSAKMT_STATUS.ERROR;
    EXPECT_EQ(inb, fault?.VirtualAddress, "fault address");
    EXPECT_EQ(0x55, (await child.read(inb, 1))[0], "the read-only page is unchanged");
  } else {
    ret = HSAKMT_STATUS.ERROR;
  }
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await q.destroy());
  await kmt.hsaKmtDestroyEvent(ev.event);
  return ret;
}

TEST_F(F, "ReadOnlyRangeTest", async (self) => {
  const node = self.defaultGPUNode;
  vram_check(self, node);
  // A child runs it: the GPU VM fault evicts every queue of the faulting process for good.
  const child = await self.proc.fork();
  self.others.push(child);
  const status = await read_only_child(self, child, node);
  await child.exit(status);
  self.others = self.others.filter((p) => p !== child);
  // dGPU: the child exits normally with status 0.
  EXPECT_EQ(0, status);
});

// ---- 21. HMMProfilingEvent ----------------------------------------------------------------------

TEST_F(F, "HMMProfilingEvent", (self) => KFDTestLaunch(self, async (node) => {
  const ver = { KernelInterfaceMajorVersion: 0, KernelInterfaceMinorVersion: 0 };
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, self.kmt.hsaKmtGetVersion(ver));
  if (ver.KernelInterfaceMinorVersion < 10) SKIP("KFD interface minor < 10: no SMI SVM events");
  if (node_props(self.kmt, node).Integrated) SKIP("Skipping test on APU.");
  vram_check(self, node);
  const size = 16 << 10;
  const buf = await HsaSVMRange(self, size, node);
  // The reader: every event index 1..11, then (after the barrier) one message.
  const fd = await open_smi(self, node, KFD_SMI_EVENT_MASK_FROM_INDEX(12) - 1);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangePrefetchToNode(self.kmt, buf, size, node));
  const raw = await self.proc.readFd(fd, KFD_SMI_EVENT_MSG_SIZE);
  ASSERT_TRUE(typeof raw !== "number" && raw.length > 0, "an SMI event was delivered");
  const msg = new TextDecoder().decode(raw as Uint8Array).split("\n")[0]!;
  const id = parseInt(msg, 16);
  const pid = self.proc.pid;
  let m: RegExpExecArray | null;
  if (id === KFD_SMI_EVENT_MIGRATE_START) {
    m = /^\S+ \d+ -(\d+) @([0-9a-f]+)\((\d+)\) \S+->\S+ \S+:\S+ (\d+)$/.exec(msg);
    ASSERT_TRUE(m !== null, msg);
    EXPECT_EQ(buf, parseInt(m![2]!, 16) * PAGE_SIZE);
    EXPECT_EQ(size, Number(m![3]) * PAGE_SIZE);
    EXPECT_EQ(pid, Number(m![1]));
    EXPECT_EQ(KFD_MIGRATE_TRIGGER_PREFETCH, Number(m![4]));
  } else if (id === KFD_SMI_EVENT_QUEUE_EVICTION) {
    m = /^\S+ \d+ -(\d+) \S+ (\d+)$/.exec(msg);
    ASSERT_TRUE(m !== null, msg);
    EXPECT_EQ(pid, Number(m![1]));
    EXPECT_EQ(KFD_QUEUE_EVICTION_TRIGGER_SVM, Number(m![2]));
  } else if (id === KFD_SMI_EVENT_QUEUE_RESTORE) {
    m = /^\S+ \d+ -(\d+) \S+/.exec(msg);
    ASSERT_TRUE(m !== null, msg);
    EXPECT_EQ(pid, Number(m![1]));
  } else if (id === KFD_SMI_EVENT_UNMAP_FROM_GPU) {
    m = /^\S+ \d+ -(\d+) @[0-9a-f]+\((\d+)\) \S+ (\d+)$/.exec(msg);
    ASSERT_TRUE(m !== null, msg);
    EXPECT_EQ(size, Number(m![2]) * PAGE_SIZE);
    EXPECT_EQ(pid, Number(m![1]));
    EXPECT_EQ(KFD_SVM_UNMAP_TRIGGER_UNMAP_FROM_CPU, Number(m![3]));
  } else {
    ASSERT_TRUE(false, `unexpected first SMI event: ${msg}`);
  }
  await self.proc.close(fd);
}));

// ---- 22. VramOvercommitTest, 23. VramOvercommitGiantRangeTest -----------------------------------

/** Upstream over-commits by 1 GiB in 512 MiB ranges; here by one VRAM's worth in 16 MiB ranges. */
const OVERCOMMIT_UNIT = 16 << 20;

TEST_F(F, "VramOvercommitTest", (self) => KFDTestLaunch(self, async (node) => {
  family_check(self, node);
  const vram = vram_check(self, node);
  const over = vram;
  if (self.gpuNodes.length * (vram + over) > GetSysMemSize(self.kmt) / 2) SKIP("Skipping test: Not enough system memory.");
  const n = (vram + over) / OVERCOMMIT_UNIT;
  const bufs: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = await mmap_anon(self.proc, OVERCOMMIT_UNIT);
    bufs.push(a);
    if ((await RegisterSVMRange(self.kmt, node, a, OVERCOMMIT_UNIT, node, 0)) !== HSAKMT_STATUS.SUCCESS) break;
  }
  EXPECT_EQ(n, bufs.length);
  // KFD made room by evicting older ranges to system memory (TTM eviction → page_out).
  EXPECT_GT(await ctr(self, node, "page_out"), 0, "older ranges were evicted to RAM");
  EXPECT_TRUE(vram_used_gpu(self.machine, gpu_id(self.kmt, node)) <= vram, "VRAM never over-filled");
  for (const a of bufs.reverse()) ASSERT_EQ(0, await self.proc.munmap(a, OVERCOMMIT_UNIT));
}));

/*
 * XFAIL (both cases, every variant): kemu mirrors Linux 6.8, where a process cannot evict its
 * own SVM BOs — amdgpu_ttm_bo_eviction_valuable() refuses any BO carrying a KFD eviction fence
 * of current->mm (amdkfd_fence_check_mm) — and svm_range_set_attr() returns the failed VRAM
 * allocation of the prefetch (svm_range_trigger_migration). So once this process's ranges fill
 * VRAM, the next RegisterSVMRange with prefetch = GPU fails instead of the overcommit the test
 * expects. Later kernels stopped failing set_attr when the prefetch migration fails (the range
 * stays in system memory).
 */
for (const v of ["xnack_off", "xnack_on", "xnack_off_2gpu", "xnack_on_2gpu"]) {
  XFAIL_ADD(F, v, "VramOvercommitTest");
  XFAIL_ADD(F, v, "VramOvercommitGiantRangeTest");
}

TEST_F(F, "VramOvercommitGiantRangeTest", async (self) => {
  const node = self.defaultGPUNode;
  family_check(self, node);
  const vram = vram_check(self, node);
  const size = vram + vram;
  if (size > GetSysMemSize(self.kmt) / 2) SKIP("Skipping test: no enough system memory.");
  const a = await mmap_anon(self.proc, size);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await RegisterSVMRange(self.kmt, node, a, size, node, 0));
  EXPECT_GT(await ctr(self, node, "page_in"), 0);
  ASSERT_EQ(0, await self.proc.munmap(a, size));
});

// ---- 24. PrefaultPartialRangeTest ---------------------------------------------------------------

TEST_F(F, "PrefaultPartialRangeTest", (self) => KFDTestLaunch(self, async (node) => {
  family_check(self, node);
  const size = 4 * PAGE_SIZE;
  const buf = await mmap_anon(self.proc, size);
  await self.proc.write(buf + PAGE_SIZE, new Uint8Array(PAGE_SIZE).fill(2));
  await self.proc.write(buf + 2 * PAGE_SIZE, new Uint8Array(PAGE_SIZE).fill(3));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await RegisterSVMRange(self.kmt, node, buf, size, 0, 0));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await SVMRangePrefetchToNode(self.kmt, buf, size, node));
  const q = await sdma_queue(self, node);
  const sub = await q.submit([...sdma_fill_packets(buf, 0x01010101, PAGE_SIZE), ...sdma_fill_packets(buf + 3 * PAGE_SIZE, 0x04040404, PAGE_SIZE)]);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, sub.status);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await q.wait(sub.seq));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await destroy_queue(self, q));
  for (let i = 0; i < 4; i++) EXPECT_EQ(i + 1, (await self.proc.read(buf + i * PAGE_SIZE, 1))[0], `page ${i}`);
  EXPECT_EQ(4, await ctr(self, node, "page_in"), "the two holes and the two pages went to VRAM");
  EXPECT_EQ(4, await ctr(self, node, "page_out"));
  ASSERT_EQ(0, await self.proc.munmap(buf, size));
}));

// ---- 25. VAHighAddr -----------------------------------------------------------------------------

TEST_F(F, "VAHighAddr", (self) => {
  const fam = node_props(self.kmt, self.defaultGPUNode).FamilyID ?? 0;
  SKIP(`Skipping test: needs GFX 12.5 or newer (57-bit GPU VA), family ID 0x${fam.toString(16)} has 48-bit VA`);
});

// ---- 26. SVMApiRegisterReGrant, 27. SVMApiPartialPageNotRevoked -----------------------------------

/** KFDSVMRangeReGrant_test.cpp / KFDSVMRangePartialPage_test.cpp: skip (App)APUs, gfx9+. */
function regrant_skips(self: KfdtestSelf, node: number): void {
  family_check(self, node);
  if (node_props(self.kmt, node).Integrated) SKIP(`Skipping test on (App)APU gpuNode ${node}`);
}

/** The access type the kernel reports for `node` over the page at `addr`. */
async function access_of(self: KfdtestSelf, node: number, addr: number): Promise<number> {
  const a = [{ type: HSA_SVM_ATTR_ACCESS, value: node }];
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtSVMGetAttr(addr, PAGE_SIZE, 1, a));
  return a[0]!.type;
}

TEST_F(F, "SVMApiRegisterReGrant", (self) => KFDTestLaunch(self, async (node) => {
  regrant_skips(self, node);
  const buf = await mmap_anon(self.proc, PAGE_SIZE);
  await self.proc.write(buf, new Uint8Array(PAGE_SIZE));
  // Register then deregister: the range is left NO_ACCESS.
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtRegisterMemory(self.kmt, buf, PAGE_SIZE));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtDeregisterMemory(self.kmt, buf));
  EXPECT_EQ(HSA_SVM_ATTR_NO_ACCESS, await access_of(self, node, buf));
  // The allocator reuses the VA without munmap: registering again must restore access.
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtRegisterMemory(self.kmt, buf, PAGE_SIZE));
  EXPECT_NE(HSA_SVM_ATTR_NO_ACCESS, await access_of(self, node, buf));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtDeregisterMemory(self.kmt, buf));
  ASSERT_EQ(0, await self.proc.munmap(buf, PAGE_SIZE));
}));

TEST_F(F, "SVMApiPartialPageNotRevoked", (self) => KFDTestLaunch(self, async (node) => {
  regrant_skips(self, node);
  const page = await mmap_anon(self.proc, 2 * PAGE_SIZE);
  await self.proc.write(page, new Uint8Array(2 * PAGE_SIZE));
  // Only 16 bytes are registered; the rest of the page stands for an allocator's neighbours.
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtRegisterMemory(self.kmt, page, 16));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtDeregisterMemory(self.kmt, page));
  EXPECT_NE(HSA_SVM_ATTR_NO_ACCESS, await access_of(self, node, page));
  // A whole page is ours, so that one does get revoked.
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtRegisterMemory(self.kmt, page, PAGE_SIZE));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtDeregisterMemory(self.kmt, page));
  EXPECT_EQ(HSA_SVM_ATTR_NO_ACCESS, await access_of(self, node, page));
  ASSERT_EQ(0, await self.proc.munmap(page, 2 * PAGE_SIZE));
}));

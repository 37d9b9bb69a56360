// kemu selftest: the SVM behaviour a ROCm process sees through libhsakmt, in the spirit of
// kfdtest's KFDSVMRangeTest (../shared/reference/peer-tests.md §1) but written for kemu's
// thunk (tools/hsakmt) and its dispatch helper. Every SVM test runs with XNACK off and on.
//
// - attributes_over_layouts: kfdtest's split/overlap registration patterns, then hsaKmtSVMGetAttr
//   over each piece, including the library's node-id translation and the fold of mixed ranges.
// - basic_system_mem, partial_unmap: GPU copies through system-memory ranges, before and after a
//   munmap punches a hole.
// - evict_fork_cow: fork + copy-on-write invalidates GPU mappings; the GPU then reads the
//   parent's new data and writes the parent's new page (XNACK off: queues evicted, restore_work;
//   XNACK on: unmapped, retry faults).
// - readonly_*: a GPU write to a read-only page raises the memory-exception event with its address.
// - unregistered_address: XNACK on creates the range on the fault; XNACK off faults for good.
// - smi_events, fault_counters: what the profiler interfaces report.
// Plus, without variants: switching XNACK with and without queues.

import {
  ASSERT_EQ, ASSERT_TRUE, EXPECT_EQ, EXPECT_TRUE, FIXTURE, FIXTURE_VARIANT_ADD, TEST_F, kselftest,
} from "../../../tools/testing/selftests/kselftest_harness.ts";
import { GpuDispatcher, copyDwordIsa, writeDwordIsa } from "../../../tools/hsakmt/dispatch.ts";
import {
  HSAKMT_STATUS, HSA_QUEUE_COMPUTE_AQL, HSA_SVM_ATTR_ACCESS, HSA_SVM_ATTR_CLR_FLAGS, HSA_SVM_ATTR_GRANULARITY,
  HSA_SVM_ATTR_PREFERRED_LOC, HSA_SVM_ATTR_PREFETCH_LOC, HSA_SVM_ATTR_SET_FLAGS, HSA_SVM_FLAG_COHERENT, HSA_SVM_FLAG_GPU_RO,
  HSA_SVM_FLAG_HOST_ACCESS, INVALID_NODEID, type HSA_SVM_ATTRIBUTE, type HsaQueueResource,
} from "../../../tools/hsakmt/hsakmttypes.ts";
import { KFD_SMI_EVENT_MASK_FROM_INDEX, KFD_SMI_EVENT_QUEUE_EVICTION, KFD_SMI_EVENT_QUEUE_RESTORE, KFD_SMI_EVENT_UNMAP_FROM_GPU } from "../../../include/uapi/linux/kfd_ioctl.ts";
import { PROT_READ } from "../../../include/uapi/asm-generic/mman.ts";
import {
  KFD_SELFTEST_MACHINE, PAGE, anon, kfd_close, kfd_open, read32, register_svm, write32, type KfdSelf, type XnackVariant,
} from "./kfd_util.ts";

export const kfd_svm = kselftest("kfd_svm", { machine: KFD_SELFTEST_MACHINE });

interface SvmSelf extends KfdSelf {
  gpu: GpuDispatcher;
}

const svm = FIXTURE<SvmSelf, XnackVariant>(kfd_svm, "svm", {
  self: () => ({}) as SvmSelf,
  setup: async (self, variant, _metadata) => {
    await kfd_open(self, _metadata.machine, variant.xnack);
  },
  teardown: async (self) => {
    await self.gpu?.destroy();
    await kfd_close(self);
  },
});

FIXTURE_VARIANT_ADD(svm, "xnack_off", { xnack: 0 as const });
FIXTURE_VARIANT_ADD(svm, "xnack_on", { xnack: 1 as const });

async function dispatcher(self: SvmSelf): Promise<GpuDispatcher> {
  const d = await GpuDispatcher.create(self.kmt, self.node);
  ASSERT_TRUE(typeof d !== "number");
  self.gpu = d as GpuDispatcher;
  return self.gpu;
}

/** CopyDword src → dst on the GPU; asserts the dispatch completed. */
async function gpu_copy(self: SvmSelf, src: number, dst: number): Promise<void> {
  const r = await self.gpu.run(copyDwordIsa(), { kernargs: [src, dst] });
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, r.status);
  ASSERT_EQ(null, r.fault);
  ASSERT_TRUE(r.completed);
}

// ---- attributes -----------------------------------------------------------------------------

const LAYOUTS: Array<{ pages: number; regs: Array<[number, number]> }> = [
  { pages: 16, regs: [[0, 16], [2, 1]] },
  { pages: 16, regs: [[0, 16], [1, 15]] },
  { pages: 18, regs: [[0, 16], [2, 16]] },
  { pages: 16, regs: [[0, 16], [0, 14]] },
  { pages: 16, regs: [[0, 16], [0, 16]] },
  { pages: 18, regs: [[0, 16], [0, 18]] },
  { pages: 32, regs: [[2, 2], [8, 2], [0, 32]] },
];

function query(node: number): HSA_SVM_ATTRIBUTE[] {
  return [
    { type: HSA_SVM_ATTR_PREFERRED_LOC, value: 0 }, { type: HSA_SVM_ATTR_PREFETCH_LOC, value: 0 },
    { type: HSA_SVM_ATTR_ACCESS, value: node }, { type: HSA_SVM_ATTR_SET_FLAGS, value: 0 },
    { type: HSA_SVM_ATTR_GRANULARITY, value: 0 },
  ];
}

TEST_F(svm, "attributes_over_layouts", async (self) => {
  for (const l of LAYOUTS) {
    const base = await anon(self.proc, l.pages);
    for (const [off, n] of l.regs) ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, base + off * PAGE, n * PAGE));
    // Every page is registered with the same attributes: any piece, and the whole, reads them back.
    for (const [off, n] of [...l.regs, [0, l.pages] as [number, number]]) {
      const q = query(self.node);
      ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtSVMGetAttr(base + off * PAGE, n * PAGE, q.length, q));
      EXPECT_EQ(0, q[0]!.value, "preferred: system memory is node 0");
      EXPECT_EQ(0, q[1]!.value);
      EXPECT_EQ(HSA_SVM_ATTR_ACCESS, q[2]!.type);
      EXPECT_EQ(self.node, q[2]!.value, "access values come back as node ids");
      EXPECT_EQ(HSA_SVM_FLAG_HOST_ACCESS | HSA_SVM_FLAG_COHERENT, q[3]!.value);
    }
    ASSERT_EQ(0, await self.proc.munmap(base, l.pages * PAGE));
  }
  // Mixed attributes: the fold says "undefined" (INVALID_NODEID) and ANDs the flags.
  const base = await anon(self.proc, 8);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, base, 8 * PAGE));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtSVMSetAttr(base + 4 * PAGE, 4 * PAGE, 2, [
    { type: HSA_SVM_ATTR_PREFERRED_LOC, value: INVALID_NODEID }, { type: HSA_SVM_ATTR_CLR_FLAGS, value: HSA_SVM_FLAG_COHERENT },
  ]));
  const q = query(self.node);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtSVMGetAttr(base, 8 * PAGE, q.length, q));
  EXPECT_EQ(INVALID_NODEID, q[0]!.value);
  EXPECT_EQ(0, q[1]!.value, "both halves were prefetched to system memory");
  EXPECT_EQ(HSA_SVM_FLAG_HOST_ACCESS, q[3]!.value);
  // Case 6 of kfdtest: the memory goes away under a registration; a later query has no VMA.
  ASSERT_EQ(0, await self.proc.munmap(base, 8 * PAGE));
  EXPECT_EQ(HSAKMT_STATUS.ERROR, await self.kmt.hsaKmtSVMGetAttr(base, 8 * PAGE, q.length, query(self.node)));
});

TEST_F(svm, "thunk_argument_checks", async (self) => {
  const base = await anon(self.proc, 4);
  const ok = [{ type: HSA_SVM_ATTR_ACCESS, value: self.node }];
  EXPECT_EQ(HSAKMT_STATUS.INVALID_PARAMETER, await self.kmt.hsaKmtSVMSetAttr(0, PAGE, 1, ok));
  EXPECT_EQ(HSAKMT_STATUS.INVALID_PARAMETER, await self.kmt.hsaKmtSVMSetAttr(base, 0, 1, ok));
  EXPECT_EQ(HSAKMT_STATUS.INVALID_PARAMETER, await self.kmt.hsaKmtSVMSetAttr(base + 8, PAGE, 1, ok));
  EXPECT_EQ(HSAKMT_STATUS.INVALID_PARAMETER, await self.kmt.hsaKmtSVMSetAttr(base, PAGE + 8, 1, ok));
  EXPECT_EQ(HSAKMT_STATUS.INVALID_NODE_UNIT, await self.kmt.hsaKmtSVMSetAttr(base, PAGE, 1, [{ type: HSA_SVM_ATTR_ACCESS, value: 0 }]),
    "the CPU node cannot be an access target");
  EXPECT_EQ(HSAKMT_STATUS.INVALID_NODE_UNIT, await self.kmt.hsaKmtSVMSetAttr(base, PAGE, 1, [{ type: HSA_SVM_ATTR_PREFETCH_LOC, value: 9 }]));
  EXPECT_EQ(HSAKMT_STATUS.INVALID_NODE_UNIT, await self.kmt.hsaKmtSVMGetAttr(base, PAGE, 1, [{ type: HSA_SVM_ATTR_ACCESS, value: 0 }]));
  EXPECT_EQ(HSAKMT_STATUS.ERROR, await self.kmt.hsaKmtSVMSetAttr(base, PAGE, 1, [{ type: 42, value: 0 }]), "kernel -EINVAL");
  // Nothing registered, nothing queried changed the defaults.
  const q = query(self.node);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtSVMGetAttr(base, 4 * PAGE, q.length, q));
  EXPECT_EQ(INVALID_NODEID, q[0]!.value);
});

// ---- GPU access -----------------------------------------------------------------------------

TEST_F(svm, "basic_system_mem", async (self) => {
  await dispatcher(self);
  const src = await anon(self.proc, 1);
  const dst = await anon(self.proc, 1);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, src, PAGE));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, dst, PAGE));
  await write32(self.proc, src, 0x01010101);
  await gpu_copy(self, src, dst);
  EXPECT_EQ(0x01010101, await read32(self.proc, dst));
});

TEST_F(svm, "partial_unmap", async (self) => {
  await dispatcher(self);
  const buf = await anon(self.proc, 16);
  const dst = await anon(self.proc, 16);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, buf, 16 * PAGE));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, dst, 16 * PAGE));
  for (let i = 0; i < 16; i++) await write32(self.proc, buf + i * PAGE, 0x01010101);
  await gpu_copy(self, buf + 6 * PAGE, dst);
  ASSERT_EQ(0, await self.proc.munmap(buf + 2 * PAGE, 4 * PAGE));
  await write32(self.proc, dst, 0);
  await gpu_copy(self, buf + 6 * PAGE, dst);
  EXPECT_EQ(0x01010101, await read32(self.proc, dst), "after the hole");
  await write32(self.proc, dst, 0);
  await gpu_copy(self, buf, dst);
  EXPECT_EQ(0x01010101, await read32(self.proc, dst), "before the hole");
  // The hole itself is gone for the GPU too.
  const r = await self.gpu.run(copyDwordIsa(), { kernargs: [buf + 3 * PAGE, dst] });
  ASSERT_TRUE(r.fault !== null, "reading the unmapped hole faults");
  EXPECT_EQ(buf + 3 * PAGE, r.fault!.VirtualAddress);
  ASSERT_EQ(0, await self.proc.munmap(buf, 2 * PAGE));
  ASSERT_EQ(0, await self.proc.munmap(buf + 6 * PAGE, 10 * PAGE));
});

TEST_F(svm, "evict_fork_cow", async (self) => {
  await dispatcher(self);
  const stack = await anon(self.proc, 8);
  const A = stack;
  const B = stack + 2 * PAGE;
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, A, PAGE));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, B, PAGE));
  await write32(self.proc, A, 0xdeadbeef);
  await gpu_copy(self, A, B);
  ASSERT_EQ(0xdeadbeef, await read32(self.proc, B));
  const child = await self.proc.fork();
  // The parent writes first: copy-on-write gives it new pages the GPU must follow.
  await write32(self.proc, A, 0xd00bed00);
  await write32(self.proc, B, 0xdeadbeef);
  await gpu_copy(self, A, B);
  EXPECT_EQ(0xd00bed00, await read32(self.proc, A));
  EXPECT_EQ(0xd00bed00, await read32(self.proc, B), "the GPU read the parent's new A and wrote the parent's B");
  EXPECT_EQ(0xdeadbeef, await read32(child, B), "the child kept the old page");
  await child.exit();
});

/** kfdtest's ReadOnlyRangeTest: a GPU write to a PROT_READ page, reported at that page. */
TEST_F(svm, "readonly_mprotect_fault", async (self) => {
  await dispatcher(self);
  const inbuf = await anon(self.proc, 2);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, inbuf, 2 * PAGE));
  await write32(self.proc, inbuf, 0x55555555);
  ASSERT_EQ(0, await self.proc.mprotect(inbuf, PAGE, PROT_READ));
  const out = await anon(self.proc, 1);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, out, PAGE));
  await gpu_copy(self, inbuf, out);
  EXPECT_EQ(0x55555555, await read32(self.proc, out), "reading a read-only page is fine");
  const r = await self.gpu.run(writeDwordIsa(), { kernargs: [inbuf, 0xaaaaaaaa] });
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, r.status);
  ASSERT_TRUE(r.fault !== null, "the memory-exception event fired");
  EXPECT_EQ(inbuf, r.fault!.VirtualAddress);
  EXPECT_EQ(self.node, r.fault!.NodeId);
  EXPECT_EQ(1, r.fault!.Failure.ReadOnly);
  EXPECT_EQ(0x55555555, await read32(self.proc, inbuf), "the write did not land");
});

/**
 * GPU_RO on a writable mapping. XNACK off: the PTE has no WRITE bit, the write faults for good.
 * XNACK on: svm_range_restore_pages only checks the VMA, so Linux keeps answering the retry
 * fault with the same read-only PTE; kemu's UTCL2 gives up after its retry timeout (2 s of
 * virtual time, hw/amdgpu/cost_model.ts) and raises the no-retry fault the event reports.
 */
TEST_F(svm, "readonly_gpu_ro_flag_fault", async (self) => {
  await dispatcher(self);
  const buf = await anon(self.proc, 4);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, buf, 4 * PAGE, 0, HSA_SVM_FLAG_GPU_RO));
  const target = buf + 2 * PAGE + 0x40;
  const r = await self.gpu.run(writeDwordIsa(), { kernargs: [target, 7] });
  ASSERT_TRUE(r.fault !== null);
  // The GPU reports the faulting page (VM_L2_PROTECTION_FAULT_ADDR holds a page number).
  EXPECT_EQ(buf + 2 * PAGE, r.fault!.VirtualAddress);
  EXPECT_EQ(1, r.fault!.Failure.ReadOnly);
  EXPECT_EQ(0, await read32(self.proc, target));
});

/** §7: a GPU access to memory nobody registered. */
TEST_F(svm, "unregistered_address", async (self, variant) => {
  await dispatcher(self);
  const src = await anon(self.proc, 1);
  const dst = await anon(self.proc, 1);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, dst, PAGE));
  await write32(self.proc, src, 0x600d);
  const r = await self.gpu.run(copyDwordIsa(), { kernargs: [src, dst] });
  if (variant.xnack) {
    ASSERT_TRUE(r.completed, "XNACK on: the retry fault creates and maps a range");
    EXPECT_EQ(0x600d, await read32(self.proc, dst));
  } else {
    ASSERT_TRUE(r.fault !== null, "XNACK off: fatal");
    EXPECT_EQ(src, r.fault!.VirtualAddress);
    EXPECT_EQ(1, r.fault!.Failure.NotPresent);
  }
});

// ---- observability --------------------------------------------------------------------------

/**
 * SMI: a munmap unmaps the range from the GPU (UNMAP_FROM_GPU, trigger UNMAP_FROM_CPU); an
 * mprotect invalidation evicts the queues with XNACK off (QUEUE_EVICTION for SVM, then
 * QUEUE_RESTORE from restore_work) and unmaps with XNACK on (trigger MMU_NOTIFY).
 */
TEST_F(svm, "smi_events", async (self, variant) => {
  await dispatcher(self);
  const out = { fd: -1 };
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtOpenSMI(self.node, out));
  const mask = KFD_SMI_EVENT_MASK_FROM_INDEX(KFD_SMI_EVENT_QUEUE_EVICTION) + KFD_SMI_EVENT_MASK_FROM_INDEX(KFD_SMI_EVENT_QUEUE_RESTORE) +
    KFD_SMI_EVENT_MASK_FROM_INDEX(KFD_SMI_EVENT_UNMAP_FROM_GPU);
  const m = new Uint8Array(8);
  new DataView(m.buffer).setUint32(0, mask, true);
  ASSERT_EQ(8, await self.proc.writeFd(out.fd, m));
  const a = await anon(self.proc, 4);
  const b = await anon(self.proc, 4);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, a, 4 * PAGE));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, b, 4 * PAGE));
  await gpu_copy(self, a, a + PAGE);
  await gpu_copy(self, b, b + PAGE);
  ASSERT_EQ(0, await self.proc.munmap(a, 4 * PAGE));
  ASSERT_EQ(0, await self.proc.mprotect(b, 4 * PAGE, PROT_READ));
  // The next dispatch runs once the queues are back.
  await gpu_copy(self, b, self.gpu.code_address + 8);
  const text = await self.proc.readFd(out.fd, 4096);
  ASSERT_TRUE(typeof text !== "number");
  const lines = new TextDecoder().decode(text as Uint8Array).trim().split("\n");
  const pid = self.proc.pid;
  const gpu = self.gpu_id.toString(16);
  const has = (re: string) => lines.some((l) => new RegExp(`^${re}$`).test(l));
  // "b <ns> -<pid> @<start page>(<npages>) <gpu_id> <trigger>", numbers in hex but the time.
  EXPECT_TRUE(has(`b \\d+ -${pid} @${(a / PAGE).toString(16)}\\(4\\) ${gpu} 2`), lines.join(" | "));
  if (variant.xnack) {
    EXPECT_TRUE(has(`b \\d+ -${pid} @${(b / PAGE).toString(16)}\\(4\\) ${gpu} 0`), lines.join(" | "));
    EXPECT_TRUE(!lines.some((l) => l.startsWith("9 ")), "XNACK on: queues keep running");
  } else {
    EXPECT_TRUE(has(`9 \\d+ -${pid} ${gpu} 0`), lines.join(" | "));
    EXPECT_TRUE(has(`a \\d+ -${pid} ${gpu}`), lines.join(" | "));
  }
});

TEST_F(svm, "fault_counters", async (self, variant) => {
  await dispatcher(self);
  const src = await anon(self.proc, 2);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, src, 2 * PAGE));
  await gpu_copy(self, src, src + PAGE);
  const dir = `/sys/class/kfd/kfd/proc/${self.proc.pid}/counters_${self.gpu_id}`;
  const faults = Number((await self.proc.readFile(`${dir}/faults`)).trim());
  if (variant.xnack) EXPECT_TRUE(faults > 0, `XNACK on: retry faults counted (${faults})`);
  else EXPECT_EQ(0, faults, "XNACK off: mapped at registration, no faults");
  EXPECT_EQ(0, Number((await self.proc.readFile(`${dir}/page_in`)).trim()), "system memory only: no migrations");
  EXPECT_EQ(0, Number((await self.proc.readFile(`${dir}/page_out`)).trim()));
});

// ---- XNACK switching ------------------------------------------------------------------------

const xnack = FIXTURE<KfdSelf, undefined>(kfd_svm, "xnack", {
  self: () => ({}) as KfdSelf,
  setup: async (self, _v, _metadata) => kfd_open(self, _metadata.machine, null),
  teardown: async (self) => kfd_close(self),
});

/** kfdtest's XNACKModeTest: switching works only while the process has no queue. */
TEST_F(xnack, "switch_with_and_without_queues", async (self) => {
  const cur = { enable: -1 };
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtGetXNACKMode(cur));
  EXPECT_EQ(1, cur.enable, "gfx90a processes start with retry faults on");
  for (const mode of [0, 1, 0]) {
    ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtSetXNACKMode(mode));
    ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtGetXNACKMode(cur));
    EXPECT_EQ(mode, cur.enable);
  }
  const ring = await self.kmt.allocSvm(PAGE, self.node);
  const q: HsaQueueResource = { QueueId: 0, QueueDoorBell: 0, QueueRptrValue: ring + 2048, QueueWptrValue: ring + 2056 };
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtCreateQueue(self.node, HSA_QUEUE_COMPUTE_AQL, 100, 0, ring, 1024, null, q));
  EXPECT_EQ(HSAKMT_STATUS.ERROR, await self.kmt.hsaKmtSetXNACKMode(1), "a queue exists: -EBUSY");
  EXPECT_EQ(HSAKMT_STATUS.ERROR, await self.kmt.hsaKmtSetXNACKMode(0), "even for the current mode");
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtGetXNACKMode(cur), "querying is always fine");
  EXPECT_EQ(0, cur.enable);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtDestroyQueue(q.QueueId));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtSetXNACKMode(1));
});

// kemu selftest: SDMA user queues through /dev/kfd, as the ROCm runtime's blit kernels use them —
// the topology's SDMA engine and queue counts, a copy and a fill on an HSA_QUEUE_SDMA queue
// between SVM ranges of the process (fence in user memory), every SDMA queue of the GPU taken
// (the next one fails with -ENOMEM, a destroyed one can be had again), and an XNACK-off eviction
// (an mprotect invalidation) quiescing the SDMA queue with a copy in flight: the copy drains,
// the queue resumes after restore and later copies still work; and a copy from unregistered
// memory, served by a retry fault with XNACK on and a memory exception with XNACK off.

import { ASSERT_EQ, ASSERT_TRUE, EXPECT_EQ, EXPECT_TRUE, FIXTURE, TEST_F, kselftest } from "../../../tools/testing/selftests/kselftest_harness.ts";
import { SdmaQueue, sdma_copy_packets } from "../../../tools/hsakmt/sdma.ts";
import { HSAKMT_STATUS, type HsaNodeProperties } from "../../../tools/hsakmt/hsakmttypes.ts";
import * as K from "../../../include/uapi/linux/kfd_ioctl.ts";
import { ENOMEM } from "../../../include/uapi/asm-generic/errno.ts";
import { PROT_READ } from "../../../include/uapi/asm-generic/mman.ts";
import { PCI_HOST } from "../../../kernel/tokens.ts";
import type { Machine } from "../../../kernel/machine.ts";
import type { AmdGpuDevice } from "../../../hw/amdgpu/device.ts";
import { KFD_SELFTEST_MACHINE, PAGE, anon, kfd_close, kfd_open, register_svm, type KfdSelf } from "./kfd_util.ts";

export const kfd_sdma = kselftest("kfd_sdma", { machine: KFD_SELFTEST_MACHINE });

interface SdmaSelf extends KfdSelf {
  queues: SdmaQueue[];
}

const sdma = FIXTURE<SdmaSelf, undefined>(kfd_sdma, "sdma", {
  self: () => ({ queues: [] }) as unknown as SdmaSelf,
  setup: async (self, _v, metadata) => kfd_open(self, metadata.machine, 0),
  teardown: async (self) => {
    for (const q of self.queues) await q.destroy();
    await kfd_close(self);
  },
});

async function sdma_queue(self: SdmaSelf): Promise<SdmaQueue> {
  const q = await SdmaQueue.create(self.kmt, self.node);
  ASSERT_TRUE(typeof q !== "number", `SDMA queue: status ${String(q)}`);
  self.queues.push(q as SdmaQueue);
  return q as SdmaQueue;
}

/** `npages` of anonymous memory registered for the GPU, filled with a byte pattern from `seed`. */
async function buffer(self: SdmaSelf, npages: number, seed: number): Promise<number> {
  const a = await anon(self.proc, npages);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, a, npages * PAGE));
  await self.proc.write(a, Uint8Array.from({ length: npages * PAGE }, (_, i) => (i * 7 + seed) & 0xff));
  return a;
}

async function equal(self: SdmaSelf, a: number, b: number, n: number): Promise<boolean> {
  const x = await self.proc.read(a, n);
  const y = await self.proc.read(b, n);
  return x.every((v, i) => v === y[i]);
}

function gpu_model(machine: Machine): AmdGpuDevice {
  return machine.symbol(PCI_HOST).model(3 * 8) as AmdGpuDevice;
}

function sdma_args(self: KfdSelf, ring: number): Record<string, number> {
  return {
    ring_base_address: ring, write_pointer_address: ring + 2048, read_pointer_address: ring + 2056, doorbell_offset: 0,
    ring_size: 1024, gpu_id: self.gpu_id, queue_type: K.KFD_IOC_QUEUE_TYPE_SDMA, queue_percentage: 100, queue_priority: 7,
    queue_id: 0, eop_buffer_address: 0, eop_buffer_size: 0, ctx_save_restore_address: 0, ctx_save_restore_size: 0, ctl_stack_size: 0,
  };
}

TEST_F(sdma, "topology_counts", async (self, _v, metadata) => {
  const props: Partial<HsaNodeProperties> = {};
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, self.kmt.hsaKmtGetNodeProperties(self.node, props));
  EXPECT_EQ(gpu_model(metadata.machine).sdma.length, props.NumSdmaEngines, "every SDMA engine offers user queues");
  EXPECT_EQ(0, props.NumSdmaXgmiEngines);
  EXPECT_EQ(2, props.NumSdmaQueuesPerEngine);
});

TEST_F(sdma, "copy_and_fill", async (self) => {
  const q = await sdma_queue(self);
  const n = 16 * PAGE;
  const src = await buffer(self, 16, 1);
  const dst = await buffer(self, 16, 2);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await q.copy(dst + 5, src + 3, n - 64));
  EXPECT_TRUE(await equal(self, dst + 5, src + 3, n - 64), "copied");
  const before = await self.proc.read(dst, 5);
  EXPECT_TRUE(before.every((v, i) => v === ((i * 7 + 2) & 0xff)), "bytes before the destination untouched");
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await q.fill(dst + PAGE, 0x5a5a5a5a, 2 * PAGE));
  const filled = await self.proc.read(dst + PAGE, 2 * PAGE);
  EXPECT_TRUE(filled.every((v) => v === 0x5a), "filled");
  // copy 7 + fill 5 dwords, each followed by fence 4 + trap 2.
  EXPECT_EQ((7 + 6 + 5 + 6) * 4, await q.read_pointer(), "read pointer written back: every packet consumed");
});

TEST_F(sdma, "exhaust_queues", async (self, _v, metadata) => {
  const props: Partial<HsaNodeProperties> = {};
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, self.kmt.hsaKmtGetNodeProperties(self.node, props));
  const total = props.NumSdmaEngines! * props.NumSdmaQueuesPerEngine!;
  for (let i = 0; i < total; i++) await sdma_queue(self);
  const ring = await self.kmt.allocSvm(PAGE, self.node);
  EXPECT_EQ(-ENOMEM, await self.proc.ioctl(self.kmt.fd, K.AMDKFD_IOC_CREATE_QUEUE, sdma_args(self, ring)), "every SDMA queue is taken");
  EXPECT_TRUE(metadata.machine.k.log.dmesg().some((l) => l.includes("No more SDMA queue to allocate")));
  // Every engine serves: a copy on the last queue (engine n-1, RLC queue 1) works.
  const src = await buffer(self, 1, 3);
  const dst = await buffer(self, 1, 4);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.queues[total - 1]!.copy(dst, src, PAGE));
  EXPECT_TRUE(await equal(self, dst, src, PAGE));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.queues.shift()!.destroy());
  const again = await SdmaQueue.create(self.kmt, self.node);
  ASSERT_TRUE(typeof again !== "number", "a destroyed queue's slot is free again");
  self.queues.push(again as SdmaQueue);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await (again as SdmaQueue).copy(dst, src, 64));
});

TEST_F(sdma, "xnack_off_eviction_quiesces", async (self, _v, metadata) => {
  const q = await sdma_queue(self);
  const n = 256 * PAGE;
  const src = await buffer(self, 256, 5);
  const dst = await buffer(self, 256, 6);
  const other = await buffer(self, 1, 7);
  const engines = gpu_model(metadata.machine).sdma;
  const disables = () => engines.reduce((s, e) => s + e.stats.rlc_disables, 0);
  const d0 = disables();
  // A 1 MiB copy in flight; an invalidation of another range evicts every queue of the process.
  const copy = await q.submit(sdma_copy_packets(dst, src, n));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, copy.status);
  ASSERT_EQ(0, await self.proc.mprotect(other, PAGE, PROT_READ));
  EXPECT_TRUE(disables() > d0, "the SDMA queue was quiesced");
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await q.wait(copy.seq), "resumed after restore");
  EXPECT_TRUE(await equal(self, dst, src, n), "the copy is complete");
  // The queue keeps working after the restore.
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await q.fill(dst, 0x11111111, PAGE));
  EXPECT_TRUE((await self.proc.read(dst, PAGE)).every((v) => v === 0x11));
});

/**
 * The copy's source was never registered: with XNACK on the SDMA request retries, KFD's fault
 * handler creates and maps a range, the packet replays and the copy completes (as a shader's
 * access would); with XNACK off the fault is fatal and the runtime is told its address.
 */
TEST_F(sdma, "unregistered_source_xnack_on", async (self) => {
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtSetXNACKMode(1));
  const q = await sdma_queue(self);
  const src = await anon(self.proc, 2);
  const dst = await buffer(self, 2, 8);
  await self.proc.write(src, Uint8Array.from({ length: 2 * PAGE }, (_, i) => (i * 13) & 0xff));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await q.copy(dst, src, 2 * PAGE), "the retry fault is served");
  EXPECT_TRUE(await equal(self, dst, src, 2 * PAGE));
});

TEST_F(sdma, "unregistered_source_xnack_off", async (self) => {
  const q = await sdma_queue(self);
  const src = await anon(self.proc, 1);
  const dst = await buffer(self, 1, 9);
  EXPECT_EQ(HSAKMT_STATUS.ERROR, await q.copy(dst, src, PAGE), "a memory exception instead of completion");
  const fault = q.memory_event.EventData.EventData.MemoryAccessFault;
  ASSERT_TRUE(fault !== undefined);
  EXPECT_EQ(src, fault!.VirtualAddress);
});

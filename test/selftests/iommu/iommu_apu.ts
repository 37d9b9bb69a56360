// kemu selftest: GPU work of a user process on the IOMMUv2 APU machine through the real stack —
// amdgpu and amdkfd bound to the Carrizo part, the process using the thunk (tools/hsakmt) as a
// ROCm runtime of the Carrizo era would: /dev/kfd opened, an AQL queue and events created, a
// program dispatched. KFD bound the process's PASID to the GPU (kfd_iommu_bind_process_to_device)
// when the queue was created; its VMID is mapped to that PASID, so every GPU access — packet
// fetch, instruction fetch, loads, stores, the completion signal — is translated by the AMD
// IOMMU through the process's own page tables. Nothing is registered with KFD: pages the CPU
// never touched reach the GPU only through PRI page requests, the PPR log, ppr_notifier and
// do_fault on iommu_wq.
//
//   gpu_reads_cpu_data_and_cpu_reads_gpu_data: out[i] = in[i] + 1 over two pages each way;
//   invalid_access_raises_memory_exception: a load from an address with no VMA (NotPresent)
//     and a store to a read-only mapping (ReadOnly) reach the process as KFD memory exceptions
//     (iommu_invalid_ppr_cb → kfd_signal_iommu_event), with the address;
//   cpu_update_after_gpu_read_is_seen: a copy-on-write break between two dispatches moves the
//     page (the mmu notifier must flush the IOTLB and the GPU's ATC);
//   exit_with_bound_queue: the process exits with its queue loaded and its PASID bound.
//   two_processes_two_pasids: two processes, the same virtual addresses, their own PASIDs and
//     VMIDs: each queue reads and writes its own process's pages.

import { APU_MACHINE, GiB, type MachineSpec } from "../../../kernel/machine_spec.ts";
import type { Machine } from "../../../kernel/machine.ts";
import { PCI_HOST } from "../../../kernel/tokens.ts";
import type { AmdGpuDevice } from "../../../hw/amdgpu/device.ts";
import type { Process } from "../../../tools/runtime/process.ts";
import { HsaKmt } from "../../../tools/hsakmt/hsakmt.ts";
import { GpuDispatcher, type DispatchResult } from "../../../tools/hsakmt/dispatch.ts";
import { HSAKMT_STATUS } from "../../../tools/hsakmt/hsakmttypes.ts";
import {
  ASSERT_EQ, ASSERT_GE, ASSERT_TRUE, EXPECT_EQ, EXPECT_GE, EXPECT_TRUE, FIXTURE, TEST_F, kselftest, type TestMetadata,
} from "../../../tools/testing/selftests/kselftest_harness.ts";
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../include/uapi/asm-generic/mman.ts";
import {
  SREG_KERNARG, global_load_dword, global_load_dwordx2, global_store_dword, s_addi, s_add, s_cbranch_lt, s_endpgm, s_mov_b64,
  s_muli, type Instr,
} from "../../../hw/amdgpu/isa.ts";
import { kfd_processes } from "../kfd/kfd_util.ts";

export const APU_SELFTEST_MACHINE: MachineSpec = { ...APU_MACHINE, name: "apu", ram_size: 2 * GiB };

export const iommu_apu = kselftest("iommu_apu", { machine: APU_SELFTEST_MACHINE });

const PAGE = 4096;
const DATA_PAGES = 2;
const WAIT_MS = 1000;

interface ApuSelf {
  p: Process;
  kmt: HsaKmt;
  node: number;
  gpu_id: number;
  disp: GpuDispatcher;
  exited: boolean;
}

function u32le(vals: readonly number[]): Uint8Array {
  const b = new Uint8Array(vals.length * 4);
  const dv = new DataView(b.buffer);
  vals.forEach((v, i) => dv.setUint32(i * 4, v >>> 0, true));
  return b;
}

function read_u32s(bytes: Uint8Array): number[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.length / 4 }, (_, i) => dv.getUint32(i * 4, true));
}

/** kernargs [src, dst, count]: dst[i] = src[i] + 1 for i < count, one wave. */
function add_one_kernel(): Instr[] {
  return [
    global_load_dwordx2(4, SREG_KERNARG, 0), // s4 = src
    global_load_dwordx2(5, SREG_KERNARG, 8), // s5 = dst
    global_load_dword(6, SREG_KERNARG, 16), // s6 = count
    s_mov_b64(7, 0), // s7 = i
    // loop: (index 4)
    s_muli(8, 7, 4),
    s_add(9, 4, 8),
    global_load_dword(10, 9, 0),
    s_addi(10, 10, 1),
    s_add(11, 5, 8),
    global_store_dword(11, 10, 0),
    s_addi(7, 7, 1),
    s_cbranch_lt(7, 6, 4 - 12), // back to the loop head from index 11
    s_endpgm(),
  ];
}

async function map(p: Process, bytes: number, prot: number): Promise<number> {
  const a = await p.mmap(0, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS);
  ASSERT_GE(a, 0);
  return a;
}

function dispatch(self: ApuSelf, src: number, dst: number, count: number): Promise<DispatchResult> {
  return self.disp.run(add_one_kernel(), { kernargs: [src, dst, count], timeoutMs: WAIT_MS });
}

/** After a memory exception the wave went on (the failed access used the default page): wait for its end. */
async function finish_after_fault(self: ApuSelf): Promise<void> {
  for (let i = 0; i < 10 && (await self.disp.signal_value()) !== 0; i++) {
    await self.kmt.hsaKmtWaitOnEvent(self.disp.signal_event, WAIT_MS);
  }
  EXPECT_EQ(0, await self.disp.signal_value(), "the faulting dispatch still completed");
}

function gpu_of(md: TestMetadata): AmdGpuDevice {
  return md.machine.symbol(PCI_HOST).model(0x18) as AmdGpuDevice;
}

const apu = FIXTURE<ApuSelf>(iommu_apu, "apu", {
  setup: async (self, _variant, _metadata) => {
    const machine: Machine = _metadata.machine;
    self.exited = false;
    self.p = await machine.spawn("iommu_apu");
    self.kmt = HsaKmt.of(self.p);
    ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtOpenKFD());
    self.node = self.kmt.gpuNodes()[0]!;
    ASSERT_TRUE(self.kmt.isIommuV2Apu(self.node));
    const props: { KFDGpuID?: number } = {};
    ASSERT_EQ(HSAKMT_STATUS.SUCCESS, self.kmt.hsaKmtGetNodeProperties(self.node, props));
    self.gpu_id = props.KFDGpuID!;
    const d = await GpuDispatcher.create(self.kmt, self.node);
    ASSERT_TRUE(d instanceof GpuDispatcher);
    self.disp = d as GpuDispatcher;
  },
  teardown: async (self) => {
    if (self.exited) return;
    await self.disp?.destroy();
    await self.kmt?.hsaKmtCloseKFD();
    await self.p.exit();
  },
});

TEST_F(apu, "gpu_reads_cpu_data_and_cpu_reads_gpu_data", async (self, _v, _metadata) => {
  const n = (DATA_PAGES * PAGE) / 4;
  const src = await map(self.p, DATA_PAGES * PAGE, PROT_READ | PROT_WRITE);
  const dst = await map(self.p, DATA_PAGES * PAGE, PROT_READ | PROT_WRITE);
  const input = Array.from({ length: n }, (_, i) => (i * 2654435761) >>> 0);
  await self.p.write(src, u32le(input));
  const ats = gpu_of(_metadata).atc!.ats;
  const before = ats.stats.page_requests;
  const r = await dispatch(self, src, dst, n);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, r.status);
  ASSERT_TRUE(r.completed);
  const out = read_u32s(await self.p.read(dst, n * 4));
  for (let i = 0; i < n; i++) if (out[i] !== ((input[i]! + 1) >>> 0)) ASSERT_EQ((input[i]! + 1) >>> 0, out[i]);
  // dst was never touched by the CPU: each of its pages came in through a page request.
  EXPECT_GE(ats.stats.page_requests - before, DATA_PAGES);
  EXPECT_EQ(0, ats.stats.responses_invalid);
  const dmesg = _metadata.machine.dmesg();
  EXPECT_TRUE(dmesg.some((l) => l.includes("AMD-Vi: AMD IOMMUv2 loaded and initialized")));
  EXPECT_TRUE(dmesg.some((l) => l.includes("kfd: added device 1002:9874")));
});

TEST_F(apu, "invalid_access_raises_memory_exception", async (self, _v, _metadata) => {
  const dst = await map(self.p, PAGE, PROT_READ | PROT_WRITE);
  const hole = dst + 256 * PAGE; // no VMA
  let r = await dispatch(self, hole, dst, 1);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, r.status);
  ASSERT_TRUE(r.fault !== null);
  EXPECT_EQ(hole, r.fault!.VirtualAddress);
  EXPECT_EQ(1, r.fault!.Failure.NotPresent);
  EXPECT_EQ(self.node, r.fault!.NodeId);
  await finish_after_fault(self);
  EXPECT_EQ(1, read_u32s(await self.p.read(dst, 4))[0], "the failed load read the default page's zero; the wave went on");
  const ro = await map(self.p, PAGE, PROT_READ);
  const src = await map(self.p, PAGE, PROT_READ | PROT_WRITE);
  await self.p.write(src, u32le([41]));
  r = await dispatch(self, src, ro, 1);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, r.status);
  ASSERT_TRUE(r.fault !== null);
  EXPECT_EQ(ro, r.fault!.VirtualAddress);
  EXPECT_EQ(0, r.fault!.Failure.NotPresent);
  EXPECT_EQ(1, r.fault!.Failure.ReadOnly);
  await finish_after_fault(self);
  EXPECT_TRUE(_metadata.machine.dmesg().some((l) => /Invalid PPR device 0:3\.0 pasid 0x[0-9a-f]+ address 0x[0-9A-F]+ flags 0x/.test(l)));
});

TEST_F(apu, "cpu_update_after_gpu_read_is_seen", async (self) => {
  const src = await map(self.p, PAGE, PROT_READ | PROT_WRITE);
  const dst = await map(self.p, PAGE, PROT_READ | PROT_WRITE);
  await self.p.write(src, u32le([100]));
  ASSERT_TRUE((await dispatch(self, src, dst, 1)).completed);
  EXPECT_EQ(101, read_u32s(await self.p.read(dst, 4))[0]);
  // fork() makes src copy-on-write; the parent's store then moves it to a new page while the
  // child keeps the old one alive. A stale IOTLB or ATC entry would still read 100.
  const child = await self.p.fork();
  await self.p.write(src, u32le([200]));
  ASSERT_TRUE((await dispatch(self, src, dst, 1)).completed);
  EXPECT_EQ(201, read_u32s(await self.p.read(dst, 4))[0], "the mmu notifier flushed the IOMMU and device TLBs");
  EXPECT_EQ(100, read_u32s(await child.read(src, 4))[0]);
  await child.exit();
});

TEST_F(apu, "exit_with_bound_queue", async (self, _v, _metadata) => {
  const src = await map(self.p, PAGE, PROT_READ | PROT_WRITE);
  const dst = await map(self.p, PAGE, PROT_READ | PROT_WRITE);
  await self.p.write(src, u32le([7]));
  ASSERT_TRUE((await dispatch(self, src, dst, 1)).completed);
  await self.p.exit();
  self.exited = true;
  // mn_release ran KFD's shutdown callback (queue dequeued) and cleared GCR3; KFD's release work
  // then unbound the PASID. The machine's shutdown check sees nothing left behind.
  const ats = gpu_of(_metadata).atc!.ats;
  ASSERT_TRUE(ats.outstanding_requests() === 0);
  EXPECT_EQ(0, kfd_processes(_metadata.machine));
});

TEST_F(apu, "two_processes_two_pasids", async (self, _v, _metadata) => {
  // A second process gets its own PASID and VMID: each GPU queue sees its own address space.
  const q = await _metadata.machine.spawn("iommu_apu2");
  const kmt = HsaKmt.of(q);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await kmt.hsaKmtOpenKFD());
  const d = await GpuDispatcher.create(kmt, kmt.gpuNodes()[0]!);
  ASSERT_TRUE(d instanceof GpuDispatcher);
  const other = d as GpuDispatcher;
  // The same virtual address in both processes, different contents.
  const src = await map(self.p, PAGE, PROT_READ | PROT_WRITE);
  const dst = await map(self.p, PAGE, PROT_READ | PROT_WRITE);
  const src2 = await q.mmap(src, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  const dst2 = await q.mmap(dst, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  ASSERT_EQ(src, src2);
  ASSERT_EQ(dst, dst2);
  await self.p.write(src, u32le([10]));
  await q.write(src, u32le([20]));
  ASSERT_TRUE((await dispatch(self, src, dst, 1)).completed);
  ASSERT_TRUE((await other.run(add_one_kernel(), { kernargs: [src, dst, 1], timeoutMs: WAIT_MS })).completed);
  EXPECT_EQ(11, read_u32s(await self.p.read(dst, 4))[0]);
  EXPECT_EQ(21, read_u32s(await q.read(dst, 4))[0]);
  await other.destroy();
  await kmt.hsaKmtCloseKFD();
  await q.exit();
});

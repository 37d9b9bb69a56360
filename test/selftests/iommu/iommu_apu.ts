// kemu selftest: GPU work of a user process on the IOMMUv2 APU machine, in the kselftest harness
// style. The process maps its buffers, writes its AQL queue, kernel code and input with CPU
// stores, binds its address space to the GPU's PASID and submits a dispatch through
// /dev/kemu_apu (apu_kfd_test.ts: the amdkfd part of the stack). Every GPU access — packet
// fetch, instruction fetch, loads, stores, the completion signal — is translated by the AMD
// IOMMU through the process's own page tables; pages the CPU never touched reach the GPU only
// through PRI page requests, the PPR log, ppr_notifier and do_fault on iommu_wq.
//
//   gpu_reads_cpu_data_and_cpu_reads_gpu_data: out[i] = in[i] + 1 over two pages each way;
//   invalid_access_raises_memory_exception: a load from an address with no VMA (NotPresent)
//     and a store to a read-only mapping (ReadOnly) reach the process as memory exceptions;
//   cpu_update_after_gpu_read_is_seen: a copy-on-write break between two dispatches moves the
//     page (the mmu notifier must flush the IOTLB and the GPU's ATC);
//   exit_with_bound_queue: the process exits with its queue loaded and its PASID bound.

import { APU_MACHINE, GiB, type MachineSpec } from "../../../kernel/machine_spec.ts";
import type { Machine } from "../../../kernel/machine.ts";
import { PCI_HOST } from "../../../kernel/tokens.ts";
import type { AmdGpuDevice } from "../../../hw/amdgpu/device.ts";
import type { Process } from "../../../tools/runtime/process.ts";
import {
  ASSERT_EQ, ASSERT_GE, ASSERT_TRUE, EXPECT_EQ, EXPECT_GE, EXPECT_TRUE, FIXTURE, TEST_F, kselftest, type TestMetadata,
} from "../../../tools/testing/selftests/kselftest_harness.ts";
import { O_RDWR } from "../../../include/uapi/asm-generic/fcntl.ts";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_EXEC, PROT_READ, PROT_WRITE } from "../../../include/uapi/asm-generic/mman.ts";
import {
  assemble, aql_kernel_dispatch, global_load_dword, global_load_dwordx2, global_store_dword, s_addi, s_add, s_cbranch_lt,
  s_endpgm, s_mov_b64, s_muli, type Instr,
} from "../../../hw/amdgpu/isa.ts";
import {
  APU_IOC_BIND, APU_IOC_CREATE_QUEUE, APU_IOC_GET_EXCEPTION, APU_IOC_SUBMIT, APU_IOC_WAIT, apu_kfd_test_module,
} from "./apu_kfd_test.ts";

export const APU_SELFTEST_MACHINE: MachineSpec = { ...APU_MACHINE, name: "apu", ram_size: 2 * GiB, modules: ["amd_iommu_v2", apu_kfd_test_module] };

export const iommu_apu = kselftest("iommu_apu", { machine: APU_SELFTEST_MACHINE });

const PAGE = 4096;
const RING_SIZE = 4096;
const DATA_PAGES = 2;
const WAIT_MS = 1000;

interface ApuSelf {
  p: Process;
  fd: number;
  pasid: number;
  ring: number;
  code: number;
  kernarg: number;
  signal: number;
  wptr: number;
  exited: boolean;
}

function u64le(...vals: number[]): Uint8Array {
  const b = new Uint8Array(vals.length * 8);
  const dv = new DataView(b.buffer);
  vals.forEach((v, i) => {
    dv.setUint32(i * 8, v % 2 ** 32, true);
    dv.setUint32(i * 8 + 4, Math.floor(v / 2 ** 32), true);
  });
  return b;
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

/** kernarg {src, dst, count}: dst[i] = src[i] + 1 for i < count, one wave. */
function add_one_kernel(): Uint8Array {
  const prog: Instr[] = [
    global_load_dwordx2(4, 1, 0), // s4 = src
    global_load_dwordx2(5, 1, 8), // s5 = dst
    global_load_dword(6, 1, 16), // s6 = count
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
  return assemble(prog);
}

async function map(p: Process, bytes: number, prot: number): Promise<number> {
  const a = await p.mmap(0, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS);
  ASSERT_GE(a, 0);
  return a;
}

/** Writes kernarg and the AQL packet at the next ring slot, rings the doorbell, waits for it. */
async function dispatch(self: ApuSelf, src: number, dst: number, count: number): Promise<number> {
  const { p } = self;
  await p.write(self.kernarg, new Uint8Array([...u64le(src, dst), ...u32le([count])]));
  await p.write(self.signal + 8, u64le(1));
  const slot = self.wptr % (RING_SIZE / 64);
  await p.write(self.ring + slot * 64, aql_kernel_dispatch({
    workgroup_size_x: 1, grid_size_x: 1, kernel_object: self.code, kernarg_address: self.kernarg, completion_signal: self.signal,
  }));
  self.wptr++;
  ASSERT_EQ(0, await p.ioctl(self.fd, APU_IOC_SUBMIT, { wptr: self.wptr }));
  const w = { wptr: self.wptr, timeout_ms: WAIT_MS, status: 0 };
  ASSERT_EQ(0, await p.ioctl(self.fd, APU_IOC_WAIT, w));
  return w.status;
}

function gpu_of(md: TestMetadata): AmdGpuDevice {
  return md.machine.symbol(PCI_HOST).model(0x18) as AmdGpuDevice;
}

const apu = FIXTURE<ApuSelf>(iommu_apu, "apu", {
  setup: async (self, _variant, _metadata) => {
    const machine: Machine = _metadata.machine;
    self.p = await machine.spawn("iommu_apu");
    self.fd = await self.p.open("/dev/kemu_apu", O_RDWR);
    ASSERT_GE(self.fd, 0);
    const bind = { pasid: 0, vmid: 0 };
    ASSERT_EQ(0, await self.p.ioctl(self.fd, APU_IOC_BIND, bind));
    ASSERT_GE(bind.pasid, 1);
    self.pasid = bind.pasid;
    self.ring = await map(self.p, RING_SIZE, PROT_READ | PROT_WRITE);
    self.code = await map(self.p, PAGE, PROT_READ | PROT_EXEC);
    self.kernarg = await map(self.p, PAGE, PROT_READ | PROT_WRITE);
    self.signal = await map(self.p, PAGE, PROT_READ | PROT_WRITE);
    self.wptr = 0;
    self.exited = false;
    // The loader writes the code object before the mapping loses PROT_WRITE.
    await self.p.mprotect(self.code, PAGE, PROT_READ | PROT_WRITE);
    await self.p.write(self.code, add_one_kernel());
    await self.p.mprotect(self.code, PAGE, PROT_READ | PROT_EXEC);
    // The queue's read-pointer report goes in the signal page, past the signal itself.
    ASSERT_EQ(0, await self.p.ioctl(self.fd, APU_IOC_CREATE_QUEUE, {
      ring_address: self.ring, ring_size: RING_SIZE, pad: 0, rptr_report_address: self.signal + 256,
    }));
  },
  teardown: async (self) => {
    if (self.exited) return;
    await self.p.close(self.fd);
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
  EXPECT_EQ(0, await dispatch(self, src, dst, n));
  const out = read_u32s(await self.p.read(dst, n * 4));
  for (let i = 0; i < n; i++) if (out[i] !== ((input[i]! + 1) >>> 0)) ASSERT_EQ((input[i]! + 1) >>> 0, out[i]);
  EXPECT_EQ(0, read_u32s(await self.p.read(self.signal + 8, 4))[0], "completion signal decremented");
  // dst was never touched by the CPU: each of its pages came in through a page request.
  EXPECT_GE(ats.stats.page_requests - before, DATA_PAGES);
  EXPECT_EQ(0, ats.stats.responses_invalid);
  EXPECT_TRUE(_metadata.machine.dmesg().some((l) => l.includes("AMD-Vi: AMD IOMMUv2 loaded and initialized")));
});

TEST_F(apu, "invalid_access_raises_memory_exception", async (self, _v, _metadata) => {
  const dst = await map(self.p, PAGE, PROT_READ | PROT_WRITE);
  const hole = dst + 256 * PAGE; // no VMA
  EXPECT_EQ(0, await dispatch(self, hole, dst, 1));
  const e = { va: 0, gpu_id: 0, not_present: 0, read_only: 0, no_execute: 0, count: 0, pad: 0 };
  ASSERT_EQ(0, await self.p.ioctl(self.fd, APU_IOC_GET_EXCEPTION, e));
  ASSERT_EQ(1, e.count);
  EXPECT_EQ(hole, e.va);
  EXPECT_EQ(1, e.not_present);
  EXPECT_EQ(0x9874, e.gpu_id);
  EXPECT_EQ(1, read_u32s(await self.p.read(dst, 4))[0], "the failed load read the dummy page's zero; the wave went on");
  const ro = await map(self.p, PAGE, PROT_READ);
  const src = await map(self.p, PAGE, PROT_READ | PROT_WRITE);
  await self.p.write(src, u32le([41]));
  EXPECT_EQ(0, await dispatch(self, src, ro, 1));
  ASSERT_EQ(0, await self.p.ioctl(self.fd, APU_IOC_GET_EXCEPTION, e));
  ASSERT_EQ(2, e.count);
  EXPECT_EQ(ro, e.va);
  EXPECT_EQ(0, e.not_present);
  EXPECT_EQ(1, e.read_only);
  EXPECT_TRUE(_metadata.machine.dmesg().some((l) => /Invalid PPR device 0:3\.0 pasid 0x[0-9a-f]+ address 0x[0-9A-F]+ flags 0x/.test(l)));
});

TEST_F(apu, "cpu_update_after_gpu_read_is_seen", async (self) => {
  const src = await map(self.p, PAGE, PROT_READ | PROT_WRITE);
  const dst = await map(self.p, PAGE, PROT_READ | PROT_WRITE);
  await self.p.write(src, u32le([100]));
  EXPECT_EQ(0, await dispatch(self, src, dst, 1));
  EXPECT_EQ(101, read_u32s(await self.p.read(dst, 4))[0]);
  // fork() makes src copy-on-write; the parent's store then moves it to a new page while the
  // child keeps the old one alive. A stale IOTLB or ATC entry would still read 100.
  const child = await self.p.fork();
  await self.p.write(src, u32le([200]));
  EXPECT_EQ(0, await dispatch(self, src, dst, 1));
  EXPECT_EQ(201, read_u32s(await self.p.read(dst, 4))[0], "the mmu notifier flushed the IOMMU and device TLBs");
  EXPECT_EQ(100, read_u32s(await child.read(src, 4))[0]);
  await child.exit();
});

TEST_F(apu, "exit_with_bound_queue", async (self, _v, _metadata) => {
  const src = await map(self.p, PAGE, PROT_READ | PROT_WRITE);
  const dst = await map(self.p, PAGE, PROT_READ | PROT_WRITE);
  await self.p.write(src, u32le([7]));
  EXPECT_EQ(0, await dispatch(self, src, dst, 1));
  await self.p.exit();
  self.exited = true;
  // mn_release ran the KFD shutdown callback (queue dequeued) and cleared GCR3; the file's
  // release then unbound the PASID. The machine's shutdown check sees nothing left behind.
  const ats = gpu_of(_metadata).atc!.ats;
  ASSERT_TRUE(ats.outstanding_requests() === 0);
});

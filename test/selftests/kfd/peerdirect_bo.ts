// kemu selftest: KFD buffer objects as the thunk uses them (AMDKFD_IOC_ALLOC_MEMORY_OF_GPU,
// FREE, MAP_MEMORY_TO_GPU, UNMAP_MEMORY_FROM_GPU) — the memory peer-direct hands to NICs. A
// VRAM BO mapped on the GPU is written by a shader and read back through a copy into system
// memory; argument errors and the SVM overlap are refused; a BO cannot be freed while mapped;
// a process that exits with BOs mapped leaves nothing behind.

import { ASSERT_EQ, ASSERT_TRUE, EXPECT_EQ, EXPECT_TRUE, FIXTURE, TEST_F, kselftest } from "../../../tools/testing/selftests/kselftest_harness.ts";
import { GpuDispatcher, copyDwordIsa, writeDwordIsa } from "../../../tools/hsakmt/dispatch.ts";
import { HSAKMT_STATUS } from "../../../tools/hsakmt/hsakmttypes.ts";
import {
  hsaKmtAllocMemory, hsaKmtBoHandle, hsaKmtFreeMemory, hsaKmtMapMemoryToGPU, hsaKmtUnmapMemoryToGPU,
} from "../../../tools/hsakmt/memory.ts";
import * as K from "../../../include/uapi/linux/kfd_ioctl.ts";
import { EADDRINUSE, EBUSY, EINVAL } from "../../../include/uapi/asm-generic/errno.ts";
import { KFD_SELFTEST_MACHINE, PAGE, anon, kfd_close, kfd_module, kfd_open, read32, register_svm, type KfdSelf } from "./kfd_util.ts";

export const peerdirect_bo = kselftest("peerdirect_bo", { machine: KFD_SELFTEST_MACHINE });

const bo = FIXTURE<KfdSelf, undefined>(peerdirect_bo, "kfd_bo", {
  self: () => ({}) as KfdSelf,
  setup: async (self, _v, _metadata) => kfd_open(self, _metadata.machine, 0),
  teardown: async (self) => kfd_close(self),
});

TEST_F(bo, "vram_bo_gpu_write_cpu_reads_copy", async (self) => {
  const out = { addr: 0 };
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtAllocMemory(self.kmt, self.node, 16 * PAGE, {}, out));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtMapMemoryToGPU(self.kmt, out.addr));
  const d = await GpuDispatcher.create(self.kmt, self.node);
  ASSERT_TRUE(typeof d !== "number");
  const q = d as GpuDispatcher;
  const sys = await anon(self.proc, 1);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, sys, PAGE));
  let r = await q.run(writeDwordIsa(), { kernargs: [out.addr + 5 * PAGE + 8, 0xcafe0001] });
  ASSERT_TRUE(r.completed, "shader store into the VRAM BO");
  r = await q.run(copyDwordIsa(), { kernargs: [out.addr + 5 * PAGE + 8, sys] });
  ASSERT_TRUE(r.completed, "shader copy out of the VRAM BO");
  EXPECT_EQ(0xcafe0001, await read32(self.proc, sys));
  // Freshly allocated VRAM reads as zero.
  r = await q.run(copyDwordIsa(), { kernargs: [out.addr, sys] });
  ASSERT_TRUE(r.completed);
  EXPECT_EQ(0, await read32(self.proc, sys));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await q.destroy());
  EXPECT_EQ(HSAKMT_STATUS.ERROR, await hsaKmtFreeMemory(self.kmt, out.addr), "still mapped");
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtUnmapMemoryToGPU(self.kmt, out.addr));
  EXPECT_EQ(HSAKMT_STATUS.ERROR, await hsaKmtUnmapMemoryToGPU(self.kmt, out.addr), "not mapped any more");
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtFreeMemory(self.kmt, out.addr));
});

TEST_F(bo, "bad_arguments", async (self, _v, metadata) => {
  const kfd = kfd_module(metadata.machine);
  const fd = self.kmt.fd;
  const va = await anon(self.proc, 4);
  const alloc = (o: Partial<Record<string, number>>): Promise<number> =>
    self.proc.ioctl(fd, K.AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, { va_addr: va, size: PAGE, handle: 0, mmap_offset: 0, gpu_id: self.gpu_id, flags: K.KFD_IOC_ALLOC_MEM_FLAGS_VRAM, ...o });
  EXPECT_EQ(-EINVAL, await alloc({ size: 0 }));
  EXPECT_EQ(-EINVAL, await alloc({ gpu_id: self.gpu_id + 1 }));
  EXPECT_EQ(-EINVAL, await alloc({ flags: K.KFD_IOC_ALLOC_MEM_FLAGS_USERPTR }), "userptr BOs are not modelled");
  EXPECT_EQ(-EINVAL, await alloc({ size: 100 }));
  EXPECT_EQ(-EINVAL, await self.proc.ioctl(fd, K.AMDKFD_IOC_FREE_MEMORY_OF_GPU, { handle: self.gpu_id * 2 ** 32 + 77 }));
  // An SVM range over the span: the BO is refused with -EADDRINUSE.
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, va, 4 * PAGE));
  const used = kfd.kfd_mem_limit.system_mem_used;
  EXPECT_EQ(-EADDRINUSE, await alloc({ va_addr: va + PAGE }));
  EXPECT_EQ(used, kfd.kfd_mem_limit.system_mem_used, "nothing charged");
  // Two BOs at the same VA: the second cannot be mapped over the first.
  const a = { addr: 0 };
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtAllocMemory(self.kmt, self.node, PAGE, { HostAccess: true }, a));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtMapMemoryToGPU(self.kmt, a.addr));
  const args = { va_addr: a.addr, size: PAGE, handle: 0, mmap_offset: 0, gpu_id: self.gpu_id, flags: K.KFD_IOC_ALLOC_MEM_FLAGS_VRAM };
  ASSERT_EQ(0, await self.proc.ioctl(fd, K.AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, args));
  const ids = await anon(self.proc, 1);
  await self.proc.write(ids, new Uint8Array(new Uint32Array([self.gpu_id]).buffer));
  const map = { handle: args.handle, device_ids_array_ptr: ids, n_devices: 1, n_success: 0 };
  EXPECT_EQ(-EINVAL, await self.proc.ioctl(fd, K.AMDKFD_IOC_MAP_MEMORY_TO_GPU, map));
  EXPECT_EQ(0, map.n_success);
  EXPECT_EQ(-EINVAL, await self.proc.ioctl(fd, K.AMDKFD_IOC_MAP_MEMORY_TO_GPU, { ...map, n_devices: 0 }));
  EXPECT_EQ(0, await self.proc.ioctl(fd, K.AMDKFD_IOC_FREE_MEMORY_OF_GPU, { handle: args.handle }));
  EXPECT_TRUE(hsaKmtBoHandle(self.kmt, a.addr) !== null, "the thunk knows the BO's handle");
  EXPECT_EQ(-EBUSY, await self.proc.ioctl(fd, K.AMDKFD_IOC_FREE_MEMORY_OF_GPU, { handle: hsaKmtBoHandle(self.kmt, a.addr)! }));
});

TEST_F(bo, "exit_with_bos_mapped_leaves_nothing", async (self, _v, metadata) => {
  const kfd = kfd_module(metadata.machine);
  const gpu = kfd.kfd_mem_limit;
  const before = { sys: gpu.system_mem_used, ttm: gpu.ttm_mem_used };
  for (const HostAccess of [false, true]) {
    const o = { addr: 0 };
    ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtAllocMemory(self.kmt, self.node, 8 * PAGE, { HostAccess }, o));
    ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtMapMemoryToGPU(self.kmt, o.addr));
  }
  EXPECT_EQ(before.ttm + 8 * PAGE, gpu.ttm_mem_used);
  await self.kmt.hsaKmtCloseKFD();
  await self.proc.exit();
  self.exited = true;
  EXPECT_EQ(before.sys, gpu.system_mem_used);
  EXPECT_EQ(before.ttm, gpu.ttm_mem_used);
});

// kemu selftest: kfd_peerdirect with kemu's emulated RDMA NIC as the peer. A process allocates
// KFD BOs through the thunk and registers them with the NIC (the RDMA core asks amdkfd, the
// peer memory client); the NIC writes into VRAM peer-to-peer through the GPU's BAR and the GPU
// reads the data, which the CPU then sees through a GPU copy; a loopback send moves data from a
// VRAM BO to a GTT BO. Pinned BOs stay put under VRAM pressure while unpinned ones are evicted
// and restored. Every release order leaves no pin, no mapping and no leak, and acquire refuses
// addresses and sizes that are not inside one KFD BO of the caller. Both peer-direct designs
// run: "pinning" (current) and "invalidate" (2016, free_callback), and the one test where they
// differ shows how.

import {
  ASSERT_EQ, ASSERT_TRUE, EXPECT_EQ, EXPECT_TRUE, FIXTURE, FIXTURE_VARIANT_ADD, TEST_F, kselftest,
} from "../../../tools/testing/selftests/kselftest_harness.ts";
import type { Machine } from "../../../kernel/machine.ts";
import { PCI_HOST } from "../../../kernel/tokens.ts";
import { GpuDispatcher, copyDwordIsa } from "../../../tools/hsakmt/dispatch.ts";
import { HSAKMT_STATUS } from "../../../tools/hsakmt/hsakmttypes.ts";
import { hsaKmtAllocMemory, hsaKmtFreeMemory, hsaKmtMapMemoryToGPU, hsaKmtUnmapMemoryToGPU } from "../../../tools/hsakmt/memory.ts";
import { RdmaNicDevice } from "../../../hw/rdma_nic.ts";
import {
  kemu_nic_dereg_mr, kemu_nic_loopback_send, kemu_nic_probe, kemu_nic_rdma_read, kemu_nic_rdma_write, kemu_nic_reg_user_mr,
  type kemu_nic_dev, type kemu_nic_mr,
} from "../../../drivers/infiniband/hw/kemu_nic/kemu_nic.ts";
import { ib_peer_memory_clients } from "../../../drivers/infiniband/core/peer_mem.ts";
import {
  amdkfd_query_rdma_interface, kfd_close_peer_direct, kfd_init_peer_direct, kfd_peerdirect_contexts, type kfd_peerdirect_mode,
} from "../../../drivers/gpu/drm/amd/amdkfd/kfd_peerdirect.ts";
import { kfd_process_device_objs, amdgpu_amdkfd_gpuvm_restore_process_bos } from "../../../drivers/gpu/drm/amd/amdgpu/amdgpu_amdkfd_gpuvm.ts";
import { amdgpu_vram_mgr_usage } from "../../../drivers/gpu/drm/amd/amdgpu/amdgpu_vram_mgr.ts";
import { AMDGPU_GEM_DOMAIN_VRAM, amdgpu_bo_create, amdgpu_bo_unref } from "../../../drivers/gpu/drm/amd/amdgpu/amdgpu_object.ts";
import { ttm_bo_type } from "../../../drivers/gpu/drm/ttm/ttm_bo.ts";
import { TTM_PL_TT, TTM_PL_VRAM } from "../../../include/drm/ttm/ttm_placement.ts";
import { EFAULT, EINVAL } from "../../../include/uapi/asm-generic/errno.ts";
import type { kfd_process } from "../../../drivers/gpu/drm/amd/amdkfd/kfd_priv.ts";
import { KFD_SELFTEST_MACHINE, PAGE, anon, kfd_close, kfd_module, kfd_open, read32, register_svm, type KfdSelf } from "./kfd_util.ts";

export const peerdirect = kselftest("peerdirect", { machine: KFD_SELFTEST_MACHINE });

const NIC_DEVFN = 10 * 8;

interface PdSelf extends KfdSelf {
  machine: Machine;
  nic: kemu_nic_dev;
  gpu?: GpuDispatcher;
}

interface ModeVariant {
  mode: kfd_peerdirect_mode;
}

const pd = FIXTURE<PdSelf, ModeVariant>(peerdirect, "peerdirect", {
  self: () => ({}) as PdSelf,
  setup: async (self, variant, metadata) => {
    self.machine = metadata.machine;
    await kfd_open(self, metadata.machine, 0);
    const kfd = kfd_module(metadata.machine);
    ASSERT_EQ(0, await in_kernel(self.machine, () => kfd_init_peer_direct(kfd, variant.mode)));
    const bridge = metadata.machine.symbol(PCI_HOST);
    bridge.plug(NIC_DEVFN, new RdmaNicDevice(bridge));
    const nic = kemu_nic_probe(metadata.machine.k, bridge, NIC_DEVFN);
    ASSERT_TRUE(typeof nic !== "number");
    self.nic = nic as kemu_nic_dev;
  },
  teardown: async (self) => {
    // An MR a failed test left behind (deregistration needs no process context).
    for (const mr of [...(self.nic?.mrs ?? [])]) await in_kernel(self.machine, () => kemu_nic_dereg_mr(mr));
    await self.gpu?.destroy();
    await kfd_close(self);
    await in_kernel(self.machine, () => kfd_close_peer_direct(kfd_module(self.machine)));
  },
});

FIXTURE_VARIANT_ADD(pd, "pinning", { mode: "pinning" as const });
FIXTURE_VARIANT_ADD(pd, "invalidate", { mode: "invalidate" as const });

/** Runs kernel code in a kernel thread (no process context). */
function in_kernel<T>(machine: Machine, fn: () => Promise<T>): Promise<T> {
  return machine.k.sched.kthread_run(fn, "peerdirect-test");
}

/** Runs kernel code as the test process (what a uverbs ioctl does). */
function as_process<T>(self: PdSelf, fn: () => Promise<T>): Promise<T> {
  const t = self.machine.k.sched.find_task_by_pid(self.proc.pid)!;
  return self.machine.k.sched.run_task(t, fn);
}

function reg_mr(self: PdSelf, addr: number, len: number, writable = true): Promise<kemu_nic_mr | number> {
  return as_process(self, () => kemu_nic_reg_user_mr(self.nic, addr, len, writable));
}

function kfd_proc(self: PdSelf): kfd_process {
  return [...kfd_module(self.machine).kfd_processes_table.values()].find((p) => p.lead_thread.tgid === self.proc.pid)!;
}

function bo_at(self: PdSelf, addr: number) {
  const p = kfd_proc(self);
  return kfd_process_device_objs(p.pdds[0]!).map(([, m]) => m).find((m) => m.va === addr)!;
}

function vram_used(self: PdSelf): number {
  return amdgpu_vram_mgr_usage(kfd_proc(self).pdds[0]!.dev.adev.mman.vram_mgr);
}


function bytes32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

async function alloc_mapped(self: PdSelf, pages: number, host: boolean): Promise<number> {
  const o = { addr: 0 };
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtAllocMemory(self.kmt, self.node, pages * PAGE, { HostAccess: host, Public: !host }, o));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtMapMemoryToGPU(self.kmt, o.addr));
  return o.addr;
}

/** GPU copy of one dword at `src` into a system-memory buffer, read back by the CPU. */
async function gpu_read32(self: PdSelf, src: number): Promise<number> {
  if (!self.gpu) {
    const d = await GpuDispatcher.create(self.kmt, self.node);
    ASSERT_TRUE(typeof d !== "number");
    self.gpu = d as GpuDispatcher;
  }
  const sys = await anon(self.proc, 1);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, sys, PAGE));
  const r = await self.gpu.run(copyDwordIsa(), { kernargs: [src, sys] });
  ASSERT_TRUE(r.completed, "GPU copy completed");
  return read32(self.proc, sys);
}

// ---- the data path ---------------------------------------------------------------------------

TEST_F(pd, "nic_writes_vram_gpu_reads_and_loopback", async (self) => {
  const vram = await alloc_mapped(self, 16, false);
  const gtt = await alloc_mapped(self, 4, true);
  const mr = await reg_mr(self, vram + PAGE, 8 * PAGE);
  ASSERT_TRUE(typeof mr !== "number", `reg_mr of VRAM: ${String(mr)}`);
  const vmr = mr as kemu_nic_mr;
  EXPECT_EQ(1, bo_at(self, vram).bo.tbo.pin_count, "registration pins the BO");
  // An RDMA write from the wire, straddling a page boundary inside the MR.
  ASSERT_EQ(0, kemu_nic_rdma_write(vmr, 3 * PAGE - 4, new Uint8Array([...bytes32(0x11223344), ...bytes32(0x55667788)])));
  EXPECT_EQ(0x11223344, await gpu_read32(self, vram + 4 * PAGE - 4));
  EXPECT_EQ(0x55667788, await gpu_read32(self, vram + 4 * PAGE));
  // Loopback: VRAM MR -> GTT MR, then the NIC reads it back and the GPU sees it too.
  const g = await reg_mr(self, gtt, 4 * PAGE);
  ASSERT_TRUE(typeof g !== "number", `reg_mr of GTT: ${String(g)}`);
  const gmr = g as kemu_nic_mr;
  ASSERT_EQ(0, kemu_nic_loopback_send(vmr, 3 * PAGE - 4, gmr, PAGE + 16, 8));
  const back = kemu_nic_rdma_read(gmr, PAGE + 16, 8);
  ASSERT_TRUE(back instanceof Uint8Array);
  EXPECT_EQ(0x55667788, new DataView((back as Uint8Array).buffer).getUint32(4, true));
  EXPECT_EQ(0x11223344, await gpu_read32(self, gtt + PAGE + 16));
  EXPECT_EQ(-EFAULT, kemu_nic_loopback_send(vmr, 8 * PAGE - 4, gmr, 0, 8), "past the MR's end");
  const ro = await reg_mr(self, gtt, PAGE, false);
  ASSERT_TRUE(typeof ro !== "number");
  EXPECT_EQ(-EINVAL, kemu_nic_rdma_write(ro as kemu_nic_mr, 0, bytes32(1)), "read-only MR");
  for (const m of [vmr, gmr, ro as kemu_nic_mr]) await as_process(self, () => kemu_nic_dereg_mr(m));
  EXPECT_EQ(0, bo_at(self, vram).bo.tbo.pin_count);
  EXPECT_EQ(0, bo_at(self, gtt).bo.tbo.pin_count);
  EXPECT_EQ(0, kfd_peerdirect_contexts(kfd_module(self.machine)));
  for (const a of [vram, gtt]) {
    ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtUnmapMemoryToGPU(self.kmt, a));
    ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtFreeMemory(self.kmt, a));
  }
});

// ---- pinning vs eviction -----------------------------------------------------------------------

TEST_F(pd, "pinned_bo_survives_vram_pressure", async (self) => {
  const pinned = await alloc_mapped(self, 16, false);
  const loose = await alloc_mapped(self, 16, false);
  const mr = (await reg_mr(self, pinned, 16 * PAGE)) as kemu_nic_mr;
  ASSERT_TRUE(typeof mr !== "number");
  ASSERT_EQ(0, kemu_nic_rdma_write(mr, 64, bytes32(0xabcd0001)));
  // The GPU writes a marker into the loose BO through a copy from the pinned one.
  if (!self.gpu) await gpu_read32(self, pinned + 64);
  ASSERT_TRUE((await self.gpu!.run(copyDwordIsa(), { kernargs: [pinned + 64, loose + 128] })).completed);
  const pbo = bo_at(self, pinned).bo;
  const lbo = bo_at(self, loose).bo;
  const where = pbo.tbo.resource!.start;
  // Another VRAM user (a graphics client) takes all the VRAM it can get.
  const adev = kfd_proc(self).pdds[0]!.dev.adev;
  const hog = await in_kernel(self.machine, async () => {
    // More than is free: something evictable has to go, and only the loose BO is.
    const want = adev.gmc.real_vram_size - vram_used(self) + 8 * PAGE;
    return amdgpu_bo_create(adev, { size: want, byte_align: PAGE, domain: AMDGPU_GEM_DOMAIN_VRAM, flags: 0, type: ttm_bo_type.ttm_bo_type_device });
  });
  ASSERT_TRUE(typeof hog !== "number", `hog allocation: ${String(hog)}`);
  EXPECT_EQ(TTM_PL_VRAM, pbo.tbo.resource!.mem_type, "pinned BO stays in VRAM");
  EXPECT_EQ(where, pbo.tbo.resource!.start, "at the same place");
  EXPECT_EQ(TTM_PL_TT, lbo.tbo.resource!.mem_type, "unpinned BO evicted to GTT");
  // The NIC keeps working on the pinned BO during the pressure.
  ASSERT_EQ(0, kemu_nic_rdma_write(mr, 68, bytes32(0xabcd0002)));
  await in_kernel(self.machine, async () => amdgpu_bo_unref(hog as Exclude<typeof hog, number>));
  // KFD's restore puts the evicted BO back and rewrites its mappings; its data survived.
  ASSERT_EQ(0, await in_kernel(self.machine, () => amdgpu_amdkfd_gpuvm_restore_process_bos(kfd_proc(self).kgd_process_info)));
  EXPECT_EQ(TTM_PL_VRAM, lbo.tbo.resource!.mem_type, "restored to VRAM");
  EXPECT_EQ(0xabcd0001, await gpu_read32(self, loose + 128));
  EXPECT_EQ(0xabcd0002, await gpu_read32(self, pinned + 68));
  await as_process(self, () => kemu_nic_dereg_mr(mr));
  EXPECT_EQ(0, pbo.tbo.pin_count);
});

// ---- release orders ------------------------------------------------------------------------------

TEST_F(pd, "release_in_every_order_leaves_nothing", async (self, variant) => {
  const kfd = kfd_module(self.machine);
  const adev = kfd_proc(self).pdds[0]!.dev.adev;
  const charged = adev.kfd.vram_used ?? 0;
  // 1. deregister, then unmap and free.
  let a = await alloc_mapped(self, 4, false);
  let bo = bo_at(self, a).bo;
  let mr = (await reg_mr(self, a, 4 * PAGE)) as kemu_nic_mr;
  await as_process(self, () => kemu_nic_dereg_mr(mr));
  EXPECT_EQ(0, bo.tbo.pin_count);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtUnmapMemoryToGPU(self.kmt, a));
  EXPECT_EQ(0, bo.vm_bos.length, "no GPU mapping left");
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtFreeMemory(self.kmt, a));
  EXPECT_TRUE(bo.tbo.deleted, "BO released");
  EXPECT_EQ(charged, adev.kfd.vram_used ?? 0);
  // 2. unmap and free while the NIC still has it, then deregister.
  a = await alloc_mapped(self, 4, false);
  bo = bo_at(self, a).bo;
  mr = (await reg_mr(self, a, 4 * PAGE)) as kemu_nic_mr;
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtUnmapMemoryToGPU(self.kmt, a));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await hsaKmtFreeMemory(self.kmt, a));
  EXPECT_EQ(charged, adev.kfd.vram_used ?? 0, "KFD's charge goes with the handle");
  if (variant.mode === "pinning") {
    // The pin and the peer's BO reference keep the memory; the NIC may still use it.
    EXPECT_EQ(false, bo.tbo.deleted);
    EXPECT_EQ(1, bo.tbo.pin_count);
    EXPECT_EQ(0, kemu_nic_rdma_write(mr, 0, bytes32(7)));
  } else {
    // free_callback: the core invalidated the MR and unpinned; the memory is gone now.
    EXPECT_TRUE(bo.tbo.deleted);
    EXPECT_EQ(false, mr.valid);
    EXPECT_EQ(-EFAULT, kemu_nic_rdma_write(mr, 0, bytes32(7)));
  }
  await as_process(self, () => kemu_nic_dereg_mr(mr));
  EXPECT_TRUE(bo.tbo.deleted, "released after deregistration");
  // 3. the process exits with the BO mapped and registered; the NIC deregisters afterwards.
  a = await alloc_mapped(self, 4, false);
  bo = bo_at(self, a).bo;
  mr = (await reg_mr(self, a, 4 * PAGE)) as kemu_nic_mr;
  await self.kmt.hsaKmtCloseKFD();
  await self.proc.exit();
  self.exited = true;
  await in_kernel(self.machine, () => kemu_nic_dereg_mr(mr));
  // put_pages dropped the last process reference; its release runs on a workqueue.
  await self.machine.settle();
  EXPECT_EQ(0, kfd.kfd_processes_table.size, "the KFD process is gone");
  EXPECT_TRUE(bo.tbo.deleted);
  EXPECT_EQ(0, bo.tbo.pin_count);
  EXPECT_EQ(0, kfd_peerdirect_contexts(kfd));
  EXPECT_EQ(0, ib_peer_memory_clients(self.machine.k)[0]!.umems.size);
  EXPECT_EQ(charged, adev.kfd.vram_used ?? 0);
});

// ---- acquire's checks ----------------------------------------------------------------------------

TEST_F(pd, "acquire_refuses_bad_addresses_and_sizes", async (self) => {
  const a = await alloc_mapped(self, 4, false);
  const b = await alloc_mapped(self, 4, false);
  const sys = await anon(self.proc, 4);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, sys, 4 * PAGE));
  EXPECT_EQ(-EFAULT, await reg_mr(self, sys, PAGE), "SVM memory is not a KFD BO");
  EXPECT_EQ(-EFAULT, await reg_mr(self, a + 3 * PAGE, 2 * PAGE), "runs past the BO's end");
  // The thunk hands out VA top-down: b sits right below a.
  const lo = Math.min(a, b);
  EXPECT_EQ(-EFAULT, await reg_mr(self, lo - PAGE, PAGE), "before the BOs");
  EXPECT_EQ(-EINVAL, await reg_mr(self, a, 0), "empty");
  EXPECT_EQ(-EFAULT, await reg_mr(self, 2 ** 53 - PAGE, 2 * PAGE), "overflows");
  EXPECT_EQ(-EFAULT, await reg_mr(self, lo + 2 * PAGE, 4 * PAGE), "spans two BOs");
  // A kernel thread has no process: nothing is its KFD memory.
  EXPECT_EQ(-EFAULT, await in_kernel(self.machine, () => kemu_nic_reg_user_mr(self.nic, a, PAGE, true)));
  // The amd_rdma interface directly.
  const rdma = amdkfd_query_rdma_interface(kfd_module(self.machine));
  EXPECT_EQ(1, rdma.is_gpu_address(a + 5, self.proc.pid));
  EXPECT_EQ(0, rdma.is_gpu_address(sys, self.proc.pid));
  EXPECT_EQ(0, rdma.is_gpu_address(a, self.proc.pid + 1000));
  const ps = { size: 0 };
  EXPECT_EQ(0, rdma.get_page_size(a, PAGE, self.proc.pid, ps));
  EXPECT_EQ(PAGE, ps.size);
  EXPECT_EQ(-EINVAL, rdma.get_page_size(sys, PAGE, self.proc.pid, ps));
  const out = { p2p: null };
  EXPECT_EQ(-EINVAL, await in_kernel(self.machine, () => rdma.get_pages(a, 8 * PAGE, self.proc.pid, null, out, null, null)));
  EXPECT_EQ(0, await in_kernel(self.machine, () => rdma.get_pages(a + PAGE, PAGE, self.proc.pid, null, out, null, null)));
  EXPECT_EQ(1, bo_at(self, a).bo.tbo.pin_count);
  EXPECT_EQ(0, await in_kernel(self.machine, () => rdma.put_pages(out)));
  EXPECT_EQ(0, bo_at(self, a).bo.tbo.pin_count);
  EXPECT_EQ(-EINVAL, await in_kernel(self.machine, () => rdma.put_pages(out)), "twice");
  EXPECT_EQ(0, kfd_peerdirect_contexts(kfd_module(self.machine)));
  const whole = await reg_mr(self, a, 4 * PAGE);
  ASSERT_TRUE(typeof whole !== "number", "the whole BO is fine");
  await as_process(self, () => kemu_nic_dereg_mr(whole as kemu_nic_mr));
});

// kemu selftest: /dev/kfd as a ROCm process meets it — the interface version and topology the
// thunk reads at open, the process apertures, ACQUIRE_VM, user queues and events, and the
// robustness rules of the issue: argument errors return the kernel's errno and change nothing,
// a closed or inherited descriptor fails cleanly, and a process that exits with ranges, queues,
// events and GPU mappings alive leaves nothing behind.

import {
  ASSERT_EQ, ASSERT_GE, ASSERT_NE, ASSERT_TRUE, EXPECT_EQ, EXPECT_NE, EXPECT_TRUE, FIXTURE, TEST_F, kselftest,
} from "../../../tools/testing/selftests/kselftest_harness.ts";
import { GpuDispatcher, copyDwordIsa } from "../../../tools/hsakmt/dispatch.ts";
import {
  HSAKMT_STATUS, HSA_CAP_SVMAPI_SUPPORTED, HSA_EVENTTYPE_MEMORY, HSA_EVENTTYPE_SIGNAL, type HsaEvent, type HsaNodeProperties,
} from "../../../tools/hsakmt/hsakmttypes.ts";
import * as K from "../../../include/uapi/linux/kfd_ioctl.ts";
import { EBADF, EBUSY, EFAULT, EINVAL, ENOMEM, ENOTSUPP } from "../../../include/uapi/asm-generic/errno.ts";
import { O_RDWR } from "../../../include/uapi/asm-generic/fcntl.ts";
import { _IOWR } from "../../../include/uapi/asm-generic/ioctl.ts";
import { layout_decode } from "../../../include/uapi/struct_layout.ts";
import {
  KFD_SELFTEST_MACHINE, PAGE, active_hqds, anon, kfd_close, kfd_module, kfd_open, kfd_processes, register_svm, type KfdSelf,
} from "./kfd_util.ts";

export const kfd_basic = kselftest("kfd_basic", { machine: KFD_SELFTEST_MACHINE });

const kfd = FIXTURE<KfdSelf, undefined>(kfd_basic, "kfd", {
  self: () => ({}) as KfdSelf,
  setup: async (self, _v, _metadata) => kfd_open(self, _metadata.machine, 0),
  teardown: async (self) => kfd_close(self),
});

// ---- open, version, topology --------------------------------------------------------------

TEST_F(kfd, "version_and_topology", async (self) => {
  const v = { KernelInterfaceMajorVersion: 0, KernelInterfaceMinorVersion: 0 };
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, self.kmt.hsaKmtGetVersion(v));
  EXPECT_EQ(1, v.KernelInterfaceMajorVersion);
  EXPECT_EQ(14, v.KernelInterfaceMinorVersion);
  const sys = { NumNodes: 0, PlatformOem: 0, PlatformId: 0, PlatformRev: 0 };
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, self.kmt.hsaKmtAcquireSystemProperties(sys));
  EXPECT_EQ(2, sys.NumNodes, "a CPU node and a GPU node");
  const cpu: Partial<HsaNodeProperties> = {};
  const gpu: Partial<HsaNodeProperties> = {};
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, self.kmt.hsaKmtGetNodeProperties(0, cpu));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, self.kmt.hsaKmtGetNodeProperties(1, gpu));
  EXPECT_EQ(0, cpu.KFDGpuID);
  EXPECT_TRUE(cpu.NumCPUCores! > 0);
  EXPECT_NE(0, gpu.KFDGpuID);
  EXPECT_EQ(Number((await self.proc.readFile("/sys/class/kfd/kfd/topology/nodes/1/gpu_id")).trim()), gpu.KFDGpuID);
  EXPECT_TRUE((gpu.Capability! & HSA_CAP_SVMAPI_SUPPORTED) !== 0, "SVM API supported");
  EXPECT_EQ(128, gpu.DrmRenderMinor);
  EXPECT_EQ(1024 * 1024 * 1024, gpu.LocalMemSize);
  EXPECT_EQ(9, gpu.EngineId!.Major);
  EXPECT_EQ(0x1002, gpu.VendorId);
  EXPECT_EQ(HSAKMT_STATUS.INVALID_NODE_UNIT, self.kmt.hsaKmtGetNodeProperties(2, {}));
  const gen = Number((await self.proc.readFile("/sys/class/kfd/kfd/topology/generation_id")).trim());
  EXPECT_TRUE(gen >= 1);
  // Nested opens only count; closes balance them.
  EXPECT_EQ(HSAKMT_STATUS.KERNEL_ALREADY_OPENED, await self.kmt.hsaKmtOpenKFD());
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtCloseKFD());
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, self.kmt.hsaKmtGetVersion(v), "still open once");
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtCloseKFD());
  EXPECT_EQ(HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED, self.kmt.hsaKmtGetVersion(v));
  EXPECT_EQ(HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED, await self.kmt.hsaKmtSVMSetAttr(PAGE, PAGE, 0, []));
  EXPECT_EQ(HSAKMT_STATUS.KERNEL_IO_CHANNEL_NOT_OPENED, await self.kmt.hsaKmtCloseKFD());
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtOpenKFD(), "the KFD process lives on; open again");
});

TEST_F(kfd, "process_apertures", async (self) => {
  const fd = self.kmt.fd;
  const count = { kfd_process_device_apertures_ptr: 0, num_of_nodes: 0, pad: 0 };
  ASSERT_EQ(0, await self.proc.ioctl(fd, K.AMDKFD_IOC_GET_PROCESS_APERTURES_NEW, count));
  ASSERT_EQ(1, count.num_of_nodes);
  const buf = await anon(self.proc, 1);
  const fill = { kfd_process_device_apertures_ptr: buf, num_of_nodes: 1, pad: 0 };
  ASSERT_EQ(0, await self.proc.ioctl(fd, K.AMDKFD_IOC_GET_PROCESS_APERTURES_NEW, fill));
  const ap = layout_decode(K.kfd_process_device_apertures, await self.proc.read(buf, K.kfd_process_device_apertures.size));
  EXPECT_EQ(self.gpu_id, ap.gpu_id);
  EXPECT_TRUE(ap.gpuvm_limit > ap.gpuvm_base && ap.lds_limit > ap.lds_base && ap.scratch_limit > ap.scratch_base);
  const bad = { kfd_process_device_apertures_ptr: 0x10, num_of_nodes: 1, pad: 0 };
  EXPECT_EQ(-EFAULT, await self.proc.ioctl(fd, K.AMDKFD_IOC_GET_PROCESS_APERTURES_NEW, bad));
});

// ---- ACQUIRE_VM ---------------------------------------------------------------------------

TEST_F(kfd, "acquire_vm", async (self, _v, _metadata) => {
  const fd = self.kmt.fd;
  // The thunk acquired the VM with its own render-node fd at open; a second render fd is refused.
  const other = await self.proc.open("/dev/dri/renderD128", O_RDWR);
  ASSERT_GE(other, 0);
  EXPECT_EQ(-EBUSY, await self.proc.ioctl(fd, K.AMDKFD_IOC_ACQUIRE_VM, { drm_fd: other, gpu_id: self.gpu_id }));
  EXPECT_EQ(-EINVAL, await self.proc.ioctl(fd, K.AMDKFD_IOC_ACQUIRE_VM, { drm_fd: 999, gpu_id: self.gpu_id }), "not a descriptor");
  EXPECT_EQ(-EINVAL, await self.proc.ioctl(fd, K.AMDKFD_IOC_ACQUIRE_VM, { drm_fd: other, gpu_id: self.gpu_id + 1 }), "no such GPU");
  await self.proc.close(other);
  // A fresh process: a file that is not a render node is refused, then the real one works twice.
  const child = await _metadata.machine.spawn("kfdtest2");
  const cfd = await child.open("/dev/kfd", O_RDWR);
  ASSERT_GE(cfd, 0);
  EXPECT_EQ(-EINVAL, await child.ioctl(cfd, K.AMDKFD_IOC_ACQUIRE_VM, { drm_fd: cfd, gpu_id: self.gpu_id }));
  const r = await child.open("/dev/dri/renderD128", O_RDWR);
  EXPECT_EQ(0, await child.ioctl(cfd, K.AMDKFD_IOC_ACQUIRE_VM, { drm_fd: r, gpu_id: self.gpu_id }));
  EXPECT_EQ(0, await child.ioctl(cfd, K.AMDKFD_IOC_ACQUIRE_VM, { drm_fd: r, gpu_id: self.gpu_id }), "the same file again");
  await child.exit();
});

// ---- bad input and descriptors ------------------------------------------------------------

function queue_args(self: KfdSelf, ring: number, over: Partial<Record<string, number>>): Record<string, number> {
  return {
    ring_base_address: ring, write_pointer_address: ring + 2048, read_pointer_address: ring + 2056, doorbell_offset: 0,
    ring_size: 1024, gpu_id: self.gpu_id, queue_type: K.KFD_IOC_QUEUE_TYPE_COMPUTE_AQL, queue_percentage: 100, queue_priority: 7,
    queue_id: 0, eop_buffer_address: 0, eop_buffer_size: 0, ctx_save_restore_address: 0, ctx_save_restore_size: 0, ctl_stack_size: 0,
    ...over,
  };
}

TEST_F(kfd, "queue_and_event_errors_change_nothing", async (self, _v, _metadata) => {
  const fd = self.kmt.fd;
  const ring = await self.kmt.allocSvm(PAGE, self.node);
  const cases: Array<[string, Partial<Record<string, number>>, number]> = [
    ["unknown GPU", { gpu_id: self.gpu_id ^ 1 }, -EINVAL],
    ["ring size not a power of two", { ring_size: 3000 }, -EINVAL],
    ["priority above 15", { queue_priority: 16 }, -EINVAL],
    ["percentage above 100", { queue_percentage: 101 }, -EINVAL],
    ["unknown queue type", { queue_type: 9 }, -ENOTSUPP],
    ["SDMA_XGMI queue: kemu has no XGMI SDMA engines", { queue_type: K.KFD_IOC_QUEUE_TYPE_SDMA_XGMI }, -ENOMEM],
    ["write pointer in kernel space", { write_pointer_address: 2 ** 63 }, -EFAULT],
  ];
  for (const [what, over, want] of cases) {
    EXPECT_EQ(want, await self.proc.ioctl(fd, K.AMDKFD_IOC_CREATE_QUEUE, queue_args(self, ring, over)), what);
  }
  EXPECT_EQ(0, active_hqds(_metadata.machine), "no queue was created");
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtSetXNACKMode(1), "no queue exists: XNACK can switch");
  EXPECT_EQ(-EINVAL, await self.proc.ioctl(fd, K.AMDKFD_IOC_DESTROY_QUEUE, { queue_id: 5, pad: 0 }));
  EXPECT_EQ(-EINVAL, await self.proc.ioctl(fd, K.AMDKFD_IOC_DESTROY_EVENT, { event_id: 77, pad: 0 }));
  EXPECT_EQ(-EINVAL, await self.proc.ioctl(fd, K.AMDKFD_IOC_SET_EVENT, { event_id: 77, pad: 0 }));
  EXPECT_EQ(-EINVAL, await self.proc.ioctl(fd, _IOWR("K", 0x50, K.kfd_ioctl_destroy_event_args), { event_id: 0, pad: 0 }), "unknown ioctl");
  EXPECT_EQ(-EINVAL, await self.proc.ioctl(fd, K.AMDKFD_IOC_SMI_EVENTS, { gpuid: self.gpu_id ^ 1, anon_fd: 0 }));
});

TEST_F(kfd, "closed_and_inherited_descriptors", async (self) => {
  const fd = self.kmt.fd;
  const v = { major_version: 0, minor_version: 0 };
  const child = await self.proc.fork();
  EXPECT_EQ(-EBADF, await child.ioctl(fd, K.AMDKFD_IOC_GET_VERSION, v), "the child's copy of the parent's /dev/kfd");
  // The child opens its own: a KFD process of its own, with its own PASID.
  const cfd = await child.open("/dev/kfd", O_RDWR);
  ASSERT_GE(cfd, 0);
  EXPECT_EQ(0, await child.ioctl(cfd, K.AMDKFD_IOC_GET_VERSION, v));
  const ppasid = (await self.proc.readFile(`/sys/class/kfd/kfd/proc/${self.proc.pid}/pasid`)).trim();
  const cpasid = (await child.readFile(`/sys/class/kfd/kfd/proc/${child.pid}/pasid`)).trim();
  EXPECT_NE(ppasid, cpasid);
  await child.exit();
  const dup = await self.proc.open("/dev/kfd", O_RDWR);
  ASSERT_GE(dup, 0);
  EXPECT_EQ(0, await self.proc.close(dup));
  EXPECT_EQ(-EBADF, await self.proc.ioctl(dup, K.AMDKFD_IOC_GET_VERSION, v), "closed");
  EXPECT_EQ(0, await self.proc.ioctl(fd, K.AMDKFD_IOC_GET_VERSION, v), "the process's other descriptor still works");
});

// ---- events -------------------------------------------------------------------------------

TEST_F(kfd, "events", async (self) => {
  const e: { event: HsaEvent | null } = { event: null };
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtCreateEvent({ EventType: HSA_EVENTTYPE_SIGNAL, NodeId: self.node }, true, false, e));
  const ev = e.event!;
  EXPECT_TRUE(ev.EventData.HWData2 !== 0, "a signal event has a mailbox slot");
  EXPECT_EQ(HSAKMT_STATUS.WAIT_TIMEOUT, await self.kmt.hsaKmtWaitOnEvent(ev, 5));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtSetEvent(ev));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtWaitOnEvent(ev, 5));
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtWaitOnEvent(ev, 5), "manual reset: stays signaled");
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtResetEvent(ev));
  EXPECT_EQ(HSAKMT_STATUS.WAIT_TIMEOUT, await self.kmt.hsaKmtWaitOnEvent(ev, 5));
  const m: { event: HsaEvent | null } = { event: null };
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtCreateEvent({ EventType: HSA_EVENTTYPE_MEMORY, NodeId: self.node }, false, false, m));
  EXPECT_EQ(HSAKMT_STATUS.WAIT_TIMEOUT, await self.kmt.hsaKmtWaitOnMultipleEvents([ev, m.event!], 2, false, 5));
  EXPECT_EQ(HSAKMT_STATUS.ERROR, await self.kmt.hsaKmtSetEvent(m.event!), "the runtime cannot set a memory event");
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtDestroyEvent(ev));
  EXPECT_EQ(HSAKMT_STATUS.ERROR, await self.kmt.hsaKmtWaitOnEvent(ev, 5), "a destroyed event");
  EXPECT_EQ(HSAKMT_STATUS.ERROR, await self.kmt.hsaKmtDestroyEvent(ev));
});

// ---- exit ---------------------------------------------------------------------------------

/**
 * The process exits without closing or destroying anything: SVM ranges mapped on the GPU, a
 * queue that ran work, events, an SMI fd. KFD must release all of it (queue unloaded, VMID and
 * PASID free, ranges and their memory charge gone, sysfs entries removed).
 */
TEST_F(kfd, "exit_with_everything_alive", async (self, _v, _metadata) => {
  const machine = _metadata.machine;
  const amdkfd = kfd_module(machine);
  const used0 = amdkfd.kfd_mem_limit.system_mem_used;
  const d = await GpuDispatcher.create(self.kmt, self.node);
  ASSERT_TRUE(typeof d !== "number");
  const buf = await anon(self.proc, 64);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, buf, 64 * PAGE));
  const r = await (d as GpuDispatcher).run(copyDwordIsa(), { kernargs: [buf, buf + PAGE] });
  ASSERT_TRUE(r.completed);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await self.kmt.hsaKmtOpenSMI(self.node, { fd: -1 }));
  ASSERT_EQ(1, active_hqds(machine));
  ASSERT_NE(used0, amdkfd.kfd_mem_limit.system_mem_used);
  const pid = self.proc.pid;
  await self.proc.exit();
  self.exited = true;
  await machine.settle();
  EXPECT_EQ(0, kfd_processes(machine));
  EXPECT_EQ(0, active_hqds(machine), "the queue was unloaded");
  EXPECT_EQ(0, amdkfd.pasids_in_use());
  EXPECT_EQ(used0, amdkfd.kfd_mem_limit.system_mem_used, "no SVM memory charged any more");
  const other = await machine.spawn("observer");
  let gone = false;
  try {
    await other.readFile(`/sys/class/kfd/kfd/proc/${pid}/pasid`);
  } catch {
    gone = true;
  }
  EXPECT_TRUE(gone, "the process's sysfs directory is gone");
  await other.exit();
});

// KUnit suite for the render node: /dev/dri/renderD128 appears for the GPU; each open gets its
// own VM with a PASID (what AMDKFD_IOC_ACQUIRE_VM later adopts), the VM's root directory lives
// in VRAM, ioctls amdgpu does not implement fail with -ENOTTY, and the last close frees both.

import { KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_TRUE, type kunit, type kunit_suite } from "../../../../lib/kunit/test.ts";
import { O_RDWR } from "../../../../include/uapi/asm-generic/fcntl.ts";
import { TTM_PL_VRAM } from "../../../../include/drm/ttm/ttm_placement.ts";
import { get_adev, gpu_machine, MiB } from "./amdgpu_harness.ts";

const ENOENT = 2;
const ENOTTY = 25;

function u<T>(test: kunit, x: Promise<T>): Promise<T> {
  return test.k.sched.wait_for(x, "user space");
}

async function render_node_open_close(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const proc = await u(test, test.machine.spawn("drm_kunit"));
  const vms0 = adev.vm_manager.pasids.size;
  const fd = await u(test, proc.open("/dev/dri/renderD128", O_RDWR));
  KUNIT_ASSERT_TRUE(test, fd >= 0, `open: ${fd}`);
  KUNIT_EXPECT_EQ(test, adev.vm_manager.pasids.size, vms0 + 1, "the file got a VM with a PASID");
  const vm = [...adev.vm_manager.pasids.values()].at(-1)!;
  KUNIT_EXPECT_EQ(test, vm.root?.bo.tbo.resource?.mem_type, TTM_PL_VRAM, "its root directory is in VRAM");
  const fd2 = await u(test, proc.open("/dev/dri/renderD128", O_RDWR));
  KUNIT_EXPECT_EQ(test, adev.vm_manager.pasids.size, vms0 + 2, "each open is its own VM");
  KUNIT_EXPECT_EQ(test, await u(test, proc.ioctl(fd, 0x6440, 0)), -ENOTTY, "DRM_IOCTL_AMDGPU_* are not implemented");
  KUNIT_EXPECT_EQ(test, await u(test, proc.close(fd2)), 0);
  KUNIT_EXPECT_EQ(test, await u(test, proc.close(fd)), 0);
  KUNIT_EXPECT_EQ(test, adev.vm_manager.pasids.size, vms0, "closing freed the VMs and PASIDs");
  KUNIT_EXPECT_EQ(test, await u(test, proc.open("/dev/dri/renderD129", O_RDWR)), -ENOENT, "one GPU, one render node");
  KUNIT_EXPECT_TRUE(test, test.k.log.dmesg().some((l) => l.includes("[drm] Initialized amdgpu") && l.includes("minor 128")));
  await u(test, proc.exit());
}

export const amdgpu_drm_test_suite: kunit_suite = {
  name: "amdgpu_drm",
  machine: gpu_machine("gfx90a", 128 * MiB),
  test_cases: [KUNIT_CASE(render_node_open_close)],
};

// KUnit suite for the ways GPU work goes wrong, each ending in the kernel's behaviour rather than
// an exception: a job whose fence never signals (an SDMA POLL_REGMEM on memory nobody writes)
// runs into the ring timeout, is reported, fails with -ETIME and the GPU is reset; a packet the
// SDMA engine cannot decode stops the engine, raises the illegal-instruction interrupt, is
// logged decoded and recovered at once; a driver access past the end of its MMIO mapping WARNs
// and is dropped; an SDMA access to an unmapped GART page is a logged VM fault.

import {
  KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_GE, KUNIT_EXPECT_LE, KUNIT_EXPECT_TRUE,
  kunit_expect_splat, type kunit, type kunit_suite,
} from "../../../../lib/kunit/test.ts";
import type { amdgpu_device } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu.ts";
import { AMDGPU_GEM_DOMAIN_GTT, AMDGPU_GEM_DOMAIN_VRAM } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_object.ts";
import { amdgpu_job_alloc_with_ib, amdgpu_job_submit, AMDGPU_FENCE_OWNER_UNDEFINED } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_job.ts";
import { amdgpu_ib_pool_type } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_ib.ts";
import { amdgpu_ring_generic_pad_ib } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_ring.ts";
import { RREG32 } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_device.ts";
import { dma_fence_put, dma_fence_wait_timeout, type dma_fence } from "../../../../drivers/dma-buf/dma-fence.ts";
import { msecs_to_jiffies } from "../../../../kernel/time/timekeeping.ts";
import { mutex_lock, mutex_unlock } from "../../../../kernel/locking/mutex.ts";
import {
  SDMA_OP_POLL_REGMEM, SDMA_PKT_HEADER_OP, SDMA_PKT_POLL_REGMEM_DW5_INTERVAL, SDMA_PKT_POLL_REGMEM_DW5_RETRY_COUNT,
  SDMA_PKT_POLL_REGMEM_HEADER_FUNC, SDMA_PKT_POLL_REGMEM_HEADER_MEM_POLL, SDMA_POLL_FUNC_EQ,
} from "../../../../drivers/gpu/drm/amd/amdgpu/vega10_sdma_pkt_open.ts";
import { lower_32_bits, mmMC_VM_FB_OFFSET, upper_32_bits } from "../../../../drivers/gpu/drm/amd/include/asic_reg/kemu_gpu_regs.ts";
import { get_adev, get_gpu_hw, gpu_machine, kernel_bo, sdma_copy, MiB } from "./amdgpu_harness.ts";

const ETIME = 62;

/** Submits an IB on the buffer-funcs ring built by `emit` (dwords), returns its fence. */
async function submit_ib(test: kunit, adev: amdgpu_device, dws: number[]): Promise<dma_fence> {
  const ring = adev.mman.buffer_funcs_ring!;
  const job = await amdgpu_job_alloc_with_ib(adev, ring, AMDGPU_FENCE_OWNER_UNDEFINED, Math.ceil((dws.length + 8) / 8) * 32,
    amdgpu_ib_pool_type.AMDGPU_IB_POOL_DELAYED);
  KUNIT_ASSERT_TRUE(test, typeof job !== "number", "job allocated");
  if (typeof job === "number") throw new Error("unreachable");
  const ib = job.ibs[0]!;
  for (const d of dws) ib.ptr[ib.length_dw++] = d >>> 0;
  amdgpu_ring_generic_pad_ib(ring, ib);
  const f = await amdgpu_job_submit(job);
  KUNIT_ASSERT_TRUE(test, typeof f !== "number", "job submitted");
  if (typeof f === "number") throw new Error("unreachable");
  return f;
}

function dmesg_has(test: kunit, s: string): boolean {
  return test.k.log.dmesg().some((l) => l.includes(s));
}

/** After a reset (waited for by taking the reset domain's lock) the copy engine works again. */
async function sdma_still_works(test: kunit, adev: amdgpu_device): Promise<void> {
  await mutex_lock(adev.reset_domain_sem);
  mutex_unlock(adev.reset_domain_sem);
  KUNIT_EXPECT_TRUE(test, adev.mman.buffer_funcs_enabled, "buffer funcs back on");
  const a = await kernel_bo(test, adev, 64 * 1024, AMDGPU_GEM_DOMAIN_VRAM);
  const b = await kernel_bo(test, adev, 64 * 1024, AMDGPU_GEM_DOMAIN_GTT);
  a.cpu.wr32(4096, 0x12345678);
  KUNIT_EXPECT_EQ(test, await sdma_copy(adev, a.gpu_addr, b.gpu_addr, 64 * 1024), 0, "a copy after the reset");
  KUNIT_EXPECT_EQ(test, b.cpu.rd32(4096), 0x12345678);
}

/**
 * A POLL_REGMEM that waits forever for memory nobody writes: the fence never signals, the
 * ring's timeout (lockup_timeout, 10 s of virtual time) fires, the kernel logs the timeout with
 * the ring's sequence numbers, the fence fails with -ETIME and the GPU is reset.
 */
async function fence_timeout_gpu_hang(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const flag = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_GTT);
  flag.cpu.wr32(0, 0);
  const resets0 = adev.gpu_reset_counter;
  const t0 = test.k.ktime_get();
  const f = await submit_ib(test, adev, [
    SDMA_PKT_HEADER_OP(SDMA_OP_POLL_REGMEM) | SDMA_PKT_POLL_REGMEM_HEADER_FUNC(SDMA_POLL_FUNC_EQ) | SDMA_PKT_POLL_REGMEM_HEADER_MEM_POLL(1),
    lower_32_bits(flag.gpu_addr), upper_32_bits(flag.gpu_addr), 1, 0xffffffff,
    SDMA_PKT_POLL_REGMEM_DW5_INTERVAL(0xffff) | SDMA_PKT_POLL_REGMEM_DW5_RETRY_COUNT(0xfff),
  ]);
  const left = await dma_fence_wait_timeout(f, false, msecs_to_jiffies(60_000));
  const waited = test.k.ktime_get() - t0;
  KUNIT_EXPECT_TRUE(test, left > 0, "the fence did end (with an error), before the caller's own timeout");
  KUNIT_EXPECT_EQ(test, f.error, -ETIME, "the hung job's fence carries -ETIME");
  dma_fence_put(f);
  KUNIT_EXPECT_GE(test, waited, (adev.params.lockup_timeout - 10) * 1e6, "not before the lockup timeout (to a jiffy)");
  KUNIT_EXPECT_LE(test, waited, (adev.params.lockup_timeout + 1000) * 1e6, "soon after it");
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, `ring ${adev.mman.buffer_funcs_ring!.name} timeout, signaled seq=`), "timeout reported");
  await sdma_still_works(test, adev);
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "GPU reset begin!"));
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, `GPU reset(${resets0 + 1}) succeeded!`));
  KUNIT_EXPECT_EQ(test, adev.gpu_reset_counter, resets0 + 1);
}

/**
 * An opcode the engine does not know: it halts with PACKET_ERROR, the illegal-instruction IV
 * carries the header and position, the driver logs them decoded and recovers without waiting
 * for the timeout.
 */
async function bad_sdma_packet(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const hw = get_gpu_hw(test);
  const errors0 = hw.sdma.reduce((s, e) => s + e.stats.errors, 0);
  const t0 = test.k.ktime_get();
  const bad = 0x00ab0003; // op 3 (unassigned), sub_op 0, junk in the reserved bits
  const f = await submit_ib(test, adev, [bad, 0, 0, 0]);
  const left = await dma_fence_wait_timeout(f, false, msecs_to_jiffies(60_000));
  KUNIT_EXPECT_TRUE(test, left > 0);
  KUNIT_EXPECT_EQ(test, f.error, -ETIME, "the job failed");
  dma_fence_put(f);
  KUNIT_EXPECT_LE(test, test.k.ktime_get() - t0, 1e9, "recovered without waiting for the lockup timeout");
  KUNIT_EXPECT_EQ(test, hw.sdma.reduce((s, e) => s + e.stats.errors, 0) - errors0, 1, "the engine stopped on it");
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "Illegal instruction in SDMA command stream"));
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "packet header 0x00ab0003 (op"), "the header, decoded");
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "at IB offset 0x"), "where in the stream");
  await sdma_still_works(test, adev);
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "GPU reset begin!"));
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "succeeded!"));
}

/** A register access past the end of the MMIO mapping WARNs once and is dropped; reads are all-ones. */
async function mmio_outside_bar(test: kunit): Promise<void> {
  const adev = get_adev(test);
  kunit_expect_splat(test, "warn");
  const before = RREG32(adev, mmMC_VM_FB_OFFSET);
  adev.rmmio.writel(0xdeadbeef, adev.rmmio_size);
  KUNIT_EXPECT_EQ(test, adev.rmmio.readl(adev.rmmio_size + 0x100), 0xffffffff, "unclaimed read");
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "outside the"), "the access was reported");
  KUNIT_EXPECT_TRUE(test, test.k.splats.some((s) => s.kind === "warn"), "as a WARN");
  KUNIT_EXPECT_EQ(test, RREG32(adev, mmMC_VM_FB_OFFSET), before, "the device is unaffected");
  await sdma_still_works(test, adev);
}

/**
 * SDMA writes through a GART page nobody mapped: the GPU redirects the access to the default
 * page, the MMHUB/GFXHUB fault is logged with the decoded status, and the job itself completes.
 */
async function sdma_unmapped_gart_fault(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const src = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_VRAM);
  // A GART page no BO is bound to (its PTE is not valid).
  let hole = -1;
  for (let p = adev.gart.num_gpu_pages - 1; p >= 0 && hole < 0; p--) if (!(adev.gart.ptr!.rd32(p * 8) & 1)) hole = adev.gmc.gart_start + p * 4096;
  KUNIT_ASSERT_TRUE(test, hole >= 0, "an unbound GART page");
  const r = await sdma_copy(adev, src.gpu_addr, hole, 4096);
  KUNIT_EXPECT_EQ(test, r, 0, "the copy itself completes");
  await test.k.msleep(10);
  const hub = adev.ip_versions.gc[0] === 9 ? "mmhub0" : "gfxhub";
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, `[${hub}]`) && dmesg_has(test, "page fault (src_id:0"), "the fault was logged");
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, `in page starting at address 0x${hole.toString(16).padStart(16, "0")}`), "with its address");
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "Faulty UTCL2 client ID: SDMA"), "and the SDMA client");
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "PERMISSION_FAULTS: 0x5"), "invalid PTE on a write");
}

export const amdgpu_hang_test_suite: kunit_suite = {
  name: "amdgpu_hang",
  machine: gpu_machine("gfx90a", 128 * MiB),
  test_cases: [KUNIT_CASE(fence_timeout_gpu_hang), KUNIT_CASE(bad_sdma_packet), KUNIT_CASE(mmio_outside_bar), KUNIT_CASE(sdma_unmapped_gart_fault)],
};

export const amdgpu_hang_navi10_test_suite: kunit_suite = {
  name: "amdgpu_hang_navi10",
  machine: gpu_machine("navi10", 128 * MiB),
  test_cases: [KUNIT_CASE(bad_sdma_packet), KUNIT_CASE(sdma_unmapped_gart_fault)],
};

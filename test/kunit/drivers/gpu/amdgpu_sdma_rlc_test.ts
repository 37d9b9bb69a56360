// KUnit suite for the SDMA engine's user (RLC) queues, loaded through amdgpu's kfd2kgd functions
// (kgd_gfx_v9_hqd_sdma_load/destroy) on a KFD VMID with its own page tables: a copy and a fill
// between buffers mapped only in that VM, kicked by the queue's doorbell, with the read pointer
// written back and a fence in the VM; a disable that lets the packet in flight finish and stops
// the rest (the pointers saved for a reload that resumes); a privileged packet on a user queue
// stopping that queue only; and a copy to an unmapped page of a retrying VMID that stalls until
// the page is mapped.

import {
  KUNIT_ASSERT_EQ, KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_TRUE, type kunit, type kunit_suite,
} from "../../../../lib/kunit/test.ts";
import { AMDGPU_GEM_DOMAIN_GTT } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_object.ts";
import { RREG32, WDOORBELL64 } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_device.ts";
import { kgd_gfx_v9_hqd_sdma_destroy, kgd_gfx_v9_hqd_sdma_is_occupied, kgd_gfx_v9_hqd_sdma_load } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_amdkfd_gfx_v9.ts";
import type { v9_sdma_mqd } from "../../../../drivers/gpu/drm/amd/include/v9_structs.ts";
import type { amdgpu_device } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu.ts";
import {
  REG_GET_FIELD, REG_SET_FIELD, SDMA0_RLC0_CONTEXT_STATUS__PACKET_ERROR, SDMA0_RLC0_DOORBELL_OFFSET__OFFSET,
  SDMA0_RLC0_IB_CNTL__IB_ENABLE, SDMA0_RLC0_RB_CNTL__RB_SIZE, SDMA0_RLC0_RB_CNTL__RB_VMID, SDMA0_RLC0_RB_CNTL__RPTR_WRITEBACK_ENABLE,
  SDMA0_STATUS_REG__PACKET_ERROR, mmSDMA, mmSDMA_RLC, sdmaRLC_CONTEXT_STATUS, sdmaSTATUS_REG,
} from "../../../../drivers/gpu/drm/amd/include/asic_reg/kemu_gpu_regs.ts";
import {
  SDMA_OP_CONST_FILL, SDMA_OP_COPY, SDMA_OP_FENCE, SDMA_OP_SRBM_WRITE, SDMA_PKT_HEADER_OP, SDMA_PKT_HEADER_SUB_OP, SDMA_SUBOP_COPY_LINEAR,
} from "../../../../drivers/gpu/drm/amd/amdgpu/vega10_sdma_pkt_open.ts";
import {
  ComputeCtx, RW, get_adev, get_gpu_hw, gpu_machine, kernel_bo, pattern, register_fake_kfd, sdma_copy, MiB,
} from "./amdgpu_harness.ts";
import type { amdgpu_kernel_bo } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_object.ts";

/** Where the user VM sees the queue's ring, its pointers and fence, and the data buffers. */
const RING_VA = 0x4000_0000;
const PTRS_VA = 0x4010_0000;
const SRC_VA = 0x5000_0000;
const DST_VA = 0x6000_0000;
const RING_BYTES = 4096;
const DATA_BYTES = 4 * MiB;
const FENCE_OFF = 64;

interface rlc_queue {
  ctx: ComputeCtx;
  ring: amdgpu_kernel_bo;
  ptrs: amdgpu_kernel_bo;
  src: amdgpu_kernel_bo;
  dst: amdgpu_kernel_bo;
  mqd: v9_sdma_mqd;
  wptr: number;
}

function copy_pkt(src: number, dst: number, n: number): number[] {
  return [SDMA_PKT_HEADER_OP(SDMA_OP_COPY) | SDMA_PKT_HEADER_SUB_OP(SDMA_SUBOP_COPY_LINEAR), n - 1, 0, src, 0, dst, 0];
}
function fence_pkt(va: number, seq: number): number[] {
  return [SDMA_PKT_HEADER_OP(SDMA_OP_FENCE), va, 0, seq];
}

/** A VM on a KFD VMID with ring, pointer page and two 4 MiB buffers, and RLC queue 1 of SDMA1 loaded on it. */
async function rlc_setup(test: kunit, xnack = false, map_dst = true): Promise<rlc_queue> {
  const adev = get_adev(test);
  const ctx = await ComputeCtx.create(test, adev, { xnack, compute: xnack });
  const ring = await kernel_bo(test, adev, RING_BYTES, AMDGPU_GEM_DOMAIN_GTT);
  const ptrs = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_GTT);
  const src = await kernel_bo(test, adev, DATA_BYTES, AMDGPU_GEM_DOMAIN_GTT);
  const dst = await kernel_bo(test, adev, DATA_BYTES, AMDGPU_GEM_DOMAIN_GTT);
  ptrs.cpu.memset(0, 0, 4096);
  dst.cpu.memset(0, 0, DATA_BYTES);
  src.cpu.memcpy_to(0, pattern(DATA_BYTES, 3));
  KUNIT_ASSERT_EQ(test, await ctx.map(RING_VA, ring.bo, RW), 0);
  KUNIT_ASSERT_EQ(test, await ctx.map(PTRS_VA, ptrs.bo, RW), 0);
  KUNIT_ASSERT_EQ(test, await ctx.map(SRC_VA, src.bo, RW), 0);
  if (map_dst) KUNIT_ASSERT_EQ(test, await ctx.map(DST_VA, dst.bo, RW), 0);
  let cntl = REG_SET_FIELD(0, SDMA0_RLC0_RB_CNTL__RB_SIZE, Math.log2(RING_BYTES / 4));
  cntl = REG_SET_FIELD(cntl, SDMA0_RLC0_RB_CNTL__RB_VMID, ctx.vmid);
  const mqd: v9_sdma_mqd = {
    sdmax_rlcx_rb_cntl: REG_SET_FIELD(cntl, SDMA0_RLC0_RB_CNTL__RPTR_WRITEBACK_ENABLE, 1), sdmax_rlcx_rb_base: RING_VA / 256,
    sdmax_rlcx_rb_base_hi: 0, sdmax_rlcx_rb_rptr: 0, sdmax_rlcx_rb_rptr_hi: 0, sdmax_rlcx_rb_wptr: 0, sdmax_rlcx_rb_wptr_hi: 0,
    sdmax_rlcx_rb_rptr_addr_lo: PTRS_VA, sdmax_rlcx_rb_rptr_addr_hi: 0, sdmax_rlcx_doorbell: 0,
    sdmax_rlcx_doorbell_offset: REG_SET_FIELD(0, SDMA0_RLC0_DOORBELL_OFFSET__OFFSET, adev.doorbell_index.first_non_cp + 72),
    sdmax_rlcx_ib_cntl: REG_SET_FIELD(0, SDMA0_RLC0_IB_CNTL__IB_ENABLE, 1), sdmax_rlcx_rb_wptr_poll_addr_lo: PTRS_VA + 8,
    sdmax_rlcx_rb_wptr_poll_addr_hi: 0, sdma_engine_id: 1, sdma_queue_id: 1,
  };
  KUNIT_ASSERT_EQ(test, await kgd_gfx_v9_hqd_sdma_load(adev, mqd), 0);
  test.add_action(async () => {
    await kgd_gfx_v9_hqd_sdma_destroy(adev, mqd, 100);
  });
  return { ctx, ring, ptrs, src, dst, mqd, wptr: 0 };
}

/** Writes packets at the write pointer, stores it for the poll address and rings the doorbell. */
function submit(adev: amdgpu_device, q: rlc_queue, dws: readonly number[]): void {
  for (const dw of dws) {
    q.ring.cpu.wr32(q.wptr % RING_BYTES, dw >>> 0);
    q.wptr += 4;
  }
  q.ptrs.cpu.wr32(8, q.wptr);
  WDOORBELL64(adev, REG_GET_FIELD(q.mqd.sdmax_rlcx_doorbell_offset, SDMA0_RLC0_DOORBELL_OFFSET__OFFSET), q.wptr);
}

async function wait_fence(test: kunit, q: rlc_queue, seq: number, ms = 100): Promise<boolean> {
  const end = test.k.ktime_get() + ms * 1e6;
  while (q.ptrs.cpu.rd32(FENCE_OFF) !== seq) {
    if (test.k.ktime_get() >= end) return false;
    await test.k.usleep_range(10, 20);
  }
  return true;
}

function same(a: amdgpu_kernel_bo, b: amdgpu_kernel_bo, off: number, n: number): boolean {
  const x = new Uint8Array(n);
  const y = new Uint8Array(n);
  a.cpu.memcpy_from(x, off, n);
  b.cpu.memcpy_from(y, off, n);
  return x.every((v, i) => v === y[i]);
}

/** A copy and a fill through the queue's VMID, kicked by its doorbell; rptr written back. */
async function rlc_copy_fill_through_vm(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const q = await rlc_setup(test);
  const before = get_gpu_hw(test).sdma[1]!.stats.bytes_copied;
  submit(adev, q, [
    ...copy_pkt(SRC_VA + 3, DST_VA + 3, 65536 + 5),
    SDMA_PKT_HEADER_OP(SDMA_OP_CONST_FILL), DST_VA + 0x20000, 0, 0xdeadbeef, 4096 - 1,
    ...fence_pkt(PTRS_VA + FENCE_OFF, 1),
  ]);
  KUNIT_ASSERT_TRUE(test, await wait_fence(test, q, 1), "fence written");
  KUNIT_EXPECT_TRUE(test, same(q.src, q.dst, 3, 65536 + 5), "copied through the VM");
  KUNIT_EXPECT_EQ(test, q.dst.cpu.rd32(0) % 2 ** 24, 0, "nothing before the copy");
  KUNIT_EXPECT_EQ(test, q.dst.cpu.rd32(0x20000 + 4092), 0xdeadbeef);
  KUNIT_EXPECT_EQ(test, q.dst.cpu.rd32(0x21000), 0, "fill stops at its size");
  KUNIT_EXPECT_EQ(test, q.ptrs.cpu.rd32(0), q.wptr, "rptr written back to the user VM");
  KUNIT_EXPECT_EQ(test, get_gpu_hw(test).sdma[1]!.stats.bytes_copied - before, 65536 + 5);
  KUNIT_EXPECT_TRUE(test, kgd_gfx_v9_hqd_sdma_is_occupied(adev, q.mqd));
}

/**
 * Disabling the queue while a 4 MiB copy is in flight: the copy finishes, the fence after it
 * does not run, the saved rptr points at the fence; a reload resumes and writes it.
 */
async function rlc_disable_drains(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const q = await rlc_setup(test);
  submit(adev, q, [...copy_pkt(SRC_VA, DST_VA, DATA_BYTES), ...fence_pkt(PTRS_VA + FENCE_OFF, 7)]);
  // The engine starts after the doorbell latency; the copy then takes ~75 µs.
  await test.k.usleep_range(10, 11);
  const engine = get_gpu_hw(test).sdma[1]!;
  KUNIT_ASSERT_EQ(test, engine.stats.bytes_copied > 0 ? 1 : 0, 1, "the copy started");
  KUNIT_ASSERT_EQ(test, await kgd_gfx_v9_hqd_sdma_destroy(adev, q.mqd, 100), 0);
  KUNIT_EXPECT_TRUE(test, same(q.src, q.dst, 0, DATA_BYTES), "the packet in flight drained");
  KUNIT_EXPECT_EQ(test, q.ptrs.cpu.rd32(FENCE_OFF), 0, "the next packet did not run");
  KUNIT_EXPECT_EQ(test, q.mqd.sdmax_rlcx_rb_rptr, 28, "saved rptr: after the copy packet");
  KUNIT_EXPECT_EQ(test, q.mqd.sdmax_rlcx_rb_wptr, q.wptr);
  KUNIT_EXPECT_TRUE(test, !kgd_gfx_v9_hqd_sdma_is_occupied(adev, q.mqd));
  await test.k.msleep(1);
  KUNIT_EXPECT_EQ(test, q.ptrs.cpu.rd32(FENCE_OFF), 0, "still stopped");
  KUNIT_ASSERT_EQ(test, await kgd_gfx_v9_hqd_sdma_load(adev, q.mqd), 0);
  KUNIT_EXPECT_TRUE(test, await wait_fence(test, q, 7), "resumed at the fence");
}

/** SRBM_WRITE is privileged: it stops the user queue with a packet error; the kernel ring still works. */
async function rlc_privileged_packet(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const q = await rlc_setup(test);
  submit(adev, q, [SDMA_PKT_HEADER_OP(SDMA_OP_SRBM_WRITE), mmSDMA(1, 0), 1, ...fence_pkt(PTRS_VA + FENCE_OFF, 3)]);
  await test.k.msleep(1);
  const st = RREG32(adev, mmSDMA_RLC(1, 1, sdmaRLC_CONTEXT_STATUS));
  KUNIT_EXPECT_EQ(test, REG_GET_FIELD(st, SDMA0_RLC0_CONTEXT_STATUS__PACKET_ERROR), 1);
  KUNIT_EXPECT_EQ(test, q.ptrs.cpu.rd32(FENCE_OFF), 0);
  KUNIT_EXPECT_EQ(test, REG_GET_FIELD(RREG32(adev, mmSDMA(1, sdmaSTATUS_REG)), SDMA0_STATUS_REG__PACKET_ERROR), 0, "kernel queue unaffected");
  KUNIT_EXPECT_TRUE(test, get_gpu_hw(test).sdma[1]!.last_error.includes("SRBM_WRITE on a user queue"));
  KUNIT_EXPECT_TRUE(test, !test.k.log.dmesg().some((l) => l.includes("GPU reset")), "a user queue's bad packet resets nothing");
  // The kernel's own SDMA ring on that engine still runs.
  const src = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_GTT);
  const dst = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_GTT);
  KUNIT_EXPECT_EQ(test, await sdma_copy(adev, src.gpu_addr, dst.gpu_addr, 4096), 0);
}

/**
 * XNACK on: a copy to an unmapped destination stalls on a retry fault that reaches the KFD hook
 * as a shader's would (a stand-in for amdkfd here); the hook maps the page after a delay, the
 * packet replays and the copy and its fence complete.
 */
async function rlc_retry_fault_replays(test: kunit): Promise<void> {
  const adev = get_adev(test);
  let q: rlc_queue | null = null;
  const served: number[] = [];
  await register_fake_kfd(test, async (_adev, _pasid, _vmid, _node, addr) => {
    served.push(addr);
    if (Math.floor(addr / 2) !== DST_VA / 8192) return -14;
    // Faults queued behind the first find the range mapped (as svm_range_restore_pages does).
    if (served.length > 1) return 0;
    // Hold the fault a while, so the stall is visible, then map the destination.
    await test.k.msleep(1);
    return q!.ctx.map(DST_VA, q!.dst.bo, RW, true);
  });
  q = await rlc_setup(test, true, false);
  // GFX9 puts SDMA on the MMHUB, Navi10 on the GFXHUB.
  const hub = adev.ip_versions.gc[0] === 9 ? get_gpu_hw(test).mmhub : get_gpu_hw(test).gfxhub;
  const faults = hub.stats.retry_faults;
  submit(adev, q, [...copy_pkt(SRC_VA, DST_VA, 8192), ...fence_pkt(PTRS_VA + FENCE_OFF, 5)]);
  await test.k.usleep_range(200, 201);
  KUNIT_EXPECT_TRUE(test, hub.stats.retry_faults > faults, "retry faults raised");
  KUNIT_EXPECT_EQ(test, q.ptrs.cpu.rd32(FENCE_OFF), 0, "stalled");
  KUNIT_EXPECT_TRUE(test, await wait_fence(test, q, 5), "replayed after the mapping");
  KUNIT_EXPECT_TRUE(test, same(q.src, q.dst, 0, 8192));
  KUNIT_EXPECT_EQ(test, served[0], DST_VA / 4096, "the fault reached the KFD hook");
}

export const amdgpu_sdma_rlc_test_suite: kunit_suite = {
  name: "amdgpu_sdma_rlc",
  machine: gpu_machine("gfx90a", 256 * MiB),
  test_cases: [
    KUNIT_CASE(rlc_copy_fill_through_vm), KUNIT_CASE(rlc_disable_drains), KUNIT_CASE(rlc_privileged_packet),
    KUNIT_CASE(rlc_retry_fault_replays),
  ],
};

export const amdgpu_sdma_rlc_navi10_test_suite: kunit_suite = {
  name: "amdgpu_sdma_rlc_navi10",
  machine: gpu_machine("navi10", 256 * MiB),
  test_cases: [
    KUNIT_CASE(rlc_copy_fill_through_vm), KUNIT_CASE(rlc_disable_drains), KUNIT_CASE(rlc_privileged_packet),
    KUNIT_CASE(rlc_retry_fault_replays),
  ],
};

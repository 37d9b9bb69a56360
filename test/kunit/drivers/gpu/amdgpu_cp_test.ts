// KUnit suite for compute queue preemption (hw/amdgpu/cp.ts driven through
// kgd_gfx_v9_hqd_destroy/hqd_load): each dequeue type stops a dispatch of a non-idempotent kernel
// (GLOBAL_ATOMIC_ADD) mid-way, and reloading the queue must leave every counter at exactly one
// increment per workgroup — SAVE_WAVES resumes the saved wave from the context save area (whose
// header the test checks), DRAIN_PIPE finishes the wave in flight and resumes at the restart
// workgroup, RESET_WAVES discards everything, a wave stalled on a retry fault stays stalled
// across the save and restore. A save that cannot reach its save area makes the
// dequeue time out; a queue without a save area drains instead; another queue loaded into the
// slot meanwhile runs nothing of the saved one.

import {
  KUNIT_ASSERT_EQ, KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_GT, KUNIT_EXPECT_LT,
  KUNIT_EXPECT_TRUE, type kunit, type kunit_suite,
} from "../../../../lib/kunit/test.ts";
import { AMDGPU_GEM_DOMAIN_GTT, type amdgpu_kernel_bo } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_object.ts";
import {
  KFD_PREEMPT_TYPE_WAVEFRONT_DRAIN, KFD_PREEMPT_TYPE_WAVEFRONT_RESET, KFD_PREEMPT_TYPE_WAVEFRONT_SAVE, type kfd_preempt_type,
} from "../../../../drivers/gpu/drm/amd/include/kgd_kfd_interface.ts";
import { copyDwordIsa, countTwiceIsa } from "../../../../tools/hsakmt/dispatch.ts";
import { ETIME } from "../../../../include/uapi/asm-generic/errno.ts";
import { CTX_CTL_BYTES, CTX_FLAG_WAVE, CTX_SAVE_MAGIC, CTX_SAVE_VERSION, CTX_WAVE_BYTES } from "../../../../hw/amdgpu/cp.ts";
import {
  ComputeCtx, RW, SAVE_CNTL_STACK_SIZE, get_adev, get_gpu_hw, gpu_machine, kernel_bo, register_fake_kfd, MiB,
} from "./amdgpu_harness.ts";

const COUNT_VA = 0x4000_0000;
const UNMAPPED_VA = 0x5000_0000;
const N_WG = 8;
/** Long enough that a dequeue lands inside a wave. */
const WAVE_SLEEP_NS = 100_000;

interface counters {
  c: ComputeCtx;
  mem: amdgpu_kernel_bo;
  kernel: number;
}

/**
 * A queue (with a save area when `save_area`) and a kernel whose every wave adds 1 to the dword
 * at COUNT_VA, sleeps, then adds 1 to the dword after it.
 */
async function setup(test: kunit, save_area: boolean): Promise<counters> {
  const adev = get_adev(test);
  const mem = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_GTT);
  mem.cpu.memset(0, 0, 4096);
  const c = await ComputeCtx.create(test, adev, { save_area });
  KUNIT_ASSERT_EQ(test, await c.map(COUNT_VA, mem.bo, RW), 0);
  const kernel = c.load_program(countTwiceIsa(WAVE_SLEEP_NS));
  return { c, mem, kernel };
}

/** Submits the N_WG dispatch and waits until `started` waves made their first increment. */
async function run_until(test: kunit, t: counters, started: number): Promise<void> {
  t.c.submit(t.kernel, [COUNT_VA], N_WG);
  const k = test.k;
  const end = k.ktime_get() + 100e6;
  while (t.mem.cpu.rd32(0) < started && k.ktime_get() < end) await k.usleep_range(5, 10);
  KUNIT_ASSERT_EQ(test, t.mem.cpu.rd32(0), started, "the dispatch is under way");
}

/** Loads the queue again and lets the dispatch finish: every workgroup counted exactly once. */
async function reload_and_finish(test: kunit, t: counters): Promise<void> {
  KUNIT_ASSERT_EQ(test, await t.c.reload(), 0);
  KUNIT_ASSERT_TRUE(test, await t.c.wait_idle(), "the dispatch completes after the reload");
  KUNIT_EXPECT_EQ(test, t.mem.cpu.rd32(0), N_WG, "one first add per workgroup");
  KUNIT_EXPECT_EQ(test, t.mem.cpu.rd32(4), N_WG, "one second add per workgroup");
}

function hqd_active(test: kunit): boolean {
  return get_gpu_hw(test).cp.hqds[0]!.active;
}

/** SAVE_WAVES mid-wave: the save area holds the dispatch and the wave; the reload finishes exactly once. */
async function save_resumes_mid_dispatch(test: kunit): Promise<void> {
  const t = await setup(test, true);
  await run_until(test, t, 3);
  KUNIT_ASSERT_EQ(test, await t.c.preempt(KFD_PREEMPT_TYPE_WAVEFRONT_SAVE), 0);
  KUNIT_EXPECT_FALSE(test, hqd_active(test), "the queue is off the pipe");
  const first = t.mem.cpu.rd32(0);
  KUNIT_EXPECT_EQ(test, t.mem.cpu.rd32(4), first - 1, "saved inside a wave (its second add not done)");
  const ctl = SAVE_CNTL_STACK_SIZE - CTX_CTL_BYTES;
  const save = t.c.save!.cpu;
  KUNIT_EXPECT_EQ(test, save.rd32(ctl), CTX_SAVE_MAGIC, "the control-stack record's magic");
  KUNIT_EXPECT_EQ(test, save.rd32(ctl + 4), CTX_SAVE_VERSION);
  KUNIT_EXPECT_EQ(test, save.rd32(ctl + 8), CTX_FLAG_WAVE, "a wave was saved");
  KUNIT_EXPECT_EQ(test, save.rd32(ctl + 48), N_WG, "workgroups in the grid");
  KUNIT_EXPECT_EQ(test, save.rd32(ctl + 52), first, "next workgroup to launch");
  KUNIT_EXPECT_EQ(test, save.rd32(SAVE_CNTL_STACK_SIZE + 8), first - 1, "the saved wave's workgroup id");
  KUNIT_EXPECT_EQ(test, t.c.mqd.cp_hqd_cntl_stack_offset, ctl, "control stack pushed");
  KUNIT_EXPECT_EQ(test, t.c.mqd.cp_hqd_wg_state_offset, SAVE_CNTL_STACK_SIZE + CTX_WAVE_BYTES, "workgroup state pushed");
  await test.k.msleep(2);
  KUNIT_EXPECT_EQ(test, t.mem.cpu.rd32(0), first, "nothing runs while the queue is off");
  await reload_and_finish(test, t);
  KUNIT_EXPECT_EQ(test, save.rd32(ctl), 0, "the restore marked the area empty");
}

/**
 * Preempts with `type` once `started` waves began: the wave in flight finishes, no new one starts
 * and the dispatch keeps its restart workgroup; the reload runs the remainder once.
 */
async function drained_then_resumed(test: kunit, type: kfd_preempt_type, started: number): Promise<void> {
  const t = await setup(test, false);
  await run_until(test, t, started);
  KUNIT_ASSERT_EQ(test, await t.c.preempt(type), 0);
  KUNIT_EXPECT_FALSE(test, hqd_active(test));
  KUNIT_EXPECT_EQ(test, t.mem.cpu.rd32(0), started, "no workgroup launched after the request");
  KUNIT_EXPECT_EQ(test, t.mem.cpu.rd32(4), started, "the wave in flight finished");
  KUNIT_EXPECT_EQ(test, t.c.mqd.compute_restart_x, started, "the dispatch resumes after the last started workgroup");
  await reload_and_finish(test, t);
}

/** DRAIN_PIPE mid-wave. */
async function drain_finishes_wave(test: kunit): Promise<void> {
  await drained_then_resumed(test, KFD_PREEMPT_TYPE_WAVEFRONT_DRAIN, 3);
}

/** Without a save area, SAVE_WAVES cannot save: the CP drains the queue instead. */
async function save_without_area_drains(test: kunit): Promise<void> {
  await drained_then_resumed(test, KFD_PREEMPT_TYPE_WAVEFRONT_SAVE, 2);
}

/** RESET_WAVES: the queue stops at once and keeps nothing; a reload starts the packet afresh. */
async function reset_discards(test: kunit): Promise<void> {
  const t = await setup(test, true);
  await run_until(test, t, 3);
  KUNIT_ASSERT_EQ(test, await t.c.preempt(KFD_PREEMPT_TYPE_WAVEFRONT_RESET), 0);
  KUNIT_EXPECT_FALSE(test, hqd_active(test));
  KUNIT_EXPECT_EQ(test, t.mem.cpu.rd32(4), 2, "the wave in flight was killed");
  KUNIT_EXPECT_EQ(test, t.c.save!.cpu.rd32(SAVE_CNTL_STACK_SIZE - CTX_CTL_BYTES), 0, "nothing saved");
  KUNIT_EXPECT_EQ(test, t.c.mqd.cp_hqd_cntl_stack_offset, SAVE_CNTL_STACK_SIZE);
  KUNIT_EXPECT_EQ(test, t.c.mqd.compute_restart_x, 0);
  await test.k.msleep(2);
  KUNIT_EXPECT_EQ(test, t.mem.cpu.rd32(0), 3);
  KUNIT_ASSERT_EQ(test, await t.c.reload(), 0);
  KUNIT_ASSERT_TRUE(test, await t.c.wait_idle());
  KUNIT_EXPECT_EQ(test, t.mem.cpu.rd32(0), 3 + N_WG, "the unconsumed packet ran again from workgroup 0");
  KUNIT_EXPECT_EQ(test, t.mem.cpu.rd32(4), 2 + N_WG);
}

/**
 * The saved context lives in the queue's save area, not in the slot: another queue loaded there
 * (nothing pending, no saved context) runs nothing of it, and the first queue still resumes.
 */
async function slot_keeps_nothing_between_queues(test: kunit): Promise<void> {
  const t = await setup(test, true);
  await run_until(test, t, 3);
  KUNIT_ASSERT_EQ(test, await t.c.preempt(KFD_PREEMPT_TYPE_WAVEFRONT_SAVE), 0);
  const saved = { ...t.c.mqd };
  const waves = get_gpu_hw(test).cp.hqds[0]!.stats.waves;
  // Another queue's MQD: its ring is empty (read index = write index), its save area empty.
  Object.assign(t.c.mqd, {
    cp_hqd_pq_rptr: t.c.wptr, cp_hqd_cntl_stack_offset: SAVE_CNTL_STACK_SIZE, cp_hqd_wg_state_offset: SAVE_CNTL_STACK_SIZE,
  });
  KUNIT_ASSERT_EQ(test, await t.c.reload(), 0);
  await test.k.msleep(2);
  KUNIT_EXPECT_EQ(test, get_gpu_hw(test).cp.hqds[0]!.stats.waves, waves, "no wave of the first queue ran");
  KUNIT_EXPECT_EQ(test, t.mem.cpu.rd32(0), 3);
  KUNIT_EXPECT_EQ(test, t.mem.cpu.rd32(4), 2);
  KUNIT_ASSERT_EQ(test, await t.c.preempt(KFD_PREEMPT_TYPE_WAVEFRONT_RESET), 0);
  t.c.mqd = saved;
  await reload_and_finish(test, t);
}

/**
 * XNACK on, SAVE_WAVES while the wave stalls on a retry fault KFD has not served yet: the save
 * records the stall, the restored wave goes on stalling on the same access (not a new stall) and
 * completes once the fault handler maps the page.
 */
async function save_keeps_retry_stall(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const data = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_GTT);
  const out = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_GTT);
  data.cpu.wr32(0, 0xc0ffee);
  let c: ComputeCtx | null = null;
  let release = false;
  let served = 0;
  await register_fake_kfd(test, async () => {
    // Faults queued behind the first find the page mapped (as svm_range_restore_pages does).
    if (served++) return 0;
    while (!release) await test.k.msleep(1);
    return c!.map(UNMAPPED_VA, data.bo, RW, true);
  });
  c = await ComputeCtx.create(test, adev, { compute: true, xnack: true, save_area: true });
  KUNIT_ASSERT_EQ(test, await c.map(COUNT_VA, out.bo, RW), 0);
  const hqd = get_gpu_hw(test).cp.hqds[0]!;
  c.submit(c.load_program(copyDwordIsa()), [UNMAPPED_VA, COUNT_VA]);
  await test.k.usleep_range(200, 201);
  KUNIT_ASSERT_TRUE(test, hqd.stalled, "the load stalls on a retry fault");
  const stalls = hqd.stats.retry_stalls;
  KUNIT_ASSERT_EQ(test, await c.preempt(KFD_PREEMPT_TYPE_WAVEFRONT_SAVE), 0);
  const wave = c.save!.cpu;
  KUNIT_EXPECT_EQ(test, wave.rd32(SAVE_CNTL_STACK_SIZE + 16), 1, "saved stalled, on a read, retry not timed out");
  KUNIT_EXPECT_EQ(test, wave.rd32(SAVE_CNTL_STACK_SIZE + 20), UNMAPPED_VA / 4096, "the faulting page");
  KUNIT_ASSERT_EQ(test, await c.reload(), 0);
  await test.k.usleep_range(200, 201);
  KUNIT_EXPECT_TRUE(test, hqd.stalled, "still stalled after the restore");
  KUNIT_EXPECT_EQ(test, hqd.stats.retry_stalls, stalls, "the same stall, not a new one");
  release = true;
  KUNIT_ASSERT_TRUE(test, await c.wait_idle(), "the wave completes once the page is mapped");
  KUNIT_EXPECT_EQ(test, out.cpu.rd32(0), 0xc0ffee);
}

/** A save area the VMID cannot reach: the save faults, the queue stays on the pipe, the dequeue times out. */
async function save_fault_times_out(test: kunit): Promise<void> {
  const t = await setup(test, true);
  KUNIT_ASSERT_EQ(test, await t.c.preempt(KFD_PREEMPT_TYPE_WAVEFRONT_RESET), 0);
  t.c.mqd.cp_hqd_ctx_save_base_addr_lo = UNMAPPED_VA;
  KUNIT_ASSERT_EQ(test, await t.c.reload(), 0);
  await run_until(test, t, 2);
  KUNIT_EXPECT_EQ(test, await t.c.preempt(KFD_PREEMPT_TYPE_WAVEFRONT_SAVE, 10), -ETIME);
  KUNIT_EXPECT_TRUE(test, test.k.log.dmesg().some((l) => l.includes("cp queue preemption time out")));
  KUNIT_EXPECT_TRUE(test, hqd_active(test), "the queue is still on the pipe");
  KUNIT_EXPECT_GT(test, get_gpu_hw(test).gfxhub.stats.noretry_faults, 0, "the save's write faulted");
  const stopped = t.mem.cpu.rd32(0);
  KUNIT_EXPECT_LT(test, stopped, N_WG);
  KUNIT_EXPECT_EQ(test, await t.c.preempt(KFD_PREEMPT_TYPE_WAVEFRONT_RESET), 0, "a reset still takes it off");
  KUNIT_EXPECT_FALSE(test, hqd_active(test));
}

export const amdgpu_cp_test_suite: kunit_suite = {
  name: "amdgpu_cp_preempt",
  machine: gpu_machine("gfx90a", 256 * MiB),
  test_cases: [
    KUNIT_CASE(save_resumes_mid_dispatch),
    KUNIT_CASE(drain_finishes_wave),
    KUNIT_CASE(save_without_area_drains),
    KUNIT_CASE(reset_discards),
    KUNIT_CASE(slot_keeps_nothing_between_queues),
    KUNIT_CASE(save_keeps_retry_stall),
    KUNIT_CASE(save_fault_times_out),
  ],
};

// Port of ROCm kfdtest's KFDCWSRTest (tests/kfdtest/src/KFDCWSRTest.cpp) onto kemu's thunk, for
// XNACK off and on like the other kfdtest ports. BasicTest keeps a shader looping while the
// queue is dequeued and requeued again and again (hsaKmtUpdateQueue with 0 % and 100 %), each
// dequeue a context save (CWSR) and each requeue a restore, and checks the shader's registers
// survive; InterruptRestore destroys queues whose dispatches never end.
//
// Differences from upstream:
// - cwsr_enable is read from /sys/module/amdkfd/parameters/cwsr_enable: kemu's amdkfd is its own
//   module (in Linux it is part of amdgpu.ko, /sys/module/amdgpu/parameters/cwsr_enable).
// - IterateIsa is written in kemu's ISA (tools/hsakmt/dispatch.ts): each wave keeps its output
//   dword in a scalar register and stores it back each turn until input[0] holds the stop value,
//   so a mangled register shows in output as upstream's check expects; one work-item per
//   workgroup (one wave each). The shader sleeps 100 µs a turn and the delays are machine time
//   scaled from upstream's Delay(5)/Delay(5)/Delay(50) ms to 1/1/5 ms, so 1000 CWSRs fit in CI;
//   the first dequeue waits until the CP launched the first wave instead of a blind Delay(5).
// - Checked beyond upstream, from the CP: every dequeue saved the wave in flight and every
//   requeue restored it, the dispatch never restarted and no workgroup ran twice.
// - InterruptRestore: upstream's third queue makes the HWS runlist preempt the first two while
//   they restore. kemu runs KFD without HWS (no runlist), so creating a queue preempts nothing;
//   the case still destroys two queues with endless dispatches in flight (RESET_WAVES) and checks
//   each destroy succeeds and nothing of them stays on the GPU.

import { ASSERT_EQ, EXPECT_EQ, SKIP, TEST_F, TH_LOG, kselftest } from "../../../tools/testing/selftests/kselftest_harness.ts";
import { FAMILY_VI, HSAKMT_STATUS } from "../../../tools/hsakmt/hsakmttypes.ts";
import { GpuDispatcher, ITERATE_STOP, infiniteLoopIsa, iterateIsa } from "../../../tools/hsakmt/dispatch.ts";
import {
  HsaSVMRange, PAGE_SIZE, destroy_queue, dispatcher, fill_dwords, first_mismatch, kfdtest_fixture, machine_sleep, node_props,
  read_dwords, type KfdtestSelf,
} from "./kfdtest_svm_util.ts";
import { active_hqds, hqd_of_ring } from "./kfd_util.ts";

export const KFDCWSRTest = kselftest("KFDCWSRTest");

const F = kfdtest_fixture(KFDCWSRTest, "KFDCWSRTest", [1]);

/** Upstream's Delay(5) before the loop and after a dequeue, Delay(50) after a requeue, scaled. */
const START_DELAY_MS = 1;
const LAUNCH_TIMEOUT_MS = 100;
const DEQUEUE_DELAY_MS = 1;
const REQUEUE_DELAY_MS = 5;
/** How long one turn of the shaders' loops takes (their s_sleep). */
const ITER_NS = 100_000;
const OUTVAL = 0x8765_4321;

/** checkCWSREnabled(): the module parameter, and an ASIC family that has CWSR (VI and later). */
async function cwsr_present(self: KfdtestSelf, node: number): Promise<boolean> {
  const text = await self.proc.readFile("/sys/module/amdkfd/parameters/cwsr_enable").catch(() => "0");
  const fam = node_props(self.kmt, node).FamilyID ?? 0;
  if (fam >= FAMILY_VI && Number(text.trim()) !== 0) return true;
  TH_LOG(`Skipping test: No CWSR present for family ID 0x${fam.toString(16)}.`);
  return false;
}

/**
 * BasicTest/N: `num_witems` one-work-item workgroups of IterateIsa; `cwsr_thresh` dequeue/requeue
 * rounds while the first wave loops, output checked after each; then the stop value ends it.
 */
async function BasicTest(self: KfdtestSelf, num_witems: number, cwsr_thresh: number): Promise<void> {
  const node = self.defaultGPUNode;
  if (!(await cwsr_present(self, node))) SKIP("No CWSR present");
  const input = await HsaSVMRange(self, PAGE_SIZE, node);
  const output = await HsaSVMRange(self, PAGE_SIZE, node);
  await fill_dwords(self.proc, input, PAGE_SIZE, () => 0);
  await fill_dwords(self.proc, output, PAGE_SIZE, () => OUTVAL);
  const queue = await dispatcher(self, node);
  const hqd = hqd_of_ring(self.machine, queue.ctrl)!;
  const before = { ...hqd.stats };
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await queue.submit(iterateIsa(ITER_NS), { kernargs: [input, output], grid: num_witems, workgroup: 1 }));
  // Upstream's Delay(5) lets the waves launch; kemu waits until the CP started the first one
  // (with XNACK on, the queue's first fetches retry-fault in its pages one by one first).
  for (let ms = 0; hqd.stats.waves === before.waves && ms < LAUNCH_TIMEOUT_MS; ms += START_DELAY_MS) {
    await machine_sleep(self.machine, START_DELAY_MS);
  }
  ASSERT_EQ(1, hqd.stats.waves - before.waves, "the first wave launched");
  TH_LOG(`Starting iteration for ${num_witems} work items(s) (targeting ${cwsr_thresh} CWSRs)`);
  for (let num_cwsrs = 0; num_cwsrs < cwsr_thresh; num_cwsrs++) {
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await queue.update(0), "dequeue");
    await machine_sleep(self.machine, DEQUEUE_DELAY_MS);
    EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await queue.update(100), "requeue");
    await machine_sleep(self.machine, REQUEUE_DELAY_MS);
    const out = await read_dwords(self.proc, output, num_witems * 4);
    EXPECT_EQ(-1, first_mismatch(out, () => OUTVAL), `register mangled after CWSR ${num_cwsrs + 1}`);
  }
  TH_LOG(`Successful completion for ${num_witems} work item(s) (CWSRs triggered: ${cwsr_thresh})`);
  await fill_dwords(self.proc, input, PAGE_SIZE, () => ITERATE_STOP);
  const r = await queue.sync(180_000);
  EXPECT_EQ(true, r.completed, `the shader stopped (status ${r.status}, fault ${r.fault ? "yes" : "no"})`);
  EXPECT_EQ(cwsr_thresh, hqd.stats.ctx_saves - before.ctx_saves, "each dequeue saved the wave in flight");
  EXPECT_EQ(cwsr_thresh, hqd.stats.ctx_restores - before.ctx_restores, "each requeue restored it");
  EXPECT_EQ(1, hqd.stats.dispatches - before.dispatches, "one dispatch, never restarted");
  EXPECT_EQ(num_witems, hqd.stats.waves - before.waves, "no workgroup ran twice");
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await destroy_queue(self, queue));
}

/** (num_witems, cwsr_thresh) of upstream's INSTANTIATE_TEST_CASE_P, in order. */
const BASIC_PARAMS: ReadonlyArray<[number, number]> = [[1, 10], [256, 50], [512, 100], [1024, 1000]];
BASIC_PARAMS.forEach(([witems, thresh], i) => TEST_F(F, `BasicTest_${i}`, (self) => BasicTest(self, witems, thresh)));

TEST_F(F, "InterruptRestore", async (self) => {
  const node = self.defaultGPUNode;
  if (!(await cwsr_present(self, node))) SKIP("No CWSR present");
  const hqds_before = active_hqds(self.machine);
  const queues: GpuDispatcher[] = [];
  const create = async (): Promise<GpuDispatcher> => {
    const q = await GpuDispatcher.create(self.kmt, node);
    ASSERT_EQ("object", typeof q, `queue ${queues.length + 1}: ${String(q)}`);
    queues.push(q as GpuDispatcher);
    return q as GpuDispatcher;
  };
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await (await create()).submit(infiniteLoopIsa(ITER_NS), { grid: 0x10000 }));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await (await create()).submit(infiniteLoopIsa(ITER_NS), { grid: 0x10000 }));
  // Give waves time to launch.
  await machine_sleep(self.machine, 1);
  await create();
  for (const [i, q] of queues.entries()) EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await q.destroy(), `queue${i + 1}.Destroy()`);
  EXPECT_EQ(hqds_before, active_hqds(self.machine), "no queue left loaded");
});

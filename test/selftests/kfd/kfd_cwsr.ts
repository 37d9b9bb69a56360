// kemu selftest: compute queue preemption as a ROCm process meets it. An XNACK-off process runs
// a kernel that must not run a workgroup twice (each adds 1 to a counter with GLOBAL_ATOMIC_ADD,
// works, then adds 1 to a second counter) while the CPU changes the protection of another of its
// registered SVM ranges: each invalidation evicts the process's queues mid-dispatch and the SVM
// restore worker loads them again. With CWSR (amdkfd.cwsr_enable=1, the default) the CP saves
// the wave in flight into the context save area the thunk allocated and resumes it; with
// cwsr_enable=0 it drains the wave and resumes the dispatch at its restart workgroup. Either way
// both counters end at exactly one per workgroup.

import {
  ASSERT_EQ, ASSERT_TRUE, EXPECT_EQ, EXPECT_GE, EXPECT_TRUE, FIXTURE, TEST_F, kselftest, type KselftestProgram,
} from "../../../tools/testing/selftests/kselftest_harness.ts";
import { GpuDispatcher, countTwiceIsa } from "../../../tools/hsakmt/dispatch.ts";
import { HSAKMT_STATUS } from "../../../tools/hsakmt/hsakmttypes.ts";
import { PROT_READ, PROT_WRITE } from "../../../include/uapi/asm-generic/mman.ts";
import type { Machine } from "../../../kernel/machine.ts";
import type { MachineSpec } from "../../../kernel/machine_spec.ts";
import { amdkfd_module } from "../../../drivers/gpu/drm/amd/amdkfd/kfd_module.ts";
import {
  KFD_SELFTEST_MACHINE, PAGE, anon, hqd_of_ring, kfd_close, kfd_module, kfd_open, read32, register_svm, write32, type KfdSelf,
} from "./kfd_util.ts";

const N_WG = 16;
/** Each workgroup's wave works 2 ms between its two adds. */
const WAVE_SLEEP_NS = 2_000_000;
/** Machine time from one eviction (or the first wave) to the next: mid-wave, never at the end. */
const EVICT_EVERY_MS = [5, 6, 6];

const NO_CWSR_MACHINE: MachineSpec = {
  ...KFD_SELFTEST_MACHINE, name: "kfd-nocwsr", modules: [{ ...amdkfd_module, params: { ...amdkfd_module.params, cwsr_enable: 0 } }],
};

export const kfd_cwsr = kselftest("kfd_cwsr", { machine: KFD_SELFTEST_MACHINE });
export const kfd_cwsr_off = kselftest("kfd_cwsr_off", { machine: NO_CWSR_MACHINE });

/**
 * A second thread of the process, at set machine times while the dispatch runs: mprotect makes
 * the CPU invalidate `other`, which evicts the queue, then gives write access back (the restore
 * worker reloads the queue a millisecond after the eviction).
 */
async function evictor(self: KfdSelf, machine: Machine, counters: number, other: number): Promise<void> {
  const k = machine.k;
  const sys = <T>(p: Promise<T>): Promise<T> => k.sched.wait_for(p, "kfdtest thread");
  while ((await sys(read32(self.proc, counters))) === 0) await k.usleep_range(100, 200);
  for (const ms of EVICT_EVERY_MS) {
    await k.msleep(ms);
    ASSERT_EQ(0, await sys(self.proc.mprotect(other, PAGE, PROT_READ)));
    ASSERT_EQ(0, await sys(self.proc.mprotect(other, PAGE, PROT_READ | PROT_WRITE)));
  }
}

/**
 * One dispatch of countTwiceIsa, evicted mid-way again and again: each eviction saved (CWSR) or
 * drained (no CWSR) the dispatch in flight, and every workgroup counted once.
 */
async function evicted_mid_dispatch(self: KfdSelf, machine: Machine, cwsr: boolean): Promise<void> {
  EXPECT_EQ(cwsr, kfd_module(machine).devices[0]!.cwsr_enabled, "amdkfd.cwsr_enable");
  const d = await GpuDispatcher.create(self.kmt, self.node);
  ASSERT_TRUE(typeof d !== "number");
  const disp = d as GpuDispatcher;
  const counters = await anon(self.proc, 1);
  const other = await anon(self.proc, 1);
  await write32(self.proc, other, 1);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, counters, PAGE));
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await register_svm(self, other, PAGE));
  const hqd = hqd_of_ring(machine, disp.ctrl);
  ASSERT_TRUE(hqd !== undefined, "the queue is loaded");
  const stats = { ...hqd!.stats };
  const run = disp.run(countTwiceIsa(WAVE_SLEEP_NS), { kernargs: [counters], grid: N_WG });
  await machine.run_kthread("kfdtest-evictor", () => evictor(self, machine, counters, other));
  const r = await run;
  ASSERT_TRUE(r.completed, "the dispatch completed after the restores");
  EXPECT_EQ(N_WG, await read32(self.proc, counters), "each workgroup's first add exactly once");
  EXPECT_EQ(N_WG, await read32(self.proc, counters + 4), "each workgroup's second add exactly once");
  // Each mprotect evicts (the restore worker ran before the next one): at least one per round.
  const saves = hqd!.stats.ctx_saves - stats.ctx_saves;
  const drains = hqd!.stats.drains - stats.drains;
  EXPECT_GE(cwsr ? saves : drains, EVICT_EVERY_MS.length, "evictions that caught the dispatch in flight");
  EXPECT_EQ(0, cwsr ? drains : saves, cwsr ? "CWSR saves, never drains" : "without CWSR nothing is saved");
  EXPECT_EQ(saves, hqd!.stats.ctx_restores - stats.ctx_restores, "every saved context was restored");
  EXPECT_EQ(1, hqd!.stats.dispatches - stats.dispatches, "one dispatch, never restarted");
  EXPECT_EQ(N_WG, hqd!.stats.waves - stats.waves, "one wave per workgroup");
  EXPECT_TRUE(!machine.dmesg().some((l) => l.includes("cp queue preemption time out")), "every preemption completed");
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await disp.destroy());
}

function register(prog: KselftestProgram, cwsr: boolean): void {
  const f = FIXTURE<KfdSelf, undefined>(prog, "kfd", {
    self: () => ({}) as KfdSelf,
    setup: async (self, _v, metadata) => kfd_open(self, metadata.machine, 0),
    teardown: async (self) => kfd_close(self),
  });
  TEST_F(f, "evicted_mid_dispatch_runs_once", (self, _v, metadata) => evicted_mid_dispatch(self, metadata.machine, cwsr));
}

register(kfd_cwsr, true);
register(kfd_cwsr_off, false);

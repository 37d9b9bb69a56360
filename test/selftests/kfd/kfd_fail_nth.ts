// Issue 7, "bad input and faults": the demo's Act 2 (tools/demo_act2.ts — prefetch to VRAM, a GPU
// copy that retry-faults its destination in, the CPU faulting VRAM back, a second process's VRAM
// demand evicting the first one's range) with one allocation failing, for every n until the
// scenario no longer reaches the nth failable call. The sweeps (one machine per test, reused
// between n since every run must leave it at its baseline):
//
// - task_fail_nth: /proc/<pid>/fail-nth of each process of the story in turn (hip-app, app-1,
//   app-2): the nth failable call that task makes (page and slab allocations, and
//   copy_{to,from}_user, which fail-nth also counts), in syscalls, faults and its exit.
// - failslab_and_fail_page_alloc_nth: allocations made by kernel workers (IH soft-ring work,
//   svm restore and deferred-list work, the svm_bo eviction worker, SDMA/TTM kworkers) are not
//   the user task's, so this fails the nth eligible call machine-wide through the capability's
//   own attribute: probability 100, interval n, times 1, task-filter N (lib/fault-inject.c
//   should_fail_ex: the interval-th eligible call fails, then times is 0).
// - fail_page_alloc_evict_worker: the eviction worker's own sites, an XFAIL (see there).
//
// A counting run lists the calls first; n then takes each change of call site and the first,
// second and last of each run of identical calls (see plan()).
//
// For the sweeps every allocation is eligible: ignore-gfp-wait N (sleeping allocations),
// ignore-gfp-highmem N (the GFP_HIGHUSER migration destinations) and min-order 0 (single pages).
// Each run must end with every step succeeded, returned a clean HSAKMT status / errno, or the task
// killed by SIGBUS (or by the OOM killer's SIGKILL when a user page fault's allocation failed);
// data a process can still read is what it wrote; no oops, no splat; and once its processes are
// gone and the machine settled, pages, slab objects and VRAM are back at the baseline. The
// harness's shutdown check (kmemleak, page and VRAM leaks) closes each sweep.

import { ASSERT_EQ, ASSERT_TRUE, EXPECT_EQ, EXPECT_TRUE, TEST, TH_LOG, XFAIL_ADD, kselftest } from "../../../tools/testing/selftests/kselftest_harness.ts";
import { Act2Stop, PAGE, evictionScenario, seedScenario, type Act2Hooks, type Act2Sizes, type KnownData } from "../../../tools/demo_act2.ts";
import type { Process } from "../../../tools/runtime/process.ts";
import { SyscallError } from "../../../tools/runtime/process.ts";
import { SigError, SIGBUS } from "../../../arch/x86/mm/fault.ts";
import { SIGKILL } from "../../../kernel/exit.ts";
import { amdgpu_amdkfd_get_vram_usage } from "../../../drivers/gpu/drm/amd/amdgpu/amdgpu_amdkfd.ts";
import { FAULT_INJECT, PAGE_ALLOC, SLAB } from "../../../kernel/tokens.ts";
import type { FaultInjection, fault_attr } from "../../../lib/fault-inject.ts";
import type { task_struct } from "../../../kernel/sched/core.ts";
import type { Machine } from "../../../kernel/machine.ts";
import { MiB } from "../../../kernel/machine_spec.ts";
import { __GFP_HIGHMEM } from "../../../include/linux/gfp_types.ts";
import { kfd_module, kfd_processes } from "./kfd_util.ts";

/** The demo's eviction machine, shrunk: 4 MiB of VRAM, two 2 MiB ranges that do not both fit. */
const SIZES: Act2Sizes = { seed_pages: 4, evict_vram: 4 * MiB, evict_bytes: 2 * MiB };

export const kfd_fail_nth = kselftest("kfd_fail_nth", {
  machine: { name: "fail-nth", ram_size: 1024 * MiB, gpus: [{ asic: "gfx90a", vram_size: SIZES.evict_vram }], iommu: false, seed: 0 },
});

const ROLES = ["hip-app", "app-1", "app-2"] as const;
const EVICT_WORKER = "svm_range_evict_svm_bo_worker";

interface Baseline {
  pages: number;
  slab: number;
  vram: number;
  splats: number;
}

function snapshot(m: Machine): Baseline {
  return {
    pages: m.symbol(PAGE_ALLOC).nr_allocated_pages(),
    slab: m.symbol(SLAB).stats().objects,
    vram: amdgpu_amdkfd_get_vram_usage(kfd_module(m).devices[0]!.adev),
    splats: m.k.splats.length,
  };
}

/** Every allocation is a candidate: sleeping ones, highmem (user) pages, single pages. */
function all_eligible(fi: FaultInjection): void {
  for (const cap of ["failslab", "fail_page_alloc"]) ASSERT_EQ(0, fi.write_knob(cap, "ignore-gfp-wait", "N"));
  ASSERT_EQ(0, fi.write_knob("fail_page_alloc", "ignore-gfp-highmem", "N"));
  ASSERT_EQ(0, fi.write_knob("fail_page_alloc", "min-order", "0"));
}

/** null when the error is a clean outcome: a failed step's status, an errno, SIGBUS, the OOM kill. */
function unclean(e: unknown): string | null {
  if (e instanceof Act2Stop || e instanceof SyscallError) return null;
  if (e instanceof SigError && (e.signo === SIGBUS || e.signo === SIGKILL)) return null;
  // Machine.spawn() reports fork's errno as "spawn <comm>: <ERRNO>".
  if (e instanceof Error && /^spawn \S+: E[A-Z0-9]+$/.test(e.message)) return null;
  return e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ""}` : String(e);
}

/** What the process reads back is what it wrote, unless a signal ends the reading. */
async function verify(p: Process, role: string, known: KnownData[], problems: string[]): Promise<void> {
  for (const { addr, bytes } of known) {
    let got: Uint8Array;
    try {
      got = await p.read(addr, bytes.length);
    } catch (e) {
      const u = unclean(e);
      if (u) problems.push(`${role}: reading back 0x${addr.toString(16)}: ${u}`);
      return;
    }
    const bad = got.findIndex((x, i) => x !== bytes[i]);
    if (bad >= 0) problems.push(`${role}: data at 0x${(addr + bad).toString(16)} (page ${Math.floor(bad / PAGE)}) reads ${got[bad]}, wrote ${bytes[bad]}`);
  }
}

/** How one run arms the injection: when a process appears, and how to disarm it afterwards. */
interface Arm {
  spawned?(p: Process, role: string): Promise<void>;
  disarm(): void;
}

/**
 * One run of the scenario (the seed story, then the eviction story) under `arm`, then the checks
 * against `base` once the machine has settled. Returns the problems found (empty when clean).
 */
async function run_scenario(m: Machine, arm: Arm, base: Baseline): Promise<string[]> {
  const problems: string[] = [];
  const hooks: Act2Hooks = {
    spawned: async (p, role) => arm.spawned?.(p, role),
    exiting: (p, role, known) => verify(p, role, known, problems),
  };
  const totals = { bytes: 0, faults: 0, migrations: 0 };
  for (const part of [seedScenario, evictionScenario]) {
    try {
      await part(m, () => {}, totals, SIZES, hooks);
    } catch (e) {
      const u = unclean(e);
      if (u) problems.push(`${part.name}: ${u}`);
    }
  }
  arm.disarm();
  await m.settle();
  if (m.k.sched.halted) return [...problems, "the machine oopsed"];
  const now = snapshot(m);
  for (const s of m.k.splats.slice(base.splats)) problems.push(`${s.kind} splat: ${s.title}`);
  if (now.pages !== base.pages) problems.push(`${now.pages - base.pages} page(s) leaked`);
  if (now.slab !== base.slab) problems.push(`${now.slab - base.slab} slab object(s) leaked`);
  if (now.vram !== base.vram) problems.push(`${now.vram - base.vram} bytes of VRAM leaked`);
  if (kfd_processes(m)) problems.push(`${kfd_processes(m)} kfd_process(es) left`);
  // One leak must not be reported again by every later n: the next runs compare to where it left off.
  Object.assign(base, now);
  return problems;
}

/**
 * A clean run with nothing armed (warms the machine up), then the baseline. The injector process
 * writes the procfs knobs; it touches its own scratch buffer first so that it is warm too.
 */
interface Prepared {
  fi: FaultInjection;
  base: Baseline;
  injector: Process;
}

async function prepare(m: Machine): Promise<Prepared> {
  const fi = m.symbol(FAULT_INJECT);
  all_eligible(fi);
  const injector = await m.spawn("injector");
  ASSERT_EQ(1, await injector.writeFile(`/proc/${injector.pid}/fail-nth`, "0"));
  await m.settle();
  const warm = await run_scenario(m, { disarm: () => {} }, snapshot(m));
  ASSERT_EQ("", warm.join("\n"));
  const base = snapshot(m);
  ASSERT_EQ("", (await run_scenario(m, { disarm: () => {} }, base)).join("\n"));
  return { fi, base, injector };
}

/**
 * The eligible calls of one run under `arm` (nothing fails: the count is out of reach), each as
 * "<slab|page|usercopy> <comm> gfp <size|order>" — the site as far as it shows — and which ones n takes:
 * every call where that changes and, inside a run of identical calls (a migration's per-page
 * loop, a buffer's page faults), the first, second and last, so every call site on every task
 * is failed at least once while the per-page loops do not multiply the runs.
 */
async function plan(m: Machine, fi: FaultInjection, base: Baseline, arm: Arm, counter: () => number): Promise<{ calls: string[]; ns: number[] }> {
  const calls: string[] = [];
  const orig_slab = fi.should_failslab;
  const orig_page = fi.should_fail_alloc_page;
  const orig_copy = fi.should_fail_usercopy;
  const note = (what: string, gfp: number, size: number) => {
    const evict = new Error().stack?.includes(EVICT_WORKER) ? ` ${EVICT_WORKER}` : "";
    calls.push(`${what} ${m.k.current.comm} gfp=0x${(gfp >>> 0).toString(16)} ${size}${evict}`);
  };
  // Observation only: the decision is still the service's own.
  fi.should_failslab = function (size, gfp, flags) {
    const before = counter();
    const r = orig_slab.call(this, size, gfp, flags);
    if (counter() !== before) note("slab", gfp, size);
    return r;
  };
  fi.should_fail_alloc_page = function (gfp, order) {
    const before = counter();
    const r = orig_page.call(this, gfp, order);
    if (counter() !== before) note("page", gfp, order);
    return r;
  };
  // fail-nth also counts copy_{to,from}_user (fail_usercopy), as in the kernel.
  fi.should_fail_usercopy = function () {
    const before = counter();
    const r = orig_copy.call(this);
    if (counter() !== before) note("usercopy", 0, 0);
    return r;
  };
  try {
    ASSERT_EQ("", (await run_scenario(m, arm, base)).join("\n"));
  } finally {
    fi.should_failslab = orig_slab;
    fi.should_fail_alloc_page = orig_page;
    fi.should_fail_usercopy = orig_copy;
  }
  const same = (i: number, j: number) => calls[i] === calls[j];
  const ns = calls.map((_, i) => i).filter((i) => i < 2 || !same(i, i - 1) || !same(i, i - 2) || !same(i, i + 1)).map((i) => i + 1);
  return { calls, ns };
}

function report(label: string, nth: number, problems: string[], failures: string[]): void {
  if (!problems.length) return;
  const line = `${label} n=${nth}: ${problems.join("; ")}`;
  TH_LOG(line);
  failures.push(line);
}

TEST(kfd_fail_nth, "task_fail_nth", async (metadata) => {
  const m = metadata.machine;
  const { fi, base, injector } = await prepare(m);
  const failures: string[] = [];
  const covered: string[] = [];
  for (const role of ROLES) {
    let task: task_struct | undefined;
    const arm = (nth: number): Arm => ({
      spawned: async (p, r) => {
        if (r !== role) return;
        task = m.k.sched.find_task_by_pid(p.pid);
        ASSERT_EQ(String(nth).length, await injector.writeFile(`/proc/${p.pid}/fail-nth`, String(nth)));
      },
      disarm: () => {},
    });
    const far = 2 ** 31;
    const { calls, ns } = await plan(m, fi, base, arm(far), () => (task ? far - task.fail_nth : 0));
    for (const nth of ns) {
      const problems = await run_scenario(m, arm(nth), base);
      if (task!.fail_nth !== 0) problems.push(`the call was not reached (fail-nth ${task!.fail_nth})`);
      report(`${role} ${calls[nth - 1]}`, nth, problems, failures);
    }
    // Past the last call the task exits with its count still running. A run may make a few more
    // calls than the counting run (the eviction worker and the task race), so go on until then.
    let nth = calls.length + 1;
    for (; nth < calls.length + 50; nth++) {
      const problems = await run_scenario(m, arm(nth), base);
      report(`${role} past the counted calls`, nth, problems, failures);
      if (task!.fail_nth !== 0) break;
    }
    EXPECT_TRUE(task!.fail_nth !== 0, `${role}: still failing at n=${nth}`);
    covered.push(`${role} ${nth - 1} calls, ${ns.length + nth - calls.length} runs (sites: ${[...new Set(calls)].join(", ")})`);
  }
  await injector.exit();
  TH_LOG(`fail-nth: ${covered.join("; ")}`);
  EXPECT_EQ("", failures.join("\n"));
}, { timeout: 120 });

/**
 * The machine-wide sweep over one capability: the nth eligible call of any task fails, through
 * the attribute's own knobs (probability 100, interval n, times 1, task-filter N).
 */
async function sweep_attr(m: Machine, prep: Prepared, cap: "failslab" | "fail_page_alloc", evict_worker = false): Promise<void> {
  const { fi, base } = prep;
  const attr: fault_attr = cap === "failslab" ? fi.failslab.attr : fi.fail_page_alloc.attr;
  const set = (knob: string, v: string) => ASSERT_EQ(0, fi.write_knob(cap, knob, v));
  const arm = (n: number): Arm => {
    // attr.count is not a debugfs file; a fresh boot would start it at 0, so reset it for each n.
    attr.count = 0;
    set("verbose", "0");
    set("task-filter", "N");
    set("interval", String(n));
    set("times", "1");
    set("probability", "100");
    return { disarm: () => set("probability", "0") };
  };
  const planned = await plan(m, fi, base, arm(2 ** 31), () => attr.count);
  const calls = planned.calls;
  // The eviction worker's sites are swept apart (see fail_page_alloc_evict_worker below).
  const in_worker = (n: number) => calls[n - 1]!.endsWith(EVICT_WORKER);
  if (evict_worker) {
    // The worker's first GFP_HIGHUSER page: a destination of svm_migrate_copy_to_ram (its
    // kvcalloc'd migrate buffer comes first and falls back to vmalloc when failed).
    const page_gfp = (n: number) => Number.parseInt(/^page .* gfp=0x([0-9a-f]+)/.exec(calls[n - 1]!)?.[1] ?? "0", 16);
    const first = planned.ns.find((n) => in_worker(n) && (page_gfp(n) & __GFP_HIGHMEM) !== 0);
    ASSERT_TRUE(first !== undefined, "the scenario no longer evicts");
    EXPECT_EQ("", (await run_scenario(m, arm(first!), base)).join("\n"));
    return;
  }
  const ns = planned.ns.filter((n) => !in_worker(n));
  const failures: string[] = [];
  for (const nth of ns) {
    const problems = await run_scenario(m, arm(nth), base);
    if (attr.times !== 0) problems.push(`the call was not reached (times ${attr.times})`);
    report(`${cap} ${calls[nth - 1]}`, nth, problems, failures);
  }
  let nth = calls.length + 1;
  for (; nth < calls.length + 50; nth++) {
    report(`${cap} past the counted calls`, nth, await run_scenario(m, arm(nth), base), failures);
    if (attr.times !== 0) break;
  }
  EXPECT_EQ(1, attr.times, `${cap}: still failing at n=${nth}`);
  TH_LOG(`${cap}: ${nth - 1} eligible calls (${calls.filter((c) => c.endsWith(EVICT_WORKER)).length} in the eviction worker), ` +
    `${ns.length + nth - calls.length} runs; sites: ${[...new Set(calls)].join(", ")}`);
  EXPECT_EQ("", failures.join("\n"));
}

TEST(kfd_fail_nth, "failslab_and_fail_page_alloc_nth", async (metadata) => {
  const prep = await prepare(metadata.machine);
  await sweep_attr(metadata.machine, prep, "failslab");
  await sweep_attr(metadata.machine, prep, "fail_page_alloc");
  await prep.injector.exit();
}, { timeout: 120 });

/*
 * XFAIL, as upstream behaves: when svm_range_evict_svm_bo_worker cannot move a range to RAM
 * (svm_migrate_copy_to_ram gets -ENOMEM for a GFP_HIGHUSER destination page), the range stays
 * in VRAM (actual_loc set, its device-private PTEs restored by migrate_vma_finalize), yet the
 * worker still signals the eviction fence, and TTM then drops the DISCARDABLE BO's VRAM without
 * a copy. The next VRAM user (app-2's prefetch) gets the same VRAM and its device pages while
 * app-1 still maps them: app-1's CPU fault finds app-2's svm_bo in zone_device_data ("COW
 * mapping in child process"), livelocks, and the shared device pages underflow their mapcount
 * and refcount; at shutdown memunmap_pages waits on pgmap->done forever. Upstream (kfd_svm.c,
 * svm_range_evict_svm_bo_worker: "signal the fence whatever r", WARN_ONCE only when !r) has the
 * same hole, so kemu keeps the kernel's behaviour instead of inventing a recovery.
 */
TEST(kfd_fail_nth, "fail_page_alloc_evict_worker", async (metadata) => {
  const prep = await prepare(metadata.machine);
  // The machine is corrupted afterwards (that is the point): shutdown reports it, as expected.
  await sweep_attr(metadata.machine, prep, "fail_page_alloc", true);
}, { timeout: 60 });
XFAIL_ADD(kfd_fail_nth.globalFixture(), "", "fail_page_alloc_evict_worker");

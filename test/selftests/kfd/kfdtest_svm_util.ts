// Helpers of the kfdtest ports (KFDSVMRangeTest.ts, KFDSVMEvictTest.ts, KFDCWSRTest.ts), no
// program here: the fixture state and setup/teardown of a KFDSVMRangeTest-style test (open the
// thunk, set the variant's XNACK mode like SVMSetXNACKMode, and after the case check that no
// VRAM and no system pages outlived the process), KFDTestLaunch (the per-GPU body on every GPU
// at once), and the KFDTestUtil helpers in kemu terms: HsaSVMRange, RegisterSVMRange,
// SVMRangePrefetchToNode, SVMRangeMapToNode, SVMRangeMapInPlaceToNode, SVMRangSetGranularity,
// GetVramSize, GetSysMemSize, plus the per-process KFD counters the emulator exposes.

import type { Machine } from "../../../kernel/machine.ts";
import { GiB, MiB, type MachineSpec } from "../../../kernel/machine_spec.ts";
import { nr_free_pages } from "../../../mm/page_alloc.ts";
import { amdgpu_amdkfd_get_vram_usage } from "../../../drivers/gpu/drm/amd/amdgpu/amdgpu_amdkfd.ts";
import { HsaKmt } from "../../../tools/hsakmt/hsakmt.ts";
import { GpuDispatcher } from "../../../tools/hsakmt/dispatch.ts";
import { SdmaQueue } from "../../../tools/hsakmt/sdma.ts";
import {
  HSAKMT_STATUS, HSA_HEAPTYPE_SYSTEM, HSA_SVM_ATTR_ACCESS, HSA_SVM_ATTR_ACCESS_IN_PLACE, HSA_SVM_ATTR_GRANULARITY,
  HSA_SVM_ATTR_PREFERRED_LOC, HSA_SVM_ATTR_PREFETCH_LOC, HSA_SVM_ATTR_SET_FLAGS, HSA_SVM_FLAG_COHERENT, HSA_SVM_FLAG_HOST_ACCESS,
  type HsaMemoryProperties, type HsaNodeProperties,
} from "../../../tools/hsakmt/hsakmttypes.ts";
import type { Process } from "../../../tools/runtime/process.ts";
import {
  ASSERT_EQ, ASSERT_TRUE, EXPECT_EQ, FIXTURE, FIXTURE_VARIANT_ADD, SKIP, TH_LOG, type Fixture, type KselftestProgram,
} from "../../../tools/testing/selftests/kselftest_harness.ts";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../include/uapi/asm-generic/mman.ts";
import { kfd_module } from "./kfd_util.ts";
import { kfd_lookup_process_by_mm, kfd_unref_process } from "../../../drivers/gpu/drm/amd/amdkfd/kfd_process.ts";
import type { mm_struct } from "../../../include/linux/mm_types.ts";

export const PAGE_SIZE = 4096;

/**
 * The kfdtest machines: gfx90a (FAMILY_AI, XNACK switchable per process) with a small VRAM, so
 * the suites' VRAM-relative sizes (MigrateLargeBufTest, VramOvercommit*, KFDSVMEvictTest) stay
 * small, and system RAM large enough for upstream's "enough system memory" checks to pass.
 */
export const KFDTEST_VRAM = 64 * MiB;
export const KFDTEST_1GPU: MachineSpec = {
  name: "kfdtest", ram_size: 2 * GiB, gpus: [{ asic: "gfx90a", vram_size: KFDTEST_VRAM }], iommu: false, seed: 0,
};
export const KFDTEST_2GPU: MachineSpec = {
  ...KFDTEST_1GPU, name: "kfdtest-2gpu",
  gpus: [{ asic: "gfx90a", vram_size: KFDTEST_VRAM }, { asic: "gfx90a", vram_size: KFDTEST_VRAM }],
};

/** The gtest parameter (0 = XNACK off, 1 = on) and how many GPUs the machine has. */
export interface KfdtestVariant {
  xnack: 0 | 1;
  gpus: 1 | 2;
}

export function kfdtest_machine(v: KfdtestVariant): MachineSpec {
  return v.gpus === 2 ? KFDTEST_2GPU : KFDTEST_1GPU;
}

/** What a KFDSVMRangeTest fixture holds: the process, its thunk, and what teardown must free. */
export interface KfdtestSelf {
  machine: Machine;
  proc: Process;
  kmt: HsaKmt;
  /** GPU nodes in topology order; the first is kfdtest's default GPU node. */
  gpuNodes: number[];
  defaultGPUNode: number;
  xnack: 0 | 1;
  /** VRAM in use on each GPU and free system pages before the process existed. */
  vram_before: number[];
  free_before: number;
  queues: Array<SdmaQueue | GpuDispatcher>;
  /** Extra processes the case started (KFDSVMEvictTest); ended before the leak check. */
  others: Process[];
}

function vram_used(machine: Machine): number[] {
  return kfd_module(machine).devices.map((d) => amdgpu_amdkfd_get_vram_usage(d.adev));
}

/** VRAM in use on the GPU with topology id `gpuid`. */
export function vram_used_gpu(machine: Machine, gpuid: number): number {
  const d = kfd_module(machine).devices.find((dev) => dev.nodes.some((n) => n.id === gpuid));
  return d ? amdgpu_amdkfd_get_vram_usage(d.adev) : 0;
}

/** The process's top-level SVM ranges as [start page, last page, pages in VRAM] (kernel state). */
export function svm_ranges_of(machine: Machine, proc: Process): Array<[number, number, number]> {
  const t = machine.k.sched.find_task_by_pid(proc.pid);
  const p = t ? kfd_lookup_process_by_mm(kfd_module(machine), t.mm as mm_struct) : null;
  if (!p) return [];
  const out = [...p.svms.list].map((r) => [r.start, r.last, r.vram_pages] as [number, number, number]);
  kfd_unref_process(p);
  return out;
}

/** KFDBaseComponentTest::SetUp + SVMSetXNACKMode(param) for a fresh process. */
export async function kfdtest_open(machine: Machine, xnack: 0 | 1): Promise<{ proc: Process; kmt: HsaKmt }> {
  const proc = await machine.spawn("kfdtest");
  const kmt = HsaKmt.of(proc);
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await kmt.hsaKmtOpenKFD());
  // As SVMSetXNACKMode: a mode the GPU cannot take is only logged, the case runs in the other.
  const cur = { enable: -1 };
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, await kmt.hsaKmtGetXNACKMode(cur));
  if (cur.enable !== xnack) {
    const st = await kmt.hsaKmtSetXNACKMode(xnack);
    if (st !== HSAKMT_STATUS.SUCCESS) TH_LOG(`hsaKmtSetXNACKMode(${xnack}) failed: ${st}`);
  }
  return { proc, kmt };
}

/**
 * The fixture of a kfdtest suite (gtest's SetUp/TearDown): one variant per XNACK mode, for each
 * GPU count in `gpus` (variants of 2 GPUs are named with a "_2gpu" suffix).
 */
export function kfdtest_fixture(program: KselftestProgram, name: string, gpus: ReadonlyArray<KfdtestVariant["gpus"]>): Fixture<KfdtestSelf, KfdtestVariant> {
  const f = FIXTURE<KfdtestSelf, KfdtestVariant>(program, name, {
    self: () => ({}) as KfdtestSelf,
    machine: kfdtest_machine,
    setup: (self, v, md) => kfdtest_setup(self, v, md.machine),
    teardown: (self) => kfdtest_teardown(self),
  });
  for (const n of gpus) {
    for (const xnack of [0, 1] as const) FIXTURE_VARIANT_ADD<KfdtestSelf, KfdtestVariant>(f, `xnack_${xnack ? "on" : "off"}${n > 1 ? `_${n}gpu` : ""}`, { xnack, gpus: n });
  }
  return f;
}

export async function kfdtest_setup(self: KfdtestSelf, v: KfdtestVariant, machine: Machine): Promise<void> {
  self.machine = machine;
  self.queues = [];
  self.others = [];
  await machine.settle();
  self.vram_before = vram_used(machine);
  self.free_before = nr_free_pages(machine.k);
  const { proc, kmt } = await kfdtest_open(machine, v.xnack);
  self.proc = proc;
  self.kmt = kmt;
  self.xnack = v.xnack;
  self.gpuNodes = kmt.gpuNodes();
  self.defaultGPUNode = self.gpuNodes[0]!;
}

/**
 * TearDown, then what the emulator can check once the process is gone: every VRAM page of
 * every GPU and every system page the case used went back (svm_range_bo, device pages,
 * migrated system pages, page tables).
 */
export async function kfdtest_teardown(self: KfdtestSelf): Promise<void> {
  for (const q of self.queues) await q.destroy();
  for (const p of self.others) await p.exit();
  await self.kmt.hsaKmtCloseKFD();
  await self.proc.exit();
  await self.machine.settle();
  EXPECT_EQ(self.vram_before.join(","), vram_used(self.machine).join(","), "VRAM leaked by the case");
  EXPECT_EQ(self.free_before, nr_free_pages(self.machine.k), "system pages leaked by the case");
}

/**
 * KFDTestLaunch: the per-GPU body on every GPU node at once (one thread each in kfdtest, one
 * concurrent call chain here, all in the one process). Waits for every body, then reports the
 * first failure (an ASSERT's abort or a SKIP) as the whole test's.
 */
export async function KFDTestLaunch(self: KfdtestSelf, body: (gpuNode: number) => Promise<void>): Promise<void> {
  const results = await Promise.allSettled(self.gpuNodes.map((n) => body(n)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

export function gpu_id(kmt: HsaKmt, node: number): number {
  const props: Partial<HsaNodeProperties> = {};
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, kmt.hsaKmtGetNodeProperties(node, props));
  return props.KFDGpuID!;
}

export function node_props(kmt: HsaKmt, node: number): Partial<HsaNodeProperties> {
  const props: Partial<HsaNodeProperties> = {};
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, kmt.hsaKmtGetNodeProperties(node, props));
  return props;
}

/** GetVramSize(node): the node's frame-buffer heaps. */
export function GetVramSize(kmt: HsaKmt, node: number): number {
  return node_props(kmt, node).LocalMemSize ?? 0;
}

/** GetSysMemSize(): the system heaps of the CPU nodes. */
export function GetSysMemSize(kmt: HsaKmt): number {
  const sys = { NumNodes: 0, PlatformOem: 0, PlatformId: 0, PlatformRev: 0 };
  ASSERT_EQ(HSAKMT_STATUS.SUCCESS, kmt.hsaKmtAcquireSystemProperties(sys));
  let total = 0;
  for (let n = 0; n < sys.NumNodes; n++) {
    const p = node_props(kmt, n);
    if (p.KFDGpuID) continue;
    const banks: HsaMemoryProperties[] = [];
    ASSERT_EQ(HSAKMT_STATUS.SUCCESS, kmt.hsaKmtGetNodeMemoryProperties(n, p.NumMemoryBanks ?? 0, banks));
    total += banks.filter((b) => b.HeapType === HSA_HEAPTYPE_SYSTEM).reduce((s, b) => s + b.SizeInBytes, 0);
  }
  return total;
}

/** RegisterSVMRange(gpuNode, addr, size, prefetchNode, flags). */
export function RegisterSVMRange(kmt: HsaKmt, gpuNode: number, addr: number, size: number, prefetchNode: number,
  flags = HSA_SVM_FLAG_HOST_ACCESS | HSA_SVM_FLAG_COHERENT): Promise<HSAKMT_STATUS> {
  return kmt.hsaKmtSVMSetAttr(addr, size, 4, [
    { type: HSA_SVM_ATTR_PREFETCH_LOC, value: prefetchNode },
    { type: HSA_SVM_ATTR_PREFERRED_LOC, value: prefetchNode },
    { type: HSA_SVM_ATTR_SET_FLAGS, value: flags },
    { type: HSA_SVM_ATTR_ACCESS, value: gpuNode },
  ]);
}

function set1(kmt: HsaKmt, addr: number, size: number, type: number, value: number): Promise<HSAKMT_STATUS> {
  return kmt.hsaKmtSVMSetAttr(addr, size, 1, [{ type, value }]);
}

export const SVMRangePrefetchToNode = (kmt: HsaKmt, addr: number, size: number, node: number) =>
  set1(kmt, addr, size, HSA_SVM_ATTR_PREFETCH_LOC, node);
export const SVMRangeMapToNode = (kmt: HsaKmt, addr: number, size: number, node: number) =>
  set1(kmt, addr, size, HSA_SVM_ATTR_ACCESS, node);
export const SVMRangeMapInPlaceToNode = (kmt: HsaKmt, addr: number, size: number, node: number) =>
  set1(kmt, addr, size, HSA_SVM_ATTR_ACCESS_IN_PLACE, node);
export const SVMRangSetGranularity = (kmt: HsaKmt, addr: number, size: number, g: number) =>
  set1(kmt, addr, size, HSA_SVM_ATTR_GRANULARITY, g);

/** SVMRangeGetPrefetchNode: the PREFETCH_LOC over the span, as a node id. */
export async function SVMRangeGetPrefetchNode(kmt: HsaKmt, addr: number, size: number, out: { node: number }): Promise<HSAKMT_STATUS> {
  const a = [{ type: HSA_SVM_ATTR_PREFETCH_LOC, value: 0 }];
  const st = await kmt.hsaKmtSVMGetAttr(addr, size, 1, a);
  out.node = a[0]!.value;
  return st;
}

/** Anonymous private read/write memory (HsaSVMRange(size) without registration). */
export async function mmap_anon(proc: Process, size: number): Promise<number> {
  const a = await proc.mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  ASSERT_TRUE(a > 0, `mmap ${size}: ${a}`);
  return a;
}

/** HsaSVMRange(size, gpuNode[, prefetchNode]): mapped and registered (EXPECT-checked, as upstream). */
export async function HsaSVMRange(self: KfdtestSelf, size: number, gpuNode: number, prefetchNode = 0): Promise<number> {
  const a = await mmap_anon(self.proc, size);
  EXPECT_EQ(HSAKMT_STATUS.SUCCESS, await RegisterSVMRange(self.kmt, gpuNode, a, size, prefetchNode));
  return a;
}

/** CPU stores of 32-bit `f(i)` into every dword i of [addr, addr+bytes), in one write. */
export async function fill_dwords(proc: Process, addr: number, bytes: number, f: (i: number) => number): Promise<void> {
  const w = new Uint32Array(bytes / 4);
  for (let i = 0; i < w.length; i++) w[i] = f(i);
  await proc.write(addr, new Uint8Array(w.buffer));
}

/** CPU loads of [addr, addr+bytes) as dwords (each first touch of a VRAM page is a CPU fault). */
export async function read_dwords(proc: Process, addr: number, bytes: number): Promise<Uint32Array> {
  const b = await proc.read(addr, bytes);
  return new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + bytes));
}

/** CPU loads of one dword every `stride` dwords: what a sampled verification loop reads. */
export async function sample_dwords(proc: Process, addr: number, bytes: number, stride: number): Promise<Array<[number, number]>> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < bytes / 4; i += stride) {
    const b = await proc.read(addr + i * 4, 4);
    out.push([i, new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true)]);
  }
  return out;
}

/** The first index whose value differs from `want(i)`, or -1. */
export function first_mismatch(vals: Uint32Array, want: (i: number) => number, stride = 1): number {
  for (let i = 0; i < vals.length; i += stride) if (vals[i] !== want(i) >>> 0) return i;
  return -1;
}

/** SDMAQueue.Create(node); destroyed by teardown unless the case destroys it. */
export async function sdma_queue(self: KfdtestSelf, node: number): Promise<SdmaQueue> {
  const q = await SdmaQueue.create(self.kmt, node);
  ASSERT_TRUE(typeof q !== "number", `SDMA queue on node ${node}: ${String(q)}`);
  self.queues.push(q as SdmaQueue);
  return q as SdmaQueue;
}

export async function destroy_queue(self: KfdtestSelf, q: SdmaQueue | GpuDispatcher): Promise<HSAKMT_STATUS> {
  self.queues = self.queues.filter((x) => x !== q);
  return q.destroy();
}

/** PM4Queue + Dispatch (kemu: an AQL queue with the dispatch helper). */
export async function dispatcher(self: KfdtestSelf, node: number): Promise<GpuDispatcher> {
  const d = await GpuDispatcher.create(self.kmt, node);
  ASSERT_TRUE(typeof d !== "number", `compute queue on node ${node}: ${String(d)}`);
  self.queues.push(d as GpuDispatcher);
  return d as GpuDispatcher;
}

export type KfdCounter = "faults" | "page_in" | "page_out";

/** /sys/class/kfd/kfd/proc/<pid>/counters_<gpu_id>/<name>. */
export async function kfd_counter(proc: Process, gpuid: number, name: KfdCounter): Promise<number> {
  return Number((await proc.readFile(`/sys/class/kfd/kfd/proc/${proc.pid}/counters_${gpuid}/${name}`)).trim());
}

/** Sleeps the calling test for `ms` of machine time (the processes' sleep(3)). */
export function machine_sleep(machine: Machine, ms: number): Promise<void> {
  return machine.run_kthread("kfdtest-sleep", () => machine.k.msleep(ms));
}

export function skip_unless(cond: boolean, reason: string): void {
  if (!cond) SKIP(reason);
}

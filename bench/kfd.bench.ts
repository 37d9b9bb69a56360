// kemu benchmark for amdkfd's SVM migration paths (not kernel code), driven from a process
// through the thunk as an application would:
// - prefetch RAM → VRAM and back (AMDKFD_IOC_SVM PREFETCH_LOC) in host GB/s, beside a raw
//   TypedArray.set of the same bytes in the same run: the first round trip (VRAM never written
//   before, as the raw copy's destination) and a second one (both sides' host memory warm);
// - GPU retry faults with granularity 0 (one page per fault), every page touched by its own wave:
//   in one range (the literal figure, paced by the kernel's 2 ms duplicate-fault window) and with
//   every page its own range (the handled-fault path alone);
// - CPU faults on VRAM-resident pages (migrate_to_ram), one read per page;
// - set_attr cost per call with 10^3 and 10^5 ranges registered.
// Sizes are scaled by KEMU_BENCH_KFD_MIB (default 1024: the 1 GiB prefetch and 256 MiB of faults).

import type { BenchResult } from "./run.ts";
import { boot } from "../kernel/boot.ts";
import { GiB, MiB } from "../kernel/machine_spec.ts";
import type { Process } from "../tools/runtime/process.ts";
import type { Machine } from "../kernel/machine.ts";
import { PCI_HOST } from "../kernel/tokens.ts";
import type { AmdGpuDevice } from "../hw/amdgpu/device.ts";
import { HsaKmt } from "../tools/hsakmt/hsakmt.ts";
import { GpuDispatcher, fillBufferIsa } from "../tools/hsakmt/dispatch.ts";
import {
  HSA_SVM_ATTR_ACCESS, HSA_SVM_ATTR_GRANULARITY, HSA_SVM_ATTR_PREFERRED_LOC, HSA_SVM_ATTR_PREFETCH_LOC,
} from "../tools/hsakmt/hsakmttypes.ts";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../include/uapi/asm-generic/mman.ts";

const PAGE = 4096;
const PREFETCH_BYTES = Number(process.env.KEMU_BENCH_KFD_MIB ?? 1024) * MiB;
const FAULT_BYTES = Math.min(PREFETCH_BYTES, 256 * MiB);

async function anon(p: Process, bytes: number): Promise<number> {
  const a = await p.mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  if (a < 0) throw new Error(`mmap ${a}`);
  return a;
}

async function prefetch(kmt: HsaKmt, addr: number, bytes: number, loc: number): Promise<number> {
  const t0 = performance.now();
  const r = await kmt.hsaKmtSVMSetAttr(addr, bytes, 1, [{ type: HSA_SVM_ATTR_PREFETCH_LOC, value: loc }]);
  if (r) throw new Error(`prefetch: ${r}`);
  return performance.now() - t0;
}

/** TypedArray.set of `src` into `dst` and back, each timed (ms). */
function raw_round_trip(src: Uint8Array, dst: Uint8Array): { there: number; back: number } {
  const t0 = performance.now();
  dst.set(src);
  const t1 = performance.now();
  src.set(dst);
  return { there: t1 - t0, back: performance.now() - t1 };
}

/** One dispatch of `npages` one-wave workgroups, each filling its page of `addr`. */
async function gpu_faults(m: Machine, hw: AmdGpuDevice, gpu: GpuDispatcher, addr: number, npages: number): Promise<{ per_s: number; virt_us: number; ivs: number; retries_per_s: number }> {
  const v0 = m.k.ktime_get();
  const iv0 = hw.ih.stats.posted;
  const rf0 = hw.gfxhub.stats.retry_faults;
  const t0 = performance.now();
  const r = await gpu.run(fillBufferIsa(), { kernargs: [addr, 0x1234, PAGE], grid: npages, workgroup: 1, timeoutMs: 1e6 });
  const ms = performance.now() - t0;
  if (!r.completed) throw new Error("fault dispatch did not complete");
  return {
    per_s: npages / (ms / 1e3), virt_us: (m.k.ktime_get() - v0) / 1e3 / npages, ivs: (hw.ih.stats.posted - iv0) / npages,
    retries_per_s: (hw.gfxhub.stats.retry_faults - rf0) / (ms / 1e3),
  };
}

export async function run(): Promise<BenchResult[]> {
  const m = await boot({ name: "bench-kfd", ram_size: 4 * GiB, gpus: [{ asic: "gfx90a", vram_size: 4 * GiB }], iommu: false, seed: 0 });
  const out: BenchResult[] = [];
  try {
    const p = await m.spawn("bench");
    const kmt = HsaKmt.of(p);
    await kmt.hsaKmtOpenKFD();
    const node = kmt.gpuNodes()[0]!;
    const props: { KFDGpuID?: number } = {};
    kmt.hsaKmtGetNodeProperties(node, props);
    const gbps = (bytes: number, ms: number) => bytes / 1e9 / (ms / 1e3);

    // Prefetch round trip next to a raw copy of the same bytes.
    const a = await anon(p, PREFETCH_BYTES);
    const chunk = new Uint8Array(Math.min(4 * MiB, PREFETCH_BYTES)).fill(0x5a);
    for (let off = 0; off < PREFETCH_BYTES; off += chunk.length) await p.write(a + off, chunk);
    await kmt.hsaKmtSVMSetAttr(a, PREFETCH_BYTES, 2, [{ type: HSA_SVM_ATTR_ACCESS, value: node }, { type: HSA_SVM_ATTR_PREFERRED_LOC, value: 0 }]);
    const to_vram = await prefetch(kmt, a, PREFETCH_BYTES, node);
    const to_ram = await prefetch(kmt, a, PREFETCH_BYTES, 0);
    // The raw round trip moves the same bytes the same way: into memory never written before
    // (as VRAM is on the first prefetch), then back into memory already in use.
    const src = new Uint8Array(PREFETCH_BYTES).fill(1);
    const dst = new Uint8Array(PREFETCH_BYTES);
    const raw = raw_round_trip(src, dst);
    const mib = PREFETCH_BYTES / MiB;
    const value = gbps(2 * PREFETCH_BYTES, to_vram + to_ram);
    const baseline = gbps(2 * PREFETCH_BYTES, raw.there + raw.back);
    out.push({ metric: `kfd_prefetch_${mib}MiB_round_trip`, value, unit: "GB/s host", baseline,
      note: `RAM→VRAM ${to_vram.toFixed(0)} ms, VRAM→RAM ${to_ram.toFixed(0)} ms; baseline = TypedArray.set of the same bytes there (${raw.there.toFixed(0)} ms) and back (${raw.back.toFixed(0)} ms); ratio ${(value / baseline).toFixed(2)} (goal ≥ 0.5)` });
    // The same again with every host page warm on both sides: the software path's own cost.
    const warm_vram = await prefetch(kmt, a, PREFETCH_BYTES, node);
    const warm_ram = await prefetch(kmt, a, PREFETCH_BYTES, 0);
    const warm_raw = raw_round_trip(src, dst);
    const warm = gbps(2 * PREFETCH_BYTES, warm_vram + warm_ram);
    const warm_base = gbps(2 * PREFETCH_BYTES, warm_raw.there + warm_raw.back);
    out.push({ metric: `kfd_prefetch_${mib}MiB_round_trip_warm`, value: warm, unit: "GB/s host", baseline: warm_base,
      note: `second round trip, host memory already touched on both sides: RAM→VRAM ${warm_vram.toFixed(0)} ms, VRAM→RAM ${warm_ram.toFixed(0)} ms; baseline = the same two TypedArray.set into warm memory (${(warm_raw.there + warm_raw.back).toFixed(0)} ms); ratio ${(warm / warm_base).toFixed(2)}` });
    await p.munmap(a, PREFETCH_BYTES);

    // GPU retry faults, granularity 0: one wave per page, each faulting its page in. One range
    // for the whole buffer: svm_range_restore_pages() drops every fault that arrives less than
    // AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING (2 ms) after the range's last validation, so each next
    // page waits ~2 ms of virtual time while its wave retries (one retry IV per retry interval).
    const gpu = await GpuDispatcher.create(kmt, node);
    if (typeof gpu === "number") throw new Error(`dispatcher ${gpu}`);
    const hw = m.symbol(PCI_HOST).model(3 * 8) as AmdGpuDevice;
    const npages = FAULT_BYTES / PAGE;
    const b = await anon(p, FAULT_BYTES);
    const gran0 = [
      { type: HSA_SVM_ATTR_ACCESS, value: node }, { type: HSA_SVM_ATTR_PREFERRED_LOC, value: node }, { type: HSA_SVM_ATTR_GRANULARITY, value: 0 },
    ];
    await kmt.hsaKmtSVMSetAttr(b, FAULT_BYTES, 3, gran0);
    const f = await gpu_faults(m, hw, gpu, b, npages);
    const faults = Number((await p.readFile(`/sys/class/kfd/kfd/proc/${p.pid}/counters_${props.KFDGpuID!}/faults`)).trim());
    out.push({ metric: `kfd_gpu_retry_faults_gran0_${FAULT_BYTES / MiB}MiB`, value: f.per_s, unit: "faults/s host",
      note: `${npages} pages of one range, one wave each, each migrated to VRAM on its fault (${faults || "?"} restore_pages calls counted); ` +
        `${f.virt_us.toFixed(0)} µs virtual/page (the 2 ms duplicate-fault window), ${f.ivs.toFixed(0)} IVs/page; target ≥ 200000/s` });
    // The same run counted as the hardware counts faults: every retry the UTCL2 raised (one IV on
    // IH ring 1 each), filtered, dropped as a duplicate or handled by the driver.
    out.push({ metric: `kfd_gpu_retry_fault_interrupts_gran0_${FAULT_BYTES / MiB}MiB`, value: f.retries_per_s, unit: "retry faults/s host",
      note: `the run above: ${(f.retries_per_s / f.per_s).toFixed(0)} retry faults raised per page, each through IH ring 1, the fault filter and (when it passes) restore_pages` });

    // The same faults without the duplicate window: every page its own one-page range, so each
    // fault is handled at once (restore_pages → migrate via SDMA → map → TLB flush → replay).
    const SPLIT_BYTES = Math.min(FAULT_BYTES, 16 * MiB);
    const nsplit = SPLIT_BYTES / PAGE;
    const c = await anon(p, SPLIT_BYTES);
    for (let i = 0; i < nsplit; i++) await kmt.hsaKmtSVMSetAttr(c + i * PAGE, PAGE, 3, gran0);
    const g = await gpu_faults(m, hw, gpu, c, nsplit);
    out.push({ metric: `kfd_gpu_retry_faults_gran0_page_ranges_${SPLIT_BYTES / MiB}MiB`, value: g.per_s, unit: "faults/s host",
      note: `${nsplit} one-page ranges, one wave each: the handled-fault path alone; ${g.virt_us.toFixed(1)} µs virtual/page, ${g.ivs.toFixed(1)} IVs/page` });
    await p.munmap(c, SPLIT_BYTES);

    // CPU faults on VRAM-resident pages.
    const t2 = performance.now();
    for (let i = 0; i < npages; i++) await p.read(b + i * PAGE, 4);
    const cpu_ms = performance.now() - t2;
    out.push({ metric: `kfd_cpu_faults_vram_${FAULT_BYTES / MiB}MiB`, value: npages / (cpu_ms / 1e3), unit: "faults/s host",
      note: "one 4-byte read per VRAM page: migrate_to_ram with granularity 0" });
    await gpu.destroy();
    await p.munmap(b, FAULT_BYTES);

    // set_attr cost with many ranges registered (every other page, so ranges never touch).
    for (const nranges of [1e3, 1e5]) {
      const c = await anon(p, 2 * nranges * PAGE);
      for (let i = 0; i < nranges; i++) {
        await kmt.hsaKmtSVMSetAttr(c + 2 * i * PAGE, PAGE, 1, [{ type: HSA_SVM_ATTR_PREFERRED_LOC, value: 0 }]);
      }
      // Best of three rounds: one call is tens of µs, so a busy host moves a single round a lot.
      const calls = 1000;
      let best = Infinity;
      for (let round = 0; round < 3; round++) {
        const t3 = performance.now();
        for (let i = 0; i < calls; i++) {
          await kmt.hsaKmtSVMSetAttr(c + 2 * ((i * 97) % nranges) * PAGE, PAGE, 1, [{ type: HSA_SVM_ATTR_GRANULARITY, value: (i + round) % 2 }]);
        }
        best = Math.min(best, ((performance.now() - t3) / calls) * 1e3);
      }
      out.push({ metric: `kfd_set_attr_${nranges}_ranges`, value: best, unit: "µs/call host",
        note: `best of 3 rounds of ${calls} calls on registered ranges` });
      await p.munmap(c, 2 * nranges * PAGE);
    }
    await kmt.hsaKmtCloseKFD();
    await p.exit(0);
  } finally {
    await m.shutdown({ report_only: true });
  }
  return out;
}

// kemu benchmark for amdkfd's SVM migration paths (not kernel code), driven from a process
// through the thunk as an application would:
// - prefetch RAM → VRAM and back (AMDKFD_IOC_SVM PREFETCH_LOC) in host GB/s, beside a raw
//   TypedArray.set of the same bytes in the same run;
// - GPU retry faults with granularity 0 (one page per fault), every page touched by its own wave;
// - CPU faults on VRAM-resident pages (migrate_to_ram), one read per page;
// - set_attr cost per call with 10^3 and 10^5 ranges registered.
// Sizes are scaled by KEMU_BENCH_KFD_MIB (default 256 for the prefetch, 64 for the faults).

import type { BenchResult } from "./run.ts";
import { boot } from "../kernel/boot.ts";
import { GiB, MiB } from "../kernel/machine_spec.ts";
import type { Process } from "../tools/runtime/process.ts";
import { HsaKmt } from "../tools/hsakmt/hsakmt.ts";
import { GpuDispatcher, fillBufferIsa } from "../tools/hsakmt/dispatch.ts";
import {
  HSA_SVM_ATTR_ACCESS, HSA_SVM_ATTR_GRANULARITY, HSA_SVM_ATTR_PREFERRED_LOC, HSA_SVM_ATTR_PREFETCH_LOC,
} from "../tools/hsakmt/hsakmttypes.ts";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../include/uapi/asm-generic/mman.ts";

const PAGE = 4096;
const PREFETCH_BYTES = Number(process.env.KEMU_BENCH_KFD_MIB ?? 256) * MiB;
const FAULT_BYTES = Math.min(PREFETCH_BYTES, 64 * MiB);

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
    const chunk = new Uint8Array(4 * MiB).fill(0x5a);
    for (let off = 0; off < PREFETCH_BYTES; off += chunk.length) await p.write(a + off, chunk);
    await kmt.hsaKmtSVMSetAttr(a, PREFETCH_BYTES, 2, [{ type: HSA_SVM_ATTR_ACCESS, value: node }, { type: HSA_SVM_ATTR_PREFERRED_LOC, value: 0 }]);
    const to_vram = await prefetch(kmt, a, PREFETCH_BYTES, node);
    const to_ram = await prefetch(kmt, a, PREFETCH_BYTES, 0);
    const src = new Uint8Array(PREFETCH_BYTES).fill(1);
    const dst = new Uint8Array(PREFETCH_BYTES);
    const t0 = performance.now();
    dst.set(src);
    dst.set(dst.subarray(0), 0);
    src.set(dst);
    const raw = (performance.now() - t0) / 1.5;
    const mib = PREFETCH_BYTES / MiB;
    out.push({ metric: `kfd_prefetch_${mib}MiB_round_trip`, value: gbps(2 * PREFETCH_BYTES, to_vram + to_ram), unit: "GB/s host",
      baseline: gbps(2 * PREFETCH_BYTES, 2 * raw), note: `RAM→VRAM ${to_vram.toFixed(0)} ms, VRAM→RAM ${to_ram.toFixed(0)} ms; baseline = TypedArray.set of the same bytes` });
    await p.munmap(a, PREFETCH_BYTES);

    // GPU retry faults, granularity 0: one wave per page, each faulting its page in.
    const gpu = await GpuDispatcher.create(kmt, node);
    if (typeof gpu === "number") throw new Error(`dispatcher ${gpu}`);
    const npages = FAULT_BYTES / PAGE;
    const b = await anon(p, FAULT_BYTES);
    await kmt.hsaKmtSVMSetAttr(b, FAULT_BYTES, 3, [
      { type: HSA_SVM_ATTR_ACCESS, value: node }, { type: HSA_SVM_ATTR_PREFERRED_LOC, value: node }, { type: HSA_SVM_ATTR_GRANULARITY, value: 0 },
    ]);
    const t1 = performance.now();
    const r = await gpu.run(fillBufferIsa(), { kernargs: [b, 0x1234, PAGE], grid: npages, workgroup: 1, timeoutMs: 1e6 });
    const fault_ms = performance.now() - t1;
    if (!r.completed) throw new Error("fault dispatch did not complete");
    const faults = Number((await p.readFile(`/sys/class/kfd/kfd/proc/${p.pid}/counters_${props.KFDGpuID!}/faults`)).trim());
    out.push({ metric: `kfd_gpu_retry_faults_gran0_${FAULT_BYTES / MiB}MiB`, value: npages / (fault_ms / 1e3), unit: "faults/s host",
      note: `${npages} pages, one wave each, each migrated to VRAM on its fault (${faults || "?"} counted); target ≥ 200000/s` });

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
      const calls = 1000;
      const t3 = performance.now();
      for (let i = 0; i < calls; i++) {
        await kmt.hsaKmtSVMSetAttr(c + 2 * ((i * 97) % nranges) * PAGE, PAGE, 1, [{ type: HSA_SVM_ATTR_GRANULARITY, value: i % 2 }]);
      }
      out.push({ metric: `kfd_set_attr_${nranges}_ranges`, value: ((performance.now() - t3) / calls) * 1e3, unit: "µs/call host",
        note: `${calls} calls on registered ranges` });
      await p.munmap(c, 2 * nranges * PAGE);
    }
    await kmt.hsaKmtCloseKFD();
    await p.exit(0);
  } finally {
    await m.shutdown({ report_only: true });
  }
  return out;
}

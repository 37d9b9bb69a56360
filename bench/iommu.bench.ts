// kemu benchmarks for the AMD IOMMUv2 PPR path (not kernel code): PRI faults served per second of
// host time on the APU machine, one at a time and with the GPU's 32 page-request credits in
// use, plus the virtual time one round trip takes (device page request → PPR log → MSI → IRQ
// thread → ppr_notifier → iommu_wq do_fault → handle_mm_fault → COMPLETE_PPR → PRG Response),
// and ATS translations per second when the page is already mapped (the IOTLB/ATC hit path).

import type { BenchResult } from "./run.ts";
import { boot } from "../kernel/boot.ts";
import type { Machine } from "../kernel/machine.ts";
import { APU_MACHINE, GiB } from "../kernel/machine_spec.ts";
import { MODULES, PCI, PCI_HOST } from "../kernel/tokens.ts";
import type { mm_struct } from "../include/linux/mm_types.ts";
import { PAGE_SIZE } from "../include/linux/mm.ts";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../include/uapi/asm-generic/mman.ts";
import { vm_mmap } from "../mm/mmap.ts";
import { completion, complete, reinit_completion, wait_for_completion } from "../kernel/sched/completion.ts";
import type { AmdGpuDevice } from "../hw/amdgpu/device.ts";
import type { AtsPriFunction } from "../hw/amd_iommu/ats.ts";
import { amd_iommu_v2_get, amd_iommu_v2_put } from "../iommu/amd/iommu_v2.ts";

const PASID = 1;
const CREDITS = 32;

interface env {
  m: Machine;
  teardown: () => Promise<void>;
  ats: AtsPriFunction;
  mm: mm_struct;
  done: completion;
}

async function setup(): Promise<env> {
  // The benchmark plays the GPU driver itself: amdgpu (and amdkfd, which would own the device's
  // IOMMUv2 state) stay out.
  const m = await boot({ ...APU_MACHINE, name: "bench-apu", ram_size: 4 * GiB, cmdline: "modprobe.blacklist=amdgpu" });
  const p = await m.spawn("bench");
  const task = m.k.sched.all_tasks().find((t) => t.tgid === p.pid)!;
  const pdev = m.symbol(PCI).devices.find((d) => d.devfn === 0x18)!;
  const ats = (m.symbol(PCI_HOST).model(0x18) as AmdGpuDevice).atc!.ats;
  const v2 = amd_iommu_v2_get(m.symbol(MODULES))!;
  await m.run_kthread("bench/bind", async () => {
    if (await v2.amd_iommu_init_device(pdev, 65536)) throw new Error("amd_iommu_init_device");
    if (await v2.amd_iommu_bind_pasid(pdev, PASID, task)) throw new Error("amd_iommu_bind_pasid");
  });
  const teardown = async () => {
    await m.run_kthread("bench/unbind", async () => {
      await v2.amd_iommu_unbind_pasid(pdev, PASID);
      await v2.amd_iommu_free_device(pdev);
    });
    amd_iommu_v2_put(m.symbol(MODULES));
    await p.exit();
  };
  const done = new completion(m.k, "bench_prg_response");
  // The PRG Response arrives in hardware context: wake the benchmark thread.
  ats.on_response(() => complete(done));
  return { m, teardown, ats, mm: task.mm as mm_struct, done };
}

async function map(e: env, pages: number): Promise<number> {
  const va = await vm_mmap(e.mm, null, 0, pages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0);
  if (va < 0) throw new Error(`vm_mmap: ${va}`);
  return va;
}

/** Faults `pages` never-touched pages in, `batch` page requests in flight at a time. */
async function fault_in(e: env, pages: number, batch: number): Promise<{ secs: number; virt_ns: number }> {
  return e.m.run_kthread("bench/pri", async () => {
    const va = await map(e, pages);
    const k = e.m.k;
    const t0 = process.hrtime.bigint();
    const v0 = k.ktime_get();
    for (let first = 0; first < pages; first += batch) {
      const n = Math.min(batch, pages - first);
      reinit_completion(e.done);
      for (let i = 0; i < n; i++) {
        if (e.ats.translate(PASID, va + (first + i) * PAGE_SIZE, "write").kind !== "pending") throw new Error("expected a page request");
      }
      for (let i = 0; i < n; i++) await wait_for_completion(e.done);
      for (let i = 0; i < n; i++) {
        if (e.ats.translate(PASID, va + (first + i) * PAGE_SIZE, "write").kind !== "ok") throw new Error("not mapped after SUCCESS");
      }
    }
    return { secs: Number(process.hrtime.bigint() - t0) / 1e9, virt_ns: k.ktime_get() - v0 };
  });
}

/** ATS translations of mapped pages, cycling over more pages than the ATC holds (IOTLB hits). */
async function translations(e: env, pages: number, rounds: number): Promise<number> {
  return e.m.run_kthread("bench/ats", async () => {
    const va = await map(e, pages);
    for (let i = 0; i < pages; i++) e.ats.translate(PASID, va + i * PAGE_SIZE, "write");
    for (let i = 0; i < pages; i++) await wait_for_completion(e.done);
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < rounds; r++) for (let i = 0; i < pages; i++) e.ats.translate(PASID, va + i * PAGE_SIZE, "read");
    return (pages * rounds) / (Number(process.hrtime.bigint() - t0) / 1e9);
  });
}

export async function run(): Promise<BenchResult[]> {
  const e = await setup();
  await fault_in(e, 1000, CREDITS); // JIT warm-up
  const one = await fault_in(e, 2000, 1);
  const many = await fault_in(e, 4000, CREDITS);
  const hits = await translations(e, 32, 2000);
  await e.teardown();
  await e.m.shutdown();
  return [
    {
      metric: "PRI faults/s, one in flight", value: 2000 / one.secs, unit: "fault/s",
      note: `host time; virtual ${(one.virt_ns / 2000 / 1000).toFixed(2)} µs per fault (Kaveri: 5-140 µs, Vesely ISPASS'16)`,
    },
    {
      metric: `PRI faults/s, ${CREDITS} in flight`, value: 4000 / many.secs, unit: "fault/s", baseline: 2000 / one.secs,
      note: `host time; virtual ${(many.virt_ns / 4000 / 1000).toFixed(2)} µs per fault; baseline = one in flight`,
    },
    { metric: "ATS translations/s (ATC hit)", value: hits, unit: "xlate/s", note: "32 mapped pages, device-side cache" },
  ];
}

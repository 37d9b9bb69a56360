// kemu benchmarks for the mm core (not kernel code): boot cost of a 1 TiB machine against a
// 1 GiB one, host bytes of metadata per touched frame (physical memory alone, and a user page
// faulted in through the whole fault path), and CPU read/write of a populated 4 KiB page
// through the MMU model (TLB hit). Host time and host heap are what is measured.

import type { BenchResult } from "./run.ts";
import { boot } from "../kernel/boot.ts";
import type { Machine } from "../kernel/machine.ts";
import { GiB, MINIMAL_MACHINE } from "../kernel/machine_spec.ts";
import { PHYSMEM } from "../kernel/tokens.ts";
import { PAGE_SIZE } from "../include/linux/mm.ts";
import { mm_alloc, mmput } from "../kernel/fork.ts";
import { vm_mmap_pgoff } from "../mm/mmap.ts";
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from "../include/uapi/asm-generic/mman.ts";
import { cpu_user_read, cpu_user_write } from "../arch/x86/mm/fault.ts";
import { NODE_DATA } from "../include/linux/mmzone.ts";

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Collects until freed ArrayBuffer backing stores are really gone (they go a tick later). */
async function settle_heap(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise<void>((r) => setImmediate(r));
  }
}

/** Host bytes in use: JS heap plus ArrayBuffer backing stores. */
function host_bytes(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function boot_cost(ram: number): Promise<{ ms: number; bytes: number; m: Machine }> {
  gc();
  const before = host_bytes();
  const t0 = performance.now();
  const m = await boot({ ...MINIMAL_MACHINE, name: `bench-${ram}`, ram_size: ram });
  const ms = performance.now() - t0;
  gc();
  return { ms, bytes: host_bytes() - before, m };
}

/** Median of `n` boots, to keep JIT warm-up out of the figure. */
async function boot_median(ram: number, n: number): Promise<{ ms: number; bytes: number }> {
  const runs: { ms: number; bytes: number }[] = [];
  for (let i = 0; i < n; i++) {
    const r = await boot_cost(ram);
    runs.push({ ms: r.ms, bytes: r.bytes });
    await r.m.shutdown({ report_only: true });
  }
  runs.sort((a, b) => a.ms - b.ms);
  return runs[Math.floor(n / 2)]!;
}

/**
 * Host bytes per frame beyond its 4 KiB, for frames written straight into physical memory. The
 * frames' data lives in the host arena physmem reserved for the RAM at its first write (the host
 * commits its pages as they are written), so what grows here is the metadata alone.
 */
async function physmem_metadata(n: number): Promise<number> {
  const m = await boot({ ...MINIMAL_MACHINE, ram_size: 4 * GiB });
  const mem = m.symbol(PHYSMEM);
  mem.write32(0x100000 * PAGE_SIZE - PAGE_SIZE, 1);
  await settle_heap();
  const before = host_bytes();
  for (let i = 0; i < n; i++) mem.write32((0x100000 + i) * PAGE_SIZE, i + 1);
  await settle_heap();
  const per = (host_bytes() - before) / n;
  await m.shutdown({ report_only: true });
  return per;
}

/** Host bytes per user page faulted in (struct page, rmap state, PTE, physmem slot), beyond 4 KiB. */
async function user_page_metadata(n: number): Promise<number> {
  const m = await boot({ ...MINIMAL_MACHINE, ram_size: 4 * GiB });
  const k = m.k;
  let per = 0;
  await m.run_kthread("bench", async () => {
    const mm = mm_alloc(k)!;
    k.current.mm = mm;
    const a = await vm_mmap_pgoff(mm, null, 0, n * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0);
    const one = new Uint8Array([1]);
    await cpu_user_write(k, a, one);
    await settle_heap();
    const before = host_bytes();
    for (let i = 1; i < n; i++) await cpu_user_write(k, a + i * PAGE_SIZE, one);
    await settle_heap();
    // The first write reserved the RAM's host arena: the pages' data is inside it.
    per = (host_bytes() - before) / (n - 1);
    k.current.mm = null;
    await mmput(mm);
  });
  await m.shutdown({ report_only: true });
  return per;
}

/** ns per 4 KiB CPU read and write of a populated page (TLB hits). */
async function cpu_page_access(iters: number): Promise<{ read: number; write: number }> {
  const m = await boot({ ...MINIMAL_MACHINE });
  const k = m.k;
  const out = { read: 0, write: 0 };
  await m.run_kthread("bench", async () => {
    const mm = mm_alloc(k)!;
    k.current.mm = mm;
    const a = await vm_mmap_pgoff(mm, null, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0);
    const buf = new Uint8Array(PAGE_SIZE).fill(7);
    await cpu_user_write(k, a, buf);
    // Best of three rounds: the first one also pays for JIT warm-up.
    out.write = out.read = Infinity;
    for (let round = 0; round < 3; round++) {
      let t0 = performance.now();
      for (let i = 0; i < iters; i++) await cpu_user_write(k, a, buf);
      out.write = Math.min(out.write, ((performance.now() - t0) * 1e6) / iters);
      t0 = performance.now();
      for (let i = 0; i < iters; i++) await cpu_user_read(k, a, PAGE_SIZE);
      out.read = Math.min(out.read, ((performance.now() - t0) * 1e6) / iters);
    }
    k.current.mm = null;
    await mmput(mm);
  });
  await m.shutdown({ report_only: true });
  return out;
}

export async function run(): Promise<BenchResult[]> {
  const small = await boot_median(1 * GiB, 5);
  const huge = await boot_median(1024 * GiB, 5);
  const phys = await physmem_metadata(20000);
  const user = await user_page_metadata(4000);
  const cpu = await cpu_page_access(20000);
  const tlb = NODE_DATA((await boot({ ...MINIMAL_MACHINE })).k).cpu.stats();
  return [
    { metric: "mm: boot 1 GiB machine", value: small.ms, unit: "ms" },
    { metric: "mm: boot 1 TiB machine", value: huge.ms, unit: "ms", baseline: small.ms, note: "baseline = 1 GiB boot" },
    { metric: "mm: boot heap 1 GiB machine", value: small.bytes / 1024, unit: "KiB" },
    { metric: "mm: boot heap 1 TiB machine", value: huge.bytes / 1024, unit: "KiB", baseline: small.bytes / 1024, note: "baseline = 1 GiB boot" },
    { metric: "mm: physmem metadata per touched frame", value: phys, unit: "B", baseline: 64, note: "beyond the 4 KiB of data; goal ≤ 64" },
    { metric: "mm: host bytes per faulted user page", value: user, unit: "B", note: "struct page + PTE + physmem slot, beyond 4 KiB" },
    { metric: "mm: CPU write of a populated 4 KiB page", value: cpu.write, unit: "ns" },
    { metric: "mm: CPU read of a populated 4 KiB page", value: cpu.read, unit: "ns" },
    { metric: "mm: TLB entries after boot", value: tlb.tlb_entries, unit: "entries" },
  ];
}

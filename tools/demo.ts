// The main demo (`npm start`): boots the embedded default machine and tells, from the machine's
// own dmesg and counters, how device memory and system memory trade pages. It uses only the
// public API (`kemu`), as a user's script would.
//
// Act 1, HMM: a process writes data, the dmirror test driver (lib/test_hmm) migrates it into
// device-private memory, the CPU touches it and faults it back through migrate_to_ram.
// Act 2, the seed's story (amdkfd "HMM migrate ram to vram"): an SVM range is prefetched into
// the GPU's VRAM, GPU work retry-faults another range in, the CPU faults VRAM pages back, and a
// second process's VRAM demand evicts a range (on a small-VRAM machine, so pressure is cheap).

import {
  boot, type Machine, type Process, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, O_RDWR,
  HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, errname,
  KFD_SMI_EVENT_MASK_FROM_INDEX, KFD_SMI_EVENT_MIGRATE_START, KFD_SMI_EVENT_MIGRATE_END, KFD_SMI_EVENT_PAGE_FAULT_START,
  KFD_SMI_EVENT_PAGE_FAULT_END,
} from "../index.ts";
import { HsaKmt } from "./hsakmt/hsakmt.ts";
import { GpuDispatcher, copyBufferIsa } from "./hsakmt/dispatch.ts";
import {
  HSAKMT_STATUS, HSA_SVM_ATTR_ACCESS, HSA_SVM_ATTR_PREFERRED_LOC, HSA_SVM_ATTR_PREFETCH_LOC, HSA_SVM_ATTR_SET_FLAGS,
  HSA_SVM_FLAG_COHERENT, HSA_SVM_FLAG_HOST_ACCESS,
} from "./hsakmt/hsakmttypes.ts";

const PAGE = 4096;
const NPAGES = 16;

type Say = (line: string) => void;

/** dmesg lines printed since the last call, indented, so each step shows what the kernel said. */
function dmesgSince(m: Machine, from: { n: number }, say: Say): void {
  const lines = m.dmesg();
  for (const l of lines.slice(from.n)) say(`    ${l}`);
  from.n = lines.length;
}

function pattern(npages: number): Uint8Array {
  const b = new Uint8Array(npages * PAGE);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + 3) % 251;
  return b;
}

async function residency(p: Process, fd: number, addr: number, buf: number): Promise<string> {
  const cmd = { addr, ptr: buf, npages: NPAGES, cpages: 0, faults: 0 };
  const ret = await p.ioctl(fd, HMM_DMIRROR_SNAPSHOT, cmd);
  if (ret < 0) return `snapshot failed: ${errname(ret)}`;
  const bytes = await p.read(buf, NPAGES);
  const onDevice = [...bytes].filter((b) => (b & 0xf0) === HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL).length;
  return `${onDevice}/${NPAGES} pages in device memory`;
}

async function actHmm(m: Machine, say: Say): Promise<void> {
  const from = { n: m.dmesg().length };
  say("Act 1 — HMM: the kernel's dmirror driver moves a process's pages into device memory");
  const p = await m.spawn("demo");
  const addr = await p.mmap(0, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const buf = await p.mmap(0, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const data = pattern(NPAGES);
  await p.write(addr, data);
  say(`  pid ${p.pid} mapped ${NPAGES} pages at 0x${addr.toString(16)} and wrote a pattern into them`);

  say("  modprobe test_hmm");
  const ret = await m.insmod("test_hmm");
  if (ret) throw new Error(`insmod test_hmm: ${errname(ret)}`);
  dmesgSince(m, from, say);
  const fd = await p.open("/dev/hmm_dmirror0", O_RDWR);

  const cmd = { addr, ptr: buf, npages: NPAGES, cpages: 0, faults: 0 };
  const r = await p.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, cmd);
  say(`  HMM_DMIRROR_MIGRATE_TO_DEV → ${r === 0 ? "0" : errname(r)}, cpages=${cmd.cpages}: ` +
    "migrate_vma_setup collected and unmapped the pages (MMU_NOTIFY_MIGRATE), the driver copied " +
    "them, migrate_vma_pages + migrate_vma_finalize left device-private entries in the CPU page table");
  say(`  ${await residency(p, fd, addr, buf)}`);

  const back = await p.read(addr, NPAGES * PAGE);
  const same = back.every((b, i) => b === data[i]);
  say(`  the CPU reads the range: every page faults (do_swap_page → pgmap->ops->migrate_to_ram) ` +
    `and comes back; data ${same ? "intact" : "CORRUPTED"}`);
  say(`  ${await residency(p, fd, addr, buf)}`);

  await p.close(fd);
  await p.exit(0);
  say("  rmmod test_hmm");
  await m.rmmod("test_hmm");
  dmesgSince(m, from, say);
}


/** The kfd lines (and TTM/eviction ones) printed since the last call: the steps the driver took. */
function kfdSince(m: Machine, from: { n: number }, say: Say, max = 14): void {
  const lines = m.dmesg().slice(from.n).filter((l) => /kfd|TTM|evict/i.test(l));
  for (const l of lines.slice(0, max)) say(`    ${l}`);
  if (lines.length > max) say(`    ... ${lines.length - max} more kfd lines`);
  from.n = m.dmesg().length;
}

interface KfdProc {
  p: Process;
  kmt: HsaKmt;
  node: number;
  gpu_id: number;
  smi: number;
}

async function kfdProcess(m: Machine, comm: string): Promise<KfdProc> {
  const p = await m.spawn(comm);
  const kmt = HsaKmt.of(p);
  if ((await kmt.hsaKmtOpenKFD()) !== HSAKMT_STATUS.SUCCESS) throw new Error("hsaKmtOpenKFD failed");
  const node = kmt.gpuNodes()[0]!;
  const props: { KFDGpuID?: number } = {};
  kmt.hsaKmtGetNodeProperties(node, props);
  const out = { fd: -1 };
  await kmt.hsaKmtOpenSMI(node, out);
  const mask = KFD_SMI_EVENT_MASK_FROM_INDEX(KFD_SMI_EVENT_MIGRATE_START) + KFD_SMI_EVENT_MASK_FROM_INDEX(KFD_SMI_EVENT_MIGRATE_END) +
    KFD_SMI_EVENT_MASK_FROM_INDEX(KFD_SMI_EVENT_PAGE_FAULT_START) + KFD_SMI_EVENT_MASK_FROM_INDEX(KFD_SMI_EVENT_PAGE_FAULT_END);
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(0, mask, true);
  await p.writeFd(out.fd, b);
  return { p, kmt, node, gpu_id: props.KFDGpuID!, smi: out.fd };
}

/** kfdtest's RegisterSVMRange: HOST_ACCESS | COHERENT, the GPU may access, preferred/prefetch at `loc`. */
async function registerSvm(k: KfdProc, addr: number, size: number, loc: number): Promise<HSAKMT_STATUS> {
  return k.kmt.hsaKmtSVMSetAttr(addr, size, 4, [
    { type: HSA_SVM_ATTR_PREFETCH_LOC, value: loc },
    { type: HSA_SVM_ATTR_PREFERRED_LOC, value: loc },
    { type: HSA_SVM_ATTR_SET_FLAGS, value: HSA_SVM_FLAG_HOST_ACCESS | HSA_SVM_FLAG_COHERENT },
    { type: HSA_SVM_ATTR_ACCESS, value: k.node },
  ]);
}

async function counters(k: KfdProc): Promise<{ faults: number; page_in: number; page_out: number }> {
  const dir = `/sys/class/kfd/kfd/proc/${k.p.pid}/counters_${k.gpu_id}`;
  const get = async (n: string) => Number((await k.p.readFile(`${dir}/${n}`)).trim());
  return { faults: await get("faults"), page_in: await get("page_in"), page_out: await get("page_out") };
}

/** SMI lines read since the last call (migrate start/end "5"/"6", page fault start/end "7"/"8"). */
async function smiSince(k: KfdProc, say: Say, max = 6): Promise<void> {
  const t = await k.p.readFd(k.smi, 65536);
  if (typeof t === "number") return;
  const lines = new TextDecoder().decode(t).trim().split("\n").filter((l) => l);
  for (const l of lines.slice(0, max)) say(`    smi: ${l}`);
  if (lines.length > max) say(`    smi: ... ${lines.length - max} more events`);
}

async function actSeed(m: Machine, say: Say, totals: { bytes: number; faults: number; migrations: number }): Promise<void> {
  const from = { n: m.dmesg().length };
  say("Act 2 — the seed's story: amdkfd migrates an SVM range between RAM and VRAM");
  const k = await kfdProcess(m, "hip-app");
  const n = 64;
  const a = await k.p.mmap(0, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const data = pattern(n);
  await k.p.write(a, data);
  say(`  pid ${k.p.pid} wrote ${n} pages at 0x${a.toString(16)} and registers them (AMDKFD_IOC_SVM SET_ATTR), prefetch → GPU ${k.gpu_id}`);
  const r = await registerSvm(k, a, n * PAGE, k.node);
  say(`  set_attr → ${r}: svm_range_vram_node_new allocated the VRAM BO through TTM, migrate_vma_setup collected and ` +
    "unmapped the CPU pages (the MMU notifier unmapped the GPU), SDMA copied through a GART window, migrate_vma_pages, " +
    "migrate_vma_finalize, then svm_range_validate_and_map mapped the VRAM on the GPU");
  kfdSince(m, from, say);
  await smiSince(k, say);
  let c = await counters(k);
  say(`  counters: page_in ${c.page_in}, page_out ${c.page_out}`);

  const gpu = await GpuDispatcher.create(k.kmt, k.node);
  if (typeof gpu === "number") throw new Error(`GpuDispatcher.create: ${gpu}`);
  const b = await k.p.mmap(0, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  await k.kmt.hsaKmtSVMSetAttr(b, n * PAGE, 2, [
    { type: HSA_SVM_ATTR_PREFERRED_LOC, value: k.node }, { type: HSA_SVM_ATTR_ACCESS, value: k.node },
  ]);
  say(`  a second range at 0x${b.toString(16)} prefers the GPU but is not prefetched; a shader copies the first range into it`);
  const run = await gpu.run(copyBufferIsa(), { kernargs: [b, a, n * PAGE], grid: 1 });
  say(`  dispatch ${run.completed ? "completed" : "did not complete"}${run.fault ? `, fault at 0x${run.fault.VirtualAddress.toString(16)}` : ""}: ` +
    "each untouched page raised a retry fault (IH ring → gmc_v9_0_process_interrupt → filter → soft ring → " +
    "amdgpu_vm_handle_fault → svm_range_restore_pages → svm_migrate_to_vram → validate_and_map) and the wave replayed");
  kfdSince(m, from, say);
  await smiSince(k, say);
  c = await counters(k);
  say(`  counters: faults ${c.faults}, page_in ${c.page_in}, page_out ${c.page_out}`);

  const back = await k.p.read(b, n * PAGE);
  const same = back.every((x, i) => x === data[i]);
  say(`  the CPU reads the copy: VRAM pages fault (migrate_to_ram → svm_migrate_to_ram → svm_migrate_vram_to_ram); data ${same ? "intact" : "CORRUPTED"}`);
  kfdSince(m, from, say, 8);
  await smiSince(k, say);
  c = await counters(k);
  say(`  counters: faults ${c.faults}, page_in ${c.page_in}, page_out ${c.page_out}`);
  totals.faults += c.faults;
  totals.migrations += c.page_in + c.page_out;
  totals.bytes += (c.page_in + c.page_out) * PAGE;
  await gpu.destroy();
  await k.kmt.hsaKmtCloseKFD();
  await k.p.exit(0);
}

/** VRAM pressure: a 64 MiB GPU, two processes whose ranges do not both fit. */
async function actEviction(say: Say, seed: number | undefined, totals: { bytes: number; faults: number; migrations: number }): Promise<number> {
  say("  VRAM pressure (a second machine whose GPU has 64 MiB of VRAM):");
  const m = await boot({
    name: "small-vram", ram_size: 2 * 1024 ** 3, gpus: [{ asic: "gfx90a", vram_size: 64 * 1024 ** 2 }], iommu: false, seed: seed ?? 0,
  });
  const from = { n: m.dmesg().length };
  const bytes = 40 * 1024 ** 2;
  const first = await kfdProcess(m, "app-1");
  const a = await first.p.mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  await first.p.write(a, pattern(4));
  await registerSvm(first, a, bytes, first.node);
  say(`    pid ${first.p.pid} prefetched 40 MiB into VRAM`);
  from.n = m.dmesg().length;
  const second = await kfdProcess(m, "app-2");
  const b = await second.p.mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  await registerSvm(second, b, bytes, second.node);
  await m.settle();
  const lines = m.dmesg().slice(from.n).filter((l) => /evict|TTM/i.test(l));
  for (const l of lines.slice(0, 4)) say(`    ${l}`);
  const c1 = await counters(first);
  const c2 = await counters(second);
  const head = await first.p.read(a, 4 * PAGE);
  const same = head.every((x, i) => x === pattern(4)[i]);
  say(`    pid ${second.p.pid} prefetched 40 MiB too: TTM asked the first process's svm_range_bo eviction fences to signal, ` +
    `svm_range_evict_svm_bo_worker moved ${c1.page_out} pages to RAM, the fences signalled and the VRAM was discarded; ` +
    `data ${same ? "intact" : "CORRUPTED"}`);
  totals.migrations += c1.page_in + c1.page_out + c2.page_in;
  totals.bytes += (c1.page_in + c1.page_out + c2.page_in) * PAGE;
  for (const k of [first, second]) {
    await k.kmt.hsaKmtCloseKFD();
    await k.p.exit(0);
  }
  const problems = await m.shutdown({ report_only: true });
  for (const pr of problems) say(`    shutdown: ${pr}`);
  return problems.length;
}

export async function runDemo(seed: number | undefined, say: Say): Promise<number> {
  const t0 = performance.now();
  const m = await boot(seed === undefined ? undefined : { seed });
  say(`Booted "${m.name}" (seed ${m.spec.seed ?? 0}):`);
  for (const l of m.dmesg()) say(`    ${l}`);
  say("");
  await actHmm(m, say);
  say("");
  const totals = { bytes: 0, faults: 0, migrations: 0 };
  let extra: number;
  try {
    await actSeed(m, say, totals);
    extra = await actEviction(say, seed, totals);
  } catch (e) {
    say(`  act 2 stopped: ${e instanceof Error ? e.message : String(e)}`);
    extra = 1;
  }
  say(`  act 2: ${totals.faults} GPU faults served, ${totals.migrations} pages migrated, ${(totals.bytes / 1024).toFixed(0)} KiB moved`);
  const problems = await m.shutdown({ report_only: true });
  if (extra) problems.push(`act 2: ${extra} problem(s)`);
  say("");
  say(`Summary: virtual time ${(m.k.ktime_get() / 1e6).toFixed(3)} ms, ${m.k.sched.nr_switches} context switches, ` +
    `${problems.length ? `${problems.length} shutdown problems` : "clean shutdown (no leaked page, lock, task or splat)"}, ` +
    `host time ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  for (const pr of problems) say(`  shutdown: ${pr}`);
  return problems.length ? 1 : 0;
}

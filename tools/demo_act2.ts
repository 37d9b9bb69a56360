// Act 2 of the main demo as a reusable scenario: the seed's story on amdkfd. An SVM range is
// prefetched into VRAM, GPU work retry-faults a second range in, the CPU faults VRAM pages
// back, and on a small-VRAM machine a second process's demand evicts the first one's range.
// tools/demo.ts narrates it at the demo's sizes; the fail-nth sweep
// (test/selftests/kfd/kfd_fail_nth.ts) runs the same steps at small sizes with an allocation
// failing somewhere, so every step checks its status and stops the story the way a careful
// application would: with the status in hand, its processes still cleaned up.

import {
  type Machine, type Process, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, errname,
  KFD_SMI_EVENT_MASK_FROM_INDEX, KFD_SMI_EVENT_MIGRATE_START, KFD_SMI_EVENT_MIGRATE_END, KFD_SMI_EVENT_PAGE_FAULT_START,
  KFD_SMI_EVENT_PAGE_FAULT_END,
} from "../index.ts";
import { HsaKmt } from "./hsakmt/hsakmt.ts";
import { SigError } from "../arch/x86/mm/fault.ts";
import { GpuDispatcher, copyBufferIsa } from "./hsakmt/dispatch.ts";
import {
  HSAKMT_STATUS, HSA_SVM_ATTR_ACCESS, HSA_SVM_ATTR_PREFERRED_LOC, HSA_SVM_ATTR_PREFETCH_LOC, HSA_SVM_ATTR_SET_FLAGS,
  HSA_SVM_FLAG_COHERENT, HSA_SVM_FLAG_HOST_ACCESS,
} from "./hsakmt/hsakmttypes.ts";

export const PAGE = 4096;
const MiB = 1024 ** 2;

export type Say = (line: string) => void;

export interface Act2Totals {
  bytes: number;
  faults: number;
  migrations: number;
}

export interface Act2Sizes {
  /** Pages of the prefetched range (and of the range the GPU copies it into). */
  seed_pages: number;
  /** VRAM of the eviction machine's GPU. */
  evict_vram: number;
  /** Bytes each of the two eviction processes registers; two must not fit in evict_vram. */
  evict_bytes: number;
}

/** The demo's sizes: 64 pages, two 40 MiB ranges on a 64 MiB GPU. */
export const DEMO_ACT2_SIZES: Act2Sizes = { seed_pages: 64, evict_vram: 64 * MiB, evict_bytes: 40 * MiB };

/** Bytes a process wrote (or knows) at an address: what it must read back, wherever it lives. */
export interface KnownData {
  addr: number;
  bytes: Uint8Array;
}

export interface Act2Hooks {
  /** A process of the story exists (the fail-nth sweep arms the task here). */
  spawned?(p: Process, role: string): Promise<void>;
  /** A process is about to exit; `known` is every region whose contents it can predict. */
  exiting?(p: Process, role: string, known: KnownData[]): Promise<void>;
}

/** A step of the story returned a failure: the step and its HSAKMT status, errno or message. */
export class Act2Stop extends Error {
  constructor(readonly step: string, readonly status: string) {
    super(`${step} failed${status ? `: ${status}` : ""}`);
    this.name = "Act2Stop";
  }
}

export function pattern(npages: number): Uint8Array {
  const b = new Uint8Array(npages * PAGE);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + 3) % 251;
  return b;
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

function check(step: string, st: HSAKMT_STATUS): void {
  if (st !== HSAKMT_STATUS.SUCCESS) throw new Act2Stop(step, `HSAKMT_STATUS ${st}`);
}

async function mmapAnon(p: Process, bytes: number): Promise<number> {
  const a = await p.mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  if (a < 0) throw new Act2Stop("mmap", errname(a));
  return a;
}

async function kfdProcess(m: Machine, comm: string, hooks: Act2Hooks): Promise<KfdProc> {
  const p = await m.spawn(comm);
  await hooks.spawned?.(p, comm);
  const kmt = HsaKmt.of(p);
  let st: HSAKMT_STATUS;
  try {
    st = await kmt.hsaKmtOpenKFD();
  } catch (e) {
    await p.exit(0);
    throw e;
  }
  if (st !== HSAKMT_STATUS.SUCCESS) {
    await p.exit(0);
    throw new Act2Stop("hsaKmtOpenKFD", "");
  }
  const k = { p, kmt, node: kmt.gpuNodes()[0]!, gpu_id: 0, smi: -1 };
  try {
    const props: { KFDGpuID?: number } = {};
    check("hsaKmtGetNodeProperties", kmt.hsaKmtGetNodeProperties(k.node, props));
    k.gpu_id = props.KFDGpuID!;
    const out = { fd: -1 };
    check("hsaKmtOpenSMI", await kmt.hsaKmtOpenSMI(k.node, out));
    const mask = KFD_SMI_EVENT_MASK_FROM_INDEX(KFD_SMI_EVENT_MIGRATE_START) + KFD_SMI_EVENT_MASK_FROM_INDEX(KFD_SMI_EVENT_MIGRATE_END) +
      KFD_SMI_EVENT_MASK_FROM_INDEX(KFD_SMI_EVENT_PAGE_FAULT_START) + KFD_SMI_EVENT_MASK_FROM_INDEX(KFD_SMI_EVENT_PAGE_FAULT_END);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setUint32(0, mask, true);
    const w = await p.writeFd(out.fd, b);
    if (w < 0) throw new Act2Stop("write SMI mask", errname(w));
    k.smi = out.fd;
  } catch (e) {
    await closeKfd(k, hooks, "", [], killed(e));
    throw e;
  }
  return k;
}

/**
 * hsaKmtCloseKFD and exit(0), after the hook has looked at what the process can still read. A
 * process a signal killed (`dead`) runs no more user code: only its exit is reaped.
 */
async function closeKfd(k: KfdProc, hooks: Act2Hooks, role: string, known: KnownData[], dead = false): Promise<void> {
  if (!dead) {
    if (role) await hooks.exiting?.(k.p, role, known);
    await k.kmt.hsaKmtCloseKFD();
  }
  await k.p.exit(0);
}

/** A user access ended in a signal (SIGBUS, SIGSEGV, the OOM killer's SIGKILL): the process is dead. */
function killed(e: unknown): boolean {
  return e instanceof SigError;
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

/**
 * The seed story on machine `m`: prefetch to VRAM, a GPU copy that retry-faults its
 * destination in, the CPU reading the copy back. Throws Act2Stop when a step fails.
 */
export async function seedScenario(m: Machine, say: Say, totals: Act2Totals, sizes: Act2Sizes, hooks: Act2Hooks = {}): Promise<void> {
  const from = { n: m.dmesg().length };
  const k = await kfdProcess(m, "hip-app", hooks);
  const n = sizes.seed_pages;
  const data = pattern(n);
  const known: KnownData[] = [];
  let gpu: GpuDispatcher | undefined;
  let dead = false;
  try {
    const a = await mmapAnon(k.p, n * PAGE);
    await k.p.write(a, data);
    known.push({ addr: a, bytes: data });
    say(`  pid ${k.p.pid} wrote ${n} pages at 0x${a.toString(16)} and registers them (AMDKFD_IOC_SVM SET_ATTR), prefetch → GPU ${k.gpu_id}`);
    const r = await registerSvm(k, a, n * PAGE, k.node);
    say(`  set_attr → ${r}: svm_range_vram_node_new allocated the VRAM BO through TTM, migrate_vma_setup collected and ` +
      "unmapped the CPU pages (the MMU notifier unmapped the GPU), SDMA copied through a GART window, migrate_vma_pages, " +
      "migrate_vma_finalize, then svm_range_validate_and_map mapped the VRAM on the GPU");
    check("register SVM range", r);
    kfdSince(m, from, say);
    await smiSince(k, say);
    let c = await counters(k);
    say(`  counters: page_in ${c.page_in}, page_out ${c.page_out}`);

    const created = await GpuDispatcher.create(k.kmt, k.node);
    if (typeof created === "number") throw new Act2Stop("GpuDispatcher.create", String(created));
    gpu = created;
    const b = await mmapAnon(k.p, n * PAGE);
    check("set_attr of the copy", await k.kmt.hsaKmtSVMSetAttr(b, n * PAGE, 2, [
      { type: HSA_SVM_ATTR_PREFERRED_LOC, value: k.node }, { type: HSA_SVM_ATTR_ACCESS, value: k.node },
    ]));
    say(`  a second range at 0x${b.toString(16)} prefers the GPU but is not prefetched; a shader copies the first range into it`);
    const run = await gpu.run(copyBufferIsa(), { kernargs: [b, a, n * PAGE], grid: 1 });
    say(`  dispatch ${run.completed ? "completed" : "did not complete"}${run.fault ? `, fault at 0x${run.fault.VirtualAddress.toString(16)}` : ""}: ` +
      "each untouched page raised a retry fault (IH ring → gmc_v9_0_process_interrupt → filter → soft ring → " +
      "amdgpu_vm_handle_fault → svm_range_restore_pages → svm_migrate_to_vram → validate_and_map) and the wave replayed");
    kfdSince(m, from, say);
    await smiSince(k, say);
    c = await counters(k);
    say(`  counters: faults ${c.faults}, page_in ${c.page_in}, page_out ${c.page_out}`);
    if (!run.completed) throw new Act2Stop("dispatch", run.fault ? "GPU memory fault" : `HSAKMT_STATUS ${run.status}`);
    known.push({ addr: b, bytes: data });

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
  } catch (e) {
    dead = killed(e);
    throw e;
  } finally {
    if (!dead) await gpu?.destroy();
    await closeKfd(k, hooks, "hip-app", known, dead);
  }
}

/**
 * VRAM pressure on machine `m` (a small-VRAM GPU): two processes whose ranges do not both fit.
 * Throws Act2Stop when a step fails.
 */
export async function evictionScenario(m: Machine, say: Say, totals: Act2Totals, sizes: Act2Sizes, hooks: Act2Hooks = {}): Promise<void> {
  const from = { n: m.dmesg().length };
  const bytes = sizes.evict_bytes;
  const procs: { k: KfdProc; role: string; known: KnownData[] }[] = [];
  // The process the running step belongs to: a signal kills that one.
  let acting: Process | undefined;
  let dead: Process | undefined;
  try {
    const first = await kfdProcess(m, "app-1", hooks);
    procs.push({ k: first, role: "app-1", known: [] });
    acting = first.p;
    const a = await mmapAnon(first.p, bytes);
    const head = pattern(4);
    await first.p.write(a, head);
    const whole = new Uint8Array(bytes);
    whole.set(head);
    procs[0]!.known.push({ addr: a, bytes: whole });
    check("register SVM range (app-1)", await registerSvm(first, a, bytes, first.node));
    say(`    pid ${first.p.pid} prefetched ${bytes / MiB} MiB into VRAM`);
    from.n = m.dmesg().length;
    const second = await kfdProcess(m, "app-2", hooks);
    procs.push({ k: second, role: "app-2", known: [] });
    acting = second.p;
    const b = await mmapAnon(second.p, bytes);
    procs[1]!.known.push({ addr: b, bytes: new Uint8Array(bytes) });
    check("register SVM range (app-2)", await registerSvm(second, b, bytes, second.node));
    await m.settle();
    const lines = m.dmesg().slice(from.n).filter((l) => /evict|TTM/i.test(l));
    for (const l of lines.slice(0, 4)) say(`    ${l}`);
    acting = first.p;
    const c1 = await counters(first);
    acting = second.p;
    const c2 = await counters(second);
    acting = first.p;
    const back = await first.p.read(a, 4 * PAGE);
    const same = back.every((x, i) => x === head[i]);
    say(`    pid ${second.p.pid} prefetched ${bytes / MiB} MiB too: TTM asked the first process's svm_range_bo eviction fences to signal, ` +
      `svm_range_evict_svm_bo_worker moved ${c1.page_out} pages to RAM, the fences signalled and the VRAM was discarded; ` +
      `data ${same ? "intact" : "CORRUPTED"}`);
    totals.migrations += c1.page_in + c1.page_out + c2.page_in;
    totals.bytes += (c1.page_in + c1.page_out + c2.page_in) * PAGE;
  } catch (e) {
    if (killed(e)) dead = acting;
    throw e;
  } finally {
    for (const { k, role, known } of procs) await closeKfd(k, hooks, role, known, k.p === dead);
  }
}

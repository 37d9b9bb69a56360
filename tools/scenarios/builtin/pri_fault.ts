// Built-in scenario: a GPU access to a page the CPU never touched, on the IOMMUv2 APU — the
// device's PRI page request, the PPR log and interrupt, ppr_notifier, do_fault on iommu_wq and
// the PRG response (../shared/reference/iommu-and-selftests.md §1.6).
//
// The GPU side is the real stack: amdgpu and amdkfd bound to the APU's Carrizo part (KFD binds
// the process's PASID when the queue is created), driven through the thunk (tools/hsakmt).

import { defineScenario } from "../scenario.ts";
import { APU_MACHINE, GiB } from "../../../kernel/machine_spec.ts";
import type { Process } from "../../runtime/process.ts";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../include/uapi/asm-generic/mman.ts";
import {
  SREG_KERNARG, global_load_dword, global_load_dwordx2, global_store_dword, s_addi, s_add, s_cbranch_lt, s_endpgm, s_mov_b64,
  s_muli, type Instr,
} from "../../../hw/amdgpu/isa.ts";
import { HsaKmt } from "../../hsakmt/hsakmt.ts";
import { GpuDispatcher } from "../../hsakmt/dispatch.ts";
import { HSAKMT_STATUS } from "../../hsakmt/hsakmttypes.ts";

const PAGE = 4096;
const WORDS = PAGE / 4;

/** kernargs [src, dst, count]: dst[i] = src[i] + 1, one wave. */
function add_one_kernel(): Instr[] {
  return [
    global_load_dwordx2(4, SREG_KERNARG, 0), global_load_dwordx2(5, SREG_KERNARG, 8), global_load_dword(6, SREG_KERNARG, 16),
    s_mov_b64(7, 0), s_muli(8, 7, 4), s_add(9, 4, 8), global_load_dword(10, 9, 0), s_addi(10, 10, 1), s_add(11, 5, 8),
    global_store_dword(11, 10, 0), s_addi(7, 7, 1), s_cbranch_lt(7, 6, 4 - 12), s_endpgm(),
  ];
}

async function map(p: Process, bytes: number, prot: number): Promise<number> {
  const a = await p.mmap(0, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS);
  if (a < 0) throw new Error(`mmap: ${a}`);
  return a;
}

export default defineScenario({
  name: "pri-fault",
  title: "GPU page fault through the IOMMU: PRI page request → PPR log → do_fault → PRG response",
  reference: "iommu-and-selftests.md §1.6",
  description:
    "An APU process binds its address space to the GPU's PASID and dispatches a kernel that " +
    "reads one page the CPU filled and writes one page the CPU never touched. The GPU's ATS " +
    "translation of the untouched page fails (not present in the process's page tables), so " +
    "the device sends a PRI Page Request; the IOMMU appends it to the PPR log and raises its " +
    "interrupt. The IRQ thread (amd_iommu_int_thread → iommu_poll_ppr_log → " +
    "iommu_handle_ppr_entry) hands the entry down the atomic notifier chain to ppr_notifier, " +
    "which counts it in its PRI group and queues do_fault on iommu_wq. The worker takes " +
    "mmap_lock, finds the VMA and calls handle_mm_fault with FAULT_FLAG_REMOTE, then " +
    "finish_pri_tag sends COMPLETE_PPR (SUCCESS) for the group; the device retries the " +
    "translation, which now hits, and the wave continues.",
  machine: { ...APU_MACHINE, name: "apu", ram_size: 2 * GiB },
  expected_chain: [
    "__x64_sys_ioctl", "amd_iommu_int_thread", "iommu_poll_ppr_log", "iommu_handle_ppr_entry", "ppr_notifier",
    "do_fault", "handle_mm_fault", "do_anonymous_page", "finish_pri_tag", "amd_iommu_complete_ppr",
  ],
  async run(ctx) {
    const p = await ctx.spawn("iommu_apu");
    const kmt = HsaKmt.of(p);
    if ((await kmt.hsaKmtOpenKFD()) !== HSAKMT_STATUS.SUCCESS) throw new Error("hsaKmtOpenKFD failed");
    // Creating the queue binds the process's PASID to the GPU (kfd_iommu_bind_process_to_device).
    const disp = await GpuDispatcher.create(kmt, kmt.gpuNodes()[0]!);
    if (!(disp instanceof GpuDispatcher)) throw new Error(`GpuDispatcher.create: ${disp}`);
    const src = await map(p, PAGE, PROT_READ | PROT_WRITE);
    const dst = await map(p, PAGE, PROT_READ | PROT_WRITE);
    const input = new Uint8Array(PAGE);
    const dv_in = new DataView(input.buffer);
    for (let i = 0; i < WORDS; i++) dv_in.setUint32(i * 4, i * 3, true);
    await p.write(src, input);
    const r = await ctx.study("dispatch writing a page the CPU never touched", () =>
      disp.run(add_one_kernel(), { kernargs: [src, dst, WORDS], timeoutMs: 1000 }));
    ctx.check(r.status === HSAKMT_STATUS.SUCCESS && r.completed, `the dispatch completed (status ${r.status})`);
    const bytes = await p.read(dst, PAGE);
    const out = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    ctx.check(Array.from({ length: WORDS }, (_, i) => out.getUint32(i * 4, true) === i * 3 + 1).every(Boolean), "dst[i] = src[i] + 1");
    await disp.destroy();
    await kmt.hsaKmtCloseKFD();
    await p.exit();
    return { status: r.status };
  },
});

// Built-in scenario: a GPU retry fault resolved by amdkfd's SVM code (XNACK on, compute VM):
// ../shared/reference/amdkfd.md §3(a).

import { defineScenario } from "../scenario.ts";
import { KfdProcess, PAGE, anon, read32, write32 } from "../lib/kfd.ts";

export default defineScenario({
  name: "gpu-retry-fault",
  title: "GPU retry fault (XNACK on): IH ring → soft ring → svm_range_restore_pages → GPU PTEs",
  reference: "amdkfd.md §3(a)",
  description:
    "A ROCm process with XNACK on registers two pages as SVM ranges in system memory; nothing is " +
    "mapped on the GPU yet. A kernel copies a dword from the first page to the second: the " +
    "shader's access misses in UTCL2, the wave stalls in retry and the GMC writes a retry IV; " +
    "gfx90a reroutes retry faults to IH ring 1 in hardware (other parts land on the main ring and " +
    "gmc_v9_0_process_interrupt delegates them to the software ring), and the wave keeps retrying, " +
    "so more IVs follow. The ring-1 worker (amdgpu_irq_handle_ih1 → amdgpu_ih_process) runs in " +
    "process context: gmc_v9_0_process_interrupt drops duplicates (amdgpu_gmc_filter_faults) " +
    "and calls amdgpu_vm_handle_fault → svm_range_restore_pages, which finds the range, " +
    "faults its pages in with hmm_range_fault (amdgpu_hmm_range_get_pages) and writes the GPU " +
    "PTEs (amdgpu_vm_update_range), then flushes the TLB. The stalled wave's retry hits and the " +
    "dispatch completes. (Migration to VRAM on the fault joins this path with the amdkfd " +
    "migration code.)",
  machine: "kfd",
  expected_chain: [
    "amdgpu_irq_handle_ih1", "amdgpu_ih_process", "amdgpu_irq_dispatch", "gmc_v9_0_process_interrupt",
    "amdgpu_gmc_filter_faults", "amdgpu_vm_handle_fault", "amdgpu_hmm_range_get_pages", "hmm_range_fault",
    "amdgpu_vm_update_range", "amdgpu_vm_ptes_update",
  ],
  async run(ctx) {
    const p = await ctx.spawn("kfdtest");
    const kfd = await KfdProcess.open(p, 1);
    await kfd.create_queue();
    // A first dispatch maps the queue's own control memory (code, kernargs, signal).
    const warm = await anon(p, 2);
    await kfd.register(warm, 2 * PAGE);
    await kfd.gpu_copy(warm, warm + PAGE);
    const buf = await anon(p, 2);
    await kfd.register(buf, 2 * PAGE);
    await write32(p, buf, 0xc0ffee);
    await ctx.study("GPU copy through unmapped SVM pages", () => kfd.gpu_copy(buf, buf + PAGE));
    ctx.check((await read32(p, buf + PAGE)) === 0xc0ffee, "the GPU copied the dword");
    await kfd.close();
    return { copied: true };
  },
});

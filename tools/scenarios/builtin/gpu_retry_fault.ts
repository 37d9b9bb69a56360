// Built-in scenario: a GPU retry fault on a range that prefers VRAM — the fault path through the
// IH rings into amdkfd, migration to VRAM, GPU mapping (XNACK on, compute VM):
// ../shared/reference/amdkfd.md §3(a).

import { defineScenario } from "../scenario.ts";
import { HSA_SVM_ATTR_PREFERRED_LOC, KfdProcess, PAGE, anon, read32, write32 } from "../lib/kfd.ts";

export default defineScenario({
  name: "gpu-retry-fault",
  title: "GPU retry fault → migration to VRAM (XNACK on): IH ring 1 → svm_range_restore_pages → SDMA copy → GPU PTEs",
  reference: "amdkfd.md §3(a)",
  description:
    "A ROCm process with XNACK on registers four pages as an SVM range in system memory and sets " +
    "its preferred location to the GPU; nothing is on the GPU yet (preferred_loc alone migrates " +
    "nothing). A kernel copies a dword out of the range: the shader's access misses in UTCL2, the " +
    "wave stalls in retry and the GMC writes a retry IV; gfx90a reroutes retry faults to IH ring 1 " +
    "in hardware (other parts land on the main ring and gmc_v9_0_process_interrupt delegates them " +
    "to the software ring), and the wave keeps retrying, so more IVs follow. The ring-1 worker " +
    "(amdgpu_irq_handle_ih1 → amdgpu_ih_process) runs in process context: " +
    "gmc_v9_0_process_interrupt drops duplicates (amdgpu_gmc_filter_faults) and calls " +
    "amdgpu_vm_handle_fault → svm_range_restore_pages. The best location is the GPU, so the " +
    "granularity window migrates: svm_migrate_to_vram allocates the range's VRAM BO " +
    "(svm_range_vram_node_new), migrate_vma_setup collects and unmaps the system pages (the " +
    "MIGRATE notifier reaches svm_range_evict), SDMA copies them through a GART window " +
    "(svm_migrate_copy_memory_gart), and migrate_vma_finalize leaves device-private entries in " +
    "the CPU page tables. svm_range_validate_and_map then faults the window through " +
    "hmm_range_fault — device-private pages of its own owner come back as VRAM addresses — and " +
    "writes the GPU PTEs (amdgpu_vm_update_range) and flushes the TLB. The stalled wave's retry " +
    "hits and the dispatch completes; the page_in counter shows the migration.",
  machine: "kfd",
  expected_chain: [
    "amdgpu_irq_handle_ih1", "amdgpu_ih_process", "amdgpu_irq_dispatch", "gmc_v9_0_process_interrupt",
    "amdgpu_gmc_filter_faults", "amdgpu_vm_handle_fault", "svm_range_restore_pages", "svm_migrate_to_vram",
    "svm_migrate_ram_to_vram", "svm_range_vram_node_new", "svm_migrate_vma_to_vram", "migrate_vma_setup",
    "svm_migrate_copy_to_vram", "svm_migrate_copy_memory_gart", "migrate_vma_pages", "migrate_vma_finalize",
    "svm_range_validate_and_map", "amdgpu_hmm_range_get_pages", "hmm_range_fault", "svm_range_map_to_gpus",
    "amdgpu_vm_update_range", "amdgpu_gmc_flush_gpu_tlb_pasid",
  ],
  async run(ctx) {
    const p = await ctx.spawn("kfdtest");
    const kfd = await KfdProcess.open(p, 1);
    await kfd.create_queue();
    // A first dispatch maps the queue's own control memory (code, kernargs, signal).
    const dst = await anon(p, 1);
    await kfd.register(dst, PAGE);
    await kfd.gpu_copy(dst, dst);
    const src = await anon(p, 4);
    await write32(p, src + 2 * PAGE, 0xc0ffee);
    await kfd.register(src, 4 * PAGE);
    await kfd.set_attr(src, 4 * PAGE, HSA_SVM_ATTR_PREFERRED_LOC, kfd.node);
    const before = await kfd.counter("page_in");
    await ctx.study("GPU copy from a range that prefers VRAM", () => kfd.gpu_copy(src + 2 * PAGE, dst));
    ctx.check((await read32(p, dst)) === 0xc0ffee, "the GPU copied the dword");
    const page_in = (await kfd.counter("page_in")) - before;
    ctx.check(page_in > 0, `the fault migrated pages to VRAM (page_in +${page_in})`);
    await kfd.close();
    return { page_in };
  },
});

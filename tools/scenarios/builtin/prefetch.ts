// Built-in scenario: set_attr with prefetch location = GPU migrates a range to VRAM and maps it:
// ../shared/reference/amdkfd.md §3(b).

import { defineScenario } from "../scenario.ts";
import { HSA_SVM_ATTR_PREFETCH_LOC, KfdProcess, PAGE, anon, read32, write32 } from "../lib/kfd.ts";

const NPAGES = 8;

export default defineScenario({
  name: "prefetch",
  title: "Prefetch to VRAM: AMDKFD_IOC_SVM set_attr → svm_range_trigger_migration → migrate_vma → GPU map",
  reference: "amdkfd.md §3(b)",
  description:
    "A ROCm process (XNACK on) has an SVM range of eight pages in system memory and sets its " +
    "PREFETCH_LOC attribute to the GPU (hsaKmtSVMSetAttr → AMDKFD_IOC_SVM). svm_range_set_attr " +
    "checks the attributes, flushes deferred work and takes the MM and SVM locks, applies them " +
    "(svm_range_add) and downgrades the MM lock; for the range, svm_range_trigger_migration picks " +
    "the prefetch GPU as the best location and calls svm_migrate_to_vram: a VRAM BO sized to the " +
    "range (svm_range_vram_node_new), then per VMA migrate_vma_setup (the MIGRATE notifier reaches " +
    "the range's own svm_range_evict), the SDMA copy through a GART window, migrate_vma_pages, a " +
    "wait for the fence and migrate_vma_finalize — the CPU page tables now hold device-private " +
    "entries. The range is then mapped on the GPU (svm_range_validate_and_map): hmm_range_fault " +
    "returns the device-private pages of KFD's own owner, which become VRAM PTEs.",
  machine: "kfd",
  expected_chain: [
    "__x64_sys_ioctl", "svm_range_set_attr", "svm_range_trigger_migration", "svm_migrate_to_vram",
    "svm_migrate_ram_to_vram", "svm_range_vram_node_new", "svm_migrate_vma_to_vram", "migrate_vma_setup",
    "svm_migrate_copy_to_vram", "svm_migrate_copy_memory_gart", "migrate_vma_pages", "migrate_vma_finalize",
    "svm_range_validate_and_map", "hmm_range_fault", "svm_range_map_to_gpus", "amdgpu_vm_update_range",
  ],
  async run(ctx) {
    const p = await ctx.spawn("kfdtest");
    const kfd = await KfdProcess.open(p, 1);
    await kfd.create_queue();
    const buf = await anon(p, NPAGES);
    const dst = await anon(p, 1);
    await kfd.register(dst, PAGE);
    // A first dispatch maps the queue's own control memory (code, kernargs, signal).
    await kfd.gpu_copy(dst, dst);
    for (let i = 0; i < NPAGES; i++) await write32(p, buf + i * PAGE, 0xc0de0000 + i);
    await kfd.register(buf, NPAGES * PAGE);
    await ctx.study("set_attr PREFETCH_LOC = GPU", () => kfd.set_attr(buf, NPAGES * PAGE, HSA_SVM_ATTR_PREFETCH_LOC, kfd.node));
    const page_in = await kfd.counter("page_in");
    ctx.check(page_in === NPAGES, `every page migrated (page_in ${page_in})`);
    await kfd.gpu_copy(buf + 3 * PAGE, dst);
    ctx.check((await read32(p, dst)) === 0xc0de0003, "the GPU reads the VRAM copy");
    await kfd.close();
    return { page_in };
  },
});

// Built-in scenario: munmap of part of an SVM range mapped on the GPU (XNACK off):
// ../shared/reference/amdkfd.md §3(d).

import { defineScenario } from "../scenario.ts";
import { KfdProcess, PAGE, anon, read32, write32 } from "../lib/kfd.ts";

export default defineScenario({
  name: "partial-munmap",
  title: "Partial munmap of an SVM range: unmap_from_cpu, GPU unmap, split, deferred work",
  reference: "amdkfd.md §3(d)",
  description:
    "A ROCm process (XNACK off) registers 16 pages as one SVM range, mapped on the GPU at " +
    "registration, and lets the GPU read it. It then unmaps pages 2–5. The core mm opens an " +
    "MMU_NOTIFY_UNMAP window; the range's interval notifier (svm_range_cpu_invalidate_pagetables) " +
    "calls svm_range_unmap_from_cpu, which clears the GPU PTEs of the hole on every GPU " +
    "(svm_range_unmap_from_gpus → amdgpu_vm_update_range, TLB flush) and splits the range in " +
    "place: the hole becomes an UNMAP child, the tail an ADD child, and the parent goes on the " +
    "deferred list. svm_range_deferred_list_work later (MM write lock, SVM lock) removes the " +
    "hole's piece and inserts the tail as its own range with its own notifier. The GPU still " +
    "reads both sides of the hole afterwards.",
  machine: "kfd",
  expected_chain: [
    "__x64_sys_munmap", "unmap_vmas", "__mmu_notifier_invalidate_range_start", "mn_itree_invalidate",
    "svm_range_cpu_invalidate_pagetables", "svm_range_unmap_from_cpu", "svm_range_unmap_from_gpus",
    "svm_range_unmap_from_gpu", "amdgpu_vm_update_range", "svm_range_unmap_split", "zap_pte_range",
    "__mmu_notifier_invalidate_range_end", "svm_range_deferred_list_work", "svm_range_handle_list_op",
    "mmu_interval_notifier_remove",
  ],
  async run(ctx) {
    const p = await ctx.spawn("kfdtest");
    const kfd = await KfdProcess.open(p, 0);
    await kfd.create_queue();
    const buf = await anon(p, 16);
    const dst = await anon(p, 1);
    await kfd.register(buf, 16 * PAGE);
    await kfd.register(dst, PAGE);
    for (const i of [0, 8]) await write32(p, buf + i * PAGE, 0x100 + i);
    await kfd.gpu_copy(buf + 8 * PAGE, dst);
    const ret = await ctx.study("munmap of pages 2..5", () => p.munmap(buf + 2 * PAGE, 4 * PAGE));
    ctx.check(ret === 0, `munmap returned ${ret}`);
    await kfd.gpu_copy(buf, dst);
    ctx.check((await read32(p, dst)) === 0x100, "the GPU reads before the hole");
    await kfd.gpu_copy(buf + 8 * PAGE, dst);
    ctx.check((await read32(p, dst)) === 0x108, "the GPU reads after the hole");
    await kfd.close();
    return { ret };
  },
});

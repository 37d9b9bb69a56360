// Built-in scenario: with XNACK off, a CPU-side invalidation of a GPU-mapped range evicts the
// process's queues; restore_work revalidates and resumes them (../shared/reference/amdkfd.md
// §2.4 and §7).

import { defineScenario } from "../scenario.ts";
import { KfdProcess, PAGE, anon, read32, write32 } from "../lib/kfd.ts";
import { PROT_READ } from "../../../include/uapi/asm-generic/mman.ts";

export default defineScenario({
  name: "xnack-off-eviction",
  title: "XNACK off: an mmu-notifier invalidation evicts the queues; restore_work brings them back",
  reference: "amdkfd.md §2.4, §7",
  description:
    "Without retry faults the GPU cannot fault pages in, so every SVM range the queues may touch " +
    "stays mapped while they run. The process mprotects a mapped range read-only: the core mm " +
    "opens an MMU_NOTIFY_PROTECTION_VMA window and the range's notifier calls svm_range_evict, " +
    "which marks the range invalid and — first eviction — quiesces the process's queues " +
    "(kgd2kfd_quiesce_mm → evict_process_queues; SMI QUEUE_EVICTION) and schedules " +
    "restore_work about a millisecond later. The worker takes the MM write lock and the SVM " +
    "lock, revalidates every invalid range (svm_range_validate_and_map: hmm_range_fault, then " +
    "the GPU PTEs — now read-only), and resumes the queues (kgd2kfd_resume_mm; QUEUE_RESTORE). " +
    "The next dispatch runs as before.",
  machine: "kfd",
  expected_chain: [
    "__x64_sys_mprotect", "__mmu_notifier_invalidate_range_start", "mn_itree_invalidate",
    "svm_range_cpu_invalidate_pagetables", "svm_range_evict", "kgd2kfd_quiesce_mm", "kfd_process_evict_queues",
    "evict_process_queues_nocpsch", "__mmu_notifier_invalidate_range_end", "svm_range_restore_work",
    "svm_range_validate_and_map", "amdgpu_hmm_range_get_pages", "hmm_range_fault", "svm_range_map_to_gpus",
    "amdgpu_vm_update_range", "kgd2kfd_resume_mm", "kfd_process_restore_queues", "restore_process_queues_nocpsch",
  ],
  async run(ctx) {
    const p = await ctx.spawn("kfdtest");
    const kfd = await KfdProcess.open(p, 0);
    await kfd.create_queue();
    const src = await anon(p, 2);
    const dst = await anon(p, 1);
    await kfd.register(src, 2 * PAGE);
    await kfd.register(dst, PAGE);
    await write32(p, src, 0xabcd);
    await kfd.gpu_copy(src, dst);
    const ret = await ctx.study("mprotect(PROT_READ) of a GPU-mapped range", () => p.mprotect(src, 2 * PAGE, PROT_READ));
    ctx.check(ret === 0, `mprotect returned ${ret}`);
    await write32(p, dst, 0);
    await kfd.gpu_copy(src, dst);
    ctx.check((await read32(p, dst)) === 0xabcd, "the queues run again after restore_work");
    await kfd.close();
    return { ret };
  },
});

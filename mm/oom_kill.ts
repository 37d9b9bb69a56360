// Mirrors the page-fault end of mm/oom_kill.c (Linux 6.8). In the kernel an allocation that
// cannot be satisfied invokes the OOM killer inside the page allocator, and a VM_FAULT_OOM that
// still reaches the #PF handler only retries. kemu has no reclaim and no allocator-side OOM
// killer, so a retry would spin forever: pagefault_out_of_memory() plays the OOM killer and
// picks the faulting task (docs/fidelity.md).

import type { Kernel } from "../kernel/kernel.ts";
import type { mm_struct } from "../include/linux/mm_types.ts";
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES } from "../include/linux/mm_types.ts";
import { fatal_signal_pending } from "../kernel/sched/wait.ts";

const SIGKILL = 9;
const SI_KERNEL = 0x80;

/** pagefault_out_of_memory(): kill the faulting task with SIGKILL and report it. */
export function pagefault_out_of_memory(k: Kernel): { signo: number; si_code: number; addr: number } {
  const t = k.current;
  if (!fatal_signal_pending(t)) {
    const mm = t.mm as mm_struct | null;
    const kb = (pages: number): number => pages * 4;
    k.pr_warn(`${t.comm} invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0`);
    k.pr_err(
      `Out of memory: Killed process ${t.tgid} (${t.comm}) total-vm:${kb(mm?.total_vm ?? 0)}kB, anon-rss:${kb(mm?.rss_stat[MM_ANONPAGES] ?? 0)}kB, file-rss:${kb(mm?.rss_stat[MM_FILEPAGES] ?? 0)}kB, shmem-rss:${kb(mm?.rss_stat[MM_SHMEMPAGES] ?? 0)}kB, UID:0 pgtables:${(mm?.pgtables_bytes ?? 0) / 1024}kB oom_score_adj:0`,
    );
    t.pending_signals.add(SIGKILL);
  }
  return { signo: SIGKILL, si_code: SI_KERNEL, addr: 0 };
}

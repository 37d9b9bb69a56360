// Built-in scenario: a process exits while pages of it live in device memory and a device
// mirrors it (../shared/reference/mm.md §3(d), process exit).

import { defineScenario } from "../scenario.ts";
import { Dmirror, map_anon, pattern } from "../lib/dmirror.ts";

const NPAGES = 4;

export default defineScenario({
  name: "process-exit-device",
  title: "Process exit with device-resident pages (mmu_notifier_release)",
  reference: "mm.md §3(d)",
  description:
    "A process with four pages in dmirror's device memory, and the mirror still open, calls " +
    "exit_group. exit_mmap first calls mmu_notifier_release: every interval subscription gets " +
    "invalidate(MMU_NOTIFY_RELEASE) over the whole address space, so the device stops using the " +
    "mm. Then the VMAs are unmapped (another UNMAP window the still-registered interval sees " +
    "again) and zap_pte_range drops the device-private entries, freeing the device pages " +
    "through page_free. The file is closed last, removing the interval notifier.",
  machine: "dmirror",
  expected_chain: [
    "__x64_sys_exit_group", "mmput", "__mmu_notifier_release", "mn_itree_release", "dmirror_interval_invalidate",
    "unmap_vmas", "zap_pte_range", "free_zone_device_page", "dmirror_devmem_free", "dmirror_fops_release",
  ],
  async run(ctx) {
    await ctx.insmod("test_hmm");
    const p = await ctx.spawn("hmm-tests");
    const addr = await map_anon(p, NPAGES);
    await p.write(addr, pattern(NPAGES));
    const buf = await map_anon(p, NPAGES);
    const dev = await Dmirror.open(p);
    await dev.migrate_to_device(addr, NPAGES, buf);
    await ctx.study("exit_group with the mirror open", () => p.exit(0));
    return { exited: true };
  },
});

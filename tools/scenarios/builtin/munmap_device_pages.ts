// Built-in scenario: munmap of part of a range whose pages live in device memory while the
// device mirrors it (../shared/reference/mm.md §3(d)), with dmirror as the device.

import { defineScenario } from "../scenario.ts";
import { Dmirror, PAGE_SIZE, map_anon, pattern } from "../lib/dmirror.ts";

const NPAGES = 8;

export default defineScenario({
  name: "munmap-device-pages",
  title: "Partial munmap of device-resident pages (MMU_NOTIFY_UNMAP, page_free)",
  reference: "mm.md §3(d)",
  description:
    "Eight pages were migrated to dmirror's device memory and the device mirrors the whole " +
    "address space. The process unmaps the middle four. unmap_vmas opens an MMU_NOTIFY_UNMAP " +
    "window: the interval notifier's invalidate (dmirror_interval_invalidate) bumps the sequence " +
    "and drops the device's mappings of the span; zap_pte_range then clears each PTE — for a " +
    "device-private entry the page's reference goes at once, so free_zone_device_page calls " +
    "the driver's page_free and the device memory returns to its pool; the window closes.",
  machine: "dmirror",
  expected_chain: [
    "__x64_sys_munmap", "unmap_vmas", "__mmu_notifier_invalidate_range_start", "mn_itree_invalidate",
    "dmirror_interval_invalidate", "dmirror_do_update", "unmap_single_vma", "unmap_page_range", "zap_pte_range",
    "free_zone_device_page", "dmirror_devmem_free", "__mmu_notifier_invalidate_range_end",
  ],
  async run(ctx) {
    await ctx.insmod("test_hmm");
    const p = await ctx.spawn("hmm-tests");
    const addr = await map_anon(p, NPAGES);
    await p.write(addr, pattern(NPAGES));
    const buf = await map_anon(p, NPAGES);
    const dev = await Dmirror.open(p);
    await dev.migrate_to_device(addr, NPAGES, buf);
    const ret = await ctx.study("munmap of pages 2..5", () => p.munmap(addr + 2 * PAGE_SIZE, 4 * PAGE_SIZE));
    ctx.check(ret === 0, `munmap returned ${ret}`);
    await dev.close();
    await p.exit();
    return { ret };
  },
});

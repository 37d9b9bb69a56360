// Built-in scenario: the CPU touches a page that lives in device-private memory
// (../shared/reference/mm.md §3(a)), with dmirror as the device.

import { defineScenario } from "../scenario.ts";
import { Dmirror, PAGE_SIZE, map_anon, pattern, same_bytes } from "../lib/dmirror.ts";

const NPAGES = 4;

export default defineScenario({
  name: "cpu-fault-device-private",
  title: "CPU fault on a device-private page (migrate_to_ram)",
  reference: "mm.md §3(a)",
  description:
    "Four pages were migrated to dmirror's device-private memory; their PTEs hold " +
    "device-private swap entries. The process reads the second page: the MMU raises #PF, " +
    "do_user_addr_fault takes mmap_lock and calls handle_mm_fault, handle_pte_fault finds a " +
    "non-present PTE and do_swap_page a device-private entry, so it calls the pagemap's " +
    "migrate_to_ram (dmirror_devmem_fault). The driver migrates that one page back with " +
    "migrate_vma_setup (SELECT_DEVICE_PRIVATE, fault_page set), copies it into a new system " +
    "page, and finalizes; the device page's last reference goes and page_free returns it to " +
    "the driver. The CPU retries the load and hits the new PTE.",
  machine: "dmirror",
  expected_chain: [
    "exc_page_fault", "do_user_addr_fault", "lock_mm_and_find_vma", "handle_mm_fault", "__handle_mm_fault",
    "handle_pte_fault", "do_swap_page", "dmirror_devmem_fault", "migrate_vma_setup", "migrate_vma_collect",
    "__mmu_notifier_invalidate_range_start", "migrate_vma_collect_pmd", "migrate_device_unmap",
    "dmirror_devmem_fault_alloc_and_copy", "migrate_vma_pages", "migrate_vma_finalize", "remove_migration_ptes",
    "free_zone_device_page", "dmirror_devmem_free",
  ],
  async run(ctx) {
    await ctx.insmod("test_hmm");
    const p = await ctx.spawn("hmm-tests");
    const addr = await map_anon(p, NPAGES);
    const data = pattern(NPAGES);
    await p.write(addr, data);
    const buf = await map_anon(p, NPAGES);
    const dev = await Dmirror.open(p);
    await dev.migrate_to_device(addr, NPAGES, buf);
    const page = await ctx.study("CPU load from a device-private page", () => p.read(addr + PAGE_SIZE, PAGE_SIZE));
    ctx.check(same_bytes(page, data.subarray(PAGE_SIZE, 2 * PAGE_SIZE)), "the CPU reads the data the device held");
    await dev.close();
    await p.exit();
    return { bytes: page.length };
  },
});

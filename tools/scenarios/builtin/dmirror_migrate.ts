// Built-in scenario: a driver migrates a range from system RAM to device memory
// (../shared/reference/mm.md §3(b)), with dmirror as the driver.

import { defineScenario } from "../scenario.ts";
import { Dmirror, PAGE_SIZE, map_anon, pattern, same_bytes } from "../lib/dmirror.ts";

const NPAGES = 4;

export default defineScenario({
  name: "dmirror-migrate",
  title: "dmirror: migrating anonymous memory to device-private memory",
  reference: "mm.md §3(b)",
  description:
    "A process fills four anonymous pages and asks the dmirror device to migrate them " +
    "(HMM_DMIRROR_MIGRATE_TO_DEV). The driver calls migrate_vma_setup, which opens an " +
    "MMU_NOTIFY_MIGRATE invalidation, walks the page table, locks each page and replaces its PTE " +
    "with a migration entry; the driver allocates device pages and copies the data; " +
    "migrate_vma_pages moves each page's identity; the driver maps the device pages in its own " +
    "page table; migrate_vma_finalize turns the migration entries into device-private entries " +
    "and frees the old system pages.",
  machine: "dmirror",
  expected_chain: [
    "__x64_sys_ioctl", "dmirror_fops_unlocked_ioctl", "dmirror_migrate_to_device", "migrate_vma_setup",
    "migrate_vma_collect", "__mmu_notifier_invalidate_range_start", "migrate_vma_collect_pmd",
    "__mmu_notifier_invalidate_range_end", "migrate_device_unmap", "dmirror_migrate_alloc_and_copy",
    "dmirror_devmem_alloc_page", "migrate_vma_pages", "dmirror_migrate_finalize_and_map", "migrate_vma_finalize",
    "remove_migration_ptes",
  ],
  async run(ctx) {
    await ctx.insmod("test_hmm");
    const p = await ctx.spawn("hmm-tests");
    const addr = await map_anon(p, NPAGES);
    await p.write(addr, pattern(NPAGES));
    const buf = await map_anon(p, NPAGES);
    const dev = await Dmirror.open(p);
    const cmd = await ctx.study("HMM_DMIRROR_MIGRATE_TO_DEV", () => dev.migrate_to_device(addr, NPAGES, buf));
    ctx.check(cmd.cpages === NPAGES, `all ${NPAGES} pages migrated (cpages=${cmd.cpages})`);
    ctx.check(same_bytes(await p.read(buf, NPAGES * PAGE_SIZE), pattern(NPAGES)), "the device read back the data");
    await dev.close();
    await p.exit();
    return { cpages: cmd.cpages };
  },
});

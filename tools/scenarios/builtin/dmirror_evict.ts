// Built-in scenario: driver unload evicts device memory back to system RAM
// (../shared/reference/mm.md §3(e)), with dmirror as the driver.

import { defineScenario } from "../scenario.ts";
import { Dmirror, PAGE_SIZE, map_anon, pattern, same_bytes } from "../lib/dmirror.ts";

const NPAGES = 4;

export default defineScenario({
  name: "dmirror-evict",
  title: "Device memory eviction on driver unload (migrate_device_range)",
  reference: "mm.md §3(e)",
  description:
    "Four pages of a process live in dmirror's device memory when the module is removed. " +
    "hmm_dmirror_exit removes each device; for every chunk dmirror_device_evict_chunk calls " +
    "migrate_device_range over the chunk's pfns, which collects the allocated device pages and " +
    "unmaps them from every process (try_to_migrate: MMU_NOTIFY_CLEAR windows, migration " +
    "entries). The driver copies each page into a new system page; migrate_device_pages and " +
    "migrate_device_finalize map the copies; the device pages are freed, and memunmap_pages " +
    "returns once the pagemap has no pages left. The process keeps its data.",
  machine: "dmirror",
  expected_chain: [
    "hmm_dmirror_exit", "dmirror_device_remove", "dmirror_device_remove_chunks", "dmirror_device_evict_chunk",
    "migrate_device_range", "migrate_device_unmap", "try_to_migrate", "migrate_device_pages",
    "migrate_device_finalize", "remove_migration_ptes", "free_zone_device_page", "dmirror_devmem_free",
    "memunmap_pages",
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
    await dev.close();
    const ret = await ctx.study("rmmod test_hmm", () => ctx.machine.rmmod("test_hmm"));
    ctx.check(ret === 0, `rmmod returned ${ret}`);
    ctx.check(same_bytes(await p.read(addr, NPAGES * PAGE_SIZE), data), "the process keeps its data");
    await p.exit();
    return { ret };
  },
});

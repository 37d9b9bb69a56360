// Built-in scenario: the CPU touches a range that lives in VRAM (amdkfd's migrate_to_ram):
// ../shared/reference/amdkfd.md §3(c).

import { defineScenario } from "../scenario.ts";
import { KfdProcess, PAGE, anon, read32, write32 } from "../lib/kfd.ts";

const NPAGES = 8;

export default defineScenario({
  name: "cpu-fault-vram",
  title: "CPU fault on VRAM: do_swap_page → svm_migrate_to_ram → SDMA copy back to RAM",
  reference: "amdkfd.md §3(c)",
  description:
    "A ROCm process (XNACK on) registers eight pages with prefetch and preferred location on the " +
    "GPU, so they move to VRAM at registration and the CPU page tables hold device-private " +
    "entries. The CPU then reads page 5. do_swap_page finds a device-private entry and calls the " +
    "pagemap's migrate_to_ram, svm_migrate_to_ram: it checks the process and the range, takes " +
    "the granularity window around the address (clipped to the range) and calls " +
    "svm_migrate_vram_to_ram (trigger PAGEFAULT_CPU). Per VMA, migrate_vma_setup collects the " +
    "device pages of its own owner (the MIGRATE notifier reaches svm_range_evict: with XNACK on, " +
    "the GPU PTEs of the window are unmapped), system pages are allocated and SDMA copies VRAM → " +
    "RAM (svm_migrate_copy_to_ram), migrate_vma_pages and migrate_vma_finalize map the new pages, " +
    "and the old device pages are freed (svm_migrate_page_free drops their svm_bo references). " +
    "The CPU retries the load and reads the data the GPU held.",
  machine: "kfd",
  expected_chain: [
    "exc_page_fault", "do_user_addr_fault", "handle_mm_fault", "handle_pte_fault", "do_swap_page",
    "svm_migrate_to_ram", "svm_migrate_vram_to_ram", "svm_migrate_vma_to_ram", "migrate_vma_setup",
    "__mmu_notifier_invalidate_range_start", "svm_range_cpu_invalidate_pagetables", "svm_range_evict",
    "svm_migrate_copy_to_ram", "migrate_vma_pages", "migrate_vma_finalize", "free_zone_device_page",
    "svm_migrate_page_free",
  ],
  async run(ctx) {
    const p = await ctx.spawn("kfdtest");
    const kfd = await KfdProcess.open(p, 1);
    const buf = await anon(p, NPAGES);
    for (let i = 0; i < NPAGES; i++) await write32(p, buf + i * PAGE, 0x5a000000 + i);
    await kfd.register(buf, NPAGES * PAGE, kfd.node);
    ctx.check((await kfd.counter("page_in")) === NPAGES, "registration migrated every page to VRAM");
    const v = await ctx.study("CPU load from a VRAM page", () => read32(p, buf + 5 * PAGE));
    ctx.check(v === 0x5a000005, `the CPU reads the data (0x${v.toString(16)})`);
    const page_out = await kfd.counter("page_out");
    ctx.check(page_out > 0, `pages came back to RAM (page_out ${page_out})`);
    await kfd.close();
    return { page_out };
  },
});

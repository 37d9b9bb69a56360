// Built-in scenario: fork while a device mirrors the parent, then copy-on-write faults in
// parent and child (../shared/reference/mm.md §1.10 and §4: fork write-protects COW mappings
// inside an MMU_NOTIFY_PROTECTION_PAGE window).

import { defineScenario } from "../scenario.ts";
import { Dmirror, PAGE_SIZE, map_anon, pattern, same_bytes } from "../lib/dmirror.ts";

const NPAGES = 2;

export default defineScenario({
  name: "fork-cow",
  title: "fork and copy-on-write while a device mirrors the parent",
  reference: "mm.md §4 (fork sharing)",
  description:
    "The device has mirrored two pages of the parent (writable). fork copies the address " +
    "space: dup_mmap → copy_page_range write-protects the private mapping inside an " +
    "MMU_NOTIFY_PROTECTION_PAGE window, so the mirror's invalidate drops the device's " +
    "writable mappings — otherwise a device write would land in a page now shared with the " +
    "child. Then the child writes page 0: do_wp_page finds a shared anonymous page and " +
    "wp_page_copy gives the child its own copy (another invalidation window). The parent's " +
    "write finds the original page mapped only once and reuses it (wp_page_reuse).",
  machine: "dmirror",
  expected_chain: [
    "__x64_sys_fork", "kernel_clone", "copy_process", "copy_mm", "dup_mm", "dup_mmap", "copy_page_range",
    "__mmu_notifier_invalidate_range_start", "dmirror_interval_invalidate", "copy_pte_range",
    "exc_page_fault", "handle_mm_fault", "do_wp_page", "wp_page_copy",
    "exc_page_fault", "handle_mm_fault", "do_wp_page", "wp_page_reuse",
  ],
  async run(ctx) {
    await ctx.insmod("test_hmm");
    const parent = await ctx.spawn("hmm-tests");
    const addr = await map_anon(parent, NPAGES);
    await parent.write(addr, pattern(NPAGES));
    const buf = await map_anon(parent, NPAGES);
    const dev = await Dmirror.open(parent);
    await dev.read(addr, NPAGES, buf);
    const { child, child_page, parent_page } = await ctx.study("fork, then a write in each process", async () => {
      const child = await parent.fork();
      await child.write(addr, new Uint8Array(PAGE_SIZE).fill(0xc1));
      await parent.write(addr, new Uint8Array(PAGE_SIZE).fill(0xa1));
      return { child, child_page: await child.read(addr, PAGE_SIZE), parent_page: await parent.read(addr, PAGE_SIZE) };
    });
    ctx.check(child_page.every((b) => b === 0xc1), "the child sees its own write");
    ctx.check(parent_page.every((b) => b === 0xa1), "the parent sees its own write");
    ctx.check(same_bytes(await child.read(addr + PAGE_SIZE, PAGE_SIZE), pattern(NPAGES).subarray(PAGE_SIZE)), "page 1 is still shared data");
    await child.exit();
    await dev.close();
    await parent.exit();
    return { ok: true };
  },
});

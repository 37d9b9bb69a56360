// Built-in scenario: a device mirrors a range with hmm_range_fault under the interval-notifier
// sequence protocol (../shared/reference/mm.md §3(c)), with dmirror as the device.

import { defineScenario } from "../scenario.ts";
import { Dmirror, PAGE_SIZE, map_anon, pattern, same_bytes } from "../lib/dmirror.ts";

const NPAGES = 4;

export default defineScenario({
  name: "hmm-mirror",
  title: "hmm_range_fault: a device faults in and mirrors a process's pages",
  reference: "mm.md §3(c)",
  description:
    "A process writes two of four fresh anonymous pages; the other two were never touched. " +
    "The device reads all four (HMM_DMIRROR_READ): dmirror_fault takes a sequence number with " +
    "mmu_interval_read_begin, calls hmm_range_fault under mmap_read_lock with HMM_PFN_REQ_FAULT, " +
    "and the walk faults the missing pages in through handle_mm_fault (do_anonymous_page maps the " +
    "zero page for a read). Under its own lock the driver checks mmu_interval_read_retry and " +
    "only then programs its page table (dmirror_do_fault), so no invalidation can slip between " +
    "the snapshot and the device mapping.",
  machine: "dmirror",
  expected_chain: [
    "__x64_sys_ioctl", "dmirror_fops_unlocked_ioctl", "dmirror_read", "dmirror_fault", "dmirror_range_fault",
    "mmu_interval_read_begin", "hmm_range_fault", "hmm_vma_walk_pmd", "hmm_vma_fault", "handle_mm_fault",
    "do_anonymous_page", "dmirror_do_fault", "dmirror_do_read",
  ],
  async run(ctx) {
    await ctx.insmod("test_hmm");
    const p = await ctx.spawn("hmm-tests");
    const addr = await map_anon(p, NPAGES);
    const data = pattern(2);
    await p.write(addr, data);
    const buf = await map_anon(p, NPAGES);
    const dev = await Dmirror.open(p);
    const cmd = await ctx.study("HMM_DMIRROR_READ", () => dev.read(addr, NPAGES, buf));
    const seen = await p.read(buf, NPAGES * PAGE_SIZE);
    ctx.check(same_bytes(seen.subarray(0, 2 * PAGE_SIZE), data), "the device sees what the CPU wrote");
    ctx.check(seen.subarray(2 * PAGE_SIZE).every((b) => b === 0), "untouched pages read as zeros");
    await dev.close();
    await p.exit();
    return { cpages: cmd.cpages, faults: cmd.faults };
  },
});

// Built-in scenario: VRAM pressure — TTM evicts one process's svm_bo to make room for another's
// (../shared/reference/amdkfd.md §3(e)).

import { defineScenario } from "../scenario.ts";
import { KfdProcess, PAGE, anon, read32, write32 } from "../lib/kfd.ts";

const MiB = 1024 * 1024;
const BYTES = 40 * MiB;
const NPAGES = BYTES / PAGE;

export default defineScenario({
  name: "vram-eviction",
  title: "VRAM eviction: TTM evicts an svm_bo, the eviction worker migrates its ranges to RAM",
  reference: "amdkfd.md §3(e)",
  description:
    "On a GPU with 64 MiB of VRAM, process A has a 40 MiB SVM range prefetched to VRAM. Process B " +
    "prefetches its own 40 MiB range: the VRAM manager cannot place B's BO, so TTM picks A's " +
    "svm_bo from the LRU and waits on its reservation fences. Enabling signaling on A's eviction " +
    "fence calls svm_range_schedule_evict_svm_bo, which marks the BO evicting and queues the " +
    "eviction worker. svm_range_evict_svm_bo_worker takes A's MM read lock and, for each range " +
    "of the BO, calls svm_migrate_vram_to_ram (trigger TTM_EVICTION): the MIGRATE notifier " +
    "unmaps the GPU PTEs, SDMA copies the pages back to system memory, the ranges forget the BO. " +
    "The fence signals, TTM frees A's VRAM without copying, and B's migration proceeds. A's data " +
    "is intact in system memory. (Per-page migrate events are left out of this trace: 10240 pages.)",
  machine: "kfd-evict",
  events: ["*:*", "!migrate:*", "!amdgpu:amdgpu_vm_update_ptes"],
  expected_chain: [
    "svm_range_set_attr", "svm_range_trigger_migration", "svm_migrate_to_vram", "svm_range_vram_node_new",
    "svm_range_schedule_evict_svm_bo", "svm_range_evict_svm_bo_worker", "svm_migrate_vram_to_ram",
    "svm_migrate_vma_to_ram", "migrate_vma_setup", "svm_migrate_copy_to_ram", "migrate_vma_finalize",
  ],
  async run(ctx) {
    const a = await KfdProcess.open(await ctx.spawn("kfdtest-a"), 1);
    const abuf = await anon(a.p, NPAGES);
    for (let i = 0; i < NPAGES; i += 512) await write32(a.p, abuf + i * PAGE, 0xe0000000 + i);
    await a.register(abuf, BYTES, a.node);
    ctx.check((await a.counter("page_in")) === NPAGES, "A's range is in VRAM");
    const b = await KfdProcess.open(await ctx.spawn("kfdtest-b"), 1);
    const bbuf = await anon(b.p, NPAGES);
    await ctx.study("B prefetches 40 MiB into a full VRAM", () => b.register(bbuf, BYTES, b.node));
    ctx.check((await b.counter("page_in")) === NPAGES, "B got its VRAM");
    const out = await a.counter("page_out");
    ctx.check(out > 0, `A's pages were evicted to RAM (${out})`);
    for (let i = 0; i < NPAGES; i += 512) ctx.check((await read32(a.p, abuf + i * PAGE)) === 0xe0000000 + i, `A's page ${i} is intact`);
    await b.close();
    await a.close();
    return { evicted_pages: out };
  },
});

// KUnit suite for the AMD IOMMU model and the driver's command/log handling on the APU machine:
// its caches only go away on explicit invalidation (a stale IOTLB entry after a PTE change that
// was not flushed; a device-table entry changed in memory without INVALIDATE_DEVTAB_ENTRY), an
// illegal command halts the command buffer and is reported from the event log, and a PPR log
// overflow loses requests and, as in 6.5 (which never restarts it), stops PPR logging.

import {
  KUNIT_ASSERT_EQ, KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_GE, KUNIT_EXPECT_TRUE,
  type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";
import { EIO } from "../../../include/uapi/asm-generic/errno.ts";
import { PAGE_SIZE } from "../../../include/linux/mm.ts";
import { GFP_KERNEL } from "../../../include/linux/gfp_types.ts";
import { alloc_page, __free_page } from "../../../mm/page_alloc.ts";
import { page_to_pfn } from "../../../mm/sparse.ts";
import { follow_pte, pte_unmap_unlock } from "../../../mm/pgtable-generic.ts";
import { pfn_pte, ptep_get, pte_pfn, set_pte } from "../../../arch/x86/include/asm/pgtable.ts";
import { PAGE_SHARED } from "../../../arch/x86/include/asm/pgtable_types.ts";
import {
  CMD_SET_TYPE, DEV_TABLE_ENTRY_SIZE, DTE_FLAG_V, MMIO_STATUS_CMDBUF_RUN_MASK, MMIO_STATUS_OFFSET,
  MMIO_STATUS_PPR_OVERFLOW_MASK, MMIO_STATUS_PPR_RUN_MASK, PPR_LOG_ENTRIES, iommu_cmd,
} from "../../../iommu/amd/amd_iommu_types.ts";
import { anon_map, fill, poke } from "../mm/util.ts";
import { APU_TEST_MACHINE, apu_setup, page_request, ppr_settle, type apu_env } from "./iommu_util.ts";

function translate(env: apu_env, va: number): number | null {
  const t = env.hw.ats_translate(env.devid, { pasid: env.pasid, va, write: false, exec: false, priv: false });
  return t.status === "ok" && t.r ? t.pa : null;
}

/** The IOTLB keeps serving the old frame after a PTE change until the PASID's page is flushed. */
async function iotlb_needs_explicit_flush(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const va = await anon_map(env.mm, 1);
  await poke(env.mm, va, fill(4, 1));
  const old_pa = translate(env, va);
  KUNIT_ASSERT_TRUE(test, old_pa !== null);
  const other = alloc_page(test.k, GFP_KERNEL)!;
  const lp = follow_pte(env.mm, va)!;
  const orig = ptep_get(test.k, lp.pte);
  // A PTE rewrite that skips the TLB flush and the mmu notifier: the kernel bug this models.
  set_pte(test.k, lp.pte, pfn_pte(page_to_pfn(other), PAGE_SHARED));
  pte_unmap_unlock(lp.pte, lp.ptl);
  KUNIT_EXPECT_EQ(test, translate(env, va), old_pa, "stale IOTLB entry");
  const dom = env.amd.dev_iommu_priv_get(env.pdev.dev)!.domain!;
  KUNIT_ASSERT_EQ(test, env.amd.amd_iommu_flush_page(dom, env.pasid, va), 0);
  KUNIT_EXPECT_EQ(test, translate(env, va), page_to_pfn(other) * PAGE_SIZE, "the walk sees the new PTE");
  const lp2 = follow_pte(env.mm, va)!;
  set_pte(test.k, lp2.pte, orig);
  pte_unmap_unlock(lp2.pte, lp2.ptl);
  env.amd.amd_iommu_flush_page(dom, env.pasid, va);
  KUNIT_EXPECT_EQ(test, translate(env, va), pte_pfn(orig) * PAGE_SIZE);
  __free_page(other);
}

/** A device-table entry changed in memory is not seen until INVALIDATE_DEVTAB_ENTRY. */
async function dte_cache_needs_invalidation(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const va = await anon_map(env.mm, 1);
  await poke(env.mm, va, fill(4, 1));
  KUNIT_ASSERT_TRUE(test, translate(env, va) !== null);
  const iommu = env.amd.amd_iommu_list[0]!;
  const dte = iommu.pci_seg.dev_table + env.devid * DEV_TABLE_ENTRY_SIZE;
  const [lo, hi] = env.amd.read64(dte);
  env.amd.write64(dte, lo & ~DTE_FLAG_V, hi);
  KUNIT_EXPECT_TRUE(test, translate(env, va) !== null, "the cached DTE still translates");
  env.amd.iommu_flush_dte(iommu, env.devid);
  KUNIT_ASSERT_EQ(test, env.amd.iommu_completion_wait(iommu), 0);
  const t = env.hw.ats_translate(env.devid, { pasid: env.pasid, va, write: false, exec: false, priv: false });
  KUNIT_EXPECT_EQ(test, t.status, "ur", "invalid DTE: Unsupported Request");
  env.amd.write64(dte, lo, hi);
  env.amd.iommu_flush_dte(iommu, env.devid);
  env.amd.iommu_completion_wait(iommu);
  await ppr_settle(env); // the ILLEGAL_DEV_TABLE_ENTRY event is printed by the IRQ thread
  KUNIT_EXPECT_TRUE(test, test.machine.dmesg().some((l) => l.includes("Event logged [ILLEGAL_DEV_TABLE_ENTRY device=0000:00:03.0")));
}

/** An unknown opcode: ILLEGAL_COMMAND event, the buffer stops, and the next wait times out. */
async function illegal_command_halts_buffer(test: kunit): Promise<void> {
  const env = await apu_setup(test, { init: false });
  const iommu = env.amd.amd_iommu_list[0]!;
  const cmd = new iommu_cmd();
  CMD_SET_TYPE(cmd, 0xf);
  KUNIT_ASSERT_EQ(test, env.amd.iommu_queue_command(iommu, cmd), 0);
  KUNIT_EXPECT_EQ(test, iommu.mmio_base!.readl(MMIO_STATUS_OFFSET) & MMIO_STATUS_CMDBUF_RUN_MASK, 0, "command buffer halted");
  KUNIT_EXPECT_EQ(test, env.amd.iommu_completion_wait(iommu), -EIO);
  await ppr_settle(env);
  const log = test.machine.dmesg();
  KUNIT_EXPECT_TRUE(test, log.some((l) => l.includes("AMD-Vi: Completion-Wait loop timed out")));
  KUNIT_EXPECT_TRUE(test, log.some((l) => /Event logged \[ILLEGAL_COMMAND_ERROR address=0x[0-9a-f]+\]/.test(l)));
}

/**
 * More requests than the 512-entry log holds before the IRQ thread runs: the rest are lost,
 * PPROverflow is set and PPRLogRun clears. 6.5 never restarts the log, so later requests are
 * dropped too — the devices that sent them wait forever.
 */
async function ppr_log_overflow_stops_logging(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const va = await anon_map(env.mm, 1);
  const total = PPR_LOG_ENTRIES + 8;
  let accepted = 0;
  for (let i = 0; i < total; i++) if (page_request(env, va, i % 512, true)) accepted++;
  KUNIT_EXPECT_EQ(test, accepted, PPR_LOG_ENTRIES - 1, "a full ring holds entries - 1");
  KUNIT_EXPECT_GE(test, env.hw.stats.ppr_overflows, 1);
  const status = env.amd.amd_iommu_list[0]!.mmio_base!.readl(MMIO_STATUS_OFFSET);
  KUNIT_EXPECT_TRUE(test, (status & MMIO_STATUS_PPR_OVERFLOW_MASK) !== 0);
  KUNIT_EXPECT_FALSE(test, (status & MMIO_STATUS_PPR_RUN_MASK) !== 0, "PPR logging stopped");
  await ppr_settle(env, 5);
  KUNIT_EXPECT_EQ(test, env.ats.response_log.length, Math.min(PPR_LOG_ENTRIES - 1, 256), "every logged request answered");
  KUNIT_EXPECT_EQ(test, env.hw.stats.complete_ppr, PPR_LOG_ENTRIES - 1);
  KUNIT_EXPECT_FALSE(test, page_request(env, va, 3, true), "no restart in 6.5: later requests are lost");
}

/** A page request from a DeviceID with no valid DTE is not logged: an INVALID_PPR_REQUEST event. */
async function ppr_from_absent_device_is_an_event(test: kunit): Promise<void> {
  const env = await apu_setup(test);
  const logged = env.hw.stats.ppr_logged;
  const accepted = env.hw.page_request(0x50, { pasid: 1, va: 0x7000, read: true, write: false, exec: false, priv: false, prg_index: 3, last: true });
  KUNIT_EXPECT_FALSE(test, accepted);
  KUNIT_EXPECT_EQ(test, env.hw.stats.ppr_logged, logged);
  await ppr_settle(env);
  KUNIT_EXPECT_TRUE(test, test.machine.dmesg().some((l) =>
    l.includes("Event logged [INVALID_PPR_REQUEST device=0000:00:0a.0 pasid=0x00001 address=0x7000 flags=0x0144 tag=0x203]")));
  KUNIT_EXPECT_EQ(test, env.ats.response_log.length, 0);
}

export const amd_iommu_hw_suite: kunit_suite = {
  name: "amd_iommu_hw",
  machine: APU_TEST_MACHINE,
  test_cases: [
    KUNIT_CASE(iotlb_needs_explicit_flush),
    KUNIT_CASE(dte_cache_needs_invalidation),
    KUNIT_CASE(illegal_command_halts_buffer),
    KUNIT_CASE(ppr_log_overflow_stops_logging),
    KUNIT_CASE(ppr_from_absent_device_is_an_event),
  ],
};

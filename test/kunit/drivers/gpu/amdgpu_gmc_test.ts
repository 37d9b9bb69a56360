// KUnit suite for the GPU VM path: the retry-fault filter (window, duplicates, expiry), a GPU
// access through a stale TLB entry (old data until the flush or until set conflicts push it
// out), retry faults that stall a wave
// and replay once KFD's hook maps the page (through IH ring 1 on gfx90a, through the software
// ring on navi10), XNACK-off faults reported with the decoded VM_L2_PROTECTION_FAULT_STATUS,
// and an unserved retry fault turning into a no-retry fault.

import {
  KUNIT_ASSERT_EQ, KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_CASE_PARAM, KUNIT_ARRAY_PARAM, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE,
  KUNIT_EXPECT_GE, KUNIT_EXPECT_TRUE, type kunit, type kunit_suite,
} from "../../../../lib/kunit/test.ts";
import type { amdgpu_device } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu.ts";
import { AMDGPU_GEM_DOMAIN_GTT, AMDGPU_GEM_DOMAIN_VRAM, type amdgpu_bo } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_object.ts";
import { amdgpu_gmc_filter_faults, AMDGPU_GMC_FAULT_TIMEOUT } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_gmc.ts";
import { amdgpu_vm_flush_compute_tlb } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_vm.ts";
import type { kgd2kfd_calls } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_amdkfd.ts";
import { global_load_dword, global_load_dwordx2, global_store_dword, s_endpgm, SREG_KERNARG } from "../../../../hw/amdgpu/isa.ts";
import { SOC15_IH_CLIENTID_UTCL2 } from "../../../../drivers/gpu/drm/amd/include/soc15_ih_clientid.ts";
import { TLB_SETS, TLB_WAYS } from "../../../../hw/amdgpu/gmc.ts";
import { ComputeCtx, RW, get_adev, get_gpu_hw, gpu_machine, kernel_bo, register_fake_kfd, MiB, CTRL_VA } from "./amdgpu_harness.ts";

const A_VA = 0x4000_0000;
const B_VA = 0x4100_0000;
/** A page of a TLB set no other mapping of these tests uses (set 5: not 4 MiB-aligned). */
const C_VA = 0x5000_5000;

/** s4 = kernarg[0], s5 = kernarg[1]; *s5 = *s4 (one dword). */
function copy_dword_program(c: ComputeCtx): number {
  return c.load_program([
    global_load_dwordx2(4, SREG_KERNARG, 0),
    global_load_dwordx2(5, SREG_KERNARG, 8),
    global_load_dword(6, 4),
    global_store_dword(5, 6),
    s_endpgm(),
  ]);
}

/** A fake amdkfd registered for the case: records forwarded IVs, serves retry faults with `restore`. */
async function fake_kfd(test: kunit, restore: kgd2kfd_calls["svm_range_restore_pages"]): Promise<{ ivs: Uint32Array[]; faults: number[] }> {
  const seen = { ivs: [] as Uint32Array[], faults: [] as number[] };
  await register_fake_kfd(test, async (adev, pasid, vmid, node, addr, ts, write) => {
    seen.faults.push(addr);
    return restore(adev, pasid, vmid, node, addr, ts, write);
  }, (_kfd, iv) => {
    seen.ivs.push(Uint32Array.from(iv));
  });
  return seen;
}

// ---- the fault filter ----------------------------------------------------------------------

/** Duplicates inside the 5000-tick window are dropped; the window is inclusive; keys differ. */
function fault_filter_window(test: kunit): void {
  const adev = get_adev(test);
  const ih = adev.irq.ih;
  const t = ih.processed_timestamp + 100000;
  const addr = 0x7f00_1234_5000;
  const f = (a: number, pasid: number, ts: number) => amdgpu_gmc_filter_faults(adev, ih, a, pasid, ts);
  KUNIT_EXPECT_FALSE(test, f(addr, 0x8001, t), "first fault passes");
  KUNIT_EXPECT_TRUE(test, f(addr + 0x123, 0x8001, t + 100), "same page, same pasid: dropped");
  KUNIT_EXPECT_TRUE(test, f(addr, 0x8001, t + AMDGPU_GMC_FAULT_TIMEOUT), "still inside the window");
  KUNIT_EXPECT_FALSE(test, f(addr, 0x8002, t + 200), "another pasid passes");
  KUNIT_EXPECT_FALSE(test, f(addr + 4096, 0x8001, t + 300), "another page passes");
  KUNIT_EXPECT_FALSE(test, f(addr, 0x8001, t + AMDGPU_GMC_FAULT_TIMEOUT + 1), "after the window it passes again");
  KUNIT_EXPECT_TRUE(test, f(addr, 0x8001, t + AMDGPU_GMC_FAULT_TIMEOUT + 2), "and is recorded again");
  KUNIT_EXPECT_TRUE(test, f(addr, 0x8001, ih.processed_timestamp - 1), "older than what was processed: stale");
}

/**
 * The filter on real vectors: the GPU raises a retry IV twice for one page (routed to IH ring 1
 * on gfx90a); the second, inside the window, never reaches the handler; one after the window
 * does.
 */
async function fault_filter_drops_repeats(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const hw = get_gpu_hw(test);
  const before = test.k.log.dmesg().filter((l) => l.includes("retry page fault")).length;
  const iv = { client_id: SOC15_IH_CLIENTID_UTCL2, src_id: 0, vmid: 9, src_data: [0x12345, 0x80, 0, 0], retry_fault: true };
  hw.ih.post(iv);
  await test.k.usleep_range(20, 30); // 2000-3000 ticks of the 100 MHz IV clock: inside the window
  hw.ih.post(iv);
  await test.k.msleep(1);
  const mid = test.k.log.dmesg().filter((l) => l.includes("retry page fault")).length;
  KUNIT_EXPECT_EQ(test, mid - before, 1, "the repeat inside the window was filtered");
  await test.k.msleep(1);
  hw.ih.post(iv);
  await test.k.msleep(1);
  const after = test.k.log.dmesg().filter((l) => l.includes("retry page fault")).length;
  KUNIT_EXPECT_EQ(test, after - before, 2, "after the window the fault is handled again");
  KUNIT_EXPECT_GE(test, adev.irq.ih1.processed_timestamp, 1, "ring 1 carried the retry faults");
}

// ---- TLB ----------------------------------------------------------------------------------

/**
 * Two VRAM pages holding 0x1111 (a) and 0x2222 (b), the copy program, and `read_at(va)`: the
 * dword the GPU reads at `va`, through the output page mapped at B_VA.
 */
async function tlb_fixture(test: kunit): Promise<{ c: ComputeCtx; a: amdgpu_bo; b: amdgpu_bo; read_at: (va: number) => Promise<number> }> {
  const adev = get_adev(test);
  const c = await ComputeCtx.create(test, adev, {});
  const a = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_VRAM);
  const b = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_VRAM);
  const out = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_GTT);
  a.cpu.wr32(0, 0x1111);
  b.cpu.wr32(0, 0x2222);
  KUNIT_ASSERT_EQ(test, await c.map(B_VA, out.bo, RW), 0);
  const prog = copy_dword_program(c);
  const read_at = async (va: number): Promise<number> => {
    KUNIT_ASSERT_TRUE(test, await c.run(prog, [va, B_VA]));
    return out.cpu.rd32(0);
  };
  return { c, a: a.bo, b: b.bo, read_at };
}

/** A PTE rewritten without a flush keeps translating to the old page until the TLB flush. */
async function stale_tlb_until_flush(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const { c, a, b, read_at } = await tlb_fixture(test);
  KUNIT_ASSERT_EQ(test, await c.map(A_VA, a, RW), 0);
  KUNIT_EXPECT_EQ(test, await read_at(A_VA), 0x1111);
  // Remap A_VA to b without flushing: the GPU still uses the cached translation.
  KUNIT_ASSERT_EQ(test, await c.map(A_VA, b, RW, false), 0);
  KUNIT_EXPECT_EQ(test, await read_at(A_VA), 0x1111, "stale TLB entry: old page");
  amdgpu_vm_flush_compute_tlb(adev, c.vm, 0);
  KUNIT_EXPECT_EQ(test, await read_at(A_VA), 0x2222, "after the flush: new page");
}

/**
 * The TLB is set-associative: TLB_WAYS more pages of the same set (page numbers TLB_SETS apart)
 * push the oldest entry out, so a PTE rewritten without a flush shows through for that page,
 * while one page fewer leaves it cached (stale).
 */
async function tlb_set_conflict_evicts_oldest(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const { c, a, b, read_at } = await tlb_fixture(test);
  // The set's pages sit 4 MiB apart from C_VA up, clear of A_VA and B_VA.
  const stride = TLB_SETS * 4096;
  for (const others of [TLB_WAYS - 1, TLB_WAYS]) {
    KUNIT_ASSERT_EQ(test, await c.map(C_VA, a, RW), 0);
    amdgpu_vm_flush_compute_tlb(adev, c.vm, 0);
    KUNIT_EXPECT_EQ(test, await read_at(C_VA), 0x1111);
    for (let i = 1; i <= others; i++) {
      const filler = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_VRAM);
      // No flush: that would drop C_VA's entry too (a never-cached page needs none).
      KUNIT_ASSERT_EQ(test, await c.map(C_VA + i * stride, filler.bo, RW, false), 0);
      await read_at(C_VA + i * stride);
    }
    KUNIT_ASSERT_EQ(test, await c.map(C_VA, b, RW, false), 0);
    KUNIT_EXPECT_EQ(test, await read_at(C_VA), others < TLB_WAYS ? 0x1111 : 0x2222,
      `${others} other pages of the set: ${others < TLB_WAYS ? "still cached (stale)" : "evicted, walked again"}`);
  }
}

// ---- retry faults -----------------------------------------------------------------------------

/**
 * A wave reads a page that is not mapped: the access stalls, the retry fault reaches the KFD
 * hook (once: repeats are filtered), the hook maps the page, the TLB flush replays the access
 * and the wave completes with the right data.
 */
async function retry_fault_stall_and_replay(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const data = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_VRAM);
  const out = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_GTT);
  data.cpu.wr32(0, 0xbeef0001);
  let ctx: ComputeCtx | null = null;
  const kfd = await fake_kfd(test, async (_adev: amdgpu_device, _pasid, _vmid, _node, addr) => {
    if (addr !== A_VA / 4096) return -14;
    // What svm_range_restore_pages ends with: map the page and flush the TLB.
    return ctx!.map(A_VA, data.bo, RW, true);
  });
  ctx = await ComputeCtx.create(test, adev, { compute: true, xnack: true });
  KUNIT_ASSERT_EQ(test, await ctx.map(B_VA, out.bo, RW), 0);
  const t0 = test.k.ktime_get();
  const hub = get_gpu_hw(test).gfxhub;
  const stalls0 = hub.stats.retry_faults;
  KUNIT_ASSERT_TRUE(test, await ctx.run(copy_dword_program(ctx), [A_VA, B_VA]), "the wave completes");
  KUNIT_EXPECT_EQ(test, out.cpu.rd32(0), 0xbeef0001);
  KUNIT_EXPECT_EQ(test, kfd.faults.length, 1, "one fault served (duplicates filtered)");
  KUNIT_EXPECT_EQ(test, kfd.faults[0], A_VA / 4096);
  KUNIT_EXPECT_GE(test, hub.stats.retry_faults - stalls0, 1);
  KUNIT_EXPECT_GE(test, test.k.ktime_get() - t0, 1000, "the fault cost virtual time");
  KUNIT_EXPECT_FALSE(test, test.k.log.dmesg().some((l) => l.includes("page fault (src_id")), "nothing was reported");
}

/** XNACK off: the fault is final, logged with the decoded status, forwarded to KFD; the wave goes on. */
async function noretry_fault_logged(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const out = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_GTT);
  out.cpu.wr32(0, 0x5555);
  const kfd = await fake_kfd(test, async () => -14);
  const c = await ComputeCtx.create(test, adev, { compute: true, xnack: false });
  KUNIT_ASSERT_EQ(test, await c.map(B_VA, out.bo, RW), 0);
  KUNIT_ASSERT_TRUE(test, await c.run(copy_dword_program(c), [A_VA, B_VA]), "the wave still completes");
  KUNIT_EXPECT_EQ(test, out.cpu.rd32(0), 0, "the read came from the dummy page");
  const log = test.k.log.dmesg().join("\n");
  const gfx9 = adev.ip_versions.gc[0] === 9;
  KUNIT_EXPECT_TRUE(test, log.includes(gfx9 ? "[gfxhub0] no-retry page fault" : "[gfxhub] page fault"), "fault reported");
  KUNIT_EXPECT_TRUE(test, log.includes(`in page starting at address 0x${A_VA.toString(16).padStart(16, "0")}`));
  KUNIT_EXPECT_TRUE(test, log.includes(gfx9 ? "VM_L2_PROTECTION_FAULT_STATUS:0x" : "GCVM_L2_PROTECTION_FAULT_STATUS:0x"));
  KUNIT_EXPECT_TRUE(test, log.includes("Faulty UTCL2 client ID: TCP (0x8)"), "decoded CID");
  KUNIT_EXPECT_TRUE(test, log.includes("PERMISSION_FAULTS: 0x3"), "invalid entry, read access");
  KUNIT_EXPECT_EQ(test, kfd.faults.length, 0, "no retry, no restore");
  KUNIT_EXPECT_TRUE(test, kfd.ivs.some((iv) => (iv[0]! & 0xff) === SOC15_IH_CLIENTID_UTCL2), "KFD got the IV");
  KUNIT_EXPECT_EQ(test, c.vm.fault_info?.addr, A_VA, "fault cached for the VM");
}

/** KFD cannot serve the retry fault: amdgpu writes the no-retry PTE and the retry ends as a no-retry fault. */
async function unserved_retry_becomes_noretry(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const out = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_GTT);
  const kfd = await fake_kfd(test, async () => -14);
  const c = await ComputeCtx.create(test, adev, { compute: true, xnack: true });
  KUNIT_ASSERT_EQ(test, await c.map(B_VA, out.bo, RW), 0);
  KUNIT_ASSERT_TRUE(test, await c.run(copy_dword_program(c), [A_VA, B_VA], 100));
  KUNIT_EXPECT_EQ(test, kfd.faults.length, 1);
  const log = test.k.log.dmesg().join("\n");
  KUNIT_EXPECT_TRUE(test, log.includes("page fault (src_id:0"), "the final fault was reported");
  KUNIT_EXPECT_GE(test, get_gpu_hw(test).gfxhub.stats.noretry_faults, 1);
  KUNIT_EXPECT_EQ(test, CTRL_VA % 4096, 0);
}

const ASICS = ["gfx90a", "navi10"] as const;

async function retry_fault_per_asic(test: kunit): Promise<void> {
  await retry_fault_stall_and_replay(test);
}

export const amdgpu_gmc_test_suite: kunit_suite = {
  name: "amdgpu_gmc",
  machine: gpu_machine("gfx90a", 256 * MiB),
  test_cases: [
    KUNIT_CASE(fault_filter_window),
    KUNIT_CASE(fault_filter_drops_repeats),
    KUNIT_CASE(stale_tlb_until_flush),
    KUNIT_CASE(tlb_set_conflict_evicts_oldest),
    KUNIT_CASE(retry_fault_stall_and_replay),
    KUNIT_CASE(noretry_fault_logged),
    KUNIT_CASE(unserved_retry_becomes_noretry),
  ],
};

export const amdgpu_gmc_v10_test_suite: kunit_suite = {
  name: "amdgpu_gmc_v10",
  machine: gpu_machine("navi10", 128 * MiB),
  test_cases: [
    KUNIT_CASE_PARAM(retry_fault_per_asic, KUNIT_ARRAY_PARAM(ASICS.slice(1), (a) => a)),
    KUNIT_CASE(noretry_fault_logged),
    KUNIT_CASE(stale_tlb_until_flush),
  ],
};

// KUnit suite for TTM on amdgpu under VRAM pressure: BOs that no longer fit push the least
// recently used ones out to GTT (SDMA blits through the GART), pinned BOs and kernel BOs stay,
// every byte survives each move, an evicted BO validated back into VRAM evicts another in turn,
// and a BO the GPU still works on is evicted only after its fence.

import {
  KUNIT_ASSERT_EQ, KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_GE, KUNIT_EXPECT_TRUE, type kunit,
  type kunit_suite,
} from "../../../../lib/kunit/test.ts";
import type { amdgpu_device } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu.ts";
import {
  AMDGPU_GEM_DOMAIN_GTT, AMDGPU_GEM_DOMAIN_VRAM, amdgpu_bo_kmap, amdgpu_bo_pin, amdgpu_bo_reserve, amdgpu_bo_unpin,
  amdgpu_bo_unreserve, amdgpu_bo_validate, amdgpu_bo_gpu_offset, amdgpu_bo_fence, type amdgpu_bo,
} from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_object.ts";
import { amdgpu_copy_buffer } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_ttm.ts";
import { TTM_PL_TT, TTM_PL_VRAM } from "../../../../include/drm/ttm/ttm_placement.ts";
import { dma_fence_is_signaled, dma_fence_put } from "../../../../drivers/dma-buf/dma-fence.ts";
import { get_adev, get_gpu_hw, gpu_machine, kernel_bo, user_bo, MiB } from "./amdgpu_harness.ts";

const BO_SIZE = 4 * MiB;

/** Fills the BO with words derived from `seed` (through whatever mapping its placement gives). */
function fill(test: kunit, bo: amdgpu_bo, seed: number): void {
  const m = amdgpu_bo_kmap(bo);
  KUNIT_ASSERT_TRUE(test, typeof m !== "number", "kmap");
  if (typeof m === "number") return;
  const w = new Uint32Array(BO_SIZE / 4);
  for (let i = 0; i < w.length; i++) w[i] = (Math.imul(i, 2654435761) ^ (seed << 24) ^ seed) >>> 0;
  m.memcpy_to(0, new Uint8Array(w.buffer));
}

/** True when the BO still holds what fill(seed) wrote. */
function intact(bo: amdgpu_bo, seed: number): boolean {
  const m = amdgpu_bo_kmap(bo);
  if (typeof m === "number") return false;
  const b = new Uint8Array(BO_SIZE);
  m.memcpy_from(b, 0);
  const w = new Uint32Array(b.buffer);
  for (let i = 0; i < w.length; i++) if (w[i] !== (Math.imul(i, 2654435761) ^ (seed << 24) ^ seed) >>> 0) return false;
  return true;
}

function where(bo: amdgpu_bo): number {
  return bo.tbo.resource?.mem_type ?? -1;
}

/** Creates VRAM BOs (each filled) until `extra` more than VRAM holds have been made. */
async function overcommit(test: kunit, adev: amdgpu_device, extra: number): Promise<amdgpu_bo[]> {
  const n = Math.ceil(adev.gmc.real_vram_size / BO_SIZE) + extra;
  const bos: amdgpu_bo[] = [];
  for (let i = 0; i < n; i++) {
    const bo = await user_bo(test, adev, BO_SIZE, AMDGPU_GEM_DOMAIN_VRAM);
    fill(test, bo, i + 1);
    bos.push(bo);
  }
  return bos;
}

/** More BOs than VRAM: the oldest go to GTT by SDMA, all data intact, a pinned BO and kernel BOs stay. */
async function evict_under_pressure(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const hw = get_gpu_hw(test);
  const copied0 = hw.sdma.reduce((s, e) => s + e.stats.bytes_copied, 0);
  const pinned = await user_bo(test, adev, BO_SIZE, AMDGPU_GEM_DOMAIN_VRAM);
  fill(test, pinned, 0xaa);
  KUNIT_ASSERT_EQ(test, await amdgpu_bo_reserve(pinned, true), 0);
  KUNIT_ASSERT_EQ(test, await amdgpu_bo_pin(pinned, AMDGPU_GEM_DOMAIN_VRAM), 0);
  amdgpu_bo_unreserve(pinned);
  const kbo = await kernel_bo(test, adev, BO_SIZE, AMDGPU_GEM_DOMAIN_VRAM);
  kbo.cpu.wr32(0, 0x600dcafe);

  const bos = await overcommit(test, adev, 3);
  const evicted = bos.filter((b) => where(b) === TTM_PL_TT);
  KUNIT_EXPECT_GE(test, evicted.length, 3, "at least the overcommitted BOs went to GTT");
  KUNIT_EXPECT_EQ(test, where(bos[bos.length - 1]!), TTM_PL_VRAM, "the newest BO is in VRAM");
  KUNIT_EXPECT_TRUE(test, evicted.includes(bos[0]!), "the least recently used went first");
  KUNIT_EXPECT_EQ(test, where(pinned), TTM_PL_VRAM, "pinned stays");
  KUNIT_EXPECT_EQ(test, where(kbo.bo), TTM_PL_VRAM, "kernel BO stays");
  KUNIT_EXPECT_EQ(test, kbo.cpu.rd32(0), 0x600dcafe);
  KUNIT_EXPECT_TRUE(test, intact(pinned, 0xaa), "pinned data");
  const bad = bos.map((b, i) => (intact(b, i + 1) ? -1 : i)).filter((i) => i >= 0);
  KUNIT_EXPECT_EQ(test, bad.length, 0, `data intact in every BO wherever it is (bad: ${bad.join(",")})`);
  const copied = hw.sdma.reduce((s, e) => s + e.stats.bytes_copied, 0) - copied0;
  KUNIT_EXPECT_GE(test, copied, evicted.length * BO_SIZE, "the evictions were SDMA blits");

  // Bring the first one back: it takes VRAM from another, still with every byte.
  const back = bos[0]!;
  KUNIT_ASSERT_EQ(test, await amdgpu_bo_reserve(back, true), 0);
  const r = await amdgpu_bo_validate(back);
  amdgpu_bo_unreserve(back);
  KUNIT_ASSERT_EQ(test, r, 0);
  KUNIT_EXPECT_EQ(test, where(back), TTM_PL_VRAM, "validated back into VRAM");
  KUNIT_EXPECT_TRUE(test, intact(back, 1), "round trip VRAM→GTT→VRAM kept the data");
  KUNIT_EXPECT_GE(test, bos.filter((b) => where(b) === TTM_PL_TT).length, evicted.length, "someone else made room");
  const bad2 = bos.map((b, i) => (intact(b, i + 1) ? -1 : i)).filter((i) => i >= 0);
  KUNIT_EXPECT_EQ(test, bad2.length, 0, `data intact after the second round (bad: ${bad2.join(",")})`);

  KUNIT_ASSERT_EQ(test, await amdgpu_bo_reserve(pinned, true), 0);
  amdgpu_bo_unpin(pinned);
  amdgpu_bo_unreserve(pinned);
}

/**
 * A BO the GPU is still writing (its fence in the reservation) is evicted only after that
 * fence: the eviction copy sees the GPU's data.
 */
async function evict_waits_for_gpu(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const src = await kernel_bo(test, adev, BO_SIZE, AMDGPU_GEM_DOMAIN_GTT);
  const words = new Uint32Array(BO_SIZE / 4).map((_, i) => (i * 7 + 0x1000) >>> 0);
  src.cpu.memcpy_to(0, new Uint8Array(words.buffer));
  const victim = await user_bo(test, adev, BO_SIZE, AMDGPU_GEM_DOMAIN_VRAM);
  fill(test, victim, 0x55);
  // The GPU overwrites the victim; the fence goes into its reservation as a write.
  KUNIT_ASSERT_EQ(test, await amdgpu_bo_reserve(victim, true), 0);
  const f = await amdgpu_copy_buffer(adev.mman.buffer_funcs_ring!, src.gpu_addr, amdgpu_bo_gpu_offset(victim), BO_SIZE, null, true);
  KUNIT_ASSERT_TRUE(test, typeof f !== "number", "copy submitted");
  if (typeof f === "number") return;
  amdgpu_bo_fence(victim, f, false);
  amdgpu_bo_unreserve(victim);
  KUNIT_EXPECT_TRUE(test, !dma_fence_is_signaled(f), "the copy is still running");
  // Pressure right away: the victim is the oldest user BO.
  const bos = await overcommit(test, adev, 2);
  KUNIT_EXPECT_EQ(test, where(victim), TTM_PL_TT, "the busy BO was evicted");
  KUNIT_EXPECT_TRUE(test, dma_fence_is_signaled(f), "after its fence");
  dma_fence_put(f);
  const m = amdgpu_bo_kmap(victim);
  KUNIT_ASSERT_TRUE(test, typeof m !== "number");
  if (typeof m === "number") return;
  const got = new Uint8Array(BO_SIZE);
  m.memcpy_from(got, 0);
  const gw = new Uint32Array(got.buffer);
  KUNIT_EXPECT_TRUE(test, gw.every((v, i) => v === words[i]), "the evicted copy holds the GPU's data");
  KUNIT_EXPECT_TRUE(test, bos.every((b, i) => intact(b, i + 1)), "the others intact");
}

export const amdgpu_ttm_test_suite: kunit_suite = {
  name: "amdgpu_ttm",
  machine: gpu_machine("gfx90a", 64 * MiB),
  test_cases: [KUNIT_CASE(evict_under_pressure), KUNIT_CASE(evict_waits_for_gpu)],
};

// KUnit suite for the SDMA copy path (amdgpu_copy_buffer → sdma_v4_0/v5_0 packets → the SDMA
// engine): copies of every size class (1 byte to several 4 MiB packets) at aligned and unaligned
// offsets between VRAM and GTT in all four directions, system pages reached through a GART
// transfer window, CONST_FILL, and the same on the Navi10 (sdma_v5_0, GFXHUB) part.

import {
  KUNIT_ASSERT_EQ, KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_CASE_PARAM, KUNIT_ARRAY_PARAM, KUNIT_EXPECT_EQ, KUNIT_EXPECT_TRUE,
  type kunit, type kunit_suite,
} from "../../../../lib/kunit/test.ts";
import { AMDGPU_GEM_DOMAIN_GTT, AMDGPU_GEM_DOMAIN_VRAM, amdgpu_bo_gpu_offset } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_object.ts";
import { amdgpu_fill_buffer, amdgpu_ttm_write_window_ptes, AMDGPU_GTT_MAX_TRANSFER_SIZE } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_ttm.ts";
import { amdgpu_gart_system_flags } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_gart.ts";
import { alloc_pages, __free_pages } from "../../../../mm/page_alloc.ts";
import { GFP_KERNEL } from "../../../../include/linux/gfp_types.ts";
import { NODE_DATA } from "../../../../include/linux/mmzone.ts";
import type { page } from "../../../../include/linux/mm_types.ts";
import { amdgpu_res_cursor, amdgpu_res_first } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_res_cursor.ts";
import { get_adev, get_gpu_hw, gpu_machine, kernel_bo, pattern, sdma_copy, user_bo, wait_fence, MiB } from "./amdgpu_harness.ts";

const SIZES = [1, 4, 7, 4095, 4096, 4097, 65539, 2 * MiB, 4 * MiB, 4 * MiB + 1, 9 * MiB + 5];
const OFFSETS: ReadonlyArray<[number, number]> = [[0, 0], [1, 3], [4, 4093], [4093, 1]];
const BO_SIZE = 16 * MiB;

interface path {
  name: string;
  src: number;
  dst: number;
}

const PATHS: readonly path[] = [
  { name: "vram_to_vram", src: AMDGPU_GEM_DOMAIN_VRAM, dst: AMDGPU_GEM_DOMAIN_VRAM },
  { name: "vram_to_gtt", src: AMDGPU_GEM_DOMAIN_VRAM, dst: AMDGPU_GEM_DOMAIN_GTT },
  { name: "gtt_to_vram", src: AMDGPU_GEM_DOMAIN_GTT, dst: AMDGPU_GEM_DOMAIN_VRAM },
  { name: "gtt_to_gtt", src: AMDGPU_GEM_DOMAIN_GTT, dst: AMDGPU_GEM_DOMAIN_GTT },
];

/** Every size at every offset pair: the destination holds the source bytes, its neighbours stay. */
async function copy_size_classes(test: kunit): Promise<void> {
  const p = test.param_value as path;
  const adev = get_adev(test);
  const src = await kernel_bo(test, adev, BO_SIZE, p.src);
  const dst = await kernel_bo(test, adev, BO_SIZE, p.dst);
  const data = pattern(BO_SIZE, 7);
  src.cpu.memcpy_to(0, data);
  const got = new Uint8Array(10 * MiB + 8);
  let bad = 0;
  for (const size of SIZES) {
    for (const [so, d] of OFFSETS) {
      const doff = d + 8;
      dst.cpu.memset(0, 0xee, size + doff + 8);
      const r = await sdma_copy(adev, src.gpu_addr + so, dst.gpu_addr + doff, size);
      KUNIT_ASSERT_EQ(test, r, 0, `copy of ${size} bytes failed`);
      dst.cpu.memcpy_from(got, doff - 1, size + 2);
      const ok = got[0] === 0xee && got[size + 1] === 0xee && data.subarray(so, so + size).every((b, i) => got[i + 1] === b);
      if (!ok) {
        bad++;
        test.log.push(`# ${p.name}: size ${size} src+${so} dst+${doff} mismatch`);
      }
    }
  }
  KUNIT_EXPECT_EQ(test, bad, 0);
  KUNIT_EXPECT_TRUE(test, get_gpu_hw(test).sdma[0]!.stats.errors === 0);
}

/** System pages with no GPU address, mapped into GART window 0 by an SDMA PTE copy. */
async function copy_through_gart_window(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const k = test.k;
  const npages = AMDGPU_GTT_MAX_TRANSFER_SIZE;
  const pages: page[] = [];
  for (let i = 0; i < npages; i++) {
    // Scattered pages: every other allocation is given back, so the set is not contiguous.
    const p = alloc_pages(k, GFP_KERNEL, 0)!;
    const hole = alloc_pages(k, GFP_KERNEL, 0)!;
    pages.push(p);
    test.add_action(() => __free_pages(hole, 0));
  }
  test.add_action(() => pages.forEach((p) => __free_pages(p, 0)));
  const ram = NODE_DATA(k).physmem;
  const data = pattern(npages * 4096, 3);
  pages.forEach((p, i) => ram.write(p.pfn * 4096, data, i * 4096, 4096));
  const vram = await kernel_bo(test, adev, npages * 4096, AMDGPU_GEM_DOMAIN_VRAM);
  const ring = adev.mman.buffer_funcs_ring!;
  const f = await amdgpu_ttm_write_window_ptes(adev, ring, 0, pages.map((p) => p.pfn * 4096), amdgpu_gart_system_flags(adev, false));
  KUNIT_ASSERT_TRUE(test, typeof f !== "number");
  KUNIT_ASSERT_EQ(test, await wait_fence(f as never), 0);
  // RAM → VRAM through the window (the copy job flushes VMID 0's TLB first).
  KUNIT_ASSERT_EQ(test, await sdma_copy(adev, adev.gmc.gart_start, vram.gpu_addr, npages * 4096), 0);
  const got = new Uint8Array(npages * 4096);
  vram.cpu.memcpy_from(got, 0);
  KUNIT_EXPECT_TRUE(test, got.every((b, i) => b === data[i]), "VRAM holds the scattered pages in order");
  // And back, VRAM → RAM, after changing the VRAM copy.
  const data2 = pattern(npages * 4096, 4);
  vram.cpu.memcpy_to(0, data2);
  KUNIT_ASSERT_EQ(test, await sdma_copy(adev, vram.gpu_addr, adev.gmc.gart_start, npages * 4096), 0);
  let mismatches = 0;
  pages.forEach((p, i) => {
    const f4k = ram.read(p.pfn * 4096, 4096);
    if (!f4k.every((b, j) => b === data2[i * 4096 + j])) mismatches++;
  });
  KUNIT_EXPECT_EQ(test, mismatches, 0);
}

/** amdgpu_fill_buffer(): CONST_FILL of a dword pattern over a non-contiguous VRAM BO. */
async function fill_buffer(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const bo = await user_bo(test, adev, 6 * MiB, AMDGPU_GEM_DOMAIN_VRAM, false);
  const f = await amdgpu_fill_buffer(bo, 0xa5c3e1f0, null);
  KUNIT_ASSERT_TRUE(test, typeof f !== "number");
  KUNIT_ASSERT_EQ(test, await wait_fence(f as never), 0);
  const probe = await kernel_bo(test, adev, 4096, AMDGPU_GEM_DOMAIN_GTT);
  // Read back a page at each end and in the middle through SDMA (the BO is not CPU-mappable).
  for (const off of [0, 3 * MiB + 4096, 6 * MiB - 4096]) {
    const cur = bo.tbo.resource!;
    const c = new amdgpu_res_cursor();
    amdgpu_res_first(cur, off, 4096, c);
    KUNIT_ASSERT_EQ(test, await sdma_copy(adev, adev.gmc.vram_start + c.start, probe.gpu_addr, 4096), 0);
    let ok = true;
    for (let i = 0; i < 1024; i++) if (probe.cpu.rd32(i * 4) !== 0xa5c3e1f0) ok = false;
    KUNIT_EXPECT_TRUE(test, ok, `fill pattern at +${off}`);
  }
  KUNIT_EXPECT_TRUE(test, amdgpu_bo_gpu_offset(bo) > 0);
}

export const amdgpu_sdma_test_suite: kunit_suite = {
  name: "amdgpu_sdma",
  machine: gpu_machine("gfx90a", 256 * MiB),
  test_cases: [
    KUNIT_CASE_PARAM(copy_size_classes, KUNIT_ARRAY_PARAM(PATHS, (p) => p.name)),
    KUNIT_CASE(copy_through_gart_window),
    KUNIT_CASE(fill_buffer),
  ],
};

export const amdgpu_sdma_v5_test_suite: kunit_suite = {
  name: "amdgpu_sdma_v5",
  machine: gpu_machine("navi10", 128 * MiB),
  test_cases: [
    KUNIT_CASE_PARAM(copy_size_classes, KUNIT_ARRAY_PARAM(PATHS.slice(1, 3), (p) => p.name)),
    KUNIT_CASE(copy_through_gart_window),
  ],
};

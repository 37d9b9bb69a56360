// kemu benchmark for the SDMA copy path (not kernel code): 1 GiB copied VRAM→VRAM in 2 MiB
// pieces through the whole driver stack — amdgpu_copy_buffer() builds a job per piece, the IB
// goes to the SDMA ring, the engine model decodes COPY_LINEAR and moves the bytes through the
// hub translation into sparse VRAM, FENCE/TRAP signal the job — measured in host time next to a
// plain TypedArray.set() of the same bytes in the same run (the floor any emulated copy has).
// Also 256 MiB of system RAM → VRAM through GART windows (amdgpu_ttm_copy_mem_to_mem, the path
// KFD migrations take) and the virtual time the cost model charged for the VRAM copy.

import type { BenchResult } from "./run.ts";
import { boot } from "../kernel/boot.ts";
import { GiB, MiB } from "../kernel/machine_spec.ts";
import { MODULES } from "../kernel/tokens.ts";
import type { AmdgpuModule } from "../drivers/gpu/drm/amd/amdgpu/amdgpu_drv.ts";
import type { amdgpu_device } from "../drivers/gpu/drm/amd/amdgpu/amdgpu.ts";
import {
  amdgpu_bo_create, amdgpu_bo_create_kernel, amdgpu_bo_kmap, amdgpu_bo_free_kernel, amdgpu_bo_unref, AMDGPU_GEM_DOMAIN_GTT, AMDGPU_GEM_DOMAIN_VRAM,
  type amdgpu_kernel_bo, type amdgpu_bo,
} from "../drivers/gpu/drm/amd/amdgpu/amdgpu_object.ts";
import { amdgpu_copy_buffer, amdgpu_ttm_copy_mem_to_mem } from "../drivers/gpu/drm/amd/amdgpu/amdgpu_ttm.ts";
import { dma_fence_put, dma_fence_wait, type dma_fence } from "../drivers/dma-buf/dma-fence.ts";
import { ttm_bo_type } from "../drivers/gpu/drm/ttm/ttm_bo.ts";
import { ttm_tt_populate } from "../drivers/gpu/drm/ttm/ttm_tt.ts";

const TOTAL = 1 * GiB;
const PIECE = 2 * MiB;
const GTT_TOTAL = 256 * MiB;

function fill_pattern(buf: Uint8Array, seed: number): void {
  const w = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  for (let i = 0; i < w.length; i++) w[i] = (Math.imul(i, 2654435761) ^ seed) >>> 0;
}

/** Copies TOTAL bytes src→dst in PIECE jobs, all queued, waits for the last; host ms and virtual ns. */
async function sdma_pass(adev: amdgpu_device, src: number, dst: number): Promise<{ ms: number; virt_ns: number }> {
  const ring = adev.mman.buffer_funcs_ring!;
  const k = adev.k;
  const fences: dma_fence[] = [];
  const v0 = k.ktime_get();
  const t0 = performance.now();
  for (let off = 0; off < TOTAL; off += PIECE) {
    const f = await amdgpu_copy_buffer(ring, src + off, dst + off, PIECE, null, false);
    if (typeof f === "number") throw new Error(`amdgpu_copy_buffer: ${f}`);
    fences.push(f);
  }
  for (const f of fences) {
    if (await dma_fence_wait(f, false)) throw new Error("fence wait");
    if (f.error) throw new Error(`copy failed: ${f.error}`);
    dma_fence_put(f);
  }
  return { ms: performance.now() - t0, virt_ns: k.ktime_get() - v0 };
}

/** The same bytes with TypedArray.set, piece by piece, into an already touched destination. */
function raw_pass(src: Uint8Array, dst: Uint8Array): number {
  const t0 = performance.now();
  for (let off = 0; off < TOTAL; off += PIECE) dst.set(src.subarray(off, off + PIECE), off);
  return performance.now() - t0;
}

function check(adev_src: amdgpu_kernel_bo, adev_dst: amdgpu_kernel_bo, n: number): void {
  const a = new Uint8Array(4096);
  const b = new Uint8Array(4096);
  for (let off = 0; off < n; off += 37 * MiB + 4096) {
    adev_src.cpu.memcpy_from(a, off);
    adev_dst.cpu.memcpy_from(b, off);
    for (let i = 0; i < 4096; i++) if (a[i] !== b[i]) throw new Error(`copy mismatch at ${off + i}`);
  }
}

export async function run(): Promise<BenchResult[]> {
  const m = await boot({ name: "bench-sdma", ram_size: 4 * GiB, gpus: [{ asic: "gfx90a", vram_size: 4 * GiB }], iommu: false, seed: 0 });
  const out: BenchResult[] = [];
  try {
    await m.run_kthread("bench/sdma", async () => {
      const adev = (m.symbol(MODULES).find_module("amdgpu")!.instance as AmdgpuModule).devices[0]!;
      const src = await amdgpu_bo_create_kernel(adev, TOTAL, PIECE, AMDGPU_GEM_DOMAIN_VRAM);
      const dst = await amdgpu_bo_create_kernel(adev, TOTAL, PIECE, AMDGPU_GEM_DOMAIN_VRAM);
      if (typeof src === "number" || typeof dst === "number") throw new Error("VRAM BOs");
      const piece = new Uint8Array(PIECE);
      for (let off = 0; off < TOTAL; off += PIECE) {
        fill_pattern(piece, off);
        src.cpu.memcpy_to(off, piece);
      }
      // First pass: the destination's sparse frames are allocated as it goes.
      const cold = await sdma_pass(adev, src.gpu_addr, dst.gpu_addr);
      check(src, dst, TOTAL);
      // Then SDMA and TypedArray.set passes alternate, best of three each, so both see the same
      // host conditions (other load, caches).
      const rsrc = new Uint8Array(TOTAL);
      for (let off = 0; off < TOTAL; off += PIECE) fill_pattern(rsrc.subarray(off, off + PIECE), off);
      const rdst = new Uint8Array(TOTAL).fill(1);
      raw_pass(rsrc, rdst);
      let warm = { ms: Infinity, virt_ns: 0 };
      let raw = Infinity;
      for (let i = 0; i < 3; i++) {
        const w = await sdma_pass(adev, src.gpu_addr, dst.gpu_addr);
        if (w.ms < warm.ms) warm = w;
        raw = Math.min(raw, raw_pass(rsrc, rdst));
      }

      const gbps = (ms: number) => TOTAL / 1e9 / (ms / 1e3);
      out.push({ metric: "sdma_copy_1GiB_2MiB_pieces", value: gbps(warm.ms), unit: "GB/s host", baseline: gbps(raw),
        note: `VRAM→VRAM, ${TOTAL / PIECE} jobs; baseline = TypedArray.set of the same pieces; ${(raw / warm.ms * 100).toFixed(0)}% of raw` });
      out.push({ metric: "sdma_copy_1GiB_first_touch", value: gbps(cold.ms), unit: "GB/s host", note: "destination frames allocated during the copy" });
      out.push({ metric: "sdma_copy_1GiB_virtual", value: TOTAL / warm.virt_ns, unit: "GB/s virtual", note: `cost model: ${(warm.virt_ns / 1e6).toFixed(1)} ms of virtual time for 1 GiB` });
      await amdgpu_bo_free_kernel(src.bo);
      await amdgpu_bo_free_kernel(dst.bo);

      // System RAM → VRAM through the GART windows, as TTM moves and KFD migrations do.
      const sys = await amdgpu_bo_create(adev, { size: GTT_TOTAL, byte_align: 4096, domain: AMDGPU_GEM_DOMAIN_GTT, type: ttm_bo_type.ttm_bo_type_device, flags: 0 });
      const vram = await amdgpu_bo_create(adev, { size: GTT_TOTAL, byte_align: 4096, domain: AMDGPU_GEM_DOMAIN_VRAM, type: ttm_bo_type.ttm_bo_type_device, flags: 0 });
      if (typeof sys === "number" || typeof vram === "number") throw new Error("BOs");
      const fill = new Uint8Array(PIECE);
      const map = amdgpu_bo_kmap(sys);
      if (typeof map === "number") throw new Error("kmap");
      for (let off = 0; off < GTT_TOTAL; off += PIECE) {
        fill_pattern(fill, off);
        map.memcpy_to(off, fill);
      }
      await gart_pass(adev, sys, vram);
      const gtt = await gart_pass(adev, sys, vram);
      out.push({ metric: "sdma_copy_256MiB_ram_to_vram_gart", value: GTT_TOTAL / 1e9 / (gtt / 1e3), unit: "GB/s host",
        note: "amdgpu_ttm_copy_mem_to_mem over scattered RAM pages: GART window PTE jobs + copies (second pass)" });
      amdgpu_bo_unref(sys);
      amdgpu_bo_unref(vram);
    });
  } finally {
    await m.shutdown({ report_only: true });
  }
  return out;
}

async function gart_pass(adev: amdgpu_device, sys: amdgpu_bo, vram: amdgpu_bo): Promise<number> {
  const tt = sys.tbo.ttm;
  if (tt && !tt.populated) await ttm_tt_populate(sys.tbo, tt, adev.mman.bdev.dev);
  const t0 = performance.now();
  const f = await amdgpu_ttm_copy_mem_to_mem(adev, { bo: sys.tbo, mem: sys.tbo.resource!, offset: 0 },
    { bo: vram.tbo, mem: vram.tbo.resource!, offset: 0 }, GTT_TOTAL, null);
  if (typeof f === "number") throw new Error(`copy_mem_to_mem: ${f}`);
  await dma_fence_wait(f, false);
  dma_fence_put(f);
  return performance.now() - t0;
}

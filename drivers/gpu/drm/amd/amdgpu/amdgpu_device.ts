// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_device.c (Linux 6.8): register access (direct MMIO
// inside the BAR, the PCIE_INDEX2/DATA2 pair beyond it), doorbells, the writeback page, device
// init (asic identity, early_init → sw_init with the GMC brought up first → hw_init in two
// phases → late_init and IB tests) and teardown in reverse, and GPU recovery after a hang.

import type { amdgpu_device } from "./amdgpu.ts";
import { amd_asic_type, amd_ip_block_type, ip_version } from "./amdgpu.ts";
import { amdgpu_bo_create_kernel, amdgpu_bo_free_kernel, AMDGPU_GEM_DOMAIN_GTT, type amdgpu_bo } from "./amdgpu_object.ts";
import { amdgpu_irq } from "./amdgpu_irq.ts";
import { amdgpu_gmc } from "./amdgpu_gmc.ts";
import { amdgpu_gart } from "./amdgpu_gart.ts";
import { amdgpu_mman, amdgpu_ttm_set_buffer_funcs_status } from "./amdgpu_ttm.ts";
import { amdgpu_sdma } from "./amdgpu_sdma.ts";
import { amdgpu_gfx } from "./amdgpu_gfx.ts";
import { amdgpu_vm_manager } from "./amdgpu_vm.ts";
import { amdgpu_kfd_dev } from "./amdgpu_amdkfd.ts";
import { amdgpu_ib_pool_fini, amdgpu_ib_pool_init, amdgpu_ib_ring_tests } from "./amdgpu_ib.ts";
import {
  amdgpu_fence_driver_force_completion, amdgpu_fence_driver_hw_fini, amdgpu_fence_driver_hw_init,
  amdgpu_fence_driver_sw_fini,
} from "./amdgpu_fence.ts";
import type { amdgpu_ring } from "./amdgpu_ring.ts";
import type { amdgpu_job } from "./amdgpu_job.ts";
import { amdgpu_job_pending, amdgpu_job_stop_timeout } from "./amdgpu_job.ts";
import { soc15_set_ip_blocks } from "./soc15.ts";
import { nv_set_ip_blocks } from "./nv.ts";
import { amdgpu_irq_gpu_reset_resume_helper } from "./amdgpu_irq.ts";
import type { iosys_map } from "../../../../../include/linux/iosys-map.ts";
import { pci_ioremap_bar } from "../../../../pci/pci.ts";
import { pci_resource_len, pci_resource_start } from "../../../../../include/linux/pci.ts";
import { mutex, mutex_lock, mutex_unlock } from "../../../../../kernel/locking/mutex.ts";
import { spinlock_t } from "../../../../../kernel/locking/spinlock.ts";
import { EINVAL, ENODEV, ETIME } from "../../../../../include/uapi/asm-generic/errno.ts";
import { mmHDP_MEM_COHERENCY_FLUSH_CNTL, mmPCIE_DATA2, mmPCIE_INDEX2 } from "../include/asic_reg/kemu_gpu_regs.ts";
import { dma_fence_set_error, dma_fence_is_signaled } from "../../../../dma-buf/dma-fence.ts";

/** Writeback slots (each 8 dwords) in the writeback page (AMDGPU_MAX_WB). */
export const AMDGPU_MAX_WB = 256;

export class amdgpu_wb {
  wb_obj: amdgpu_bo | null = null;
  gpu_addr = 0;
  cpu: iosys_map | null = null;
  num_wb = AMDGPU_MAX_WB;
  readonly used: boolean[] = new Array<boolean>(AMDGPU_MAX_WB).fill(false);
}

// ---- register and doorbell access ----------------------------------------------------------

/** amdgpu_device_rreg(): MMIO inside the register BAR, indirect (PCIE_INDEX2/DATA2) beyond it. */
export function RREG32(adev: amdgpu_device, reg: number): number {
  if (reg * 4 < adev.rmmio_size) return adev.rmmio.readl(reg * 4);
  adev.rmmio.writel(reg * 4, mmPCIE_INDEX2 * 4);
  return adev.rmmio.readl(mmPCIE_DATA2 * 4);
}

/** amdgpu_device_wreg() */
export function WREG32(adev: amdgpu_device, reg: number, v: number): void {
  if (reg * 4 < adev.rmmio_size) {
    adev.rmmio.writel(v >>> 0, reg * 4);
    return;
  }
  adev.rmmio.writel(reg * 4, mmPCIE_INDEX2 * 4);
  adev.rmmio.writel(v >>> 0, mmPCIE_DATA2 * 4);
}

/** WREG32_P(): read-modify-write keeping the bits in `mask`. */
export function WREG32_P(adev: amdgpu_device, reg: number, val: number, mask: number): void {
  const tmp = (RREG32(adev, reg) & mask) | (val & ~mask);
  WREG32(adev, reg, tmp >>> 0);
}

/** WDOORBELL64(): one 64-bit doorbell write at dword index `index`. */
export function WDOORBELL64(adev: amdgpu_device, index: number, v: number): void {
  adev.doorbell_ptr.writeq(v % 2 ** 32, Math.floor(v / 2 ** 32), index * 4);
}

export function WDOORBELL32(adev: amdgpu_device, index: number, v: number): void {
  adev.doorbell_ptr.writel(v, index * 4);
}

/** amdgpu_device_flush_hdp(): make CPU writes through the BAR visible to the GPU. */
export function amdgpu_device_flush_hdp(adev: amdgpu_device): void {
  WREG32(adev, mmHDP_MEM_COHERENCY_FLUSH_CNTL, 0);
}

// ---- writeback memory -----------------------------------------------------------------------

/** amdgpu_device_wb_init(): a GTT page the GPU writes pointers and fences to. */
async function amdgpu_device_wb_init(adev: amdgpu_device): Promise<number> {
  const wb = adev.wb;
  if (wb.wb_obj) return 0;
  const k = await amdgpu_bo_create_kernel(adev, AMDGPU_MAX_WB * 8 * 4, 4096, AMDGPU_GEM_DOMAIN_GTT);
  if (typeof k === "number") {
    adev.k.dev_warn(adev, `(${k}) create WB bo failed`);
    return k;
  }
  wb.wb_obj = k.bo;
  wb.gpu_addr = k.gpu_addr;
  wb.cpu = k.cpu;
  wb.cpu.memset(0, 0, AMDGPU_MAX_WB * 32);
  return 0;
}

function amdgpu_device_wb_fini(adev: amdgpu_device): void {
  if (adev.wb.wb_obj) amdgpu_bo_free_kernel(adev.wb.wb_obj);
  adev.wb.wb_obj = null;
  adev.wb.cpu = null;
}

/** amdgpu_device_wb_get(): a free slot's dword index, or -EINVAL. */
export function amdgpu_device_wb_get(adev: amdgpu_device): number {
  const i = adev.wb.used.indexOf(false);
  if (i < 0) return -EINVAL;
  adev.wb.used[i] = true;
  return i * 8;
}

export function amdgpu_device_wb_free(adev: amdgpu_device, wb: number): void {
  const i = Math.floor(wb / 8);
  if (i < adev.wb.num_wb) adev.wb.used[i] = false;
}

// ---- init ---------------------------------------------------------------------------------

/** The asic names and gfx targets the driver reports. */
function amdgpu_asic_identity(adev: amdgpu_device, asic: amd_asic_type): number {
  adev.asic_type = asic;
  if (asic === amd_asic_type.CHIP_ALDEBARAN) {
    adev.asic_name = "aldebaran";
    adev.gfx_target = "gfx90a";
    adev.ip_versions = { gc: [9, 4, 2], sdma: [4, 4, 0], mmhub: [1, 7, 0], oss: [4, 4, 0] };
    return 0;
  }
  if (asic === amd_asic_type.CHIP_CARRIZO) {
    // kemu models the Carrizo APU with its GFX9-style register set (hw/amdgpu/asic.ts), so the
    // soc15 IP blocks drive it; the identity is Carrizo's (GC 8.0.1, VI-era SDMA 3.0 / OSS 3.0).
    adev.asic_name = "carrizo";
    adev.gfx_target = "gfx801";
    adev.ip_versions = { gc: [8, 0, 1], sdma: [3, 0, 0], mmhub: [0, 0, 0], oss: [3, 0, 0] };
    return 0;
  }
  if (asic === amd_asic_type.CHIP_NAVI10) {
    adev.asic_name = "navi10";
    adev.gfx_target = "gfx1010";
    adev.ip_versions = { gc: [10, 1, 10], sdma: [5, 0, 0], mmhub: [2, 0, 0], oss: [5, 0, 0] };
    return 0;
  }
  return -ENODEV;
}

/** amdgpu_device_ip_early_init(): picks the IP blocks of the asic and runs their early_init. */
async function amdgpu_device_ip_early_init(adev: amdgpu_device): Promise<number> {
  const r = adev.asic_type === amd_asic_type.CHIP_NAVI10 ? nv_set_ip_blocks(adev) : soc15_set_ip_blocks(adev);
  if (r) return r;
  for (const b of adev.ip_blocks) {
    const f = b.version.funcs.early_init;
    const e = f ? await f(adev) : 0;
    if (e === -ENODEV) continue;
    if (e) {
      adev.k.pr_err(`[drm] *ERROR* early_init of IP block <${b.version.funcs.name}> failed ${e}`);
      return e;
    }
    b.status.valid = true;
  }
  return 0;
}

/** amdgpu_device_ip_init(): sw_init of every block (GMC hardware first), then hw_init in two phases. */
async function amdgpu_device_ip_init(adev: amdgpu_device): Promise<number> {
  for (const b of adev.ip_blocks) {
    if (!b.status.valid) continue;
    const sw = b.version.funcs.sw_init;
    let r = sw ? await sw(adev) : 0;
    if (r) {
      adev.k.pr_err(`[drm] *ERROR* sw_init of IP block <${b.version.funcs.name}> failed ${r}`);
      return r;
    }
    b.status.sw = true;
    if (b.version.type === amd_ip_block_type.AMD_IP_BLOCK_TYPE_GMC) {
      // GPU memory (GART, VRAM BOs) is needed by everything after: bring the GMC up now.
      r = (await b.version.funcs.hw_init?.(adev)) ?? 0;
      if (r) return r;
      r = await amdgpu_device_wb_init(adev);
      if (r) return r;
      b.status.hw = true;
    }
  }
  const r = await amdgpu_ib_pool_init(adev);
  if (r) {
    adev.k.dev_err(adev, `IB initialization failed (${r}).`);
    return r;
  }
  const phase1 = [amd_ip_block_type.AMD_IP_BLOCK_TYPE_COMMON, amd_ip_block_type.AMD_IP_BLOCK_TYPE_IH];
  for (const phase of [phase1, null]) {
    for (const b of adev.ip_blocks) {
      if (!b.status.sw || b.status.hw) continue;
      if (phase && !phase.includes(b.version.type)) continue;
      const e = (await b.version.funcs.hw_init?.(adev)) ?? 0;
      if (e) {
        adev.k.pr_err(`[drm] *ERROR* hw_init of IP block <${b.version.funcs.name}> failed ${e}`);
        return e;
      }
      b.status.hw = true;
    }
  }
  return 0;
}

async function amdgpu_device_ip_late_init(adev: amdgpu_device): Promise<number> {
  for (const b of adev.ip_blocks) {
    if (!b.status.hw) continue;
    const r = (await b.version.funcs.late_init?.(adev)) ?? 0;
    if (r) {
      adev.k.pr_err(`[drm] *ERROR* late_init of IP block <${b.version.funcs.name}> failed ${r}`);
      return r;
    }
    b.status.late_initialized = true;
  }
  return 0;
}

/**
 * amdgpu_device_init(): maps the BARs, builds the per-subsystem state and brings every IP block
 * up. Returns 0 or the first error (the caller then tears down with amdgpu_device_fini_*).
 */
export async function amdgpu_device_init(adev: amdgpu_device, asic: amd_asic_type): Promise<number> {
  let r = amdgpu_asic_identity(adev, asic);
  if (r) return r;
  adev.k.dev_info(adev, `initializing kernel modesetting (${adev.asic_name.toUpperCase()} 0x1002:0x${adev.pdev.device.toString(16).toUpperCase()} 0x1002:0x${adev.pdev.subsystem_device.toString(16).toUpperCase()} 0x${adev.pdev.revision.toString(16).toUpperCase().padStart(2, "0")}).`);
  adev.reset_domain_sem = new mutex(adev.k, "&adev->reset_domain->sem");
  adev.srbm_mutex = new mutex(adev.k, "&adev->srbm_mutex");
  adev.irq = new amdgpu_irq(adev);
  adev.gmc = new amdgpu_gmc();
  adev.gmc.invalidate_lock = new spinlock_t(adev.k, "&adev->gmc.invalidate_lock");
  adev.gart = new amdgpu_gart();
  adev.mman = new amdgpu_mman();
  adev.sdma = new amdgpu_sdma();
  adev.gfx = new amdgpu_gfx();
  adev.vm_manager = new amdgpu_vm_manager(adev);
  adev.wb = new amdgpu_wb();
  adev.kfd = new amdgpu_kfd_dev();
  const mmio = pci_ioremap_bar(adev.pdev, 4);
  const db = pci_ioremap_bar(adev.pdev, 2);
  if (typeof mmio === "number" || typeof db === "number") return -ENODEV;
  adev.rmmio = mmio;
  adev.rmmio_base = pci_resource_start(adev.pdev, 4);
  adev.rmmio_size = pci_resource_len(adev.pdev, 4);
  adev.doorbell_ptr = db;
  adev.doorbell_base = pci_resource_start(adev.pdev, 2);
  adev.doorbell_size = pci_resource_len(adev.pdev, 2);
  adev.k.dev_info(adev, `register mmio base: 0x${adev.rmmio_base.toString(16).toUpperCase()}`);
  adev.k.dev_info(adev, `register mmio size: ${adev.rmmio_size}`);
  r = await amdgpu_device_ip_early_init(adev);
  if (r) return r;
  r = await amdgpu_device_ip_init(adev);
  if (r) {
    adev.k.dev_err(adev, `amdgpu_device_ip_init failed`);
    return r;
  }
  amdgpu_fence_driver_hw_init(adev);
  r = await amdgpu_device_ip_late_init(adev);
  if (r) return r;
  r = await amdgpu_ib_ring_tests(adev);
  if (r) adev.k.dev_err(adev, `ib ring test failed (${r}).`);
  adev.accel_working = true;
  adev.k.dev_info(adev, `SE 1, SH per SE 1, CU per SH 1, active_cu_number 1`);
  return 0;
}

/** amdgpu_device_fini_hw(): fences idle, hardware of every block off (reverse order). */
export async function amdgpu_device_fini_hw(adev: amdgpu_device): Promise<void> {
  for (const ring of adev.rings) await amdgpu_job_stop_timeout(ring);
  await amdgpu_fence_driver_hw_fini(adev);
  adev.shutdown = true;
  await amdgpu_ttm_set_buffer_funcs_status(adev, false);
  for (const b of [...adev.ip_blocks].reverse()) {
    if (!b.status.hw) continue;
    const r = (await b.version.funcs.hw_fini?.(adev)) ?? 0;
    if (r) adev.k.pr_debug(`hw_fini of IP block <${b.version.funcs.name}> failed ${r}`);
    b.status.hw = false;
  }
}

/** amdgpu_device_fini_sw(): software state of every block (reverse), then the common pools. */
export async function amdgpu_device_fini_sw(adev: amdgpu_device): Promise<void> {
  amdgpu_fence_driver_sw_fini(adev);
  for (const b of [...adev.ip_blocks].reverse()) {
    if (!b.status.sw) continue;
    if (b.version.type === amd_ip_block_type.AMD_IP_BLOCK_TYPE_GMC) {
      amdgpu_ib_pool_fini(adev);
      amdgpu_device_wb_fini(adev);
    }
    await b.version.funcs.sw_fini?.(adev);
    b.status.sw = false;
    b.status.valid = false;
  }
}

/**
 * amdgpu_device_gpu_recover(): after a job timeout. Unfinished fences of the hung ring get
 * -ETIME and are force-completed, the rings' IP blocks go through hw_fini/hw_init (a soft
 * reset), interrupts are re-programmed. kemu resets the whole set of blocks except the GMC
 * and IH, which keep their state (the kernel chooses between per-IP and full-ASIC reset).
 */
export async function amdgpu_device_gpu_recover(adev: amdgpu_device, ring: amdgpu_ring, job: amdgpu_job): Promise<number> {
  await mutex_lock(adev.reset_domain_sem);
  try {
    if (job.hw_fence && dma_fence_is_signaled(job.hw_fence)) return 0;
    adev.in_gpu_reset = true;
    adev.k.dev_info(adev, `GPU reset begin!`);
    for (const r of adev.rings) r.sched.ready = false;
    if (job.hw_fence && !dma_fence_is_signaled(job.hw_fence)) dma_fence_set_error(job.hw_fence, -ETIME);
    for (const r of adev.rings) {
      amdgpu_fence_driver_force_completion(r, r === ring ? -ETIME : 0);
      if (amdgpu_job_pending(r).length) adev.k.pr_debug(`[drm] ring ${r.name}: ${amdgpu_job_pending(r).length} jobs cleared`);
    }
    let err = 0;
    const keep = [amd_ip_block_type.AMD_IP_BLOCK_TYPE_COMMON, amd_ip_block_type.AMD_IP_BLOCK_TYPE_GMC, amd_ip_block_type.AMD_IP_BLOCK_TYPE_IH];
    for (const b of [...adev.ip_blocks].reverse()) {
      if (keep.includes(b.version.type) || !b.status.hw) continue;
      await b.version.funcs.hw_fini?.(adev);
    }
    for (const b of adev.ip_blocks) {
      if (keep.includes(b.version.type) || !b.status.hw) continue;
      const r = (await b.version.funcs.hw_init?.(adev)) ?? 0;
      if (r) err = r;
    }
    amdgpu_irq_gpu_reset_resume_helper(adev);
    adev.gpu_reset_counter++;
    adev.in_gpu_reset = false;
    if (err) {
      adev.k.dev_err(adev, `GPU reset(${adev.gpu_reset_counter}) failed`);
      return err;
    }
    adev.k.dev_info(adev, `GPU reset(${adev.gpu_reset_counter}) succeeded!`);
    return 0;
  } finally {
    mutex_unlock(adev.reset_domain_sem);
  }
}

/** IP version checks the blocks use (amdgpu_ip_version(adev, GC_HWIP, 0) >= IP_VERSION(...)). */
export function amdgpu_gc_version(adev: amdgpu_device): number {
  return ip_version(adev.ip_versions.gc);
}

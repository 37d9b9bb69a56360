// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu.h and include/amd_shared.h (Linux 6.8): struct
// amdgpu_device, the IP block interface (amd_ip_funcs, amdgpu_ip_block_version) and the asic
// identities. The per-subsystem state hangs off the device as in the kernel (irq, gmc, gart,
// mman, sdma, gfx, vm_manager, wb, kfd); each lives with the file that owns it.

import type { Kernel, DevPrintTarget } from "../../../../../kernel/kernel.ts";
import type { Workqueues } from "../../../../../kernel/workqueue.ts";
import type { Tracing } from "../../../../../kernel/trace/trace.ts";
import type { pci_dev } from "../../../../../include/linux/pci.ts";
import type { iomem } from "../../../../../include/asm-generic/io.ts";
import type { device, DriverCore } from "../../../../base/core.ts";
import type { IrqCore } from "../../../../../kernel/irq/manage.ts";
import type { CharDevices } from "../../../../../fs/char_dev.ts";
import type { amdgpu_irq } from "./amdgpu_irq.ts";
import type { amdgpu_gmc, amdgpu_vmhub } from "./amdgpu_gmc.ts";
import type { amdgpu_gart } from "./amdgpu_gart.ts";
import type { amdgpu_mman } from "./amdgpu_ttm.ts";
import type { amdgpu_ring } from "./amdgpu_ring.ts";
import type { amdgpu_sdma } from "./amdgpu_sdma.ts";
import type { amdgpu_vm_manager } from "./amdgpu_vm.ts";
import type { amdgpu_wb } from "./amdgpu_device.ts";
import type { amdgpu_gfx } from "./amdgpu_gfx.ts";
import type { amdgpu_kfd_dev } from "./amdgpu_amdkfd.ts";
import type { amdgpu_ib_pool } from "./amdgpu_ib.ts";
import type { mutex } from "../../../../../kernel/locking/mutex.ts";
import type { drm_device } from "../../drm_drv.ts";
import type { dma_coherent } from "../../../../../kernel/dma/mapping.ts";

// ---- amd_shared.h ----------------------------------------------------------------------------

export enum amd_asic_type {
  CHIP_CARRIZO = 13,
  CHIP_VEGA10 = 27,
  CHIP_ALDEBARAN = 37,
  CHIP_NAVI10 = 32,
}

/** enum amd_chip_flags: the asic type sits in the low 16 bits of a pciidlist entry's driver_data. */
export const AMD_ASIC_MASK = 0xffff;
export const AMD_IS_APU = 0x20000;

export enum amd_ip_block_type {
  AMD_IP_BLOCK_TYPE_COMMON,
  AMD_IP_BLOCK_TYPE_GMC,
  AMD_IP_BLOCK_TYPE_IH,
  AMD_IP_BLOCK_TYPE_SMC,
  AMD_IP_BLOCK_TYPE_PSP,
  AMD_IP_BLOCK_TYPE_DCE,
  AMD_IP_BLOCK_TYPE_GFX,
  AMD_IP_BLOCK_TYPE_SDMA,
}

/** amd_ip_funcs: the lifecycle every IP block implements (may sleep: kemu makes them async). */
export interface amd_ip_funcs {
  name: string;
  early_init?(adev: amdgpu_device): Promise<number> | number;
  late_init?(adev: amdgpu_device): Promise<number> | number;
  sw_init?(adev: amdgpu_device): Promise<number> | number;
  sw_fini?(adev: amdgpu_device): Promise<number> | number;
  hw_init?(adev: amdgpu_device): Promise<number> | number;
  hw_fini?(adev: amdgpu_device): Promise<number> | number;
  is_idle?(adev: amdgpu_device): boolean;
  wait_for_idle?(adev: amdgpu_device): Promise<number> | number;
}

export interface amdgpu_ip_block_version {
  type: amd_ip_block_type;
  major: number;
  minor: number;
  rev: number;
  funcs: amd_ip_funcs;
}

export class amdgpu_ip_block_status {
  valid = false;
  sw = false;
  hw = false;
  late_initialized = false;
}

export class amdgpu_ip_block {
  readonly status = new amdgpu_ip_block_status();
  constructor(readonly version: amdgpu_ip_block_version) {}
}

/** AMDGPU_MAX_RINGS and friends. */
export const AMDGPU_MAX_RINGS = 28;
export const AMDGPU_MAX_SDMA_INSTANCES = 8;
export const AMDGPU_MAX_VMHUBS = 2;
export const AMDGPU_GFXHUB_0 = 0;
export const AMDGPU_MMHUB_0 = 1;

/** Doorbell assignments (dword indices, amdgpu_doorbell.h soc15 layout, reduced). */
export interface amdgpu_doorbell_index {
  kiq: number;
  mec_ring0: number;
  sdma_engine: number[];
  ih: number;
  /** First doorbell handed to user queues (KFD). */
  first_non_cp: number;
  max_assignment: number;
}

/** IP versions the driver branches on (amdgpu_ip_version / IP_VERSION). */
export interface amdgpu_ip_versions {
  gc: readonly [number, number, number];
  sdma: readonly [number, number, number];
  mmhub: readonly [number, number, number];
  oss: readonly [number, number, number];
}

export function IP_VERSION(maj: number, min: number, rev: number): number {
  return maj * 65536 + min * 256 + rev;
}

export function ip_version(v: readonly [number, number, number]): number {
  return IP_VERSION(v[0], v[1], v[2]);
}

/** Module parameters of amdgpu (amdgpu_drv.c) the driver reads. */
export interface amdgpu_params {
  /** amdgpu.noretry: -1 auto, 0 retry (XNACK) faults on, 1 off. */
  noretry: number;
  /** amdgpu.vm_fault_stop: 0 never stop on a VM fault. */
  vm_fault_stop: number;
  /** amdgpu.lockup_timeout for SDMA/compute jobs, ms. */
  lockup_timeout: number;
  /** amdgpu.gartsize in MiB (-1 auto: 512). */
  gartsize: number;
}

/** The kernel services the driver reaches (in the kernel: global symbols of other subsystems). */
export interface amdgpu_services {
  wq: Workqueues;
  trace: Tracing;
  irq: IrqCore;
  chrdev: CharDevices;
  core: DriverCore;
}

export class amdgpu_device implements DevPrintTarget {
  asic_type: amd_asic_type = amd_asic_type.CHIP_ALDEBARAN;
  /** amd_chip_flags of the pciidlist entry (AMD_IS_APU). */
  flags = 0;
  /** "aldebaran", "navi10" (amdgpu_asic_name). */
  asic_name = "";
  /** The part's gfx target ("gfx90a"), as KFD topology reports it. */
  gfx_target = "";
  ip_versions!: amdgpu_ip_versions;
  readonly ip_blocks: amdgpu_ip_block[] = [];

  rmmio!: iomem;
  rmmio_base = 0;
  rmmio_size = 0;
  doorbell_base = 0;
  doorbell_size = 0;
  doorbell_ptr!: iomem;
  doorbell_index!: amdgpu_doorbell_index;

  irq!: amdgpu_irq;
  gmc!: amdgpu_gmc;
  vmhub: amdgpu_vmhub[] = [];
  gart!: amdgpu_gart;
  mman!: amdgpu_mman;
  sdma!: amdgpu_sdma;
  gfx!: amdgpu_gfx;
  vm_manager!: amdgpu_vm_manager;
  wb!: amdgpu_wb;
  kfd!: amdgpu_kfd_dev;
  ib_pools: amdgpu_ib_pool[] = [];
  readonly rings: amdgpu_ring[] = [];

  /** A system page that faulting accesses are redirected to (adev->dummy_page_addr). */
  dummy_page: dma_coherent | null = null;
  dummy_page_addr = 0;
  /** amdgpu_device.usec_timeout: register polls give up after this many microseconds. */
  usec_timeout = 100000;
  /** Job timeouts (amdgpu.lockup_timeout): SDMA and compute rings, ms. */
  sdma_timeout_ms = 10000;
  compute_timeout_ms = 60000;
  shutdown = false;
  in_gpu_reset = false;
  accel_working = false;
  reset_domain_sem!: mutex;
  /** Serialises GRBM_GFX_CNTL selection of banked registers (adev->srbm_mutex). */
  srbm_mutex!: mutex;
  gpu_reset_counter = 0;
  ddev: drm_device | null = null;
  /** Index of this GPU among the machine's amdgpu devices (for render node minors). */
  instance = 0;
  params: amdgpu_params = { noretry: -1, vm_fault_stop: 0, lockup_timeout: 10000, gartsize: -1 };

  constructor(
    readonly k: Kernel,
    readonly pdev: pci_dev,
    readonly svc: amdgpu_services,
  ) {}

  get wq(): Workqueues {
    return this.svc.wq;
  }

  get trace(): Tracing {
    return this.svc.trace;
  }

  get dev(): device {
    return this.pdev.dev;
  }

  dev_name(): string {
    return this.pdev.dev.dev_name();
  }

  driver_name(): string {
    return "amdgpu";
  }
}

/** amdgpu_device_ip_get_ip_block(): the block of a type, or null. */
export function amdgpu_device_ip_get_ip_block(adev: amdgpu_device, type: amd_ip_block_type): amdgpu_ip_block | null {
  return adev.ip_blocks.find((b) => b.version.type === type) ?? null;
}

/** amdgpu_device_ip_block_add(): appends a block and logs it as the kernel does. */
export function amdgpu_device_ip_block_add(adev: amdgpu_device, v: amdgpu_ip_block_version): number {
  adev.ip_blocks.push(new amdgpu_ip_block(v));
  adev.k.dev_info(adev, `detected ip block number ${adev.ip_blocks.length - 1} <${v.funcs.name}>`);
  return 0;
}

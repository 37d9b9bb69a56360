// kemu hardware: an AMD GPU as a PCI function (not a kernel file), in the shape of gem5's
// AMDGPUDevice. BAR0 is the VRAM aperture (64-bit, prefetchable, the whole frame buffer),
// BAR2 the doorbells (64-bit), BAR4 the MMIO registers (64-bit; the real parts use a 32-bit
// BAR5, kemu's PCI window lies above 4 GiB). The register file routes each dword offset to its
// IP block (common/NBIO, GFXHUB, MMHUB, IH, SDMA engines, CP); a doorbell write goes to the
// engine whose doorbell offset matches. VRAM is sparse like system RAM. The VBIOS-level setup —
// where the frame buffer sits in the GPU's MC address space — is fixed at power-on.

import type { Kernel } from "../../kernel/kernel.ts";
import type { GpuSpec } from "../../kernel/machine_spec.ts";
import { PhysMem } from "../physmem.ts";
import type { PciBarDesc, PciDevicePort, PciFunctionModel } from "../pci.ts";
import { asic_by_name, ASICS, type AsicInfo } from "./asic.ts";
import { gpu_cost_model, type GpuCostModel } from "./cost_model.ts";
import { GpuMemBus } from "./mem.ts";
import { IhBlock } from "./ih.ts";
import { VmHub, type McAperture } from "./gmc.ts";
import { SdmaEngine } from "./sdma.ts";
import { CpBlock, type GrbmSelect } from "./cp.ts";
import { ATC_NUM_VMIDS, GpuAtc } from "../amd_iommu/atc.ts";
import {
  ATC_BASE, CP_BASE, GFXHUB_BASE, GRBM_GFX_CNTL__MEID, GRBM_GFX_CNTL__PIPEID, GRBM_GFX_CNTL__QUEUEID, GRBM_GFX_CNTL__VMID,
  GRBM_STATUS__GUI_ACTIVE, HUB_SIZE, IH_BASE, KEMU_DOORBELL_SIZE, KEMU_MMIO_SIZE, MMHUB_BASE, REG_GET_FIELD, REG_SET_FIELD,
  SDMA_BASE, SDMA_STRIDE, mmBIF_DOORBELL_APER_EN, mmGRBM_GFX_CNTL, mmGRBM_STATUS, mmMC_VM_FB_LOCATION_BASE,
  mmMC_VM_FB_LOCATION_TOP, mmMC_VM_FB_OFFSET, mmMC_VM_SYSTEM_APERTURE_HIGH_ADDR, mmMC_VM_SYSTEM_APERTURE_LOW_ADDR,
  mmPCIE_DATA2, mmPCIE_INDEX2, mmRCC_CONFIG_MEMSIZE, mmREFCLK_TIMESTAMP_HI, mmREFCLK_TIMESTAMP_LO,
} from "../../drivers/gpu/drm/amd/include/asic_reg/kemu_gpu_regs.ts";

export const PCI_VENDOR_ID_ATI = 0x1002;
/** PCI_CLASS_DISPLAY_OTHER (0x0380) for compute parts, PCI_CLASS_DISPLAY_VGA (0x0300) otherwise. */
const CLASS_DISPLAY_OTHER = 0x038000;
const CLASS_DISPLAY_VGA = 0x030000;
/** Where the VBIOS places the frame buffer in the GPU's address space (512 GiB, as on Vega/MI parts). */
export const KEMU_FB_MC_BASE = 2 ** 39;

export const BAR_VRAM = 0;
export const BAR_DOORBELL = 2;
export const BAR_MMIO = 4;
const MMIO_DWORDS = KEMU_MMIO_SIZE / 4;

export class AmdGpuDevice implements PciFunctionModel {
  readonly vendor_id = PCI_VENDOR_ID_ATI;
  readonly device_id: number;
  readonly revision: number;
  readonly class_code: number;
  readonly subsystem_vendor_id = PCI_VENDOR_ID_ATI;
  readonly subsystem_id: number;
  readonly bars: ReadonlyArray<PciBarDesc | null>;

  readonly asic: AsicInfo;
  readonly cost: GpuCostModel;
  readonly vram_size: number;
  readonly vram = new PhysMem();
  readonly mem: GpuMemBus;
  readonly ih: IhBlock;
  readonly gfxhub: VmHub;
  readonly mmhub: VmHub;
  readonly sdma: SdmaEngine[];
  readonly cp: CpBlock;
  readonly mc: McAperture;
  /** Name used for hardware timers ("gpu0"). */
  readonly name: string;
  private readonly common = new Uint32Array(0x100);
  private port: PciDevicePort | null = null;
  /**
   * APU parts: the ATC that translates process VMIDs through the AMD IOMMU with ATS/PRI, and
   * the function's ATS/PRI/PASID capabilities (hw/amd_iommu/atc.ts). Null on discrete parts.
   */
  readonly atc: GpuAtc | null;

  constructor(
    private readonly k: Kernel,
    spec: GpuSpec,
    index: number,
  ) {
    // An unknown ASIC name falls back to the default part rather than failing the machine.
    this.asic = asic_by_name(spec.asic) ?? ASICS.gfx90a!;
    this.name = `gpu${index}`;
    this.device_id = this.asic.pci_device_id;
    this.revision = this.asic.pci_revision;
    this.class_code = this.asic.family === "gfx9" ? CLASS_DISPLAY_OTHER : CLASS_DISPLAY_VGA;
    this.subsystem_id = 0x0c34;
    // The BAR must be a power of two: round VRAM up for the aperture, keep the real size.
    this.vram_size = spec.vram_size;
    this.vram.reserve(this.vram_size);
    const bar0 = 2 ** Math.ceil(Math.log2(Math.max(spec.vram_size, 2 ** 20)));
    this.bars = [
      { size: bar0, is64: true, prefetch: true }, null,
      { size: KEMU_DOORBELL_SIZE, is64: true, prefetch: false }, null,
      { size: KEMU_MMIO_SIZE, is64: true, prefetch: false }, null,
    ];
    this.cost = gpu_cost_model(spec.cost);
    this.mc = { fb_start: KEMU_FB_MC_BASE, fb_end: KEMU_FB_MC_BASE + spec.vram_size - 1, sys_low: 0, sys_high: -1 };
    this.common[mmMC_VM_FB_LOCATION_BASE] = KEMU_FB_MC_BASE / 2 ** 24;
    this.common[mmMC_VM_FB_LOCATION_TOP] = Math.floor(this.mc.fb_end / 2 ** 24);
    this.common[mmMC_VM_FB_OFFSET] = 0;
    this.mem = new GpuMemBus(this.vram, spec.vram_size);
    this.ih = new IhBlock(k, this.cost, this.asic.ih_num_rings, this.name);
    this.gfxhub = new VmHub("gfx", k, this.cost, this.mem, this.ih, this.mc);
    this.mmhub = new VmHub("mm", k, this.cost, this.mem, this.ih, this.mc);
    const sdma_hub = this.asic.sdma_hub === "mm" ? this.mmhub : this.gfxhub;
    const srbm = { reg_read: (r: number) => this.reg_read(r), reg_write: (r: number, v: number) => this.reg_write(r, v) };
    this.sdma = Array.from({ length: this.asic.num_sdma }, (_, i) =>
      new SdmaEngine(k, this.cost, i, sdma_hub, this.mem, this.ih, this.asic.sdma_client_ids[i]!, srbm, this.asic.sdma_utcl2_cids[i],
        // User-queue faults retry as shader accesses of the VMID do (context and SH_MEM_CONFIG).
        (vmid) => this.cp.retry_allowed(vmid) && sdma_hub.context_retries(vmid)));
    this.cp = new CpBlock(k, this.cost, this.gfxhub, this.mem, this.ih);
    this.atc = spec.apu ? new GpuAtc() : null;
    if (this.atc) {
      this.gfxhub.attach_atc(this.atc);
      this.mmhub.attach_atc(this.atc);
    }
  }

  /** PCIe extended config space: the ATS, PRI and PASID capabilities of APU parts. */
  ext_config_read32(where: number): number {
    return this.atc?.ats.ext_config_read32(where) ?? 0;
  }

  ext_config_write32(where: number, value: number): void {
    this.atc?.ats.ext_config_write32(where, value);
  }

  attach(port: PciDevicePort): void {
    this.port = port;
    this.mem.attach(port);
    this.ih.attach(port);
  }

  /** The device's DMA port (tests inspect master aborts through it). */
  dma_port(): PciDevicePort | null {
    return this.port;
  }

  // ---- BAR access -----------------------------------------------------------------------------

  mmio_read32(bar: number, offset: number): number {
    if (bar === BAR_VRAM) return offset + 4 <= this.vram_size ? this.vram.read32(offset) : 0;
    if (bar === BAR_MMIO) return this.reg_read(Math.floor(offset / 4));
    return 0;
  }

  mmio_write32(bar: number, offset: number, value: number): void {
    if (bar === BAR_VRAM) {
      if (offset + 4 <= this.vram_size) this.vram.write32(offset, value);
    } else if (bar === BAR_MMIO) {
      this.reg_write(Math.floor(offset / 4), value);
    } else if (bar === BAR_DOORBELL) {
      this.ring_doorbell(Math.floor(offset / 4), value, 0);
    }
  }

  mmio_write64(bar: number, offset: number, lo: number, hi: number): void {
    if (bar === BAR_DOORBELL) {
      this.ring_doorbell(Math.floor(offset / 4), lo, hi);
      return;
    }
    this.mmio_write32(bar, offset, lo);
    this.mmio_write32(bar, offset + 4, hi);
  }

  mmio_read_bytes(bar: number, offset: number, dst: Uint8Array): void {
    if (bar === BAR_VRAM && offset + dst.length <= this.vram_size) this.vram.read_into(offset, dst);
    else dst.fill(0);
  }

  mmio_write_bytes(bar: number, offset: number, src: Uint8Array): void {
    if (bar === BAR_VRAM && offset + src.length <= this.vram_size) this.vram.write(offset, src);
  }

  /** A doorbell write goes to the engine whose doorbell offset (dword index) matches. */
  private ring_doorbell(index: number, lo: number, hi: number): void {
    if (!(this.common[mmBIF_DOORBELL_APER_EN]! & 1)) return;
    for (const e of this.sdma) if (e.doorbell(index, lo, hi)) return;
    if (this.cp.doorbell(index, lo, hi)) return;
    this.ih.doorbell(index, lo);
  }

  // ---- the register file ------------------------------------------------------------------------

  private grbm_select(): GrbmSelect {
    const v = this.common[mmGRBM_GFX_CNTL]!;
    return {
      me: REG_GET_FIELD(v, GRBM_GFX_CNTL__MEID), pipe: REG_GET_FIELD(v, GRBM_GFX_CNTL__PIPEID),
      queue: REG_GET_FIELD(v, GRBM_GFX_CNTL__QUEUEID), vmid: REG_GET_FIELD(v, GRBM_GFX_CNTL__VMID),
    };
  }

  reg_read(reg: number): number {
    if (reg < 0 || reg >= MMIO_DWORDS) return 0;
    if (reg < 0x100) return this.common_read(reg);
    if (reg >= ATC_BASE && reg < ATC_BASE + ATC_NUM_VMIDS) return this.atc?.reg_read(reg - ATC_BASE) ?? 0;
    if (reg >= GFXHUB_BASE && reg < GFXHUB_BASE + HUB_SIZE) return this.gfxhub.reg_read(reg - GFXHUB_BASE);
    if (reg >= MMHUB_BASE && reg < MMHUB_BASE + HUB_SIZE) return this.mmhub.reg_read(reg - MMHUB_BASE);
    if (reg >= IH_BASE && reg < IH_BASE + 0x80) return this.ih.reg_read(reg);
    const e = this.sdma_of(reg);
    if (e) return e.reg_read((reg - SDMA_BASE) % SDMA_STRIDE);
    if (reg >= CP_BASE && reg < CP_BASE + 0x100) return this.cp.reg_read(reg, this.grbm_select());
    return 0;
  }

  reg_write(reg: number, value: number): void {
    value >>>= 0;
    if (reg < 0 || reg >= MMIO_DWORDS) return;
    if (reg < 0x100) this.common_write(reg, value);
    else if (reg >= ATC_BASE && reg < ATC_BASE + ATC_NUM_VMIDS) this.atc?.reg_write(reg - ATC_BASE, value);
    else if (reg >= GFXHUB_BASE && reg < GFXHUB_BASE + HUB_SIZE) this.gfxhub.reg_write(reg - GFXHUB_BASE, value);
    else if (reg >= MMHUB_BASE && reg < MMHUB_BASE + HUB_SIZE) this.mmhub.reg_write(reg - MMHUB_BASE, value);
    else if (reg >= IH_BASE && reg < IH_BASE + 0x80) this.ih.reg_write(reg, value);
    else if (this.sdma_of(reg)) this.sdma_of(reg)!.reg_write((reg - SDMA_BASE) % SDMA_STRIDE, value);
    else if (reg >= CP_BASE && reg < CP_BASE + 0x100) this.cp.reg_write(reg, value, this.grbm_select());
  }

  private sdma_of(reg: number): SdmaEngine | null {
    if (reg < SDMA_BASE) return null;
    return this.sdma[Math.floor((reg - SDMA_BASE) / SDMA_STRIDE)] ?? null;
  }

  private indirect_target(): number {
    return Math.floor(this.common[mmPCIE_INDEX2]! / 4);
  }

  private common_read(reg: number): number {
    switch (reg) {
      case mmRCC_CONFIG_MEMSIZE: return Math.floor(this.vram_size / 2 ** 20);
      case mmGRBM_STATUS: {
        const busy = this.sdma.some((e) => !e.idle);
        return REG_SET_FIELD(0, GRBM_STATUS__GUI_ACTIVE, busy ? 1 : 0);
      }
      case mmREFCLK_TIMESTAMP_LO: return this.ih.timestamp() % 2 ** 32;
      case mmREFCLK_TIMESTAMP_HI: return Math.floor(this.ih.timestamp() / 2 ** 32);
      case mmPCIE_DATA2: return this.indirect_target() === mmPCIE_DATA2 ? 0 : this.reg_read(this.indirect_target());
      default: return this.common[reg]!;
    }
  }

  private common_write(reg: number, value: number): void {
    switch (reg) {
      case mmRCC_CONFIG_MEMSIZE:
      case mmMC_VM_FB_LOCATION_BASE:
      case mmMC_VM_FB_LOCATION_TOP:
      case mmMC_VM_FB_OFFSET:
      case mmGRBM_STATUS:
      case mmREFCLK_TIMESTAMP_LO:
      case mmREFCLK_TIMESTAMP_HI:
        return; // read-only
      case mmPCIE_DATA2:
        if (this.indirect_target() !== mmPCIE_DATA2) this.reg_write(this.indirect_target(), value);
        return;
      case mmMC_VM_SYSTEM_APERTURE_LOW_ADDR:
        this.mc.sys_low = value * 2 ** 18;
        break;
      case mmMC_VM_SYSTEM_APERTURE_HIGH_ADDR:
        this.mc.sys_high = value * 2 ** 18 + (2 ** 18 - 1);
        break;
    }
    this.common[reg] = value;
  }
}

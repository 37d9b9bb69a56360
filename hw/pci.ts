// kemu hardware: the PCI host bridge and its root bus (not a kernel file). It holds the PCI
// functions of the machine (built from the machine description), emulates their type-0
// configuration space (ids, command register, BARs with the all-ones sizing protocol, an MSI
// capability), decodes physical MMIO accesses to the BAR they hit, carries device DMA to system
// RAM (bus address = physical address unless an IOMMU translator is installed) and delivers
// MSI writes to the CPU's interrupt entry. The kernel side (drivers/pci) sees only config
// reads/writes and MMIO; devices see only their DMA port.

import "reflect-metadata";
import { inject, injectable } from "tsyringe";
import { IRQ, KERNEL, MACHINE_SPEC, PHYSMEM } from "../kernel/tokens.ts";
import type { Kernel } from "../kernel/kernel.ts";
import type { MachineSpec } from "../kernel/machine_spec.ts";
import type { PhysMem } from "./physmem.ts";
import type { IrqCore } from "../kernel/irq/manage.ts";
import { AmdGpuDevice } from "./amdgpu/device.ts";
import { AMD_IOMMU_DEVFN, AmdIommuHw, default_efr, efr_words } from "./amd_iommu/iommu.ts";

// ---- configuration space layout (include/uapi/linux/pci_regs.h) -----------------------------

export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
export const PCI_CLASS_REVISION = 0x08;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x04;
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x08;
export const PCI_CAP_ID_MSI = 0x05;
export const PCI_MSI_FLAGS_ENABLE = 0x1;
export const PCI_MSI_FLAGS_64BIT = 0x80;
/** Where kemu devices place their MSI capability. */
export const KEMU_MSI_CAP = 0x50;

/** The x86 MSI address window: a write there is an interrupt, its data the vector. */
export const MSI_ADDR_BASE = 0xfee00000;

export interface PciBarDesc {
  size: number;
  is64: boolean;
  prefetch: boolean;
}

/** What a PCI function model implements: identity, BARs, and the MMIO it decodes. */
export interface PciFunctionModel {
  readonly vendor_id: number;
  readonly device_id: number;
  readonly revision: number;
  /** 24-bit class code (base, sub, prog-if). */
  readonly class_code: number;
  readonly subsystem_vendor_id: number;
  readonly subsystem_id: number;
  /** BAR descriptors by BAR number; a 64-bit BAR also uses the next number. */
  readonly bars: ReadonlyArray<PciBarDesc | null>;
  attach(port: PciDevicePort): void;
  mmio_read32(bar: number, offset: number): number;
  mmio_write32(bar: number, offset: number, value: number): void;
  /** A 64-bit write arrives as one transaction (doorbells carry 64-bit write pointers). */
  mmio_write64(bar: number, offset: number, lo: number, hi: number): void;
  mmio_read_bytes(bar: number, offset: number, dst: Uint8Array): void;
  mmio_write_bytes(bar: number, offset: number, src: Uint8Array): void;
  /**
   * PCIe extended configuration space (0x100-0xfff): capabilities such as ATS, PRI and PASID
   * (hw/amd_iommu/ats.ts). Optional; a function without it has no extended capability.
   */
  ext_config_read32?(where: number): number;
  ext_config_write32?(where: number, value: number): void;
}

/** Optional DMA remapping (an IOMMU): bus address → physical address, or null to abort. */
export type DmaTranslator = (bus_addr: number, len: number, write: boolean) => number | null;

/** One function's view of the machine: DMA to system memory and MSI. */
export class PciDevicePort {
  /** DMA transactions the bridge refused (bus mastering off, address outside RAM, IOMMU). */
  master_aborts = 0;
  translator: DmaTranslator | null = null;

  constructor(
    private readonly bridge: PciHostBridge,
    readonly devfn: number,
  ) {}

  private target(addr: number, len: number, write: boolean): number | null {
    if (!this.bridge.bus_master_enabled(this.devfn)) return null;
    const pa = this.translator ? this.translator(addr, len, write) : addr;
    if (pa === null || pa < 0 || pa + len > this.bridge.ram_size) return null;
    return pa;
  }

  /** Reads system memory; an aborted read returns all-ones, as a master abort does. */
  dma_read(addr: number, dst: Uint8Array, dst_off = 0, len = dst.length - dst_off): boolean {
    const pa = this.target(addr, len, false);
    if (pa === null) {
      this.master_aborts++;
      dst.fill(0xff, dst_off, dst_off + len);
      return false;
    }
    this.bridge.ram.read_into(pa, dst, dst_off, len);
    return true;
  }

  dma_write(addr: number, src: Uint8Array, src_off = 0, len = src.length - src_off): boolean {
    const pa = this.target(addr, len, true);
    if (pa === null) {
      this.master_aborts++;
      return false;
    }
    this.bridge.ram.write(pa, src, src_off, len);
    return true;
  }

  dma_read32(addr: number): number {
    const pa = this.target(addr, 4, false);
    if (pa === null) {
      this.master_aborts++;
      return 0xffffffff;
    }
    return this.bridge.ram.read32(pa);
  }

  dma_write32(addr: number, value: number): boolean {
    const pa = this.target(addr, 4, true);
    if (pa === null) {
      this.master_aborts++;
      return false;
    }
    this.bridge.ram.write32(pa, value);
    return true;
  }

  /** Direct access to the RAM model for bulk transfers (slab-to-slab copies), after a check. */
  dma_ram(addr: number, len: number, write: boolean): { ram: PhysMem; pa: number } | null {
    const pa = this.target(addr, len, write);
    if (pa === null) {
      this.master_aborts++;
      return null;
    }
    return { ram: this.bridge.ram, pa };
  }

  /** Signals MSI vector 0 (the only one kemu devices use) if the driver enabled MSI. */
  raise_msi(): boolean {
    return this.bridge.deliver_msi(this.devfn);
  }
}

interface pci_slot {
  devfn: number;
  model: PciFunctionModel;
  port: PciDevicePort;
  config: DataView;
  /** Assigned base per BAR number (low BAR of a 64-bit pair holds it). */
  bar_base: number[];
  /** BAR registers currently answering a sizing probe. */
  sizing: boolean[];
}

/** The 64-bit MMIO window the firmware gives the root bus (ACPI _CRS): 1 TiB above RAM. */
export interface PciWindow {
  start: number;
  size: number;
}

@injectable()
export class PciHostBridge {
  readonly ram_size: number;
  readonly window: PciWindow;
  private readonly slots = new Map<number, pci_slot>();

  constructor(
    @inject(MACHINE_SPEC) spec: MachineSpec,
    @inject(KERNEL) k: Kernel,
    @inject(PHYSMEM) readonly ram: PhysMem,
    @inject(IRQ) private readonly irq: IrqCore,
  ) {
    this.ram_size = spec.ram_size ?? 0;
    const TiB = 2 ** 40;
    this.window = { start: Math.max(TiB, Math.ceil(this.ram_size / TiB) * TiB), size: TiB };
    // The AMD IOMMU is function 00:00.2 of the host bridge (hw/amd_iommu/iommu.ts).
    const iommu = spec.iommu ? new AmdIommuHw(k, ram, { pci_seg: 0, devid: AMD_IOMMU_DEVFN, ...efr_words(default_efr()) }) : null;
    if (iommu) this.plug(AMD_IOMMU_DEVFN, iommu);
    // Discrete GPUs sit behind root ports in real machines; kemu puts them on bus 0, device 3+.
    (spec.gpus ?? []).forEach((g, i) => {
      const gpu = new AmdGpuDevice(k, g, i);
      this.plug((3 + i) * 8, gpu);
      // An APU's ATC sends ATS and page requests to the IOMMU with the GPU's DeviceID (bus 0).
      if (iommu) gpu.atc?.connect((3 + i) * 8, iommu);
    });
  }

  /** Hot-plugs a function model at `devfn` (device << 3 | function) of bus 0. */
  plug(devfn: number, model: PciFunctionModel): void {
    const config = new DataView(new ArrayBuffer(256));
    config.setUint16(PCI_VENDOR_ID, model.vendor_id, true);
    config.setUint16(PCI_DEVICE_ID, model.device_id, true);
    config.setUint32(PCI_CLASS_REVISION, ((model.class_code << 8) | model.revision) >>> 0, true);
    config.setUint16(PCI_SUBSYSTEM_VENDOR_ID, model.subsystem_vendor_id, true);
    config.setUint16(PCI_SUBSYSTEM_VENDOR_ID + 2, model.subsystem_id, true);
    config.setUint8(PCI_CAPABILITY_LIST, KEMU_MSI_CAP);
    config.setUint8(KEMU_MSI_CAP, PCI_CAP_ID_MSI);
    config.setUint16(KEMU_MSI_CAP + 2, PCI_MSI_FLAGS_64BIT, true);
    model.bars.forEach((b, i) => {
      if (!b) return;
      const flags = (b.is64 ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) | (b.prefetch ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
      config.setUint32(PCI_BASE_ADDRESS_0 + 4 * i, flags, true);
    });
    const port = new PciDevicePort(this, devfn);
    this.slots.set(devfn, { devfn, model, port, config, bar_base: [0, 0, 0, 0, 0, 0], sizing: [false, false, false, false, false, false] });
    model.attach(port);
  }

  /** Functions present on bus 0, by devfn (what a config-space scan finds). */
  devfns(): number[] {
    return [...this.slots.keys()].sort((a, b) => a - b);
  }

  model(devfn: number): PciFunctionModel | null {
    return this.slots.get(devfn)?.model ?? null;
  }

  port(devfn: number): PciDevicePort | null {
    return this.slots.get(devfn)?.port ?? null;
  }

  bus_master_enabled(devfn: number): boolean {
    const s = this.slots.get(devfn);
    return !!s && (s.config.getUint16(PCI_COMMAND, true) & PCI_COMMAND_MASTER) !== 0;
  }

  // ---- configuration space ----------------------------------------------------------------

  /** A config read of an empty slot returns all-ones, as on a real bus. */
  config_read32(devfn: number, where: number): number {
    const s = this.slots.get(devfn);
    if (!s || where < 0 || where % 4) return 0xffffffff;
    // PCIe extended space: the function's own capabilities, or none (a zero header).
    if (where >= 0x100 && where < 0x1000) return (s.model.ext_config_read32?.(where) ?? 0) >>> 0;
    if (where > 252) return 0xffffffff;
    const bar = (where - PCI_BASE_ADDRESS_0) / 4;
    if (Number.isInteger(bar) && bar >= 0 && bar < 6) return this.bar_register(s, bar);
    return s.config.getUint32(where, true);
  }

  config_write32(devfn: number, where: number, value: number): void {
    const s = this.slots.get(devfn);
    if (!s || where < 0 || where % 4) return;
    if (where >= 0x100 && where < 0x1000) {
      s.model.ext_config_write32?.(where, value >>> 0);
      return;
    }
    if (where > 252) return;
    const bar = (where - PCI_BASE_ADDRESS_0) / 4;
    if (Number.isInteger(bar) && bar >= 0 && bar < 6) {
      this.write_bar(s, bar, value >>> 0);
      return;
    }
    // Identity and capability headers are read-only; command, MSI address/data are writable.
    if (where === PCI_COMMAND || (where >= KEMU_MSI_CAP && where < KEMU_MSI_CAP + 16)) {
      if (where === KEMU_MSI_CAP) {
        const keep = s.config.getUint16(KEMU_MSI_CAP, true);
        value = ((value & 0xffff0000) | keep) >>> 0;
        value = (value | (PCI_MSI_FLAGS_64BIT << 16)) >>> 0;
      }
      s.config.setUint32(where, value >>> 0, true);
    }
  }

  /** Which BAR slot describes BAR register `i` (the high half of a 64-bit BAR points back). */
  private bar_owner(s: pci_slot, i: number): { bar: number; high: boolean } | null {
    if (s.model.bars[i]) return { bar: i, high: false };
    if (i > 0 && s.model.bars[i - 1]?.is64) return { bar: i - 1, high: true };
    return null;
  }

  private bar_register(s: pci_slot, i: number): number {
    const o = this.bar_owner(s, i);
    if (!o) return 0;
    const d = s.model.bars[o.bar]!;
    const flags = (d.is64 ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) | (d.prefetch ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
    if (s.sizing[i]) {
      // Size mask: the address bits that do not stick (two's complement of the size).
      const mask = 2 ** 64 - d.size;
      return o.high ? Math.floor(mask / 2 ** 32) >>> 0 : ((mask % 2 ** 32) - (mask % 16) + flags) >>> 0;
    }
    const base = s.bar_base[o.bar]!;
    return o.high ? Math.floor(base / 2 ** 32) >>> 0 : ((base % 2 ** 32) + flags) >>> 0;
  }

  private write_bar(s: pci_slot, i: number, value: number): void {
    const o = this.bar_owner(s, i);
    if (!o) return;
    s.sizing[i] = value === 0xffffffff;
    if (s.sizing[i]) return;
    const d = s.model.bars[o.bar]!;
    const base = s.bar_base[o.bar]!;
    const lo = o.high ? base % 2 ** 32 : value - (value % 16);
    const hi = o.high ? value : Math.floor(base / 2 ** 32);
    const raw = hi * 2 ** 32 + lo;
    s.bar_base[o.bar] = raw - (raw % d.size);
  }

  // ---- MMIO decode --------------------------------------------------------------------------

  /** Finds the BAR a physical MMIO access of `len` bytes lands in, if memory decoding is on. */
  decode(pa: number, len: number): { slot: pci_slot; bar: number; offset: number } | null {
    for (const s of this.slots.values()) {
      if (!(s.config.getUint16(PCI_COMMAND, true) & PCI_COMMAND_MEMORY)) continue;
      for (let b = 0; b < 6; b++) {
        const d = s.model.bars[b];
        const base = s.bar_base[b]!;
        if (!d || base === 0) continue;
        if (pa >= base && pa + len <= base + d.size) return { slot: s, bar: b, offset: pa - base };
      }
    }
    return null;
  }

  /** A CPU read of MMIO space; nothing decoding it reads all-ones (no device responded). */
  mmio_read32(pa: number): number {
    const t = this.decode(pa, 4);
    return t ? t.slot.model.mmio_read32(t.bar, t.offset) >>> 0 : 0xffffffff;
  }

  mmio_write32(pa: number, value: number): boolean {
    const t = this.decode(pa, 4);
    if (!t) return false;
    t.slot.model.mmio_write32(t.bar, t.offset, value >>> 0);
    return true;
  }

  mmio_write64(pa: number, lo: number, hi: number): boolean {
    const t = this.decode(pa, 8);
    if (!t) return false;
    t.slot.model.mmio_write64(t.bar, t.offset, lo >>> 0, hi >>> 0);
    return true;
  }

  mmio_read_bytes(pa: number, dst: Uint8Array): boolean {
    const t = this.decode(pa, dst.length);
    if (!t) {
      dst.fill(0xff);
      return false;
    }
    t.slot.model.mmio_read_bytes(t.bar, t.offset, dst);
    return true;
  }

  mmio_write_bytes(pa: number, src: Uint8Array): boolean {
    const t = this.decode(pa, src.length);
    if (!t) return false;
    t.slot.model.mmio_write_bytes(t.bar, t.offset, src);
    return true;
  }

  // ---- MSI --------------------------------------------------------------------------------

  /** The function's MSI write reaches the local APIC: its data is the vector the kernel set. */
  deliver_msi(devfn: number): boolean {
    const s = this.slots.get(devfn);
    if (!s) return false;
    const c = s.config;
    if (!(c.getUint16(KEMU_MSI_CAP + 2, true) & PCI_MSI_FLAGS_ENABLE)) return false;
    if (!(c.getUint16(PCI_COMMAND, true) & PCI_COMMAND_MASTER)) return false;
    const addr = c.getUint32(KEMU_MSI_CAP + 4, true);
    if ((addr & 0xfff00000) >>> 0 !== MSI_ADDR_BASE) return false;
    const vector = c.getUint16(KEMU_MSI_CAP + 12, true);
    return this.irq.generic_handle_irq(vector) === 0;
  }
}

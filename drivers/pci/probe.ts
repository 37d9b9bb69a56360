// Mirrors drivers/pci/probe.c (Linux 6.8), with the BAR assignment of setup-res.c and the
// config accessors of access.c: the PCI core of a machine. At its initcall it scans bus 0 of
// the host bridge through configuration space, sizes each BAR with the all-ones protocol,
// assigns addresses in the bridge's 64-bit window (naturally aligned, as pci_assign_resource
// does), claims them in the iomem tree and registers each function as a device
// ("0000:00:03.0" under /sys/devices/pci0000:00). Drivers bind through pci-driver.ts.

import "reflect-metadata";
import { inject, injectable } from "tsyringe";
import { DRIVER_CORE, IOMEM, IRQ, KERNEL, PCI_HOST } from "../../kernel/tokens.ts";
import type { Kernel } from "../../kernel/kernel.ts";
import type { KernelService } from "../../kernel/machine.ts";
import type { ResourceTree } from "../../kernel/resource.ts";
import type { IrqCore } from "../../kernel/irq/manage.ts";
import { device, type DriverCore } from "../base/core.ts";
import {
  PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_MEM_PREFETCH, PCI_BASE_ADDRESS_MEM_TYPE_64, PCI_CLASS_REVISION,
  PCI_SUBSYSTEM_VENDOR_ID, PCI_VENDOR_ID, type PciHostBridge,
} from "../../hw/pci.ts";
import {
  IORESOURCE_MEM, IORESOURCE_MEM_64, IORESOURCE_PREFETCH, PCI_FUNC, PCI_SLOT, pci_dev, type pci_driver,
} from "../../include/linux/pci.ts";
import { resource, IORESOURCE_BUSY } from "../../kernel/resource.ts";

@injectable()
export class PciBus implements KernelService {
  readonly devices: pci_dev[] = [];
  readonly drivers: pci_driver[] = [];
  /** The root bus's device (pci0000:00), parent of every function. */
  readonly root = new device();
  private next_mmio: number;

  constructor(
    @inject(KERNEL) readonly k: Kernel,
    @inject(PCI_HOST) readonly host: PciHostBridge,
    @inject(IOMEM) private readonly iomem: ResourceTree,
    @inject(IRQ) readonly irq: IrqCore,
    @inject(DRIVER_CORE) private readonly core: DriverCore,
  ) {
    this.next_mmio = host.window.start;
  }

  // ---- config space (drivers/pci/access.c) -----------------------------------------------

  pci_read_config_dword(pdev: pci_dev, where: number): number {
    return this.host.config_read32(pdev.devfn, where);
  }

  pci_write_config_dword(pdev: pci_dev, where: number, value: number): void {
    this.host.config_write32(pdev.devfn, where, value);
  }

  pci_read_config_word(pdev: pci_dev, where: number): number {
    const dw = this.host.config_read32(pdev.devfn, where - (where % 4));
    return where % 4 ? dw >>> 16 : dw & 0xffff;
  }

  pci_write_config_word(pdev: pci_dev, where: number, value: number): void {
    const base = where - (where % 4);
    const dw = this.host.config_read32(pdev.devfn, base);
    const v = where % 4 ? ((dw & 0xffff) | ((value & 0xffff) << 16)) >>> 0 : ((dw & 0xffff0000) | (value & 0xffff)) >>> 0;
    this.host.config_write32(pdev.devfn, base, v);
  }

  // ---- scanning (pci_scan_root_bus) ------------------------------------------------------

  async init(): Promise<void> {
    this.core.device_initialize(this.root);
    this.root.init_name = "pci0000:00";
    await this.core.device_add(this.root);
    for (const devfn of this.host.devfns()) {
      const pdev = this.pci_scan_device(devfn);
      if (!pdev) continue;
      this.pci_read_bases(pdev);
      this.pci_assign_resources(pdev);
      await this.pci_device_add(pdev);
    }
  }

  /** pci_scan_device(): a function answers its vendor id read; an empty slot reads all-ones. */
  private pci_scan_device(devfn: number): pci_dev | null {
    const id = this.host.config_read32(devfn, PCI_VENDOR_ID);
    if (id === 0xffffffff || (id & 0xffff) === 0xffff) return null;
    const pdev = new pci_dev(this, devfn);
    pdev.vendor = id & 0xffff;
    pdev.device = id >>> 16;
    const cr = this.host.config_read32(devfn, PCI_CLASS_REVISION);
    pdev.revision = cr & 0xff;
    pdev.class = cr >>> 8;
    const sub = this.host.config_read32(devfn, PCI_SUBSYSTEM_VENDOR_ID);
    pdev.subsystem_vendor = sub & 0xffff;
    pdev.subsystem_device = sub >>> 16;
    return pdev;
  }

  /** pci_read_bases() / __pci_read_base(): size each memory BAR by writing all-ones. */
  private pci_read_bases(pdev: pci_dev): void {
    for (let i = 0; i < 6; i++) {
      const reg = PCI_BASE_ADDRESS_0 + 4 * i;
      const orig = this.host.config_read32(pdev.devfn, reg);
      this.host.config_write32(pdev.devfn, reg, 0xffffffff);
      const lo = this.host.config_read32(pdev.devfn, reg);
      this.host.config_write32(pdev.devfn, reg, orig);
      if (lo === 0 || lo === 0xffffffff) continue;
      const is64 = (lo & 0x6) === PCI_BASE_ADDRESS_MEM_TYPE_64;
      let hi = 0xffffffff;
      if (is64) {
        const horig = this.host.config_read32(pdev.devfn, reg + 4);
        this.host.config_write32(pdev.devfn, reg + 4, 0xffffffff);
        hi = this.host.config_read32(pdev.devfn, reg + 4);
        this.host.config_write32(pdev.devfn, reg + 4, horig);
      }
      // The size is the two's complement of the mask of address bits that stuck.
      const mask = (is64 ? hi : 0xffffffff) * 2 ** 32 + ((lo & 0xfffffff0) >>> 0);
      const size = 2 ** 64 - mask;
      const r = pdev.resource[i]!;
      r.flags = IORESOURCE_MEM | (is64 ? IORESOURCE_MEM_64 : 0) | (lo & PCI_BASE_ADDRESS_MEM_PREFETCH ? IORESOURCE_PREFETCH : 0);
      r.start = 0;
      r.end = size - 1;
      if (is64) i++;
    }
  }

  /** pci_assign_resource(): naturally aligned addresses in the host bridge window. */
  private pci_assign_resources(pdev: pci_dev): void {
    pdev.resource.forEach((r, i) => {
      if (!(r.flags & IORESOURCE_MEM)) return;
      const size = r.end + 1;
      const base = Math.ceil(this.next_mmio / size) * size;
      if (base + size > this.host.window.start + this.host.window.size) {
        this.k.pr_err(`pci ${pdev.dev.init_name ?? ""}: BAR ${i}: no space for [mem size 0x${size.toString(16)}]`);
        r.flags = 0;
        r.end = -1;
        return;
      }
      this.next_mmio = base + size;
      r.start = base;
      r.end = base + size - 1;
      const reg = PCI_BASE_ADDRESS_0 + 4 * i;
      this.host.config_write32(pdev.devfn, reg, base % 2 ** 32);
      if (r.flags & IORESOURCE_MEM_64) this.host.config_write32(pdev.devfn, reg + 4, Math.floor(base / 2 ** 32));
      r.name = `0000:00:${PCI_SLOT(pdev.devfn).toString(16).padStart(2, "0")}.${PCI_FUNC(pdev.devfn)}`;
      this.iomem.insert_resource(new resource(r.start, r.end, r.name, IORESOURCE_MEM | IORESOURCE_BUSY));
    });
  }

  private async pci_device_add(pdev: pci_dev): Promise<void> {
    const name = `0000:00:${PCI_SLOT(pdev.devfn).toString(16).padStart(2, "0")}.${PCI_FUNC(pdev.devfn)}`;
    this.core.device_initialize(pdev.dev);
    pdev.dev.init_name = name;
    pdev.dev.parent = this.root;
    pdev.dev.bus = { name: "pci" };
    const err = await this.core.device_add(pdev.dev);
    if (err) {
      this.k.pr_err(`pci ${name}: device_add failed: ${err}`);
      return;
    }
    this.k.pr_info(`pci ${name}: [${hex4(pdev.vendor)}:${hex4(pdev.device)}] type 00 class 0x${pdev.class.toString(16).padStart(6, "0")}`);
    for (let i = 0; i < 6; i++) {
      const r = pdev.resource[i]!;
      if (r.end < r.start) continue;
      const kind = `mem${r.flags & IORESOURCE_MEM_64 ? " 64bit" : ""}${r.flags & IORESOURCE_PREFETCH ? " pref" : ""}`;
      this.k.pr_info(`pci ${name}: BAR ${i}: assigned [mem 0x${hex(r.start)}-0x${hex(r.end)} ${kind}]`);
    }
    this.devices.push(pdev);
  }

  leak_report(): string[] {
    return this.devices.filter((d) => d.driver).map((d) => `pci ${d.dev.dev_name()}: still bound to ${d.driver!.name}`);
  }
}

function hex4(v: number): string {
  return v.toString(16).padStart(4, "0");
}

function hex(v: number): string {
  return v.toString(16).padStart(16, "0");
}

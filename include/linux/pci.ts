// Mirrors include/linux/pci.h and include/linux/mod_devicetable.h (Linux 6.8): struct pci_dev,
// struct pci_driver, the device id table and the resource helpers. The bus itself (scan,
// config access, driver binding) is the PciBus service of drivers/pci/probe.ts.

import { device } from "../../drivers/base/core.ts";
import type { PciBus } from "../../drivers/pci/probe.ts";

export const PCI_ANY_ID = 0xffffffff;

export const IORESOURCE_MEM = 0x00000200;
export const IORESOURCE_PREFETCH = 0x00002000;
export const IORESOURCE_MEM_64 = 0x00100000;

/** PCI_IRQ_* flags of pci_alloc_irq_vectors(). */
export const PCI_IRQ_LEGACY = 1 << 0;
export const PCI_IRQ_MSI = 1 << 1;
export const PCI_IRQ_MSIX = 1 << 2;
export const PCI_IRQ_ALL_TYPES = PCI_IRQ_LEGACY | PCI_IRQ_MSI | PCI_IRQ_MSIX;

export const PCI_NUM_RESOURCES = 6;

/** struct pci_device_id */
export interface pci_device_id {
  vendor: number;
  device: number;
  subvendor?: number;
  subdevice?: number;
  class?: number;
  class_mask?: number;
  /** Driver data (amdgpu: the asic type and flags). */
  driver_data?: number;
}

/** PCI_DEVICE(vend, dev) */
export function PCI_DEVICE(vendor: number, dev: number, driver_data = 0): pci_device_id {
  return { vendor, device: dev, subvendor: PCI_ANY_ID, subdevice: PCI_ANY_ID, driver_data };
}

/** struct resource as a BAR describes it (start/end inclusive). */
export class pci_resource {
  constructor(
    public start = 0,
    public end = -1,
    public flags = 0,
    public name = "",
  ) {}
}

export interface pci_driver {
  name: string;
  /** THIS_MODULE of the driver. */
  owner?: string;
  id_table: readonly pci_device_id[];
  probe(pdev: pci_dev, id: pci_device_id): Promise<number>;
  remove(pdev: pci_dev): Promise<void>;
  shutdown?(pdev: pci_dev): Promise<void>;
}

export class pci_dev {
  readonly dev = new device();
  vendor = 0;
  device = 0;
  subsystem_vendor = 0;
  subsystem_device = 0;
  /** 24-bit class code. */
  class = 0;
  revision = 0;
  readonly resource: pci_resource[] = Array.from({ length: PCI_NUM_RESOURCES }, () => new pci_resource());
  /** The Linux interrupt number of MSI vector 0 once allocated, else 0. */
  irq = 0;
  msi_enabled = false;
  is_busmaster = false;
  enable_cnt = 0;
  driver: pci_driver | null = null;
  // PCIe ATS / PRI / PASID state (CONFIG_PCI_ATS, CONFIG_PCI_PRI, CONFIG_PCI_PASID), kept by
  // drivers/pci/ats.ts; the *_cap fields are extended-capability offsets (0 = absent).
  ats_cap = 0;
  ats_enabled = false;
  ats_stu = 0;
  ats_qdep = 0;
  pri_cap = 0;
  pri_enabled = false;
  pri_reqs_alloc = 0;
  pasid_cap = 0;
  pasid_enabled = false;
  pasid_features = 0;

  constructor(
    readonly bus: PciBus,
    readonly devfn: number,
  ) {}
}

export function PCI_SLOT(devfn: number): number {
  return (devfn >> 3) & 0x1f;
}

export function PCI_FUNC(devfn: number): number {
  return devfn & 0x07;
}

export function pci_name(pdev: pci_dev): string {
  return pdev.dev.dev_name();
}

export function pci_resource_start(pdev: pci_dev, bar: number): number {
  return pdev.resource[bar]!.start;
}

export function pci_resource_len(pdev: pci_dev, bar: number): number {
  const r = pdev.resource[bar]!;
  return r.end >= r.start ? r.end - r.start + 1 : 0;
}

export function pci_resource_end(pdev: pci_dev, bar: number): number {
  return pdev.resource[bar]!.end;
}

export function pci_get_drvdata(pdev: pci_dev): unknown {
  return pdev.dev.driver_data;
}

export function pci_set_drvdata(pdev: pci_dev, data: unknown): void {
  pdev.dev.driver_data = data;
}

/** pci_match_one_device() */
export function pci_match_one_device(id: pci_device_id, pdev: pci_dev): boolean {
  const any = (v: number | undefined, actual: number) => v === undefined || v === PCI_ANY_ID || v === actual;
  if (!any(id.vendor, pdev.vendor) || !any(id.device, pdev.device)) return false;
  if (!any(id.subvendor, pdev.subsystem_vendor) || !any(id.subdevice, pdev.subsystem_device)) return false;
  if (id.class_mask && ((id.class ?? 0) ^ pdev.class) & id.class_mask) return false;
  return true;
}

/** pci_match_id(): the first entry of the table that matches, or null. */
export function pci_match_id(ids: readonly pci_device_id[], pdev: pci_dev): pci_device_id | null {
  return ids.find((id) => pci_match_one_device(id, pdev)) ?? null;
}

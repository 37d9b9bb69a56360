// Mirrors drivers/pci/search.c (Linux 6.5): finding a pci_dev by its address. kemu has one
// PCI domain (segment 0) with one root bus (0); pci_dev reference counts are not modelled, so
// pci_dev_put() only marks where the kernel drops its reference.

import type { pci_dev } from "../../include/linux/pci.ts";
import type { PciBus } from "./probe.ts";

/** pci_get_domain_bus_and_slot(): the function at domain:bus:devfn, or null. */
export function pci_get_domain_bus_and_slot(bus: PciBus, domain: number, busnr: number, devfn: number): pci_dev | null {
  if (domain !== 0 || busnr !== 0) return null;
  return bus.devices.find((d) => d.devfn === devfn) ?? null;
}

/** pci_dev_put(): drops the reference pci_get_*() took. */
export function pci_dev_put(_pdev: pci_dev | null): void {}

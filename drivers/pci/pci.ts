// Mirrors drivers/pci/pci.c and lib/pci_iomap.c (Linux 6.8): enabling a device's memory
// decoding, bus mastering, and mapping its BARs (pci_ioremap_bar / pci_iomap).

import { PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY } from "../../hw/pci.ts";
import { iomem } from "../../include/asm-generic/io.ts";
import { pci_resource_len, pci_resource_start, type pci_dev, IORESOURCE_MEM } from "../../include/linux/pci.ts";
import { EINVAL } from "../../include/uapi/asm-generic/errno.ts";

function set_command(pdev: pci_dev, bits: number, on: boolean): void {
  const bus = pdev.bus;
  const cmd = bus.pci_read_config_word(pdev, PCI_COMMAND);
  bus.pci_write_config_word(pdev, PCI_COMMAND, on ? cmd | bits : cmd & ~bits);
}

/** pci_enable_device(): memory decoding on (counted; the first call does the work). */
export function pci_enable_device(pdev: pci_dev): number {
  if (pdev.enable_cnt++ > 0) return 0;
  set_command(pdev, PCI_COMMAND_MEMORY, true);
  return 0;
}

export function pci_disable_device(pdev: pci_dev): void {
  if (pdev.enable_cnt === 0 || --pdev.enable_cnt > 0) return;
  set_command(pdev, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, false);
  pdev.is_busmaster = false;
}

/** pci_set_master(): lets the device start DMA. */
export function pci_set_master(pdev: pci_dev): void {
  set_command(pdev, PCI_COMMAND_MASTER, true);
  pdev.is_busmaster = true;
}

export function pci_clear_master(pdev: pci_dev): void {
  set_command(pdev, PCI_COMMAND_MASTER, false);
  pdev.is_busmaster = false;
}

/** pci_ioremap_bar(): the whole BAR as an iomem mapping, or -EINVAL for a missing memory BAR. */
export function pci_ioremap_bar(pdev: pci_dev, bar: number): iomem | number {
  const r = pdev.resource[bar];
  if (!r || !(r.flags & IORESOURCE_MEM) || pci_resource_len(pdev, bar) === 0) return -EINVAL;
  return new iomem(pdev.bus.k, pdev.bus.host, pci_resource_start(pdev, bar), pci_resource_len(pdev, bar));
}

/** ioremap() of part of a BAR: [offset, offset + size) of BAR `bar`. */
export function pci_iomap_range(pdev: pci_dev, bar: number, offset: number, size: number): iomem | number {
  const len = pci_resource_len(pdev, bar);
  if (offset < 0 || size <= 0 || offset + size > len) return -EINVAL;
  return new iomem(pdev.bus.k, pdev.bus.host, pci_resource_start(pdev, bar) + offset, size);
}

export const PCI_CFG_SPACE_SIZE = 256;
export const PCI_CFG_SPACE_EXP_SIZE = 4096;

/**
 * pci_find_ext_capability(): the config offset of extended capability `cap`, walking the
 * header chain from 0x100 (id in bits 15:0, next offset in bits 31:20), or 0.
 */
export function pci_find_ext_capability(pdev: pci_dev, cap: number): number {
  let pos = PCI_CFG_SPACE_SIZE;
  // Each capability is at least 8 bytes: bounds the walk over a corrupt chain.
  for (let ttl = (PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) / 8; ttl > 0 && pos >= PCI_CFG_SPACE_SIZE; ttl--) {
    const header = pdev.bus.pci_read_config_dword(pdev, pos);
    if (header === 0 || header === 0xffffffff) return 0;
    if ((header & 0xffff) === cap) return pos;
    pos = (header >>> 20) & 0xffc;
  }
  return 0;
}

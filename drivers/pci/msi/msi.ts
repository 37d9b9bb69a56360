// Mirrors drivers/pci/msi/msi.c and api.c (Linux 6.8), for MSI with one vector (all kemu
// devices need): allocate an interrupt number, program the function's MSI capability with the
// local APIC address and the vector, enable it. Legacy INTx is not modelled.

import { KEMU_MSI_CAP, MSI_ADDR_BASE, PCI_MSI_FLAGS_ENABLE } from "../../../hw/pci.ts";
import { PCI_IRQ_MSI, type pci_dev } from "../../../include/linux/pci.ts";
import { EINVAL, ENOSPC } from "../../../include/uapi/asm-generic/errno.ts";

/** pci_alloc_irq_vectors(): 1 (the vector count) or -errno; only MSI is offered. */
export function pci_alloc_irq_vectors(pdev: pci_dev, min_vecs: number, max_vecs: number, flags: number): number {
  if (min_vecs < 1 || max_vecs < min_vecs) return -EINVAL;
  if (!(flags & PCI_IRQ_MSI) || min_vecs > 1) return -ENOSPC;
  if (pdev.msi_enabled) return -EINVAL;
  const bus = pdev.bus;
  const irq = bus.irq.irq_alloc("PCI-MSI", pdev.devfn * 32);
  if (irq < 0) return irq;
  bus.pci_write_config_dword(pdev, KEMU_MSI_CAP + 4, MSI_ADDR_BASE);
  bus.pci_write_config_dword(pdev, KEMU_MSI_CAP + 8, 0);
  bus.pci_write_config_dword(pdev, KEMU_MSI_CAP + 12, irq);
  const ctrl = bus.pci_read_config_word(pdev, KEMU_MSI_CAP + 2);
  bus.pci_write_config_word(pdev, KEMU_MSI_CAP + 2, ctrl | PCI_MSI_FLAGS_ENABLE);
  pdev.irq = irq;
  pdev.msi_enabled = true;
  return 1;
}

/** pci_irq_vector(): the Linux interrupt number of vector `nr`, or -EINVAL. */
export function pci_irq_vector(pdev: pci_dev, nr: number): number {
  return pdev.msi_enabled && nr === 0 ? pdev.irq : -EINVAL;
}

/** pci_free_irq_vectors(): MSI off, the interrupt number freed (its handlers must be gone). */
export function pci_free_irq_vectors(pdev: pci_dev): void {
  if (!pdev.msi_enabled) return;
  const bus = pdev.bus;
  const ctrl = bus.pci_read_config_word(pdev, KEMU_MSI_CAP + 2);
  bus.pci_write_config_word(pdev, KEMU_MSI_CAP + 2, ctrl & ~PCI_MSI_FLAGS_ENABLE);
  bus.irq.irq_free_descs(pdev.irq, 1);
  pdev.irq = 0;
  pdev.msi_enabled = false;
}

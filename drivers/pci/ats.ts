// Mirrors drivers/pci/ats.c (Linux 6.5): enabling a PCIe function's Address Translation
// Services, Page Request Interface and PASID capabilities through extended config space.
// pci_ats_init/pci_pri_init/pci_pasid_init are merged into pci_ats_init(), which the IOMMU
// driver calls when it probes a device (the PCI core's pci_init_capabilities does in Linux).

import { EBUSY, EINVAL } from "../../include/uapi/asm-generic/errno.ts";
import type { pci_dev } from "../../include/linux/pci.ts";
import { pci_find_ext_capability } from "./pci.ts";

export const PCI_EXT_CAP_ID_ATS = 0x0f;
export const PCI_EXT_CAP_ID_PRI = 0x13;
export const PCI_EXT_CAP_ID_PASID = 0x1b;

export const PCI_ATS_CAP = 0x04;
export const PCI_ATS_MAX_QDEP = 32;
export const PCI_ATS_CTRL = 0x06;
export const PCI_ATS_CTRL_ENABLE = 0x8000;
export const PCI_ATS_MIN_STU = 12;

export const PCI_PRI_CTRL = 0x04;
export const PCI_PRI_CTRL_ENABLE = 0x0001;
export const PCI_PRI_CTRL_RESET = 0x0002;
export const PCI_PRI_STATUS = 0x06;
export const PCI_PRI_STATUS_STOPPED = 0x0100;
export const PCI_PRI_STATUS_PASID = 0x8000;
export const PCI_PRI_MAX_REQ = 0x08;
export const PCI_PRI_ALLOC_REQ = 0x0c;

export const PCI_PASID_CAP = 0x04;
export const PCI_PASID_CAP_EXEC = 0x0002;
export const PCI_PASID_CAP_PRIV = 0x0004;
export const PCI_PASID_CTRL = 0x06;
export const PCI_PASID_CTRL_ENABLE = 0x0001;

function PCI_ATS_CAP_QDEP(cap: number): number {
  return cap & 0x1f;
}

function PCI_PASID_CAP_WIDTH(cap: number): number {
  return (cap >>> 8) & 0x1f;
}

/** Finds the three capabilities (pci_ats_init + pci_pri_init + pci_pasid_init). */
export function pci_ats_init(pdev: pci_dev): void {
  pdev.ats_cap = pci_find_ext_capability(pdev, PCI_EXT_CAP_ID_ATS);
  pdev.pri_cap = pci_find_ext_capability(pdev, PCI_EXT_CAP_ID_PRI);
  pdev.pasid_cap = pci_find_ext_capability(pdev, PCI_EXT_CAP_ID_PASID);
}

export function pci_ats_supported(pdev: pci_dev): boolean {
  return pdev.ats_cap !== 0;
}

/** pci_enable_ats(): `ps` is the Smallest Translation Unit as a page shift. */
export function pci_enable_ats(pdev: pci_dev, ps: number): number {
  if (!pci_ats_supported(pdev)) return -EINVAL;
  if (pdev.bus.k.WARN_ON(pdev.ats_enabled)) return -EBUSY;
  if (ps < PCI_ATS_MIN_STU) return -EINVAL;
  pdev.ats_stu = ps;
  pdev.bus.pci_write_config_word(pdev, pdev.ats_cap + PCI_ATS_CTRL, PCI_ATS_CTRL_ENABLE | (ps - PCI_ATS_MIN_STU));
  pdev.ats_enabled = true;
  return 0;
}

export function pci_disable_ats(pdev: pci_dev): void {
  if (pdev.bus.k.WARN_ON(!pdev.ats_enabled)) return;
  const ctrl = pdev.bus.pci_read_config_word(pdev, pdev.ats_cap + PCI_ATS_CTRL);
  pdev.bus.pci_write_config_word(pdev, pdev.ats_cap + PCI_ATS_CTRL, ctrl & ~PCI_ATS_CTRL_ENABLE);
  pdev.ats_enabled = false;
}

/** pci_ats_queue_depth(): the Invalidate Queue Depth (0 in the field means 32). */
export function pci_ats_queue_depth(pdev: pci_dev): number {
  if (!pdev.ats_cap) return -EINVAL;
  const cap = pdev.bus.pci_read_config_word(pdev, pdev.ats_cap + PCI_ATS_CAP);
  return PCI_ATS_CAP_QDEP(cap) || PCI_ATS_MAX_QDEP;
}

export function pci_pri_supported(pdev: pci_dev): boolean {
  return pdev.pri_cap !== 0;
}

/** pci_enable_pri(): allocates min(capacity, reqs) outstanding page requests; PRI must be stopped. */
export function pci_enable_pri(pdev: pci_dev, reqs: number): number {
  if (pdev.bus.k.WARN_ON(pdev.pri_enabled)) return -EBUSY;
  if (!pdev.pri_cap) return -EINVAL;
  const status = pdev.bus.pci_read_config_word(pdev, pdev.pri_cap + PCI_PRI_STATUS);
  if (!(status & PCI_PRI_STATUS_STOPPED)) return -EBUSY;
  const max = pdev.bus.pci_read_config_dword(pdev, pdev.pri_cap + PCI_PRI_MAX_REQ);
  reqs = Math.min(max, reqs);
  pdev.pri_reqs_alloc = reqs;
  pdev.bus.pci_write_config_dword(pdev, pdev.pri_cap + PCI_PRI_ALLOC_REQ, reqs);
  pdev.bus.pci_write_config_word(pdev, pdev.pri_cap + PCI_PRI_CTRL, PCI_PRI_CTRL_ENABLE);
  pdev.pri_enabled = true;
  return 0;
}

export function pci_disable_pri(pdev: pci_dev): void {
  if (pdev.bus.k.WARN_ON(!pdev.pri_enabled)) return;
  const ctrl = pdev.bus.pci_read_config_word(pdev, pdev.pri_cap + PCI_PRI_CTRL);
  pdev.bus.pci_write_config_word(pdev, pdev.pri_cap + PCI_PRI_CTRL, ctrl & ~PCI_PRI_CTRL_ENABLE);
  pdev.pri_enabled = false;
}

/** pci_reset_pri(): clears the PRI state machine; only while PRI is disabled. */
export function pci_reset_pri(pdev: pci_dev): number {
  if (pdev.bus.k.WARN_ON(pdev.pri_enabled)) return -EBUSY;
  if (!pdev.pri_cap) return -EINVAL;
  pdev.bus.pci_write_config_word(pdev, pdev.pri_cap + PCI_PRI_CTRL, PCI_PRI_CTRL_RESET);
  return 0;
}

/** pci_prg_resp_pasid_required(): the function needs the PASID in PRG Responses. */
export function pci_prg_resp_pasid_required(pdev: pci_dev): boolean {
  if (!pdev.pri_cap) return false;
  return (pdev.bus.pci_read_config_word(pdev, pdev.pri_cap + PCI_PRI_STATUS) & PCI_PRI_STATUS_PASID) !== 0;
}

/** pci_enable_pasid(): `features` (EXEC/PRIV) must all be supported. */
export function pci_enable_pasid(pdev: pci_dev, features: number): number {
  if (pdev.bus.k.WARN_ON(pdev.pasid_enabled)) return -EBUSY;
  if (!pdev.pasid_cap) return -EINVAL;
  const supported = pdev.bus.pci_read_config_word(pdev, pdev.pasid_cap + PCI_PASID_CAP) &
    (PCI_PASID_CAP_EXEC | PCI_PASID_CAP_PRIV);
  if ((supported & features) !== features) return -EINVAL;
  pdev.pasid_features = features;
  pdev.bus.pci_write_config_word(pdev, pdev.pasid_cap + PCI_PASID_CTRL, PCI_PASID_CTRL_ENABLE | features);
  pdev.pasid_enabled = true;
  return 0;
}

export function pci_disable_pasid(pdev: pci_dev): void {
  if (pdev.bus.k.WARN_ON(!pdev.pasid_enabled)) return;
  pdev.bus.pci_write_config_word(pdev, pdev.pasid_cap + PCI_PASID_CTRL, 0);
  pdev.pasid_enabled = false;
}

export function pci_pasid_features(pdev: pci_dev): number {
  if (!pdev.pasid_cap) return -EINVAL;
  return pdev.bus.pci_read_config_word(pdev, pdev.pasid_cap + PCI_PASID_CAP) & (PCI_PASID_CAP_EXEC | PCI_PASID_CAP_PRIV);
}

/** pci_max_pasids(): 2^(Max PASID Width). */
export function pci_max_pasids(pdev: pci_dev): number {
  if (!pdev.pasid_cap) return -EINVAL;
  return 2 ** PCI_PASID_CAP_WIDTH(pdev.bus.pci_read_config_word(pdev, pdev.pasid_cap + PCI_PASID_CAP));
}

// Mirrors include/linux/amd-iommu.h (Linux 6.5, the last release with the IOMMUv2 API; the
// header lost these declarations in 6.7 when iommu_v2 was removed): the callback types and
// response codes a device driver (amdkfd) uses with amd_iommu_bind_pasid() and friends, and
// the capability flags of amd_iommu_device_info().

import type { pci_dev } from "./pci.ts";

/** amd_iommu_invalid_ppr_cb return values. */
export const AMD_IOMMU_INV_PRI_RSP_SUCCESS = 0;
export const AMD_IOMMU_INV_PRI_RSP_INVALID = 1;
/** The device must disable PRI when it receives this response. */
export const AMD_IOMMU_INV_PRI_RSP_FAIL = 2;

/**
 * Called (from the iommu_wq worker, may sleep) when a page request cannot be resolved: no VMA,
 * an access the VMA forbids, or handle_mm_fault() failed. Returns one of the codes above.
 */
export type amd_iommu_invalid_ppr_cb = (pdev: pci_dev, pasid: number, address: number, flags: number) => number | Promise<number>;

/** Called (may sleep) when a bound PASID context must go away, typically because its mm exits. */
export type amd_iommu_invalidate_ctx = (pdev: pci_dev, pasid: number) => void | Promise<void>;

/** amd_iommu_device_info.flags */
export const AMD_IOMMU_DEVICE_FLAG_ATS_SUP = 0x1;
export const AMD_IOMMU_DEVICE_FLAG_PRI_SUP = 0x2;
export const AMD_IOMMU_DEVICE_FLAG_PASID_SUP = 0x4;
export const AMD_IOMMU_DEVICE_FLAG_EXEC_SUP = 0x8;
export const AMD_IOMMU_DEVICE_FLAG_PRIV_SUP = 0x10;

export class amd_iommu_device_info {
  max_pasids = 0;
  flags = 0;
}

// kemu addition (Linux 6.8 has no AMD IOMMU PPR tracepoints; iommu:io_page_fault is for
// report_iommu_fault, which the IOMMUv2 PPR path does not use): the page-request side of
// drivers/iommu/amd, system "amd_iommu":
//   ppr_request  — ppr_notifier() took a PPR log entry (device, PASID, address, PRG tag, R/W/X)
//   complete_ppr — amd_iommu_complete_ppr() queued the PRG Response with this status

import { TRACE_EVENT } from "../../linux/tracepoint.ts";

/** PPR response codes (PPR_SUCCESS / PPR_INVALID / PPR_FAILURE) by value. */
function status_name(s: number): string {
  return s === 0 ? "SUCCESS" : s === 1 ? "INVALID" : s === 0xf ? "FAILURE" : `0x${s.toString(16)}`;
}

export const trace_amd_iommu_ppr_request = TRACE_EVENT<{ sbdf: number; pasid: number; address: number; tag: number; last: boolean; access: string }>(
  "amd_iommu", "ppr_request",
  (a) => `sbdf=0x${a.sbdf.toString(16)} pasid=0x${a.pasid.toString(16)} address=0x${a.address.toString(16)} tag=0x${a.tag.toString(16)}${a.last ? " last" : ""} access=${a.access}`,
);

export const trace_amd_iommu_complete_ppr = TRACE_EVENT<{ pasid: number; tag: number; status: number }>(
  "amd_iommu", "complete_ppr",
  (a) => `pasid=0x${a.pasid.toString(16)} tag=0x${a.tag.toString(16)} status=${status_name(a.status)}`,
);

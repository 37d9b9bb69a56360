// KUnit suite for the AMD IOMMU encodings of amd_iommu_types.h §1.2: the PPR log entry (tag
// decoding into PRG index + "last", the split 20-bit PASID, flags, type), the commands the driver
// builds (COMPLETE_PPR with and without the PASID, the PASID flushes of one page and of
// everything, the device-TLB flush with its split PASID, COMPLETION_WAIT), the invalidation
// range the hardware decodes from the S bit, and the GCR3 root split over a device-table entry.

import {
  CMD_COMPLETE_PPR, CMD_COMPL_WAIT, CMD_INV_IOMMU_PAGES, CMD_INV_IOTLB_PAGES, DTE_GCR3_SHIFT_A_HI, DTE_GCR3_SHIFT_B,
  DTE_GCR3_SHIFT_C_HI, DTE_GCR3_VAL_A, DTE_GCR3_VAL_B, DTE_GCR3_VAL_C, PPR_DEVID, PPR_FAILURE, PPR_FAULT_USER,
  PPR_FAULT_WRITE, PPR_FLAGS, PPR_PASID, PPR_REQ_FAULT, PPR_REQ_TYPE, PPR_TAG, dte_gcr3_root, iommu_cmd,
  ppr_entry_word0, ppr_tag_index, ppr_tag_last,
} from "../../../iommu/amd/amd_iommu_types.ts";
import {
  build_complete_ppr, build_completion_wait, build_inv_iommu_pasid, build_inv_iotlb_pasid,
} from "../../../iommu/amd/iommu.ts";
import { AmdIommuHw } from "../../../hw/amd_iommu/iommu.ts";
import { KUNIT_ARRAY_PARAM, KUNIT_CASE, KUNIT_CASE_PARAM, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_TRUE, type kunit, type kunit_suite } from "../../../lib/kunit/test.ts";

interface tag_case {
  raw: number;
  index: number;
  last: boolean;
}

const TAGS: tag_case[] = [
  { raw: 0x000, index: 0, last: false },
  { raw: 0x001, index: 1, last: false },
  { raw: 0x1ff, index: 511, last: false },
  { raw: 0x200, index: 0, last: true },
  { raw: 0x3ff, index: 511, last: true },
];

/** ppr_notifier's decoding: bits 8:0 are the PRG index, bit 9 is only the "last" flag. */
function tag_decoding(test: kunit): void {
  const c = test.param_value as tag_case;
  KUNIT_EXPECT_EQ(test, ppr_tag_index(c.raw), c.index);
  KUNIT_EXPECT_EQ(test, ppr_tag_last(c.raw), c.last);
}

/** A PPR log entry survives encode → decode with a 20-bit PASID split over bits 31:16 and 45:42. */
function ppr_entry_round_trip(test: kunit): void {
  const w = ppr_entry_word0(0x0318, 0xabcde, 0x27f, PPR_FAULT_WRITE | PPR_FAULT_USER, PPR_REQ_FAULT);
  KUNIT_EXPECT_EQ(test, PPR_DEVID(w.lo), 0x0318);
  KUNIT_EXPECT_EQ(test, PPR_PASID(w.lo, w.hi), 0xabcde);
  KUNIT_EXPECT_EQ(test, PPR_TAG(w.hi), 0x27f);
  KUNIT_EXPECT_EQ(test, PPR_FLAGS(w.hi), PPR_FAULT_WRITE | PPR_FAULT_USER);
  KUNIT_EXPECT_EQ(test, PPR_REQ_TYPE(w.hi), PPR_REQ_FAULT);
  KUNIT_EXPECT_EQ(test, w.lo >>> 16, 0xbcde, "PASID[15:0] in bits 31:16");
  KUNIT_EXPECT_EQ(test, (w.hi >>> 10) & 0xf, 0xa, "PASID[19:16] in bits 45:42");
}

/** COMPLETE_PPR: PRG index and status in dword 3; PASID + GN only when the device needs them. */
function complete_ppr_encoding(test: kunit): void {
  const cmd = new iommu_cmd();
  build_complete_ppr(cmd, 0x18, 0x2a, PPR_FAILURE, 0x3ff, false);
  KUNIT_EXPECT_EQ(test, cmd.data[0], 0x18);
  KUNIT_EXPECT_EQ(test, cmd.data[1], CMD_COMPLETE_PPR << 28, "no PASID without pri_tlp");
  KUNIT_EXPECT_EQ(test, cmd.data[2], 0);
  KUNIT_EXPECT_EQ(test, cmd.data[3], 0x1ff | (0xf << 12), "tag masked to 9 bits, status in 15:12");
  build_complete_ppr(cmd, 0x18, 0x2a, 1, 5, true);
  KUNIT_EXPECT_EQ(test, cmd.data[1], ((CMD_COMPLETE_PPR << 28) | 0x2a) >>> 0);
  KUNIT_EXPECT_EQ(test, cmd.data[2], 0x4, "GN");
  KUNIT_EXPECT_EQ(test, cmd.data[3], 5 | (1 << 12));
}

/** INVALIDATE_IOMMU_PAGES for a PASID: one page (S=0) or everything (S=1, 0x7fff_ffff_ffff_f000). */
function inv_iommu_pasid_encoding(test: kunit): void {
  const cmd = new iommu_cmd();
  build_inv_iommu_pasid(cmd, 7, 0x2a, 0x7f00_1234_5678, false);
  KUNIT_EXPECT_EQ(test, cmd.data[0], 0x2a);
  KUNIT_EXPECT_EQ(test, cmd.data[1], ((CMD_INV_IOMMU_PAGES << 28) | 7) >>> 0);
  KUNIT_EXPECT_EQ(test, cmd.data[2], 0x1234_5000 | 0x2 | 0x4, "page address, PDE, GN, no S");
  KUNIT_EXPECT_EQ(test, cmd.data[3], 0x7f00);
  build_inv_iommu_pasid(cmd, 7, 0x2a, "all", true);
  KUNIT_EXPECT_EQ(test, cmd.data[2], (0xfffff000 | 0x7) >>> 0);
  KUNIT_EXPECT_EQ(test, cmd.data[3], 0x7fffffff);
}

/** INVALIDATE_IOTLB_PAGES: PASID[15:8] in dword 0 bits 23:16, PASID[7:0] in dword 1 bits 23:16. */
function inv_iotlb_pasid_encoding(test: kunit): void {
  const cmd = new iommu_cmd();
  build_inv_iotlb_pasid(cmd, 0x18, 0x1234, 32, 0x5000, false);
  KUNIT_EXPECT_EQ(test, cmd.data[0], (0x18 | (0x12 << 16) | (32 << 24)) >>> 0);
  KUNIT_EXPECT_EQ(test, cmd.data[1], ((CMD_INV_IOTLB_PAGES << 28) | 0x18 | (0x34 << 16)) >>> 0);
  KUNIT_EXPECT_EQ(test, cmd.data[2], 0x5000 | 0x4);
}

function completion_wait_encoding(test: kunit): void {
  const cmd = new iommu_cmd();
  build_completion_wait(cmd, 0x1_2345_6000, 2 ** 32 + 3);
  KUNIT_EXPECT_EQ(test, cmd.data[0], 0x2345_6001, "semaphore address with the store bit");
  KUNIT_EXPECT_EQ(test, cmd.data[1], ((CMD_COMPL_WAIT << 28) | 1) >>> 0);
  KUNIT_EXPECT_EQ(test, cmd.data[2], 3);
  KUNIT_EXPECT_EQ(test, cmd.data[3], 1);
}

/** The hardware's view of an invalidation: S=0 one page; S=1 sized by the lowest clear bit ≥ 12. */
function inv_range_decoding(test: kunit): void {
  KUNIT_EXPECT_EQ(test, AmdIommuHw.inv_range(0x0000_5000, 0, false).join(), [0x5000, 0x6000].join());
  KUNIT_EXPECT_EQ(test, AmdIommuHw.inv_range(0x0000_4000, 0, true).join(), [0x4000, 0x6000].join(), "bit 12 clear: 8 KiB");
  KUNIT_EXPECT_EQ(test, AmdIommuHw.inv_range(0x0000_5000, 0, true).join(), [0x4000, 0x8000].join(), "bit 13 clear: 16 KiB");
  KUNIT_EXPECT_EQ(test, AmdIommuHw.inv_range(0x0000_7000, 0, true).join(), [0, 0x10000].join(), "bits 12-14 set: 64 KiB");
  const all = AmdIommuHw.inv_range(0xfffff000, 0x7fffffff, true);
  KUNIT_EXPECT_EQ(test, all[0], 0);
  KUNIT_EXPECT_EQ(test, all[1], Infinity, "0x7fff_ffff_ffff_f000 with S: everything");
}

/** The GCR3 root pointer is split over DTE word 0 [60:58] and word 1 [31:16], [63:43]. */
function dte_gcr3_split(test: kunit): void {
  const root = 0x8_7654_3000;
  const w0hi = DTE_GCR3_VAL_A(root) << DTE_GCR3_SHIFT_A_HI;
  const w1lo = DTE_GCR3_VAL_B(root) << DTE_GCR3_SHIFT_B;
  const w1hi = DTE_GCR3_VAL_C(root) << DTE_GCR3_SHIFT_C_HI;
  KUNIT_EXPECT_EQ(test, dte_gcr3_root(w0hi, w1lo, w1hi), root);
  KUNIT_EXPECT_TRUE(test, DTE_GCR3_VAL_A(root) < 8 && DTE_GCR3_VAL_B(root) < 0x10000);
  KUNIT_EXPECT_FALSE(test, dte_gcr3_root(0, 0, 0) !== 0);
}

export const amd_iommu_encoding_suite: kunit_suite = {
  name: "amd_iommu_encoding",
  test_cases: [
    KUNIT_CASE_PARAM(tag_decoding, KUNIT_ARRAY_PARAM(TAGS, (c) => `tag 0x${c.raw.toString(16)}`)),
    KUNIT_CASE(ppr_entry_round_trip),
    KUNIT_CASE(complete_ppr_encoding),
    KUNIT_CASE(inv_iommu_pasid_encoding),
    KUNIT_CASE(inv_iotlb_pasid_encoding),
    KUNIT_CASE(completion_wait_encoding),
    KUNIT_CASE(inv_range_decoding),
    KUNIT_CASE(dte_gcr3_split),
  ],
};

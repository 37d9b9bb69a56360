// Mirrors drivers/iommu/amd/amd_iommu_types.h (Linux 6.5 — the last form that carries the
// IOMMUv2/PPR definitions; 6.7 removed iommu_v2 and PPR support): MMIO register offsets, control
// and status bits, the extended-feature bits, the command-buffer and PPR-log encodings, the
// device-table-entry and GCR3 layout, and the amd_iommu_fault payload of the PPR notifier chain.
//
// 64-bit hardware words are handled as two 32-bit halves {lo, hi}; every field helper below
// works on one half (bit numbers of the upper half are written as "bit N of the 64-bit word").

import type { Kernel } from "../../kernel/kernel.ts";
import { spinlock_t } from "../../kernel/locking/spinlock.ts";
import type { device } from "../../drivers/base/core.ts";
import type { pci_dev } from "../../include/linux/pci.ts";
import type { iomem } from "../../include/asm-generic/io.ts";
import { iommu_domain } from "../iommu.ts";

// ---- MMIO registers (byte offsets into the IOMMU's MMIO window) --------------------------------

export const MMIO_DEV_TABLE_OFFSET = 0x0000;
export const MMIO_CMD_BUF_OFFSET = 0x0008;
export const MMIO_EVT_BUF_OFFSET = 0x0010;
export const MMIO_CONTROL_OFFSET = 0x0018;
export const MMIO_EXCL_BASE_OFFSET = 0x0020;
export const MMIO_EXCL_LIMIT_OFFSET = 0x0028;
export const MMIO_EXT_FEATURES = 0x0030;
export const MMIO_PPR_LOG_OFFSET = 0x0038;
export const MMIO_INTCAPXT_EVT_OFFSET = 0x0170;
export const MMIO_INTCAPXT_PPR_OFFSET = 0x0178;
export const MMIO_INTCAPXT_GALOG_OFFSET = 0x0180;
export const MMIO_CMD_HEAD_OFFSET = 0x2000;
export const MMIO_CMD_TAIL_OFFSET = 0x2008;
export const MMIO_EVT_HEAD_OFFSET = 0x2010;
export const MMIO_EVT_TAIL_OFFSET = 0x2018;
export const MMIO_STATUS_OFFSET = 0x2020;
export const MMIO_PPR_HEAD_OFFSET = 0x2030;
export const MMIO_PPR_TAIL_OFFSET = 0x2038;
/** kemu maps the architectural register window (the performance counters above it are absent). */
export const MMIO_REGION_LENGTH = 0x4000;

// ---- MMIO_STATUS bits (write 1 to clear the interrupt/overflow bits) ---------------------------

export const MMIO_STATUS_EVT_OVERFLOW_INT_MASK = 1 << 0;
export const MMIO_STATUS_EVT_INT_MASK = 1 << 1;
export const MMIO_STATUS_COM_WAIT_INT_MASK = 1 << 2;
export const MMIO_STATUS_EVT_RUN_MASK = 1 << 3;
export const MMIO_STATUS_CMDBUF_RUN_MASK = 1 << 4;
export const MMIO_STATUS_PPR_OVERFLOW_MASK = 1 << 5;
export const MMIO_STATUS_PPR_INT_MASK = 1 << 6;
export const MMIO_STATUS_PPR_RUN_MASK = 1 << 7;
export const MMIO_STATUS_GALOG_INT_MASK = 1 << 10;
/** The sources amd_iommu_int_thread() loops on (6.5: AMD_IOMMU_INT_MASK). */
export const AMD_IOMMU_INT_MASK = MMIO_STATUS_EVT_OVERFLOW_INT_MASK | MMIO_STATUS_EVT_INT_MASK |
  MMIO_STATUS_PPR_INT_MASK | MMIO_STATUS_GALOG_INT_MASK;

// ---- MMIO_CONTROL bit numbers (of the 64-bit register) ----------------------------------------

export const CONTROL_IOMMU_EN = 0;
export const CONTROL_HT_TUN_EN = 1;
export const CONTROL_EVT_LOG_EN = 2;
export const CONTROL_EVT_INT_EN = 3;
export const CONTROL_COMWAIT_EN = 4;
export const CONTROL_INV_TIMEOUT = 5;
export const CONTROL_PASSPW_EN = 8;
export const CONTROL_RESPASSPW_EN = 9;
export const CONTROL_COHERENT_EN = 10;
export const CONTROL_ISOC_EN = 11;
export const CONTROL_CMDBUF_EN = 12;
export const CONTROL_PPRLOG_EN = 13;
export const CONTROL_PPRINT_EN = 14;
export const CONTROL_PPR_EN = 15;
export const CONTROL_GT_EN = 16;
export const CONTROL_GA_EN = 17;
export const CONTROL_XT_EN = 50;
export const CONTROL_INTCAPXT_EN = 51;

// ---- Extended Feature Register bits (of the 64-bit register) ----------------------------------

export const FEATURE_PREFETCH_BIT = 0;
export const FEATURE_PPR_BIT = 1;
export const FEATURE_X2APIC_BIT = 2;
export const FEATURE_NX_BIT = 3;
export const FEATURE_GT_BIT = 4;
export const FEATURE_IA_BIT = 6;
export const FEATURE_GA_BIT = 7;
export const FEATURE_HE_BIT = 8;
export const FEATURE_PC_BIT = 9;
/** GLXSup: bits 15:14, the largest GCR3 level count the hardware walks (0 → 1 level ... 2 → 3). */
export const FEATURE_GLXVAL_SHIFT = 14;
export const FEATURE_GLXVAL_MASK = 0x3;
/** PASmax: bits 36:32, the number of PASID bits minus one. */
export const FEATURE_PASID_SHIFT = 32;
export const FEATURE_PASID_MASK = 0x1f;

/** Bit `bit` of a 64-bit register held as {lo, hi}. */
export function reg64_test(lo: number, hi: number, bit: number): boolean {
  return bit < 32 ? (lo & (1 << bit)) !== 0 : (hi & (1 << (bit - 32))) !== 0;
}

// ---- commands (16 bytes, opcode in bits 31:28 of dword 1) -------------------------------------

export const CMD_COMPL_WAIT = 0x01;
export const CMD_INV_DEV_ENTRY = 0x02;
export const CMD_INV_IOMMU_PAGES = 0x03;
export const CMD_INV_IOTLB_PAGES = 0x04;
export const CMD_INV_IRT = 0x05;
export const CMD_PREFETCH_IOMMU_PAGES = 0x06;
export const CMD_COMPLETE_PPR = 0x07;
export const CMD_INV_ALL = 0x08;
export const CMD_TYPE_SHIFT = 28;

export const CMD_COMPL_WAIT_STORE_MASK = 0x01;
export const CMD_COMPL_WAIT_INT_MASK = 0x02;
export const CMD_INV_IOMMU_PAGES_SIZE_MASK = 0x01;
export const CMD_INV_IOMMU_PAGES_PDE_MASK = 0x02;
export const CMD_INV_IOMMU_PAGES_GN_MASK = 0x04;

export const PPR_STATUS_MASK = 0xf;
export const PPR_STATUS_SHIFT = 12;

/** CMD_INV_IOMMU_ALL_PAGES_ADDRESS = 0x7fff_ffff_ffff_ffff, as {lo, hi} (low 12 bits are flags). */
export const CMD_INV_IOMMU_ALL_PAGES_ADDRESS_LO = 0xfffff000;
export const CMD_INV_IOMMU_ALL_PAGES_ADDRESS_HI = 0x7fffffff;

export const CMD_BUFFER_SIZE = 8192;
export const CMD_BUFFER_ENTRIES = 512;
/** The 4-bit length code (log2 of the entry count) sits in bits 59:56 of the base register. */
export const MMIO_CMD_SIZE_SHIFT = 56;
export const MMIO_LEN_CODE_512 = 0x9;

/** One 16-byte command as four dwords (struct iommu_cmd). */
export class iommu_cmd {
  readonly data = new Uint32Array(4);
}

export function CMD_SET_TYPE(cmd: iommu_cmd, t: number): void {
  cmd.data[1] = (cmd.data[1]! | (t << CMD_TYPE_SHIFT)) >>> 0;
}

// ---- event log ---------------------------------------------------------------------------------

export const EVT_BUFFER_SIZE = 8192;
export const EVENT_ENTRY_SIZE = 0x10;
export const EVENT_TYPE_SHIFT = 28;
export const EVENT_TYPE_MASK = 0xf;
export const EVENT_TYPE_ILL_DEV = 0x1;
export const EVENT_TYPE_IO_FAULT = 0x2;
export const EVENT_TYPE_DEV_TAB_ERR = 0x3;
export const EVENT_TYPE_PAGE_TAB_ERR = 0x4;
export const EVENT_TYPE_ILL_CMD = 0x5;
export const EVENT_TYPE_CMD_HARD_ERR = 0x6;
export const EVENT_TYPE_IOTLB_INV_TO = 0x7;
export const EVENT_TYPE_INV_DEV_REQ = 0x8;
export const EVENT_TYPE_INV_PPR_REQ = 0x9;
export const EVENT_DEVID_MASK = 0xffff;
export const EVENT_FLAGS_MASK = 0xfff;
export const EVENT_FLAGS_SHIFT = 0x10;

// ---- PPR log -----------------------------------------------------------------------------------

export const PPR_LOG_ENTRIES = 512;
export const PPR_LOG_SIZE_SHIFT = 56;
export const PPR_ENTRY_SIZE = 16;
export const PPR_LOG_SIZE = PPR_ENTRY_SIZE * PPR_LOG_ENTRIES;
export const PPR_REQ_FAULT = 0x01;

/** Entry word 0 bits 63:60 — the request type (from the upper half). */
export function PPR_REQ_TYPE(hi: number): number {
  return (hi >>> 28) & 0xf;
}

/** Bits 59:48 — the 12 PPR flag bits. */
export function PPR_FLAGS(hi: number): number {
  return (hi >>> 16) & 0xfff;
}

/** Bits 15:0 — the requester's DeviceID (bus << 8 | devfn). */
export function PPR_DEVID(lo: number): number {
  return lo & 0xffff;
}

/** Bits 41:32 — the raw 10-bit tag: PRG index in 8:0, "last request in group" in bit 9. */
export function PPR_TAG(hi: number): number {
  return hi & 0x3ff;
}

/** PASID[15:0] from bits 31:16 and PASID[19:16] from bits 45:42. */
export function PPR_PASID(lo: number, hi: number): number {
  return ((hi >>> 10) & 0xf) * 0x10000 + (lo >>> 16);
}

/** Builds word 0 of a PPR log entry (what the hardware writes). */
export function ppr_entry_word0(devid: number, pasid: number, tag: number, flags: number, type: number): { lo: number; hi: number } {
  const lo = ((devid & 0xffff) | ((pasid % 0x10000) << 16)) >>> 0;
  const hi = ((tag & 0x3ff) | ((Math.floor(pasid / 0x10000) & 0xf) << 10) | ((flags & 0xfff) << 16) | ((type & 0xf) << 28)) >>> 0;
  return { lo, hi };
}

// PPR flag bits (within the 12-bit field).
export const PPR_FAULT_EXEC = 1 << 1;
export const PPR_FAULT_READ = 1 << 2;
export const PPR_FAULT_WRITE = 1 << 5;
export const PPR_FAULT_USER = 1 << 6;
export const PPR_FAULT_RSVD = 1 << 7;
export const PPR_FAULT_GN = 1 << 8;

// PRG response codes carried by COMPLETE_PPR (PCIe Page Request Group Response).
export const PPR_SUCCESS = 0x0;
export const PPR_INVALID = 0x1;
export const PPR_FAILURE = 0xf;

/** Tag decoding as ppr_notifier() does it: the PRG index and the "last request" flag. */
export function ppr_tag_index(raw_tag: number): number {
  return raw_tag & 0x1ff;
}

export function ppr_tag_last(raw_tag: number): boolean {
  return ((raw_tag >>> 9) & 1) === 1;
}

// ---- device table entries (256 bits: four 64-bit words) ----------------------------------------

export const DEV_TABLE_ENTRY_SIZE = 32;
export const MAX_DEV_TABLE_ENTRIES = 0xffff;
/** Word 0, low half. */
export const DTE_FLAG_V = 1 << 0;
export const DTE_FLAG_TV = 1 << 1;
export const DEV_ENTRY_MODE_MASK = 0x07;
export const DEV_ENTRY_MODE_SHIFT = 0x09;
/** Word 0, high half: bit 52 PPR, bit 54 GIoV, bit 55 GV, bits 57:56 GLX, 60:58 GCR3[14:12], 61 IR, 62 IW. */
export const DTE_PPR_HI = 1 << (52 - 32);
export const DTE_GIOV_HI = 1 << (54 - 32);
export const DTE_FLAG_GV_HI = 1 << (55 - 32);
export const DTE_GLX_SHIFT_HI = 56 - 32;
export const DTE_GLX_MASK = 3;
export const DTE_GCR3_SHIFT_A_HI = 58 - 32;
export const DTE_FLAG_IR_HI = 1 << (61 - 32);
export const DTE_FLAG_IW_HI = 1 << (62 - 32);
/** Word 1: domain id in bits 15:0, GCR3[30:15] in bits 31:16, IOTLB enable in bit 32, GCR3[51:31] in bits 63:43. */
export const DEV_DOMID_MASK = 0xffff;
export const DTE_GCR3_SHIFT_B = 16;
export const DTE_FLAG_IOTLB_HI = 1 << 0;
export const DTE_GCR3_SHIFT_C_HI = 43 - 32;

/** The three pieces of a GCR3 table root address spread over the entry (DTE_GCR3_VAL_A/B/C). */
export function DTE_GCR3_VAL_A(pa: number): number {
  return Math.floor(pa / 2 ** 12) % 8;
}

export function DTE_GCR3_VAL_B(pa: number): number {
  return Math.floor(pa / 2 ** 15) % 0x10000;
}

export function DTE_GCR3_VAL_C(pa: number): number {
  return Math.floor(pa / 2 ** 31) % 0x200000;
}

/** Reassembles the GCR3 root pointer from DTE word 0 high half and word 1. */
export function dte_gcr3_root(w0_hi: number, w1_lo: number, w1_hi: number): number {
  const a = (w0_hi >>> DTE_GCR3_SHIFT_A_HI) & 0x7;
  const b = (w1_lo >>> DTE_GCR3_SHIFT_B) & 0xffff;
  const c = (w1_hi >>> DTE_GCR3_SHIFT_C_HI) & 0x1fffff;
  return a * 2 ** 12 + b * 2 ** 15 + c * 2 ** 31;
}

export const PAGE_MODE_NONE = 0x00;

/** GCR3 table entries: a physical address with the VALID bit. */
export const GCR3_VALID = 0x01;

/** Largest PASID + 1 the architecture allows (20 bits). */
export const PASID_MASK = 0xfffff;

// ---- protection domain flags ------------------------------------------------------------------

export const PD_DMA_OPS_MASK = 1 << 0;
export const PD_DEFAULT_MASK = 1 << 1;
export const PD_PASSTHROUGH_MASK = 1 << 2;
/** The domain has a GCR3 table (IOMMUv2 mode). */
export const PD_IOMMUV2_MASK = 1 << 3;

export const MAX_DOMAIN_ID = 65536;

/** LOOP_TIMEOUT: busy-wait iterations of 1 µs for completion waits and PPR entries. */
export const LOOP_TIMEOUT = 100000;

// ---- the PPR notifier payload -----------------------------------------------------------------

/** struct amd_iommu_fault: what iommu_handle_ppr_entry() passes down the ppr_notifier chain. */
export class amd_iommu_fault {
  address = 0;
  pasid = 0;
  /** PCI segment << 16 | DeviceID (6.x "sbdf" form). */
  sbdf = 0;
  /** Raw 10-bit tag. */
  tag = 0;
  /** Raw 12-bit PPR flags. */
  flags = 0;
}

export function PCI_SBDF_TO_SEGID(sbdf: number): number {
  return Math.floor(sbdf / 0x10000) & 0xffff;
}

export function PCI_SBDF_TO_DEVID(sbdf: number): number {
  return sbdf & 0xffff;
}

export function PCI_SEG_DEVID_TO_SBDF(seg: number, devid: number): number {
  return (seg & 0xffff) * 0x10000 + (devid & 0xffff);
}

export function PCI_BUS_NUM(devid: number): number {
  return (devid >>> 8) & 0xff;
}

export function PCI_DEVID(bus: number, devfn: number): number {
  return ((bus & 0xff) << 8) | (devfn & 0xff);
}

// ---- driver structures ---------------------------------------------------------------------------

/** struct amd_iommu_pci_seg: one PCI segment's device table and reverse lookup. */
export class amd_iommu_pci_seg {
  /** Physical address of the device table. */
  dev_table = 0;
  dev_table_size = 0;
  /** Largest DeviceID the segment's IOMMUs handle. */
  last_bdf = 0;
  /** DeviceID → the IOMMU translating for it. */
  readonly rlookup_table = new Map<number, amd_iommu>();
  /** DeviceID → the driver's per-device data. */
  readonly dev_data_list = new Map<number, iommu_dev_data>();

  constructor(readonly id: number) {}
}

/** struct amd_iommu: one hardware unit. */
export class amd_iommu {
  index = 0;
  /** raw_spinlock_t lock: serialises the command buffer. */
  readonly lock: spinlock_t;
  /** The IOMMU's own PCI function and its MMIO window. */
  dev: pci_dev | null = null;
  mmio_base: iomem | null = null;
  mmio_phys = 0;
  features_lo = 0;
  features_hi = 0;
  is_iommu_v2 = false;
  devid = 0;
  readonly pci_seg: amd_iommu_pci_seg;
  /** Physical addresses of the rings (kemu has no linear map). */
  cmd_buf = 0;
  cmd_buf_head = 0;
  cmd_buf_tail = 0;
  evt_buf = 0;
  ppr_log = 0;
  int_enabled = false;
  need_sync = false;
  /** The COMPLETION_WAIT semaphore (a 4 KiB page) and its last value. */
  cmd_sem = 0;
  cmd_sem_val = 0;
  irq = 0;

  constructor(k: Kernel, seg: amd_iommu_pci_seg) {
    this.lock = new spinlock_t(k, "&iommu->lock");
    this.pci_seg = seg;
  }
}

/** struct protection_domain: an iommu_domain with the AMD driver's state. */
export class protection_domain extends iommu_domain {
  readonly dev_list: iommu_dev_data[] = [];
  readonly lock: spinlock_t;
  id = 0;
  /** GCR3 table levels beyond the first. */
  glx = 0;
  /** Physical address of the GCR3 root table (IOMMUv2 mode), else 0. */
  gcr3_tbl = 0;
  flags = 0;
  dev_cnt = 0;
  /** Per-IOMMU attach counts, by amd_iommu.index. */
  readonly dev_iommu: number[] = [];
  /** iop.mode: PAGE_MODE_NONE for identity/direct-mapped domains. */
  mode = PAGE_MODE_NONE;

  constructor(k: Kernel) {
    super();
    this.lock = new spinlock_t(k, "&domain->lock");
  }
}

export function to_pdomain(dom: iommu_domain): protection_domain {
  return dom as protection_domain;
}

/** struct iommu_dev_data: per-device data (dev_iommu_priv). */
export class iommu_dev_data {
  readonly lock: spinlock_t;
  domain: protection_domain | null = null;
  pdev: pci_dev | null = null;
  devid = 0;
  /** The device can use IOMMUv2 (has PRI and PASID, and the IOMMU has GT + PPR). */
  iommu_v2 = false;
  readonly ats = { enabled: false, qdep: 0 };
  /** PRG responses must carry the PASID. */
  pri_tlp = false;
  defer_attach = false;

  constructor(
    k: Kernel,
    readonly dev: device,
  ) {
    this.lock = new spinlock_t(k, "&dev_data->lock");
  }
}

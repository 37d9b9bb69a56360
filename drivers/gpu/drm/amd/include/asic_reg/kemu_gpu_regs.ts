// kemu's GPU register map, in the role of drivers/gpu/drm/amd/include/asic_reg/*_offset.h and
// *_sh_mask.h (Linux 6.8): register offsets in dwords from the MMIO BAR (RREG32(reg) reads byte
// reg*4) and the fields the driver and the emulated hardware use. The real parts place each IP
// block at per-ASIC bases (soc15 reg_offset tables); kemu gives both families (gfx90a and
// navi10) one flat map with the kernel's register and field names. docs/amdgpu.md lists it.
// Register values are 32-bit words, so field masks use 32-bit operators; addresses never do.

/** A register field: [shift, width]. */
export type RegField = readonly [number, number];

export function REG_GET_FIELD(value: number, f: RegField): number {
  // Hot in the emulated hardware (doorbell decode, IH, UTCL2): a 32-bit word takes the integer
  // path; anything else (never a register value) keeps the arithmetic form. Same result either way.
  if (value >>> 0 === value && f[1] < 32) return (value >>> f[0]) & (2 ** f[1] - 1);
  return Math.floor(value / 2 ** f[0]) % 2 ** f[1];
}

export function REG_SET_FIELD(value: number, f: RegField, field: number): number {
  const unit = 2 ** f[0];
  const span = 2 ** f[1];
  const old = Math.floor(value / unit) % span;
  return (value - old * unit + (field % span) * unit) >>> 0;
}

export function lower_32_bits(v: number): number {
  return v % 2 ** 32 >>> 0;
}

export function upper_32_bits(v: number): number {
  return Math.floor(v / 2 ** 32) >>> 0;
}

/** Size of the MMIO register BAR (BAR4 in kemu; BAR5 on real parts). */
export const KEMU_MMIO_SIZE = 512 * 1024;
/** Size of the doorbell BAR (BAR2). */
export const KEMU_DOORBELL_SIZE = 8 * 1024 * 1024;

// ---- common: NBIO, HDP, GRBM, the MC system apertures (0x0000..0x00ff) -----------------------

/** Read-only: VRAM size in MiB (nbio get_memsize). */
export const mmRCC_CONFIG_MEMSIZE = 0x0003;
export const mmGRBM_STATUS = 0x0004;
export const GRBM_STATUS__GUI_ACTIVE: RegField = [31, 1];
/** Selects the ME/pipe/queue and VMID that the banked CP_HQD_* and SH_MEM_* registers address. */
export const mmGRBM_GFX_CNTL = 0x0005;
export const GRBM_GFX_CNTL__PIPEID: RegField = [0, 2];
export const GRBM_GFX_CNTL__MEID: RegField = [2, 2];
export const GRBM_GFX_CNTL__VMID: RegField = [4, 4];
export const GRBM_GFX_CNTL__QUEUEID: RegField = [8, 3];
/** Writing anything flushes the host data path (a no-op write barrier in kemu). */
export const mmHDP_MEM_COHERENCY_FLUSH_CNTL = 0x0006;
export const mmBIF_DOORBELL_APER_EN = 0x0008;
/** Frame buffer (VRAM) location in the GPU's MC address space, in 16 MiB units (set by VBIOS). */
export const mmMC_VM_FB_LOCATION_BASE = 0x0010;
export const mmMC_VM_FB_LOCATION_TOP = 0x0011;
export const mmMC_VM_FB_OFFSET = 0x0012;
/** VMID0 system aperture (direct VRAM access), in 256 KiB units. */
export const mmMC_VM_SYSTEM_APERTURE_LOW_ADDR = 0x0013;
export const mmMC_VM_SYSTEM_APERTURE_HIGH_ADDR = 0x0014;
/** Indirect register access: byte address of a register in INDEX2, its value through DATA2. */
export const mmPCIE_INDEX2 = 0x000e;
export const mmPCIE_DATA2 = 0x000f;
/** Reference clock counter (100 MHz, the IH timestamp clock), two halves. */
export const mmREFCLK_TIMESTAMP_LO = 0x0018;
export const mmREFCLK_TIMESTAMP_HI = 0x0019;

// ---- ATC (APU parts): VMID → PASID mapping for translation through the IOMMU (0x0100..0x010f) --

/** ATC_VMID{0..15}_PASID_MAPPING: a VMID whose VALID bit is set translates through the IOMMU with PASID. */
export const ATC_BASE = 0x0100;
export const mmATC_VMID0_PASID_MAPPING = ATC_BASE;
export const ATC_VMID0_PASID_MAPPING__PASID: RegField = [0, 16];
export const ATC_VMID0_PASID_MAPPING__VALID: RegField = [31, 1];

// ---- VM hubs: GFXHUB (GFX/compute, UTCL2) and MMHUB (multimedia, SDMA on GFX9) ----------------

export const GFXHUB_BASE = 0x0800;
export const MMHUB_BASE = 0x0c00;
export const HUB_SIZE = 0x0400;

export const hubVM_L2_CNTL = 0x00;
export const VM_L2_CNTL__ENABLE_L2_CACHE: RegField = [0, 1];
export const hubVM_L2_PROTECTION_FAULT_CNTL = 0x01;
/** Write 1: clear the latched fault status and address so the next fault is recorded. */
export const VM_L2_PROTECTION_FAULT_CNTL__CLEAR_PROTECTION_FAULT_STATUS_ADDR: RegField = [0, 1];
export const hubVM_L2_PROTECTION_FAULT_STATUS = 0x03;
export const VM_L2_PROTECTION_FAULT_STATUS__MORE_FAULTS: RegField = [0, 1];
export const VM_L2_PROTECTION_FAULT_STATUS__WALKER_ERROR: RegField = [1, 3];
export const VM_L2_PROTECTION_FAULT_STATUS__PERMISSION_FAULTS: RegField = [4, 4];
export const VM_L2_PROTECTION_FAULT_STATUS__MAPPING_ERROR: RegField = [8, 1];
export const VM_L2_PROTECTION_FAULT_STATUS__CID: RegField = [9, 9];
export const VM_L2_PROTECTION_FAULT_STATUS__RW: RegField = [18, 1];
export const VM_L2_PROTECTION_FAULT_STATUS__ATOMIC: RegField = [19, 1];
export const VM_L2_PROTECTION_FAULT_STATUS__VMID: RegField = [20, 4];
export const VM_L2_PROTECTION_FAULT_STATUS__VF: RegField = [24, 1];
export const VM_L2_PROTECTION_FAULT_STATUS__VFID: RegField = [25, 4];
/**
 * PERMISSION_FAULTS bits (kemu encoding): which check failed. An invalid PDE/PTE sets VALID
 * together with the bit of the access kind (a read of an unmapped page reports 0x3, as dmesg
 * on real parts usually shows).
 */
export const PERM_FAULT_VALID = 1;
export const PERM_FAULT_READ = 2;
export const PERM_FAULT_WRITE = 4;
export const PERM_FAULT_EXECUTE = 8;
/** WALKER_ERROR codes (kemu encoding). */
export const WALKER_ERROR_NONE = 0;
export const WALKER_ERROR_PDE_INVALID = 1;
export const WALKER_ERROR_RANGE = 2;
/** Faulting page number: bits 43:12 of the address in LO32, 47:44 in HI32. */
export const hubVM_L2_PROTECTION_FAULT_ADDR_LO32 = 0x04;
export const hubVM_L2_PROTECTION_FAULT_ADDR_HI32 = 0x05;
/** Page that non-retry faulting accesses are redirected to (reads see its contents). */
export const hubVM_L2_PROTECTION_FAULT_DEFAULT_ADDR_LO32 = 0x06;
export const hubVM_L2_PROTECTION_FAULT_DEFAULT_ADDR_HI32 = 0x07;
export const hubMC_VM_MX_L1_TLB_CNTL = 0x08;
export const MC_VM_MX_L1_TLB_CNTL__ENABLE_L1_TLB: RegField = [0, 1];

/** VM_CONTEXT{0..15}_CNTL. */
export const hubVM_CONTEXT0_CNTL = 0x10;
export const VM_CONTEXT1_CNTL__ENABLE_CONTEXT: RegField = [0, 1];
/** Number of page-directory levels above the page table (0 = flat, 3 = PDB2/PDB1/PDB0/PTB). */
export const VM_CONTEXT1_CNTL__PAGE_TABLE_DEPTH: RegField = [1, 2];
/** Extra index bits of the page table level beyond 9 (block_size - 9). */
export const VM_CONTEXT1_CNTL__PAGE_TABLE_BLOCK_SIZE: RegField = [3, 4];
/** Invalid/permission faults stall and retry (XNACK) instead of faulting at once. */
export const VM_CONTEXT1_CNTL__RETRY_PERMISSION_OR_INVALID_PAGE_FAULT: RegField = [7, 1];
export const VM_CONTEXT1_CNTL__RANGE_PROTECTION_FAULT_ENABLE_INTERRUPT: RegField = [9, 1];
export const VM_CONTEXT1_CNTL__DUMMY_PAGE_PROTECTION_FAULT_ENABLE_INTERRUPT: RegField = [12, 1];
export const VM_CONTEXT1_CNTL__PDE0_PROTECTION_FAULT_ENABLE_INTERRUPT: RegField = [15, 1];
export const VM_CONTEXT1_CNTL__VALID_PROTECTION_FAULT_ENABLE_INTERRUPT: RegField = [18, 1];
export const VM_CONTEXT1_CNTL__READ_PROTECTION_FAULT_ENABLE_INTERRUPT: RegField = [21, 1];
export const VM_CONTEXT1_CNTL__WRITE_PROTECTION_FAULT_ENABLE_INTERRUPT: RegField = [24, 1];
export const VM_CONTEXT1_CNTL__EXECUTE_PROTECTION_FAULT_ENABLE_INTERRUPT: RegField = [27, 1];
/** All *_PROTECTION_FAULT_ENABLE_INTERRUPT bits (gmc_v9_0_vm_fault_interrupt_state). */
export const VM_CONTEXT_CNTL__FAULT_INTERRUPT_MASK =
  (1 << 9) | (1 << 12) | (1 << 15) | (1 << 18) | (1 << 21) | (1 << 24) | (1 << 27);

/** VM_CONTEXT{i}_PAGE_TABLE_BASE_ADDR_LO32/HI32: root directory (VRAM offset | PDE flags). */
export const hubVM_CONTEXT0_PAGE_TABLE_BASE_ADDR_LO32 = 0x20;
/** VM_CONTEXT{i}_PAGE_TABLE_START/END_ADDR_LO32/HI32: the VA range in 4 KiB pages. */
export const hubVM_CONTEXT0_PAGE_TABLE_START_ADDR_LO32 = 0x40;
export const hubVM_CONTEXT0_PAGE_TABLE_END_ADDR_LO32 = 0x60;

export function hubVM_CONTEXT_CNTL(vmid: number): number {
  return hubVM_CONTEXT0_CNTL + vmid;
}
export function hubVM_CONTEXT_PAGE_TABLE_BASE_ADDR_LO32(vmid: number): number {
  return hubVM_CONTEXT0_PAGE_TABLE_BASE_ADDR_LO32 + 2 * vmid;
}
export function hubVM_CONTEXT_PAGE_TABLE_START_ADDR_LO32(vmid: number): number {
  return hubVM_CONTEXT0_PAGE_TABLE_START_ADDR_LO32 + 2 * vmid;
}
export function hubVM_CONTEXT_PAGE_TABLE_END_ADDR_LO32(vmid: number): number {
  return hubVM_CONTEXT0_PAGE_TABLE_END_ADDR_LO32 + 2 * vmid;
}

/** 18 invalidation engines per hub: semaphore, request and acknowledge. */
export const NUM_INVALIDATE_ENGINES = 18;
export const hubVM_INVALIDATE_ENG0_SEM = 0x80;
export const hubVM_INVALIDATE_ENG0_REQ = 0xa0;
export const hubVM_INVALIDATE_ENG0_ACK = 0xc0;
export const VM_INVALIDATE_ENG0_REQ__PER_VMID_INVALIDATE_REQ: RegField = [0, 16];
export const VM_INVALIDATE_ENG0_REQ__FLUSH_TYPE: RegField = [16, 3];
export const VM_INVALIDATE_ENG0_REQ__INVALIDATE_L2_PTES: RegField = [19, 1];
export const VM_INVALIDATE_ENG0_REQ__INVALIDATE_L2_PDE0: RegField = [20, 1];
export const VM_INVALIDATE_ENG0_REQ__INVALIDATE_L2_PDE1: RegField = [21, 1];
export const VM_INVALIDATE_ENG0_REQ__INVALIDATE_L2_PDE2: RegField = [22, 1];
export const VM_INVALIDATE_ENG0_REQ__INVALIDATE_L1_PTES: RegField = [23, 1];
export const VM_INVALIDATE_ENG0_ACK__PER_VMID_INVALIDATE_ACK: RegField = [0, 16];

// ---- IH: interrupt handler rings (0x0200..0x027f) ---------------------------------------------

export const IH_BASE = 0x0200;
/** Ring 0 registers; ring 1 (retry-fault reroute target on GFX9-class parts) at +IH_RING1. */
export const mmIH_RB_CNTL = IH_BASE + 0x00;
export const mmIH_RB_BASE = IH_BASE + 0x01;
export const mmIH_RB_BASE_HI = IH_BASE + 0x02;
export const mmIH_RB_RPTR = IH_BASE + 0x03;
export const mmIH_RB_WPTR = IH_BASE + 0x04;
export const mmIH_RB_WPTR_ADDR_LO = IH_BASE + 0x05;
export const mmIH_RB_WPTR_ADDR_HI = IH_BASE + 0x06;
export const mmIH_DOORBELL_RPTR = IH_BASE + 0x07;
export const IH_RING1 = 0x10;
export const IH_RB_CNTL__RB_ENABLE: RegField = [0, 1];
/** log2 of the ring size in dwords. */
export const IH_RB_CNTL__RB_SIZE: RegField = [1, 5];
export const IH_RB_CNTL__WPTR_WRITEBACK_ENABLE: RegField = [8, 1];
export const IH_RB_CNTL__WPTR_OVERFLOW_ENABLE: RegField = [16, 1];
export const IH_RB_CNTL__ENABLE_INTR: RegField = [17, 1];
export const IH_RB_CNTL__WPTR_OVERFLOW_CLEAR: RegField = [31, 1];
export const IH_RB_WPTR__RB_OVERFLOW: RegField = [31, 1];
export const IH_RB_WPTR__OFFSET: RegField = [0, 18];
export const IH_DOORBELL_RPTR__OFFSET: RegField = [0, 28];
export const IH_DOORBELL_RPTR__ENABLE: RegField = [28, 1];
/** Selects a client id for IH_CLIENT_CFG_DATA (per-client ring routing). */
export const mmIH_CLIENT_CFG_INDEX = IH_BASE + 0x20;
export const mmIH_CLIENT_CFG_DATA = IH_BASE + 0x21;
export const IH_CLIENT_CFG_DATA__RING_ID: RegField = [16, 2];
/** 1: only retry-fault IVs of the client are routed to RING_ID. */
export const IH_CLIENT_CFG_DATA__CLIENT_TYPE: RegField = [18, 1];
/** IH_VMID_{0..15}_LUT: the PASID the IH stamps into IVs of each VMID. */
export const mmIH_VMID_0_LUT = IH_BASE + 0x30;

// ---- SDMA engines (0x0400 + 0x80 * instance) ---------------------------------------------------

export const SDMA_BASE = 0x0400;
export const SDMA_STRIDE = 0x80;
export const sdmaF32_CNTL = 0x00;
export const SDMA0_F32_CNTL__HALT: RegField = [0, 1];
export const sdmaCNTL = 0x01;
export const SDMA0_CNTL__TRAP_ENABLE: RegField = [0, 1];
export const sdmaSTATUS_REG = 0x02;
export const SDMA0_STATUS_REG__IDLE: RegField = [0, 1];
/** Set when the engine stopped on a packet it could not execute. */
export const SDMA0_STATUS_REG__PACKET_ERROR: RegField = [1, 1];
/** Set when the engine stopped on a memory access that faulted. */
export const SDMA0_STATUS_REG__PAGE_FAULT: RegField = [2, 1];
/** The header and ring offset of the last packet the engine decoded (debug registers). */
export const sdmaDBG_PACKET_HEADER = 0x03;
export const sdmaDBG_PACKET_RPTR = 0x04;
export const sdmaGFX_RB_CNTL = 0x10;
export const SDMA0_GFX_RB_CNTL__RB_ENABLE: RegField = [0, 1];
/** log2 of the ring size in dwords. */
export const SDMA0_GFX_RB_CNTL__RB_SIZE: RegField = [1, 6];
export const SDMA0_GFX_RB_CNTL__RPTR_WRITEBACK_ENABLE: RegField = [12, 1];
export const sdmaGFX_RB_BASE = 0x11;
export const sdmaGFX_RB_BASE_HI = 0x12;
export const sdmaGFX_RB_RPTR = 0x13;
export const sdmaGFX_RB_RPTR_HI = 0x14;
export const sdmaGFX_RB_WPTR = 0x15;
export const sdmaGFX_RB_WPTR_HI = 0x16;
export const sdmaGFX_RB_RPTR_ADDR_LO = 0x17;
export const sdmaGFX_RB_RPTR_ADDR_HI = 0x18;
export const sdmaGFX_DOORBELL = 0x19;
export const SDMA0_GFX_DOORBELL__ENABLE: RegField = [28, 1];
export const sdmaGFX_DOORBELL_OFFSET = 0x1a;
export const SDMA0_GFX_DOORBELL_OFFSET__OFFSET: RegField = [0, 28];
export const sdmaGFX_IB_CNTL = 0x1b;
export const SDMA0_GFX_IB_CNTL__IB_ENABLE: RegField = [0, 1];

export function mmSDMA(instance: number, reg: number): number {
  return SDMA_BASE + SDMA_STRIDE * instance + reg;
}

// SDMA user (RLC) queues: SDMA_RLC_QUEUES per engine, each a 0x10-dword block from 0x20 of the
// engine's slot (sdmaRLC_<reg> + SDMA_RLC_STRIDE * queue). RB_CNTL .. IB_CNTL have the order of
// the GFX block (sdmaGFX_<reg> = sdmaGFX_RB_CNTL + sdmaRLC_<reg>); the engine model relies on it. The ring, its pointers and IBs
// translate in RB_CNTL.RB_VMID; CONTEXT_STATUS.IDLE reads 1 once no packet is in flight. Enabling
// the ring with a WPTR_POLL address set reloads the write pointer from memory (a resumed queue
// sees the doorbell writes it missed while disabled).
export const SDMA_RLC_QUEUES = 2;
export const SDMA_RLC_BASE = 0x20;
export const SDMA_RLC_STRIDE = 0x10;
export const sdmaRLC_RB_CNTL = 0x0;
export const SDMA0_RLC0_RB_CNTL__RB_ENABLE: RegField = [0, 1];
export const SDMA0_RLC0_RB_CNTL__RB_SIZE: RegField = [1, 6];
export const SDMA0_RLC0_RB_CNTL__RPTR_WRITEBACK_ENABLE: RegField = [12, 1];
export const SDMA0_RLC0_RB_CNTL__RB_VMID: RegField = [24, 4];
export const sdmaRLC_RB_BASE = 0x1;
export const sdmaRLC_RB_BASE_HI = 0x2;
export const sdmaRLC_RB_RPTR = 0x3;
export const sdmaRLC_RB_RPTR_HI = 0x4;
export const sdmaRLC_RB_WPTR = 0x5;
export const sdmaRLC_RB_WPTR_HI = 0x6;
export const sdmaRLC_RB_RPTR_ADDR_LO = 0x7;
export const sdmaRLC_RB_RPTR_ADDR_HI = 0x8;
export const sdmaRLC_DOORBELL = 0x9;
export const SDMA0_RLC0_DOORBELL__ENABLE: RegField = [28, 1];
export const sdmaRLC_DOORBELL_OFFSET = 0xa;
export const SDMA0_RLC0_DOORBELL_OFFSET__OFFSET: RegField = [0, 28];
export const sdmaRLC_IB_CNTL = 0xb;
export const SDMA0_RLC0_IB_CNTL__IB_ENABLE: RegField = [0, 1];
export const sdmaRLC_CONTEXT_STATUS = 0xc;
export const SDMA0_RLC0_CONTEXT_STATUS__IDLE: RegField = [2, 1];
export const SDMA0_RLC0_CONTEXT_STATUS__PACKET_ERROR: RegField = [3, 1];
/** Where the queue's write pointer lives in memory (VMID of the queue); read when the ring is enabled. */
export const sdmaRLC_RB_WPTR_POLL_ADDR_LO = 0xd;
export const sdmaRLC_RB_WPTR_POLL_ADDR_HI = 0xe;

/** Register `reg` of RLC queue `queue` of SDMA engine `instance`. */
export function mmSDMA_RLC(instance: number, queue: number, reg: number): number {
  return mmSDMA(instance, SDMA_RLC_BASE + SDMA_RLC_STRIDE * queue + reg);
}

// ---- CP (MEC) compute queues and shader memory config (0x1000..0x10ff; above the 8 SDMA slots) --

export const CP_BASE = 0x1000;
export const mmCP_MEC_CNTL = CP_BASE + 0x00;
export const CP_MEC_CNTL__MEC_ME1_HALT: RegField = [28, 1];
export const mmCP_INT_CNTL = CP_BASE + 0x01;
/** SH_MEM_CONFIG of the VMID selected in GRBM_GFX_CNTL. */
export const mmSH_MEM_CONFIG = CP_BASE + 0x08;
export const SH_MEM_CONFIG__ALIGNMENT_MODE: RegField = [3, 2];
/** Per-process XNACK off: shader accesses of this VMID never retry. */
export const SH_MEM_CONFIG__RETRY_DISABLE: RegField = [12, 1];
export const mmSH_MEM_BASES = CP_BASE + 0x09;
/** HQD registers of the ME/pipe/queue selected in GRBM_GFX_CNTL. */
export const mmCP_HQD_ACTIVE = CP_BASE + 0x10;
export const CP_HQD_ACTIVE__ACTIVE: RegField = [0, 1];
export const mmCP_HQD_VMID = CP_BASE + 0x11;
export const mmCP_HQD_PQ_BASE = CP_BASE + 0x12;
export const mmCP_HQD_PQ_BASE_HI = CP_BASE + 0x13;
/** Read index (AQL packets consumed), read-only. */
export const mmCP_HQD_PQ_RPTR = CP_BASE + 0x14;
export const mmCP_HQD_PQ_RPTR_REPORT_ADDR = CP_BASE + 0x15;
export const mmCP_HQD_PQ_RPTR_REPORT_ADDR_HI = CP_BASE + 0x16;
export const mmCP_HQD_PQ_WPTR_POLL_ADDR = CP_BASE + 0x17;
export const mmCP_HQD_PQ_WPTR_POLL_ADDR_HI = CP_BASE + 0x18;
export const mmCP_HQD_PQ_DOORBELL_CONTROL = CP_BASE + 0x19;
export const CP_HQD_PQ_DOORBELL_CONTROL__DOORBELL_OFFSET: RegField = [0, 28];
export const CP_HQD_PQ_DOORBELL_CONTROL__DOORBELL_EN: RegField = [30, 1];
export const mmCP_HQD_PQ_CONTROL = CP_BASE + 0x1a;
/** log2(queue size in dwords) - 1, as on GFX9. */
export const CP_HQD_PQ_CONTROL__QUEUE_SIZE: RegField = [0, 6];
export const mmCP_HQD_PQ_WPTR_LO = CP_BASE + 0x1b;
export const mmCP_HQD_PQ_WPTR_HI = CP_BASE + 0x1c;
/**
 * Write a dequeue type (amdgpu's enum hqd_dequeue_request_type: 1 DRAIN_PIPE, 2 RESET_WAVES,
 * 3 SAVE_WAVES): the CP stops the queue that way and clears CP_HQD_ACTIVE when done.
 */
export const mmCP_HQD_DEQUEUE_REQUEST = CP_BASE + 0x1d;
/** enum hqd_dequeue_request_type (amdgpu_amdkfd_gfx_v9.c), the values the CP decodes. */
export const NO_ACTION = 0;
export const DRAIN_PIPE = 1;
export const RESET_WAVES = 2;
export const SAVE_WAVES = 3;
/** Bit 0: the queue's waves are stalled on a retry fault; bit 1: the queue stopped on an error (read-only). */
export const mmCP_HQD_STATUS0 = CP_BASE + 0x1e;
/** QSWITCH_MODE: the queue has a context save area, so SAVE_WAVES saves its waves there. */
export const mmCP_HQD_PERSISTENT_STATE = CP_BASE + 0x1f;
export const CP_HQD_PERSISTENT_STATE__QSWITCH_MODE: RegField = [14, 1];
/** The queue's context save/restore area (GPU VA in the queue's VMID) and its size in bytes. */
export const mmCP_HQD_CTX_SAVE_BASE_ADDR_LO = CP_BASE + 0x20;
export const mmCP_HQD_CTX_SAVE_BASE_ADDR_HI = CP_BASE + 0x21;
export const mmCP_HQD_CTX_SAVE_SIZE = CP_BASE + 0x22;
/**
 * The control stack fills the area's first CNTL_STACK_SIZE bytes, pushed downwards from
 * CNTL_STACK_OFFSET (= CNTL_STACK_SIZE when empty); workgroup state follows it, pushed upwards
 * to WG_STATE_OFFSET. The CP moves both offsets when it saves and resets them when it restores.
 */
export const mmCP_HQD_CNTL_STACK_OFFSET = CP_BASE + 0x23;
export const mmCP_HQD_CNTL_STACK_SIZE = CP_BASE + 0x24;
export const mmCP_HQD_WG_STATE_OFFSET = CP_BASE + 0x25;
/**
 * The workgroup the dispatch at the read index resumes from (the MQD's compute_restart_x): a
 * drained queue keeps its undispatched remainder here; the CP clears it when it starts the dispatch.
 */
export const mmCOMPUTE_RESTART_X = CP_BASE + 0x26;

/** Compute pipes and queues per pipe of MEC1 (ME id 1). */
export const MEC_NUM_PIPES = 4;
export const MEC_QUEUES_PER_PIPE = 8;

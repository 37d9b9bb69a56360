// The GPUVM page-table entry format of drivers/gpu/drm/amd/amdgpu/amdgpu_vm.h (Linux 6.8), GFX9
// layout (also used by GFX10): 64-bit PTEs/PDEs, address bits 47:12, flag bits below and above.
// Shared by the GPU's page walker (hw/amdgpu/gmc.ts) and the driver. A 64-bit entry is handled
// as two 32-bit halves (lo = bits 31:0, hi = bits 63:32), never with 32-bit operators on the
// whole value.

export const AMDGPU_GPU_PAGE_SIZE = 4096;
/** Entries per page-table block of 4 KiB (9 index bits per level). */
export const AMDGPU_VM_PTE_COUNT = 512;

// Low-half flags (bits 0..11).
export const AMDGPU_PTE_VALID = 1 << 0;
export const AMDGPU_PTE_SYSTEM = 1 << 1;
export const AMDGPU_PTE_SNOOPED = 1 << 2;
export const AMDGPU_PTE_TMZ = 1 << 3;
export const AMDGPU_PTE_EXECUTABLE = 1 << 4;
export const AMDGPU_PTE_READABLE = 1 << 5;
export const AMDGPU_PTE_WRITEABLE = 1 << 6;
/** Fragment size hint (log2 of contiguous 4 KiB pages), bits 11:7. */
export function AMDGPU_PTE_FRAG(x: number): number {
  return (x & 0x1f) << 7;
}

// High-half flags (bits 32..63, given as bit numbers minus 32 applied to the hi word).
/** Partially resident texture: invalid PTEs with PRT read as zero. Bit 51. */
export const AMDGPU_PTE_PRT_HI = 1 << (51 - 32);
/** A PDE that is itself a PTE (huge page at PDB0/PDB1). Bit 54. */
export const AMDGPU_PDE_PTE_HI = 1 << (54 - 32);
/** Translate further. Bit 56. */
export const AMDGPU_PTE_TF_HI = 1 << (56 - 32);
/** Memory type, bits 58:57 (GFX9). */
export function AMDGPU_PTE_MTYPE_VG10_HI(mtype: number): number {
  return (mtype & 3) << (57 - 32);
}
export const AMDGPU_MTYPE_NC = 0;
export const AMDGPU_MTYPE_WC = 1;
export const AMDGPU_MTYPE_RW = 1;
export const AMDGPU_MTYPE_CC = 2;
export const AMDGPU_MTYPE_UC = 3;

/** Every flag bit of a PTE (lo) and the physical-address field (bits 47:12). */
export const AMDGPU_PTE_FLAGS_LO_MASK = 0xfff;
export const AMDGPU_PTE_ADDR_MASK_HI = 0xffff;

/**
 * AMDGPU_VM_NORETRY_FLAGS: an invalid PTE with EXECUTABLE | PDE_PTE | TF tells the walker to
 * raise a no-retry fault even when the context retries (amdgpu_vm_handle_fault writes it when
 * a retry fault could not be served).
 */
export const AMDGPU_VM_NORETRY_FLAGS_LO = AMDGPU_PTE_EXECUTABLE;
export const AMDGPU_VM_NORETRY_FLAGS_HI = AMDGPU_PDE_PTE_HI | AMDGPU_PTE_TF_HI;

/** Page-table levels from the root down (amdgpu_vm_level). */
export const AMDGPU_VM_PDB2 = 0;
export const AMDGPU_VM_PDB1 = 1;
export const AMDGPU_VM_PDB0 = 2;
export const AMDGPU_VM_PTB = 3;

/** Builds a 64-bit entry from an address (4 KiB aligned, < 2^48) and flag halves. */
export function amdgpu_pte_encode(addr: number, flags_lo: number, flags_hi = 0): [number, number] {
  const page = Math.floor(addr / 4096);
  const lo = ((page % 2 ** 20) * 4096 + (flags_lo & 0xfff)) >>> 0;
  const hi = ((Math.floor(page / 2 ** 20) & 0xffff) | (flags_hi & 0xffff0000)) >>> 0;
  return [lo, hi];
}

/** The address field (bits 47:12) of an entry. */
export function amdgpu_pte_addr(lo: number, hi: number): number {
  return (hi & 0xffff) * 2 ** 32 + ((lo & 0xfffff000) >>> 0);
}

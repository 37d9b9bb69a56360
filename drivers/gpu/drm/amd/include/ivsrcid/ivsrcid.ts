// Mirrors the interrupt source ids of drivers/gpu/drm/amd/include/ivsrcid/ (Linux 6.8) that
// kemu's GPU raises: vmc/irqsrcs_vmc_1_0.h, utcl2/irqsrcs_utcl2_1_0.h, sdma0/irqsrcs_sdma0_4_0.h
// and irqsrcs_sdma0_5_0.h (same numbers), gfx/irqsrcs_gfx_9_0.h. An IV's dw0[15:8] holds one.

/** VM protection / retry fault from the memory hub (VMC, VMC1) or the GFX UTCL2. */
export const VMC_1_0__SRCID__VM_FAULT = 0;
export const UTCL2_1_0__SRCID__FAULT = 0;

export const SDMA0_4_0__SRCID__SDMA_TRAP = 224;
/** Registered by sdma_v4/v5 as the illegal-instruction interrupt ("SRBM write protection"). */
export const SDMA0_4_0__SRCID__SDMA_SRBMWRITE = 247;
export const SDMA0_5_0__SRCID__SDMA_TRAP = 224;

export const GFX_9_0__SRCID__CP_EOP_INTERRUPT = 181;
export const GFX_9_0__SRCID__CP_PRIV_INSTR_FAULT = 184;
export const GFX_9_0__SRCID__SQ_INTERRUPT_ID = 239;

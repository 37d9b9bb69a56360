// Mirrors drivers/gpu/drm/amd/include/soc15_ih_clientid.h (Linux 6.8): the IH client ids an
// interrupt vector carries in dw0[7:0]. Shared by the emulated hardware (hw/amdgpu) and the
// driver, as the real header is shared by the hardware documentation and amdgpu.

export const SOC15_IH_CLIENTID_IH = 0x00;
export const SOC15_IH_CLIENTID_ACP = 0x01;
export const SOC15_IH_CLIENTID_ATHUB = 0x02;
export const SOC15_IH_CLIENTID_BIF = 0x03;
export const SOC15_IH_CLIENTID_DCE = 0x04;
export const SOC15_IH_CLIENTID_ISP = 0x05;
export const SOC15_IH_CLIENTID_PCIE0 = 0x06;
export const SOC15_IH_CLIENTID_RLC = 0x07;
export const SOC15_IH_CLIENTID_SDMA0 = 0x08;
export const SOC15_IH_CLIENTID_SDMA1 = 0x09;
export const SOC15_IH_CLIENTID_SE0SH = 0x0a;
export const SOC15_IH_CLIENTID_UVD = 0x10;
export const SOC15_IH_CLIENTID_VMC = 0x12;
export const SOC15_IH_CLIENTID_GRBM_CP = 0x14;
export const SOC15_IH_CLIENTID_ATS = 0x15;
export const SOC15_IH_CLIENTID_VMC1 = 0x1a;
export const SOC15_IH_CLIENTID_UTCL2 = 0x1b;
export const SOC15_IH_CLIENTID_MAX = 0x1f;

/** Aldebaran-class parts reuse otherwise idle client ids for SDMA instances 2..4. */
export const SOC15_IH_CLIENTID_SDMA2 = 0x01;
export const SOC15_IH_CLIENTID_SDMA3 = 0x04;
export const SOC15_IH_CLIENTID_SDMA4 = 0x05;

/** amdgpu's own name for the client table index of pre-SOC15 (legacy) sources. */
export const AMDGPU_IRQ_CLIENTID_LEGACY = 0;
export const AMDGPU_IRQ_CLIENTID_MAX = SOC15_IH_CLIENTID_MAX + 1;

const NAMES: Record<number, string> = {
  0x00: "IH", 0x01: "ACP", 0x02: "ATHUB", 0x03: "BIF", 0x04: "DCE", 0x05: "ISP", 0x06: "PCIE0", 0x07: "RLC",
  0x08: "SDMA0", 0x09: "SDMA1", 0x0a: "SE0SH", 0x10: "UVD", 0x12: "VMC", 0x14: "GRBM_CP", 0x15: "ATS",
  0x1a: "VMC1", 0x1b: "UTCL2",
};

/** soc15_ih_clientid_name[]: the name dmesg prints for a client id. */
export function soc15_ih_clientid_name(id: number): string {
  return NAMES[id] ?? `0x${id.toString(16)}`;
}

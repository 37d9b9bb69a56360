// kemu hardware: the GPU parts a machine can hold (not a kernel file). Each entry is what the
// silicon fixes: PCI identity, IP versions, the number of SDMA engines and which VM hub they
// translate through, whether the IH has a second ring that retry faults can be routed to, and
// which IH client ids the engines use. The driver learns all of this from the PCI device id.

import {
  SOC15_IH_CLIENTID_SDMA0, SOC15_IH_CLIENTID_SDMA1, SOC15_IH_CLIENTID_SDMA2, SOC15_IH_CLIENTID_SDMA3,
  SOC15_IH_CLIENTID_SDMA4,
} from "../../drivers/gpu/drm/amd/include/soc15_ih_clientid.ts";

export type GpuFamily = "gfx9" | "gfx10";
export type HubId = "gfx" | "mm";

export interface AsicInfo {
  name: string;
  family: GpuFamily;
  pci_device_id: number;
  pci_revision: number;
  /** GC (graphics/compute) IP version, as the kernel's IP discovery reports it. */
  gc_version: readonly [number, number, number];
  num_sdma: number;
  /** GFX9 SDMA engines sit on the MMHUB; from GFX10 they translate through the GFXHUB. */
  sdma_hub: HubId;
  /** IH client id of each SDMA instance. */
  sdma_client_ids: readonly number[];
  /**
   * The client id (CID) each SDMA instance presents to its hub's UTCL2, as the fault status
   * register reports it: kemu's MMHUB table on GFX9 (0x10 + instance), gfxhub_v2_0's on GFX10
   * (SDMA0 = 13, SDMA1 = 14).
   */
  sdma_utcl2_cids: readonly number[];
  /** GFX9-class IH has ring 1, the target of hardware retry-fault rerouting; Navi1x has none. */
  ih_num_rings: number;
  /** The UTCL2 can stall a shader access and replay it after the driver maps the page. */
  retry_faults: boolean;
}

export const ASICS: Readonly<Record<string, AsicInfo>> = Object.freeze({
  // Aldebaran (Instinct MI210): GC 9.4.2, SDMA 4.4, vega20-style IH with ring 1.
  gfx90a: {
    name: "gfx90a",
    family: "gfx9",
    pci_device_id: 0x740f,
    pci_revision: 0x02,
    gc_version: [9, 4, 2],
    num_sdma: 5,
    sdma_hub: "mm",
    sdma_client_ids: [SOC15_IH_CLIENTID_SDMA0, SOC15_IH_CLIENTID_SDMA1, SOC15_IH_CLIENTID_SDMA2,
      SOC15_IH_CLIENTID_SDMA3, SOC15_IH_CLIENTID_SDMA4],
    sdma_utcl2_cids: [0x10, 0x11, 0x12, 0x13, 0x14],
    ih_num_rings: 2,
    retry_faults: true,
  },
  // Carrizo APU (gfx801, A10-8700P class): GC 8.0.1, two SDMA engines, one IH ring, no UTCL2
  // retry. Its GPU reaches process memory through its ATC and the AMD IOMMU (IOMMUv2: ATS, PRI,
  // PASID) — the machine description marks it `apu`. kemu drives it with its GFX9-style register
  // model; the identity (PCI id, GC version) is Carrizo's, so KFD's per-GC quirks apply as on it.
  carrizo: {
    name: "carrizo",
    family: "gfx9",
    pci_device_id: 0x9874,
    pci_revision: 0xc5,
    gc_version: [8, 0, 1],
    num_sdma: 2,
    sdma_hub: "gfx",
    sdma_client_ids: [SOC15_IH_CLIENTID_SDMA0, SOC15_IH_CLIENTID_SDMA1],
    sdma_utcl2_cids: [0x10, 0x11],
    ih_num_rings: 1,
    retry_faults: false,
  },
  // Navi10 (Radeon RX 5700 XT): GC 10.1.10, SDMA 5.0, navi10 IH with a single ring.
  navi10: {
    name: "navi10",
    family: "gfx10",
    pci_device_id: 0x731f,
    pci_revision: 0xc1,
    gc_version: [10, 1, 10],
    num_sdma: 2,
    sdma_hub: "gfx",
    sdma_client_ids: [SOC15_IH_CLIENTID_SDMA0, SOC15_IH_CLIENTID_SDMA1],
    sdma_utcl2_cids: [13, 14],
    ih_num_rings: 1,
    retry_faults: true,
  },
});

export function asic_by_name(name: string): AsicInfo | null {
  return ASICS[name] ?? null;
}

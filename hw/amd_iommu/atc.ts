// kemu hardware: the ATC (Address Translation Cache) block of an APU's GPU (not a kernel file).
// On IOMMUv2 APUs (Kaveri, Carrizo) the GPU's memory hub sends the accesses of a VMID the
// driver mapped to a PASID (ATC_VMID<n>_PASID_MAPPING, written by kgd's
// set_pasid_vmid_mapping) to the AMD IOMMU as PASID-tagged ATS requests instead of walking the
// GPUVM page tables: GPU virtual addresses are the process's CPU virtual addresses, translated
// by the process's own x86-64 page tables. A translation the IOMMU cannot grant becomes a PRI
// page request; the access stalls (the hub reports "retry") until the PRG Response, which
// replays the VMIDs mapped to that PASID. The PCIe side (ATS/PRI/PASID capabilities, the
// translation cache, request credits) is AtsPriFunction (ats.ts).

import { AtsPriFunction, type AtsAccess, type AtsFunctionConfig } from "./ats.ts";
import type { AmdIommuHw } from "./iommu.ts";

export const ATC_VMID_PASID_MAPPING__PASID_MASK = 0xffff;
export const ATC_VMID_PASID_MAPPING__VALID = 0x80000000;
export const ATC_NUM_VMIDS = 16;

/** What a GPU VM hub asks the ATC (hw/amdgpu/gmc.ts consults it before walking GPUVM tables). */
export type AtcTranslation = { kind: "ok"; pa: number } | { kind: "pending" } | { kind: "fault" };

export interface AtcPort {
  /** The access's outcome if `vmid` is in ATC mode, else null (the hub walks its own tables). */
  translate(vmid: number, va: number, access: AtsAccess): AtcTranslation | null;
  /** Called with the VMIDs (bit mask) whose stalled accesses should replay. */
  on_replay(fn: (vmid_mask: number) => void): void;
}

/** The ATS/PRI identity of kemu's APU GPU: 16-bit PASIDs, 32 page-request credits, PASID in responses. */
export function apu_ats_config(devid: number): AtsFunctionConfig {
  return {
    devid, pasid_width: 16, pri_capacity: 32, inv_queue_depth: 0, exec_supported: true, priv_supported: false,
    prg_resp_pasid_required: true,
  };
}

export class GpuAtc implements AtcPort {
  /** ATC_VMID{0..15}_PASID_MAPPING */
  readonly vmid_pasid = new Uint32Array(ATC_NUM_VMIDS);
  ats: AtsPriFunction;
  private readonly replay: Array<(vmid_mask: number) => void> = [];

  constructor(devid = 0) {
    this.ats = this.make_function(devid);
  }

  private make_function(devid: number): AtsPriFunction {
    const f = new AtsPriFunction(apu_ats_config(devid));
    f.on_response((pasid) => this.replay_pasid(pasid));
    return f;
  }

  /** Power-on wiring: the GPU's DeviceID and the IOMMU above it. */
  connect(devid: number, iommu: AmdIommuHw): void {
    if (devid !== this.ats.cfg.devid) this.ats = this.make_function(devid);
    this.ats.connect(iommu);
  }

  reg_read(idx: number): number {
    return idx >= 0 && idx < ATC_NUM_VMIDS ? this.vmid_pasid[idx]! : 0;
  }

  reg_write(idx: number, value: number): void {
    if (idx >= 0 && idx < ATC_NUM_VMIDS) this.vmid_pasid[idx] = value >>> 0;
  }

  on_replay(fn: (vmid_mask: number) => void): void {
    this.replay.push(fn);
  }

  private replay_pasid(pasid: number): void {
    let mask = 0;
    for (let v = 0; v < ATC_NUM_VMIDS; v++) {
      const m = this.vmid_pasid[v]!;
      if (m & ATC_VMID_PASID_MAPPING__VALID && (m & ATC_VMID_PASID_MAPPING__PASID_MASK) === pasid) mask |= 1 << v;
    }
    if (mask) for (const fn of this.replay) fn(mask);
  }

  translate(vmid: number, va: number, access: AtsAccess): AtcTranslation | null {
    const m = this.vmid_pasid[vmid & 0xf]!;
    if (!(m & ATC_VMID_PASID_MAPPING__VALID)) return null;
    const r = this.ats.translate(m & ATC_VMID_PASID_MAPPING__PASID_MASK, va, access);
    return r.kind === "ok" ? { kind: "ok", pa: r.pa } : r.kind === "pending" ? { kind: "pending" } : { kind: "fault" };
  }
}

// Mirrors drivers/gpu/drm/amd/amdgpu/gmc_v10_0.c (Linux 6.8): the Navi1x memory controller IP
// block. Set-up is the GFX9 one (gmc_v9_0.ts's shared helpers; kemu's register map is common);
// the fault handler differs as in the kernel: the hub comes from the client id alone (VMC →
// MMHUB, else GFXHUB, no node id), amdgpu_vm_handle_fault() gets vmid/node 0, retry faults can
// only be delegated through the software ring (Navi1x IH has no ring 1), the status register is
// read and cleared before the rate limit, and the message names GCVM_/MMVM_ registers.

import type { amd_ip_funcs, amdgpu_device, amdgpu_ip_block_version } from "./amdgpu.ts";
import { amd_ip_block_type, AMDGPU_GFXHUB_0, AMDGPU_MMHUB_0, IP_VERSION } from "./amdgpu.ts";
import { amdgpu_gmc_filter_faults } from "./amdgpu_gmc.ts";
import { amdgpu_irq_delegate, type amdgpu_irq_src } from "./amdgpu_irq.ts";
import type { amdgpu_iv_entry } from "./amdgpu_ih.ts";
import { amdgpu_vm_get_task_info_pasid, amdgpu_vm_handle_fault, amdgpu_vm_update_fault_cache } from "./amdgpu_vm.ts";
import { RREG32, WREG32_P, amdgpu_gc_version } from "./amdgpu_device.ts";
import { gfxhub_v1_0_print_l2_protection_fault_status } from "./gfxhub_v1_0.ts";
import {
  gmc_fault_addr, gmc_hw_fini_common, gmc_hw_init_common, gmc_late_init_common, gmc_printk_ratelimit, gmc_sw_fini_common,
  gmc_sw_init_common, gmc_v9_0_vm_fault_interrupt_state,
} from "./gmc_v9_0.ts";
import { SOC15_IH_CLIENTID_VMC, soc15_ih_clientid_name } from "../include/soc15_ih_clientid.ts";
import { AMDGPU_MTYPE_UC, AMDGPU_PTE_MTYPE_VG10_HI } from "../include/amdgpu_vm_pte.ts";
import { ftrace, ftrace_ret } from "../../../../../include/linux/ftrace.ts";

/** The report half of gmc_v10_0_process_interrupt() (a module function: no closure per vector). */
function gmc_v10_0_report_fault(adev: amdgpu_device, entry: amdgpu_iv_entry, addr: number): number {
  const hub = adev.vmhub[entry.client_id === SOC15_IH_CLIENTID_VMC ? AMDGPU_MMHUB_0 : AMDGPU_GFXHUB_0]!;
  if (entry.vmid_src === AMDGPU_GFXHUB_0 && amdgpu_gc_version(adev) < IP_VERSION(10, 3, 0)) RREG32(adev, hub.vm_l2_pro_fault_status);
  const status = RREG32(adev, hub.vm_l2_pro_fault_status);
  WREG32_P(adev, hub.vm_l2_pro_fault_cntl, 1, ~1);
  amdgpu_vm_update_fault_cache(adev, entry.pasid, addr, status, entry.vmid_src ? AMDGPU_MMHUB_0 : AMDGPU_GFXHUB_0);
  if (!gmc_printk_ratelimit(adev)) return 0;
  const k = adev.k;
  k.dev_err(adev, `[${entry.vmid_src ? "mmhub" : "gfxhub"}] page fault (src_id:${entry.src_id} ring:${entry.ring_id} vmid:${entry.vmid} pasid:${entry.pasid})`);
  const ti = amdgpu_vm_get_task_info_pasid(adev, entry.pasid);
  if (ti) k.dev_err(adev, ` in process ${ti.process_name} pid ${ti.tgid} thread ${ti.task_name} pid ${ti.pid}`);
  k.dev_err(adev, `  in page starting at address 0x${addr.toString(16).padStart(16, "0")} from client 0x${entry.client_id.toString(16)} (${soc15_ih_clientid_name(entry.client_id)})`);
  gfxhub_v1_0_print_l2_protection_fault_status(adev, hub, status, entry.vmid_src ? "MMVM_L2_PROTECTION_FAULT_STATUS" : "GCVM_L2_PROTECTION_FAULT_STATUS");
  return 0;
}

/** gmc_v10_0_process_interrupt() */
function gmc_v10_0_process_interrupt(adev: amdgpu_device, _source: amdgpu_irq_src, entry: amdgpu_iv_entry): number | Promise<number> {
  using scope = ftrace(adev.k, "gmc_v10_0_process_interrupt");
  const retry_fault = (entry.src_data[1]! & 0x80) !== 0;
  const write_fault = (entry.src_data[1]! & 0x20) !== 0;
  const addr = gmc_fault_addr(entry);
  if (retry_fault) {
    if (entry.ih !== adev.irq.ih_soft && amdgpu_gmc_filter_faults(adev, entry.ih!, addr, entry.pasid, entry.timestamp)) return 1;
    if (entry.ih === adev.irq.ih) {
      amdgpu_irq_delegate(adev, entry, 8);
      return 1;
    }
    return ftrace_ret(scope, amdgpu_vm_handle_fault(adev, entry.pasid, 0, 0, addr, entry.timestamp, write_fault).then((h) => (h ? 1 : gmc_v10_0_report_fault(adev, entry, addr))));
  }
  return gmc_v10_0_report_fault(adev, entry, addr);
}

const gmc_v10_0_ip_funcs: amd_ip_funcs = {
  name: "gmc_v10_0",
  sw_init: (adev) => gmc_sw_init_common(adev, AMDGPU_PTE_MTYPE_VG10_HI(AMDGPU_MTYPE_UC), {
    set: gmc_v9_0_vm_fault_interrupt_state,
    process: gmc_v10_0_process_interrupt,
  }),
  hw_init: gmc_hw_init_common,
  late_init: gmc_late_init_common,
  hw_fini: gmc_hw_fini_common,
  sw_fini: gmc_sw_fini_common,
};

export const gmc_v10_0_ip_block: amdgpu_ip_block_version = {
  type: amd_ip_block_type.AMD_IP_BLOCK_TYPE_GMC,
  major: 10,
  minor: 0,
  rev: 0,
  funcs: gmc_v10_0_ip_funcs,
};

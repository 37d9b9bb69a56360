// Mirrors drivers/gpu/drm/amd/amdgpu/gmc_v9_0.c (Linux 6.8): the GFX9 memory controller IP
// block — MC address map, TTM, GART table, VM manager, the two hubs, and the VM-fault interrupt
// source. gmc_v9_0_process_interrupt() decodes a fault IV: retry faults are filtered, delegated
// from the main ring to process context (on GFX9-class parts the IH has already routed them to
// ring 1) and handed to amdgpu_vm_handle_fault(); everything else is logged with the decoded
// VM_L2_PROTECTION_FAULT_STATUS, which is then cleared, and forwarded to KFD.

import type { amd_ip_funcs, amdgpu_device, amdgpu_ip_block_version } from "./amdgpu.ts";
import { amd_ip_block_type, AMDGPU_GFXHUB_0, AMDGPU_MMHUB_0 } from "./amdgpu.ts";
import {
  amdgpu_gmc_emit_flush, amdgpu_gmc_filter_faults, amdgpu_gmc_gart_location, amdgpu_gmc_mmio_flush, amdgpu_gmc_noretry_set,
  amdgpu_gmc_vram_location, amdgpu_gmc_flush_gpu_tlb, amdgpu_gmc_allocate_vm_inv_eng,
} from "./amdgpu_gmc.ts";
import { amdgpu_irq_add_id, amdgpu_irq_delegate, amdgpu_irq_get, amdgpu_irq_put, AMDGPU_IRQ_STATE_ENABLE, type amdgpu_irq_src } from "./amdgpu_irq.ts";
import type { amdgpu_iv_entry } from "./amdgpu_ih.ts";
import { amdgpu_ttm_fini, amdgpu_ttm_init } from "./amdgpu_ttm.ts";
import { amdgpu_gart_dummy_page_fini, amdgpu_gart_init, amdgpu_gart_table_vram_alloc, amdgpu_gart_table_vram_free } from "./amdgpu_gart.ts";
import { amdgpu_vm_adjust_size, amdgpu_vm_handle_fault, amdgpu_vm_manager_fini, amdgpu_vm_manager_init, amdgpu_vm_get_task_info_pasid, amdgpu_vm_update_fault_cache } from "./amdgpu_vm.ts";
import { RREG32, WREG32_P, amdgpu_gc_version } from "./amdgpu_device.ts";
import {
  gfxhub_v1_0_gart_disable, gfxhub_v1_0_gart_enable, gfxhub_v1_0_init, gfxhub_v1_0_print_l2_protection_fault_status,
  gfxhub_v1_0_set_fault_interrupts,
} from "./gfxhub_v1_0.ts";
import { GFXHUB_BASE, MMHUB_BASE, mmMC_VM_FB_LOCATION_BASE, mmMC_VM_FB_OFFSET, mmRCC_CONFIG_MEMSIZE } from "../include/asic_reg/kemu_gpu_regs.ts";
import { SOC15_IH_CLIENTID_UTCL2, SOC15_IH_CLIENTID_VMC, soc15_ih_clientid_name } from "../include/soc15_ih_clientid.ts";
import { UTCL2_1_0__SRCID__FAULT, VMC_1_0__SRCID__VM_FAULT } from "../include/ivsrcid/ivsrcid.ts";
import { AMDGPU_PTE_EXECUTABLE, AMDGPU_PTE_MTYPE_VG10_HI, AMDGPU_MTYPE_UC } from "../include/amdgpu_vm_pte.ts";
import { pci_resource_len, pci_resource_start } from "../../../../../include/linux/pci.ts";
import { EINVAL } from "../../../../../include/uapi/asm-generic/errno.ts";
import { ratelimit_state, ___ratelimit } from "../../../../../lib/ratelimit.ts";
import { IP_VERSION } from "./amdgpu.ts";
import { ftrace, ftrace_ret } from "../../../../../include/linux/ftrace.ts";

const gmc_fault_rs = new WeakMap<amdgpu_device, ratelimit_state>();

/** printk_ratelimit() of the fault messages, per device. */
export function gmc_printk_ratelimit(adev: amdgpu_device): boolean {
  let rs = gmc_fault_rs.get(adev);
  if (!rs) {
    rs = new ratelimit_state();
    gmc_fault_rs.set(adev, rs);
  }
  return ___ratelimit(rs, "amdgpu_vm_fault", adev.k);
}

/** The fault address of a VM-fault IV: src_data[0] = bits 43:12, src_data[1][3:0] = bits 47:44. */
export function gmc_fault_addr(entry: amdgpu_iv_entry): number {
  return entry.src_data[0]! * 4096 + (entry.src_data[1]! & 0xf) * 2 ** 44;
}

/** gmc_v9_0_vm_fault_interrupt_state(): fault interrupts on every context of both hubs. */
export function gmc_v9_0_vm_fault_interrupt_state(adev: amdgpu_device, _src: amdgpu_irq_src, _type: number, state: number): number {
  for (const hub of adev.vmhub) gfxhub_v1_0_set_fault_interrupts(adev, hub, state === AMDGPU_IRQ_STATE_ENABLE);
  return 0;
}

/**
 * The non-retry (or unhandled retry) half of gmc_v9_0_process_interrupt(): log, read and clear
 * VM_L2_PROTECTION_FAULT_STATUS, cache it for userspace; 0 forwards the vector to KFD. A module
 * function, not a per-vector closure: a retry storm passes through the caller tens of thousands
 * of times.
 */
function gmc_v9_0_report_fault(adev: amdgpu_device, entry: amdgpu_iv_entry, addr: number, retry_fault: boolean): number {
  if (!gmc_printk_ratelimit(adev)) return 0;
  const is_mm = entry.client_id === SOC15_IH_CLIENTID_VMC;
  const vmhub = is_mm ? AMDGPU_MMHUB_0 : AMDGPU_GFXHUB_0;
  const k = adev.k;
  k.dev_err(adev, `[${is_mm ? "mmhub0" : "gfxhub0"}] ${retry_fault ? "retry" : "no-retry"} page fault (src_id:${entry.src_id} ring:${entry.ring_id} vmid:${entry.vmid} pasid:${entry.pasid})`);
  const ti = amdgpu_vm_get_task_info_pasid(adev, entry.pasid);
  if (ti) k.dev_err(adev, ` in process ${ti.process_name} pid ${ti.tgid} thread ${ti.task_name} pid ${ti.pid}`);
  k.dev_err(adev, `  in page starting at address 0x${addr.toString(16).padStart(16, "0")} from IH client 0x${entry.client_id.toString(16)} (${soc15_ih_clientid_name(entry.client_id)})`);
  const hub = adev.vmhub[vmhub]!;
  // A dummy read first: the status register may lag the fault on GFX before 9.4.2.
  if (entry.vmid_src === AMDGPU_GFXHUB_0 && amdgpu_gc_version(adev) < IP_VERSION(9, 4, 2)) RREG32(adev, hub.vm_l2_pro_fault_status);
  const status = RREG32(adev, hub.vm_l2_pro_fault_status);
  WREG32_P(adev, hub.vm_l2_pro_fault_cntl, 1, ~1);
  amdgpu_vm_update_fault_cache(adev, entry.pasid, addr, status, vmhub);
  gfxhub_v1_0_print_l2_protection_fault_status(adev, hub, status, "VM_L2_PROTECTION_FAULT_STATUS");
  return 0;
}

/** gmc_v9_0_process_interrupt(): see the file comment. */
function gmc_v9_0_process_interrupt(adev: amdgpu_device, _source: amdgpu_irq_src, entry: amdgpu_iv_entry): number | Promise<number> {
  using scope = ftrace(adev.k, "gmc_v9_0_process_interrupt");
  const retry_fault = (entry.src_data[1]! & 0x80) !== 0;
  const addr = gmc_fault_addr(entry);
  if (retry_fault) {
    if (entry.ih !== adev.irq.ih_soft && amdgpu_gmc_filter_faults(adev, entry.ih!, addr, entry.pasid, entry.timestamp)) return 1;
    // Delegate it to the software ring if the hardware has not routed it to ring 1 already.
    if (entry.ih === adev.irq.ih) {
      amdgpu_irq_delegate(adev, entry, 8);
      return 1;
    }
    const write_fault = (entry.src_data[1]! & 0x20) !== 0;
    return ftrace_ret(scope, amdgpu_vm_handle_fault(adev, entry.pasid, entry.vmid, entry.node_id, addr, entry.timestamp, write_fault)
      .then((handled) => (handled ? 1 : gmc_v9_0_report_fault(adev, entry, addr, true))));
  }
  return gmc_v9_0_report_fault(adev, entry, addr, false);
}

/** Shared by gmc_v9_0 and gmc_v10_0: MC setup, TTM, GART table, VM manager. */
export async function gmc_sw_init_common(adev: amdgpu_device, gart_pte_hi: number, process: amdgpu_irq_src["funcs"]): Promise<number> {
  adev.gmc.gmc_funcs = { flush_gpu_tlb: amdgpu_gmc_mmio_flush, emit_flush_gpu_tlb: amdgpu_gmc_emit_flush };
  const gfx9 = adev.ip_versions.gc[0] === 9;
  adev.vmhub[AMDGPU_GFXHUB_0] = gfxhub_v1_0_init(gfx9 ? "gfxhub0" : "gfxhub", GFXHUB_BASE, true, adev.ip_versions.gc[0]! >= 10);
  adev.vmhub[AMDGPU_MMHUB_0] = gfxhub_v1_0_init(gfx9 ? "mmhub0" : "mmhub", MMHUB_BASE, false);
  amdgpu_gmc_noretry_set(adev, adev.params.noretry, true);
  amdgpu_vm_adjust_size(adev, 256 * 1024, 9, 3, 48);
  const src = adev.gmc.vm_fault;
  src.num_types = 1;
  src.funcs = process;
  let r = amdgpu_irq_add_id(adev, SOC15_IH_CLIENTID_VMC, VMC_1_0__SRCID__VM_FAULT, src);
  if (!r) r = amdgpu_irq_add_id(adev, SOC15_IH_CLIENTID_UTCL2, UTCL2_1_0__SRCID__FAULT, src);
  if (r) return r;
  // mc_init: VRAM size from the NBIO register, the frame buffer where the VBIOS put it.
  const gmc = adev.gmc;
  gmc.mc_vram_size = RREG32(adev, mmRCC_CONFIG_MEMSIZE) * 2 ** 20;
  gmc.real_vram_size = gmc.mc_vram_size;
  gmc.aper_base = pci_resource_start(adev.pdev, 0);
  gmc.aper_size = pci_resource_len(adev.pdev, 0);
  gmc.visible_vram_size = Math.min(gmc.aper_size, gmc.real_vram_size);
  gmc.gart_size = (adev.params.gartsize > 0 ? adev.params.gartsize : 512) * 2 ** 20;
  adev.vm_manager.vram_base_offset = RREG32(adev, mmMC_VM_FB_OFFSET) * 2 ** 24;
  amdgpu_gmc_vram_location(adev, RREG32(adev, mmMC_VM_FB_LOCATION_BASE) * 2 ** 24);
  amdgpu_gmc_gart_location(adev);
  r = amdgpu_ttm_init(adev);
  if (r) return r;
  r = amdgpu_gart_init(adev);
  if (r) return r;
  adev.gart.table_size = adev.gart.num_gpu_pages * 8;
  adev.gart.gart_pte_flags = { lo: AMDGPU_PTE_EXECUTABLE, hi: gart_pte_hi };
  r = await amdgpu_gart_table_vram_alloc(adev);
  if (r) return r;
  return amdgpu_vm_manager_init(adev);
}

/** gmc_v9_0_gart_enable(): both hubs on, VMID 0 flushed everywhere. */
export function gmc_hw_init_common(adev: amdgpu_device): number {
  if (!adev.gart.bo) {
    adev.k.dev_err(adev, "No VRAM object for PCIE GART.");
    return -EINVAL;
  }
  for (const hub of adev.vmhub) gfxhub_v1_0_gart_enable(adev, hub);
  for (let i = 0; i < adev.vmhub.length; i++) amdgpu_gmc_flush_gpu_tlb(adev, 0, i, 0);
  adev.k.dev_info(adev, `PCIE GART of ${Math.floor(adev.gmc.gart_size / 2 ** 20)}M enabled (table at 0x${adev.gart.table_addr.toString(16).toUpperCase().padStart(16, "0")}).`);
  return 0;
}

/** gmc late_init: invalidation engines for the rings, VM-fault interrupts on. */
export function gmc_late_init_common(adev: amdgpu_device): number {
  for (const ring of adev.rings) {
    const r = amdgpu_gmc_allocate_vm_inv_eng(adev, ring);
    if (r) return r;
  }
  return amdgpu_irq_get(adev, adev.gmc.vm_fault, 0);
}

export function gmc_hw_fini_common(adev: amdgpu_device): number {
  if (adev.irq.installed) amdgpu_irq_put(adev, adev.gmc.vm_fault, 0);
  for (const hub of adev.vmhub) gfxhub_v1_0_gart_disable(adev, hub);
  return 0;
}

export async function gmc_sw_fini_common(adev: amdgpu_device): Promise<number> {
  await amdgpu_vm_manager_fini(adev);
  amdgpu_gart_table_vram_free(adev);
  await amdgpu_ttm_fini(adev);
  amdgpu_gart_dummy_page_fini(adev);
  return 0;
}

const gmc_v9_0_ip_funcs: amd_ip_funcs = {
  name: "gmc_v9_0",
  sw_init: (adev) => gmc_sw_init_common(adev, AMDGPU_PTE_MTYPE_VG10_HI(AMDGPU_MTYPE_UC), {
    set: gmc_v9_0_vm_fault_interrupt_state,
    process: gmc_v9_0_process_interrupt,
  }),
  hw_init: gmc_hw_init_common,
  late_init: gmc_late_init_common,
  hw_fini: gmc_hw_fini_common,
  sw_fini: gmc_sw_fini_common,
};

export const gmc_v9_0_ip_block: amdgpu_ip_block_version = {
  type: amd_ip_block_type.AMD_IP_BLOCK_TYPE_GMC,
  major: 9,
  minor: 0,
  rev: 0,
  funcs: gmc_v9_0_ip_funcs,
};

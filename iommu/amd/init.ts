// Mirrors drivers/iommu/amd/init.c (Linux 6.5): bringing the AMD IOMMUs up — the PCI segment's
// device table, per IOMMU the command buffer, event log, PPR log and completion-wait semaphore,
// the enable sequence (early_enable_iommu), the MSI and the interrupt thread, the PPR log and
// guest translation (enable_iommus_v2), and registration with the IOMMU core, which probes every
// device behind the IOMMU. Where Linux parses the ACPI IVRS table, kemu finds the IOMMU as the
// PCI function of class 0x0806 and reads its MMIO base from BAR0 (hw/amd_iommu/iommu.ts); its
// IVHD is taken to cover every other function of bus 0. The firmware's job of enabling the
// IOMMU function's memory decoding and bus mastering is done here.

import type { AmdIommu } from "./iommu.ts";
import {
  CMD_BUFFER_SIZE, CONTROL_CMDBUF_EN, CONTROL_EVT_INT_EN, CONTROL_EVT_LOG_EN, CONTROL_GT_EN, CONTROL_IOMMU_EN,
  CONTROL_PPR_EN, CONTROL_PPRINT_EN, CONTROL_PPRLOG_EN, DEV_TABLE_ENTRY_SIZE, EVT_BUFFER_SIZE, FEATURE_GLXVAL_MASK,
  FEATURE_GLXVAL_SHIFT, FEATURE_GT_BIT, FEATURE_PASID_MASK, FEATURE_PPR_BIT, MMIO_CMD_BUF_OFFSET, MMIO_CMD_HEAD_OFFSET,
  MMIO_CMD_TAIL_OFFSET, MMIO_CONTROL_OFFSET, MMIO_DEV_TABLE_OFFSET, MMIO_EVT_BUF_OFFSET, MMIO_EVT_HEAD_OFFSET,
  MMIO_EVT_TAIL_OFFSET, MMIO_EXT_FEATURES, MMIO_LEN_CODE_512, MMIO_PPR_HEAD_OFFSET, MMIO_PPR_LOG_OFFSET,
  MMIO_PPR_TAIL_OFFSET, PCI_DEVID, PPR_LOG_SIZE, amd_iommu, amd_iommu_pci_seg,
} from "./amd_iommu_types.ts";
import { GFP_KERNEL, __GFP_ZERO } from "../../include/linux/gfp_types.ts";
import { get_order } from "../../include/linux/slab.ts";
import { __get_free_pages, free_page, free_pages, get_zeroed_page } from "../../mm/page_alloc.ts";
import { pci_enable_device, pci_ioremap_bar, pci_set_master } from "../../drivers/pci/pci.ts";
import { pci_alloc_irq_vectors, pci_free_irq_vectors } from "../../drivers/pci/msi/msi.ts";
import { PCI_IRQ_MSI, pci_name, pci_resource_start, type pci_dev } from "../../include/linux/pci.ts";
import { ENODEV, ENOMEM } from "../../include/uapi/asm-generic/errno.ts";

/** include/linux/pci_ids.h */
export const PCI_VENDOR_ID_AMD = 0x1022;
export const PCI_CLASS_SYSTEM_IOMMU = 0x0806;

/** Bus 0 only: DeviceIDs 0x00-0xff. */
const LAST_BDF = 0xff;
const PAGE_SHIFT = 12;

/** Names of EFR bits 0-9 as print_iommu_info() lists them. */
const FEAT_STR = ["PreF", "PPR", "X2APIC", "NX", "GT", "[5]", "IA", "GA", "HE", "PC"];

// ---- feature bits of the control register -------------------------------------------------------

function control_update(iommu: amd_iommu, bit: number, on: boolean): void {
  const mmio = iommu.mmio_base!;
  let lo = mmio.readl(MMIO_CONTROL_OFFSET);
  let hi = mmio.readl(MMIO_CONTROL_OFFSET + 4);
  const mask = 1 << (bit % 32);
  if (bit < 32) lo = on ? lo | mask : lo & ~mask;
  else hi = on ? hi | mask : hi & ~mask;
  mmio.writeq(lo >>> 0, hi >>> 0, MMIO_CONTROL_OFFSET);
}

export function iommu_feature_enable(iommu: amd_iommu, bit: number): void {
  control_update(iommu, bit, true);
}

export function iommu_feature_disable(iommu: amd_iommu, bit: number): void {
  control_update(iommu, bit, false);
}

/** A base register: the page address with the 4-bit length code in bits 59:56 (memcpy_toio). */
function write_ring_base(iommu: amd_iommu, off: number, pa: number, len_code: number): void {
  iommu.mmio_base!.writel(pa % 2 ** 32, off);
  iommu.mmio_base!.writel((Math.floor(pa / 2 ** 32) | (len_code << 24)) >>> 0, off + 4);
}

// ---- allocation ---------------------------------------------------------------------------------

/** tbl_size(): a power-of-two number of pages holding entries 0..last_bdf. */
function tbl_size(entry_size: number, last_bdf: number): number {
  return 2 ** (PAGE_SHIFT + get_order((last_bdf + 1) * entry_size));
}

function alloc_pages_zeroed(amd: AmdIommu, size: number): number {
  return __get_free_pages(amd.k, GFP_KERNEL | __GFP_ZERO, get_order(size));
}

/** alloc_pci_segment(): the segment's device table. */
function alloc_pci_segment(amd: AmdIommu, id: number): amd_iommu_pci_seg | null {
  const seg = new amd_iommu_pci_seg(id);
  seg.last_bdf = LAST_BDF;
  seg.dev_table_size = tbl_size(DEV_TABLE_ENTRY_SIZE, LAST_BDF);
  seg.dev_table = alloc_pages_zeroed(amd, seg.dev_table_size);
  if (!seg.dev_table) return null;
  amd.pci_segments.push(seg);
  return seg;
}

function free_iommu_buffers(amd: AmdIommu, iommu: amd_iommu): void {
  if (iommu.cmd_buf) free_pages(amd.k, iommu.cmd_buf, get_order(CMD_BUFFER_SIZE));
  if (iommu.evt_buf) free_pages(amd.k, iommu.evt_buf, get_order(EVT_BUFFER_SIZE));
  if (iommu.ppr_log) free_pages(amd.k, iommu.ppr_log, get_order(PPR_LOG_SIZE));
  if (iommu.cmd_sem) free_page(amd.k, iommu.cmd_sem);
  iommu.cmd_buf = iommu.evt_buf = iommu.ppr_log = iommu.cmd_sem = 0;
}

/**
 * init_iommu_one(): map the MMIO window, read the Extended Feature Register, claim the
 * DeviceIDs of the IVHD, allocate the rings; GT + PPR make it an IOMMUv2.
 */
function init_iommu_one(amd: AmdIommu, iommu: amd_iommu, pdev: pci_dev): number {
  iommu.dev = pdev;
  iommu.devid = PCI_DEVID(0, pdev.devfn);
  pci_enable_device(pdev);
  pci_set_master(pdev);
  const mmio = pci_ioremap_bar(pdev, 0);
  if (typeof mmio === "number") return -ENOMEM;
  iommu.mmio_base = mmio;
  iommu.mmio_phys = pci_resource_start(pdev, 0);
  iommu.features_lo = mmio.readl(MMIO_EXT_FEATURES);
  iommu.features_hi = mmio.readl(MMIO_EXT_FEATURES + 4);
  for (let devid = 0; devid <= iommu.pci_seg.last_bdf; devid++) {
    if (devid !== iommu.devid) iommu.pci_seg.rlookup_table.set(devid, iommu);
  }
  iommu.cmd_sem = get_zeroed_page(amd.k, GFP_KERNEL);
  iommu.cmd_buf = alloc_pages_zeroed(amd, CMD_BUFFER_SIZE);
  iommu.evt_buf = alloc_pages_zeroed(amd, EVT_BUFFER_SIZE);
  if (amd.iommu_feature(iommu, FEATURE_PPR_BIT)) iommu.ppr_log = alloc_pages_zeroed(amd, PPR_LOG_SIZE);
  if (!iommu.cmd_sem || !iommu.cmd_buf || !iommu.evt_buf || (amd.iommu_feature(iommu, FEATURE_PPR_BIT) && !iommu.ppr_log)) {
    free_iommu_buffers(amd, iommu);
    return -ENOMEM;
  }
  if (amd.iommu_feature(iommu, FEATURE_GT_BIT) && amd.iommu_feature(iommu, FEATURE_PPR_BIT)) {
    iommu.is_iommu_v2 = true;
    amd.amd_iommu_v2_present = true;
  }
  const glx = (iommu.features_lo >>> FEATURE_GLXVAL_SHIFT) & FEATURE_GLXVAL_MASK;
  amd.amd_iommu_max_glx_val = amd.amd_iommu_max_glx_val < 0 ? glx : Math.min(amd.amd_iommu_max_glx_val, glx);
  const pasids = 2 ** ((iommu.features_hi & FEATURE_PASID_MASK) + 1) - 1;
  amd.amd_iommu_max_pasid = amd.amd_iommu_max_pasid < 0 ? pasids : Math.min(amd.amd_iommu_max_pasid, pasids);
  amd.k.pr_info(`pci ${pci_name(pdev)}: AMD-Vi: Found IOMMU cap 0x40`);
  return 0;
}

// ---- the enable sequence ----------------------------------------------------------------------

function iommu_set_device_table(iommu: amd_iommu): void {
  const seg = iommu.pci_seg;
  const mmio = iommu.mmio_base!;
  mmio.writel(((seg.dev_table % 2 ** 32) | (seg.dev_table_size / 4096 - 1)) >>> 0, MMIO_DEV_TABLE_OFFSET);
  mmio.writel(Math.floor(seg.dev_table / 2 ** 32), MMIO_DEV_TABLE_OFFSET + 4);
}

/** amd_iommu_reset_cmd_buffer(): stop fetching, zero head and tail, restart. */
function amd_iommu_reset_cmd_buffer(iommu: amd_iommu): void {
  iommu_feature_disable(iommu, CONTROL_CMDBUF_EN);
  iommu.mmio_base!.writel(0, MMIO_CMD_HEAD_OFFSET);
  iommu.mmio_base!.writel(0, MMIO_CMD_TAIL_OFFSET);
  iommu.cmd_buf_head = 0;
  iommu.cmd_buf_tail = 0;
  iommu_feature_enable(iommu, CONTROL_CMDBUF_EN);
}

function iommu_enable_command_buffer(iommu: amd_iommu): void {
  write_ring_base(iommu, MMIO_CMD_BUF_OFFSET, iommu.cmd_buf, MMIO_LEN_CODE_512);
  amd_iommu_reset_cmd_buffer(iommu);
}

function iommu_enable_event_buffer(iommu: amd_iommu): void {
  write_ring_base(iommu, MMIO_EVT_BUF_OFFSET, iommu.evt_buf, MMIO_LEN_CODE_512);
  iommu.mmio_base!.writel(0, MMIO_EVT_HEAD_OFFSET);
  iommu.mmio_base!.writel(0, MMIO_EVT_TAIL_OFFSET);
  iommu_feature_enable(iommu, CONTROL_EVT_LOG_EN);
}

/** amd_iommu_restart_event_logging(): after an overflow stopped the event log. */
export function amd_iommu_restart_event_logging(_amd: AmdIommu, iommu: amd_iommu): void {
  iommu_feature_disable(iommu, CONTROL_EVT_LOG_EN);
  iommu_feature_enable(iommu, CONTROL_EVT_LOG_EN);
}

function iommu_disable(iommu: amd_iommu): void {
  if (!iommu.mmio_base) return;
  iommu_feature_disable(iommu, CONTROL_CMDBUF_EN);
  iommu_feature_disable(iommu, CONTROL_EVT_INT_EN);
  iommu_feature_disable(iommu, CONTROL_EVT_LOG_EN);
  iommu_feature_disable(iommu, CONTROL_PPRINT_EN);
  iommu_feature_disable(iommu, CONTROL_PPRLOG_EN);
  iommu_feature_disable(iommu, CONTROL_PPR_EN);
  iommu_feature_disable(iommu, CONTROL_IOMMU_EN);
}

/** early_enable_iommu(): device table, command buffer, event log, on, and flush every cache. */
function early_enable_iommu(amd: AmdIommu, iommu: amd_iommu): void {
  iommu_disable(iommu);
  iommu_set_device_table(iommu);
  iommu_enable_command_buffer(iommu);
  iommu_enable_event_buffer(iommu);
  iommu_feature_enable(iommu, CONTROL_IOMMU_EN);
  amd.amd_iommu_flush_all(iommu);
}

function print_iommu_info(amd: AmdIommu, iommu: amd_iommu): void {
  const names = FEAT_STR.filter((_, i) => amd.iommu_feature(iommu, i));
  const hex = (v: number) => v.toString(16);
  const efr = `${hex(iommu.features_hi)}${iommu.features_lo.toString(16).padStart(8, "0")}`;
  amd.k.pr_info(`AMD-Vi: Extended features (0x${efr}, 0x0): ${names.join(" ")}`);
}

/** iommu_init_msi() (6.5's iommu_setup_msi path): one MSI vector, the threaded handler. */
function iommu_init_msi(amd: AmdIommu, iommu: amd_iommu): number {
  if (iommu.int_enabled) return 0;
  const pdev = iommu.dev!;
  const n = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI);
  if (n < 0) return n;
  const ret = amd.pci.irq.request_threaded_irq(pdev.irq, (irq, d) => amd.amd_iommu_int_handler(irq, d),
    (irq, d) => amd.amd_iommu_int_thread(irq, d), 0, "AMD-Vi", iommu);
  if (ret) {
    pci_free_irq_vectors(pdev);
    return ret;
  }
  iommu.irq = pdev.irq;
  iommu.int_enabled = true;
  iommu_feature_enable(iommu, CONTROL_EVT_INT_EN);
  if (iommu.ppr_log) iommu_feature_enable(iommu, CONTROL_PPRINT_EN);
  return 0;
}

/** iommu_enable_ppr_log(): base + 512 entries, head = tail = 0, then logging on. */
function iommu_enable_ppr_log(iommu: amd_iommu): void {
  if (!iommu.ppr_log) return;
  iommu_feature_enable(iommu, CONTROL_PPR_EN);
  write_ring_base(iommu, MMIO_PPR_LOG_OFFSET, iommu.ppr_log, MMIO_LEN_CODE_512);
  iommu.mmio_base!.writel(0, MMIO_PPR_HEAD_OFFSET);
  iommu.mmio_base!.writel(0, MMIO_PPR_TAIL_OFFSET);
  iommu_feature_enable(iommu, CONTROL_PPRLOG_EN);
  iommu_feature_enable(iommu, CONTROL_PPR_EN);
}

/** enable_iommus_v2(): PPR log and guest translation on every IOMMUv2. */
function enable_iommus_v2(amd: AmdIommu): void {
  for (const iommu of amd.amd_iommu_list) {
    if (!iommu.is_iommu_v2) continue;
    iommu_enable_ppr_log(iommu);
    iommu_feature_enable(iommu, CONTROL_GT_EN);
  }
}

/** amd_iommu_init_pci(): register with the IOMMU core, which probes each device behind us. */
function amd_iommu_init_pci(amd: AmdIommu): number {
  for (const iommu of amd.amd_iommu_list) print_iommu_info(amd, iommu);
  const ret = amd.core.iommu_device_register(amd);
  if (ret) return ret;
  for (const pdev of amd.pci.devices) {
    if (amd.amd_iommu_list.some((i) => i.dev === pdev)) continue;
    if (amd.core.iommu_probe_device(pdev.dev) === 0) {
      const group = amd.core.iommu_group_get(pdev.dev);
      amd.k.pr_info(`pci ${pci_name(pdev)}: Adding to iommu group ${group?.id}`);
      amd.core.iommu_group_put(group);
    }
  }
  return 0;
}

/**
 * amd_iommu_init(): the IOMMU initcall. No IOMMU function on the bus is the "no IVRS" case
 * (nothing happens); a failure leaves DMA untranslated, as Linux falls back without an IOMMU.
 */
export async function amd_iommu_init(amd: AmdIommu): Promise<void> {
  const units = amd.pci.devices.filter((p) => p.vendor === PCI_VENDOR_ID_AMD && p.class >>> 8 === PCI_CLASS_SYSTEM_IOMMU);
  if (!units.length) return;
  const seg = alloc_pci_segment(amd, 0);
  if (!seg) return;
  for (const pdev of units) {
    const iommu = new amd_iommu(amd.k, seg);
    iommu.index = amd.amd_iommu_list.length;
    const ret = init_iommu_one(amd, iommu, pdev);
    if (ret) {
      amd.k.pr_err(`AMD-Vi: Failed to initialize IOMMU at ${pci_name(pdev)}: ${ret}`);
      continue;
    }
    amd.amd_iommu_list.push(iommu);
  }
  if (!amd.amd_iommu_list.length) return;
  for (const iommu of amd.amd_iommu_list) early_enable_iommu(amd, iommu);
  let ret = amd_iommu_init_pci(amd);
  for (const iommu of amd.amd_iommu_list) if (!ret) ret = iommu_init_msi(amd, iommu);
  if (ret) {
    amd.k.pr_err(`AMD-Vi: IOMMU initialisation failed: ${ret === -ENODEV ? "no device" : ret}`);
    return;
  }
  enable_iommus_v2(amd);
}

/**
 * disable_iommus() at power-off, plus what kemu's leak check needs: the devices leave their
 * groups, the interrupt is freed and the rings and tables go back to the page allocator.
 */
export async function amd_iommu_shutdown(amd: AmdIommu): Promise<void> {
  for (const pdev of amd.pci.devices) amd.core.iommu_release_device(pdev.dev);
  amd.core.iommu_device_unregister(amd);
  for (const iommu of amd.amd_iommu_list) {
    iommu_disable(iommu);
    if (iommu.int_enabled) {
      await amd.pci.irq.free_irq(iommu.irq, iommu);
      pci_free_irq_vectors(iommu.dev!);
      iommu.int_enabled = false;
    }
    free_iommu_buffers(amd, iommu);
  }
  amd.amd_iommu_list.length = 0;
  for (const seg of amd.pci_segments) free_pages(amd.k, seg.dev_table, get_order(seg.dev_table_size));
  amd.pci_segments.length = 0;
  amd.amd_iommu_v2_present = false;
}

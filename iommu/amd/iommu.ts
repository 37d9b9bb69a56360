// Mirrors drivers/iommu/amd/iommu.c (Linux 6.5 — the last form with the IOMMUv2/PPR path, which
// 6.7 removed): the command buffer (queueing, COMPLETION_WAIT), the interrupt thread polling the
// event log and the PPR log, the atomic ppr_notifier chain PPR entries are delivered on,
// amd_iommu_complete_ppr, the PASID flushes (amd_iommu_flush_page / amd_iommu_flush_tlb), the
// GCR3 table (amd_iommu_domain_set_gcr3 / clear_gcr3), domain and device setup (device-table
// entries, attach/detach with PASID/PRI/ATS enabling) and the iommu_ops the IOMMU core calls.
// Hardware bring-up lives in init.ts (init.c). The I/O page tables of DMA-API (v1) domains are
// not modelled: every device's default domain is an identity (pass-through) domain, and
// IOMMUv2 users direct-map theirs.

import "reflect-metadata";
import { inject, injectable } from "tsyringe";
import { IOMMU_CORE, KERNEL, PCI, PHYSMEM, SLAB } from "../../kernel/tokens.ts";
import type { Kernel } from "../../kernel/kernel.ts";
import type { KernelService } from "../../kernel/machine.ts";
import type { PhysMem } from "../../hw/physmem.ts";
import type { PciBus } from "../../drivers/pci/probe.ts";
import type { Slab } from "../../mm/slab_common.ts";
import type { device } from "../../drivers/base/core.ts";
import type { pci_dev } from "../../include/linux/pci.ts";
import { EBUSY, EINVAL, EIO, ENODEV, ENOMEM } from "../../include/uapi/asm-generic/errno.ts";
import { GFP_ATOMIC, GFP_KERNEL } from "../../include/linux/gfp_types.ts";
import { free_page, get_zeroed_page } from "../../mm/page_alloc.ts";
import { spin_lock, spin_lock_irqsave, spin_unlock, spin_unlock_irqrestore } from "../../kernel/locking/spinlock.ts";
import {
  atomic_notifier_call_chain, atomic_notifier_chain_register, atomic_notifier_chain_unregister, atomic_notifier_head,
  type notifier_block,
} from "../../kernel/notifier.ts";
import { IRQ_HANDLED, IRQ_WAKE_THREAD, type irqreturn_t } from "../../kernel/irq/manage.ts";
import { ___ratelimit, ratelimit_state } from "../../lib/ratelimit.ts";
import {
  pci_ats_init, pci_ats_queue_depth, pci_ats_supported, pci_disable_ats, pci_disable_pasid, pci_disable_pri,
  pci_enable_ats, pci_enable_pasid, pci_enable_pri, pci_max_pasids, pci_pasid_features, pci_prg_resp_pasid_required,
  pci_reset_pri, PCI_PASID_CAP_EXEC, PCI_PASID_CAP_PRIV,
} from "../../drivers/pci/ats.ts";
import {
  AMD_IOMMU_DEVICE_FLAG_ATS_SUP, AMD_IOMMU_DEVICE_FLAG_EXEC_SUP, AMD_IOMMU_DEVICE_FLAG_PASID_SUP,
  AMD_IOMMU_DEVICE_FLAG_PRI_SUP, AMD_IOMMU_DEVICE_FLAG_PRIV_SUP, type amd_iommu_device_info,
} from "../../include/linux/amd-iommu.ts";
import { IOMMU_DOMAIN_IDENTITY, type iommu_core, type iommu_domain, type iommu_ops } from "../iommu.ts";
import {
  AMD_IOMMU_INT_MASK, CMD_BUFFER_SIZE, CMD_COMPL_WAIT, CMD_COMPL_WAIT_STORE_MASK, CMD_COMPLETE_PPR, CMD_INV_ALL,
  CMD_INV_DEV_ENTRY, CMD_INV_IOMMU_ALL_PAGES_ADDRESS_HI, CMD_INV_IOMMU_ALL_PAGES_ADDRESS_LO, CMD_INV_IOMMU_PAGES,
  CMD_INV_IOMMU_PAGES_GN_MASK, CMD_INV_IOMMU_PAGES_PDE_MASK, CMD_INV_IOMMU_PAGES_SIZE_MASK, CMD_INV_IOTLB_PAGES,
  CMD_SET_TYPE, DEV_DOMID_MASK, DEV_ENTRY_MODE_MASK, DEV_ENTRY_MODE_SHIFT, DEV_TABLE_ENTRY_SIZE, DTE_FLAG_GV_HI,
  DTE_FLAG_IOTLB_HI, DTE_FLAG_IR_HI, DTE_FLAG_IW_HI, DTE_FLAG_TV, DTE_FLAG_V, DTE_GCR3_SHIFT_A_HI, DTE_GCR3_SHIFT_B,
  DTE_GCR3_SHIFT_C_HI, DTE_GCR3_VAL_A, DTE_GCR3_VAL_B, DTE_GCR3_VAL_C, DTE_GLX_MASK, DTE_GLX_SHIFT_HI, EVENT_DEVID_MASK,
  EVENT_ENTRY_SIZE, EVENT_FLAGS_MASK, EVENT_FLAGS_SHIFT, EVENT_TYPE_DEV_TAB_ERR, EVENT_TYPE_ILL_CMD, EVENT_TYPE_ILL_DEV,
  EVENT_TYPE_INV_DEV_REQ, EVENT_TYPE_INV_PPR_REQ, EVENT_TYPE_IO_FAULT, EVENT_TYPE_MASK, EVENT_TYPE_PAGE_TAB_ERR,
  EVENT_TYPE_SHIFT, EVT_BUFFER_SIZE, GCR3_VALID, LOOP_TIMEOUT, MAX_DOMAIN_ID, MMIO_CMD_HEAD_OFFSET, MMIO_CMD_TAIL_OFFSET,
  MMIO_EVT_HEAD_OFFSET, MMIO_EVT_TAIL_OFFSET, MMIO_PPR_HEAD_OFFSET, MMIO_PPR_TAIL_OFFSET, MMIO_STATUS_EVT_INT_MASK,
  MMIO_STATUS_EVT_OVERFLOW_INT_MASK, MMIO_STATUS_OFFSET, MMIO_STATUS_PPR_INT_MASK, PAGE_MODE_NONE,
  PCI_DEVID, PCI_SEG_DEVID_TO_SBDF, PD_IOMMUV2_MASK, PPR_ENTRY_SIZE, PPR_FLAGS, PPR_LOG_SIZE, PPR_PASID, PPR_REQ_FAULT,
  PPR_REQ_TYPE, PPR_STATUS_MASK, PPR_STATUS_SHIFT, PPR_TAG, PPR_DEVID, amd_iommu, amd_iommu_fault, amd_iommu_pci_seg,
  iommu_cmd, iommu_dev_data, protection_domain, to_pdomain,
} from "./amd_iommu_types.ts";
import { amd_iommu_init, amd_iommu_restart_event_logging, amd_iommu_shutdown } from "./init.ts";

const PAGE_SIZE = 4096;
/** kemu's DMA-API domains would use 3-level v1 tables; only the mode number is kept. */
const PAGE_MODE_3_LEVEL = 0x03;
/** sizeof(struct protection_domain), for slab accounting. */
const SIZEOF_PROTECTION_DOMAIN = 160;

function lower_32_bits(v: number): number {
  return v % 2 ** 32;
}

function upper_32_bits(v: number): number {
  return Math.floor(v / 2 ** 32);
}

// ---- command builders ------------------------------------------------------------------------------

export function build_completion_wait(cmd: iommu_cmd, sem_pa: number, data: number): void {
  cmd.data.fill(0);
  cmd.data[0] = (lower_32_bits(sem_pa) | CMD_COMPL_WAIT_STORE_MASK) >>> 0;
  cmd.data[1] = upper_32_bits(sem_pa);
  cmd.data[2] = lower_32_bits(data);
  cmd.data[3] = upper_32_bits(data);
  CMD_SET_TYPE(cmd, CMD_COMPL_WAIT);
}

export function build_inv_dte(cmd: iommu_cmd, devid: number): void {
  cmd.data.fill(0);
  cmd.data[0] = devid;
  CMD_SET_TYPE(cmd, CMD_INV_DEV_ENTRY);
}

/** INVALIDATE_IOMMU_PAGES for a whole (non-PASID) domain, as domain_flush_tlb_pde() sends it. */
export function build_inv_iommu_pages_all(cmd: iommu_cmd, domid: number, pde: boolean): void {
  cmd.data.fill(0);
  cmd.data[1] = domid;
  cmd.data[2] = (CMD_INV_IOMMU_ALL_PAGES_ADDRESS_LO | CMD_INV_IOMMU_PAGES_SIZE_MASK | (pde ? CMD_INV_IOMMU_PAGES_PDE_MASK : 0)) >>> 0;
  cmd.data[3] = CMD_INV_IOMMU_ALL_PAGES_ADDRESS_HI;
  CMD_SET_TYPE(cmd, CMD_INV_IOMMU_PAGES);
}

/** The address dwords of a PASID flush: one page, or "everything" with S set. */
function inv_address(address: number | "all"): [number, number] {
  if (address === "all") return [CMD_INV_IOMMU_ALL_PAGES_ADDRESS_LO, CMD_INV_IOMMU_ALL_PAGES_ADDRESS_HI];
  const page = address - (address % PAGE_SIZE);
  return [lower_32_bits(page), upper_32_bits(page)];
}

export function build_inv_iommu_pasid(cmd: iommu_cmd, domid: number, pasid: number, address: number | "all", size: boolean): void {
  cmd.data.fill(0);
  const [lo, hi] = inv_address(address);
  cmd.data[0] = pasid;
  cmd.data[1] = domid;
  cmd.data[2] = (lo | CMD_INV_IOMMU_PAGES_PDE_MASK | CMD_INV_IOMMU_PAGES_GN_MASK | (size ? CMD_INV_IOMMU_PAGES_SIZE_MASK : 0)) >>> 0;
  cmd.data[3] = hi;
  CMD_SET_TYPE(cmd, CMD_INV_IOMMU_PAGES);
}

export function build_inv_iotlb_pasid(cmd: iommu_cmd, devid: number, pasid: number, qdep: number, address: number | "all", size: boolean): void {
  cmd.data.fill(0);
  const [lo, hi] = inv_address(address);
  cmd.data[0] = (devid | (((pasid >>> 8) & 0xff) << 16) | ((qdep & 0xff) << 24)) >>> 0;
  cmd.data[1] = (devid | ((pasid & 0xff) << 16)) >>> 0;
  cmd.data[2] = (lo | CMD_INV_IOMMU_PAGES_GN_MASK | (size ? CMD_INV_IOMMU_PAGES_SIZE_MASK : 0)) >>> 0;
  cmd.data[3] = hi;
  CMD_SET_TYPE(cmd, CMD_INV_IOTLB_PAGES);
}

/** COMPLETE_PPR_REQUEST: dword 3 = PRG index | status << 12; PASID and GN only if the device needs them. */
export function build_complete_ppr(cmd: iommu_cmd, devid: number, pasid: number, status: number, tag: number, gn: boolean): void {
  cmd.data.fill(0);
  cmd.data[0] = devid;
  if (gn) {
    cmd.data[1] = pasid;
    cmd.data[2] = CMD_INV_IOMMU_PAGES_GN_MASK;
  }
  cmd.data[3] = ((tag & 0x1ff) | ((status & PPR_STATUS_MASK) << PPR_STATUS_SHIFT)) >>> 0;
  CMD_SET_TYPE(cmd, CMD_COMPLETE_PPR);
}

export function build_inv_all(cmd: iommu_cmd): void {
  cmd.data.fill(0);
  CMD_SET_TYPE(cmd, CMD_INV_ALL);
}

/** PCI_DEVID formatted as the driver prints it: "0000:00:03.0". */
function devid_str(seg: number, devid: number): string {
  const h = (v: number, n: number) => v.toString(16).padStart(n, "0");
  return `${h(seg, 4)}:${h((devid >>> 8) & 0xff, 2)}:${h((devid >>> 3) & 0x1f, 2)}.${devid & 7}`;
}

@injectable()
export class AmdIommu implements KernelService, iommu_ops {
  readonly name = "amd_iommu";
  readonly amd_iommu_list: amd_iommu[] = [];
  readonly pci_segments: amd_iommu_pci_seg[] = [];
  /** An IOMMU with GT and PPR exists. */
  amd_iommu_v2_present = false;
  /** Largest GCR3 level index every IOMMU supports (GLXSup). */
  amd_iommu_max_glx_val = -1;
  amd_iommu_max_pasid = -1;
  /** ATOMIC_NOTIFIER_HEAD(ppr_notifier): PPR log entries are delivered here. */
  readonly ppr_notifier: atomic_notifier_head<amd_iommu_fault>;
  private readonly domain_ids = new Set<number>();
  private readonly domains = new Set<protection_domain>();
  private readonly unknown_ppr_rs = new ratelimit_state();

  constructor(
    @inject(KERNEL) readonly k: Kernel,
    @inject(PHYSMEM) readonly mem: PhysMem,
    @inject(PCI) readonly pci: PciBus,
    @inject(IOMMU_CORE) readonly core: iommu_core,
    @inject(SLAB) readonly slab: Slab,
  ) {
    this.ppr_notifier = new atomic_notifier_head(k, "ppr_notifier");
  }

  /** The IOMMU initcall (amd_iommu_init via pci_iommu_init). */
  async init(): Promise<void> {
    await amd_iommu_init(this);
  }

  /** x86_platform.iommu_shutdown = disable_iommus, at power-off. */
  async power_off(): Promise<void> {
    await amd_iommu_shutdown(this);
  }

  leak_report(): string[] {
    return [...this.domains].map((d) => `amd_iommu: protection domain ${d.id} still allocated (${d.dev_cnt} devices)`);
  }

  // ---- memory the driver shares with the IOMMU -----------------------------------------------

  write64(pa: number, lo: number, hi: number): void {
    this.mem.write32(pa, lo >>> 0);
    this.mem.write32(pa + 4, hi >>> 0);
  }

  read64(pa: number): [number, number] {
    return [this.mem.read32(pa), this.mem.read32(pa + 4)];
  }

  // ---- lookups ---------------------------------------------------------------------------------

  private seg_of(_dev: device): amd_iommu_pci_seg | null {
    return this.pci_segments[0] ?? null;
  }

  private pci_dev_of(dev: device): pci_dev | null {
    return this.pci.devices.find((p) => p.dev === dev) ?? null;
  }

  /** get_pci_sbdf_id(): segment << 16 | bus << 8 | devfn (kemu: segment 0, bus 0). */
  get_pci_sbdf_id(pdev: pci_dev): number {
    return PCI_SEG_DEVID_TO_SBDF(0, PCI_DEVID(0, pdev.devfn));
  }

  /** rlookup_amd_iommu(): the IOMMU translating for `dev`. */
  rlookup_amd_iommu(dev: device): amd_iommu | null {
    const pdev = this.pci_dev_of(dev);
    const seg = this.seg_of(dev);
    if (!pdev || !seg) return null;
    return seg.rlookup_table.get(PCI_DEVID(0, pdev.devfn)) ?? null;
  }

  /** dev_iommu_priv_get() */
  dev_iommu_priv_get(dev: device): iommu_dev_data | null {
    const pdev = this.pci_dev_of(dev);
    return pdev ? (this.seg_of(dev)?.dev_data_list.get(PCI_DEVID(0, pdev.devfn)) ?? null) : null;
  }

  iommu_feature(iommu: amd_iommu, bit: number): boolean {
    return bit < 32 ? (iommu.features_lo & (1 << bit)) !== 0 : (iommu.features_hi & (1 << (bit - 32))) !== 0;
  }

  amd_iommu_v2_supported(): boolean {
    return this.amd_iommu_v2_present;
  }

  /** Only kdump kernels defer attaching; kemu never boots one. */
  amd_iommu_is_attach_deferred(dev: device): boolean {
    return this.dev_iommu_priv_get(dev)?.defer_attach ?? false;
  }

  // ---- the command buffer --------------------------------------------------------------------

  private copy_cmd_to_buffer(iommu: amd_iommu, cmd: iommu_cmd): void {
    const pa = iommu.cmd_buf + iommu.cmd_buf_tail;
    for (let i = 0; i < 4; i++) this.mem.write32(pa + 4 * i, cmd.data[i]!);
    iommu.cmd_buf_tail = (iommu.cmd_buf_tail + 16) % CMD_BUFFER_SIZE;
    iommu.mmio_base!.writel(iommu.cmd_buf_tail, MMIO_CMD_TAIL_OFFSET);
  }

  /** __iommu_queue_command_sync(): waits (busy) while fewer than 0x20 bytes are free. Lock held. */
  private __iommu_queue_command_sync(iommu: amd_iommu, cmd: iommu_cmd, sync: boolean): number {
    const next_tail = (iommu.cmd_buf_tail + 16) % CMD_BUFFER_SIZE;
    for (let count = 0; ; count++) {
      const left = (iommu.cmd_buf_head - next_tail + CMD_BUFFER_SIZE) % CMD_BUFFER_SIZE;
      if (left > 0x20) break;
      if (count === LOOP_TIMEOUT) {
        this.k.pr_err("AMD-Vi: Command buffer timeout");
        return -EIO;
      }
      this.k.udelay(1);
      iommu.cmd_buf_head = iommu.mmio_base!.readl(MMIO_CMD_HEAD_OFFSET);
    }
    this.copy_cmd_to_buffer(iommu, cmd);
    iommu.need_sync = sync;
    return 0;
  }

  iommu_queue_command_sync(iommu: amd_iommu, cmd: iommu_cmd, sync: boolean): number {
    const flags = spin_lock_irqsave(iommu.lock);
    const ret = this.__iommu_queue_command_sync(iommu, cmd, sync);
    spin_unlock_irqrestore(iommu.lock, flags);
    return ret;
  }

  iommu_queue_command(iommu: amd_iommu, cmd: iommu_cmd): number {
    return this.iommu_queue_command_sync(iommu, cmd, true);
  }

  /** wait_on_sem(): busy-polls the semaphore COMPLETION_WAIT stores. */
  private wait_on_sem(iommu: amd_iommu, data: number): number {
    for (let i = 0; i < LOOP_TIMEOUT; i++) {
      const [lo, hi] = this.read64(iommu.cmd_sem);
      if (lo === lower_32_bits(data) && hi === upper_32_bits(data)) return 0;
      this.k.udelay(1);
    }
    this.k.pr_alert("AMD-Vi: Completion-Wait loop timed out");
    return -EIO;
  }

  /** iommu_completion_wait(): every command queued so far has been executed. */
  iommu_completion_wait(iommu: amd_iommu): number {
    if (!iommu.need_sync) return 0;
    const flags = spin_lock_irqsave(iommu.lock);
    const data = ++iommu.cmd_sem_val;
    const cmd = new iommu_cmd();
    build_completion_wait(cmd, iommu.cmd_sem, data);
    let ret = this.__iommu_queue_command_sync(iommu, cmd, false);
    if (!ret) ret = this.wait_on_sem(iommu, data);
    spin_unlock_irqrestore(iommu.lock, flags);
    return ret;
  }

  iommu_flush_dte(iommu: amd_iommu, devid: number): number {
    const cmd = new iommu_cmd();
    build_inv_dte(cmd, devid);
    return this.iommu_queue_command(iommu, cmd);
  }

  /** amd_iommu_flush_all(): INVALIDATE_ALL and wait. */
  amd_iommu_flush_all(iommu: amd_iommu): void {
    const cmd = new iommu_cmd();
    build_inv_all(cmd);
    this.iommu_queue_command(iommu, cmd);
    this.iommu_completion_wait(iommu);
  }

  // ---- interrupts: the event log and the PPR log ----------------------------------------------

  /** amd_iommu_int_handler(): the hard-IRQ half only wakes the thread. */
  amd_iommu_int_handler(_irq: number, _data: unknown): irqreturn_t {
    return IRQ_WAKE_THREAD;
  }

  /**
   * amd_iommu_int_thread(): while an event/PPR source is pending, write-1-to-clear it first (so a
   * new entry re-raises it), drain the logs, and re-read STATUS (erratum ERBT1312).
   */
  amd_iommu_int_thread(_irq: number, data: unknown): irqreturn_t {
    const iommu = data as amd_iommu;
    const mmio = iommu.mmio_base!;
    let status = mmio.readl(MMIO_STATUS_OFFSET);
    while (status & AMD_IOMMU_INT_MASK) {
      mmio.writel(AMD_IOMMU_INT_MASK, MMIO_STATUS_OFFSET);
      if (status & MMIO_STATUS_EVT_INT_MASK) this.iommu_poll_events(iommu);
      if (status & MMIO_STATUS_PPR_INT_MASK) this.iommu_poll_ppr_log(iommu);
      if (status & MMIO_STATUS_EVT_OVERFLOW_INT_MASK) {
        this.k.pr_info("AMD-Vi: IOMMU event log overflow");
        amd_iommu_restart_event_logging(this, iommu);
      }
      status = mmio.readl(MMIO_STATUS_OFFSET);
    }
    return IRQ_HANDLED;
  }

  private iommu_poll_events(iommu: amd_iommu): void {
    const mmio = iommu.mmio_base!;
    let head = mmio.readl(MMIO_EVT_HEAD_OFFSET);
    const tail = mmio.readl(MMIO_EVT_TAIL_OFFSET);
    while (head !== tail) {
      this.iommu_print_event(iommu, iommu.evt_buf + head);
      head = (head + EVENT_ENTRY_SIZE) % EVT_BUFFER_SIZE;
    }
    mmio.writel(head, MMIO_EVT_HEAD_OFFSET);
  }

  /** iommu_print_event(): one "Event logged [...]" line per entry, then the entry is zeroed. */
  private iommu_print_event(iommu: amd_iommu, pa: number): void {
    const ev = [0, 1, 2, 3].map((i) => this.mem.read32(pa + 4 * i)) as [number, number, number, number];
    const type = (ev[1] >>> EVENT_TYPE_SHIFT) & EVENT_TYPE_MASK;
    const devid = ev[0] & EVENT_DEVID_MASK;
    // EVENT_DOMID_MASK_HI | EVENT_DOMID_MASK_LO; INVALID_PPR_REQUEST has the PPR entry layout.
    const pasid = type === EVENT_TYPE_INV_PPR_REQ ? PPR_PASID(ev[0], ev[1]) : (ev[0] & 0xf0000) + (ev[1] & 0xffff);
    const flags = (ev[1] >>> EVENT_FLAGS_SHIFT) & EVENT_FLAGS_MASK;
    const address = ev[2] + ev[3] * 2 ** 32;
    const dev = devid_str(iommu.pci_seg.id, devid);
    const a = `0x${address.toString(16)}`;
    const p = `0x${pasid.toString(16).padStart(5, "0")}`;
    const f = `0x${flags.toString(16).padStart(4, "0")}`;
    const msg: Record<number, string> = {
      [EVENT_TYPE_ILL_DEV]: `ILLEGAL_DEV_TABLE_ENTRY device=${dev} pasid=${p} address=${a} flags=${f}`,
      [EVENT_TYPE_IO_FAULT]: `IO_PAGE_FAULT device=${dev} domain=0x${(ev[1] & 0xffff).toString(16).padStart(4, "0")} address=${a} flags=${f}`,
      [EVENT_TYPE_DEV_TAB_ERR]: `DEV_TAB_HARDWARE_ERROR device=${dev} address=${a} flags=${f}`,
      [EVENT_TYPE_PAGE_TAB_ERR]: `PAGE_TAB_HARDWARE_ERROR device=${dev} pasid=0x${pasid.toString(16).padStart(4, "0")} address=${a} flags=${f}`,
      [EVENT_TYPE_ILL_CMD]: `ILLEGAL_COMMAND_ERROR address=${a}`,
      [EVENT_TYPE_INV_DEV_REQ]: `INVALID_DEVICE_REQUEST device=${dev} pasid=${p} address=${a} flags=${f}`,
      [EVENT_TYPE_INV_PPR_REQ]: `INVALID_PPR_REQUEST device=${dev} pasid=${p} address=${a} flags=${f} tag=0x${(ev[1] & 0x3ff).toString(16).padStart(3, "0")}`,
    };
    this.k.pr_err(`AMD-Vi: Event logged [${msg[type] ?? `UNKNOWN event[0]=0x${hex8(ev[0])} event[1]=0x${hex8(ev[1])} event[2]=0x${hex8(ev[2])} event[3]=0x${hex8(ev[3])}`}]`);
    for (let i = 0; i < 4; i++) this.mem.write32(pa + 4 * i, 0);
  }

  /**
   * iommu_poll_ppr_log(): for each entry between head and tail, wait for its type to appear
   * (erratum: the interrupt can beat the memory write), copy and zero it, write the new head
   * *before* handling it, hand it to the notifier chain, and re-read head and tail.
   */
  iommu_poll_ppr_log(iommu: amd_iommu): void {
    if (!iommu.ppr_log) return;
    const mmio = iommu.mmio_base!;
    let head = mmio.readl(MMIO_PPR_HEAD_OFFSET);
    let tail = mmio.readl(MMIO_PPR_TAIL_OFFSET);
    while (head !== tail) {
      const pa = iommu.ppr_log + head;
      for (let i = 0; i < LOOP_TIMEOUT; i++) {
        if (PPR_REQ_TYPE(this.mem.read32(pa + 4)) !== 0) break;
        this.k.udelay(1);
      }
      const entry = [0, 1, 2, 3].map((i) => this.mem.read32(pa + 4 * i)) as [number, number, number, number];
      this.write64(pa, 0, 0);
      this.write64(pa + 8, 0, 0);
      head = (head + PPR_ENTRY_SIZE) % PPR_LOG_SIZE;
      mmio.writel(head, MMIO_PPR_HEAD_OFFSET);
      this.iommu_handle_ppr_entry(iommu, entry);
      head = mmio.readl(MMIO_PPR_HEAD_OFFSET);
      tail = mmio.readl(MMIO_PPR_TAIL_OFFSET);
    }
  }

  /** iommu_handle_ppr_entry(): only page-fault requests go down the chain; others get no response. */
  private iommu_handle_ppr_entry(iommu: amd_iommu, raw: readonly [number, number, number, number]): void {
    if (PPR_REQ_TYPE(raw[1]) !== PPR_REQ_FAULT) {
      if (___ratelimit(this.unknown_ppr_rs, "iommu_handle_ppr_entry", this.k)) this.k.pr_err("AMD-Vi: Unknown PPR request received");
      return;
    }
    const fault = new amd_iommu_fault();
    fault.address = raw[2] + raw[3] * 2 ** 32;
    fault.pasid = PPR_PASID(raw[0], raw[1]);
    fault.sbdf = PCI_SEG_DEVID_TO_SBDF(iommu.pci_seg.id, PPR_DEVID(raw[0]));
    fault.tag = PPR_TAG(raw[1]);
    fault.flags = PPR_FLAGS(raw[1]);
    atomic_notifier_call_chain(this.ppr_notifier, 0, fault);
  }

  amd_iommu_register_ppr_notifier(nb: notifier_block<amd_iommu_fault>): number {
    return atomic_notifier_chain_register(this.ppr_notifier, nb);
  }

  amd_iommu_unregister_ppr_notifier(nb: notifier_block<amd_iommu_fault>): number {
    return atomic_notifier_chain_unregister(this.ppr_notifier, nb);
  }

  // ---- PRI responses ---------------------------------------------------------------------------

  /** amd_iommu_complete_ppr(): queue COMPLETE_PPR for (device, PASID, PRG index). Atomic-safe. */
  amd_iommu_complete_ppr(pdev: pci_dev, pasid: number, status: number, tag: number): number {
    const dev_data = this.dev_iommu_priv_get(pdev.dev);
    const iommu = this.rlookup_amd_iommu(pdev.dev);
    if (!iommu || !dev_data) return -ENODEV;
    const cmd = new iommu_cmd();
    build_complete_ppr(cmd, dev_data.devid, pasid, status, tag, dev_data.pri_tlp);
    return this.iommu_queue_command(iommu, cmd);
  }

  // ---- device-table entries ------------------------------------------------------------------

  private dte_pa(iommu: amd_iommu, devid: number): number {
    return iommu.pci_seg.dev_table + devid * DEV_TABLE_ENTRY_SIZE;
  }

  /**
   * set_dte_entry(): V, TV, IR, IW and the page mode; with an IOMMUv2 domain also GV, GLX and the
   * GCR3 root (split over words 0 and 1); the IOTLB bit when ATS is on; the domain id.
   */
  set_dte_entry(iommu: amd_iommu, devid: number, domain: protection_domain, ats: boolean): void {
    const pa = this.dte_pa(iommu, devid);
    const w0lo = DTE_FLAG_V | DTE_FLAG_TV | ((domain.mode & DEV_ENTRY_MODE_MASK) << DEV_ENTRY_MODE_SHIFT);
    let w0hi = DTE_FLAG_IR_HI | DTE_FLAG_IW_HI;
    let [w1lo, w1hi] = this.read64(pa + 8);
    if (ats) w1hi |= DTE_FLAG_IOTLB_HI;
    if (domain.flags & PD_IOMMUV2_MASK) {
      const gcr3 = domain.gcr3_tbl;
      // Mask out an old GCR3 root before encoding the new one.
      w1lo &= 0xffff;
      w1hi &= 0x7ff;
      w0hi |= DTE_FLAG_GV_HI | ((domain.glx & DTE_GLX_MASK) << DTE_GLX_SHIFT_HI) | (DTE_GCR3_VAL_A(gcr3) << DTE_GCR3_SHIFT_A_HI);
      w1lo |= DTE_GCR3_VAL_B(gcr3) << DTE_GCR3_SHIFT_B;
      w1hi |= DTE_GCR3_VAL_C(gcr3) << DTE_GCR3_SHIFT_C_HI;
    }
    w1lo = (w1lo & ~DEV_DOMID_MASK) | domain.id;
    this.write64(pa + 8, w1lo, w1hi);
    this.write64(pa, w0lo >>> 0, w0hi);
  }

  /** clear_dte_entry(): valid, translating, no access (the blocked state between domains). */
  clear_dte_entry(iommu: amd_iommu, devid: number): void {
    const pa = this.dte_pa(iommu, devid);
    this.write64(pa, DTE_FLAG_V | DTE_FLAG_TV, 0);
    const [, w1hi] = this.read64(pa + 8);
    // DTE_FLAG_MASK keeps bits 41:32 of word 1 (IOTLB and the flags around it).
    this.write64(pa + 8, 0, w1hi & 0x3ff);
  }

  private device_flush_dte(dev_data: iommu_dev_data): number {
    const iommu = this.rlookup_amd_iommu(dev_data.dev);
    return iommu ? this.iommu_flush_dte(iommu, dev_data.devid) : -ENODEV;
  }

  // ---- domains -------------------------------------------------------------------------------

  private domain_id_alloc(): number {
    for (let id = 1; id < MAX_DOMAIN_ID; id++) {
      if (!this.domain_ids.has(id)) {
        this.domain_ids.add(id);
        return id;
      }
    }
    return 0;
  }

  /** amd_iommu_domain_flush_complete(): a COMPLETION_WAIT on every IOMMU the domain spans. */
  amd_iommu_domain_flush_complete(domain: protection_domain): void {
    this.amd_iommu_list.forEach((iommu, i) => {
      if (domain.dev_iommu[i]) this.iommu_completion_wait(iommu);
    });
  }

  /** domain_flush_tlb_pde(): the domain's host-table TLB entries, directory entries included. */
  private domain_flush_tlb_pde(domain: protection_domain): void {
    const cmd = new iommu_cmd();
    build_inv_iommu_pages_all(cmd, domain.id, true);
    this.amd_iommu_list.forEach((iommu, i) => {
      if (domain.dev_iommu[i]) this.iommu_queue_command(iommu, cmd);
    });
  }

  /** amd_iommu_domain_update(): rewrite the DTEs of every attached device, flush, wait. */
  amd_iommu_domain_update(domain: protection_domain): void {
    for (const dev_data of domain.dev_list) {
      const iommu = this.rlookup_amd_iommu(dev_data.dev);
      if (iommu) this.set_dte_entry(iommu, dev_data.devid, domain, dev_data.ats.enabled);
    }
    for (const dev_data of domain.dev_list) this.device_flush_dte(dev_data);
    this.domain_flush_tlb_pde(domain);
    this.amd_iommu_domain_flush_complete(domain);
  }

  /** protection_domain_alloc(): identity domains have no host page table (PAGE_MODE_NONE). */
  domain_alloc(type: number): iommu_domain | null {
    const domain = this.slab.kzalloc_obj(new protection_domain(this.k), SIZEOF_PROTECTION_DOMAIN, GFP_KERNEL, "protection_domain_alloc");
    if (!domain) return null;
    domain.id = this.domain_id_alloc();
    if (!domain.id) {
      this.slab.kfree(domain);
      return null;
    }
    domain.mode = type === IOMMU_DOMAIN_IDENTITY ? PAGE_MODE_NONE : PAGE_MODE_3_LEVEL;
    this.domains.add(domain);
    return domain;
  }

  domain_free(dom: iommu_domain): void {
    const domain = to_pdomain(dom);
    if (domain.flags & PD_IOMMUV2_MASK) this.free_gcr3_table(domain);
    this.domain_ids.delete(domain.id);
    this.domains.delete(domain);
    this.slab.kfree(domain);
  }

  /** amd_iommu_domain_direct_map(): drop the host page table, untranslated DMA passes through. */
  amd_iommu_domain_direct_map(dom: iommu_domain): void {
    const domain = to_pdomain(dom);
    const flags = spin_lock_irqsave(domain.lock);
    if (domain.mode !== PAGE_MODE_NONE) {
      domain.mode = PAGE_MODE_NONE;
      this.amd_iommu_domain_update(domain);
    }
    spin_unlock_irqrestore(domain.lock, flags);
  }

  /** amd_iommu_domain_enable_v2(): a GCR3 table for `pasids` PASIDs; no device may be attached yet. */
  amd_iommu_domain_enable_v2(dom: iommu_domain, pasids: number): number {
    const domain = to_pdomain(dom);
    const flags = spin_lock_irqsave(domain.lock);
    let ret = -EBUSY;
    if (domain.dev_cnt === 0 && !(domain.flags & PD_IOMMUV2_MASK) && !domain.gcr3_tbl) ret = this.domain_enable_v2(domain, pasids);
    spin_unlock_irqrestore(domain.lock, flags);
    return ret;
  }

  private domain_enable_v2(domain: protection_domain, pasids: number): number {
    let levels = 0;
    for (let p = pasids; (p - 1) & ~0x1ff; p >>>= 9) levels++;
    if (levels > this.amd_iommu_max_glx_val) return -EINVAL;
    const tbl = get_zeroed_page(this.k, GFP_ATOMIC);
    if (!tbl) return -ENOMEM;
    domain.gcr3_tbl = tbl;
    domain.glx = levels;
    domain.flags |= PD_IOMMUV2_MASK;
    this.amd_iommu_domain_update(domain);
    return 0;
  }

  /** free_gcr3_table(): frees the lower-level tables, then the root. */
  private free_gcr3_table(domain: protection_domain): void {
    if (domain.glx === 2) this.free_gcr3_tbl_level2(domain.gcr3_tbl);
    else if (domain.glx === 1) this.free_gcr3_tbl_level1(domain.gcr3_tbl);
    else this.k.BUG_ON(domain.glx !== 0);
    free_page(this.k, domain.gcr3_tbl);
    domain.gcr3_tbl = 0;
  }

  private free_gcr3_tbl_level1(tbl: number): void {
    for (let i = 0; i < 512; i++) {
      const [lo, hi] = this.read64(tbl + 8 * i);
      if (lo & GCR3_VALID) free_page(this.k, ((lo & 0xfffff000) >>> 0) + hi * 2 ** 32);
    }
  }

  /** Like 6.5, this frees the tables below each level-1 table but not the level-1 tables themselves. */
  private free_gcr3_tbl_level2(tbl: number): void {
    for (let i = 0; i < 512; i++) {
      const [lo, hi] = this.read64(tbl + 8 * i);
      if (lo & GCR3_VALID) this.free_gcr3_tbl_level1(((lo & 0xfffff000) >>> 0) + hi * 2 ** 32);
    }
  }

  /**
   * __get_gcr3_pte(): the level-0 entry of `pasid`, allocating missing lower tables with
   * GFP_ATOMIC when `alloc` (domain lock held); 0 when absent or out of memory.
   */
  private __get_gcr3_pte(root: number, level: number, pasid: number, alloc: boolean): number {
    for (;;) {
      const index = Math.floor(pasid / 512 ** level) % 512;
      const pte = root + index * 8;
      if (level === 0) return pte;
      let [lo, hi] = this.read64(pte);
      if (!(lo & GCR3_VALID)) {
        if (!alloc) return 0;
        const page = get_zeroed_page(this.k, GFP_ATOMIC);
        if (!page) return 0;
        lo = (lower_32_bits(page) | GCR3_VALID) >>> 0;
        hi = upper_32_bits(page);
        this.write64(pte, lo, hi);
      }
      root = ((lo & 0xfffff000) >>> 0) + hi * 2 ** 32;
      level--;
    }
  }

  /** __flush_pasid(): IOMMU TLBs first, wait, then the device TLBs (ATS) of the domain, wait. */
  private __flush_pasid(domain: protection_domain, pasid: number, address: number | "all", size: boolean): number {
    if (!(domain.flags & PD_IOMMUV2_MASK)) return -EINVAL;
    const cmd = new iommu_cmd();
    build_inv_iommu_pasid(cmd, domain.id, pasid, address, size);
    for (let i = 0; i < this.amd_iommu_list.length; i++) {
      if (!domain.dev_iommu[i]) continue;
      const ret = this.iommu_queue_command(this.amd_iommu_list[i]!, cmd);
      if (ret) return ret;
    }
    this.amd_iommu_domain_flush_complete(domain);
    for (const dev_data of domain.dev_list) {
      if (!dev_data.ats.enabled) continue;
      const iommu = this.rlookup_amd_iommu(dev_data.dev);
      if (!iommu) continue;
      build_inv_iotlb_pasid(cmd, dev_data.devid, pasid, dev_data.ats.qdep, address, size);
      const ret = this.iommu_queue_command(iommu, cmd);
      if (ret) return ret;
    }
    this.amd_iommu_domain_flush_complete(domain);
    return 0;
  }

  /** amd_iommu_flush_page(): one page of one PASID, IOMMU and device TLBs. Atomic-safe. */
  amd_iommu_flush_page(dom: iommu_domain, pasid: number, address: number): number {
    const domain = to_pdomain(dom);
    const flags = spin_lock_irqsave(domain.lock);
    const ret = this.__flush_pasid(domain, pasid, address, false);
    spin_unlock_irqrestore(domain.lock, flags);
    return ret;
  }

  private __amd_iommu_flush_tlb(domain: protection_domain, pasid: number): number {
    return this.__flush_pasid(domain, pasid, "all", true);
  }

  /** amd_iommu_flush_tlb(): everything of one PASID. Atomic-safe. */
  amd_iommu_flush_tlb(dom: iommu_domain, pasid: number): number {
    const domain = to_pdomain(dom);
    const flags = spin_lock_irqsave(domain.lock);
    const ret = this.__amd_iommu_flush_tlb(domain, pasid);
    spin_unlock_irqrestore(domain.lock, flags);
    return ret;
  }

  /** amd_iommu_domain_set_gcr3(): GCR3[pasid] = cr3 | VALID, then flush the PASID. */
  amd_iommu_domain_set_gcr3(dom: iommu_domain, pasid: number, cr3: number): number {
    const domain = to_pdomain(dom);
    const flags = spin_lock_irqsave(domain.lock);
    let ret = -EINVAL;
    if (domain.mode === PAGE_MODE_NONE && domain.flags & PD_IOMMUV2_MASK) {
      const pte = this.__get_gcr3_pte(domain.gcr3_tbl, domain.glx, pasid, true);
      if (!pte) ret = -ENOMEM;
      else {
        const page = cr3 - (cr3 % PAGE_SIZE);
        this.write64(pte, (lower_32_bits(page) | GCR3_VALID) >>> 0, upper_32_bits(page));
        ret = this.__amd_iommu_flush_tlb(domain, pasid);
      }
    }
    spin_unlock_irqrestore(domain.lock, flags);
    return ret;
  }

  /** amd_iommu_domain_clear_gcr3(): GCR3[pasid] = 0, then flush the PASID. */
  amd_iommu_domain_clear_gcr3(dom: iommu_domain, pasid: number): number {
    const domain = to_pdomain(dom);
    const flags = spin_lock_irqsave(domain.lock);
    let ret = -EINVAL;
    if (domain.mode === PAGE_MODE_NONE && domain.flags & PD_IOMMUV2_MASK) {
      const pte = this.__get_gcr3_pte(domain.gcr3_tbl, domain.glx, pasid, false);
      ret = 0;
      if (pte) {
        this.write64(pte, 0, 0);
        ret = this.__amd_iommu_flush_tlb(domain, pasid);
      }
    }
    spin_unlock_irqrestore(domain.lock, flags);
    return ret;
  }

  // ---- attaching devices ----------------------------------------------------------------------

  /** pdev_pri_ats_enable(): PASID (no EXEC/PRIV: user pages only), PRI reset + 32 requests, ATS. */
  private pdev_pri_ats_enable(pdev: pci_dev): number {
    let ret = pci_enable_pasid(pdev, 0);
    if (ret) return ret;
    ret = pci_reset_pri(pdev);
    if (!ret) ret = pci_enable_pri(pdev, 32); // FIXME in Linux too: hard-coded request count
    if (ret) {
      pci_disable_pasid(pdev);
      return ret;
    }
    ret = pci_enable_ats(pdev, 12);
    if (ret) {
      pci_disable_pri(pdev);
      pci_disable_pasid(pdev);
    }
    return ret;
  }

  private pdev_iommuv2_disable(pdev: pci_dev): void {
    pci_disable_ats(pdev);
    pci_disable_pri(pdev);
    pci_disable_pasid(pdev);
  }

  private do_attach(dev_data: iommu_dev_data, domain: protection_domain): void {
    const iommu = this.rlookup_amd_iommu(dev_data.dev)!;
    dev_data.domain = domain;
    domain.dev_list.push(dev_data);
    domain.dev_iommu[iommu.index] = (domain.dev_iommu[iommu.index] ?? 0) + 1;
    domain.dev_cnt++;
    this.set_dte_entry(iommu, dev_data.devid, domain, dev_data.ats.enabled);
    this.device_flush_dte(dev_data);
  }

  private do_detach(dev_data: iommu_dev_data): void {
    const domain = dev_data.domain!;
    const iommu = this.rlookup_amd_iommu(dev_data.dev)!;
    dev_data.domain = null;
    domain.dev_list.splice(domain.dev_list.indexOf(dev_data), 1);
    this.clear_dte_entry(iommu, dev_data.devid);
    this.device_flush_dte(dev_data);
    this.domain_flush_tlb_pde(domain);
    this.amd_iommu_domain_flush_complete(domain);
    domain.dev_iommu[iommu.index]!--;
    domain.dev_cnt--;
  }

  /** attach_device(): an IOMMUv2 domain needs the identity default domain and turns on PASID/PRI/ATS. */
  private attach_device(dev: device, domain: protection_domain): number {
    const dev_data = this.dev_iommu_priv_get(dev)!;
    const flags = spin_lock_irqsave(domain.lock);
    spin_lock(dev_data.lock);
    let ret = 0;
    if (dev_data.domain) ret = -EBUSY;
    else if (domain.flags & PD_IOMMUV2_MASK) ret = this.attach_v2_checks(dev, dev_data);
    if (!ret) {
      this.do_attach(dev_data, domain);
      this.domain_flush_tlb_pde(domain);
      this.amd_iommu_domain_flush_complete(domain);
    }
    spin_unlock(dev_data.lock);
    spin_unlock_irqrestore(domain.lock, flags);
    return ret;
  }

  private attach_v2_checks(dev: device, dev_data: iommu_dev_data): number {
    if (this.core.iommu_get_dma_domain(dev)?.type !== IOMMU_DOMAIN_IDENTITY) return -EINVAL;
    if (!dev_data.iommu_v2) return 0;
    const pdev = dev_data.pdev!;
    if (this.pdev_pri_ats_enable(pdev)) return -EINVAL;
    dev_data.ats.enabled = true;
    dev_data.ats.qdep = pci_ats_queue_depth(pdev);
    dev_data.pri_tlp = pci_prg_resp_pasid_required(pdev);
    return 0;
  }

  private detach_device(dev: device): void {
    const dev_data = this.dev_iommu_priv_get(dev)!;
    const domain = dev_data.domain;
    if (this.k.WARN_ON(!domain)) return;
    const flags = spin_lock_irqsave(domain!.lock);
    spin_lock(dev_data.lock);
    this.do_detach(dev_data);
    if (domain!.flags & PD_IOMMUV2_MASK && dev_data.iommu_v2) this.pdev_iommuv2_disable(dev_data.pdev!);
    dev_data.ats.enabled = false;
    spin_unlock(dev_data.lock);
    spin_unlock_irqrestore(domain!.lock, flags);
  }

  /** amd_iommu_attach_device(): leave the current domain, join `dom`. */
  attach_dev(dom: iommu_domain, dev: device): number {
    const dev_data = this.dev_iommu_priv_get(dev);
    const domain = to_pdomain(dom);
    if (!dev_data) return -EINVAL;
    if (dev_data.domain === domain) return 0;
    dev_data.defer_attach = false;
    if (dev_data.domain) this.detach_device(dev);
    const ret = this.attach_device(dev, domain);
    const iommu = this.rlookup_amd_iommu(dev);
    if (iommu) this.iommu_completion_wait(iommu);
    return ret;
  }

  // ---- probing devices ------------------------------------------------------------------------

  /** pci_iommuv2_capable(): ATS, PRI and PASID capabilities present. */
  private pci_iommuv2_capable(pdev: pci_dev): boolean {
    return pci_ats_supported(pdev) && pdev.pri_cap !== 0 && pdev.pasid_cap !== 0;
  }

  /** amd_iommu_probe_device() + iommu_init_device(): per-device data. */
  probe_device(dev: device): number {
    const iommu = this.rlookup_amd_iommu(dev);
    const pdev = this.pci_dev_of(dev);
    if (!iommu || !pdev) return -ENODEV;
    pci_ats_init(pdev);
    const dev_data = new iommu_dev_data(this.k, dev);
    dev_data.pdev = pdev;
    dev_data.devid = PCI_DEVID(0, pdev.devfn);
    if (this.pci_iommuv2_capable(pdev)) dev_data.iommu_v2 = iommu.is_iommu_v2;
    iommu.pci_seg.dev_data_list.set(dev_data.devid, dev_data);
    this.iommu_completion_wait(iommu);
    return 0;
  }

  release_device(dev: device): void {
    const dev_data = this.dev_iommu_priv_get(dev);
    if (!dev_data) return;
    if (dev_data.domain) this.detach_device(dev);
    const iommu = this.rlookup_amd_iommu(dev);
    iommu?.pci_seg.dev_data_list.delete(dev_data.devid);
  }

  /** kemu boots with iommu=pt: every device's default domain is the identity domain. */
  def_domain_type(_dev: device): number {
    return IOMMU_DOMAIN_IDENTITY;
  }

  // ---- information for IOMMUv2 users -------------------------------------------------------------

  /** amd_iommu_device_info(): what the device and the IOMMUs support together. */
  amd_iommu_device_info(pdev: pci_dev, info: amd_iommu_device_info): number {
    if (!this.amd_iommu_v2_supported()) return -EINVAL;
    info.flags = 0;
    info.max_pasids = 0;
    if (pci_ats_supported(pdev)) info.flags |= AMD_IOMMU_DEVICE_FLAG_ATS_SUP;
    if (pdev.pri_cap) info.flags |= AMD_IOMMU_DEVICE_FLAG_PRI_SUP;
    if (pdev.pasid_cap) {
      const max = Math.min(2 ** (9 * (this.amd_iommu_max_glx_val + 1)), 2 ** 20);
      info.flags |= AMD_IOMMU_DEVICE_FLAG_PASID_SUP;
      info.max_pasids = Math.min(pci_max_pasids(pdev), max);
      const features = pci_pasid_features(pdev);
      if (features & PCI_PASID_CAP_EXEC) info.flags |= AMD_IOMMU_DEVICE_FLAG_EXEC_SUP;
      if (features & PCI_PASID_CAP_PRIV) info.flags |= AMD_IOMMU_DEVICE_FLAG_PRIV_SUP;
    }
    return 0;
  }
}

function hex8(v: number): string {
  return v.toString(16).padStart(8, "0");
}

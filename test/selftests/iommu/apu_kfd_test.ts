// kemu test driver (not a kernel file): "apu_kfd_test", a PCI driver for the APU machine's
// Carrizo GPU that plays the parts of amdgpu and amdkfd an IOMMUv2 compute process needs, so a
// user-space selftest can run GPU work through the real PPR path. kemu's amdgpu/amdkfd follow
// 6.8 and do not drive IOMMUv2 APUs; this module is the smallest stand-in, built only on public
// API, with the KFD side of IOMMUv2 done by the real kfd_iommu.ts:
//
//   probe: enable the device, ioremap the registers and doorbells, release the MEC, give ATC
//          faults a dummy page, kfd_iommu_attach + kfd_iommu_device_init + kfd_iommu_resume
//          (amd_iommu_init_device, both callbacks), and create /dev/kemu_apu;
//   APU_IOC_BIND: a PASID for the caller's process, kfd_iommu_bind_process_to_device, and
//          ATC_VMID8_PASID_MAPPING = PASID (set_pasid_vmid_mapping);
//   APU_IOC_CREATE_QUEUE / SUBMIT / WAIT: an AQL queue in the process's own memory loaded on
//          HQD 0 with VMID 8 (hqd_load), doorbell writes, and waiting for the read pointer;
//   APU_IOC_GET_EXCEPTION: the memory exception kfd_signal_iommu_event reported;
//   release: the queue is dequeued and kfd_iommu_unbind_process runs.

import { inject, injectable } from "tsyringe";
import { KERNEL, MISC, PCI } from "../../../kernel/tokens.ts";
import type { Kernel } from "../../../kernel/kernel.ts";
import type { KernelModule, ModuleDef, ModuleParams } from "../../../kernel/module/main.ts";
import type { MiscDevices, miscdevice } from "../../../drivers/char/misc.ts";
import { MISC_DYNAMIC_MINOR } from "../../../drivers/char/misc.ts";
import type { PciBus } from "../../../drivers/pci/probe.ts";
import { pci_register_driver, pci_unregister_driver } from "../../../drivers/pci/pci-driver.ts";
import { pci_enable_device, pci_disable_device, pci_ioremap_bar, pci_set_master } from "../../../drivers/pci/pci.ts";
import { PCI_DEVICE, type pci_dev, type pci_driver } from "../../../include/linux/pci.ts";
import type { iomem } from "../../../include/asm-generic/io.ts";
import type { file, file_operations } from "../../../include/linux/fs.ts";
import type { mm_struct } from "../../../include/linux/mm_types.ts";
import type { task_struct } from "../../../kernel/sched/core.ts";
import { mutex } from "../../../kernel/locking/mutex.ts";
import { copy_from_user, copy_to_user } from "../../../include/linux/uaccess.ts";
import { EBUSY, EEXIST, EFAULT, EINVAL, ENODEV, ENOMEM, ENOTTY, ETIME } from "../../../include/uapi/asm-generic/errno.ts";
import { _IOR, _IOW, _IOWR } from "../../../include/uapi/asm-generic/ioctl.ts";
import { layout_decode, layout_encode, register_ioctl_layout, struct, u32, u64 } from "../../../include/uapi/struct_layout.ts";
import { alloc_page, __free_page } from "../../../mm/page_alloc.ts";
import { page_to_pfn } from "../../../mm/sparse.ts";
import { GFP_KERNEL, __GFP_ZERO } from "../../../include/linux/gfp_types.ts";
import type { page } from "../../../include/linux/mm_types.ts";
import { amd_iommu_v2_get, amd_iommu_v2_put } from "../../../iommu/amd/iommu_v2.ts";
import { AMD_IOMMU, MODULES } from "../../../kernel/tokens.ts";
import type { AmdIommu } from "../../../iommu/amd/iommu.ts";
import type { ModuleLoader } from "../../../kernel/module/main.ts";
import {
  kfd_iommu_attach, kfd_iommu_bind_process_to_device, kfd_iommu_detach, kfd_iommu_device_init, kfd_iommu_resume,
  kfd_iommu_suspend, kfd_iommu_unbind_process, kfd_get_pasid_limit, type kfd_iommu_host, type kfd_memory_exception,
} from "../../../drivers/gpu/drm/amd/amdkfd/kfd_iommu.ts";
import {
  ATC_VMID0_PASID_MAPPING__VALID, CP_HQD_PQ_DOORBELL_CONTROL__DOORBELL_EN, GFXHUB_BASE, GRBM_GFX_CNTL__MEID,
  GRBM_GFX_CNTL__VMID, REG_SET_FIELD, hubVM_L2_PROTECTION_FAULT_DEFAULT_ADDR_HI32, hubVM_L2_PROTECTION_FAULT_DEFAULT_ADDR_LO32,
  mmATC_VMID0_PASID_MAPPING, mmBIF_DOORBELL_APER_EN, mmCP_HQD_ACTIVE, mmCP_HQD_DEQUEUE_REQUEST, mmCP_HQD_PQ_BASE,
  mmCP_HQD_PQ_BASE_HI, mmCP_HQD_PQ_CONTROL, mmCP_HQD_PQ_DOORBELL_CONTROL, mmCP_HQD_PQ_RPTR, mmCP_HQD_PQ_RPTR_REPORT_ADDR,
  mmCP_HQD_PQ_RPTR_REPORT_ADDR_HI, mmCP_HQD_PQ_WPTR_HI, mmCP_HQD_PQ_WPTR_LO, mmCP_HQD_STATUS0, mmCP_HQD_VMID,
  mmCP_MEC_CNTL, mmGRBM_GFX_CNTL,
} from "../../../drivers/gpu/drm/amd/include/asic_reg/kemu_gpu_regs.ts";

// ---- the ioctl ABI -------------------------------------------------------------------------------

export const apu_bind_args = struct("apu_bind_args", { pasid: u32, vmid: u32 });
export const apu_queue_args = struct("apu_queue_args", { ring_address: u64, ring_size: u32, pad: u32, rptr_report_address: u64 });
export const apu_submit_args = struct("apu_submit_args", { wptr: u64 });
export const apu_wait_args = struct("apu_wait_args", { wptr: u64, timeout_ms: u32, status: u32 });
export const apu_exception_args = struct("apu_exception_args", {
  va: u64, gpu_id: u32, not_present: u32, read_only: u32, no_execute: u32, count: u32, pad: u32,
});

const APU_IOC_MAGIC = "A".charCodeAt(0);
export const APU_IOC_BIND = _IOR(APU_IOC_MAGIC, 1, apu_bind_args);
export const APU_IOC_CREATE_QUEUE = _IOW(APU_IOC_MAGIC, 2, apu_queue_args);
export const APU_IOC_SUBMIT = _IOW(APU_IOC_MAGIC, 3, apu_submit_args);
export const APU_IOC_WAIT = _IOWR(APU_IOC_MAGIC, 4, apu_wait_args);
export const APU_IOC_GET_EXCEPTION = _IOR(APU_IOC_MAGIC, 5, apu_exception_args);

for (const [req, layout] of [
  [APU_IOC_BIND, apu_bind_args], [APU_IOC_CREATE_QUEUE, apu_queue_args], [APU_IOC_SUBMIT, apu_submit_args],
  [APU_IOC_WAIT, apu_wait_args], [APU_IOC_GET_EXCEPTION, apu_exception_args],
] as const) register_ioctl_layout(req, layout);

/** The VMID KFD gives its (single) process and the HQD / doorbell it uses. */
export const APU_VMID = 8;
const APU_DOORBELL_INDEX = 0x100;
const CARRIZO_GPU_ID = 0x9874;

// ---- the driver's process bookkeeping (kfd_process / kfd_process_device) ---------------------

class apu_node {
  readonly id = CARRIZO_GPU_ID;
  constructor(readonly kfd: apu_dev) {}
}

class apu_dev {
  constructor(readonly adev: { readonly pdev: pci_dev }) {}
}

class apu_process {
  refs = 1;
  readonly mutex: mutex;
  pdd: apu_pdd | null = null;
  queue_active = false;
  readonly exceptions: kfd_memory_exception[] = [];

  get pdds(): apu_pdd[] {
    return this.pdd ? [this.pdd] : [];
  }

  constructor(
    k: Kernel,
    readonly pasid: number,
    readonly lead_thread: task_struct,
    readonly mm: mm_struct,
  ) {
    this.mutex = new mutex(k, "&p->mutex");
  }
}

class apu_pdd {
  constructor(
    readonly dev: apu_node,
    readonly process: apu_process,
  ) {}
}

@injectable()
export class ApuKfdTest implements KernelModule {
  params?: ModuleParams;
  private pdev: pci_dev | null = null;
  private mmio: iomem | null = null;
  private doorbells: iomem | null = null;
  private dummy: page | null = null;
  private node: apu_node | null = null;
  private readonly processes: apu_process[] = [];
  /** The process each open file bound (filp->private_data in KFD). */
  private readonly files = new WeakMap<file, apu_process>();
  private next_pasid = 1;
  private v2_held = false;

  private readonly fops: file_operations = {
    owner: "apu_kfd_test",
    open: () => 0,
    unlocked_ioctl: (f, cmd, arg) => this.ioctl(f, cmd, arg),
    release: (_inode, f) => this.release(f),
  };
  private readonly misc: miscdevice = { minor: MISC_DYNAMIC_MINOR, name: "kemu_apu", fops: this.fops };
  private readonly driver: pci_driver = {
    name: "apu_kfd_test",
    owner: "apu_kfd_test",
    id_table: [PCI_DEVICE(0x1002, 0x9874)],
    probe: (pdev) => this.probe(pdev),
    remove: (pdev) => this.remove(pdev),
  };
  private readonly host: kfd_iommu_host<apu_process, apu_pdd> = {
    k: this.k,
    max_pasid_bits: 16,
    gc_version: () => [8, 0, 1],
    kfd_lookup_process_by_pasid: (pasid) => {
      const p = this.processes.find((x) => x.pasid === pasid) ?? null;
      if (p) p.refs++;
      return p;
    },
    kfd_unref_process: (p) => {
      p.refs--;
    },
    kfd_get_process_device_data: (_dev, p) => p.pdd,
    kfd_process_dequeue_from_device: async (pdd) => this.dequeue(pdd.process),
    kfd_processes: () => this.processes,
    kfd_process_get_user_gpu_id: (_p, gpu_id) => gpu_id,
    kfd_signal_memory_events: (p, data) => {
      p.exceptions.push(data);
    },
  };

  constructor(
    @inject(KERNEL) private readonly k: Kernel,
    @inject(PCI) private readonly bus: PciBus,
    @inject(MISC) private readonly miscdev: MiscDevices,
    @inject(AMD_IOMMU) private readonly amd: AmdIommu,
    @inject(MODULES) private readonly loader: ModuleLoader,
  ) {}

  async init(): Promise<number> {
    return pci_register_driver(this.bus, this.driver);
  }

  async exit(): Promise<void> {
    await pci_unregister_driver(this.bus, this.driver);
  }

  // ---- probe / remove -------------------------------------------------------------------------

  private reg_write(reg: number, v: number): void {
    this.mmio!.writel(v >>> 0, reg * 4);
  }

  private reg_read(reg: number): number {
    return this.mmio!.readl(reg * 4);
  }

  private async probe(pdev: pci_dev): Promise<number> {
    if (this.pdev) return -EBUSY;
    const v2 = amd_iommu_v2_get(this.loader);
    if (!v2) return -ENODEV;
    this.v2_held = true;
    pci_enable_device(pdev);
    pci_set_master(pdev);
    const mmio = pci_ioremap_bar(pdev, 4);
    const db = pci_ioremap_bar(pdev, 2);
    this.dummy = alloc_page(this.k, GFP_KERNEL | __GFP_ZERO);
    if (typeof mmio === "number" || typeof db === "number" || !this.dummy) return this.probe_fail(pdev, -ENOMEM);
    this.pdev = pdev;
    this.mmio = mmio;
    this.doorbells = db;
    this.reg_write(mmBIF_DOORBELL_APER_EN, 1);
    this.reg_write(mmCP_MEC_CNTL, 0);
    const pfn = page_to_pfn(this.dummy);
    this.reg_write(GFXHUB_BASE + hubVM_L2_PROTECTION_FAULT_DEFAULT_ADDR_LO32, pfn % 2 ** 32);
    this.reg_write(GFXHUB_BASE + hubVM_L2_PROTECTION_FAULT_DEFAULT_ADDR_HI32, Math.floor(pfn / 2 ** 32));
    const kfd = new apu_dev({ pdev });
    this.node = new apu_node(kfd);
    kfd_iommu_attach(kfd, this.node, this.amd, v2, this.host);
    let err = kfd_iommu_device_init(kfd);
    if (!err) err = await kfd_iommu_resume(kfd);
    if (!err) err = await this.miscdev.misc_register(this.misc);
    if (err) {
      kfd_iommu_detach(kfd);
      return this.probe_fail(pdev, err);
    }
    this.k.dev_info(pdev.dev, `apu_kfd_test: IOMMUv2 compute, ${kfd_get_pasid_limit(kfd)} PASIDs`);
    return 0;
  }

  private probe_fail(pdev: pci_dev, err: number): number {
    if (this.dummy) __free_page(this.dummy);
    this.dummy = null;
    this.pdev = null;
    pci_disable_device(pdev);
    if (this.v2_held) amd_iommu_v2_put(this.loader);
    this.v2_held = false;
    return err;
  }

  private async remove(pdev: pci_dev): Promise<void> {
    await this.miscdev.misc_deregister(this.misc);
    const kfd = this.node!.kfd;
    await kfd_iommu_suspend(kfd);
    kfd_iommu_detach(kfd);
    this.probe_fail(pdev, 0);
  }

  // ---- processes and queues --------------------------------------------------------------------

  private current_process(): apu_process | null {
    return this.processes.find((p) => p.mm === this.k.current.mm) ?? null;
  }

  /** kfd_create_process + kfd_bind_process_to_device + set_pasid_vmid_mapping. */
  private async bind(): Promise<apu_process | number> {
    const t = this.k.current;
    if (this.current_process()) return -EEXIST;
    if (this.processes.length) return -EBUSY; // one VMID, one process
    const lead = this.k.sched.all_tasks().find((x) => x.pid === t.tgid) ?? t;
    const p = new apu_process(this.k, this.next_pasid++, lead, t.mm as mm_struct);
    p.pdd = new apu_pdd(this.node!, p);
    this.processes.push(p);
    const err = await kfd_iommu_bind_process_to_device(p.pdd);
    if (err) {
      this.processes.pop();
      return err;
    }
    this.reg_write(mmATC_VMID0_PASID_MAPPING + APU_VMID, REG_SET_FIELD(p.pasid, ATC_VMID0_PASID_MAPPING__VALID, 1));
    return p;
  }

  private select_hqd(): void {
    let v = REG_SET_FIELD(0, GRBM_GFX_CNTL__MEID, 1);
    v = REG_SET_FIELD(v, GRBM_GFX_CNTL__VMID, APU_VMID);
    this.reg_write(mmGRBM_GFX_CNTL, v);
  }

  /** hqd_load(): the AQL ring and its read-pointer report live in the process's memory. */
  private create_queue(p: apu_process, ring: number, size: number, rptr_report: number): number {
    if (p.queue_active) return -EBUSY;
    if (size < 1024 || size & (size - 1) || ring % 256) return -EINVAL;
    this.select_hqd();
    this.reg_write(mmCP_HQD_VMID, APU_VMID);
    this.reg_write(mmCP_HQD_PQ_BASE, Math.floor(ring / 256) % 2 ** 32);
    this.reg_write(mmCP_HQD_PQ_BASE_HI, Math.floor(ring / 2 ** 40));
    this.reg_write(mmCP_HQD_PQ_CONTROL, Math.log2(size / 4) - 1);
    this.reg_write(mmCP_HQD_PQ_RPTR, 0);
    this.reg_write(mmCP_HQD_PQ_WPTR_LO, 0);
    this.reg_write(mmCP_HQD_PQ_WPTR_HI, 0);
    this.reg_write(mmCP_HQD_PQ_RPTR_REPORT_ADDR, rptr_report % 2 ** 32);
    this.reg_write(mmCP_HQD_PQ_RPTR_REPORT_ADDR_HI, Math.floor(rptr_report / 2 ** 32));
    this.reg_write(mmCP_HQD_PQ_DOORBELL_CONTROL, REG_SET_FIELD(APU_DOORBELL_INDEX, CP_HQD_PQ_DOORBELL_CONTROL__DOORBELL_EN, 1));
    this.reg_write(mmCP_HQD_ACTIVE, 1);
    p.queue_active = true;
    return 0;
  }

  /** kfd_process_dequeue_from_device(): the HQD stops fetching. */
  private dequeue(p: apu_process): void {
    if (!p.queue_active) return;
    this.select_hqd();
    this.reg_write(mmCP_HQD_DEQUEUE_REQUEST, 1);
    p.queue_active = false;
  }

  /** Sleeps until the queue's read pointer reaches `wptr`; -ETIME on timeout, -EFAULT if the queue stopped on an error. */
  private async wait(wptr: number, timeout_ms: number): Promise<number> {
    for (let ms = 0; ; ms++) {
      this.select_hqd();
      if (this.reg_read(mmCP_HQD_STATUS0) & 2) return -EFAULT;
      if (this.reg_read(mmCP_HQD_PQ_RPTR) >= wptr) return 0;
      if (ms >= timeout_ms) return -ETIME;
      await this.k.msleep(1);
    }
  }

  // ---- file operations -------------------------------------------------------------------------

  private async ioctl(f: file, cmd: number, arg: number): Promise<number> {
    if (cmd === APU_IOC_BIND) {
      const p = await this.bind();
      if (typeof p === "number") return p;
      this.files.set(f, p);
      return this.put(arg, apu_bind_args, { pasid: p.pasid, vmid: APU_VMID });
    }
    const p = this.files.get(f);
    if (!p || p !== this.current_process()) return -EINVAL;
    switch (cmd) {
      case APU_IOC_CREATE_QUEUE: {
        const raw = await this.copy_in(arg, apu_queue_args.size);
        if (!raw) return -EFAULT;
        const a = layout_decode(apu_queue_args, raw);
        return this.create_queue(p, a.ring_address, a.ring_size, a.rptr_report_address);
      }
      case APU_IOC_SUBMIT: {
        const raw = await this.copy_in(arg, apu_submit_args.size);
        if (!raw) return -EFAULT;
        const a = layout_decode(apu_submit_args, raw);
        if (!p.queue_active) return -EINVAL;
        this.doorbells!.writeq(a.wptr % 2 ** 32, Math.floor(a.wptr / 2 ** 32), APU_DOORBELL_INDEX * 4);
        return 0;
      }
      case APU_IOC_WAIT: {
        const raw = await this.copy_in(arg, apu_wait_args.size);
        if (!raw) return -EFAULT;
        const a = layout_decode(apu_wait_args, raw);
        const ret = await this.wait(a.wptr, a.timeout_ms);
        return this.put(arg, apu_wait_args, { ...a, status: -ret });
      }
      case APU_IOC_GET_EXCEPTION: {
        const e = p.exceptions[p.exceptions.length - 1];
        return this.put(arg, apu_exception_args, {
          va: e?.va ?? 0, gpu_id: e?.gpu_id ?? 0, not_present: e?.failure.NotPresent ?? 0, read_only: e?.failure.ReadOnly ?? 0,
          no_execute: e?.failure.NoExecute ?? 0, count: p.exceptions.length, pad: 0,
        });
      }
      default:
        return -ENOTTY;
    }
  }

  /** copy_from_user() of an ioctl argument; null on -EFAULT. */
  private async copy_in(arg: number, size: number): Promise<Uint8Array | null> {
    const raw = new Uint8Array(size);
    return (await copy_from_user(this.k, raw, arg, size)) ? null : raw;
  }

  private async put(arg: number, layout: Parameters<typeof layout_encode>[0], value: object): Promise<number> {
    return (await copy_to_user(this.k, arg, layout_encode(layout, value), layout.size)) ? -EFAULT : 0;
  }

  /** kfd_process_wq_release(): queues down, then kfd_iommu_unbind_process. */
  private async release(f: file): Promise<number> {
    const p = this.files.get(f);
    if (!p) return 0;
    this.dequeue(p);
    this.reg_write(mmATC_VMID0_PASID_MAPPING + APU_VMID, 0);
    await kfd_iommu_unbind_process(p);
    this.processes.splice(this.processes.indexOf(p), 1);
    return 0;
  }
}

export const apu_kfd_test_module: ModuleDef = {
  name: "apu_kfd_test",
  cls: ApuKfdTest,
  description: "kemu test driver: IOMMUv2 compute queues on the APU machine's GPU",
};

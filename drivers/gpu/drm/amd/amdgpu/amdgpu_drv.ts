// Mirrors drivers/gpu/drm/amd/amdgpu/amdgpu_drv.c (Linux 6.8): the amdgpu module. Its PCI id
// table binds the Aldebaran (gfx90a), Navi10 and Carrizo (APU, IOMMUv2) parts; probe enables the function, brings the
// device up and registers its DRM render node; remove undoes it. The module object is built by
// the composition root with the kernel services it reaches injected.

import "reflect-metadata";
import { inject, injectable } from "tsyringe";
import { CHRDEV, DRIVER_CORE, IRQ, KERNEL, PCI, TRACE, WORKQUEUE } from "../../../../../kernel/tokens.ts";
import type { Kernel } from "../../../../../kernel/kernel.ts";
import type { KernelModule, ModuleDef, ModuleParams } from "../../../../../kernel/module/main.ts";
import type { Workqueues } from "../../../../../kernel/workqueue.ts";
import type { Tracing } from "../../../../../kernel/trace/trace.ts";
import type { IrqCore } from "../../../../../kernel/irq/manage.ts";
import type { CharDevices } from "../../../../../fs/char_dev.ts";
import type { DriverCore } from "../../../../base/core.ts";
import type { PciBus } from "../../../../pci/probe.ts";
import { pci_register_driver, pci_unregister_driver } from "../../../../pci/pci-driver.ts";
import { pci_disable_device, pci_enable_device, pci_set_master } from "../../../../pci/pci.ts";
import { PCI_DEVICE, pci_get_drvdata, pci_set_drvdata, type pci_dev, type pci_device_id, type pci_driver } from "../../../../../include/linux/pci.ts";
import { AMD_ASIC_MASK, AMD_IS_APU, amd_asic_type, amdgpu_device, type amdgpu_services } from "./amdgpu.ts";
import { amdgpu_driver_load_kms, amdgpu_driver_open_kms, amdgpu_driver_postclose_kms, amdgpu_driver_unload_kms } from "./amdgpu_kms.ts";
import { drm_dev_alloc, drm_dev_register, drm_dev_unregister, type drm_driver } from "../../drm_drv.ts";
import { amdgpu_amdkfd_device_init, amdgpu_amdkfd_device_remove } from "./amdgpu_amdkfd.ts";

const PCI_VENDOR_ID_ATI = 0x1002;

/** pciidlist[] (the parts kemu models). */
export const pciidlist: readonly pci_device_id[] = [
  PCI_DEVICE(PCI_VENDOR_ID_ATI, 0x7408, amd_asic_type.CHIP_ALDEBARAN),
  PCI_DEVICE(PCI_VENDOR_ID_ATI, 0x740c, amd_asic_type.CHIP_ALDEBARAN),
  PCI_DEVICE(PCI_VENDOR_ID_ATI, 0x740f, amd_asic_type.CHIP_ALDEBARAN),
  PCI_DEVICE(PCI_VENDOR_ID_ATI, 0x7410, amd_asic_type.CHIP_ALDEBARAN),
  PCI_DEVICE(PCI_VENDOR_ID_ATI, 0x7310, amd_asic_type.CHIP_NAVI10),
  PCI_DEVICE(PCI_VENDOR_ID_ATI, 0x9874, amd_asic_type.CHIP_CARRIZO + AMD_IS_APU),
  PCI_DEVICE(PCI_VENDOR_ID_ATI, 0x7312, amd_asic_type.CHIP_NAVI10),
  PCI_DEVICE(PCI_VENDOR_ID_ATI, 0x7318, amd_asic_type.CHIP_NAVI10),
  PCI_DEVICE(PCI_VENDOR_ID_ATI, 0x7319, amd_asic_type.CHIP_NAVI10),
  PCI_DEVICE(PCI_VENDOR_ID_ATI, 0x731a, amd_asic_type.CHIP_NAVI10),
  PCI_DEVICE(PCI_VENDOR_ID_ATI, 0x731b, amd_asic_type.CHIP_NAVI10),
  PCI_DEVICE(PCI_VENDOR_ID_ATI, 0x731e, amd_asic_type.CHIP_NAVI10),
  PCI_DEVICE(PCI_VENDOR_ID_ATI, 0x731f, amd_asic_type.CHIP_NAVI10),
];

/** kms_driver: render nodes only. */
const amdgpu_kms_driver: drm_driver = {
  name: "amdgpu",
  desc: "AMD GPU",
  owner: "amdgpu",
  open: amdgpu_driver_open_kms,
  postclose: amdgpu_driver_postclose_kms,
};

/** The amdgpu module (module_init(amdgpu_init) / module_exit(amdgpu_exit)). */
@injectable()
export class AmdgpuModule implements KernelModule {
  params?: ModuleParams;
  readonly devices: amdgpu_device[] = [];
  private readonly svc: amdgpu_services;
  readonly driver: pci_driver;

  constructor(
    @inject(KERNEL) private readonly k: Kernel,
    @inject(PCI) private readonly pci: PciBus,
    @inject(WORKQUEUE) wq: Workqueues,
    @inject(TRACE) trace: Tracing,
    @inject(IRQ) irq: IrqCore,
    @inject(CHRDEV) chrdev: CharDevices,
    @inject(DRIVER_CORE) core: DriverCore,
  ) {
    this.svc = { wq, trace, irq, chrdev, core };
    this.driver = {
      name: "amdgpu",
      owner: "amdgpu",
      id_table: pciidlist,
      probe: (pdev, ent) => this.amdgpu_pci_probe(pdev, ent),
      remove: (pdev) => this.amdgpu_pci_remove(pdev),
    };
  }

  async init(): Promise<number> {
    this.k.pr_info("[drm] amdgpu kernel modesetting enabled.");
    return pci_register_driver(this.pci, this.driver);
  }

  async exit(): Promise<void> {
    await pci_unregister_driver(this.pci, this.driver);
  }

  private param(name: string, dflt: number): number {
    const v = this.params?.[name];
    return typeof v === "number" ? v : typeof v === "string" && v !== "" ? Number(v) : dflt;
  }

  /** amdgpu_pci_probe() */
  private async amdgpu_pci_probe(pdev: pci_dev, ent: pci_device_id): Promise<number> {
    let r = pci_enable_device(pdev);
    if (r) return r;
    pci_set_master(pdev);
    const adev = new amdgpu_device(this.k, pdev, this.svc);
    adev.instance = this.devices.length;
    adev.params = {
      noretry: this.param("noretry", -1), vm_fault_stop: this.param("vm_fault_stop", 0),
      lockup_timeout: this.param("lockup_timeout", 10000), gartsize: this.param("gartsize", -1),
    };
    adev.sdma_timeout_ms = adev.params.lockup_timeout;
    pci_set_drvdata(pdev, adev);
    // driver_data = asic type | amd_chip_flags, split as amdgpu_driver_load_kms does.
    const data = Number(ent.driver_data);
    adev.flags = data - (data % (AMD_ASIC_MASK + 1));
    r = await amdgpu_driver_load_kms(adev, (data % (AMD_ASIC_MASK + 1)) as amd_asic_type);
    if (r) {
      pci_disable_device(pdev);
      return r;
    }
    const ddev = drm_dev_alloc(this.k, amdgpu_kms_driver, pdev.dev);
    ddev.dev_private = adev;
    adev.ddev = ddev;
    r = await drm_dev_register(ddev, this.svc.core, this.svc.chrdev);
    if (r) {
      await amdgpu_driver_unload_kms(adev);
      pci_disable_device(pdev);
      return r;
    }
    this.devices.push(adev);
    await amdgpu_amdkfd_device_init(adev);
    return 0;
  }

  /** amdgpu_pci_remove() */
  private async amdgpu_pci_remove(pdev: pci_dev): Promise<void> {
    const adev = pci_get_drvdata(pdev) as amdgpu_device;
    await amdgpu_amdkfd_device_remove(adev);
    if (adev.ddev) await drm_dev_unregister(adev.ddev);
    await amdgpu_driver_unload_kms(adev);
    pci_disable_device(pdev);
    const i = this.devices.indexOf(adev);
    if (i >= 0) this.devices.splice(i, 1);
  }
}

/** The amdgpu entry of the module catalogue, with its parameters' defaults. */
export const amdgpu_module: ModuleDef = {
  name: "amdgpu",
  cls: AmdgpuModule,
  params: { noretry: -1, vm_fault_stop: 0, lockup_timeout: 10000, gartsize: -1 },
  description: "AMD GPU",
};

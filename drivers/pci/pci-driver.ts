// Mirrors drivers/pci/pci-driver.c (Linux 6.8): registering PCI drivers and binding them to
// devices by id table. pci_register_driver() probes every unbound device the table matches
// (probe runs in the caller's context, as with the synchronous probe of built-in drivers);
// pci_unregister_driver() removes the driver from each device it bound.

import { EBUSY, EEXIST, EINVAL } from "../../include/uapi/asm-generic/errno.ts";
import { pci_match_id, type pci_dev, type pci_driver } from "../../include/linux/pci.ts";
import type { PciBus } from "./probe.ts";

/** pci_device_probe(): binds `drv` to `pdev` if its table matches; 0, -ENODEV or the probe error. */
async function pci_device_probe(bus: PciBus, drv: pci_driver, pdev: pci_dev): Promise<number> {
  const id = pci_match_id(drv.id_table, pdev);
  if (!id || pdev.driver) return 0;
  pdev.driver = drv;
  pdev.dev.driver = { name: drv.name, owner: drv.owner };
  const ret = await drv.probe(pdev, id);
  if (ret) {
    pdev.driver = null;
    pdev.dev.driver = null;
    pdev.dev.driver_data = null;
    if (ret !== -19) bus.k.pr_warn(`${drv.name} ${pdev.dev.dev_name()}: probe with driver ${drv.name} failed with error ${ret}`);
  }
  return ret;
}

/** pci_register_driver(): -EEXIST if already registered, -EINVAL without an id table. */
export async function pci_register_driver(bus: PciBus, drv: pci_driver): Promise<number> {
  bus.k.might_sleep("pci_register_driver");
  if (bus.drivers.includes(drv)) return -EEXIST;
  if (!drv.id_table?.length) return -EINVAL;
  bus.drivers.push(drv);
  for (const pdev of bus.devices) await pci_device_probe(bus, drv, pdev);
  return 0;
}

/** pci_unregister_driver(): unbinds (remove) every device the driver holds. */
export async function pci_unregister_driver(bus: PciBus, drv: pci_driver): Promise<number> {
  bus.k.might_sleep("pci_unregister_driver");
  const i = bus.drivers.indexOf(drv);
  if (i < 0) return -EBUSY;
  for (const pdev of bus.devices) {
    if (pdev.driver !== drv) continue;
    await drv.remove(pdev);
    pdev.driver = null;
    pdev.dev.driver = null;
    pdev.dev.driver_data = null;
  }
  bus.drivers.splice(i, 1);
  return 0;
}

import { boot } from "../kernel/boot.ts";
import { APU_MACHINE } from "../kernel/machine_spec.ts";
import { AMD_IOMMU, MODULES, PCI, PCI_HOST } from "../kernel/tokens.ts";
import { amd_iommu_v2_get } from "../iommu/amd/iommu_v2.ts";
import type { AmdGpuDevice } from "../hw/amdgpu/device.ts";
import type { AmdIommuHw } from "../hw/amd_iommu/iommu.ts";
import { anon_map, poke } from "../test/kunit/mm/util.ts";
import { vm_munmap } from "../mm/mmap.ts";
const m = await boot({ ...APU_MACHINE, ram_size: 2 * 2 ** 30 });
const pci = m.symbol(PCI);
const pdev = pci.devices.find((d) => d.devfn === 0x18)!;
const gpu = m.symbol(PCI_HOST).model(0x18) as AmdGpuDevice;
const hw = m.symbol(PCI_HOST).model(2) as AmdIommuHw;
const v2 = amd_iommu_v2_get(m.symbol(MODULES))!;
const p = await m.spawn("x");
const task = m.k.sched.all_tasks().find((t) => t.tgid === p.pid)!;
const mm = task.mm as any;
await m.run_kthread("t", async () => {
  await v2.amd_iommu_init_device(pdev, 65536);
  await v2.amd_iommu_bind_pasid(pdev, 5, task);
  const orig = v2.mn_invalidate_range.bind(v2);
  v2.mn_invalidate_range = (mn, mm2, s, e) => { console.log("inv", s.toString(16), e.toString(16)); orig(mn, mm2, s, e); };
  const va = await anon_map(mm, 4);
  for (let i = 0; i < 4; i++) { await poke(mm, va + i * 4096, new Uint8Array([1])); console.log(gpu.atc!.ats.translate(5, va + i * 4096, "read")); }
  const dom = m.symbol(AMD_IOMMU).dev_iommu_priv_get(pdev.dev)!.domain!.id;
  console.log("dom", dom, hw.iotlb_has(dom, 5, va + 4096), va.toString(16));
  console.log(await vm_munmap(mm, va + 4096, 4096));
  console.log("after", hw.iotlb_has(dom, 5, va + 4096), hw.stats);
});

import { boot } from "../kernel/boot.ts";
const m = await boot({ name: "apu", ram_size: 4 * 2 ** 30, gpus: [{ asic: "carrizo", vram_size: 512 * 2 ** 20, apu: true }], iommu: true, seed: 0 });
for (const l of m.dmesg()) console.log(l);
console.log(await m.shutdown({ report_only: true }));
const d = await boot();
console.log(d.dmesg().filter((l) => /AMD-Vi|iommu|pci/.test(l)).join("\n"));
console.log(await d.shutdown({ report_only: true }));

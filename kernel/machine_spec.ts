// kemu: the machine description boot() turns into a kernel (not a Linux file; cf. a kernel
// command line plus the hardware a board file or device tree would describe).

import type { InjectionToken } from "tsyringe";
import type { ModuleDef } from "./module/main.ts";
import type { GpuCostModel } from "../hw/amdgpu/cost_model.ts";

export interface GpuSpec {
  /** ASIC name, e.g. "gfx90a" (GFX9 with XNACK) or "navi10". */
  asic: string;
  /** VRAM size in bytes. */
  vram_size: number;
  /** APU-class parts reach system memory through the IOMMU (ATS/PRI). */
  apu?: boolean;
  /** Overrides of the GPU cost model's defaults (hw/amdgpu/cost_model.ts). */
  cost?: Partial<GpuCostModel>;
}

/** Replace a service token's registration: the "alternative subsystem" seam (ARCHITECTURE §6.5). */
export interface TokenOverride {
  token: InjectionToken<unknown>;
  useClass?: new (...args: never[]) => unknown;
  useValue?: unknown;
}

export interface MachineSpec {
  name?: string;
  /** System RAM in bytes. */
  ram_size?: number;
  gpus?: GpuSpec[];
  iommu?: boolean;
  /** Seeds the scheduler's policy and every other machine-random choice. */
  seed?: number;
  /** Modules loaded at boot, in order (built-in names or module objects). */
  modules?: Array<string | ModuleDef>;
  overrides?: TokenOverride[];
  /** Kernel command line, e.g. "failslab=1,100,0,1 fail_page_alloc=...". */
  cmdline?: string;
}

export const GiB = 1024 * 1024 * 1024;
export const MiB = 1024 * 1024;

/** The embedded default: one XNACK-capable discrete GPU, system RAM, an AMD IOMMU. */
export const DEFAULT_MACHINE: Readonly<MachineSpec> = Object.freeze({
  name: "default",
  ram_size: 16 * GiB,
  gpus: [{ asic: "gfx90a", vram_size: 8 * GiB }],
  iommu: true,
  seed: 0,
});

/** A machine with no devices, for unit tests of the kernel core. */
export const MINIMAL_MACHINE: Readonly<MachineSpec> = Object.freeze({
  name: "minimal",
  ram_size: 1 * GiB,
  gpus: [],
  iommu: false,
  seed: 0,
});

/**
 * An IOMMUv2 APU (the legacy path of Linux ≤6.6): a Carrizo-class GPU whose process accesses
 * go through its ATC and the AMD IOMMU with the process's PASID (ATS, PRI page requests, the
 * PPR log), with the amd_iommu_v2 module loaded. GPU "VRAM" is the UMA carve-out.
 */
export const APU_MACHINE: Readonly<MachineSpec> = Object.freeze({
  name: "apu",
  ram_size: 8 * GiB,
  gpus: [{ asic: "carrizo", vram_size: 512 * MiB, apu: true }],
  iommu: true,
  seed: 0,
  modules: ["amd_iommu_v2"],
});

export function resolve_spec(spec?: MachineSpec): Required<Omit<MachineSpec, "overrides" | "modules" | "cmdline">> &
  Pick<MachineSpec, "overrides" | "modules" | "cmdline"> {
  const s = { ...DEFAULT_MACHINE, ...(spec ?? {}) };
  return {
    name: s.name ?? "default",
    ram_size: s.ram_size ?? DEFAULT_MACHINE.ram_size!,
    gpus: s.gpus ?? [],
    iommu: s.iommu ?? false,
    seed: s.seed ?? 0,
    modules: s.modules,
    overrides: s.overrides,
    cmdline: s.cmdline,
  };
}

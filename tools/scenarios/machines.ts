// kemu tooling: the machines scenarios and `kemu run --machine` can name. Every MachineSpec
// constant exported by kernel/machine_spec.ts whose name ends in _MACHINE is offered under its
// `name`, so machines added there show up here; a path ending in .json is read as a spec.

import { readFileSync } from "node:fs";
import * as specs from "../../kernel/machine_spec.ts";
import { GiB, type MachineSpec } from "../../kernel/machine_spec.ts";

/**
 * Machines only the scenarios need: the dmirror ones want RAM but no GPU; "kfd" is one
 * XNACK-capable gfx90a with 1 GiB of VRAM (amdgpu and amdkfd load at boot), small enough to boot fast;
 * "kfd-evict" the same GPU with 64 MiB of VRAM, so two processes' ranges cannot both stay there.
 */
const EXTRA: MachineSpec[] = [
  { ...specs.MINIMAL_MACHINE, name: "dmirror", ram_size: 2 * GiB },
  { name: "kfd", ram_size: 2 * GiB, gpus: [{ asic: "gfx90a", vram_size: 1 * GiB }], iommu: false, seed: 0 },
  { name: "kfd-evict", ram_size: 2 * GiB, gpus: [{ asic: "gfx90a", vram_size: 64 * 1024 * 1024 }], iommu: false, seed: 0 },
];

/** Every named machine, by name. */
export function named_machines(): Map<string, MachineSpec> {
  const out = new Map<string, MachineSpec>();
  for (const [key, v] of Object.entries(specs)) {
    if (!key.endsWith("_MACHINE") || typeof v !== "object" || v === null) continue;
    const spec = v as MachineSpec;
    if (spec.name) out.set(spec.name, spec);
  }
  for (const m of EXTRA) if (!out.has(m.name!)) out.set(m.name!, m);
  return out;
}

/** A machine by name, a spec file, or a spec; throws with the known names when unknown. */
export function resolve_machine(m: string | MachineSpec | undefined): MachineSpec {
  if (m === undefined) return { ...specs.DEFAULT_MACHINE };
  if (typeof m !== "string") return { ...m };
  if (m.endsWith(".json")) return JSON.parse(readFileSync(m, "utf8")) as MachineSpec;
  const spec = named_machines().get(m);
  if (!spec) throw new Error(`unknown machine "${m}" (known: ${[...named_machines().keys()].join(", ")}; or a .json spec)`);
  return { ...spec };
}

// Mirrors kernel/resource.c (Linux 6.8): the iomem resource tree (/proc/iomem), reduced to the
// top level plus one level of children: System RAM from the machine description, device
// regions claimed by drivers, and request_free_mem_region(), which finds unused physical
// address space (below the 46-bit MAX_PHYSMEM limit) for device-private pagemaps.

import "reflect-metadata";
import { inject, injectable } from "tsyringe";
import { MACHINE_SPEC } from "./tokens.ts";
import type { MachineSpec } from "./machine_spec.ts";
import type { KernelService } from "./machine.ts";
import { EBUSY, EINVAL, ERANGE } from "../include/uapi/asm-generic/errno.ts";
import { MAX_PHYSMEM_BITS } from "../arch/x86/include/asm/pgtable_types.ts";

export const IORESOURCE_MEM = 0x00000200;
export const IORESOURCE_BUSY = 0x80000000;
export const IORESOURCE_SYSRAM = 0x01000000;
export const IORESOURCE_SYSTEM_RAM = IORESOURCE_MEM | IORESOURCE_SYSRAM;

export const IORES_DESC_NONE = 0;
export const IORES_DESC_RESERVED = 7;
export const IORES_DESC_SOFT_RESERVED = 8;
export const IORES_DESC_DEVICE_PRIVATE_MEMORY = 6;

// region_intersects() results
export const REGION_DISJOINT = 0;
export const REGION_INTERSECTS = 1;
export const REGION_MIXED = 2;

/** The section granule request_free_mem_region() works in (SPARSEMEM sections, 128 MiB). */
const PA_SECTION_SIZE = 2 ** 27;

export class resource {
  constructor(
    public start: number,
    /** Inclusive, as in the kernel. */
    public end: number,
    public name: string,
    public flags: number,
    public desc = IORES_DESC_NONE,
  ) {}
}

export function resource_size(r: resource): number {
  return r.end - r.start + 1;
}

@injectable()
export class ResourceTree implements KernelService {
  /** iomem_resource's children, sorted by start, non-overlapping. */
  private readonly children: resource[] = [];
  readonly iomem_end = 2 ** MAX_PHYSMEM_BITS - 1;

  constructor(@inject(MACHINE_SPEC) spec: MachineSpec) {
    const ram = spec.ram_size ?? 0;
    this.children.push(new resource(0, 0xfff, "Reserved", IORESOURCE_MEM | IORESOURCE_BUSY, IORES_DESC_RESERVED));
    if (ram > 0x1000) {
      this.children.push(new resource(0x1000, ram - 1, "System RAM", IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY));
    }
  }

  private overlapping(start: number, end: number): resource[] {
    return this.children.filter((r) => r.start <= end && r.end >= start);
  }

  /** insert_resource(): claim [start, end]; -EBUSY if it overlaps anything claimed. */
  insert_resource(r: resource): number {
    if (r.end < r.start || r.start < 0 || r.end > this.iomem_end) return -EINVAL;
    if (this.overlapping(r.start, r.end).length) return -EBUSY;
    const i = this.children.findIndex((c) => c.start > r.start);
    this.children.splice(i < 0 ? this.children.length : i, 0, r);
    return 0;
  }

  /** request_mem_region(): a busy claim of [start, start+n) or null. */
  request_mem_region(start: number, n: number, name: string): resource | null {
    const r = new resource(start, start + n - 1, name, IORESOURCE_MEM | IORESOURCE_BUSY);
    return this.insert_resource(r) === 0 ? r : null;
  }

  /** release_mem_region() / release_resource(): drop the claim starting at `start`. */
  release_mem_region(start: number, n: number): void {
    const i = this.children.findIndex((c) => c.start === start && resource_size(c) === n);
    if (i >= 0) this.children.splice(i, 1);
  }

  release_resource(r: resource): number {
    const i = this.children.indexOf(r);
    if (i < 0) return -EINVAL;
    this.children.splice(i, 1);
    return 0;
  }

  /**
   * region_intersects(): does [start, start+size) meet resources with these flags and desc?
   * DISJOINT, INTERSECTS (only such resources), or MIXED (such resources and others/holes).
   */
  region_intersects(start: number, size: number, flags: number, desc: number): number {
    const end = start + size - 1;
    let match = 0;
    let other = 0;
    for (const r of this.overlapping(start, end)) {
      const same = (r.flags & flags) === flags && (desc === IORES_DESC_NONE || r.desc === desc);
      if (same) match++;
      else other++;
    }
    if (!match) return REGION_DISJOINT;
    return other ? REGION_MIXED : REGION_INTERSECTS;
  }

  /**
   * request_free_mem_region(base, size, name): the highest free, section-aligned window of
   * `size` bytes (rounded up to a section) below the end of the physical address space,
   * claimed as IORES_DESC_DEVICE_PRIVATE_MEMORY. -ERANGE when nothing is free.
   */
  request_free_mem_region(size: number, name: string): resource | number {
    if (!(size > 0)) return -EINVAL;
    const sz = Math.ceil(size / PA_SECTION_SIZE) * PA_SECTION_SIZE;
    for (let start = Math.floor((this.iomem_end + 1 - sz) / PA_SECTION_SIZE) * PA_SECTION_SIZE; start >= 0; start -= PA_SECTION_SIZE) {
      if (this.overlapping(start, start + sz - 1).length) continue;
      const r = new resource(start, start + size - 1, name, IORESOURCE_MEM | IORESOURCE_BUSY, IORES_DESC_DEVICE_PRIVATE_MEMORY);
      this.insert_resource(r);
      return r;
    }
    return -ERANGE;
  }

  /** The lines of /proc/iomem. */
  iomem_show(): string {
    return this.children
      .map((r) => `${r.start.toString(16).padStart(8, "0")}-${r.end.toString(16).padStart(8, "0")} : ${r.name}\n`)
      .join("");
  }

  leak_report(): string[] {
    return this.children
      .filter((r) => r.desc === IORES_DESC_DEVICE_PRIVATE_MEMORY)
      .map((r) => `iomem: region ${r.name} [${r.start.toString(16)}-${r.end.toString(16)}] still claimed at shutdown`);
  }
}

// Helpers for mm KUnit suites: an address space with anonymous mappings, touching pages the way
// a CPU access would (through handle_mm_fault), reading PTEs, and a toy device-private driver
// ("toydev") built only on the public mm API, with per-page page_free counts.

import type { Kernel } from "../../../kernel/kernel.ts";
import type { mm_struct, page, vm_area_struct } from "../../../include/linux/mm_types.ts";
import { PAGE_SIZE, FAULT_FLAG_WRITE, FAULT_FLAG_USER, VM_FAULT_ERROR, get_page, put_page } from "../../../include/linux/mm.ts";
import { PROT_READ, PROT_WRITE, MAP_ANONYMOUS } from "../../../include/uapi/asm-generic/mman-common.ts";
import { MAP_PRIVATE } from "../../../include/uapi/asm-generic/mman.ts";
import { mm_alloc, mmput } from "../../../kernel/fork.ts";
import { vm_mmap, vma_lookup } from "../../../mm/mmap.ts";
import { handle_mm_fault } from "../../../mm/memory.ts";
import { mmap_read_lock, mmap_read_unlock } from "../../../include/linux/mmap_lock.ts";
import { follow_pte, pte_unmap_unlock } from "../../../mm/pgtable-generic.ts";
import { ptep_get, pte_present, pte_pfn, pte_none } from "../../../arch/x86/include/asm/pgtable.ts";
import { NODE_DATA } from "../../../include/linux/mmzone.ts";
import type { pte_t } from "../../../include/linux/mm.ts";
import { dev_pagemap, MEMORY_DEVICE_PRIVATE, type dev_pagemap_ops } from "../../../include/linux/memremap.ts";
import { MEMREMAP, IOMEM } from "../../../kernel/tokens.ts";
import type { Machine } from "../../../kernel/machine.ts";
import { pfn_to_page } from "../../../mm/sparse.ts";
import { zone_device_page_init } from "../../../mm/memremap.ts";
import { lock_page, unlock_page } from "../../../mm/filemap.ts";
import { alloc_page_vma } from "../../../mm/page_alloc.ts";
import { GFP_HIGHUSER_MOVABLE } from "../../../include/linux/gfp_types.ts";
import {
  migrate_vma, migrate_vma_setup, migrate_vma_pages, migrate_vma_finalize, migrate_pfn, migrate_pfn_to_page,
  mpfn_test, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM,
} from "../../../mm/migrate_device.ts";
import { VM_FAULT_SIGBUS } from "../../../include/linux/mm.ts";
import type { vm_fault } from "../../../include/linux/mm.ts";

export function new_mm(k: Kernel): mm_struct {
  const mm = mm_alloc(k);
  if (!mm) throw new Error("mm_alloc failed");
  return mm;
}

export async function drop_mm(mm: mm_struct): Promise<void> {
  await mmput(mm);
}

/** mmap(NULL, npages pages, prot, MAP_PRIVATE|MAP_ANONYMOUS). */
export async function anon_map(mm: mm_struct, npages: number, prot = PROT_READ | PROT_WRITE): Promise<number> {
  const addr = await vm_mmap(mm, null, 0, npages * PAGE_SIZE, prot, MAP_PRIVATE | MAP_ANONYMOUS, 0);
  if (addr < 0) throw new Error(`vm_mmap: ${addr}`);
  return addr;
}

/** A CPU access: handle_mm_fault under the mmap read lock. Returns the VM_FAULT bits. */
export async function touch(mm: mm_struct, addr: number, write: boolean): Promise<number> {
  await mmap_read_lock(mm);
  try {
    const vma = vma_lookup(mm, addr);
    if (!vma) return VM_FAULT_SIGBUS;
    return await handle_mm_fault(vma, addr, (write ? FAULT_FLAG_WRITE : 0) | FAULT_FLAG_USER, null);
  } finally {
    mmap_read_unlock(mm);
  }
}

export function pte_of(mm: mm_struct, addr: number): pte_t | null {
  const l = follow_pte(mm, addr);
  if (!l) return null;
  const v = ptep_get(mm.k, l.pte);
  pte_unmap_unlock(l.pte, l.ptl);
  return v;
}

/** Writes bytes into the page at addr, faulting it in writable first. */
export async function poke(mm: mm_struct, addr: number, bytes: Uint8Array): Promise<void> {
  for (;;) {
    const pte = pte_of(mm, addr);
    if (pte && pte_present(pte) && (pte.lo & 2)) {
      NODE_DATA(mm.k).physmem.write(pte_pfn(pte) * PAGE_SIZE + (addr % PAGE_SIZE), bytes);
      return;
    }
    if ((await touch(mm, addr, true)) & VM_FAULT_ERROR) throw new Error(`poke fault at 0x${addr.toString(16)}`);
  }
}

/** Reads bytes of the page at addr, faulting it in (readable) first. */
export async function peek(mm: mm_struct, addr: number, len: number): Promise<Uint8Array> {
  for (;;) {
    const pte = pte_of(mm, addr);
    if (pte && pte_present(pte)) return NODE_DATA(mm.k).physmem.read(pte_pfn(pte) * PAGE_SIZE + (addr % PAGE_SIZE), len);
    if ((await touch(mm, addr, false)) & VM_FAULT_ERROR) throw new Error(`peek fault at 0x${addr.toString(16)}`);
  }
}

export function is_none(mm: mm_struct, addr: number): boolean {
  const pte = pte_of(mm, addr);
  return !pte || pte_none(pte);
}

export function fill(n: number, v: number): Uint8Array {
  return new Uint8Array(n).fill(v);
}

/**
 * toydev: a minimal device-private driver. Device memory is a JS map from device pfn to its
 * bytes; page_free counts per pfn; migrate_to_ram moves the faulting page back with migrate_vma.
 */
export class ToyDevice {
  readonly pgmap = new dev_pagemap();
  readonly data = new Map<number, Uint8Array>();
  readonly free_list: page[] = [];
  readonly page_free_calls = new Map<number, number>();
  migrate_to_ram_calls = 0;
  first_pfn = 0;
  npages = 0;

  constructor(private readonly machine: Machine) {}

  get k(): Kernel {
    return this.machine.k;
  }

  /** Hot-added memory comes in 2 MiB subsections; the driver hands out only `npages` of it. */
  static readonly REGION = 512 * PAGE_SIZE;

  async init(npages: number): Promise<number> {
    const iomem = this.machine.symbol(IOMEM);
    const res = iomem.request_free_mem_region(ToyDevice.REGION, "toydev");
    if (typeof res === "number") return res;
    this.pgmap.type = MEMORY_DEVICE_PRIVATE;
    this.pgmap.ranges = [{ start: res.start, end: res.start + ToyDevice.REGION - 1 }];
    this.pgmap.nr_range = 1;
    this.pgmap.owner = this;
    const ops: dev_pagemap_ops = {
      page_free: (p) => this.page_free(p),
      migrate_to_ram: (vmf) => this.migrate_to_ram(vmf),
    };
    this.pgmap.ops = ops;
    const ret = await this.machine.symbol(MEMREMAP).memremap_pages(this.pgmap);
    if (ret < 0) {
      iomem.release_mem_region(res.start, ToyDevice.REGION);
      return ret;
    }
    this.first_pfn = res.start / PAGE_SIZE;
    this.npages = npages;
    for (let i = npages - 1; i >= 0; i--) this.free_list.push(pfn_to_page(this.k, this.first_pfn + i));
    return 0;
  }

  async fini(): Promise<void> {
    await this.machine.symbol(MEMREMAP).memunmap_pages(this.pgmap);
    this.machine.symbol(IOMEM).release_mem_region(this.pgmap.range.start, ToyDevice.REGION);
  }

  private page_free(p: page): void {
    this.page_free_calls.set(p.pfn, (this.page_free_calls.get(p.pfn) ?? 0) + 1);
    this.data.delete(p.pfn);
    this.free_list.push(p);
  }

  alloc(): page | null {
    const p = this.free_list.pop();
    if (!p) return null;
    zone_device_page_init(p);
    return p;
  }

  get allocated(): number {
    return this.npages - this.free_list.length;
  }

  /** Moves [start, start + npages) of `vma` into device memory; returns pages migrated. */
  async migrate_to_device(vma: vm_area_struct, start: number, npages: number): Promise<number> {
    const args = new migrate_vma();
    args.vma = vma;
    args.start = start;
    args.end = start + npages * PAGE_SIZE;
    args.src = new Array(npages).fill(0);
    args.dst = new Array(npages).fill(0);
    args.pgmap_owner = this;
    args.flags = MIGRATE_VMA_SELECT_SYSTEM;
    const ret = await migrate_vma_setup(args);
    if (ret) return ret;
    const physmem = NODE_DATA(this.k).physmem;
    for (let i = 0; i < args.npages; i++) {
      if (!mpfn_test(args.src[i]!, MIGRATE_PFN_MIGRATE)) continue;
      const dpage = this.alloc();
      if (!dpage) continue;
      const spage = migrate_pfn_to_page(this.k, args.src[i]!);
      this.data.set(dpage.pfn, spage ? physmem.read(spage.pfn * PAGE_SIZE, PAGE_SIZE) : new Uint8Array(PAGE_SIZE));
      args.dst[i] = migrate_pfn(dpage.pfn) + MIGRATE_PFN_WRITE;
    }
    await migrate_vma_pages(args);
    let moved = 0;
    for (let i = 0; i < args.npages; i++) {
      if (mpfn_test(args.src[i]!, MIGRATE_PFN_MIGRATE) && args.dst[i]) moved++;
    }
    migrate_vma_finalize(args);
    return moved;
  }

  /** dev_pagemap_ops.migrate_to_ram: bring exactly the faulting page back. */
  private async migrate_to_ram(vmf: vm_fault): Promise<number> {
    this.migrate_to_ram_calls++;
    const args = new migrate_vma();
    args.vma = vmf.vma;
    args.start = vmf.address;
    args.end = vmf.address + PAGE_SIZE;
    args.src = [0];
    args.dst = [0];
    args.pgmap_owner = this;
    args.flags = MIGRATE_VMA_SELECT_DEVICE_PRIVATE;
    args.fault_page = vmf.page;
    if (await migrate_vma_setup(args)) return VM_FAULT_SIGBUS;
    const spage = migrate_pfn_to_page(this.k, args.src[0]!);
    if (spage && mpfn_test(args.src[0]!, MIGRATE_PFN_MIGRATE)) {
      const dpage = alloc_page_vma(GFP_HIGHUSER_MOVABLE, vmf.vma, vmf.address);
      if (!dpage) return VM_FAULT_SIGBUS;
      await lock_page(dpage);
      NODE_DATA(this.k).physmem.write(dpage.pfn * PAGE_SIZE, this.data.get(spage.pfn) ?? new Uint8Array(PAGE_SIZE));
      args.dst[0] = migrate_pfn(dpage.pfn) + (mpfn_test(args.src[0]!, MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
    }
    await migrate_vma_pages(args);
    migrate_vma_finalize(args);
    return 0;
  }
}

/** Holds a page lock for the duration of `fn` (to test best-effort collection). */
export async function with_page_locked<T>(p: page, fn: () => Promise<T>): Promise<T> {
  get_page(p);
  await lock_page(p);
  try {
    return await fn();
  } finally {
    unlock_page(p);
    put_page(p);
  }
}

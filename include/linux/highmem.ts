// Mirrors include/linux/highmem.h (Linux 6.8): copying and clearing whole pages and parts of
// pages. x86-64 has no highmem and kemu has no kernel linear map, so these go straight to the
// machine's physical memory.

import type { page, vm_area_struct } from "./mm_types.ts";

const PAGE_SIZE = 4096;

function physmem_of(p: page) {
  return p.zone.zone_pgdat.physmem;
}

/** copy_highpage(to, from). */
export function copy_highpage(to: page, from: page): void {
  physmem_of(to).copy(to.pfn * PAGE_SIZE, from.pfn * PAGE_SIZE, PAGE_SIZE);
}

/** copy_user_highpage(to, from, vaddr, vma): the COW copy. */
export function copy_user_highpage(to: page, from: page, _vaddr: number, _vma: vm_area_struct): void {
  copy_highpage(to, from);
}

export function clear_highpage(p: page): void {
  physmem_of(p).fill(p.pfn * PAGE_SIZE, PAGE_SIZE, 0);
}

export function clear_user_highpage(p: page, _vaddr: number): void {
  clear_highpage(p);
}

/** memcpy_from_page(to, page, offset, len). */
export function memcpy_from_page(to: Uint8Array, p: page, offset: number, len: number): void {
  physmem_of(p).read_into(p.pfn * PAGE_SIZE + offset, to, 0, len);
}

/** memcpy_to_page(page, offset, from, len). */
export function memcpy_to_page(p: page, offset: number, from: Uint8Array, len: number): void {
  physmem_of(p).write(p.pfn * PAGE_SIZE + offset, from, 0, len);
}

export function memzero_page(p: page, offset: number, len: number): void {
  physmem_of(p).fill(p.pfn * PAGE_SIZE + offset, len, 0);
}

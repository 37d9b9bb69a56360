// Mirrors arch/x86/mm/pgprot.c (Linux 6.8): protection_map[], the PTE protection of each
// combination of VM_READ | VM_WRITE | VM_EXEC | VM_SHARED. Private writable mappings get
// read-only PTEs (PAGE_COPY): the first write faults and copies (COW).

import {
  PAGE_NONE, PAGE_READONLY, PAGE_COPY, PAGE_READONLY_EXEC, PAGE_COPY_EXEC, PAGE_SHARED, PAGE_SHARED_EXEC,
  type pgprot_t,
} from "../include/asm/pgtable_types.ts";

/** Indexed by vm_flags & (VM_READ|VM_WRITE|VM_EXEC|VM_SHARED) = bits 0..3. */
export const protection_map: readonly pgprot_t[] = [
  PAGE_NONE, // VM_NONE
  PAGE_READONLY, // VM_READ
  PAGE_COPY, // VM_WRITE
  PAGE_COPY, // VM_WRITE | VM_READ
  PAGE_READONLY_EXEC, // VM_EXEC
  PAGE_READONLY_EXEC, // VM_EXEC | VM_READ
  PAGE_COPY_EXEC, // VM_EXEC | VM_WRITE
  PAGE_COPY_EXEC, // VM_EXEC | VM_WRITE | VM_READ
  PAGE_NONE, // VM_SHARED
  PAGE_READONLY, // VM_SHARED | VM_READ
  PAGE_SHARED, // VM_SHARED | VM_WRITE
  PAGE_SHARED, // VM_SHARED | VM_WRITE | VM_READ
  PAGE_READONLY_EXEC, // VM_SHARED | VM_EXEC
  PAGE_READONLY_EXEC, // VM_SHARED | VM_EXEC | VM_READ
  PAGE_SHARED_EXEC, // VM_SHARED | VM_EXEC | VM_WRITE
  PAGE_SHARED_EXEC, // VM_SHARED | VM_EXEC | VM_WRITE | VM_READ
];

export function protection_map_get(idx: number): pgprot_t {
  return protection_map[idx & 0xf]!;
}

// Mirrors include/linux/iosys-map.h (Linux 6.8): a pointer to memory that is either I/O memory
// (a BAR mapping) or system memory, with accessors that do the right thing for each. kemu adds
// the two system-memory shapes a driver meets: a vmap of pages (struct page pfns in RAM) and a
// plain kernel buffer (kvmalloc). Offsets are bytes from the start of the mapping.

import type { PhysMem } from "../../hw/physmem.ts";
import type { iomem } from "../asm-generic/io.ts";

const PAGE_SIZE = 4096;

export interface iosys_map {
  readonly is_iomem: boolean;
  readonly size: number;
  rd32(off: number): number;
  wr32(off: number, value: number): void;
  memcpy_from(dst: Uint8Array, off: number, len?: number): void;
  memcpy_to(off: number, src: Uint8Array): void;
  memset(off: number, value: number, len: number): void;
}

/** iosys_map_set_vaddr_iomem(): a window `off`.. into an ioremap()ed region. */
export class iosys_map_iomem implements iosys_map {
  readonly is_iomem = true;
  constructor(
    readonly io: iomem,
    readonly base: number,
    readonly size: number,
  ) {}
  rd32(off: number): number {
    return this.io.readl(this.base + off);
  }
  wr32(off: number, value: number): void {
    this.io.writel(value, this.base + off);
  }
  memcpy_from(dst: Uint8Array, off: number, len = dst.length): void {
    this.io.memcpy_fromio(len === dst.length ? dst : dst.subarray(0, len), this.base + off);
  }
  memcpy_to(off: number, src: Uint8Array): void {
    this.io.memcpy_toio(this.base + off, src);
  }
  memset(off: number, value: number, len: number): void {
    this.io.memset_io(this.base + off, value, len);
  }
}

/** vmap() of system pages: consecutive virtual pages over (possibly scattered) pfns. */
export class iosys_map_pages implements iosys_map {
  readonly is_iomem = false;
  readonly size: number;
  constructor(
    readonly mem: PhysMem,
    readonly pfns: readonly number[],
  ) {
    this.size = pfns.length * PAGE_SIZE;
  }
  private pa(off: number): number {
    return this.pfns[Math.floor(off / PAGE_SIZE)]! * PAGE_SIZE + (off % PAGE_SIZE);
  }
  rd32(off: number): number {
    return this.mem.read32(this.pa(off));
  }
  wr32(off: number, value: number): void {
    this.mem.write32(this.pa(off), value >>> 0);
  }
  // Page by page (the pfns need not be contiguous); plain loops, as these run for every IB.
  memcpy_from(dst: Uint8Array, off: number, len = dst.length): void {
    for (let done = 0; done < len;) {
      const n = Math.min(len - done, PAGE_SIZE - ((off + done) % PAGE_SIZE));
      this.mem.read_into(this.pa(off + done), dst, done, n);
      done += n;
    }
  }
  memcpy_to(off: number, src: Uint8Array): void {
    for (let done = 0; done < src.length;) {
      const n = Math.min(src.length - done, PAGE_SIZE - ((off + done) % PAGE_SIZE));
      this.mem.write(this.pa(off + done), src, done, n);
      done += n;
    }
  }
  memset(off: number, value: number, len: number): void {
    for (let done = 0; done < len;) {
      const n = Math.min(len - done, PAGE_SIZE - ((off + done) % PAGE_SIZE));
      this.mem.fill(this.pa(off + done), n, value & 0xff);
      done += n;
    }
  }
}

/** iosys_map_set_vaddr(): ordinary kernel memory (a kvmalloc'd buffer). */
export class iosys_map_vaddr implements iosys_map {
  readonly is_iomem = false;
  private readonly dv: DataView;
  constructor(readonly vaddr: Uint8Array) {
    this.dv = new DataView(vaddr.buffer, vaddr.byteOffset, vaddr.byteLength);
  }
  get size(): number {
    return this.vaddr.length;
  }
  rd32(off: number): number {
    return this.dv.getUint32(off, true);
  }
  wr32(off: number, value: number): void {
    this.dv.setUint32(off, value >>> 0, true);
  }
  memcpy_from(dst: Uint8Array, off: number, len = dst.length): void {
    dst.set(this.vaddr.subarray(off, off + len));
  }
  memcpy_to(off: number, src: Uint8Array): void {
    this.vaddr.set(src, off);
  }
  memset(off: number, value: number, len: number): void {
    this.vaddr.fill(value & 0xff, off, off + len);
  }
}

/** iosys_map_incr(): the same memory, `off` bytes further in. */
export function iosys_map_offset(map: iosys_map, off: number): iosys_map {
  return {
    is_iomem: map.is_iomem,
    size: map.size - off,
    rd32: (o) => map.rd32(off + o),
    wr32: (o, v) => map.wr32(off + o, v),
    memcpy_from: (dst, o, len) => map.memcpy_from(dst, off + o, len),
    memcpy_to: (o, src) => map.memcpy_to(off + o, src),
    memset: (o, v, len) => map.memset(off + o, v, len),
  };
}

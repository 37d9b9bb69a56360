// Mirrors include/asm-generic/io.h (Linux 6.8): readl/writel and friends on an ioremap()ed
// region. In kemu a `void __iomem *` is an iomem object: a window onto physical MMIO space
// that sends every access to the PCI host bridge, which decodes it to a device BAR. An access
// past the end of the mapping is a kernel bug (the kernel would take a page fault): it WARNs
// once and the access is dropped (reads return all-ones, as an unclaimed MMIO read does).

import type { Kernel } from "../../kernel/kernel.ts";
import type { PciHostBridge } from "../../hw/pci.ts";

export class iomem {
  constructor(
    private readonly k: Kernel,
    private readonly bridge: PciHostBridge,
    /** Physical address the mapping starts at. */
    readonly phys: number,
    readonly size: number,
  ) {}

  private ok(off: number, len: number): boolean {
    if (off >= 0 && off + len <= this.size && Number.isInteger(off)) return true;
    this.k.WARN_ONCE(true, `iomem: access at offset 0x${off.toString(16)} (+${len}) outside the ${this.size}-byte mapping at 0x${this.phys.toString(16)}`);
    return false;
  }

  readl(off: number): number {
    return this.ok(off, 4) ? this.bridge.mmio_read32(this.phys + off) : 0xffffffff;
  }

  writel(value: number, off: number): void {
    if (this.ok(off, 4)) this.bridge.mmio_write32(this.phys + off, value >>> 0);
  }

  /** writeq(): one 64-bit transaction, as doorbells need. */
  writeq(lo: number, hi: number, off: number): void {
    if (this.ok(off, 8)) this.bridge.mmio_write64(this.phys + off, lo >>> 0, hi >>> 0);
  }

  memcpy_fromio(dst: Uint8Array, off: number): void {
    if (this.ok(off, dst.length)) this.bridge.mmio_read_bytes(this.phys + off, dst);
    else dst.fill(0xff);
  }

  memcpy_toio(off: number, src: Uint8Array): void {
    if (this.ok(off, src.length)) this.bridge.mmio_write_bytes(this.phys + off, src);
  }

  memset_io(off: number, value: number, len: number): void {
    const chunk = new Uint8Array(Math.min(len, 65536)).fill(value & 0xff);
    for (let done = 0; done < len; done += chunk.length) {
      const n = Math.min(chunk.length, len - done);
      this.memcpy_toio(off + done, n === chunk.length ? chunk : chunk.subarray(0, n));
    }
  }
}

export function readl(addr: iomem, off = 0): number {
  return addr.readl(off);
}

export function writel(value: number, addr: iomem, off = 0): void {
  addr.writel(value, off);
}

export function writeq(lo: number, hi: number, addr: iomem, off = 0): void {
  addr.writeq(lo, hi, off);
}

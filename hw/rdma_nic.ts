// kemu hardware model: a minimal RDMA network card on the PCI bus. Its DMA engine copies
// bytes between two bus addresses, or between a bus address and the card's 4 KiB packet SRAM
// (where a frame from the wire lands or a frame to the wire is built). A bus address inside
// system RAM goes through the card's port (bus mastering, IOMMU translation); any other address
// is a peer-to-peer transaction routed by the host bridge to the BAR that decodes it — how the
// NIC reaches GPU VRAM through the GPU's BAR.
//
// BAR0 (8 KiB): registers at 0x000, SRAM at 0x1000.
//   0x00/0x04 DMA_SRC lo/hi   0x08/0x0c DMA_DST lo/hi   0x10 DMA_LEN
//   0x14 DMA_CTRL (write: bit0 start, bit1 source is SRAM offset, bit2 destination is SRAM offset)
//   0x18 DMA_STATUS (0 done, 1 aborted)   0x1c DMA_BYTES (total bytes moved, wraps at 2^32)
// A started transfer completes before the register write returns (no interrupt needed).

import type { PciBarDesc, PciDevicePort, PciFunctionModel, PciHostBridge } from "./pci.ts";

export const NIC_DMA_SRC_LO = 0x00;
export const NIC_DMA_SRC_HI = 0x04;
export const NIC_DMA_DST_LO = 0x08;
export const NIC_DMA_DST_HI = 0x0c;
export const NIC_DMA_LEN = 0x10;
export const NIC_DMA_CTRL = 0x14;
export const NIC_DMA_STATUS = 0x18;
export const NIC_DMA_BYTES = 0x1c;
export const NIC_CTRL_START = 0x1;
export const NIC_CTRL_SRC_SRAM = 0x2;
export const NIC_CTRL_DST_SRAM = 0x4;
export const NIC_SRAM_OFFSET = 0x1000;
export const NIC_SRAM_SIZE = 0x1000;

export const KEMU_NIC_VENDOR_ID = 0x1b36;
export const KEMU_NIC_DEVICE_ID = 0x00f0;

export class RdmaNicDevice implements PciFunctionModel {
  readonly vendor_id = KEMU_NIC_VENDOR_ID;
  readonly device_id = KEMU_NIC_DEVICE_ID;
  readonly revision = 1;
  /** Network controller, InfiniBand. */
  readonly class_code = 0x020700;
  readonly subsystem_vendor_id = KEMU_NIC_VENDOR_ID;
  readonly subsystem_id = KEMU_NIC_DEVICE_ID;
  readonly bars: ReadonlyArray<PciBarDesc | null> = [{ size: 0x2000, is64: false, prefetch: false }];
  readonly sram = new Uint8Array(NIC_SRAM_SIZE);
  private readonly regs = new Uint32Array(8);
  private port: PciDevicePort | null = null;
  /** Transfers the engine aborted (master abort or nothing decoding a peer address). */
  aborts = 0;

  constructor(private readonly bridge: PciHostBridge) {}

  attach(port: PciDevicePort): void {
    this.port = port;
  }

  mmio_read32(bar: number, offset: number): number {
    if (bar !== 0) return 0xffffffff;
    if (offset >= NIC_SRAM_OFFSET) {
      const o = offset - NIC_SRAM_OFFSET;
      return new DataView(this.sram.buffer).getUint32(o, true);
    }
    return this.regs[offset / 4] ?? 0xffffffff;
  }

  mmio_write32(bar: number, offset: number, value: number): void {
    if (bar !== 0) return;
    if (offset >= NIC_SRAM_OFFSET) {
      new DataView(this.sram.buffer).setUint32(offset - NIC_SRAM_OFFSET, value, true);
      return;
    }
    if (offset === NIC_DMA_CTRL) {
      if (value & NIC_CTRL_START) this.run_dma(value);
      return;
    }
    if (offset < NIC_DMA_CTRL) this.regs[offset / 4] = value >>> 0;
  }

  mmio_write64(bar: number, offset: number, lo: number, hi: number): void {
    this.mmio_write32(bar, offset, lo);
    this.mmio_write32(bar, offset + 4, hi);
  }

  mmio_read_bytes(bar: number, offset: number, dst: Uint8Array): void {
    if (bar === 0 && offset >= NIC_SRAM_OFFSET && offset - NIC_SRAM_OFFSET + dst.length <= NIC_SRAM_SIZE) {
      dst.set(this.sram.subarray(offset - NIC_SRAM_OFFSET, offset - NIC_SRAM_OFFSET + dst.length));
    } else dst.fill(0xff);
  }

  mmio_write_bytes(bar: number, offset: number, src: Uint8Array): void {
    if (bar === 0 && offset >= NIC_SRAM_OFFSET && offset - NIC_SRAM_OFFSET + src.length <= NIC_SRAM_SIZE) {
      this.sram.set(src, offset - NIC_SRAM_OFFSET);
    }
  }

  private reg64(lo: number): number {
    return this.regs[lo / 4]! + this.regs[lo / 4 + 1]! * 2 ** 32;
  }

  private run_dma(ctrl: number): void {
    const src = this.reg64(NIC_DMA_SRC_LO);
    const dst = this.reg64(NIC_DMA_DST_LO);
    const len = this.regs[NIC_DMA_LEN / 4]!;
    const buf = new Uint8Array(len);
    let ok: boolean;
    if (ctrl & NIC_CTRL_SRC_SRAM) {
      ok = src + len <= NIC_SRAM_SIZE;
      if (ok) buf.set(this.sram.subarray(src, src + len));
    } else ok = this.bus_read(src, buf);
    if (ok && ctrl & NIC_CTRL_DST_SRAM) {
      ok = dst + len <= NIC_SRAM_SIZE;
      if (ok) this.sram.set(buf, dst);
    } else if (ok) ok = this.bus_write(dst, buf);
    this.regs[NIC_DMA_STATUS / 4] = ok ? 0 : 1;
    if (ok) this.regs[NIC_DMA_BYTES / 4] = (this.regs[NIC_DMA_BYTES / 4]! + len) % 2 ** 32;
    else this.aborts++;
  }

  /** RAM through the port; anything else peer-to-peer through the bridge. */
  private bus_read(addr: number, dst: Uint8Array): boolean {
    const port = this.port;
    if (!port || !this.bridge.bus_master_enabled(port.devfn)) return false;
    if (addr + dst.length <= this.bridge.ram_size) return port.dma_read(addr, dst);
    return this.bridge.mmio_read_bytes(addr, dst);
  }

  private bus_write(addr: number, src: Uint8Array): boolean {
    const port = this.port;
    if (!port || !this.bridge.bus_master_enabled(port.devfn)) return false;
    if (addr + src.length <= this.bridge.ram_size) return port.dma_write(addr, src);
    return this.bridge.mmio_write_bytes(addr, src);
  }
}

// kemu hardware: the GPU's memory fabric (not a kernel file). A translated GPU access lands
// either in local VRAM (an offset into the frame buffer) or in system memory (a bus address,
// carried by PCIe DMA through the host bridge). Bulk transfers move whole 4 KiB frames between
// the sparse memories with TypedArray copies, never dword by dword.

import { FRAME_SIZE, type PhysMem } from "../physmem.ts";
import type { PciDevicePort } from "../pci.ts";

/** Where a physical GPU access goes: VRAM offset (sys=false) or system bus address (sys=true). */
export interface GpuPhys {
  sys: boolean;
  addr: number;
}

/** Copies `len` bytes between two sparse memories frame by frame; untouched source frames read as zeros. */
export function copy_phys(dst: PhysMem, dpa: number, src: PhysMem, spa: number, len: number): void {
  if (dst === src && dpa > spa && dpa < spa + len) {
    dst.write(dpa, src.read(spa, len));
    return;
  }
  while (len > 0) {
    const so = spa % FRAME_SIZE;
    const doff = dpa % FRAME_SIZE;
    const spfn = (spa - so) / FRAME_SIZE;
    const dpfn = (dpa - doff) / FRAME_SIZE;
    // Runs of frames that are consecutive in their host slabs move with one set().
    const f = src.frames(spfn, Math.ceil((len + so) / FRAME_SIZE));
    if (f) {
      const d = dst.frames_for_write(dpfn, Math.ceil((len + doff) / FRAME_SIZE), doff === 0 ? len : 0);
      const n = Math.min(len, f.length - so, d.length - doff);
      d.set(so === 0 && n === f.length ? f : f.subarray(so, so + n), doff);
      spa += n;
      dpa += n;
      len -= n;
      continue;
    }
    // Never-written source frame: reads as zeros.
    const n = Math.min(len, FRAME_SIZE - so, FRAME_SIZE - doff);
    if (dst.is_backed(dpfn)) dst.fill(dpa, n, 0);
    spa += n;
    dpa += n;
    len -= n;
  }
}

export class GpuMemBus {
  /** Accesses to VRAM offsets beyond the frame buffer (dropped, read as zero). */
  vram_range_errors = 0;
  private port: PciDevicePort | null = null;

  constructor(
    readonly vram: PhysMem,
    readonly vram_size: number,
  ) {}

  attach(port: PciDevicePort): void {
    this.port = port;
  }

  private vram_ok(addr: number, len: number): boolean {
    if (addr >= 0 && addr + len <= this.vram_size) return true;
    this.vram_range_errors++;
    return false;
  }

  /** Resolves a target to a (memory, address) pair for bulk work, or null if it aborts. */
  private resolve(t: GpuPhys, len: number, write: boolean): { mem: PhysMem; pa: number } | null {
    if (!t.sys) return this.vram_ok(t.addr, len) ? { mem: this.vram, pa: t.addr } : null;
    const r = this.port?.dma_ram(t.addr, len, write) ?? null;
    return r ? { mem: r.ram, pa: r.pa } : null;
  }

  read32(t: GpuPhys): number {
    return this.read32_at(t.sys, t.addr);
  }

  /** read32() without a target object (the UTCL2 walker reads eight of these per miss). */
  read32_at(sys: boolean, addr: number): number {
    if (sys) return this.port ? this.port.dma_read32(addr) : 0xffffffff;
    return this.vram_ok(addr, 4) ? this.vram.read32(addr) : 0;
  }

  write32(t: GpuPhys, value: number): void {
    if (t.sys) this.port?.dma_write32(t.addr, value);
    else if (this.vram_ok(t.addr, 4)) this.vram.write32(t.addr, value);
  }

  read(t: GpuPhys, dst: Uint8Array, off = 0, len = dst.length - off): void {
    const pa = this.resolve_at(t, 0, len, false);
    if (pa >= 0) this.r_mem!.read_into(pa, dst, off, len);
    else dst.fill(t.sys ? 0xff : 0, off, off + len);
  }

  write(t: GpuPhys, src: Uint8Array, off = 0, len = src.length - off): void {
    const pa = this.resolve_at(t, 0, len, true);
    if (pa >= 0) this.r_mem!.write(pa, src, off, len);
  }

  /** Copies between two physically contiguous spans. */
  copy(dst: GpuPhys, src: GpuPhys, len: number): void {
    this.copy_at(dst, 0, src, 0, len);
  }

  /** copy() from `soff` bytes into `src` to `doff` bytes into `dst` (no intermediate objects). */
  copy_at(dst: GpuPhys, doff: number, src: GpuPhys, soff: number, len: number): void {
    const s = this.resolve_at(src, soff, len, false);
    const sm = this.r_mem;
    const d = this.resolve_at(dst, doff, len, true);
    if (d < 0) return;
    if (s >= 0) copy_phys(this.r_mem!, d, sm!, s, len);
    else this.r_mem!.fill(d, len, src.sys ? 0xff : 0);
  }

  private r_mem: PhysMem | null = null;

  /** resolve() returning the address and leaving the memory in r_mem; -1 if it aborts. */
  private resolve_at(t: GpuPhys, off: number, len: number, write: boolean): number {
    const addr = t.addr + off;
    if (!t.sys) {
      if (!this.vram_ok(addr, len)) return -1;
      this.r_mem = this.vram;
      return addr;
    }
    const r = this.port?.dma_ram(addr, len, write) ?? null;
    if (!r) return -1;
    this.r_mem = r.ram;
    return r.pa;
  }

  /** Fills a contiguous span with a repeated dword. */
  fill32(dst: GpuPhys, value: number, len: number): void {
    const d = this.resolve(dst, len, true);
    if (!d) return;
    if (value === 0) {
      d.mem.fill(d.pa, len, 0);
      return;
    }
    const pattern = new Uint8Array(Math.min(len, FRAME_SIZE) + 4);
    new DataView(pattern.buffer).setUint32(0, value >>> 0, true);
    for (let i = 4; i < pattern.length; i *= 2) pattern.copyWithin(i, 0, Math.min(i, pattern.length - i));
    let done = 0;
    while (done < len) {
      // Keep the dword phase: every chunk starts on a multiple of 4 bytes from the span start.
      const n = Math.min(len - done, FRAME_SIZE - ((d.pa + done) % FRAME_SIZE));
      const phase = done % 4;
      d.mem.write(d.pa + done, pattern, phase, n);
      done += n;
    }
  }
}

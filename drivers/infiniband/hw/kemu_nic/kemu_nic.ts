// Mirrors drivers/infiniband/hw/mlx5/mr.c and wr.c (Linux 6.8) in shape only: a provider driver
// for kemu's made-up NIC (hw/rdma_nic.ts), with the same MR and post paths: probe enables bus
// mastering; a memory registration (ib_reg_user_mr) goes through the RDMA core's peer path so
// GPU memory is pinned and described by its owner; "RDMA write" / "RDMA read" model frames to
// and from the wire passing through the card's SRAM; a loopback send moves bytes from one
// registered buffer to another with the card's DMA engine, peer-to-peer where they are VRAM.
//
// kemu: the card is hot-plugged after boot enumeration, so the driver reaches its registers
// through the model rather than an ioremap of an assigned BAR; there are no queue pairs,
// completion queues or keys on the wire — a work request is executed when it is posted. Only
// peer memory can be registered (-EFAULT otherwise): ib_umem_get's user-page path is not built.

import type { Kernel } from "../../../../kernel/kernel.ts";
import type { PciHostBridge } from "../../../../hw/pci.ts";
import { PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY } from "../../../../hw/pci.ts";
import {
  NIC_CTRL_DST_SRAM, NIC_CTRL_SRC_SRAM, NIC_CTRL_START, NIC_DMA_CTRL, NIC_DMA_DST_HI, NIC_DMA_DST_LO, NIC_DMA_LEN, NIC_DMA_SRC_HI,
  NIC_DMA_SRC_LO, NIC_DMA_STATUS, NIC_SRAM_OFFSET, NIC_SRAM_SIZE, type RdmaNicDevice,
} from "../../../../hw/rdma_nic.ts";
import { EFAULT, EINVAL, EIO } from "../../../../include/uapi/asm-generic/errno.ts";
import { ib_peer_umem_get, ib_peer_umem_release, type ib_umem_peer } from "../../core/peer_mem.ts";

/** The driver's per-card state (struct kemu_nic_dev). */
export class kemu_nic_dev {
  readonly mrs = new Set<kemu_nic_mr>();
  constructor(
    readonly k: Kernel,
    readonly hw: RdmaNicDevice,
  ) {}
}

/** struct ib_mr of this driver. */
export class kemu_nic_mr {
  /** Cleared when the peer invalidates the memory (old peer-direct design). */
  valid = true;
  constructor(
    readonly dev: kemu_nic_dev,
    readonly umem: ib_umem_peer,
    readonly writable: boolean,
  ) {}
  get length(): number {
    return this.umem.length;
  }
}

/** kemu_nic_probe(): enable memory decoding and bus mastering of the card at `devfn`. */
export function kemu_nic_probe(k: Kernel, bridge: PciHostBridge, devfn: number): kemu_nic_dev | number {
  const hw = bridge.model(devfn) as RdmaNicDevice | null;
  if (!hw) return -EINVAL;
  const cmd = bridge.config_read32(devfn, PCI_COMMAND);
  bridge.config_write32(devfn, PCI_COMMAND, (cmd % 65536) | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  return new kemu_nic_dev(k, hw);
}

/**
 * kemu_nic_reg_user_mr(): registers [addr, addr+length) of the calling process. -EFAULT when no
 * peer memory client claims it; the client's error otherwise.
 */
export async function kemu_nic_reg_user_mr(dev: kemu_nic_dev, addr: number, length: number, writable: boolean): Promise<kemu_nic_mr | number> {
  if (length <= 0) return -EINVAL;
  let mr: kemu_nic_mr | null = null;
  const umem = await ib_peer_umem_get(dev.k, addr, length, writable, null, () => {
    if (mr) mr.valid = false;
  });
  if (umem === null) return -EFAULT;
  if (typeof umem === "number") return umem;
  mr = new kemu_nic_mr(dev, umem, writable);
  dev.mrs.add(mr);
  return mr;
}

/** kemu_nic_dereg_mr(): the core unmaps, unpins and releases. */
export async function kemu_nic_dereg_mr(mr: kemu_nic_mr): Promise<void> {
  mr.dev.mrs.delete(mr);
  await ib_peer_umem_release(mr.dev.k, mr.umem);
}

/** The bus pieces of [offset, offset+len) of an MR, walking its sg list. */
function mr_pieces(mr: kemu_nic_mr, offset: number, len: number): Array<{ addr: number; len: number }> | null {
  if (!mr.valid || offset < 0 || len <= 0 || offset + len > mr.length) return null;
  const out: Array<{ addr: number; len: number }> = [];
  let skip = offset;
  let left = len;
  for (const e of mr.umem.sg_head.sgl) {
    if (!left) break;
    if (skip >= e.length) {
      skip -= e.length;
      continue;
    }
    const n = Math.min(e.length - skip, left);
    out.push({ addr: e.dma_address + skip, len: n });
    left -= n;
    skip = 0;
  }
  return left ? null : out;
}

/** One DMA engine transfer; -EIO if the card aborted it. */
function nic_dma(dev: kemu_nic_dev, src: number, dst: number, len: number, ctrl: number): number {
  const hw = dev.hw;
  hw.mmio_write32(0, NIC_DMA_SRC_LO, src % 2 ** 32);
  hw.mmio_write32(0, NIC_DMA_SRC_HI, Math.floor(src / 2 ** 32));
  hw.mmio_write32(0, NIC_DMA_DST_LO, dst % 2 ** 32);
  hw.mmio_write32(0, NIC_DMA_DST_HI, Math.floor(dst / 2 ** 32));
  hw.mmio_write32(0, NIC_DMA_LEN, len);
  hw.mmio_write32(0, NIC_DMA_CTRL, NIC_CTRL_START | ctrl);
  return hw.mmio_read32(0, NIC_DMA_STATUS) === 0 ? 0 : -EIO;
}

/**
 * An RDMA write from the wire into `mr` at `offset`: the payload lands in SRAM and the engine
 * scatters it. -EFAULT for a bad or invalidated MR or range, -EINVAL for a read-only MR.
 */
export function kemu_nic_rdma_write(mr: kemu_nic_mr, offset: number, data: Uint8Array): number {
  if (!mr.writable) return -EINVAL;
  const pieces = mr_pieces(mr, offset, data.length);
  if (!pieces) return -EFAULT;
  let pos = 0;
  for (const p of pieces) {
    for (let done = 0; done < p.len;) {
      const n = Math.min(NIC_SRAM_SIZE, p.len - done);
      mr.dev.hw.mmio_write_bytes(0, NIC_SRAM_OFFSET, data.subarray(pos, pos + n));
      const r = nic_dma(mr.dev, 0, p.addr + done, n, NIC_CTRL_SRC_SRAM);
      if (r) return r;
      done += n;
      pos += n;
    }
  }
  return 0;
}

/** An RDMA read answered to the wire: gathers [offset, offset+len) of `mr` through SRAM. */
export function kemu_nic_rdma_read(mr: kemu_nic_mr, offset: number, len: number): Uint8Array | number {
  const pieces = mr_pieces(mr, offset, len);
  if (!pieces) return -EFAULT;
  const out = new Uint8Array(len);
  let pos = 0;
  for (const p of pieces) {
    for (let done = 0; done < p.len;) {
      const n = Math.min(NIC_SRAM_SIZE, p.len - done);
      const r = nic_dma(mr.dev, p.addr + done, 0, n, NIC_CTRL_DST_SRAM);
      if (r) return r;
      mr.dev.hw.mmio_read_bytes(0, NIC_SRAM_OFFSET, out.subarray(pos, pos + n));
      done += n;
      pos += n;
    }
  }
  return out;
}

/** Loopback send: `len` bytes from `src` at `src_off` to `dst` at `dst_off`, bus to bus. */
export function kemu_nic_loopback_send(src: kemu_nic_mr, src_off: number, dst: kemu_nic_mr, dst_off: number, len: number): number {
  if (!dst.writable) return -EINVAL;
  const from = mr_pieces(src, src_off, len);
  const to = mr_pieces(dst, dst_off, len);
  if (!from || !to) return -EFAULT;
  let i = 0;
  let j = 0;
  let fi = 0;
  let tj = 0;
  while (i < from.length && j < to.length) {
    const n = Math.min(from[i]!.len - fi, to[j]!.len - tj);
    const r = nic_dma(src.dev, from[i]!.addr + fi, to[j]!.addr + tj, n, 0);
    if (r) return r;
    fi += n;
    tj += n;
    if (fi === from[i]!.len) [i, fi] = [i + 1, 0];
    if (tj === to[j]!.len) [j, tj] = [j + 1, 0];
  }
  return 0;
}

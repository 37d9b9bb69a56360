// Mirrors include/rdma/peer_mem.h (MLNX_OFED / PeerDirect, the out-of-tree API; Linux 6.8 has
// none): what a "peer memory client" (a GPU driver) gives the RDMA core so a NIC can register
// memory the CPU's page tables do not describe. acquire() says whether an address range is the
// client's; get_pages() pins it; dma_map() produces the scatter list the NIC's DMA engine
// walks; dma_unmap()/put_pages()/release() undo those steps in reverse order.
//
// kemu: the kernel's sg_table (include/linux/scatterlist.h) is reduced to the DMA side — an
// array of (dma_address, length) entries — since nothing in kemu walks its page side.

import type { device } from "../../drivers/base/core.ts";

export const IB_PEER_MEMORY_NAME_MAX = 64;
export const IB_PEER_MEMORY_VER_MAX = 16;

/** One DMA segment of an sg_table (sg_dma_address / sg_dma_len). */
export interface scatterlist {
  dma_address: number;
  length: number;
}

/** struct sg_table, DMA side only. */
export class sg_table {
  sgl: scatterlist[] = [];
  get nents(): number {
    return this.sgl.length;
  }
}

/** Result of acquire(): 1 with the client's context for this range, or 0 ("not mine"). */
export type peer_acquire_result = { mine: 1; client_context: unknown } | { mine: 0 };

/** struct peer_memory_client: the callbacks a peer memory client registers. */
export interface peer_memory_client {
  readonly name: string;
  readonly version: string;
  /** Is [addr, addr+size) of the current process this client's memory? Never sleeps on I/O. */
  acquire(addr: number, size: number, peer_mem_private_data: unknown, peer_mem_name: string | null): peer_acquire_result;
  /** Pins the range; `core_context` names the registration in invalidate callbacks. */
  get_pages(addr: number, size: number, write: boolean, force: boolean, sg_head: sg_table, client_context: unknown,
    core_context: number): Promise<number>;
  /** Fills `sg_head` with addresses `dma_device` can reach; returns the entry count in `nmap`. */
  dma_map(sg_head: sg_table, client_context: unknown, dma_device: device | null, dmasync: boolean, nmap: { n: number }): number;
  dma_unmap(sg_head: sg_table, client_context: unknown, dma_device: device | null): number;
  put_pages(sg_head: sg_table, client_context: unknown): Promise<void>;
  get_page_size(client_context: unknown): number;
  release(client_context: unknown): void;
}

/**
 * invalidate_peer_memory: the core's callback a client calls when memory it handed out must be
 * taken back (the old, invalidation-based design); `core_context` is get_pages()'s.
 */
export type invalidate_peer_memory = (reg_handle: unknown, core_context: number) => Promise<number>;

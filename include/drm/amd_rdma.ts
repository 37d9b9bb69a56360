// Mirrors include/drm/amd_rdma.h (ROCK-Kernel-Driver, ROCm 6.x; not in upstream Linux): the
// interface amdkfd exports to RDMA drivers (kfd_peerdirect, or a NIC driver calling it
// directly) for GPU memory a process allocated through KFD. get_pages() pins a range of one KFD
// BO and returns its DMA addresses; put_pages() gives it back. The optional free_callback is the
// old design: amdkfd calls it when the BO is freed while still handed out.
//
// kemu: a `pid` is the process's tgid (the kernel passes a struct pid).

import type { device } from "../../drivers/base/core.ts";
import type { sg_table } from "../rdma/peer_mem.ts";

/** struct amd_p2p_info: one pinned range. */
export interface amd_p2p_info {
  /** Start and length of the range in the process's GPU VA space. */
  va: number;
  size: number;
  pid: number;
  /** DMA addresses of the range for the requesting device. */
  pages: sg_table;
  /** amdkfd's private state of the range. */
  priv: unknown;
}

/** struct amd_rdma_interface. Negative errno on failure. */
export interface amd_rdma_interface {
  get_pages(address: number, length: number, pid: number, dma_dev: device | null, out: { p2p: amd_p2p_info | null },
    free_callback: ((client_priv: unknown) => Promise<void>) | null, client_priv: unknown): Promise<number>;
  put_pages(p2p: { p2p: amd_p2p_info | null }): Promise<number>;
  /** 1 if [address] is in a KFD BO of `pid`, else 0. */
  is_gpu_address(address: number, pid: number): number;
  get_page_size(address: number, length: number, pid: number, page_size: { size: number }): number;
}

// Mirrors drivers/infiniband/core/peer_mem.c (MLNX_OFED PeerDirect; not in Linux 6.8): the RDMA
// core's registry of peer memory clients and the peer side of ib_umem_get(). A memory
// registration (MR) of an address range asks each client in registration order whether the
// range is its own; the first that says yes pins it and maps it for the NIC. A client that
// registered with an invalidate callback may later take the memory back: the core tells the
// MR's owner (the NIC driver stops DMA to it), then unmaps and unpins on the client's behalf.
//
// kemu: the registry is per machine (a WeakMap keyed by the Kernel) instead of a static list;
// registration keys (core_context) are a per-machine counter.

import type { Kernel } from "../../../kernel/kernel.ts";
import type { device } from "../../base/core.ts";
import { EINVAL, ENOENT } from "../../../include/uapi/asm-generic/errno.ts";
import { mutex, mutex_lock, mutex_unlock } from "../../../kernel/locking/mutex.ts";
import { sg_table, type invalidate_peer_memory, type peer_memory_client } from "../../../include/rdma/peer_mem.ts";

/** struct ib_peer_memory_client: one registered client. */
export class ib_peer_memory_client {
  /** Live registrations by core_context (the kernel's xarray of umems). */
  readonly umems = new Map<number, ib_umem_peer>();
  constructor(
    readonly peer_mem: peer_memory_client,
    readonly invalidation_required: boolean,
  ) {}
}

/** The peer part of struct ib_umem: one registered range of peer memory. */
export class ib_umem_peer {
  readonly sg_head = new sg_table();
  nmap = 0;
  /** The client took the memory back (invalidate): no more DMA, only release() is left. */
  invalidated = false;
  constructor(
    readonly client: ib_peer_memory_client,
    readonly client_context: unknown,
    readonly core_context: number,
    readonly address: number,
    readonly length: number,
    readonly dma_device: device | null,
    /** The MR owner's notifier (ib_umem_activate_invalidation_notifier). */
    readonly invalidation_func: ((umem: ib_umem_peer) => void) | null,
  ) {}
  get page_size(): number {
    return this.client.peer_mem.get_page_size(this.client_context);
  }
}

interface peer_mem_state {
  readonly lock: mutex;
  readonly clients: ib_peer_memory_client[];
  next_core_context: number;
}

const states = new WeakMap<Kernel, peer_mem_state>();

function state(k: Kernel): peer_mem_state {
  let s = states.get(k);
  if (!s) states.set(k, (s = { lock: new mutex(k, "&peer_memory_mutex"), clients: [], next_core_context: 1 }));
  return s;
}

/** Clients registered on the machine, in order (for tests and sysfs-like views). */
export function ib_peer_memory_clients(k: Kernel): readonly ib_peer_memory_client[] {
  return state(k).clients;
}

/**
 * ib_register_peer_memory_client(): adds the client. With `want_invalidate` the client gets the
 * core's invalidate callback (the old design); null otherwise. Returns the registration handle.
 */
export async function ib_register_peer_memory_client(k: Kernel, peer: peer_memory_client, want_invalidate: boolean):
  Promise<{ reg_handle: ib_peer_memory_client; invalidate: invalidate_peer_memory | null } | number> {
  if (!peer.name || peer.name.length >= 64 || peer.version.length >= 16) return -EINVAL;
  const s = state(k);
  await mutex_lock(s.lock);
  const c = new ib_peer_memory_client(peer, want_invalidate);
  s.clients.push(c);
  mutex_unlock(s.lock);
  return { reg_handle: c, invalidate: want_invalidate ? ib_invalidate_peer_memory : null };
}

/** ib_unregister_peer_memory_client(): the client leaves; registrations still alive are a bug. */
export async function ib_unregister_peer_memory_client(k: Kernel, reg_handle: ib_peer_memory_client): Promise<void> {
  const s = state(k);
  await mutex_lock(s.lock);
  k.WARN_ON(reg_handle.umems.size !== 0);
  const i = s.clients.indexOf(reg_handle);
  if (i >= 0) s.clients.splice(i, 1);
  mutex_unlock(s.lock);
}

/**
 * ib_peer_umem_get(): the peer path of ib_umem_get(). The first client that claims the range
 * pins and maps it; null when no client claims it (the caller falls back to normal user
 * memory), an errno when the claiming client fails.
 */
export async function ib_peer_umem_get(k: Kernel, addr: number, size: number, write: boolean, dma_device: device | null,
  invalidation_func: ((umem: ib_umem_peer) => void) | null): Promise<ib_umem_peer | number | null> {
  const s = state(k);
  await mutex_lock(s.lock);
  try {
    for (const c of s.clients) {
      const a = c.peer_mem.acquire(addr, size, null, null);
      if (!a.mine) continue;
      const umem = new ib_umem_peer(c, a.client_context, s.next_core_context++, addr, size, dma_device, invalidation_func);
      let r = await c.peer_mem.get_pages(addr, size, write, true, umem.sg_head, a.client_context, umem.core_context);
      if (r) {
        c.peer_mem.release(a.client_context);
        return r;
      }
      const nmap = { n: 0 };
      r = c.peer_mem.dma_map(umem.sg_head, a.client_context, dma_device, false, nmap);
      if (r) {
        await c.peer_mem.put_pages(umem.sg_head, a.client_context);
        c.peer_mem.release(a.client_context);
        return r;
      }
      umem.nmap = nmap.n;
      c.umems.set(umem.core_context, umem);
      return umem;
    }
    return null;
  } finally {
    mutex_unlock(s.lock);
  }
}

/** dma_unmap + put_pages, once (release after invalidation skips them). */
async function ib_peer_umem_unmap(umem: ib_umem_peer): Promise<void> {
  const peer = umem.client.peer_mem;
  peer.dma_unmap(umem.sg_head, umem.client_context, umem.dma_device);
  umem.sg_head.sgl = [];
  umem.nmap = 0;
  await peer.put_pages(umem.sg_head, umem.client_context);
}

/** ib_peer_umem_release(): the MR is deregistered: unmap, unpin (unless invalidated), release. */
export async function ib_peer_umem_release(k: Kernel, umem: ib_umem_peer): Promise<void> {
  const s = state(k);
  await mutex_lock(s.lock);
  if (!umem.invalidated) await ib_peer_umem_unmap(umem);
  umem.client.umems.delete(umem.core_context);
  umem.client.peer_mem.release(umem.client_context);
  mutex_unlock(s.lock);
}

/**
 * ib_invalidate_peer_memory(): the client wants `core_context`'s memory back. The MR's owner is
 * told first (it must stop DMA), then the core unmaps and unpins; -ENOENT for an unknown key.
 * Called from the client's own paths (e.g. a BO free), so it does not take the registry lock.
 */
async function ib_invalidate_peer_memory(reg_handle: unknown, core_context: number): Promise<number> {
  const c = reg_handle as ib_peer_memory_client;
  const umem = c.umems.get(core_context);
  if (!umem) return -ENOENT;
  if (umem.invalidated) return 0;
  umem.invalidated = true;
  umem.invalidation_func?.(umem);
  await ib_peer_umem_unmap(umem);
  return 0;
}

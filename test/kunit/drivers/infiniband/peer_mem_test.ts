// KUnit tests of kemu's RDMA peer-memory core (drivers/infiniband/core/peer_mem.ts) with mock
// peer memory clients: clients are asked in registration order and "not mine" falls through;
// a failing get_pages or dma_map undoes the earlier steps; release undoes them in reverse;
// invalidation tells the MR owner first and leaves only release(); bad registrations are refused.

import {
  KUNIT_ASSERT_TRUE, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_NULL, KUNIT_EXPECT_TRUE, type kunit, type kunit_suite,
} from "../../../../lib/kunit/test.ts";
import {
  ib_peer_memory_clients, ib_peer_umem_get, ib_peer_umem_release, ib_register_peer_memory_client, ib_unregister_peer_memory_client,
  type ib_umem_peer,
} from "../../../../drivers/infiniband/core/peer_mem.ts";
import type { peer_memory_client } from "../../../../include/rdma/peer_mem.ts";
import { EINVAL, EIO, ENOENT, ENOMEM } from "../../../../include/uapi/asm-generic/errno.ts";

/** A client owning [base, base+size); records every callback in `log`. */
function mock_client(name: string, base: number, size: number, log: string[], fail: { get_pages?: number; dma_map?: number } = {}): peer_memory_client {
  return {
    name,
    version: "1",
    acquire: (addr, len) => {
      log.push(`${name}:acquire`);
      return addr >= base && addr + len <= base + size ? { mine: 1, client_context: { addr, len } } : { mine: 0 };
    },
    get_pages: async () => {
      log.push(`${name}:get_pages`);
      return fail.get_pages ?? 0;
    },
    dma_map: (sg, ctx, _dev, _sync, nmap) => {
      log.push(`${name}:dma_map`);
      if (fail.dma_map) return fail.dma_map;
      const c = ctx as { addr: number; len: number };
      sg.sgl = [{ dma_address: 0x100000 + c.addr - base, length: c.len }];
      nmap.n = 1;
      return 0;
    },
    dma_unmap: () => {
      log.push(`${name}:dma_unmap`);
      return 0;
    },
    put_pages: async () => void log.push(`${name}:put_pages`),
    get_page_size: () => 4096,
    release: () => void log.push(`${name}:release`),
  };
}

async function order_and_fallthrough(test: kunit): Promise<void> {
  const k = test.k;
  const log: string[] = [];
  const a = await ib_register_peer_memory_client(k, mock_client("a", 0x1000, 0x1000, log), false);
  const b = await ib_register_peer_memory_client(k, mock_client("b", 0x4000, 0x2000, log), false);
  KUNIT_ASSERT_TRUE(test, typeof a !== "number" && typeof b !== "number");
  if (typeof a === "number" || typeof b === "number") return;
  KUNIT_EXPECT_NULL(test, a.invalidate, "no invalidate callback unless asked for");
  const umem = await ib_peer_umem_get(k, 0x4800, 0x100, true, null, null);
  KUNIT_ASSERT_TRUE(test, typeof umem === "object" && umem !== null);
  const u = umem as ib_umem_peer;
  KUNIT_EXPECT_EQ(test, "a:acquire,b:acquire,b:get_pages,b:dma_map", log.join(","));
  KUNIT_EXPECT_EQ(test, 1, u.nmap);
  KUNIT_EXPECT_EQ(test, 0x100800, u.sg_head.sgl[0]!.dma_address);
  KUNIT_EXPECT_EQ(test, 4096, u.page_size);
  log.length = 0;
  await ib_peer_umem_release(k, u);
  KUNIT_EXPECT_EQ(test, "b:dma_unmap,b:put_pages,b:release", log.join(","));
  // Nobody's memory: null, so the caller falls back to ordinary user memory.
  KUNIT_EXPECT_NULL(test, await ib_peer_umem_get(k, 0x9000, 0x10, false, null, null));
  KUNIT_EXPECT_EQ(test, 2, ib_peer_memory_clients(k).length);
  await ib_unregister_peer_memory_client(k, a.reg_handle);
  await ib_unregister_peer_memory_client(k, b.reg_handle);
  KUNIT_EXPECT_EQ(test, 0, ib_peer_memory_clients(k).length);
}

async function failures_unwind(test: kunit): Promise<void> {
  const k = test.k;
  const log: string[] = [];
  const c = await ib_register_peer_memory_client(k, mock_client("c", 0, 0x1000, log, { get_pages: -ENOMEM }), false);
  KUNIT_EXPECT_EQ(test, -ENOMEM, await ib_peer_umem_get(k, 0, 0x10, true, null, null));
  KUNIT_EXPECT_EQ(test, "c:acquire,c:get_pages,c:release", log.join(","));
  if (typeof c !== "number") await ib_unregister_peer_memory_client(k, c.reg_handle);
  log.length = 0;
  const d = await ib_register_peer_memory_client(k, mock_client("d", 0, 0x1000, log, { dma_map: -EIO }), false);
  KUNIT_EXPECT_EQ(test, -EIO, await ib_peer_umem_get(k, 0, 0x10, true, null, null));
  KUNIT_EXPECT_EQ(test, "d:acquire,d:get_pages,d:dma_map,d:put_pages,d:release", log.join(","));
  if (typeof d !== "number") {
    KUNIT_EXPECT_EQ(test, 0, d.reg_handle.umems.size);
    await ib_unregister_peer_memory_client(k, d.reg_handle);
  }
  // Names the core cannot hold are refused.
  KUNIT_EXPECT_EQ(test, -EINVAL, await ib_register_peer_memory_client(k, { ...mock_client("", 0, 1, log) }, false));
  KUNIT_EXPECT_EQ(test, -EINVAL, await ib_register_peer_memory_client(k, { ...mock_client("x".repeat(64), 0, 1, log) }, false));
}

async function invalidation(test: kunit): Promise<void> {
  const k = test.k;
  const log: string[] = [];
  const r = await ib_register_peer_memory_client(k, mock_client("e", 0, 0x1000, log), true);
  KUNIT_ASSERT_TRUE(test, typeof r !== "number" && r.invalidate !== null);
  if (typeof r === "number" || !r.invalidate) return;
  const umem = (await ib_peer_umem_get(k, 0, 0x10, true, null, () => void log.push("owner:stop"))) as ib_umem_peer;
  log.length = 0;
  KUNIT_EXPECT_EQ(test, 0, await r.invalidate(r.reg_handle, umem.core_context));
  KUNIT_EXPECT_EQ(test, "owner:stop,e:dma_unmap,e:put_pages", log.join(","));
  KUNIT_EXPECT_TRUE(test, umem.invalidated);
  KUNIT_EXPECT_EQ(test, 0, umem.sg_head.nents);
  KUNIT_EXPECT_EQ(test, 0, await r.invalidate(r.reg_handle, umem.core_context), "twice is harmless");
  KUNIT_EXPECT_EQ(test, -ENOENT, await r.invalidate(r.reg_handle, umem.core_context + 1));
  log.length = 0;
  await ib_peer_umem_release(k, umem);
  KUNIT_EXPECT_EQ(test, "e:release", log.join(","), "only release is left");
  await ib_unregister_peer_memory_client(k, r.reg_handle);
}

export const peer_mem_test_suite: kunit_suite = {
  name: "ib-peer-mem",
  machine: { name: "ib-peer-mem", ram_size: 256 * 2 ** 20, gpus: [], iommu: false, seed: 0 },
  test_cases: [
    KUNIT_CASE(order_and_fallthrough),
    KUNIT_CASE(failures_unwind),
    KUNIT_CASE(invalidation),
  ],
};

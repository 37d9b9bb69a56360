// KUnit suite for mm/slab_common.ts: kmalloc size classes and accounting, kzalloc/kcalloc,
// krealloc, kmem_cache lifecycle, /proc/slabinfo, failslab on caches, the KASAN-style
// double-free report, the kmemleak-style leak report at shutdown, and GFP_KERNEL in atomic
// context.

import { FAULT_INJECT, SLAB } from "../../../kernel/tokens.ts";
import { boot } from "../../../kernel/boot.ts";
import { MINIMAL_MACHINE } from "../../../kernel/machine_spec.ts";
import type { Slab } from "../../../mm/slab_common.ts";
import type { FaultInjection } from "../../../lib/fault-inject.ts";
import { spinlock_t, spin_lock, spin_unlock } from "../../../kernel/locking/spinlock.ts";
import {
  GFP_ATOMIC, GFP_DMA, GFP_KERNEL, GFP_KERNEL_ACCOUNT, __GFP_HIGHMEM, __GFP_NOWARN,
} from "../../../include/linux/gfp_types.ts";
import { KMALLOC_MAX_SIZE, SLAB_FAILSLAB, SLAB_HWCACHE_ALIGN, ZERO_SIZE_PTR } from "../../../include/linux/slab.ts";
import {
  KUNIT_ASSERT_NOT_NULL, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_NOT_NULL,
  KUNIT_EXPECT_NE, KUNIT_EXPECT_NULL, KUNIT_EXPECT_PTR_EQ, KUNIT_EXPECT_TRUE, kunit_expect_splat,
  type kunit, type kunit_suite,
} from "../../../lib/kunit/test.ts";

function slab_of(test: kunit): Slab {
  return test.machine.symbol(SLAB);
}

function dmesg_has(test: kunit, text: string): boolean {
  return test.machine.dmesg().some((l) => l.includes(text));
}

function slabinfo_row(slab: Slab, name: string): number[] | null {
  const row = slab.slabinfo().split("\n").find((l) => l.startsWith(`${name} `));
  if (!row) return null;
  return row.slice(17).split(/[\s:a-z]+/).filter(Boolean).map(Number);
}

class demo_obj {
  refs = 1;
}

function kmalloc_size_classes_and_ksize(test: kunit): void {
  const slab = slab_of(test);
  const cases: Array<[number, number]> = [[1, 8], [8, 8], [9, 16], [64, 64], [65, 96], [100, 128], [129, 192],
    [200, 256], [1000, 1024], [8192, 8192], [8193, 16384], [100_000, 131072]];
  for (const [size, ks] of cases) {
    const p = slab.kmalloc(size, GFP_KERNEL);
    KUNIT_ASSERT_NOT_NULL(test, p);
    KUNIT_EXPECT_EQ(test, p!.length, size, `kmalloc(${size}) length`);
    KUNIT_EXPECT_EQ(test, slab.ksize(p), ks, `ksize of kmalloc(${size})`);
    slab.kfree(p);
  }
  KUNIT_EXPECT_EQ(test, slab.ksize(null), 0);
}

function accounting_counts_live_objects_and_bytes(test: kunit): void {
  const slab = slab_of(test);
  const s0 = { ...slab.stats() };
  const before = slabinfo_row(slab, "kmalloc-96")![0]!;
  const a = slab.kmalloc(70, GFP_KERNEL);
  const b = slab.kzalloc_obj(new demo_obj(), 90, GFP_KERNEL);
  KUNIT_EXPECT_EQ(test, slab.stats().objects, s0.objects + 2);
  KUNIT_EXPECT_EQ(test, slab.stats().bytes_requested, s0.bytes_requested + 160);
  KUNIT_EXPECT_EQ(test, slab.stats().bytes_allocated, s0.bytes_allocated + 192);
  KUNIT_EXPECT_EQ(test, slabinfo_row(slab, "kmalloc-96")![0], before + 2, "active_objs of kmalloc-96");
  KUNIT_EXPECT_TRUE(test, slab.is_live(b!));
  slab.kfree(a);
  slab.kfree(b);
  KUNIT_EXPECT_EQ(test, slab.stats().objects, s0.objects);
  KUNIT_EXPECT_EQ(test, slab.stats().bytes_allocated, s0.bytes_allocated);
  KUNIT_EXPECT_EQ(test, slab.stats().frees, s0.frees + 2);
  KUNIT_EXPECT_EQ(test, slabinfo_row(slab, "kmalloc-96")![0], before);
}

function kzalloc_kcalloc_and_zero_size(test: kunit): void {
  const slab = slab_of(test);
  const z = slab.kzalloc(24, GFP_KERNEL);
  KUNIT_ASSERT_NOT_NULL(test, z);
  KUNIT_EXPECT_TRUE(test, z!.every((b) => b === 0));
  const c = slab.kcalloc(4, 10, GFP_KERNEL);
  KUNIT_EXPECT_EQ(test, c?.length, 40);
  const before = test.machine.dmesg().length;
  KUNIT_EXPECT_NULL(test, slab.kcalloc(2 ** 40, 2 ** 30, GFP_KERNEL), "n * size overflows size_t");
  KUNIT_EXPECT_EQ(test, test.machine.dmesg().length, before, "overflow fails without a warning");
  KUNIT_EXPECT_PTR_EQ(test, slab.kmalloc(0, GFP_KERNEL), ZERO_SIZE_PTR);
  slab.kfree(ZERO_SIZE_PTR);
  slab.kfree(null);
  KUNIT_EXPECT_EQ(test, slab.ksize(ZERO_SIZE_PTR), 0);
  slab.kfree(z);
  slab.kfree(c);
}

function kmalloc_too_large_warns_unless_nowarn(test: kunit): void {
  kunit_expect_splat(test, "warn");
  const slab = slab_of(test);
  KUNIT_EXPECT_NULL(test, slab.kmalloc(KMALLOC_MAX_SIZE + 1, GFP_KERNEL | __GFP_NOWARN));
  KUNIT_EXPECT_EQ(test, test.k.splats.length, 0, "__GFP_NOWARN: no WARN");
  KUNIT_EXPECT_NULL(test, slab.kmalloc(KMALLOC_MAX_SIZE + 1, GFP_KERNEL));
  KUNIT_EXPECT_EQ(test, test.k.splats.length, 1);
  const big = slab.kmalloc(KMALLOC_MAX_SIZE, GFP_KERNEL);
  KUNIT_EXPECT_EQ(test, slab.ksize(big), KMALLOC_MAX_SIZE, "4 MiB is the largest kmalloc");
  slab.kfree(big);
}

function kmalloc_cache_types_follow_gfp(test: kunit): void {
  const slab = slab_of(test);
  const a = slab.kmalloc(50, GFP_KERNEL_ACCOUNT);
  const b = slab.kmalloc(50, GFP_KERNEL | GFP_DMA);
  KUNIT_EXPECT_EQ(test, slabinfo_row(slab, "kmalloc-cg-64")?.[0], 1);
  KUNIT_EXPECT_EQ(test, slabinfo_row(slab, "dma-kmalloc-64")?.[0], 1);
  slab.kfree(a);
  slab.kfree(b);
  const c = slab.kmalloc(50, GFP_KERNEL | __GFP_HIGHMEM);
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "Unexpected gfp: 0x2 (__GFP_HIGHMEM). Fixing up to gfp: 0xcc0 (GFP_KERNEL). Fix your code!"));
  slab.kfree(c);
}

function krealloc_keeps_or_moves(test: kunit): void {
  const slab = slab_of(test);
  const p = slab.kmalloc(20, GFP_KERNEL)!;
  p.set([1, 2, 3]);
  const addr = slab.kmem_addr(p);
  const q = slab.krealloc(p, 30, GFP_KERNEL) as Uint8Array;
  KUNIT_ASSERT_NOT_NULL(test, q);
  KUNIT_EXPECT_EQ(test, q.length, 30);
  KUNIT_EXPECT_EQ(test, slab.kmem_addr(q), addr, "still fits kmalloc-32: same slot");
  KUNIT_EXPECT_EQ(test, Array.from(q.subarray(0, 4)).join(","), "1,2,3,0");
  const r = slab.krealloc(q, 100, GFP_KERNEL) as Uint8Array;
  KUNIT_EXPECT_EQ(test, slab.ksize(r), 128);
  KUNIT_EXPECT_EQ(test, Array.from(r.subarray(0, 4)).join(","), "1,2,3,0", "contents moved");
  KUNIT_EXPECT_FALSE(test, slab.is_live(q), "the old allocation was freed");
  const obj = slab.kmalloc_obj(new demo_obj(), 40, GFP_KERNEL)!;
  KUNIT_EXPECT_PTR_EQ(test, slab.krealloc(obj, 500, GFP_KERNEL), obj, "an object is re-accounted in place");
  KUNIT_EXPECT_EQ(test, slab.ksize(obj), 512);
  KUNIT_EXPECT_PTR_EQ(test, slab.krealloc(r, 0, GFP_KERNEL), ZERO_SIZE_PTR, "krealloc(p, 0) frees");
  KUNIT_EXPECT_FALSE(test, slab.is_live(r));
  slab.kfree(obj);
}

function kmem_cache_lifecycle(test: kunit): void {
  const slab = slab_of(test);
  const s = slab.kmem_cache_create("kunit_demo_cache", 40, 0, SLAB_HWCACHE_ALIGN);
  KUNIT_ASSERT_NOT_NULL(test, s);
  KUNIT_EXPECT_EQ(test, s!.size, 64, "HWCACHE_ALIGN rounds 40 up to a cache line");
  const objs = [0, 1, 2].map(() => slab.kmem_cache_alloc_obj(s!, new demo_obj(), GFP_KERNEL));
  const z = slab.kmem_cache_zalloc(s!, GFP_KERNEL);
  KUNIT_EXPECT_EQ(test, z?.length, 40);
  KUNIT_EXPECT_EQ(test, slab.ksize(z), 64);
  const row = slabinfo_row(slab, "kunit_demo_cache")!;
  KUNIT_EXPECT_EQ(test, row[0], 4, "active_objs");
  KUNIT_EXPECT_EQ(test, row[2], 64, "objsize");
  KUNIT_EXPECT_EQ(test, row[1], row[3]! * row[9]!, "num_objs = objperslab * num_slabs");
  for (const o of objs) slab.kmem_cache_free(s!, o);
  slab.kmem_cache_free(s!, z);
  slab.kmem_cache_destroy(s);
  KUNIT_EXPECT_EQ(test, slab.find_cache("kunit_demo_cache"), undefined);
  KUNIT_EXPECT_NULL(test, slab.kmem_cache_create("", 8), "a cache needs a name");
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "kmem_cache_create() failed with error -22"));
}

function freed_slots_are_reused_lifo(test: kunit): void {
  const slab = slab_of(test);
  const s = slab.kmem_cache_create("kunit_lifo", 32)!;
  const a = slab.kmem_cache_alloc(s, GFP_KERNEL)!;
  const b = slab.kmem_cache_alloc(s, GFP_KERNEL)!;
  const addr_a = slab.kmem_addr(a);
  KUNIT_EXPECT_TRUE(test, /^ffff8881[0-9a-f]{8}$/.test(addr_a ?? ""), `${addr_a}`);
  KUNIT_EXPECT_NE(test, slab.kmem_addr(b), addr_a);
  slab.kmem_cache_free(s, a);
  KUNIT_EXPECT_NULL(test, slab.kmem_addr(a), "a freed object has no address");
  const c = slab.kmem_cache_alloc(s, GFP_KERNEL)!;
  KUNIT_EXPECT_EQ(test, slab.kmem_addr(c), addr_a, "the last freed slot comes back first");
  slab.kmem_cache_free(s, b);
  slab.kmem_cache_free(s, c);
  slab.kmem_cache_destroy(s);
}

function kmem_cache_destroy_with_objects_warns(test: kunit): void {
  kunit_expect_splat(test, "warn");
  const slab = slab_of(test);
  const s = slab.kmem_cache_create("kunit_leaky", 24)!;
  const o = slab.kmem_cache_alloc_obj(s, new demo_obj(), GFP_KERNEL);
  slab.kmem_cache_destroy(s);
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "Objects remaining in kunit_leaky on __kmem_cache_shutdown()"));
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "kmem_cache_destroy kunit_leaky: Slab cache still has objects"));
  KUNIT_EXPECT_TRUE(test, slab.find_cache("kunit_leaky") !== undefined, "the cache is left behind");
  slab.kmem_cache_free(s, o);
  KUNIT_EXPECT_EQ(test, slab.find_cache("kunit_leaky"), undefined, "and goes once its last object is freed");
}

function double_free_is_reported_like_kasan(test: kunit): void {
  kunit_expect_splat(test, "warn");
  const slab = slab_of(test);
  const p = slab.kmalloc(64, GFP_KERNEL, "kunit_double_free");
  slab.kfree(p);
  slab.kfree(p);
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "BUG: KASAN: double-free in kfree"));
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "which belongs to the cache kmalloc-64 of size 64"));
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "Allocated by task"));
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "kunit_double_free"));
  KUNIT_EXPECT_EQ(test, test.k.splats.filter((s) => s.title === "KASAN: double-free in kfree").length, 1);
  slab.kfree(new demo_obj());
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "BUG: KASAN: invalid-free in kfree"));
}

function kmem_cache_free_to_the_wrong_cache_warns(test: kunit): void {
  kunit_expect_splat(test, "warn");
  const slab = slab_of(test);
  const a = slab.kmem_cache_create("kunit_a", 16)!;
  const b = slab.kmem_cache_create("kunit_b", 16)!;
  const o = slab.kmem_cache_alloc(a, GFP_KERNEL);
  slab.kmem_cache_free(b, o);
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "cache_from_obj: Wrong slab cache. kunit_b but object is from kunit_a"));
  KUNIT_EXPECT_FALSE(test, slab.is_live(o!), "freed to its real cache anyway");
  slab.kmem_cache_destroy(a);
  slab.kmem_cache_destroy(b);
}

function failslab_hits_slab_allocations(test: kunit): void {
  const slab = slab_of(test);
  const fi: FaultInjection = test.machine.symbol(FAULT_INJECT);
  const s = slab.kmem_cache_create("kunit_failslab", 100, 0, SLAB_FAILSLAB)!;
  const other = slab.kmem_cache_create("kunit_nofail", 100)!;
  Object.assign(fi.failslab.attr, { probability: 100, times: -1, verbose: 0 });
  fi.failslab.cache_filter = true;
  KUNIT_EXPECT_NULL(test, slab.kmem_cache_alloc(s, GFP_ATOMIC), "SLAB_FAILSLAB cache is targeted");
  const ok = slab.kmem_cache_alloc(other, GFP_ATOMIC);
  KUNIT_EXPECT_NOT_NULL(test, ok, "cache-filter spares the others");
  KUNIT_EXPECT_EQ(test, s.alloc_fail, 1);
  fi.failslab.cache_filter = false;
  KUNIT_EXPECT_EQ(test, slab.kmalloc_obj(new demo_obj(), 8, GFP_ATOMIC), null, "kmalloc_obj fails like kmalloc");
  slab.kmem_cache_free(other, ok);
  slab.kmem_cache_destroy(s);
  slab.kmem_cache_destroy(other);
}

function site_stats_group_live_allocations(test: kunit): void {
  const slab = slab_of(test);
  const a = [0, 1, 2].map(() => slab.kmalloc(10, GFP_KERNEL, "kunit_site_a"));
  const b = slab.kmalloc(300, GFP_KERNEL, "kunit_site_b");
  const stats = slab.site_stats();
  KUNIT_EXPECT_EQ(test, stats.get("kunit_site_a")?.objects, 3);
  KUNIT_EXPECT_EQ(test, stats.get("kunit_site_a")?.bytes, 48);
  KUNIT_EXPECT_EQ(test, stats.get("kunit_site_b")?.bytes, 512);
  const c = slab.kmalloc(10, GFP_KERNEL);
  KUNIT_EXPECT_TRUE(test, [...slab.site_stats().keys()].some((k) => k.includes("test/kunit/mm/slab.ts")),
    "without a label the caller's frame is the site");
  for (const p of [...a, b, c]) slab.kfree(p);
  KUNIT_EXPECT_EQ(test, slab.site_stats().size, 0);
}

function leak_report_lists_live_allocations(test: kunit): void {
  const slab = slab_of(test);
  const p = slab.kmalloc(24, GFP_KERNEL)!;
  p.set([0x6b, 0x65, 0x6d, 0x75]);
  const report = slab.leak_report();
  KUNIT_EXPECT_EQ(test, report.length, 1);
  const text = report[0] ?? "";
  KUNIT_EXPECT_TRUE(test, /^unreferenced object 0xffff8881[0-9a-f]{8} \(size 24\):/.test(text), text);
  KUNIT_EXPECT_TRUE(test, text.includes(`comm "${test.k.current.comm}", pid ${test.k.current.pid}`));
  KUNIT_EXPECT_TRUE(test, text.includes("6b 65 6d 75 00"), "hex dump of the contents");
  KUNIT_EXPECT_TRUE(test, text.includes("kemu"));
  KUNIT_EXPECT_TRUE(test, text.includes("leak_report_lists_live_allocations"), "backtrace names the allocating function");
  slab.kfree(p);
  KUNIT_EXPECT_EQ(test, slab.leak_report().length, 0);
}

async function leak_fails_the_machine_at_shutdown(test: kunit): Promise<void> {
  // A machine of its own: this case's machine must end clean.
  const wait = <T>(p: Promise<T>) => test.k.sched.wait_for(p, "the leaker machine");
  const m = await wait(boot({ ...MINIMAL_MACHINE, name: "kunit-leaker" }));
  const s = m.symbol(SLAB);
  await wait(m.run_kthread("leaker", async () => {
    s.kmalloc_obj(new demo_obj(), 48, GFP_KERNEL, "leaker_probe");
    s.kmem_cache_create("leaker_cache", 32);
  }));
  const problems = await wait(m.shutdown({ report_only: true }));
  KUNIT_EXPECT_TRUE(test, problems.some((p) => p.startsWith("unreferenced object 0x") && p.includes("(size 48)") &&
    p.includes('comm "leaker"') && p.includes("leaker_probe") && p.includes("object: demo_obj")), problems.join("\n"));
  KUNIT_EXPECT_TRUE(test, problems.includes("kmem_cache leaker_cache was never destroyed"));
  KUNIT_EXPECT_TRUE(test, m.dmesg().some((l) => l.includes("kmemleak: 1 new suspected memory leaks")));
}

function gfp_kernel_under_spinlock_splats(test: kunit): void {
  kunit_expect_splat(test, "sleep-in-atomic");
  const slab = slab_of(test);
  const lock = new spinlock_t(test.k, "kunit_slab_lock");
  spin_lock(lock);
  const ok = slab.kmalloc(16, GFP_ATOMIC);
  KUNIT_EXPECT_EQ(test, test.k.splats.length, 0, "GFP_ATOMIC is fine under a spinlock");
  const bad = slab.kmalloc(16, GFP_KERNEL);
  spin_unlock(lock);
  KUNIT_EXPECT_TRUE(test, dmesg_has(test, "BUG: sleeping function called from invalid context"));
  KUNIT_EXPECT_EQ(test, test.k.splats.filter((s) => s.kind === "sleep-in-atomic").length, 1);
  KUNIT_EXPECT_NOT_NULL(test, bad, "the allocation still goes ahead, as in the kernel");
  slab.kfree(ok);
  slab.kfree(bad);
}

export const slab_suite: kunit_suite = {
  name: "slab",
  test_cases: [
    KUNIT_CASE(kmalloc_size_classes_and_ksize),
    KUNIT_CASE(accounting_counts_live_objects_and_bytes),
    KUNIT_CASE(kzalloc_kcalloc_and_zero_size),
    KUNIT_CASE(kmalloc_too_large_warns_unless_nowarn),
    KUNIT_CASE(kmalloc_cache_types_follow_gfp),
    KUNIT_CASE(krealloc_keeps_or_moves),
    KUNIT_CASE(kmem_cache_lifecycle),
    KUNIT_CASE(freed_slots_are_reused_lifo),
    KUNIT_CASE(kmem_cache_destroy_with_objects_warns),
    KUNIT_CASE(double_free_is_reported_like_kasan),
    KUNIT_CASE(kmem_cache_free_to_the_wrong_cache_warns),
    KUNIT_CASE(failslab_hits_slab_allocations),
    KUNIT_CASE(site_stats_group_live_allocations),
    KUNIT_CASE(leak_report_lists_live_allocations),
    KUNIT_CASE(leak_fails_the_machine_at_shutdown),
    KUNIT_CASE(gfp_kernel_under_spinlock_splats),
  ],
};

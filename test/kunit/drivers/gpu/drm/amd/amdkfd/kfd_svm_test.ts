// KUnit suites for drivers/gpu/drm/amd/amdkfd/kfd_svm.ts: the range bookkeeping of
// svm_range_set_attr (overlap resolution by clone and split, updates in place, new ranges cut at
// max_svm_range_pages), munmap splits, the get-attr fold rules and defaults, argument errors
// that must leave everything as it was, the XNACK-off system-memory accounting, and the §6.2
// invariant pass itself. Each case drives the kernel through AMDKFD_IOC_SVM from a real process
// and inspects the process's svm_range_list.

import {
  KUNIT_ARRAY_PARAM, KUNIT_ASSERT_EQ, KUNIT_ASSERT_NOT_NULL, KUNIT_CASE, KUNIT_CASE_PARAM, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE,
  KUNIT_EXPECT_STREQ, KUNIT_EXPECT_TRUE, kunit_expect_splat, type kunit, type kunit_suite,
} from "../../../../../../../lib/kunit/test.ts";
import { EFAULT, EINVAL } from "../../../../../../../include/uapi/asm-generic/errno.ts";
import * as K from "../../../../../../../include/uapi/linux/kfd_ioctl.ts";
import { mutex_lock, mutex_unlock } from "../../../../../../../kernel/locking/mutex.ts";
import { svm_range_debug_check, SVM_RANGE_DEFAULT_GRANULARITY } from "../../../../../../../drivers/gpu/drm/amd/amdkfd/kfd_svm.ts";
import {
  KFD_MACHINE, PAGE, anon, attr, kfd_env_create, range_at, svm_get, svm_set, system_mem_used, tree_ranges, tree_shape, u,
  type kfd_env,
} from "./kfd_test_util.ts";

const { KFD_IOCTL_SVM_ATTR_ACCESS: ACCESS, KFD_IOCTL_SVM_ATTR_ACCESS_IN_PLACE: AIP, KFD_IOCTL_SVM_ATTR_NO_ACCESS: NO_ACCESS } = K;
const { KFD_IOCTL_SVM_ATTR_PREFERRED_LOC: PREFERRED, KFD_IOCTL_SVM_ATTR_PREFETCH_LOC: PREFETCH } = K;
const { KFD_IOCTL_SVM_ATTR_SET_FLAGS: SET_FLAGS, KFD_IOCTL_SVM_ATTR_CLR_FLAGS: CLR_FLAGS, KFD_IOCTL_SVM_ATTR_GRANULARITY: GRAN } = K;
const UNDEFINED = K.KFD_IOCTL_SVM_LOCATION_UNDEFINED;
const HOST = K.KFD_IOCTL_SVM_FLAG_HOST_ACCESS;
const COHERENT = K.KFD_IOCTL_SVM_FLAG_COHERENT;

async function flush_deferred(e: kfd_env): Promise<void> {
  await e.kfd.wqs.flush_work(e.p.svms.deferred_list_work);
}

// ---- overlap resolution --------------------------------------------------------------------

/**
 * The registration patterns of kfdtest's SplitRangeTest (peer-tests.md §1.3 #5): each later
 * registration carries another granularity, so it never matches the earlier attributes and
 * every overlap is resolved by clone + split. `shape` is the resulting tree.
 */
interface layout {
  name: string;
  mmap_pages: number;
  regs: Array<[number, number]>;
  shape: string;
}

const LAYOUTS: layout[] = [
  { name: "middle", mmap_pages: 16, regs: [[0, 16], [2, 1]], shape: "[0-1][2-2][3-15]" },
  { name: "head", mmap_pages: 16, regs: [[0, 16], [1, 15]], shape: "[0-0][1-15]" },
  { name: "past_end", mmap_pages: 18, regs: [[0, 16], [2, 16]], shape: "[0-1][2-15][16-17]" },
  { name: "tail", mmap_pages: 16, regs: [[0, 16], [0, 14]], shape: "[0-13][14-15]" },
  { name: "identical", mmap_pages: 16, regs: [[0, 16], [0, 16]], shape: "[0-15]" },
  { name: "superset", mmap_pages: 18, regs: [[0, 16], [0, 18]], shape: "[0-15][16-17]" },
  { name: "islands", mmap_pages: 32, regs: [[2, 2], [8, 2], [0, 32]], shape: "[0-1][2-3][4-7][8-9][10-31]" },
];

const SPLIT_PARAMS = LAYOUTS.flatMap((l) => [0, 1].map((xnack) => ({ l, xnack: xnack as 0 | 1 })));

async function split_patterns(test: kunit): Promise<void> {
  const { l, xnack } = test.param_value as { l: layout; xnack: 0 | 1 };
  const e = await kfd_env_create(test, xnack);
  const base = await anon(e, l.mmap_pages);
  for (const [i, [off, n]] of l.regs.entries()) {
    KUNIT_ASSERT_EQ(test, await svm_set(e, base + off * PAGE, n, [attr(ACCESS, e.gpu_id), attr(GRAN, i + 1)]), 0);
  }
  KUNIT_EXPECT_STREQ(test, tree_shape(e, base), l.shape);
  // Every page carries the granularity of the last registration covering it.
  for (let pg = 0; pg < l.mmap_pages; pg++) {
    let want = 0;
    l.regs.forEach(([off, n], i) => {
      if (pg >= off && pg < off + n) want = i + 1;
    });
    KUNIT_EXPECT_EQ(test, range_at(e, base, pg)?.granularity ?? 0, want, `granularity of page ${pg}`);
  }
}

/**
 * A range inside the new span is updated in place; one sticking out is replaced by a clone
 * whose outer parts are split off; re-registering a mapped range with the same attributes
 * changes nothing (svm_range_is_same_attrs).
 */
async function clone_or_update_in_place(test: kunit): Promise<void> {
  const e = await kfd_env_create(test, 0);
  const base = await anon(e, 16);
  KUNIT_ASSERT_EQ(test, await svm_set(e, base, 16, [attr(ACCESS, e.gpu_id), attr(GRAN, 4)]), 0);
  const r = range_at(e, base, 0)!;
  KUNIT_EXPECT_TRUE(test, r.mapped_to_gpu, "XNACK off maps at registration");
  KUNIT_ASSERT_EQ(test, await svm_set(e, base + 4 * PAGE, 4, [attr(ACCESS, e.gpu_id), attr(GRAN, 4)]), 0);
  KUNIT_EXPECT_TRUE(test, range_at(e, base, 0) === r && tree_shape(e, base) === "[0-15]", "same attributes: untouched");
  KUNIT_ASSERT_EQ(test, await svm_set(e, base, 16, [attr(SET_FLAGS, K.KFD_IOCTL_SVM_FLAG_GPU_EXEC)]), 0);
  KUNIT_EXPECT_TRUE(test, range_at(e, base, 0) === r, "covered exactly: updated in place");
  KUNIT_EXPECT_TRUE(test, (r.flags & K.KFD_IOCTL_SVM_FLAG_GPU_EXEC) !== 0);
  KUNIT_ASSERT_EQ(test, await svm_set(e, base + 4 * PAGE, 4, [attr(GRAN, 6)]), 0);
  KUNIT_EXPECT_STREQ(test, tree_shape(e, base), "[0-3][4-7][8-15]");
  KUNIT_EXPECT_FALSE(test, tree_ranges(e).includes(r), "sticking out: the original left the tree");
  for (const pr of tree_ranges(e)) {
    KUNIT_EXPECT_TRUE(test, pr.mapped_to_gpu && (pr.flags & K.KFD_IOCTL_SVM_FLAG_GPU_EXEC) !== 0, "clones keep the attributes");
  }
  KUNIT_EXPECT_EQ(test, range_at(e, base, 5)!.granularity, 6);
  KUNIT_EXPECT_EQ(test, range_at(e, base, 12)!.granularity, 4);
}

/** New ranges are cut at multiples of max_svm_range_pages (aligned in the address space). */
async function new_ranges_cut_at_max_pages(test: kunit): Promise<void> {
  const e = await kfd_env_create(test, 1);
  const max = e.kfd.max_svm_range_pages;
  KUNIT_ASSERT_EQ(test, max, 8192, "1 GiB of VRAM: 32 MiB chunks");
  const npages = 2 * max + max / 2;
  const base = await anon(e, npages + 1) + PAGE;
  KUNIT_ASSERT_EQ(test, await svm_set(e, base, npages, [attr(GRAN, 0)]), 0);
  const ranges = tree_ranges(e);
  KUNIT_EXPECT_EQ(test, ranges.reduce((s, r) => s + r.npages, 0), npages);
  for (const [i, r] of ranges.entries()) {
    if (i > 0) KUNIT_EXPECT_EQ(test, r.start % max, 0, "each cut on a multiple of max_pages");
    KUNIT_EXPECT_TRUE(test, r.npages <= max);
  }
  KUNIT_EXPECT_EQ(test, ranges.length, Math.ceil(((base / PAGE) % max + npages) / max));
}

// ---- munmap --------------------------------------------------------------------------------

/** munmap of the middle, head and tail of a mapped range: unmap_split, then the deferred worker. */
async function munmap_splits_range(test: kunit): Promise<void> {
  const e = await kfd_env_create(test, 0);
  const base = await anon(e, 16);
  KUNIT_ASSERT_EQ(test, await svm_set(e, base, 16, [attr(ACCESS, e.gpu_id)]), 0);
  const used = system_mem_used(e);
  KUNIT_ASSERT_EQ(test, await u(test, e.proc.munmap(base + 4 * PAGE, 4 * PAGE)), 0);
  await flush_deferred(e);
  KUNIT_EXPECT_STREQ(test, tree_shape(e, base), "[0-3][8-15]");
  KUNIT_EXPECT_EQ(test, system_mem_used(e), used - 4 * PAGE, "the hole is no longer charged");
  KUNIT_ASSERT_EQ(test, await u(test, e.proc.munmap(base, PAGE)), 0);
  KUNIT_ASSERT_EQ(test, await u(test, e.proc.munmap(base + 15 * PAGE, PAGE)), 0);
  await flush_deferred(e);
  KUNIT_EXPECT_STREQ(test, tree_shape(e, base), "[1-3][8-14]");
  for (const r of tree_ranges(e)) KUNIT_EXPECT_TRUE(test, r.mapped_to_gpu, "the rest stays mapped");
  KUNIT_ASSERT_EQ(test, await u(test, e.proc.munmap(base, 16 * PAGE)), 0);
  await flush_deferred(e);
  KUNIT_EXPECT_STREQ(test, tree_shape(e, base), "");
  KUNIT_EXPECT_EQ(test, system_mem_used(e), used - 16 * PAGE);
}

// ---- get_attr ------------------------------------------------------------------------------

/**
 * The fold over several ranges: a location only if all agree, SET_FLAGS the AND, CLR_FLAGS the
 * complement of the OR, the minimum granularity, ACCESS rewritten per GPU; unregistered gaps in
 * the span do not count.
 */
async function get_fold_rules(test: kunit): Promise<void> {
  const e = await kfd_env_create(test, 0);
  const base = await anon(e, 12);
  const RO = K.KFD_IOCTL_SVM_FLAG_GPU_RO;
  const EXEC = K.KFD_IOCTL_SVM_FLAG_GPU_EXEC;
  KUNIT_ASSERT_EQ(test, await svm_set(e, base, 4, [attr(PREFERRED, 0), attr(SET_FLAGS, RO), attr(GRAN, 3), attr(ACCESS, e.gpu_id)]), 0);
  KUNIT_ASSERT_EQ(test, await svm_set(e, base + 4 * PAGE, 4,
    [attr(PREFERRED, e.gpu_id), attr(CLR_FLAGS, COHERENT), attr(SET_FLAGS, EXEC), attr(GRAN, 5), attr(ACCESS, e.gpu_id)]), 0);
  for (const span of [8, 12]) {
    const q = [attr(PREFERRED, 0), attr(PREFETCH, 0), attr(SET_FLAGS, 0), attr(CLR_FLAGS, 0), attr(GRAN, 0), attr(ACCESS, e.gpu_id)];
    KUNIT_ASSERT_EQ(test, await svm_get(e, base, span, q), 0);
    KUNIT_EXPECT_EQ(test, q[0]!.value, UNDEFINED, "preferred: the ranges disagree");
    KUNIT_EXPECT_EQ(test, q[1]!.value, UNDEFINED, "prefetch: never set");
    KUNIT_EXPECT_EQ(test, q[2]!.value, HOST, "SET_FLAGS: AND");
    KUNIT_EXPECT_EQ(test, q[3]!.value, ~(HOST | COHERENT | RO | EXEC) >>> 0, "CLR_FLAGS: ~OR");
    KUNIT_EXPECT_EQ(test, q[4]!.value, 3, "granularity: minimum");
    KUNIT_EXPECT_EQ(test, q[5]!.type, ACCESS);
    KUNIT_EXPECT_EQ(test, q[5]!.value, e.gpu_id);
  }
  const one = [attr(PREFERRED, 0), attr(GRAN, 0)];
  KUNIT_ASSERT_EQ(test, await svm_get(e, base + 4 * PAGE, 4, one), 0);
  KUNIT_EXPECT_EQ(test, one[0]!.value, e.gpu_id, "one range: its own location");
  KUNIT_EXPECT_EQ(test, one[1]!.value, 5);
  KUNIT_ASSERT_EQ(test, await svm_set(e, base, 4, [attr(AIP, e.gpu_id)]), 0);
  const a = [attr(ACCESS, e.gpu_id)];
  KUNIT_ASSERT_EQ(test, await svm_get(e, base, 4, a), 0);
  KUNIT_EXPECT_EQ(test, a[0]!.type, AIP, "in place on the first range");
  const b = [attr(ACCESS, e.gpu_id)];
  KUNIT_ASSERT_EQ(test, await svm_get(e, base, 8, b), 0);
  KUNIT_EXPECT_EQ(test, b[0]!.type, NO_ACCESS, "ACCESS on one, in place on the other: neither for all");
}

/** Nothing registered: undefined locations, HOST_ACCESS|COHERENT, the default granularity, and ACCESS only with XNACK on. */
async function get_defaults(test: kunit): Promise<void> {
  const xnack = test.param_value as 0 | 1;
  const e = await kfd_env_create(test, xnack);
  const base = await anon(e, 4);
  const q = [attr(PREFERRED, 0), attr(PREFETCH, 0), attr(SET_FLAGS, 0), attr(CLR_FLAGS, 0), attr(GRAN, 0), attr(ACCESS, e.gpu_id)];
  KUNIT_ASSERT_EQ(test, await svm_get(e, base, 4, q), 0);
  KUNIT_EXPECT_EQ(test, q[0]!.value, UNDEFINED);
  KUNIT_EXPECT_EQ(test, q[1]!.value, UNDEFINED);
  KUNIT_EXPECT_EQ(test, q[2]!.value, HOST | COHERENT);
  KUNIT_EXPECT_EQ(test, q[3]!.value, ~(HOST | COHERENT) >>> 0);
  KUNIT_EXPECT_EQ(test, q[4]!.value, SVM_RANGE_DEFAULT_GRANULARITY);
  KUNIT_EXPECT_EQ(test, q[5]!.type, xnack ? ACCESS : NO_ACCESS);
  KUNIT_EXPECT_EQ(test, tree_ranges(e).length, 0, "a query registers nothing");
}

/** ACCESS_IN_PLACE / NO_ACCESS / unknown types and unknown GPUs are invalid queries. */
async function get_invalid_queries(test: kunit): Promise<void> {
  const e = await kfd_env_create(test, 1);
  const base = await anon(e, 4);
  for (const q of [attr(AIP, e.gpu_id), attr(NO_ACCESS, e.gpu_id), attr(99, 0), attr(ACCESS, e.gpu_id ^ 0x5a5a)]) {
    KUNIT_EXPECT_EQ(test, await svm_get(e, base, 4, [q]), -EINVAL, `query type ${q.type}`);
  }
}

// ---- argument errors -----------------------------------------------------------------------

/** What a failed call must not change: the tree with every range's attributes, and the accounting. */
function snapshot(e: kfd_env): string {
  return JSON.stringify({
    ranges: tree_ranges(e).map((r) => [r.start, r.last, r.flags, r.preferred_loc, r.prefetch_loc, r.granularity, r.mapped_to_gpu,
      [...r.bitmap_access], [...r.bitmap_aip]]),
    used: system_mem_used(e),
  });
}

/** Each §5.2 argument error returns its errno and leaves ranges, mappings and accounting alone. */
async function set_errors_change_nothing(test: kunit): Promise<void> {
  const e = await kfd_env_create(test, 0);
  const base = await anon(e, 16);
  KUNIT_ASSERT_EQ(test, await svm_set(e, base, 8, [attr(ACCESS, e.gpu_id), attr(GRAN, 2)]), 0);
  KUNIT_ASSERT_EQ(test, await u(test, e.proc.munmap(base + 12 * PAGE, PAGE)), 0);
  await flush_deferred(e);
  const before = snapshot(e);
  const good = [attr(ACCESS, e.gpu_id), attr(GRAN, 5)];
  const call = (start: number, size: number, op: number, attrs: K.kfd_ioctl_svm_attribute_t[]) =>
    u(test, e.proc.ioctl(e.fd, K.AMDKFD_IOC_SVM, { start_addr: start, size, op, nattr: attrs.length, attrs }));
  const cases: Array<[string, () => Promise<number>, number]> = [
    ["unaligned start", () => call(base + 8, 4 * PAGE, K.KFD_IOCTL_SVM_OP_SET_ATTR, good), -EINVAL],
    ["unaligned size", () => call(base, 4 * PAGE + 8, K.KFD_IOCTL_SVM_OP_SET_ATTR, good), -EINVAL],
    ["zero size", () => call(base, 0, K.KFD_IOCTL_SVM_OP_SET_ATTR, good), -EINVAL],
    ["zero start", () => call(0, 4 * PAGE, K.KFD_IOCTL_SVM_OP_SET_ATTR, good), -EINVAL],
    ["unknown op (positive EINVAL)", () => call(base, 4 * PAGE, 2, good), EINVAL],
    ["unknown attribute", () => call(base, 4 * PAGE, K.KFD_IOCTL_SVM_OP_SET_ATTR, [good[1]!, attr(42, 0)]), -EINVAL],
    ["unknown gpu for ACCESS", () => call(base, 4 * PAGE, K.KFD_IOCTL_SVM_OP_SET_ATTR, [good[1]!, attr(ACCESS, 7)]), -EINVAL],
    ["unknown gpu for PREFERRED", () => call(base, 4 * PAGE, K.KFD_IOCTL_SVM_OP_SET_ATTR, [attr(PREFERRED, 7)]), -EINVAL],
    ["PREFETCH undefined", () => call(base, 4 * PAGE, K.KFD_IOCTL_SVM_OP_SET_ATTR, [attr(PREFETCH, UNDEFINED)]), -EINVAL],
    ["a page without a VMA", () => call(base, 16 * PAGE, K.KFD_IOCTL_SVM_OP_SET_ATTR, good), -EFAULT],
  ];
  for (const [what, ret, want] of cases) {
    KUNIT_EXPECT_EQ(test, await ret(), want, what);
    KUNIT_EXPECT_STREQ(test, snapshot(e), before, `${what}: nothing changed`);
  }
}

/** GRANULARITY is stored as min(value, 0x3f). */
async function granularity_clamped(test: kunit): Promise<void> {
  const e = await kfd_env_create(test, 1);
  const base = await anon(e, 4);
  KUNIT_ASSERT_EQ(test, await svm_set(e, base, 4, [attr(GRAN, 0x50)]), 0);
  const q = [attr(GRAN, 0)];
  KUNIT_ASSERT_EQ(test, await svm_get(e, base, 4, q), 0);
  KUNIT_EXPECT_EQ(test, q[0]!.value, 0x3f);
}

// ---- accounting ----------------------------------------------------------------------------

/**
 * XNACK off charges every range to KFD's system-memory limit once (splits and clones carry the
 * charge); switching XNACK on releases it, switching back charges it again (§6.2 #11).
 */
async function xnack_off_accounting(test: kunit): Promise<void> {
  const e = await kfd_env_create(test, 0);
  const base = await anon(e, 32);
  const used0 = system_mem_used(e);
  KUNIT_ASSERT_EQ(test, await svm_set(e, base, 32, [attr(GRAN, 1)]), 0);
  KUNIT_EXPECT_EQ(test, system_mem_used(e), used0 + 32 * PAGE);
  KUNIT_ASSERT_EQ(test, await svm_set(e, base + 8 * PAGE, 4, [attr(GRAN, 2)]), 0);
  KUNIT_EXPECT_EQ(test, system_mem_used(e), used0 + 32 * PAGE, "a split is not charged again");
  const all = system_mem_used(e);
  KUNIT_ASSERT_EQ(test, await u(test, e.proc.ioctl(e.fd, K.AMDKFD_IOC_SET_XNACK_MODE, { xnack_enabled: 1 })), 0);
  const ranges_bytes = tree_ranges(e).reduce((s, r) => s + r.npages * PAGE, 0);
  KUNIT_EXPECT_EQ(test, system_mem_used(e), all - ranges_bytes, "XNACK on: every range released");
  KUNIT_ASSERT_EQ(test, await svm_set(e, base, 32, [attr(GRAN, 3)]), 0);
  KUNIT_ASSERT_EQ(test, await u(test, e.proc.ioctl(e.fd, K.AMDKFD_IOC_SET_XNACK_MODE, { xnack_enabled: 0 })), 0);
  KUNIT_EXPECT_EQ(test, system_mem_used(e), all, "XNACK off again: charged again");
}

// ---- the invariant pass ---------------------------------------------------------------------

/** svm_range_debug_check() notices a broken invariant (here a range whose npages lies). */
async function debug_check_catches_corruption(test: kunit): Promise<void> {
  const e = await kfd_env_create(test, 1);
  const base = await anon(e, 4);
  KUNIT_ASSERT_EQ(test, await svm_set(e, base, 4, [attr(GRAN, 1)]), 0);
  const r = range_at(e, base, 0);
  KUNIT_ASSERT_NOT_NULL(test, r);
  kunit_expect_splat(test, "warn");
  await mutex_lock(e.p.svms.lock);
  r!.npages++;
  svm_range_debug_check(e.p.svms);
  r!.npages--;
  mutex_unlock(e.p.svms.lock);
  KUNIT_EXPECT_TRUE(test, test.k.log.dmesg().some((l) => l.includes("npages 5")));
}

/**
 * §6.1: the paths above teach lockdep svms->lock → prange->migrate_mutex → prange->lock (set_attr
 * and validate_and_map on an XNACK-off registration). Taking prange->lock and then svms->lock
 * inverts that order: lockdep must report the possible circular dependency.
 */
async function lock_order_under_lockdep(test: kunit): Promise<void> {
  const e = await kfd_env_create(test, 0);
  const base = await anon(e, 4);
  KUNIT_ASSERT_EQ(test, await svm_set(e, base, 4, [attr(ACCESS, e.gpu_id)]), 0);
  KUNIT_EXPECT_EQ(test, test.k.splats.length, 0, "the driver's own order is consistent");
  const r = range_at(e, base, 0)!;
  kunit_expect_splat(test, "lockdep");
  await mutex_lock(r.lock);
  await mutex_lock(e.p.svms.lock);
  mutex_unlock(e.p.svms.lock);
  mutex_unlock(r.lock);
  KUNIT_EXPECT_TRUE(test, test.k.splats.some((sp) => sp.kind === "lockdep"), "the inversion was reported");
}

export const kfd_svm_range_suite: kunit_suite = {
  name: "kfd_svm_range",
  machine: KFD_MACHINE,
  test_cases: [
    KUNIT_CASE_PARAM(split_patterns, KUNIT_ARRAY_PARAM(SPLIT_PARAMS, (p) => `${p.l.name}_xnack${p.xnack}`)),
    KUNIT_CASE(clone_or_update_in_place),
    KUNIT_CASE(new_ranges_cut_at_max_pages),
    KUNIT_CASE(munmap_splits_range),
    KUNIT_CASE(xnack_off_accounting),
    KUNIT_CASE(debug_check_catches_corruption),
    KUNIT_CASE(lock_order_under_lockdep),
  ],
};

export const kfd_svm_attr_suite: kunit_suite = {
  name: "kfd_svm_attr",
  machine: KFD_MACHINE,
  test_cases: [
    KUNIT_CASE(get_fold_rules),
    KUNIT_CASE_PARAM(get_defaults, KUNIT_ARRAY_PARAM([0, 1], (x) => `xnack${x}`)),
    KUNIT_CASE(get_invalid_queries),
    KUNIT_CASE(set_errors_change_nothing),
    KUNIT_CASE(granularity_clamped),
  ],
};
